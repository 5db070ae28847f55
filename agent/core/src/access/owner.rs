//! The owner credential: a random secret in a 0600 file in the agent's data
//! folder, made at first start. Whoever presents it is the owner, which is
//! how our own CLI, tray and panel are told apart from every other client
//! of the socket; nothing is trusted for where its executable lives (that
//! breaks after every self-update, in development layouts and under
//! `cargo install`). The file is not in the socket's folder, so a sandbox
//! or container given that folder does not get it.

use std::{
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::{
    error::{Error, Result},
    platform::fs as platform_fs,
    tokens::random_bytes,
};

/// Prefix that tells the owner credential from a client's token.
pub const OWNER_PREFIX: &str = "ompo_";

/// The owner credential, held as its hash.
#[derive(Clone)]
pub struct OwnerCredential {
    hash: [u8; 32],
    path: PathBuf,
}

impl std::fmt::Debug for OwnerCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerCredential")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl OwnerCredential {
    /// Read the credential at `path`, making it (owner-only) when there is
    /// none or it is unusable, and narrowing its mode when it is wider than
    /// owner-only. Blocking.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let cannot = |what: &str, err: io::Error| {
            Error::internal(format!(
                "cannot {what} the owner credential {}: {err}",
                path.display()
            ))
        };
        match std::fs::read_to_string(path) {
            Ok(text) if is_well_formed(text.trim()) => {
                platform_fs::make_private(path).map_err(|err| cannot("protect", err))?;
                return Ok(Self::from_secret(text.trim(), path));
            }
            Ok(_) => {
                tracing::warn!(path = %path.display(), "the owner credential was malformed; a new one was made")
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(cannot("read", err)),
        }
        if let Some(dir) = path.parent() {
            platform_fs::create_private_dir(dir)
                .map_err(|err| cannot("make the folder of", err))?;
        }
        let secret = format!(
            "{OWNER_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
        );
        // A temporary file made owner-only before the secret is written,
        // then renamed: no moment where the secret is readable by others
        // or half written.
        let temporary = path.with_extension("new");
        let _ = std::fs::remove_file(&temporary);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        let mut file = platform_fs::private_file(&mut options)
            .open(&temporary)
            .map_err(|err| cannot("create", err))?;
        file.write_all(format!("{secret}\n").as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|err| cannot("write", err))?;
        std::fs::rename(&temporary, path).map_err(|err| cannot("write", err))?;
        tracing::info!(path = %path.display(), "owner credential created");
        Ok(Self::from_secret(&secret, path))
    }

    fn from_secret(secret: &str, path: &Path) -> Self {
        Self {
            hash: Sha256::digest(secret.as_bytes()).into(),
            path: path.to_owned(),
        }
    }

    /// Whether `presented` is the owner credential. Compares hashes, so the
    /// time taken says nothing about the secret.
    pub fn matches(&self, presented: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        presented
            .iter()
            .zip(self.hash.iter())
            .fold(0u8, |differ, (a, b)| differ | (a ^ b))
            == 0
    }

    /// Where the credential is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn is_well_formed(secret: &str) -> bool {
    secret.len() > OWNER_PREFIX.len() + 32
        && secret.starts_with(OWNER_PREFIX)
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(err: io::Error) -> Error {
        Error::internal(err.to_string())
    }

    #[test]
    fn made_once_owner_only_and_recognised() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io)?;
        let path = dir.path().join("data/owner-credential");
        let first = OwnerCredential::load_or_create(&path)?;
        let secret = std::fs::read_to_string(&path).map_err(io)?;
        if let Some(mode) = platform_fs::permission_bits(&path) {
            assert_eq!(mode, 0o600);
        }
        assert!(first.matches(secret.trim()));
        assert!(!first.matches("ompo_guess"));
        assert!(!first.matches(""));
        let again = OwnerCredential::load_or_create(&path)?;
        assert!(again.matches(secret.trim()), "a second start keeps it");
        Ok(())
    }

    #[test]
    fn a_wide_mode_is_narrowed_and_garbage_replaced() -> Result<()> {
        let dir = tempfile::tempdir().map_err(io)?;
        let path = dir.path().join("owner-credential");
        let first = OwnerCredential::load_or_create(&path)?;
        if platform_fs::permission_bits(&path).is_some() {
            // Widen it the way a careless copy would.
            platform_fs::make_executable(&path).map_err(io)?;
            OwnerCredential::load_or_create(&path)?;
            assert_eq!(platform_fs::permission_bits(&path), Some(0o600));
        }
        let secret = std::fs::read_to_string(&path).map_err(io)?;
        assert!(first.matches(secret.trim()));
        std::fs::write(&path, "not a credential").map_err(io)?;
        let replaced = OwnerCredential::load_or_create(&path)?;
        assert!(!replaced.matches("not a credential"));
        Ok(())
    }
}
