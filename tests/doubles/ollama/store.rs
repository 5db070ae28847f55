//! What the fake keeps on disk under `OLLAMA_MODELS`: the installed models
//! and the downloaded byte count of every layer, including partial ones, so
//! a restarted fake still lists its models and resumes a broken pull, as
//! real Ollama does with its `-partial` blobs.
//!
//! The state is one JSON file, replaced atomically (temp file + rename), so
//! a crash mid-write leaves the previous version intact.

use std::{
    collections::BTreeMap,
    io,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard, PoisonError},
};

use serde::{Deserialize, Serialize};

use crate::logline;

/// The state file's name inside the models folder.
pub const STATE_FILE: &str = "fake-ollama-state.json";

/// One installed model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SavedModel {
    /// Catalog display name, e.g. `tinyllama:latest`.
    pub name: String,
    /// Unix nanoseconds of the pull that completed it.
    pub modified_at_ns: u64,
}

/// The file's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Saved {
    /// By lookup key (see `names::ModelName::key`).
    models: BTreeMap<String, SavedModel>,
    /// Bytes downloaded so far, by `sha256:` layer digest.
    layers: BTreeMap<String, u64>,
}

/// The shared, persisted state.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    saved: Mutex<Saved>,
    /// Serialises snapshot-and-write, so writes land in state order.
    write_lock: tokio::sync::Mutex<()>,
}

impl Store {
    /// Creates the folder if needed and loads the state file, if any.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(STATE_FILE);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|err| {
                // A fake should keep serving rather than refuse to start;
                // the next write replaces the unreadable file.
                logline::warn(&format!(
                    "ignoring unreadable state file {}: {err}",
                    path.display()
                ));
                Saved::default()
            }),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Saved::default(),
            Err(err) => return Err(err),
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            saved: Mutex::new(saved),
            write_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> MutexGuard<'_, Saved> {
        // Nothing panics while holding this lock; if something ever did,
        // the data is still consistent (each change is a single insert).
        self.saved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installed models, by lookup key.
    pub fn installed(&self) -> Vec<(String, SavedModel)> {
        self.lock()
            .models
            .iter()
            .map(|(k, m)| (k.clone(), m.clone()))
            .collect()
    }

    pub fn installed_model(&self, key: &str) -> Option<SavedModel> {
        self.lock().models.get(key).cloned()
    }

    pub fn install(&self, key: &str, name: &str, modified_at_ns: u64) {
        self.lock().models.insert(
            key.to_string(),
            SavedModel {
                name: name.to_string(),
                modified_at_ns,
            },
        );
    }

    /// Forgets a model; `false` if it was not installed.
    pub fn uninstall(&self, key: &str) -> bool {
        self.lock().models.remove(key).is_some()
    }

    /// Bytes of a layer downloaded so far.
    pub fn layer_completed(&self, digest: &str) -> u64 {
        self.lock().layers.get(digest).copied().unwrap_or(0)
    }

    /// Records `bytes` more of a layer, never past `total`; returns the new
    /// count.
    pub fn add_layer_bytes(&self, digest: &str, bytes: u64, total: u64) -> u64 {
        let mut saved = self.lock();
        let done = saved.layers.entry(digest.to_string()).or_default();
        *done = done.saturating_add(bytes).min(total);
        *done
    }

    /// Sets a layer's count outright, to seed a partial pull.
    #[cfg(test)]
    pub fn set_layer_completed(&self, digest: &str, bytes: u64) {
        self.lock().layers.insert(digest.to_string(), bytes);
    }

    /// Drops the downloaded bytes of layers (their blobs were deleted).
    pub fn forget_layers<'a>(&self, digests: impl IntoIterator<Item = &'a str>) {
        let mut saved = self.lock();
        for digest in digests {
            saved.layers.remove(digest);
        }
    }

    /// Writes the current state to disk, atomically.
    pub async fn persist(&self) -> io::Result<()> {
        let _writing = self.write_lock.lock().await;
        let json = serde_json::to_vec_pretty(&*self.lock()).map_err(io::Error::other)?;
        let path = self.dir.join(STATE_FILE);
        let tmp = self
            .dir
            .join(format!("{STATE_FILE}.tmp-{}", std::process::id()));
        tokio::fs::write(&tmp, json).await?;
        tokio::fs::rename(&tmp, &path).await
    }

    /// [`Store::persist`], logging instead of failing: used where the fake
    /// must carry on anyway (periodic saves during a pull, shutdown).
    pub async fn persist_or_warn(&self) {
        if let Err(err) = self.persist().await {
            logline::warn(&format!(
                "could not save state in {}: {err}",
                self.dir.display()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn survives_a_restart() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let models = dir.path().join("models");
        {
            let store = Store::open(&models)?;
            store.install("k", "test-small:latest", 42);
            assert_eq!(store.add_layer_bytes("sha256:aa", 10, 100), 10);
            assert_eq!(store.add_layer_bytes("sha256:aa", 1000, 100), 100);
            store.add_layer_bytes("sha256:bb", 7, 100);
            store.persist().await?;
        }
        let store = Store::open(&models)?;
        assert_eq!(
            store.installed_model("k").map(|m| m.name),
            Some("test-small:latest".to_string())
        );
        assert_eq!(store.layer_completed("sha256:aa"), 100);
        assert_eq!(store.layer_completed("sha256:bb"), 7);
        assert!(store.uninstall("k"));
        assert!(!store.uninstall("k"));
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(&models)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
        Ok(())
    }
}
