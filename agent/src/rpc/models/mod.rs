//! `omnipanel.v1.ModelService`: the thin handler over the Ollama domain
//! facade (conversions in `convert.rs`); streams pull progress and
//! chat/generate pieces. A chat or generate stream whose client goes away drops the
//! upstream request, which makes Ollama stop generating; one that fails
//! half-way ends with the domain's error, mapped by `to_status` like any
//! other. A chat that names a conversation sends its history first and
//! stores the exchange through the conversation store (see
//! `omnipanel_core::conversations`), the reply also when it ends early.

mod convert;

use crate::rpc::status::OrStatus;
use std::sync::Arc;

use omnipanel_proto::v1 as pb;
use pb::model_service_server::ModelService;
use tonic::{Request, Response, Status};

use crate::rpc::{
    access,
    convert::{FromProto, IntoProto},
    guard::Guard,
    status::to_status,
    streaming::{ResponseStream, spawn_stream},
};
use omnipanel_core::{
    access::{Act, ConfirmKind},
    conversations::{Conversations, ReplyRecorder},
    error::Error,
    ollama::{
        EmbedOptions, GenerateParams, GenerationOptions, NewProvider, Ollama, ReplyStream, Target,
        supervisor::ServerStatus,
    },
    reason::Reason,
    tokens::Caller,
};

/// The ModelService implementation.
#[derive(Debug, Clone)]
pub struct ModelApi {
    ollama: Arc<Ollama>,
    conversations: Arc<Conversations>,
    guard: Guard,
    shutdown: tokio_util::sync::CancellationToken,
}

impl ModelApi {
    /// Serve `ollama`; streams end on `shutdown`.
    pub fn new(
        ollama: Arc<Ollama>,
        conversations: Arc<Conversations>,
        guard: Guard,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            ollama,
            conversations,
            guard,
            shutdown,
        }
    }

    /// A request naming a project (for its preferred model) goes on only
    /// if the caller may use that project, like any project RPC.
    async fn may_use_project<T>(&self, request: &Request<T>, project: &str) -> Result<(), Status> {
        if !project.is_empty() {
            self.guard.project(request, project).await?;
        }
        Ok(())
    }

    /// A token limited to some models (`allowed_models`) may infer only
    /// with those: the request is resolved as it would be served and
    /// refused with MODEL_NOT_ALLOWED otherwise, as the gateway does.
    async fn may_use_model(&self, caller: &Caller, target: &Target) -> Result<(), Status> {
        let Caller::Token(grant) = caller else {
            return Ok(());
        };
        if grant.allowed_models.is_empty() {
            return Ok(());
        }
        let resolved = self.ollama.resolve(target).await.or_status()?;
        if grant.allows_model(&resolved.provider, &resolved.model) {
            return Ok(());
        }
        Err(to_status(
            Error::permission_denied(format!(
                "this token may not use {}/{}; it may use: {}",
                resolved.provider,
                resolved.model,
                grant.allowed_models.join(", ")
            ))
            .with_reason(Reason::ModelNotAllowed),
        ))
    }

    /// Ask the user before a client other than the owner does `act`.
    fn confirm<T>(&self, request: &Request<T>, act: Act) -> Result<(), Status> {
        let caller = access::caller(request)?;
        self.guard.confirm(request.metadata(), &caller, act)
    }
}

impl ModelApi {
    /// Relay a reply stream to the client, each piece made by `message`
    /// (given the provider and model answering); the last piece or an
    /// error ends it, and a client that goes away drops `upstream`, which
    /// cancels the request at the provider.
    fn relay<T, F>(&self, mut upstream: ReplyStream, message: F) -> ResponseStream<T>
    where
        T: Send + 'static,
        F: Fn(omnipanel_core::ollama::ReplyChunk, &str, &str) -> T + Send + 'static,
    {
        spawn_stream(self.shutdown.clone(), move |tx| async move {
            while let Some(chunk) = upstream.next().await {
                let last = chunk.as_ref().map_or(true, |c| c.done);
                let item = chunk
                    .map(|c| message(c, upstream.provider(), upstream.model()))
                    .map_err(to_status);
                if tx.send(item).await.is_err() || last {
                    return;
                }
            }
        })
    }

    /// Relay a chat reply that belongs to a conversation: like
    /// [`relay`](Self::relay), and every piece also goes to `recorder`,
    /// which stores the reply before its last piece is sent (so a client
    /// that saw the end reads it back), or, when the stream fails or is
    /// dropped half-way, what had arrived, as stopped.
    fn relay_recorded(
        &self,
        mut upstream: ReplyStream,
        mut recorder: ReplyRecorder,
    ) -> ResponseStream<pb::ChatResponse> {
        spawn_stream(self.shutdown.clone(), move |tx| async move {
            while let Some(chunk) = upstream.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(err) => {
                        if let Err(store) = recorder.stop().await {
                            tracing::warn!("cannot store a stopped reply: {store}");
                        }
                        let _ = tx.send(Err(to_status(err))).await;
                        return;
                    }
                };
                recorder.push(&chunk.text);
                let (last, stats) = (chunk.done, chunk.stats);
                let item = chat_response(chunk, upstream.provider(), upstream.model());
                if last {
                    if let Err(store) = recorder.finish(stats).await {
                        tracing::warn!("cannot store a reply: {store}");
                    }
                    let _ = tx.send(Ok(item)).await;
                    return;
                }
                if tx.send(Ok(item)).await.is_err() {
                    return;
                }
            }
            // The provider closed without a last piece: `recorder` is
            // dropped here and stores what arrived as stopped.
        })
    }

    async fn status_response(&self, status: ServerStatus) -> pb::ServerStatus {
        let default = self.ollama.default_model().await.unwrap_or_default();
        (&status, default.as_str()).into_proto()
    }
}

#[tonic::async_trait]
impl ModelService for ModelApi {
    async fn get_server_status(
        &self,
        _request: Request<pb::GetServerStatusRequest>,
    ) -> Result<Response<pb::GetServerStatusResponse>, Status> {
        let (status, default) = self.ollama.status().await;
        Ok(Response::new(pb::GetServerStatusResponse {
            status: Some((&status, default.as_str()).into_proto()),
        }))
    }

    async fn start_server(
        &self,
        _request: Request<pb::StartServerRequest>,
    ) -> Result<Response<pb::StartServerResponse>, Status> {
        let status = self.ollama.start_server().await.or_status()?;
        Ok(Response::new(pb::StartServerResponse {
            status: Some(self.status_response(status).await),
        }))
    }

    async fn stop_server(
        &self,
        _request: Request<pb::StopServerRequest>,
    ) -> Result<Response<pb::StopServerResponse>, Status> {
        let status = self.ollama.stop_server().await.or_status()?;
        Ok(Response::new(pb::StopServerResponse {
            status: Some(self.status_response(status).await),
        }))
    }

    async fn restart_server(
        &self,
        _request: Request<pb::RestartServerRequest>,
    ) -> Result<Response<pb::RestartServerResponse>, Status> {
        let status = self.ollama.restart_server().await.or_status()?;
        Ok(Response::new(pb::RestartServerResponse {
            status: Some(self.status_response(status).await),
        }))
    }

    async fn list_models(
        &self,
        request: Request<pb::ListModelsRequest>,
    ) -> Result<Response<pb::ListModelsResponse>, Status> {
        let request = request.into_inner();
        let models = if request.all_providers {
            self.ollama.list_all_models().await
        } else {
            self.ollama.list_models(&request.provider).await
        }
        .or_status()?;
        Ok(Response::new(pb::ListModelsResponse {
            models: models.into_proto(),
        }))
    }

    async fn show_model(
        &self,
        request: Request<pb::ShowModelRequest>,
    ) -> Result<Response<pb::ShowModelResponse>, Status> {
        let request = request.into_inner();
        let details = self
            .ollama
            .show_model(&request.provider, &request.model)
            .await
            .or_status()?;
        Ok(Response::new(details.into_proto()))
    }

    type PullModelStream = ResponseStream<pb::PullModelResponse>;

    async fn pull_model(
        &self,
        request: Request<pb::PullModelRequest>,
    ) -> Result<Response<Self::PullModelStream>, Status> {
        let request = request.into_inner();
        let (mut progress, fit) = self
            .ollama
            .pull(&request.provider, &request.model, request.insecure)
            .await
            .or_status()?;
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            let mut fit = fit.map(IntoProto::into_proto);
            loop {
                let current = progress.borrow_and_update().clone();
                let message = pb::PullModelResponse {
                    progress: Some((&current).into_proto()),
                    fit: fit.take(),
                };
                if tx.send(Ok(message)).await.is_err() || current.state.is_final() {
                    return;
                }
                if progress.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn cancel_pull(
        &self,
        request: Request<pb::CancelPullRequest>,
    ) -> Result<Response<pb::CancelPullResponse>, Status> {
        let request = request.into_inner();
        let progress = self
            .ollama
            .cancel_pull(&request.provider, &request.model)
            .await
            .or_status()?;
        Ok(Response::new(pb::CancelPullResponse {
            progress: Some((&progress).into_proto()),
        }))
    }

    async fn list_pulls(
        &self,
        _request: Request<pb::ListPullsRequest>,
    ) -> Result<Response<pb::ListPullsResponse>, Status> {
        Ok(Response::new(pb::ListPullsResponse {
            pulls: self
                .ollama
                .list_pulls()
                .iter()
                .map(IntoProto::into_proto)
                .collect(),
        }))
    }

    async fn delete_model(
        &self,
        request: Request<pb::DeleteModelRequest>,
    ) -> Result<Response<pb::DeleteModelResponse>, Status> {
        if !access::caller(&request)?.is_owner() {
            let ask = request.get_ref();
            // The size tells the user what is at stake; without it the
            // question is still asked.
            let size = self
                .ollama
                .list_models(&ask.provider)
                .await
                .ok()
                .and_then(|models| models.into_iter().find(|m| m.name == ask.model))
                .map(|model| format!(" ({:.1} GB)", model.size as f64 / 1e9))
                .unwrap_or_default();
            let on = if ask.provider.is_empty() {
                String::new()
            } else {
                format!(" on {}", ask.provider)
            };
            let act = Act {
                kind: ConfirmKind::DeleteModel,
                target: format!("provider={} model={}", ask.provider, ask.model),
                summary: format!("delete model {}{size}{on}", ask.model),
                method: "ModelService/DeleteModel".to_owned(),
                project: None,
            };
            self.confirm(&request, act)?;
        }
        let request = request.into_inner();
        self.ollama
            .delete_model(&request.provider, &request.model)
            .await
            .or_status()?;
        Ok(Response::new(pb::DeleteModelResponse {}))
    }

    async fn list_running_models(
        &self,
        request: Request<pb::ListRunningModelsRequest>,
    ) -> Result<Response<pb::ListRunningModelsResponse>, Status> {
        let models = self
            .ollama
            .running_models(&request.into_inner().provider)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListRunningModelsResponse {
            models: models.into_proto(),
        }))
    }

    async fn load_model(
        &self,
        request: Request<pb::LoadModelRequest>,
    ) -> Result<Response<pb::LoadModelResponse>, Status> {
        let request = request.into_inner();
        let model = self
            .ollama
            .load_model(&request.provider, &request.model, &request.keep_alive)
            .await
            .or_status()?;
        Ok(Response::new(pb::LoadModelResponse { model }))
    }

    async fn unload_model(
        &self,
        request: Request<pb::UnloadModelRequest>,
    ) -> Result<Response<pb::UnloadModelResponse>, Status> {
        let request = request.into_inner();
        self.ollama
            .unload_model(&request.provider, &request.model)
            .await
            .or_status()?;
        Ok(Response::new(pb::UnloadModelResponse {}))
    }

    async fn set_default_model(
        &self,
        request: Request<pb::SetDefaultModelRequest>,
    ) -> Result<Response<pb::SetDefaultModelResponse>, Status> {
        let model = self
            .ollama
            .set_default_model(&request.into_inner().model)
            .await
            .or_status()?;
        Ok(Response::new(pb::SetDefaultModelResponse { model }))
    }

    async fn check_fit(
        &self,
        request: Request<pb::CheckFitRequest>,
    ) -> Result<Response<pb::CheckFitResponse>, Status> {
        let request = request.into_inner();
        let report = self
            .ollama
            .check_fit(&request.provider, &request.model)
            .await
            .or_status()?;
        Ok(Response::new(report.into_proto()))
    }

    type ChatStream = ResponseStream<pb::ChatResponse>;

    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        self.may_use_project(&request, &request.get_ref().project)
            .await?;
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let mut messages: Vec<_> = request
            .messages
            .into_iter()
            .map(FromProto::from_proto)
            .collect();
        let options = GenerationOptions {
            options_json: request.options_json,
            keep_alive: request.keep_alive,
            format: request.format,
        };
        let mut target = Target {
            provider: request.provider,
            model: request.model,
            project: request.project,
        };
        // A conversation (which checks the caller's grant of its project)
        // supplies the history, and, when the request names none, its
        // project and the model of its latest reply.
        let turn = if request.conversation_id.is_empty() {
            None
        } else {
            let turn = self
                .conversations
                .turn(&caller, &request.conversation_id, messages)
                .await
                .or_status()?;
            messages = turn.history();
            let conversation = turn.conversation();
            if target.project.is_empty() {
                target.project.clone_from(&conversation.project_id);
            }
            if target.model.is_empty() && target.provider.is_empty() {
                target.model.clone_from(&conversation.model);
                target.provider.clone_from(&conversation.provider);
            }
            Some(turn)
        };
        self.may_use_model(&caller, &target).await?;
        let upstream = self
            .ollama
            .chat(&target, messages, options)
            .await
            .or_status()?;
        let stream = match turn {
            Some(turn) => {
                let recorder = turn
                    .start(upstream.provider(), upstream.model())
                    .await
                    .or_status()?;
                self.relay_recorded(upstream, recorder)
            }
            None => self.relay(upstream, chat_response),
        };
        Ok(Response::new(stream))
    }

    type GenerateStream = ResponseStream<pb::GenerateResponse>;

    async fn generate(
        &self,
        request: Request<pb::GenerateRequest>,
    ) -> Result<Response<Self::GenerateStream>, Status> {
        self.may_use_project(&request, &request.get_ref().project)
            .await?;
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let params = GenerateParams {
            prompt: request.prompt,
            system: request.system,
            context: request.context,
            raw: request.raw,
        };
        let options = GenerationOptions {
            options_json: request.options_json,
            keep_alive: request.keep_alive,
            format: request.format,
        };
        let target = Target {
            provider: request.provider,
            model: request.model,
            project: request.project,
        };
        self.may_use_model(&caller, &target).await?;
        let upstream = self
            .ollama
            .generate(&target, params, options)
            .await
            .or_status()?;
        Ok(Response::new(self.relay(
            upstream,
            |chunk, provider, model| pb::GenerateResponse {
                model: model.to_owned(),
                response: chunk.text,
                done: chunk.done,
                done_reason: chunk.done_reason,
                stats: chunk.stats.map(IntoProto::into_proto),
                context: chunk.context,
                provider: provider.to_owned(),
            },
        )))
    }

    async fn embed(
        &self,
        request: Request<pb::EmbedRequest>,
    ) -> Result<Response<pb::EmbedResponse>, Status> {
        self.may_use_project(&request, &request.get_ref().project)
            .await?;
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let target = Target {
            provider: request.provider,
            model: request.model,
            project: request.project,
        };
        self.may_use_model(&caller, &target).await?;
        let options = EmbedOptions {
            truncate: request.truncate,
            keep_alive: request.keep_alive,
        };
        let embeddings = self
            .ollama
            .embed(&target, request.input, options)
            .await
            .or_status()?;
        Ok(Response::new(embeddings.into_proto()))
    }

    async fn list_providers(
        &self,
        _request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let providers = self.ollama.list_providers().await.or_status()?;
        Ok(Response::new(pb::ListProvidersResponse {
            providers: providers.into_proto(),
        }))
    }

    async fn add_provider(
        &self,
        request: Request<pb::AddProviderRequest>,
    ) -> Result<Response<pb::AddProviderResponse>, Status> {
        let request = request.into_inner();
        let new = NewProvider {
            kind: convert::provider_kind(request.kind()),
            name: request.name,
            url: request.url,
            api_key: request.token,
            headers: request.headers.into_iter().collect(),
            timeout_seconds: request.timeout_seconds,
        };
        let provider = self.ollama.add_provider(new).await.or_status()?;
        Ok(Response::new(pb::AddProviderResponse {
            provider: Some(provider.into_proto()),
        }))
    }

    async fn remove_provider(
        &self,
        request: Request<pb::RemoveProviderRequest>,
    ) -> Result<Response<pb::RemoveProviderResponse>, Status> {
        let name = &request.get_ref().name;
        let act = Act {
            kind: ConfirmKind::RemoveProvider,
            target: format!("provider={name}"),
            summary: format!("remove the model provider {name}"),
            method: "ModelService/RemoveProvider".to_owned(),
            project: None,
        };
        self.confirm(&request, act)?;
        self.ollama
            .remove_provider(&request.into_inner().name)
            .await
            .or_status()?;
        Ok(Response::new(pb::RemoveProviderResponse {}))
    }
}

/// One piece of a chat reply on the wire.
fn chat_response(
    chunk: omnipanel_core::ollama::ReplyChunk,
    provider: &str,
    model: &str,
) -> pb::ChatResponse {
    pb::ChatResponse {
        model: model.to_owned(),
        content: chunk.text,
        done: chunk.done,
        done_reason: chunk.done_reason,
        stats: chunk.stats.map(IntoProto::into_proto),
        provider: provider.to_owned(),
    }
}
