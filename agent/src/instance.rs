//! One agent per user (per socket): an exclusive lock on `agent.sock.lock`
//! decides who runs; the winner checks the socket folder (private, owned by
//! us), removes a stale socket left by a crash (detected by dialling it),
//! and binds a fresh socket readable only by its owner.

use std::{
    fs::{self, File, OpenOptions, Permissions},
    io::{self, Read, Seek, Write},
    os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use crate::error::{Error, Result};

/// Outcome of trying to become the agent.
#[derive(Debug)]
pub enum Claim {
    /// We hold the lock and may serve.
    Acquired(InstanceLock),
    /// Another agent holds it.
    AlreadyRunning {
        /// Its pid, as recorded in the lock file.
        pid: Option<u32>,
    },
}

/// The held lock; released when dropped (or when the process dies, which
/// is what makes a crash leave no lasting lock behind).
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Path of the lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Prepare the socket's folder and take the instance lock.
pub fn claim(socket: &Path, lock_path: &Path, strict_dir: bool) -> Result<Claim> {
    let dir = socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .ok_or_else(|| {
            Error::invalid_argument(
                "socket path",
                format!("{} has no parent folder", socket.display()),
            )
        })?;
    prepare_dir(dir, strict_dir)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path)
        .map_err(|err| {
            Error::internal(format!(
                "cannot open the lock file {}: {err}",
                lock_path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Ok(Claim::AlreadyRunning {
                pid: text.trim().parse().ok(),
            });
        }
        Err(fs::TryLockError::Error(err)) => {
            return Err(Error::internal(format!(
                "cannot lock {}: {err}",
                lock_path.display()
            )));
        }
    }
    let record_pid = |file: &mut File| -> io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()
    };
    record_pid(&mut file)
        .map_err(|err| Error::internal(format!("cannot write {}: {err}", lock_path.display())))?;
    Ok(Claim::Acquired(InstanceLock {
        _file: file,
        path: lock_path.to_owned(),
    }))
}

/// Create the folder private to us, or check an existing one. With
/// `strict`, an existing folder must be ours and not open to others (its
/// mode is tightened if needed); without it (a user-chosen socket path) only
/// a missing folder is created, privately.
fn prepare_dir(dir: &Path, strict: bool) -> Result<()> {
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
            let uid = omnipanel_client::location::current_uid();
            if meta.uid() != uid {
                return Err(Error::permission_denied(format!(
                    "{} belongs to uid {}, not to you (uid {uid}); remove it or set OMNIPANEL_SOCKET",
                    dir.display(),
                    meta.uid()
                ))
                .with_reason("SOCKET_DIR_NOT_OWNED"));
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
        .with_reason("SOCKET_IN_USE")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_claim_sees_the_first() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let socket = dir.path().join("run/agent.sock");
        let lock = dir.path().join("run/agent.sock.lock");
        let Claim::Acquired(held) = claim(&socket, &lock, true)? else {
            panic!("first claim must win");
        };
        let mode = fs::metadata(dir.path().join("run"))
            .map_err(|e| Error::internal(e.to_string()))?
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        match claim(&socket, &lock, true)? {
            Claim::AlreadyRunning { pid } => assert_eq!(pid, Some(std::process::id())),
            Claim::Acquired(_) => panic!("second claim must lose"),
        }
        drop(held);
        assert!(matches!(claim(&socket, &lock, true)?, Claim::Acquired(_)));
        Ok(())
    }

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
