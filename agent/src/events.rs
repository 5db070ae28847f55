//! What goes on the agent's event bus: the events the server itself
//! publishes (lifecycle), and [`AgentEvent`], the union of
//! those and every domain's events. Domains publish their own types through
//! a `Publisher` and know nothing of this union; `rpc::events` converts it
//! to the API, exhaustively, so a new event does not compile until mapped.

use omnipanel_core::{
    access::AccessEvent, agent::AdminEvent, conversations::ConversationEvent, events::Topic,
    git::GitEvent, ollama::OllamaEvent, projects::ProjectEvent, system::SystemEvent,
    updates::UpdateEvent,
};

/// The agent's event bus.
pub type EventBus = omnipanel_core::events::EventBus<AgentEvent>;

/// Events of the server itself: its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
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
}

impl Topic for ServerEvent {
    fn topic(&self) -> &str {
        match self {
            Self::AgentStarted { .. }
            | Self::AgentStopping { .. }
            | Self::StateRecovered { .. }
            | Self::CrashReported { .. } => "agent",
        }
    }
}

/// Everything that can happen, by who publishes it. (Not `Eq`: alerts carry
/// measured values.)
#[derive(Debug, Clone, PartialEq)]
pub enum AgentEvent {
    /// The server's own events.
    Server(ServerEvent),
    /// Settings and tokens.
    Admin(AdminEvent),
    /// Client admission: requests, confirmations, clients.
    Access(AccessEvent),
    /// Ollama: the local server, pulls, models, providers.
    Ollama(OllamaEvent),
    /// Projects.
    Projects(ProjectEvent),
    /// Chat conversations.
    Conversations(ConversationEvent),
    /// Git repositories.
    Git(GitEvent),
    /// Alerts and thresholds.
    System(SystemEvent),
    /// Self-update.
    Updates(UpdateEvent),
}

impl Topic for AgentEvent {
    fn topic(&self) -> &str {
        match self {
            Self::Server(event) => event.topic(),
            Self::Admin(event) => event.topic(),
            Self::Access(event) => event.topic(),
            Self::Ollama(event) => event.topic(),
            Self::Projects(event) => event.topic(),
            Self::Conversations(event) => event.topic(),
            Self::Git(event) => event.topic(),
            Self::System(event) => event.topic(),
            Self::Updates(event) => event.topic(),
        }
    }
}

/// Who may see an event on WatchEvents besides the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<'a> {
    /// The owner only: admission, settings and tokens, crash reports.
    Owner,
    /// Every client allowed to read events.
    Readers,
    /// Clients that may use this project (by id; its folder when the event
    /// names it).
    Project {
        /// The project's id.
        id: &'a str,
        /// Its folder, when the event carries it.
        path: Option<&'a str>,
    },
}

impl AgentEvent {
    /// Who may see this event. Every variant is named, so a new event does
    /// not compile until its audience is chosen.
    pub fn audience(&self) -> Audience<'_> {
        match self {
            Self::Server(ServerEvent::AgentStarted { .. } | ServerEvent::AgentStopping { .. }) => {
                Audience::Readers
            }
            Self::Server(
                ServerEvent::StateRecovered { .. } | ServerEvent::CrashReported { .. },
            )
            | Self::Admin(_)
            | Self::Access(_) => Audience::Owner,
            Self::Ollama(_) | Self::System(_) | Self::Updates(_) => Audience::Readers,
            Self::Projects(
                ProjectEvent::ProjectChanged {
                    project_id, path, ..
                }
                | ProjectEvent::ProjectWatchChanged {
                    project_id, path, ..
                },
            ) => Audience::Project {
                id: project_id,
                path: Some(path),
            },
            Self::Conversations(ConversationEvent::ConversationChanged { project_id, .. })
            | Self::Git(GitEvent::RepositoryChanged { project_id, .. }) => Audience::Project {
                id: project_id,
                path: None,
            },
        }
    }
}

impl From<ServerEvent> for AgentEvent {
    fn from(event: ServerEvent) -> Self {
        Self::Server(event)
    }
}

impl From<AdminEvent> for AgentEvent {
    fn from(event: AdminEvent) -> Self {
        Self::Admin(event)
    }
}

impl From<AccessEvent> for AgentEvent {
    fn from(event: AccessEvent) -> Self {
        Self::Access(event)
    }
}

impl From<OllamaEvent> for AgentEvent {
    fn from(event: OllamaEvent) -> Self {
        Self::Ollama(event)
    }
}

impl From<ProjectEvent> for AgentEvent {
    fn from(event: ProjectEvent) -> Self {
        Self::Projects(event)
    }
}

impl From<ConversationEvent> for AgentEvent {
    fn from(event: ConversationEvent) -> Self {
        Self::Conversations(event)
    }
}

impl From<GitEvent> for AgentEvent {
    fn from(event: GitEvent) -> Self {
        Self::Git(event)
    }
}

impl From<SystemEvent> for AgentEvent {
    fn from(event: SystemEvent) -> Self {
        Self::System(event)
    }
}

impl From<UpdateEvent> for AgentEvent {
    fn from(event: UpdateEvent) -> Self {
        Self::Updates(event)
    }
}
