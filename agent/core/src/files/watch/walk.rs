//! Walking (part of) a project: list every folder that is not ignored,
//! collect the file paths for the index, and watch each folder *before* it
//! is listed, so nothing created while the walk runs falls between the two.
//!
//! The walk is breadth-first, for two reasons. A folder's `.gitignore` is
//! read before its children are classified, so one pass applies every
//! rule. And when a watch limit is reached, what is watched is the top of
//! the tree: the folders a person is most likely to touch, and `.git`.
//! Below the limit, folders are still listed (the index stays complete) but
//! not watched; the walk reports the roots of those unwatched subtrees so
//! they can be listed again on demand. Temporaries that a writer killed
//! mid-write left behind are removed as they are met. Blocking: run it on
//! the blocking pool.

use std::collections::{BTreeSet, VecDeque};

use cap_std::fs::Dir;

use crate::{
    atomic_file,
    files::{
        ignore_rules::{IgnoreRules, Verdict},
        sandbox::{self, RelPath},
        watch::{
            limit::LimitKind,
            source::{AddError, FolderWatches},
        },
    },
};

/// What a walk found.
#[derive(Debug, Default)]
pub struct Walked {
    /// Files, `/`-separated, relative to the root.
    pub files: BTreeSet<String>,
    /// Folders listed (not ignored), the start folders included.
    pub dirs: Vec<RelPath>,
    /// Roots of subtrees left unwatched because a limit was reached.
    pub unwatched: Vec<RelPath>,
    /// Folders left unwatched in all (the roots' subfolders included).
    pub unwatched_count: usize,
    /// The limit that was reached, if one was.
    pub limit: Option<LimitKind>,
    /// Folders whose changes no watch reports: those left out as ignored
    /// (not walked) and those a watch could not be added to (for reasons
    /// other than a limit). `.git`'s own insides are not listed.
    pub blind: Vec<RelPath>,
    /// Folders that could not be watched for another reason, with why.
    pub failures: Vec<String>,
    /// Folders left out because they could not be opened as folders
    /// (gone since their parent was listed, or swapped for a symlink).
    pub refused: usize,
    /// Temporaries of writers killed mid-write, removed on the way.
    pub stale_temporaries_removed: usize,
}

/// Walk from each of `starts` (folders inside the project whose handle is
/// `root`), applying `rules` and adding the `.gitignore` files met on the
/// way to them. With `watches`, each folder is watched before it is
/// listed, until a limit is reached.
///
/// Every folder is opened through the sandbox (a symlink is never
/// followed, not even one swapped in after its parent was listed) and
/// then watched and listed through that handle, never by an absolute path.
/// The walk is a queue, not a recursion: any depth is safe for the stack,
/// and folders below the OS path limit simply cannot be opened.
pub fn walk(
    root: &Dir,
    starts: &[RelPath],
    rules: &mut IgnoreRules,
    watches: Option<&dyn FolderWatches>,
) -> Walked {
    let mut walked = Walked::default();
    // (folder, whether its parent is watched)
    let mut queue: VecDeque<(RelPath, bool)> = starts.iter().map(|s| (s.clone(), true)).collect();
    while let Some((dir, parent_watched)) = queue.pop_front() {
        let Ok(handle) = sandbox::open_folder(root, &dir) else {
            walked.refused += 1;
            continue;
        };
        let watched = match watches {
            None => true,
            Some(_) if walked.limit.is_some() => false,
            Some(watches) => match watches.add(&dir, &handle) {
                Ok(()) => true,
                Err(AddError::Limit(kind)) => {
                    walked.limit = Some(kind);
                    false
                }
                Err(AddError::Io(err)) => {
                    walked.failures.push(format!("{dir}: {err}"));
                    walked.blind.push(dir.clone());
                    // Not a limit: the folder is gone or unreadable, which
                    // its listing below finds out too.
                    true
                }
            },
        };
        if !watched {
            walked.unwatched_count += 1;
            if parent_watched {
                walked.unwatched.push(dir.clone());
            }
        }
        let Ok(entries) = handle.entries() else {
            continue;
        };
        let mut children = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            // A temporary whose writer was killed mid-write (this agent's
            // previous run, say) is nobody's: the walk that meets it
            // removes it, so none is left for good.
            if file_type.is_file() && atomic_file::is_stale_temporary(&name) {
                if handle.remove_file(&name).is_ok() {
                    walked.stale_temporaries_removed += 1;
                }
                continue;
            }
            children.push((name, file_type.is_dir(), file_type.is_file()));
        }
        if children
            .iter()
            .any(|(name, _, is_file)| name == ".gitignore" && *is_file)
        {
            rules.load(root, &dir);
        }
        walked.dirs.push(dir.clone());
        for (name, is_dir, _) in children {
            let path = dir.join(&name);
            match rules.verdict(&path, is_dir) {
                Verdict::Ignore => {
                    if is_dir && !path.as_str().starts_with(".git/") {
                        walked.blind.push(path);
                    }
                }
                // .git, its HEAD, index and refs are watched, not indexed.
                Verdict::Repository => {
                    if is_dir {
                        queue.push_back((path, watched));
                    }
                }
                Verdict::Keep if is_dir => queue.push_back((path, watched)),
                Verdict::Keep => {
                    walked.files.insert(path.as_str().to_owned());
                }
            }
        }
    }
    walked
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Watches in memory, refusing beyond `max`.
    #[derive(Debug)]
    struct CountingWatches {
        max: usize,
        added: Mutex<Vec<String>>,
    }

    impl FolderWatches for CountingWatches {
        fn add(&self, dir: &RelPath, _handle: &Dir) -> Result<(), AddError> {
            let mut added = crate::sync::lock(&self.added);
            if added.len() == self.max {
                return Err(AddError::Limit(LimitKind::Kernel));
            }
            added.push(dir.as_str().to_owned());
            Ok(())
        }
        fn remove_tree(&self, _: &RelPath) {}
        fn count(&self) -> usize {
            crate::sync::lock(&self.added).len()
        }
    }

    fn tree() -> std::io::Result<tempfile::TempDir> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        for folder in [
            "a/a1/a2",
            "b/b1",
            "c",
            "node_modules/x",
            ".git/refs/heads",
            ".git/objects/00",
        ] {
            std::fs::create_dir_all(root.join(folder))?;
        }
        for file in [
            "top.txt",
            "a/a.txt",
            "a/a1/a2/deep.txt",
            "b/b1/b.txt",
            "c/c.log",
            "c/keep.txt",
        ] {
            std::fs::write(root.join(file), "x")?;
        }
        std::fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n")?;
        // A nested .gitignore applies in the same pass.
        std::fs::write(root.join("c/.gitignore"), "*.log\n")?;
        Ok(dir)
    }

    #[test]
    fn one_pass_applies_nested_gitignores_and_watches_what_matters() -> std::io::Result<()> {
        let dir = tree()?;
        let watches = CountingWatches {
            max: usize::MAX,
            added: Mutex::default(),
        };
        let mut rules = IgnoreRules::new(&["node_modules".to_owned(), ".git".to_owned()]);
        let walked = walk(
            &sandbox::open_root(dir.path())?,
            &[RelPath::root()],
            &mut rules,
            Some(&watches),
        );
        let files: Vec<&str> = walked.files.iter().map(String::as_str).collect();
        assert_eq!(
            files,
            [
                "a/a.txt",
                "a/a1/a2/deep.txt",
                "b/b1/b.txt",
                "c/.gitignore",
                "c/keep.txt",
                "top.txt"
            ]
        );
        let added = crate::sync::lock(&watches.added).clone();
        // Breadth-first: the top level before what is below it; .git and
        // its refs are watched, objects and node_modules are not.
        assert_eq!(added[0], "");
        assert!(added.contains(&".git".to_owned()), "{added:?}");
        assert!(added.contains(&".git/refs/heads".to_owned()), "{added:?}");
        assert!(
            !added
                .iter()
                .any(|a| a.contains("objects") || a.contains("node_modules"))
        );
        assert!(walked.unwatched.is_empty());
        assert_eq!(walked.limit, None);
        Ok(())
    }

    #[test]
    fn at_the_limit_the_top_is_watched_and_the_rest_is_still_listed() -> std::io::Result<()> {
        let dir = tree()?;
        let watches = CountingWatches {
            max: 4,
            added: Mutex::default(),
        };
        let mut rules = IgnoreRules::new(&["node_modules".to_owned(), ".git".to_owned()]);
        let walked = walk(
            &sandbox::open_root(dir.path())?,
            &[RelPath::root()],
            &mut rules,
            Some(&watches),
        );
        assert_eq!(walked.limit, Some(LimitKind::Kernel));
        // The root and three of its four folders are watched (which three
        // depends on the listing order).
        let watched = crate::sync::lock(&watches.added).clone();
        assert_eq!(watched.len(), 4);
        assert_eq!(watched[0], "");
        assert!(watched[1..].iter().all(|w| !w.contains('/')), "{watched:?}");
        // Roots only: each unwatched root sits in a watched folder, and
        // every listed folder is watched or inside an unwatched root.
        for root in &walked.unwatched {
            assert!(
                watched.contains(&root.parent().as_str().to_owned()),
                "{root}"
            );
        }
        for dir in &walked.dirs {
            let covered = watched.contains(&dir.as_str().to_owned())
                || walked.unwatched.iter().any(|root| dir.starts_with(root));
            assert!(covered, "{dir} is neither watched nor unwatched");
        }
        assert_eq!(walked.unwatched_count, walked.dirs.len() - watched.len());
        assert!(walked.unwatched_count > walked.unwatched.len());
        // The index is complete all the same.
        assert!(walked.files.contains("a/a1/a2/deep.txt"));
        assert!(walked.files.contains("b/b1/b.txt"));
        Ok(())
    }

    #[test]
    fn a_killed_writers_temporary_is_removed_and_no_other_file() -> std::io::Result<()> {
        let temp = tempfile::tempdir()?;
        std::fs::create_dir_all(temp.path().join("src"))?;
        let dead = atomic_file::dead_writers_temporary("main.rs")?;
        let live = atomic_file::temp_name("main.rs")?;
        let older = ".main.rs.omnipanel-0123456789ab.tmp";
        for name in [&dead, &live, &older.to_owned(), &"main.rs".to_owned()] {
            std::fs::write(temp.path().join("src").join(name), b"x")?;
        }
        let root = Dir::open_ambient_dir(temp.path(), cap_std::ambient_authority())?;
        let walked = walk(&root, &[RelPath::root()], &mut IgnoreRules::new(&[]), None);
        assert_eq!(walked.stale_temporaries_removed, 1);
        assert!(!temp.path().join("src").join(&dead).exists());
        for kept in [&live, &older.to_owned(), &"main.rs".to_owned()] {
            assert!(temp.path().join("src").join(kept).exists(), "{kept}");
        }
        assert_eq!(
            walked.files.iter().collect::<Vec<_>>(),
            ["src/main.rs"],
            "temporaries are not indexed"
        );
        Ok(())
    }

    #[test]
    fn without_watches_nothing_is_unwatched() -> std::io::Result<()> {
        let dir = tree()?;
        let mut rules = IgnoreRules::new(&[]);
        let walked = walk(
            &sandbox::open_root(dir.path())?,
            &[RelPath::root()],
            &mut rules,
            None,
        );
        assert_eq!(walked.unwatched_count, 0);
        assert!(walked.files.contains("top.txt"));
        Ok(())
    }
}
