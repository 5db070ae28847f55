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
//! after calls arrive, and then once a minute while they go on. The same
//! pass trims glibc's heap, which the C libraries (SQLite, libgit2) still
//! use. An agent nobody calls is never woken for it: the
//! trimmer waits for the next call, not for a clock. Elsewhere (macOS,
//! Windows) there is nothing to do.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

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
/// it after dropping something large, off the executor (it walks every
/// arena), never on a hot path.
pub fn release_free_memory() {
    #[cfg(target_os = "linux")]
    purge_jemalloc();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    trim_glibc();
}

/// Return the unused pages of every jemalloc arena to the OS at once,
/// rather than as later allocations let its decay do it; whether jemalloc
/// accepted the request.
#[cfg(target_os = "linux")]
fn purge_jemalloc() -> bool {
    // `arena.<i>.purge` with i = MALLCTL_ARENAS_ALL (4096): every arena.
    const PURGE_ALL: &std::ffi::CStr = c"arena.4096.purge";
    // SAFETY: a void mallctl: a NUL-terminated name and no old or new
    // value (jemalloc refuses one with EPERM); it locks what it purges.
    #[allow(unsafe_code)] // jemalloc's control interface is only reachable through FFI.
    let status = unsafe {
        tikv_jemalloc_sys::mallctl(
            PURGE_ALL.as_ptr(),
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
    use std::{
        alloc::{GlobalAlloc, Layout},
        sync::{Mutex, PoisonError},
    };

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
