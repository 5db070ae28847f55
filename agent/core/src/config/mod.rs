//! Settings: the typed contents of `config.toml`, their built-in defaults,
//! the table that documents every key, loading with errors that name file,
//! line and key, and edits made through the API that are written back with
//! comments and layout kept (toml_edit) and published to the running agent
//! through a watch channel.

use std::{
    fmt,
    net::SocketAddr,
    ops::Range,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, watch};
use toml_edit::{DocumentMut, Item, Table, Value};

use crate::{
    atomic_file::write_atomically,
    error::{Error, Result},
};

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
}

/// `[update]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UpdateSettings {
    /// Release channel: "stable" or "beta".
    pub channel: String,
    /// Manifest URL; `{channel}` is replaced by the channel.
    pub manifest_url: String,
    /// Time between automatic checks (the first one runs at start).
    #[serde(with = "duration_text")]
    pub check_interval: Duration,
    /// Check automatically. Off: the agent never checks on its own.
    pub enabled: bool,
    /// Minisign public key (base64) that update artifacts must be signed
    /// with; the key built into the binary when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
}

impl Default for UpdateSettings {
    fn default() -> Self {
        Self {
            channel: "stable".to_owned(),
            manifest_url:
                "https://github.com/omnipanel/omnipanel/releases/latest/download/manifest-{channel}.json"
                    .to_owned(),
            check_interval: Duration::from_secs(24 * 3600),
            enabled: true,
            public_key: None,
        }
    }
}

/// Release channels.
pub const UPDATE_CHANNELS: &[&str] = &["stable", "beta"];
/// Bounds of `update.check_interval`.
const CHECK_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(60)..=Duration::from_secs(30 * 24 * 3600);

/// `[git]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GitSettingsFile {
    /// Token for https remotes when no credential helper provides one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Network timeout for fetch, pull and push.
    #[serde(with = "duration_text")]
    pub timeout: Duration,
}

impl Default for GitSettingsFile {
    fn default() -> Self {
        Self {
            token: None,
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

/// Bounds of `system.alert_interval`.
const ALERT_INTERVAL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(250)..=Duration::from_secs(3600);

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
        }
    }
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

/// Bounds of `events.history`.
const EVENT_HISTORY_RANGE: std::ops::RangeInclusive<u32> = 16..=1_000_000;

/// `[server]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
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

/// Documentation of one settings key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingSpec {
    /// Dotted key, `section.name`.
    pub key: &'static str,
    /// What it does.
    pub description: &'static str,
    /// Whether a change needs an agent restart to take effect.
    pub restart_required: bool,
}

/// Every settings key, in the order `GetSettings` lists them. A unit test
/// checks that this table and [`Settings`] agree.
pub const SETTINGS: &[SettingSpec] = &[
    SettingSpec {
        key: "server.tcp",
        description: "Address of an optional TCP listener, e.g. \"127.0.0.1:7457\"; clients need a token. Non-loopback addresses require tls_cert and tls_key.",
        restart_required: true,
    },
    SettingSpec {
        key: "server.tls_cert",
        description: "PEM certificate chain for TLS on the TCP listener.",
        restart_required: true,
    },
    SettingSpec {
        key: "server.tls_key",
        description: "PEM private key for TLS on the TCP listener.",
        restart_required: true,
    },
    SettingSpec {
        key: "log.filter",
        description: "Log filter in RUST_LOG syntax, e.g. \"info\" or \"info,omnipanel_core=debug\". Applied immediately.",
        restart_required: false,
    },
    SettingSpec {
        key: "log.max_file_mb",
        description: "Size in MiB at which the log file is rotated.",
        restart_required: true,
    },
    SettingSpec {
        key: "log.max_files",
        description: "How many rotated log files are kept besides the current one.",
        restart_required: true,
    },
    SettingSpec {
        key: "log.max_age_days",
        description: "The log file is rotated once it is this many days old; rotated files older than this are deleted.",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.binary",
        description: "Path of the ollama executable; when unset it is looked up on PATH and in the usual install places.",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.host",
        description: "Address of the local Ollama server in OLLAMA_HOST syntax; when unset, OLLAMA_HOST, then 127.0.0.1:11434.",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.autostart",
        description: "Start `ollama serve` when no server answers at the address.",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.health_interval",
        description: "Time between health checks of the server, e.g. \"5s\".",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.health_timeout",
        description: "How long one health check may take.",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.health_failures",
        description: "Failed health checks in a row after which a managed server counts as hung and is restarted.",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.startup_timeout",
        description: "How long a started server may take to answer before the start counts as failed.",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.stop_timeout",
        description: "How long stopping waits after SIGTERM before it sends SIGKILL.",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.registry",
        description: "Model registry used to look up the size of models that are not pulled yet.",
        restart_required: true,
    },
    SettingSpec {
        key: "ollama.models_dir",
        description: "Where Ollama keeps models: a server OmniPanel starts gets it as OLLAMA_MODELS, and fit checks measure free disk there; when unset, OLLAMA_MODELS, then ~/.ollama/models.",
        restart_required: true,
    },
    SettingSpec {
        key: "files.max_read_mb",
        description: "Largest read, in MiB, one ReadFile call may return; larger files are read in parts.",
        restart_required: true,
    },
    SettingSpec {
        key: "files.watch_settle",
        description: "How long file changes must be quiet before they are reported together, e.g. \"50ms\".",
        restart_required: true,
    },
    SettingSpec {
        key: "files.always_ignored",
        description: "Folder names that are never watched or searched, whatever .gitignore says.",
        restart_required: true,
    },
    SettingSpec {
        key: "files.max_watches",
        description: "Most folders the agent watches for changes, across all open projects; 0 (the default) leaves only the kernel's per-user limit (fs.inotify.max_user_watches, shared with editors). Beyond it a project is served in degraded mode: the top of its tree is watched, the rest is indexed and listed again when searched.",
        restart_required: true,
    },
    SettingSpec {
        key: "git.token",
        description: "Token for https Git remotes, used when ssh-agent and the git credential helper have nothing (sent as the password).",
        restart_required: true,
    },
    SettingSpec {
        key: "git.timeout",
        description: "Network timeout for fetch, pull and push, e.g. \"30s\"; a remote that stops answering fails instead of hanging.",
        restart_required: true,
    },
    SettingSpec {
        key: "system.alerts",
        description: "Watch alert thresholds (see `omnipanel alerts thresholds`). While on, the machine is read every system.alert_interval even when nobody streams metrics; set false for an agent that reads nothing while idle. Applied immediately.",
        restart_required: false,
    },
    SettingSpec {
        key: "system.alert_interval",
        description: "How often alert thresholds are checked when no metrics stream reads faster, e.g. \"5s\" (250ms to 1h). Applied immediately.",
        restart_required: false,
    },
    SettingSpec {
        key: "update.channel",
        description: "Release channel to follow: \"stable\" or \"beta\". Applied at the next check.",
        restart_required: false,
    },
    SettingSpec {
        key: "update.manifest_url",
        description: "URL of the update manifest (JSON); {channel} is replaced by update.channel. Point it at your own server to self-host updates. Applied at the next check.",
        restart_required: false,
    },
    SettingSpec {
        key: "update.check_interval",
        description: "Time between automatic update checks, e.g. \"24h\" (1m to 30 days); the first check runs when the agent starts. Applied immediately.",
        restart_required: false,
    },
    SettingSpec {
        key: "update.enabled",
        description: "Check for updates automatically. When false the agent never contacts the update server on its own (`omnipanel update check` still works). Nothing is ever installed without being asked. Applied immediately.",
        restart_required: false,
    },
    SettingSpec {
        key: "update.public_key",
        description: "Minisign public key (the base64 line of a .pub file) that update artifacts must be signed with; unset uses the key built into the agent. For self-hosted update servers.",
        restart_required: false,
    },
    SettingSpec {
        key: "events.history",
        description: "How many recent events the agent keeps so reconnecting clients can catch up (16 to 1000000).",
        restart_required: true,
    },
];

/// Look up the documentation of a key.
pub fn spec(key: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|spec| spec.key == key)
}

/// A configuration file that cannot be used, located as precisely as the
/// parser allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A setting's value and documentation, as `GetSettings` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingView {
    /// The documentation.
    pub spec: &'static SettingSpec,
    /// Effective value as a TOML literal; empty when unset.
    pub value: String,
    /// Default as a TOML literal; empty when unset by default.
    pub default_value: String,
    /// Whether config.toml sets it.
    pub is_set: bool,
}

/// One requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    /// Dotted key.
    pub key: String,
    /// New value (TOML literal or plain text); ignored when `reset`.
    pub value: String,
    /// Remove the key so the default applies.
    pub reset: bool,
}

/// Read and validate `path`. A missing file means defaults.
pub fn load(path: &Path) -> std::result::Result<Settings, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            return Err(ConfigError {
                path: path.to_owned(),
                line: None,
                key: None,
                message: format!("cannot read the file: {err}"),
            });
        }
    };
    parse(path, &text)
}

/// Parse and validate configuration text; `path` is only used in errors.
pub fn parse(path: &Path, text: &str) -> std::result::Result<Settings, ConfigError> {
    let located = |span: Option<Range<usize>>, key: Option<String>, message: String| ConfigError {
        path: path.to_owned(),
        line: span.map(|span| line_of(text, span.start)),
        key,
        message,
    };
    let document = toml_edit::Document::parse(text)
        .map_err(|err| located(err.span(), None, err.message().trim().to_owned()))?;
    let settings: Settings = toml_edit::de::from_str(text).map_err(|err| {
        let key = err
            .span()
            .and_then(|span| key_at(document.as_table(), span.start, ""));
        let span = err.span();
        located(span, key, err.message().trim().to_owned())
    })?;
    validate(&settings).map_err(|(key, message)| {
        let span = key_span(document.as_table(), key);
        located(span, Some(key.to_owned()), message)
    })?;
    Ok(settings)
}

/// Checks serde cannot express. Returns the offending key and why.
fn validate(settings: &Settings) -> std::result::Result<(), (&'static str, String)> {
    if let Err(err) = tracing_subscriber::EnvFilter::try_new(&settings.log.filter) {
        return Err(("log.filter", format!("not a valid log filter: {err}")));
    }
    if settings.log.max_file_mb == 0 {
        return Err(("log.max_file_mb", "must be at least 1".to_owned()));
    }
    if !EVENT_HISTORY_RANGE.contains(&settings.events.history) {
        return Err((
            "events.history",
            format!(
                "must be between {} and {}",
                EVENT_HISTORY_RANGE.start(),
                EVENT_HISTORY_RANGE.end()
            ),
        ));
    }
    if settings.files.max_read_mb == 0 {
        return Err(("files.max_read_mb", "must be at least 1".to_owned()));
    }
    if settings.files.watch_settle > Duration::from_secs(10) {
        return Err(("files.watch_settle", "must be at most 10s".to_owned()));
    }
    if settings
        .files
        .always_ignored
        .iter()
        .any(|n| n.is_empty() || n.contains('/'))
    {
        return Err((
            "files.always_ignored",
            "entries are folder names, without '/'".to_owned(),
        ));
    }
    let update = &settings.update;
    if !UPDATE_CHANNELS.contains(&update.channel.as_str()) {
        return Err((
            "update.channel",
            format!(
                "{:?} is not a channel; use \"stable\" or \"beta\"",
                update.channel
            ),
        ));
    }
    if !(update.manifest_url.starts_with("http://") || update.manifest_url.starts_with("https://"))
    {
        return Err((
            "update.manifest_url",
            format!(
                "{:?} must be an http:// or https:// URL",
                update.manifest_url
            ),
        ));
    }
    if !CHECK_INTERVAL_RANGE.contains(&update.check_interval) {
        return Err((
            "update.check_interval",
            "must be between 1m and 30 days".to_owned(),
        ));
    }
    if let Some(key) = &update.public_key
        && let Err(err) = minisign_verify::PublicKey::from_base64(key.trim())
    {
        return Err((
            "update.public_key",
            format!("not a minisign public key ({err}); paste the base64 line of the .pub file"),
        ));
    }
    if !ALERT_INTERVAL_RANGE.contains(&settings.system.alert_interval) {
        return Err((
            "system.alert_interval",
            "must be between 250ms and 1h".to_owned(),
        ));
    }
    let ollama = &settings.ollama;
    if ollama.health_failures == 0 {
        return Err(("ollama.health_failures", "must be at least 1".to_owned()));
    }
    for (key, value) in [
        ("ollama.health_interval", ollama.health_interval),
        ("ollama.health_timeout", ollama.health_timeout),
        ("ollama.startup_timeout", ollama.startup_timeout),
    ] {
        if value < Duration::from_millis(10) {
            return Err((key, "must be at least 10ms".to_owned()));
        }
    }
    if !(ollama.registry.starts_with("http://") || ollama.registry.starts_with("https://")) {
        return Err((
            "ollama.registry",
            format!("{:?} must be an http:// or https:// URL", ollama.registry),
        ));
    }
    if settings.log.max_files == 0 {
        return Err(("log.max_files", "must be at least 1".to_owned()));
    }
    let server = &settings.server;
    match (&server.tls_cert, &server.tls_key) {
        (Some(_), None) => {
            return Err((
                "server.tls_key",
                "tls_cert is set, so tls_key must be set too".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err((
                "server.tls_cert",
                "tls_key is set, so tls_cert must be set too".to_owned(),
            ));
        }
        _ => {}
    }
    if let Some(addr) = server.tcp
        && !addr.ip().is_loopback()
        && server.tls_cert.is_none()
    {
        return Err((
            "server.tcp",
            format!(
                "{addr} is reachable from other machines, so TLS is required: set server.tls_cert and server.tls_key, or listen on 127.0.0.1"
            ),
        ));
    }
    Ok(())
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key whose key or value covers `offset`, deepest first.
fn key_at(table: &Table, offset: usize, prefix: &str) -> Option<String> {
    for (name, item) in table.iter() {
        let dotted = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        if let Item::Table(inner) = item
            && let Some(found) = key_at(inner, offset, &dotted)
        {
            return Some(found);
        }
        let key_covers = table
            .key(name)
            .and_then(toml_edit::Key::span)
            .is_some_and(|span| span.contains(&offset));
        let value_covers = item.span().is_some_and(|span| span.contains(&offset));
        let header_covers =
            matches!(item, Item::Table(t) if t.span().is_some_and(|s| s.contains(&offset)));
        if key_covers || value_covers || header_covers {
            return Some(dotted);
        }
    }
    None
}

/// Span of the value (or key) at a dotted key, for locating errors.
fn key_span(table: &Table, dotted: &str) -> Option<Range<usize>> {
    let (head, rest) = match dotted.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (dotted, None),
    };
    let item = table.get(head)?;
    match (rest, item) {
        (Some(rest), Item::Table(inner)) => key_span(inner, rest).or_else(|| inner.span()),
        (None, item) => item
            .span()
            .or_else(|| table.key(head).and_then(toml_edit::Key::span)),
        _ => None,
    }
}

/// Render every documented key of `settings` against the raw file text.
pub fn describe(settings: &Settings, file_text: &str) -> Vec<SettingView> {
    let effective = to_document(settings);
    let defaults = to_document(&Settings::default());
    let file = file_text.parse::<DocumentMut>().unwrap_or_default();
    SETTINGS
        .iter()
        .map(|spec| SettingView {
            spec,
            value: literal_at(&effective, spec.key).unwrap_or_default(),
            default_value: literal_at(&defaults, spec.key).unwrap_or_default(),
            is_set: item_at(file.as_table(), spec.key).is_some(),
        })
        .collect()
}

fn to_document(settings: &Settings) -> DocumentMut {
    // Serialising plain structs of strings, numbers and paths cannot fail;
    // an empty document is a harmless fallback that shows values as unset.
    toml_edit::ser::to_document(settings).unwrap_or_default()
}

/// The item at a dotted key; nested tables may be standard or inline (the
/// serialiser writes inline ones).
fn item_at<'a>(table: &'a dyn toml_edit::TableLike, dotted: &str) -> Option<&'a Item> {
    match dotted.split_once('.') {
        Some((head, rest)) => item_at(table.get(head)?.as_table_like()?, rest),
        None => table.get(dotted).filter(|item| !item.is_none()),
    }
}

fn literal_at(document: &DocumentMut, dotted: &str) -> Option<String> {
    let value = item_at(document.as_table(), dotted)?.as_value()?;
    Some(value.clone().decorated("", "").to_string())
}

/// Apply `changes` to the configuration text, returning the new text and
/// settings. Nothing is written; an error names the offending key.
pub fn apply_changes(
    path: &Path,
    text: &str,
    changes: &[SettingChange],
) -> Result<(String, Settings)> {
    let mut document = text.parse::<DocumentMut>().map_err(|err| {
        Error::failed_precondition(format!(
            "{} cannot be parsed, fix it first: {}",
            path.display(),
            err.message().trim()
        ))
        .with_reason("CONFIG_INVALID")
    })?;
    // The file must be valid as it stands, or the error would be blamed on
    // the change.
    parse(path, text).map_err(|err| {
        Error::failed_precondition(format!("fix config.toml first: {err}"))
            .with_reason("CONFIG_INVALID")
    })?;
    if changes.is_empty() {
        return Err(Error::invalid_argument("changes", "no changes given"));
    }
    for change in changes {
        let Some(spec) = spec(&change.key) else {
            let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
            return Err(Error::invalid_argument(
                format!("changes.key {:?}", change.key),
                format!("unknown setting; known settings: {}", known.join(", ")),
            ));
        };
        if change.reset {
            remove_item(&mut document, spec.key);
            continue;
        }
        let candidates = candidate_values(&change.value);
        let mut last_error = String::new();
        let mut accepted = false;
        for candidate in candidates {
            let mut trial = document.clone();
            set_item(&mut trial, spec.key, candidate);
            match parse(path, &trial.to_string()) {
                Ok(_) => {
                    document = trial;
                    accepted = true;
                    break;
                }
                Err(err) => {
                    last_error = err.message;
                }
            }
        }
        if !accepted {
            return Err(Error::invalid_argument(
                spec.key,
                format!("{:?} is not accepted: {last_error}", change.value),
            ));
        }
    }
    let new_text = document.to_string();
    let settings = parse(path, &new_text)
        .map_err(|err| Error::invalid_argument("changes", err.message.clone()))?;
    Ok((new_text, settings))
}

/// A value as TOML when it parses as TOML, and then as a plain string, so
/// `log.filter=debug` and `server.tcp=127.0.0.1:7457` need no quotes.
fn candidate_values(raw: &str) -> Vec<Value> {
    let mut candidates = Vec::with_capacity(2);
    if let Ok(value) = raw.trim().parse::<Value>() {
        candidates.push(value);
    }
    if !matches!(candidates.first(), Some(Value::String(_))) {
        candidates.push(Value::from(raw));
    }
    candidates
}

fn set_item(document: &mut DocumentMut, dotted: &str, value: Value) {
    let mut table = document.as_table_mut();
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            table[part] = Item::Value(value);
            return;
        }
        let entry = table
            .entry(part)
            .or_insert_with(|| Item::Table(Table::new()));
        if !entry.is_table() {
            *entry = Item::Table(Table::new());
        }
        let Some(inner) = entry.as_table_mut() else {
            return;
        };
        table = inner;
    }
}

fn remove_item(document: &mut DocumentMut, dotted: &str) {
    let mut table = document.as_table_mut();
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            table.remove(part);
            return;
        }
        let Some(inner) = table.get_mut(part).and_then(Item::as_table_mut) else {
            return;
        };
        table = inner;
    }
}

/// The running agent's settings: the current value for readers, and
/// serialised updates that write config.toml and notify subscribers.
#[derive(Debug)]
pub struct SettingsStore {
    path: PathBuf,
    current: watch::Sender<Arc<Settings>>,
    write_lock: Mutex<()>,
}

impl SettingsStore {
    /// Wrap settings loaded from `path`.
    pub fn new(path: PathBuf, settings: Settings) -> Self {
        let (current, _) = watch::channel(Arc::new(settings));
        Self {
            path,
            current,
            write_lock: Mutex::new(()),
        }
    }

    /// Path of config.toml.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings in effect now.
    pub fn current(&self) -> Arc<Settings> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every future change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Settings>> {
        self.current.subscribe()
    }

    /// Describe the settings named by `keys` (all when empty).
    pub async fn describe(&self, keys: &[String]) -> Result<Vec<SettingView>> {
        for key in keys {
            if spec(key).is_none() {
                return Err(Error::invalid_argument(
                    format!("keys {key:?}"),
                    "unknown setting",
                ));
            }
        }
        let text = self.read_text().await?;
        let settings = self.current();
        let all = describe(&settings, &text);
        Ok(all
            .into_iter()
            .filter(|view| keys.is_empty() || keys.iter().any(|k| k == view.spec.key))
            .collect())
    }

    /// Apply changes atomically to config.toml and to the running agent.
    /// Returns the changed keys' new views.
    pub async fn update(&self, changes: Vec<SettingChange>) -> Result<Vec<SettingView>> {
        let _guard = self.write_lock.lock().await;
        let text = self.read_text().await?;
        let path = self.path.clone();
        let (new_text, settings) = apply_changes(&path, &text, &changes)?;
        let write_path = path.clone();
        let bytes = new_text.clone().into_bytes();
        tokio::task::spawn_blocking(move || write_atomically(&write_path, &bytes))
            .await?
            .map_err(|err| {
                Error::internal(format!("cannot write {}: {err}", path.display()))
                    .with_reason("CONFIG_WRITE")
            })?;
        let views = describe(&settings, &new_text);
        self.current.send_replace(Arc::new(settings));
        Ok(views
            .into_iter()
            .filter(|view| changes.iter().any(|c| c.key == view.spec.key))
            .collect())
    }

    async fn read_text(&self) -> Result<String> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(err) => Err(Error::internal(format!(
                "cannot read {}: {err}",
                path.display()
            ))),
        })
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("/cfg/config.toml")
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse(path(), ""), Ok(Settings::default()));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse(path(), "[log]\nfilter = \"info\"\nbogus = 3\n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("bogus"), "{err}");
    }

    #[test]
    fn wrong_type_is_named_with_line_and_key() {
        let err = parse(path(), "[log]\n\nmax_files = \"many\"\n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert_eq!(err.key.as_deref(), Some("log.max_files"), "{err}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = parse(path(), "[log\nfilter = 1\n").unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");
    }

    #[test]
    fn bad_filter_is_located_by_validation() {
        let err = parse(path(), "[log]\nfilter = \"info,=[\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("log.filter"));
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn alert_settings_parse_and_are_bounded() {
        let settings = parse(
            path(),
            "[system]\nalerts = false\nalert_interval = \"2s\"\n",
        );
        assert_eq!(
            settings.map(|s| s.system),
            Ok(SystemSettings {
                alerts: false,
                alert_interval: Duration::from_secs(2),
            })
        );
        let err = parse(path(), "[system]\nalert_interval = \"10ms\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("system.alert_interval"));
        assert_eq!(err.line, Some(2), "{err}");
    }

    #[test]
    fn update_settings_are_validated_by_key() {
        let err = parse(path(), "[update]\nchannel = \"nightly\"\n").err();
        assert_eq!(err.and_then(|e| e.key), Some("update.channel".to_owned()));
        let err = parse(path(), "[update]\npublic_key = \"nope\"\n").err();
        assert_eq!(
            err.and_then(|e| e.key),
            Some("update.public_key".to_owned())
        );
        let err = parse(path(), "[update]\ncheck_interval = \"1s\"\n").err();
        assert_eq!(
            err.and_then(|e| e.key),
            Some("update.check_interval".to_owned())
        );
        let ok = parse(path(), "[update]\nchannel = \"beta\"\nenabled = false\n");
        assert!(ok.is_ok_and(|s| s.update.channel == "beta" && !s.update.enabled));
    }

    #[test]
    fn public_tcp_without_tls_is_refused() {
        let err = parse(path(), "[server]\ntcp = \"0.0.0.0:7457\"\n").unwrap_err();
        assert_eq!(err.key.as_deref(), Some("server.tcp"));
        assert!(err.message.contains("TLS"), "{err}");
        assert!(parse(path(), "[server]\ntcp = \"127.0.0.1:7457\"\n").is_ok());
    }

    #[test]
    fn table_documents_every_key() {
        let full = Settings {
            server: ServerSettings {
                tcp: Some(SocketAddr::from(([127, 0, 0, 1], 1))),
                tls_cert: Some("c".into()),
                tls_key: Some("k".into()),
            },
            log: LogSettings::default(),
            events: EventSettings::default(),
            ollama: OllamaSettings {
                binary: Some("b".into()),
                host: Some("h".into()),
                models_dir: Some("m".into()),
                ..OllamaSettings::default()
            },
            files: FilesSettings::default(),
            git: GitSettingsFile {
                token: Some("t".into()),
                ..GitSettingsFile::default()
            },
            system: SystemSettings::default(),
            update: UpdateSettings {
                public_key: Some("RWQ".into()),
                ..UpdateSettings::default()
            },
        };
        let document = to_document(&full);
        let mut keys = Vec::new();
        for (section, item) in document.iter() {
            if let Some(table) = item.as_table_like() {
                for (name, _) in table.iter() {
                    keys.push(format!("{section}.{name}"));
                }
            }
        }
        let documented: Vec<String> = SETTINGS.iter().map(|s| s.key.to_owned()).collect();
        keys.sort();
        let mut sorted = documented.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn changes_keep_comments_and_accept_unquoted_strings() -> Result<()> {
        let text = "# my settings\n[log]\n# chatty\nfilter = \"info\"\n";
        let (new_text, settings) = apply_changes(
            path(),
            text,
            &[
                SettingChange {
                    key: "log.filter".into(),
                    value: "debug".into(),
                    reset: false,
                },
                SettingChange {
                    key: "server.tcp".into(),
                    value: "127.0.0.1:7457".into(),
                    reset: false,
                },
            ],
        )?;
        assert!(new_text.contains("# my settings"), "{new_text}");
        assert!(new_text.contains("# chatty"), "{new_text}");
        assert_eq!(settings.log.filter, "debug");
        assert_eq!(
            settings.server.tcp,
            Some(SocketAddr::from(([127, 0, 0, 1], 7457)))
        );
        Ok(())
    }

    #[test]
    fn bad_change_names_the_key_and_changes_nothing() {
        let err = apply_changes(
            path(),
            "",
            &[SettingChange {
                key: "log.max_files".into(),
                value: "lots".into(),
                reset: false,
            }],
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("log.max_files"));
        let err = apply_changes(
            path(),
            "",
            &[SettingChange {
                key: "log.nope".into(),
                value: "1".into(),
                reset: false,
            }],
        )
        .unwrap_err();
        assert!(err.message().contains("unknown setting"), "{err}");
    }

    #[test]
    fn reset_removes_the_key() -> Result<()> {
        let (text, settings) = apply_changes(
            path(),
            "[log]\nmax_files = 9\n",
            &[SettingChange {
                key: "log.max_files".into(),
                value: String::new(),
                reset: true,
            }],
        )?;
        assert!(!text.contains("max_files"), "{text}");
        assert_eq!(settings.log.max_files, LogSettings::default().max_files);
        Ok(())
    }

    #[test]
    fn describe_reports_values_defaults_and_what_is_set() {
        let settings = parse(path(), "[log]\nmax_files = 9\n").unwrap_or_default();
        let views = describe(&settings, "[log]\nmax_files = 9\n");
        let max_files = views.iter().find(|v| v.spec.key == "log.max_files");
        let Some(max_files) = max_files else {
            panic!("log.max_files missing from {views:?}");
        };
        assert_eq!(max_files.value, "9");
        assert_eq!(max_files.default_value, "5");
        assert!(max_files.is_set);
        let tcp = views.iter().find(|v| v.spec.key == "server.tcp");
        assert_eq!(tcp.map(|v| v.value.as_str()), Some(""));
    }
}
