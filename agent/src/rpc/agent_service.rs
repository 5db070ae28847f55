//! `omnipanel.v1.AgentService`: validates requests, calls the domain
//! modules (config, events, logs, crash, tokens) and converts the results.

use crate::rpc::status::{IntoStatus, OrStatus};
use std::sync::Arc;

use omnipanel_proto::{PROTOCOL_VERSION, v1 as pb};
use pb::agent_service_server::AgentService;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

use crate::{
    context::{AgentContext, FEATURES},
    events::ServerEvent,
    rpc::{
        access::Granted,
        events::delivery_to_proto,
        streaming::{ResponseStream, spawn_stream},
    },
};
use omnipanel_core::{
    autostart::Autostart,
    config::{SettingChange, SettingView},
    error::Error,
    events::Cursor,
    logs::MAX_TAIL_LINES,
    tokens::{Scope, TokenInfo},
};

/// Lines sent per TailLogs message.
const LOG_BATCH: usize = 500;

/// The AgentService implementation.
#[derive(Debug, Clone)]
pub struct AgentApi {
    ctx: Arc<AgentContext>,
    /// GetInfo's answer is fixed for the agent's lifetime but for the
    /// caller's scope; building it once keeps the most frequent call cheap.
    info: Arc<pb::GetInfoResponse>,
}

impl AgentApi {
    /// Serve `ctx`.
    pub fn new(ctx: Arc<AgentContext>) -> Self {
        let info = Arc::new(pb::GetInfoResponse {
            version: omnipanel_core::version::current().to_owned(),
            protocol_version: PROTOCOL_VERSION,
            pid: std::process::id(),
            start_time_unix_ms: ctx.start_time_ms,
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            socket_path: ctx.paths.socket.display().to_string(),
            tcp_address: ctx.tcp_address.map(|a| a.to_string()).unwrap_or_default(),
            features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
            instance_id: ctx.bus.instance_id(),
            config_path: ctx.paths.config_file.display().to_string(),
            data_dir: ctx.paths.data_dir.display().to_string(),
            log_dir: ctx.paths.log_dir.display().to_string(),
            crash_dir: ctx.paths.crash_dir.display().to_string(),
            previous_run_crashed: ctx.previous_run_crashed,
            caller_scope: pb::Scope::Unspecified.into(),
        });
        Self { ctx, info }
    }
}

fn scope_to_proto(scope: Scope) -> pb::Scope {
    match scope {
        Scope::Read => pb::Scope::Read,
        Scope::Write => pb::Scope::Write,
        Scope::Admin => pb::Scope::Admin,
    }
}

fn scope_from_proto(value: i32) -> Result<Scope, Error> {
    match pb::Scope::try_from(value) {
        Ok(pb::Scope::Read) => Ok(Scope::Read),
        Ok(pb::Scope::Write) => Ok(Scope::Write),
        Ok(pb::Scope::Admin) => Ok(Scope::Admin),
        _ => Err(Error::invalid_argument(
            "scope",
            "choose SCOPE_READ, SCOPE_WRITE or SCOPE_ADMIN",
        )),
    }
}

fn setting_to_proto(view: SettingView) -> pb::Setting {
    pb::Setting {
        key: view.spec.key.to_owned(),
        value: view.value,
        default_value: view.default_value,
        description: view.spec.description.to_owned(),
        restart_required: view.spec.restart_required,
        is_set: view.is_set,
    }
}

fn token_to_proto(info: TokenInfo) -> pb::TokenInfo {
    pb::TokenInfo {
        id: info.id,
        name: info.name,
        scope: scope_to_proto(info.scope).into(),
        created_unix_ms: info.created_ms,
        last_used_unix_ms: info.last_used_ms,
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    async fn get_info(
        &self,
        request: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::GetInfoResponse>, Status> {
        let caller = request
            .extensions()
            .get::<Granted>()
            .map_or(pb::Scope::Unspecified, |g| scope_to_proto(g.0));
        let mut info = pb::GetInfoResponse::clone(&self.info);
        info.caller_scope = caller.into();
        Ok(Response::new(info))
    }

    async fn shutdown(
        &self,
        _request: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        self.ctx.request_shutdown("Shutdown RPC");
        Ok(Response::new(pb::ShutdownResponse {}))
    }

    async fn get_settings(
        &self,
        request: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::GetSettingsResponse>, Status> {
        let keys = request.into_inner().keys;
        let views = self.ctx.settings.describe(&keys).await.or_status()?;
        Ok(Response::new(pb::GetSettingsResponse {
            settings: views.into_iter().map(setting_to_proto).collect(),
            config_path: self.ctx.settings.path().display().to_string(),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        let changes: Vec<SettingChange> = request
            .into_inner()
            .changes
            .into_iter()
            .map(|c| SettingChange {
                key: c.key,
                value: c.value,
                reset: c.reset,
            })
            .collect();
        let views = self.ctx.settings.update(changes).await.or_status()?;
        let restart_required = views.iter().any(|v| v.spec.restart_required);
        let keys: Vec<String> = views.iter().map(|v| v.spec.key.to_owned()).collect();
        tracing::info!(?keys, restart_required, "settings changed");
        self.ctx.bus.publish(ServerEvent::SettingsChanged {
            keys,
            restart_required,
        });
        Ok(Response::new(pb::UpdateSettingsResponse {
            settings: views.into_iter().map(setting_to_proto).collect(),
            restart_required,
        }))
    }

    type WatchEventsStream = ResponseStream<pb::WatchEventsResponse>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let request = request.into_inner();
        let cursor = Cursor {
            after_sequence: request.after_sequence,
            instance_id: request.instance_id,
        };
        let mut subscription = self.ctx.bus.subscribe(cursor, request.topics);
        let instance_id = self.ctx.bus.instance_id();
        let stream = spawn_stream(self.ctx.shutdown_token(), move |tx| async move {
            while let Some(delivery) = subscription.next().await {
                if tx
                    .send(Ok(delivery_to_proto(&delivery, instance_id)))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        Ok(Response::new(stream))
    }

    type TailLogsStream = ResponseStream<pb::TailLogsResponse>;

    async fn tail_logs(
        &self,
        request: Request<pb::TailLogsRequest>,
    ) -> Result<Response<Self::TailLogsStream>, Status> {
        let request = request.into_inner();
        let name = if request.source.is_empty() {
            "agent".to_owned()
        } else {
            request.source
        };
        let lines = match request.lines {
            0 => 100,
            n if n as usize > MAX_TAIL_LINES => {
                return Err(Error::invalid_argument(
                    "lines",
                    format!("at most {MAX_TAIL_LINES} lines can be tailed, {n} were asked"),
                )
                .into_status());
            }
            n => n as usize,
        };
        let source = self.ctx.logs.get(&name).or_status()?;
        let follow = request.follow;
        let reader = source.clone();
        let (tail, receiver) = tokio::task::spawn_blocking(move || reader.tail(lines, follow))
            .await
            .map_err(Error::from)
            .or_status()?
            .map_err(|err| {
                Error::internal(format!("cannot read {}: {err}", source.path().display()))
            })
            .or_status()?;
        let stream = spawn_stream(self.ctx.shutdown_token(), move |tx| async move {
            for chunk in tail.chunks(LOG_BATCH) {
                let batch = pb::TailLogsResponse {
                    lines: chunk.to_vec(),
                    source: name.clone(),
                };
                if tx.send(Ok(batch)).await.is_err() {
                    return;
                }
            }
            let Some(mut receiver) = receiver else {
                return;
            };
            loop {
                let mut lines = Vec::new();
                match receiver.recv().await {
                    Ok(line) => lines.push(line.to_string()),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => lines.push(format!(
                        "[omnipanel: {skipped} lines skipped because this reader fell behind]"
                    )),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                // Send what else is already waiting in one message.
                while lines.len() < LOG_BATCH {
                    match receiver.try_recv() {
                        Ok(line) => lines.push(line.to_string()),
                        Err(_) => break,
                    }
                }
                let batch = pb::TailLogsResponse {
                    lines,
                    source: name.clone(),
                };
                if tx.send(Ok(batch)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn list_crash_reports(
        &self,
        _request: Request<pb::ListCrashReportsRequest>,
    ) -> Result<Response<pb::ListCrashReportsResponse>, Status> {
        let dir = self.ctx.paths.crash_dir.clone();
        let reports =
            tokio::task::spawn_blocking(move || omnipanel_core::crash::list_reports(&dir))
                .await
                .map_err(Error::from)
                .or_status()?
                .map_err(|err| Error::internal(format!("cannot list crash reports: {err}")))
                .or_status()?;
        Ok(Response::new(pb::ListCrashReportsResponse {
            reports: reports
                .into_iter()
                .map(|r| pb::CrashReport {
                    path: r.path.display().to_string(),
                    time_unix_ms: r.time_ms,
                    version: r.version,
                    message: r.message,
                    thread: r.thread,
                    location: r.location,
                })
                .collect(),
        }))
    }

    async fn get_autostart(
        &self,
        _request: Request<pb::GetAutostartRequest>,
    ) -> Result<Response<pb::GetAutostartResponse>, Status> {
        let exe = self.ctx.updates.agent_exe().to_owned();
        let status = tokio::task::spawn_blocking(move || Autostart::from_env(&exe)?.status())
            .await
            .map_err(Error::from)
            .or_status()?
            .or_status()?;
        Ok(Response::new(pb::GetAutostartResponse {
            enabled: status.enabled,
            location: status.location,
            program: status.program,
        }))
    }

    async fn set_autostart(
        &self,
        request: Request<pb::SetAutostartRequest>,
    ) -> Result<Response<pb::SetAutostartResponse>, Status> {
        let enabled = request.into_inner().enabled;
        let exe = self.ctx.updates.agent_exe().to_owned();
        let status = tokio::task::spawn_blocking(move || Autostart::from_env(&exe)?.set(enabled))
            .await
            .map_err(Error::from)
            .or_status()?
            .or_status()?;
        tracing::info!(enabled = status.enabled, location = %status.location, "start at login changed");
        Ok(Response::new(pb::SetAutostartResponse {
            enabled: status.enabled,
            location: status.location,
            program: status.program,
        }))
    }

    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let request = request.into_inner();
        let scope = scope_from_proto(request.scope).or_status()?;
        let (token, info) = self
            .ctx
            .tokens
            .create(&request.name, scope)
            .await
            .or_status()?;
        tracing::info!(id = %info.id, name = %info.name, scope = scope.name(), "token created");
        self.ctx.bus.publish(ServerEvent::TokensChanged {
            token_id: info.id.clone(),
            revoked: false,
        });
        Ok(Response::new(pb::CreateTokenResponse {
            token,
            info: Some(token_to_proto(info)),
        }))
    }

    async fn list_tokens(
        &self,
        _request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let tokens = self.ctx.tokens.list().await.or_status()?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens.into_iter().map(token_to_proto).collect(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let info = self
            .ctx
            .tokens
            .revoke(&request.into_inner().id)
            .await
            .or_status()?;
        tracing::info!(id = %info.id, name = %info.name, "token revoked");
        self.ctx.bus.publish(ServerEvent::TokensChanged {
            token_id: info.id.clone(),
            revoked: true,
        });
        Ok(Response::new(pb::RevokeTokenResponse {
            info: Some(token_to_proto(info)),
        }))
    }
}
