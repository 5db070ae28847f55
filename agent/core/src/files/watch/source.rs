//! What an OS watcher hands the coalescer: changes already made relative to
//! the project, in the order the OS reported them, and a handle that adds
//! and removes folder watches from a blocking walk. Two backends implement
//! it: inotify used directly on Linux (`linux.rs`) and the notify crate
//! elsewhere (`portable.rs`).

use std::sync::Arc;

use cap_std::fs::Dir;
use tokio::sync::mpsc;

use crate::files::{sandbox::RelPath, watch::limit::LimitKind};

/// Batches of changes queued between a backend and the coalescer. A
/// backend that can wait (Linux) waits when it is full, leaving events in
/// the kernel's queue; one that cannot reports the loss.
pub const RAW_BATCHES: usize = 64;

/// What happened to a path, as the OS said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKind {
    /// Appeared.
    Created,
    /// Contents or metadata changed.
    Modified,
    /// Disappeared.
    Deleted,
    /// First half of a rename; the second half carries the same cookie.
    MovedFrom(u64),
    /// Second half of a rename.
    MovedTo(u64),
    /// Events were lost (queue overflow, a watcher error): rescan.
    Lost(String),
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawChange {
    /// What happened.
    pub kind: RawKind,
    /// Where, relative to the project root (the root itself for `Lost`).
    pub path: RelPath,
    /// Whether the path is (was) a folder.
    pub is_dir: bool,
}

impl RawChange {
    /// Events were lost, for `reason`.
    pub fn lost(reason: impl Into<String>) -> Self {
        Self {
            kind: RawKind::Lost(reason.into()),
            path: RelPath::root(),
            is_dir: true,
        }
    }
}

/// Why a folder could not be watched.
#[derive(Debug)]
pub enum AddError {
    /// A limit is reached; nothing more can be watched until it is raised.
    Limit(LimitKind),
    /// This folder cannot be watched (gone, no permission).
    Io(std::io::Error),
}

/// Adds and removes folder watches. Used from walks on the blocking pool,
/// so every method is a plain (short) system call.
pub trait FolderWatches: Send + Sync + std::fmt::Debug {
    /// Watch folder `dir` itself (its direct entries), not its subfolders.
    /// `handle` is that folder, opened through the project's sandbox: a
    /// backend that can watch an open folder (Linux) watches it, so a
    /// folder swapped for a symlink after it was opened is not followed.
    fn add(&self, dir: &RelPath, handle: &Dir) -> Result<(), AddError>;
    /// Stop watching `dir` and every folder below it (moved out of the
    /// project, or into an ignored place).
    fn remove_tree(&self, dir: &RelPath);
    /// Folders watched now.
    fn count(&self) -> usize;
}

/// A running backend: its watch handle and the changes it reports.
pub type Backend = (Arc<dyn FolderWatches>, mpsc::Receiver<Vec<RawChange>>);
