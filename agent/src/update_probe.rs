//! The update handover's health check over the API: the restarted agent is
//! asked for its version with the client library. The domain crate's
//! handover takes it as a [`VersionProbe`], so it stays free of gRPC.

use std::path::Path;

use omnipanel_client::{Client, ClientError, Target};
use omnipanel_core::updates::handover::VersionProbe;

/// Dials the probe socket with the client library.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientVersionProbe;

impl VersionProbe for ClientVersionProbe {
    async fn version(&self, socket: &Path) -> Result<Option<String>, String> {
        match Client::connect_unchecked(Target::Unix(socket.to_owned())).await {
            Ok(client) => Ok(Some(client.info().version.clone())),
            Err(ClientError::AgentNotRunning { .. }) => Ok(None),
            Err(err) => Err(format!("the new agent answered with an error: {err}")),
        }
    }
}
