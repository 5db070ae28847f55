//! What client admission publishes on the event bus (topic "access"): an
//! access request made or answered, a confirmation asked or answered, a
//! client admitted or revoked. Only the owner is shown these.

use crate::events::Topic;

use super::{confirm::Confirmation, requests::AccessRequest};

/// A client-admission event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessEvent {
    /// A request was made or changed state (never carries its token).
    RequestChanged(AccessRequest),
    /// A confirmation was asked or answered.
    ConfirmationChanged(Confirmation),
    /// A client was admitted (`revoked: false`) or revoked or expired.
    ClientsChanged {
        /// The grant's id.
        client_id: String,
        /// The client's name.
        client_name: String,
        /// Revoked or expired.
        revoked: bool,
    },
}

impl Topic for AccessEvent {
    fn topic(&self) -> &str {
        "access"
    }
}
