//! The repositories the Git facade keeps open, one per project, with each
//! one's last status (`warm_status.rs`). An open `git2::Repository` holds
//! its loaded index, about 200 bytes per tracked file: 190 MB at a million
//! files, for as long as it is open. So a repository nobody
//! has used for a while is closed and its memory handed back; the status
//! cache stays, because it vouches for itself by stamps of HEAD, the index
//! and the config, not by the handle, so the next status reopens the
//! repository (reading the index once) and is still answered warm. One
//! timer task runs while some repository is open and ends with the last
//! one closed: nothing wakes while none is.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, Weak,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use git2::Repository;
use tokio::time::Instant;

use crate::{
    error::Result,
    files::OpenProject,
    git::{open_project_repository, warm_status::StatusCache},
};

/// What is handed back to the OS after idle repositories were closed: the
/// agent's hook returns the freed heap pages (libgit2's index is a million
/// small allocations that glibc would otherwise keep).
pub type Released = Arc<dyn Fn() + Send + Sync>;

/// A project's repository, open or closed for idleness, and its last
/// status.
struct Handle {
    repo: Option<Repository>,
    status: Option<StatusCache>,
    last_used: Instant,
}

/// The projects' repository handles.
pub(super) struct Handles {
    map: Mutex<HashMap<String, Arc<Mutex<Handle>>>>,
    /// How long an unused repository stays open.
    idle: Duration,
    /// Whether the closing task is running (or about to): set by a use,
    /// cleared by the task before each look.
    closer_armed: AtomicBool,
    released: Released,
}

impl Handles {
    pub(super) fn new(idle: Duration, released: Released) -> Arc<Self> {
        Arc::new(Self {
            map: Mutex::new(HashMap::new()),
            idle,
            closer_armed: AtomicBool::new(false),
            released,
        })
    }

    /// Run `work` with the project's repository (opened if it is not) and
    /// its status cache, here: a blocking-pool thread.
    pub(super) fn with<T>(
        self: &Arc<Self>,
        project: &OpenProject,
        work: impl FnOnce(&mut Repository, &mut Option<StatusCache>) -> Result<T>,
    ) -> Result<T> {
        let handle = {
            let mut map = crate::sync::lock(&self.map);
            if let Some(handle) = map.get(project.id()) {
                handle.clone()
            } else {
                let handle = Arc::new(Mutex::new(Handle {
                    repo: Some(open_project_repository(project.root())?),
                    status: None,
                    last_used: Instant::now(),
                }));
                map.insert(project.id().to_owned(), handle.clone());
                handle
            }
        };
        let result = {
            let mut handle = crate::sync::lock(&handle);
            let Handle {
                repo,
                status,
                last_used,
            } = &mut *handle;
            let repo = match repo {
                Some(repo) => repo,
                None => repo.insert(open_project_repository(project.root())?),
            };
            let result = work(repo, status);
            *last_used = Instant::now();
            result
        };
        self.arm_closer();
        result
    }

    /// Forget a project's handle and cache (closed or forgotten).
    pub(super) fn forget(&self, project_id: &str) {
        let Some(handle) = crate::sync::lock(&self.map).remove(project_id) else {
            return;
        };
        // As when closing for idleness: a large index is freed off the
        // executor, and the pages handed back.
        let released = self.released.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(move || {
                    drop(handle);
                    released();
                });
            }
            Err(_) => drop(handle),
        }
    }

    /// The projects with a handle, for Debug.
    pub(super) fn project_ids(&self) -> Vec<String> {
        crate::sync::lock(&self.map).keys().cloned().collect()
    }

    fn arm_closer(self: &Arc<Self>) {
        if self.closer_armed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Without a runtime (a test driving libgit2 directly) repositories
        // stay open until their project closes, as they always did.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(close_idle(Arc::downgrade(self)));
            }
            Err(_) => self.closer_armed.store(false, Ordering::Release),
        }
    }

    /// Close the repositories unused for [`Self::idle`]; when the next one
    /// falls idle, or `None` when none is open.
    fn close_idle_now(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut closed = Vec::new();
        let mut next: Option<Instant> = None;
        for handle in crate::sync::lock(&self.map).values() {
            // Held means in use: look again a whole idle period later.
            let Some(mut handle) = crate::sync::try_lock(handle) else {
                next = Some(next.map_or(now + self.idle, |n| n.min(now + self.idle)));
                continue;
            };
            if handle.repo.is_none() {
                continue;
            }
            let deadline = handle.last_used + self.idle;
            if deadline <= now {
                closed.extend(handle.repo.take());
            } else {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        if !closed.is_empty() {
            tracing::debug!(count = closed.len(), "closing idle repositories");
            let released = self.released.clone();
            // Freeing a large index is a million frees: off the executor,
            // and the pages handed back after.
            tokio::task::spawn_blocking(move || {
                drop(closed);
                released();
            });
        }
        next
    }

    /// How many handles `which` holds for (tests look at open
    /// repositories and kept caches).
    #[cfg(test)]
    fn count(&self, which: impl Fn(&Handle) -> bool) -> usize {
        crate::sync::lock(&self.map)
            .values()
            .filter(|handle| which(&crate::sync::lock(handle)))
            .count()
    }
}

/// The closing task: sleeps until the next repository falls idle, ends
/// when none is open (the next use starts it again) or the facade is gone.
async fn close_idle(handles: Weak<Handles>) {
    loop {
        let Some(strong) = handles.upgrade() else {
            return;
        };
        // Cleared before the look: a use after it starts a new task or
        // finds this one's re-arming below.
        strong.closer_armed.store(false, Ordering::Release);
        let Some(next) = strong.close_idle_now() else {
            return;
        };
        // Another task was started meanwhile: it carries on.
        if strong.closer_armed.swap(true, Ordering::AcqRel) {
            return;
        }
        drop(strong);
        tokio::time::sleep_until(next).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::git::{repo::fixtures::repo_with_commits, warm_status};

    /// Waits on real time, up to a patience no machine needs, for what the
    /// closing task does: no assertion depends on how fast it runs.
    const PATIENCE: Duration = Duration::from_secs(60);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unused_repository_is_closed_and_its_cache_still_answers_warm() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        drop(repo_with_commits(&root, 2));
        let project = OpenProject::open_live(&root).await;
        let deadline = std::time::Instant::now() + PATIENCE;
        let releases = Arc::new(AtomicUsize::new(0));
        let counted = releases.clone();
        let handles = Handles::new(
            Duration::from_millis(50),
            Arc::new(move || {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let status = |handles: &Arc<Handles>| {
            let (handles, project) = (handles.clone(), project.clone());
            tokio::task::spawn_blocking(move || {
                handles.with(&project, |repo, cache| {
                    warm_status::answer(repo, cache, &project)
                })
            })
        };

        let (first, warm) = status(&handles).await.unwrap().unwrap();
        assert!(!warm, "the first status is a full one");
        assert!(first.untracked.is_empty());
        while releases.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "never closed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(handles.count(|h| h.repo.is_some()), 0, "closed when idle");
        assert_eq!(
            handles.count(|h| h.status.is_some()),
            1,
            "the cache outlives it"
        );

        std::fs::write(root.join("new.txt"), "new\n").unwrap();
        let (second, warm) = status(&handles).await.unwrap().unwrap();
        assert!(warm, "reopened, the cache still vouches for itself");
        let paths: Vec<_> = second.untracked.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["new.txt"]);
        assert_eq!(
            handles.count(|h| h.repo.is_some()),
            1,
            "open again while in use"
        );

        handles.forget("p");
        assert!(handles.project_ids().is_empty());
        project.shut();
    }
}
