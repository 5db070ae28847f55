//! The backend side of [`GitCommand`]s: the agent calls they make, each
//! reporting through the [`Sink`] as [`crate::core::workspace::git::GitUpdate`]s.

use omnipanel_client::Client;

use super::Sink;
use crate::core::workspace::git::GitCommand;

/// Run one command; `Ok` carries the line a person reads (may be empty).
pub(super) async fn run(
    _client: &Client,
    command: GitCommand,
    _sink: &Sink,
) -> Result<String, String> {
    match command {}
}
