//! Who is on the other end of the local socket: the kernel's word on the
//! peer (SO_PEERCRED on Linux, getpeereid elsewhere on Unix, read by the
//! transport when it accepts), reduced to the one fact the access layer
//! compares, the peer's uid, and the uid it must equal (ours). A port with
//! another notion of identity (Windows SIDs) changes this file.

/// What the transport read about a peer when it accepted the connection.
pub type PeerCredentials = tokio::net::unix::UCred;

/// The uid of the user this agent runs as: the only one it serves on the
/// socket.
pub fn owner_uid() -> u32 {
    omnipanel_paths::current_uid()
}

/// The peer's uid.
pub fn peer_uid(credentials: &PeerCredentials) -> u32 {
    credentials.uid()
}
