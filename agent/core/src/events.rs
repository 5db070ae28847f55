//! The agent's event bus: what can happen (the payloads and their topics),
//! carried on a [`Feed`] (sequence numbers, replay, gaps).

pub use crate::feed::Cursor;
use crate::{
    feed::{Feed, Record, Topic},
    files::watch::WatchStatus,
    ollama::{
        pulls::PullProgress,
        supervisor::{ServerState, ServerStatus},
    },
    system::thresholds::Alert,
    updates::Progress as UpdateProgress,
};

/// What happened. Each variant has a topic used for filtering. (Not `Eq`:
/// alerts carry measured values.)
#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    /// The agent serves requests.
    AgentStarted {
        /// Agent version.
        version: String,
        /// Agent pid.
        pid: u32,
    },
    /// The agent is shutting down.
    AgentStopping {
        /// Why.
        reason: String,
    },
    /// Settings changed through the API.
    SettingsChanged {
        /// Changed keys.
        keys: Vec<String>,
        /// Whether some change needs a restart.
        restart_required: bool,
    },
    /// state.db was corrupt and replaced.
    StateRecovered {
        /// Where the bad file went.
        moved_to: String,
        /// What SQLite said.
        reason: String,
    },
    /// A crash report from an earlier run was found.
    CrashReported {
        /// Report file.
        path: String,
        /// Panic message.
        message: String,
    },
    /// An access token was created or revoked.
    TokensChanged {
        /// Token id.
        token_id: String,
        /// Revoked (true) or created (false).
        revoked: bool,
    },
    /// The local Ollama server changed state.
    OllamaStateChanged {
        /// New status.
        status: ServerStatus,
        /// Previous state.
        previous: ServerState,
    },
    /// A pull progressed or ended.
    PullProgress(PullProgress),
    /// A model was pulled, deleted, loaded or unloaded.
    ModelsChanged {
        /// Provider.
        provider: String,
        /// Model.
        model: String,
        /// "pulled", "deleted", "loaded", "unloaded".
        change: String,
    },
    /// The default model changed.
    DefaultModelChanged {
        /// New default ("" when cleared).
        model: String,
    },
    /// A provider was added or removed.
    ProvidersChanged {
        /// Provider name.
        name: String,
        /// Removed (true) or added (false).
        removed: bool,
    },
    /// A project's repository changed (HEAD, index or refs).
    RepositoryChanged {
        /// Project id.
        project_id: String,
        /// Branch ("" when detached).
        branch: String,
        /// Detached HEAD.
        detached: bool,
        /// Uncommitted changes.
        dirty: bool,
        /// HEAD commit.
        head: String,
    },
    /// A project was created, opened, closed or forgotten.
    ProjectChanged {
        /// Project id.
        project_id: String,
        /// Root folder.
        path: String,
        /// "created", "opened", "closed", "forgotten".
        change: String,
    },
    /// A project's files stopped (or started again) being watched in full:
    /// a watch limit was reached, or raised.
    ProjectWatchChanged {
        /// Project id.
        project_id: String,
        /// Root folder.
        path: String,
        /// The watcher's state now.
        status: WatchStatus,
    },
    /// A threshold was crossed.
    AlertRaised(Alert),
    /// An alert cleared.
    AlertCleared(Alert),
    /// The alert thresholds changed.
    ThresholdsChanged {
        /// New version.
        version: u64,
        /// How many thresholds.
        count: u32,
        /// Whether the built-in defaults are in use.
        defaults: bool,
    },
    /// A check found a newer release.
    UpdateAvailable {
        /// The newer version.
        version: String,
        /// The running version.
        current_version: String,
        /// Release notes.
        notes: String,
    },
    /// The update download progressed or ended.
    UpdateProgress(UpdateProgress),
    /// An update was installed and answers.
    UpdateInstalled {
        /// Replaced version.
        from_version: String,
        /// Running version.
        to_version: String,
    },
    /// An update was rolled back.
    UpdateRolledBack {
        /// Removed version.
        from_version: String,
        /// Running version.
        to_version: String,
        /// Why.
        reason: String,
        /// Rolled back by the agent itself after a failed install.
        automatic: bool,
    },
}

impl Topic for EventPayload {
    fn topic(&self) -> &str {
        match self {
            Self::AgentStarted { .. }
            | Self::AgentStopping { .. }
            | Self::StateRecovered { .. }
            | Self::CrashReported { .. } => "agent",
            Self::SettingsChanged { .. } => "settings",
            Self::TokensChanged { .. } => "tokens",
            Self::OllamaStateChanged { .. } => "ollama",
            Self::PullProgress(_)
            | Self::ModelsChanged { .. }
            | Self::DefaultModelChanged { .. } => "models",
            Self::ProvidersChanged { .. } => "providers",
            Self::ProjectChanged { .. } | Self::ProjectWatchChanged { .. } => "projects",
            Self::RepositoryChanged { .. } => "git",
            Self::AlertRaised(_) | Self::AlertCleared(_) | Self::ThresholdsChanged { .. } => {
                "alerts"
            }
            Self::UpdateAvailable { .. }
            | Self::UpdateProgress(_)
            | Self::UpdateInstalled { .. }
            | Self::UpdateRolledBack { .. } => "updates",
        }
    }
}

/// The agent's event bus.
pub type EventBus = Feed<EventPayload>;
/// A published event.
pub type Event = Record<EventPayload>;
/// What a bus subscriber receives.
pub type Delivery = crate::feed::Delivery<EventPayload>;
/// A bus subscription.
pub type Subscription = crate::feed::Subscription<EventPayload>;
