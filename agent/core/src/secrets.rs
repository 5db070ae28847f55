//! Secrets the agent keeps for the user (the API keys of model providers):
//! one JSON file of their own, `secrets.json` in the agent's data folder,
//! readable by the user alone. Never in state.db or config.toml (both end
//! up in bug reports and backups), never logged, never returned by an RPC:
//! the agent reads a secret only to send it where it belongs.
//!
//! The file is written crash-safely (temporary file, fsync, rename) after
//! being narrowed to 0600, so a secret is never readable by others, not
//! even for a moment. A damaged file is reported, never overwritten: the
//! user's keys are not lost to a parse error. Keys are namespaced by the
//! caller (`provider/NAME/api_key`).

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::sync::Mutex;

use crate::{
    atomic_file::write_atomically,
    error::{Error, Result},
    reason::Reason,
};

/// File name of the secrets file in the data folder.
pub const SECRETS_FILE: &str = "secrets.json";

/// The secrets file, loaded on first use and cached; writes go to the disk
/// before they are acknowledged.
#[derive(Clone)]
pub struct Secrets {
    path: PathBuf,
    cache: Arc<Mutex<Option<BTreeMap<String, String>>>>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the values.
        f.debug_struct("Secrets").field("path", &self.path).finish()
    }
}

impl Secrets {
    /// The secrets kept in `path` (created on the first write).
    pub fn at(path: PathBuf) -> Self {
        Self {
            path,
            cache: Arc::new(Mutex::new(None)),
        }
    }

    /// Where the secrets are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The secret under `key`, if one is kept.
    pub async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut cache = self.cache.lock().await;
        let all = self.loaded(&mut cache).await?;
        Ok(all.get(key).cloned())
    }

    /// Keep `value` under `key` (replacing what was there).
    pub async fn set(&self, key: &str, value: &str) -> Result<()> {
        let mut cache = self.cache.lock().await;
        let mut all = self.loaded(&mut cache).await?.clone();
        all.insert(key.to_owned(), value.to_owned());
        self.store(&all).await?;
        *cache = Some(all);
        Ok(())
    }

    /// Forget every secret whose key starts with `prefix` (a provider's,
    /// when it is removed); how many were forgotten.
    pub async fn remove_prefix(&self, prefix: &str) -> Result<usize> {
        let mut cache = self.cache.lock().await;
        let mut all = self.loaded(&mut cache).await?.clone();
        let before = all.len();
        all.retain(|key, _| !key.starts_with(prefix));
        let removed = before - all.len();
        if removed > 0 {
            self.store(&all).await?;
        }
        *cache = Some(all);
        Ok(removed)
    }

    async fn loaded<'a>(
        &self,
        cache: &'a mut Option<BTreeMap<String, String>>,
    ) -> Result<&'a BTreeMap<String, String>> {
        if cache.is_none() {
            let path = self.path.clone();
            let all = tokio::task::spawn_blocking(move || read(&path))
                .await
                .map_err(|err| Error::internal(format!("reading secrets: {err}")))??;
            *cache = Some(all);
        }
        Ok(cache.get_or_insert_with(BTreeMap::new))
    }

    async fn store(&self, all: &BTreeMap<String, String>) -> Result<()> {
        let path = self.path.clone();
        let text = serde_json::to_vec_pretty(all)
            .map_err(|err| Error::internal(format!("encoding secrets: {err}")))?;
        tokio::task::spawn_blocking(move || write(&path, &text))
            .await
            .map_err(|err| Error::internal(format!("writing secrets: {err}")))?
    }
}

fn invalid(path: &Path, why: impl fmt::Display) -> Error {
    Error::internal(format!(
        "{} is not a valid secrets file ({why}); nothing was changed. Fix it or move it \
         aside (the API keys in it are then forgotten and must be entered again)",
        path.display()
    ))
    .with_reason(Reason::SecretsInvalid)
}

fn read(path: &Path) -> Result<BTreeMap<String, String>> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Ok(BTreeMap::new()),
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| invalid(path, err)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(err) => Err(invalid(path, err)),
    }
}

fn write(path: &Path, text: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let failed = |err: std::io::Error| {
        Error::internal(format!("cannot write {}: {err}", path.display()))
            .with_reason(Reason::SecretsInvalid)
    };
    // Narrowed first: write_atomically keeps the target's permissions, and
    // a copy restored with a wider mode must not stay readable.
    if path.exists() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)?;
    }
    write_atomically(path, text).map_err(failed)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(failed)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .map(|meta| meta.permissions().mode() & 0o777)
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn secrets_round_trip_in_an_owner_only_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|err| Error::internal(err.to_string()))?;
        let path = dir.path().join("data/secrets.json");
        let secrets = Secrets::at(path.clone());
        assert_eq!(secrets.get("provider/lm/api_key").await?, None);
        secrets.set("provider/lm/api_key", "sk-1").await?;
        secrets.set("provider/lm/header/x-team", "t").await?;
        secrets.set("provider/vllm/api_key", "sk-2").await?;
        assert_eq!(mode(&path), 0o600);
        // A fresh reader (the agent restarted) sees the same.
        let again = Secrets::at(path.clone());
        assert_eq!(
            again.get("provider/lm/api_key").await?.as_deref(),
            Some("sk-1")
        );
        assert_eq!(again.remove_prefix("provider/lm/").await?, 2);
        assert_eq!(again.get("provider/lm/api_key").await?, None);
        assert_eq!(
            Secrets::at(path)
                .get("provider/vllm/api_key")
                .await?
                .as_deref(),
            Some("sk-2")
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_wider_file_is_narrowed_on_the_next_write() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|err| Error::internal(err.to_string()))?;
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, "{\"a\": \"1\"}").map_err(|err| Error::internal(err.to_string()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .map_err(|err| Error::internal(err.to_string()))?;
        let secrets = Secrets::at(path.clone());
        secrets.set("b", "2").await?;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(secrets.get("a").await?.as_deref(), Some("1"));
        Ok(())
    }

    #[tokio::test]
    async fn a_damaged_file_is_reported_and_kept() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|err| Error::internal(err.to_string()))?;
        let path = dir.path().join("secrets.json");
        std::fs::write(&path, "{not json").map_err(|err| Error::internal(err.to_string()))?;
        let secrets = Secrets::at(path.clone());
        let err = secrets
            .set("a", "1")
            .await
            .err()
            .ok_or_else(|| Error::internal("saved"))?;
        assert_eq!(err.reason(), Some(Reason::SecretsInvalid));
        assert!(
            err.message().contains("not a valid secrets file"),
            "{}",
            err.message()
        );
        let kept =
            std::fs::read_to_string(&path).map_err(|err| Error::internal(err.to_string()))?;
        assert_eq!(kept, "{not json", "the user's file must not be overwritten");
        Ok(())
    }

    #[test]
    fn debug_never_shows_values() {
        let secrets = Secrets::at(PathBuf::from("/x/secrets.json"));
        assert!(!format!("{secrets:?}").contains("sk-"));
    }
}
