//! Where the agent keeps things, following the XDG base-directory rules on
//! Linux (and the same layout under `$HOME` elsewhere): settings in
//! `$XDG_CONFIG_HOME/omnipanel`, state.db in `$XDG_DATA_HOME/omnipanel`,
//! logs and crash reports in `$XDG_STATE_HOME/omnipanel`, the socket in the
//! runtime dir.

use std::{
    env,
    ffi::OsString,
    path::{Path, PathBuf},
};

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
    /// Resolve from the environment (`XDG_*`, `HOME`, `OMNIPANEL_SOCKET`).
    pub fn from_env() -> Self {
        let home = env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(env::temp_dir);
        let config = xdg_dir("XDG_CONFIG_HOME", &home, ".config");
        let data = xdg_dir("XDG_DATA_HOME", &home, ".local/share");
        let state = xdg_dir("XDG_STATE_HOME", &home, ".local/state");
        Self {
            config_file: config.join("omnipanel").join("config.toml"),
            data_dir: data.join("omnipanel"),
            log_dir: state.join("omnipanel").join("logs"),
            crash_dir: state.join("omnipanel").join("crashes"),
            socket: omnipanel_client::location::socket_path(),
        }
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

/// `$VAR` when it is set to an absolute path (the spec says relative values
/// are invalid and must be ignored), else `$HOME/<fallback>`.
fn xdg_dir(var: &str, home: &Path, fallback: &str) -> PathBuf {
    match env::var_os(var) {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        _ => home.join(fallback),
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
