//! Opening a project's repository without trusting the repository. A
//! project's files may come from anyone (a cloned repository, a token
//! holder's writes), so what its `.git` says must not widen what the agent
//! reaches: the repository is opened only at the project root (never by
//! searching the folders above it), and it is refused when its Git folder,
//! its common folder or its work tree is outside the project (a `.git`
//! file with `gitdir:` pointing elsewhere, as linked worktrees and
//! submodules have; `commondir`; `core.worktree`). Refusing, rather than
//! quietly treating the folder as no repository, tells the user why their
//! Git features are missing. Every part of the agent that opens a
//! project's repository (the Git facade, the project list's summary, the
//! watcher's fingerprint) goes through [`open_project_repository`], so
//! they all agree on what the project's repository is.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
};

use git2::{ErrorCode, Repository, RepositoryOpenFlags};

use crate::{
    error::{Error, Result},
    git::git_error,
    reason::Reason,
};

/// The repository whose work tree is exactly the project `root`, with its
/// Git folder inside the project. Blocking.
pub fn open_project_repository(root: &Path) -> Result<Repository> {
    // NO_SEARCH: only `root` itself (its `.git`, or root as a Git folder)
    // is looked at, never a parent. No FROM_ENV: GIT_DIR and friends in
    // the agent's environment are ignored too.
    let repo = Repository::open_ext(root, RepositoryOpenFlags::NO_SEARCH, std::iter::empty::<&OsStr>())
        .map_err(|err| {
            if err.code() == ErrorCode::NotFound {
                Error::failed_precondition(format!(
                    "{} is not a git repository (there is no .git in it); run `git init` there, or, if it is a folder inside a repository, open the repository's root folder as the project: the agent never looks for a repository above a project",
                    root.display()
                ))
                .with_reason(Reason::NotARepository)
            } else {
                git_error("cannot open the repository", &err)
            }
        })?;
    check_inside(root, &repo)?;
    Ok(repo)
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Refuse a repository that reaches outside `root`.
fn check_inside(root: &Path, repo: &Repository) -> Result<()> {
    let root = canonical(root);
    let outside = |what: &str, place: &Path, how: &str| {
        Error::failed_precondition(format!(
            "the repository in {} is not used: its {what} is {}, not the project's own ({how}); the agent only uses a repository whose .git folder and work tree are the project's own. Open the repository's main folder as the project instead",
            root.display(),
            place.display()
        ))
        .with_reason(Reason::RepositoryOutsideProject)
    };
    let git_dir = canonical(repo.path());
    if !git_dir.starts_with(&root) {
        return Err(outside(
            "Git folder",
            &git_dir,
            "a .git file with `gitdir:` points there, as in a linked worktree or a submodule",
        ));
    }
    let common = canonical(repo.commondir());
    if !common.starts_with(&root) {
        return Err(outside(
            "common Git folder",
            &common,
            "the Git folder's `commondir` file points there",
        ));
    }
    let Some(workdir) = repo.workdir() else {
        return Err(Error::failed_precondition(format!(
            "{} is a bare repository (a Git folder without a work tree); open a checkout of it as the project",
            root.display()
        ))
        .with_reason(Reason::NotARepository));
    };
    let workdir = canonical(workdir);
    if workdir != root {
        return Err(outside(
            "work tree",
            &workdir,
            "core.worktree in the repository's config says so",
        ));
    }
    Ok(())
}
