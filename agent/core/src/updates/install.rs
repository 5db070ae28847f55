//! Install and rollback: swap the verified release in (keeping the current
//! binaries as the rollback copy) or put the rollback copy back, leave the
//! marker and plan the restart; and, at start, report what the previous
//! agent's install or rollback left in that marker. A rollback also hands
//! the state.db backup taken before the update to the restart, which puts
//! it back once this agent has closed the database (see `statedb.rs`).

use super::{Marker, RestartPlan, Updater, artifact, handover, lock, statedb};
use crate::reason::Reason;
use crate::{
    error::{Error, Result},
    store::now_ms,
    updates::UpdateEvent,
    version,
};

impl Updater {
    /// Report what the previous agent's install or rollback left.
    pub(super) async fn report_marker(&self) {
        let path = self.dirs.marker();
        let Some(marker) = Marker::read(&path) else {
            return;
        };
        let current = version::current();
        match marker.state.as_str() {
            // The probe instance of an install: the old agent is waiting
            // for it; it must not touch the marker.
            "installing" if std::env::var_os(handover::PROBE_ENV).is_some() => return,
            "installing" | "confirmed" => {
                tracing::info!(from = %marker.from_version, to = current, "update installed");
                self.record_from("install", &marker.from_version, current, "ok", "")
                    .await;
                self.bus.publish(UpdateEvent::UpdateInstalled {
                    from_version: marker.from_version.clone(),
                    to_version: current.to_owned(),
                });
            }
            "rolled_back" => {
                tracing::warn!(
                    to = %marker.to_version,
                    reason = %marker.reason,
                    state_restored = marker.state_restored,
                    "the update was rolled back automatically"
                );
                let message = format!(
                    "version {} was rolled back: {}",
                    marker.to_version, marker.reason
                );
                self.record_from(
                    "install",
                    &marker.from_version,
                    &marker.to_version,
                    "rolled_back",
                    &with_state_note(&marker.reason, &marker),
                )
                .await;
                lock(&self.state).last_error = Some(message);
                self.bus.publish(UpdateEvent::UpdateRolledBack {
                    from_version: marker.to_version.clone(),
                    to_version: current.to_owned(),
                    reason: marker.reason.clone(),
                    automatic: true,
                });
            }
            "rollback" => {
                // The version rolled back from ran: it stays the floor,
                // even though state.db may have been put back to a time
                // before it recorded that.
                self.raise_floor(&marker.from_version).await;
                self.record_from(
                    "rollback",
                    &marker.from_version,
                    current,
                    "ok",
                    &with_state_note("", &marker),
                )
                .await;
                self.bus.publish(UpdateEvent::UpdateRolledBack {
                    from_version: marker.from_version.clone(),
                    to_version: current.to_owned(),
                    reason: "requested".to_owned(),
                    automatic: false,
                });
            }
            other => tracing::warn!(state = other, "unknown update marker state; ignored"),
        }
        artifact::remove_file_if_present(&path);
    }

    /// Refuse to install while Ollama is busy, unless forced.
    async fn check_idle(&self) -> Result<()> {
        if self.ollama.pull_running() {
            return Err(Error::failed_precondition(
                "a model pull is running; the update waits until it ends (or force it)",
            )
            .with_reason(Reason::UpdateDeferred));
        }
        if let Ok(models) = self.ollama.running_models("").await
            && let Some(model) = models.first()
        {
            return Err(Error::failed_precondition(format!(
                "model {} is loaded; the update waits until it is unloaded (or force it)",
                model.name
            ))
            .with_reason(Reason::UpdateDeferred));
        }
        Ok(())
    }

    /// Install the downloaded release: verify it again, unpack, keep the
    /// current binaries for rollback, swap, and plan the restart. Returns
    /// (from, to). The caller then shuts the agent down.
    pub async fn install(&self, force: bool) -> Result<(String, String)> {
        self.refuse_if_packaged("install updates")?;
        let ready = lock(&self.state).ready.clone();
        let (release, path) = ready.ok_or_else(|| {
            Error::failed_precondition(
                "no update is downloaded; run `omnipanel update download` first",
            )
            .with_reason(Reason::UpdateNotDownloaded)
        })?;
        if !force {
            self.check_idle().await?;
        }
        // The download was checked against the floor; the floor may have
        // risen since (a rollback's report), and installing is what counts.
        self.check_floor(&release.version).await?;
        let _swapping = self.begin_swap()?;
        let public_key = Self::public_key(&self.settings.current())?;
        let from = version::current().to_owned();
        let to = release.version.clone();
        let dirs = self.dirs.clone();
        let exe = self.agent_exe.clone();
        let (from_copy, to_copy) = (from.clone(), to.clone());
        let result = tokio::task::spawn_blocking(move || -> Result<()> {
            artifact::verify(&path, &release, &public_key)?;
            let unpacked = dirs.staging().join(format!("unpacked-{}", release.version));
            artifact::unpack(&path, &unpacked)?;
            let install_dir = artifact::install_dir_of(&exe)?;
            artifact::check_writable(&install_dir)?;
            artifact::save_rollback(&install_dir, &dirs.rollback(), &from_copy)?;
            Marker {
                state: "installing".to_owned(),
                from_version: from_copy.clone(),
                to_version: to_copy.clone(),
                reason: String::new(),
                state_restored: false,
                time_ms: now_ms(),
            }
            .write(&dirs.marker())?;
            if let Err(err) = artifact::swap_in(&unpacked, &install_dir) {
                // Put back whatever was already swapped.
                let _ = artifact::restore_rollback(&dirs.rollback(), &install_dir);
                artifact::remove_file_if_present(&dirs.marker());
                return Err(err);
            }
            let _ = std::fs::remove_dir_all(&unpacked);
            Ok(())
        })
        .await?;
        if let Err(err) = result {
            self.record("install", &to, "failed", err.message()).await;
            lock(&self.state).last_error = Some(err.to_string());
            return Err(err);
        }
        tracing::info!(from = %from, to = %to, "update installed; restarting");
        *lock(&self.restart) = Some(RestartPlan::Probe {
            exe: self.agent_exe.clone(),
            to_version: to.clone(),
            dirs: self.dirs.clone(),
        });
        Ok((from, to))
    }

    /// The right to swap binaries, held until the install or rollback has
    /// planned its restart; refused while another one runs or has planned
    /// its restart already.
    fn begin_swap(&self) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        let under_way =
            || Error::failed_precondition("an install or rollback is already under way");
        let guard = self.swapping.try_lock().map_err(|_| under_way())?;
        if lock(&self.restart).is_some() {
            return Err(under_way());
        }
        Ok(guard)
    }

    /// Restore the binaries the last install replaced and plan the
    /// restart. Returns (from, to).
    pub async fn rollback(&self) -> Result<(String, String)> {
        self.refuse_if_packaged("roll back updates")?;
        let _swapping = self.begin_swap()?;
        let from = version::current().to_owned();
        let dirs = self.dirs.clone();
        let exe = self.agent_exe.clone();
        let from_copy = from.clone();
        let to = tokio::task::spawn_blocking(move || -> Result<String> {
            let install_dir = artifact::install_dir_of(&exe)?;
            artifact::check_writable(&install_dir)?;
            // state.db is still open here: the restart puts the backup
            // back once this agent has closed it.
            statedb::hand_over_backup(&dirs)?;
            let to =
                artifact::restore_rollback(&dirs.rollback(), &install_dir).inspect_err(|_| {
                    // Nothing rolled back: the backup stays with its binaries.
                    let _ = std::fs::rename(dirs.state_to_restore(), dirs.state_backup());
                })?;
            // Rolled back once: the copy is now what is installed.
            let _ = std::fs::remove_dir_all(dirs.rollback());
            Marker {
                state: "rollback".to_owned(),
                from_version: from_copy,
                to_version: to.clone(),
                reason: "requested".to_owned(),
                state_restored: false,
                time_ms: now_ms(),
            }
            .write(&dirs.marker())?;
            Ok(to)
        })
        .await??;
        tracing::info!(from = %from, to = %to, "rolled back; restarting");
        *lock(&self.restart) = Some(RestartPlan::Exec {
            exe: self.agent_exe.clone(),
            dirs: self.dirs.clone(),
        });
        Ok((from, to))
    }
}

/// A history message, noting when state.db was put back.
fn with_state_note(message: &str, marker: &Marker) -> String {
    match (marker.state_restored, message.is_empty()) {
        (false, _) => message.to_owned(),
        (true, true) => statedb::RESTORED_NOTE.to_owned(),
        (true, false) => format!("{message}; {}", statedb::RESTORED_NOTE),
    }
}
