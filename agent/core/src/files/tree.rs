//! Whole trees: copying and removing a folder with everything below it.
//! Both are loops over a stack of their own, never recursion, so a tree of
//! any depth cannot overflow a worker's stack; every entry is reached
//! through the project's handle by a path beneath it, so below the OS
//! path limit (4096 bytes) they stop with a clear error rather than
//! following a long chain of open folders.

use std::io;

use cap_std::fs::{Dir, OpenOptions};

use crate::{
    error::{Error, ErrorKind, Result},
    files::{
        ops::{CopyStats, OverwritePolicy},
        sandbox::{self, RelPath, io_error},
    },
};

/// Copy `from` to `to` (the caller checked that neither holds the other),
/// depth first.
pub fn copy(
    dir: &Dir,
    from: &RelPath,
    to: &RelPath,
    policy: OverwritePolicy,
    stats: &mut CopyStats,
) -> Result<()> {
    let mut pending = vec![(from.clone(), to.clone())];
    while let Some((from, to)) = pending.pop() {
        let children = copy_one(dir, &from, &to, policy, stats)?;
        // Reversed, so the stack hands them out in listing order.
        pending.extend(children.into_iter().rev());
    }
    Ok(())
}

/// Copy one entry; for a folder, create it and return its children.
fn copy_one(
    dir: &Dir,
    from: &RelPath,
    to: &RelPath,
    policy: OverwritePolicy,
    stats: &mut CopyStats,
) -> Result<Vec<(RelPath, RelPath)>> {
    let meta = dir
        .symlink_metadata(from.as_path())
        .map_err(|e| io_error(from, "copy", e))?;
    let target = match dir.symlink_metadata(to.as_path()) {
        Ok(meta) => Some(meta),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error(to, "copy to", err)),
    };
    if meta.is_dir() {
        match &target {
            Some(t) if !t.is_dir() => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{to} exists and is not a folder"),
                ));
            }
            Some(_) if policy == OverwritePolicy::Fail => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{to} already exists; choose overwrite REPLACE or SKIP"),
                ));
            }
            Some(_) => {}
            None => dir
                .create_dir(to.as_path())
                .map_err(|e| io_error(to, "create folder", e))?,
        }
        let entries = dir
            .read_dir(from.as_path())
            .map_err(|e| io_error(from, "list", e))?;
        let mut children = Vec::new();
        for item in entries {
            let item = item.map_err(|e| io_error(from, "list", e))?;
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            children.push((from.join(&name), to.join(&name)));
        }
        return Ok(children);
    }
    if target.is_some() {
        match policy {
            OverwritePolicy::Fail => {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("{to} already exists; choose overwrite REPLACE or SKIP"),
                ));
            }
            OverwritePolicy::Skip => {
                stats.skipped += 1;
                return Ok(Vec::new());
            }
            OverwritePolicy::Replace => {
                dir.remove_file(to.as_path())
                    .map_err(|e| io_error(to, "replace", e))?;
            }
        }
    }
    if meta.is_symlink() {
        let link = dir
            .read_link_contents(from.as_path())
            .map_err(|e| io_error(from, "read link", e))?;
        dir.symlink_contents(&link, to.as_path())
            .map_err(|e| io_error(to, "create link", e))?;
        stats.files += 1;
        return Ok(Vec::new());
    }
    if !meta.is_file() {
        return Err(Error::failed_precondition(format!(
            "{from} is not a regular file; it cannot be copied"
        )));
    }
    stats.bytes += copy_file(dir, from, to)?;
    stats.files += 1;
    Ok(Vec::new())
}

/// Copy a regular file's bytes and permissions. The source is opened
/// without blocking and checked on its handle (a FIFO swapped in is
/// refused); the target is created new, so a symlink put in its place is
/// never followed.
fn copy_file(dir: &Dir, from: &RelPath, to: &RelPath) -> Result<u64> {
    let (mut source, meta) = sandbox::open_regular(dir, from, "copy")?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    let mut target = dir
        .open_with(to.as_path(), &options)
        .map_err(|e| io_error(to, "copy to", e))?;
    let bytes = io::copy(&mut source, &mut target).map_err(|e| io_error(to, "copy to", e))?;
    target
        .set_permissions(meta.permissions())
        .map_err(|e| io_error(to, "copy to", e))?;
    Ok(bytes)
}

/// Remove `path` and everything below it, depth first. Symlinks are
/// removed, never followed. Blocking.
pub fn remove(dir: &Dir, path: &RelPath) -> io::Result<()> {
    // (path, whether its entries are already removed)
    let mut pending = vec![(path.clone(), false)];
    while let Some((current, emptied)) = pending.pop() {
        if emptied {
            dir.remove_dir(current.as_path())?;
            continue;
        }
        if !dir.symlink_metadata(current.as_path())?.is_dir() {
            dir.remove_file(current.as_path())?;
            continue;
        }
        pending.push((current.clone(), true));
        let folder = sandbox::open_folder(dir, &current)?;
        for item in folder.entries()? {
            let item = item?;
            match item.file_name().to_str() {
                Some(name) => pending.push((current.join(name), false)),
                // Names the API cannot express are removed through the
                // folder's handle (cap-std's own removal, recursive, but
                // only for such rare names).
                None if item.file_type()?.is_dir() => folder.remove_dir_all(item.file_name())?,
                None => folder.remove_file(item.file_name())?,
            }
        }
    }
    Ok(())
}
