//! The idle soak: one agent with real projects open (a clone of this
//! repository, a 50 000-file Git repository with changes, 100 000 files in
//! 10 000 folders, and the cargo registry's sources, hard-linked so that
//! crates other builds extract meanwhile are not counted), first left
//! alone, then worked on as an editor would (a file saved every second, a
//! `git commit` every minute), each phase for the given minutes, sampled
//! every minute. Events, change batches and rescans are counted through the
//! API (WatchEvents and one Watch per project), CPU and memory from /proc.
//! Alerts are off, as in the idle benchmark (tests/benches/idle.rs): with
//! them on, the agent reads the machine every 5 s by design.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{
    Sandbox, TestResult,
    projects::{open_project, wait_for_index_within, watch_from_now},
    trees::{git_in, many_folders, repository_with_changes},
};
use serde_json::json;

use crate::{
    report::Report,
    sampling::{Sample, all_to_json, cpu_percent, rss_growth_percent},
};

/// Indexing a big tree in a debug build on a busy machine takes minutes;
/// this only turns a hang into a failure.
const INDEX_PATIENCE: Duration = Duration::from_secs(30 * 60);

/// The file the editor phase saves, in the clone.
const EDITED: &str = "soak-edit.md";

/// Counts of what the streams delivered, by kind.
#[derive(Debug, Default)]
struct Tally {
    counts: BTreeMap<String, u64>,
    /// Change batches of the clone that named the edited file.
    edit_batches: u64,
    /// The first few items, for a person reading a failure.
    first: Vec<String>,
}

impl Tally {
    fn add(&mut self, key: String, description: impl FnOnce() -> String) {
        *self.counts.entry(key).or_default() += 1;
        if self.first.len() < 8 {
            let mut text = description();
            text.truncate(300);
            self.first.push(text);
        }
    }

    fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

type Shared = Arc<Mutex<Tally>>;

fn lock(tally: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    tally
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The variant name of a `Debug` text (`RepositoryChanged(..)` → its name).
fn variant(debug: &str) -> String {
    debug
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or(debug)
        .to_owned()
}

/// Follow the agent's events and every project's changes into `tally`.
async fn follow(
    client: &Client,
    projects: &[(String, String)],
    tally: &Shared,
) -> TestResult<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    let mut events = client
        .agent()
        .watch_events(pb::WatchEventsRequest::default())
        .await?
        .into_inner();
    let shared = tally.clone();
    tasks.push(tokio::spawn(async move {
        while let Ok(Some(message)) = events.message().await {
            match message.item {
                Some(pb::watch_events_response::Item::Event(event)) => {
                    let kind = event
                        .payload
                        .as_ref()
                        .map_or("none".to_owned(), |p| variant(&format!("{p:?}")));
                    lock(&shared).add(format!("event {kind}"), || format!("event {event:?}"));
                }
                Some(pb::watch_events_response::Item::Gap(gap)) => {
                    lock(&shared).add("event gap".to_owned(), || format!("gap {gap:?}"));
                }
                _ => {}
            }
        }
        lock(&shared).add("event stream ended".to_owned(), String::new);
    }));
    for (name, id) in projects {
        let mut stream = watch_from_now(client, id).await?;
        let shared = tally.clone();
        let name = name.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                let Some(item) = message.item else { continue };
                if matches!(item, pb::watch_response::Item::CaughtUp(_)) {
                    continue;
                }
                let mut tally = lock(&shared);
                if let pb::watch_response::Item::Batch(batch) = &item
                    && batch.changes.iter().any(|c| c.path == EDITED)
                {
                    tally.edit_batches += 1;
                }
                let kind = variant(&format!("{item:?}"));
                tally.add(format!("{name} {kind}"), || format!("{name}: {item:?}"));
            }
            lock(&shared).add(format!("{name} stream ended"), String::new);
        }));
    }
    Ok(tasks)
}

async fn rescans(client: &Client, projects: &[(String, String)]) -> TestResult<u64> {
    let mut total = 0;
    for (_, id) in projects {
        let project = client
            .projects()
            .get_project(pb::GetProjectRequest {
                project: id.clone(),
            })
            .await?
            .into_inner()
            .project
            .ok_or("GetProject answered no project")?;
        total += project.watch.map_or(0, |w| w.rescans);
    }
    Ok(total)
}

fn cargo_registry_sources() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let src = cargo_home.join("registry/src");
    src.is_dir().then_some(src)
}

/// The projects, made in the sandbox's home (the registry stays in place).
fn make_projects(sandbox: &Sandbox) -> TestResult<Vec<(String, PathBuf)>> {
    let home = sandbox.home();
    std::fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = Soak\n\temail = soak@example.com\n",
    )?;
    let repository = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the tests crate has no parent folder")?
        .to_path_buf();
    let clone = home.join("omnipanel");
    eprintln!("[soak] cloning {}", repository.display());
    git_in(
        &home,
        &home,
        &[
            "clone",
            "-q",
            "--no-hardlinks",
            &repository.display().to_string(),
            "omnipanel",
        ],
    )?;
    eprintln!("[soak] generating a 50 000-file repository");
    let large = home.join("large");
    repository_with_changes(&home, &large, 50_000)?;
    eprintln!("[soak] generating 100 000 files in 10 000 folders");
    let folders = home.join("folders");
    many_folders(&folders, 10_000, 10)?;
    for repo in [&clone, &large] {
        git_in(&home, repo, &["status"])?;
    }
    let mut projects = vec![
        ("clone".to_owned(), clone),
        ("large".to_owned(), large),
        ("folders".to_owned(), folders),
    ];
    match cargo_registry_sources() {
        Some(src) => {
            // A hard-linked copy: the sources as they are, without the
            // crates any cargo on the machine extracts meanwhile (real
            // changes, which the agent rightly reports).
            eprintln!("[soak] linking a copy of {}", src.display());
            let copy = home.join("registry");
            let linked = std::process::Command::new("cp")
                .arg("-al")
                .arg(&src)
                .arg(&copy)
                .status()?;
            if !linked.success() {
                return Err(format!("cp -al {} failed", src.display()).into());
            }
            projects.push(("registry".to_owned(), copy));
        }
        None => eprintln!("[soak] no cargo registry sources found; that project is left out"),
    }
    Ok(projects)
}

/// Sample the agent every minute for `length`, running `each_second`
/// meanwhile (the editor, or nothing).
async fn phase(
    pid: u32,
    clock: Instant,
    length: Duration,
    mut each_second: impl FnMut(u64) -> TestResult,
) -> TestResult<Vec<Sample>> {
    let mut samples = vec![Sample::take(pid, clock)];
    let started = Instant::now();
    let mut second = 0u64;
    while started.elapsed() < length {
        second += 1;
        tokio::time::sleep_until((started + Duration::from_secs(second)).into()).await;
        each_second(second)?;
        if second.is_multiple_of(60) {
            samples.push(Sample::take(pid, clock));
        }
    }
    if samples.len() < 2 {
        samples.push(Sample::take(pid, clock));
    }
    Ok(samples)
}

fn figures(samples: &[Sample]) -> (f64, f64, f64, f64) {
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let rss: Vec<f64> = samples.iter().map(|s| s.rss_mb).collect();
    let max_rss = rss.iter().copied().fold(f64::MIN, f64::max);
    (
        cpu_percent(&first, &last),
        rss_growth_percent(&first, &last),
        first.rss_mb,
        max_rss,
    )
}

pub async fn run(length: Duration, report: &mut Report) -> TestResult {
    let minutes = length.as_secs() / 60;
    let sandbox = Sandbox::new()?;
    sandbox.write_config("[system]\nalerts = false\n")?;
    let made = make_projects(&sandbox)?;

    let agent = sandbox.start_agent().await?;
    let pid = agent.pid();
    let client = agent.client().await?;
    let clock = Instant::now();
    let mut projects = Vec::new();
    let mut indexing = Vec::new();
    for (name, path) in &made {
        let started = Instant::now();
        let id = open_project(&client, path).await?;
        let files = wait_for_index_within(&client, &id, INDEX_PATIENCE).await?;
        eprintln!(
            "[soak] {name}: {files} files indexed in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        indexing.push(json!({"project": name, "files": files,
            "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0}));
        projects.push((name.clone(), id));
    }
    report.samples("indexing", json!(indexing));
    // Let the last writes of the walks (state.db, the log) settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let tally: Shared = Arc::default();
    let followers = follow(&client, &projects, &tally).await?;
    let rescans_before = rescans(&client, &projects).await?;

    // Phase 1: nothing happens.
    let quiet = format!(
        "{} projects indexed, left alone {minutes} min",
        projects.len()
    );
    let expected_quiet = "0 events, 0 change batches, 0 rescans; CPU ≤ 0.1 % of a core; RSS within 2 % of the first minute";
    report.expect(&quiet, expected_quiet);
    let samples = phase(pid, clock, length, |_| Ok(())).await?;
    let seen = lock(&tally).total();
    let counts = format!("{:?}", lock(&tally).counts);
    let first_items = lock(&tally).first.clone();
    let new_rescans = rescans(&client, &projects).await? - rescans_before;
    let (cpu, growth, rss_first, rss_max) = figures(&samples);
    let ticks = samples[samples.len() - 1].ticks - samples[0].ticks;
    report.row(
        &quiet,
        expected_quiet,
        format!(
            "{seen} events/batches, {new_rescans} rescans; {ticks} CPU ticks in {minutes} min ({cpu:.3} %); RSS {rss_first:.1} → {:.1} MB (max {rss_max:.1}, {growth:+.1} %)",
            samples[samples.len() - 1].rss_mb
        ),
        seen == 0 && new_rescans == 0 && cpu <= 0.1 && growth <= 2.0,
    );
    report.samples(
        "quiet",
        json!({"samples": all_to_json(&samples), "counts": counts, "first_items": first_items}),
    );

    // Phase 2: an editor saves a file every second and commits every minute.
    *lock(&tally) = Tally::default();
    let clone = made
        .iter()
        .find(|(name, _)| name == "clone")
        .map(|(_, path)| path.clone())
        .ok_or("no clone")?;
    let home = sandbox.home();
    let (mut saves, mut commits) = (0u64, 0u64);
    let editor = format!("editor load {minutes} min (a save every second, a commit every minute)");
    let expected_editor = "a change batch for the saved file for ≥ 50 % of saves (coalescing allowed) and ≤ 1 per save; RepositoryChanged ≥ 1 per commit and ≤ 3; nothing from other projects; 0 rescans; CPU < 5 % of a core; RSS growth ≤ 5 %";
    report.expect(&editor, expected_editor);
    let samples = phase(pid, clock, length, |second| {
        std::fs::write(
            clone.join(EDITED),
            format!("# Soak notes\n\nsaved at second {second}\n"),
        )?;
        saves += 1;
        if second % 60 == 30 {
            git_in(&home, &clone, &["add", "-A"])?;
            git_in(
                &home,
                &clone,
                &["commit", "-q", "-m", &format!("soak save {second}")],
            )?;
            commits += 1;
        }
        Ok(())
    })
    .await?;
    // What the last save and commit caused is still on its way.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let new_rescans = rescans(&client, &projects).await? - rescans_before;
    let (cpu, growth, rss_first, rss_max) = figures(&samples);
    let tally_now = lock(&tally);
    let counts = tally_now.counts.clone();
    let edit_batches = tally_now.edit_batches;
    drop(tally_now);
    let clone_batches = counts.get("clone Batch").copied().unwrap_or(0);
    let repo_events = counts.get("event RepositoryChanged").copied().unwrap_or(0);
    let others: u64 = counts
        .iter()
        .filter(|(key, _)| !key.starts_with("clone ") && !key.starts_with("event "))
        .map(|(_, n)| n)
        .sum();
    let ticks = samples[samples.len() - 1].ticks - samples[0].ticks;
    report.row(
        &editor,
        expected_editor,
        format!(
            "{saves} saves → {edit_batches} batches naming the file ({clone_batches} clone batches); {commits} commits → {repo_events} RepositoryChanged events; {others} items from other projects; {new_rescans} rescans; {ticks} CPU ticks ({cpu:.2} %); RSS {rss_first:.1} → {:.1} MB (max {rss_max:.1}, {growth:+.1} %)",
            samples[samples.len() - 1].rss_mb
        ),
        edit_batches * 2 >= saves
            && clone_batches <= saves
            && repo_events >= commits
            && repo_events <= 3 * commits.max(1)
            && others == 0
            && new_rescans == 0
            && cpu < 5.0
            && growth <= 5.0,
    );
    report.samples(
        "editor",
        json!({"samples": all_to_json(&samples), "counts": format!("{counts:?}"),
            "saves": saves, "commits": commits}),
    );
    for task in followers {
        task.abort();
    }
    Ok(())
}
