//! `omnipanel.v1.AgentService`: the thin handler over the agent's
//! administration facade (`AgentAdmin`: settings, tokens, logs, start at
//! login, crash reports), the event bus for WatchEvents, and the context
//! for GetInfo and Shutdown, and client admission (access requests,
//! clients, confirmations) over the `Access` facade. Conversions live in
//! `convert.rs`, for admission `admission.rs`, and for the activity log
//! `audit.rs`.

mod admission;
mod audit;
mod convert;

use crate::rpc::status::OrStatus;
use std::{collections::HashMap, sync::Arc, time::Duration};

use omnipanel_proto::{PROTOCOL_VERSION, v1 as pb};
use pb::agent_service_server::AgentService;
use tonic::{Request, Response, Status};

use crate::{
    context::{AgentContext, FEATURES},
    events::Audience,
    rpc::{
        access::{self, Granted},
        convert::{FromProto, IntoProto, TryFromProto},
        events::delivery_to_proto,
        limits::Ledger,
        streaming::{ResponseStream, spawn_stream},
    },
};
use omnipanel_core::{
    access::{AccessAsk, Approval, RequestState},
    events::{Cursor, Delivery},
    tokens::{GrantTerms, Scope, Scopes},
};

/// Lines sent per TailLogs message.
const LOG_BATCH: usize = 500;

/// The AgentService implementation.
#[derive(Debug, Clone)]
pub struct AgentApi {
    ctx: Arc<AgentContext>,
    /// Open calls per caller, for ListClients.
    ledger: Arc<Ledger>,
    /// GetInfo's answer is fixed for the agent's lifetime but for the
    /// caller's scope; building it once keeps the most frequent call cheap.
    info: Arc<pb::GetInfoResponse>,
}

impl AgentApi {
    /// Serve `ctx`.
    pub fn new(ctx: Arc<AgentContext>, ledger: Arc<Ledger>) -> Self {
        let info = Arc::new(pb::GetInfoResponse {
            version: omnipanel_core::version::current().to_owned(),
            protocol_version: PROTOCOL_VERSION,
            pid: std::process::id(),
            start_time_unix_ms: ctx.start_time_ms,
            os: std::env::consts::OS.to_owned(),
            arch: std::env::consts::ARCH.to_owned(),
            socket_path: ctx.paths.socket.display().to_string(),
            tcp_address: ctx.listening.tcp.map(|a| a.to_string()).unwrap_or_default(),
            gateway_address: ctx
                .listening
                .gateway
                .map(|a| a.to_string())
                .unwrap_or_default(),
            warnings: ctx.listening.warnings.clone(),
            features: FEATURES.iter().map(|f| (*f).to_owned()).collect(),
            instance_id: ctx.bus.instance_id(),
            config_path: ctx.paths.config_file.display().to_string(),
            data_dir: ctx.paths.data_dir.display().to_string(),
            log_dir: ctx.paths.log_dir.display().to_string(),
            crash_dir: ctx.paths.crash_dir.display().to_string(),
            previous_run_crashed: ctx.previous_run_crashed,
            caller_scope: pb::Scope::Unspecified.into(),
            caller_scopes: Vec::new(),
            caller_is_owner: false,
        });
        Self { ctx, ledger, info }
    }
}

#[tonic::async_trait]
impl AgentService for AgentApi {
    type RequestAccessStream = ResponseStream<pb::RequestAccessResponse>;

    async fn request_access(
        &self,
        request: Request<pb::RequestAccessRequest>,
    ) -> Result<Response<Self::RequestAccessStream>, Status> {
        let origin = access::origin(&request);
        let ask = AccessAsk::try_from_proto(request.into_inner()).or_status()?;
        let mut watch = self.ctx.access.request(ask, origin).await.or_status()?;
        // The watch lives in the producer: when the client goes away the
        // producer is dropped and a pending request is withdrawn.
        let stream = spawn_stream(self.ctx.shutdown_token(), move |tx| async move {
            let mut first = true;
            while let Some(update) = watch.next(first).await {
                first = false;
                let done = update.request.state != RequestState::Pending;
                let response = pb::RequestAccessResponse {
                    request: Some(update.request.into_proto()),
                    token: update.token.unwrap_or_default(),
                    client: update.client.map(|info| (info, 0).into_proto()),
                };
                if tx.send(Ok(response)).await.is_err() || done {
                    break;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn list_access_requests(
        &self,
        _request: Request<pb::ListAccessRequestsRequest>,
    ) -> Result<Response<pb::ListAccessRequestsResponse>, Status> {
        Ok(Response::new(pb::ListAccessRequestsResponse {
            requests: self.ctx.access.requests().pending().into_proto(),
        }))
    }

    async fn approve_access(
        &self,
        request: Request<pb::ApproveAccessRequest>,
    ) -> Result<Response<pb::ApproveAccessResponse>, Status> {
        let request = request.into_inner();
        let id = request.id.clone();
        let approval = Approval::try_from_proto(request).or_status()?;
        let info = self
            .ctx
            .access
            .requests()
            .approve(&id, approval)
            .await
            .or_status()?;
        Ok(Response::new(pb::ApproveAccessResponse {
            client: Some((info, 0).into_proto()),
        }))
    }

    async fn deny_access(
        &self,
        request: Request<pb::DenyAccessRequest>,
    ) -> Result<Response<pb::DenyAccessResponse>, Status> {
        let denied = self
            .ctx
            .access
            .requests()
            .deny(&request.into_inner().id)
            .or_status()?;
        Ok(Response::new(pb::DenyAccessResponse {
            request: Some(denied.into_proto()),
        }))
    }

    async fn list_clients(
        &self,
        _request: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        let clients = self.ctx.access.clients().await.or_status()?;
        Ok(Response::new(pb::ListClientsResponse {
            clients: clients
                .into_iter()
                .map(|info| {
                    let open = self.ledger.open_calls_of_token(&info.id);
                    (info, open).into_proto()
                })
                .collect(),
        }))
    }

    async fn revoke_client(
        &self,
        request: Request<pb::RevokeClientRequest>,
    ) -> Result<Response<pb::RevokeClientResponse>, Status> {
        let info = self
            .ctx
            .access
            .revoke(&request.into_inner().id)
            .await
            .or_status()?;
        Ok(Response::new(pb::RevokeClientResponse {
            client: Some((info, 0).into_proto()),
        }))
    }

    async fn list_confirmations(
        &self,
        _request: Request<pb::ListConfirmationsRequest>,
    ) -> Result<Response<pb::ListConfirmationsResponse>, Status> {
        Ok(Response::new(pb::ListConfirmationsResponse {
            confirmations: self.ctx.access.confirmations().pending().into_proto(),
        }))
    }

    async fn answer_confirmation(
        &self,
        request: Request<pb::AnswerConfirmationRequest>,
    ) -> Result<Response<pb::AnswerConfirmationResponse>, Status> {
        let request = request.into_inner();
        let allow_kind_for = (request.allow_kind_for_seconds > 0)
            .then(|| Duration::from_secs(u64::from(request.allow_kind_for_seconds)));
        let answered = self
            .ctx
            .access
            .confirmations()
            .answer(&request.id, request.allow, allow_kind_for)
            .or_status()?;
        Ok(Response::new(pb::AnswerConfirmationResponse {
            confirmation: Some(answered.into_proto()),
        }))
    }

    async fn list_audit(
        &self,
        request: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        let query = audit::AuditQuery::try_from_proto(request.into_inner()).or_status()?;
        let listing = self
            .ctx
            .audit
            .list(query.filter, query.size, query.before_id)
            .await
            .or_status()?;
        Ok(Response::new(listing.into_proto()))
    }

    type WatchAuditStream = ResponseStream<pb::WatchAuditResponse>;

    async fn watch_audit(
        &self,
        request: Request<pb::WatchAuditRequest>,
    ) -> Result<Response<Self::WatchAuditStream>, Status> {
        let filter = omnipanel_core::audit::Filter::from_proto(request.into_inner());
        let mut watch = self.ctx.audit.watch(filter).await.or_status()?;
        let stream = spawn_stream(self.ctx.shutdown_token(), move |tx| async move {
            while let Some(entry) = watch.next().await {
                let response = pb::WatchAuditResponse {
                    entry: Some(entry.into_proto()),
                };
                if tx.send(Ok(response)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(stream))
    }
    async fn get_info(
        &self,
        request: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::GetInfoResponse>, Status> {
        let caller = request.extensions().get::<Granted>().map(|g| &g.0);
        let mut info = pb::GetInfoResponse::clone(&self.info);
        if request.remote_addr().is_some() {
            // Over TCP nobody is the owner: where the agent keeps its
            // files (and so the user's home) is not a remote client's
            // business.
            for path in [
                &mut info.socket_path,
                &mut info.config_path,
                &mut info.data_dir,
                &mut info.log_dir,
                &mut info.crash_dir,
            ] {
                path.clear();
            }
        }
        if let Some(caller) = caller {
            let scopes = caller.scopes();
            info.caller_scope = scopes.level().into_proto().into();
            info.caller_scopes = scopes.into_proto();
            info.caller_is_owner = caller.is_owner();
        }
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
        let caller = access::caller(&request)?;
        let keys = request.into_inner().keys;
        let views = self.ctx.agent.settings(&caller, &keys).await.or_status()?;
        Ok(Response::new(pb::GetSettingsResponse {
            settings: views.into_proto(),
            config_path: self.ctx.agent.settings_path().display().to_string(),
        }))
    }

    async fn update_settings(
        &self,
        request: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        let caller = access::caller(&request)?;
        let changes = request
            .into_inner()
            .changes
            .into_iter()
            .map(FromProto::from_proto)
            .collect();
        let update = self
            .ctx
            .agent
            .update_settings(&caller, changes)
            .await
            .or_status()?;
        Ok(Response::new(update.into_proto()))
    }

    type WatchEventsStream = ResponseStream<pb::WatchEventsResponse>;

    async fn watch_events(
        &self,
        request: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let cursor = Cursor {
            after_sequence: request.after_sequence,
            instance_id: request.instance_id,
        };
        let mut subscription = self.ctx.bus.subscribe(cursor, request.topics);
        let instance_id = self.ctx.bus.instance_id();
        let projects = self.ctx.projects.clone();
        let stream = spawn_stream(self.ctx.shutdown_token(), move |tx| async move {
            // A client's view of each project, decided once per stream.
            let mut seen: HashMap<String, bool> = HashMap::new();
            while let Some(delivery) = subscription.next().await {
                if let Delivery::Event(record) = &delivery
                    && !caller.is_owner()
                {
                    let visible = match record.payload.audience() {
                        Audience::Owner => false,
                        Audience::Readers => true,
                        Audience::Project { id, path } => match seen.get(id) {
                            Some(visible) => *visible,
                            None => {
                                let path = path.map(std::path::Path::new);
                                let visible = projects.visible_to(&caller, id, path).await;
                                seen.insert(id.to_owned(), visible);
                                visible
                            }
                        },
                    };
                    if !visible {
                        continue;
                    }
                }
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
        let tail = self
            .ctx
            .agent
            .tail_logs(&request.source, request.lines, request.follow)
            .await
            .or_status()?;
        let name = tail.source;
        let lines = tail.lines;
        let follow = tail.follow;
        let stream = spawn_stream(self.ctx.shutdown_token(), move |tx| async move {
            for chunk in lines.chunks(LOG_BATCH) {
                let batch = pb::TailLogsResponse {
                    lines: chunk.to_vec(),
                    source: name.clone(),
                };
                if tx.send(Ok(batch)).await.is_err() {
                    return;
                }
            }
            let Some(mut follow) = follow else {
                return;
            };
            while let Some(lines) = follow.next_batch(LOG_BATCH).await {
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
        let reports = self.ctx.agent.crash_reports().await.or_status()?;
        Ok(Response::new(pb::ListCrashReportsResponse {
            reports: reports.into_proto(),
        }))
    }

    async fn get_autostart(
        &self,
        _request: Request<pb::GetAutostartRequest>,
    ) -> Result<Response<pb::GetAutostartResponse>, Status> {
        let status = self.ctx.agent.autostart().await.or_status()?;
        Ok(Response::new(status.into_proto()))
    }

    async fn set_autostart(
        &self,
        request: Request<pb::SetAutostartRequest>,
    ) -> Result<Response<pb::SetAutostartResponse>, Status> {
        let enabled = request.into_inner().enabled;
        let status = self.ctx.agent.set_autostart(enabled).await.or_status()?;
        Ok(Response::new(status.into_proto()))
    }

    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        let request = request.into_inner();
        let scopes = if request.scopes.is_empty() {
            Scopes::of([Scope::try_from_proto(request.scope).or_status()?])
        } else {
            Scopes::try_from_proto(request.scopes.as_slice()).or_status()?
        };
        let terms = GrantTerms {
            scopes,
            allowed_models: request.allowed_models,
            requests_per_minute: request.requests_per_minute,
            ..GrantTerms::default()
        };
        let created = self
            .ctx
            .agent
            .create_token(&request.name, terms)
            .await
            .or_status()?;
        Ok(Response::new(created.into_proto()))
    }

    async fn list_tokens(
        &self,
        _request: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        let tokens = self.ctx.agent.list_tokens().await.or_status()?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens.into_proto(),
        }))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let info = self
            .ctx
            .agent
            .revoke_token(&request.into_inner().id)
            .await
            .or_status()?;
        Ok(Response::new(pb::RevokeTokenResponse {
            info: Some(info.into_proto()),
        }))
    }
}
