//! The documentation of every settings key, kept as a table of its own
//! rather than taken from the structs' doc comments: those are written for
//! the code, these for users reading `GetSettings`, in the order it lists
//! them, with whether a change needs a restart. A test keeps the table and
//! the structs in step.

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

/// Keys only the owner may change, never a token, whatever its scope: each
/// could widen what a token reaches or make the agent run another program
/// (the listener and its TLS files, the project roots, the Ollama binary,
/// where updates come from and which key signs them, the gateway, and
/// how long the activity log is kept).
pub fn owner_only(key: &str) -> bool {
    key.starts_with("access.")
        || key.starts_with("server.")
        || key.starts_with("update.")
        || key.starts_with("gateway.")
        || key.starts_with("audit.")
        || key == "ollama.binary"
        || key == "ollama.models_dir"
}

/// Keys whose value is a secret: shown to the owner only (a client with
/// the admin scope sees that it is set, not what it is).
pub fn secret(key: &str) -> bool {
    key == "git.token"
}

/// What a secret's value is shown as to clients other than the owner.
pub const HIDDEN_VALUE: &str = "\"<hidden: only the owner sees it>\"";

/// Every settings key, in the order `GetSettings` lists them. A unit test
/// checks that this table and [`Settings`](super::Settings) agree.
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
        key: "server.request_timeout",
        description: "How long a call that answers once may take before it fails with DEADLINE_EXCEEDED, e.g. \"60s\"; calls that wait for a download, a server start or a network transfer have their own bound of 30 minutes. A client's own shorter deadline is honoured.",
        restart_required: true,
    },
    SettingSpec {
        key: "server.max_tcp_connections",
        description: "Most simultaneous connections on the TCP listener; further connections are closed as soon as they are accepted. The local socket is not capped (only its owner can connect).",
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
        key: "ollama.keep_alive",
        description: "How long a server OmniPanel starts keeps an idle model loaded (OLLAMA_KEEP_ALIVE): Ollama's syntax, e.g. \"5m\", \"1h\", \"-1\" (for ever) or seconds; unset: Ollama's default (5m). Like the four keys below, a change restarts that server when nothing runs on it (no model loaded, no pull, no reply streaming), else it applies at its next restart; a server started outside OmniPanel is not affected.",
        restart_required: false,
    },
    SettingSpec {
        key: "ollama.num_parallel",
        description: "Requests each loaded model serves at once (OLLAMA_NUM_PARALLEL) in a server OmniPanel starts; unset: Ollama's default.",
        restart_required: false,
    },
    SettingSpec {
        key: "ollama.max_loaded_models",
        description: "Most models loaded at once (OLLAMA_MAX_LOADED_MODELS) in a server OmniPanel starts; unset: Ollama's default.",
        restart_required: false,
    },
    SettingSpec {
        key: "ollama.context_length",
        description: "Default context window in tokens (OLLAMA_CONTEXT_LENGTH) of a server OmniPanel starts; unset: Ollama's default.",
        restart_required: false,
    },
    SettingSpec {
        key: "ollama.flash_attention",
        description: "Flash attention on (true) or off (false) (OLLAMA_FLASH_ATTENTION) in a server OmniPanel starts; unset: Ollama's default.",
        restart_required: false,
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
        key: "files.search_timeout",
        description: "Longest a text search (SearchText, `omnipanel files grep`) may run, e.g. \"30s\"; a longer one ends with DEADLINE_EXCEEDED after the matches found so far.",
        restart_required: true,
    },
    SettingSpec {
        key: "git.token",
        description: "Token for https Git remotes, used when your git credential helper has nothing (sent as the password), and only to the hosts in git.token_hosts.",
        restart_required: true,
    },
    SettingSpec {
        key: "git.token_hosts",
        description: "Host names git.token may be sent to, e.g. [\"github.com\"]; it is sent only over https, and with no hosts listed it is sent nowhere.",
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
        description: "URL of the update manifest (JSON, signed: the same URL + .minisig), or of a GitHub release list (the default, api.github.com/repos/OWNER/REPO/releases) holding manifest-CHANNEL.json assets; {channel} is replaced by update.channel. Point it at your own server to self-host updates. Applied at the next check.",
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
        description: "Minisign public key (the base64 line of a .pub file) that update manifests and artifacts must be signed with, for self-hosted updates. Used only by builds without a built-in key (official release builds have one and ignore this, with a warning in the log).",
        restart_required: false,
    },
    SettingSpec {
        key: "events.history",
        description: "How many recent events the agent keeps so reconnecting clients can catch up (16 to 1000000).",
        restart_required: true,
    },
    SettingSpec {
        key: "access.project_roots",
        description: "Folders under which token clients may open and create projects, e.g. [\"~\", \"/srv/code\"]; \"~\" is your home. The owner (your own CLI and tray) may open projects anywhere except the protected places (the agent's own folders, ~/.ssh and other credentials, /). Only the owner may change it.",
        restart_required: true,
    },
    SettingSpec {
        key: "access.socket_clients",
        description: "Who a program of yours on the agent's socket is when it shows no credential: \"owner\" (the default: only programs presenting the owner credential, as the omnipanel CLI, tray and panel do, are the owner; others get status and may ask for access with RequestAccess) or \"trusted\" (every program of yours on the socket is the owner, as before client admission). Only the owner may change it.",
        restart_required: true,
    },
    SettingSpec {
        key: "access.request_timeout",
        description: "How long an access request or a confirmation waits for your answer, e.g. \"2m\" (10s to 1h). Only the owner may change it.",
        restart_required: false,
    },
    SettingSpec {
        key: "gateway.listen",
        description: "Address of the gateway, the Ollama- and OpenAI-compatible HTTP APIs in front of every provider, e.g. \"127.0.0.1:11435\"; empty: off. Every request needs a token with the infer scope. Non-loopback addresses require tls_cert and tls_key.",
        restart_required: true,
    },
    SettingSpec {
        key: "gateway.loopback_without_token",
        description: "Serve callers on this machine that send no token, as clients with the infer scope only (pulls and deletes still need a token with write). For tools that cannot send a header.",
        restart_required: true,
    },
    SettingSpec {
        key: "gateway.max_waiting",
        description: "Most gateway requests waiting at once for Ollama to start or a model to load; more are answered 503.",
        restart_required: true,
    },
    SettingSpec {
        key: "gateway.wait_timeout",
        description: "How long a gateway request waits for Ollama to start or a model to load, e.g. \"30s\"; then it is answered 503.",
        restart_required: true,
    },
    SettingSpec {
        key: "gateway.tls_cert",
        description: "PEM certificate chain for TLS on the gateway.",
        restart_required: true,
    },
    SettingSpec {
        key: "gateway.tls_key",
        description: "PEM private key for TLS on the gateway.",
        restart_required: true,
    },
    SettingSpec {
        key: "audit.retention",
        description: "How long the activity log (`omnipanel audit`) keeps an entry, e.g. \"90d\" (1h to 10 years); older entries are deleted as new ones are written. Only the owner may change it.",
        restart_required: true,
    },
    SettingSpec {
        key: "audit.max_rows",
        description: "Most entries the activity log keeps (100 to 10000000); beyond it the oldest are deleted as new ones are written. Only the owner may change it.",
        restart_required: true,
    },
];

/// Look up the documentation of a key.
pub fn spec(key: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|spec| spec.key == key)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use crate::config::{
        AccessSettings, AuditSettings, EventSettings, FilesSettings, GatewaySettings,
        GitSettingsFile, LogSettings, OllamaSettings, ServerSettings, Settings, SystemSettings,
        UpdateSettings, edit::to_document,
    };

    use super::*;

    #[test]
    fn table_documents_every_key() {
        let full = Settings {
            server: ServerSettings {
                tcp: Some(SocketAddr::from(([127, 0, 0, 1], 1))),
                tls_cert: Some("c".into()),
                tls_key: Some("k".into()),
                ..ServerSettings::default()
            },
            log: LogSettings::default(),
            events: EventSettings::default(),
            ollama: OllamaSettings {
                binary: Some("b".into()),
                host: Some("h".into()),
                models_dir: Some("m".into()),
                keep_alive: Some("5m".into()),
                num_parallel: Some(1),
                max_loaded_models: Some(1),
                context_length: Some(4096),
                flash_attention: Some(true),
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
            access: AccessSettings::default(),
            audit: AuditSettings::default(),
            gateway: GatewaySettings {
                listen: "127.0.0.1:11435".into(),
                tls_cert: Some("c".into()),
                tls_key: Some("k".into()),
                ..GatewaySettings::default()
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
}
