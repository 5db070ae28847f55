//! Giving freed memory back to the OS: after a busy spell, and when
//! something large is dropped (server reflection's decoded descriptors,
//! about 4 MB in many small allocations, `rpc/lazy.rs`).
//!
//! On Linux the agent's Rust heap is jemalloc ([`Allocator`]). Under a steady
//! load (1 000 streams, thousands of calls a second, connections churned)
//! glibc's malloc fragmented: the heap in use stayed nearly flat
//! (heaptrack: 30.4 → 30.8 MB over three minutes) while RSS climbed, +7.6 %
//! in six minutes, in the arenas of the two async workers, whose pages each
//! kept a live chunk among freed ones. Trimming glibc once a minute halved
//! that but still left +5.3 % in ten minutes; fewer arenas and fixed
//! thresholds did not help; mimalloc was worse. jemalloc grew +2.3 % in ten
//! minutes (docs/QUALITY.md has the curves). It returns unused pages by
//! itself only as allocations go on, so an agent that falls quiet would
//! keep them: a purge of every arena runs on the blocking pool a minute
//! after calls arrive, and then once a minute while they go on. Before it,
//! each async worker flushes its cache of freed blocks (jemalloc keeps
//! them per thread, and a worker that falls idle keeps them, with the
//! pages they sit in, until it allocates again). The pass also trims
//! glibc's heap, which the C libraries (SQLite, libgit2) still use, and
//! also runs once start-up is over and after large drops. An agent nobody
//! calls is never woken for it: the trimmer waits for the next call, not
//! for a clock. Elsewhere (macOS, Windows) there is nothing to do.

#[cfg(target_os = "linux")]
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

#[cfg(target_os = "linux")]
use omnipanel_core::sync::lock;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The allocator the agent binary installs (`main.rs`): jemalloc on Linux,
/// the system's elsewhere.
#[cfg(target_os = "linux")]
pub type Allocator = tikv_jemallocator::Jemalloc;
/// The allocator the agent binary installs (`main.rs`): jemalloc on Linux,
/// the system's elsewhere.
#[cfg(not(target_os = "linux"))]
pub type Allocator = std::alloc::System;

/// The one value of [`Allocator`].
#[cfg(target_os = "linux")]
pub const ALLOCATOR: Allocator = tikv_jemallocator::Jemalloc;
/// The one value of [`Allocator`].
#[cfg(not(target_os = "linux"))]
pub const ALLOCATOR: Allocator = std::alloc::System;

/// How long after the first call of a busy spell freed memory is given
/// back, and how often while calls go on.
const TRIM_AFTER: Duration = Duration::from_secs(60);

/// Calls since the last trim was armed: a flag and the trimmer's wake-up.
struct Calls {
    /// Whether a call has come since the last trim was armed.
    since_trim: AtomicBool,
    /// Wakes the trimmer at the first call after a trim.
    first: Notify,
}

impl Calls {
    const fn new() -> Self {
        Self {
            since_trim: AtomicBool::new(false),
            first: Notify::const_new(),
        }
    }

    fn note(&self) {
        if !self.since_trim.swap(true, Ordering::AcqRel) {
            self.first.notify_one();
        }
    }

    /// Runs `trim` [`TRIM_AFTER`] after the first call following the last
    /// trim, until `stopping`; sleeps, with no timer, while no call comes.
    async fn trim_after_calls(&self, stopping: CancellationToken, trim: impl Fn()) {
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                () = self.first.notified() => {}
            }
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(TRIM_AFTER) => {}
            }
            // Calls from here on arm the next trim.
            self.since_trim.store(false, Ordering::Release);
            trim();
        }
    }
}

/// The agent's calls, as the RPC layers report them.
static CALLS: Calls = Calls::new();

/// A call has arrived (the outermost RPC layer calls this once per
/// request): arms the next trim if none is armed. One atomic swap on the
/// hot path.
pub fn note_call() {
    CALLS.note();
}

/// Give freed memory back to the OS [`TRIM_AFTER`] after calls arrive,
/// until `stopping`.
pub fn spawn_trimmer(stopping: CancellationToken) {
    #[cfg(target_os = "linux")]
    tokio::spawn(CALLS.trim_after_calls(stopping, || {
        // Off the executor: both walk every arena under its lock.
        tokio::task::spawn_blocking(release_free_memory);
    }));
    #[cfg(not(target_os = "linux"))]
    let _ = stopping;
}

/// Return free heap pages to the OS, where the allocators keep them; call
/// it after dropping something large, on the blocking pool (it walks
/// every arena and waits for the async workers), never on a hot path.
pub fn release_free_memory() {
    #[cfg(target_os = "linux")]
    {
        flush_thread_cache();
        flush_worker_caches();
        purge_jemalloc();
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    trim_glibc();
}

/// Start-up is over: return what it freed. It ran on the thread that
/// calls this (the runtime's `block_on`), which keeps the blocks it freed
/// in its own cache while it waits in the accept loop; the rest is
/// released from the blocking pool.
pub fn release_start_up_memory() {
    #[cfg(target_os = "linux")]
    {
        flush_thread_cache();
        tokio::task::spawn_blocking(release_free_memory);
    }
}

/// How long an async worker waits for the others when their caches are
/// flushed. They are idle when a release runs, so they meet within
/// microseconds; one held up by a long poll must not hold the others
/// longer than this, and is flushed at a later release.
#[cfg(target_os = "linux")]
const MEETING_WAIT: Duration = Duration::from_millis(100);

/// Flush the cache of every async worker of the current runtime, called
/// from outside them (the blocking pool); how many workers flushed
/// within [`MEETING_WAIT`].
///
/// A worker falls idle with the blocks its tasks freed in its cache and
/// keeps them until it allocates again: after a reflection session that
/// kept about 1 MB from the purge (docs/BENCHMARKS.md, "Reflection
/// memory"). Tokio cannot run a task on a chosen worker, so one task per
/// worker is spawned, and each waits until all have flushed: a worker
/// held by one cannot run another, so the tasks spread over every worker.
#[cfg(target_os = "linux")]
fn flush_worker_caches() -> usize {
    on_every_worker(MEETING_WAIT, || {
        flush_thread_cache();
    })
}

/// Run `action` once on each async worker of the current runtime, from
/// outside them, as [`flush_worker_caches`] says; how many ran it within
/// `wait`.
#[cfg(target_os = "linux")]
fn on_every_worker(wait: Duration, action: impl Fn() + Clone + Send + 'static) -> usize {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return 0;
    };
    let workers = runtime.metrics().num_workers();
    let meeting = Arc::new(Meeting::new(workers));
    for _ in 0..workers {
        let meeting = meeting.clone();
        let action = action.clone();
        runtime.spawn(async move {
            action();
            meeting.arrive();
            // Blocks this worker on purpose, for at most `wait`: see above.
            meeting.wait_for_all(wait);
        });
    }
    meeting.wait_for_all(wait)
}

/// Workers arriving at a flush, and a way to wait until all have.
#[cfg(target_os = "linux")]
struct Meeting {
    arrived: Mutex<usize>,
    changed: Condvar,
    expected: usize,
}

#[cfg(target_os = "linux")]
impl Meeting {
    fn new(expected: usize) -> Self {
        Self {
            arrived: Mutex::new(0),
            changed: Condvar::new(),
            expected,
        }
    }

    fn arrive(&self) {
        *lock(&self.arrived) += 1;
        self.changed.notify_all();
    }

    /// Wait until all have arrived or `wait` has passed; how many had.
    fn wait_for_all(&self, wait: Duration) -> usize {
        let arrived = lock(&self.arrived);
        let (arrived, _) = self
            .changed
            .wait_timeout_while(arrived, wait, |arrived| *arrived < self.expected)
            .unwrap_or_else(PoisonError::into_inner);
        *arrived
    }
}

/// Hand this thread's cache of freed blocks back to their arenas, so the
/// purge that follows can return the pages they sit in; whether jemalloc
/// accepted the request. jemalloc keeps up to 200 freed blocks of each
/// small size per thread for reuse, and a thread that frees something
/// large in many small blocks and then falls idle keeps them, pinning
/// their pages, until it allocates again.
#[cfg(target_os = "linux")]
fn flush_thread_cache() -> bool {
    void_mallctl(c"thread.tcache.flush")
}

/// Return the unused pages of every jemalloc arena to the OS at once,
/// rather than as later allocations let its decay do it; whether jemalloc
/// accepted the request.
#[cfg(target_os = "linux")]
fn purge_jemalloc() -> bool {
    // `arena.<i>.purge` with i = MALLCTL_ARENAS_ALL (4096): every arena.
    void_mallctl(c"arena.4096.purge")
}

/// Run a jemalloc control that takes and returns no value; whether
/// jemalloc accepted it.
#[cfg(target_os = "linux")]
fn void_mallctl(name: &std::ffi::CStr) -> bool {
    // SAFETY: a void mallctl: a NUL-terminated name and no old or new
    // value (jemalloc refuses one with EPERM); each control named here
    // locks what it touches.
    #[allow(unsafe_code)] // jemalloc's control interface is only reachable through FFI.
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    status == 0
}

/// Return the free pages of every glibc arena to the OS; whether any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_glibc() -> bool {
    // SAFETY: malloc_trim takes no pointers, is thread-safe (it locks each
    // arena) and only releases memory that no allocation holds.
    #[allow(unsafe_code)] // glibc's malloc_trim is only reachable through FFI.
    let released = unsafe { libc::malloc_trim(0) };
    released == 1
}

#[cfg(test)]
mod calls_tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_trim_follows_calls_and_none_comes_while_nobody_calls() {
        static TEST_CALLS: Calls = Calls::new();
        let trims = Arc::new(AtomicUsize::new(0));
        let stopping = CancellationToken::new();
        let counted = trims.clone();
        let trimmer = tokio::spawn(TEST_CALLS.trim_after_calls(stopping.clone(), move || {
            counted.fetch_add(1, Ordering::SeqCst);
        }));
        let count = || trims.load(Ordering::SeqCst);

        // Nobody calls: an hour passes without a trim (and without a
        // timer: paused time only advances to armed ones).
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(count(), 0);

        // A busy spell: one trim a minute after its first call, however
        // many calls.
        for _ in 0..1_000 {
            TEST_CALLS.note();
        }
        tokio::time::sleep(TRIM_AFTER - Duration::from_secs(1)).await;
        assert_eq!(count(), 0, "not before a minute");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(count(), 1);

        // Calls go on: once more a minute later; then silence again.
        TEST_CALLS.note();
        tokio::time::sleep(TRIM_AFTER + Duration::from_secs(1)).await;
        assert_eq!(count(), 2);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert_eq!(count(), 2, "no trim without calls");

        stopping.cancel();
        trimmer.await.expect("the trimmer ends when stopping");
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::alloc::{GlobalAlloc, Layout};

    use super::*;

    /// Held by each test that reads RSS, so one's frees do not land in
    /// another's before and after.
    static RSS_READERS: Mutex<()> = Mutex::new(());

    /// RSS of this process in KiB, from /proc.
    fn rss_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmRSS:"))
                    .and_then(|rest| rest.trim().trim_end_matches(" kB").trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Blocks of 64 KiB, every other one freed after the last is
    /// allocated: the free space (~32 MB) sits between live blocks, where
    /// no trim of a heap's top reaches. Asserts that `release` gives it
    /// back.
    fn freed_pages_between_live_ones_go_back(
        alloc: impl Fn() -> Box<dyn FnOnce()>,
        release: impl Fn() -> bool,
    ) {
        let _alone = RSS_READERS.lock().unwrap_or_else(PoisonError::into_inner);
        let mut frees: Vec<Box<dyn FnOnce()>> = (0..1_000).map(|_| alloc()).collect();
        let mut kept = Vec::new();
        for (i, free) in frees.drain(..).enumerate() {
            if i % 2 == 0 {
                kept.push(free);
            } else {
                free();
            }
        }
        let before = rss_kib();
        assert!(release(), "the allocator refused to release");
        let after = rss_kib();
        assert!(
            after + 20_000 < before,
            "RSS {before} KiB → {after} KiB: ~32 MB freed in the middle should go back"
        );
        for free in kept {
            free();
        }
    }

    const BLOCK: usize = 64 * 1024;

    #[cfg(target_env = "gnu")]
    #[test]
    fn glibc_gives_freed_pages_in_the_middle_of_its_heap_back() {
        // The tests' allocator is the system one: glibc. 64 KiB is below
        // its mmap threshold, so the blocks share an arena.
        freed_pages_between_live_ones_go_back(
            || {
                let block = vec![7u8; BLOCK];
                Box::new(move || drop(block))
            },
            trim_glibc,
        );
    }

    #[test]
    fn every_async_worker_runs_the_action_once() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(3)
            .build()
            .expect("a runtime");
        let ran_on = Arc::new(Mutex::new(Vec::new()));
        let recorded = ran_on.clone();
        // Generous: the workers are idle and meet at once; only a badly
        // overloaded machine comes near it.
        let wait = Duration::from_secs(60);
        let arrived = runtime
            .block_on(runtime.spawn_blocking(move || {
                on_every_worker(wait, move || {
                    lock(&recorded).push(std::thread::current().id());
                })
            }))
            .expect("the release ran");
        assert_eq!(arrived, 3);
        let mut threads = std::mem::take(&mut *lock(&ran_on));
        threads.sort_unstable_by_key(|id| format!("{id:?}"));
        threads.dedup();
        assert_eq!(threads.len(), 3, "each worker once: {threads:?}");
    }

    #[test]
    fn outside_a_runtime_there_are_no_workers_to_flush() {
        assert_eq!(flush_worker_caches(), 0);
        assert!(flush_thread_cache(), "jemalloc refused a flush");
    }

    #[test]
    fn jemalloc_gives_freed_pages_back_before_its_decay_would() {
        // jemalloc is the agent binary's allocator, not the tests': call it
        // directly. Freed pages stay until its decay (ten seconds, and only
        // as allocations go on) unless purged.
        let layout = Layout::from_size_align(BLOCK, 16).expect("a valid layout");
        freed_pages_between_live_ones_go_back(
            || {
                // SAFETY: a non-zero size; the block is written within its
                // bounds and freed once, with the same layout, by the
                // closure returned.
                #[allow(unsafe_code)] // calling an allocator directly is unsafe by nature.
                unsafe {
                    let block = tikv_jemallocator::Jemalloc.alloc(layout);
                    assert!(!block.is_null(), "jemalloc is out of memory");
                    block.write_bytes(7, BLOCK);
                    let address = block as usize;
                    Box::new(move || {
                        tikv_jemallocator::Jemalloc.dealloc(address as *mut u8, layout);
                    })
                }
            },
            purge_jemalloc,
        );
    }
}
