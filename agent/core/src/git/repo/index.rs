//! The index and commits: staging and unstaging paths (or everything, also
//! before the first commit), and committing or amending the index, which
//! finishes a merge in progress. Their tests are with the use cases that
//! read the result (status, history, branches).

use git2::{Repository, RepositoryState, StatusOptions};

use super::{CommitInfo, commit_info, signature};
use crate::reason::Reason;
use crate::{
    error::{Error, ErrorKind, Result},
    git::git_error,
};

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
        .with_reason(Reason::GitConflict));
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
            .with_reason(Reason::NothingToCommit));
        }
        if parents.is_empty() && index.is_empty() {
            return Err(
                Error::failed_precondition("nothing to commit: stage files first")
                    .with_reason(Reason::NothingToCommit),
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
