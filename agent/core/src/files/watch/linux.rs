//! The Linux backend: inotify used directly, one instance per project,
//! read on the async executor (no thread; nothing runs while nothing
//! changes).
//!
//! Why not the notify crate here: its inotify backend always subscribes to
//! `IN_OPEN`, and no option removes it. Then every `opendir` of a walk and
//! every read of `.git/HEAD` was an event: the agent's own work (and `rg`,
//! `cargo build`, an editor's indexer) fed the watcher, the repository
//! summary it triggered fed it again, and a rescan of ~10 000 folders
//! queued more events than the kernel's queue holds, so each rescan caused
//! the next. The mask below asks only for changes.
//!
//! inotify reports `(watch, name)`; the table maps each watch to its folder
//! and follows folder renames inside the project, so later events resolve
//! to the new path.

use std::{
    collections::{HashMap, VecDeque},
    io,
    os::fd::{AsFd, AsRawFd},
    sync::{Arc, Mutex},
};

use cap_std::fs::Dir;

use futures_util::FutureExt;
use inotify::{EventMask, EventStream, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::{
    files::{
        sandbox::RelPath,
        watch::{
            limit::{LimitKind, WatchBudget},
            source::{AddError, Backend, FolderWatches, RAW_BATCHES, RawChange, RawKind},
        },
    },
    sync::lock,
};

/// What each folder watch asks for: changes only. Never `IN_OPEN`,
/// `IN_ACCESS` or `IN_CLOSE_NOWRITE`, which reading produces. No
/// `IN_DONT_FOLLOW`: the path given is `/proc/self/fd/N`, a link to the
/// folder already opened through the sandbox, which must be followed.
const MASK: WatchMask = WatchMask::CREATE
    .union(WatchMask::DELETE)
    .union(WatchMask::MODIFY)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::ATTRIB)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::ONLYDIR)
    .union(WatchMask::EXCL_UNLINK);

/// Bytes read from the inotify descriptor at once (an event is 16 bytes
/// plus its name).
const READ_BUFFER: usize = 32 * 1024;

/// Most changes sent to the coalescer at once.
const MAX_BATCH: usize = 1024;

/// Folder renames remembered while waiting for their second half.
const RECENT_MOVES: usize = 64;

/// Watch → folder, and the budget each watch was taken from.
#[derive(Debug)]
struct Table {
    watches: Watches,
    folders: HashMap<WatchDescriptor, RelPath>,
    budget: Arc<WatchBudget>,
}

impl Table {
    fn forget(&mut self, wd: &WatchDescriptor) {
        if self.folders.remove(wd).is_some() {
            self.budget.release(1);
        }
    }

    /// A folder moved from `from` to `to` inside the project.
    fn moved(&mut self, from: &RelPath, to: &RelPath) {
        for folder in self.folders.values_mut() {
            if let Some(rebased) = folder.rebase(from, to) {
                *folder = rebased;
            }
        }
    }
}

impl Drop for Table {
    fn drop(&mut self) {
        self.budget.release(self.folders.len());
    }
}

/// The watch handle walks use.
#[derive(Debug)]
struct LinuxWatches {
    table: Arc<Mutex<Table>>,
}

impl FolderWatches for LinuxWatches {
    fn add(&self, dir: &RelPath, handle: &Dir) -> Result<(), AddError> {
        // The folder is named by its open handle, never by its path under
        // the root: a folder swapped for a symlink after the walk opened it
        // cannot make the watch land outside the project.
        let path = format!("/proc/self/fd/{}", handle.as_fd().as_raw_fd());
        // The table stays locked across the system call, so the reader
        // never sees an event of a watch it cannot resolve yet.
        let mut table = lock(&self.table);
        match table.watches.add(&path, MASK) {
            Ok(wd) => {
                // Watching a folder again gives its existing watch back,
                // which costs nothing more.
                if let Some(folder) = table.folders.get_mut(&wd) {
                    *folder = dir.clone();
                    return Ok(());
                }
                if let Err(limit) = table.budget.take() {
                    let _ = table.watches.remove(wd);
                    return Err(AddError::Limit(limit));
                }
                table.folders.insert(wd, dir.clone());
                Ok(())
            }
            Err(err) if err.raw_os_error() == Some(rustix::io::Errno::NOSPC.raw_os_error()) => {
                Err(AddError::Limit(LimitKind::Kernel))
            }
            Err(err) => Err(AddError::Io(err)),
        }
    }

    fn remove_tree(&self, dir: &RelPath) {
        let mut table = lock(&self.table);
        let gone: Vec<WatchDescriptor> = table
            .folders
            .iter()
            .filter(|(_, folder)| folder.starts_with(dir))
            .map(|(wd, _)| wd.clone())
            .collect();
        for wd in gone {
            // An error means the kernel already dropped it (folder deleted).
            let _ = table.watches.remove(wd.clone());
            table.forget(&wd);
        }
    }

    fn count(&self) -> usize {
        lock(&self.table).folders.len()
    }
}

/// Start an inotify instance for the project at `root`; its reader ends
/// when `stop` is cancelled or the coalescer goes away.
pub fn start(budget: Arc<WatchBudget>, stop: CancellationToken) -> io::Result<Backend> {
    let events = Inotify::init()?.into_event_stream(vec![0u8; READ_BUFFER])?;
    let table = Arc::new(Mutex::new(Table {
        watches: events.watches(),
        folders: HashMap::new(),
        budget,
    }));
    let (sender, receiver) = mpsc::channel(RAW_BATCHES);
    tokio::spawn(read_events(events, table.clone(), sender, stop));
    Ok((Arc::new(LinuxWatches { table }), receiver))
}

/// Read, resolve and forward events until stopped, a batch at a time: what
/// one read of the descriptor returned. When the coalescer is behind, this
/// waits and the kernel's queue holds the events (its overflow is reported,
/// then, as a loss).
async fn read_events(
    mut events: EventStream<Vec<u8>>,
    table: Arc<Mutex<Table>>,
    sender: mpsc::Sender<Vec<RawChange>>,
    stop: CancellationToken,
) {
    let mut resolver = Resolver::default();
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => return,
            event = events.next() => event,
        };
        let mut changes = Vec::new();
        let mut next = first;
        loop {
            match next {
                None => return,
                Some(Err(err)) => {
                    changes.push(RawChange::lost(format!("the watcher failed: {err}")));
                    break;
                }
                Some(Ok(event)) => {
                    let mut table = lock(&table);
                    changes.extend(resolver.resolve(
                        &mut table,
                        &event.wd,
                        event.mask,
                        event.cookie,
                        event.name.as_deref(),
                    ));
                }
            }
            // What the last read returned is there without waiting.
            match events.next().now_or_never() {
                Some(event) if changes.len() < MAX_BATCH => next = event,
                _ => break,
            }
        }
        if changes.is_empty() {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            sent = sender.send(changes) => if sent.is_err() { return },
        }
    }
}

/// Turns inotify events into changes, following folder renames.
#[derive(Debug, Default)]
struct Resolver {
    /// Folders whose `IN_MOVED_FROM` came, by cookie, newest last.
    moving: VecDeque<(u32, RelPath)>,
}

impl Resolver {
    fn resolve(
        &mut self,
        table: &mut Table,
        wd: &WatchDescriptor,
        mask: EventMask,
        cookie: u32,
        name: Option<&std::ffi::OsStr>,
    ) -> Option<RawChange> {
        if mask.contains(EventMask::Q_OVERFLOW) {
            return Some(RawChange::lost("the kernel's event queue overflowed"));
        }
        let folder = table.folders.get(wd)?.clone();
        if mask.contains(EventMask::IGNORED) {
            table.forget(wd);
            return None;
        }
        let is_dir = mask.contains(EventMask::ISDIR);
        let Some(name) = name else {
            // An event about the watched folder itself: only the root's
            // removal matters (a subfolder's is reported by its parent).
            return (mask.contains(EventMask::DELETE_SELF) && folder.is_root())
                .then(|| RawChange::lost("the project folder was deleted"));
        };
        // Paths are UTF-8 throughout the API; other names cannot be served.
        let path = folder.join(name.to_str()?);
        let kind = if mask.contains(EventMask::CREATE) {
            RawKind::Created
        } else if mask.contains(EventMask::DELETE) {
            RawKind::Deleted
        } else if mask.contains(EventMask::MOVED_FROM) {
            if is_dir {
                if self.moving.len() == RECENT_MOVES {
                    self.moving.pop_front();
                }
                self.moving.push_back((cookie, path.clone()));
            }
            RawKind::MovedFrom(u64::from(cookie))
        } else if mask.contains(EventMask::MOVED_TO) {
            if is_dir
                && let Some(at) = self.moving.iter().position(|(c, _)| *c == cookie)
                && let Some((_, from)) = self.moving.remove(at)
            {
                table.moved(&from, &path);
            }
            RawKind::MovedTo(u64::from(cookie))
        } else if mask.intersects(EventMask::MODIFY | EventMask::CLOSE_WRITE | EventMask::ATTRIB) {
            RawKind::Modified
        } else {
            return None;
        };
        Some(RawChange { kind, path, is_dir })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rel(path: &str) -> RelPath {
        RelPath::from_inside(std::path::Path::new(path)).unwrap_or_else(RelPath::root)
    }

    /// Watch `folder`, opened through the sandbox as walks do.
    fn add(
        watches: &dyn FolderWatches,
        root: &std::path::Path,
        folder: &str,
    ) -> Result<(), AddError> {
        let handle = crate::files::sandbox::open_root(root)
            .and_then(|dir| crate::files::sandbox::open_folder(&dir, &rel(folder)))
            .map_err(AddError::Io)?;
        watches.add(&rel(folder), &handle)
    }

    async fn next(receiver: &mut mpsc::Receiver<Vec<RawChange>>) -> Vec<RawChange> {
        tokio::time::timeout(Duration::from_secs(60), receiver.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Collect changes until `done` holds for what came so far.
    async fn until(
        receiver: &mut mpsc::Receiver<Vec<RawChange>>,
        done: impl Fn(&[RawChange]) -> bool,
    ) -> Vec<RawChange> {
        let mut seen = Vec::new();
        while !done(&seen) {
            let batch = next(receiver).await;
            assert!(!batch.is_empty(), "no more changes; so far {seen:?}");
            seen.extend(batch);
        }
        seen
    }

    #[tokio::test]
    async fn reading_the_tree_is_silent_and_writing_it_is_not() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = std::fs::canonicalize(dir.path())?;
        std::fs::create_dir_all(root.join("sub"))?;
        std::fs::write(root.join("sub/a.txt"), "a")?;
        let stop = CancellationToken::new();
        let budget = Arc::new(WatchBudget::new(0));
        let (watches, mut receiver) = start(budget.clone(), stop.clone())?;
        for folder in ["", "sub"] {
            add(&*watches, &root, folder).map_err(|e| io::Error::other(format!("{e:?}")))?;
        }
        assert_eq!(watches.count(), 2);
        assert_eq!(budget.used(), 2);
        // Reads: opendir, readdir, open and read a file. None is an event;
        // the write after them is the first thing reported.
        for _ in 0..3 {
            let _ = std::fs::read_dir(root.join("sub"))?.count();
            let _ = std::fs::read(root.join("sub/a.txt"))?;
        }
        std::fs::write(root.join("marker"), "m")?;
        let first = next(&mut receiver).await;
        assert_eq!(
            first.first().map(|c| c.path.as_str()),
            Some("marker"),
            "{first:?}"
        );
        assert_eq!(first.first().map(|c| &c.kind), Some(&RawKind::Created));
        stop.cancel();
        Ok(())
    }

    #[tokio::test]
    async fn a_renamed_folder_reports_later_events_under_its_new_path() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = std::fs::canonicalize(dir.path())?;
        std::fs::create_dir_all(root.join("old/inner"))?;
        let stop = CancellationToken::new();
        let (watches, mut receiver) = start(Arc::new(WatchBudget::new(0)), stop.clone())?;
        for folder in ["", "old", "old/inner"] {
            add(&*watches, &root, folder).map_err(|e| io::Error::other(format!("{e:?}")))?;
        }
        std::fs::rename(root.join("old"), root.join("new"))?;
        std::fs::write(root.join("new/inner/f.txt"), "x")?;
        let seen = until(&mut receiver, |seen| {
            seen.iter().any(|c| c.path.as_str() == "new/inner/f.txt")
        })
        .await;
        let from = seen.iter().find_map(|c| match c.kind {
            RawKind::MovedFrom(cookie) => Some((cookie, c.path.as_str().to_owned())),
            _ => None,
        });
        let to = seen.iter().find_map(|c| match c.kind {
            RawKind::MovedTo(cookie) => Some((cookie, c.path.as_str().to_owned())),
            _ => None,
        });
        let (Some((from_cookie, from)), Some((to_cookie, to))) = (from, to) else {
            panic!("no rename pair in {seen:?}");
        };
        assert_eq!((from.as_str(), to.as_str()), ("old", "new"));
        assert_eq!(from_cookie, to_cookie);
        // Removing the renamed tree gives its watches (and budget) back.
        watches.remove_tree(&rel("new"));
        assert_eq!(watches.count(), 1);
        stop.cancel();
        Ok(())
    }

    #[tokio::test]
    async fn the_budget_is_a_limit_and_deleted_folders_give_their_watch_back() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = std::fs::canonicalize(dir.path())?;
        std::fs::create_dir_all(root.join("a"))?;
        std::fs::create_dir_all(root.join("b"))?;
        let stop = CancellationToken::new();
        let budget = Arc::new(WatchBudget::new(2));
        let (watches, mut receiver) = start(budget.clone(), stop.clone())?;
        assert!(add(&*watches, &root, "").is_ok());
        assert!(add(&*watches, &root, "a").is_ok());
        // Watching a folder twice costs nothing more.
        assert!(add(&*watches, &root, "a").is_ok());
        assert!(matches!(
            add(&*watches, &root, "b"),
            Err(AddError::Limit(LimitKind::Configured { max: 2 }))
        ));
        assert!(matches!(
            add(&*watches, &root, "missing"),
            Err(AddError::Io(_))
        ));
        assert_eq!(budget.used(), 2);
        std::fs::remove_dir(root.join("a"))?;
        until(&mut receiver, |seen| {
            seen.iter()
                .any(|c| c.path.as_str() == "a" && c.kind == RawKind::Deleted)
        })
        .await;
        // IN_IGNORED follows the deletion; once read, the watch is free.
        std::fs::write(root.join("after"), "x")?;
        until(&mut receiver, |seen| {
            seen.iter().any(|c| c.path.as_str() == "after")
        })
        .await;
        assert_eq!(budget.used(), 1);
        assert!(add(&*watches, &root, "b").is_ok());
        stop.cancel();
        drop(receiver);
        drop(watches);
        Ok(())
    }
}
