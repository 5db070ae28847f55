//! Dialling the agent's local endpoint, the client's one OS-specific part:
//! a Unix domain socket on Unix. A port supplies its local transport here
//! (a named pipe on Windows); until then other systems reach the agent
//! over TCP (`OMNIPANEL_ADDR`) and dialling a socket says so.

use std::{io, path::Path};

/// A connection to the agent's local endpoint.
#[cfg(unix)]
pub(crate) type LocalStream = tokio::net::UnixStream;
/// A connection to the agent's local endpoint (none here yet).
#[cfg(not(unix))]
pub(crate) type LocalStream = tokio::io::DuplexStream;

/// Connect to the agent's socket at `path`.
#[cfg(unix)]
pub(crate) async fn dial(path: &Path) -> io::Result<LocalStream> {
    tokio::net::UnixStream::connect(path).await
}

/// Connect to the agent's socket at `path`: not available on this system.
#[cfg(not(unix))]
pub(crate) async fn dial(path: &Path) -> io::Result<LocalStream> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "{} cannot be dialled: local sockets are not supported on this system yet; set OMNIPANEL_ADDR to the agent's TCP address",
            path.display()
        ),
    ))
}
