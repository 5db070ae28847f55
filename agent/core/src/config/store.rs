//! The settings of the running agent. Readers take the current value
//! without waiting; updates are serialised by a lock so two clients cannot
//! both edit the same starting text and lose one change, and each one is
//! written atomically before subscribers hear of it.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::sync::{Mutex, watch};

use crate::reason::Reason;
use crate::{
    atomic_file::write_atomically,
    config::{SettingChange, SettingView, Settings, apply_changes, describe, spec},
    error::{Error, Result},
};

/// The running agent's settings: the current value for readers, and
/// serialised updates that write config.toml and notify subscribers.
#[derive(Debug)]
pub struct SettingsStore {
    path: PathBuf,
    current: watch::Sender<Arc<Settings>>,
    write_lock: Mutex<()>,
}

impl SettingsStore {
    /// Wrap settings loaded from `path`.
    pub fn new(path: PathBuf, settings: Settings) -> Self {
        let (current, _) = watch::channel(Arc::new(settings));
        Self {
            path,
            current,
            write_lock: Mutex::new(()),
        }
    }

    /// Path of config.toml.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings in effect now.
    pub fn current(&self) -> Arc<Settings> {
        self.current.borrow().clone()
    }

    /// A receiver that sees every future change.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Settings>> {
        self.current.subscribe()
    }

    /// Describe the settings named by `keys` (all when empty).
    pub async fn describe(&self, keys: &[String]) -> Result<Vec<SettingView>> {
        for key in keys {
            if spec(key).is_none() {
                return Err(Error::invalid_argument(
                    format!("keys {key:?}"),
                    "unknown setting",
                ));
            }
        }
        let text = self.read_text().await?;
        let settings = self.current();
        let all = describe(&settings, &text);
        Ok(all
            .into_iter()
            .filter(|view| keys.is_empty() || keys.iter().any(|k| k == view.spec.key))
            .collect())
    }

    /// Apply changes atomically to config.toml and to the running agent.
    /// Returns the changed keys' new views.
    pub async fn update(&self, changes: Vec<SettingChange>) -> Result<Vec<SettingView>> {
        let _guard = self.write_lock.lock().await;
        let text = self.read_text().await?;
        let path = self.path.clone();
        let (new_text, settings) = apply_changes(&path, &text, &changes)?;
        let write_path = path.clone();
        let bytes = new_text.clone().into_bytes();
        tokio::task::spawn_blocking(move || write_atomically(&write_path, &bytes))
            .await?
            .map_err(|err| {
                Error::internal(format!("cannot write {}: {err}", path.display()))
                    .with_reason(Reason::ConfigWrite)
            })?;
        let views = describe(&settings, &new_text);
        self.current.send_replace(Arc::new(settings));
        Ok(views
            .into_iter()
            .filter(|view| changes.iter().any(|c| c.key == view.spec.key))
            .collect())
    }

    async fn read_text(&self) -> Result<String> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
            Ok(text) => Ok(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(err) => Err(Error::internal(format!(
                "cannot read {}: {err}",
                path.display()
            ))),
        })
        .await?
    }
}
