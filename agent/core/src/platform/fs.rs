//! File-system facts and permissions that only the OS can tell or set:
//! free space on the file system holding a path (statvfs), whether a file
//! may be executed, and the owner-only or executable modes OmniPanel gives
//! its folders, databases, lock files and installed binaries, and which
//! bytes separate the parts of a path. Where an OS has no answer, the
//! portable fallback is documented on each function.

use std::{fs, io, path::Path};

/// Whether byte `c` separates the parts of a path, as nucleo's
/// `match_paths` sees them (`/`, and a backslash too on Windows): the
/// fuzzy finder's score bound must agree with its matcher
/// (`files/find/score_bound.rs`).
pub fn is_path_separator(c: u8) -> bool {
    #[cfg(windows)]
    {
        c == b'/' || c == b'\\'
    }
    #[cfg(not(windows))]
    {
        c == b'/'
    }
}

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

/// Create `dir` and its missing parents, private to the owner (mode 0700
/// on Unix; off Unix, the folder's inherited access).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

/// Make files `options` creates private to the owner (mode 0600 on Unix;
/// off Unix, the folder's inherited access).
pub fn private_file(options: &mut fs::OpenOptions) -> &mut fs::OpenOptions {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600)
    }
    #[cfg(not(unix))]
    {
        options
    }
}

/// Restrict an existing file to its owner (mode 0600 on Unix; off Unix,
/// nothing changes).
pub fn make_private(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Which file `meta` describes and when its inode last changed: the inode
/// number and the change time in nanoseconds. A file replaced by a rename
/// (as git writes its index) gets another inode even within one tick of
/// the coarse file-system clock. Elsewhere: none (size and modification
/// time must do).
pub fn identity(meta: &fs::Metadata) -> Option<(u64, i64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((
            meta.ino(),
            meta.ctime().saturating_mul(1_000_000_000) + meta.ctime_nsec(),
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
    }
}

/// The permission bits of `path` (`0o600`…) on Unix; `None` elsewhere or
/// when it cannot be read.
pub fn permission_bits(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path)
            .ok()
            .map(|metadata| metadata.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Let everyone run `path` and only its owner change it (mode 0755 on
/// Unix; off Unix, any file may run).
pub fn make_executable(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// Create `link` as a symbolic link to `target` (a name relative to the
/// link's folder on Unix). Off Unix: `Unsupported` (packages there ship
/// no links; callers fall back to what is installed).
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)
    }
    #[cfg(not(unix))]
    {
        let _ = (target, link);
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

/// Make an open through `options` return at once on a FIFO or device
/// (`O_NONBLOCK`, and `O_NOCTTY` so a terminal never becomes the agent's):
/// a path swapped for one between a check and the open must not hang a
/// worker. Pair with [`blocking_again`] once the handle is known to be a
/// regular file. Off Unix, nothing to add.
pub fn never_block(options: &mut cap_std::fs::OpenOptions) -> &mut cap_std::fs::OpenOptions {
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOCTTY;
        options.custom_flags(flags.bits().cast_signed())
    }
    #[cfg(not(unix))]
    {
        options
    }
}

/// Make an open through `options` open a folder and nothing else, and
/// refuse a symlink as its last component (`O_DIRECTORY | O_NOFOLLOW`;
/// cap-std already refuses a symlink leading out of the project, this
/// also refuses one leading elsewhere inside it, so a walk never visits a
/// folder twice), without blocking. Off Unix, a plain open.
pub fn folder_no_follow(options: &mut cap_std::fs::OpenOptions) -> &mut cap_std::fs::OpenOptions {
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NONBLOCK
            | rustix::fs::OFlags::DIRECTORY
            | rustix::fs::OFlags::NOFOLLOW;
        options.custom_flags(flags.bits().cast_signed())
    }
    #[cfg(not(unix))]
    {
        options
    }
}

/// Make reads of a file opened with [`never_block`] wait for data again
/// (a regular file never waits; this keeps the handle's mode what a plain
/// open gives). Off Unix, nothing to do.
pub fn blocking_again(file: &cap_std::fs::File) -> io::Result<()> {
    #[cfg(unix)]
    {
        let flags = rustix::fs::fcntl_getfl(file)?;
        rustix::fs::fcntl_setfl(file, flags - rustix::fs::OFlags::NONBLOCK)?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temp_folder_has_free_space_and_plain_files_do_not_run() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(free_bytes(dir.path()).is_some_and(|free| free > 0));
        let file = dir.path().join("plain");
        fs::write(&file, b"")?;
        assert!(!is_executable(&file));
        assert!(!is_executable(dir.path()));
        make_executable(&file)?;
        assert!(is_executable(&file));
        Ok(())
    }

    #[test]
    fn private_things_are_owner_only() -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir()?;
        let folder = dir.path().join("a/b");
        create_private_dir(&folder)?;
        assert_eq!(fs::metadata(&folder)?.permissions().mode() & 0o777, 0o700);
        let created = folder.join("created");
        private_file(fs::OpenOptions::new().write(true).create(true)).open(&created)?;
        assert_eq!(fs::metadata(&created)?.permissions().mode() & 0o777, 0o600);
        let existing = folder.join("existing");
        fs::write(&existing, b"")?;
        make_private(&existing)?;
        assert_eq!(fs::metadata(&existing)?.permissions().mode() & 0o777, 0o600);
        Ok(())
    }
}
