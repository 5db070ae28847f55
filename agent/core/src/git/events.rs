//! What the Git domain publishes on the event bus: a project's repository
//! changed.

use crate::events::Topic;

/// A Git event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitEvent {
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
}

impl Topic for GitEvent {
    fn topic(&self) -> &str {
        match self {
            Self::RepositoryChanged { .. } => "git",
        }
    }
}
