//! Handing memory the agent has freed back to the OS. glibc's malloc keeps
//! freed memory in its arenas for reuse, so dropping a large structure
//! (server reflection's decoded descriptors, about 4 MB in many small
//! allocations made on a blocking-pool thread's arena) leaves the resident
//! size where it was; `malloc_trim` returns the free pages of every arena.
//! Other C libraries and systems: nothing to do here.

/// Return free heap pages to the OS, where the allocator keeps them.
/// Takes a moment (it walks every arena): call it after dropping
/// something large, not on a hot path.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and only rearranges glibc's
    // own free lists; it is thread-safe (it locks each arena in turn).
    #[allow(unsafe_code)] // glibc's malloc_trim is only reachable through FFI.
    unsafe {
        libc::malloc_trim(0);
    }
}
