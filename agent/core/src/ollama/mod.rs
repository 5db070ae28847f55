//! Ollama: the supervised local server, further endpoints (providers), and
//! everything done with models on them. [`Ollama`] is the domain facade the
//! rpc layer calls; it validates names and other input before it picks the
//! endpoint (a bad request is INVALID_ARGUMENT whether or not a server is
//! up), turns Ollama's errors into domain errors that say what to do, and
//! publishes changes on the event bus.
//!
//! This file holds the facade itself, its start and shutdown, and control
//! of the local server. The rest of the facade is split by job:
//! `endpoints` (which server a request goes to; providers of either kind,
//! Ollama or OpenAI-compatible), `health` (each provider's state),
//! `errors` (what a failure means to a client), `models` (listing,
//! loading, the default model), `inference` (chat, generate and embed on
//! any kind, and which provider and model a request resolves to), `reply`
//! (a streamed reply in one shape for every kind), `pulling` (pulls and fit
//! checks) and `http` (the HTTP clients).

pub mod address;
pub mod api;
pub mod discovery;
mod endpoints;
mod errors;
mod events;
pub mod fit;
pub mod health;
mod http;
mod inference;
mod models;
pub mod names;
pub mod providers;
mod pulling;
pub mod pulls;
mod registry;
mod reply;
pub mod server_settings;
pub mod supervisor;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, OnceLock},
};

use tokio::sync::watch;

pub use self::{
    endpoints::{DEFAULT_TIMEOUT, NewProvider, ProviderInfo},
    inference::{
        ChatMessage, EmbedOptions, Embeddings, GenerateParams, GenerationOptions, Resolved, Target,
        keep_alive_value,
    },
    models::{LoadedModel, ModelDetails, ModelInfo},
    providers::ProviderKind,
    reply::{GenerationStats, ReplyChunk, ReplyStream},
};
use self::{http::HttpClients, server_settings::LocalStreams};
use crate::{
    config::OllamaSettings,
    error::{Error, Result},
    events::Publisher,
    logs::{LogHub, LogSource, RotatingWriter, RotationPolicy},
    ollama::{
        address::OllamaAddress,
        api::OllamaApi,
        fit::VramSource,
        health::Health,
        providers::Providers,
        pulls::{PullManager, RetryPolicy},
        supervisor::{ServerStatus, Supervisor, SupervisorConfig},
    },
    projects::Projects,
    secrets::Secrets,
    store::Store,
};
pub use events::OllamaEvent;

/// The Ollama domain facade.
#[derive(Debug)]
pub struct Ollama {
    supervisor: Supervisor,
    local: OllamaApi,
    address: OllamaAddress,
    http: HttpClients,
    providers: Providers,
    /// Provider API keys and header values.
    secrets: Secrets,
    health: Health,
    /// Where a project's preferred model is read (attached once the
    /// projects domain is up: it starts after this one).
    projects: OnceLock<Arc<Projects>>,
    pulls: Arc<PullManager>,
    store: Store,
    bus: Publisher<OllamaEvent>,
    registry: String,
    models_dir: PathBuf,
    vram: VramSource,
    /// Replies streaming from the local server, which a settings change
    /// must not cut off.
    local_streams: LocalStreams,
    /// The local server's model names as last listed, and when: an
    /// unprefixed model name is looked up there first on every request
    /// while other providers exist, and asking Ollama each time would add
    /// a round trip to every reply's first token.
    local_catalog: Mutex<Option<(std::time::Instant, Vec<String>)>>,
}

/// Where Ollama keeps models: setting, else OLLAMA_MODELS, else
/// ~/.ollama/models.
fn models_dir(settings: &OllamaSettings) -> PathBuf {
    if let Some(dir) = &settings.models_dir {
        return dir.clone();
    }
    if let Some(dir) = std::env::var_os("OLLAMA_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".ollama/models")
}

impl Ollama {
    /// Start supervision and open the providers (moving API keys an older
    /// release kept in state.db into `secrets`). Registers the "ollama"
    /// log source. `vram` reads GPU memory for fit checks (the system
    /// module provides it; this module knows nothing about GPUs).
    #[allow(clippy::too_many_arguments)] // each is a distinct dependency the daemon wires; a struct would only rename them
    pub async fn start(
        settings: &OllamaSettings,
        store: Store,
        secrets: Secrets,
        bus: Publisher<OllamaEvent>,
        logs: &LogHub,
        log_dir: &std::path::Path,
        log_policy: RotationPolicy,
        vram: VramSource,
    ) -> Result<Arc<Self>> {
        // reqwest's rustls needs a process-wide crypto provider; installing
        // it twice (tests, restarts in-process) is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = HttpClients::new()?;
        let raw_address = settings
            .host
            .clone()
            .or_else(|| std::env::var("OLLAMA_HOST").ok())
            .unwrap_or_default();
        let address = OllamaAddress::parse(&raw_address);
        // OLLAMA_HOST may name https; then the TLS client is built now.
        let local_http = if address.base_url().starts_with("https://") {
            crate::http::client(&http::options(crate::http::Tls::SystemRoots))
                .map_err(|err| Error::internal(format!("cannot set up TLS: {err}")))?
        } else {
            http.plain.clone()
        };
        let local = OllamaApi::new(local_http, &address.base_url(), None);
        let log_source = LogSource::new("ollama", log_dir.join("ollama.log"));
        logs.register(log_source.clone());
        let writer = RotatingWriter::open(log_source, log_policy).map_err(|err| {
            Error::internal(format!(
                "cannot open the Ollama log in {}: {err}",
                log_dir.display()
            ))
        })?;
        let supervisor = Supervisor::spawn(
            SupervisorConfig {
                binary: settings.binary.clone(),
                env: supervisor::ServerEnv::from_settings(settings),
                address: address.clone(),
                autostart: settings.autostart,
                health_interval: settings.health_interval,
                health_timeout: settings.health_timeout,
                health_failures: settings.health_failures,
                stop_timeout: settings.stop_timeout,
                backoff: supervisor::BackoffPolicy::default(),
                startup_timeout: settings.startup_timeout,
                output_drain: supervisor::OUTPUT_DRAIN,
            },
            local.clone(),
            Arc::new(Mutex::new(writer)),
            bus.clone(),
        );
        let providers = Providers::new(store.clone());
        providers.move_tokens_to(&secrets).await?;
        Ok(Arc::new(Self {
            supervisor,
            local,
            address,
            http,
            providers,
            secrets,
            health: Health::new(bus.clone()),
            projects: OnceLock::new(),
            pulls: PullManager::new(bus.clone(), RetryPolicy::default()),
            store,
            bus,
            registry: settings.registry.clone(),
            models_dir: models_dir(settings),
            vram,
            local_streams: LocalStreams::default(),
            local_catalog: Mutex::new(None),
        }))
    }

    /// Read projects' preferred models from `projects` from now on.
    pub fn attach_projects(&self, projects: Arc<Projects>) {
        // Attached once at start-up; a second call changes nothing.
        let _ = self.projects.set(projects);
    }

    /// The preferred (provider, model) of the project `reference` names
    /// (empty strings when it has none).
    pub(crate) async fn project_preference(&self, reference: &str) -> Result<(String, String)> {
        let Some(projects) = self.projects.get() else {
            return Err(Error::failed_precondition(
                "projects are not available in this process",
            ));
        };
        let record = projects.find(reference).await?;
        Ok((record.preferred_provider, record.preferred_model))
    }

    /// Stop a managed server (agent shutdown); an adopted one stays up.
    /// Idempotent.
    pub async fn shutdown(&self) {
        self.supervisor.shutdown().await;
    }

    /// Every change of the local server's supervision status.
    pub fn server_watch(&self) -> watch::Receiver<ServerStatus> {
        self.supervisor.watch()
    }

    /// The supervision status, with the default model.
    pub async fn status(&self) -> (ServerStatus, String) {
        (
            self.supervisor.status(),
            self.default_model().await.unwrap_or_default(),
        )
    }

    /// Start the local server.
    pub async fn start_server(&self) -> Result<ServerStatus> {
        self.supervisor.start().await
    }

    /// Stop the local server (only if OmniPanel manages it).
    pub async fn stop_server(&self) -> Result<ServerStatus> {
        self.supervisor.stop().await
    }

    /// Restart the local server.
    pub async fn restart_server(&self) -> Result<ServerStatus> {
        self.supervisor.restart().await
    }
}
