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
//! Anything the record cannot vouch for means a full status: lost events
//! or a rescan, a folder not watched (degraded mode, the first walk still
//! running), HEAD or the index rewritten, config or exclude files
//! changed, a `.gitignore` at the root, too many changes, a repository
//! with submodules, a `.git` that is not a plain folder of the project.

use std::{
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

/// A file's size, modification time and identity (inode and change time,
/// where the OS has them), or its absence.
type Stamp = Option<(u64, SystemTime, Option<(u64, i64)>)>;

/// What the index's side and git's rules are read from, as stamps.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Inputs {
    head: Option<git2::Oid>,
    files: Vec<(PathBuf, Stamp)>,
}

impl Inputs {
    fn read(repo: &Repository) -> Self {
        let git_dir = repo.path();
        let mut paths: Vec<PathBuf> = ["index", "config", "info/exclude", "info/attributes"]
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
            files: paths
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
        Self::stamped(repo, self.files.iter().map(|(p, _)| p.clone()).collect())
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
    let cache = match epoch {
        None => {
            tracing::debug!("no warm status next time: the watcher does not cover the tree now");
            None
        }
        Some(_) if !eligible(repo, project) => {
            tracing::debug!("no warm status: submodules, or .git is not the project's own folder");
            None
        }
        Some(_) if inputs.again(repo) != inputs => {
            tracing::debug!(
                "no warm status next time: HEAD, the index or git's config changed during the status"
            );
            None
        }
        Some(epoch) => Some(StatusCache {
            epoch,
            inputs,
            index,
            worktree,
        }),
    };
    Ok((answer, cache))
}

/// Whether the watcher can vouch for this repository's work tree: the
/// project's own `.git` folder (not a link, not a linked worktree's file)
/// and no submodules (their insides are another repository's).
fn eligible(repo: &Repository, project: &OpenProject) -> bool {
    let root = project.root();
    let plain_git_dir = std::fs::symlink_metadata(root.join(".git")).is_ok_and(|m| m.is_dir());
    plain_git_dir
        && repo
            .workdir()
            .is_some_and(|w| w == root || w == root.join(""))
        && repo.path() == root.join(".git").join("")
        && repo
            .index()
            .is_ok_and(|index| !index.iter().any(|entry| entry.mode == 0o160_000))
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
        if self.inputs.again(repo) != self.inputs {
            tracing::debug!("full status: HEAD, the index or git's config changed");
            return Ok(None);
        }
        if changes.paths.iter().any(String::is_empty) {
            tracing::debug!("full status: a change at the root, or too many changes");
            return Ok(None);
        }
        let mut at: Vec<String> = changes.paths;
        at.extend(changes.blind);
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
