//! Finding the Ollama executable: the configured path, else `ollama` on
//! PATH, else the places the official installers put it. Re-run before every
//! start so an Ollama installed while the agent runs is picked up. Every
//! "not found" says how to install Ollama, also when a configured path is
//! wrong: the user may have set it before installing, or on another machine.

use std::{
    env,
    path::{Path, PathBuf},
};

use crate::platform::fs::is_executable;

/// How to install Ollama, for error messages.
pub const INSTALL_HINT: &str = "install Ollama from https://ollama.com/download (Linux: `curl -fsSL https://ollama.com/install.sh | sh`)";

/// `message`, ending with how to install Ollama unless it already says.
pub fn with_install_hint(message: &str) -> String {
    if message.contains(INSTALL_HINT) {
        message.to_owned()
    } else {
        format!("{message}; {INSTALL_HINT}")
    }
}

#[cfg(windows)]
const EXE: &str = "ollama.exe";
#[cfg(not(windows))]
const EXE: &str = "ollama";

/// Places the official installers use, most likely first.
fn usual_places() -> Vec<PathBuf> {
    let mut places: Vec<PathBuf> = Vec::new();
    if cfg!(target_os = "macos") {
        places.push("/Applications/Ollama.app/Contents/Resources/ollama".into());
        places.push("/opt/homebrew/bin/ollama".into());
        places.push("/usr/local/bin/ollama".into());
    } else if cfg!(windows) {
        if let Some(local) = env::var_os("LOCALAPPDATA") {
            places.push(
                PathBuf::from(local)
                    .join("Programs")
                    .join("Ollama")
                    .join(EXE),
            );
        }
    } else {
        places.push("/usr/local/bin/ollama".into());
        places.push("/usr/bin/ollama".into());
        places.push("/opt/ollama/bin/ollama".into());
        places.push("/snap/bin/ollama".into());
        if let Some(home) = env::var_os("HOME") {
            places.push(PathBuf::from(home).join(".local/bin/ollama"));
        }
    }
    places
}

/// The executable to run, or why none was found.
pub fn find_binary(configured: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = configured {
        let problem = if is_executable(path) {
            return Ok(path.to_owned());
        } else if path.exists() {
            "is not an executable file"
        } else {
            "does not exist"
        };
        return Err(format!(
            "ollama.binary = {} {problem}: correct ollama.binary in config.toml, or {INSTALL_HINT}",
            path.display()
        ));
    }
    if let Some(path) = env::var_os("PATH") {
        for dir in env::split_paths(&path) {
            let candidate = dir.join(EXE);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
    }
    usual_places()
        .into_iter()
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            format!("Ollama is not installed: {INSTALL_HINT}, or set ollama.binary in config.toml to its path")
        })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn configured_binary_must_exist_and_be_executable() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("ollama");
        let missing = find_binary(Some(&path)).unwrap_err();
        assert!(missing.contains("does not exist"), "{missing}");
        assert!(missing.contains(INSTALL_HINT), "{missing}");
        std::fs::write(&path, "#!/bin/sh\n")?;
        let not_executable = find_binary(Some(&path)).unwrap_err();
        assert!(
            not_executable.contains("not an executable"),
            "{not_executable}"
        );
        assert!(not_executable.contains(INSTALL_HINT), "{not_executable}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        assert_eq!(find_binary(Some(&path)), Ok(path));
        Ok(())
    }

    #[test]
    fn the_install_hint_is_added_once() {
        let once = with_install_hint("Ollama is gone");
        assert!(once.starts_with("Ollama is gone; install Ollama from https://ollama.com"));
        assert_eq!(with_install_hint(&once), once);
    }
}
