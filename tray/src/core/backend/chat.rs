//! The backend side of [`ChatCommand`]s: the agent calls they make, each
//! reporting through the [`Sink`] as [`crate::core::workspace::chat::ChatUpdate`]s.

use omnipanel_client::Client;

use super::Sink;
use crate::core::workspace::chat::ChatCommand;

/// Run one command; `Ok` carries the line a person reads (may be empty).
pub(super) async fn run(
    _client: &Client,
    command: ChatCommand,
    _sink: &Sink,
) -> Result<String, String> {
    match command {}
}
