//! `omnipanel.v1.UpdateService`: the thin handler over the `updates`
//! facade (conversions in `convert.rs`); streams download progress from its
//! watch channel,
//! and asks the agent to shut down after an install or rollback so
//! `daemon::run` can restart it.

mod convert;

use crate::rpc::status::{OrStatus, to_status};
use std::sync::Arc;

use omnipanel_proto::v1 as pb;
use pb::update_service_server::UpdateService;
use tonic::{Request, Response, Status};

use crate::{
    context::AgentContext,
    rpc::{
        access,
        convert::IntoProto,
        guard::Guard,
        streaming::{ResponseStream, spawn_stream},
    },
};
use omnipanel_core::access::{Act, ConfirmKind};
use omnipanel_core::error::Error;
use omnipanel_core::updates::DownloadState;

/// The UpdateService implementation.
#[derive(Debug, Clone)]
pub struct UpdateApi {
    ctx: Arc<AgentContext>,
}

impl UpdateApi {
    /// Serve `ctx`.
    pub fn new(ctx: Arc<AgentContext>) -> Self {
        Self { ctx }
    }
}

#[tonic::async_trait]
impl UpdateService for UpdateApi {
    async fn check_for_update(
        &self,
        _request: Request<pb::CheckForUpdateRequest>,
    ) -> Result<Response<pb::CheckForUpdateResponse>, Status> {
        let outcome = self.ctx.updates.check().await.or_status()?;
        Ok(Response::new(outcome.into_proto()))
    }

    type DownloadUpdateStream = ResponseStream<pb::DownloadUpdateResponse>;

    async fn download_update(
        &self,
        _request: Request<pb::DownloadUpdateRequest>,
    ) -> Result<Response<Self::DownloadUpdateStream>, Status> {
        let mut progress = self.ctx.updates.download();
        let stream = spawn_stream(self.ctx.shutdown_token(), |tx| async move {
            loop {
                let current = progress.borrow_and_update().clone();
                if current.state == DownloadState::Failed {
                    let error = current
                        .error
                        .clone()
                        .unwrap_or_else(|| Error::internal("the download failed, saying nothing"));
                    let status = to_status(error);
                    let _ = tx.send(Err(status)).await;
                    return;
                }
                let message = pb::DownloadUpdateResponse {
                    progress: Some((&current).into_proto()),
                };
                if tx.send(Ok(message)).await.is_err() || current.is_final() {
                    return;
                }
                if progress.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn install_update(
        &self,
        request: Request<pb::InstallUpdateRequest>,
    ) -> Result<Response<pb::InstallUpdateResponse>, Status> {
        let caller = access::caller(&request)?;
        let act = Act {
            kind: ConfirmKind::InstallUpdate,
            target: "update".to_owned(),
            summary: "install the downloaded update (the agent restarts)".to_owned(),
            method: "UpdateService/InstallUpdate".to_owned(),
            project: None,
        };
        Guard::new(&self.ctx).confirm(request.metadata(), &caller, act)?;
        let force = request.into_inner().force;
        let (from, to) = self.ctx.updates.install(force).await.or_status()?;
        // The answer goes out while the server drains; then the agent
        // restarts as the new version.
        self.ctx
            .request_shutdown(&format!("installing update {from} -> {to}"));
        Ok(Response::new(pb::InstallUpdateResponse {
            from_version: from,
            to_version: to,
        }))
    }

    async fn rollback(
        &self,
        _request: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        let (from, to) = self.ctx.updates.rollback().await.or_status()?;
        self.ctx
            .request_shutdown(&format!("rolling back {from} -> {to}"));
        Ok(Response::new(pb::RollbackResponse {
            from_version: from,
            to_version: to,
        }))
    }

    async fn get_update_status(
        &self,
        _request: Request<pb::GetUpdateStatusRequest>,
    ) -> Result<Response<pb::GetUpdateStatusResponse>, Status> {
        let status = self.ctx.updates.status().await.or_status()?;
        Ok(Response::new(status.into_proto()))
    }
}
