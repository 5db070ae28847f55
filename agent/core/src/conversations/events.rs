//! What the conversation store publishes on the event bus: a conversation
//! created, added to or deleted (topic "conversations"; the server shows
//! it only to clients granted the conversation's project).

use crate::events::Topic;

/// A conversation event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationEvent {
    /// A conversation was created, had messages added, or was deleted.
    ConversationChanged {
        /// Conversation id.
        conversation_id: String,
        /// The project's id.
        project_id: String,
        /// "created", "updated" or "deleted".
        change: String,
    },
}

impl Topic for ConversationEvent {
    fn topic(&self) -> &str {
        match self {
            Self::ConversationChanged { .. } => "conversations",
        }
    }
}
