//! Code an idle agent does not run, handed back. The release agent's code
//! is laid out by `scripts/startup-order`'s list: first what it runs while
//! serving (calls, the alert sampler, the trimmer), then, between the two
//! markers defined here, what only start-up runs (configuration, SQLite's
//! schema, the services' set-up) and what only server reflection runs
//! (tonic-reflection, prost's descriptor encoding), then shutdown's. The
//! part between the markers would stay resident for nothing, so its pages
//! are unmapped once the servers are built, and again when reflection's
//! services are dropped (`rpc/lazy.rs`; docs/BENCHMARKS.md, "Code an idle
//! agent does not run"). They stay in the page cache, where the kernel
//! drops them when it needs memory; a function there that runs again is
//! mapped back from the cache at the cost of a page fault. Builds without
//! the list (debug, another linker, other systems) leave the markers
//! anywhere and do nothing.

/// The first thing of the cold code, by its place in the list; only its
/// address is used. It returns a value of its own so that it and the end
/// are never merged into one function.
// The list names it by a linker name that no toolchain update changes.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn omnipanel_cold_code_begin() -> u32 {
    0x5354_4152
}

/// The last thing of the cold code, by its place in the list.
// The list names it by a linker name that no toolchain update changes.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn omnipanel_cold_code_end() -> u32 {
    0x454e_4421
}

/// Unmap the cold code: where the agent starts to accept calls, and after
/// reflection's services are dropped. One `madvise` of about 2 MB, some
/// tens of microseconds. Never inlined: `scripts/startup-order` cuts its
/// record where this is entered (callgrind's `--dump-before`).
#[inline(never)]
pub fn hand_back() {
    #[cfg(all(target_os = "linux", startup_code_first))]
    {
        let begin = omnipanel_cold_code_begin as *const () as usize;
        let end = omnipanel_cold_code_end as *const () as usize;
        match whole_pages(begin, end, page_size()) {
            Some((start, len)) => {
                let result = unmap_clean_pages(start, len);
                tracing::debug!(bytes = len, ?result, "cold code handed back");
            }
            None => tracing::debug!(begin, end, "no cold code to hand back"),
        }
    }
}

/// The whole pages strictly inside `begin..end`: the markers' own pages
/// are shared with the code around them, which may be in use. None when
/// there are none, or when the markers are out of order (a build laid out
/// without the list).
// Used by `hand_back` only in builds laid out by the list; tested in all.
#[cfg_attr(not(all(target_os = "linux", startup_code_first)), allow(dead_code))]
fn whole_pages(begin: usize, end: usize, page: usize) -> Option<(usize, usize)> {
    let start = begin.checked_next_multiple_of(page)?;
    let stop = end - end % page;
    (stop > start).then(|| (start, stop - start))
}

#[cfg(target_os = "linux")]
// Used by `hand_back` only in builds laid out by the list; tested in all.
#[cfg_attr(not(startup_code_first), allow(dead_code))]
fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system; no memory is passed.
    #[allow(unsafe_code)] // std has no page size; sysconf is the way.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

/// Unmap `len` bytes from `start` of a read-only file mapping (the
/// executable's code). `MADV_DONTNEED` drops the process's mappings of the
/// pages and leaves them in the page cache. `MADV_PAGEOUT` would drop them
/// from the cache too, but the kernel allows it only to the file's owner,
/// which an agent installed by root is not; the cache is the kernel's to
/// trim. Never call it on memory that was written: a private mapping's
/// written pages are discarded, not kept. (A debugger's breakpoint is such
/// a write: in a release build, one set in cold code is lost when the code
/// is handed back.)
#[cfg(target_os = "linux")]
// Used by `hand_back` only in builds laid out by the list; tested in all.
#[cfg_attr(not(startup_code_first), allow(dead_code))]
fn unmap_clean_pages(start: usize, len: usize) -> std::io::Result<()> {
    // SAFETY: the range is whole pages of the executable's code, which is
    // mapped read-only from its file and never written: dropping the
    // mappings loses nothing, and the next access maps the same bytes again.
    #[allow(unsafe_code)] // madvise is only reachable through FFI.
    let result = unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // The test maps a file of its own to unmap pages of it.
mod tests {
    use super::*;

    #[test]
    fn only_whole_pages_between_the_markers_are_taken() {
        assert_eq!(whole_pages(4096, 3 * 4096, 4096), Some((4096, 2 * 4096)));
        assert_eq!(whole_pages(100, 3 * 4096 + 5, 4096), Some((4096, 2 * 4096)));
        assert_eq!(whole_pages(100, 4096 + 5, 4096), None);
        assert_eq!(whole_pages(4000, 4100, 4096), None);
    }

    #[test]
    fn markers_out_of_order_take_nothing() {
        assert_eq!(whole_pages(5 * 4096, 4096, 4096), None);
        assert_eq!(whole_pages(usize::MAX - 10, usize::MAX, 4096), None);
    }

    /// Whether the page at `address` is mapped in this process
    /// (/proc/self/pagemap's present bit, readable without privileges).
    #[cfg(target_os = "linux")]
    fn present(address: usize) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let mut pagemap = std::fs::File::open("/proc/self/pagemap").expect("pagemap");
        let offset = (address / page_size() * 8) as u64;
        pagemap.seek(SeekFrom::Start(offset)).expect("seek");
        let mut entry = [0; 8];
        pagemap.read_exact(&mut entry).expect("read");
        u64::from_le_bytes(entry) >> 63 == 1
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn unmapped_pages_of_a_file_leave_the_process_and_read_back_the_same() {
        use std::io::Write;
        let page = page_size();
        let bytes: Vec<u8> = (0..4 * page).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().expect("temporary file");
        file.write_all(&bytes).expect("write");
        // SAFETY: a fresh private read-only mapping of a file this test
        // owns, unmapped below before the file is closed.
        let mapped = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                bytes.len(),
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                std::os::fd::AsRawFd::as_raw_fd(&file),
                0,
            )
        };
        assert_ne!(mapped, libc::MAP_FAILED);
        let base = mapped as usize;
        // SAFETY: the mapping is `bytes.len()` long and readable.
        let view = || unsafe { std::slice::from_raw_parts(mapped as *const u8, bytes.len()) };
        assert_eq!(view(), &bytes[..]);
        assert!((0..4).all(|i| present(base + i * page)));

        let (start, len) = whole_pages(base + 1, base + 3 * page + 1, page).expect("two pages");
        unmap_clean_pages(start, len).expect("madvise");
        let after: Vec<bool> = (0..4).map(|i| present(base + i * page)).collect();
        assert_eq!(after, [true, false, false, true]);
        assert_eq!(view(), &bytes[..]);

        // SAFETY: the mapping made above, not used after this.
        assert_eq!(unsafe { libc::munmap(mapped, bytes.len()) }, 0);
    }
}
