//! An upper bound on the score nucleo's matcher can give any path of a
//! chunk of the packed index, worked out from a summary of the chunk
//! instead of its paths: which characters occur where a match earns each
//! bonus, and which pairs occur side by side. A query skips a chunk whose
//! bound cannot beat the results it already holds. The packed paths are
//! ordered shortest first, which is also how ties rank, so a query that
//! many paths match as well as any can (a name being typed, a word in
//! many names) fills its results from the first chunks and skips the
//! rest, instead of scoring every path.
//!
//! The bound mirrors nucleo 0.3's scoring for paths (`score.rs`,
//! `fuzzy_optimal.rs`, `Config::match_paths`): every matched character
//! scores [`SCORE_MATCH`] plus a bonus; the first character's bonus
//! counts twice; a character right after the one before it keeps the
//! bonus its run started with; one after a gap pays the gap. Relaxing
//! where each character sits is what makes it a bound. The tests score
//! random paths with the matcher and check the bound is never below, so
//! a nucleo upgrade that scores differently fails them rather than
//! dropping results.

use super::CharSet;
use nucleo_matcher::pattern::Pattern;

const SCORE_MATCH: u32 = 16;
const PENALTY_GAP_START: u32 = 3;
const BONUS_BOUNDARY: u8 = 8;
/// `match_paths` gives a word start after `/` one more than other
/// boundaries, and after whitespace no more than them.
const BONUS_BOUNDARY_DELIMITER: u8 = BONUS_BOUNDARY + 1;
const BONUS_CAMEL123: u8 = BONUS_BOUNDARY - 3;
const BONUS_CONSECUTIVE: u8 = 4;
const BONUS_FIRST_CHAR_MULTIPLIER: u32 = 2;
/// The bonuses a character can earn where it stands (`bonus` gives no
/// other), highest first; the summary keeps the characters and pairs at
/// each.
const LEVELS: [u8; 4] = [BONUS_BOUNDARY_DELIMITER, BONUS_BOUNDARY, BONUS_CAMEL123, 0];

/// nucleo's character classes, in its order (a class above `Delimiter`
/// is part of a word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Whitespace,
    NonWord,
    Delimiter,
    Lower,
    Upper,
    Number,
}

impl Class {
    const ALL: [Self; 6] = [
        Self::Whitespace,
        Self::NonWord,
        Self::Delimiter,
        Self::Lower,
        Self::Upper,
        Self::Number,
    ];

    fn of(c: u8) -> Self {
        match c {
            b'a'..=b'z' => Self::Lower,
            b'A'..=b'Z' => Self::Upper,
            b'0'..=b'9' => Self::Number,
            c if c.is_ascii_whitespace() => Self::Whitespace,
            c if crate::platform::fs::is_path_separator(c) => Self::Delimiter,
            _ => Self::NonWord,
        }
    }
}

/// nucleo's bonus for a character of class `class` after one of class
/// `prev` (`Config::bonus_for` with `match_paths`).
fn bonus(prev: Class, class: Class) -> u8 {
    if class > Class::Delimiter {
        match prev {
            Class::Whitespace | Class::NonWord => return BONUS_BOUNDARY,
            Class::Delimiter => return BONUS_BOUNDARY_DELIMITER,
            _ => {}
        }
    }
    if prev == Class::Lower && class == Class::Upper
        || prev != Class::Number && class == Class::Number
    {
        BONUS_CAMEL123
    } else if matches!(class, Class::Whitespace | Class::NonWord) {
        BONUS_BOUNDARY
    } else {
        0
    }
}

/// What summing a path up needs per character, looked up rather than
/// worked out: packing a million paths does it for every character.
struct Tables {
    class: [Class; 128],
    slot: [u8; 128],
    /// The level (an index into [`LEVELS`]) a character of a class earns
    /// after one of a class: `level[prev][class]`.
    level: [[u8; Class::ALL.len()]; Class::ALL.len()],
}

impl Tables {
    fn new() -> Self {
        let mut tables = Self {
            class: [Class::NonWord; 128],
            slot: [0; 128],
            level: [[0; Class::ALL.len()]; Class::ALL.len()],
        };
        for c in 0..128u8 {
            tables.class[usize::from(c)] = Class::of(c);
            tables.slot[usize::from(c)] = u8::try_from(CharSet::slot(c)).unwrap_or(63);
        }
        for prev in Class::ALL {
            for class in Class::ALL {
                let earned = bonus(prev, class);
                let level = LEVELS.iter().position(|&level| earned >= level);
                tables.level[prev as usize][class as usize] =
                    u8::try_from(level.unwrap_or(LEVELS.len() - 1)).unwrap_or(0);
            }
        }
        tables
    }

    fn get() -> &'static Self {
        static TABLES: std::sync::OnceLock<Tables> = std::sync::OnceLock::new();
        TABLES.get_or_init(Self::new)
    }
}

/// The text of a query's atoms that must match (a negated one adds
/// nothing to a score), as ASCII; `None` where one is not ASCII, which the
/// matcher may fold into an ASCII character: nothing is then ruled out.
#[derive(Debug)]
pub(super) struct Needles(Option<Vec<Vec<u8>>>);

impl Needles {
    pub(super) fn of(pattern: &Pattern) -> Self {
        Self(
            pattern
                .atoms
                .iter()
                .filter(|atom| !atom.negative)
                .map(|atom| {
                    atom.needle_text()
                        .chars()
                        .map(|c| u8::try_from(c).ok().filter(u8::is_ascii))
                        .collect::<Option<Vec<u8>>>()
                })
                .collect(),
        )
    }
}

/// What the bound needs to know about a chunk of paths. Each table is
/// kept by level (an index into [`LEVELS`]): the bonus a character earns
/// where it stands is always exactly one of them. Packing costs three
/// stores a character.
#[derive(Debug, Clone)]
pub(super) struct ChunkSummary {
    /// For each level, the characters that somewhere earn it; together,
    /// every character of every path.
    earning: [u64; LEVELS.len()],
    /// For each level and each character slot, the characters that
    /// somewhere follow that character where it earns that level. A run
    /// of matched characters keeps the bonus of the one it began with;
    /// this keeps the bound from starting a run where a character earns
    /// much and going on where another copy of it is followed by the next.
    followed_where_first_earns: [[u64; 64]; LEVELS.len()],
    /// For each level and each character slot, the characters that
    /// somewhere follow it and earn that level there: a character right
    /// after the one before keeps its run's bonus unless it earns more.
    followed_earning: [[u64; 64]; LEVELS.len()],
    /// A path with a character outside ASCII, which the matcher may fold
    /// into another: nothing is ruled out.
    unbounded: bool,
}

impl Default for ChunkSummary {
    fn default() -> Self {
        Self {
            earning: [0; LEVELS.len()],
            followed_where_first_earns: [[0; 64]; LEVELS.len()],
            followed_earning: [[0; 64]; LEVELS.len()],
            unbounded: false,
        }
    }
}

impl ChunkSummary {
    /// Adds `path` to the summary; returns the path's character set.
    pub(super) fn add(&mut self, path: &str) -> CharSet {
        if !path.is_ascii() {
            self.unbounded = true;
            return CharSet(u64::MAX);
        }
        let tables = Tables::get();
        let mut own = 0;
        // The matcher treats the start of a path as if after a `/`.
        let mut prev = Class::Delimiter;
        // The slot of the character before and the level it earned.
        let mut before: Option<(usize, usize)> = None;
        for c in path.bytes() {
            let c = usize::from(c & 0x7f);
            let class = tables.class[c];
            let bit = 1u64 << tables.slot[c];
            own |= bit;
            let level = usize::from(tables.level[prev as usize][class as usize]);
            self.earning[level] |= bit;
            if let Some((slot, level_before)) = before {
                self.followed_where_first_earns[level_before][slot] |= bit;
                self.followed_earning[level][slot] |= bit;
            }
            prev = class;
            before = Some((usize::from(tables.slot[c]), level));
        }
        CharSet(own)
    }

    /// The levels at which query character `c` stands somewhere in the
    /// chunk.
    fn levels_of(&self, c: u8) -> impl Iterator<Item = usize> + '_ {
        let bit = CharSet::bit(c);
        (0..LEVELS.len()).filter(move |&level| self.earning[level] & bit != 0)
    }

    /// The most `then` earns somewhere right after `first`.
    fn earned_after(&self, first: u8, then: u8) -> u8 {
        let (slot, bit) = (CharSet::slot(first), CharSet::bit(then));
        self.followed_earning
            .iter()
            .zip(LEVELS)
            .find(|(followed, _)| followed[slot] & bit != 0)
            .map_or(0, |(_, level)| level)
    }

    /// Whether `then` follows `first` somewhere `first` earns level
    /// `level`.
    fn follows(&self, level: usize, first: u8, then: u8) -> bool {
        self.followed_where_first_earns[level][CharSet::slot(first)] & CharSet::bit(then) != 0
    }

    /// Whether `then` follows `first` anywhere.
    fn adjacent(&self, first: u8, then: u8) -> bool {
        (0..LEVELS.len()).any(|level| self.follows(level, first, then))
    }

    /// At least the score of any path of the chunk for the query whose
    /// needles these are, or `None` where no path of the chunk can match.
    pub(super) fn bound(&self, needles: &Needles) -> Option<u32> {
        let Needles(Some(needles)) = needles else {
            return Some(u32::MAX);
        };
        if self.unbounded {
            return Some(u32::MAX);
        }
        let chars = self.earning.iter().fold(0, |all, level| all | level);
        let mut total: u32 = 0;
        for needle in needles {
            if !needle.iter().all(|&c| chars & CharSet::bit(c) != 0) {
                return None;
            }
            total = total.saturating_add(self.needle_bound(needle));
        }
        Some(total)
    }

    /// The best score a run of `needle` can reach: each character either
    /// right after the one before (keeping the bonus its run began with,
    /// at least [`BONUS_CONSECUTIVE`], raised by a boundary it earns
    /// itself) or after a gap (a bonus it earns somewhere, less the gap).
    /// For each state, the best score so far; a state is the run's bonus,
    /// and, where the character before began the run, the level it began
    /// at (whose pairs say what can follow it there).
    fn needle_bound(&self, needle: &[u8]) -> u32 {
        let Some((&first, rest)) = needle.split_first() else {
            return 0;
        };
        let mut best = States::default();
        for level in self.levels_of(first) {
            best.keep(
                State::began(level),
                SCORE_MATCH + u32::from(LEVELS[level]) * BONUS_FIRST_CHAR_MULTIPLIER,
            );
        }
        let mut prev_char = first;
        for &c in rest {
            let mut next = States::default();
            let own = self.earned_after(prev_char, c);
            for (state, score) in best.iter() {
                for level in self.levels_of(c) {
                    next.keep(
                        State::began(level),
                        score + SCORE_MATCH + u32::from(LEVELS[level]) - PENALTY_GAP_START,
                    );
                }
                let side_by_side = match state.began_at {
                    Some(level) => self.follows(level, prev_char, c),
                    None => self.adjacent(prev_char, c),
                };
                if side_by_side {
                    let mut run = state.run.max(BONUS_CONSECUTIVE);
                    if own >= BONUS_BOUNDARY && own > run {
                        run = own;
                    }
                    next.keep(
                        State {
                            run,
                            began_at: None,
                        },
                        score + SCORE_MATCH + u32::from(run.max(own)),
                    );
                }
            }
            best = next;
            prev_char = c;
        }
        best.iter().map(|(_, score)| score).max().unwrap_or(0)
    }
}

/// Where [`ChunkSummary::needle_bound`] stands after a character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct State {
    /// The bonus the run earns each character.
    run: u8,
    /// The level (an index into [`LEVELS`]) of the character the run began
    /// with, where that was the character just matched.
    began_at: Option<usize>,
}

impl State {
    fn began(level: usize) -> Self {
        Self {
            run: LEVELS[level],
            began_at: Some(level),
        }
    }
}

/// The best score for each [`State`] reached, 0 for one not reached
/// (every reached state has scored at least [`SCORE_MATCH`]): a fixed
/// array, as a query bounds every chunk.
#[derive(Debug)]
struct States([u32; States::SLOTS]);

impl Default for States {
    fn default() -> Self {
        Self([0; Self::SLOTS])
    }
}

impl States {
    /// A run's bonus (0 to [`BONUS_BOUNDARY_DELIMITER`]) by where it
    /// began (not just now, or one of [`LEVELS`]).
    const SLOTS: usize = (BONUS_BOUNDARY_DELIMITER as usize + 1) * (LEVELS.len() + 1);

    fn slot(state: State) -> usize {
        usize::from(state.run) * (LEVELS.len() + 1) + state.began_at.map_or(0, |level| level + 1)
    }

    fn state(slot: usize) -> State {
        let began = slot % (LEVELS.len() + 1);
        State {
            run: u8::try_from(slot / (LEVELS.len() + 1)).unwrap_or(u8::MAX),
            began_at: began.checked_sub(1),
        }
    }

    fn keep(&mut self, state: State, score: u32) {
        let best = &mut self.0[Self::slot(state)];
        *best = (*best).max(score);
    }

    fn iter(&self) -> impl Iterator<Item = (State, u32)> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, score)| **score > 0)
            .map(|(slot, score)| (Self::state(slot), *score))
    }
}

#[cfg(test)]
mod tests;
