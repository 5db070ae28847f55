//! The running agent's shared state, handed to every service: where things
//! live, state.db, the event bus, the domain facades (the agent's own
//! administration among them: settings, tokens, logs, start at login, crash
//! reports), and the shutdown signal. Plain Rust types only; the rpc layer
//! wraps it.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};

use tokio_util::sync::CancellationToken;

use omnipanel_core::{
    access::Access, agent::AgentAdmin, audit::Audit, conversations::Conversations, files::Files,
    git::Git, ollama::Ollama, projects::Projects, store::Store, system::SystemMonitor,
    updates::Updater,
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
    "admission",
    "ollama",
    "models",
    "projects",
    "conversations",
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
    /// The agent's administration: settings, tokens, logs, start at login,
    /// crash reports.
    pub agent: Arc<AgentAdmin>,
    /// Client admission: the owner credential, grants, access requests,
    /// confirmations.
    pub access: Arc<Access>,
    /// The activity log.
    pub audit: Arc<Audit>,
    /// state.db.
    pub store: Store,
    /// The event bus.
    pub bus: Arc<EventBus>,
    /// Ollama supervision and models.
    pub ollama: Arc<Ollama>,
    /// Projects.
    pub projects: Arc<Projects>,
    /// Chat conversations kept per project.
    pub conversations: Arc<Conversations>,
    /// The open projects' files.
    pub files: Arc<Files>,
    /// Git on projects.
    pub git: Arc<Git>,
    /// Machine metrics and alerts.
    pub system: Arc<SystemMonitor>,
    /// Self-update.
    pub updates: Arc<Updater>,
    /// Where the agent listens besides its socket.
    pub listening: Listening,
    /// Whether crash reports appeared since the previous start.
    pub previous_run_crashed: bool,
    shutdown: CancellationToken,
    shutdown_reason: OnceLock<String>,
}

/// The agent's listeners besides its socket, as bound at start, and what
/// the user should know about them.
#[derive(Debug, Clone, Default)]
pub struct Listening {
    /// Address the gRPC TCP listener is bound to, if any.
    pub tcp: Option<SocketAddr>,
    /// Address the gateway is bound to, if it is on.
    pub gateway: Option<SocketAddr>,
    /// Sentences about the set-up a user should act on (GetInfo's
    /// `warnings`), e.g. a gateway that protects nothing.
    pub warnings: Vec<String>,
}

impl AgentContext {
    /// Assemble the context.
    #[allow(clippy::too_many_arguments)] // One-time assembly at start; a builder would only add ceremony.
    pub fn new(
        paths: AgentPaths,
        start_time_ms: i64,
        agent: Arc<AgentAdmin>,
        access: Arc<Access>,
        audit: Arc<Audit>,
        store: Store,
        bus: Arc<EventBus>,
        ollama: Arc<Ollama>,
        projects: Arc<Projects>,
        conversations: Arc<Conversations>,
        files: Arc<Files>,
        git: Arc<Git>,
        system: Arc<SystemMonitor>,
        updates: Arc<Updater>,
        listening: Listening,
        previous_run_crashed: bool,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            paths,
            start_time_ms,
            agent,
            access,
            audit,
            store,
            bus,
            ollama,
            projects,
            conversations,
            files,
            git,
            system,
            updates,
            listening,
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
