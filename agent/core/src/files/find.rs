//! Fuzzy file-name search. Each open project keeps an index of its file
//! paths (ignore rules applied), built by one walk and then kept current by
//! the watcher, so a query never walks the tree: it scores the index with
//! nucleo's matcher (the one Helix uses, ranked like fzf) on the blocking
//! pool.
//!
//! The index is a sorted set, which the watcher's edits (a folder renamed
//! or removed with everything under it) need. A query reads a packed copy
//! instead: every path in one buffer, shortest first, so the scan goes
//! through contiguous memory rather than chasing a pointer per path, on as
//! many threads as there are cores, each taking the next chunk of paths.
//! The copy is made by the first query after a change and shared until the
//! next one.
//!
//! The copy also holds each path's character set, 64 bits, which rules a
//! path out before the matcher sees it: a path that lacks a character of
//! the query cannot match it. One AND per path instead of the matcher's
//! conversion and search; a query whose characters few paths have (a
//! typo, a rare letter, a digit run) then costs a pass over 8 bytes a path.
//!
//! And each chunk's summary ([`score_bound`]), from which a query bounds
//! the best score any path of the chunk could get. Ties rank the shorter
//! path first, which is the packed order, so once a query holds its
//! `limit` results, a later chunk whose bound is no higher cannot change
//! them and is skipped unscored. A query many paths match as well as any
//! path can (a name being typed) costs the first chunks, not the index.

mod score_bound;

use std::{
    collections::BTreeSet,
    num::NonZeroUsize,
    ops::Range,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
};

use crate::files::sandbox::RelPath;
use nucleo_matcher::{
    Config, Matcher, Utf32Str,
    pattern::{CaseMatching, Normalization, Pattern},
};
use score_bound::{ChunkSummary, Needles};

/// Fewest paths worth a thread of their own: below this, starting one
/// costs more than the chunks it would score.
const PATHS_PER_THREAD: usize = 16_384;

/// Paths to a chunk: one summary (4 KB, so 4 bytes a path) per
/// chunk, and the fewest paths a query scores before its bound can stop
/// it.
const CHUNK_PATHS: usize = 1024;

/// The file paths of a project, `/`-separated, relative to its root.
#[derive(Debug, Default)]
pub struct FileIndex {
    paths: RwLock<BTreeSet<String>>,
    /// The paths packed for queries; `None` after a change until the next
    /// query packs them again. Taken while `paths` is held, never the
    /// other way round.
    packed: Mutex<Option<Arc<PackedPaths>>>,
    ready: AtomicBool,
}

/// The paths in one buffer, shorter before longer and in order among
/// equals: the order in which equal scores rank.
#[derive(Debug)]
struct PackedPaths {
    text: String,
    /// Where each path ends in `text`; it starts where the one before ended.
    ends: Vec<usize>,
    /// Each path's [`CharSet`].
    chars: Vec<CharSet>,
    /// A summary of each [`CHUNK_PATHS`] paths, in order.
    chunks: Vec<ChunkSummary>,
}

impl PackedPaths {
    fn new(paths: &BTreeSet<String>) -> Self {
        let mut packed = Self {
            text: String::with_capacity(paths.iter().map(String::len).sum()),
            ends: Vec::with_capacity(paths.len()),
            chars: Vec::with_capacity(paths.len()),
            chunks: Vec::with_capacity(paths.len().div_ceil(CHUNK_PATHS)),
        };
        for (n, path) in shortest_first(paths).into_iter().enumerate() {
            if n.is_multiple_of(CHUNK_PATHS) {
                packed.chunks.push(ChunkSummary::default());
            }
            // A chunk was pushed above for the first path of each.
            let chars = packed
                .chunks
                .last_mut()
                .map_or(CharSet(u64::MAX), |chunk| chunk.add(path));
            packed.text.push_str(path);
            packed.ends.push(packed.text.len());
            packed.chars.push(chars);
        }
        packed
    }

    /// The paths of chunk `chunk`.
    fn chunk(&self, chunk: usize) -> Range<usize> {
        (chunk * CHUNK_PATHS).min(self.len())..((chunk + 1) * CHUNK_PATHS).min(self.len())
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// `paths` (in order) ordered by length, in order among equal lengths: a
/// counting sort, one pass to count and one to place, where sorting a
/// million paths would cost a query after every change.
fn shortest_first(paths: &BTreeSet<String>) -> Vec<&str> {
    let longest = paths.iter().map(String::len).max().unwrap_or(0);
    // next[len]: where the next path of that length goes.
    let mut next = vec![0usize; longest + 2];
    for path in paths {
        next[path.len() + 1] += 1;
    }
    for len in 1..next.len() {
        next[len] += next[len - 1];
    }
    let mut ordered = vec![""; paths.len()];
    for path in paths {
        ordered[next[path.len()]] = path;
        next[path.len()] += 1;
    }
    ordered
}

/// Which characters a path has, or a query needs, as 64 bits: one per
/// ASCII letter (either case: the matcher may ignore case), one per digit,
/// and the other ASCII characters sharing the remaining 28 bits. Sharing
/// only lets more paths through, never fewer. A path with any non-ASCII
/// character has every bit: the matcher folds accents and case beyond
/// ASCII ("É" matches "e"), which a set of ASCII bits cannot follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CharSet(u64);

impl CharSet {
    fn slot(c: u8) -> usize {
        usize::from(match c {
            b'a'..=b'z' => c - b'a',
            b'A'..=b'Z' => c - b'A',
            b'0'..=b'9' => 26 + (c - b'0'),
            _ => 36 + c % 28,
        })
    }

    fn bit(c: u8) -> u64 {
        1 << Self::slot(c)
    }

    /// What every path that can match `pattern` has: the ASCII characters
    /// of its atoms that must match (a negated atom must not).
    fn needed_by(pattern: &Pattern) -> Self {
        let mut set = 0;
        for atom in pattern.atoms.iter().filter(|atom| !atom.negative) {
            for c in atom.needle_text().chars() {
                // A non-ASCII query character may match an ASCII path
                // character after folding: it rules nothing out.
                if let Ok(c) = u8::try_from(c)
                    && c.is_ascii()
                {
                    set |= Self::bit(c);
                }
            }
        }
        Self(set)
    }

    fn has_all(self, needed: Self) -> bool {
        self.0 & needed.0 == needed.0
    }
}

/// One match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMatch {
    /// Path.
    pub path: String,
    /// Score; higher is better.
    pub score: u32,
    /// Matched character positions, for highlighting.
    pub positions: Vec<u32>,
}

/// The result of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindResult {
    /// Best matches first.
    pub matches: Vec<FileMatch>,
    /// Files in the index.
    pub total_files: u64,
    /// False while the first walk is still running.
    pub complete: bool,
}

impl FileIndex {
    /// The set, for a change: the packed copy is dropped first, under the
    /// set's lock, so no query can keep a copy older than the change.
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeSet<String>> {
        let paths = crate::sync::write(&self.paths);
        *crate::sync::lock(&self.packed) = None;
        paths
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeSet<String>> {
        crate::sync::read(&self.paths)
    }

    /// Replace the whole index (after a walk).
    pub fn replace(&self, paths: BTreeSet<String>) {
        *self.write() = paths;
        self.ready.store(true, Ordering::Release);
    }

    /// Replace what is under each of `roots` (folders) by `paths`, which
    /// a new listing of them found.
    pub fn replace_under(&self, roots: &[RelPath], paths: BTreeSet<String>) {
        let mut index = self.write();
        if roots.iter().any(RelPath::is_root) {
            *index = paths;
            return;
        }
        for root in roots {
            let prefix = format!("{}/", root.as_str());
            let inside: Vec<String> = index
                .range(prefix.clone()..)
                .take_while(|p| p.starts_with(&prefix))
                .cloned()
                .collect();
            for path in inside {
                index.remove(&path);
            }
        }
        index.extend(paths);
    }

    /// A file appeared.
    pub fn insert(&self, path: &str) {
        // A file written again is no change: keep the packed copy.
        if self.read().contains(path) {
            return;
        }
        self.write().insert(path.to_owned());
    }

    /// A file or folder disappeared (a folder takes its contents along).
    pub fn remove(&self, path: &str) {
        let mut paths = self.write();
        if !paths.remove(path) {
            let prefix = format!("{path}/");
            let inside: Vec<String> = paths
                .range(prefix.clone()..)
                .take_while(|p| p.starts_with(&prefix))
                .cloned()
                .collect();
            for p in inside {
                paths.remove(&p);
            }
        }
    }

    /// A file or folder was renamed.
    pub fn rename(&self, from: &str, to: &str) {
        let mut paths = self.write();
        if paths.remove(from) {
            paths.insert(to.to_owned());
            return;
        }
        let prefix = format!("{from}/");
        let inside: Vec<String> = paths
            .range(prefix.clone()..)
            .take_while(|p| p.starts_with(&prefix))
            .cloned()
            .collect();
        for p in inside {
            paths.remove(&p);
            paths.insert(format!("{to}/{}", &p[prefix.len()..]));
        }
    }

    /// Number of files.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// Whether the first walk finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The packed copy of the paths, made now if a change dropped it.
    fn packed(&self) -> Arc<PackedPaths> {
        let paths = self.read();
        crate::sync::lock(&self.packed)
            .get_or_insert_with(|| Arc::new(PackedPaths::new(&paths)))
            .clone()
    }

    /// Score every path against `query`; the best `limit` first. An empty
    /// query lists paths in order. Blocking (CPU-bound, on every core).
    pub fn find(&self, query: &str, limit: usize) -> FindResult {
        let complete = self.is_ready();
        if query.trim().is_empty() {
            // A listing needs no packed copy.
            let paths = self.read();
            return FindResult {
                matches: paths
                    .iter()
                    .take(limit)
                    .map(|path| FileMatch {
                        path: path.clone(),
                        score: 0,
                        positions: Vec::new(),
                    })
                    .collect(),
                total_files: paths.len() as u64,
                complete,
            };
        }
        let packed = self.packed();
        let total_files = packed.len() as u64;
        let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
        let scan = Scan::new(&packed, &pattern, limit);
        let mut best = scan.on_threads(threads(packed.len()));
        rank(&packed, &mut best);
        best.truncate(limit);
        let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
        let mut buffer = Vec::new();
        let matches = best
            .into_iter()
            .map(|(score, i)| {
                let path = packed.get(i);
                let mut positions = Vec::new();
                let haystack = Utf32Str::new(path, &mut buffer);
                pattern.indices(haystack, &mut matcher, &mut positions);
                positions.sort_unstable();
                positions.dedup();
                FileMatch {
                    path: path.to_owned(),
                    score,
                    positions,
                }
            })
            .collect();
        FindResult {
            matches,
            total_files,
            complete,
        }
    }
}

/// Threads worth starting for `count` paths, at most one per core.
fn threads(count: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    (count / PATHS_PER_THREAD).clamp(1, cores)
}

/// One query's scan of the packed paths, shared by its threads: each
/// takes the next chunk until none is left.
struct Scan<'a> {
    packed: &'a PackedPaths,
    pattern: &'a Pattern,
    needles: Needles,
    needed: CharSet,
    limit: usize,
    next_chunk: AtomicUsize,
    /// Chunks scored rather than skipped, for the tests.
    scored: AtomicUsize,
    /// One more than a score that `limit` results already found all reach
    /// (0: not yet `limit` results in any thread). Only rises.
    bar: AtomicU64,
}

impl<'a> Scan<'a> {
    fn new(packed: &'a PackedPaths, pattern: &'a Pattern, limit: usize) -> Self {
        Self {
            packed,
            pattern,
            needles: Needles::of(pattern),
            needed: CharSet::needed_by(pattern),
            limit,
            next_chunk: AtomicUsize::new(0),
            scored: AtomicUsize::new(0),
            bar: AtomicU64::new(0),
        }
    }

    /// The best `limit` (score, index) of each of `threads` threads (this
    /// one and `threads - 1` started), in no particular order.
    fn on_threads(&self, threads: usize) -> Vec<(u32, usize)> {
        if threads <= 1 {
            return self.best();
        }
        std::thread::scope(|scope| {
            let others: Vec<_> = (1..threads).map(|_| scope.spawn(|| self.best())).collect();
            let mut best = self.best();
            for other in others {
                // A panic in the matcher is the agent's bug: carry it to
                // this thread, where the task's handler reports it.
                best.extend(
                    other
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
            }
            best
        })
    }

    /// This thread's best `limit` (score, index) among the chunks it took,
    /// in no particular order.
    fn best(&self) -> Vec<(u32, usize)> {
        let (packed, limit) = (self.packed, self.limit);
        if limit == 0 {
            return Vec::new();
        }
        let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
        let mut buffer = Vec::new();
        // Keep the best `limit` without sorting everything: once `limit` are
        // kept, a score below the worst of them can never enter (an equal
        // one still can, on a shorter path).
        let mut best: Vec<(u32, usize)> =
            Vec::with_capacity(limit.saturating_mul(2).saturating_add(1).min(packed.len()));
        let mut threshold: Option<u32> = None;
        loop {
            // The bar is read before the chunk is taken: the results it
            // stands for come from chunks taken earlier, whose paths rank
            // before this chunk's at an equal score.
            let bar = self.bar.load(Ordering::SeqCst).checked_sub(1);
            let chunk = self.next_chunk.fetch_add(1, Ordering::SeqCst);
            let Some(summary) = packed.chunks.get(chunk) else {
                break;
            };
            match summary.bound(&self.needles) {
                None => continue,
                Some(bound) if bar.is_some_and(|bar| u64::from(bound) <= bar) => continue,
                Some(_) => {}
            }
            self.scored.fetch_add(1, Ordering::Relaxed);
            if let Some(bar) = bar.and_then(|bar| u32::try_from(bar).ok()) {
                threshold = Some(threshold.map_or(bar, |own| own.max(bar)));
            }
            for i in packed.chunk(chunk) {
                if !packed.chars[i].has_all(self.needed) {
                    continue;
                }
                let haystack = Utf32Str::new(packed.get(i), &mut buffer);
                let Some(score) = self.pattern.score(haystack, &mut matcher) else {
                    continue;
                };
                if threshold.is_some_and(|worst| score < worst) {
                    continue;
                }
                best.push((score, i));
                if best.len() > limit * 2 {
                    rank(packed, &mut best);
                    best.truncate(limit);
                    threshold = best.last().map(|(score, _)| *score);
                }
            }
            if best.len() >= limit {
                rank(packed, &mut best);
                best.truncate(limit);
                if let Some(&(worst, _)) = best.last() {
                    threshold = Some(worst);
                    self.bar.fetch_max(u64::from(worst) + 1, Ordering::SeqCst);
                }
            }
        }
        best
    }
}

/// Best first; ties go to the shorter path, then alphabetical (the packed
/// order), like fzf.
fn rank(packed: &PackedPaths, best: &mut [(u32, usize)]) {
    best.sort_unstable_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| packed.get(a.1).len().cmp(&packed.get(b.1).len()))
            .then_with(|| a.1.cmp(&b.1))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(paths: &[&str]) -> FileIndex {
        let index = FileIndex::default();
        index.replace(paths.iter().map(|p| (*p).to_owned()).collect());
        index
    }

    #[test]
    fn ranks_like_a_fuzzy_finder() {
        let index = index(&[
            "src/main.rs",
            "src/files/mod.rs",
            "docs/manual.md",
            "tests/main_test.rs",
            "agent/src/main.rs",
        ]);
        let result = index.find("main", 10);
        // main.rs twice and main_test.rs; "manual.md" lacks the "i".
        assert_eq!(result.matches.len(), 3);
        assert_eq!(result.matches[0].path, "src/main.rs");
        let result = index.find("fmod", 10);
        assert_eq!(result.matches[0].path, "src/files/mod.rs");
        assert!(!result.matches[0].positions.is_empty());
        assert!(index.find("zzz", 10).matches.is_empty());
        assert_eq!(index.find("", 2).matches.len(), 2);
    }

    #[test]
    fn keeps_current_with_changes() {
        let index = index(&["a/x.rs", "a/y.rs", "b.rs"]);
        index.rename("a", "c");
        assert_eq!(index.find("c/x", 5).matches[0].path, "c/x.rs");
        index.remove("c");
        index.insert("d.rs");
        assert_eq!(index.len(), 2);
        index.rename("d.rs", "e.rs");
        assert_eq!(index.find("e.rs", 5).matches[0].path, "e.rs");
    }

    /// Every match of `query` ranked, the slow way (every path scored, no
    /// character sets, no threshold): what `find` must return the first
    /// `limit` of.
    fn ranked_by_brute_force(index: &FileIndex, query: &str, limit: usize) -> Vec<(String, u32)> {
        let packed = index.packed();
        let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
        let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
        let mut buffer = Vec::new();
        let mut all: Vec<(u32, usize)> = (0..packed.len())
            .filter_map(|i| {
                let haystack = Utf32Str::new(packed.get(i), &mut buffer);
                pattern
                    .score(haystack, &mut matcher)
                    .map(|score| (score, i))
            })
            .collect();
        rank(&packed, &mut all);
        all.truncate(limit);
        all.into_iter()
            .map(|(score, i)| (packed.get(i).to_owned(), score))
            .collect()
    }

    /// `find` returns the best 50 of `query` exactly as scoring every path
    /// would rank them.
    fn assert_finds_what_brute_force_ranks(index: &FileIndex, query: &str) {
        let found: Vec<(String, u32)> = index
            .find(query, 50)
            .matches
            .into_iter()
            .map(|m| (m.path, m.score))
            .collect();
        assert_eq!(found, ranked_by_brute_force(index, query, 50), "{query}");
    }

    /// Paths laid out as the benchmarks' trees are, in several chunks,
    /// with many equal scores whose ties the path length and then the
    /// order decide.
    fn chunked_index() -> FileIndex {
        let paths: Vec<String> = (0..3 * PATHS_PER_THREAD + 100)
            .map(|i| {
                format!(
                    "pkg{:03}/mod{}/file_{i}_{}.rs",
                    i % 500,
                    i % 7,
                    ["alpha", "beta", "Gamma"][i % 3]
                )
            })
            .collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        index(&refs)
    }

    const CHUNKED_QUERIES: [&str; 10] = [
        "f",
        "file",
        "file_4",
        "p1m1f1",
        "beta.rs",
        "gamma",
        "Gamma",
        "m3f",
        "zzzz",
        "!beta file_1",
    ];

    #[test]
    fn chunks_on_several_threads_rank_as_one_scan_would() {
        let index = chunked_index();
        let packed = index.packed();
        for query in CHUNKED_QUERIES {
            assert_finds_what_brute_force_ranks(&index, query);
            // Whatever the machine's cores: one thread and several.
            let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
            for threads in [1, 3, 4] {
                let mut best = Scan::new(&packed, &pattern, 50).on_threads(threads);
                rank(&packed, &mut best);
                best.truncate(50);
                let best: Vec<(String, u32)> = best
                    .into_iter()
                    .map(|(score, i)| (packed.get(i).to_owned(), score))
                    .collect();
                assert_eq!(
                    best,
                    ranked_by_brute_force(&index, query, 50),
                    "{query} on {threads} threads"
                );
            }
        }
    }

    #[test]
    fn a_query_many_paths_match_at_their_best_skips_most_chunks() {
        let index = chunked_index();
        let packed = index.packed();
        let chunks = packed.chunks.len();
        assert!(chunks > 40);
        for query in ["f", "file", "file_4", "gamma", "beta.rs", "zzzz"] {
            let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
            let scan = Scan::new(&packed, &pattern, 50);
            scan.on_threads(2);
            let scored = scan.scored.load(Ordering::Relaxed);
            assert!(scored <= 4, "{query}: {scored} of {chunks} chunks scored");
        }
    }

    #[test]
    fn packed_shortest_first_then_in_order() {
        let index = index(&["bb/x", "a", "ccc", "ab", "b/yy", "aa"]);
        let packed = index.packed();
        let order: Vec<&str> = (0..packed.len()).map(|i| packed.get(i)).collect();
        assert_eq!(order, ["a", "aa", "ab", "ccc", "b/yy", "bb/x"]);
        assert!(index.find("x", 0).matches.is_empty());
    }

    #[test]
    fn character_sets_rule_out_only_paths_that_cannot_match() {
        // Case, accents the matcher folds, punctuation sharing bits, and
        // every atom kind, negation included.
        let index = index(&[
            "src/Main.rs",
            "src/main_test.rs",
            "docs/Café.md",
            "docs/cafe-notes.md",
            "ÉTÉ/summer.txt",
            "a+b/c@d#e.txt",
            "a b/with space.txt",
            "build/out.o",
            "q/x9.rs",
            "Zed/ZZ.toml",
        ]);
        for query in [
            "main",
            "Main",
            "cafe",
            "Café",
            "ete",
            "été",
            "c@d",
            "c#d",
            "a+b",
            "with\\ space",
            "^src",
            "rs$",
            "'test",
            "!test main",
            "!rs",
            "^docs/caf",
            "x9",
            "9x",
            "zz",
            "ZZ",
            "q",
            "@",
            "~",
            "é",
            "É",
            "zzzz",
        ] {
            assert_finds_what_brute_force_ranks(&index, query);
        }
        assert_eq!(
            index.find("cafe", 50).matches.len(),
            2,
            "the accented one too"
        );
    }

    /// The character set packing gives `path`.
    fn set_of(path: &str) -> CharSet {
        ChunkSummary::default().add(path)
    }

    #[test]
    fn a_query_needs_the_characters_of_its_positive_atoms() {
        let needed = |query| {
            CharSet::needed_by(&Pattern::parse(
                query,
                CaseMatching::Smart,
                Normalization::Smart,
            ))
        };
        assert!(set_of("src/main.rs").has_all(needed("MAIN !zz")));
        assert!(!set_of("src/main.rs").has_all(needed("mainx")));
        assert!(
            set_of("Straße/x").has_all(needed("zzz")),
            "non-ASCII: anything"
        );
        assert_eq!(needed("!abc"), CharSet(0));
    }

    #[test]
    fn a_change_after_a_query_is_in_the_next_one() {
        let index = index(&["a.rs", "b.rs"]);
        assert_eq!(index.find("rs", 10).total_files, 2);
        index.insert("c.rs");
        assert_eq!(index.find("c.rs", 10).matches[0].path, "c.rs");
        index.insert("c.rs");
        index.remove("a.rs");
        let result = index.find("rs", 10);
        assert_eq!(result.total_files, 2);
        assert!(result.matches.iter().all(|m| m.path != "a.rs"));
        assert_eq!(index.find("", 10).matches.len(), 2);
    }

    #[test]
    fn limit_keeps_the_best() {
        let paths: Vec<String> = (0..5000)
            .map(|i| format!("dir{}/file{i}.txt", i % 50))
            .collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let index = index(&refs);
        let result = index.find("file499", 3);
        assert_eq!(result.matches.len(), 3);
        assert!(
            result.matches.iter().all(|m| m.path.contains("/file499")),
            "{result:?}"
        );
    }
}
