//! An idle agent costs nothing. With a Git project and a project of more
//! folders than the kernel's inotify queue holds open and indexed, nothing
//! is published and nothing is rescanned: while idle, after the agent's own
//! GetStatus, SearchText and FindFiles, and after `rg` and `git status` run
//! inside the projects (reading a project is not a change). Events and
//! rescans are counted through the API (WatchEvents, Watch, GetProject);
//! alerts are off so a loaded machine cannot add an alert event. And when
//! a watch limit is reached, the project is served in degraded mode and
//! says which limit to raise.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{
    PATIENCE, Sandbox, TestResult, eventually,
    projects::{wait_for_index, watch_from_now, watch_state},
    stdout, trees,
};
use tonic::Streaming;

use crate::git::{commit_file, git, init_repo, open, set_identity};

/// How long "idle" is watched each time. Longer than every debounce and
/// settle time in the agent; a slow machine can only make a wrong event
/// arrive later, and the sentinel at the end catches those.
const IDLE_WINDOW: Duration = Duration::from_secs(3);

/// A project's change stream.
struct ProjectStream {
    name: &'static str,
    stream: Streaming<pb::WatchResponse>,
}

/// The agent's event stream and the projects' change streams, from now on.
struct Observed {
    events: Streaming<pb::WatchEventsResponse>,
    projects: Vec<ProjectStream>,
}

impl Observed {
    async fn start(client: &Client, projects: &[(&'static str, &str)]) -> TestResult<Self> {
        let events = client
            .agent()
            .watch_events(pb::WatchEventsRequest::default())
            .await?
            .into_inner();
        let mut streams = Vec::new();
        for (name, id) in projects {
            streams.push(ProjectStream {
                name,
                stream: watch_from_now(client, id).await?,
            });
        }
        Ok(Self {
            events,
            projects: streams,
        })
    }

    /// Nothing may arrive on any stream for `IDLE_WINDOW`.
    async fn expect_silence(&mut self, after: &str) -> TestResult {
        let deadline = tokio::time::Instant::now() + IDLE_WINDOW;
        if let Ok(item) = tokio::time::timeout_at(deadline, next_event(&mut self.events)).await {
            return Err(format!("{after}: the agent published {:?}", item?).into());
        }
        for project in &mut self.projects {
            if let Ok(item) =
                tokio::time::timeout_at(deadline, next_change(&mut project.stream)).await
            {
                return Err(
                    format!("{after}: project {} reported {:?}", project.name, item?).into(),
                );
            }
        }
        Ok(())
    }
}

/// The next event (not the stream's bookkeeping).
async fn next_event(stream: &mut Streaming<pb::WatchEventsResponse>) -> TestResult<pb::Event> {
    loop {
        match stream.message().await?.and_then(|m| m.item) {
            Some(pb::watch_events_response::Item::Event(event)) => return Ok(event),
            Some(other) => {
                if matches!(other, pb::watch_events_response::Item::Gap(_)) {
                    return Err(format!("a gap in the event stream: {other:?}").into());
                }
            }
            None => return Err("the event stream ended".into()),
        }
    }
}

/// The next change item of a project (batches, repository changes, rescans).
async fn next_change(
    stream: &mut Streaming<pb::WatchResponse>,
) -> TestResult<pb::watch_response::Item> {
    loop {
        match stream.message().await?.and_then(|m| m.item) {
            Some(pb::watch_response::Item::CaughtUp(_)) => {}
            Some(item) => return Ok(item),
            None => return Err("the change stream ended".into()),
        }
    }
}

/// A project of more folders than the kernel's inotify queue holds events
/// (`fs.inotify.max_queued_events`), one file in each.
fn many_folders(root: &Path) -> TestResult<usize> {
    let queue: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(16_384);
    let folders = queue + 1_000;
    trees::many_folders(root, folders, 1)?;
    Ok(folders)
}

/// Run `program` in `dir`; it must start (its verdict does not matter: `rg`
/// finding nothing exits 1).
fn run_in(dir: &Path, program: &str, args: &[&str]) -> TestResult {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|err| {
            format!("cannot run {program} ({err}); scripts/test installs it (Debian: ripgrep)")
        })?;
    Ok(())
}

async fn search(client: &Client, id: &str) -> TestResult {
    let mut stream = client
        .files()
        .search_text(pb::SearchTextRequest {
            project: id.to_owned(),
            pattern: "file".to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner();
    while stream.message().await?.is_some() {}
    client
        .files()
        .find_files(pb::FindFilesRequest {
            project: id.to_owned(),
            query: "f.txt".to_owned(),
            limit: 100,
        })
        .await?;
    Ok(())
}

#[tokio::test]
async fn open_projects_cost_nothing_while_nothing_changes() -> TestResult {
    let sandbox = Sandbox::new()?;
    sandbox.write_config("[system]\nalerts = false\n")?;
    set_identity(&sandbox)?;
    let home = sandbox.root().join("home");
    let repo = init_repo(&sandbox, "repo")?;
    std::fs::create_dir_all(repo.join("src"))?;
    commit_file(&sandbox, &repo, "src/lib.rs", "pub fn file() {}\n", "first")?;
    commit_file(&sandbox, &repo, "README.md", "a file\n", "second")?;
    let big = home.join("big");
    let folders = many_folders(&big)?;

    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let repo_id = open(&client, &repo).await?;
    let big_id = open(&client, &big).await?;
    wait_for_index(&client, &repo_id).await?;
    wait_for_index(&client, &big_id).await?;
    let big_watch = watch_state(&client, &big_id).await?;
    assert_eq!(big_watch.state(), pb::WatchState::Live, "{big_watch:?}");
    assert!(
        big_watch.watched_folders as usize > folders,
        "{big_watch:?}"
    );
    assert_eq!(big_watch.indexed_files as usize, folders);

    let mut observed = Observed::start(&client, &[("repo", &repo_id), ("big", &big_id)]).await?;
    observed.expect_silence("idle").await?;

    // The agent's own reads of both projects.
    client
        .git()
        .get_status(pb::GetStatusRequest {
            project: repo_id.clone(),
        })
        .await?;
    search(&client, &repo_id).await?;
    search(&client, &big_id).await?;
    // The user's tools reading them (git status may rewrite the index's
    // timestamps: not a change of the repository).
    for dir in [&repo, &big] {
        run_in(
            dir,
            "rg",
            &["--quiet", "--no-messages", "no such text anywhere"],
        )?;
    }
    git(&sandbox, &repo, &["status"])?;
    git(&sandbox, &repo, &["status", "--porcelain=v2", "--branch"])?;
    observed
        .expect_silence("after GetStatus, SearchText, FindFiles, rg and git status")
        .await?;

    // A real change is still seen, and is the first thing seen: nothing
    // from the reads above was merely late.
    git(&sandbox, &repo, &["checkout", "-q", "-b", "sentinel"])?;
    std::fs::write(big.join("sentinel.txt"), "x")?;
    let event = tokio::time::timeout(PATIENCE, next_event(&mut observed.events)).await??;
    match &event.payload {
        Some(pb::event::Payload::RepositoryChanged(change)) => {
            assert_eq!(change.branch, "sentinel", "{change:?}");
        }
        other => return Err(format!("the first event is not the sentinel: {other:?}").into()),
    }
    for project in &mut observed.projects {
        let item = tokio::time::timeout(PATIENCE, next_change(&mut project.stream)).await??;
        let expected = match project.name {
            "repo" => matches!(item, pb::watch_response::Item::RepositoryChanged(_)),
            _ => matches!(&item, pb::watch_response::Item::Batch(batch)
                if batch.changes.iter().map(|c| c.path.as_str()).collect::<Vec<_>>() == ["sentinel.txt"]),
        };
        assert!(
            expected,
            "project {}: the first change is {item:?}",
            project.name
        );
    }
    for id in [&repo_id, &big_id] {
        let watch = watch_state(&client, id).await?;
        assert_eq!(watch.rescans, 0, "{watch:?}");
        assert_eq!(watch.state(), pb::WatchState::Live, "{watch:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_project_beyond_the_watch_limit_is_served_degraded_and_says_how_to_raise_it() -> TestResult
{
    let sandbox = Sandbox::new()?;
    // The agent's own limit stands in for the kernel's (a machine-wide
    // sysctl is not a test's to change): the root and the four top folders
    // fit, the deeper ones do not.
    sandbox.write_config("[system]\nalerts = false\n[files]\nmax_watches = 6\n")?;
    let root = sandbox.root().join("home/wide");
    for top in ["a", "b", "c", "d"] {
        std::fs::create_dir_all(root.join(top).join("x/y"))?;
        std::fs::write(root.join(top).join("x/y/file.txt"), top)?;
    }
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let id = open(&client, &root).await?;
    wait_for_index(&client, &id).await?;

    // The event says so.
    let mut events = client
        .agent()
        .watch_events(pb::WatchEventsRequest {
            after_sequence: Some(0),
            topics: vec!["projects".into()],
            ..Default::default()
        })
        .await?
        .into_inner();
    let changed = tokio::time::timeout(PATIENCE, async {
        loop {
            let event = next_event(&mut events).await?;
            if let Some(pb::event::Payload::ProjectWatchChanged(changed)) = event.payload {
                return Ok::<_, Box<dyn std::error::Error + Send + Sync>>(changed);
            }
        }
    })
    .await??;
    let watch = changed.watch.clone().unwrap_or_default();
    assert_eq!(changed.project_id, id);
    assert_eq!(watch.state(), pb::WatchState::Degraded, "{changed:?}");
    assert!(
        watch.detail.contains("files.max_watches = 6"),
        "{}",
        watch.detail
    );

    // GetProject says so, with the counts; everything is indexed anyway.
    let watch = watch_state(&client, &id).await?;
    assert_eq!(watch.state(), pb::WatchState::Degraded, "{watch:?}");
    assert_eq!(watch.watched_folders, 6, "{watch:?}");
    assert!(watch.unwatched_folders >= 1, "{watch:?}");
    assert_eq!(watch.indexed_files, 4);
    assert!(
        watch
            .detail
            .contains("omnipanel settings set files.max_watches"),
        "{}",
        watch.detail
    );

    // `omnipanel projects show` says so.
    let output = sandbox.cli(&["projects", "show", &id])?;
    let text = stdout(&output);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("watching     DEGRADED (6 folders watched"),
        "{text}"
    );
    assert!(text.contains("files.max_watches = 6"), "{text}");

    // The log says so.
    let log = sandbox.agent_log();
    eventually("the log to name the limit", || {
        std::fs::read_to_string(&log).is_ok_and(|text| {
            text.contains("not fully watched") && text.contains("files.max_watches")
        })
    })
    .await?;

    // The top of the tree is live; what is not watched is found on demand.
    let mut stream = watch_from_now(&client, &id).await?;
    std::fs::write(root.join("a/top.txt"), "x")?;
    let item = tokio::time::timeout(PATIENCE, next_change(&mut stream)).await??;
    assert!(
        matches!(&item, pb::watch_response::Item::Batch(batch)
            if batch.changes.iter().any(|c| c.path == "a/top.txt")),
        "{item:?}"
    );
    for top in ["a", "b", "c", "d"] {
        std::fs::write(root.join(top).join("x/y/deep-new.txt"), "x")?;
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        let found = client
            .files()
            .find_files(pb::FindFilesRequest {
                project: id.clone(),
                query: "deep-new".to_owned(),
                limit: 10,
            })
            .await?
            .into_inner();
        if found.matches.len() == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "FindFiles never found the new files: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
