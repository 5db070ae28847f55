//! Git end to end: temporary repositories made with the real `git` command,
//! opened as projects and driven through GitService (and a few CLI
//! commands): an empty repository, a missing identity, detached HEAD,
//! checkout refused over local changes, unmerged branch deletion, push and
//! pull between two clones of a local bare remote with progress, a merge
//! conflict, a truncated huge diff, a folder that is not a repository, and
//! the change event an outside `git commit` produces.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use omnipanel_client::{Authed, Client, proto::v1 as pb};
use omnipanel_proto::v1::git_service_client::GitServiceClient;
use omnipanel_tests::{PATIENCE, Sandbox, TestResult, projects::open_project, stderr, stdout};
use tonic::Code;

fn git_api(client: &Client) -> GitServiceClient<Authed> {
    client.git()
}

/// The sandbox's HOME gets an identity, so both the real `git` and the
/// agent (libgit2 reads the same global config) can commit.
pub(crate) fn set_identity(sandbox: &Sandbox) -> TestResult {
    std::fs::write(
        sandbox.root().join("home/.gitconfig"),
        "[user]\n\tname = Test User\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n",
    )?;
    Ok(())
}

/// Run the real git in `dir` with the sandbox's HOME and no system config.
pub(crate) fn git(sandbox: &Sandbox, dir: &Path, args: &[&str]) -> TestResult<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", sandbox.root().join("home"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()?;
    if !output.status.success() {
        return Err(format!("git {args:?} failed: {}", stderr(&output)).into());
    }
    Ok(stdout(&output).trim().to_owned())
}

/// A new folder with `git init` (and nothing committed).
pub(crate) fn init_repo(sandbox: &Sandbox, name: &str) -> TestResult<PathBuf> {
    let dir = sandbox.project_dir(name);
    std::fs::create_dir_all(&dir)?;
    git(sandbox, &dir, &["init", "-q", "-b", "main"])?;
    Ok(dir)
}

pub(crate) fn commit_file(
    sandbox: &Sandbox,
    dir: &Path,
    file: &str,
    text: &str,
    message: &str,
) -> TestResult<String> {
    std::fs::write(dir.join(file), text)?;
    git(sandbox, dir, &["add", file])?;
    git(sandbox, dir, &["commit", "-q", "-m", message])?;
    git(sandbox, dir, &["rev-parse", "HEAD"])
}

pub(crate) async fn open(client: &Client, dir: &Path) -> TestResult<String> {
    open_project(client, dir).await
}

async fn status(client: &Client, project: &str) -> TestResult<pb::RepoStatus> {
    Ok(git_api(client)
        .get_status(pb::GetStatusRequest {
            project: project.into(),
        })
        .await?
        .into_inner()
        .status
        .ok_or("no status")?)
}

async fn checkout(
    client: &Client,
    project: &str,
    target: &str,
) -> Result<pb::RepoStatus, tonic::Status> {
    Ok(git_api(client)
        .checkout(pb::CheckoutRequest {
            project: project.into(),
            target: target.into(),
        })
        .await?
        .into_inner()
        .status
        .unwrap_or_default())
}

fn paths(entries: &[pb::StatusEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

#[tokio::test]
async fn a_folder_that_is_not_a_repository_is_a_failed_precondition() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = sandbox.root().join("plain");
    std::fs::create_dir_all(&dir)?;
    let project = open(&client, &dir).await?;
    let err = status(&client, &project)
        .await
        .err()
        .ok_or("status succeeded")?;
    let status = err.downcast_ref::<tonic::Status>().ok_or("not a status")?;
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains("not a git repository"),
        "{status:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_empty_repository_then_first_commit_with_identity_rules() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "empty")?;
    let project = open(&client, &dir).await?;

    let empty = status(&client, &project).await?;
    assert!(empty.empty, "{empty:?}");
    assert_eq!(empty.branch, "main");
    assert!(empty.head.is_empty());

    std::fs::write(dir.join("a.txt"), "one\n")?;
    let untracked = status(&client, &project).await?;
    assert_eq!(paths(&untracked.untracked), ["a.txt"]);
    let staged = git_api(&client)
        .stage(pb::StageRequest {
            project: project.clone(),
            paths: vec![],
            all: true,
        })
        .await?
        .into_inner()
        .status
        .ok_or("no status")?;
    assert_eq!(paths(&staged.staged), ["a.txt"]);

    // No identity anywhere: a clear error naming what to set.
    let commit = |message: &str| {
        let mut api = git_api(&client);
        let request = pb::CommitRequest {
            project: project.clone(),
            message: message.into(),
            amend: false,
        };
        async move { api.commit(request).await }
    };
    let missing = commit("first")
        .await
        .err()
        .ok_or("committed without identity")?;
    assert_eq!(missing.code(), Code::FailedPrecondition, "{missing:?}");
    assert!(missing.message().contains("user.name"), "{missing:?}");

    set_identity(&sandbox)?;
    let empty_message = commit("  \n").await.err().ok_or("empty message accepted")?;
    assert_eq!(
        empty_message.code(),
        Code::InvalidArgument,
        "{empty_message:?}"
    );

    let first = commit("first")
        .await?
        .into_inner()
        .commit
        .ok_or("no commit")?;
    assert_eq!(first.summary, "first");
    assert_eq!(first.author.ok_or("no author")?.name, "Test User");
    let after = status(&client, &project).await?;
    assert!(!after.empty);
    assert_eq!(after.head, first.id);
    assert!(
        after.staged.is_empty() && after.untracked.is_empty(),
        "{after:?}"
    );
    // The real git agrees.
    assert_eq!(git(&sandbox, &dir, &["log", "--format=%s"])?, "first");

    let nothing = commit("again").await.err().ok_or("empty commit accepted")?;
    assert_eq!(nothing.code(), Code::FailedPrecondition, "{nothing:?}");
    Ok(())
}

#[tokio::test]
async fn branches_detached_head_and_refused_checkout_and_delete() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "branchy")?;
    let first = commit_file(&sandbox, &dir, "a.txt", "one\n", "first")?;
    commit_file(&sandbox, &dir, "a.txt", "two\n", "second")?;
    let project = open(&client, &dir).await?;

    // Detached HEAD at the first commit, and back.
    let detached = checkout(&client, &project, &first).await?;
    assert!(detached.detached, "{detached:?}");
    assert_eq!(detached.head, first);
    assert!(status(&client, &project).await?.detached);
    let back = checkout(&client, &project, "main").await?;
    assert!(!back.detached);
    assert_eq!(back.branch, "main");

    // A branch from the first commit that changes a.txt.
    let created = git_api(&client)
        .create_branch(pb::CreateBranchRequest {
            project: project.clone(),
            name: "feature".into(),
            start_point: first.clone(),
            checkout: true,
        })
        .await?
        .into_inner()
        .branch
        .ok_or("no branch")?;
    assert_eq!(created.commit, first);
    assert_eq!(status(&client, &project).await?.branch, "feature");
    commit_file(&sandbox, &dir, "a.txt", "feature\n", "feature work")?;
    checkout(&client, &project, "main").await?;

    let branches = git_api(&client)
        .list_branches(pb::ListBranchesRequest {
            project: project.clone(),
            include_remote: false,
        })
        .await?
        .into_inner()
        .branches;
    let names: Vec<&str> = branches.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["feature", "main"], "{branches:?}");
    assert!(branches.iter().any(|b| b.name == "main" && b.current));
    assert!(
        branches
            .iter()
            .all(|b| b.commit_time_unix_ms > 0 && !b.summary.is_empty())
    );

    // Local changes to a.txt: switching would overwrite them.
    std::fs::write(dir.join("a.txt"), "precious local edit\n")?;
    let refused = checkout(&client, &project, "feature")
        .await
        .err()
        .ok_or("checkout overwrote changes")?;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("a.txt"), "{refused:?}");
    assert_eq!(
        std::fs::read_to_string(dir.join("a.txt"))?,
        "precious local edit\n"
    );
    assert_eq!(status(&client, &project).await?.branch, "main");
    std::fs::write(dir.join("a.txt"), "two\n")?;

    // feature is not merged into main.
    let delete = |force: bool| {
        let mut api = git_api(&client);
        let request = pb::DeleteBranchRequest {
            project: project.clone(),
            name: "feature".into(),
            force,
        };
        async move { api.delete_branch(request).await }
    };
    let unmerged = delete(false)
        .await
        .err()
        .ok_or("deleted an unmerged branch")?;
    assert_eq!(unmerged.code(), Code::FailedPrecondition, "{unmerged:?}");
    assert!(unmerged.message().contains("feature"), "{unmerged:?}");
    delete(true).await?;
    assert!(git(&sandbox, &dir, &["branch", "--list", "feature"])?.is_empty());

    // The current branch cannot be deleted at all.
    let current = git_api(&client)
        .delete_branch(pb::DeleteBranchRequest {
            project: project.clone(),
            name: "main".into(),
            force: true,
        })
        .await
        .err()
        .ok_or("deleted the current branch")?;
    assert_eq!(current.code(), Code::FailedPrecondition, "{current:?}");
    Ok(())
}

/// Drain a transfer stream: (messages carrying progress, the last message).
pub(crate) async fn drain<M: Default>(
    mut stream: tonic::Streaming<M>,
    progress: impl Fn(&M) -> Option<&pb::TransferProgress>,
) -> TestResult<(usize, M)> {
    let mut seen = 0;
    let mut last = M::default();
    while let Some(message) = stream.message().await? {
        if progress(&message)
            .is_some_and(|p| p.objects_total > 0 || p.bytes > 0 || !p.message.is_empty())
        {
            seen += 1;
        }
        last = message;
    }
    Ok((seen, last))
}

pub(crate) async fn push(client: &Client, project: &str) -> TestResult<(usize, pb::PushResponse)> {
    let stream = git_api(client)
        .push(pb::PushRequest {
            project: project.into(),
            remote: String::new(),
            branch: String::new(),
            set_upstream: false,
            force: false,
        })
        .await?
        .into_inner();
    drain(stream, |m: &pb::PushResponse| m.progress.as_ref()).await
}

pub(crate) async fn pull(
    client: &Client,
    project: &str,
    mode: pb::PullMode,
) -> Result<(usize, pb::PullResponse), Box<dyn std::error::Error + Send + Sync>> {
    let stream = git_api(client)
        .pull(pb::PullRequest {
            project: project.into(),
            remote: String::new(),
            mode: mode.into(),
        })
        .await?
        .into_inner();
    drain(stream, |m: &pb::PullResponse| m.progress.as_ref()).await
}

/// A bare remote with one commit and two clones of it, both opened.
pub(crate) async fn two_clones(
    sandbox: &Sandbox,
    client: &Client,
) -> TestResult<(PathBuf, String, PathBuf, String)> {
    let seed = init_repo(sandbox, "seed")?;
    commit_file(sandbox, &seed, "shared.txt", "line\n", "seed")?;
    let remote = sandbox.root().join("remote.git");
    git(
        sandbox,
        sandbox.root(),
        &[
            "clone",
            "-q",
            "--bare",
            &seed.display().to_string(),
            &remote.display().to_string(),
        ],
    )?;
    let mut out = Vec::new();
    for name in ["alice", "bob"] {
        let dir = sandbox.root().join(name);
        git(
            sandbox,
            sandbox.root(),
            &[
                "clone",
                "-q",
                &remote.display().to_string(),
                &dir.display().to_string(),
            ],
        )?;
        let id = open(client, &dir).await?;
        out.push((dir, id));
    }
    let (bob, alice) = (out.pop().ok_or("clone")?, out.pop().ok_or("clone")?);
    Ok((alice.0, alice.1, bob.0, bob.1))
}

#[tokio::test]
async fn push_and_pull_round_trip_between_two_clones_with_progress() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (alice_dir, alice, _bob_dir, bob) = two_clones(&sandbox, &client).await?;

    let up = status(&client, &alice)
        .await?
        .upstream
        .ok_or("no upstream")?;
    assert_eq!(
        (up.name.as_str(), up.ahead, up.behind),
        ("origin/main", 0, 0)
    );

    // Enough content that the pack is more than a handful of bytes.
    let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(alice_dir.join("data.txt"), &big)?;
    let mut api = git_api(&client);
    api.stage(pb::StageRequest {
        project: alice.clone(),
        paths: vec!["data.txt".into()],
        all: false,
    })
    .await?;
    let commit = api
        .commit(pb::CommitRequest {
            project: alice.clone(),
            message: "add data".into(),
            amend: false,
        })
        .await?
        .into_inner()
        .commit
        .ok_or("no commit")?;
    let ahead = status(&client, &alice)
        .await?
        .upstream
        .ok_or("no upstream")?;
    assert_eq!(ahead.ahead, 1);

    let (_, pushed) = push(&client, &alice).await?;
    assert!(pushed.done, "{pushed:?}");
    let main = pushed
        .updated
        .iter()
        .find(|r| r.name == "refs/heads/main")
        .ok_or("main not pushed")?;
    assert!(main.error.is_empty(), "{main:?}");

    let (progress, pulled) = pull(&client, &bob, pb::PullMode::FastForwardOnly).await?;
    assert!(pulled.done);
    assert_eq!(
        pulled.outcome,
        i32::from(pb::PullOutcome::FastForwarded),
        "{pulled:?}"
    );
    assert_eq!(pulled.head, commit.id);
    assert!(progress > 0, "no transfer progress was streamed");
    assert_eq!(
        std::fs::read_to_string(sandbox.root().join("bob/data.txt"))?,
        big
    );

    let (_, again) = pull(&client, &bob, pb::PullMode::FastForwardOnly).await?;
    assert_eq!(again.outcome, i32::from(pb::PullOutcome::UpToDate));
    Ok(())
}

#[tokio::test]
async fn diverged_pull_is_refused_then_merge_reports_conflicts() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (alice_dir, _alice, bob_dir, bob) = two_clones(&sandbox, &client).await?;

    commit_file(
        &sandbox,
        &alice_dir,
        "shared.txt",
        "alice's line\n",
        "alice",
    )?;
    git(&sandbox, &alice_dir, &["push", "-q", "origin", "main"])?;
    commit_file(&sandbox, &bob_dir, "shared.txt", "bob's line\n", "bob")?;

    let refused = pull(&client, &bob, pb::PullMode::FastForwardOnly)
        .await
        .err()
        .ok_or("diverged pull accepted")?;
    let refused = refused
        .downcast_ref::<tonic::Status>()
        .ok_or("not a status")?;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("diverged"), "{refused:?}");

    let (_, merged) = pull(&client, &bob, pb::PullMode::Merge).await?;
    assert_eq!(
        merged.outcome,
        i32::from(pb::PullOutcome::Conflicts),
        "{merged:?}"
    );
    assert_eq!(merged.conflicts, ["shared.txt"]);
    let text = std::fs::read_to_string(bob_dir.join("shared.txt"))?;
    assert!(
        text.contains("<<<<<<<") && text.contains("bob's line") && text.contains("alice's line"),
        "{text}"
    );
    let state = status(&client, &bob).await?;
    assert_eq!(paths(&state.conflicted), ["shared.txt"]);
    assert_eq!(state.operation, i32::from(pb::RepoOperation::Merge));
    let behind = state.upstream.ok_or("no upstream")?;
    assert_eq!((behind.ahead, behind.behind), (1, 1));

    // Committing with the conflict unresolved is refused; resolving works.
    let mut api = git_api(&client);
    let early = api
        .commit(pb::CommitRequest {
            project: bob.clone(),
            message: "merge".into(),
            amend: false,
        })
        .await
        .err()
        .ok_or("committed a conflict")?;
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    std::fs::write(bob_dir.join("shared.txt"), "both lines\n")?;
    api.stage(pb::StageRequest {
        project: bob.clone(),
        paths: vec!["shared.txt".into()],
        all: false,
    })
    .await?;
    let merge = api
        .commit(pb::CommitRequest {
            project: bob.clone(),
            message: "merge alice".into(),
            amend: false,
        })
        .await?
        .into_inner()
        .commit
        .ok_or("no commit")?;
    assert_eq!(merge.parents.len(), 2, "{merge:?}");
    let done = status(&client, &bob).await?;
    assert_eq!(done.operation, i32::from(pb::RepoOperation::Unspecified));
    assert_eq!(done.upstream.ok_or("no upstream")?.ahead, 2);
    Ok(())
}

#[tokio::test]
async fn a_huge_diff_is_truncated_with_complete_statistics() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "huge")?;
    commit_file(&sandbox, &dir, "big.txt", "start\n", "first")?;
    let project = open(&client, &dir).await?;
    let lines = 100_000;
    let big: String = (0..lines)
        .map(|i| format!("generated line number {i}\n"))
        .collect();
    std::fs::write(dir.join("big.txt"), &big)?;
    std::fs::write(dir.join("blob.bin"), [0u8, 1, 2, 0, 255, 0, 7])?;
    git(&sandbox, &dir, &["add", "blob.bin"])?;

    let limit = 64 * 1024;
    let diff = git_api(&client)
        .get_diff(pb::GetDiffRequest {
            project: project.clone(),
            target: pb::DiffTarget::WorktreeToHead.into(),
            max_bytes: limit,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(diff.truncated);
    // The cut is at the limit, plus the one-line note saying so.
    assert!(
        diff.patch.len() as u64 <= limit + 200,
        "{} bytes",
        diff.patch.len()
    );
    assert_eq!(diff.files_changed, 2);
    assert_eq!(diff.insertions, lines);
    let binary = diff
        .files
        .iter()
        .find(|f| f.new_path == "blob.bin")
        .ok_or("binary file missing")?;
    assert!(binary.binary && binary.hunks.is_empty(), "{binary:?}");

    // Within the limit: whole, and hunks match the text.
    std::fs::write(dir.join("big.txt"), "start\nsmall\n")?;
    let small = git_api(&client)
        .get_diff(pb::GetDiffRequest {
            project,
            target: pb::DiffTarget::WorktreeToIndex.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(!small.truncated);
    assert!(small.patch.contains("+small"), "{}", small.patch);
    let hunk = &small.files[0].hunks[0];
    assert!(
        hunk.lines
            .iter()
            .any(|l| l.origin == "+" && l.content == "small"),
        "{hunk:?}"
    );
    Ok(())
}

#[tokio::test]
async fn an_outside_git_commit_produces_a_repository_changed_event() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "watched")?;
    commit_file(&sandbox, &dir, "a.txt", "one\n", "first")?;
    let project = open(&client, &dir).await?;
    let mut events = client
        .agent()
        .watch_events(pb::WatchEventsRequest {
            topics: vec!["git".into()],
            ..Default::default()
        })
        .await?
        .into_inner();

    let head = commit_file(
        &sandbox,
        &dir,
        "b.txt",
        "two\n",
        "second, from the command line",
    )?;
    let changed = tokio::time::timeout(PATIENCE, async {
        while let Some(item) = events.message().await? {
            if let Some(pb::watch_events_response::Item::Event(event)) = item.item
                && let Some(pb::event::Payload::RepositoryChanged(change)) = event.payload
                && change.head == head
            {
                return Ok::<_, tonic::Status>(Some(change));
            }
        }
        Ok(None)
    })
    .await??
    .ok_or("the event stream ended")?;
    assert_eq!(changed.project_id, project);
    assert_eq!(changed.branch, "main");
    assert!(!changed.detached && !changed.dirty, "{changed:?}");
    Ok(())
}

#[tokio::test]
async fn the_cli_shows_status_log_and_diff() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "cli")?;
    commit_file(&sandbox, &dir, "a.txt", "one\n", "first commit")?;
    open(&client, &dir).await?;
    std::fs::write(dir.join("a.txt"), "one\nmore\n")?;
    let at = dir.display().to_string();

    let output = sandbox.cli(&["git", "--project", &at, "status"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("On main at") && text.contains("modified:") && text.contains("a.txt"),
        "{text}"
    );

    let output = sandbox.cli(&["git", "--project", &at, "diff"])?;
    assert!(stdout(&output).contains("+more"), "{}", stdout(&output));

    let output = sandbox.cli(&["git", "--project", &at, "add", "a.txt"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    let output = sandbox.cli(&["git", "--project", &at, "commit", "-m", "second commit"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    let output = sandbox.cli(&["git", "--project", &at, "log"])?;
    let text = stdout(&output);
    assert!(
        text.contains("second commit") && text.contains("first commit"),
        "{text}"
    );

    let output = sandbox.cli(&["git", "--project", &at, "switch", "no-such-branch"])?;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no-such-branch"),
        "{}",
        stderr(&output)
    );
    Ok(())
}

/// A loopback "git server" that answers every request with a 401 asking for
/// credentials (`silent`: accepts connections and never answers). Returns
/// its URL.
fn fake_http_remote(silent: bool) -> TestResult<String> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/team/repo.git", listener.local_addr()?);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            if silent {
                // Keep it open so the client waits for an answer.
                held.push(stream);
                continue;
            }
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    Ok(url)
}

#[tokio::test]
async fn refused_credentials_and_a_silent_remote_fail_clearly_instead_of_hanging() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    sandbox.write_config("[git]\ntimeout = \"1s\"\n")?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "remote-trouble")?;
    commit_file(&sandbox, &dir, "a.txt", "one\n", "first")?;
    git(
        &sandbox,
        &dir,
        &["remote", "add", "locked", &fake_http_remote(false)?],
    )?;
    git(
        &sandbox,
        &dir,
        &["remote", "add", "silent", &fake_http_remote(true)?],
    )?;
    let project = open(&client, &dir).await?;

    let fetch = |remote: &str| {
        let mut api = git_api(&client);
        let request = pb::FetchRequest {
            project: project.clone(),
            remote: remote.into(),
        };
        async move {
            let mut stream = api.fetch(request).await?.into_inner();
            while stream.message().await?.is_some() {}
            Ok::<_, tonic::Status>(())
        }
    };
    let locked = tokio::time::timeout(PATIENCE, fetch("locked"))
        .await?
        .err()
        .ok_or("fetch without credentials succeeded")?;
    assert_eq!(locked.code(), Code::Unauthenticated, "{locked:?}");
    assert!(
        locked.message().contains("locked"),
        "the remote is not named: {locked:?}"
    );

    let silent = tokio::time::timeout(PATIENCE, fetch("silent"))
        .await?
        .err()
        .ok_or("fetch from a silent server succeeded")?;
    assert!(
        matches!(silent.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{silent:?}"
    );
    assert!(
        silent.message().contains("silent"),
        "the remote is not named: {silent:?}"
    );

    let unknown = fetch("nowhere")
        .await
        .err()
        .ok_or("fetch from no remote succeeded")?;
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    assert!(
        unknown.message().contains("origin") || unknown.message().contains("locked"),
        "{unknown:?}"
    );
    Ok(())
}
