//! Diffs: working tree against the index, index against HEAD, working tree
//! against HEAD, or one commit against another, as structured hunks and as
//! unified text, binary files flagged, and cut off at a size limit with a
//! truncated flag (the whole-diff statistics are always complete).

use std::fmt::Write as _;

use git2::{Delta, Diff, DiffFormat, DiffOptions, Repository};

use crate::{
    error::{Error, Result},
    git::{git_error, repo::Change},
};

/// What to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiffTarget {
    /// Unstaged changes.
    WorktreeToIndex,
    /// Staged changes.
    IndexToHead,
    /// All uncommitted changes.
    WorktreeToHead,
    /// Between two commits.
    Commits {
        /// Older.
        from: String,
        /// Newer.
        to: String,
    },
}

/// A diff to compute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiffQuery {
    /// What to compare.
    pub target: DiffTarget,
    /// Only these project paths; empty for all.
    pub paths: Vec<String>,
    /// Lines of context around each change.
    pub context_lines: u32,
    /// Most bytes of patch text; 0 for [`DEFAULT_MAX_BYTES`].
    pub max_bytes: u64,
}

/// A line of a hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// '+', '-' or ' '.
    pub origin: char,
    /// Text.
    pub content: String,
    /// Old line number.
    pub old_line: u32,
    /// New line number.
    pub new_line: u32,
}

/// A hunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HunkInfo {
    /// Header.
    pub header: String,
    /// Old start.
    pub old_start: u32,
    /// Old lines.
    pub old_lines: u32,
    /// New start.
    pub new_start: u32,
    /// New lines.
    pub new_lines: u32,
    /// Lines.
    pub lines: Vec<Line>,
}

/// One file's diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDiff {
    /// Old path.
    pub old_path: String,
    /// New path.
    pub new_path: String,
    /// Change.
    pub change: Change,
    /// Binary?
    pub binary: bool,
    /// Additions.
    pub additions: u32,
    /// Deletions.
    pub deletions: u32,
    /// Hunks.
    pub hunks: Vec<HunkInfo>,
}

/// A diff.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiffResult {
    /// Files.
    pub files: Vec<FileDiff>,
    /// Unified text.
    pub patch: String,
    /// Cut short by the size limit.
    pub truncated: bool,
    /// Files changed (whole diff).
    pub files_changed: u32,
    /// Insertions (whole diff).
    pub insertions: u32,
    /// Deletions (whole diff).
    pub deletions: u32,
}

/// Default size limit.
pub const DEFAULT_MAX_BYTES: u64 = 1024 * 1024;
/// Largest size limit.
pub const MAX_BYTES: u64 = 64 * 1024 * 1024;

fn change_of(delta: Delta) -> Change {
    match delta {
        Delta::Added | Delta::Copied => Change::Added,
        Delta::Deleted => Change::Deleted,
        Delta::Renamed => Change::Renamed,
        Delta::Typechange => Change::TypeChanged,
        Delta::Untracked => Change::Untracked,
        Delta::Conflicted => Change::Conflicted,
        _ => Change::Modified,
    }
}

fn tree_of<'r>(repo: &'r Repository, spec: &str) -> Result<git2::Tree<'r>> {
    repo.revparse_single(spec)
        .and_then(|o| o.peel_to_tree())
        .map_err(|e| git_error(&format!("cannot resolve {spec:?}"), &e))
}

/// After a cut, the files the patch did not reach are still listed (with
/// their counts, without hunks): which files changed matters even when
/// their text does not fit.
fn list_remaining_files(diff: &Diff<'_>, result: &mut DiffResult) {
    let path = |f: git2::DiffFile<'_>| {
        f.path()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    // Deltas print in order, one file entry each: the first one not listed
    // is the first the patch did not reach.
    for index in result.files.len()..diff.deltas().len() {
        let Some(delta) = diff.get_delta(index) else {
            continue;
        };
        // Loading the patch is what tells binary content apart.
        let patch = git2::Patch::from_diff(diff, index).ok().flatten();
        let binary = delta.flags().is_binary()
            || patch
                .as_ref()
                .is_some_and(|p| p.delta().flags().is_binary());
        let (additions, deletions) = patch
            .and_then(|patch| patch.line_stats().ok())
            .map(|(_, added, deleted)| (count(added), count(deleted)))
            .unwrap_or_default();
        result.files.push(FileDiff {
            old_path: path(delta.old_file()),
            new_path: path(delta.new_file()),
            change: change_of(delta.status()),
            binary,
            additions,
            deletions,
            hunks: Vec::new(),
        });
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Compute a diff.
pub fn diff(
    repo: &Repository,
    target: &DiffTarget,
    paths: &[String],
    context_lines: u32,
    max_bytes: u64,
) -> Result<DiffResult> {
    if max_bytes > MAX_BYTES {
        return Err(Error::invalid_argument(
            "max_bytes",
            format!("at most {MAX_BYTES}"),
        ));
    }
    let max_bytes = if max_bytes == 0 {
        DEFAULT_MAX_BYTES
    } else {
        max_bytes
    };
    let mut options = DiffOptions::new();
    options.context_lines(if context_lines == 0 {
        3
    } else {
        context_lines.min(1000)
    });
    for (index, path) in paths.iter().enumerate() {
        // git2 panics on a pathspec with a NUL byte (found by the fuzz
        // target `service_requests`); no path has one.
        if path.contains('\0') {
            return Err(Error::invalid_argument(
                format!("paths[{index}]"),
                "the path contains a NUL byte",
            ));
        }
        options.pathspec(path);
    }
    let head_tree = repo.head().ok().and_then(|h| h.peel_to_tree().ok());
    let mut diff: Diff<'_> = match target {
        DiffTarget::WorktreeToIndex => repo.diff_index_to_workdir(None, Some(&mut options)),
        DiffTarget::IndexToHead => {
            repo.diff_tree_to_index(head_tree.as_ref(), None, Some(&mut options))
        }
        DiffTarget::WorktreeToHead => {
            repo.diff_tree_to_workdir_with_index(head_tree.as_ref(), Some(&mut options))
        }
        DiffTarget::Commits { from, to } => {
            if from.is_empty() || to.is_empty() {
                return Err(Error::invalid_argument(
                    "from",
                    "COMMITS needs both from and to",
                ));
            }
            let old = tree_of(repo, from)?;
            let new = tree_of(repo, to)?;
            repo.diff_tree_to_tree(Some(&old), Some(&new), Some(&mut options))
        }
    }
    .map_err(|e| git_error("cannot compute the diff", &e))?;
    let _ = diff.find_similar(None);
    let stats = diff
        .stats()
        .map_err(|e| git_error("cannot count the diff", &e))?;
    let mut result = DiffResult {
        files_changed: u32::try_from(stats.files_changed()).unwrap_or(u32::MAX),
        insertions: u32::try_from(stats.insertions()).unwrap_or(u32::MAX),
        deletions: u32::try_from(stats.deletions()).unwrap_or(u32::MAX),
        ..DiffResult::default()
    };
    let mut current: Option<(String, String)> = None;
    let printed = diff.print(DiffFormat::Patch, |delta, hunk, line| {
        let old_path = delta
            .old_file()
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let new_path = delta
            .new_file()
            .path()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let key = (old_path.clone(), new_path.clone());
        if current.as_ref() != Some(&key) {
            if result.patch.len() as u64 >= max_bytes {
                result.truncated = true;
                return false;
            }
            current = Some(key);
            result.files.push(FileDiff {
                old_path,
                new_path,
                change: change_of(delta.status()),
                binary: delta.flags().is_binary(),
                additions: 0,
                deletions: 0,
                hunks: Vec::new(),
            });
        }
        let content = String::from_utf8_lossy(line.content());
        let origin = line.origin();
        // The text form: every line of libgit2's patch output.
        let prefix = match origin {
            '+' | '-' | ' ' => origin.to_string(),
            _ => String::new(),
        };
        let addition = prefix.len() + content.len();
        if result.patch.len() as u64 + addition as u64 > max_bytes {
            result.truncated = true;
            return false;
        }
        result.patch.push_str(&prefix);
        result.patch.push_str(&content);
        let Some(file) = result.files.last_mut() else {
            return true;
        };
        match origin {
            'B' => file.binary = true,
            'H' => {
                if let Some(hunk) = hunk {
                    file.hunks.push(HunkInfo {
                        header: String::from_utf8_lossy(hunk.header()).trim_end().to_owned(),
                        old_start: hunk.old_start(),
                        old_lines: hunk.old_lines(),
                        new_start: hunk.new_start(),
                        new_lines: hunk.new_lines(),
                        lines: Vec::new(),
                    });
                }
            }
            '+' | '-' | ' ' => {
                if origin == '+' {
                    file.additions += 1;
                } else if origin == '-' {
                    file.deletions += 1;
                }
                if let Some(hunk) = file.hunks.last_mut() {
                    hunk.lines.push(Line {
                        origin,
                        content: content.trim_end_matches(['\n', '\r']).to_owned(),
                        old_line: line.old_lineno().unwrap_or(0),
                        new_line: line.new_lineno().unwrap_or(0),
                    });
                }
            }
            _ => {}
        }
        true
    });
    if let Err(err) = printed
        && !result.truncated
    {
        return Err(git_error("cannot print the diff", &err));
    }
    if result.truncated {
        let _ = writeln!(result.patch, "\n[diff truncated at {max_bytes} bytes]");
        list_remaining_files(&diff, &mut result);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzz target `service_requests`: git2 panicked on it.
    #[test]
    fn a_path_with_a_nul_byte_is_refused_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let paths = vec!["a.txt".to_owned(), "b\0c".to_owned()];
        let err = diff(&repo, &DiffTarget::WorktreeToIndex, &paths, 0, 0).unwrap_err();
        assert_eq!(err.field(), Some("paths[1]"), "{err}");
    }
}
