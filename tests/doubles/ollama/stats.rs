//! Counters behind the test-only `GET /__fake/stats` endpoint (not part of
//! Ollama): requests per path, and how pulls and generations started and
//! ended, so a test can observe e.g. that a client disconnect really
//! stopped the work on the server side; and the `OLLAMA_*` variables the
//! server was started with, so a test can see the settings a supervisor
//! gave it.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use serde::Serialize;

/// Long-running work the fake tracks.
#[derive(Debug, Clone, Copy)]
pub enum Work {
    Pull,
    Generation,
}

/// How a piece of work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    Failed,
    /// The client went away before the end.
    Cancelled,
}

#[derive(Debug, Default)]
struct Counters {
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    active: AtomicU64,
}

/// All counters of one server.
#[derive(Debug, Default)]
pub struct Stats {
    requests: Mutex<BTreeMap<String, u64>>,
    pulls: Counters,
    generations: Counters,
}

/// The JSON body of `/__fake/stats`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests received per URL path (all methods), this one included.
    pub requests: BTreeMap<String, u64>,
    pub pulls_started: u64,
    pub pulls_completed: u64,
    pub pulls_failed: u64,
    pub pulls_cancelled: u64,
    pub pulls_active: u64,
    pub generations_started: u64,
    pub generations_completed: u64,
    pub generations_failed: u64,
    pub generations_cancelled: u64,
    pub generations_active: u64,
    /// The `OLLAMA_*` environment variables this process started with.
    pub env: BTreeMap<String, String>,
}

impl Stats {
    pub fn count_request(&self, path: &str) {
        let mut requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        *requests.entry(path.to_string()).or_default() += 1;
    }

    /// Counts a start; the returned guard counts the end exactly once,
    /// as `Cancelled` if it is dropped unfinished (the task was abandoned).
    pub fn begin(self: &Arc<Self>, work: Work) -> Activity {
        let counters = self.counters(work);
        counters.started.fetch_add(1, Ordering::SeqCst);
        counters.active.fetch_add(1, Ordering::SeqCst);
        Activity {
            stats: Arc::clone(self),
            work,
            open: true,
        }
    }

    fn counters(&self, work: Work) -> &Counters {
        match work {
            Work::Pull => &self.pulls,
            Work::Generation => &self.generations,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        Snapshot {
            requests,
            pulls_started: get(&self.pulls.started),
            pulls_completed: get(&self.pulls.completed),
            pulls_failed: get(&self.pulls.failed),
            pulls_cancelled: get(&self.pulls.cancelled),
            pulls_active: get(&self.pulls.active),
            generations_started: get(&self.generations.started),
            generations_completed: get(&self.generations.completed),
            generations_failed: get(&self.generations.failed),
            generations_cancelled: get(&self.generations.cancelled),
            generations_active: get(&self.generations.active),
            // Nothing in the fake changes its environment, so this is what
            // it was started with.
            env: std::env::vars()
                .filter(|(name, _)| name.starts_with("OLLAMA_"))
                .collect(),
        }
    }
}

/// One running pull or generation.
#[derive(Debug)]
pub struct Activity {
    stats: Arc<Stats>,
    work: Work,
    open: bool,
}

impl Activity {
    /// Records the end. Call it before sending the final line, so a client
    /// that reads the stats right after the reply sees the work finished.
    pub fn finish(&mut self, outcome: Outcome) {
        if !self.open {
            return;
        }
        self.open = false;
        let counters = self.stats.counters(self.work);
        counters.active.fetch_sub(1, Ordering::SeqCst);
        let counter = match outcome {
            Outcome::Completed => &counters.completed,
            Outcome::Failed => &counters.failed,
            Outcome::Cancelled => &counters.cancelled,
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        self.finish(Outcome::Cancelled);
    }
}
