//! `omnipanel.v1.GitService`: converts requests for the git domain module
//! and streams fetch/pull/push progress. A transfer whose client goes away
//! is cancelled at its next progress callback.

use crate::rpc::status::{IntoStatus, OrStatus};
use std::sync::{Arc, atomic::AtomicBool};

use omnipanel_proto::v1 as pb;
use pb::git_service_server::GitService;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use crate::rpc::streaming::{ResponseStream, spawn_stream};
use omnipanel_core::{
    error::Error,
    files::OpenProject,
    git::{
        Git,
        diff::{self, DiffTarget},
        remote::{self, PullMode, PullOutcome, Reporter},
        repo::{self, BranchInfo, Change, CommitInfo, Entry, Operation, Person, RepoStatus},
    },
    projects::Projects,
};

/// The GitService implementation.
#[derive(Debug, Clone)]
pub struct GitApi {
    git: Arc<Git>,
    projects: Arc<Projects>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl GitApi {
    /// Serve Git on `projects`.
    pub fn new(
        git: Arc<Git>,
        projects: Arc<Projects>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            git,
            projects,
            shutdown,
        }
    }

    async fn project(&self, reference: &str) -> Result<Arc<OpenProject>, Status> {
        self.projects.handle(reference).await.or_status()
    }

    /// Stage or unstage (`change`) paths or everything, then the status.
    async fn change_index(
        &self,
        project: &str,
        paths: Vec<String>,
        all: bool,
        change: fn(&mut git2::Repository, &[String], bool) -> omnipanel_core::error::Result<()>,
    ) -> Result<pb::RepoStatus, Status> {
        let project = self.project(project).await?;
        let status = self
            .git
            .with_repo(&project, move |repo, project| {
                let paths = repo::repo_paths(repo, project, &paths)?;
                change(repo, &paths, all)?;
                repo::status(repo)
            })
            .await
            .or_status()?;
        Ok(status_to_proto(status))
    }
}

fn change(c: Change) -> i32 {
    match c {
        Change::Added => pb::ChangeType::Added,
        Change::Modified => pb::ChangeType::Modified,
        Change::Deleted => pb::ChangeType::Deleted,
        Change::Renamed => pb::ChangeType::Renamed,
        Change::TypeChanged => pb::ChangeType::TypeChanged,
        Change::Untracked => pb::ChangeType::Untracked,
        Change::Conflicted => pb::ChangeType::Conflicted,
    }
    .into()
}

fn entries(list: Vec<Entry>) -> Vec<pb::StatusEntry> {
    list.into_iter()
        .map(|e| pb::StatusEntry {
            path: e.path,
            old_path: e.old_path.unwrap_or_default(),
            change: change(e.change),
        })
        .collect()
}

fn status_to_proto(status: RepoStatus) -> pb::RepoStatus {
    pb::RepoStatus {
        branch: status.branch.unwrap_or_default(),
        detached: status.detached,
        empty: status.empty,
        head: status.head.unwrap_or_default(),
        head_summary: status.head_summary,
        upstream: status.upstream.map(|(name, ahead, behind)| pb::Upstream {
            name,
            ahead,
            behind,
        }),
        staged: entries(status.staged),
        unstaged: entries(status.unstaged),
        untracked: entries(status.untracked),
        conflicted: entries(status.conflicted),
        stash_count: status.stash_count,
        operation: match status.operation {
            Operation::None => pb::RepoOperation::Unspecified,
            Operation::Merge => pb::RepoOperation::Merge,
            Operation::Rebase => pb::RepoOperation::Rebase,
            Operation::CherryPick => pb::RepoOperation::CherryPick,
            Operation::Revert => pb::RepoOperation::Revert,
            Operation::Bisect => pb::RepoOperation::Bisect,
            Operation::ApplyMailbox => pb::RepoOperation::ApplyMailbox,
        }
        .into(),
    }
}

fn branch_to_proto(branch: BranchInfo) -> pb::Branch {
    pb::Branch {
        name: branch.name,
        remote: branch.remote,
        current: branch.current,
        upstream: branch.upstream.unwrap_or_default(),
        ahead: branch.ahead,
        behind: branch.behind,
        commit: branch.commit,
        summary: branch.summary,
        commit_time_unix_ms: branch.time_ms,
    }
}

fn person(p: Person) -> pb::Signature {
    pb::Signature {
        name: p.name,
        email: p.email,
        time_unix_ms: p.time_ms,
    }
}

fn commit_to_proto(commit: CommitInfo) -> pb::Commit {
    pb::Commit {
        id: commit.id,
        short_id: commit.short_id,
        summary: commit.summary,
        message: commit.message,
        author: Some(person(commit.author)),
        committer: Some(person(commit.committer)),
        parents: commit.parents,
    }
}

fn progress_to_proto(p: remote::Progress) -> pb::TransferProgress {
    pb::TransferProgress {
        objects_done: p.objects_done,
        objects_total: p.objects_total,
        objects_indexed: p.objects_indexed,
        bytes: p.bytes,
        message: p.message,
    }
}

fn refs_to_proto(refs: Vec<remote::RefChange>) -> Vec<pb::RefUpdate> {
    refs.into_iter()
        .map(|r| pb::RefUpdate {
            name: r.name,
            old_id: r.old_id,
            new_id: r.new_id,
            error: r.error.unwrap_or_default(),
        })
        .collect()
}

/// Run a transfer on the blocking pool, streaming progress, then the
/// final message built by `finish`.
fn transfer<T, R, F, W>(
    git: Arc<Git>,
    project: Arc<OpenProject>,
    shutdown: tokio_util::sync::CancellationToken,
    work: W,
    progress_message: fn(pb::TransferProgress) -> T,
    finish: F,
) -> ResponseStream<T>
where
    T: Send + 'static,
    R: Send + 'static,
    F: FnOnce(R) -> T + Send + 'static,
    W: FnOnce(
            &mut git2::Repository,
            &Reporter<'_>,
            Option<&str>,
        ) -> omnipanel_core::error::Result<R>
        + Send
        + 'static,
{
    spawn_stream(shutdown, move |tx| async move {
        let cancelled = Arc::new(AtomicBool::new(false));
        let (progress_tx, mut progress_rx) = mpsc::channel::<remote::Progress>(64);
        let flag = cancelled.clone();
        let token = git.settings().token.clone();
        let job = git.with_repo(&project, move |repository, _| {
            // A full channel drops an update: progress is a snapshot, and
            // the network must never wait for the client.
            let report = move |p: remote::Progress| {
                let _ = progress_tx.try_send(p);
            };
            let reporter = Reporter {
                progress: &report,
                cancelled: flag,
            };
            work(repository, &reporter, token.as_deref())
        });
        tokio::pin!(job);
        let outcome = loop {
            tokio::select! {
                result = &mut job => break result,
                Some(p) = progress_rx.recv() => {
                    if tx.send(Ok(progress_message(progress_to_proto(p)))).await.is_err() {
                        cancelled.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }
        };
        while let Ok(p) = progress_rx.try_recv() {
            let _ = tx.send(Ok(progress_message(progress_to_proto(p)))).await;
        }
        let _ = tx
            .send(match outcome {
                Ok(result) => Ok(finish(result)),
                Err(err) => Err(err.into_status()),
            })
            .await;
    })
}

#[tonic::async_trait]
impl GitService for GitApi {
    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let project = self.project(&request.into_inner().project).await?;
        let status = self
            .git
            .with_repo(&project, |repo, _| repo::status(repo))
            .await
            .or_status()?;
        Ok(Response::new(pb::GetStatusResponse {
            status: Some(status_to_proto(status)),
        }))
    }

    async fn list_branches(
        &self,
        request: Request<pb::ListBranchesRequest>,
    ) -> Result<Response<pb::ListBranchesResponse>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        let remote = request.include_remote;
        let branches = self
            .git
            .with_repo(&project, move |repo, _| repo::branches(repo, remote))
            .await
            .or_status()?;
        Ok(Response::new(pb::ListBranchesResponse {
            branches: branches.into_iter().map(branch_to_proto).collect(),
        }))
    }

    async fn create_branch(
        &self,
        request: Request<pb::CreateBranchRequest>,
    ) -> Result<Response<pb::CreateBranchResponse>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        let branch = self
            .git
            .with_repo(&project, move |repo, _| {
                repo::create_branch(repo, &request.name, &request.start_point, request.checkout)
            })
            .await
            .or_status()?;
        Ok(Response::new(pb::CreateBranchResponse {
            branch: Some(branch_to_proto(branch)),
        }))
    }

    async fn checkout(
        &self,
        request: Request<pb::CheckoutRequest>,
    ) -> Result<Response<pb::CheckoutResponse>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        let status = self
            .git
            .with_repo(&project, move |repo, _| {
                repo::checkout(repo, &request.target)?;
                repo::status(repo)
            })
            .await
            .or_status()?;
        Ok(Response::new(pb::CheckoutResponse {
            status: Some(status_to_proto(status)),
        }))
    }

    async fn delete_branch(
        &self,
        request: Request<pb::DeleteBranchRequest>,
    ) -> Result<Response<pb::DeleteBranchResponse>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        let commit = self
            .git
            .with_repo(&project, move |repo, _| {
                repo::delete_branch(repo, &request.name, request.force)
            })
            .await
            .or_status()?;
        Ok(Response::new(pb::DeleteBranchResponse { commit }))
    }

    async fn get_log(
        &self,
        request: Request<pb::GetLogRequest>,
    ) -> Result<Response<pb::GetLogResponse>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        let limit = match request.limit {
            0 => 50,
            n if n > 1000 => {
                return Err(
                    Error::invalid_argument("limit", "at most 1000 commits per page").into_status(),
                );
            }
            n => n as usize,
        };
        let (commits, next) = self
            .git
            .with_repo(&project, move |repo, project| {
                let path = if request.path.is_empty() {
                    None
                } else {
                    repo::repo_paths(repo, project, std::slice::from_ref(&request.path))?
                        .into_iter()
                        .next()
                };
                repo::log(
                    repo,
                    &request.start,
                    limit,
                    &request.page_token,
                    path.as_deref(),
                )
            })
            .await
            .or_status()?;
        Ok(Response::new(pb::GetLogResponse {
            commits: commits.into_iter().map(commit_to_proto).collect(),
            next_page_token: next,
        }))
    }

    async fn get_diff(
        &self,
        request: Request<pb::GetDiffRequest>,
    ) -> Result<Response<pb::GetDiffResponse>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        let target = match pb::DiffTarget::try_from(request.target) {
            Ok(pb::DiffTarget::IndexToHead) => DiffTarget::IndexToHead,
            Ok(pb::DiffTarget::WorktreeToHead) => DiffTarget::WorktreeToHead,
            Ok(pb::DiffTarget::Commits) => DiffTarget::Commits {
                from: request.from.clone(),
                to: request.to.clone(),
            },
            _ => DiffTarget::WorktreeToIndex,
        };
        let result = self
            .git
            .with_repo(&project, move |repo, project| {
                let paths = repo::repo_paths(repo, project, &request.paths)?;
                diff::diff(
                    repo,
                    &target,
                    &paths,
                    request.context_lines,
                    request.max_bytes,
                )
            })
            .await
            .or_status()?;
        Ok(Response::new(pb::GetDiffResponse {
            files: result
                .files
                .into_iter()
                .map(|f| pb::FileDiff {
                    old_path: f.old_path,
                    new_path: f.new_path,
                    change: change(f.change),
                    binary: f.binary,
                    additions: f.additions,
                    deletions: f.deletions,
                    hunks: f
                        .hunks
                        .into_iter()
                        .map(|h| pb::Hunk {
                            header: h.header,
                            old_start: h.old_start,
                            old_lines: h.old_lines,
                            new_start: h.new_start,
                            new_lines: h.new_lines,
                            lines: h
                                .lines
                                .into_iter()
                                .map(|l| pb::DiffLine {
                                    origin: l.origin.to_string(),
                                    content: l.content,
                                    old_line: l.old_line,
                                    new_line: l.new_line,
                                })
                                .collect(),
                        })
                        .collect(),
                })
                .collect(),
            patch: result.patch,
            truncated: result.truncated,
            files_changed: result.files_changed,
            insertions: result.insertions,
            deletions: result.deletions,
        }))
    }

    async fn stage(
        &self,
        request: Request<pb::StageRequest>,
    ) -> Result<Response<pb::StageResponse>, Status> {
        let request = request.into_inner();
        let status = self
            .change_index(&request.project, request.paths, request.all, repo::stage)
            .await?;
        Ok(Response::new(pb::StageResponse {
            status: Some(status),
        }))
    }

    async fn unstage(
        &self,
        request: Request<pb::UnstageRequest>,
    ) -> Result<Response<pb::UnstageResponse>, Status> {
        let request = request.into_inner();
        let status = self
            .change_index(&request.project, request.paths, request.all, repo::unstage)
            .await?;
        Ok(Response::new(pb::UnstageResponse {
            status: Some(status),
        }))
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        let commit = self
            .git
            .with_repo(&project, move |repo, _| {
                repo::commit(repo, &request.message, request.amend)
            })
            .await
            .or_status()?;
        Ok(Response::new(pb::CommitResponse {
            commit: Some(commit_to_proto(commit)),
        }))
    }

    type FetchStream = ResponseStream<pb::FetchResponse>;

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<Self::FetchStream>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        let remote_name = request.remote;
        Ok(Response::new(transfer(
            self.git.clone(),
            project,
            self.shutdown.clone(),
            move |repo, reporter, token| {
                remote::fetch(repo, &remote_name, token, reporter).map(|(_, refs)| refs)
            },
            |progress| pb::FetchResponse {
                progress: Some(progress),
                updated: Vec::new(),
                done: false,
            },
            |refs| pb::FetchResponse {
                progress: None,
                updated: refs_to_proto(refs),
                done: true,
            },
        )))
    }

    type PullStream = ResponseStream<pb::PullResponse>;

    async fn pull(
        &self,
        request: Request<pb::PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        let mode = match pb::PullMode::try_from(request.mode) {
            Ok(pb::PullMode::Merge) => PullMode::Merge,
            _ => PullMode::FastForwardOnly,
        };
        let remote_name = request.remote;
        Ok(Response::new(transfer(
            self.git.clone(),
            project,
            self.shutdown.clone(),
            move |repo, reporter, token| remote::pull(repo, &remote_name, mode, token, reporter),
            |progress| pb::PullResponse {
                progress: Some(progress),
                ..Default::default()
            },
            |(outcome, head)| {
                let (outcome, conflicts) = match outcome {
                    PullOutcome::UpToDate => (pb::PullOutcome::UpToDate, Vec::new()),
                    PullOutcome::FastForwarded => (pb::PullOutcome::FastForwarded, Vec::new()),
                    PullOutcome::Merged => (pb::PullOutcome::Merged, Vec::new()),
                    PullOutcome::Conflicts(paths) => (pb::PullOutcome::Conflicts, paths),
                };
                pb::PullResponse {
                    progress: None,
                    outcome: outcome.into(),
                    conflicts,
                    head,
                    done: true,
                }
            },
        )))
    }

    type PushStream = ResponseStream<pb::PushResponse>;

    async fn push(
        &self,
        request: Request<pb::PushRequest>,
    ) -> Result<Response<Self::PushStream>, Status> {
        let request = request.into_inner();
        let project = self.project(&request.project).await?;
        Ok(Response::new(transfer(
            self.git.clone(),
            project,
            self.shutdown.clone(),
            move |repo, reporter, token| {
                remote::push(
                    repo,
                    &request.remote,
                    &request.branch,
                    request.set_upstream,
                    request.force,
                    token,
                    reporter,
                )
            },
            |progress| pb::PushResponse {
                progress: Some(progress),
                updated: Vec::new(),
                done: false,
            },
            |refs| pb::PushResponse {
                progress: None,
                updated: refs_to_proto(refs),
                done: true,
            },
        )))
    }
}
