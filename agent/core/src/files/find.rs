//! Fuzzy file-name search. Each open project keeps an index of its file
//! paths (ignore rules applied), built by one walk and then kept current by
//! the watcher, so a query never walks the tree: it scores the index with
//! nucleo's matcher (the one Helix uses, ranked like fzf) on the blocking
//! pool.

use std::{
    collections::BTreeSet,
    sync::{
        RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use crate::files::sandbox::RelPath;
use nucleo_matcher::{
    Config, Matcher, Utf32Str,
    pattern::{CaseMatching, Normalization, Pattern},
};

/// The file paths of a project, `/`-separated, relative to its root.
#[derive(Debug, Default)]
pub struct FileIndex {
    paths: RwLock<BTreeSet<String>>,
    ready: AtomicBool,
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
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeSet<String>> {
        crate::sync::write(&self.paths)
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

    /// Score every path against `query`; the best `limit` first. An empty
    /// query lists paths in order. Blocking (CPU-bound).
    pub fn find(&self, query: &str, limit: usize) -> FindResult {
        let paths = self.read();
        let total_files = paths.len() as u64;
        let complete = self.is_ready();
        if query.trim().is_empty() {
            return FindResult {
                matches: paths
                    .iter()
                    .take(limit)
                    .map(|p| FileMatch {
                        path: p.clone(),
                        score: 0,
                        positions: Vec::new(),
                    })
                    .collect(),
                total_files,
                complete,
            };
        }
        let pattern = Pattern::parse(query, CaseMatching::Smart, Normalization::Smart);
        let mut matcher = Matcher::new(Config::DEFAULT.match_paths());
        let mut buffer = Vec::new();
        // Keep the best `limit` (score, path) without sorting everything.
        let mut best: Vec<(u32, &String)> = Vec::with_capacity(limit + 1);
        let mut threshold = 0u32;
        for path in paths.iter() {
            let haystack = Utf32Str::new(path, &mut buffer);
            let Some(score) = pattern.score(haystack, &mut matcher) else {
                continue;
            };
            if best.len() == limit && score <= threshold {
                continue;
            }
            best.push((score, path));
            if best.len() > limit * 2 {
                best.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.len().cmp(&b.1.len())));
                best.truncate(limit);
                threshold = best.last().map_or(0, |(s, _)| *s);
            }
        }
        // Ties go to the shorter path, then alphabetical, like fzf.
        best.sort_unstable_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| a.1.len().cmp(&b.1.len()))
                .then_with(|| a.1.cmp(b.1))
        });
        best.truncate(limit);
        let matches = best
            .into_iter()
            .map(|(score, path)| {
                let mut positions = Vec::new();
                let haystack = Utf32Str::new(path, &mut buffer);
                pattern.indices(haystack, &mut matcher, &mut positions);
                positions.sort_unstable();
                positions.dedup();
                FileMatch {
                    path: path.clone(),
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
