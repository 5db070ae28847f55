//! Fetch, pull and push with progress. The network side is OmniPanel's own
//! (`transport/`): smart HTTP with credentials from the user's own git
//! credential helpers (never the repository's) or `git.token` for the
//! https hosts it is listed for, each tried once, so a wrong credential
//! fails fast (UNAUTHENTICATED, naming the remote) instead of looping; and
//! ssh through the user's `ssh`. `git.timeout` bounds a dead server; the
//! client going away cancels the transfer at the next progress callback.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use git2::{AutotagOption, BranchType, FetchOptions, PushOptions, RemoteCallbacks, Repository};

use crate::reason::Reason;
use crate::{
    error::{Error, ErrorKind, Result},
    git::{git_error, repo},
};

/// Transfer progress.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Progress {
    /// Objects done.
    pub objects_done: u64,
    /// Objects in all.
    pub objects_total: u64,
    /// Objects indexed.
    pub objects_indexed: u64,
    /// Bytes transferred.
    pub bytes: u64,
    /// The remote's progress text.
    pub message: String,
}

/// A reference changed (or refused) by a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefChange {
    /// Reference.
    pub name: String,
    /// Old id.
    pub old_id: String,
    /// New id.
    pub new_id: String,
    /// Rejection reason.
    pub error: Option<String>,
}

/// How pull integrates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullMode {
    /// Fast-forward only.
    FastForwardOnly,
    /// Merge, leaving conflicts.
    Merge,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// Nothing new.
    UpToDate,
    /// Moved forward.
    FastForwarded,
    /// Merge commit made.
    Merged,
    /// Stopped with conflicts.
    Conflicts(Vec<String>),
}

/// Where a transfer reports progress and learns of cancellation.
pub struct Reporter<'a> {
    /// Called with progress (throttling is the caller's business).
    pub progress: &'a (dyn Fn(Progress) + Sync),
    /// Set when the client went away.
    pub cancelled: Arc<AtomicBool>,
}

/// The transfer's progress callbacks. Credentials are not libgit2's
/// business here: the transports ask for them (`transport/`).
fn callbacks<'a>(reporter: &'a Reporter<'a>) -> RemoteCallbacks<'a> {
    let mut callbacks = RemoteCallbacks::new();
    let cancelled = reporter.cancelled.clone();
    callbacks.transfer_progress(move |stats| {
        (reporter.progress)(Progress {
            objects_done: stats.received_objects() as u64,
            objects_total: stats.total_objects() as u64,
            objects_indexed: stats.indexed_objects() as u64,
            bytes: stats.received_bytes() as u64,
            message: String::new(),
        });
        !cancelled.load(Ordering::Relaxed)
    });
    let cancelled = reporter.cancelled.clone();
    callbacks.sideband_progress(move |text| {
        let message = String::from_utf8_lossy(text).trim().to_owned();
        if !message.is_empty() {
            (reporter.progress)(Progress {
                message,
                ..Progress::default()
            });
        }
        !cancelled.load(Ordering::Relaxed)
    });
    let cancelled = reporter.cancelled.clone();
    callbacks.push_transfer_progress(move |current, total, bytes| {
        (reporter.progress)(Progress {
            objects_done: current as u64,
            objects_total: total as u64,
            objects_indexed: 0,
            bytes: bytes as u64,
            message: String::new(),
        });
        let _ = cancelled.load(Ordering::Relaxed);
    });
    callbacks
}

fn remote_error(remote: &str, what: &str, err: &git2::Error, cancelled: &AtomicBool) -> Error {
    if cancelled.load(Ordering::Relaxed) {
        return Error::new(
            ErrorKind::Aborted,
            format!("{what} from {remote} was cancelled"),
        );
    }
    let error = git_error(&format!("{what} {remote}"), err);
    if error.kind() == ErrorKind::Unauthenticated {
        return Error::new(
            ErrorKind::Unauthenticated,
            format!(
                "{what} {remote}: authentication failed ({}); check your ssh keys (ssh-agent, ~/.ssh/config), your git credential helper, or git.token and git.token_hosts",
                err.message()
            ),
        )
        .with_reason(Reason::GitAuth);
    }
    error
}

/// The remote to use: the given one, the current branch's upstream remote,
/// or "origin".
fn pick_remote(repo: &Repository, given: &str) -> Result<String> {
    if !given.is_empty() {
        return Ok(given.to_owned());
    }
    let from_upstream = repo
        .head()
        .ok()
        .filter(|h| h.is_branch())
        .and_then(|h| h.name().ok().map(str::to_owned))
        .and_then(|name| repo.branch_upstream_remote(&name).ok())
        .and_then(|buf| buf.as_str().ok().map(str::to_owned));
    Ok(from_upstream.unwrap_or_else(|| "origin".to_owned()))
}

fn find_remote<'r>(repo: &'r Repository, name: &str) -> Result<git2::Remote<'r>> {
    repo.find_remote(name).map_err(|_| {
        let known: Vec<String> = repo
            .remotes()
            .map(|r| {
                r.iter()
                    .filter_map(|name| name.ok().flatten())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Error::not_found(format!(
            "no remote named {name:?}; known remotes: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// Fetch a remote; returns the references it updated.
pub fn fetch(
    repo: &Repository,
    remote: &str,
    reporter: &Reporter<'_>,
) -> Result<(String, Vec<RefChange>)> {
    let name = pick_remote(repo, remote)?;
    let mut remote = find_remote(repo, &name)?;
    let updated = std::sync::Mutex::new(Vec::new());
    {
        let mut callbacks = callbacks(reporter);
        callbacks.update_tips(|refname, old, new| {
            crate::sync::lock(&updated).push(RefChange {
                name: refname.to_owned(),
                old_id: old.to_string(),
                new_id: new.to_string(),
                error: None,
            });
            true
        });
        let mut options = FetchOptions::new();
        options
            .remote_callbacks(callbacks)
            .download_tags(AutotagOption::Auto);
        remote
            .fetch::<&str>(&[], Some(&mut options), None)
            .map_err(|e| remote_error(&name, "fetching from", &e, &reporter.cancelled))?;
    }
    Ok((name, crate::sync::into_inner(updated)))
}

/// Fetch the upstream and integrate it.
pub fn pull(
    repo: &mut Repository,
    remote: &str,
    mode: PullMode,
    reporter: &Reporter<'_>,
) -> Result<(PullOutcome, String)> {
    let branch_name = repo
        .head()
        .ok()
        .filter(|h| h.is_branch())
        .and_then(|h| h.shorthand().ok().map(str::to_owned))
        .ok_or_else(|| {
            Error::failed_precondition("HEAD is detached; switch to a branch to pull")
        })?;
    let upstream_name = repo
        .find_branch(&branch_name, BranchType::Local)
        .and_then(|b| b.upstream())
        .ok()
        .and_then(|u| u.name().ok().flatten().map(str::to_owned))
        .ok_or_else(|| {
            Error::failed_precondition(format!(
                "{branch_name} has no upstream; push it with set_upstream, or set one with `git branch -u`"
            ))
        })?;
    let (remote_name, _) = fetch(repo, remote, reporter)?;
    let upstream_id = repo
        .find_branch(&upstream_name, BranchType::Remote)
        .map_err(|e| {
            git_error(
                &format!("cannot find {upstream_name} after fetching {remote_name}"),
                &e,
            )
        })?
        .get()
        .peel_to_commit()
        .map_err(|e| git_error("cannot read the upstream", &e))?
        .id();
    let (analysis, _) = {
        let annotated = repo
            .find_annotated_commit(upstream_id)
            .map_err(|e| git_error("cannot read the upstream", &e))?;
        repo.merge_analysis(&[&annotated])
            .map_err(|e| git_error("cannot compare with the upstream", &e))?
    };
    let head_id = |repo: &Repository| {
        repo.head()
            .ok()
            .and_then(|h| h.target())
            .map(|o| o.to_string())
            .unwrap_or_default()
    };
    if analysis.is_up_to_date() {
        return Ok((PullOutcome::UpToDate, head_id(repo)));
    }
    if analysis.is_fast_forward() {
        repo::checkout(repo, &upstream_id.to_string())?;
        let refname = format!("refs/heads/{branch_name}");
        repo.reference(
            &refname,
            upstream_id,
            true,
            &format!("pull: fast-forward to {upstream_name}"),
        )
        .map_err(|e| git_error("cannot move the branch", &e))?;
        repo.set_head(&refname)
            .map_err(|e| git_error("cannot move HEAD", &e))?;
        return Ok((PullOutcome::FastForwarded, head_id(repo)));
    }
    if mode == PullMode::FastForwardOnly {
        return Err(Error::failed_precondition(format!(
            "{branch_name} and {upstream_name} have diverged; pull in merge mode (or rebase by hand)"
        ))
        .with_reason(Reason::NotFastForward));
    }
    let signature = repo::signature(repo)?;
    let mut checkout = git2::build::CheckoutBuilder::new();
    checkout
        .safe()
        .allow_conflicts(true)
        .conflict_style_merge(true);
    {
        let annotated = repo
            .find_annotated_commit(upstream_id)
            .map_err(|e| git_error("cannot read the upstream", &e))?;
        repo.merge(&[&annotated], None, Some(&mut checkout))
            .map_err(|e| git_error("cannot merge", &e))?;
    }
    let mut index = repo
        .index()
        .map_err(|e| git_error("cannot open the index", &e))?;
    if index.has_conflicts() {
        let conflicts: Vec<String> = index
            .conflicts()
            .map(|c| {
                c.flatten()
                    .filter_map(|c| {
                        c.our
                            .or(c.their)
                            .or(c.ancestor)
                            .map(|e| String::from_utf8_lossy(&e.path).into_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        return Ok((PullOutcome::Conflicts(conflicts), head_id(repo)));
    }
    let tree_id = index
        .write_tree()
        .map_err(|e| git_error("cannot write the tree", &e))?;
    let tree = repo
        .find_tree(tree_id)
        .map_err(|e| git_error("cannot read the tree", &e))?;
    let head_commit = repo
        .head()
        .and_then(|h| h.peel_to_commit())
        .map_err(|e| git_error("cannot read HEAD", &e))?;
    let upstream_commit = repo
        .find_commit(upstream_id)
        .map_err(|e| git_error("cannot read the upstream", &e))?;
    let message = format!("Merge {upstream_name} into {branch_name}");
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        &message,
        &tree,
        &[&head_commit, &upstream_commit],
    )
    .map_err(|e| git_error("cannot commit the merge", &e))?;
    repo.cleanup_state()
        .map_err(|e| git_error("cannot finish the merge", &e))?;
    Ok((PullOutcome::Merged, head_id(repo)))
}

/// Push a branch; returns the remote's per-reference answers.
pub fn push(
    repo: &mut Repository,
    remote: &str,
    branch: &str,
    set_upstream: bool,
    force: bool,
    reporter: &Reporter<'_>,
) -> Result<Vec<RefChange>> {
    let branch = if branch.is_empty() {
        repo.head()
            .ok()
            .filter(|h| h.is_branch())
            .and_then(|h| h.shorthand().ok().map(str::to_owned))
            .ok_or_else(|| {
                Error::failed_precondition("HEAD is detached; name the branch to push")
            })?
    } else {
        branch.to_owned()
    };
    let local = repo
        .find_branch(&branch, BranchType::Local)
        .map_err(|_| Error::not_found(format!("no local branch named {branch:?}")))?;
    let local_tip = local
        .get()
        .target()
        .map(|o| o.to_string())
        .unwrap_or_default();
    let name = pick_remote(repo, remote)?;
    let mut remote = find_remote(repo, &name)?;
    let results = std::sync::Mutex::new(Vec::new());
    {
        let mut callbacks = callbacks(reporter);
        callbacks.push_update_reference(|refname, status| {
            crate::sync::lock(&results).push(RefChange {
                name: refname.to_owned(),
                old_id: String::new(),
                new_id: local_tip.clone(),
                error: status.map(str::to_owned),
            });
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(callbacks);
        let refspec = format!(
            "{}refs/heads/{branch}:refs/heads/{branch}",
            if force { "+" } else { "" }
        );
        remote
            .push(&[refspec.as_str()], Some(&mut options))
            .map_err(|e| remote_error(&name, "pushing to", &e, &reporter.cancelled))?;
    }
    let results = crate::sync::into_inner(results);
    if let Some(rejected) = results.iter().find(|r| r.error.is_some()) {
        return Err(Error::failed_precondition(format!(
            "{name} rejected {}: {}; pull first (or push with force)",
            rejected.name,
            rejected.error.clone().unwrap_or_default()
        ))
        .with_reason(Reason::PushRejected));
    }
    if set_upstream {
        let mut local = repo
            .find_branch(&branch, BranchType::Local)
            .map_err(|e| git_error("cannot read the branch", &e))?;
        local
            .set_upstream(Some(&format!("{name}/{branch}")))
            .map_err(|e| git_error("cannot set the upstream", &e))?;
    }
    Ok(results)
}
