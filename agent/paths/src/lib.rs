//! Where OmniPanel keeps things, following the XDG base-directory rules on
//! Linux (and the same layout under `$HOME` elsewhere): settings in
//! `$XDG_CONFIG_HOME/omnipanel`, state.db in `$XDG_DATA_HOME/omnipanel`,
//! logs and crash reports in `$XDG_STATE_HOME/omnipanel`, the socket in the
//! runtime dir. The one copy of these rules: the agent (which creates the
//! files), and the CLI, tray and client library (which find them) all use
//! this crate, so they can never disagree.

use std::{
    env,
    ffi::OsString,
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
/// Environment variable overriding the settings file.
pub const CONFIG_ENV: &str = "OMNIPANEL_CONFIG";

mod platform;

pub use platform::current_uid;

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

/// `$HOME`, or the temporary folder when it is not set.
/// The user's home folder (`$HOME`; the temp folder when it is unset).
pub fn home_dir() -> PathBuf {
    home()
}

/// `$XDG_DATA_HOME`, or `~/.local/share`.
pub fn data_home() -> PathBuf {
    xdg_dir("XDG_DATA_HOME", &home(), ".local/share")
}

fn home() -> PathBuf {
    env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(env::temp_dir)
}

/// `$VAR` when it is set to an absolute path (the spec says relative values
/// are invalid and must be ignored), else `$HOME/<fallback>`.
fn xdg_dir(var: &str, home: &Path, fallback: &str) -> PathBuf {
    match env::var_os(var) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => home.join(fallback),
    }
}

/// OmniPanel's folder under `$XDG_STATE_HOME`: logs, crash reports, the
/// panel's first-run marker.
pub fn state_dir() -> PathBuf {
    xdg_dir("XDG_STATE_HOME", &home(), ".local/state").join("omnipanel")
}

/// Where every OmniPanel process (the agent, the tray, the panel) writes
/// its crash reports, and where the agent lists them from.
pub fn crash_dir() -> PathBuf {
    state_dir().join("crashes")
}

/// The settings file: `OMNIPANEL_CONFIG` when set and not empty, else
/// `$XDG_CONFIG_HOME/omnipanel/config.toml`.
pub fn config_file() -> PathBuf {
    match env::var_os(CONFIG_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => xdg_dir("XDG_CONFIG_HOME", &home(), ".config")
            .join("omnipanel")
            .join("config.toml"),
    }
}

/// Environment variable: the id of a confirmation the user allowed, sent
/// with every call (a client retrying a destructive act from a script).
pub const CONFIRMATION_ENV: &str = "OMNIPANEL_CONFIRMATION";

/// Name of the owner credential file in the agent's data folder.
pub const OWNER_CREDENTIAL_FILE: &str = "owner-credential";

/// Where the owner credential is, for clients: in the data folder
/// (`$XDG_DATA_HOME/omnipanel`), never next to the socket, so a sandbox
/// given the socket's folder does not get it.
pub fn owner_credential_path() -> PathBuf {
    data_home().join("omnipanel").join(OWNER_CREDENTIAL_FILE)
}

/// Every location the agent uses, resolved once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentPaths {
    /// `config.toml`.
    pub config_file: PathBuf,
    /// Folder holding state.db.
    pub data_dir: PathBuf,
    /// Folder holding the rotated log files.
    pub log_dir: PathBuf,
    /// Folder holding crash reports.
    pub crash_dir: PathBuf,
    /// The agent's Unix socket.
    pub socket: PathBuf,
}

impl AgentPaths {
    /// Resolve from the environment (`XDG_*`, `HOME`, `OMNIPANEL_SOCKET`);
    /// the settings file is the XDG one (`OMNIPANEL_CONFIG` and `--config`
    /// are the agent's command line to apply).
    pub fn from_env() -> Self {
        let home = home();
        let config = xdg_dir("XDG_CONFIG_HOME", &home, ".config");
        let data = xdg_dir("XDG_DATA_HOME", &home, ".local/share");
        let state = state_dir();
        Self {
            config_file: config.join("omnipanel").join("config.toml"),
            data_dir: data.join("omnipanel"),
            log_dir: state.join("logs"),
            crash_dir: crash_dir(),
            socket: socket_path(),
        }
    }

    /// The agent's own places: its config, data, state (logs, crash
    /// reports) and runtime folders, and its socket (which may live
    /// elsewhere, e.g. in /tmp: then only the socket itself is protected,
    /// not the folder it is in). No project may touch them.
    pub fn agent_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![self.data_dir.clone(), runtime_dir(), self.socket.clone()];
        for path in [&self.config_file, &self.log_dir] {
            if let Some(parent) = path.parent() {
                dirs.push(parent.to_path_buf());
            }
        }
        dirs
    }

    /// Path of the owner credential (see [`owner_credential_path`]).
    pub fn owner_credential(&self) -> PathBuf {
        self.data_dir.join(OWNER_CREDENTIAL_FILE)
    }

    /// Path of the state database.
    pub fn state_db(&self) -> PathBuf {
        self.data_dir.join("state.db")
    }

    /// Lock file that makes the agent a single instance per user: every
    /// agent using this data folder shares state.db, config and logs,
    /// whatever socket it serves on. It also records the holder's pid and
    /// socket for a second start to report.
    pub fn user_lock_file(&self) -> PathBuf {
        self.data_dir.join("agent.lock")
    }

    /// Lock file that makes the agent a single instance per socket.
    pub fn lock_file(&self) -> PathBuf {
        let mut name: OsString = self
            .socket
            .file_name()
            .map(ToOwned::to_owned)
            .unwrap_or_else(|| "agent.sock".into());
        name.push(".lock");
        self.socket.with_file_name(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_sits_next_to_the_socket() {
        let paths = AgentPaths {
            config_file: "/c/config.toml".into(),
            data_dir: "/d".into(),
            log_dir: "/l".into(),
            crash_dir: "/x".into(),
            socket: "/run/user/1/omnipanel/agent.sock".into(),
        };
        assert_eq!(
            paths.lock_file(),
            PathBuf::from("/run/user/1/omnipanel/agent.sock.lock")
        );
        assert_eq!(paths.user_lock_file(), PathBuf::from("/d/agent.lock"));
    }

    #[test]
    fn relative_xdg_values_are_ignored() {
        assert_eq!(
            xdg_dir("OMNIPANEL_TEST_UNSET_VAR", Path::new("/home/u"), ".config"),
            PathBuf::from("/home/u/.config")
        );
    }
}
