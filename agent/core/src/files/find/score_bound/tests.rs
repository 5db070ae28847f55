//! The bound against nucleo's own scores: never below any path's score,
//! `None` only where no path matches, and equal to the best score where a
//! path earns every bonus the bound allows (else it would skip nothing).

use super::*;
use crate::seeded_random::SeededRandom;
use nucleo_matcher::{
    Config, Matcher, Utf32Str,
    pattern::{CaseMatching, Normalization},
};

fn pattern(query: &str) -> Pattern {
    Pattern::parse(query, CaseMatching::Smart, Normalization::Smart)
}

fn score(query: &str, path: &str) -> Option<u32> {
    let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
    let mut buffer = Vec::new();
    pattern(query).score(Utf32Str::new(path, &mut buffer), &mut matcher)
}

fn summary(paths: &[&str]) -> ChunkSummary {
    let mut summary = ChunkSummary::default();
    for path in paths {
        summary.add(path);
    }
    summary
}

fn bound(query: &str, paths: &[&str]) -> Option<u32> {
    summary(paths).bound(&Needles::of(&pattern(query)))
}

/// Characters of every class, with the letters of `file` and `rs` often
/// enough that queries match.
const PATH_CHARS: &[u8] = b"fileFILErs/_.-0912 aAzZ:x";
const QUERY_CHARS: &[u8] = b"filersFIL/_.0912 az-";

fn random_text(random: &mut SeededRandom, chars: &[u8], len: usize) -> String {
    (0..len)
        .filter_map(|_| random.pick(chars).map(|&c| char::from(c)))
        .collect()
}

/// A query as a user might type one: mostly fuzzy, sometimes with fzf's
/// prefix, suffix, substring or negation marks, sometimes two atoms.
fn random_query(random: &mut SeededRandom) -> String {
    let mut atoms = Vec::new();
    for _ in 0..=random.below(2) {
        let len = 1 + random.below(6);
        let text = random_text(random, QUERY_CHARS, len);
        atoms.push(match random.below(8) {
            0 => format!("^{text}"),
            1 => format!("{text}$"),
            2 => format!("'{text}"),
            3 => format!("!{text}"),
            _ => text,
        });
    }
    atoms.join(" ")
}

#[test]
fn never_below_what_the_matcher_scores() {
    let mut random = SeededRandom::new(0xb0_0d5);
    let mut matched = 0;
    for round in 0..20_000 {
        let paths: Vec<String> = (0..1 + random.below(6))
            .map(|_| {
                let len = 1 + random.below(40);
                random_text(&mut random, PATH_CHARS, len)
            })
            .collect();
        let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
        let query = random_query(&mut random);
        let bound = bound(&query, &paths);
        for path in &paths {
            if let Some(score) = score(&query, path) {
                matched += 1;
                assert!(
                    bound.is_some_and(|bound| bound >= score),
                    "round {round}: {query:?} scores {score} on {path:?}, bound {bound:?} over {paths:?}"
                );
            }
        }
    }
    assert!(matched > 5_000, "too few matches to test: {matched}");
}

#[test]
fn as_high_as_a_path_that_earns_every_bonus() {
    for (query, paths) in [
        ("f", &["src/file.rs", "a/b/c/f"][..]),
        ("file", &["file.rs", "x/file_1.rs"]),
        ("file_4", &["area00/pkg00/mod00/file_4_alpha.rs"]),
        ("gamma", &["a/file_2_gamma.rs", "a/file_3_delta.rs"]),
        ("delta.rs", &["a/file_3_delta.rs"]),
        ("pkg12mod3", &["area00/pkg12/mod30/file_1_beta.rs"]),
        // A run that begins mid-word and is raised by a boundary in it.
        ("ile_rs", &["a/file_rs"]),
        ("ileRs", &["a/fileRs.txt"]),
    ] {
        let best = paths.iter().filter_map(|path| score(query, path)).max();
        assert_eq!(bound(query, paths), best, "{query:?} over {paths:?}");
    }
}

#[test]
fn rules_out_a_chunk_without_the_characters() {
    assert_eq!(bound("zzzz", &["src/main.rs", "lib/file.rs"]), None);
    assert!(bound("!zz main", &["src/main.rs"]).is_some());
}

#[test]
fn anything_outside_ascii_bounds_nothing() {
    assert_eq!(bound("cafe", &["docs/Café.md"]), Some(u32::MAX));
    assert_eq!(bound("é", &["docs/cafe.md"]), Some(u32::MAX));
}

#[test]
fn a_summary_costs_about_four_bytes_a_path() {
    // `find.rs` documents this size per chunk of 1 024 paths.
    let size = size_of::<ChunkSummary>();
    assert!((4 * 1024..4 * 1024 + 64).contains(&size), "{size} bytes");
}
