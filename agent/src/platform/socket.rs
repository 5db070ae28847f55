//! The local socket as a file, where the OS decides what is possible: the
//! socket folder (private to us and owned by us), a stale socket left by a
//! crash (detected by dialling it, then removed), binding, and restricting
//! the fresh socket to its owner. Unix domain sockets and file modes are
//! Unix; a port supplies its own transport here (a named pipe on Windows)
//! with the same functions. The gRPC side (`rpc/mod.rs`) only turns the
//! listener into a stream of connections.

use std::{
    fs::{self, Permissions},
    io,
    os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt},
    path::Path,
};

use omnipanel_core::error::{Error, Result};
use omnipanel_core::reason::Reason;

/// The listener the agent serves its local API on.
pub type Listener = tokio::net::UnixListener;

/// Create the folder private to us, or check an existing one. With
/// `strict`, an existing folder must be ours and not open to others (its
/// mode is tightened if needed); without it (a user-chosen socket path) only
/// a missing folder is created, privately.
pub fn prepare_dir(dir: &Path, strict: bool) -> Result<()> {
    match fs::metadata(dir) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| Error::internal(format!("cannot create {}: {err}", dir.display()))),
        Err(err) => Err(Error::internal(format!(
            "cannot inspect {}: {err}",
            dir.display()
        ))),
        Ok(meta) if !meta.is_dir() => Err(Error::failed_precondition(format!(
            "{} should be the agent's socket folder but is not a folder",
            dir.display()
        ))),
        Ok(meta) if strict => {
            let uid = omnipanel_paths::current_uid();
            if meta.uid() != uid {
                return Err(Error::permission_denied(format!(
                    "{} belongs to uid {}, not to you (uid {uid}); remove it or set OMNIPANEL_SOCKET",
                    dir.display(),
                    meta.uid()
                ))
                .with_reason(Reason::SocketDirNotOwned));
            }
            if meta.mode() & 0o077 != 0 {
                fs::set_permissions(dir, Permissions::from_mode(0o700)).map_err(|err| {
                    Error::internal(format!("cannot make {} private: {err}", dir.display()))
                })?;
            }
            Ok(())
        }
        Ok(_) => Ok(()),
    }
}

/// Remove a socket nobody answers on. A live socket (an agent that does
/// not share our lock file) or a non-socket file is refused.
pub fn clear_stale_socket(socket: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(socket) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => {
            return Err(Error::internal(format!(
                "cannot inspect {}: {err}",
                socket.display()
            )));
        }
    };
    if !meta.file_type().is_socket() {
        return Err(Error::failed_precondition(format!(
            "{} exists and is not a socket; move it away or set OMNIPANEL_SOCKET",
            socket.display()
        )));
    }
    match std::os::unix::net::UnixStream::connect(socket) {
        Ok(_) => Err(Error::failed_precondition(format!(
            "another process is serving on {}",
            socket.display()
        ))
        .with_reason(Reason::SocketInUse)),
        Err(_) => {
            tracing::info!(socket = %socket.display(), "removing stale socket left by an earlier run");
            fs::remove_file(socket).map_err(|err| {
                Error::internal(format!(
                    "cannot remove the stale socket {}: {err}",
                    socket.display()
                ))
            })
        }
    }
}

/// Restrict the freshly bound socket to its owner.
pub fn protect_socket(socket: &Path) -> Result<()> {
    fs::set_permissions(socket, Permissions::from_mode(0o600)).map_err(|err| {
        Error::internal(format!(
            "cannot restrict permissions of {}: {err}",
            socket.display()
        ))
    })
}

/// Bind the socket at `socket` (which [`clear_stale_socket`] has cleared).
pub fn listen(socket: &Path) -> Result<Listener> {
    Listener::bind(socket)
        .map_err(|err| Error::internal(format!("cannot listen on {}: {err}", socket.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_socket_is_removed_but_a_regular_file_is_not() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let socket = dir.path().join("agent.sock");
        {
            let _listener = std::os::unix::net::UnixListener::bind(&socket)
                .map_err(|e| Error::internal(e.to_string()))?;
        }
        assert!(socket.exists());
        clear_stale_socket(&socket)?;
        assert!(!socket.exists());
        fs::write(&socket, "not a socket").map_err(|e| Error::internal(e.to_string()))?;
        assert!(clear_stale_socket(&socket).is_err());
        Ok(())
    }
}
