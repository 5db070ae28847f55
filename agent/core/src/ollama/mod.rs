//! Ollama: the supervised local server, further endpoints (providers), and
//! everything done with models on them. [`Ollama`] is the domain facade the
//! rpc layer calls; it validates names and other input before it picks the
//! endpoint (a bad request is INVALID_ARGUMENT whether or not a server is
//! up), turns Ollama's errors into domain errors that say what to do, and
//! publishes changes on the event bus.

pub mod address;
pub mod api;
pub mod discovery;
pub mod fit;
pub mod names;
pub mod providers;
pub mod pulls;
mod registry;
pub mod supervisor;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::watch;

use crate::{
    config::OllamaSettings,
    error::{Error, ErrorKind, Result},
    events::{EventBus, EventPayload},
    logs::{LogHub, LogSource, RotatingWriter, RotationPolicy},
    ollama::{
        address::OllamaAddress,
        api::{
            ApiError, ChatChunk, GenerateChunk, NdjsonStream, OllamaApi, ShowResponse, StreamLine,
        },
        fit::{FitReport, Resources, VramSource},
        names::ModelName,
        providers::{LOCAL, ProviderRecord, Providers},
        pulls::{PullEnvironment, PullManager, PullProgress, RetryPolicy},
        supervisor::{ServerState, ServerStatus, Supervisor, SupervisorConfig},
    },
    store::Store,
};

/// An installed model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Name with tag.
    pub name: String,
    /// Bytes on disk.
    pub size: u64,
    /// Digest.
    pub digest: String,
    /// Modification time, ms since the epoch.
    pub modified_ms: i64,
    /// Details.
    pub details: api::Details,
    /// Provider.
    pub provider: String,
    /// Whether it is the default model.
    pub is_default: bool,
}

/// A model's full description.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDetails {
    /// Summary.
    pub info: ModelInfo,
    /// Raw answer of /api/show.
    pub show: ShowResponse,
}

/// A loaded model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModel {
    /// Name.
    pub name: String,
    /// Bytes in memory.
    pub size: u64,
    /// Bytes in VRAM.
    pub size_vram: u64,
    /// Expiry, ms since the epoch.
    pub expires_ms: i64,
    /// Digest.
    pub digest: String,
    /// Provider.
    pub provider: String,
}

/// A provider as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// The supervised local server?
    pub local: bool,
    /// Sends a token?
    pub has_token: bool,
    /// Version last seen.
    pub version: String,
}

/// A chat turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Role.
    pub role: String,
    /// Text.
    pub content: String,
    /// Base64 images.
    pub images: Vec<String>,
}

/// Parameters shared by chat and generate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerationOptions {
    /// Model options as JSON text.
    pub options_json: String,
    /// keep_alive.
    pub keep_alive: String,
    /// "", "json" or a JSON schema.
    pub format: String,
}

/// A generate request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateParams {
    /// Prompt.
    pub prompt: String,
    /// System prompt.
    pub system: String,
    /// Context to continue.
    pub context: Vec<i64>,
    /// Skip the template.
    pub raw: bool,
}

const DEFAULT_MODEL_KEY: &str = "default_model";

/// An endpoint to send a request to.
#[derive(Debug, Clone)]
struct Endpoint {
    name: String,
    api: OllamaApi,
    local: bool,
}

/// The Ollama domain facade.
#[derive(Debug)]
pub struct Ollama {
    supervisor: Supervisor,
    local: OllamaApi,
    address: OllamaAddress,
    http: HttpClients,
    providers: Providers,
    pulls: Arc<PullManager>,
    store: Store,
    bus: Arc<EventBus>,
    registry: String,
    models_dir: PathBuf,
    vram: VramSource,
}

/// The pull task's view of the supervisor.
#[derive(Debug)]
struct ServerWait {
    status: watch::Receiver<ServerStatus>,
}

/// How long an interrupted pull waits for the local server to come back.
const PULL_SERVER_WAIT: Duration = Duration::from_secs(120);

impl PullEnvironment for ServerWait {
    async fn wait_until_up(&self, provider: &str) -> std::result::Result<(), String> {
        if provider != LOCAL {
            return Ok(());
        }
        let mut status = self.status.clone();
        let waited = tokio::time::timeout(
            PULL_SERVER_WAIT,
            status.wait_for(|s| {
                s.state.is_up()
                    || matches!(s.state, ServerState::Stopped | ServerState::NotInstalled)
            }),
        )
        .await;
        match waited {
            Ok(Ok(s)) if s.state.is_up() => Ok(()),
            Ok(Ok(s)) => Err(format!(
                "the Ollama server is {} ({}); the pull cannot continue",
                s.state.name(),
                s.reason
            )),
            Ok(Err(_)) => Err("the Ollama supervisor stopped".to_owned()),
            Err(_) => Err(format!(
                "the Ollama server did not come back within {} s",
                PULL_SERVER_WAIT.as_secs()
            )),
        }
    }
}

fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // No idle-pool timer: an idle agent runs no timers. Stale pooled
        // connections are detected when they are next used.
        .pool_idle_timeout(None)
        .pool_max_idle_per_host(4)
        .user_agent(concat!("omnipanel/", env!("CARGO_PKG_VERSION")))
}

/// HTTP clients: a plain one for `http://` (the local server, usually),
/// and one with the system's trust store for `https://`, built on first
/// use because loading the trust store costs tens of milliseconds and
/// megabytes that an agent talking only to a local Ollama never needs.
#[derive(Debug)]
struct HttpClients {
    plain: reqwest::Client,
    tls: tokio::sync::OnceCell<reqwest::Client>,
}

impl HttpClients {
    fn new() -> Result<Self> {
        let plain = http_builder()
            // An empty trust store: nothing is loaded, and an https URL
            // given to this client fails instead of going unverified.
            .tls_certs_only([])
            .build()
            .map_err(|err| Error::internal(format!("cannot build the HTTP client: {err}")))?;
        Ok(Self {
            plain,
            tls: tokio::sync::OnceCell::new(),
        })
    }

    async fn for_url(&self, url: &str) -> Result<reqwest::Client> {
        if !url.starts_with("https://") {
            return Ok(self.plain.clone());
        }
        let client = self
            .tls
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(|| http_builder().build())
                    .await?
                    .map_err(|err| Error::internal(format!("cannot set up TLS: {err}")))
            })
            .await?;
        Ok(client.clone())
    }
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

/// Check a keep_alive value the way Ollama parses it: a number of seconds
/// or a Go duration ("10m", "1h30m", "-1" for forever). Returns the JSON
/// value to send.
pub fn keep_alive_value(raw: &str) -> Result<Option<serde_json::Value>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(seconds) = raw.parse::<i64>() {
        return Ok(Some(serde_json::Value::from(seconds)));
    }
    let body = raw.strip_prefix('-').unwrap_or(raw);
    let mut rest = body;
    let mut any = false;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            break;
        }
        let after = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| after.starts_with(*u))
            .max_by_key(|u| u.len());
        let Some(unit) = unit else { break };
        rest = &after[unit.len()..];
        any = true;
    }
    if !any || !rest.is_empty() {
        return Err(Error::invalid_argument(
            "keep_alive",
            format!(
                "{raw:?} is not a duration; use seconds or e.g. \"10m\", \"1h\", \"-1\" (forever)"
            ),
        ));
    }
    Ok(Some(serde_json::Value::from(raw)))
}

fn parse_json_object(field: &str, text: &str) -> Result<Option<serde_json::Value>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(Some(value)),
        Ok(_) => Err(Error::invalid_argument(field, "must be a JSON object")),
        Err(err) => Err(Error::invalid_argument(
            field,
            format!("is not valid JSON: {err}"),
        )),
    }
}

fn format_value(format: &str) -> Result<Option<serde_json::Value>> {
    match format.trim() {
        "" => Ok(None),
        "json" => Ok(Some(serde_json::Value::from("json"))),
        schema => parse_json_object("format", schema)
            .map_err(|_| Error::invalid_argument("format", "use \"json\" or a JSON schema object")),
    }
}

impl Ollama {
    /// Start supervision and open the providers. Registers the "ollama"
    /// log source. `vram` reads GPU memory for fit checks (the system
    /// module provides it; this module knows nothing about GPUs).
    pub fn start(
        settings: &OllamaSettings,
        store: Store,
        bus: Arc<EventBus>,
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
            http_builder()
                .build()
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
                models_dir: settings.models_dir.clone(),
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
        Ok(Arc::new(Self {
            supervisor,
            local,
            address,
            http,
            providers: Providers::new(store.clone()),
            pulls: PullManager::new(bus.clone(), RetryPolicy::default()),
            store,
            bus,
            registry: settings.registry.clone(),
            models_dir: models_dir(settings),
            vram,
        }))
    }

    /// Stop a managed server (agent shutdown).
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

    /// Whether a pull is running.
    pub fn pull_running(&self) -> bool {
        self.pulls.any_running()
    }

    async fn endpoint(&self, provider: &str) -> Result<Endpoint> {
        if provider.is_empty() || provider == LOCAL {
            let status = self.supervisor.status();
            if !status.state.is_up() {
                return Err(self.server_down(&status));
            }
            return Ok(Endpoint {
                name: LOCAL.to_owned(),
                api: self.local.clone(),
                local: true,
            });
        }
        let record = self.providers.get(provider).await?;
        Ok(Endpoint {
            name: record.name,
            api: OllamaApi::new(
                self.http.for_url(&record.url).await?,
                &record.url,
                record.token,
            ),
            local: false,
        })
    }

    fn server_down(&self, status: &ServerStatus) -> Error {
        server_down(&self.address, status)
    }

    fn api_error(&self, endpoint: &Endpoint, err: ApiError) -> Error {
        api_error(&self.address, &self.supervisor.status(), endpoint, err)
    }

    /// A reply stream whose failures are mapped like any other call's.
    fn reply_stream<T: StreamLine>(
        &self,
        endpoint: Endpoint,
        lines: NdjsonStream<T>,
    ) -> ReplyStream<T> {
        ReplyStream {
            lines,
            endpoint,
            address: self.address.clone(),
            server: self.supervisor.watch(),
        }
    }

    /// The default model, "" when none is set.
    pub async fn default_model(&self) -> Result<String> {
        Ok(self
            .store
            .meta(DEFAULT_MODEL_KEY)
            .await?
            .unwrap_or_default())
    }

    /// Resolve the model of a request: the given one, else the default.
    async fn resolve_model(&self, model: &str) -> Result<ModelName> {
        if model.is_empty() {
            let default = self.default_model().await?;
            if default.is_empty() {
                return Err(Error::invalid_argument(
                    "model",
                    "no model given and no default model set; set one with `omnipanel models default NAME`",
                ));
            }
            return ModelName::parse("model", &default);
        }
        ModelName::parse("model", model)
    }

    /// Installed models, newest first.
    pub async fn list_models(&self, provider: &str) -> Result<Vec<ModelInfo>> {
        let endpoint = self.endpoint(provider).await?;
        let tags = endpoint
            .api
            .tags()
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        let default = self.default_model().await.unwrap_or_default();
        let mut models: Vec<ModelInfo> = tags
            .into_iter()
            .map(|tag| ModelInfo {
                is_default: endpoint.local
                    && !default.is_empty()
                    && names::same_model(&tag.name, &default),
                modified_ms: api::timestamp_ms(&tag.modified_at),
                name: tag.name,
                size: tag.size,
                digest: tag.digest,
                details: tag.details,
                provider: endpoint.name.clone(),
            })
            .collect();
        models.sort_by(|a, b| {
            b.modified_ms
                .cmp(&a.modified_ms)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(models)
    }

    /// One installed model, or NOT_FOUND.
    async fn installed(&self, endpoint: &Endpoint, name: &ModelName) -> Result<Option<ModelInfo>> {
        let models = self.list_models(&endpoint.name).await?;
        Ok(models
            .into_iter()
            .find(|m| names::same_model(&m.name, &name.display())))
    }

    /// Details of a model.
    pub async fn show_model(&self, provider: &str, model: &str) -> Result<ModelDetails> {
        let name = ModelName::parse("model", model)?;
        let endpoint = self.endpoint(provider).await?;
        let show = endpoint
            .api
            .show(&name.display())
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        let info = self
            .installed(&endpoint, &name)
            .await?
            .unwrap_or(ModelInfo {
                name: name.display(),
                size: 0,
                digest: String::new(),
                modified_ms: api::timestamp_ms(&show.modified_at),
                details: show.details.clone(),
                provider: endpoint.name.clone(),
                is_default: false,
            });
        Ok(ModelDetails { info, show })
    }

    /// Delete a model.
    pub async fn delete_model(&self, provider: &str, model: &str) -> Result<()> {
        let name = ModelName::parse("model", model)?;
        let endpoint = self.endpoint(provider).await?;
        endpoint
            .api
            .delete(&name.display())
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        tracing::info!(provider = %endpoint.name, model = %name, "model deleted");
        self.bus.publish(EventPayload::ModelsChanged {
            provider: endpoint.name.clone(),
            model: name.display(),
            change: "deleted".to_owned(),
        });
        Ok(())
    }

    /// Loaded models.
    pub async fn running_models(&self, provider: &str) -> Result<Vec<LoadedModel>> {
        let endpoint = self.endpoint(provider).await?;
        let running = endpoint
            .api
            .ps()
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        Ok(running
            .into_iter()
            .map(|m| LoadedModel {
                expires_ms: api::timestamp_ms(&m.expires_at),
                name: m.name,
                size: m.size,
                size_vram: m.size_vram,
                digest: m.digest,
                provider: endpoint.name.clone(),
            })
            .collect())
    }

    /// Load a model (the default one when `model` is empty).
    pub async fn load_model(
        &self,
        provider: &str,
        model: &str,
        keep_alive: &str,
    ) -> Result<String> {
        let name = self.resolve_model(model).await?;
        let mut body =
            serde_json::json!({ "model": name.display(), "prompt": "", "stream": false });
        if let Some(keep_alive) = keep_alive_value(keep_alive)? {
            body["keep_alive"] = keep_alive;
        }
        let endpoint = self.endpoint(provider).await?;
        endpoint
            .api
            .generate_once(&body)
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        self.bus.publish(EventPayload::ModelsChanged {
            provider: endpoint.name.clone(),
            model: name.display(),
            change: "loaded".to_owned(),
        });
        Ok(name.display())
    }

    /// Unload a model.
    pub async fn unload_model(&self, provider: &str, model: &str) -> Result<()> {
        let name = ModelName::parse("model", model)?;
        let endpoint = self.endpoint(provider).await?;
        let body = serde_json::json!({ "model": name.display(), "keep_alive": 0, "stream": false });
        endpoint
            .api
            .generate_once(&body)
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        self.bus.publish(EventPayload::ModelsChanged {
            provider: endpoint.name.clone(),
            model: name.display(),
            change: "unloaded".to_owned(),
        });
        Ok(())
    }

    /// Set (or clear, with "") the default model.
    pub async fn set_default_model(&self, model: &str) -> Result<String> {
        let value = if model.is_empty() {
            String::new()
        } else {
            let name = ModelName::parse("model", model)?;
            if self.supervisor.status().state.is_up() {
                let endpoint = self.endpoint(LOCAL).await?;
                if self.installed(&endpoint, &name).await?.is_none() {
                    return Err(Error::not_found(format!(
                        "{name} is not installed; pull it first with `omnipanel models pull {name}`"
                    ))
                    .with_reason("MODEL_NOT_FOUND"));
                }
            }
            name.display()
        };
        self.store
            .set_meta(DEFAULT_MODEL_KEY, value.clone())
            .await?;
        tracing::info!(model = %value, "default model changed");
        self.bus.publish(EventPayload::DefaultModelChanged {
            model: value.clone(),
        });
        Ok(value)
    }

    /// Will `model` fit on this machine?
    pub async fn check_fit(&self, provider: &str, model: &str) -> Result<FitReport> {
        if !(provider.is_empty() || provider == LOCAL) {
            return Err(Error::failed_precondition(
                "fit checks compare with this machine's memory, so they are only available for the local provider",
            ));
        }
        let name = ModelName::parse("model", model)?;
        let installed = if self.supervisor.status().state.is_up() {
            let endpoint = self.endpoint(LOCAL).await?;
            self.installed(&endpoint, &name).await?
        } else {
            None
        };
        let (size, is_installed) = match installed {
            Some(model) => (model.size, true),
            None => (
                registry::download_size(&self.http, &self.registry, &name).await?,
                false,
            ),
        };
        let models_dir = self.models_dir.clone();
        let vram = self.vram.clone();
        let resources = tokio::task::spawn_blocking(move || Resources {
            // Without a GPU reading the verdict is based on RAM alone.
            vram: vram.read(),
            free_ram: fit::available_memory(),
            free_disk: fit::free_disk(&models_dir),
        })
        .await?;
        Ok(fit::assess(size, is_installed, resources))
    }

    /// Start (or attach to) a pull. Also returns the fit check when it
    /// could be made.
    pub async fn pull(
        &self,
        provider: &str,
        model: &str,
        insecure: bool,
    ) -> Result<(watch::Receiver<PullProgress>, Option<FitReport>)> {
        let name = ModelName::parse("model", model)?;
        let endpoint = self.endpoint(provider).await?;
        let fit = if endpoint.local {
            match self.check_fit(LOCAL, model).await {
                Ok(report) => Some(report),
                Err(err) => {
                    tracing::info!(model = %name, error = %err, "no fit check before the pull");
                    None
                }
            }
        } else {
            None
        };
        let env = Arc::new(ServerWait {
            status: self.supervisor.watch(),
        });
        let progress = self.pulls.start_or_attach(
            env,
            endpoint.api.clone(),
            &endpoint.name,
            &name.key(),
            &name.display(),
            insecure,
        );
        Ok((progress, fit))
    }

    /// Cancel a pull.
    pub async fn cancel_pull(&self, provider: &str, model: &str) -> Result<PullProgress> {
        let name = ModelName::parse("model", model)?;
        let provider = if provider.is_empty() { LOCAL } else { provider };
        self.pulls.cancel(provider, &name.key()).await
    }

    /// Running and recent pulls.
    pub fn list_pulls(&self) -> Vec<PullProgress> {
        self.pulls.list()
    }

    /// Start a chat stream.
    pub async fn chat(
        &self,
        provider: &str,
        model: &str,
        messages: Vec<ChatMessage>,
        options: GenerationOptions,
    ) -> Result<ReplyStream<ChatChunk>> {
        if messages.is_empty() {
            return Err(Error::invalid_argument(
                "messages",
                "a chat needs at least one message",
            ));
        }
        for (index, message) in messages.iter().enumerate() {
            if !matches!(
                message.role.as_str(),
                "system" | "user" | "assistant" | "tool"
            ) {
                return Err(Error::invalid_argument(
                    format!("messages[{index}].role"),
                    format!(
                        "{:?} is not one of system, user, assistant, tool",
                        message.role
                    ),
                ));
            }
        }
        let name = self.resolve_model(model).await?;
        let messages: Vec<serde_json::Value> = messages
            .into_iter()
            .map(|m| {
                let mut value = serde_json::json!({ "role": m.role, "content": m.content });
                if !m.images.is_empty() {
                    value["images"] = serde_json::Value::from(m.images);
                }
                value
            })
            .collect();
        let mut body =
            serde_json::json!({ "model": name.display(), "messages": messages, "stream": true });
        apply_options(&mut body, &options)?;
        let endpoint = self.endpoint(provider).await?;
        let lines = endpoint
            .api
            .chat(&body)
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        Ok(self.reply_stream(endpoint, lines))
    }

    /// Start a generate stream.
    pub async fn generate(
        &self,
        provider: &str,
        model: &str,
        params: GenerateParams,
        options: GenerationOptions,
    ) -> Result<ReplyStream<GenerateChunk>> {
        let name = self.resolve_model(model).await?;
        let mut body =
            serde_json::json!({ "model": name.display(), "prompt": params.prompt, "stream": true });
        if !params.system.is_empty() {
            body["system"] = serde_json::Value::from(params.system);
        }
        if !params.context.is_empty() {
            body["context"] = serde_json::Value::from(params.context);
        }
        if params.raw {
            body["raw"] = serde_json::Value::from(true);
        }
        apply_options(&mut body, &options)?;
        let endpoint = self.endpoint(provider).await?;
        let lines = endpoint
            .api
            .generate(&body)
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        Ok(self.reply_stream(endpoint, lines))
    }

    /// "local" and the stored providers.
    pub async fn list_providers(&self) -> Result<Vec<ProviderInfo>> {
        let status = self.supervisor.status();
        let mut out = vec![ProviderInfo {
            name: LOCAL.to_owned(),
            url: self.address.base_url(),
            local: true,
            has_token: false,
            version: status.version.unwrap_or_default(),
        }];
        out.extend(
            self.providers
                .list()
                .await?
                .into_iter()
                .map(|p| ProviderInfo {
                    has_token: p.token.is_some(),
                    name: p.name,
                    url: p.url,
                    local: false,
                    version: p.version,
                }),
        );
        Ok(out)
    }

    /// Add a provider after checking that it answers.
    pub async fn add_provider(&self, name: &str, url: &str, token: &str) -> Result<ProviderInfo> {
        providers::validate_name(name)?;
        let url = providers::validate_url(url)?;
        let token = (!token.is_empty()).then(|| token.to_owned());
        let api = OllamaApi::new(self.http.for_url(&url).await?, &url, token.clone());
        let version = api.version(Duration::from_secs(10)).await.map_err(|err| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{url} does not answer like an Ollama server ({err}); nothing was saved"),
            )
            .with_reason("PROVIDER_UNREACHABLE")
        })?;
        self.providers
            .add(ProviderRecord {
                name: name.to_owned(),
                url: url.clone(),
                token: token.clone(),
                version: version.clone(),
            })
            .await?;
        tracing::info!(name, url = %url, "provider added");
        self.bus.publish(EventPayload::ProvidersChanged {
            name: name.to_owned(),
            removed: false,
        });
        Ok(ProviderInfo {
            name: name.to_owned(),
            url,
            local: false,
            has_token: token.is_some(),
            version,
        })
    }

    /// Remove a provider.
    pub async fn remove_provider(&self, name: &str) -> Result<()> {
        self.providers.remove(name).await?;
        tracing::info!(name, "provider removed");
        self.bus.publish(EventPayload::ProvidersChanged {
            name: name.to_owned(),
            removed: true,
        });
        Ok(())
    }
}

/// A chat or generate reply streaming from Ollama. An `{"error": ...}`
/// line or a broken connection in the middle of it comes out as a domain
/// error, mapped by the same rules as the failure of any other call, so a
/// client sees Ollama's message and a code it can act on rather than a
/// generic "unavailable".
#[derive(Debug)]
pub struct ReplyStream<T> {
    lines: NdjsonStream<T>,
    endpoint: Endpoint,
    address: OllamaAddress,
    /// Read when a failure happens, so a transport error names the state
    /// the server is in at that moment.
    server: watch::Receiver<ServerStatus>,
}

impl<T: StreamLine> ReplyStream<T> {
    /// The next chunk; `None` at the end. An error ends the stream.
    pub async fn next(&mut self) -> Option<Result<T>> {
        let line = self.lines.next().await?;
        Some(line.map_err(|err| {
            let server = self.server.borrow().clone();
            api_error(&self.address, &server, &self.endpoint, err)
        }))
    }
}

/// UNAVAILABLE naming the local server's state, with what to do about it.
fn server_down(address: &OllamaAddress, status: &ServerStatus) -> Error {
    let hint = match status.state {
        // The reason of NOT_INSTALLED usually says how to install already.
        ServerState::Stopped => "; start it with `omnipanel ollama start`".to_owned(),
        _ => String::new(),
    };
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "the Ollama server at {address} is not available (state {}: {}){hint}",
            status.state.name(),
            status.reason
        ),
    )
    .with_reason("OLLAMA_DOWN")
}

/// Whether an Ollama error message says the model does not exist. Ollama
/// answers that with HTTP 404 before a reply starts, but the same words
/// can come as the error line of a stream (HTTP 200), and they mean the
/// same to a client.
fn is_missing_model(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("model") && message.contains("not found")
}

/// Turn a failed call to `endpoint` into a domain error. `server` is the
/// local server's status at the time of the failure.
fn api_error(
    address: &OllamaAddress,
    server: &ServerStatus,
    endpoint: &Endpoint,
    err: ApiError,
) -> Error {
    match err {
        ApiError::Unreachable(why) | ApiError::Interrupted(why) => {
            if !endpoint.local {
                return Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "provider {} at {} did not answer: {why}",
                        endpoint.name,
                        endpoint.api.base()
                    ),
                )
                .with_reason("PROVIDER_DOWN");
            }
            if !server.state.is_up() {
                return server_down(address, server);
            }
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the Ollama server at {address} did not answer: {why} (state {}: {})",
                    server.state.name(),
                    server.reason
                ),
            )
            .with_reason("OLLAMA_DOWN")
        }
        ApiError::Ollama {
            status: 404,
            message,
        } => Error::not_found(message).with_reason("MODEL_NOT_FOUND"),
        ApiError::Ollama {
            status: 200,
            message,
        } if is_missing_model(&message) => Error::not_found(message).with_reason("MODEL_NOT_FOUND"),
        ApiError::Ollama {
            status: 400,
            message,
        } => Error::invalid_argument("request", message),
        ApiError::Ollama {
            status: 503,
            message,
        } => Error::new(ErrorKind::Unavailable, message).with_reason("OLLAMA_BUSY"),
        ApiError::Ollama { message, .. } => {
            Error::failed_precondition(message).with_reason("OLLAMA_ERROR")
        }
        ApiError::Unexpected(why) => Error::internal(format!(
            "{} answered in an unexpected way: {why}",
            endpoint.api.base()
        )),
    }
}

fn apply_options(body: &mut serde_json::Value, options: &GenerationOptions) -> Result<()> {
    if let Some(value) = parse_json_object("options_json", &options.options_json)? {
        body["options"] = value;
    }
    if let Some(value) = keep_alive_value(&options.keep_alive)? {
        body["keep_alive"] = value;
    }
    if let Some(value) = format_value(&options.format)? {
        body["format"] = value;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_accepts_what_ollama_accepts() {
        for ok in ["", "0", "300", "-1", "10m", "1h30m", "1.5h", "500ms", "-1m"] {
            assert!(keep_alive_value(ok).is_ok(), "{ok}");
        }
        for bad in ["ten", "10 minutes", "5x", "m", "1h-"] {
            assert!(keep_alive_value(bad).is_err(), "{bad}");
        }
        assert_eq!(
            keep_alive_value("0").ok().flatten(),
            Some(serde_json::Value::from(0))
        );
    }

    fn server(state: ServerState, reason: &str) -> ServerStatus {
        ServerStatus {
            state,
            version: None,
            pid: None,
            address: "127.0.0.1:11434".into(),
            ready_since_ms: None,
            restart_count: 0,
            last_error: None,
            binary: None,
            next_attempt_ms: None,
            reason: reason.into(),
        }
    }

    #[test]
    fn failures_in_a_reply_map_like_any_other_call() -> Result<()> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let address = OllamaAddress::parse("127.0.0.1:11434");
        let http = HttpClients::new()?;
        let local = Endpoint {
            name: LOCAL.into(),
            api: OllamaApi::new(http.plain.clone(), &address.base_url(), None),
            local: true,
        };
        let running = server(ServerState::Running, "the server answers");
        let line = |message: &str| ApiError::Ollama {
            status: 200,
            message: message.into(),
        };

        // An error line keeps Ollama's words; a missing model is NOT_FOUND
        // whether Ollama says so before (404) or during (200) the reply.
        let died = api_error(
            &address,
            &running,
            &local,
            line("model runner has unexpectedly stopped"),
        );
        assert_eq!(died.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(died.message(), "model runner has unexpectedly stopped");
        assert_eq!(died.reason(), Some("OLLAMA_ERROR"));
        for missing in [
            "model 'x' not found",
            "model \"x\" not found, try pulling it first",
        ] {
            let err = api_error(&address, &running, &local, line(missing));
            assert_eq!(
                (err.kind(), err.message(), err.reason()),
                (ErrorKind::NotFound, missing, Some("MODEL_NOT_FOUND"))
            );
        }

        // A broken connection is UNAVAILABLE naming the server's state.
        let broke = ApiError::Interrupted("connection reset".into());
        let err = api_error(&address, &running, &local, broke.clone());
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(
            err.message().contains("connection reset") && err.message().contains("RUNNING"),
            "{err}"
        );
        let crashed = server(
            ServerState::Crashed,
            "ollama exited with status 1 unexpectedly",
        );
        let err = api_error(&address, &crashed, &local, broke.clone());
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(
            err.message().contains("CRASHED") && err.message().contains("status 1"),
            "{err}"
        );
        let remote = Endpoint {
            name: "gpu-box".into(),
            api: OllamaApi::new(http.plain.clone(), "http://10.0.0.2:11434", None),
            local: false,
        };
        let err = api_error(&address, &crashed, &remote, broke);
        assert_eq!(err.reason(), Some("PROVIDER_DOWN"));
        assert!(err.message().contains("gpu-box"), "{err}");
        Ok(())
    }

    #[test]
    fn options_must_be_json_objects() {
        let mut body = serde_json::json!({});
        let bad = GenerationOptions {
            options_json: "[1]".into(),
            ..Default::default()
        };
        assert_eq!(
            apply_options(&mut body, &bad).unwrap_err().field(),
            Some("options_json")
        );
        let good = GenerationOptions {
            options_json: "{\"temperature\":0.1}".into(),
            format: "json".into(),
            keep_alive: "5m".into(),
        };
        assert!(apply_options(&mut body, &good).is_ok());
        assert_eq!(body["options"]["temperature"], 0.1);
        assert_eq!(body["format"], "json");
    }
}
