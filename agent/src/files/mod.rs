//! Files of open projects: the sandbox every path goes through, file
//! operations (atomic writes with optimistic versions, copies, moves,
//! deletes to the trash), batches that undo themselves on failure, fuzzy
//! file-name search over an index the watcher keeps current, text search
//! built on ripgrep's crates, and live change events from one watcher per
//! project shared by every subscriber.

pub mod batch;
pub mod find;
pub mod grep;
pub mod ignore_rules;
pub mod ops;
pub mod sandbox;
pub mod watch;

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
    files::{find::FileIndex, watch::ChangeItem},
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
    stop: CancellationToken,
    /// Serialises mutations within a project, so a version check and the
    /// write it guards are not interleaved with another write through the
    /// agent.
    write_lock: tokio::sync::Mutex<()>,
}

impl OpenProject {
    /// Open `root` (canonical) and start watching it. Must be called inside
    /// the runtime.
    pub fn open(
        id: &str,
        root: &Path,
        settings: &FilesSettings,
        instance_id: u64,
    ) -> Result<Arc<Self>> {
        let dir = sandbox::open_root(root).map_err(|err| {
            Error::failed_precondition(format!(
                "cannot open project folder {}: {err}",
                root.display()
            ))
        })?;
        let project = Arc::new(Self {
            id: id.to_owned(),
            root: root.to_owned(),
            dir,
            settings: settings.clone(),
            changes: Arc::new(Feed::new(instance_id, CHANGE_HISTORY)),
            index: Arc::new(FileIndex::default()),
            stop: CancellationToken::new(),
            write_lock: tokio::sync::Mutex::new(()),
        });
        watch::start(&project);
        Ok(project)
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

    /// Resolves when the project is closed.
    pub fn stopped(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Check a client path against this project.
    pub fn check(&self, field: &str, raw: &str) -> Result<sandbox::RelPath> {
        sandbox::check(&self.root, field, raw)
    }

    /// Take the project's write lock.
    pub async fn lock_writes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().await
    }
}
