//! Update history: every download, install and rollback, with its outcome,
//! as a row of `update_history` in state.db, and the recent rows status
//! reports. Recording never fails an update: a row that cannot be written
//! is only logged. Also the floor: the highest version ever installed (a
//! `meta` row), below which no manifest is followed, so a replayed old
//! (validly signed) manifest cannot take the agent back to a version with
//! known holes; only an explicit rollback goes down.

use std::cmp::Ordering;

use super::{HistoryEntry, Updater, manifest};
use crate::reason::Reason;
use crate::{
    error::{Error, Result},
    store::now_ms,
    version,
};

/// The `meta` key of the floor.
const FLOOR_KEY: &str = "update.highest_installed";

/// History entries reported by status.
const HISTORY_LIMIT: u32 = 20;

impl Updater {
    pub(super) async fn record(
        &self,
        action: &str,
        to_version: &str,
        outcome: &str,
        message: &str,
    ) {
        self.record_from(action, version::current(), to_version, outcome, message)
            .await;
    }

    pub(super) async fn record_from(
        &self,
        action: &str,
        from_version: &str,
        to_version: &str,
        outcome: &str,
        message: &str,
    ) {
        let row = (
            now_ms(),
            action.to_owned(),
            from_version.to_owned(),
            to_version.to_owned(),
            outcome.to_owned(),
            message.to_owned(),
        );
        let result = self
            .store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO update_history (time_ms, action, from_version, to_version, outcome, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![row.0, row.1, row.2, row.3, row.4, row.5],
                )?;
                Ok(())
            })
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot record update history");
        }
    }

    /// Recent history, newest first.
    pub async fn history(&self) -> Result<Vec<HistoryEntry>> {
        self.store
            .read(|connection| {
                let mut statement = connection.prepare(
                    "SELECT time_ms, action, from_version, to_version, outcome, message
                     FROM update_history ORDER BY id DESC LIMIT ?1",
                )?;
                let rows = statement.query_map([HISTORY_LIMIT], |row| {
                    Ok(HistoryEntry {
                        time_ms: row.get(0)?,
                        action: row.get(1)?,
                        from_version: row.get(2)?,
                        to_version: row.get(3)?,
                        outcome: row.get(4)?,
                        message: row.get(5)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    /// The highest version ever installed (at least the running one).
    pub(super) async fn floor(&self) -> Result<String> {
        let stored = self.store.meta(FLOOR_KEY).await?;
        let current = version::current();
        Ok(match stored {
            Some(stored) if manifest::is_newer(&stored, current) => stored,
            _ => current.to_owned(),
        })
    }

    /// Remember that `version` was installed (and ran). Never lowers the
    /// floor; a failure is only logged, like a history row.
    pub(super) async fn raise_floor(&self, version: &str) {
        let result = async {
            let stored = self.store.meta(FLOOR_KEY).await?;
            if stored
                .as_deref()
                .is_none_or(|s| manifest::is_newer(version, s))
            {
                self.store.set_meta(FLOOR_KEY, version.to_owned()).await?;
            }
            Ok::<_, Error>(())
        }
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot record the highest installed update version");
        }
    }

    /// Refuse `version` when it is below the floor.
    pub(super) async fn check_floor(&self, version: &str) -> Result<()> {
        let floor = self.floor().await?;
        if manifest::compare_versions(version, &floor) == Ordering::Less {
            return Err(Error::failed_precondition(format!(
                "the update server offers version {version}, lower than {floor} installed before; \
                 an older manifest is never followed (only `omnipanel update rollback` goes back), nothing changed"
            ))
            .with_reason(Reason::UpdateDowngradeRefused));
        }
        Ok(())
    }
}
