//! What the projects domain publishes on the event bus: projects created,
//! opened, closed or forgotten, and changes of their watch state.

use crate::{events::Topic, files::watch::WatchStatus};

/// A project event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectEvent {
    /// A project was created, opened, closed or forgotten.
    ProjectChanged {
        /// Project id.
        project_id: String,
        /// Root folder.
        path: String,
        /// "created", "opened", "closed", "forgotten", "model".
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
}

impl Topic for ProjectEvent {
    fn topic(&self) -> &str {
        match self {
            Self::ProjectChanged { .. } | Self::ProjectWatchChanged { .. } => "projects",
        }
    }
}
