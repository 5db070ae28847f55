//! The backend side of [`GitCommand`]s: the agent calls they make, each
//! reporting through the [`Sink`] as [`crate::core::workspace::git::GitUpdate`]s.
//!
//! Every action that changes the repository sends the status afterwards
//! (from its own answer where the agent gives one, else read again), so
//! the tab never waits for the "repository changed" event to see its own
//! work. Pulls and pushes follow their progress stream in a task of their
//! own, kept in [`TRANSFERS`] by project, so `Cancel` can drop the stream.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex, PoisonError},
};

use omnipanel_client::{
    Client, display,
    proto::v1::{
        CheckoutRequest, CommitRequest, CreateBranchRequest, DiffTarget, GetDiffRequest,
        GetStatusRequest, ListBranchesRequest, PullMode, PullOutcome, PullRequest, PushRequest,
        RefUpdate, StageRequest, UnstageRequest,
    },
};
use tokio::task::AbortHandle;

use super::Sink;
use crate::core::{
    state::Update,
    workspace::git::{
        GitCommand, GitProblem, GitUpdate, ShownDiff, Transfer, TransferKind, explain,
    },
};

/// The pull or push running per project. A process-wide map because a
/// command runs in a task of its own with no handle to the others; the
/// project id keys it, and an entry lives only as long as its transfer.
static TRANSFERS: LazyLock<Mutex<HashMap<String, AbortHandle>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// An agent error for a person, with what to do for the reasons that have
/// an answer.
fn failure(client: &Client, status: tonic::Status) -> String {
    let error = client.error(status);
    explain(error.reason().as_deref(), &error.to_string())
}

/// Run one command; `Ok` carries the line a person reads (may be empty).
pub(super) async fn run(
    client: &Client,
    command: GitCommand,
    sink: &Sink,
) -> Result<String, String> {
    let err = |status: tonic::Status| failure(client, status);
    match command {
        GitCommand::Refresh { project, diff } => {
            refresh(client, &project, sink).await;
            if let Some((path, staged)) = diff {
                read_diff(client, &project, path, staged, sink).await;
            }
            Ok(String::new())
        }
        GitCommand::Diff {
            project,
            path,
            staged,
        } => {
            read_diff(client, &project, path, staged, sink).await;
            Ok(String::new())
        }
        GitCommand::Stage { project, paths } => {
            let all = paths.is_empty();
            let what = files_word(&paths);
            let response = client
                .git()
                .stage(StageRequest {
                    project: project.clone(),
                    paths,
                    all,
                })
                .await
                .map_err(err)?
                .into_inner();
            if let Some(status) = response.status {
                send_status(sink, &project, Ok(status));
            }
            Ok(format!("staged {what}"))
        }
        GitCommand::Unstage { project, paths } => {
            let all = paths.is_empty();
            let what = files_word(&paths);
            let response = client
                .git()
                .unstage(UnstageRequest {
                    project: project.clone(),
                    paths,
                    all,
                })
                .await
                .map_err(err)?
                .into_inner();
            if let Some(status) = response.status {
                send_status(sink, &project, Ok(status));
            }
            Ok(format!("unstaged {what}"))
        }
        GitCommand::Commit { project, message } => {
            let commit = client
                .git()
                .commit(CommitRequest {
                    project: project.clone(),
                    message,
                    amend: false,
                })
                .await
                .map_err(err)?
                .into_inner()
                .commit
                .unwrap_or_default();
            refresh(client, &project, sink).await;
            Ok(format!(
                "committed [{}] {}",
                commit.short_id, commit.summary
            ))
        }
        GitCommand::Checkout { project, branch } => {
            let response = client
                .git()
                .checkout(CheckoutRequest {
                    project: project.clone(),
                    target: branch.clone(),
                })
                .await
                .map_err(err)?
                .into_inner();
            if let Some(status) = response.status {
                send_status(sink, &project, Ok(status));
            }
            refresh_branches(client, &project, sink).await;
            Ok(format!("switched to {branch}"))
        }
        GitCommand::CreateBranch { project, name } => {
            client
                .git()
                .create_branch(CreateBranchRequest {
                    project: project.clone(),
                    name: name.clone(),
                    start_point: String::new(),
                    checkout: true,
                })
                .await
                .map_err(err)?;
            refresh(client, &project, sink).await;
            Ok(format!("created {name} and switched to it"))
        }
        GitCommand::Pull { project } => {
            transfer(client, project, TransferKind::Pull, false, sink).await
        }
        GitCommand::Push {
            project,
            set_upstream,
        } => transfer(client, project, TransferKind::Push, set_upstream, sink).await,
        GitCommand::Cancel { project } => {
            let handle = TRANSFERS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&project);
            if let Some(handle) = handle {
                handle.abort();
            }
            Ok(String::new())
        }
    }
}

/// "a.txt", "2 files" or "everything".
fn files_word(paths: &[String]) -> String {
    match paths {
        [] => "everything".to_owned(),
        [one] => one.clone(),
        many => format!("{} files", many.len()),
    }
}

fn send_status(
    sink: &Sink,
    project: &str,
    status: Result<omnipanel_client::proto::v1::RepoStatus, GitProblem>,
) {
    sink(Update::Git(GitUpdate::Status {
        project: project.to_owned(),
        status: Box::new(status),
    }));
}

/// Read the status and the local branches; a failure becomes the status
/// (shown in place of it), so it needs no notice.
async fn refresh(client: &Client, project: &str, sink: &Sink) {
    let read = client
        .git()
        .get_status(GetStatusRequest {
            project: project.to_owned(),
        })
        .await;
    match read {
        Ok(response) => {
            let status = response.into_inner().status.unwrap_or_default();
            send_status(sink, project, Ok(status));
            refresh_branches(client, project, sink).await;
        }
        Err(status) => {
            let error = client.error(status);
            let reason = error.reason();
            let problem = GitProblem {
                message: explain(reason.as_deref(), &error.to_string()),
                not_a_repository: reason.as_deref() == Some("NOT_A_REPOSITORY"),
            };
            send_status(sink, project, Err(problem));
        }
    }
}

async fn refresh_branches(client: &Client, project: &str, sink: &Sink) {
    let read = client
        .git()
        .list_branches(ListBranchesRequest {
            project: project.to_owned(),
            include_remote: false,
        })
        .await;
    // Without the list the switcher offers only the current branch; the
    // status says what is wrong with the repository, if anything.
    if let Ok(response) = read {
        sink(Update::Git(GitUpdate::Branches {
            project: project.to_owned(),
            branches: response.into_inner().branches,
        }));
    }
}

async fn read_diff(client: &Client, project: &str, path: String, staged: bool, sink: &Sink) {
    let target = if staged {
        DiffTarget::IndexToHead
    } else {
        DiffTarget::WorktreeToIndex
    };
    let read = client
        .git()
        .get_diff(GetDiffRequest {
            project: project.to_owned(),
            target: target.into(),
            paths: vec![path.clone()],
            ..Default::default()
        })
        .await;
    let (file, truncated) = match read {
        Ok(response) => {
            let response = response.into_inner();
            let file = response
                .files
                .into_iter()
                .find(|f| f.new_path == path || f.old_path == path);
            (Ok(file), response.truncated)
        }
        Err(status) => (Err(failure(client, status)), false),
    };
    sink(Update::Git(GitUpdate::Diff {
        project: project.to_owned(),
        diff: Box::new(ShownDiff {
            path,
            staged,
            file,
            truncated,
        }),
    }));
}

/// Pull or push, its progress as updates, in a task `Cancel` can abort;
/// the status afterwards.
async fn transfer(
    client: &Client,
    project: String,
    kind: TransferKind,
    set_upstream: bool,
    sink: &Sink,
) -> Result<String, String> {
    sink(Update::Git(GitUpdate::Transfer(Transfer {
        project: project.clone(),
        kind,
        progress: Default::default(),
    })));
    let task = tokio::spawn(follow(
        client.clone(),
        project.clone(),
        kind,
        set_upstream,
        sink.clone(),
    ));
    TRANSFERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(project.clone(), task.abort_handle());
    let joined = task.await;
    TRANSFERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&project);
    sink(Update::Git(GitUpdate::TransferEnded {
        project: project.clone(),
    }));
    match joined {
        Ok(result) => {
            refresh(client, &project, sink).await;
            result
        }
        // No status read after a cancel: the agent's side of the transfer
        // holds the repository until its next progress callback (or, with
        // a silent server, libgit2's timeout), and the person who cancelled
        // should hear so at once. The repository-changed event brings
        // whatever it changed.
        Err(e) if e.is_cancelled() => Ok(match kind {
            TransferKind::Pull => "pull cancelled".to_owned(),
            TransferKind::Push => {
                "push cancelled (the remote may have received part of it)".to_owned()
            }
        }),
        Err(e) => Err(format!("the {} stopped: {e}", kind.verb().to_lowercase())),
    }
}

async fn follow(
    client: Client,
    project: String,
    kind: TransferKind,
    set_upstream: bool,
    sink: Sink,
) -> Result<String, String> {
    let err = |status: tonic::Status| failure(&client, status);
    let progress = |p: Option<omnipanel_client::proto::v1::TransferProgress>| {
        if let Some(progress) = p {
            sink(Update::Git(GitUpdate::Transfer(Transfer {
                project: project.clone(),
                kind,
                progress,
            })));
        }
    };
    match kind {
        TransferKind::Pull => {
            let mut stream = client
                .git()
                .pull(PullRequest {
                    project: project.clone(),
                    remote: String::new(),
                    mode: PullMode::FastForwardOnly.into(),
                })
                .await
                .map_err(err)?
                .into_inner();
            while let Some(message) = stream.message().await.map_err(err)? {
                progress(message.progress.clone());
                if message.done {
                    return Ok(match message.outcome() {
                        PullOutcome::UpToDate => "already up to date".to_owned(),
                        PullOutcome::FastForwarded | PullOutcome::Merged => {
                            format!("pulled: now at {}", display::short_id(&message.head))
                        }
                        PullOutcome::Conflicts => format!(
                            "the pull stopped with conflicts in {}: resolve them, stage the files and commit",
                            message.conflicts.join(", ")
                        ),
                        PullOutcome::Unspecified => "pulled".to_owned(),
                    });
                }
            }
            Err("the pull ended without a result".to_owned())
        }
        TransferKind::Push => {
            let mut stream = client
                .git()
                .push(PushRequest {
                    project: project.clone(),
                    remote: String::new(),
                    branch: String::new(),
                    set_upstream,
                    force: false,
                })
                .await
                .map_err(err)?
                .into_inner();
            while let Some(message) = stream.message().await.map_err(err)? {
                progress(message.progress.clone());
                if message.done {
                    return pushed(&message.updated);
                }
            }
            Err("the push ended without a result".to_owned())
        }
    }
}

/// A push's outcome from the references the remote updated or rejected.
fn pushed(updated: &[RefUpdate]) -> Result<String, String> {
    let rejected: Vec<String> = updated
        .iter()
        .filter(|r| !r.error.is_empty())
        .map(|r| format!("{} ({})", r.name, r.error))
        .collect();
    if !rejected.is_empty() {
        return Err(explain(
            Some("PUSH_REJECTED"),
            &format!("the remote rejected {}", rejected.join(", ")),
        ));
    }
    if updated.is_empty() {
        Ok("everything up to date".to_owned())
    } else {
        let names: Vec<&str> = updated.iter().map(|r| r.name.as_str()).collect();
        Ok(format!("pushed {}", names.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_ref_fails_the_push_and_says_to_pull() {
        let ok = RefUpdate {
            name: "refs/heads/main".into(),
            ..Default::default()
        };
        assert_eq!(
            pushed(std::slice::from_ref(&ok)),
            Ok("pushed refs/heads/main".into())
        );
        assert_eq!(pushed(&[]), Ok("everything up to date".into()));
        let rejected = RefUpdate {
            name: "refs/heads/dev".into(),
            error: "non-fast-forward".into(),
            ..Default::default()
        };
        let err = pushed(&[ok, rejected]).unwrap_err();
        assert!(err.contains("refs/heads/dev (non-fast-forward)"), "{err}");
        assert!(err.contains("Pull first"), "{err}");
    }

    #[test]
    fn files_are_named_when_few() {
        assert_eq!(files_word(&[]), "everything");
        assert_eq!(files_word(&["a.txt".into()]), "a.txt");
        assert_eq!(files_word(&["a".into(), "b".into()]), "2 files");
    }
}
