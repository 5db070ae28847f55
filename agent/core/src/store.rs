//! state.db: the agent's SQLite database (WAL mode) with versioned
//! migrations. Every write goes through a transaction. A database SQLite
//! calls corrupt or "not a database" is moved aside, kept for inspection,
//! and replaced by a fresh one so the agent keeps running. A database the
//! agent may not write (a read-only file mode or folder, the immutable
//! flag, a read-only mount) is opened read-only when its schema is
//! current: reads answer, every write fails with [`read_only_error`]
//! naming the file, and start-up skips its own writes
//! ([`Store::is_read_only`]). Calls run on the blocking pool, never on the
//! async executor.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction};

use crate::error::{Error, Reason, Result};

/// Schema migrations, applied in order; `PRAGMA user_version` records how
/// many ran. Append only: never edit a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: key/value facts about the agent itself, and access tokens.
    "CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) STRICT;
    CREATE TABLE tokens (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        scope        INTEGER NOT NULL,
        secret_hash  BLOB NOT NULL UNIQUE,
        created_ms   INTEGER NOT NULL,
        last_used_ms INTEGER NOT NULL DEFAULT 0
    ) STRICT;",
    // 2: Ollama endpoints besides the local server.
    "CREATE TABLE providers (
        name       TEXT PRIMARY KEY,
        url        TEXT NOT NULL,
        token      TEXT,
        version    TEXT NOT NULL DEFAULT '',
        created_ms INTEGER NOT NULL
    ) STRICT;",
    // 3: projects and per-client workspace state.
    "CREATE TABLE projects (
        id             TEXT PRIMARY KEY,
        name           TEXT NOT NULL,
        path           TEXT NOT NULL UNIQUE,
        open           INTEGER NOT NULL,
        created_ms     INTEGER NOT NULL,
        last_opened_ms INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE workspace_state (
        project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        client_key TEXT NOT NULL,
        data       BLOB NOT NULL,
        version    INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (project_id, client_key)
    ) STRICT;",
    // 4: alert thresholds (only while they differ from the built-in
    // defaults) and the alert history.
    "CREATE TABLE alert_thresholds (
        position    INTEGER NOT NULL,
        metric      TEXT NOT NULL,
        comparison  TEXT NOT NULL,
        value       REAL NOT NULL,
        hold_ms     INTEGER NOT NULL,
        clear_value REAL NOT NULL,
        PRIMARY KEY (metric, comparison)
    ) STRICT;
    CREATE TABLE alerts (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        metric          TEXT NOT NULL,
        comparison      TEXT NOT NULL,
        subject         TEXT NOT NULL,
        threshold_value REAL NOT NULL,
        clear_value     REAL NOT NULL,
        hold_ms         INTEGER NOT NULL,
        value           REAL NOT NULL,
        peak_value      REAL NOT NULL,
        raised_ms       INTEGER NOT NULL,
        cleared_ms      INTEGER,
        cleared_value   REAL,
        clear_reason    TEXT NOT NULL DEFAULT ''
    ) STRICT;
    CREATE INDEX alerts_active ON alerts (id) WHERE cleared_ms IS NULL;",
    // 5: self-update history (downloads, installs, rollbacks).
    "CREATE TABLE update_history (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms      INTEGER NOT NULL,
        action       TEXT NOT NULL,
        from_version TEXT NOT NULL,
        to_version   TEXT NOT NULL,
        outcome      TEXT NOT NULL,
        message      TEXT NOT NULL DEFAULT ''
    ) STRICT;",
    // 6: client admission: a token's grant (scope sets, projects, expiry,
    // acts allowed without asking, who asked).
    "ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
    ALTER TABLE tokens ADD COLUMN projects TEXT NOT NULL DEFAULT '';
    ALTER TABLE tokens ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tokens ADD COLUMN this_run INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tokens ADD COLUMN no_confirm TEXT NOT NULL DEFAULT '';
    ALTER TABLE tokens ADD COLUMN client_name TEXT NOT NULL DEFAULT '';
    ALTER TABLE tokens ADD COLUMN peer TEXT NOT NULL DEFAULT '';",
    // 7: the activity log. `agg_key` is set only on aggregated content
    // reads (client, project, method, outcome and minute), so their
    // upsert finds the minute's row; NULLs never collide in a UNIQUE
    // index. AUTOINCREMENT: ids keep increasing even when retention
    // empties the table, so page tokens and followers never see an id
    // twice.
    "CREATE TABLE audit (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        time_ms         INTEGER NOT NULL,
        client_id       TEXT NOT NULL,
        client_name     TEXT NOT NULL,
        peer_pid        INTEGER NOT NULL DEFAULT 0,
        peer_executable TEXT NOT NULL DEFAULT '',
        peer_parents    TEXT NOT NULL DEFAULT '',
        method          TEXT NOT NULL,
        target          TEXT NOT NULL DEFAULT '',
        project         TEXT NOT NULL DEFAULT '',
        outcome         TEXT NOT NULL,
        count           INTEGER NOT NULL DEFAULT 1,
        agg_key         TEXT,
        peer_address    TEXT NOT NULL DEFAULT ''
    ) STRICT;
    CREATE INDEX audit_time ON audit (time_ms);
    CREATE INDEX audit_client ON audit (client_id, id);
    CREATE INDEX audit_client_name ON audit (client_name, id);
    CREATE INDEX audit_project ON audit (project, id);
    CREATE INDEX audit_outcome ON audit (outcome, id);
    CREATE UNIQUE INDEX audit_aggregate ON audit (agg_key);",
    // 8: provider kinds (ollama, openai), the names of their extra headers
    // (the values, like API keys, live in secrets.json; `token` is emptied
    // into it at start-up), their timeout; a project's preferred model.
    "ALTER TABLE providers ADD COLUMN kind TEXT NOT NULL DEFAULT 'ollama';
    ALTER TABLE providers ADD COLUMN headers TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE providers ADD COLUMN timeout_seconds INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE projects ADD COLUMN preferred_model TEXT NOT NULL DEFAULT '';
    ALTER TABLE projects ADD COLUMN preferred_provider TEXT NOT NULL DEFAULT '';",
    // 9 (issue 17, the gateway): the models a token may use for inference
    // (one per line; empty: every model) and its gateway requests per
    // minute (0: no limit).
    "ALTER TABLE tokens ADD COLUMN allowed_models TEXT NOT NULL DEFAULT '';
    ALTER TABLE tokens ADD COLUMN rpm INTEGER NOT NULL DEFAULT 0;",
    // 10 (issue 18): chat conversations kept per project, and their
    // messages in order (`seq` from 0). `stats` is a reply's
    // GenerationStats as JSON, NULL when it has none (not a reply, or cut
    // short).
    "CREATE TABLE conversations (
        id         TEXT PRIMARY KEY,
        project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        title      TEXT NOT NULL,
        model      TEXT NOT NULL DEFAULT '',
        provider   TEXT NOT NULL DEFAULT '',
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX conversations_project ON conversations (project_id, updated_ms);
    CREATE TABLE conversation_messages (
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        seq             INTEGER NOT NULL,
        role            TEXT NOT NULL,
        content         TEXT NOT NULL,
        created_ms      INTEGER NOT NULL,
        model           TEXT NOT NULL DEFAULT '',
        provider        TEXT NOT NULL DEFAULT '',
        stats           TEXT,
        stopped         INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (conversation_id, seq)
    ) STRICT;",
];

/// What happened to an unreadable database at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Where the bad file now is.
    pub moved_to: PathBuf,
    /// What SQLite said.
    pub reason: String,
}

/// Handle to state.db, shared by the whole agent.
#[derive(Clone, Debug)]
pub struct Store {
    connection: Arc<Mutex<Connection>>,
    path: PathBuf,
    read_only: bool,
}

impl Store {
    /// Open (creating or migrating) the database at `path`. A corrupt file
    /// is moved aside and reported in the returned [`Recovery`].
    pub fn open(path: &Path) -> Result<(Self, Option<Recovery>)> {
        if let Some(dir) = path.parent() {
            // Private: the database holds provider tokens.
            crate::platform::fs::create_private_dir(dir).map_err(|err| {
                Error::internal(format!("cannot create {}: {err}", dir.display()))
            })?;
        }
        let ((connection, read_only), recovery) = match open_either_way(path) {
            Ok(opened) => (opened, None),
            Err(err) if is_corruption(&err) => {
                let moved_to = move_aside(path)?;
                let opened = open_either_way(path).map_err(|err| {
                    Error::internal(format!(
                        "cannot create a fresh {} after moving the corrupt one aside: {err}",
                        path.display()
                    ))
                })?;
                (
                    opened,
                    Some(Recovery {
                        moved_to,
                        reason: err.to_string(),
                    }),
                )
            }
            Err(err) => {
                return Err(match err {
                    Opening::NeedsWriting(message) => Error::failed_precondition(message),
                    Opening::Sqlite(err) => {
                        Error::internal(format!("cannot open {}: {err}", path.display()))
                    }
                }
                .with_reason(Reason::StateDb));
            }
        };
        Ok((
            Self {
                connection: Arc::new(Mutex::new(connection)),
                path: path.to_owned(),
                read_only,
            },
            recovery,
        ))
    }

    /// Open a private in-memory database (for tests).
    pub fn in_memory() -> Result<Self> {
        let mut connection = Connection::open_in_memory()?;
        migrate(&mut connection)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            path: PathBuf::from(":memory:"),
            read_only: false,
        })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the database was opened read-only because the agent may not
    /// write it: every [`Store::write`] then fails with [`read_only_error`],
    /// and start-up leaves out its own writes (pruning, bookkeeping).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Run `f` inside a transaction on the blocking pool; it commits when
    /// `f` returns `Ok`. On a read-only database it fails at once with
    /// [`read_only_error`].
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    {
        if self.read_only {
            return Err(read_only_error(&self.path));
        }
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = lock(&connection)?;
            let tx = guard.transaction()?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })
        .await?
    }

    /// Run a read-only `f` on the blocking pool.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            let guard = lock(&connection)?;
            f(&guard)
        })
        .await?
    }

    /// Read a `meta` value.
    pub async fn meta(&self, key: &'static str) -> Result<Option<String>> {
        self.read(move |c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
                    row.get(0)
                })
                .optional()?,
            )
        })
        .await
    }

    /// Write a `meta` value.
    pub async fn set_meta(&self, key: &'static str, value: String) -> Result<()> {
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )?;
            Ok(())
        })
        .await
    }
}

fn lock(connection: &Mutex<Connection>) -> Result<std::sync::MutexGuard<'_, Connection>> {
    // A panic while holding the lock leaves the connection usable: SQLite
    // rolls back the open transaction when it is dropped.
    Ok(crate::sync::lock(connection))
}

/// Why [`open_either_way`] failed.
enum Opening {
    /// SQLite's error (corruption among them: then the file is moved aside).
    Sqlite(rusqlite::Error),
    /// The database may only be read and needs a write before it can be
    /// used (a migration); the message says what to do.
    NeedsWriting(String),
}

impl From<rusqlite::Error> for Opening {
    fn from(err: rusqlite::Error) -> Self {
        Self::Sqlite(err)
    }
}

impl std::fmt::Display for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(err) => err.fmt(f),
            Self::NeedsWriting(message) => f.write_str(message),
        }
    }
}

fn is_corruption(err: &Opening) -> bool {
    matches!(
        err,
        Opening::Sqlite(err) if matches!(
            err.sqlite_error_code(),
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
        )
    )
}

/// Open for writing; when SQLite opens the file read-only (it falls back
/// silently when the file may not be written) or a write of the set-up
/// fails as read-only (a folder where the journal cannot be made, a
/// read-only mount), open it again read-only. Returns whether it is.
fn open_either_way(path: &Path) -> Result<(Connection, bool), Opening> {
    match open_checked(path) {
        Ok(connection) => Ok((connection, false)),
        Err(Opening::Sqlite(err)) if err.sqlite_error_code() == Some(ErrorCode::ReadOnly) => {
            match open_read_only(path, false) {
                // Reading a WAL database needs its `-shm` file, which a
                // read-only folder cannot get (SQLite says "read-only" or,
                // for root in an immutable folder, "cannot open"); with no
                // `-wal` file either,
                // everything is in the main file, and while this agent holds
                // the instance lock nobody else changes it: SQLite may read
                // it as immutable, without the `-shm`.
                Err(Opening::Sqlite(err))
                    if matches!(
                        err.sqlite_error_code(),
                        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen)
                    ) && !side_file(path, "-wal").exists() =>
                {
                    Ok((open_read_only(path, true)?, true))
                }
                opened => Ok((opened?, true)),
            }
        }
        Err(err) => Err(err),
    }
}

/// `path` with `suffix` appended to its name (`-wal`, `-shm`).
fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut side = path.as_os_str().to_owned();
    side.push(suffix);
    PathBuf::from(side)
}

/// `path` as an SQLite `file:` URI with `immutable=1`; every byte but the
/// unreserved ones and `/` percent-encoded, so `?`, `#` and `%` in a
/// folder's name stay part of the path.
fn immutable_uri(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut uri = String::from("file:");
    for &byte in path.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri.push_str("?immutable=1");
    uri
}

fn open_checked(path: &Path) -> Result<Connection, Opening> {
    let mut connection = Connection::open(path)?;
    if connection.is_readonly(rusqlite::MAIN_DB)? {
        return Err(Opening::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
            Some("opened read-only".to_owned()),
        )));
    }
    // Owner-only, like the folder: SQLite creates files with the umask.
    let _ = crate::platform::fs::make_private(path);
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    quick_check(&connection)?;
    migrate(&mut connection)?;
    Ok(connection)
}

/// The read-only connection: no journal mode change (a write), no
/// migration (refused when one is due, since it cannot be made).
fn open_read_only(path: &Path, immutable: bool) -> Result<Connection, Opening> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = if immutable {
        Connection::open_with_flags(immutable_uri(path), flags | OpenFlags::SQLITE_OPEN_URI)?
    } else {
        Connection::open_with_flags(path, flags)?
    };
    connection.busy_timeout(std::time::Duration::from_secs(5))?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    quick_check(&connection)?;
    let applied = schema_version(&connection)?;
    let known = migrations().len();
    if applied > known {
        return Err(newer_schema(applied, known).into());
    }
    if applied < known {
        return Err(Opening::NeedsWriting(format!(
            "{} cannot be written (read-only) and needs its schema upgraded from version {applied} \
             to {known} before this agent can use it; make it and its folder writable by this \
             user (chmod u+w, or chattr -i where it is immutable) and start the agent again",
            path.display()
        )));
    }
    Ok(connection)
}

fn quick_check(connection: &Connection) -> rusqlite::Result<()> {
    let verdict: String = connection.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if verdict != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(format!("integrity check failed: {verdict}")),
        ));
    }
    Ok(())
}

/// The error every write to a read-only state.db answers. FAILED_PRECONDITION,
/// not UNAVAILABLE: retrying cannot help until the user makes the file
/// writable and restarts the agent, and UNAVAILABLE tells clients to retry.
pub fn read_only_error(path: &Path) -> Error {
    Error::failed_precondition(format!(
        "{} is read-only, so nothing can be changed: the agent serves reads only; make it \
         and its folder writable by this user (chmod u+w, or chattr -i where it is immutable) \
         and restart the agent",
        path.display()
    ))
    .with_reason(Reason::StateDb)
}

/// Set in the update tests to a version from which on the agent knows one
/// migration more than [`MIGRATIONS`]: a stamped "new release" then
/// migrates state.db as a real one may, and the rollback must cope.
/// Debug builds only: a release build never reads it.
pub const TEST_MIGRATION_ENV: &str = "OMNIPANEL_TEST_MIGRATION_FROM";

/// The migration [`TEST_MIGRATION_ENV`] adds.
#[cfg(debug_assertions)]
fn test_migration() -> Option<&'static str> {
    let from = std::env::var(TEST_MIGRATION_ENV).ok()?;
    let current = crate::version::current();
    (crate::updates::manifest::compare_versions(current, &from) != std::cmp::Ordering::Less)
        .then_some("CREATE TABLE test_update_migration (id INTEGER PRIMARY KEY) STRICT;")
}

#[cfg(not(debug_assertions))]
fn test_migration() -> Option<&'static str> {
    None
}

fn migrations() -> Vec<&'static str> {
    let mut migrations = MIGRATIONS.to_vec();
    migrations.extend(test_migration());
    migrations
}

fn schema_version(connection: &Connection) -> rusqlite::Result<usize> {
    let applied: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok(usize::try_from(applied).unwrap_or(usize::MAX))
}

fn newer_schema(applied: usize, known: usize) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
        Some(format!(
            "state.db has schema version {applied}, newer than this agent knows ({known}); it was written by a newer OmniPanel"
        )),
    )
}

fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let migrations = migrations();
    let applied = schema_version(connection)?;
    if applied > migrations.len() {
        return Err(newer_schema(applied, migrations.len()));
    }
    for (index, sql) in migrations.iter().enumerate().skip(applied) {
        let tx = connection.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(index + 1).unwrap_or(i64::MAX),
        )?;
        tx.commit()?;
    }
    Ok(())
}

fn move_aside(path: &Path) -> Result<PathBuf> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let mut target = path.as_os_str().to_owned();
    target.push(format!(".corrupt-{stamp}"));
    let target = PathBuf::from(target);
    std::fs::rename(path, &target).map_err(|err| {
        Error::internal(format!(
            "{} is corrupt and cannot be moved aside: {err}",
            path.display()
        ))
    })?;
    // WAL and shared-memory files belong to the bad database; keep them with it.
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        if side.exists() {
            let mut side_target = target.as_os_str().to_owned();
            side_target.push(suffix);
            let _ = std::fs::rename(&side, PathBuf::from(side_target));
        }
    }
    Ok(target)
}

/// Milliseconds since the Unix epoch, for timestamps stored in the database.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrates_and_round_trips_meta() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let path = dir.path().join("state.db");
        let (store, recovery) = Store::open(&path)?;
        assert!(recovery.is_none());
        store.set_meta("k", "v".into()).await?;
        drop(store);
        let (store, _) = Store::open(&path)?;
        assert_eq!(store.meta("k").await?, Some("v".to_owned()));
        Ok(())
    }

    #[tokio::test]
    async fn corrupt_file_is_moved_aside_and_kept() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let path = dir.path().join("state.db");
        let garbage = vec![0x5a_u8; 8192];
        std::fs::write(&path, &garbage).map_err(|e| Error::internal(e.to_string()))?;
        let (store, recovery) = Store::open(&path)?;
        let Some(recovery) = recovery else {
            panic!("corruption was not detected");
        };
        assert_eq!(
            std::fs::read(&recovery.moved_to).map_err(|e| Error::internal(e.to_string()))?,
            garbage
        );
        store.set_meta("after", "recovery".into()).await?;
        Ok(())
    }

    #[tokio::test]
    async fn the_database_runs_in_wal_mode() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let (store, _) = Store::open(&dir.path().join("state.db"))?;
        let mode: String = store
            .read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |row| row.get(0))?))
            .await?;
        assert_eq!(mode, "wal");
        Ok(())
    }

    #[tokio::test]
    async fn damaged_pages_behind_a_valid_header_fail_the_check_and_are_moved_aside() -> Result<()>
    {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let path = dir.path().join("state.db");
        // A real state.db with a table spanning several pages, checkpointed
        // and closed so everything is in the main file.
        let (store, _) = Store::open(&path)?;
        store
            .write(|tx| {
                for i in 0..400 {
                    tx.execute(
                        "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                        (format!("key-{i:04}"), "v".repeat(200)),
                    )?;
                }
                Ok(())
            })
            .await?;
        let (page_size, root): (i64, i64) = store
            .read(|c| {
                c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
                Ok((
                    c.query_row("PRAGMA page_size", [], |row| row.get(0))?,
                    c.query_row(
                        "SELECT rootpage FROM sqlite_schema WHERE name = 'meta'",
                        [],
                        |row| row.get(0),
                    )?,
                ))
            })
            .await?;
        drop(store);
        let mut bytes = std::fs::read(&path).map_err(|e| Error::internal(e.to_string()))?;
        assert_eq!(&bytes[..16], b"SQLite format 3\0");
        // Scribble over the table's root page (pages count from 1), leaving
        // page 1 (header and schema) intact so the file still opens.
        let page = usize::try_from(page_size).map_err(|e| Error::internal(e.to_string()))?;
        let start = usize::try_from(root - 1).map_err(|e| Error::internal(e.to_string()))? * page;
        assert!(start >= page && start + page <= bytes.len());
        for (i, byte) in bytes[start..start + page].iter_mut().enumerate() {
            *byte = (i * 31 % 251) as u8;
        }
        std::fs::write(&path, &bytes).map_err(|e| Error::internal(e.to_string()))?;

        let (store, recovery) = Store::open(&path)?;
        let Some(recovery) = recovery else {
            panic!("damaged pages were not detected");
        };
        assert!(
            recovery.reason.contains("integrity check failed"),
            "not found by quick_check: {}",
            recovery.reason
        );
        assert_eq!(
            std::fs::read(&recovery.moved_to).map_err(|e| Error::internal(e.to_string()))?,
            bytes
        );
        assert_eq!(store.meta("key-0001").await?, None);
        store.set_meta("after", "recovery".into()).await?;
        Ok(())
    }

    /// Makes a file or folder read-only for this process until dropped:
    /// the immutable flag for root, which ignores file modes, else the
    /// modes (0444 for a file, 0555 for a folder).
    struct ReadOnly(PathBuf);

    impl ReadOnly {
        /// `None` where root may not set the flag (no CAP_LINUX_IMMUTABLE,
        /// or a file system without it): the test cannot run there.
        fn make(path: &Path) -> Option<Self> {
            use std::os::unix::fs::PermissionsExt;
            if rustix::process::geteuid().is_root() {
                let file = std::fs::File::open(path).ok()?;
                let flags = rustix::fs::ioctl_getflags(&file).ok()?;
                rustix::fs::ioctl_setflags(&file, flags | rustix::fs::IFlags::IMMUTABLE).ok()?;
            } else {
                let mode = if path.is_dir() { 0o555 } else { 0o444 };
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).ok()?;
            }
            Some(Self(path.to_owned()))
        }
    }

    impl Drop for ReadOnly {
        fn drop(&mut self) {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(file) = std::fs::File::open(&self.0)
                && let Ok(flags) = rustix::fs::ioctl_getflags(&file)
            {
                let _ = rustix::fs::ioctl_setflags(&file, flags - rustix::fs::IFlags::IMMUTABLE);
            }
            let mode = if self.0.is_dir() { 0o700 } else { 0o600 };
            let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(mode));
        }
    }

    /// A state.db with a `meta` row, closed (so no `-wal` or `-shm` is left).
    async fn written_database(dir: &Path) -> Result<PathBuf> {
        let path = dir.join("state.db");
        let (store, _) = Store::open(&path)?;
        store.set_meta("k", "v".into()).await?;
        drop(store);
        assert!(!side_file(&path, "-wal").exists());
        Ok(path)
    }

    async fn assert_reads_and_refuses_writes(path: &Path) -> Result<()> {
        let (store, recovery) = Store::open(path)?;
        assert!(recovery.is_none());
        assert!(store.is_read_only());
        assert_eq!(store.meta("k").await?, Some("v".to_owned()));
        let err = store.set_meta("k", "w".into()).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::FailedPrecondition);
        assert_eq!(err.reason(), Some(Reason::StateDb));
        assert!(
            err.message().contains(&path.display().to_string())
                && err.message().contains("read-only"),
            "{err}"
        );
        assert_eq!(store.meta("k").await?, Some("v".to_owned()));
        Ok(())
    }

    #[tokio::test]
    async fn a_read_only_file_is_opened_read_only_reads_answer_and_writes_say_why() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let path = written_database(dir.path()).await?;
        let Some(_read_only) = ReadOnly::make(&path) else {
            eprintln!("not run: root may not set the immutable flag here");
            return Ok(());
        };
        assert_reads_and_refuses_writes(&path).await
    }

    #[tokio::test]
    async fn a_read_only_folder_without_shm_is_read_all_the_same() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let path = written_database(dir.path()).await?;
        let (Some(_file), Some(_folder)) = (ReadOnly::make(&path), ReadOnly::make(dir.path()))
        else {
            eprintln!("not run: root may not set the immutable flag here");
            return Ok(());
        };
        assert_reads_and_refuses_writes(&path).await?;
        assert!(!side_file(&path, "-shm").exists());
        Ok(())
    }

    #[tokio::test]
    async fn a_read_only_database_that_needs_a_migration_is_refused_saying_what_to_do() -> Result<()>
    {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let path = written_database(dir.path()).await?;
        {
            // As an older release left it: one migration short.
            let connection = Connection::open(&path)?;
            let older = i64::try_from(migrations().len() - 1).unwrap();
            connection.pragma_update(None, "user_version", older)?;
        }
        let Some(_read_only) = ReadOnly::make(&path) else {
            eprintln!("not run: root may not set the immutable flag here");
            return Ok(());
        };
        let err = Store::open(&path).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::FailedPrecondition);
        assert!(
            err.message().contains(&path.display().to_string())
                && err.message().contains("schema upgraded")
                && err.message().contains("chmod u+w"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn the_immutable_uri_keeps_odd_folder_names_part_of_the_path() {
        assert_eq!(
            immutable_uri(Path::new("/home/a b/x?y#z%/state.db")),
            "file:/home/a%20b/x%3Fy%23z%25/state.db?immutable=1"
        );
    }

    #[test]
    fn newer_schema_is_refused_not_clobbered() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let path = dir.path().join("state.db");
        {
            let connection = Connection::open(&path)?;
            connection.pragma_update(None, "user_version", 999)?;
        }
        let err = Store::open(&path).unwrap_err();
        assert!(err.message().contains("newer"), "{err}");
        Ok(())
    }
}
