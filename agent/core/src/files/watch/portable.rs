//! The backend for macOS and Windows: the notify crate (FSEvents,
//! ReadDirectoryChangesW), one non-recursive watch per folder like the
//! Linux backend. It is compiled and unit-tested on Linux too (on notify's
//! inotify backend), so this path cannot rot unseen.
//!
//! notify calls back on its own thread, which must never block (the same
//! thread serves watch requests): a full queue is reported as a loss and
//! becomes a rescan.

use std::{
    collections::HashSet,
    io,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use cap_std::fs::Dir;
use notify::{
    EventKind, RecursiveMode, Watcher,
    event::{CreateKind, ModifyKind, RemoveKind, RenameMode},
};
use tokio::sync::mpsc;

use crate::files::{
    sandbox::RelPath,
    watch::{
        limit::WatchBudget,
        source::{AddError, Backend, FolderWatches, RAW_BATCHES, RawChange, RawKind},
    },
};

/// Cookies for renames that notify reports as one event: above any tracker
/// notify hands out.
static SYNTHETIC_COOKIE: AtomicU64 = AtomicU64::new(1 << 63);

#[derive(Debug)]
struct Watched {
    watcher: notify::RecommendedWatcher,
    folders: HashSet<RelPath>,
    budget: Arc<WatchBudget>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.budget.release(self.folders.len());
    }
}

#[derive(Debug)]
struct PortableWatches {
    root: PathBuf,
    watched: Mutex<Watched>,
}

impl PortableWatches {
    fn lock(&self) -> MutexGuard<'_, Watched> {
        crate::sync::lock(&self.watched)
    }
}

impl FolderWatches for PortableWatches {
    fn add(&self, dir: &RelPath, _handle: &Dir) -> Result<(), AddError> {
        // notify takes only paths: the absolute path is used here (the
        // untested ports; see ARCHITECTURE.md on what that leaves open).
        let mut watched = self.lock();
        if watched.folders.contains(dir) {
            return Ok(());
        }
        watched.budget.take().map_err(AddError::Limit)?;
        let path = self.root.join(dir.as_path());
        match watched.watcher.watch(&path, RecursiveMode::NonRecursive) {
            Ok(()) => {
                watched.folders.insert(dir.clone());
                Ok(())
            }
            Err(err) => {
                watched.budget.release(1);
                Err(AddError::Io(io::Error::other(err.to_string())))
            }
        }
    }

    fn remove_tree(&self, dir: &RelPath) {
        let mut watched = self.lock();
        let gone: Vec<RelPath> = watched
            .folders
            .iter()
            .filter(|f| f.starts_with(dir))
            .cloned()
            .collect();
        for folder in gone {
            let _ = watched.watcher.unwatch(&self.root.join(folder.as_path()));
            watched.folders.remove(&folder);
            watched.budget.release(1);
        }
    }

    fn count(&self) -> usize {
        self.lock().folders.len()
    }
}

/// Start watching the project at `root` with notify.
pub fn start(root: PathBuf, budget: Arc<WatchBudget>) -> io::Result<Backend> {
    let (sender, receiver) = mpsc::channel(RAW_BATCHES);
    let lost = AtomicBool::new(false);
    let event_root = root.clone();
    let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        let changes = convert(&event_root, event);
        if changes.is_empty() {
            return;
        }
        if lost.load(Ordering::Acquire) {
            if sender
                .try_send(vec![RawChange::lost(
                    "too many changes at once; some were not seen",
                )])
                .is_err()
            {
                return;
            }
            lost.store(false, Ordering::Release);
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(changes) {
            lost.store(true, Ordering::Release);
        }
    })
    .map_err(|err| io::Error::other(err.to_string()))?;
    let watches = PortableWatches {
        root,
        watched: Mutex::new(Watched {
            watcher,
            folders: HashSet::new(),
            budget,
        }),
    };
    Ok((Arc::new(watches), receiver))
}

/// notify's event as changes relative to `root`.
fn convert(root: &Path, event: notify::Result<notify::Event>) -> Vec<RawChange> {
    let event = match event {
        Ok(event) => event,
        Err(err) => {
            return vec![RawChange::lost(format!(
                "the watcher reported an error: {err}"
            ))];
        }
    };
    if event.need_rescan() {
        return vec![RawChange::lost("the OS's event queue overflowed")];
    }
    let relative = |path: &Path| path.strip_prefix(root).ok().and_then(RelPath::from_inside);
    let is_dir = |path: &Path| {
        matches!(
            event.kind,
            EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder)
        ) || path.is_dir()
    };
    let tracker = event.attrs.tracker().map(|t| t as u64);
    let change = |kind: RawKind, path: &Path| {
        relative(path).map(|rel| RawChange {
            kind,
            path: rel,
            is_dir: is_dir(path),
        })
    };
    match (event.kind, event.paths.as_slice()) {
        (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [from, to]) => {
            // With a tracker the two halves came already (inotify); without
            // one (Windows), this is the only report of the rename.
            if tracker.is_some() {
                return Vec::new();
            }
            let cookie = SYNTHETIC_COOKIE.fetch_add(1, Ordering::Relaxed);
            let dir = is_dir(to);
            [
                relative(from).map(|path| RawChange {
                    kind: RawKind::MovedFrom(cookie),
                    path,
                    is_dir: dir,
                }),
                relative(to).map(|path| RawChange {
                    kind: RawKind::MovedTo(cookie),
                    path,
                    is_dir: dir,
                }),
            ]
            .into_iter()
            .flatten()
            .collect()
        }
        (kind, paths) => paths
            .iter()
            .filter_map(|path| {
                let raw = match kind {
                    EventKind::Create(_) => RawKind::Created,
                    EventKind::Remove(_) => RawKind::Deleted,
                    EventKind::Modify(ModifyKind::Name(RenameMode::From)) => match tracker {
                        Some(cookie) => RawKind::MovedFrom(cookie),
                        None => RawKind::Deleted,
                    },
                    EventKind::Modify(ModifyKind::Name(RenameMode::To)) => match tracker {
                        Some(cookie) => RawKind::MovedTo(cookie),
                        None => RawKind::Created,
                    },
                    // FSEvents says "renamed" for either side: what is
                    // there now decides.
                    EventKind::Modify(ModifyKind::Name(_)) => {
                        if path.exists() {
                            RawKind::Created
                        } else {
                            RawKind::Deleted
                        }
                    }
                    EventKind::Modify(_) => RawKind::Modified,
                    EventKind::Access(_) | EventKind::Any | EventKind::Other => return None,
                };
                change(raw, path)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn notify_events_become_relative_changes_with_paired_renames() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = std::fs::canonicalize(dir.path())?;
        let budget = Arc::new(WatchBudget::new(0));
        let (watches, mut receiver) = start(root.clone(), budget.clone())?;
        let handle = crate::files::sandbox::open_root(&root)?;
        watches
            .add(&RelPath::root(), &handle)
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        assert_eq!((watches.count(), budget.used()), (1, 1));
        std::fs::write(root.join("a.txt"), "a")?;
        std::fs::rename(root.join("a.txt"), root.join("b.txt"))?;
        let mut seen = Vec::new();
        while !seen
            .iter()
            .any(|c: &RawChange| matches!(c.kind, RawKind::MovedTo(_)))
        {
            let batch = tokio::time::timeout(Duration::from_secs(60), receiver.recv())
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            assert!(!batch.is_empty(), "no more changes; so far {seen:?}");
            seen.extend(batch);
        }
        assert!(
            seen.iter()
                .any(|c| c.kind == RawKind::Created && c.path.as_str() == "a.txt"),
            "{seen:?}"
        );
        let from = seen.iter().find_map(|c| match c.kind {
            RawKind::MovedFrom(cookie) => Some((cookie, c.path.as_str())),
            _ => None,
        });
        let to = seen.iter().find_map(|c| match c.kind {
            RawKind::MovedTo(cookie) => Some((cookie, c.path.as_str())),
            _ => None,
        });
        assert_eq!(from.map(|f| f.1), Some("a.txt"), "{seen:?}");
        assert_eq!(to.map(|t| t.1), Some("b.txt"), "{seen:?}");
        assert_eq!(from.map(|f| f.0), to.map(|t| t.0));
        watches.remove_tree(&RelPath::root());
        assert_eq!((watches.count(), budget.used()), (0, 0));
        Ok(())
    }
}
