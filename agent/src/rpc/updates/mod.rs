//! `omnipanel.v1.UpdateService`: converts between the proto messages and
//! the `updates` domain, streams download progress from its watch channel,
//! and asks the agent to shut down after an install or rollback so
//! `daemon::run` can restart it.

use crate::rpc::status::{OrStatus, to_status};
use std::sync::Arc;

use omnipanel_proto::v1 as pb;
use pb::update_service_server::UpdateService;
use tonic::{Request, Response, Status};

use crate::{
    context::AgentContext,
    rpc::streaming::{ResponseStream, spawn_stream},
};
use omnipanel_core::error::Error;
use omnipanel_core::updates::{CheckOutcome, DownloadState, HistoryEntry, Progress, Release};

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

fn release_to_proto(release: &Release) -> pb::Release {
    pb::Release {
        version: release.version.clone(),
        notes: release.notes.clone(),
        size: release.size,
        url: release.url.clone(),
        sha256: release.sha256.clone(),
    }
}

fn state_to_proto(state: DownloadState) -> pb::DownloadState {
    match state {
        DownloadState::Idle => pb::DownloadState::Unspecified,
        DownloadState::Downloading => pb::DownloadState::Downloading,
        DownloadState::Verifying => pb::DownloadState::Verifying,
        DownloadState::Ready => pb::DownloadState::Ready,
        DownloadState::Failed => pb::DownloadState::Failed,
    }
}

/// Download progress as its proto message (also used for events).
pub fn progress_to_proto(progress: &Progress) -> pb::UpdateProgress {
    pb::UpdateProgress {
        version: progress.version.clone(),
        state: state_to_proto(progress.state).into(),
        received_bytes: progress.received,
        total_bytes: progress.total,
        error: progress
            .error
            .as_ref()
            .map(|e| e.message().to_owned())
            .unwrap_or_default(),
        resumed: progress.resumed,
    }
}

fn check_to_proto(outcome: &CheckOutcome) -> pb::CheckForUpdateResponse {
    pb::CheckForUpdateResponse {
        current_version: outcome.current_version.clone(),
        channel: outcome.channel.clone(),
        update_available: outcome.update_available,
        latest: Some(release_to_proto(&outcome.latest)),
        checked_unix_ms: outcome.checked_ms,
    }
}

fn history_to_proto(entry: HistoryEntry) -> pb::UpdateHistoryEntry {
    pb::UpdateHistoryEntry {
        time_unix_ms: entry.time_ms,
        action: entry.action,
        from_version: entry.from_version,
        to_version: entry.to_version,
        outcome: entry.outcome,
        message: entry.message,
    }
}

#[tonic::async_trait]
impl UpdateService for UpdateApi {
    async fn check_for_update(
        &self,
        _request: Request<pb::CheckForUpdateRequest>,
    ) -> Result<Response<pb::CheckForUpdateResponse>, Status> {
        let outcome = self.ctx.updates.check().await.or_status()?;
        Ok(Response::new(check_to_proto(&outcome)))
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
                    progress: Some(progress_to_proto(&current)),
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
        let (last_check_unix_ms, latest, update_available) = match &status.last_check {
            Some(check) => (
                check.checked_ms,
                Some(release_to_proto(&check.latest)),
                check.update_available,
            ),
            None => (0, None, false),
        };
        Ok(Response::new(pb::GetUpdateStatusResponse {
            current_version: status.current_version,
            channel: status.channel,
            automatic_checks: status.automatic_checks,
            last_check_unix_ms,
            latest,
            update_available,
            download: Some(progress_to_proto(&status.download)),
            ready_version: status.ready_version.unwrap_or_default(),
            rollback_version: status.rollback_version.unwrap_or_default(),
            last_error: status.last_error.unwrap_or_default(),
            history: status.history.into_iter().map(history_to_proto).collect(),
        }))
    }
}
