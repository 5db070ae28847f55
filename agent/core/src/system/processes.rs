//! Processes: the top-N listing (ListProcesses) from a process table kept
//! between calls (CPU use is a rate, so it needs the previous reading), and
//! the process tree of the Ollama server, whose model runners are child
//! processes holding the model's memory, found cheaply through Linux's
//! `/proc/PID/task/TID/children` instead of scanning every process.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, UpdateKind};

use crate::{
    error::{Error, Result},
    store::now_ms,
    system::metrics::{ProcessEntry, ProcessListing, ProcessOrder},
};

/// Longest command line reported, in characters.
const COMMAND_LIMIT: usize = 512;

/// Most processes one listing returns.
pub const MAX_LIMIT: usize = 1000;

/// A table older than this is read twice, [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`]
/// apart, so CPU figures describe now rather than the time since the last
/// call.
const STALE_AFTER: Duration = Duration::from_secs(10);

/// A table unused this long is dropped to give its memory back.
pub const DROP_AFTER: Duration = Duration::from_secs(60);

/// Every process on the machine, kept between ListProcesses calls.
pub struct ProcessTable {
    system: sysinfo::System,
    refreshed_at: Instant,
}

impl std::fmt::Debug for ProcessTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessTable")
            .field("processes", &self.system.processes().len())
            .field("refreshed_at", &self.refreshed_at)
            .finish()
    }
}

fn listing_refresh() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing()
        .with_cpu()
        .with_memory()
        .with_cmd(UpdateKind::OnlyIfNotSet)
        .with_user(UpdateKind::OnlyIfNotSet)
}

impl ProcessTable {
    /// Read every process (blocking; twice when there is no recent reading).
    pub fn refreshed(previous: Option<Self>) -> Result<Self> {
        let mut table = match previous {
            Some(table) if table.refreshed_at.elapsed() < STALE_AFTER => table,
            _ => {
                let mut system = sysinfo::System::new().map_err(|err| {
                    Error::internal(format!("cannot read the process table: {err}"))
                })?;
                system.refresh_processes_specifics(ProcessesToUpdate::All, true, listing_refresh());
                std::thread::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL);
                Self {
                    system,
                    refreshed_at: Instant::now(),
                }
            }
        };
        table
            .system
            .refresh_processes_specifics(ProcessesToUpdate::All, true, listing_refresh());
        table.refreshed_at = Instant::now();
        Ok(table)
    }

    /// When it was last read.
    pub fn refreshed_at(&self) -> Instant {
        self.refreshed_at
    }

    /// The top `limit` processes in `order`.
    ///
    /// (Command lines of other users' processes are removed afterwards by
    /// [`ProcessListing::hide_foreign_command_lines`] when the caller is a
    /// token.)
    pub fn top(&self, order: ProcessOrder, limit: usize) -> ProcessListing {
        let mut entries: Vec<ProcessEntry> = self
            .system
            .processes()
            .values()
            // Threads are listed as processes on Linux when tasks are read;
            // they are not, but skip any that slip through.
            .filter(|p| p.thread_kind().is_none())
            .map(|p| ProcessEntry {
                pid: p.pid().as_u32(),
                parent_pid: p.parent().map_or(0, Pid::as_u32),
                name: p.name().to_string_lossy().into_owned(),
                command: command_line(p.cmd()),
                cpu_percent: f64::from(p.cpu_usage()),
                rss: p.memory(),
                virtual_bytes: p.virtual_memory(),
                uid: p.user_id().map(|uid| **uid),
                start_time_ms: i64::try_from(p.start_time())
                    .unwrap_or(0)
                    .saturating_mul(1000),
                status: p.status().to_string(),
            })
            .collect();
        let total = u32::try_from(entries.len()).unwrap_or(u32::MAX);
        sort_entries(&mut entries, order);
        entries.truncate(limit.min(MAX_LIMIT));
        ProcessListing {
            processes: entries,
            total,
            time_ms: now_ms(),
        }
    }
}

/// Highest first, ties broken by pid so the order is stable between calls.
pub fn sort_entries(entries: &mut [ProcessEntry], order: ProcessOrder) {
    match order {
        ProcessOrder::Cpu => entries.sort_by(|a, b| {
            b.cpu_percent
                .total_cmp(&a.cpu_percent)
                .then(b.rss.cmp(&a.rss))
                .then(a.pid.cmp(&b.pid))
        }),
        ProcessOrder::Memory => entries.sort_by(|a, b| b.rss.cmp(&a.rss).then(a.pid.cmp(&b.pid))),
    }
}

fn command_line(args: &[std::ffi::OsString]) -> String {
    let joined = args
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    match joined.char_indices().nth(COMMAND_LIMIT) {
        Some((cut, _)) => format!("{}…", &joined[..cut]),
        None => joined,
    }
}

/// `pid` and its descendants (at most `limit` processes), from the kernel's
/// per-thread children lists. Elsewhere than Linux, just `pid`.
pub fn process_tree(pid: u32, limit: usize) -> BTreeSet<u32> {
    let mut found = BTreeSet::from([pid]);
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        for child in children(parent) {
            if found.len() >= limit {
                return found;
            }
            if found.insert(child) {
                queue.push(child);
            }
        }
    }
    found
}

fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(
                text.split_whitespace()
                    .filter_map(|p| p.parse::<u32>().ok()),
            );
        }
    }
    out
}

/// The pid of a running `ollama serve` started outside OmniPanel, found by
/// scanning the process table (blocking; callers do it rarely).
pub fn find_ollama_server() -> Option<u32> {
    let mut system = sysinfo::System::new().ok()?;
    system.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().with_cmd(UpdateKind::OnlyIfNotSet),
    );
    system
        .processes()
        .values()
        .filter(|p| p.thread_kind().is_none())
        .filter(|p| {
            let name = p.name().to_string_lossy();
            name == "ollama" || name == "ollama.exe"
        })
        .filter(|p| p.cmd().iter().any(|arg| arg == "serve"))
        .map(|p| p.pid().as_u32())
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_process_is_listed_and_sorted() -> Result<()> {
        let table = ProcessTable::refreshed(None)?;
        let listing = table.top(ProcessOrder::Memory, 1000);
        assert!(listing.total >= 1);
        assert!(
            listing
                .processes
                .iter()
                .any(|p| p.pid == std::process::id()),
            "own pid missing"
        );
        assert!(listing.processes.windows(2).all(|w| w[0].rss >= w[1].rss));
        // A second call within the stale window reuses the table.
        let again = ProcessTable::refreshed(Some(table))?;
        assert_eq!(again.top(ProcessOrder::Cpu, 3).processes.len(), 3);
        Ok(())
    }

    #[test]
    fn a_child_process_is_part_of_the_tree() -> std::io::Result<()> {
        let mut child = std::process::Command::new("sleep").arg("30").spawn()?;
        let tree = process_tree(std::process::id(), 64);
        let _ = child.kill();
        let _ = child.wait();
        assert!(tree.contains(&std::process::id()));
        let me = std::process::id();
        // Kernels built without CONFIG_PROC_CHILDREN have no children files.
        if std::path::Path::new(&format!("/proc/{me}/task/{me}/children")).exists() {
            assert!(tree.contains(&child.id()), "{tree:?}");
        }
        Ok(())
    }

    #[test]
    fn long_command_lines_are_cut() {
        let long = vec![std::ffi::OsString::from("x".repeat(2000))];
        assert_eq!(command_line(&long).chars().count(), COMMAND_LIMIT + 1);
        assert_eq!(command_line(&["a".into(), "b".into()]), "a b");
    }
}
