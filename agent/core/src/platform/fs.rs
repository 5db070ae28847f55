//! File-system facts that only the OS can tell: free space on the file
//! system holding a path (statvfs), and whether a file may be executed
//! (the executable bits). Where an OS has no answer, the portable fallback
//! is documented on each function.

use std::path::Path;

/// Bytes available to unprivileged users on the file system holding
/// `path`, which must exist. `None` when it cannot be read (or, off Unix,
/// is not implemented yet).
pub fn free_bytes(path: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::fs::statvfs(path)
            .ok()
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// A regular file someone may execute (any `x` bit on Unix; off Unix, any
/// regular file).
pub fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_folder_has_free_space_and_plain_files_do_not_run() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(free_bytes(dir.path()).is_some_and(|free| free > 0));
        let file = dir.path().join("plain");
        std::fs::write(&file, b"")?;
        assert!(!is_executable(&file));
        assert!(!is_executable(dir.path()));
        Ok(())
    }
}
