//! History: a page of the commit log from HEAD or any revision, optionally
//! only the commits that touch one path, with an opaque token for the next
//! page.

use git2::{Oid, Repository, Sort};

use super::{CommitInfo, commit_info};
use crate::{
    error::{Error, Result},
    git::git_error,
};

/// A page of history.
pub fn log(
    repo: &Repository,
    start: &str,
    limit: usize,
    page_token: &str,
    path: Option<&str>,
) -> Result<(Vec<CommitInfo>, String)> {
    let skip: usize = if page_token.is_empty() {
        0
    } else {
        page_token
            .strip_prefix("skip:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                Error::invalid_argument("page_token", "not a token from an earlier GetLog")
            })?
    };
    let mut walk = repo
        .revwalk()
        .map_err(|e| git_error("cannot walk history", &e))?;
    walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)
        .map_err(|e| git_error("cannot walk history", &e))?;
    let start_oid: Oid = if start.is_empty() {
        match repo.head().ok().and_then(|h| h.target()) {
            Some(oid) => oid,
            None => return Ok((Vec::new(), String::new())),
        }
    } else {
        repo.revparse_single(start)
            .and_then(|o| o.peel_to_commit())
            .map(|c| c.id())
            .map_err(|e| git_error(&format!("cannot resolve {start:?}"), &e))?
    };
    walk.push(start_oid)
        .map_err(|e| git_error("cannot walk history", &e))?;
    let mut matched = 0usize;
    let mut out = Vec::new();
    let mut more = false;
    for oid in walk {
        let oid = oid.map_err(|e| git_error("cannot walk history", &e))?;
        let commit = repo
            .find_commit(oid)
            .map_err(|e| git_error("cannot read a commit", &e))?;
        if let Some(path) = path
            && !touches(repo, &commit, path)?
        {
            continue;
        }
        if matched < skip {
            matched += 1;
            continue;
        }
        if out.len() == limit {
            more = true;
            break;
        }
        matched += 1;
        out.push(commit_info(&commit));
    }
    let next = if more {
        format!("skip:{matched}")
    } else {
        String::new()
    };
    Ok((out, next))
}

fn touches(repo: &Repository, commit: &git2::Commit<'_>, path: &str) -> Result<bool> {
    let tree = commit
        .tree()
        .map_err(|e| git_error("cannot read a tree", &e))?;
    let parent_tree = commit.parent(0).ok().and_then(|p| p.tree().ok());
    let mut options = git2::DiffOptions::new();
    options.pathspec(path);
    let diff = repo
        .diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), Some(&mut options))
        .map_err(|e| git_error("cannot diff a commit", &e))?;
    Ok(diff.deltas().len() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{error::ErrorKind, git::repo::fixtures::repo_with_commits};

    #[test]
    fn log_pages_follow_their_tokens_and_filter_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo_with_commits(dir.path(), 5);
        let (first, token) = log(&repo, "", 2, "", None).unwrap();
        let summaries: Vec<_> = first.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(summaries, ["commit 4", "commit 3"]);
        let (second, token) = log(&repo, "", 2, &token, None).unwrap();
        assert_eq!(second[0].summary, "commit 2");
        let (last, token) = log(&repo, "", 2, &token, None).unwrap();
        assert_eq!(last.len(), 1);
        assert!(token.is_empty(), "no page after the last");

        let (only_odd, _) = log(&repo, "", 10, "", Some("file1.txt")).unwrap();
        let summaries: Vec<_> = only_odd.iter().map(|c| c.summary.as_str()).collect();
        assert_eq!(summaries, ["commit 3", "commit 1"]);

        let bad = log(&repo, "", 2, "page-7", None).unwrap_err();
        assert_eq!(bad.kind(), ErrorKind::InvalidArgument);
    }
}
