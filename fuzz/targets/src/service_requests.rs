//! Target `service_requests`: the checks behind FileService and GitService
//! requests, with arbitrary field values, against a small project with a
//! Git repository built once per process (two commits, a branch, an
//! ignored folder, an uncommitted change). The input is text: the first
//! line names the request, the following lines its fields (several fields
//! on one line are separated by tabs):
//!
//! - `batch`: one step per line, `write|mkdir|delete<TAB>PATH` or
//!   `move|copy<TAB>FROM<TAB>TO` (ApplyBatch's validation);
//! - `search`: the pattern; then flags (`regex word sensitive insensitive
//!   hidden ignored before=N after=N max=N`); then `+GLOB` / `-GLOB` lines
//!   (SearchText: validation, then the search itself);
//! - `find`: the query, then the limit (FindFiles over the file index);
//! - `log`: start, limit, page token, path (GetLog);
//! - `diff`: `worktree|index|head|commits`, from, to, context lines,
//!   max bytes, then paths (GetDiff);
//! - `branch`: name, start point (CreateBranch; the branch is deleted again);
//! - `paths`: one path per line (the check of Stage/Unstage paths).
//!
//! Invariants, beyond "no panic": every refusal is a clean error (never
//! INTERNAL, always a message); what a batch would change is inside the
//! project and never inside `.git`; a search's matches point into their
//! lines and respect the limit; a fuzzy match's positions are within its
//! path; a page of history is no longer than asked for; an accepted
//! branch name is one Git accepts; repository paths stay relative.

use std::{
    path::Path,
    sync::{Arc, Mutex, OnceLock, atomic::AtomicBool},
};

use git2::{Repository, Signature};
use omnipanel_core::{
    error::{Error, ErrorKind},
    files::{
        OpenProject,
        batch::{self, BatchOp},
        find::FileIndex,
        grep::{self, CaseMode, TextMatch, TextQuery},
        ops::OverwritePolicy,
    },
    git::{
        diff::{self, DiffTarget},
        repo,
    },
};

struct Fixture {
    _base: tempfile::TempDir,
    project: Arc<OpenProject>,
    repo: Mutex<Repository>,
    index: FileIndex,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| build().expect("the request fixture can be built"))
}

fn commit_all(repo: &Repository, message: &str) -> Result<(), git2::Error> {
    let mut index = repo.index()?;
    index.add_all(["*"], git2::IndexAddOption::DEFAULT, None)?;
    index.write()?;
    let tree = repo.find_tree(index.write_tree()?)?;
    let signature = Signature::now("Fuzz", "fuzz@example.com")?;
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )?;
    Ok(())
}

fn build() -> Result<Fixture, Box<dyn std::error::Error>> {
    let base = tempfile::tempdir()?;
    let root = std::fs::canonicalize(base.path())?.join("project");
    for folder in ["src", "docs", "target"] {
        std::fs::create_dir_all(root.join(folder))?;
    }
    std::fs::write(root.join(".gitignore"), "target/\n")?;
    std::fs::write(root.join("a.txt"), "alpha\nbeta\ngamma\n")?;
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    println!(\"hi\");\n}\n",
    )?;
    std::fs::write(
        root.join("docs/readme.md"),
        "# Read me\n\nSome words here.\n",
    )?;
    std::fs::write(root.join("target/out.txt"), "built\n")?;
    let repo = Repository::init(&root)?;
    {
        let mut config = repo.config()?;
        config.set_str("user.name", "Fuzz")?;
        config.set_str("user.email", "fuzz@example.com")?;
    }
    commit_all(&repo, "first")?;
    std::fs::write(root.join("a.txt"), "alpha\nBETA\ngamma\ndelta\n")?;
    commit_all(&repo, "second\n\nwith a body")?;
    {
        let head = repo.head()?.peel_to_commit()?;
        repo.branch("feature", &head, false)?;
    }
    std::fs::write(root.join("a.txt"), "alpha\nBETA\ngamma\ndelta\nepsilon\n")?;
    std::fs::write(root.join("new.txt"), "untracked\n")?;
    let project = OpenProject::open_unwatched(&root)?;
    let index = FileIndex::default();
    index.replace(
        [
            "a.txt",
            "new.txt",
            ".gitignore",
            "src/main.rs",
            "docs/readme.md",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect(),
    );
    Ok(Fixture {
        _base: base,
        project,
        repo: Mutex::new(repo),
        index,
    })
}

fn assert_clean(what: &str, err: &Error) {
    assert_ne!(err.kind(), ErrorKind::Internal, "{what}: {err}");
    assert!(!err.message().trim().is_empty(), "{what}: an empty message");
}

/// Run one input.
pub fn run(data: &[u8]) {
    let input = crate::text(data);
    let mut lines = input.split('\n');
    let op = lines.next().unwrap_or_default().trim();
    let fields: Vec<&str> = lines.collect();
    let field = |i: usize| fields.get(i).copied().unwrap_or_default();
    let fx = fixture();
    match op {
        "batch" => batch_request(fx, &fields),
        "search" => search(fx, &fields),
        "find" => {
            let limit = field(1).trim().parse::<usize>().unwrap_or(20).min(10_000);
            let result = fx.index.find(field(0), limit);
            assert!(result.matches.len() <= limit.max(1), "too many matches");
            for found in &result.matches {
                let chars = found.path.chars().count();
                assert!(
                    found.positions.iter().all(|&p| (p as usize) < chars),
                    "positions {:?} outside {:?}",
                    found.positions,
                    found.path
                );
            }
        }
        "log" => log(fx, field(0), field(1), field(2), field(3)),
        "diff" => git_diff(fx, &fields),
        "branch" => branch(fx, field(0), field(1)),
        "paths" => {
            let paths: Vec<String> = fields.iter().map(|s| (*s).to_owned()).collect();
            let repo = lock(&fx.repo);
            match repo::repo_paths(&repo, &fx.project, &paths) {
                Ok(inside) => {
                    for path in inside {
                        assert!(
                            Path::new(&path).is_relative() && !path.split('/').any(|p| p == ".."),
                            "repository path {path:?}"
                        );
                    }
                }
                Err(err) => assert_clean("paths", &err),
            }
        }
        _ => {}
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn batch_request(fx: &Fixture, lines: &[&str]) {
    let ops: Vec<BatchOp> = lines
        .iter()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            let verb = parts.next()?;
            let a = parts.next().unwrap_or_default().to_owned();
            let b = parts.next().unwrap_or_default().to_owned();
            Some(match verb {
                "write" => BatchOp::Write {
                    path: a,
                    content: b.into_bytes(),
                    expected_version: None,
                    create_only: false,
                },
                "mkdir" => BatchOp::CreateDirectory { path: a },
                "move" => BatchOp::Move {
                    from: a,
                    to: b,
                    overwrite: false,
                },
                "copy" => BatchOp::Copy {
                    from: a,
                    to: b,
                    policy: OverwritePolicy::Fail,
                },
                "delete" => BatchOp::Delete {
                    path: a,
                    permanent: false,
                },
                _ => return None,
            })
        })
        .collect();
    match batch::changed_paths(&fx.project, ops) {
        Ok(paths) => {
            for path in paths {
                assert!(
                    !path
                        .as_str()
                        .split('/')
                        .any(|p| p.eq_ignore_ascii_case(".git") || p == ".." || p.is_empty())
                        || path.is_root(),
                    "a batch would change {path}"
                );
                if let Ok(real) = std::fs::canonicalize(fx.project.root().join(path.as_path())) {
                    assert!(
                        real.starts_with(fx.project.root())
                            && !real.starts_with(fx.project.root().join(".git")),
                        "a batch would change {path}, really {}",
                        real.display()
                    );
                }
            }
        }
        Err(err) => assert_clean("batch", &err),
    }
}

fn search(fx: &Fixture, lines: &[&str]) {
    let pattern = lines.first().copied().unwrap_or_default().to_owned();
    let mut query = TextQuery {
        pattern,
        regex: false,
        case: CaseMode::Smart,
        whole_word: false,
        include: Vec::new(),
        exclude: Vec::new(),
        before: 0,
        after: 0,
        max_results: 0,
        include_hidden: false,
        include_ignored: false,
    };
    for flag in lines.get(1).copied().unwrap_or_default().split_whitespace() {
        let number = |prefix: &str| flag.strip_prefix(prefix).and_then(|n| n.parse().ok());
        match flag {
            "regex" => query.regex = true,
            "word" => query.whole_word = true,
            "sensitive" => query.case = CaseMode::Sensitive,
            "insensitive" => query.case = CaseMode::Insensitive,
            "hidden" => query.include_hidden = true,
            "ignored" => query.include_ignored = true,
            _ => {
                if let Some(n) = number("before=") {
                    query.before = n;
                } else if let Some(n) = number("after=") {
                    query.after = n;
                } else if let Some(n) = number("max=") {
                    query.max_results = n as u64;
                }
            }
        }
    }
    for line in lines.iter().skip(2) {
        if let Some(glob) = line.strip_prefix('+') {
            query.include.push(glob.to_owned());
        } else if let Some(glob) = line.strip_prefix('-') {
            query.exclude.push(glob.to_owned());
        }
    }
    if let Err(err) = grep::validate(&fx.project, &query) {
        assert_clean("search", &err);
        return;
    }
    let found: Arc<Mutex<Vec<TextMatch>>> = Arc::default();
    let sink = found.clone();
    let outcome = grep::search(
        &fx.project,
        &query,
        Arc::new(AtomicBool::new(false)),
        move |matches| {
            lock(&sink).extend(matches);
            true
        },
    );
    let summary = match outcome {
        Ok(summary) => summary,
        Err(err) => {
            assert_clean("search", &err);
            return;
        }
    };
    let found = lock(&found);
    let limit = if query.max_results == 0 {
        1000
    } else {
        query.max_results
    };
    assert!(found.len() as u64 <= limit, "more matches than the limit");
    assert_eq!(found.len() as u64, summary.matches, "summary count");
    for hit in found.iter() {
        assert!(hit.line_number >= 1, "line 0");
        assert!(
            hit.before.len() <= query.before && hit.after.len() <= query.after,
            "more context than asked for"
        );
        for &(start, end) in &hit.ranges {
            assert!(
                start <= end && end as usize <= hit.text.len(),
                "range {start}..{end} outside {:?}",
                hit.text
            );
        }
    }
}

fn log(fx: &Fixture, start: &str, limit: &str, token: &str, path: &str) {
    // The facade refuses more than 1000 and takes 0 as its default.
    let limit = match limit.trim().parse::<usize>().unwrap_or(0) {
        0 => 50,
        n if n > 1000 => return,
        n => n,
    };
    let repo = lock(&fx.repo);
    let path = if path.is_empty() {
        None
    } else {
        match repo::repo_paths(&repo, &fx.project, &[path.to_owned()]) {
            Ok(mut paths) => paths.pop(),
            Err(err) => {
                assert_clean("log path", &err);
                return;
            }
        }
    };
    match repo::log(&repo, start, limit, token, path.as_deref()) {
        Ok((commits, _)) => assert!(commits.len() <= limit, "a page longer than asked for"),
        Err(err) => assert_clean("log", &err),
    }
}

fn git_diff(fx: &Fixture, lines: &[&str]) {
    let field = |i: usize| lines.get(i).copied().unwrap_or_default();
    let target = match field(0).trim() {
        "index" => DiffTarget::IndexToHead,
        "head" => DiffTarget::WorktreeToHead,
        "commits" => DiffTarget::Commits {
            from: field(1).to_owned(),
            to: field(2).to_owned(),
        },
        _ => DiffTarget::WorktreeToIndex,
    };
    let context = field(3).trim().parse().unwrap_or(0);
    let max_bytes = field(4).trim().parse().unwrap_or(0);
    let paths: Vec<String> = lines.iter().skip(5).map(|s| (*s).to_owned()).collect();
    let repo = lock(&fx.repo);
    match diff::diff(&repo, &target, &paths, context, max_bytes) {
        Ok(result) => {
            let limit = if max_bytes == 0 {
                diff::DEFAULT_MAX_BYTES
            } else {
                max_bytes
            };
            assert!(
                result.patch.len() as u64 <= limit || result.truncated,
                "an untruncated patch over max_bytes"
            );
        }
        Err(err) => assert_clean("diff", &err),
    }
}

fn branch(fx: &Fixture, name: &str, start: &str) {
    let mut repo = lock(&fx.repo);
    match repo::create_branch(&mut repo, name, start, false) {
        Ok(info) => {
            assert!(
                git2::Branch::name_is_valid(name).unwrap_or(false),
                "an invalid branch name {name:?} was accepted"
            );
            assert_eq!(info.name, name);
            if let Err(err) = repo::delete_branch(&mut repo, name, true) {
                panic!("the new branch {name:?} cannot be deleted: {err}");
            }
        }
        Err(err) => assert_clean("branch", &err),
    }
}
