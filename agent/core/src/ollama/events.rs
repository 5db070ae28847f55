//! What the Ollama domain publishes on the event bus: the local server's
//! state, pulls, models, the default model and providers.

use crate::{
    events::Topic,
    ollama::{
        health::{HealthRecord, ProviderState, Subject},
        pulls::PullProgress,
        supervisor::{ServerState, ServerStatus},
    },
};

/// An Ollama event.
#[derive(Debug, Clone, PartialEq)]
pub enum OllamaEvent {
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
    /// A provider went up or down.
    ProviderStateChanged {
        /// Which provider.
        subject: Subject,
        /// Its health now.
        health: HealthRecord,
        /// The state before.
        previous: ProviderState,
    },
}

impl Topic for OllamaEvent {
    fn topic(&self) -> &str {
        match self {
            Self::OllamaStateChanged { .. } => "ollama",
            Self::PullProgress(_)
            | Self::ModelsChanged { .. }
            | Self::DefaultModelChanged { .. }
            | Self::ProviderStateChanged { .. } => "models",
            Self::ProvidersChanged { .. } => "providers",
        }
    }
}
