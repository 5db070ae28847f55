//! The backend side of [`FilesCommand`]s: the agent calls they make, each
//! reporting through the [`Sink`] as [`crate::core::workspace::files::FilesUpdate`]s.

use omnipanel_client::Client;

use super::Sink;
use crate::core::workspace::files::FilesCommand;

/// Run one command; `Ok` carries the line a person reads (may be empty).
pub(super) async fn run(
    _client: &Client,
    command: FilesCommand,
    _sink: &Sink,
) -> Result<String, String> {
    match command {}
}
