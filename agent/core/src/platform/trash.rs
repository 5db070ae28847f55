//! Moving a file or folder to the user's trash without ever naming it by
//! an absolute path. The caller has opened the entry's parent folder
//! through the project's sandbox; the entry is moved with `renameat` from
//! that handle into the trash's `files` folder, so a folder of the project
//! swapped for a symlink after the check cannot redirect the move. On
//! Linux this is the freedesktop trash (home trash when the project is on
//! the same file system, else `$topdir/.Trash-$uid`), written here because
//! the `trash` crate takes only absolute paths, which it canonicalises and
//! renames by name. Elsewhere the `trash` crate is used with the absolute
//! path (untested ports; see ARCHITECTURE.md).

use std::{io, path::Path};

use cap_std::fs::Dir;

// Where the home trash is, for tests on the calling thread (they cannot
// change the process's environment).
#[cfg(test)]
thread_local! {
    pub static TEST_TRASH: std::cell::RefCell<Option<std::path::PathBuf>> =
        const { std::cell::RefCell::new(None) };
}

/// Move `name`, an entry of the open folder `parent`, to the trash.
/// `original` is the absolute path it had, recorded so that the desktop
/// can restore it; on Linux it is never used to reach the entry. `root` is
/// the project's root (outside the project's control), used to find the
/// file system's top folder for a per-volume trash.
pub fn move_to_trash(parent: &Dir, name: &str, original: &Path, root: &Path) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        freedesktop::move_to_trash(parent, name, original, root)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (parent, name, root);
        trash::delete(original).map_err(io::Error::other)
    }
}

#[cfg(target_os = "linux")]
mod freedesktop {
    use std::{
        io::{self, Write},
        path::{Path, PathBuf},
    };

    use cap_std::fs::{Dir, DirBuilder, DirBuilderExt, MetadataExt, OpenOptions};
    use rustix::fs::RenameFlags;
    use rustix::io::Errno;

    /// Names tried (`name`, `name.2`, ...) before giving up on a trash
    /// full of namesakes.
    const MAX_NAMESAKES: u32 = 10_000;

    pub fn move_to_trash(parent: &Dir, name: &str, original: &Path, root: &Path) -> io::Result<()> {
        // The entry itself, not what a symlink named so points to.
        parent.symlink_metadata(name)?;
        let device = parent.dir_metadata()?.dev();
        let trash = trash_folder(device, root)?;
        let files = open_or_create(&trash, "files")?;
        let info = open_or_create(&trash, "info")?;
        for n in 1..=MAX_NAMESAKES {
            let candidate = if n == 1 {
                name.to_owned()
            } else {
                format!("{name}.{n}")
            };
            let info_name = format!("{candidate}.trashinfo");
            let mut options = OpenOptions::new();
            options.write(true).create_new(true);
            let mut record = match info.open_with(&info_name, &options) {
                Ok(file) => file,
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            };
            let written = record
                .write_all(info_text(original).as_bytes())
                .and_then(|()| record.sync_all());
            let moved = written.and_then(|()| rename_no_replace(parent, name, &files, &candidate));
            match moved {
                Ok(()) => return Ok(()),
                Err(err) => {
                    let _ = info.remove_file(&info_name);
                    if err.kind() != io::ErrorKind::AlreadyExists {
                        return Err(err);
                    }
                }
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("the trash already holds {MAX_NAMESAKES} entries named {name}"),
        ))
    }

    fn rename_no_replace(from: &Dir, name: &str, to: &Dir, target: &str) -> io::Result<()> {
        match rustix::fs::renameat_with(from, name, to, target, RenameFlags::NOREPLACE) {
            Ok(()) => Ok(()),
            // File systems without RENAME_NOREPLACE: the info file was
            // created new, so the name is ours unless someone else put a
            // file there by hand; check, then rename.
            Err(Errno::INVAL | Errno::NOSYS) => {
                if to.symlink_metadata(target).is_ok() {
                    return Err(io::Error::from(io::ErrorKind::AlreadyExists));
                }
                rustix::fs::renameat(from, name, to, target).map_err(io::Error::from)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The trash on the file system `device`: the home trash when it is
    /// there, else `.Trash-$uid` in that file system's top folder.
    fn trash_folder(device: u64, root: &Path) -> io::Result<Dir> {
        let home = home_trash()?;
        private_dirs(&home)?;
        let home = Dir::open_ambient_dir(&home, cap_std::ambient_authority())?;
        if home.dir_metadata()?.dev() == device {
            return Ok(home);
        }
        let top = top_folder(root, device)?;
        let top = Dir::open_ambient_dir(&top, cap_std::ambient_authority())?;
        let uid = rustix::process::getuid().as_raw();
        let own = open_or_create(&top, &format!(".Trash-{uid}"))?;
        let meta = own.dir_metadata()?;
        if meta.uid() != uid || meta.dev() != device {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the file system's trash folder belongs to someone else",
            ));
        }
        Ok(own)
    }

    /// The highest folder above `root` (or `root` itself) still on
    /// `device`: the mount point. `root` and its parents are outside the
    /// project, so no client can swap them.
    fn top_folder(root: &Path, device: u64) -> io::Result<PathBuf> {
        let mut top = None;
        for ancestor in root.ancestors() {
            match std::fs::metadata(ancestor) {
                Ok(meta) if std::os::unix::fs::MetadataExt::dev(&meta) == device => {
                    top = Some(ancestor.to_owned());
                }
                _ => break,
            }
        }
        top.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::Unsupported,
                "the entry is on another file system than the project",
            )
        })
    }

    fn home_trash() -> io::Result<PathBuf> {
        #[cfg(test)]
        if let Some(trash) = super::TEST_TRASH.with_borrow(Clone::clone) {
            return Ok(trash);
        }
        let absolute = |value: Option<std::ffi::OsString>| {
            value.map(PathBuf::from).filter(|path| path.is_absolute())
        };
        if let Some(data) = absolute(std::env::var_os("XDG_DATA_HOME")) {
            return Ok(data.join("Trash"));
        }
        absolute(std::env::var_os("HOME"))
            .map(|home| home.join(".local/share/Trash"))
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, "no home folder (HOME is unset)")
            })
    }

    fn private_dirs(path: &Path) -> io::Result<()> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
    }

    /// A folder of the trash, created private when missing; a symlink is
    /// not followed.
    fn open_or_create(parent: &Dir, name: &str) -> io::Result<Dir> {
        let mut builder = DirBuilder::new();
        builder.mode(0o700);
        match parent.create_dir_with(name, &builder) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
        if parent.symlink_metadata(name)?.is_symlink() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("the trash's {name} folder is a symlink"),
            ));
        }
        parent.open_dir(name)
    }

    fn info_text(original: &Path) -> String {
        use std::os::unix::ffi::OsStrExt;
        let mut encoded = String::new();
        for &byte in original.as_os_str().as_bytes() {
            if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
                encoded.push(char::from(byte));
            } else {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        }
        let now = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S");
        format!("[Trash Info]\nPath={encoded}\nDeletionDate={now}\n")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_info_file_encodes_the_path() {
            let text = info_text(Path::new("/home/me/a b/ü%.txt"));
            assert!(
                text.starts_with("[Trash Info]\nPath=/home/me/a%20b/%C3%BC%25.txt\nDeletionDate="),
                "{text}"
            );
        }
    }
}
