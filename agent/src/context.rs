//! The running agent's shared state, handed to every service: where things
//! live, settings, state.db, the event bus, logs, tokens, and the shutdown
//! signal. Plain Rust types only; the rpc layer wraps it.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

use tokio_util::sync::CancellationToken;

use omnipanel_core::{
    config::SettingsStore, git::Git, logs::LogHub, ollama::Ollama, projects::Projects,
    store::Store, system::SystemMonitor, tokens::Tokens, updates::Updater,
};
use omnipanel_paths::AgentPaths;

use crate::events::{EventBus, ServerEvent};

/// Capabilities this build serves, reported by GetInfo.
pub const FEATURES: &[&str] = &[
    "agent",
    "events",
    "logs",
    "settings",
    "tokens",
    "ollama",
    "models",
    "projects",
    "files",
    "git",
    "system",
    "alerts",
    "autostart",
    "updates",
];

/// Everything the services share.
#[derive(Debug)]
pub struct AgentContext {
    /// Locations.
    pub paths: AgentPaths,
    /// When the agent started, ms since the Unix epoch.
    pub start_time_ms: i64,
    /// Settings (config.toml).
    pub settings: Arc<SettingsStore>,
    /// state.db.
    pub store: Store,
    /// The event bus.
    pub bus: Arc<EventBus>,
    /// Log sources.
    pub logs: Arc<LogHub>,
    /// Access tokens.
    pub tokens: Tokens,
    /// Ollama supervision and models.
    pub ollama: Arc<Ollama>,
    /// Projects and their files.
    pub projects: Arc<Projects>,
    /// Git on projects.
    pub git: Arc<Git>,
    /// Machine metrics and alerts.
    pub system: Arc<SystemMonitor>,
    /// Self-update.
    pub updates: Arc<Updater>,
    /// Address the TCP listener is bound to, if any.
    pub tcp_address: Option<SocketAddr>,
    /// Whether crash reports appeared since the previous start.
    pub previous_run_crashed: bool,
    shutdown: CancellationToken,
    shutdown_reason: OnceLock<String>,
}

impl AgentContext {
    /// Assemble the context.
    #[allow(clippy::too_many_arguments)] // One-time assembly at start; a builder would only add ceremony.
    pub fn new(
        paths: AgentPaths,
        start_time_ms: i64,
        settings: Arc<SettingsStore>,
        store: Store,
        bus: Arc<EventBus>,
        logs: Arc<LogHub>,
        tokens: Tokens,
        ollama: Arc<Ollama>,
        projects: Arc<Projects>,
        git: Arc<Git>,
        system: Arc<SystemMonitor>,
        updates: Arc<Updater>,
        tcp_address: Option<SocketAddr>,
        previous_run_crashed: bool,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            paths,
            start_time_ms,
            settings,
            store,
            bus,
            logs,
            tokens,
            ollama,
            projects,
            git,
            system,
            updates,
            tcp_address,
            previous_run_crashed,
            shutdown,
            shutdown_reason: OnceLock::new(),
        }
    }

    /// Begin a graceful shutdown (idempotent; the first reason wins).
    pub fn request_shutdown(&self, reason: &str) {
        if self.shutdown_reason.set(reason.to_owned()).is_ok() {
            tracing::info!(reason, "shutting down");
            self.bus.publish(ServerEvent::AgentStopping {
                reason: reason.to_owned(),
            });
        }
        self.shutdown.cancel();
    }

    /// Resolves when shutdown has begun; streams end on it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Why the agent is stopping, once it is.
    pub fn shutdown_reason(&self) -> Option<&str> {
        self.shutdown_reason.get().map(String::as_str)
    }
}
