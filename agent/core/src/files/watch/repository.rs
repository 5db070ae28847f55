//! Telling a real repository change from a write that changed nothing.
//! `git status` rewrites `.git/index` whenever it refreshes the cached file
//! timestamps in it, and editors run it constantly; reporting each rewrite
//! as "repository changed" would wake every client (and our own Git
//! summary) for nothing. A fingerprint of what the repository *means* (HEAD,
//! every ref, the index's entries without their timestamps, a merge or
//! rebase in progress) decides. Blocking (it reads the index, straight
//! from the file: `git/index_file.rs`): run it on the blocking pool.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    path::Path,
};

/// A reference: its name, what it points at, its symbolic target.
type RefState = (Vec<u8>, Option<git2::Oid>, Option<Vec<u8>>);

/// The meaning of a repository's state, as a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(u64);

/// The fingerprint of the repository whose `.git` folder is in `root`, or
/// `None` when it cannot be read or the agent does not use it (see
/// `git::open`; then every change counts).
pub fn fingerprint(root: &Path) -> Option<Fingerprint> {
    let repo = crate::git::open_project_repository(root).ok()?;
    let mut hasher = DefaultHasher::new();
    match repo.find_reference("HEAD") {
        Ok(head) => {
            head.symbolic_target_bytes().hash(&mut hasher);
            head.target().hash(&mut hasher);
        }
        Err(_) => 0u8.hash(&mut hasher),
    }
    if let Ok(head) = repo.head() {
        head.target().hash(&mut hasher);
    }
    (repo.state() as i32).hash(&mut hasher);
    let mut refs: Vec<RefState> = repo
        .references()
        .ok()?
        .filter_map(Result::ok)
        .map(|reference| {
            (
                reference.name_bytes().to_vec(),
                reference.target(),
                reference.symbolic_target_bytes().map(<[u8]>::to_vec),
            )
        })
        .collect();
    refs.sort();
    refs.hash(&mut hasher);
    // Read by hand, not through libgit2, which would verify the whole
    // file's checksum and map its paths first (`git/index_file.rs`).
    crate::git::index_file::hash_meaning(&repo.path().join("index"), &mut hasher)?;
    Some(Fingerprint(hasher.finish()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::repo::fixtures::git_ok as git;

    #[test]
    fn only_changes_of_meaning_change_the_fingerprint() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        git(root, &["init", "-q", "-b", "main"]);
        assert!(fingerprint(root).is_some(), "an empty repository has one");
        std::fs::write(root.join("a.txt"), "a")?;
        git(root, &["add", "a.txt"]);
        git(root, &["commit", "-q", "-m", "one"]);
        let committed = fingerprint(root);
        // A rewrite of the index that only refreshes timestamps.
        let index = std::fs::read(root.join(".git/index"))?;
        std::fs::write(root.join(".git/index"), &index)?;
        git(root, &["update-index", "--really-refresh"]);
        git(root, &["status", "--porcelain"]);
        assert_eq!(fingerprint(root), committed);
        // Staging, a branch, a commit, a checkout: each is a change.
        std::fs::write(root.join("a.txt"), "b")?;
        git(root, &["add", "a.txt"]);
        let staged = fingerprint(root);
        assert_ne!(staged, committed);
        git(root, &["branch", "topic"]);
        let branched = fingerprint(root);
        assert_ne!(branched, staged);
        git(root, &["checkout", "-q", "topic"]);
        assert_ne!(fingerprint(root), branched);
        // Not a repository: no fingerprint.
        let plain = tempfile::tempdir()?;
        assert_eq!(fingerprint(plain.path()), None);
        Ok(())
    }
}
