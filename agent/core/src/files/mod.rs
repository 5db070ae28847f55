//! Files of open projects: the sandbox every path goes through, file
//! operations (atomic writes with optimistic versions, copies, moves,
//! deletes to the trash), batches that undo themselves on failure, fuzzy
//! file-name search over an index the watcher keeps current, text search
//! built on ripgrep's crates, and live change events from one watcher per
//! project shared by every subscriber. The [`Files`] facade (`facade.rs`)
//! is the one entry the API uses: each use case by project reference.

pub mod batch;
pub mod batch_journal;
mod facade;
pub mod find;
pub mod grep;
pub mod ignore_rules;
pub mod ops;
pub mod pool;
#[cfg(test)]
mod races;
pub mod sandbox;
pub mod tree;
pub mod watch;

pub use facade::{ChangeFeed, FileReader, Files, SearchOutcome, TextSearch};

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use cap_std::fs::Dir;
use tokio_util::sync::CancellationToken;

use crate::{
    config::FilesSettings,
    error::{Error, Result},
    feed::Feed,
    files::{
        find::{FileIndex, FindResult},
        watch::{
            ChangeItem, RefreshRequest, WatchPhase, WatchStatus, changed::ChangedPaths,
            limit::WatchBudget,
        },
    },
};

/// Changes kept per project for watchers that reconnect.
const CHANGE_HISTORY: usize = 1024;

/// A project whose files are in use: its sandboxed root, change feed,
/// file index and watcher.
#[derive(Debug)]
pub struct OpenProject {
    id: String,
    root: PathBuf,
    dir: Dir,
    settings: FilesSettings,
    changes: Arc<Feed<ChangeItem>>,
    index: Arc<FileIndex>,
    /// What changed since the last Git status (kept by the watcher).
    changed: ChangedPaths,
    stop: CancellationToken,
    /// How the watcher follows the project (published by the watcher).
    watch_status: tokio::sync::watch::Sender<WatchStatus>,
    /// Asks the watcher to list unwatched folders again (degraded mode).
    refresh: tokio::sync::mpsc::Sender<RefreshRequest>,
    /// Serialises mutations within a project, so a version check and the
    /// write it guards are not interleaved with another write through the
    /// agent.
    write_lock: tokio::sync::Mutex<()>,
    /// Where batches keep their crash journals (`batch_journal.rs`); none
    /// for projects of an in-memory test store.
    batch_journals: Option<PathBuf>,
}

impl OpenProject {
    /// Open `root` (canonical) and start watching it, with watches drawn
    /// from `budget`; batches keep their journals in `batch_journals`, and
    /// one that a crash interrupted is rolled back (or finished) first.
    /// Must be called inside the runtime.
    pub fn open(
        id: &str,
        root: &Path,
        settings: &FilesSettings,
        instance_id: u64,
        budget: &Arc<WatchBudget>,
        batch_journals: Option<&Path>,
    ) -> Result<Arc<Self>> {
        let (project, refresh_requests) =
            Self::unwatched(id, root, settings, instance_id, batch_journals)?;
        if let Some(folder) = batch_journals {
            // Only a listing of the journal folder unless the agent
            // crashed in the middle of a batch; before the watcher, which
            // would otherwise report the repair as the user's changes.
            batch_journal::recover(folder, &project);
        }
        watch::start(&project, budget.clone(), refresh_requests);
        Ok(project)
    }

    /// A test's project at `root`, open with default settings and
    /// unlimited watches, once its watcher is live (a minute at most).
    #[cfg(test)]
    pub(crate) async fn open_live(root: &Path) -> Arc<Self> {
        let project = Self::open(
            "p",
            root,
            &FilesSettings::default(),
            1,
            &Arc::new(WatchBudget::new(0)),
            None,
        )
        .expect("the project opens");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while project.watch_status().phase != WatchPhase::Live {
            assert!(
                std::time::Instant::now() < deadline,
                "the watcher never went live"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        project
    }

    /// The project without its watcher; the receiver carries the requests
    /// that the watcher answers.
    fn unwatched(
        id: &str,
        root: &Path,
        settings: &FilesSettings,
        instance_id: u64,
        batch_journals: Option<&Path>,
    ) -> Result<(Arc<Self>, tokio::sync::mpsc::Receiver<RefreshRequest>)> {
        let dir = sandbox::open_root(root).map_err(|err| {
            Error::failed_precondition(format!(
                "cannot open project folder {}: {err}",
                root.display()
            ))
        })?;
        let (refresh, refresh_requests) = tokio::sync::mpsc::channel(8);
        let project = Arc::new(Self {
            id: id.to_owned(),
            root: root.to_owned(),
            dir,
            settings: settings.clone(),
            changes: Arc::new(Feed::new(instance_id, CHANGE_HISTORY)),
            index: Arc::new(FileIndex::default()),
            changed: ChangedPaths::default(),
            stop: CancellationToken::new(),
            watch_status: tokio::sync::watch::Sender::new(WatchStatus::default()),
            refresh,
            write_lock: tokio::sync::Mutex::new(()),
            batch_journals: batch_journals.map(Path::to_owned),
        });
        Ok((project, refresh_requests))
    }

    /// A project that is not watched (no watcher, no index), for the fuzz
    /// targets (`fuzz/targets`), which check requests against it.
    #[doc(hidden)]
    pub fn open_unwatched(root: &Path) -> Result<Arc<Self>> {
        Self::unwatched("unwatched", root, &FilesSettings::default(), 1, None)
            .map(|(project, _)| project)
    }

    /// A project whose watcher the test drives itself.
    #[cfg(test)]
    pub(crate) fn open_for_test(
        root: &Path,
    ) -> Result<(Arc<Self>, tokio::sync::mpsc::Receiver<RefreshRequest>)> {
        Self::unwatched("test", root, &FilesSettings::default(), 1, None)
    }

    /// Where this project's batches keep their crash journals.
    pub fn batch_journals(&self) -> Option<&Path> {
        self.batch_journals.as_deref()
    }

    /// The project with its batches journaled in `folder` (tests).
    #[cfg(test)]
    pub(crate) fn journaled_for_test(root: &Path, folder: &Path) -> Result<Arc<Self>> {
        let (project, _refresh) =
            Self::unwatched("test", root, &FilesSettings::default(), 1, Some(folder))?;
        batch_journal::recover(folder, &project);
        Ok(project)
    }

    /// How the project's files are followed now.
    pub fn watch_status(&self) -> WatchStatus {
        self.watch_status.borrow().clone()
    }

    /// Follow the watch status.
    pub fn subscribe_watch_status(&self) -> tokio::sync::watch::Receiver<WatchStatus> {
        self.watch_status.subscribe()
    }

    /// Set the watch status (the watcher's job); returns the phase before.
    pub(crate) fn set_watch_status(&self, status: WatchStatus) -> WatchPhase {
        let mut before = status.phase;
        self.watch_status.send_if_modified(|current| {
            before = current.phase;
            if *current == status {
                return false;
            }
            *current = status;
            true
        });
        before
    }

    /// Fuzzy-find file names. In degraded mode the folders that are not
    /// watched are listed again first (see [`watch::DEGRADED_FRESHNESS`]).
    pub async fn find_files(&self, query: &str, limit: usize) -> Result<FindResult> {
        if matches!(
            self.watch_status.borrow().phase,
            WatchPhase::Degraded | WatchPhase::Unavailable
        ) {
            let (done, finished) = tokio::sync::oneshot::channel();
            // A watcher that has stopped (project closing) answers nothing;
            // the index as it is will do.
            if self.refresh.send(done).await.is_ok() {
                let _ = finished.await;
            }
        }
        let index = self.index.clone();
        let query = query.to_owned();
        Ok(tokio::task::spawn_blocking(move || index.find(&query, limit)).await?)
    }

    /// Stop watching (closing the project or shutting down).
    pub fn shut(&self) {
        self.stop.cancel();
    }

    /// Project id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Canonical root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The capability handle on the root.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Settings in effect when the project was opened.
    pub fn settings(&self) -> &FilesSettings {
        &self.settings
    }

    /// The change feed.
    pub fn changes(&self) -> &Arc<Feed<ChangeItem>> {
        &self.changes
    }

    /// The file-name index.
    pub fn index(&self) -> &Arc<FileIndex> {
        &self.index
    }

    /// The paths the watcher saw change (for Git's status).
    pub fn changed_paths(&self) -> &ChangedPaths {
        &self.changed
    }

    /// Resolves when the project is closed.
    pub fn stopped(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Check a client path against this project.
    pub fn check(&self, field: &str, raw: &str) -> Result<sandbox::RelPath> {
        sandbox::check(&self.root, field, raw)
    }

    /// Check a client path a request would change: also refused inside a
    /// `.git` (see [`sandbox::refuse_git_folder`]). The operation checks
    /// the same again through symlinks, on the blocking pool, with
    /// [`sandbox::refuse_git_folder_through_links`].
    pub fn check_writable(&self, field: &str, raw: &str) -> Result<sandbox::RelPath> {
        let path = self.check(field, raw)?;
        sandbox::refuse_git_folder(field, &path)?;
        Ok(path)
    }

    /// Take the project's write lock.
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }
}
