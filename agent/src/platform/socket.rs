//! The local socket as a file, where the OS decides what is possible: the
//! socket folder (private to us and owned by us), a stale socket left by a
//! crash (detected by dialling it, then removed), binding, and restricting
//! the fresh socket to its owner, and noticing when the socket or its
//! folder is removed under the running agent. Unix domain sockets and file
//! modes are Unix (the removal is followed with inotify, on Linux); a port
//! supplies its own transport here (a named pipe on Windows) with the same
//! functions. The gRPC side (`rpc/mod.rs`) only turns the
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

/// Resolves when clients can no longer reach the agent at `socket`: the
/// socket file is removed, renamed or replaced, or its folder is removed
/// or moved (`rm -rf $XDG_RUNTIME_DIR/omnipanel`, a cleaner emptying the
/// runtime folder). Followed with inotify, so nothing runs until it
/// happens. An error says the removal cannot be followed at all.
#[cfg(target_os = "linux")]
pub async fn removed(socket: &Path) -> io::Result<()> {
    use futures_util::StreamExt;
    use inotify::{EventMask, Inotify, WatchMask};

    let (Some(dir), Some(name)) = (socket.parent(), socket.file_name()) else {
        return Err(io::Error::other(format!(
            "{} has no folder to watch",
            socket.display()
        )));
    };
    let inotify = Inotify::init()?;
    inotify.watches().add(
        dir,
        WatchMask::DELETE
            | WatchMask::MOVED_FROM
            | WatchMask::CREATE
            | WatchMask::MOVED_TO
            | WatchMask::DELETE_SELF
            | WatchMask::MOVE_SELF
            | WatchMask::ONLYDIR,
    )?;
    // The socket may have gone between binding and this watch.
    if fs::symlink_metadata(socket).is_err() {
        return Ok(());
    }
    let mut events = inotify.into_event_stream(vec![0u8; 4096])?;
    while let Some(event) = events.next().await {
        let event = event?;
        let folder_gone = event
            .mask
            .intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::IGNORED);
        // CREATE and MOVED_TO of the name: something replaced the socket
        // (another process bound its own there), so ours is unreachable.
        if folder_gone || event.name.as_deref() == Some(name) {
            return Ok(());
        }
    }
    Err(io::Error::other("the inotify stream ended"))
}

/// Without inotify the removal goes unnoticed (not a supported platform).
#[cfg(not(target_os = "linux"))]
pub async fn removed(_socket: &Path) -> io::Result<()> {
    std::future::pending().await
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

    #[tokio::test]
    async fn removing_the_socket_folder_is_noticed_and_a_quiet_folder_is_not() -> Result<()> {
        let io = |e: io::Error| Error::internal(e.to_string());
        let root = tempfile::tempdir().map_err(io)?;
        let dir = root.path().join("omnipanel");
        fs::create_dir(&dir).map_err(io)?;
        let socket = dir.join("agent.sock");
        let _listener = listen(&socket)?;
        // Other files coming and going in the folder are not a removal.
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(300), async {
            let watch = removed(&socket);
            tokio::pin!(watch);
            tokio::select! {
                biased;
                done = &mut watch => Some(done),
                () = async {
                    fs::write(dir.join("agent.lock.tmp"), "x").ok();
                    fs::remove_file(dir.join("agent.lock.tmp")).ok();
                    std::future::pending::<()>().await;
                } => None,
            }
        })
        .await;
        assert!(
            quiet.is_err(),
            "an unrelated file counted as removal: {quiet:?}"
        );
        let watch = tokio::spawn({
            let socket = socket.clone();
            async move { removed(&socket).await }
        });
        // Give the watch time to be in place; its own check covers a removal
        // that comes first anyway.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        fs::remove_dir_all(&dir).map_err(io)?;
        tokio::time::timeout(std::time::Duration::from_secs(10), watch)
            .await
            .map_err(|_| Error::internal("the removal was not noticed"))?
            .map_err(|e| Error::internal(e.to_string()))?
            .map_err(io)?;
        Ok(())
    }
}
