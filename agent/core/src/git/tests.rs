//! Tests of the Git facade against real repositories in temporary
//! folders: local use cases (status, index, commit, history, branches,
//! diff) and the remote ones with a bare repository on disk as the remote
//! (push, fetch, pull, and missing or unreachable remotes).

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
        diff::{DiffQuery, DiffTarget},
        remote::{PullMode, PullOutcome},
        repo::Change,
        transfer::{Transfer, TransferEvent},
    },
    projects::ProjectEvent,
    projects::{ProjectObserver, Projects},
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
        let root = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&root.path().join("state.db")).unwrap();
        let git = Git::start(
            Arc::new(EventBus::<GitEvent>::new(1, 64)),
            GitSettings {
                token: None,
                timeout: Duration::from_secs(10),
            },
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
