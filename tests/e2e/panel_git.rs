//! The panel's Git tab driven as a person drives it, against a real agent:
//! a repository with one commit, a modified and a new file; stage the new
//! file, commit it, make a branch, publish it to a local bare remote with
//! Push, Pull what another clone pushed, and see an outside `git commit`
//! arrive through the "repository changed" event. Every step checks the
//! repository itself (the agent's GetStatus/ListBranches, or `git`), not
//! only the screen.

use egui::Key;
use egui_kittest::kittest::Queryable;
use omnipanel_client::proto::v1 as pb;
use omnipanel_tests::TestResult;
use omnipanel_tray::{
    core::workspace::git::{GitProblem, GitState},
    panel::panel_ui::Tab,
};

use crate::{
    git::{commit_file, git, init_repo, open, set_identity},
    panel::{Live, LiveHarness, click, live, shows, type_into, wait_for},
};

/// The status the panel mirrors, once read.
fn status(h: &LiveHarness) -> Option<&pb::RepoStatus> {
    let git: &GitState = &h.state().state.git;
    match &git.status {
        Some(Ok(status)) => Some(status),
        Some(Err(GitProblem { .. })) | None => None,
    }
}

fn paths(entries: &[pb::StatusEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.path.as_str()).collect()
}

/// Whether the last notice of `key` says `text`, without error.
fn notice_ok(h: &LiveHarness, key: &str, text: &str) -> bool {
    h.state()
        .state
        .notice(key)
        .is_some_and(|n| !n.error && n.message.contains(text))
}

#[test]
fn stage_commit_branch_push_and_pull_in_the_git_tab() -> TestResult {
    let Live {
        setup,
        mut harness,
        runtime,
    } = live(Tab::Git)?;
    let sandbox = &setup.sandbox;
    set_identity(sandbox)?;
    let dir = init_repo(sandbox, "app")?;
    commit_file(sandbox, &dir, "a.txt", "one\n", "first")?;
    std::fs::write(dir.join("a.txt"), "one\ntwo\n")?;
    std::fs::write(dir.join("new.txt"), "brand new\n")?;
    let client = runtime.block_on(setup.agent.client())?;
    let project = runtime.block_on(open(&client, &dir))?;

    // Both files, each in its group.
    wait_for(&mut harness, "the status in groups", |h| {
        shows(h, "Changes (1)")
            && shows(h, "Untracked (1)")
            && shows(h, "a.txt")
            && shows(h, "new.txt")
            && shows(h, "On branch main")
    })?;

    // Stage the new file: it moves to Staged, and the agent agrees.
    click(&mut harness, "Stage new.txt");
    wait_for(&mut harness, "new.txt under Staged", |h| {
        shows(h, "Staged (1)")
            && !shows(h, "Untracked (1)")
            && status(h).is_some_and(|s| paths(&s.staged) == ["new.txt"])
    })?;
    let agent_status = runtime.block_on(async {
        TestResult::Ok(
            client
                .git()
                .get_status(pb::GetStatusRequest {
                    project: project.clone(),
                })
                .await?
                .into_inner()
                .status
                .unwrap_or_default(),
        )
    })?;
    assert_eq!(paths(&agent_status.staged), ["new.txt"]);
    assert_eq!(paths(&agent_status.unstaged), ["a.txt"]);

    // The modified file's diff, coloured lines and all.
    click(&mut harness, "a.txt");
    wait_for(&mut harness, "the diff of a.txt", |h| {
        shows(h, "a.txt (unstaged)") && shows(h, "+two")
    })?;

    // Commit: only the remaining change is left, and git log has it.
    type_into(
        &mut harness,
        "Commit message:",
        "Add new.txt from the panel",
    );
    click(&mut harness, "Commit");
    wait_for(&mut harness, "the status after the commit", |h| {
        notice_ok(h, "git:commit", "Add new.txt from the panel")
            && status(h).is_some_and(|s| {
                s.staged.is_empty() && s.untracked.is_empty() && paths(&s.unstaged) == ["a.txt"]
            })
            && shows(h, "Changes (1)")
            && !shows(h, "Staged (1)")
    })?;
    assert_eq!(
        git(sandbox, &dir, &["log", "-1", "--format=%s"])?,
        "Add new.txt from the panel"
    );

    // A new branch, made and checked out.
    click(&mut harness, "New branch…");
    type_into(&mut harness, "Branch name:", "feature");
    harness.key_press(Key::Enter);
    wait_for(&mut harness, "the new branch checked out", |h| {
        shows(h, "On branch feature")
    })?;
    let branches = runtime.block_on(async {
        TestResult::Ok(
            client
                .git()
                .list_branches(pb::ListBranchesRequest {
                    project: project.clone(),
                    include_remote: false,
                })
                .await?
                .into_inner()
                .branches,
        )
    })?;
    let current: Vec<&str> = branches
        .iter()
        .filter(|b| b.current)
        .map(|b| b.name.as_str())
        .collect();
    assert_eq!(current, ["feature"], "{branches:?}");

    // Push publishes the branch to a local bare remote and tracks it.
    let remote = sandbox.root().join("remote.git");
    let remote_path = remote.display().to_string();
    git(
        sandbox,
        sandbox.root(),
        &["init", "-q", "--bare", &remote_path],
    )?;
    git(sandbox, &dir, &["remote", "add", "origin", &remote_path])?;
    wait_for(&mut harness, "Push offered to publish", |h| {
        shows(h, "Push")
            && shows(
                h,
                "No upstream yet: Push publishes this branch to origin and tracks it.",
            )
    })?;
    click(&mut harness, "Push");
    wait_for(&mut harness, "the push to finish and track", |h| {
        notice_ok(h, "git:remote", "pushed")
            && status(h).is_some_and(|s| {
                s.upstream
                    .as_ref()
                    .is_some_and(|u| u.name == "origin/feature")
            })
            && h.state().state.git.transfer.is_none()
    })?;
    let head = git(sandbox, &dir, &["rev-parse", "HEAD"])?;
    assert_eq!(git(sandbox, &remote, &["rev-parse", "feature"])?, head);

    // Another clone pushes a commit; Pull brings it (fast-forward).
    let other = sandbox.root().join("other");
    let other_path = other.display().to_string();
    git(
        sandbox,
        sandbox.root(),
        &["clone", "-q", "-b", "feature", &remote_path, &other_path],
    )?;
    let theirs = commit_file(sandbox, &other, "b.txt", "theirs\n", "from the other clone")?;
    git(sandbox, &other, &["push", "-q", "origin", "feature"])?;
    click(&mut harness, "Pull");
    wait_for(&mut harness, "the pull to bring the other commit", |h| {
        notice_ok(h, "git:remote", "pulled") && status(h).is_some_and(|s| s.head == theirs)
    })?;
    assert_eq!(git(sandbox, &dir, &["rev-parse", "HEAD"])?, theirs);

    // An outside commit arrives through the event alone: nothing clicked.
    git(sandbox, &dir, &["commit", "-q", "-am", "outside"])?;
    wait_for(
        &mut harness,
        "the clean status after an outside commit",
        |h| {
            shows(h, "Nothing to commit: the working tree is clean.")
                && status(h).is_some_and(|s| s.head_summary == "outside")
        },
    )?;

    // Switching to main would overwrite a local change to b.txt (main has
    // no b.txt): refused, and said in place with what to do.
    std::fs::write(dir.join("b.txt"), "mine\n")?;
    click(&mut harness, "Branch:");
    click(&mut harness, "main");
    wait_for(&mut harness, "the checkout refusal in place", |h| {
        h.state()
            .state
            .notice("git:branch")
            .is_some_and(|n| n.error && n.message.contains("Commit or stash"))
            // In place under the branch row (and in the notice bar).
            && h.query_all_by_label_contains("Commit or stash").count() >= 1
    })?;
    assert_eq!(
        git(sandbox, &dir, &["branch", "--show-current"])?,
        "feature"
    );
    Ok(())
}

#[test]
fn a_folder_that_is_no_repository_says_so_in_the_git_tab() -> TestResult {
    let Live {
        setup,
        mut harness,
        runtime,
    } = live(Tab::Git)?;
    wait_for(&mut harness, "the empty state", |h| {
        h.query_by_label_contains("Open a project on the Projects tab first")
            .is_some()
    })?;
    let dir = setup.sandbox.project_dir("plain");
    std::fs::create_dir_all(&dir)?;
    let client = runtime.block_on(setup.agent.client())?;
    runtime.block_on(open(&client, &dir))?;
    wait_for(&mut harness, "the not-a-repository message", |h| {
        matches!(&h.state().state.git.status, Some(Err(p)) if p.not_a_repository)
            && !shows(h, "Commit")
            && !shows(h, "Push")
    })?;
    Ok(())
}

#[test]
fn a_push_to_a_remote_that_never_answers_shows_progress_and_cancels() -> TestResult {
    let Live {
        setup,
        mut harness,
        runtime,
    } = live(Tab::Git)?;
    let sandbox = &setup.sandbox;
    set_identity(sandbox)?;
    let dir = init_repo(sandbox, "stuck")?;
    commit_file(sandbox, &dir, "a.txt", "one\n", "first")?;
    // A remote that accepts the connection and then says nothing: the push
    // stays at "connecting" until it is cancelled.
    // Hanging up when the test is done ends the agent's side at once
    // (a silent server would hold it until libgit2's timeout).
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/repo.git", silent.local_addr()?);
    // The agent may give up before it ever connects, so the server never
    // blocks in accept: it takes what comes until told to hang up.
    silent.set_nonblocking(true)?;
    let (hang_up, hung_up) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let mut held = Vec::new();
        while let Err(std::sync::mpsc::TryRecvError::Empty) = hung_up.try_recv() {
            if let Ok((stream, _)) = silent.accept() {
                held.push(stream);
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
    git(sandbox, &dir, &["remote", "add", "origin", &url])?;
    let client = runtime.block_on(setup.agent.client())?;
    runtime.block_on(open(&client, &dir))?;
    wait_for(&mut harness, "the clean status", |h| {
        shows(h, "On branch main") && shows(h, "Push")
    })?;
    click(&mut harness, "Push");
    wait_for(&mut harness, "the push's progress", |h| {
        h.state().state.git.transfer.is_some()
            && h.query_by_label_contains("Pushing: connecting").is_some()
    })?;
    click(&mut harness, "Cancel");
    wait_for(&mut harness, "the push cancelled", |h| {
        notice_ok(h, "git:remote", "push cancelled")
            && h.state().state.git.transfer.is_none()
            && h.query_by_label_contains("Pushing").is_none()
    })?;
    let _ = hang_up.send(());
    let _ = server.join();
    Ok(())
}
