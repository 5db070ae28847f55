//! Target `path_sandbox`: hostile client paths against the files sandbox
//! (`omnipanel_core::files::sandbox`). The input is one path as a client
//! would send it (the whole input, as text). It is checked as FileService
//! checks it, then used through the project's capability handle the way
//! reads, listings and writes use it, in a project folder built once per
//! process that holds the traps: symlinks to outside (relative, absolute,
//! to `/`, to `..`, from a subfolder two levels up), a symlink loop, a link
//! to `.git`, a FIFO and a link to a device.
//!
//! Invariants, beyond "no panic":
//! - a refused path is refused as InvalidArgument or PermissionDenied;
//! - an accepted path is normal (relative, `/`-separated, no `.`, `..` or
//!   empty part, no NUL or backslash, within the length limits) and
//!   checking it again gives it back unchanged;
//! - whatever is opened, read, stat'ed or created through the handle is a
//!   file or folder of the project's own tree (device and inode of the
//!   project's entries, listed once without following links), never the
//!   secret beside the project; a file created there resolves inside it;
//! - a path whose real parent is a folder inside `.git` is refused for
//!   writing, and no file allowed for writing is created in `.git`;
//! - the folder outside the project is never changed.

use std::{
    collections::HashSet,
    io::Read,
    os::unix::fs::{MetadataExt as _, symlink},
    path::{Component, Path, PathBuf},
    sync::OnceLock,
};

use cap_std::fs::{Dir, MetadataExt as _, OpenOptions};
use omnipanel_core::{
    error::ErrorKind,
    files::sandbox::{
        self, MAX_NAME_BYTES, MAX_PATH_BYTES, RelPath, open_folder, open_regular,
        refuse_git_folder_through_links,
    },
};

/// What the secret file outside the project holds; reading it through the
/// sandbox is an escape.
const SECRET: &[u8] = b"OUTSIDE-THE-PROJECT";

struct Fixture {
    /// Kept so the folders live as long as the process.
    _base: tempfile::TempDir,
    root: PathBuf,
    outside: PathBuf,
    dir: Dir,
    /// (device, inode) of every entry of the project's own tree.
    inside: HashSet<(u64, u64)>,
    /// What the outside folder holds, to see that it never changes.
    outside_listing: Vec<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| build().expect("the sandbox fixture can be built"))
}

fn build() -> std::io::Result<Fixture> {
    let base = tempfile::tempdir()?;
    let base_path = std::fs::canonicalize(base.path())?;
    let outside = base_path.join("outside");
    std::fs::create_dir_all(outside.join("sub"))?;
    std::fs::write(outside.join("secret.txt"), SECRET)?;
    let root = base_path.join("root");
    std::fs::create_dir_all(root.join("dir/deeper"))?;
    std::fs::create_dir_all(root.join(".git/refs"))?;
    std::fs::write(root.join("file.txt"), b"inside")?;
    std::fs::write(root.join("dir/nested.txt"), b"nested")?;
    std::fs::write(root.join(".git/config"), b"[core]\n")?;
    std::fs::write(root.join(".git/HEAD"), b"ref: refs/heads/main\n")?;
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )?;
    symlink("../outside", root.join("link_out"))?;
    symlink(outside.join("secret.txt"), root.join("abs_out"))?;
    symlink("/", root.join("abs_root"))?;
    symlink("dir", root.join("link_in"))?;
    symlink("..", root.join("dotdot"))?;
    symlink(".", root.join("self"))?;
    symlink("loop", root.join("loop"))?;
    symlink(".git", root.join("gitlink"))?;
    symlink("/dev/zero", root.join("dev_zero"))?;
    symlink("../..", root.join("dir/up"))?;
    symlink("../file.txt", root.join("dir/in_up"))?;
    symlink("../../outside/secret.txt", root.join("dir/secret"))?;
    let mut inside = HashSet::new();
    let mut stack = vec![root.clone()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        inside.insert((meta.dev(), meta.ino()));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    let dir = sandbox::open_root(&root)?;
    let outside_listing = listing(&outside);
    Ok(Fixture {
        _base: base,
        root,
        outside,
        dir,
        inside,
        outside_listing,
    })
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Run one input.
pub fn run(data: &[u8]) {
    let raw = crate::text(data);
    let fx = fixture();
    let rel = match sandbox::check(&fx.root, "path", &raw) {
        Ok(rel) => rel,
        Err(err) => {
            assert!(
                matches!(
                    err.kind(),
                    ErrorKind::InvalidArgument | ErrorKind::PermissionDenied
                ),
                "{raw:?} refused as {:?}: {err}",
                err.kind()
            );
            return;
        }
    };
    assert_normal(&raw, &rel);
    let again = sandbox::check(&fx.root, "path", rel.as_str());
    assert_eq!(again.as_ref().ok(), Some(&rel), "{raw:?} checked twice");
    if !rel.is_root() {
        assert_eq!(rel.parent().join(rel.name()), rel, "{raw:?}: parent + name");
    }

    if let Ok((mut file, meta)) = open_regular(&fx.dir, &rel, "read") {
        assert!(meta.is_file(), "{rel}: open_regular gave a non-file");
        assert_inside(fx, &rel, "open_regular", (meta.dev(), meta.ino()));
        let mut head = Vec::new();
        let _ = file.by_ref().take(64).read_to_end(&mut head);
        assert!(!head.starts_with(SECRET), "{rel}: read the outside secret");
    }
    if let Ok(folder) = open_folder(&fx.dir, &rel)
        && let Ok(meta) = folder.dir_metadata()
    {
        assert_inside(fx, &rel, "open_folder", (meta.dev(), meta.ino()));
    }
    if let Ok(meta) = fx.dir.metadata(rel.as_path()) {
        assert_inside(fx, &rel, "metadata", (meta.dev(), meta.ino()));
    }
    if let Ok(resolved) = fx.dir.canonicalize(rel.as_path()) {
        assert!(
            resolved
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
            "{rel}: canonicalize left the root: {}",
            resolved.display()
        );
    }
    let writable = refuse_git_folder_through_links(&fx.dir, "path", &rel).is_ok();
    if writable {
        assert_not_in_git(fx, &rel);
    }
    if let Some(created) = try_create(fx, &rel) {
        assert!(
            !(writable && created.starts_with(fx.root.join(".git"))),
            "{rel}: allowed for writing, and a file created there is in .git ({})",
            created.display()
        );
    }
    assert_eq!(
        listing(&fx.outside),
        fx.outside_listing,
        "{rel}: the folder outside the project changed"
    );
}

fn assert_normal(raw: &str, rel: &RelPath) {
    let text = rel.as_str();
    assert!(text.len() <= MAX_PATH_BYTES, "{raw:?} → {text:?}: too long");
    assert!(!text.contains(['\0', '\\']), "{raw:?} → {text:?}");
    if rel.is_root() {
        return;
    }
    for part in text.split('/') {
        assert!(
            !part.is_empty() && part != "." && part != "..",
            "{raw:?} → {text:?}: part {part:?}"
        );
        assert!(
            part.len() <= MAX_NAME_BYTES,
            "{raw:?} → {text:?}: long part"
        );
    }
}

fn assert_inside(fx: &Fixture, rel: &RelPath, what: &str, id: (u64, u64)) {
    assert!(
        fx.inside.contains(&id),
        "{rel}: {what} reached (dev, inode) {id:?}, which is not in the project"
    );
}

/// Where the parent of `rel` really is once links are followed must not be
/// inside the project's `.git`, when the check let it through.
fn assert_not_in_git(fx: &Fixture, rel: &RelPath) {
    assert!(
        !rel.as_str()
            .split('/')
            .any(|p| p.eq_ignore_ascii_case(".git")),
        "{rel}: names .git but was not refused"
    );
    let mut parent = rel.parent();
    loop {
        if let Ok(real) = std::fs::canonicalize(fx.root.join(parent.as_path())) {
            // Nothing can be created below a file: the write fails.
            if !real.is_dir() {
                return;
            }
            assert!(
                !real.starts_with(fx.root.join(".git")),
                "{rel}: its parent is {} (inside .git) but was not refused",
                real.display()
            );
            return;
        }
        if parent.is_root() {
            return;
        }
        parent = parent.parent();
    }
}

/// Create `rel` as a new file through the handle; where that works the
/// file must be inside the project. It is removed again at once, so the
/// fixture stays as it was. Where it was created, if it was.
fn try_create(fx: &Fixture, rel: &RelPath) -> Option<PathBuf> {
    if rel.is_root() {
        return None;
    }
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    let file = fx.dir.open_with(rel.as_path(), &options).ok()?;
    let meta = file.metadata();
    drop(file);
    let real = std::fs::canonicalize(fx.root.join(rel.as_path()));
    let _ = fx.dir.remove_file(rel.as_path());
    let real = real.unwrap_or_default();
    assert!(
        real.starts_with(&fx.root),
        "{rel}: a file created through the sandbox is at {}",
        real.display()
    );
    assert!(meta.is_ok_and(|m| m.is_file()), "{rel}: created a non-file");
    Some(real)
}
