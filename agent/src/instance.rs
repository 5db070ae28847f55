//! One agent per user: two exclusive locks decide who runs. `agent.lock` in
//! the data folder guards what every agent of this user shares (state.db,
//! config.toml, the logs), whatever socket it was told to use;
//! `agent.sock.lock` next to the socket guards the socket, which another
//! user's data folder could point at too. Each lock file records its
//! holder's pid and socket, so a loser can say who runs. The winner checks
//! the socket folder (private, owned by us), removes a stale socket left by
//! a crash (detected by dialling it), and binds a fresh socket readable only
//! by its owner.

use std::{
    fs::{self, File, OpenOptions, Permissions},
    io::{self, Read, Seek, Write},
    os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use omnipanel_core::error::{Error, Result};
use omnipanel_core::reason::Reason;

/// Outcome of trying to become the agent.
#[derive(Debug)]
pub enum Claim {
    /// We hold the lock and may serve.
    Acquired(InstanceLock),
    /// Another agent holds it.
    AlreadyRunning {
        /// Its pid, as recorded in the lock file.
        pid: Option<u32>,
        /// The socket it serves on, as recorded in the lock file.
        socket: Option<PathBuf>,
    },
}

/// The held locks; released when dropped (or when the process dies, which
/// is what makes a crash leave no lasting lock behind).
#[derive(Debug)]
pub struct InstanceLock {
    _user: File,
    _socket: File,
    path: PathBuf,
}

impl InstanceLock {
    /// Path of the socket's lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Prepare the socket's folder and take both locks: `user_lock` (in the
/// data folder, one agent per user) first, then `socket_lock` (one agent
/// per socket).
pub fn claim(
    socket: &Path,
    socket_lock: &Path,
    user_lock: &Path,
    strict_dir: bool,
) -> Result<Claim> {
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
    if let Some(data_dir) = user_lock.parent() {
        // Private like the socket folder: state.db lives here too.
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|err| {
                Error::internal(format!("cannot create {}: {err}", data_dir.display()))
            })?;
    }
    let user = match lock_and_record(user_lock, socket)? {
        Locked::Held(file) => file,
        Locked::ByOther(holder) => return Ok(holder.into_claim(None)),
    };
    let socket_file = match lock_and_record(socket_lock, socket)? {
        Locked::Held(file) => file,
        // Another data folder's agent on our socket: it can only be
        // serving on this very socket, even if its record predates sockets
        // being written down.
        Locked::ByOther(holder) => return Ok(holder.into_claim(Some(socket))),
    };
    Ok(Claim::Acquired(InstanceLock {
        _user: user,
        _socket: socket_file,
        path: socket_lock.to_owned(),
    }))
}

enum Locked {
    Held(File),
    ByOther(Holder),
}

/// What a lock file says about the agent holding it.
struct Holder {
    pid: Option<u32>,
    socket: Option<PathBuf>,
}

impl Holder {
    /// The record is `pid` and `socket` on two lines; older agents wrote
    /// only the pid.
    fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let pid = lines.next().and_then(|line| line.trim().parse().ok());
        let socket = lines
            .next()
            .filter(|line| !line.is_empty())
            .map(PathBuf::from);
        Self { pid, socket }
    }

    fn into_claim(self, known_socket: Option<&Path>) -> Claim {
        Claim::AlreadyRunning {
            pid: self.pid,
            socket: self.socket.or_else(|| known_socket.map(Path::to_path_buf)),
        }
    }
}

/// Take the exclusive lock on `path` and record our pid and `socket` in
/// it, or read who holds it.
fn lock_and_record(path: &Path, socket: &Path) -> Result<Locked> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|err| {
            Error::internal(format!(
                "cannot open the lock file {}: {err}",
                path.display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            // Unreadable or not yet written (the holder locked a moment
            // ago): the caller reports an unknown pid rather than failing.
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Ok(Locked::ByOther(Holder::parse(&text)));
        }
        Err(fs::TryLockError::Error(err)) => {
            return Err(Error::internal(format!(
                "cannot lock {}: {err}",
                path.display()
            )));
        }
    }
    let record = |file: &mut File| -> io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        // A line break in the socket path would split the record; the
        // replacement only changes what a second start prints.
        let socket = socket.display().to_string().replace('\n', " ");
        writeln!(file, "{}\n{socket}", std::process::id())?;
        file.sync_all()
    };
    record(&mut file)
        .map_err(|err| Error::internal(format!("cannot write {}: {err}", path.display())))?;
    Ok(Locked::Held(file))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_claim_sees_the_first() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let socket = dir.path().join("run/agent.sock");
        let lock = dir.path().join("run/agent.sock.lock");
        let user_lock = dir.path().join("data/agent.lock");
        let Claim::Acquired(held) = claim(&socket, &lock, &user_lock, true)? else {
            panic!("first claim must win");
        };
        let mode = fs::metadata(dir.path().join("run"))
            .map_err(|e| Error::internal(e.to_string()))?
            .mode();
        assert_eq!(mode & 0o777, 0o700);
        match claim(&socket, &lock, &user_lock, true)? {
            Claim::AlreadyRunning { pid, socket: seen } => {
                assert_eq!(pid, Some(std::process::id()));
                assert_eq!(seen.as_deref(), Some(socket.as_path()));
            }
            Claim::Acquired(_) => panic!("second claim must lose"),
        }
        drop(held);
        assert!(matches!(
            claim(&socket, &lock, &user_lock, true)?,
            Claim::Acquired(_)
        ));
        Ok(())
    }

    #[test]
    fn another_socket_with_the_same_data_folder_names_the_first() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let first = dir.path().join("one/agent.sock");
        let second = dir.path().join("two/agent.sock");
        let user_lock = dir.path().join("data/agent.lock");
        let Claim::Acquired(_held) = claim(&first, &with_lock(&first), &user_lock, false)? else {
            panic!("first claim must win");
        };
        match claim(&second, &with_lock(&second), &user_lock, false)? {
            Claim::AlreadyRunning { pid, socket } => {
                assert_eq!(pid, Some(std::process::id()));
                assert_eq!(socket.as_deref(), Some(first.as_path()));
            }
            Claim::Acquired(_) => panic!("a second agent on another socket must lose"),
        }
        // The same socket from another data folder loses on the socket lock.
        let other_data = dir.path().join("data2/agent.lock");
        assert!(matches!(
            claim(&first, &with_lock(&first), &other_data, false)?,
            Claim::AlreadyRunning { .. }
        ));
        Ok(())
    }

    #[test]
    fn records_from_older_agents_still_name_the_pid() {
        let holder = Holder::parse("1234\n");
        assert_eq!(holder.pid, Some(1234));
        assert_eq!(holder.socket, None);
        match holder.into_claim(Some(Path::new("/run/agent.sock"))) {
            Claim::AlreadyRunning { pid, socket } => {
                assert_eq!(pid, Some(1234));
                assert_eq!(socket, Some(PathBuf::from("/run/agent.sock")));
            }
            Claim::Acquired(_) => panic!("a holder is never an acquisition"),
        }
        let garbled = Holder::parse("");
        assert_eq!((garbled.pid, garbled.socket), (None, None));
    }

    fn with_lock(socket: &Path) -> PathBuf {
        let mut name = socket.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
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
