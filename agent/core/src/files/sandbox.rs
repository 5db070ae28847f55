//! The sandbox: every path a client sends is checked here and then used
//! only through a capability handle on the project's root folder
//! (cap-std's `Dir`), so nothing outside an open project can be reached.
//! String checks give clear errors for the obvious attempts (`..`, foreign
//! absolute paths, NUL bytes, Windows drive and UNC prefixes, over-long
//! names); the capability handle closes what strings cannot, such as
//! symlinks that point outside, including ones swapped in between a check
//! and the use.

use std::{
    io,
    path::{Component, Path, PathBuf},
};

use cap_std::fs::{Dir, File, Metadata, MetadataExt, OpenOptions};

use crate::error::{Error, ErrorKind, Result};
use crate::platform;
use crate::reason::Reason;

/// Longest path accepted, in bytes (Linux's PATH_MAX).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest name of one path component, in bytes (Linux's NAME_MAX).
pub const MAX_NAME_BYTES: usize = 255;

/// A checked path relative to a project root: `/`-separated, no `.` or `..`
/// components, no leading slash. The empty path is the root itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(String);

impl RelPath {
    /// The project root.
    pub fn root() -> Self {
        Self(String::new())
    }

    /// As text, `/`-separated ("" for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As a relative OS path ("." for the root, which cap-std accepts).
    pub fn as_path(&self) -> &Path {
        if self.0.is_empty() {
            Path::new(".")
        } else {
            Path::new(&self.0)
        }
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The last component ("" for the root).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    /// The parent (the root's parent is the root).
    pub fn parent(&self) -> Self {
        match self.0.rsplit_once('/') {
            Some((parent, _)) => Self(parent.to_owned()),
            None => Self::root(),
        }
    }

    /// A child of this path; `name` must be a single valid component.
    pub fn join(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_owned())
        } else {
            Self(format!("{}/{name}", self.0))
        }
    }

    /// Whether `self` is `other` or inside it.
    pub fn starts_with(&self, other: &RelPath) -> bool {
        other.0.is_empty()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// This path moved along with `from` to `to`: `from/x` becomes `to/x`.
    /// `None` when it is not inside `from`.
    pub fn rebase(&self, from: &RelPath, to: &RelPath) -> Option<Self> {
        if !self.starts_with(from) {
            return None;
        }
        let rest = self.0[from.0.len()..].trim_start_matches('/');
        Some(if rest.is_empty() {
            to.clone()
        } else {
            to.join(rest)
        })
    }

    /// Build from a path already known to be inside the root (from the
    /// file system, e.g. a watcher event or a walk).
    pub fn from_inside(relative: &Path) -> Option<Self> {
        let mut parts = Vec::new();
        for component in relative.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_str()?.to_owned()),
                Component::CurDir => {}
                _ => return None,
            }
        }
        Some(Self(parts.join("/")))
    }
}

impl std::fmt::Display for RelPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&self.0)
        }
    }
}

/// A drive (`C:`, `c:/x`, `C:\\x`) or UNC (`\\\\server`, `//server`) start.
/// `c:notes` is a file name on Linux and stays one.
fn looks_like_windows_prefix(raw: &str) -> bool {
    is_drive(raw.split(['/', '\\']).next().unwrap_or_default())
        || raw.starts_with("\\\\")
        || raw.starts_with("//")
}

/// `C:` alone: what a path's first part is when it names a drive. Checked
/// on the raw path and again on the normalised one, so `./c:/x` is
/// refused like `c:/x` and a path the check gives back passes it again.
fn is_drive(part: &str) -> bool {
    let bytes = part.as_bytes();
    bytes.len() == 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':'
}

/// Check a client path against the project `root` (an absolute,
/// canonical path). `field` names the request field in errors.
pub fn check(root: &Path, field: &str, raw: &str) -> Result<RelPath> {
    if raw.contains('\0') {
        return Err(Error::invalid_argument(
            field,
            "the path contains a NUL byte",
        ));
    }
    if raw.len() > MAX_PATH_BYTES {
        return Err(Error::invalid_argument(
            field,
            format!(
                "the path is {} bytes long; at most {MAX_PATH_BYTES} are allowed",
                raw.len()
            ),
        ));
    }
    if looks_like_windows_prefix(raw) {
        return Err(Error::invalid_argument(
            field,
            format!(
                "{raw:?} is a Windows drive or UNC path; give a path inside the project, relative to its root"
            ),
        ));
    }
    if raw.contains('\\') {
        return Err(Error::invalid_argument(
            field,
            format!("{raw:?} contains a backslash; use '/' to separate folders"),
        ));
    }
    let path = Path::new(raw);
    let relative: &Path = if path.is_absolute() {
        path.strip_prefix(root).map_err(|_| {
            Error::permission_denied(format!(
                "{field}: {raw:?} is outside the project at {}",
                root.display()
            ))
            .with_reason(Reason::OutsideProject)
        })?
    } else {
        path
    };
    let mut parts: Vec<&str> = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => {
                let part = part
                    .to_str()
                    .ok_or_else(|| Error::invalid_argument(field, "the path is not valid UTF-8"))?;
                if part.len() > MAX_NAME_BYTES {
                    return Err(Error::invalid_argument(
                        field,
                        format!(
                            "the name {:?}... is {} bytes long; at most {MAX_NAME_BYTES} are allowed",
                            part.chars().take(20).collect::<String>(),
                            part.len()
                        ),
                    ));
                }
                parts.push(part);
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::permission_denied(format!(
                    "{field}: {raw:?} uses '..'; paths must stay inside the project"
                ))
                .with_reason(Reason::OutsideProject));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::permission_denied(format!(
                    "{field}: {raw:?} is outside the project at {}",
                    root.display()
                ))
                .with_reason(Reason::OutsideProject));
            }
        }
    }
    if parts.first().is_some_and(|first| is_drive(first)) {
        return Err(Error::invalid_argument(
            field,
            format!(
                "{raw:?} starts with a Windows drive; give a path inside the project, relative to its root"
            ),
        ));
    }
    Ok(RelPath(parts.join("/")))
}

/// Whether a component is a Git folder's name. Case-insensitive on every
/// system, as git itself refuses `.GIT` in the paths it checks out: on a
/// case-insensitive file system it is the same folder.
fn is_git_name(name: &str) -> bool {
    name.eq_ignore_ascii_case(".git")
}

fn inside_git_folder(field: &str, path: &str) -> Error {
    Error::permission_denied(format!(
        "{field}: {path} is inside a Git folder (.git), which FileService never changes: its config and hooks decide what git runs. Git changes go through GitService (stage, commit, checkout, branches, pull)"
    ))
    .with_reason(Reason::InsideGitFolder)
}

/// Refuse to change `path` when it is, or is inside, a `.git` (the
/// project's repository or a nested one's; also a `.git` file, a link to
/// a Git folder elsewhere). Reads are not checked here: only paths a
/// request would create, change, move or delete.
pub fn refuse_git_folder(field: &str, path: &RelPath) -> Result<()> {
    if path.as_str().split('/').any(is_git_name) {
        return Err(inside_git_folder(field, path.as_str()));
    }
    Ok(())
}

/// [`refuse_git_folder`] for where `path`'s parent really is once the
/// symlinks inside the project are followed (`link/config` with `link ->
/// .git`). Blocking; run it under the project's write lock, so no other
/// change through the agent can swap a link between this and the write.
/// Parts of the path that do not exist yet are created as plain folders,
/// so the longest existing part decides.
pub fn refuse_git_folder_through_links(dir: &Dir, field: &str, path: &RelPath) -> Result<()> {
    refuse_git_folder(field, path)?;
    let mut parent = path.parent();
    while !parent.is_root() {
        match dir.canonicalize(parent.as_path()) {
            Ok(resolved) => {
                let inside = resolved.components().any(
                    |c| matches!(c, Component::Normal(n) if n.to_str().is_some_and(is_git_name)),
                );
                if inside {
                    return Err(inside_git_folder(
                        field,
                        &format!("{path} (through a symlink, {})", resolved.display()),
                    ));
                }
                return Ok(());
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => parent = parent.parent(),
            // Whatever else is wrong with the path, the operation itself
            // reports (an escape included: cap-std refuses it there too).
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Turn an I/O error from a sandboxed call into a domain error that names
/// the path and, for escapes, the rule.
pub fn io_error(path: &RelPath, what: &str, err: io::Error) -> Error {
    if err.raw_os_error() == Some(rustix::io::Errno::NAMETOOLONG.raw_os_error()) {
        return Error::invalid_argument(
            "path",
            format!("cannot {what} {path}: the path is too long (the folder tree is too deep)"),
        );
    }
    match err.kind() {
        io::ErrorKind::NotFound => Error::not_found(format!("{path}: no such file or folder")),
        io::ErrorKind::AlreadyExists => {
            Error::new(ErrorKind::AlreadyExists, format!("{path} already exists"))
        }
        io::ErrorKind::PermissionDenied => {
            // cap-std reports an escape (a symlink or `..` leading out of
            // the project) as permission denied, like the OS refusing.
            Error::permission_denied(format!(
                "cannot {what} {path}: permission denied (the path may lead outside the project through a symlink, or the file system refuses)"
            ))
            .with_reason(Reason::OutsideProjectOrDenied)
        }
        io::ErrorKind::DirectoryNotEmpty => {
            Error::failed_precondition(format!("cannot {what} {path}: the folder is not empty"))
        }
        io::ErrorKind::NotADirectory => Error::failed_precondition(format!(
            "cannot {what} {path}: a part of the path is not a folder"
        )),
        io::ErrorKind::IsADirectory => {
            Error::failed_precondition(format!("cannot {what} {path}: it is a folder"))
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Error::new(
            ErrorKind::ResourceExhausted,
            format!("cannot {what} {path}: the disk is full"),
        ),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => {
            Error::invalid_argument("path", format!("cannot {what} {path}: {err}"))
        }
        _ if err.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            Error::permission_denied(format!(
                "cannot {what} {path}: too many symlinks, or a symlink where none is allowed"
            ))
        }
        _ if err.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
            Error::permission_denied(format!(
                "cannot {what} {path}: the path crosses into another file system or leaves the project"
            ))
        }
        _ => Error::internal(format!("cannot {what} {path}: {err}")),
    }
}

/// Open `path` for reading as a regular file, never blocking: the open
/// cannot hang on a FIFO or device swapped in after a check, and the type
/// is checked on the open handle (fstat), not on the path. `what` names
/// the operation in errors.
pub fn open_regular(dir: &Dir, path: &RelPath, what: &str) -> Result<(File, Metadata)> {
    let mut options = OpenOptions::new();
    options.read(true);
    platform::fs::never_block(&mut options);
    let file = dir
        .open_with(path.as_path(), &options)
        .map_err(|e| io_error(path, what, e))?;
    let meta = file.metadata().map_err(|e| io_error(path, what, e))?;
    if !meta.is_file() {
        return Err(not_regular(path, what, &meta));
    }
    platform::fs::blocking_again(&file).map_err(|e| io_error(path, what, e))?;
    Ok((file, meta))
}

/// The error for a path that is not a regular file.
pub fn not_regular(path: &RelPath, what: &str, meta: &Metadata) -> Error {
    Error::failed_precondition(format!(
        "cannot {what} {path}: it is not a regular file{}",
        if meta.is_dir() {
            " (it is a folder)"
        } else {
            " (devices, sockets and pipes are not read)"
        }
    ))
}

/// Open the folder `path` through `dir` without following a symlink as
/// its last component (cap-std refuses any that leads out of the project
/// on the way), and without blocking.
pub fn open_folder(dir: &Dir, path: &RelPath) -> io::Result<Dir> {
    if path.is_root() {
        return dir.try_clone();
    }
    let mut options = OpenOptions::new();
    options.read(true);
    platform::fs::folder_no_follow(&mut options);
    let file = dir.open_with(path.as_path(), &options)?;
    Ok(Dir::from_std_file(file.into_std()))
}

/// Open a project's root as a capability handle.
pub fn open_root(root: &Path) -> io::Result<Dir> {
    Dir::open_ambient_dir(root, cap_std::ambient_authority())
}

/// A version string for optimistic concurrency: changes whenever the file
/// is replaced or modified (inode, size, modification time to the
/// nanosecond).
pub fn version_of(meta: &Metadata) -> String {
    format!(
        "{:x}-{:x}-{:x}.{:x}",
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    )
}

/// Canonical absolute form of a folder the user names as a project root.
pub fn canonical_root(path: &str) -> Result<PathBuf> {
    if path.is_empty() {
        return Err(Error::invalid_argument("path", "a folder is required"));
    }
    if path.contains('\0') {
        return Err(Error::invalid_argument(
            "path",
            "the path contains a NUL byte",
        ));
    }
    let given = Path::new(path);
    if !given.is_absolute() {
        return Err(Error::invalid_argument(
            "path",
            format!("{path:?} must be an absolute path"),
        ));
    }
    let canonical = std::fs::canonicalize(given).map_err(|err| match err.kind() {
        io::ErrorKind::NotFound => Error::not_found(format!("{path} does not exist")),
        _ => Error::failed_precondition(format!("cannot open {path}: {err}")),
    })?;
    if !canonical.is_dir() {
        return Err(Error::failed_precondition(format!(
            "{path} is not a folder"
        )));
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> &'static Path {
        Path::new("/home/me/proj")
    }

    #[test]
    fn rebase_follows_a_moved_folder() -> Result<()> {
        let path = |raw: &str| check(root(), "path", raw);
        let (from, to) = (path("a/b")?, path("c")?);
        assert_eq!(path("a/b/x/y")?.rebase(&from, &to), Some(path("c/x/y")?));
        assert_eq!(path("a/b")?.rebase(&from, &to), Some(to.clone()));
        assert_eq!(path("a/bc")?.rebase(&from, &to), None);
        assert_eq!(path("a")?.rebase(&from, &to), None);
        assert_eq!(
            path("x")?.rebase(&RelPath::root(), &path("sub")?),
            Some(path("sub/x")?)
        );
        Ok(())
    }

    #[test]
    fn normalises_good_paths() -> Result<()> {
        assert_eq!(check(root(), "path", "")?.as_str(), "");
        assert_eq!(check(root(), "path", ".")?.as_str(), "");
        assert_eq!(
            check(root(), "path", "src/./main.rs")?.as_str(),
            "src/main.rs"
        );
        assert_eq!(
            check(root(), "path", "src//lib.rs/")?.as_str(),
            "src/lib.rs"
        );
        assert_eq!(check(root(), "path", "/home/me/proj/a/b")?.as_str(), "a/b");
        assert_eq!(check(root(), "path", "/home/me/proj")?.as_str(), "");
        assert_eq!(
            check(root(), "path", "ünïcødé/файл.txt")?.as_str(),
            "ünïcødé/файл.txt"
        );
        Ok(())
    }

    #[test]
    fn refuses_escapes_and_junk() {
        let long_name = "n".repeat(256);
        let long_path = "a/".repeat(2100);
        let cases: Vec<(&str, ErrorKind)> = vec![
            ("..", ErrorKind::PermissionDenied),
            ("../etc/passwd", ErrorKind::PermissionDenied),
            ("src/../../x", ErrorKind::PermissionDenied),
            ("/etc/passwd", ErrorKind::PermissionDenied),
            ("/home/me/projother/x", ErrorKind::PermissionDenied),
            ("/home/me", ErrorKind::PermissionDenied),
            ("a\0b", ErrorKind::InvalidArgument),
            ("C:\\Windows", ErrorKind::InvalidArgument),
            ("c:/x", ErrorKind::InvalidArgument),
            ("c:", ErrorKind::InvalidArgument),
            ("./c:/x", ErrorKind::InvalidArgument),
            ("a/../c:", ErrorKind::PermissionDenied),
            ("\\\\server\\share", ErrorKind::InvalidArgument),
            ("//server/share", ErrorKind::InvalidArgument),
            ("..\\..\\etc", ErrorKind::InvalidArgument),
            (&long_name, ErrorKind::InvalidArgument),
            (&long_path, ErrorKind::InvalidArgument),
        ];
        for (raw, kind) in cases {
            let err = check(root(), "path", raw).expect_err(raw);
            assert_eq!(err.kind(), kind, "{raw:?}: {err}");
        }
    }

    /// Found by the fuzz target `path_sandbox`: `./s:dx/.` was accepted
    /// as `s:dx`, which was then refused as a Windows drive, so a file
    /// listed under that name could not be opened by it.
    #[test]
    fn a_checked_path_passes_the_check_again() -> Result<()> {
        for raw in ["./s:dx/.", "s:dx", "notes/c:", "c:notes"] {
            let once = check(root(), "path", raw)?;
            assert_eq!(check(root(), "path", once.as_str())?, once, "{raw:?}");
        }
        Ok(())
    }

    #[test]
    fn rel_path_relations() -> Result<()> {
        let a = check(root(), "p", "src/a")?;
        assert!(a.starts_with(&check(root(), "p", "src")?));
        assert!(!check(root(), "p", "srcx/a")?.starts_with(&check(root(), "p", "src")?));
        assert_eq!(a.parent().as_str(), "src");
        assert_eq!(a.name(), "a");
        assert_eq!(RelPath::root().join("x").as_str(), "x");
        Ok(())
    }
}
