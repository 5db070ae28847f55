//! `omnipanel.v1.ModelService`: converts requests for the Ollama domain
//! facade and its answers back; streams pull progress and chat/generate
//! pieces. A chat or generate stream whose client goes away drops the
//! upstream request, which makes Ollama stop generating; one that fails
//! half-way ends with the domain's error, mapped by `to_status` like any
//! other.

use crate::rpc::status::OrStatus;
use std::sync::Arc;

use omnipanel_proto::v1 as pb;
use pb::model_service_server::ModelService;
use tonic::{Request, Response, Status};

use crate::rpc::{
    status::to_status,
    streaming::{ResponseStream, spawn_stream},
};
use omnipanel_core::ollama::{
    ChatMessage, GenerateParams, GenerationOptions, LoadedModel, ModelInfo, Ollama, ProviderInfo,
    api::Timings,
    fit::{FitReport, FitVerdict},
    pulls::{PullProgress, PullState},
    supervisor::{ServerState, ServerStatus},
};

/// The ModelService implementation.
#[derive(Debug, Clone)]
pub struct ModelApi {
    ollama: Arc<Ollama>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl ModelApi {
    /// Serve `ollama`; streams end on `shutdown`.
    pub fn new(ollama: Arc<Ollama>, shutdown: tokio_util::sync::CancellationToken) -> Self {
        Self { ollama, shutdown }
    }
}

/// Proto enum of a supervision state.
pub fn state_to_proto(state: ServerState) -> pb::ServerState {
    match state {
        ServerState::NotInstalled => pb::ServerState::NotInstalled,
        ServerState::Stopped => pb::ServerState::Stopped,
        ServerState::Starting => pb::ServerState::Starting,
        ServerState::Running => pb::ServerState::Running,
        ServerState::Stopping => pb::ServerState::Stopping,
        ServerState::Crashed => pb::ServerState::Crashed,
        ServerState::Backoff => pb::ServerState::Backoff,
        ServerState::External => pb::ServerState::External,
    }
}

/// Proto message of a supervision status.
pub fn status_to_proto(status: &ServerStatus, default_model: &str) -> pb::ServerStatus {
    pb::ServerStatus {
        state: state_to_proto(status.state).into(),
        version: status.version.clone().unwrap_or_default(),
        pid: status.pid.unwrap_or(0),
        address: status.address.clone(),
        uptime_ms: status
            .ready_since_ms
            .map_or(0, |since| (omnipanel_core::store::now_ms() - since).max(0)),
        restart_count: status.restart_count,
        last_error: status.last_error.clone().unwrap_or_default(),
        binary_path: status
            .binary
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        next_attempt_unix_ms: status.next_attempt_ms.unwrap_or(0),
        reason: status.reason.clone(),
        default_model: default_model.to_owned(),
    }
}

/// Proto message of a pull's progress.
pub fn progress_to_proto(progress: &PullProgress) -> pb::PullProgress {
    pb::PullProgress {
        model: progress.model.clone(),
        provider: progress.provider.clone(),
        state: match progress.state {
            PullState::Running => pb::PullState::Running,
            PullState::Retrying => pb::PullState::Retrying,
            PullState::Succeeded => pb::PullState::Succeeded,
            PullState::Failed => pb::PullState::Failed,
            PullState::Cancelled => pb::PullState::Cancelled,
        }
        .into(),
        status: progress.status.clone(),
        completed_bytes: progress.completed_bytes,
        total_bytes: progress.total_bytes,
        bytes_per_second: progress.bytes_per_second,
        eta_seconds: progress
            .eta_seconds
            .map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX)),
        current_layer: progress.current_layer.clone(),
        layers_done: progress.layers_done,
        layers_total: progress.layers_total,
        error: progress.error.clone().unwrap_or_default(),
        attempt: progress.attempt,
        started_unix_ms: progress.started_ms,
    }
}

fn fit_to_proto(report: &FitReport) -> pb::CheckFitResponse {
    let (free_vram, total_vram) = report.resources.vram.unwrap_or((0, 0));
    pb::CheckFitResponse {
        verdict: match report.verdict {
            FitVerdict::FitsGpu => pb::FitVerdict::FitsGpu,
            FitVerdict::FitsCpuOnly => pb::FitVerdict::FitsCpuOnly,
            FitVerdict::NoDisk => pb::FitVerdict::NoDisk,
            FitVerdict::TooLarge => pb::FitVerdict::TooLarge,
        }
        .into(),
        model_bytes: report.model_bytes,
        required_bytes: report.required_bytes,
        free_vram_bytes: free_vram,
        total_vram_bytes: total_vram,
        free_ram_bytes: report.resources.free_ram,
        free_disk_bytes: report.resources.free_disk,
        installed: report.installed,
        gpu_present: report.resources.vram.is_some(),
        explanation: report.explanation.clone(),
    }
}

fn model_to_proto(model: ModelInfo) -> pb::Model {
    pb::Model {
        name: model.name,
        size_bytes: model.size,
        digest: model.digest,
        modified_unix_ms: model.modified_ms,
        family: model.details.family,
        parameter_size: model.details.parameter_size,
        quantization_level: model.details.quantization_level,
        format: model.details.format,
        provider: model.provider,
        is_default: model.is_default,
    }
}

fn loaded_to_proto(model: LoadedModel) -> pb::RunningModel {
    pb::RunningModel {
        name: model.name,
        size_bytes: model.size,
        size_vram_bytes: model.size_vram,
        expires_unix_ms: model.expires_ms,
        digest: model.digest,
        provider: model.provider,
    }
}

fn provider_to_proto(provider: ProviderInfo) -> pb::Provider {
    pb::Provider {
        name: provider.name,
        url: provider.url,
        local: provider.local,
        has_token: provider.has_token,
        version: provider.version,
    }
}

fn stats_to_proto(timings: &Timings) -> pb::GenerationStats {
    pb::GenerationStats {
        total_duration_ns: timings.total_duration,
        load_duration_ns: timings.load_duration,
        prompt_eval_count: timings.prompt_eval_count,
        prompt_eval_duration_ns: timings.prompt_eval_duration,
        eval_count: timings.eval_count,
        eval_duration_ns: timings.eval_duration,
    }
}

fn info_u64(show: &omnipanel_core::ollama::api::ShowResponse, suffix: &str) -> u64 {
    show.model_info
        .iter()
        .find(|(key, _)| key.ends_with(suffix))
        .and_then(|(_, value)| value.as_u64())
        .unwrap_or(0)
}

impl ModelApi {
    async fn status_response(&self, status: ServerStatus) -> pb::ServerStatus {
        let default = self.ollama.default_model().await.unwrap_or_default();
        status_to_proto(&status, &default)
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
            status: Some(status_to_proto(&status, &default)),
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
        let models = self
            .ollama
            .list_models(&request.into_inner().provider)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListModelsResponse {
            models: models.into_iter().map(model_to_proto).collect(),
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
        let show = &details.show;
        Ok(Response::new(pb::ShowModelResponse {
            architecture: show
                .model_info
                .get("general.architecture")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            parameter_count: info_u64(show, "general.parameter_count"),
            context_length: info_u64(show, ".context_length"),
            modelfile: show.modelfile.clone(),
            parameters: show.parameters.clone(),
            template: show.template.clone(),
            license: show.license.clone(),
            system: show.system.clone(),
            capabilities: show.capabilities.clone(),
            model: Some(model_to_proto(details.info)),
        }))
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
            let mut fit = fit.as_ref().map(fit_to_proto);
            loop {
                let current = progress.borrow_and_update().clone();
                let message = pb::PullModelResponse {
                    progress: Some(progress_to_proto(&current)),
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
            progress: Some(progress_to_proto(&progress)),
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
                .map(progress_to_proto)
                .collect(),
        }))
    }

    async fn delete_model(
        &self,
        request: Request<pb::DeleteModelRequest>,
    ) -> Result<Response<pb::DeleteModelResponse>, Status> {
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
            models: models.into_iter().map(loaded_to_proto).collect(),
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
        Ok(Response::new(fit_to_proto(&report)))
    }

    type ChatStream = ResponseStream<pb::ChatResponse>;

    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let request = request.into_inner();
        let messages = request
            .messages
            .into_iter()
            .map(|m| ChatMessage {
                role: m.role,
                content: m.content,
                images: m.images,
            })
            .collect();
        let options = GenerationOptions {
            options_json: request.options_json,
            keep_alive: request.keep_alive,
            format: request.format,
        };
        let mut upstream = self
            .ollama
            .chat(&request.provider, &request.model, messages, options)
            .await
            .or_status()?;
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            while let Some(chunk) = upstream.next().await {
                let message = chunk
                    .map(|chunk| pb::ChatResponse {
                        stats: chunk.done.then(|| stats_to_proto(&chunk.timings())),
                        model: chunk.model,
                        content: chunk.message.content,
                        done: chunk.done,
                        done_reason: chunk.done_reason,
                    })
                    .map_err(to_status);
                let last = message.as_ref().map_or(true, |m| m.done);
                if tx.send(message).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    type GenerateStream = ResponseStream<pb::GenerateResponse>;

    async fn generate(
        &self,
        request: Request<pb::GenerateRequest>,
    ) -> Result<Response<Self::GenerateStream>, Status> {
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
        let mut upstream = self
            .ollama
            .generate(&request.provider, &request.model, params, options)
            .await
            .or_status()?;
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            while let Some(chunk) = upstream.next().await {
                let message = chunk
                    .map(|chunk| pb::GenerateResponse {
                        stats: chunk.done.then(|| stats_to_proto(&chunk.timings())),
                        model: chunk.model,
                        response: chunk.response,
                        done: chunk.done,
                        done_reason: chunk.done_reason,
                        context: chunk.context,
                    })
                    .map_err(to_status);
                let last = message.as_ref().map_or(true, |m| m.done);
                if tx.send(message).await.is_err() || last {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn list_providers(
        &self,
        _request: Request<pb::ListProvidersRequest>,
    ) -> Result<Response<pb::ListProvidersResponse>, Status> {
        let providers = self.ollama.list_providers().await.or_status()?;
        Ok(Response::new(pb::ListProvidersResponse {
            providers: providers.into_iter().map(provider_to_proto).collect(),
        }))
    }

    async fn add_provider(
        &self,
        request: Request<pb::AddProviderRequest>,
    ) -> Result<Response<pb::AddProviderResponse>, Status> {
        let request = request.into_inner();
        let provider = self
            .ollama
            .add_provider(&request.name, &request.url, &request.token)
            .await
            .or_status()?;
        Ok(Response::new(pb::AddProviderResponse {
            provider: Some(provider_to_proto(provider)),
        }))
    }

    async fn remove_provider(
        &self,
        request: Request<pb::RemoveProviderRequest>,
    ) -> Result<Response<pb::RemoveProviderResponse>, Status> {
        self.ollama
            .remove_provider(&request.into_inner().name)
            .await
            .or_status()?;
        Ok(Response::new(pb::RemoveProviderResponse {}))
    }
}
