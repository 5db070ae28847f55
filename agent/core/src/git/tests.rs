//! Tests of the Git facade against real repositories in temporary
//! folders: local use cases (status, index, commit, history, branches,
//! diff) and the remote ones with a bare repository on disk as the remote
//! (push, fetch, pull, and missing or unreachable remotes); and what the
//! repository may not do to the agent: repositories above the project or
//! reaching outside it, credential helpers from `.git/config`, `git.token`
//! sent where it is not meant to go (against a loopback HTTP server that
//! asks for credentials and records what it gets).

use std::{path::Path, sync::Arc, time::Duration};

use git2::{Repository, RepositoryInitOptions};

use crate::{
    config::FilesSettings,
    error::{ErrorKind, Result},
    events::EventBus,
    files::OpenProject,
    git::GitEvent,
    git::{
        Git, GitSettings, LogQuery, PushSpec,
        credentials::Token,
        diff::{DiffQuery, DiffTarget},
        remote::{PullMode, PullOutcome},
        repo::Change,
        transfer::{Transfer, TransferEvent},
    },
    projects::ProjectEvent,
    projects::{ProjectObserver, Projects, git_summary},
    reason::Reason,
    store::Store,
};

struct Fixture {
    root: tempfile::TempDir,
    git: Arc<Git>,
    projects: Arc<Projects>,
}

impl Fixture {
    async fn new() -> Self {
        Self::with_token(None).await
    }

    async fn with_token(token: Option<Token>) -> Self {
        let root = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&root.path().join("state.db")).unwrap();
        let git = Git::start(
            Arc::new(EventBus::<GitEvent>::new(1, 64)),
            GitSettings {
                token,
                timeout: Duration::from_secs(10),
            },
            Arc::new(|| {}),
        )
        .await
        .unwrap();
        let projects = Projects::start(
            store,
            Arc::new(EventBus::<ProjectEvent>::new(1, 64)),
            FilesSettings::default(),
            crate::projects::ProjectBoundaries::from_env(&["~".into()]),
            vec![git.clone() as Arc<dyn ProjectObserver>],
        )
        .await
        .unwrap();
        Self {
            root,
            git,
            projects,
        }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.root.path().join(name)
    }

    /// A new repository on branch main with an identity, opened as a
    /// project.
    async fn repository(&self, name: &str) -> Arc<OpenProject> {
        let path = self.path(name);
        let mut options = RepositoryInitOptions::new();
        options.initial_head("main");
        let repo = Repository::init_opts(&path, &options).unwrap();
        identify(&repo);
        self.open(&path).await
    }

    async fn open(&self, path: &Path) -> Arc<OpenProject> {
        let view = self
            .projects
            .open_project(&path.display().to_string(), "")
            .await
            .unwrap();
        self.projects.handle(&view.record.id).await.unwrap()
    }

    /// A bare repository to push to, as a file path.
    fn bare(&self, name: &str) -> String {
        let path = self.path(name);
        let mut options = RepositoryInitOptions::new();
        options.bare(true).initial_head("main");
        Repository::init_opts(&path, &options).unwrap();
        path.display().to_string()
    }

    async fn commit_file(&self, project: &Arc<OpenProject>, file: &str, content: &str) -> String {
        std::fs::write(project.root().join(file), content).unwrap();
        self.git
            .stage(project, vec![file.to_owned()], false)
            .await
            .unwrap();
        self.git
            .commit(project, format!("Change {file}"), false)
            .await
            .unwrap()
            .id
    }

    async fn shutdown(self) {
        self.git.shutdown().await;
        self.projects.shutdown().await;
    }
}

fn identify(repo: &Repository) {
    let mut config = repo.config().unwrap();
    config.set_str("user.name", "Test").unwrap();
    config.set_str("user.email", "test@example.com").unwrap();
}

fn add_remote(project: &OpenProject, name: &str, url: &str) {
    Repository::open(project.root())
        .unwrap()
        .remote(name, url)
        .unwrap();
}

/// Read a transfer to its end: the progress updates seen and the result.
async fn finish<R>(mut transfer: Transfer<R>) -> (usize, Result<R>) {
    let mut progress = 0;
    while let Some(event) = transfer.next().await {
        match event {
            TransferEvent::Progress(_) => progress += 1,
            TransferEvent::Done(result) => {
                assert!(transfer.next().await.is_none(), "nothing after the result");
                return (progress, result);
            }
        }
    }
    panic!("the transfer ended without a result");
}

fn push_spec(remote: &str) -> PushSpec {
    PushSpec {
        remote: remote.to_owned(),
        branch: String::new(),
        set_upstream: true,
        force: false,
    }
}

#[tokio::test]
async fn stage_commit_log_branches_and_diff() {
    let f = Fixture::new().await;
    let project = f.repository("work").await;
    let empty = f.git.status(&project).await.unwrap();
    assert!(empty.empty);
    assert_eq!(empty.branch.as_deref(), Some("main"));

    std::fs::write(project.root().join("a.txt"), "one\n").unwrap();
    let status = f.git.status(&project).await.unwrap();
    assert_eq!(status.untracked.len(), 1);
    let staged = f.git.stage(&project, Vec::new(), true).await.unwrap();
    assert_eq!(staged.staged[0].path, "a.txt");
    assert_eq!(staged.staged[0].change, Change::Added);
    let unstaged = f.git.unstage(&project, Vec::new(), true).await.unwrap();
    assert!(unstaged.staged.is_empty());
    let first = f.commit_file(&project, "a.txt", "one\n").await;
    let second = f.commit_file(&project, "a.txt", "two\n").await;

    let page = f.git.log(&project, LogQuery::default()).await.unwrap();
    let ids: Vec<_> = page.commits.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()]);
    let one = f
        .git
        .log(
            &project,
            LogQuery {
                limit: 1,
                ..LogQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(one.commits.len(), 1);
    assert!(!one.next_page_token.is_empty());
    let err = f
        .git
        .log(
            &project,
            LogQuery {
                limit: 1001,
                ..LogQuery::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.field(), Some("limit"));

    let branch = f
        .git
        .create_branch(&project, "feature".to_owned(), String::new(), true)
        .await
        .unwrap();
    assert!(branch.current);
    let names: Vec<_> = f
        .git
        .branches(&project, false)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    let status = f.git.checkout(&project, "main".to_owned()).await.unwrap();
    assert_eq!(status.branch.as_deref(), Some("main"));
    let deleted = f
        .git
        .delete_branch(&project, "feature".to_owned(), false)
        .await
        .unwrap();
    assert_eq!(deleted, second);

    std::fs::write(project.root().join("a.txt"), "three\n").unwrap();
    let diff = f
        .git
        .diff(
            &project,
            DiffQuery {
                target: DiffTarget::WorktreeToIndex,
                paths: Vec::new(),
                context_lines: 3,
                max_bytes: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(diff.files_changed, 1);
    assert_eq!((diff.insertions, diff.deletions), (1, 1));
    assert!(diff.patch.contains("+three"));

    let outside = f
        .git
        .stage(&project, vec!["../elsewhere".to_owned()], false)
        .await
        .unwrap_err();
    assert_eq!(outside.kind(), ErrorKind::PermissionDenied, "{outside}");
    f.shutdown().await;
}

#[tokio::test]
async fn a_folder_that_is_not_a_repository_is_named() {
    let f = Fixture::new().await;
    std::fs::create_dir(f.path("plain")).unwrap();
    let project = f.open(&f.path("plain")).await;
    let err = f.git.status(&project).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(err.reason().map(Reason::as_str), Some("NOT_A_REPOSITORY"));
    f.shutdown().await;
}

#[tokio::test]
async fn push_fetch_and_pull_through_a_bare_remote() {
    let f = Fixture::new().await;
    let remote = f.bare("remote.git");
    let mine = f.repository("mine").await;
    let first = f.commit_file(&mine, "a.txt", "one\n").await;
    add_remote(&mine, "origin", &remote);

    // Push: the remote gets the branch, and it becomes the upstream.
    let (_, pushed) = finish(f.git.push(&mine, push_spec("origin")).await).await;
    let pushed = pushed.unwrap();
    assert!(
        pushed
            .iter()
            .any(|r| r.name == "refs/heads/main" && r.error.is_none()),
        "{pushed:?}"
    );
    let bare = Repository::open_bare(&remote).unwrap();
    assert_eq!(
        bare.refname_to_id("refs/heads/main").unwrap().to_string(),
        first
    );
    let status = f.git.status(&mine).await.unwrap();
    assert_eq!(status.upstream, Some(("origin/main".to_owned(), 0, 0)));

    // Someone else clones, commits and pushes.
    let theirs_path = f.path("theirs");
    let theirs_repo = Repository::clone(&remote, &theirs_path).unwrap();
    identify(&theirs_repo);
    drop(theirs_repo);
    let theirs = f.open(&theirs_path).await;
    let second = f.commit_file(&theirs, "b.txt", "two\n").await;
    let (_, pushed) = finish(f.git.push(&theirs, push_spec("")).await).await;
    pushed.unwrap();

    // Fetch sees it as a remote-tracking update; HEAD stays.
    let (_, fetched) = finish(f.git.fetch(&mine, String::new()).await).await;
    let fetched = fetched.unwrap();
    assert!(
        fetched
            .iter()
            .any(|r| r.name == "refs/remotes/origin/main" && r.new_id == second),
        "{fetched:?}"
    );
    let status = f.git.status(&mine).await.unwrap();
    assert_eq!(status.head.as_deref(), Some(first.as_str()));
    assert_eq!(status.upstream, Some(("origin/main".to_owned(), 0, 1)));

    // Pull fast-forwards, then there is nothing new.
    let (_, pulled) = finish(
        f.git
            .pull(&mine, "origin".to_owned(), PullMode::FastForwardOnly)
            .await,
    )
    .await;
    let pulled = pulled.unwrap();
    assert_eq!(pulled.outcome, PullOutcome::FastForwarded);
    assert_eq!(pulled.head, second);
    assert_eq!(
        std::fs::read_to_string(mine.root().join("b.txt")).unwrap(),
        "two\n"
    );
    let (_, again) = finish(
        f.git
            .pull(&mine, String::new(), PullMode::FastForwardOnly)
            .await,
    )
    .await;
    assert_eq!(again.unwrap().outcome, PullOutcome::UpToDate);
    f.shutdown().await;
}

/// Diverged histories: fast-forward only refuses and says how to go on;
/// merge mode makes a merge commit with both parents when the changes do
/// not touch the same lines, and names the conflicted files when they do.
#[tokio::test]
async fn a_pull_of_diverged_branches_merges_or_names_the_conflicts() {
    let f = Fixture::new().await;
    let remote = f.bare("remote.git");
    let mine = f.repository("mine").await;
    f.commit_file(&mine, "shared.txt", "one\n").await;
    add_remote(&mine, "origin", &remote);
    let (_, pushed) = finish(f.git.push(&mine, push_spec("origin")).await).await;
    pushed.unwrap();
    let theirs_path = f.path("theirs");
    identify(&Repository::clone(&remote, &theirs_path).unwrap());
    let theirs = f.open(&theirs_path).await;

    // They change one file, I change another: diverged, no conflict.
    let their_commit = f.commit_file(&theirs, "theirs.txt", "theirs\n").await;
    let (_, pushed) = finish(f.git.push(&theirs, push_spec("")).await).await;
    pushed.unwrap();
    let my_commit = f.commit_file(&mine, "mine.txt", "mine\n").await;
    let (_, refused) = finish(
        f.git
            .pull(&mine, String::new(), PullMode::FastForwardOnly)
            .await,
    )
    .await;
    let err = refused.unwrap_err();
    assert_eq!(err.reason(), Some(Reason::NotFastForward), "{err}");
    assert!(err.to_string().contains("have diverged"), "{err}");
    let (_, merged) = finish(f.git.pull(&mine, String::new(), PullMode::Merge).await).await;
    let merged = merged.unwrap();
    assert_eq!(merged.outcome, PullOutcome::Merged);
    let repo = Repository::open(mine.root()).unwrap();
    let head = repo.head().unwrap().peel_to_commit().unwrap();
    assert_eq!(head.id().to_string(), merged.head);
    let parents: Vec<String> = head.parent_ids().map(|id| id.to_string()).collect();
    assert_eq!(parents, [my_commit, their_commit]);
    assert_eq!(head.message().ok(), Some("Merge origin/main into main"));
    assert!(mine.root().join("theirs.txt").exists());
    let (_, pushed) = finish(f.git.push(&mine, push_spec("")).await).await;
    pushed.unwrap();

    // Both change the same line: the conflict is named, not committed.
    let (_, pulled) = finish(f.git.pull(&theirs, String::new(), PullMode::Merge).await).await;
    assert_eq!(pulled.unwrap().outcome, PullOutcome::FastForwarded);
    f.commit_file(&theirs, "shared.txt", "their line\n").await;
    let (_, pushed) = finish(f.git.push(&theirs, push_spec("")).await).await;
    pushed.unwrap();
    f.commit_file(&mine, "shared.txt", "my line\n").await;
    let (_, conflicted) = finish(f.git.pull(&mine, String::new(), PullMode::Merge).await).await;
    assert_eq!(
        conflicted.unwrap().outcome,
        PullOutcome::Conflicts(vec!["shared.txt".to_owned()])
    );
    let text = std::fs::read_to_string(mine.root().join("shared.txt")).unwrap();
    assert!(
        text.contains("<<<<<<<") && text.contains("my line"),
        "{text}"
    );
    f.shutdown().await;
}

#[tokio::test]
async fn a_push_that_would_lose_commits_is_refused_unless_forced() {
    let f = Fixture::new().await;
    let remote = f.bare("remote.git");
    let mine = f.repository("mine").await;
    f.commit_file(&mine, "a.txt", "one\n").await;
    add_remote(&mine, "origin", &remote);
    finish(f.git.push(&mine, push_spec("origin")).await)
        .await
        .1
        .unwrap();

    // A diverging history elsewhere reaches the remote first.
    let other = f.repository("other").await;
    f.commit_file(&other, "x.txt", "x\n").await;
    add_remote(&other, "origin", &remote);
    let (_, result) = finish(
        f.git
            .push(
                &other,
                PushSpec {
                    force: false,
                    ..push_spec("origin")
                },
            )
            .await,
    )
    .await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.message().starts_with("pushing to origin"), "{err}");
    // Forced, it goes through.
    let (_, forced) = finish(
        f.git
            .push(
                &other,
                PushSpec {
                    force: true,
                    ..push_spec("origin")
                },
            )
            .await,
    )
    .await;
    assert!(forced.unwrap().iter().all(|r| r.error.is_none()));
    f.shutdown().await;
}

#[tokio::test]
async fn missing_and_unreachable_remotes_are_errors() {
    let f = Fixture::new().await;
    let mine = f.repository("mine").await;
    f.commit_file(&mine, "a.txt", "one\n").await;

    // No remote at all: "origin" is assumed, and named.
    let (_, result) = finish(f.git.fetch(&mine, String::new()).await).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.message().contains("\"origin\""), "{err}");
    assert!(err.message().contains("known remotes: none"), "{err}");

    add_remote(&mine, "gone", &f.path("missing.git").display().to_string());
    let (_, result) = finish(f.git.fetch(&mine, "nope".to_owned()).await).await;
    let err = result.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.message().contains("known remotes: gone"), "{err}");

    // A remote whose repository is not there is unavailable, whatever
    // the direction, and fails at once instead of hanging.
    let (_, fetched) = finish(f.git.fetch(&mine, "gone".to_owned()).await).await;
    let err = fetched.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.reason().map(Reason::as_str), Some("GIT_NETWORK"));
    assert!(err.message().starts_with("fetching from gone"), "{err}");
    let (_, pushed) = finish(f.git.push(&mine, push_spec("gone")).await).await;
    let err = pushed.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.message().starts_with("pushing to gone"), "{err}");

    // Pull needs an upstream.
    let (_, pulled) = finish(
        f.git
            .pull(&mine, "gone".to_owned(), PullMode::FastForwardOnly)
            .await,
    )
    .await;
    let err = pulled.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.message().contains("no upstream"), "{err}");

    // A clone whose remote went away: pulling is unavailable.
    let remote = f.bare("vanishing.git");
    add_remote(&mine, "vanishing", &remote);
    finish(f.git.push(&mine, push_spec("vanishing")).await)
        .await
        .1
        .unwrap();
    let clone_path = f.path("clone");
    drop(Repository::clone(&remote, &clone_path).unwrap());
    std::fs::remove_dir_all(&remote).unwrap();
    let clone = f.open(&clone_path).await;
    let (_, pulled) = finish(
        f.git
            .pull(&clone, String::new(), PullMode::FastForwardOnly)
            .await,
    )
    .await;
    let err = pulled.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert_eq!(err.reason().map(Reason::as_str), Some("GIT_NETWORK"));
    f.shutdown().await;
}

#[tokio::test]
async fn checking_out_a_remote_branch_reuses_the_local_one_as_it_is() {
    let f = Fixture::new().await;
    let project = f.repository("work").await;
    let older = f.commit_file(&project, "a.txt", "one").await;
    let newer = f.commit_file(&project, "a.txt", "two").await;
    {
        let repo = Repository::open(project.root()).unwrap();
        let older = repo
            .find_commit(git2::Oid::from_str(&older).unwrap())
            .unwrap();
        repo.branch("feature", &older, false).unwrap();
        repo.reference(
            "refs/remotes/origin/feature",
            git2::Oid::from_str(&newer).unwrap(),
            false,
            "test: a fetched remote branch ahead of the local one",
        )
        .unwrap();
    }
    let status = f
        .git
        .checkout(&project, "origin/feature".to_owned())
        .await
        .unwrap();
    assert_eq!(status.branch.as_deref(), Some("feature"));
    assert_eq!(status.head.as_deref(), Some(older.as_str()));
    // HEAD and the worktree agree: nothing shows as changed.
    assert!(
        status.staged.is_empty() && status.unstaged.is_empty(),
        "{status:?}"
    );
    assert_eq!(
        std::fs::read_to_string(project.root().join("a.txt")).unwrap(),
        "one"
    );
    f.shutdown().await;
}

#[tokio::test]
async fn a_project_inside_a_repository_has_no_git() {
    let f = Fixture::new().await;
    let outer = f.path("outer");
    let repo = Repository::init(&outer).unwrap();
    identify(&repo);
    std::fs::create_dir_all(outer.join("sub")).unwrap();
    let project = f.open(&outer.join("sub")).await;
    let err = f.git.status(&project).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert_eq!(err.reason(), Some(Reason::NotARepository), "{err}");
    assert!(
        err.message().contains("open the repository's root folder"),
        "{err}"
    );
    assert!(git_summary(project.root(), None).is_none());
    // The repository's own root is fine.
    let root = f.open(&outer).await;
    assert!(f.git.status(&root).await.is_ok());
    f.shutdown().await;
}

#[tokio::test]
async fn a_repository_reaching_outside_the_project_is_not_used() {
    let f = Fixture::new().await;
    // core.worktree pointing at another folder.
    let elsewhere = f.path("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("secret.txt"), "secret\n").unwrap();
    let moved = f.path("moved");
    let repo = Repository::init(&moved).unwrap();
    repo.config()
        .unwrap()
        .set_str("core.worktree", &elsewhere.display().to_string())
        .unwrap();
    drop(repo);
    // A .git file (as a linked worktree or submodule has) pointing at a
    // Git folder outside.
    let real = f.path("real");
    Repository::init(&real).unwrap();
    let linked = f.path("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::fs::write(
        linked.join(".git"),
        format!("gitdir: {}\n", real.join(".git").display()),
    )
    .unwrap();
    for (folder, what) in [(&moved, "work tree"), (&linked, "Git folder")] {
        let project = f.open(folder).await;
        let err = f.git.status(&project).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
        assert_eq!(
            err.reason(),
            Some(Reason::RepositoryOutsideProject),
            "{err}"
        );
        assert!(err.message().contains(what), "{err}");
        assert!(git_summary(folder, None).is_none(), "{what}");
        let (_, fetched) = finish(f.git.fetch(&project, String::new()).await).await;
        assert_eq!(
            fetched.unwrap_err().reason(),
            Some(Reason::RepositoryOutsideProject)
        );
    }
    // A .git file pointing inside the project is followed.
    let inside = f.path("inside");
    Repository::init(&inside).unwrap();
    std::fs::rename(inside.join(".git"), inside.join(".realgit")).unwrap();
    std::fs::write(inside.join(".git"), "gitdir: .realgit\n").unwrap();
    let project = f.open(&inside).await;
    f.git.status(&project).await.unwrap();
    f.shutdown().await;
}

/// A loopback "git server" answering every request with a 401 that asks
/// for Basic credentials; returns its address and the Authorization
/// headers it was sent.
fn credential_asking_server() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if line.to_ascii_lowercase().starts_with("authorization:") {
                    record.lock().unwrap().push(line.trim().to_owned());
                }
                line.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (address, seen)
}

#[tokio::test]
async fn credential_helpers_from_the_repository_never_run() {
    let f = Fixture::new().await;
    let project = f.repository("helpers").await;
    f.commit_file(&project, "a.txt", "one\n").await;
    let (address, _) = credential_asking_server();
    add_remote(
        &project,
        "origin",
        &format!("http://{address}/team/repo.git"),
    );
    let shell_marker = f.path("shell-helper-ran");
    let script_marker = f.path("script-helper-ran");
    let script = f.path("helper.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\n", script_marker.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let helpers = [
        format!("!f() {{ touch '{}'; }}; f", shell_marker.display()),
        script.display().to_string(),
    ];
    for helper in helpers {
        let mut config = Repository::open(project.root()).unwrap().config().unwrap();
        config.set_str("credential.helper", &helper).unwrap();
        drop(config);
        let (_, fetched) = finish(f.git.fetch(&project, String::new()).await).await;
        let err = fetched.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{helper}: {err}");
        let (_, pushed) = finish(f.git.push(&project, push_spec("origin")).await).await;
        assert_eq!(
            pushed.unwrap_err().kind(),
            ErrorKind::Unauthenticated,
            "{helper}"
        );
    }
    assert!(!shell_marker.exists(), "the repository's `!` helper ran");
    assert!(
        !script_marker.exists(),
        "the repository's helper program ran"
    );
    f.shutdown().await;
}

#[tokio::test]
async fn the_token_goes_only_to_listed_hosts_and_never_over_http() {
    let (address, seen) = credential_asking_server();
    let url = format!("http://{address}/team/repo.git");
    let cases: [(&[&str], &str); 3] = [
        (&[], "git.token_hosts lists no hosts"),
        (&["git.example.com"], "not in git.token_hosts"),
        (&["127.0.0.1"], "never sent over plain http"),
    ];
    for (hosts, why) in cases {
        let f = Fixture::with_token(Some(Token {
            secret: "s3cret-token".to_owned(),
            hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        }))
        .await;
        let project = f.repository("tokened").await;
        f.commit_file(&project, "a.txt", "one\n").await;
        add_remote(&project, "origin", &url);
        let (_, fetched) = finish(f.git.fetch(&project, String::new()).await).await;
        let err = fetched.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{hosts:?}: {err}");
        assert_eq!(err.reason(), Some(Reason::GitAuth), "{err}");
        assert!(err.message().contains(why), "{hosts:?}: {err}");
        let (_, pushed) = finish(f.git.push(&project, push_spec("origin")).await).await;
        assert!(pushed.unwrap_err().message().contains(why), "{hosts:?}");
        f.shutdown().await;
    }
    // Credentials from the user's own helpers may be tried; the token
    // never is.
    use base64::Engine as _;
    let sent: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .filter_map(|header| header.rsplit(' ').next())
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .collect();
    assert!(
        !sent
            .iter()
            .any(|credentials| credentials.contains("s3cret-token")),
        "the token was sent: {sent:?}"
    );
}
