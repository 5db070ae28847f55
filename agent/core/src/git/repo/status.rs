//! The status of a repository: branch and HEAD, upstream distance, the
//! changed paths sorted into staged, unstaged, untracked and conflicted,
//! the stash count and any operation in progress (merge, rebase...). The
//! changes come in two sides kept apart, so that a status can be answered
//! from the previous one (`git/warm_status.rs`): the index's (staged,
//! conflicted; changes only with HEAD or the index) and the working
//! tree's, path by path, which can be read again at some paths only.

use std::collections::BTreeMap;

use git2::{BranchType, Repository, RepositoryState, Status, StatusOptions, StatusShow};

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

/// What the working tree has at one path, against the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorktreeChange {
    /// Not tracked (and not ignored).
    Untracked,
    /// Tracked and changed this way (deleted, type changed, modified).
    Changed(Change),
}

/// The working tree's side of a status, by path (sorted as git sorts).
pub type Worktree = BTreeMap<String, WorktreeChange>;

/// The index's side of a status: staged changes and conflicts, which only
/// change with HEAD or the index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSide {
    /// Staged changes, in libgit2's order.
    pub staged: Vec<Entry>,
    /// Conflicted paths.
    pub conflicted: Vec<Entry>,
}

/// The status of the repository in full, with nothing kept: the truth
/// the warm status (`git/warm_status.rs`), which answers every caller, is
/// tested against.
#[cfg(test)]
pub fn status(repo: &mut Repository) -> Result<RepoStatus> {
    let (index, worktree) = changes(repo)?;
    let header = header(repo)?;
    Ok(assemble(header, &index, &worktree))
}

/// Every change, on both sides (the full walk).
pub fn changes(repo: &Repository) -> Result<(IndexSide, Worktree)> {
    let mut options = index_side_options();
    options.include_untracked(true).recurse_untracked_dirs(true);
    let statuses = statuses(repo, &mut options)?;
    let mut index = IndexSide::default();
    let mut worktree = Worktree::new();
    for entry in statuses.iter() {
        // A conflict has no other side.
        if add_index_side(&entry, &mut index) {
            add_worktree_side(&entry, &mut worktree);
        }
    }
    Ok((index, worktree))
}

/// The index's side alone (HEAD against the index): all a status reads
/// again when only HEAD or the index moved (`git/warm_status.rs`).
pub fn index_side(repo: &Repository) -> Result<IndexSide> {
    let mut options = index_side_options();
    options.show(StatusShow::Index);
    let mut index = IndexSide::default();
    for entry in statuses(repo, &mut options)?.iter() {
        add_index_side(&entry, &mut index);
    }
    Ok(index)
}

/// How the index's side is compared, the same in a full status and alone:
/// renames found, submodules left out.
fn index_side_options() -> StatusOptions {
    let mut options = StatusOptions::new();
    options.renames_head_to_index(true).exclude_submodules(true);
    options
}

/// libgit2's status with `options`.
fn statuses<'r>(repo: &'r Repository, options: &mut StatusOptions) -> Result<git2::Statuses<'r>> {
    repo.statuses(Some(options))
        .map_err(|e| git_error("cannot read the status", &e))
}

/// The index's side of one status entry, into `index`; `false` when the
/// entry is a conflict, which has no working tree's side.
fn add_index_side(entry: &git2::StatusEntry<'_>, index: &mut IndexSide) -> bool {
    let flags = entry.status();
    if flags.contains(Status::CONFLICTED) {
        index.conflicted.push(Entry {
            path: entry.path().unwrap_or_default().to_owned(),
            old_path: None,
            change: Change::Conflicted,
        });
        return false;
    }
    if let Some(change) = change_in(flags, INDEX_CHANGES) {
        let delta = entry.head_to_index();
        let old_path = (change == Change::Renamed)
            .then(|| {
                delta
                    .as_ref()
                    .and_then(|d| d.old_file().path().map(|p| p.display().to_string()))
            })
            .flatten();
        let new_path = delta
            .and_then(|d| d.new_file().path().map(|p| p.display().to_string()))
            .unwrap_or_else(|| entry.path().unwrap_or_default().to_owned());
        index.staged.push(Entry {
            path: new_path,
            old_path,
            change,
        });
    }
    true
}

/// Up to this many paths, [`worktree_at`] asks libgit2 about each on its
/// own. libgit2 starts its index iterator at a pathspec's literal prefix (a
/// binary search), but only for one matched as a pattern and only at the
/// prefix all pathspecs share: given several paths, or a path taken
/// literally, it walks the whole index comparing every entry with every
/// path (28 ms at a million tracked files for one saved file).
const PATHS_ASKED_ONE_BY_ONE: usize = 32;

/// The working tree's side at `paths` only (each a file, or a folder and
/// everything below it, taken literally), which must be relative to the
/// work tree. Only the folders on the way to them are read, and only the
/// index entries at them.
pub fn worktree_at(repo: &Repository, paths: &[String]) -> Result<Worktree> {
    let mut worktree = Worktree::new();
    if paths.len() <= PATHS_ASKED_ONE_BY_ONE {
        for path in paths {
            worktree_side_at(repo, std::slice::from_ref(path), &mut worktree)?;
        }
    } else {
        worktree_side_at(repo, paths, &mut worktree)?;
    }
    Ok(worktree)
}

/// One libgit2 status of the working tree's side at `paths`, into
/// `worktree`. HEAD against the index is not compared: the caller keeps
/// that side.
fn worktree_side_at(repo: &Repository, paths: &[String], worktree: &mut Worktree) -> Result<()> {
    let mut options = StatusOptions::new();
    options
        .show(StatusShow::Workdir)
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .exclude_submodules(true)
        // A lone plain path means the same as a pattern ("a/b" is a/b and
        // what is below it) and lets libgit2 seek to it.
        .disable_pathspec_match(!matches!(paths, [path] if reads_the_same_as_a_pattern(path)));
    for path in paths {
        options.pathspec(path);
    }
    for entry in statuses(repo, &mut options)?.iter() {
        if !entry.status().contains(Status::CONFLICTED) {
            add_worktree_side(&entry, worktree);
        }
    }
    Ok(())
}

/// Whether libgit2 reads `path` as a pathspec pattern the same as
/// literally: nothing a pattern gives a meaning to (wildcards, escapes, a
/// leading `!` or `:`, spaces it may trim).
fn reads_the_same_as_a_pattern(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with(['!', ':', '#'])
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/+@,=~%".contains(&b))
}

/// The working tree's side of one status entry, under the path the index
/// has (for a staged rename, the new one).
fn add_worktree_side(entry: &git2::StatusEntry<'_>, worktree: &mut Worktree) {
    let flags = entry.status();
    let change = if flags.contains(Status::WT_NEW) {
        WorktreeChange::Untracked
    } else if let Some(change) = change_in(flags, WORKTREE_CHANGES) {
        WorktreeChange::Changed(change)
    } else {
        return;
    };
    let path = entry
        .index_to_workdir()
        .and_then(|d| d.new_file().path().map(|p| p.display().to_string()))
        .unwrap_or_else(|| entry.path().unwrap_or_default().to_owned());
    worktree.insert(path, change);
}

/// The status with both sides of the changes filled in.
pub fn assemble(mut header: RepoStatus, index: &IndexSide, worktree: &Worktree) -> RepoStatus {
    header.staged.clone_from(&index.staged);
    header.conflicted.clone_from(&index.conflicted);
    for (path, change) in worktree {
        let (list, change) = match change {
            WorktreeChange::Untracked => (&mut header.untracked, Change::Untracked),
            WorktreeChange::Changed(change) => (&mut header.unstaged, *change),
        };
        list.push(Entry {
            path: path.clone(),
            old_path: None,
            change,
        });
    }
    header
}

impl RepoStatus {
    /// Whether anything is staged, changed, untracked or conflicted: what
    /// a listing's "dirty" flag says.
    pub fn has_changes(&self) -> bool {
        !(self.staged.is_empty()
            && self.unstaged.is_empty()
            && self.untracked.is_empty()
            && self.conflicted.is_empty())
    }
}

/// Everything but the changes: branch, HEAD, upstream, stashes, the
/// operation in progress.
pub fn header(repo: &mut Repository) -> Result<RepoStatus> {
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
    Ok(RepoStatus {
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
        stash_count: stashes,
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::repo::{fixtures::repo_with_commits, stage, unstage};

    #[test]
    fn a_path_asked_about_is_that_path_and_what_is_below_it_whatever_its_characters() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo_with_commits(dir.path(), 1);
        // Each name beside one that it would match as a pattern, or that
        // shares its prefix.
        let names = [
            "x[1].txt",
            "x1.txt",
            "q?.txt",
            "qq.txt",
            "!neg.txt",
            "neg.txt",
            " lead.txt",
            "lead.txt",
            "a/b/in.txt",
            "a/bc.txt",
            "star*.txt",
            "starry.txt",
        ];
        for name in names {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "new\n").unwrap();
        }
        for (asked, expected) in [
            ("x[1].txt", &["x[1].txt"][..]),
            ("q?.txt", &["q?.txt"]),
            ("!neg.txt", &["!neg.txt"]),
            (" lead.txt", &[" lead.txt"]),
            ("star*.txt", &["star*.txt"]),
            ("a/b", &["a/b/in.txt"]),
            ("a/bc.txt", &["a/bc.txt"]),
            ("file0.txt", &[]),
        ] {
            let found = worktree_at(&repo, &[asked.to_owned()]).unwrap();
            let found: Vec<&str> = found.keys().map(String::as_str).collect();
            assert_eq!(found, expected, "asked about {asked:?}");
        }
        // Several at once (taken literally together) and one by one agree.
        let all: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut together = Worktree::new();
        worktree_side_at(&repo, &all, &mut together).unwrap();
        assert_eq!(together.len(), names.len());
        let mut one_by_one = Worktree::new();
        for path in &all {
            worktree_side_at(&repo, std::slice::from_ref(path), &mut one_by_one).unwrap();
        }
        assert_eq!(one_by_one, together);
    }

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
