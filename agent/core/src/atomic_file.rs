//! Crash-safe file replacement: write a temporary file in the same folder,
//! fsync it, rename it over the target, fsync the folder. A reader (or the
//! next start after a power cut) sees the old file or the new one, never a
//! mix. Permissions of an existing target are kept.

use std::{
    fs::{self, File},
    io::{self, Write},
    path::Path,
};

/// Replace `path` with `contents` atomically, creating parent folders.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let existing_permissions = fs::metadata(path).ok().map(|meta| meta.permissions());
    let mut temp = tempfile::Builder::new()
        .prefix(".omnipanel-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    temp.write_all(contents)?;
    if let Some(permissions) = existing_permissions {
        temp.as_file().set_permissions(permissions)?;
    }
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    // The rename is only durable once the folder entry is on disk.
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn replaces_contents_and_keeps_permissions() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.txt");
        fs::write(&path, b"old")?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640))?;
        write_atomically(&path, b"new")?;
        assert_eq!(fs::read(&path)?, b"new");
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o640);
        let leftovers = fs::read_dir(dir.path())?.count();
        assert_eq!(leftovers, 1, "no temporary file may be left behind");
        Ok(())
    }

    #[test]
    fn creates_missing_parents() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("x/y/z.toml");
        write_atomically(&path, b"k = 1\n")?;
        assert_eq!(fs::read_to_string(&path)?, "k = 1\n");
        Ok(())
    }
}
