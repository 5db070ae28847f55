//! The files facade: every file use case of an open project, named by id
//! or path and resolved through the project registry. Each method runs its
//! disk work on the blocking pool itself; reads and text searches come back
//! as handles that deliver their results as they are produced, and stop
//! the work when dropped.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    feed::{Cursor, Delivery, Subscription},
    files::{
        OpenProject,
        batch::{self, BatchOp, BatchResult},
        find::FindResult,
        grep::{self, SearchSummary, TextMatch, TextQuery},
        ops::{self, CopyStats, FileEntry, FileRead, ListOptions, OverwritePolicy, WriteOptions},
        watch::ChangeItem,
    },
    projects::Projects,
};

/// Matches per fuzzy query when the caller names no limit.
const DEFAULT_FIND_LIMIT: usize = 50;
/// Most matches per fuzzy query.
const MAX_FIND_LIMIT: u32 = 1000;
/// Files' worth of text matches buffered ahead of a slow reader.
const SEARCH_BUFFER: usize = 32;
/// Chunks read ahead of a slow reader.
const READ_BUFFER: usize = 2;

/// The files of the open projects.
#[derive(Debug)]
pub struct Files {
    projects: Arc<Projects>,
}

impl Files {
    /// The facade over `projects`' open projects.
    pub async fn start(projects: Arc<Projects>) -> Result<Arc<Self>> {
        Ok(Arc::new(Self { projects }))
    }

    /// Nothing to stop: the watchers belong to the projects.
    pub async fn shutdown(&self) {}

    async fn project(&self, reference: &str) -> Result<Arc<OpenProject>> {
        self.projects.handle(reference).await
    }

    /// The entries of a folder.
    pub async fn list(
        &self,
        project: &str,
        path: &str,
        options: ListOptions,
    ) -> Result<Vec<FileEntry>> {
        let project = self.project(project).await?;
        ops::list_directory(&project, path, options).await
    }

    /// One path (a symlink itself, not its target).
    pub async fn stat(&self, project: &str, path: &str) -> Result<FileEntry> {
        let project = self.project(project).await?;
        ops::stat(&project, path).await
    }

    /// Open a ranged read (`length` 0: to the end); the bytes come from
    /// [`FileReader::next_chunk`].
    pub async fn read(
        &self,
        project: &str,
        path: &str,
        offset: u64,
        length: u64,
    ) -> Result<FileReader> {
        let project = self.project(project).await?;
        let read = ops::open_read(&project, path, offset, length).await?;
        Ok(FileReader {
            entry: read.entry.clone(),
            binary: read.binary,
            offset: read.offset,
            state: ReadState::Ready(read),
        })
    }

    /// Write a file atomically.
    pub async fn write(
        &self,
        project: &str,
        path: &str,
        content: Vec<u8>,
        options: WriteOptions,
    ) -> Result<FileEntry> {
        let project = self.project(project).await?;
        ops::write_file(&project, "path", path, content, options).await
    }

    /// Create a folder (with its parents).
    pub async fn create_directory(&self, project: &str, path: &str) -> Result<FileEntry> {
        let project = self.project(project).await?;
        ops::create_directory(&project, path).await
    }

    /// Move or rename; the entry at its new place.
    pub async fn move_path(
        &self,
        project: &str,
        from: &str,
        to: &str,
        overwrite: bool,
    ) -> Result<FileEntry> {
        let project = self.project(project).await?;
        ops::move_path(&project, from, to, overwrite).await
    }

    /// Copy recursively.
    pub async fn copy(
        &self,
        project: &str,
        from: &str,
        to: &str,
        policy: OverwritePolicy,
    ) -> Result<CopyStats> {
        let project = self.project(project).await?;
        ops::copy_path(&project, from, to, policy).await
    }

    /// Delete, to the trash unless `permanent`.
    pub async fn delete(
        &self,
        project: &str,
        path: &str,
        permanent: bool,
        recursive: bool,
    ) -> Result<()> {
        let project = self.project(project).await?;
        ops::delete_path(&project, path, permanent, recursive).await
    }

    /// Apply steps all or nothing: a failed step undoes the ones before.
    pub async fn apply_batch(&self, project: &str, steps: Vec<BatchOp>) -> Result<BatchResult> {
        let project = self.project(project).await?;
        batch::apply(&project, steps).await
    }

    /// Fuzzy-find file names; `limit` 0 means 50, at most 1000.
    pub async fn find(&self, project: &str, query: &str, limit: u32) -> Result<FindResult> {
        let project = self.project(project).await?;
        let limit = match limit {
            0 => DEFAULT_FIND_LIMIT,
            n if n > MAX_FIND_LIMIT => {
                return Err(Error::invalid_argument(
                    "limit",
                    "at most 1000 matches per query",
                ));
            }
            n => n as usize,
        };
        project.find_files(query, limit).await
    }

    /// Start a text search. A bad pattern or glob is refused here, before
    /// any result; the matches come from [`TextSearch::next_matches`].
    pub async fn search_text(&self, project: &str, query: TextQuery) -> Result<TextSearch> {
        let project = self.project(project).await?;
        let started = Instant::now();
        grep::validate(&project, &query)?;
        let (results, matches) = mpsc::channel::<Vec<TextMatch>>(SEARCH_BUFFER);
        let cancel = Arc::new(AtomicBool::new(false));
        let timeout = project.settings().search_timeout;
        let deadline = Instant::now() + timeout;
        let job = grep::start(&project, &query, timeout, cancel.clone(), move |batch| {
            send_without_blocking(&results, batch, deadline)
        })?;
        Ok(TextSearch {
            matches,
            job,
            started,
            _cancel: CancelOnDrop(cancel),
        })
    }

    /// Follow a project's changes from `cursor`; the feed ends when the
    /// project closes.
    pub async fn changes(&self, project: &str, cursor: Cursor) -> Result<ChangeFeed> {
        let project = self.project(project).await?;
        let feed = project.changes().clone();
        Ok(ChangeFeed {
            instance_id: feed.instance_id(),
            subscription: feed.subscribe(cursor, Vec::new()),
            closed: project.stopped(),
        })
    }
}

enum ReadState {
    /// Not started: the caller has not asked for bytes yet.
    Ready(FileRead),
    /// The blocking pump is running.
    Pumping(
        mpsc::Receiver<(u64, Vec<u8>)>,
        JoinHandle<std::io::Result<()>>,
    ),
    Done,
}

impl std::fmt::Debug for ReadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ready(_) => "Ready",
            Self::Pumping(..) => "Pumping",
            Self::Done => "Done",
        })
    }
}

/// A file being read in chunks. Dropping it stops the read at the next
/// chunk.
#[derive(Debug)]
pub struct FileReader {
    /// The file's description.
    pub entry: FileEntry,
    /// Whether it looks binary (a NUL in its first 8 KiB).
    pub binary: bool,
    /// Where the read starts.
    pub offset: u64,
    state: ReadState,
}

impl FileReader {
    /// The next chunk and its offset; `None` at the end. The disk is read
    /// on the blocking pool, from the first call on.
    pub async fn next_chunk(&mut self) -> Option<Result<(u64, Vec<u8>)>> {
        if matches!(self.state, ReadState::Ready(_)) {
            let ReadState::Ready(read) = std::mem::replace(&mut self.state, ReadState::Done) else {
                return None;
            };
            let (sender, chunks) = mpsc::channel(READ_BUFFER);
            let pump = tokio::task::spawn_blocking(move || {
                read.pump(|offset, data| sender.blocking_send((offset, data)).is_ok())
            });
            self.state = ReadState::Pumping(chunks, pump);
        }
        let ReadState::Pumping(chunks, pump) = &mut self.state else {
            return None;
        };
        if let Some(chunk) = chunks.recv().await {
            return Some(Ok(chunk));
        }
        let outcome = pump.await;
        self.state = ReadState::Done;
        match outcome {
            Ok(Err(err)) => Some(Err(Error::internal(format!("reading stopped: {err}")))),
            // A pump that panicked has already said so in the log; the
            // read ends where it stopped.
            Ok(Ok(())) | Err(_) => None,
        }
    }
}

/// Hand a file's matches to a search's reader. A pool thread must not
/// wait on a slow reader indefinitely (it is shared with every other
/// search): it waits at most until the search's deadline, then gives up,
/// which stops the search. False when the reader is gone or too slow.
fn send_without_blocking(
    results: &mpsc::Sender<Vec<TextMatch>>,
    mut batch: Vec<TextMatch>,
    deadline: Instant,
) -> bool {
    loop {
        match results.try_send(batch) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(back)) => {
                if Instant::now() >= deadline {
                    return false;
                }
                batch = back;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

/// A text search in progress. Dropping it stops the search.
#[derive(Debug)]
pub struct TextSearch {
    matches: mpsc::Receiver<Vec<TextMatch>>,
    job: tokio::sync::oneshot::Receiver<Result<SearchSummary>>,
    started: Instant,
    _cancel: CancelOnDrop,
}

/// How a finished search went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchOutcome {
    /// Counts.
    pub summary: SearchSummary,
    /// Since the search was asked for.
    pub elapsed: Duration,
}

impl TextSearch {
    /// The next file's matches; `None` when the search has ended (then
    /// call [`TextSearch::finish`]).
    pub async fn next_matches(&mut self) -> Option<Vec<TextMatch>> {
        self.matches.recv().await
    }

    /// Wait for the search to end: its counts, or why it failed.
    pub async fn finish(self) -> Result<SearchOutcome> {
        let Self {
            matches,
            job,
            started,
            _cancel,
        } = self;
        // Unread matches must not hold the search up.
        drop(matches);
        let summary = job
            .await
            .map_err(|_| Error::internal("the search ended without a result"))??;
        Ok(SearchOutcome {
            summary,
            elapsed: started.elapsed(),
        })
    }
}

/// Sets the flag when dropped: the search's walker threads check it.
#[derive(Debug)]
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A project's change feed, as one subscriber follows it.
#[derive(Debug)]
pub struct ChangeFeed {
    /// The run the feed's sequences belong to.
    pub instance_id: u64,
    subscription: Subscription<ChangeItem>,
    closed: CancellationToken,
}

impl ChangeFeed {
    /// The next change, gap or catch-up marker; `None` once the project
    /// closed or the feed ended.
    pub async fn next(&mut self) -> Option<Delivery<ChangeItem>> {
        tokio::select! {
            () = self.closed.cancelled() => None,
            delivery = self.subscription.next() => delivery,
        }
    }
}

#[cfg(test)]
mod tests;
