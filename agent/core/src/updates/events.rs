//! What the self-update domain publishes on the event bus: a newer release,
//! download progress, installs and rollbacks.

use crate::{events::Topic, updates::Progress as UpdateProgress};

/// A self-update event.
#[derive(Debug, Clone, PartialEq)]
pub enum UpdateEvent {
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

impl Topic for UpdateEvent {
    fn topic(&self) -> &str {
        match self {
            Self::UpdateAvailable { .. }
            | Self::UpdateProgress(_)
            | Self::UpdateInstalled { .. }
            | Self::UpdateRolledBack { .. } => "updates",
        }
    }
}
