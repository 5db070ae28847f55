//! The activity log: who did what through the API, kept in state.db (table
//! `audit`). The server's outer layer hands each call it records to
//! [`Audit::record`], which only queues it: one writer task reads the
//! calling process's chain from `/proc` (on the blocking pool), writes the
//! queued rows in one transaction, in the order they came, prunes by age
//! and count, and tells followers ([`Audit::watch`]). Content reads by
//! clients other than the owner are aggregated into one row per client,
//! project, method, outcome and minute with a count, since reading many
//! files quickly is what exfiltration looks like and one row per file would
//! flood the log. What is recorded is the method and a short target of
//! names (project, path, model, branch...), never file contents or prompts:
//! the caller picks those names, this module only stores them.

use std::{collections::HashMap, sync::Arc, time::Duration};

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, types::Value};
use tokio::{
    sync::{broadcast, mpsc, oneshot},
    task::JoinHandle,
};

use crate::{
    config::AuditSettings,
    error::{Error, Result},
    platform::peer_process::{self, PeerProcess},
    store::Store,
    sync,
};

/// Aggregated rows stand for one minute.
pub const MINUTE_MS: i64 = 60_000;
/// Entries a page holds when the caller does not say.
pub const DEFAULT_PAGE: u32 = 100;
/// Most entries one page holds.
pub const MAX_PAGE: u32 = 1000;
/// Calls waiting for the writer. A burst beyond it (the writer stuck on a
/// locked database) is dropped with a warning rather than held in memory
/// without bound: the log is a record, not a brake on the API.
const QUEUE: usize = 4096;
/// Most rows written in one transaction.
const BATCH: usize = 256;
/// Entries a follower may fall behind before it skips some.
const FOLLOWERS: usize = 256;

const COLUMNS: &str = "id, time_ms, client_id, client_name, peer_pid, peer_executable, \
                       peer_parents, method, target, project, outcome, count, peer_address";

/// How long entries are kept (`[audit]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Entries older than this are deleted.
    pub max_age: Duration,
    /// At most this many entries are kept.
    pub max_rows: u64,
}

impl From<&AuditSettings> for Retention {
    fn from(settings: &AuditSettings) -> Self {
        Self {
            max_age: settings.retention,
            max_rows: settings.max_rows,
        }
    }
}

/// One call to record, as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Record {
    /// When the call came, ms since the Unix epoch.
    pub time_ms: i64,
    /// The caller's id ("owner", "anonymous", a grant's id; "unidentified"
    /// when the caller could not be identified).
    pub client_id: String,
    /// The caller's name as known now.
    pub client_name: String,
    /// The calling process on the socket, when the kernel said.
    pub peer_pid: Option<u32>,
    /// The caller's address over TCP; empty on the socket.
    pub peer_address: String,
    /// `Service/Method`, or an access decision.
    pub method: String,
    /// What the call named, as (field, value) pairs in the order they are
    /// shown; a `project` value that is a project id is shown as its folder.
    pub target: Vec<(String, String)>,
    /// The project the call named (an id or a folder), empty when none.
    pub project: String,
    /// "ok" or the error's reason.
    pub outcome: String,
    /// A content read: counted in the minute's row instead of a row of
    /// its own.
    pub aggregate: bool,
}

/// One row of the log.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// Row id; increases with time.
    pub id: i64,
    /// When (for aggregated rows: the start of the minute).
    pub time_ms: i64,
    /// The caller's id.
    pub client_id: String,
    /// The caller's name.
    pub client_name: String,
    /// The calling process (0 when unknown or over TCP).
    pub peer_pid: u32,
    /// Its executable.
    pub peer_executable: String,
    /// Its parents' executables, nearest first.
    pub peer_parents: Vec<String>,
    /// The caller's address over TCP; empty on the socket.
    pub peer_address: String,
    /// `Service/Method`.
    pub method: String,
    /// "project=/home/me/app path=src/main.rs".
    pub target: String,
    /// The project's folder (or the reference sent, when it named no
    /// known project).
    pub project: String,
    /// "ok" or the error's reason.
    pub outcome: String,
    /// Calls the row stands for.
    pub count: u32,
}

/// Which entries to list or follow; empty fields match everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// A client's id or name.
    pub client: String,
    /// Text the method contains.
    pub method: String,
    /// A project's folder or id.
    pub project: String,
    /// Only entries at or after this time (ms since the Unix epoch; 0: all).
    pub since_ms: i64,
    /// "ok" or an error reason (any case).
    pub outcome: String,
}

impl Filter {
    /// Whether `entry` passes (the project compared as given: resolve ids
    /// first, as [`Audit::watch`] does).
    pub fn matches(&self, entry: &Entry) -> bool {
        (self.client.is_empty()
            || entry.client_id == self.client
            || entry.client_name == self.client)
            && (self.method.is_empty() || entry.method.contains(&self.method))
            && (self.project.is_empty() || entry.project == self.project)
            && entry.time_ms >= self.since_ms
            && (self.outcome.is_empty() || entry.outcome.eq_ignore_ascii_case(&self.outcome))
    }
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    /// The entries.
    pub entries: Vec<Entry>,
    /// Pass as `before_id` for the next page; `None` on the last.
    pub next_before_id: Option<i64>,
}

enum Job {
    Record(Box<Record>),
    Flush(oneshot::Sender<()>),
}

/// The activity log.
#[derive(Debug)]
pub struct Audit {
    store: Store,
    queue: std::sync::Mutex<Option<mpsc::Sender<Job>>>,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    followers: broadcast::Sender<Entry>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Record(record) => f.debug_tuple("Record").field(record).finish(),
            Self::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl Audit {
    /// Start the writer over `store`, keeping what `retention` allows
    /// (pruned once now, for settings that shrank, then on every write).
    pub async fn start(store: Store, retention: Retention) -> Result<Arc<Self>> {
        let now = crate::clock::retention_now_ms();
        if !store.is_read_only() {
            store.write(move |tx| prune(tx, retention, now)).await?;
        }
        let (queue, jobs) = mpsc::channel(QUEUE);
        let (followers, _) = broadcast::channel(FOLLOWERS);
        let writer = tokio::spawn(write_loop(
            store.clone(),
            jobs,
            retention,
            followers.clone(),
        ));
        Ok(Arc::new(Self {
            store,
            queue: std::sync::Mutex::new(Some(queue)),
            writer: std::sync::Mutex::new(Some(writer)),
            followers,
        }))
    }

    /// Queue `record` for writing; returns at once.
    pub fn record(&self, record: Record) {
        let guard = sync::lock(&self.queue);
        let Some(queue) = guard.as_ref() else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) =
            queue.try_send(Job::Record(Box::new(record)))
        {
            tracing::warn!("the activity log is behind; a call was not recorded");
        }
    }

    /// Wait until everything queued so far is written.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        let queue = sync::lock(&self.queue).clone();
        if let Some(queue) = queue
            && queue.send(Job::Flush(done)).await.is_ok()
        {
            let _ = written.await;
        }
    }

    /// Stop taking records, write what is queued and stop the writer
    /// (idempotent).
    pub async fn shutdown(&self) {
        drop(sync::lock(&self.queue).take());
        let writer = sync::lock(&self.writer).take();
        if let Some(writer) = writer
            && let Err(err) = writer.await
        {
            tracing::warn!(error = %err, "the activity log's writer failed");
        }
    }

    /// Entries passing `filter`, newest first: at most `size` (0 for
    /// [`DEFAULT_PAGE`], at most [`MAX_PAGE`]) with ids below `before_id`.
    pub async fn list(&self, filter: Filter, size: u32, before_id: Option<i64>) -> Result<Listing> {
        let size = match size {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        self.store
            .read(move |c| list(c, &filter, size, before_id))
            .await
    }

    /// Follow new entries (and aggregated rows as they grow) passing
    /// `filter`; its `since_ms` is ignored.
    pub async fn watch(&self, mut filter: Filter) -> Result<AuditWatch> {
        let receiver = self.followers.subscribe();
        if !filter.project.is_empty() {
            let reference = filter.project.clone();
            filter.project = self
                .store
                .read(move |c| resolve_project(c, &reference))
                .await?;
        }
        filter.since_ms = 0;
        Ok(AuditWatch { receiver, filter })
    }
}

/// A follower of the log ([`Audit::watch`]).
#[derive(Debug)]
pub struct AuditWatch {
    receiver: broadcast::Receiver<Entry>,
    filter: Filter,
}

impl AuditWatch {
    /// The next entry passing the filter; `None` once the log stopped.
    pub async fn next(&mut self) -> Option<Entry> {
        loop {
            match self.receiver.recv().await {
                Ok(entry) if self.filter.matches(&entry) => return Some(entry),
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    // The rows are in state.db; a follower that fell
                    // behind reads them with ListAudit.
                    tracing::debug!(missed, "an activity log follower fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

async fn write_loop(
    store: Store,
    mut jobs: mpsc::Receiver<Job>,
    retention: Retention,
    followers: broadcast::Sender<Entry>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while jobs.recv_many(&mut batch, BATCH).await > 0 {
        let mut records = Vec::new();
        let mut flushes = Vec::new();
        for job in batch.drain(..) {
            match job {
                Job::Record(record) => records.push(*record),
                Job::Flush(done) => flushes.push(done),
            }
        }
        // A read-only state.db keeps no activity log (start-up said so
        // once); a warning per batch would only flood the log.
        if !records.is_empty() && !store.is_read_only() {
            match write_batch(&store, records, retention).await {
                Ok(entries) => {
                    for entry in entries {
                        // No follower is fine.
                        let _ = followers.send(entry);
                    }
                }
                Err(err) => {
                    tracing::warn!(error = %err, "calls could not be written to the activity log");
                }
            }
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

async fn write_batch(
    store: &Store,
    records: Vec<Record>,
    retention: Retention,
) -> Result<Vec<Entry>> {
    // Reading /proc blocks; one read per process of the batch.
    let rows = tokio::task::spawn_blocking(move || {
        let mut chains: HashMap<u32, Vec<PeerProcess>> = HashMap::new();
        records
            .into_iter()
            .map(|record| {
                let chain = record.peer_pid.map(|pid| {
                    chains
                        .entry(pid)
                        .or_insert_with(|| peer_process::chain(pid))
                        .clone()
                });
                (record, chain.unwrap_or_default())
            })
            .collect::<Vec<_>>()
    })
    .await?;
    // Ages are judged by a clock that a jump forward cannot fool into
    // deleting the whole log (`clock.rs`).
    let now = crate::clock::retention_now_ms();
    store
        .write(move |tx| {
            let mut entries = Vec::with_capacity(rows.len());
            for (record, chain) in &rows {
                entries.push(insert(tx, record, chain)?);
            }
            prune(tx, retention, now)?;
            Ok(entries)
        })
        .await
}

/// The folder of the project `reference` names when it is a known
/// project's id; otherwise the reference as sent.
fn resolve_project(c: &Connection, reference: &str) -> Result<String> {
    let path: Option<String> = c
        .query_row(
            "SELECT path FROM projects WHERE id = ?1",
            [reference],
            |row| row.get(0),
        )
        .optional()?;
    Ok(path.unwrap_or_else(|| {
        if reference.len() > 1 {
            reference.trim_end_matches('/').to_owned()
        } else {
            reference.to_owned()
        }
    }))
}

/// `field=value` pairs joined by spaces; values that would be ambiguous
/// (empty, spaces, quotes, `=`) are quoted.
pub fn format_target(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(field, value)| {
            if value.is_empty() || value.contains([' ', '"', '=', '\t', '\n']) {
                format!("{field}={value:?}")
            } else {
                format!("{field}={value}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn insert(tx: &Transaction<'_>, record: &Record, chain: &[PeerProcess]) -> Result<Entry> {
    let project = if record.project.is_empty() {
        String::new()
    } else {
        resolve_project(tx, &record.project)?
    };
    let shown: Vec<(String, String)> = record
        .target
        .iter()
        .filter(|(field, _)| !record.aggregate || field == "project")
        .map(|(field, value)| {
            if field == "project" && *value == record.project {
                (field.clone(), project.clone())
            } else {
                (field.clone(), value.clone())
            }
        })
        .collect();
    let target = format_target(&shown);
    let executable = chain
        .first()
        .map(|process| process.executable.clone())
        .unwrap_or_default();
    let parents = chain
        .iter()
        .skip(1)
        .map(|process| process.executable.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let pid = i64::from(record.peer_pid.unwrap_or_default());
    let (time_ms, key) = if record.aggregate {
        let minute = record.time_ms - record.time_ms.rem_euclid(MINUTE_MS);
        let key = [
            record.client_id.as_str(),
            &project,
            &record.method,
            &record.outcome,
            &minute.to_string(),
        ]
        .join("\u{1f}");
        (minute, Some(key))
    } else {
        (record.time_ms, None)
    };
    let id: i64 = tx.query_row(
        "INSERT INTO audit (time_ms, client_id, client_name, peer_pid, peer_executable,
                            peer_parents, method, target, project, outcome, count, agg_key,
                            peer_address)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?12)
         ON CONFLICT(agg_key) DO UPDATE SET count = count + 1
         RETURNING id",
        params![
            time_ms,
            record.client_id,
            record.client_name,
            pid,
            executable,
            parents,
            record.method,
            target,
            project,
            record.outcome,
            key,
            record.peer_address,
        ],
        |row| row.get(0),
    )?;
    Ok(tx.query_row(
        &format!("SELECT {COLUMNS} FROM audit WHERE id = ?1"),
        [id],
        row_to_entry,
    )?)
}

/// Delete what retention no longer allows: by age through the time index,
/// by count through the rowid (ids only grow, so the newest `max_rows`
/// are the highest ids).
fn prune(tx: &Transaction<'_>, retention: Retention, now: i64) -> Result<()> {
    let max_age = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
    tx.execute(
        "DELETE FROM audit WHERE time_ms < ?1",
        [now.saturating_sub(max_age)],
    )?;
    let keep = i64::try_from(retention.max_rows).unwrap_or(i64::MAX);
    tx.execute(
        "DELETE FROM audit WHERE id <= (SELECT max(id) FROM audit) - ?1",
        [keep],
    )?;
    Ok(())
}

fn list(c: &Connection, filter: &Filter, size: u32, before_id: Option<i64>) -> Result<Listing> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if !filter.client.is_empty() {
        sql.push_str(" AND (client_id = ? OR client_name = ?)");
        args.push(Value::Text(filter.client.clone()));
        args.push(Value::Text(filter.client.clone()));
    }
    if !filter.method.is_empty() {
        sql.push_str(" AND instr(method, ?) > 0");
        args.push(Value::Text(filter.method.clone()));
    }
    if !filter.project.is_empty() {
        sql.push_str(" AND project = ?");
        args.push(Value::Text(resolve_project(c, &filter.project)?));
    }
    if filter.since_ms > 0 {
        sql.push_str(" AND time_ms >= ?");
        args.push(Value::Integer(filter.since_ms));
    }
    if !filter.outcome.is_empty() {
        sql.push_str(" AND outcome = ? COLLATE NOCASE");
        args.push(Value::Text(filter.outcome.clone()));
    }
    if let Some(before) = before_id {
        sql.push_str(" AND id < ?");
        args.push(Value::Integer(before));
    }
    sql.push_str(" ORDER BY id DESC LIMIT ?");
    args.push(Value::Integer(i64::from(size) + 1));
    let mut statement = c.prepare(&sql)?;
    let mut entries = statement
        .query_map(rusqlite::params_from_iter(args), row_to_entry)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let more = entries.len() > size as usize;
    entries.truncate(size as usize);
    let next_before_id = if more {
        entries.last().map(|entry| entry.id)
    } else {
        None
    };
    Ok(Listing {
        entries,
        next_before_id,
    })
}

fn row_to_entry(row: &Row<'_>) -> rusqlite::Result<Entry> {
    let parents: String = row.get(6)?;
    Ok(Entry {
        id: row.get(0)?,
        time_ms: row.get(1)?,
        client_id: row.get(2)?,
        client_name: row.get(3)?,
        peer_pid: u32::try_from(row.get::<_, i64>(4)?).unwrap_or_default(),
        peer_executable: row.get(5)?,
        peer_parents: parents
            .split('\n')
            .filter(|parent| !parent.is_empty())
            .map(str::to_owned)
            .collect(),
        method: row.get(7)?,
        target: row.get(8)?,
        project: row.get(9)?,
        outcome: row.get(10)?,
        count: u32::try_from(row.get::<_, i64>(11)?).unwrap_or(u32::MAX),
        peer_address: row.get(12)?,
    })
}

/// Read a page token (the id the previous page ended before).
pub fn parse_page_token(token: &str) -> Result<Option<i64>> {
    if token.is_empty() {
        return Ok(None);
    }
    token
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(Some)
        .ok_or_else(|| {
            Error::invalid_argument(
                "page_token",
                format!(
                    "{token:?} is not a page token; pass a previous response's next_page_token"
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now_ms;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    async fn log(max_rows: u64) -> (Arc<Audit>, Store) {
        let store = Store::in_memory().expect("store");
        let audit = Audit::start(
            store.clone(),
            Retention {
                max_age: DAY,
                max_rows,
            },
        )
        .await
        .expect("start");
        (audit, store)
    }

    fn call(client: &str, method: &str, time_ms: i64) -> Record {
        Record {
            time_ms,
            client_id: client.to_owned(),
            client_name: format!("{client} name"),
            method: method.to_owned(),
            outcome: "ok".to_owned(),
            ..Record::default()
        }
    }

    fn read(client: &str, project: &str, path: &str, time_ms: i64) -> Record {
        Record {
            project: project.to_owned(),
            target: vec![
                ("project".to_owned(), project.to_owned()),
                ("path".to_owned(), path.to_owned()),
            ],
            aggregate: true,
            ..call(client, "FileService/ReadFile", time_ms)
        }
    }

    async fn all(audit: &Audit) -> Vec<Entry> {
        audit.flush().await;
        audit
            .list(Filter::default(), MAX_PAGE, None)
            .await
            .expect("list")
            .entries
    }

    #[tokio::test]
    async fn content_reads_are_counted_per_client_project_and_minute() {
        let (audit, _) = log(1000).await;
        let minute = (now_ms() / MINUTE_MS) * MINUTE_MS;
        audit.record(read("t1", "/p", "a.txt", minute + 1_000));
        audit.record(read("t1", "/p", "b.txt", minute + 59_000));
        audit.record(read("t1", "/q", "a.txt", minute + 2_000));
        audit.record(read("t2", "/p", "a.txt", minute + 3_000));
        audit.record(read("t1", "/p", "c.txt", minute - 1_000));
        let entries = all(&audit).await;
        assert_eq!(entries.len(), 4, "{entries:#?}");
        let grown = entries
            .iter()
            .find(|e| e.client_id == "t1" && e.project == "/p" && e.time_ms == minute)
            .expect("the minute's row");
        assert_eq!(grown.count, 2);
        assert_eq!(grown.target, "project=/p", "paths are not kept per read");
        let earlier = entries
            .iter()
            .find(|e| e.time_ms == minute - MINUTE_MS)
            .expect("the previous minute's row");
        assert_eq!(earlier.count, 1);
    }

    #[tokio::test]
    async fn other_calls_get_a_row_each_with_their_target() {
        let (audit, _) = log(1000).await;
        let now = now_ms();
        for _ in 0..2 {
            audit.record(Record {
                target: vec![
                    ("project".to_owned(), "/p".to_owned()),
                    ("path".to_owned(), "my notes.txt".to_owned()),
                ],
                project: "/p".to_owned(),
                ..call("owner", "FileService/WriteFile", now)
            });
        }
        let entries = all(&audit).await;
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].target, "project=/p path=\"my notes.txt\"");
        assert_eq!(entries[0].count, 1);
        assert!(entries[0].id > entries[1].id, "newest first");
    }

    #[tokio::test]
    async fn a_project_id_is_shown_as_its_folder() {
        let (audit, store) = log(1000).await;
        store
            .write(|tx| {
                tx.execute(
                    "INSERT INTO projects (id, name, path, open, created_ms, last_opened_ms)
                     VALUES ('p1', 'app', '/home/me/app', 1, 0, 0)",
                    [],
                )?;
                Ok(())
            })
            .await
            .expect("project");
        audit.record(Record {
            target: vec![("project".to_owned(), "p1".to_owned())],
            project: "p1".to_owned(),
            ..call("owner", "FileService/Delete", now_ms())
        });
        let entries = all(&audit).await;
        assert_eq!(entries[0].project, "/home/me/app");
        assert_eq!(entries[0].target, "project=/home/me/app");
        let by_id = audit
            .list(
                Filter {
                    project: "p1".to_owned(),
                    ..Filter::default()
                },
                0,
                None,
            )
            .await
            .expect("list");
        assert_eq!(by_id.entries.len(), 1);
    }

    #[tokio::test]
    async fn old_rows_go_by_age_and_by_count() {
        let (audit, _) = log(3).await;
        let now = now_ms();
        let old = now - i64::try_from((DAY * 2).as_millis()).expect("ms");
        audit.record(call("owner", "Old/Call", old));
        audit.flush().await;
        audit.record(call("owner", "New/Call", now));
        let entries = all(&audit).await;
        assert_eq!(entries.len(), 1, "{entries:#?}");
        assert_eq!(entries[0].method, "New/Call");
        for n in 0..5 {
            audit.record(call("owner", &format!("Count/Call{n}"), now));
        }
        let entries = all(&audit).await;
        let methods: Vec<&str> = entries.iter().map(|e| e.method.as_str()).collect();
        assert_eq!(
            methods,
            ["Count/Call4", "Count/Call3", "Count/Call2"],
            "the newest max_rows stay"
        );
    }

    #[tokio::test]
    async fn rows_beyond_retention_at_start_are_pruned() {
        let store = Store::in_memory().expect("store");
        let audit = Audit::start(
            store.clone(),
            Retention {
                max_age: DAY,
                max_rows: 1000,
            },
        )
        .await
        .expect("start");
        for n in 0..4 {
            audit.record(call("owner", &format!("A/B{n}"), now_ms()));
        }
        audit.shutdown().await;
        let audit = Audit::start(
            store,
            Retention {
                max_age: DAY,
                max_rows: 2,
            },
        )
        .await
        .expect("restart");
        assert_eq!(all(&audit).await.len(), 2);
    }

    #[tokio::test]
    async fn filters_and_pages() {
        let (audit, _) = log(1000).await;
        let now = now_ms();
        audit.record(call("owner", "FileService/Delete", now - 10_000));
        audit.record(Record {
            outcome: "NOT_ADMITTED".to_owned(),
            ..call("anonymous", "FileService/WriteFile", now)
        });
        audit.record(Record {
            project: "/p".to_owned(),
            ..call("t1", "GitService/Push", now)
        });
        audit.flush().await;
        let count = |filter: Filter| {
            let audit = audit.clone();
            async move {
                audit
                    .list(filter, 0, None)
                    .await
                    .expect("list")
                    .entries
                    .len()
            }
        };
        let f = Filter::default;
        assert_eq!(count(f()).await, 3);
        assert_eq!(
            count(Filter {
                client: "t1 name".into(),
                ..f()
            })
            .await,
            1
        );
        assert_eq!(
            count(Filter {
                client: "owner".into(),
                ..f()
            })
            .await,
            1
        );
        assert_eq!(
            count(Filter {
                method: "FileService/".into(),
                ..f()
            })
            .await,
            2
        );
        assert_eq!(
            count(Filter {
                project: "/p/".into(),
                ..f()
            })
            .await,
            1
        );
        assert_eq!(
            count(Filter {
                since_ms: now - 1_000,
                ..f()
            })
            .await,
            2
        );
        assert_eq!(
            count(Filter {
                outcome: "not_admitted".into(),
                ..f()
            })
            .await,
            1
        );

        let first = audit.list(f(), 2, None).await.expect("page 1");
        assert_eq!(first.entries.len(), 2);
        let next = first.next_before_id.expect("a second page");
        let second = audit.list(f(), 2, Some(next)).await.expect("page 2");
        assert_eq!(second.entries.len(), 1);
        assert_eq!(second.next_before_id, None);
        assert_eq!(second.entries[0].method, "FileService/Delete");
    }

    #[tokio::test]
    async fn followers_see_new_rows_and_grown_ones() {
        let (audit, _) = log(1000).await;
        let mut watch = audit
            .watch(Filter {
                client: "t1".into(),
                ..Filter::default()
            })
            .await
            .expect("watch");
        let now = now_ms();
        audit.record(call("owner", "FileService/Delete", now));
        audit.record(read("t1", "/p", "a", now));
        audit.record(read("t1", "/p", "b", now));
        let first = watch.next().await.expect("first");
        let second = watch.next().await.expect("second");
        assert_eq!(first.id, second.id, "the same aggregated row");
        assert_eq!((first.count, second.count), (1, 2));
        audit.shutdown().await;
        drop(audit);
        assert_eq!(watch.next().await, None, "ends with the log");
    }

    #[tokio::test]
    async fn the_calling_process_is_read_from_the_kernel() {
        let (audit, _) = log(1000).await;
        audit.record(Record {
            peer_pid: Some(std::process::id()),
            ..call("owner", "AgentService/Shutdown", now_ms())
        });
        let entries = all(&audit).await;
        assert_eq!(entries[0].peer_pid, std::process::id());
        assert!(!entries[0].peer_executable.is_empty(), "{entries:#?}");
    }

    #[test]
    fn page_tokens_are_ids() {
        assert_eq!(parse_page_token("").expect("empty"), None);
        assert_eq!(parse_page_token("42").expect("id"), Some(42));
        let err = parse_page_token("x").expect_err("text");
        assert_eq!(err.field(), Some("page_token"));
    }
}
