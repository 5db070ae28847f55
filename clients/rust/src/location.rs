//! Where the agent's socket lives. Shared by the agent (which creates it)
//! and every client (which dials it), so the two can never disagree.

use std::{
    env,
    path::{Path, PathBuf},
};

/// Environment variable overriding the socket path.
pub const SOCKET_ENV: &str = "OMNIPANEL_SOCKET";
/// Environment variable naming a TCP address (`host:port` or a URL) to use
/// instead of the socket.
pub const ADDR_ENV: &str = "OMNIPANEL_ADDR";
/// Environment variable holding the bearer token for TCP connections.
pub const TOKEN_ENV: &str = "OMNIPANEL_TOKEN";
/// Environment variable naming a PEM file with the CA that signed the
/// agent's TLS certificate.
pub const CA_CERT_ENV: &str = "OMNIPANEL_CA_CERT";

/// The current user's numeric id.
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The folder holding the socket: `$XDG_RUNTIME_DIR/omnipanel`, or
/// `/tmp/omnipanel-$UID` when no usable runtime dir is set.
pub fn runtime_dir() -> PathBuf {
    match env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir).join("omnipanel"),
        _ => env::temp_dir().join(format!("omnipanel-{}", current_uid())),
    }
}

/// The socket path: `OMNIPANEL_SOCKET` when set and not empty, else
/// `agent.sock` in [`runtime_dir`].
pub fn socket_path() -> PathBuf {
    match env::var_os(SOCKET_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => runtime_dir().join("agent.sock"),
    }
}
