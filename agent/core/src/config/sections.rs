//! The typed contents of `config.toml`: one struct per `[section]`, each
//! with its built-in defaults. Serde does the reading, so every field here is
//! a key a user can write; `deny_unknown_fields` turns a misspelt key into
//! an error rather than a silently ignored line. Rules serde cannot express
//! (ranges, URL schemes, pairs of keys) live in `validate`.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

/// Everything a user can configure. Missing keys take their defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `[server]`: listeners.
    pub server: ServerSettings,
    /// `[log]`: logging.
    pub log: LogSettings,
    /// `[events]`: the event bus.
    pub events: EventSettings,
    /// `[ollama]`: the local Ollama server and models.
    pub ollama: OllamaSettings,
    /// `[files]`: projects and their files.
    pub files: FilesSettings,
    /// `[git]`: Git on projects.
    pub git: GitSettingsFile,
    /// `[system]`: machine metrics and alerts.
    pub system: SystemSettings,
    /// `[update]`: self-update.
    pub update: UpdateSettings,
    /// `[access]`: what callers other than the owner may reach.
    pub access: AccessSettings,
    /// `[audit]`: how long the activity log is kept.
    pub audit: AuditSettings,
    /// `[gateway]`: the Ollama- and OpenAI-compatible HTTP front door.
    pub gateway: GatewaySettings,
}

/// `[gateway]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// Address to serve the HTTP APIs on, e.g. "127.0.0.1:11435"; empty:
    /// the gateway is off.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub listen: String,
    /// Same-machine callers without a token are served as `infer`-only
    /// clients (for tools that cannot send a header).
    pub loopback_without_token: bool,
    /// Requests that may wait at once for Ollama to start or a model to
    /// load; more are answered 503.
    pub max_waiting: u32,
    /// How long a request waits for Ollama to start or a model to load.
    #[serde(with = "duration_text")]
    pub wait_timeout: Duration,
    /// PEM certificate chain for TLS on the gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the gateway.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
}

impl GatewaySettings {
    /// The address to listen on, when the gateway is on (validation has
    /// checked that a non-empty value parses).
    pub fn listen_address(&self) -> Option<SocketAddr> {
        self.listen.trim().parse().ok()
    }
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            listen: String::new(),
            loopback_without_token: false,
            // A handful of tools each with a few requests in flight.
            max_waiting: 16,
            // Longer than a typical model load from disk, shorter than the
            // patience of a tool's own HTTP timeout.
            wait_timeout: Duration::from_secs(30),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Entries older than this are deleted.
    #[serde(with = "duration_text")]
    pub retention: Duration,
    /// At most this many entries are kept; the oldest go first.
    pub max_rows: u64,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            // A quarter: long enough to look back on something noticed
            // late, short enough that state.db stays small.
            retention: Duration::from_secs(90 * 24 * 3600),
            max_rows: 100_000,
        }
    }
}

/// `[access]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessSettings {
    /// Folders under which tokens may open and create projects; `~` is the
    /// home folder. The owner may open projects anywhere not on the
    /// deny-list.
    pub project_roots: Vec<String>,
    /// Who a process of the user on the socket is when it presents no
    /// credential: only a client with status (`Owner`, the default: our own
    /// programs present the owner credential), or the owner (`Trusted`).
    pub socket_clients: SocketClients,
    /// How long an access request waits for the user's answer (and a
    /// confirmation for its answer, then for the client's retry).
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
}

/// Who an uncredentialed process of the user on the socket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SocketClients {
    /// Only whoever presents the owner credential is the owner; others get
    /// status and may ask for access.
    #[default]
    Owner,
    /// Every process of the user on the socket is the owner (how the agent
    /// behaved before client admission).
    Trusted,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            project_roots: vec!["~".to_owned()],
            socket_clients: SocketClients::Owner,
            // Long enough to notice a notification and read the dialog.
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// `[update]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateSettings {
    /// Release channel: "stable" or "beta".
    pub channel: String,
    /// Manifest URL; `{channel}` is replaced by the channel. A URL that
    /// answers with a GitHub release list (the default) is searched for
    /// the channel's manifest, pre-releases included for beta.
    pub manifest_url: String,
    /// Time between automatic checks (the first one runs at start).
    #[serde(with = "duration_text")]
    pub check_interval: Duration,
    /// Check automatically. Off: the agent never checks on its own.
    pub enabled: bool,
    /// Minisign public key (base64) that update manifests and artifacts
    /// must be signed with, for builds without a built-in key; ignored
    /// (with a warning) when the binary has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

impl Default for UpdateSettings {
    fn default() -> Self {
        Self {
            channel: "stable".to_owned(),
            // The release list, not releases/latest: that one skips
            // pre-releases, so beta could never reach a beta.
            manifest_url: "https://api.github.com/repos/omnipanel/omnipanel/releases".to_owned(),
            check_interval: Duration::from_secs(24 * 3600),
            enabled: true,
            public_key: None,
        }
    }
}

/// `[git]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitSettingsFile {
    /// Token for https remotes when no credential helper provides one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Host names `token` may be sent to (over https only); empty: nowhere.
    pub token_hosts: Vec<String>,
    /// Network timeout for fetch, pull and push.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
}

impl Default for GitSettingsFile {
    fn default() -> Self {
        Self {
            token: None,
            token_hosts: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// `[files]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilesSettings {
    /// Largest read in one ReadFile call, in MiB.
    pub max_read_mb: u64,
    /// How long changes must be quiet before they are reported as a batch.
    #[serde(with = "duration_text")]
    pub watch_settle: Duration,
    /// Folder names never watched, indexed or listed as regular content.
    pub always_ignored: Vec<String>,
    /// Most folders watched across all open projects (0: only the
    /// kernel's per-user limit applies).
    pub max_watches: usize,
    /// Longest a text search may run; then it ends with DEADLINE_EXCEEDED.
    #[serde(with = "duration_text")]
    pub search_timeout: Duration,
}

impl Default for FilesSettings {
    fn default() -> Self {
        Self {
            max_read_mb: 64,
            watch_settle: Duration::from_millis(50),
            always_ignored: ["node_modules", "target", ".git", "__pycache__", ".venv"]
                .map(str::to_owned)
                .to_vec(),
            max_watches: 0,
            search_timeout: Duration::from_secs(30),
        }
    }
}

/// `[system]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SystemSettings {
    /// Watch alert thresholds. While on (and thresholds exist) the machine
    /// is read every `alert_interval` even when nobody streams metrics.
    pub alerts: bool,
    /// How often thresholds are checked when no stream reads faster.
    #[serde(with = "duration_text")]
    pub alert_interval: Duration,
}

impl Default for SystemSettings {
    fn default() -> Self {
        Self {
            alerts: true,
            alert_interval: Duration::from_secs(5),
        }
    }
}

/// `[ollama]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OllamaSettings {
    /// Path of the `ollama` executable; found on PATH when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary: Option<PathBuf>,
    /// Address in OLLAMA_HOST syntax; OLLAMA_HOST, then 127.0.0.1:11434
    /// when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Start a server when none answers.
    pub autostart: bool,
    /// Time between health checks of the server.
    #[serde(with = "duration_text")]
    pub health_interval: Duration,
    /// How long a health check may take.
    #[serde(with = "duration_text")]
    pub health_timeout: Duration,
    /// Failed health checks in a row after which the server counts as hung.
    pub health_failures: u32,
    /// How long a start may take before it counts as failed.
    #[serde(with = "duration_text")]
    pub startup_timeout: Duration,
    /// How long a stop waits after SIGTERM before SIGKILL.
    #[serde(with = "duration_text")]
    pub stop_timeout: Duration,
    /// Model registry used to look up sizes of models not yet pulled.
    pub registry: String,
    /// Where Ollama stores models: given to a server OmniPanel starts as
    /// OLLAMA_MODELS, and used for the free-disk check. When unset the
    /// server keeps its own default (OLLAMA_MODELS, then ~/.ollama/models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<PathBuf>,
    /// How long a managed server keeps an idle model loaded, in Ollama's
    /// syntax ("5m", "1h", "-1" for ever, seconds): OLLAMA_KEEP_ALIVE.
    /// This and the four below are given to a server OmniPanel starts and
    /// only when set; unset, the server keeps its own default.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "keep_alive_text"
    )]
    pub keep_alive: Option<String>,
    /// Requests each loaded model serves at once: OLLAMA_NUM_PARALLEL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_parallel: Option<u32>,
    /// Models loaded at once: OLLAMA_MAX_LOADED_MODELS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_loaded_models: Option<u32>,
    /// Default context window in tokens: OLLAMA_CONTEXT_LENGTH.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u32>,
    /// Flash attention on or off: OLLAMA_FLASH_ATTENTION=1/0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flash_attention: Option<bool>,
}

impl Default for OllamaSettings {
    fn default() -> Self {
        Self {
            binary: None,
            host: None,
            autostart: true,
            health_interval: Duration::from_secs(5),
            health_timeout: Duration::from_secs(3),
            health_failures: 3,
            startup_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(10),
            registry: "https://registry.ollama.ai".to_owned(),
            models_dir: None,
            keep_alive: None,
            num_parallel: None,
            max_loaded_models: None,
            context_length: None,
            flash_attention: None,
        }
    }
}

/// `keep_alive` as Ollama takes it: text ("5m") or a number of seconds
/// (`-1` for ever), kept as text.
fn keep_alive_text<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Text {
        Seconds(i64),
        Text(String),
    }
    Ok(Some(match Text::deserialize(deserializer)? {
        Text::Seconds(seconds) => seconds.to_string(),
        Text::Text(text) => text,
    }))
}

/// Durations in config.toml are human text ("5s", "1m 30s", "250ms").
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|err| {
            serde::de::Error::custom(format!(
                "{text:?} is not a duration ({err}); write e.g. \"5s\", \"500ms\" or \"2m\""
            ))
        })
    }
}

/// `[events]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSettings {
    /// Events kept for clients that reconnect.
    pub history: u32,
}

impl Default for EventSettings {
    fn default() -> Self {
        Self { history: 4096 }
    }
}

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Optional TCP listener for remote or sandboxed clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<SocketAddr>,
    /// PEM certificate chain for TLS on the TCP listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for TLS on the TCP listener.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key: Option<PathBuf>,
    /// How long a unary call may take before it is answered
    /// DEADLINE_EXCEEDED (the few calls that wait for a download, a server
    /// or a person have their own, longer bound).
    #[serde(with = "duration_text")]
    pub request_timeout: Duration,
    /// Most simultaneous connections on the TCP listener; more are closed
    /// as soon as they are accepted.
    pub max_tcp_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            tcp: None,
            tls_cert: None,
            tls_key: None,
            // Long enough for any local call on a big project (a status of
            // a large repository, a listing of a huge folder), short enough
            // that a stuck call does not hold its resources for ever.
            request_timeout: Duration::from_secs(60),
            // A few clients (editors, a panel, scripts) each with a few
            // connections; far below the file-descriptor limit.
            max_tcp_connections: 64,
        }
    }
}

/// `[log]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `RUST_LOG`-style filter.
    pub filter: String,
    /// Size at which the log file is rotated, in MiB.
    pub max_file_mb: u64,
    /// Rotated files kept besides the current one.
    pub max_files: u32,
    /// The current file is rotated at its first write after it grew this
    /// old, and rotated files older than this are deleted.
    pub max_age_days: u32,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            filter: "info".to_owned(),
            max_file_mb: 10,
            max_files: 5,
            max_age_days: 14,
        }
    }
}
