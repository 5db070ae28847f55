//! Giving freed memory back to the OS. Under a steady load (1 000 streams,
//! thousands of calls a second, connections churned) the agent's heap in
//! use stays nearly flat (heaptrack: 30.4 → 30.8 MB over three minutes)
//! while its RSS climbed by 7.6 % in six minutes: glibc keeps the pages of
//! freed chunks in the middle of its arenas resident, and only
//! `malloc_trim` hands them back. Fewer arenas (`MALLOC_ARENA_MAX=2`:
//! +6.4 %) or low fixed mmap and trim thresholds (+6.8 %, since those trim
//! an arena's top only) did not help; a trim once a minute did (+3.8 %,
//! flat from the fourth minute; docs/QUALITY.md has the curves). So on
//! glibc a trim runs once a minute on the blocking pool; it walks the
//! arenas' free lists and costs milliseconds. Elsewhere (musl, other
//! systems) there is nothing to do.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often freed memory is given back.
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// Give freed memory back to the OS every [`TRIM_EVERY`] until `stopping`.
pub fn spawn_trimmer(stopping: CancellationToken) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(TRIM_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate; start-up's memory settles first.
        ticks.tick().await;
        loop {
            tokio::select! {
                () = stopping.cancelled() => return,
                _ = ticks.tick() => {}
            }
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = (stopping, TRIM_EVERY);
}

/// Return the free pages of every arena to the OS; whether any were.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() -> bool {
    #[allow(unsafe_code)] // Declaring glibc's function; no crate wraps it.
    unsafe extern "C" {
        // glibc's, in <malloc.h>: int malloc_trim(size_t pad).
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers, is thread-safe (it locks each
    // arena) and only releases memory that no allocation holds.
    #[allow(unsafe_code)] // The one call into glibc's allocator; no crate wraps it.
    let released = unsafe { malloc_trim(0) };
    released == 1
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
