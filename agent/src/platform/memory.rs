//! Giving freed memory back to the OS: after a busy spell, and when
//! something large is dropped (server reflection's decoded descriptors,
//! about 4 MB in many small allocations, `rpc/lazy.rs`). Under a steady
//! load (1 000 streams, thousands of calls a second, connections churned)
//! the agent's heap in
//! use stays nearly flat (heaptrack: 30.4 → 30.8 MB over three minutes)
//! while its RSS climbed by 7.6 % in six minutes: glibc keeps the pages of
//! freed chunks in the middle of its arenas resident, and only
//! `malloc_trim` hands them back. Fewer arenas (`MALLOC_ARENA_MAX=2`:
//! +6.4 %) or low fixed mmap and trim thresholds (+6.8 %, since those trim
//! an arena's top only) did not help; a trim once a minute did (+3.8 %,
//! flat from the fourth minute; docs/QUALITY.md has the curves). So on
//! glibc a trim runs on the blocking pool a minute after calls arrive, and
//! then once a minute while they go on; it walks the arenas' free lists and
//! costs milliseconds. An agent nobody calls is never woken for it: the
//! trimmer waits for the next call, not for a clock. Elsewhere (musl, other
//! systems) there is nothing to do.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(CALLS.trim_after_calls(stopping, || {
        // Off the executor: a trim walks every arena under its lock.
        tokio::task::spawn_blocking(release_free_memory);
    }));
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = stopping;
}

/// Return free heap pages to the OS, where the allocator keeps them; call
/// it after dropping something large, off the executor (it walks every
/// arena), never on a hot path.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    trim();
}

/// Return the free pages of every arena to the OS; whether any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
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

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

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

    #[test]
    fn freed_pages_in_the_middle_of_the_heap_go_back_to_the_os() {
        // Blocks of 64 KiB (below the mmap threshold, so in an arena),
        // every other one freed after the last is allocated: the free
        // space (~32 MB) sits between live blocks, where no top trim
        // reaches.
        let mut blocks: Vec<Vec<u8>> = (0..1_000).map(|i| vec![i as u8; 64 * 1024]).collect();
        let kept: Vec<Vec<u8>> = blocks
            .drain(..)
            .enumerate()
            .filter_map(|(i, block)| (i % 2 == 0).then_some(block))
            .collect();
        let before = rss_kib();
        assert!(trim(), "nothing was released");
        let after = rss_kib();
        assert!(
            after + 20_000 < before,
            "RSS {before} KiB → {after} KiB: ~32 MB freed in the middle should go back"
        );
        assert_eq!(kept.len(), 500);
    }
}
