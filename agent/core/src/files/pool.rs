//! The one pool of threads that every text search shares. Its size is the
//! machine's core count, fixed at the first search: however many searches
//! run at once, and however heavy their patterns, they never take more
//! threads than that, so the rest of the agent (the async executor, the
//! blocking pool that serves every other call) stays responsive.
//!
//! A job is cut into small steps (list one folder, search one file). The
//! queue holds *tickets*: a worker takes the first, runs one step of its
//! job, and puts it back at the end while the job has more to do, so
//! concurrent searches take turns step by step instead of the first one
//! holding every thread until it is done. A job asks for more tickets (up
//! to the pool's size) when it has work for more threads at once.

use std::{
    collections::VecDeque,
    sync::{Arc, Condvar, Mutex, OnceLock},
};

use crate::error::{Error, Result};
use crate::sync::lock;

/// What a step of a job leaves to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing for this ticket now: drop it (other tickets of the job may
    /// still be running steps).
    Idle,
    /// Put this ticket back, and `n` more: there is work for them.
    More(usize),
}

/// Work the pool runs step by step.
pub trait Job: Send + Sync {
    /// Run one short step.
    fn step(&self) -> Step;
    /// A step panicked: end the job with this message (its ticket is
    /// dropped).
    fn panicked(&self, message: String);
}

/// A fixed set of threads running [`Job`]s.
#[derive(Debug)]
pub struct Pool {
    shared: Arc<Shared>,
    workers: usize,
}

struct Shared {
    queue: Mutex<VecDeque<Arc<dyn Job>>>,
    ready: Condvar,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("queued", &lock(&self.queue).len())
            .finish()
    }
}

/// Stack of each search thread: searching needs little (the regex
/// engines allocate on the heap), and the walk and the copy are loops.
const WORKER_STACK: usize = 512 * 1024;

impl Pool {
    /// Start `workers` threads (at least one). Fails only when not even
    /// one thread can be started.
    pub fn new(workers: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        });
        let mut started = 0;
        for n in 0..workers.max(1) {
            let worker = shared.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("search-{n}"))
                .stack_size(WORKER_STACK)
                .spawn(move || work(&worker));
            match spawned {
                Ok(_) => started += 1,
                Err(err) if started == 0 => return Err(err),
                Err(err) => {
                    tracing::warn!(error = %err, started, "fewer search threads than cores");
                    break;
                }
            }
        }
        Ok(Self {
            shared,
            workers: started,
        })
    }

    /// The agent's pool, started on first use with one thread per core.
    pub fn shared() -> Result<&'static Pool> {
        static POOL: OnceLock<std::result::Result<Pool, String>> = OnceLock::new();
        POOL.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, usize::from);
            Pool::new(cores).map_err(|err| err.to_string())
        })
        .as_ref()
        .map_err(|err| Error::internal(format!("cannot start the search threads: {err}")))
    }

    /// Threads in the pool.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queue `tickets` tickets of `job`.
    pub fn submit(&self, job: &Arc<dyn Job>, tickets: usize) {
        let mut queue = lock(&self.shared.queue);
        for _ in 0..tickets {
            queue.push_back(job.clone());
        }
        drop(queue);
        if tickets == 1 {
            self.shared.ready.notify_one();
        } else {
            self.shared.ready.notify_all();
        }
    }
}

fn work(shared: &Shared) {
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.step()));
        match step {
            Ok(Step::Idle) => {}
            Ok(Step::More(extra)) => {
                let mut queue = lock(&shared.queue);
                for _ in 0..=extra {
                    queue.push_back(job.clone());
                }
                drop(queue);
                for _ in 0..extra {
                    shared.ready.notify_one();
                }
            }
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a search step panicked".to_owned());
                job.panicked(message);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// Counts down, one step at a time, recording the most steps that ran
    /// at once.
    struct Countdown {
        left: AtomicUsize,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
        done: std::sync::mpsc::SyncSender<()>,
    }

    impl Job for Countdown {
        fn step(&self) -> Step {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(1));
            self.running.fetch_sub(1, Ordering::SeqCst);
            match self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            {
                Ok(1) => {
                    let _ = self.done.send(());
                    Step::Idle
                }
                Ok(_) => Step::More(0),
                Err(_) => Step::Idle,
            }
        }
        fn panicked(&self, _: String) {}
    }

    #[test]
    fn jobs_never_take_more_threads_than_the_pool_has() {
        let pool = Pool::new(2).unwrap();
        let (done, finished) = std::sync::mpsc::sync_channel(4);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            let job: Arc<dyn Job> = Arc::new(Countdown {
                left: AtomicUsize::new(50),
                running: running.clone(),
                most: most.clone(),
                done: done.clone(),
            });
            // Each job asks for more threads than the pool has.
            pool.submit(&job, 4);
        }
        for _ in 0..3 {
            finished
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap();
        }
        assert!(most.load(Ordering::SeqCst) <= 2, "{most:?}");
        assert_eq!(pool.workers(), 2);
    }
}
