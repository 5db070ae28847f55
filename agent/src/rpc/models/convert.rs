//! ModelService's conversions between proto messages and the Ollama
//! domain's types: supervision status, models, providers, pulls, fit
//! checks, chat and generate pieces. The status, state and pull progress
//! conversions also serve the event stream (`rpc/events.rs`).

use omnipanel_proto::v1 as pb;

use crate::rpc::convert::{FromProto, IntoProto};
use omnipanel_core::ollama::{
    ChatMessage, Embeddings, GenerationStats, LoadedModel, ModelDetails, ModelInfo, ProviderInfo,
    ProviderKind,
    api::ShowResponse,
    fit::{FitReport, FitVerdict},
    health::ProviderState,
    pulls::{PullProgress, PullState},
    supervisor::{ServerState, ServerStatus},
};

/// The kind a request names; UNSPECIFIED is Ollama, as the API says.
pub fn provider_kind(kind: pb::ProviderKind) -> ProviderKind {
    match kind {
        pb::ProviderKind::Openai => ProviderKind::OpenAi,
        pb::ProviderKind::Ollama | pb::ProviderKind::Unspecified => ProviderKind::Ollama,
    }
}

impl IntoProto<pb::ProviderKind> for ProviderKind {
    fn into_proto(self) -> pb::ProviderKind {
        match self {
            ProviderKind::Ollama => pb::ProviderKind::Ollama,
            ProviderKind::OpenAi => pb::ProviderKind::Openai,
        }
    }
}

impl IntoProto<pb::ProviderState> for ProviderState {
    fn into_proto(self) -> pb::ProviderState {
        match self {
            ProviderState::Unknown => pb::ProviderState::Unknown,
            ProviderState::Up => pb::ProviderState::Up,
            ProviderState::Down => pb::ProviderState::Down,
        }
    }
}

impl IntoProto<pb::ServerState> for ServerState {
    fn into_proto(self) -> pb::ServerState {
        match self {
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
}

/// A supervision status with the default model ("" where it is not
/// reported, as in events).
impl IntoProto<pb::ServerStatus> for (&ServerStatus, &str) {
    fn into_proto(self) -> pb::ServerStatus {
        let (status, default_model) = self;
        pb::ServerStatus {
            state: status.state.into_proto().into(),
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
}

impl IntoProto<pb::PullState> for PullState {
    fn into_proto(self) -> pb::PullState {
        match self {
            PullState::Running => pb::PullState::Running,
            PullState::Retrying => pb::PullState::Retrying,
            PullState::Succeeded => pb::PullState::Succeeded,
            PullState::Failed => pb::PullState::Failed,
            PullState::Cancelled => pb::PullState::Cancelled,
        }
    }
}

/// By reference: pulls are watched and published, and stay with their
/// owner.
impl IntoProto<pb::PullProgress> for &PullProgress {
    fn into_proto(self) -> pb::PullProgress {
        pb::PullProgress {
            model: self.model.clone(),
            provider: self.provider.clone(),
            state: self.state.into_proto().into(),
            status: self.status.clone(),
            completed_bytes: self.completed_bytes,
            total_bytes: self.total_bytes,
            bytes_per_second: self.bytes_per_second,
            eta_seconds: self
                .eta_seconds
                .map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX)),
            current_layer: self.current_layer.clone(),
            layers_done: self.layers_done,
            layers_total: self.layers_total,
            error: self.error.clone().unwrap_or_default(),
            attempt: self.attempt,
            started_unix_ms: self.started_ms,
        }
    }
}

impl IntoProto<pb::FitVerdict> for FitVerdict {
    fn into_proto(self) -> pb::FitVerdict {
        match self {
            FitVerdict::FitsGpu => pb::FitVerdict::FitsGpu,
            FitVerdict::FitsCpuOnly => pb::FitVerdict::FitsCpuOnly,
            FitVerdict::NoDisk => pb::FitVerdict::NoDisk,
            FitVerdict::TooLarge => pb::FitVerdict::TooLarge,
        }
    }
}

impl IntoProto<pb::CheckFitResponse> for FitReport {
    fn into_proto(self) -> pb::CheckFitResponse {
        let (free_vram, total_vram) = self.resources.vram.unwrap_or((0, 0));
        pb::CheckFitResponse {
            verdict: self.verdict.into_proto().into(),
            model_bytes: self.model_bytes,
            required_bytes: self.required_bytes,
            free_vram_bytes: free_vram,
            total_vram_bytes: total_vram,
            free_ram_bytes: self.resources.free_ram,
            free_disk_bytes: self.resources.free_disk,
            installed: self.installed,
            gpu_present: self.resources.vram.is_some(),
            explanation: self.explanation,
        }
    }
}

impl IntoProto<pb::Model> for ModelInfo {
    fn into_proto(self) -> pb::Model {
        pb::Model {
            name: self.name,
            size_bytes: self.size,
            digest: self.digest,
            modified_unix_ms: self.modified_ms,
            family: self.details.family,
            parameter_size: self.details.parameter_size,
            quantization_level: self.details.quantization_level,
            format: self.details.format,
            provider: self.provider,
            is_default: self.is_default,
            provider_kind: self.provider_kind.into_proto().into(),
        }
    }
}

fn info_u64(show: &ShowResponse, suffix: &str) -> u64 {
    show.model_info
        .iter()
        .find(|(key, _)| key.ends_with(suffix))
        .and_then(|(_, value)| value.as_u64())
        .unwrap_or(0)
}

impl IntoProto<pb::ShowModelResponse> for ModelDetails {
    fn into_proto(self) -> pb::ShowModelResponse {
        let show = self.show;
        pb::ShowModelResponse {
            architecture: show
                .model_info
                .get("general.architecture")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            parameter_count: info_u64(&show, "general.parameter_count"),
            context_length: info_u64(&show, ".context_length"),
            modelfile: show.modelfile,
            parameters: show.parameters,
            template: show.template,
            license: show.license,
            system: show.system,
            capabilities: show.capabilities,
            model: Some(self.info.into_proto()),
        }
    }
}

impl IntoProto<pb::RunningModel> for LoadedModel {
    fn into_proto(self) -> pb::RunningModel {
        pb::RunningModel {
            name: self.name,
            size_bytes: self.size,
            size_vram_bytes: self.size_vram,
            expires_unix_ms: self.expires_ms,
            digest: self.digest,
            provider: self.provider,
        }
    }
}

impl IntoProto<pb::Provider> for ProviderInfo {
    fn into_proto(self) -> pb::Provider {
        pb::Provider {
            name: self.name,
            url: self.url,
            local: self.local,
            has_token: self.has_token,
            version: self.version,
            kind: self.kind.into_proto().into(),
            state: self.state.into_proto().into(),
            last_error: self.last_error,
            checked_unix_ms: self.checked_ms,
            header_names: self.header_names,
            timeout_seconds: self.timeout_seconds,
        }
    }
}

impl IntoProto<pb::GenerationStats> for GenerationStats {
    fn into_proto(self) -> pb::GenerationStats {
        pb::GenerationStats {
            total_duration_ns: self.total_duration_ns,
            load_duration_ns: self.load_duration_ns,
            prompt_eval_count: self.prompt_eval_count,
            prompt_eval_duration_ns: self.prompt_eval_duration_ns,
            eval_count: self.eval_count,
            eval_duration_ns: self.eval_duration_ns,
            time_to_first_token_ns: self.time_to_first_token_ns,
        }
    }
}

impl IntoProto<pb::EmbedResponse> for Embeddings {
    fn into_proto(self) -> pb::EmbedResponse {
        pb::EmbedResponse {
            model: self.model,
            provider: self.provider,
            embeddings: self
                .vectors
                .into_iter()
                .map(|values| pb::Embedding { values })
                .collect(),
            prompt_tokens: self.prompt_tokens,
            total_duration_ns: self.total_duration_ns,
        }
    }
}

impl FromProto<pb::ChatMessage> for ChatMessage {
    fn from_proto(message: pb::ChatMessage) -> Self {
        ChatMessage {
            role: message.role,
            content: message.content,
            images: message.images,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use omnipanel_core::ollama::{api::Details, fit::Resources};

    fn status() -> ServerStatus {
        ServerStatus {
            state: ServerState::Backoff,
            version: Some("0.5.1".to_owned()),
            pid: Some(42),
            address: "127.0.0.1:11434".to_owned(),
            ready_since_ms: None,
            restart_count: 3,
            last_error: Some("exited".to_owned()),
            binary: Some(PathBuf::from("/usr/bin/ollama")),
            next_attempt_ms: Some(99),
            reason: "crashed".to_owned(),
        }
    }

    fn progress() -> PullProgress {
        PullProgress {
            model: "llama3:latest".to_owned(),
            provider: "local".to_owned(),
            state: PullState::Retrying,
            status: "pulling".to_owned(),
            completed_bytes: 10,
            total_bytes: 100,
            bytes_per_second: 5,
            eta_seconds: None,
            current_layer: "abcdef012345".to_owned(),
            layers_done: 1,
            layers_total: 2,
            error: Some("reset".to_owned()),
            attempt: 2,
            started_ms: 7,
        }
    }

    fn model() -> ModelInfo {
        ModelInfo {
            name: "llama3:latest".to_owned(),
            size: 1000,
            digest: "d1".to_owned(),
            modified_ms: 5,
            details: Details {
                format: "gguf".to_owned(),
                family: "llama".to_owned(),
                parameter_size: "8B".to_owned(),
                quantization_level: "Q4_K_M".to_owned(),
            },
            provider: "local".to_owned(),
            is_default: true,
            provider_kind: ProviderKind::Ollama,
        }
    }

    fn timings() -> GenerationStats {
        GenerationStats {
            total_duration_ns: 1,
            load_duration_ns: 2,
            prompt_eval_count: 3,
            prompt_eval_duration_ns: 4,
            eval_count: 5,
            eval_duration_ns: 6,
            time_to_first_token_ns: 7,
        }
    }

    #[test]
    fn every_server_state_has_its_proto_value() {
        let pairs = [
            (ServerState::NotInstalled, pb::ServerState::NotInstalled),
            (ServerState::Stopped, pb::ServerState::Stopped),
            (ServerState::Starting, pb::ServerState::Starting),
            (ServerState::Running, pb::ServerState::Running),
            (ServerState::Stopping, pb::ServerState::Stopping),
            (ServerState::Crashed, pb::ServerState::Crashed),
            (ServerState::Backoff, pb::ServerState::Backoff),
            (ServerState::External, pb::ServerState::External),
        ];
        for (state, wire) in pairs {
            assert_eq!(state.into_proto(), wire);
        }
    }

    #[test]
    fn a_status_fills_absent_values_with_zeroes() {
        let wire: pb::ServerStatus = (&status(), "llama3").into_proto();
        assert_eq!(wire.state, pb::ServerState::Backoff as i32);
        assert_eq!(wire.version, "0.5.1");
        assert_eq!(wire.pid, 42);
        assert_eq!(wire.uptime_ms, 0, "not ready: no uptime");
        assert_eq!(wire.restart_count, 3);
        assert_eq!(wire.last_error, "exited");
        assert_eq!(wire.binary_path, "/usr/bin/ollama");
        assert_eq!(wire.next_attempt_unix_ms, 99);
        assert_eq!(wire.reason, "crashed");
        assert_eq!(wire.default_model, "llama3");
        let bare = ServerStatus {
            version: None,
            pid: None,
            last_error: None,
            binary: None,
            next_attempt_ms: None,
            ready_since_ms: Some(omnipanel_core::store::now_ms() + 60_000),
            ..status()
        };
        let wire: pb::ServerStatus = (&bare, "").into_proto();
        assert_eq!(
            (wire.version.as_str(), wire.pid, wire.last_error.as_str()),
            ("", 0, "")
        );
        assert_eq!(
            (wire.binary_path.as_str(), wire.next_attempt_unix_ms),
            ("", 0)
        );
        assert_eq!(
            wire.uptime_ms, 0,
            "a clock step back never gives negative uptime"
        );
    }

    #[test]
    fn pull_progress_says_unknown_eta_as_minus_one() {
        let wire: pb::PullProgress = (&progress()).into_proto();
        assert_eq!(wire.state, pb::PullState::Retrying as i32);
        assert_eq!(wire.eta_seconds, -1);
        assert_eq!(wire.error, "reset");
        assert_eq!(wire.started_unix_ms, 7);
        assert_eq!((wire.layers_done, wire.layers_total), (1, 2));
        let known = PullProgress {
            eta_seconds: Some(u64::MAX),
            error: None,
            ..progress()
        };
        let wire: pb::PullProgress = (&known).into_proto();
        assert_eq!(wire.eta_seconds, i64::MAX);
        assert_eq!(wire.error, "");
        for (state, wire) in [
            (PullState::Running, pb::PullState::Running),
            (PullState::Succeeded, pb::PullState::Succeeded),
            (PullState::Failed, pb::PullState::Failed),
            (PullState::Cancelled, pb::PullState::Cancelled),
        ] {
            assert_eq!(state.into_proto(), wire);
        }
    }

    #[test]
    fn a_fit_report_without_gpu_reports_zero_vram() {
        let report = FitReport {
            verdict: FitVerdict::FitsCpuOnly,
            model_bytes: 1,
            required_bytes: 2,
            resources: Resources {
                vram: None,
                free_ram: 3,
                free_disk: 4,
            },
            installed: true,
            explanation: "fits in RAM".to_owned(),
        };
        let wire: pb::CheckFitResponse = report.clone().into_proto();
        assert_eq!(wire.verdict, pb::FitVerdict::FitsCpuOnly as i32);
        assert!(!wire.gpu_present);
        assert_eq!((wire.free_vram_bytes, wire.total_vram_bytes), (0, 0));
        assert_eq!((wire.free_ram_bytes, wire.free_disk_bytes), (3, 4));
        assert_eq!(wire.explanation, "fits in RAM");
        let with_gpu = FitReport {
            verdict: FitVerdict::FitsGpu,
            resources: Resources {
                vram: Some((5, 6)),
                ..report.resources
            },
            ..report
        };
        let wire: pb::CheckFitResponse = with_gpu.into_proto();
        assert!(wire.gpu_present);
        assert_eq!((wire.free_vram_bytes, wire.total_vram_bytes), (5, 6));
        assert_eq!(FitVerdict::NoDisk.into_proto(), pb::FitVerdict::NoDisk);
        assert_eq!(FitVerdict::TooLarge.into_proto(), pb::FitVerdict::TooLarge);
    }

    #[test]
    fn a_model_flattens_its_details() {
        let wire: pb::Model = model().into_proto();
        assert_eq!(wire.name, "llama3:latest");
        assert_eq!(wire.size_bytes, 1000);
        assert_eq!(wire.family, "llama");
        assert_eq!(wire.parameter_size, "8B");
        assert_eq!(wire.quantization_level, "Q4_K_M");
        assert_eq!(wire.format, "gguf");
        assert!(wire.is_default);
    }

    #[test]
    fn show_reads_architecture_and_sizes_from_model_info() {
        let mut show = ShowResponse {
            license: "MIT".to_owned(),
            capabilities: vec!["completion".to_owned()],
            ..ShowResponse::default()
        };
        show.model_info
            .insert("general.architecture".to_owned(), "llama".into());
        show.model_info
            .insert("general.parameter_count".to_owned(), 8_000u64.into());
        show.model_info
            .insert("llama.context_length".to_owned(), 4096u64.into());
        let wire: pb::ShowModelResponse = ModelDetails {
            info: model(),
            show,
        }
        .into_proto();
        assert_eq!(wire.architecture, "llama");
        assert_eq!(wire.parameter_count, 8_000);
        assert_eq!(wire.context_length, 4096);
        assert_eq!(wire.license, "MIT");
        assert_eq!(wire.capabilities, vec!["completion".to_owned()]);
        assert_eq!(wire.model.map(|m| m.name), Some("llama3:latest".to_owned()));
        let empty: pb::ShowModelResponse = ModelDetails {
            info: model(),
            show: ShowResponse::default(),
        }
        .into_proto();
        assert_eq!(
            (
                empty.architecture.as_str(),
                empty.parameter_count,
                empty.context_length
            ),
            ("", 0, 0)
        );
    }

    #[test]
    fn running_models_and_providers_keep_their_fields() {
        let running: pb::RunningModel = LoadedModel {
            name: "m".to_owned(),
            size: 1,
            size_vram: 2,
            expires_ms: 3,
            digest: "d".to_owned(),
            provider: "p".to_owned(),
        }
        .into_proto();
        assert_eq!(
            running,
            pb::RunningModel {
                name: "m".to_owned(),
                size_bytes: 1,
                size_vram_bytes: 2,
                expires_unix_ms: 3,
                digest: "d".to_owned(),
                provider: "p".to_owned(),
            }
        );
        let provider: pb::Provider = ProviderInfo {
            name: "lmstudio".to_owned(),
            url: "http://gpu:1234/v1".to_owned(),
            local: false,
            has_token: true,
            version: String::new(),
            kind: ProviderKind::OpenAi,
            state: ProviderState::Down,
            last_error: "connection refused".to_owned(),
            checked_ms: 9,
            header_names: vec!["OpenAI-Organization".to_owned()],
            timeout_seconds: 30,
        }
        .into_proto();
        assert_eq!(
            provider,
            pb::Provider {
                name: "lmstudio".to_owned(),
                url: "http://gpu:1234/v1".to_owned(),
                local: false,
                has_token: true,
                version: String::new(),
                kind: pb::ProviderKind::Openai.into(),
                state: pb::ProviderState::Down.into(),
                last_error: "connection refused".to_owned(),
                checked_unix_ms: 9,
                header_names: vec!["OpenAI-Organization".to_owned()],
                timeout_seconds: 30,
            }
        );
        assert_eq!(
            provider_kind(pb::ProviderKind::Unspecified),
            ProviderKind::Ollama
        );
        assert_eq!(
            provider_kind(pb::ProviderKind::Openai),
            ProviderKind::OpenAi
        );
        assert_eq!(
            ProviderState::Unknown.into_proto(),
            pb::ProviderState::Unknown
        );
        assert_eq!(ProviderState::Up.into_proto(), pb::ProviderState::Up);
    }

    #[test]
    fn timings_become_generation_stats() {
        let stats: pb::GenerationStats = timings().into_proto();
        assert_eq!(
            stats,
            pb::GenerationStats {
                total_duration_ns: 1,
                load_duration_ns: 2,
                prompt_eval_count: 3,
                prompt_eval_duration_ns: 4,
                eval_count: 5,
                eval_duration_ns: 6,
                time_to_first_token_ns: 7,
            }
        );
    }

    #[test]
    fn a_chat_message_is_taken_as_sent() {
        let message = ChatMessage::from_proto(pb::ChatMessage {
            role: "user".to_owned(),
            content: "hi".to_owned(),
            images: vec!["aW1n".to_owned()],
        });
        assert_eq!(
            message,
            ChatMessage {
                role: "user".to_owned(),
                content: "hi".to_owned(),
                images: vec!["aW1n".to_owned()],
            }
        );
    }

    #[test]
    fn embeddings_keep_their_order() {
        let wire: pb::EmbedResponse = Embeddings {
            model: "nomic".to_owned(),
            provider: "lm".to_owned(),
            vectors: vec![vec![1.0, 0.0], vec![0.0, 1.0]],
            prompt_tokens: 4,
            total_duration_ns: 5,
        }
        .into_proto();
        assert_eq!(wire.embeddings.len(), 2);
        assert_eq!(wire.embeddings[1].values, vec![0.0, 1.0]);
        assert_eq!((wire.prompt_tokens, wire.total_duration_ns), (4, 5));
        assert_eq!(wire.provider, "lm");
    }
}
