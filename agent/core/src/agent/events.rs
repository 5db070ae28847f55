//! What the agent-administration domain publishes on the event bus:
//! settings changed through the API, a token created or revoked.

use crate::events::Topic;

/// An agent-administration event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminEvent {
    /// Settings changed through the API.
    SettingsChanged {
        /// Changed keys.
        keys: Vec<String>,
        /// Whether some change needs a restart.
        restart_required: bool,
    },
    /// An access token was created or revoked.
    TokensChanged {
        /// Token id.
        token_id: String,
        /// Revoked (true) or created (false).
        revoked: bool,
    },
}

impl Topic for AdminEvent {
    fn topic(&self) -> &str {
        match self {
            Self::SettingsChanged { .. } => "settings",
            Self::TokensChanged { .. } => "tokens",
        }
    }
}
