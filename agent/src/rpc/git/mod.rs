//! `omnipanel.v1.GitService`: a thin adapter over the [`Git`] facade
//! (conversions in `convert.rs`) that streams fetch/pull/push progress. A
//! transfer whose client goes away is cancelled at its next progress
//! callback.

pub mod convert;

use std::sync::Arc;

use omnipanel_proto::v1 as pb;
use pb::git_service_server::GitService;
use tonic::{Request, Response, Status};

use crate::rpc::{
    convert::{FromProto, IntoProto},
    guard::{Guard, file_act},
    status::{IntoStatus, OrStatus},
    streaming::{ResponseStream, spawn_stream},
};
use omnipanel_core::{
    access::ConfirmKind,
    files::OpenProject,
    git::{
        Git, LogQuery, PushSpec,
        diff::DiffQuery,
        remote::PullMode,
        transfer::{Transfer, TransferEvent},
    },
    projects::Projects,
};

/// The GitService implementation.
#[derive(Debug, Clone)]
pub struct GitApi {
    git: Arc<Git>,
    projects: Arc<Projects>,
    guard: Guard,
    shutdown: tokio_util::sync::CancellationToken,
}

impl GitApi {
    /// Serve Git on `projects`.
    pub fn new(
        git: Arc<Git>,
        projects: Arc<Projects>,
        guard: Guard,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            git,
            projects,
            guard,
            shutdown,
        }
    }

    /// The open project a request names, once its caller may use it.
    async fn project<T>(
        &self,
        request: &Request<T>,
        reference: &str,
    ) -> Result<Arc<OpenProject>, Status> {
        self.guard.project(request, reference).await?;
        self.projects.handle(reference).await.or_status()
    }

    /// Ask the user before a client other than the owner does `kind` in
    /// `project`.
    async fn confirm<T>(
        &self,
        request: &Request<T>,
        project: &str,
        kind: ConfirmKind,
        target: String,
        summary: String,
        method: &str,
    ) -> Result<(), Status> {
        let caller = crate::rpc::access::caller(request)?;
        if caller.is_owner() {
            return Ok(());
        }
        let root = self.guard.root(&caller, project).await?;
        self.guard.confirm(
            request.metadata(),
            &caller,
            file_act(kind, method, root, target, summary),
        )
    }

    /// Stream a transfer's progress, then its final message (`finish`).
    fn stream<R, T>(
        &self,
        mut transfer: Transfer<R>,
        progress_message: fn(pb::TransferProgress) -> T,
        finish: fn(R) -> T,
    ) -> ResponseStream<T>
    where
        R: Send + 'static,
        T: Send + 'static,
    {
        spawn_stream(self.shutdown.clone(), move |tx| async move {
            while let Some(event) = transfer.next().await {
                let message = match event {
                    TransferEvent::Progress(p) => Ok(progress_message(p.into_proto())),
                    TransferEvent::Done(outcome) => {
                        outcome.map(finish).map_err(IntoStatus::into_status)
                    }
                };
                if tx.send(message).await.is_err() {
                    transfer.cancel();
                }
            }
        })
    }
}

#[tonic::async_trait]
impl GitService for GitApi {
    async fn get_status(
        &self,
        request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let status = self.git.status(&project).await.or_status()?;
        Ok(Response::new(pb::GetStatusResponse {
            status: Some(status.into_proto()),
        }))
    }

    async fn list_branches(
        &self,
        request: Request<pb::ListBranchesRequest>,
    ) -> Result<Response<pb::ListBranchesResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let branches = self
            .git
            .branches(&project, request.include_remote)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListBranchesResponse {
            branches: branches.into_proto(),
        }))
    }

    async fn create_branch(
        &self,
        request: Request<pb::CreateBranchRequest>,
    ) -> Result<Response<pb::CreateBranchResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let branch = self
            .git
            .create_branch(
                &project,
                request.name,
                request.start_point,
                request.checkout,
            )
            .await
            .or_status()?;
        Ok(Response::new(pb::CreateBranchResponse {
            branch: Some(branch.into_proto()),
        }))
    }

    async fn checkout(
        &self,
        request: Request<pb::CheckoutRequest>,
    ) -> Result<Response<pb::CheckoutResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let status = self
            .git
            .checkout(&project, request.target)
            .await
            .or_status()?;
        Ok(Response::new(pb::CheckoutResponse {
            status: Some(status.into_proto()),
        }))
    }

    async fn delete_branch(
        &self,
        request: Request<pb::DeleteBranchRequest>,
    ) -> Result<Response<pb::DeleteBranchResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let ask = request.get_ref();
        if ask.force {
            let summary = format!(
                "force-delete branch {} (unmerged work may be lost)",
                ask.name
            );
            let target = format!("branch={}", ask.name);
            self.confirm(
                &request,
                &ask.project,
                ConfirmKind::ForceDeleteBranch,
                target,
                summary,
                "GitService/DeleteBranch",
            )
            .await?;
        }
        let request = request.into_inner();
        let commit = self
            .git
            .delete_branch(&project, request.name, request.force)
            .await
            .or_status()?;
        Ok(Response::new(pb::DeleteBranchResponse { commit }))
    }

    async fn get_log(
        &self,
        request: Request<pb::GetLogRequest>,
    ) -> Result<Response<pb::GetLogResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let page = self
            .git
            .log(&project, LogQuery::from_proto(request))
            .await
            .or_status()?;
        Ok(Response::new(page.into_proto()))
    }

    async fn get_diff(
        &self,
        request: Request<pb::GetDiffRequest>,
    ) -> Result<Response<pb::GetDiffResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let diff = self
            .git
            .diff(&project, DiffQuery::from_proto(request))
            .await
            .or_status()?;
        Ok(Response::new(diff.into_proto()))
    }

    async fn stage(
        &self,
        request: Request<pb::StageRequest>,
    ) -> Result<Response<pb::StageResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let status = self
            .git
            .stage(&project, request.paths, request.all)
            .await
            .or_status()?;
        Ok(Response::new(pb::StageResponse {
            status: Some(status.into_proto()),
        }))
    }

    async fn unstage(
        &self,
        request: Request<pb::UnstageRequest>,
    ) -> Result<Response<pb::UnstageResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let status = self
            .git
            .unstage(&project, request.paths, request.all)
            .await
            .or_status()?;
        Ok(Response::new(pb::UnstageResponse {
            status: Some(status.into_proto()),
        }))
    }

    async fn commit(
        &self,
        request: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let commit = self
            .git
            .commit(&project, request.message, request.amend)
            .await
            .or_status()?;
        Ok(Response::new(pb::CommitResponse {
            commit: Some(commit.into_proto()),
        }))
    }

    type FetchStream = ResponseStream<pb::FetchResponse>;

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<Self::FetchStream>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let transfer = self.git.fetch(&project, request.remote).await;
        Ok(Response::new(self.stream(
            transfer,
            |progress| pb::FetchResponse {
                progress: Some(progress),
                updated: Vec::new(),
                done: false,
            },
            |refs| pb::FetchResponse {
                progress: None,
                updated: refs.into_proto(),
                done: true,
            },
        )))
    }

    type PullStream = ResponseStream<pb::PullResponse>;

    async fn pull(
        &self,
        request: Request<pb::PullRequest>,
    ) -> Result<Response<Self::PullStream>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let request = request.into_inner();
        let mode = PullMode::from_proto(request.mode());
        let transfer = self.git.pull(&project, request.remote, mode).await;
        Ok(Response::new(self.stream(
            transfer,
            |progress| pb::PullResponse {
                progress: Some(progress),
                ..Default::default()
            },
            IntoProto::into_proto,
        )))
    }

    type PushStream = ResponseStream<pb::PushResponse>;

    async fn push(
        &self,
        request: Request<pb::PushRequest>,
    ) -> Result<Response<Self::PushStream>, Status> {
        let project = self.project(&request, &request.get_ref().project).await?;
        let ask = request.get_ref();
        let remote = if ask.remote.is_empty() {
            "the upstream remote"
        } else {
            ask.remote.as_str()
        };
        let branch = if ask.branch.is_empty() {
            "the current branch"
        } else {
            ask.branch.as_str()
        };
        let (kind, verb) = if ask.force {
            (ConfirmKind::ForcePush, "force push")
        } else {
            (ConfirmKind::Push, "push")
        };
        let summary = format!("{verb} {branch} to {remote}");
        let target = format!(
            "remote={} branch={} force={}",
            ask.remote, ask.branch, ask.force
        );
        self.confirm(
            &request,
            &ask.project,
            kind,
            target,
            summary,
            "GitService/Push",
        )
        .await?;
        let request = request.into_inner();
        let transfer = self.git.push(&project, PushSpec::from_proto(request)).await;
        Ok(Response::new(self.stream(
            transfer,
            |progress| pb::PushResponse {
                progress: Some(progress),
                updated: Vec::new(),
                done: false,
            },
            |refs| pb::PushResponse {
                progress: None,
                updated: refs.into_proto(),
                done: true,
            },
        )))
    }
}
