//! What the system domain publishes on the event bus: alerts raised and
//! cleared, and threshold changes.

use crate::{events::Topic, system::thresholds::Alert};

/// A system event. (Not `Eq`: alerts carry measured values.)
#[derive(Debug, Clone, PartialEq)]
pub enum SystemEvent {
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
}

impl Topic for SystemEvent {
    fn topic(&self) -> &str {
        match self {
            Self::AlertRaised(_) | Self::AlertCleared(_) | Self::ThresholdsChanged { .. } => {
                "alerts"
            }
        }
    }
}
