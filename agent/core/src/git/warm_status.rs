//! Answering a status from the previous one: what git's fsmonitor and
//! untracked cache do, with the project's own watcher. The index's side of
//! a status (staged, conflicted) depends only on HEAD and the index; the
//! working tree's side changes only at paths the watcher reports
//! (`files/watch/changed.rs`). So a warm status checks that HEAD, the
//! index and every file of configuration or ignore rules outside the work
//! tree are as they were, asks the watcher what changed (a cookie makes
//! sure nothing before the question is still on its way), and reads the
//! working tree again only there and in the folders no watch covers.
//!
//! When HEAD or the index moved (a stage, an unstage, a commit, a nearby
//! checkout, git refreshing the index), the index's side is read again
//! (HEAD against the index, without the walk) and the working tree's side
//! also at the paths staged before or after and those where the two HEADs
//! differ: everywhere else the index entry is provably the same
//! ([`StatusCache::follow_index`]).
//!
//! Anything the record cannot vouch for means a full status: lost events
//! or a rescan, a folder not watched (degraded mode, the first walk still
//! running), config or exclude files changed, a conflict, an index flag
//! set or cleared (assume-unchanged, skip-worktree), HEAD moved too far,
//! a `.gitignore` at the root, too many changes, a repository with
//! submodules, a `.git` that is not a plain folder of the project.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use git2::Repository;

use crate::{
    error::Result,
    files::{OpenProject, sandbox},
    git::repo::{
        RepoStatus,
        status::{self, IndexSide, Worktree},
    },
};

/// How long to wait for the watcher to report the cookie before giving up
/// on the warm path (a busy watcher: a full status is right anyway).
const COOKIE_PATIENCE: Duration = Duration::from_secs(1);

/// Most paths a move of HEAD or the index may touch for the status to
/// follow it path by path (as many as the watcher's record keeps); more is
/// a checkout far away, answered in full.
const MOVED_PATHS_MAX: usize = 4096;

/// A file's size, modification time and identity (inode and change time,
/// where the OS has them), or its absence.
type Stamp = Option<(u64, SystemTime, Option<(u64, i64)>)>;

/// What the index's side and git's rules are read from, as stamps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inputs {
    head: Option<git2::Oid>,
    index: Stamp,
    /// git's configuration, exclude and attribute files.
    rules: Vec<(PathBuf, Stamp)>,
}

impl Inputs {
    fn read(repo: &Repository) -> Self {
        let git_dir = repo.path();
        let mut paths: Vec<PathBuf> = ["config", "info/exclude", "info/attributes"]
            .iter()
            .map(|name| git_dir.join(name))
            .collect();
        paths.extend(
            [
                git2::Config::find_global(),
                git2::Config::find_xdg(),
                git2::Config::find_system(),
            ]
            .into_iter()
            .flatten(),
        );
        if let Ok(xdg) = git2::Config::find_xdg()
            && let Some(folder) = xdg.parent()
        {
            paths.push(folder.join("ignore"));
            paths.push(folder.join("attributes"));
        }
        if let Ok(config) = repo.config() {
            for key in ["core.excludesfile", "core.attributesfile"] {
                if let Ok(path) = config.get_path(key) {
                    paths.push(path);
                }
            }
        }
        Self::stamped(repo, paths)
    }

    fn stamped(repo: &Repository, paths: Vec<PathBuf>) -> Self {
        Self {
            head: repo.head().ok().and_then(|head| head.target()),
            index: stamp(&repo.path().join("index")),
            rules: paths
                .into_iter()
                .map(|path| {
                    let stamp = stamp(&path);
                    (path, stamp)
                })
                .collect(),
        }
    }

    /// The same files stamped again now.
    fn again(&self, repo: &Repository) -> Self {
        Self::stamped(repo, self.rules.iter().map(|(p, _)| p.clone()).collect())
    }
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.len(),
        meta.modified().ok()?,
        crate::platform::fs::identity(&meta),
    ))
}

/// The last status of a repository, kept to answer the next one.
#[derive(Debug)]
pub struct StatusCache {
    epoch: u64,
    inputs: Inputs,
    /// The index's [`unseen_flags`] when this was taken.
    flags: u64,
    index: IndexSide,
    worktree: Worktree,
}

/// The repository's status, warm when the cache and the watcher allow,
/// else in full (leaving a cache for the next call when they will).
pub fn status(
    repo: &mut Repository,
    cache: &mut Option<StatusCache>,
    project: &OpenProject,
) -> Result<RepoStatus> {
    answer(repo, cache, project).map(|(answer, _)| answer)
}

/// The status, and whether it was answered warm.
pub(super) fn answer(
    repo: &mut Repository,
    cache: &mut Option<StatusCache>,
    project: &OpenProject,
) -> Result<(RepoStatus, bool)> {
    if let Some(mut kept) = cache.take()
        && let Some(answer) = kept.refresh(repo, project)?
    {
        *cache = Some(kept);
        return Ok((answer, true));
    }
    let (answer, fresh) = full(repo, project)?;
    *cache = fresh;
    Ok((answer, false))
}

/// A full status, and a cache when the watcher can keep it current.
fn full(repo: &mut Repository, project: &OpenProject) -> Result<(RepoStatus, Option<StatusCache>)> {
    // Recording starts before anything is read: what changes during the
    // walk is looked at again next time.
    let epoch = project.changed_paths().mark();
    let inputs = Inputs::read(repo);
    let (index, worktree) = status::changes(repo)?;
    let header = status::header(repo)?;
    let answer = status::assemble(header, &index, &worktree);
    let Some(epoch) = epoch else {
        tracing::debug!("no warm status next time: the watcher does not cover the tree now");
        return Ok((answer, None));
    };
    let flags = own_git_dir(repo, project)
        .then(|| repo.index().ok())
        .flatten()
        .and_then(|index| unseen_flags(&index));
    let cache = match flags {
        None => {
            tracing::debug!("no warm status: submodules, or .git is not the project's own folder");
            None
        }
        Some(_) if inputs.again(repo) != inputs => {
            tracing::debug!(
                "no warm status next time: HEAD, the index or git's config changed during the status"
            );
            None
        }
        Some(flags) => Some(StatusCache {
            epoch,
            inputs,
            flags,
            index,
            worktree,
        }),
    };
    Ok((answer, cache))
}

/// Whether the repository is the project's own `.git` folder (not a link,
/// not a linked worktree's file), whose work tree the watcher sees.
fn own_git_dir(repo: &Repository, project: &OpenProject) -> bool {
    let root = project.root();
    let plain_git_dir = std::fs::symlink_metadata(root.join(".git")).is_ok_and(|m| m.is_dir());
    plain_git_dir
        && repo
            .workdir()
            .is_some_and(|w| w == root || w == root.join(""))
        && repo.path() == root.join(".git").join("")
}

/// A fingerprint of the index's entries that carry a flag changing their
/// status without changing HEAD against the index (assume-unchanged,
/// skip-worktree, intent-to-add): what [`StatusCache::follow_index`]
/// cannot see in the staged changes. `None` when the index has a
/// submodule, whose insides are another repository's and which no watch
/// vouches for. One pass over the index; entries without such flags (all
/// but a few, in most repositories) add nothing.
fn unseen_flags(index: &git2::Index) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let flags = git2::IndexEntryFlag::VALID.bits();
    let extended = (git2::IndexEntryExtendedFlag::SKIP_WORKTREE
        | git2::IndexEntryExtendedFlag::INTENT_TO_ADD)
        .bits();
    let mut print = 0u64;
    for entry in index.iter() {
        if entry.mode == 0o160_000 {
            return None;
        }
        let flagged = (entry.flags & flags, entry.flags_extended & extended);
        if flagged != (0, 0) {
            // A sum, so that the order of the entries does not matter.
            let mut hasher = std::hash::DefaultHasher::new();
            (&entry.path, flagged).hash(&mut hasher);
            print = print.wrapping_add(hasher.finish());
        }
    }
    Some(print)
}

impl StatusCache {
    /// The status from this cache and what changed since, updating the
    /// cache; `None` when that cannot be trusted.
    fn refresh(
        &mut self,
        repo: &mut Repository,
        project: &OpenProject,
    ) -> Result<Option<RepoStatus>> {
        // Through the sandbox, not following a link.
        let Some(git_dir) = sandbox::RelPath::from_inside(Path::new(".git"))
            .and_then(|git| sandbox::open_folder(project.dir(), &git).ok())
        else {
            return Ok(None);
        };
        let Some(changes) = project
            .changed_paths()
            .since(self.epoch, &git_dir, COOKIE_PATIENCE)
        else {
            tracing::debug!(
                "full status: the watcher cannot say what changed (events lost, a rescan, or no answer to its cookie)"
            );
            return Ok(None);
        };
        if changes.paths.iter().any(String::is_empty) {
            tracing::debug!("full status: a change at the root, or too many changes");
            return Ok(None);
        }
        let mut at: Vec<String> = changes.paths;
        at.extend(changes.blind);
        let now = self.inputs.again(repo);
        if now != self.inputs {
            let Some(moved) = self.follow_index(repo, now)? else {
                return Ok(None);
            };
            at.extend(moved);
        }
        at.sort();
        at.dedup();
        if !at.is_empty() {
            let fresh = status::worktree_at(repo, &at)?;
            for path in &at {
                forget_under(&mut self.worktree, path);
            }
            self.worktree.extend(fresh);
        }
        let header = status::header(repo)?;
        // HEAD or the index changed while we read: the two sides may not
        // belong together.
        if self.inputs.again(repo) != self.inputs {
            return Ok(None);
        }
        Ok(Some(status::assemble(header, &self.index, &self.worktree)))
    }

    /// Catch up with a new HEAD or index (a stage, an unstage, a commit, a
    /// checkout, git rewriting the index's stat data): the index's side
    /// read again, and the paths whose working tree's side may have
    /// changed with it; `None` when that cannot be trusted (git's rules
    /// changed, a conflict, flags moved, too many paths).
    ///
    /// Why those paths suffice: where a path is staged neither before nor
    /// after, the old index had HEAD's old entry and the new index has
    /// HEAD's new one; where HEAD did not change there either, the index
    /// entry is the same, and so is everything the working tree's side of
    /// that path depends on, but for the flags [`unseen_flags`] vouches
    /// for. So the paths are those staged before or after (both names of
    /// a rename) and those where the two HEADs differ.
    fn follow_index(&mut self, repo: &Repository, now: Inputs) -> Result<Option<Vec<String>>> {
        if now.rules != self.inputs.rules {
            tracing::debug!("full status: git's config, exclude or attribute files changed");
            return Ok(None);
        }
        let (Some(old_tree), Some(new_tree)) =
            (tree_at(repo, self.inputs.head), tree_at(repo, now.head))
        else {
            tracing::debug!("full status: HEAD's commit cannot be read");
            return Ok(None);
        };
        let Ok(mut index) = repo.index() else {
            return Ok(None);
        };
        if index.read(false).is_err()
            || index.has_conflicts()
            || !self.index.conflicted.is_empty()
            || unseen_flags(&index) != Some(self.flags)
        {
            tracing::debug!("full status: a conflict, a submodule, or flags changed in the index");
            return Ok(None);
        }
        let side = status::index_side(repo)?;
        if self.index.staged.len() + side.staged.len() > MOVED_PATHS_MAX {
            tracing::debug!("full status: too many paths staged");
            return Ok(None);
        }
        let mut paths = BTreeSet::new();
        for entry in self.index.staged.iter().chain(&side.staged) {
            paths.insert(entry.path.clone());
            paths.extend(entry.old_path.clone());
        }
        if old_tree.as_ref().map(git2::Tree::id) != new_tree.as_ref().map(git2::Tree::id) {
            let Ok(diff) = repo.diff_tree_to_tree(old_tree.as_ref(), new_tree.as_ref(), None)
            else {
                return Ok(None);
            };
            if diff.deltas().len() > MOVED_PATHS_MAX {
                tracing::debug!("full status: HEAD moved too far");
                return Ok(None);
            }
            for delta in diff.deltas() {
                for file in [delta.old_file(), delta.new_file()] {
                    paths.extend(file.path().map(|p| p.display().to_string()));
                }
            }
        }
        // A path that is no UTF-8 reads back as another (U+FFFD in
        // place of its bytes), and would be looked at in the wrong place.
        if paths.len() > MOVED_PATHS_MAX
            || !side.conflicted.is_empty()
            || paths
                .iter()
                .any(|path| path.contains(char::REPLACEMENT_CHARACTER))
        {
            tracing::debug!("full status: too many paths, a conflict, or a path that is no UTF-8");
            return Ok(None);
        }
        self.index = side;
        self.inputs = now;
        Ok(Some(paths.into_iter().collect()))
    }
}

/// HEAD's tree at `commit`: `Some(None)` for no commit yet, `None` when
/// the commit cannot be read (gone after a garbage collection).
fn tree_at(repo: &Repository, commit: Option<git2::Oid>) -> Option<Option<git2::Tree<'_>>> {
    match commit {
        None => Some(None),
        Some(id) => repo
            .find_commit(id)
            .and_then(|commit| commit.tree())
            .ok()
            .map(Some),
    }
}

/// Drop `path` and everything below it from `worktree`.
fn forget_under(worktree: &mut Worktree, path: &str) {
    let below: Vec<String> = worktree
        .range(path.to_owned()..)
        .map(|(key, _)| key)
        .take_while(|key| key.starts_with(path))
        .filter(|key| matches!(key.as_bytes().get(path.len()), None | Some(b'/')))
        .cloned()
        .collect();
    for key in below {
        worktree.remove(&key);
    }
}

#[cfg(test)]
mod tests;
