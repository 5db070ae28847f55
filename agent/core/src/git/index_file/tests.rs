//! The index reader against indexes git itself wrote: every version of
//! the same entries means the same, flags and paths count, timestamps do
//! not, and a file cut short or not an index is `None`, never a panic.

use std::{hash::DefaultHasher, path::Path};

use super::*;
use crate::git::repo::fixtures::git_ok as git;

fn meaning(path: &Path) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    hash_meaning(path, &mut hasher).map(|()| hasher.finish())
}

/// A repository whose paths share long prefixes (what version 4
/// compresses) and come in an order where a path is cut back more than
/// it keeps.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q", "-b", "main"]);
    for path in [
        "a.txt",
        "deep/er/still/file_1.rs",
        "deep/er/still/file_10.rs",
        "deep/er/still/file_2.rs",
        "deep/other.rs",
        "x",
        "zz/a name with spaces and ünïcode.txt",
    ] {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, path.display().to_string()).unwrap();
    }
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "one"]);
    dir
}

#[test]
fn every_version_of_the_same_entries_means_the_same() {
    let dir = repository();
    let root = dir.path();
    let index = root.join(".git/index");
    let v2 = meaning(&index).expect("git's default index is read");
    // (git writes version 3 only where an entry has extended flags: the
    // next test has those.)
    for version in ["4", "2", "4"] {
        git(root, &["update-index", "--index-version", version]);
        assert_eq!(
            std::fs::read(&index).unwrap()[7],
            version.parse::<u8>().unwrap()
        );
        assert_eq!(meaning(&index), Some(v2), "version {version}");
    }
}

#[test]
fn flags_and_content_count_and_timestamps_do_not() {
    let dir = repository();
    let root = dir.path();
    let index = root.join(".git/index");
    for version in ["2", "4"] {
        git(root, &["update-index", "--index-version", version]);
        let start = meaning(&index).unwrap();
        // Timestamps refreshed, the file rewritten.
        std::fs::write(root.join("a.txt"), "a.txt changed").unwrap();
        std::fs::write(root.join("a.txt"), root.join("a.txt").display().to_string()).unwrap();
        git(root, &["update-index", "--really-refresh"]);
        assert_eq!(meaning(&index), Some(start), "version {version}");
        for (set, clear) in [
            ("--skip-worktree", "--no-skip-worktree"),
            ("--assume-unchanged", "--no-assume-unchanged"),
        ] {
            git(root, &["update-index", set, "deep/other.rs"]);
            if set == "--skip-worktree" && version == "2" {
                assert_eq!(std::fs::read(&index).unwrap()[7], 3, "extended flags");
            }
            let flagged = meaning(&index).unwrap();
            assert_ne!(flagged, start, "{set}, version {version}");
            git(root, &["update-index", clear, "deep/other.rs"]);
            assert_eq!(meaning(&index), Some(start), "{clear}, version {version}");
        }
        std::fs::write(root.join("new.txt"), "new").unwrap();
        git(root, &["add", "-N", "--", "new.txt"]);
        assert_ne!(meaning(&index), Some(start), "intent to add");
        git(root, &["rm", "-q", "--cached", "--", "new.txt"]);
        std::fs::write(root.join("x"), "staged").unwrap();
        git(root, &["add", "x"]);
        assert_ne!(meaning(&index), Some(start), "staged, version {version}");
        git(root, &["reset", "-q"]);
        assert_eq!(meaning(&index), Some(start), "unstaged, version {version}");
        use std::os::unix::fs::PermissionsExt;
        let executable = |mode| {
            std::fs::set_permissions(root.join("x"), std::fs::Permissions::from_mode(mode))
                .unwrap();
        };
        git(root, &["checkout", "--", "x"]);
        executable(0o755);
        git(root, &["add", "x"]);
        assert_ne!(meaning(&index), Some(start), "mode, version {version}");
        git(root, &["reset", "-q"]);
        executable(0o644);
        assert_eq!(meaning(&index), Some(start), "mode back, version {version}");
        git(root, &["mv", "a.txt", "b.txt"]);
        assert_ne!(meaning(&index), Some(start), "moved, version {version}");
        git(root, &["mv", "b.txt", "a.txt"]);
        git(root, &["checkout", "--", "x"]);
    }
}

#[test]
fn a_missing_index_is_empty_and_anything_else_unknown_is_none() {
    let dir = repository();
    let root = dir.path();
    let index = root.join(".git/index");
    let bytes = std::fs::read(&index).unwrap();
    assert!(meaning(&root.join(".git/no-such-index")).is_some());
    // Cut short anywhere, nothing panics; cut before the entries' end
    // plus a checksum's length, the file is refused. (Further on, a cut
    // can look like a whole index without its extensions: the checksum is
    // not verified, as git does not verify it either.)
    let entries_end = bytes
        .windows(4)
        .position(|w| w == b"TREE")
        .unwrap_or(bytes.len() - ID_LEN);
    let cut = root.join("cut");
    for len in 0..bytes.len() {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let read = meaning(&cut);
        if len < entries_end + ID_LEN {
            assert_eq!(read, None, "cut at {len}");
        }
    }
    // Another version, a foreign file, a mandatory extension.
    let mut version = bytes.clone();
    version[7] = 5;
    let mut mandatory = bytes[..bytes.len() - ID_LEN].to_vec();
    mandatory.extend_from_slice(b"link\0\0\0\x04abcd");
    mandatory.extend_from_slice(&bytes[bytes.len() - ID_LEN..]);
    let mut optional = mandatory.clone();
    optional[bytes.len() - ID_LEN..][..4].copy_from_slice(b"ABCD");
    for (name, content) in [
        ("version 5", version),
        (
            "not an index",
            b"DIRX and more bytes than a header".to_vec(),
        ),
        ("mandatory extension", mandatory),
    ] {
        std::fs::write(&cut, &content).unwrap();
        assert_eq!(meaning(&cut), None, "{name}");
    }
    std::fs::write(&cut, &optional).unwrap();
    assert_eq!(
        meaning(&cut),
        meaning(&index),
        "an optional extension is skipped"
    );
}

#[test]
fn random_bytes_after_a_header_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index");
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..2_000 {
        let mut bytes = b"DIRC".to_vec();
        bytes.extend_from_slice(&[0, 0, 0, [2, 3, 4][round % 3]]);
        bytes.extend_from_slice(&[0, 0, 0, (round % 5) as u8]);
        for _ in 0..(round % 300) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            bytes.push(state as u8);
        }
        std::fs::write(&path, &bytes).unwrap();
        let _ = meaning(&path);
    }
}
