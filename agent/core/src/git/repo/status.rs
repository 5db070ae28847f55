//! The status of a repository: branch and HEAD, upstream distance, the
//! changed paths sorted into staged, unstaged, untracked and conflicted,
//! the stash count and any operation in progress (merge, rebase...).

use git2::{BranchType, Repository, RepositoryState, Status, StatusOptions};

use super::count;
use crate::{error::Result, git::git_error};

/// How a path changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// New.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
    /// Moved.
    Renamed,
    /// Kind changed.
    TypeChanged,
    /// Not tracked.
    Untracked,
    /// Conflicted.
    Conflicted,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path.
    pub path: String,
    /// Old path for renames.
    pub old_path: Option<String>,
    /// How.
    pub change: Change,
}

/// Operation in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// None.
    None,
    /// Merge.
    Merge,
    /// Rebase.
    Rebase,
    /// Cherry-pick.
    CherryPick,
    /// Revert.
    Revert,
    /// Bisect.
    Bisect,
    /// `git am`.
    ApplyMailbox,
}

/// A repository's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoStatus {
    /// Branch, when not detached.
    pub branch: Option<String>,
    /// Detached HEAD.
    pub detached: bool,
    /// No commits yet.
    pub empty: bool,
    /// HEAD commit id.
    pub head: Option<String>,
    /// HEAD summary.
    pub head_summary: String,
    /// Upstream name, ahead, behind.
    pub upstream: Option<(String, u32, u32)>,
    /// Staged changes.
    pub staged: Vec<Entry>,
    /// Unstaged changes.
    pub unstaged: Vec<Entry>,
    /// Untracked files.
    pub untracked: Vec<Entry>,
    /// Conflicts.
    pub conflicted: Vec<Entry>,
    /// Stash entries.
    pub stash_count: u32,
    /// Operation in progress.
    pub operation: Operation,
}

/// How a path changed in the index, strongest first: a file both added
/// and modified in the index is "added".
const INDEX_CHANGES: &[(Status, Change)] = &[
    (Status::INDEX_NEW, Change::Added),
    (Status::INDEX_RENAMED, Change::Renamed),
    (Status::INDEX_DELETED, Change::Deleted),
    (Status::INDEX_TYPECHANGE, Change::TypeChanged),
    (Status::INDEX_MODIFIED, Change::Modified),
];

/// How a path changed in the working tree (untracked files are listed
/// apart), strongest first.
const WORKTREE_CHANGES: &[(Status, Change)] = &[
    (Status::WT_DELETED, Change::Deleted),
    (Status::WT_RENAMED, Change::Renamed),
    (Status::WT_TYPECHANGE, Change::TypeChanged),
    (Status::WT_MODIFIED, Change::Modified),
];

fn change_in(flags: Status, table: &[(Status, Change)]) -> Option<Change> {
    table
        .iter()
        .find(|(flag, _)| flags.contains(*flag))
        .map(|(_, change)| *change)
}

/// The status of the repository.
pub fn status(repo: &mut Repository) -> Result<RepoStatus> {
    // `stash_foreach` needs the repository mutably: count before borrowing.
    let mut stashes = 0u32;
    // A repository without a stash reference answers an error; that is zero.
    let _ = repo.stash_foreach(|_, _, _| {
        stashes += 1;
        true
    });
    let head = repo.head().ok();
    let empty = head.is_none() || repo.is_empty().unwrap_or(false);
    let detached = repo.head_detached().unwrap_or(false);
    let branch = match &head {
        Some(h) if h.is_branch() => h.shorthand().ok().map(str::to_owned),
        Some(_) => None,
        None => repo.find_reference("HEAD").ok().and_then(|r| {
            r.symbolic_target()
                .ok()
                .flatten()
                .map(|t| t.trim_start_matches("refs/heads/").to_owned())
        }),
    };
    let head_commit = head.as_ref().and_then(|h| h.peel_to_commit().ok());
    let upstream = match (&branch, &head_commit) {
        (Some(name), Some(commit)) => repo
            .find_branch(name, BranchType::Local)
            .ok()
            .and_then(|b| b.upstream().ok())
            .and_then(|up| {
                let up_name = up.name().ok().flatten()?.to_owned();
                let up_oid = up.get().target()?;
                let (ahead, behind) = repo.graph_ahead_behind(commit.id(), up_oid).ok()?;
                Some((up_name, count(ahead), count(behind)))
            }),
        _ => None,
    };
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .renames_head_to_index(true)
        .exclude_submodules(true);
    let statuses = repo
        .statuses(Some(&mut options))
        .map_err(|e| git_error("cannot read the status", &e))?;
    let mut result = RepoStatus {
        branch,
        detached,
        empty,
        head: head_commit.as_ref().map(|c| c.id().to_string()),
        head_summary: head_commit
            .as_ref()
            .and_then(|c| c.summary().ok().flatten().map(str::to_owned))
            .unwrap_or_default(),
        upstream,
        staged: Vec::new(),
        unstaged: Vec::new(),
        untracked: Vec::new(),
        conflicted: Vec::new(),
        stash_count: 0,
        operation: match repo.state() {
            RepositoryState::Merge => Operation::Merge,
            RepositoryState::Rebase
            | RepositoryState::RebaseInteractive
            | RepositoryState::RebaseMerge => Operation::Rebase,
            RepositoryState::CherryPick | RepositoryState::CherryPickSequence => {
                Operation::CherryPick
            }
            RepositoryState::Revert | RepositoryState::RevertSequence => Operation::Revert,
            RepositoryState::Bisect => Operation::Bisect,
            RepositoryState::ApplyMailbox | RepositoryState::ApplyMailboxOrRebase => {
                Operation::ApplyMailbox
            }
            RepositoryState::Clean => Operation::None,
        },
    };
    for entry in statuses.iter() {
        let flags = entry.status();
        let path = entry.path().unwrap_or_default().to_owned();
        if flags.contains(Status::CONFLICTED) {
            result.conflicted.push(Entry {
                path,
                old_path: None,
                change: Change::Conflicted,
            });
            continue;
        }
        if let Some(change) = change_in(flags, INDEX_CHANGES) {
            let old_path = (change == Change::Renamed)
                .then(|| {
                    entry
                        .head_to_index()
                        .and_then(|d| d.old_file().path().map(|p| p.display().to_string()))
                })
                .flatten();
            let new_path = entry
                .head_to_index()
                .and_then(|d| d.new_file().path().map(|p| p.display().to_string()))
                .unwrap_or_else(|| path.clone());
            result.staged.push(Entry {
                path: new_path,
                old_path,
                change,
            });
        }
        if flags.contains(Status::WT_NEW) {
            result.untracked.push(Entry {
                path: path.clone(),
                old_path: None,
                change: Change::Untracked,
            });
        }
        if let Some(change) = change_in(flags, WORKTREE_CHANGES) {
            result.unstaged.push(Entry {
                path,
                old_path: None,
                change,
            });
        }
    }
    drop(statuses);
    result.stash_count = stashes;
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::repo::{fixtures::repo_with_commits, stage, unstage};

    #[test]
    fn status_sorts_changes_into_staged_unstaged_and_untracked() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = repo_with_commits(dir.path(), 2);
        std::fs::write(dir.path().join("file0.txt"), "changed\n").unwrap();
        std::fs::write(dir.path().join("file1.txt"), "staged\n").unwrap();
        stage(&mut repo, &["file1.txt".to_owned()], false).unwrap();
        std::fs::write(dir.path().join("new.txt"), "new\n").unwrap();
        let status = status(&mut repo).unwrap();
        let names = |entries: &[Entry]| entries.iter().map(|e| e.path.clone()).collect::<Vec<_>>();
        assert_eq!(names(&status.staged), ["file1.txt"]);
        assert_eq!(names(&status.unstaged), ["file0.txt"]);
        assert_eq!(names(&status.untracked), ["new.txt"]);
        assert!(!status.detached && !status.empty);

        unstage(&mut repo, &[], true).unwrap();
        let status = super::status(&mut repo).unwrap();
        assert!(status.staged.is_empty());
        assert_eq!(status.unstaged.len(), 2);
    }
}
