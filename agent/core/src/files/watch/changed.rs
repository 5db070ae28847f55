//! Which paths of a project changed since someone last asked, as the
//! watcher saw them: what lets a Git status answer from the previous one
//! by looking again only where something moved (as git's fsmonitor does).
//!
//! The record vouches for nothing unless every folder that is not ignored
//! is watched (phase Live, after the first walk); each stretch where that
//! is not so, and each loss of events, starts a new epoch, and a reader
//! holding an older one must look at everything again. Folders the watcher
//! does not watch (ignored ones, which git may still care about: tracked
//! files inside, or rules that differ) are listed as blind, for the reader
//! to look into every time.
//!
//! A change made just before a question may still be in the kernel's
//! queue. [`ChangedPaths::since`] therefore writes a cookie file into the
//! watched `.git` folder and waits until the watcher has reported it:
//! events arrive in order, so everything before the cookie is recorded.

use std::{
    collections::BTreeSet,
    sync::{Condvar, Mutex},
    time::{Duration, Instant},
};

use cap_std::fs::Dir;

use crate::files::sandbox::RelPath;

/// Prefix of the cookie files written into `.git`.
const COOKIE_PREFIX: &str = "omnipanel-sync-";

/// Beyond this many changed paths the record gives up (the reader looks at
/// everything, which is then cheaper than path by path).
const MAX_PATHS: usize = 4096;

/// The record of one project.
#[derive(Debug, Default)]
pub struct ChangedPaths {
    state: Mutex<State>,
    /// Signalled when a cookie is seen or the epoch changes.
    moved: Condvar,
}

#[derive(Debug, Default)]
struct State {
    epoch: u64,
    /// Every folder that is not ignored is watched.
    complete: bool,
    /// Changed since the last [`ChangedPaths::mark`] or `since`; `""`
    /// means the whole tree.
    paths: BTreeSet<String>,
    /// Folders no watch reports on.
    blind: BTreeSet<String>,
    cookies_written: u64,
    cookies_seen: u64,
}

/// What changed since a mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Changed paths (files or whole folders); `""` is the whole tree.
    pub paths: Vec<String>,
    /// Folders to look into every time.
    pub blind: Vec<String>,
}

impl ChangedPaths {
    /// Start recording afresh: forget what changed so far. The epoch to
    /// ask [`since`](Self::since) with, or `None` when the record vouches
    /// for nothing now.
    pub fn mark(&self) -> Option<u64> {
        let mut state = crate::sync::lock(&self.state);
        state.paths.clear();
        state.complete.then_some(state.epoch)
    }

    /// What changed since the mark of `epoch`, and a new mark; `None` when
    /// the record cannot say (events lost, a folder not watched, too many
    /// changes, or the watcher did not answer the cookie within
    /// `patience`). `git_dir` is the project's `.git` folder, which the
    /// watcher watches.
    pub fn since(&self, epoch: u64, git_dir: &Dir, patience: Duration) -> Option<Changes> {
        let cookie = {
            let mut state = crate::sync::lock(&self.state);
            if !state.complete || state.epoch != epoch {
                return None;
            }
            state.cookies_written += 1;
            state.cookies_written
        };
        let name = format!("{COOKIE_PREFIX}{cookie}");
        git_dir.create(&name).ok()?;
        // Its creation is what the watcher reports; gone at once.
        let _ = git_dir.remove_file(&name);
        let deadline = Instant::now() + patience;
        let mut state = crate::sync::lock(&self.state);
        while state.cookies_seen < cookie && state.complete && state.epoch == epoch {
            let left = deadline.checked_duration_since(Instant::now())?;
            state = self
                .moved
                .wait_timeout(state, left)
                .map_or_else(|poisoned| poisoned.into_inner().0, |(guard, _)| guard);
        }
        if !state.complete || state.epoch != epoch {
            return None;
        }
        let paths = std::mem::take(&mut state.paths);
        Some(Changes {
            paths: paths.into_iter().collect(),
            blind: state.blind.iter().cloned().collect(),
        })
    }

    /// The watcher reported `path` (any kind of change, ignored or not).
    pub(crate) fn record(&self, path: &RelPath) {
        let text = path.as_str();
        let mut components = text.split('/');
        if components.next() == Some(".git") {
            // The repository's own files are the reader's to check (it
            // compares HEAD, the index and the config itself); only the
            // cookies matter here.
            if let Some(number) = text
                .strip_prefix(".git/")
                .and_then(|name| name.strip_prefix(COOKIE_PREFIX))
                .and_then(|n| n.parse::<u64>().ok())
            {
                let mut state = crate::sync::lock(&self.state);
                state.cookies_seen = state.cookies_seen.max(number);
                self.moved.notify_all();
            }
            return;
        }
        let parts: Vec<&str> = text.split('/').collect();
        let changed = if let Some(nested) = parts.iter().position(|part| *part == ".git") {
            // Inside a nested repository's .git: the folder holding it
            // may have become (or stopped being) a repository.
            parts[..nested].join("/")
        } else if matches!(path.name(), ".gitignore" | ".gitattributes") {
            // Rules for the whole folder below.
            path.parent().as_str().to_owned()
        } else {
            text.to_owned()
        };
        let mut state = crate::sync::lock(&self.state);
        if state.paths.len() >= MAX_PATHS {
            state.paths.clear();
            state.paths.insert(String::new());
        }
        if !state.paths.contains("") {
            state.paths.insert(changed);
        }
    }

    /// Events were lost, or the tree is being walked again: nothing
    /// recorded before counts.
    pub(crate) fn lost(&self) {
        let mut state = crate::sync::lock(&self.state);
        state.epoch += 1;
        state.complete = false;
        self.moved.notify_all();
    }

    /// Whether every folder that is not ignored is watched now. Becoming
    /// incomplete starts a new epoch.
    pub(crate) fn set_complete(&self, complete: bool) {
        let mut state = crate::sync::lock(&self.state);
        if state.complete && !complete {
            state.epoch += 1;
            self.moved.notify_all();
        }
        state.complete = complete;
    }

    /// A whole walk found these folders unwatched (replacing the list).
    pub(crate) fn replace_blind(&self, blind: impl IntoIterator<Item = RelPath>) {
        let mut state = crate::sync::lock(&self.state);
        state.blind = blind.into_iter().map(|p| p.as_str().to_owned()).collect();
    }

    /// A folder moved within the project: unwatched folders in it are
    /// unwatched at their new place (a folder ignored when walked stays
    /// unwatched when a rule change lets it be moved as a kept one).
    pub(crate) fn moved(&self, from: &RelPath, to: &RelPath) {
        let mut state = crate::sync::lock(&self.state);
        let moved: Vec<String> = state
            .blind
            .iter()
            .filter_map(|blind| {
                let blind = RelPath::from_inside(std::path::Path::new(blind))?;
                blind.rebase(from, to).map(|p| p.as_str().to_owned())
            })
            .collect();
        state.blind.extend(moved);
    }

    /// More folders are unwatched.
    pub(crate) fn add_blind(&self, blind: impl IntoIterator<Item = RelPath>) {
        let mut state = crate::sync::lock(&self.state);
        state
            .blind
            .extend(blind.into_iter().map(|p| p.as_str().to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(path: &str) -> RelPath {
        RelPath::from_inside(std::path::Path::new(path)).unwrap()
    }

    #[test]
    fn records_paths_folders_of_rules_and_nested_repositories() {
        let changed = ChangedPaths::default();
        assert_eq!(changed.mark(), None, "vouches for nothing before the walk");
        changed.set_complete(true);
        let epoch = changed.mark().unwrap();
        for path in [
            "a/b.txt",
            "c/.gitignore",
            "nested/.git/HEAD",
            ".git/index",
            ".git/omnipanel-sync-1",
        ] {
            changed.record(&rel(path));
        }
        changed.add_blind([rel("node_modules")]);
        let dir = tempfile::tempdir().unwrap();
        let git_dir = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
        // The cookie this asks for is number 1, already seen above.
        let changes = changed
            .since(epoch, &git_dir, Duration::from_secs(5))
            .unwrap();
        assert_eq!(changes.paths, ["a/b.txt", "c", "nested"]);
        assert_eq!(changes.blind, ["node_modules"]);
        // Taken: the next question starts from nothing.
        changed.record(&rel(".git/omnipanel-sync-2"));
        let changes = changed
            .since(epoch, &git_dir, Duration::from_secs(5))
            .unwrap();
        assert!(changes.paths.is_empty());
    }

    #[test]
    fn a_loss_or_an_unanswered_cookie_vouches_for_nothing() {
        let changed = ChangedPaths::default();
        changed.set_complete(true);
        let epoch = changed.mark().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let git_dir = Dir::open_ambient_dir(dir.path(), cap_std::ambient_authority()).unwrap();
        // No watcher reports the cookie.
        assert_eq!(
            changed.since(epoch, &git_dir, Duration::from_millis(20)),
            None
        );
        changed.lost();
        changed.set_complete(true);
        changed.record(&rel(".git/omnipanel-sync-9"));
        assert_eq!(changed.since(epoch, &git_dir, Duration::from_secs(5)), None);
        let fresh = changed.mark().unwrap();
        assert_ne!(fresh, epoch);
        changed.set_complete(false);
        assert_eq!(changed.since(fresh, &git_dir, Duration::from_secs(5)), None);
    }

    #[test]
    fn too_many_paths_mean_the_whole_tree() {
        let changed = ChangedPaths::default();
        changed.set_complete(true);
        changed.mark();
        for n in 0..=MAX_PATHS {
            changed.record(&rel(&format!("f{n}")));
        }
        let state = crate::sync::lock(&changed.state);
        assert_eq!(state.paths.iter().collect::<Vec<_>>(), [""]);
    }
}
