//! Local repository operations, one file per use case: the status of the
//! working tree (`status.rs`), branches and checkout (`branches.rs`),
//! history (`history.rs`), staging and commits (`index.rs`). Each function
//! takes the open repository (on the blocking pool) and returns plain
//! types; paths from clients are checked against the project sandbox first
//! ([`repo_paths`]). This file keeps what several use cases share (commit
//! descriptions, the user's identity, the path check) and re-exports the
//! rest, so every operation is still reached as `git::repo::*`.

mod branches;
mod history;
mod index;
pub mod status;

use git2::Repository;

pub use self::{
    branches::{BranchInfo, branches, checkout, create_branch, delete_branch},
    history::log,
    index::{commit, stage, unstage},
    status::{Change, Entry, Operation, RepoStatus},
};
use crate::reason::Reason;
use crate::{
    error::{Error, Result},
    files::OpenProject,
};

/// A signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Name.
    pub name: String,
    /// Email.
    pub email: String,
    /// Time, ms since the epoch.
    pub time_ms: i64,
}

/// A commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Id.
    pub id: String,
    /// Short id.
    pub short_id: String,
    /// Summary.
    pub summary: String,
    /// Message.
    pub message: String,
    /// Author.
    pub author: Person,
    /// Committer.
    pub committer: Person,
    /// Parents.
    pub parents: Vec<String>,
}

fn person(signature: &git2::Signature<'_>) -> Person {
    Person {
        name: signature.name().unwrap_or_default().to_owned(),
        email: signature.email().unwrap_or_default().to_owned(),
        time_ms: signature.when().seconds() * 1000,
    }
}

/// Describe a commit.
pub fn commit_info(commit: &git2::Commit<'_>) -> CommitInfo {
    let id = commit.id().to_string();
    CommitInfo {
        short_id: id.chars().take(7).collect(),
        id,
        summary: commit
            .summary()
            .ok()
            .flatten()
            .unwrap_or_default()
            .to_owned(),
        message: commit.message().unwrap_or_default().to_owned(),
        author: person(&commit.author()),
        committer: person(&commit.committer()),
        parents: commit.parent_ids().map(|p| p.to_string()).collect(),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Check client paths against the project and make them relative to the
/// repository's working directory.
pub fn repo_paths(
    repo: &Repository,
    project: &OpenProject,
    paths: &[String],
) -> Result<Vec<String>> {
    let workdir = repo
        .workdir()
        .ok_or_else(|| Error::failed_precondition("the repository has no working tree (bare)"))?
        .to_owned();
    let workdir = std::fs::canonicalize(&workdir).unwrap_or(workdir);
    let mut out = Vec::with_capacity(paths.len());
    for (index, raw) in paths.iter().enumerate() {
        let relative = project.check(&format!("paths[{index}]"), raw)?;
        let absolute = project.root().join(relative.as_path());
        let inside = absolute.strip_prefix(&workdir).map_err(|_| {
            Error::invalid_argument(format!("paths[{index}]"), "outside the repository")
        })?;
        out.push(inside.display().to_string());
    }
    Ok(out)
}

/// The user's identity from git config, with a clear error when missing.
pub fn signature(repo: &Repository) -> Result<git2::Signature<'static>> {
    repo.signature().map_err(|_| {
        Error::failed_precondition(
            "git does not know who you are: set it with `git config --global user.name \"Your Name\"` and `git config --global user.email you@example.com`",
        )
        .with_reason(Reason::GitIdentityMissing)
    })
}

/// What the use cases' unit tests start from. The history, status and
/// branch tests all need a repository with commits, made through the
/// module's own stage and commit.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::{
        path::Path,
        process::{Command, Output},
    };

    use git2::Repository;

    use super::{commit, stage};

    /// The git command line in `dir`, as a user runs it, with an identity
    /// given and the system's config left out, for tests that set a
    /// repository up as git does. The user's own config is read, as
    /// libgit2 in the test reads it: both see the same rules.
    pub(crate) fn git_cli(dir: &Path, args: &[&str]) -> Output {
        Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap()
    }

    /// [`git_cli`] that must succeed; its output.
    pub(crate) fn git_ok(dir: &Path, args: &[&str]) -> String {
        let output = git_cli(dir, args);
        assert!(
            output.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// A repository with an identity in its own config and `n` commits,
    /// commit `i` writing `file{i % 2}.txt`.
    pub(in crate::git) fn repo_with_commits(dir: &Path, n: usize) -> Repository {
        let repo = Repository::init(dir).unwrap();
        {
            let mut config = repo.config().unwrap();
            config.set_str("user.name", "Unit Test").unwrap();
            config.set_str("user.email", "unit@example.com").unwrap();
        }
        let mut repo = repo;
        for i in 0..n {
            std::fs::write(dir.join(format!("file{}.txt", i % 2)), format!("{i}\n")).unwrap();
            stage(&mut repo, &[], true).unwrap();
            commit(&mut repo, &format!("commit {i}"), false).unwrap();
        }
        repo
    }
}
