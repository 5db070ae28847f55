//! state.db around an update. A new agent may migrate state.db on its first
//! start, and an older agent refuses a schema newer than it knows (see
//! `store.rs`), so a rollback alone would leave the old agent unable to
//! start. The handover therefore copies state.db next to the rollback
//! binaries before the new agent first starts, and a rollback (automatic,
//! or requested) puts that copy back, but only when the database's schema
//! is now newer than the copy's: without a migration the current data is
//! kept, so nothing done since the update (a revoked token, say) is undone
//! needlessly. Both run while no agent has the database open. Blocking.

use std::{
    fs,
    io::Read,
    path::{Path, PathBuf},
};

use super::UpdateDirs;
use crate::error::{Error, Result};

/// What the history says when state.db was put back.
pub const RESTORED_NOTE: &str = "state.db was put back as it was before the update (the newer version had migrated it); changes made since were undone";

fn io_error(what: &str, path: &Path, err: std::io::Error) -> Error {
    Error::internal(format!("cannot {what} {}: {err}", path.display()))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Copy `db` to `backup` as one consistent, self-contained file (SQLite's
/// `VACUUM INTO`, which includes what is still in the WAL). Returns false
/// when there is no database yet (nothing to protect).
pub fn back_up(db: &Path, backup: &Path) -> Result<bool> {
    if !db.exists() {
        return Ok(false);
    }
    let target = backup
        .to_str()
        .ok_or_else(|| Error::internal(format!("{} is not UTF-8", backup.display())))?;
    if let Some(dir) = backup.parent() {
        fs::create_dir_all(dir).map_err(|err| io_error("create", dir, err))?;
    }
    match fs::remove_file(backup) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error("replace", backup, err));
        }
        _ => {}
    }
    let failed = |err: rusqlite::Error| {
        Error::internal(format!(
            "cannot back up {} to {}: {err}",
            db.display(),
            backup.display()
        ))
    };
    let connection = rusqlite::Connection::open(db).map_err(failed)?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(failed)?;
    connection
        .execute("VACUUM INTO ?1", [target])
        .map_err(failed)?;
    drop(connection);
    // Private like state.db: it holds provider tokens.
    crate::platform::fs::make_private(backup)
        .map_err(|err| io_error("set permissions on", backup, err))?;
    Ok(true)
}

/// The schema version (`PRAGMA user_version`) of a file no connection
/// writes to, read from its header (bytes 60..64) so that no `-wal` or
/// `-shm` file appears next to it.
fn header_schema_version(path: &Path) -> Result<i64> {
    let mut header = [0u8; 64];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .map_err(|err| io_error("read", path, err))?;
    if &header[..16] != b"SQLite format 3\0" {
        return Err(Error::internal(format!(
            "{} is not an SQLite database",
            path.display()
        )));
    }
    Ok(i64::from(i32::from_be_bytes([
        header[60], header[61], header[62], header[63],
    ])))
}

/// The schema version of the live database, through SQLite: what a
/// stopped agent left in the WAL counts.
fn live_schema_version(db: &Path) -> Result<i64> {
    let connection = rusqlite::Connection::open(db)
        .map_err(|err| Error::internal(format!("cannot open {}: {err}", db.display())))?;
    connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|err| Error::internal(format!("cannot read {}: {err}", db.display())))
}

/// Put `backup` back as `db` when `db`'s schema is newer than the
/// backup's (or `db` is gone). Returns whether it did; false too when there
/// is no backup. No agent may have `db` open.
pub fn restore_if_migrated(backup: &Path, db: &Path) -> Result<bool> {
    if !backup.is_file() {
        return Ok(false);
    }
    let kept = header_schema_version(backup)?;
    if db.exists() && live_schema_version(db)? <= kept {
        return Ok(false);
    }
    let temp = with_suffix(db, ".restoring");
    fs::copy(backup, &temp).map_err(|err| io_error("copy to", &temp, err))?;
    fs::File::open(&temp)
        .and_then(|f| f.sync_all())
        .map_err(|err| io_error("write", &temp, err))?;
    crate::platform::fs::make_private(&temp)
        .map_err(|err| io_error("set permissions on", &temp, err))?;
    // The WAL and shared memory belong to the newer database: left beside
    // the restored file, SQLite would replay them into it.
    for suffix in ["-wal", "-shm"] {
        let side = with_suffix(db, suffix);
        match fs::remove_file(&side) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&temp);
                return Err(io_error("remove", &side, err));
            }
            _ => {}
        }
    }
    fs::rename(&temp, db).map_err(|err| io_error("replace", db, err))?;
    if let Some(folder) = db.parent().and_then(|dir| fs::File::open(dir).ok()) {
        // Make the rename durable; failure only weakens crash safety.
        let _ = folder.sync_all();
    }
    Ok(true)
}

/// A requested rollback: move the backup out of the rollback folder (which
/// the rollback removes) to where the restart looks for it; a stale one
/// from an earlier rollback is dropped when there is none.
pub fn hand_over_backup(dirs: &UpdateDirs) -> Result<()> {
    let backup = dirs.state_backup();
    let target = dirs.state_to_restore();
    if backup.is_file() {
        fs::rename(&backup, &target).map_err(|err| io_error("move", &backup, err))
    } else {
        match fs::remove_file(&target) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(io_error("remove", &target, err))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db_with(path: &Path, schema: i64, value: &str) {
        let connection = rusqlite::Connection::open(path).unwrap();
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .unwrap();
        connection
            .execute_batch("CREATE TABLE IF NOT EXISTS t (v TEXT NOT NULL); DELETE FROM t;")
            .unwrap();
        connection
            .execute("INSERT INTO t (v) VALUES (?1)", [value])
            .unwrap();
        connection
            .pragma_update(None, "user_version", schema)
            .unwrap();
    }

    fn read(path: &Path) -> (i64, String) {
        let connection = rusqlite::Connection::open(path).unwrap();
        (
            connection
                .query_row("PRAGMA user_version", [], |row| row.get(0))
                .unwrap(),
            connection
                .query_row("SELECT v FROM t", [], |row| row.get(0))
                .unwrap(),
        )
    }

    #[test]
    fn a_migrated_database_is_put_back_and_its_wal_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let backup = dir.path().join("rollback/state.db");
        db_with(&db, 5, "before");
        assert!(back_up(&db, &backup).unwrap());
        // The new agent migrates and writes, and is killed with its WAL
        // still beside the file.
        let newer = rusqlite::Connection::open(&db).unwrap();
        newer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE added (x INTEGER); UPDATE t SET v = 'after'; PRAGMA user_version = 6;",
            )
            .unwrap();
        std::mem::forget(newer);
        assert!(with_suffix(&db, "-wal").exists());
        assert!(restore_if_migrated(&backup, &db).unwrap());
        assert_eq!(read(&db), (5, "before".to_owned()));
        assert!(backup.exists(), "the backup stays until the next install");
    }

    #[test]
    fn without_a_migration_the_current_data_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let backup = dir.path().join("rollback/state.db");
        db_with(&db, 5, "before");
        assert!(back_up(&db, &backup).unwrap());
        db_with(&db, 5, "a token was revoked since");
        assert!(!restore_if_migrated(&backup, &db).unwrap());
        assert_eq!(read(&db), (5, "a token was revoked since".to_owned()));
        assert!(!restore_if_migrated(&dir.path().join("none.db"), &db).unwrap());
    }

    #[test]
    fn nothing_to_back_up_and_a_handed_over_backup_moves() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = UpdateDirs::new(dir.path());
        assert!(!back_up(&dir.path().join("state.db"), &dirs.state_backup()).unwrap());
        db_with(&dir.path().join("state.db"), 1, "x");
        assert!(back_up(&dir.path().join("state.db"), &dirs.state_backup()).unwrap());
        hand_over_backup(&dirs).unwrap();
        assert!(!dirs.state_backup().exists());
        assert_eq!(header_schema_version(&dirs.state_to_restore()).unwrap(), 1);
        // No backup in the rollback folder: a stale hand-over is dropped.
        hand_over_backup(&dirs).unwrap();
        assert!(!dirs.state_to_restore().exists());
    }
}
