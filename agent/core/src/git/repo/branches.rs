//! Branches: listing local and remote-tracking branches with their
//! upstream distance, creating, checking out (a branch, a remote branch
//! through a new tracking branch, or a commit, refusing to overwrite local
//! changes) and deleting (refusing an unmerged branch unless forced).

use git2::{BranchType, CheckoutNotificationType, Repository, build::CheckoutBuilder};

use super::count;
use crate::reason::Reason;
use crate::{
    error::{Error, Result},
    git::git_error,
};

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
        // An existing local branch of that name is checked out as it is
        // (as `git switch` does; its status then says how far it is from
        // the remote): checking out the remote's tree under the local
        // branch's name would leave HEAD and the worktree disagreeing.
        let object = match repo.find_branch(&local_name, BranchType::Local) {
            Ok(local) => local
                .get()
                .peel(git2::ObjectType::Commit)
                .map_err(|e| git_error("cannot read the branch", &e))?,
            Err(_) => {
                let mut local = repo
                    .branch(&local_name, &commit, false)
                    .map_err(|e| git_error(&format!("cannot create branch {local_name}"), &e))?;
                local
                    .set_upstream(Some(target))
                    .map_err(|e| git_error("cannot set the upstream", &e))?;
                commit.into_object()
            }
        };
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
            .with_reason(Reason::CheckoutConflict));
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
            .with_reason(Reason::BranchNotMerged));
        }
    }
    branch
        .delete()
        .map_err(|e| git_error(&format!("cannot delete {name}"), &e))?;
    Ok(tip.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        error::ErrorKind,
        git::repo::{commit, fixtures::repo_with_commits, stage},
    };

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
