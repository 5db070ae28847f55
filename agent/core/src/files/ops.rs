//! File operations inside a project, all through the project's capability
//! handle: listing, stat, ranged reads with binary detection and a size
//! limit, atomic writes (temporary file in the same folder, fsync, rename;
//! permissions kept; an expected version refuses lost updates; create-only
//! never replaces), folders, moves, recursive copies with an explicit
//! overwrite policy, and deletes to the OS trash unless a permanent delete
//! is asked for. Everything blocking runs on the blocking pool.

use std::{
    io::{self, Read, Seek, SeekFrom, Write},
    sync::Arc,
};

use cap_std::fs::{Dir, Metadata, MetadataExt, OpenOptions};

use crate::reason::Reason;
use crate::{
    error::{Error, ErrorKind, Result},
    files::{
        OpenProject,
        ignore_rules::{IgnoreRules, Verdict},
        sandbox::{self, RelPath, io_error, version_of},
        tree,
    },
    platform,
};

/// What kind of entry a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Regular file.
    File,
    /// Folder.
    Directory,
    /// Symbolic link (not followed).
    Symlink,
    /// Device, socket, FIFO...
    Other,
}

/// A file or folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path relative to the project root.
    pub path: String,
    /// Last component.
    pub name: String,
    /// Kind.
    pub kind: EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ms since the epoch.
    pub modified_ms: i64,
    /// Unix permission bits.
    pub mode: u32,
    /// Version for optimistic concurrency.
    pub version: String,
    /// Name starts with a dot.
    pub hidden: bool,
    /// Ignored by .gitignore or the always-ignored folders.
    pub ignored: bool,
    /// Target of a symlink.
    pub symlink_target: Option<String>,
}

/// How ListDirectory sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortBy {
    /// Folders first, then by name.
    #[default]
    Name,
    /// Newest first (oldest with `descending`... reversed).
    Modified,
    /// Largest first.
    Size,
}

/// ListDirectory options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListOptions {
    /// Include names starting with a dot.
    pub include_hidden: bool,
    /// Include ignored entries.
    pub include_ignored: bool,
    /// Order.
    pub sort: SortBy,
    /// Reverse the order.
    pub descending: bool,
}

/// WriteFile options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteOptions {
    /// Create missing parent folders.
    pub create_parents: bool,
    /// Fail if the file exists.
    pub create_only: bool,
    /// Refuse (ABORTED) unless the file is at this version.
    pub expected_version: Option<String>,
}

/// What Copy does when the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverwritePolicy {
    /// Fail.
    #[default]
    Fail,
    /// Replace files (folders are merged).
    Replace,
    /// Keep existing files.
    Skip,
}

fn millis(meta: &Metadata) -> i64 {
    meta.mtime().saturating_mul(1000) + meta.mtime_nsec() / 1_000_000
}

fn kind_of(meta: &Metadata) -> EntryKind {
    if meta.is_symlink() {
        EntryKind::Symlink
    } else if meta.is_dir() {
        EntryKind::Directory
    } else if meta.is_file() {
        EntryKind::File
    } else {
        EntryKind::Other
    }
}

fn entry(dir: &Dir, path: &RelPath, meta: &Metadata, ignored: bool) -> FileEntry {
    let kind = kind_of(meta);
    let symlink_target = (kind == EntryKind::Symlink)
        .then(|| dir.read_link_contents(path.as_path()).ok())
        .flatten()
        .map(|t| t.display().to_string());
    let name = path.name().to_owned();
    FileEntry {
        path: path.as_str().to_owned(),
        hidden: name.starts_with('.'),
        name,
        kind,
        size: meta.size(),
        modified_ms: millis(meta),
        mode: meta.mode() & 0o7777,
        version: version_of(meta),
        ignored,
        symlink_target,
    }
}

async fn blocking<T, F>(project: &Arc<OpenProject>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&OpenProject) -> Result<T> + Send + 'static,
{
    let project = project.clone();
    tokio::task::spawn_blocking(move || f(&project)).await?
}

/// Rules for deciding "ignored" in listings: always-ignored folders and
/// the .gitignore files from the root down to `dir`.
fn rules_for(project: &OpenProject, dir: &RelPath) -> IgnoreRules {
    let mut rules = IgnoreRules::new(&project.settings().always_ignored);
    let mut current = RelPath::root();
    rules.load(project.dir(), &current);
    for part in dir.as_str().split('/').filter(|p| !p.is_empty()) {
        current = current.join(part);
        rules.load(project.dir(), &current);
    }
    rules
}

/// List a folder.
pub async fn list_directory(
    project: &Arc<OpenProject>,
    raw: &str,
    options: ListOptions,
) -> Result<Vec<FileEntry>> {
    let path = project.check("path", raw)?;
    blocking(project, move |project| {
        let dir = project.dir();
        let rules = rules_for(project, &path);
        let entries = dir
            .read_dir(path.as_path())
            .map_err(|e| io_error(&path, "list", e))?;
        let mut out = Vec::new();
        for item in entries {
            let item = item.map_err(|e| io_error(&path, "list", e))?;
            let Some(name) = item.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let child = path.join(&name);
            let Ok(meta) = dir.symlink_metadata(child.as_path()) else {
                continue;
            };
            let ignored = rules.verdict(&child, meta.is_dir()) != Verdict::Keep;
            if (!options.include_hidden && name.starts_with('.'))
                || (!options.include_ignored && ignored)
            {
                continue;
            }
            out.push(entry(dir, &child, &meta, ignored));
        }
        match options.sort {
            SortBy::Name => out.sort_by(|a, b| {
                (b.kind == EntryKind::Directory)
                    .cmp(&(a.kind == EntryKind::Directory))
                    .then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase()))
            }),
            SortBy::Modified => out.sort_by_key(|e| std::cmp::Reverse(e.modified_ms)),
            SortBy::Size => out.sort_by_key(|e| std::cmp::Reverse(e.size)),
        }
        if options.descending {
            out.reverse();
        }
        Ok(out)
    })
    .await
}

/// Describe one path (a symlink itself, not its target).
pub async fn stat(project: &Arc<OpenProject>, raw: &str) -> Result<FileEntry> {
    let path = project.check("path", raw)?;
    blocking(project, move |project| {
        let meta = project
            .dir()
            .symlink_metadata(path.as_path())
            .map_err(|e| io_error(&path, "stat", e))?;
        let rules = rules_for(project, &path.parent());
        let ignored = rules.verdict(&path, meta.is_dir()) != Verdict::Keep;
        Ok(entry(project.dir(), &path, &meta, ignored))
    })
    .await
}

/// Bytes looked at to decide whether a file is binary.
const BINARY_SNIFF: usize = 8192;
/// Bytes per ReadFile message.
pub const READ_CHUNK: usize = 64 * 1024;

/// An open file being read.
#[derive(Debug)]
pub struct FileRead {
    /// The file's description.
    pub entry: FileEntry,
    /// Whether it looks binary (a NUL in its first 8 KiB).
    pub binary: bool,
    /// Where the read starts.
    pub offset: u64,
    /// Bytes that will be read.
    pub length: u64,
    file: cap_std::fs::File,
}

impl FileRead {
    /// Read the range in chunks on the calling (blocking) thread, handing
    /// each to `sink`; stops when `sink` returns false.
    pub fn pump(mut self, mut sink: impl FnMut(u64, Vec<u8>) -> bool) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(self.offset))?;
        let mut left = self.length;
        let mut position = self.offset;
        while left > 0 {
            let want = usize::try_from(left.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK);
            let mut buffer = vec![0; want];
            let read = self.file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            buffer.truncate(read);
            if !sink(position, buffer) {
                break;
            }
            position += read as u64;
            left -= read as u64;
        }
        Ok(())
    }
}

/// Open a file for a ranged read; `length` 0 means "to the end".
pub async fn open_read(
    project: &Arc<OpenProject>,
    raw: &str,
    offset: u64,
    length: u64,
) -> Result<FileRead> {
    let path = project.check("path", raw)?;
    let limit = project.settings().max_read_mb.saturating_mul(1024 * 1024);
    blocking(project, move |project| {
        let dir = project.dir();
        // Opened first and checked on the handle: a path swapped for a
        // FIFO or device after any check cannot block this thread.
        let (mut file, meta) = sandbox::open_regular(dir, &path, "read")?;
        let size = meta.size();
        if offset > size {
            return Err(Error::invalid_argument(
                "offset",
                format!("{offset} is past the end of {path} ({size} bytes)"),
            ));
        }
        let available = size - offset;
        let length = if length == 0 { available } else { length.min(available) };
        if length > limit {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "{path}: reading {length} bytes exceeds the limit of {limit} (files.max_read_mb); read it in parts with offset and length"
                ),
            ));
        }
        let mut head = vec![0; BINARY_SNIFF.min(usize::try_from(size).unwrap_or(BINARY_SNIFF))];
        let sniffed = file.read(&mut head).map_err(|e| io_error(&path, "read", e))?;
        let binary = head[..sniffed].contains(&0);
        let rules = rules_for(project, &path.parent());
        let ignored = rules.verdict(&path, false) != Verdict::Keep;
        Ok(FileRead {
            entry: entry(dir, &path, &meta, ignored),
            binary,
            offset,
            length,
            file,
        })
    })
    .await
}

/// A temporary named for this writer, so that one left by a kill is
/// removed by the next walk of the project (`atomic_file`).
fn temp_name(name: &str) -> Result<String> {
    crate::atomic_file::temp_name(name).map_err(|err| Error::internal(err.to_string()))
}

/// Write atomically under the project's write lock. `field` names the path
/// field in errors.
pub async fn write_file(
    project: &Arc<OpenProject>,
    field: &str,
    raw: &str,
    content: Vec<u8>,
    options: WriteOptions,
) -> Result<FileEntry> {
    let path = project.check_writable(field, raw)?;
    if path.is_root() {
        return Err(Error::invalid_argument(
            field,
            "name a file, not the project root",
        ));
    }
    let field = field.to_owned();
    let _guard = project.lock_writes().await;
    blocking(project, move |project| {
        sandbox::refuse_git_folder_through_links(project.dir(), &field, &path)?;
        write_blocking(project.dir(), &path, &content, &options)
    })
    .await
}

/// Create `path` and its missing parents. When that fails because a part
/// of the path exists but is not a folder, say which part and why: a
/// symlink (cap-std never follows one out of the project) is refused as
/// leading outside; a file is in the way. Blocking.
fn create_folders(dir: &Dir, path: &RelPath) -> Result<()> {
    let err = match dir.create_dir_all(path.as_path()) {
        Ok(()) => return Ok(()),
        Err(err) => err,
    };
    if matches!(
        err.kind(),
        io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory
    ) {
        let mut prefix = RelPath::root();
        for part in path.as_str().split('/') {
            prefix = prefix.join(part);
            let Ok(meta) = dir.symlink_metadata(prefix.as_path()) else {
                break;
            };
            if meta.is_symlink() {
                return Err(Error::permission_denied(format!(
                    "cannot create folder {path}: {prefix} is a symlink, and folders are not created through one (it may lead outside the project)"
                ))
                .with_reason(Reason::OutsideProjectOrDenied));
            }
            if !meta.is_dir() {
                return Err(Error::failed_precondition(format!(
                    "cannot create folder {path}: {prefix} is a file, not a folder"
                )));
            }
        }
    }
    Err(io_error(path, "create folder", err))
}

/// The write itself; the caller holds the write lock. Blocking.
pub fn write_blocking(
    dir: &Dir,
    path: &RelPath,
    content: &[u8],
    options: &WriteOptions,
) -> Result<FileEntry> {
    let parent = path.parent();
    let name = path.name();
    if options.create_parents && !parent.is_root() {
        create_folders(dir, &parent)?;
    }
    let folder = dir
        .open_dir(parent.as_path())
        .map_err(|e| io_error(&parent, "open", e))?;
    let existing = match folder.symlink_metadata(name) {
        Ok(meta) => Some(meta),
        Err(err) if err.kind() == io::ErrorKind::NotFound => None,
        Err(err) => return Err(io_error(path, "write", err)),
    };
    if let Some(meta) = &existing {
        if meta.is_symlink() {
            return Err(Error::failed_precondition(format!(
                "{path} is a symlink; write to the file it points to instead"
            )));
        }
        if !meta.is_file() {
            return Err(Error::failed_precondition(format!(
                "{path} exists and is not a regular file"
            )));
        }
        if options.create_only {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{path} already exists (create_only)"),
            ));
        }
    }
    if let Some(expected) = &options.expected_version {
        let current = existing.as_ref().map(version_of);
        if current.as_deref() != Some(expected.as_str()) {
            return Err(Error::new(
                ErrorKind::Aborted,
                match current {
                    Some(current) => format!(
                        "{path} changed since version {expected} (now {current}); re-read it and apply your change again"
                    ),
                    None => format!("{path} was deleted since version {expected}"),
                },
            )
            .with_reason(Reason::VersionConflict));
        }
    }
    let temp = temp_name(name)?;
    let written = (|| -> io::Result<()> {
        let mut options_open = OpenOptions::new();
        options_open.write(true).create_new(true);
        let mut file = folder.open_with(&temp, &options_open)?;
        file.write_all(content)?;
        if let Some(meta) = &existing {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        Ok(())
    })();
    let placed = written.and_then(|()| {
        if options.create_only {
            // Linking fails if the name exists, so a file created meanwhile
            // by someone else is never replaced.
            folder.hard_link(&temp, &folder, name)?;
            folder.remove_file(&temp)
        } else {
            folder.rename(&temp, &folder, name)
        }
    });
    if let Err(err) = placed {
        let _ = folder.remove_file(&temp);
        return Err(io_error(path, "write", err));
    }
    // The rename is durable once the folder entry is on disk.
    if let Ok(handle) = folder.try_clone() {
        let _ = handle.into_std_file().sync_all();
    }
    let meta = folder
        .symlink_metadata(name)
        .map_err(|e| io_error(path, "stat", e))?;
    Ok(entry(dir, path, &meta, false))
}

/// Create a folder (and its parents).
pub async fn create_directory(project: &Arc<OpenProject>, raw: &str) -> Result<FileEntry> {
    let path = project.check_writable("path", raw)?;
    let _guard = project.lock_writes().await;
    blocking(project, move |project| {
        let dir = project.dir();
        sandbox::refuse_git_folder_through_links(dir, "path", &path)?;
        create_folders(dir, &path)?;
        let meta = dir
            .symlink_metadata(path.as_path())
            .map_err(|e| io_error(&path, "stat", e))?;
        if !meta.is_dir() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("{path} exists and is not a folder"),
            ));
        }
        Ok(entry(dir, &path, &meta, false))
    })
    .await
}

fn exists(dir: &Dir, path: &RelPath) -> io::Result<bool> {
    match dir.symlink_metadata(path.as_path()) {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Move (rename) a file or folder. Blocking; caller holds the write lock.
pub fn move_blocking(dir: &Dir, from: &RelPath, to: &RelPath, overwrite: bool) -> Result<()> {
    if from.is_root() || to.is_root() {
        return Err(Error::invalid_argument(
            "from",
            "the project root cannot be moved",
        ));
    }
    if to.starts_with(from) {
        return Err(Error::invalid_argument(
            "to",
            format!("cannot move {from} into itself ({to})"),
        ));
    }
    dir.symlink_metadata(from.as_path())
        .map_err(|e| io_error(from, "move", e))?;
    if !overwrite && exists(dir, to).map_err(|e| io_error(to, "move to", e))? {
        return Err(Error::new(
            ErrorKind::AlreadyExists,
            format!("{to} already exists; pass overwrite to replace it"),
        ));
    }
    dir.rename(from.as_path(), dir, to.as_path())
        .map_err(|e| io_error(from, &format!("move to {to}:"), e))
}

/// Move under the project's write lock.
pub async fn move_path(
    project: &Arc<OpenProject>,
    from: &str,
    to: &str,
    overwrite: bool,
) -> Result<FileEntry> {
    let from = project.check_writable("from", from)?;
    let to = project.check_writable("to", to)?;
    let _guard = project.lock_writes().await;
    blocking(project, move |project| {
        sandbox::refuse_git_folder_through_links(project.dir(), "from", &from)?;
        sandbox::refuse_git_folder_through_links(project.dir(), "to", &to)?;
        move_blocking(project.dir(), &from, &to, overwrite)?;
        let meta = project
            .dir()
            .symlink_metadata(to.as_path())
            .map_err(|e| io_error(&to, "stat", e))?;
        Ok(entry(project.dir(), &to, &meta, false))
    })
    .await
}

/// What a copy did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyStats {
    /// Files written.
    pub files: u64,
    /// Files left alone (Skip).
    pub skipped: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// Copy recursively. Blocking; caller holds the write lock.
pub fn copy_blocking(
    dir: &Dir,
    from: &RelPath,
    to: &RelPath,
    policy: OverwritePolicy,
) -> Result<CopyStats> {
    if to.starts_with(from) {
        return Err(Error::invalid_argument(
            "to",
            format!("cannot copy {from} into itself ({to})"),
        ));
    }
    let mut stats = CopyStats::default();
    tree::copy(dir, from, to, policy, &mut stats)?;
    Ok(stats)
}

/// Copy under the project's write lock.
pub async fn copy_path(
    project: &Arc<OpenProject>,
    from: &str,
    to: &str,
    policy: OverwritePolicy,
) -> Result<CopyStats> {
    // Copying out of a Git folder only reads it; copying into one is
    // refused.
    let from = project.check("from", from)?;
    let to = project.check_writable("to", to)?;
    let _guard = project.lock_writes().await;
    blocking(project, move |project| {
        sandbox::refuse_git_folder_through_links(project.dir(), "to", &to)?;
        copy_blocking(project.dir(), &from, &to, policy)
    })
    .await
}

/// Delete permanently. Blocking; caller holds the write lock.
pub fn delete_permanently(dir: &Dir, path: &RelPath, recursive: bool) -> Result<()> {
    if path.is_root() {
        return Err(Error::invalid_argument(
            "path",
            "the project root cannot be deleted",
        ));
    }
    let meta = dir
        .symlink_metadata(path.as_path())
        .map_err(|e| io_error(path, "delete", e))?;
    if meta.is_dir() {
        if recursive {
            tree::remove(dir, path)
        } else {
            dir.remove_dir(path.as_path())
        }
        .map_err(|e| match e.kind() {
            io::ErrorKind::DirectoryNotEmpty => Error::failed_precondition(format!(
                "{path} is a folder that is not empty; pass recursive to delete it with its contents"
            )),
            _ => io_error(path, "delete", e),
        })
    } else {
        dir.remove_file(path.as_path())
            .map_err(|e| io_error(path, "delete", e))
    }
}

/// Move to the OS trash. Blocking. The entry's parent is opened through
/// the capability handle and the entry is moved from that handle
/// (`platform::trash`), so a parent swapped for a symlink after the
/// check cannot redirect the move out of the project.
pub fn delete_to_trash(project: &OpenProject, path: &RelPath) -> Result<()> {
    if path.is_root() {
        return Err(Error::invalid_argument(
            "path",
            "the project root cannot be deleted",
        ));
    }
    // cap-std resolves the parent beneath the root (a symlink inside the
    // project is followed, one leading out is refused); from here on the
    // handle, not a path, names the folder.
    let parent = project
        .dir()
        .open_dir(path.parent().as_path())
        .map_err(|e| io_error(&path.parent(), "open", e))?;
    parent
        .symlink_metadata(path.name())
        .map_err(|e| io_error(path, "delete", e))?;
    let original = project.root().join(path.as_path());
    platform::trash::move_to_trash(&parent, path.name(), &original, project.root()).map_err(|err| {
        Error::failed_precondition(format!(
            "cannot move {path} to the trash: {err}; delete it permanently instead if you are sure"
        ))
        .with_reason(Reason::TrashFailed)
    })
}

/// Delete under the project's write lock.
pub async fn delete_path(
    project: &Arc<OpenProject>,
    raw: &str,
    permanent: bool,
    recursive: bool,
) -> Result<()> {
    let path = project.check_writable("path", raw)?;
    let _guard = project.lock_writes().await;
    blocking(project, move |project| {
        sandbox::refuse_git_folder_through_links(project.dir(), "path", &path)?;
        if permanent {
            delete_permanently(project.dir(), &path, recursive)
        } else {
            delete_to_trash(project, &path)
        }
    })
    .await
}

/// Check a path for batch validation without touching anything.
pub fn check_path(project: &OpenProject, field: &str, raw: &str) -> Result<RelPath> {
    sandbox::check(project.root(), field, raw)
}
