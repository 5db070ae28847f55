//! Local repository operations: status, branches, checkout, history,
//! staging and commits. Each function takes the open repository (on the
//! blocking pool) and returns plain types; paths from clients are checked
//! against the project sandbox first.

use git2::{
    BranchType, CheckoutNotificationType, Oid, Repository, RepositoryState, Sort, Status,
    StatusOptions, build::CheckoutBuilder,
};

use crate::{
    error::{Error, ErrorKind, Result},
    files::OpenProject,
    git::git_error,
};

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

/// A branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchInfo {
    /// Name.
    pub name: String,
    /// Remote-tracking?
    pub remote: bool,
    /// Checked out?
    pub current: bool,
    /// Upstream name.
    pub upstream: Option<String>,
    /// Ahead of upstream.
    pub ahead: u32,
    /// Behind upstream.
    pub behind: u32,
    /// Tip commit.
    pub commit: String,
    /// Tip summary.
    pub summary: String,
    /// Tip time, ms since the epoch.
    pub time_ms: i64,
}

/// A signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Time, ms since the epoch.
    pub time_ms: i64,
}

/// A commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Id.
    pub id: String,
    /// Short id.
    pub short_id: String,
    /// Summary.
    pub summary: String,
    /// Message.
    pub message: String,
    /// Author.
    pub author: Person,
    /// Committer.
    pub committer: Person,
    /// Parents.
    pub parents: Vec<String>,
}

fn person(signature: &git2::Signature<'_>) -> Person {
    Person {
        name: signature.name().unwrap_or_default().to_owned(),
        email: signature.email().unwrap_or_default().to_owned(),
        time_ms: signature.when().seconds() * 1000,
    }
}

/// Describe a commit.
pub fn commit_info(commit: &git2::Commit<'_>) -> CommitInfo {
    let id = commit.id().to_string();
    CommitInfo {
        short_id: id.chars().take(7).collect(),
        id,
        summary: commit
            .summary()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned(),
        message: commit.message().unwrap_or_default().to_owned(),
        author: person(&commit.author()),
        committer: person(&commit.committer()),
        parents: commit.parent_ids().map(|p| p.to_string()).collect(),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
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

fn branch_info(
    repo: &Repository,
    branch: &git2::Branch<'_>,
    kind: BranchType,
    current: Option<&str>,
) -> Option<BranchInfo> {
    let name = branch.name().ok().flatten()?.to_owned();
    let commit = branch.get().peel_to_commit().ok()?;
    let upstream = (kind == BranchType::Local)
        .then(|| branch.upstream().ok())
        .flatten();
    let (upstream_name, ahead, behind) = match upstream {
        Some(up) => {
            let up_name = up.name().ok().flatten().map(str::to_owned);
            let (ahead, behind) = up
                .get()
                .target()
                .and_then(|oid| repo.graph_ahead_behind(commit.id(), oid).ok())
                .unwrap_or((0, 0));
            (up_name, count(ahead), count(behind))
        }
        None => (None, 0, 0),
    };
    Some(BranchInfo {
        current: kind == BranchType::Local && current == Some(name.as_str()),
        remote: kind == BranchType::Remote,
        name,
        upstream: upstream_name,
        ahead,
        behind,
        commit: commit.id().to_string(),
        summary: commit
            .summary()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned(),
        time_ms: commit.time().seconds() * 1000,
    })
}

/// Local (and optionally remote) branches.
pub fn branches(repo: &Repository, include_remote: bool) -> Result<Vec<BranchInfo>> {
    let current = repo
        .head()
        .ok()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().ok().map(str::to_owned));
    let mut out = Vec::new();
    let kinds: &[BranchType] = if include_remote {
        &[BranchType::Local, BranchType::Remote]
    } else {
        &[BranchType::Local]
    };
    for &kind in kinds {
        let branches = repo
            .branches(Some(kind))
            .map_err(|e| git_error("cannot list branches", &e))?;
        for item in branches.flatten() {
            let (branch, kind) = item;
            if let Some(info) = branch_info(repo, &branch, kind, current.as_deref()) {
                if kind == BranchType::Remote && info.name.ends_with("/HEAD") {
                    continue;
                }
                out.push(info);
            }
        }
    }
    Ok(out)
}

fn check_branch_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::invalid_argument("name", "a branch name is required"));
    }
    if !git2::Branch::name_is_valid(name).unwrap_or(false) {
        return Err(Error::invalid_argument(
            "name",
            format!(
                "{name:?} is not a valid branch name (no spaces, '..', '~', '^', ':' or a leading '-')"
            ),
        ));
    }
    Ok(())
}

/// Create a branch.
pub fn create_branch(
    repo: &mut Repository,
    name: &str,
    start_point: &str,
    checkout_it: bool,
) -> Result<BranchInfo> {
    check_branch_name(name)?;
    {
        let target = if start_point.is_empty() {
            repo.head()
                .and_then(|h| h.peel_to_commit())
                .map_err(|e| git_error("cannot create a branch", &e))?
        } else {
            repo.revparse_single(start_point)
                .and_then(|o| o.peel_to_commit())
                .map_err(|e| git_error(&format!("cannot resolve {start_point:?}"), &e))?
        };
        repo.branch(name, &target, false)
            .map_err(|e| git_error(&format!("cannot create branch {name}"), &e))?;
    }
    if checkout_it {
        checkout(repo, name)?;
    }
    let branch = repo
        .find_branch(name, BranchType::Local)
        .map_err(|e| git_error("cannot read the new branch", &e))?;
    let current = if checkout_it { Some(name) } else { None };
    branch_info(repo, &branch, BranchType::Local, current)
        .ok_or_else(|| Error::internal("the new branch cannot be read"))
}

/// Switch to a branch, remote branch or commit. Refuses when local changes
/// would be overwritten, naming the files.
pub fn checkout(repo: &mut Repository, target: &str) -> Result<()> {
    if target.is_empty() {
        return Err(Error::invalid_argument("target", "name a branch or commit"));
    }
    // Resolve what HEAD will point to.
    let (reference, object) = if let Ok(branch) = repo.find_branch(target, BranchType::Local) {
        let name = branch.get().name().ok().map(str::to_owned);
        let object = branch
            .get()
            .peel(git2::ObjectType::Commit)
            .map_err(|e| git_error("cannot read the branch", &e))?;
        (name, object)
    } else if let Ok(remote) = repo.find_branch(target, BranchType::Remote) {
        // A remote branch: create (or reuse) the local tracking branch.
        let local_name = target
            .split_once('/')
            .map_or(target, |(_, rest)| rest)
            .to_owned();
        let commit = remote
            .get()
            .peel_to_commit()
            .map_err(|e| git_error("cannot read the branch", &e))?;
        if repo.find_branch(&local_name, BranchType::Local).is_err() {
            let mut local = repo
                .branch(&local_name, &commit, false)
                .map_err(|e| git_error(&format!("cannot create branch {local_name}"), &e))?;
            local
                .set_upstream(Some(target))
                .map_err(|e| git_error("cannot set the upstream", &e))?;
        }
        let object = commit.into_object();
        (Some(format!("refs/heads/{local_name}")), object)
    } else {
        let object = repo
            .revparse_single(target)
            .and_then(|o| o.peel(git2::ObjectType::Commit))
            .map_err(|e| {
                if e.code() == git2::ErrorCode::NotFound {
                    Error::not_found(format!("no branch, tag or commit named {target:?}"))
                } else {
                    git_error(&format!("cannot resolve {target:?}"), &e)
                }
            })?;
        (None, object)
    };
    let mut conflicts: Vec<String> = Vec::new();
    let result = {
        let mut builder = CheckoutBuilder::new();
        builder
            .safe()
            .notify_on(CheckoutNotificationType::CONFLICT)
            .notify(|_, path, _, _, _| {
                if let Some(path) = path {
                    conflicts.push(path.display().to_string());
                }
                true
            });
        repo.checkout_tree(&object, Some(&mut builder))
    };
    if let Err(err) = result {
        if !conflicts.is_empty() {
            conflicts.sort();
            return Err(Error::failed_precondition(format!(
                "switching to {target} would overwrite local changes in: {}; commit or stash them first",
                conflicts.join(", ")
            ))
            .with_reason("CHECKOUT_CONFLICT"));
        }
        return Err(git_error(&format!("cannot switch to {target}"), &err));
    }
    match reference {
        Some(name) => repo.set_head(&name),
        None => repo.set_head_detached(object.id()),
    }
    .map_err(|e| git_error("cannot move HEAD", &e))
}

/// Delete a local branch; returns the commit it pointed to.
pub fn delete_branch(repo: &mut Repository, name: &str, force: bool) -> Result<String> {
    let mut branch = repo
        .find_branch(name, BranchType::Local)
        .map_err(|_| Error::not_found(format!("no local branch named {name:?}")))?;
    if branch.is_head() {
        return Err(Error::failed_precondition(format!(
            "{name} is checked out; switch to another branch first"
        )));
    }
    let tip = branch
        .get()
        .target()
        .ok_or_else(|| Error::internal("the branch points nowhere"))?;
    if !force {
        let head = repo.head().ok().and_then(|h| h.target());
        let merged = head.is_some_and(|head| {
            head == tip || repo.graph_descendant_of(head, tip).unwrap_or(false)
        });
        if !merged {
            return Err(Error::failed_precondition(format!(
                "{name} is not fully merged into HEAD; delete it with force if you are sure (its tip is {tip})"
            ))
            .with_reason("BRANCH_NOT_MERGED"));
        }
    }
    branch
        .delete()
        .map_err(|e| git_error(&format!("cannot delete {name}"), &e))?;
    Ok(tip.to_string())
}

/// A page of history.
pub fn log(
    repo: &Repository,
    start: &str,
    limit: usize,
    page_token: &str,
    path: Option<&str>,
) -> Result<(Vec<CommitInfo>, String)> {
    let skip: usize = if page_token.is_empty() {
        0
    } else {
        page_token
            .strip_prefix("skip:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                Error::invalid_argument("page_token", "not a token from an earlier GetLog")
            })?
    };
    let mut walk = repo
        .revwalk()
        .map_err(|e| git_error("cannot walk history", &e))?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
        .map_err(|e| git_error("cannot walk history", &e))?;
    let start_oid: Oid = if start.is_empty() {
        match repo.head().ok().and_then(|h| h.target()) {
            Some(oid) => oid,
            None => return Ok((Vec::new(), String::new())),
        }
    } else {
        repo.revparse_single(start)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .map_err(|e| git_error(&format!("cannot resolve {start:?}"), &e))?
    };
    walk.push(start_oid)
        .map_err(|e| git_error("cannot walk history", &e))?;
    let mut matched = 0usize;
    let mut out = Vec::new();
    let mut more = false;
    for oid in walk {
        let oid = oid.map_err(|e| git_error("cannot walk history", &e))?;
        let commit = repo
            .find_commit(oid)
            .map_err(|e| git_error("cannot read a commit", &e))?;
        if let Some(path) = path
            && !touches(repo, &commit, path)?
        {
            continue;
        }
        if matched < skip {
            matched += 1;
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        matched += 1;
        out.push(commit_info(&commit));
    }
    let next = if more {
        format!("skip:{matched}")
    } else {
        String::new()
    };
    Ok((out, next))
}

fn touches(repo: &Repository, commit: &git2::Commit<'_>, path: &str) -> Result<bool> {
    let tree = commit
        .tree()
        .map_err(|e| git_error("cannot read a tree", &e))?;
    let parent_tree = commit.parent(0).ok().and_then(|p| p.tree().ok());
    let mut options = git2::DiffOptions::new();
    options.pathspec(path);
    let diff = repo
        .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), Some(&mut options))
        .map_err(|e| git_error("cannot diff a commit", &e))?;
    Ok(diff.deltas().len() > 0)
}

/// Check client paths against the project and make them relative to the
/// repository's working directory.
pub fn repo_paths(
    repo: &Repository,
    project: &OpenProject,
    paths: &[String],
) -> Result<Vec<String>> {
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::failed_precondition("the repository has no working tree (bare)"))?
        .to_owned();
    let workdir = std::fs::canonicalize(&workdir).unwrap_or(workdir);
    let mut out = Vec::with_capacity(paths.len());
    for (index, raw) in paths.iter().enumerate() {
        let relative = project.check(&format!("paths[{index}]"), raw)?;
        let absolute = project.root().join(relative.as_path());
        let inside = absolute.strip_prefix(&workdir).map_err(|_| {
            Error::invalid_argument(format!("paths[{index}]"), "outside the repository")
        })?;
        out.push(inside.display().to_string());
    }
    Ok(out)
}

/// Stage paths, or everything.
pub fn stage(repo: &mut Repository, paths: &[String], all: bool) -> Result<()> {
    let mut index = repo
        .index()
        .map_err(|e| git_error("cannot open the index", &e))?;
    if all {
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .and_then(|()| index.update_all(["*"], None))
            .map_err(|e| git_error("cannot stage", &e))?;
    } else {
        if paths.is_empty() {
            return Err(Error::invalid_argument(
                "paths",
                "name paths to stage, or pass all",
            ));
        }
        let workdir = repo
            .workdir()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        for path in paths {
            let exists = workdir.join(path).symlink_metadata().is_ok();
            let result = if exists {
                index.add_path(std::path::Path::new(path))
            } else {
                index.remove_path(std::path::Path::new(path))
            };
            result.map_err(|e| git_error(&format!("cannot stage {path}"), &e))?;
        }
    }
    index
        .write()
        .map_err(|e| git_error("cannot write the index", &e))
}

/// Unstage paths, or everything.
pub fn unstage(repo: &mut Repository, paths: &[String], all: bool) -> Result<()> {
    if !all && paths.is_empty() {
        return Err(Error::invalid_argument(
            "paths",
            "name paths to unstage, or pass all",
        ));
    }
    let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    match head {
        Some(commit) => {
            let targets: Vec<String> = if all {
                let mut options = StatusOptions::new();
                options.include_untracked(false);
                let statuses = repo
                    .statuses(Some(&mut options))
                    .map_err(|e| git_error("cannot read the status", &e))?;
                statuses
                    .iter()
                    .filter_map(|s| s.path().ok().map(str::to_owned))
                    .collect()
            } else {
                paths.to_vec()
            };
            if targets.is_empty() {
                return Ok(());
            }
            repo.reset_default(Some(commit.as_object()), targets.iter())
                .map_err(|e| git_error("cannot unstage", &e))
        }
        None => {
            // No commit yet: unstaging means removing from the index.
            let mut index = repo
                .index()
                .map_err(|e| git_error("cannot open the index", &e))?;
            if all {
                index.clear().map_err(|e| git_error("cannot unstage", &e))?;
            } else {
                for path in paths {
                    index
                        .remove_path(std::path::Path::new(path))
                        .map_err(|e| git_error(&format!("cannot unstage {path}"), &e))?;
                }
            }
            index
                .write()
                .map_err(|e| git_error("cannot write the index", &e))
        }
    }
}

/// The user's identity from git config, with a clear error when missing.
pub fn signature(repo: &Repository) -> Result<git2::Signature<'static>> {
    repo.signature().map_err(|_| {
        Error::failed_precondition(
            "git does not know who you are: set it with `git config --global user.name \"Your Name\"` and `git config --global user.email you@example.com`",
        )
        .with_reason("GIT_IDENTITY_MISSING")
    })
}

/// Commit the index.
pub fn commit(repo: &mut Repository, message: &str, amend: bool) -> Result<CommitInfo> {
    if message.trim().is_empty() {
        return Err(Error::invalid_argument(
            "message",
            "a commit message is required",
        ));
    }
    let signature = signature(repo)?;
    // `mergehead_foreach` needs the repository mutably, so the merge heads
    // are read before any object borrows it.
    let merging = repo.state() == RepositoryState::Merge;
    let mut merge_heads = Vec::new();
    if merging {
        repo.mergehead_foreach(|oid| {
            merge_heads.push(*oid);
            true
        })
        .map_err(|e| git_error("cannot read MERGE_HEAD", &e))?;
    }
    let mut index = repo
        .index()
        .map_err(|e| git_error("cannot open the index", &e))?;
    if index.has_conflicts() {
        return Err(Error::failed_precondition(
            "resolve the conflicts (and stage the files) before committing",
        )
        .with_reason("GIT_CONFLICT"));
    }
    let tree_id = index
        .write_tree()
        .map_err(|e| git_error("cannot write the tree", &e))?;
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| git_error("cannot read the tree", &e))?;
    let head = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let id = if amend {
        let head = head.ok_or_else(|| Error::failed_precondition("there is no commit to amend"))?;
        head.amend(
            Some("HEAD"),
            Some(&signature),
            Some(&signature),
            None,
            Some(message),
            Some(&tree),
        )
        .map_err(|e| git_error("cannot amend", &e))?
    } else {
        let mut parents: Vec<git2::Commit<'_>> = head.into_iter().collect();
        for oid in merge_heads {
            let commit = repo
                .find_commit(oid)
                .map_err(|e| git_error("cannot read a merge head", &e))?;
            parents.push(commit);
        }
        if !merging && parents.len() == 1 && parents[0].tree_id() == tree_id {
            return Err(Error::new(
                ErrorKind::FailedPrecondition,
                "nothing to commit: stage changes first",
            )
            .with_reason("NOTHING_TO_COMMIT"));
        }
        if parents.is_empty() && index.is_empty() {
            return Err(
                Error::failed_precondition("nothing to commit: stage files first")
                    .with_reason("NOTHING_TO_COMMIT"),
            );
        }
        let parent_refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let id = repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parent_refs,
            )
            .map_err(|e| git_error("cannot commit", &e))?;
        if merging {
            repo.cleanup_state()
                .map_err(|e| git_error("cannot finish the merge", &e))?;
        }
        id
    };
    let commit = repo
        .find_commit(id)
        .map_err(|e| git_error("cannot read the commit", &e))?;
    Ok(commit_info(&commit))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::error::ErrorKind;

    /// A repository with an identity in its own config and `n` commits,
    /// commit `i` writing `file{i % 2}.txt`.
    fn repo_with_commits(dir: &Path, n: usize) -> Repository {
        let repo = Repository::init(dir).unwrap();
        {
            let mut config = repo.config().unwrap();
            config.set_str("user.name", "Unit Test").unwrap();
            config.set_str("user.email", "unit@example.com").unwrap();
        }
        let mut repo = repo;
        for i in 0..n {
            std::fs::write(dir.join(format!("file{}.txt", i % 2)), format!("{i}\n")).unwrap();
            stage(&mut repo, &[], true).unwrap();
            commit(&mut repo, &format!("commit {i}"), false).unwrap();
        }
        repo
    }

    #[test]
    fn log_pages_follow_their_tokens_and_filter_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo_with_commits(dir.path(), 5);
        let (first, token) = log(&repo, "", 2, "", None).unwrap();
        let summaries: Vec<_> = first.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(summaries, ["commit 4", "commit 3"]);
        let (second, token) = log(&repo, "", 2, &token, None).unwrap();
        assert_eq!(second[0].summary, "commit 2");
        let (last, token) = log(&repo, "", 2, &token, None).unwrap();
        assert_eq!(last.len(), 1);
        assert!(token.is_empty(), "no page after the last");

        let (only_odd, _) = log(&repo, "", 10, "", Some("file1.txt")).unwrap();
        let summaries: Vec<_> = only_odd.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(summaries, ["commit 3", "commit 1"]);

        let bad = log(&repo, "", 2, "page-7", None).unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidArgument);
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

    #[test]
    fn an_unmerged_branch_survives_a_plain_delete() {
        let dir = tempfile::tempdir().unwrap();
        let mut repo = repo_with_commits(dir.path(), 1);
        create_branch(&mut repo, "side", "", true).unwrap();
        std::fs::write(dir.path().join("side.txt"), "side\n").unwrap();
        stage(&mut repo, &[], true).unwrap();
        commit(&mut repo, "side work", false).unwrap();
        let main = repo
            .find_reference("HEAD")
            .ok()
            .and_then(|_| repo.branches(Some(BranchType::Local)).ok())
            .into_iter()
            .flatten()
            .filter_map(|b| b.ok())
            .filter_map(|(b, _)| b.name().ok().flatten().map(str::to_owned))
            .find(|n| n != "side")
            .unwrap();
        checkout(&mut repo, &main).unwrap();
        let refused = delete_branch(&mut repo, "side", false).unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::FailedPrecondition);
        delete_branch(&mut repo, "side", true).unwrap();
    }
}
