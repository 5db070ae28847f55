//! Idle with projects open (`cargo bench -p omnipanel-tests --bench idle`,
//! or `scripts/bench`): what a resident agent costs once its projects are
//! indexed and nothing changes. Two release agents run side by side in the
//! same window, so machine noise hits them alike:
//!
//! - the baseline: no project open;
//! - the loaded one: a small Git repository, a 50 000-file Git repository
//!   (with changes, as in the Git benchmark) and a project of 100 000 files
//!   in 10 000 folders.
//!
//! Alerts are off for both (with alerts on, both read the machine every
//! 5 s; the system benchmark measures that). After every index is complete,
//! the CPU ticks of each agent over a 60 s window, repeated; RSS after. The
//! target is 0 ticks for both. Set OMNIPANEL_BENCH_ROUNDS and
//! OMNIPANEL_BENCH_SECONDS for a quicker look. Nothing here asserts on
//! speed; the numbers are for people (docs/BENCHMARKS.md).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use omnipanel_client::Client;
use omnipanel_tests::{
    Sandbox, TestResult,
    measure::{cpu_ticks, machine, median, rss_mb},
    projects::{open_project, wait_for_index},
    trees::{git_in, many_folders, repository_with_changes},
};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn open_and_index(client: &Client, path: &Path) -> TestResult<Duration> {
    let started = Instant::now();
    let id = open_project(client, path).await?;
    wait_for_index(client, &id).await?;
    Ok(started.elapsed())
}

fn main() -> TestResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run())
}

async fn run() -> TestResult {
    let rounds = env_number("OMNIPANEL_BENCH_ROUNDS", 3) as usize;
    let seconds = env_number("OMNIPANEL_BENCH_SECONDS", 60);
    let config = "[system]\nalerts = false\n";

    let baseline_box = Sandbox::new()?;
    baseline_box.write_config(config)?;
    let loaded_box = Sandbox::new()?;
    loaded_box.write_config(config)?;
    let home = loaded_box.root().join("home");
    std::fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = Bench\n\temail = bench@example.com\n",
    )?;
    let small = home.join("small");
    repository_with_changes(&home, &small, 200)?;
    let large = home.join("large");
    repository_with_changes(&home, &large, 50_000)?;
    let folders = home.join("folders");
    many_folders(&folders, 10_000, 10)?;
    // Warm git's own index stat data, as a user's checkout would be.
    for repo in [&small, &large] {
        git_in(&home, repo, &["status"])?;
    }

    let baseline = baseline_box.start_agent().await?;
    let loaded = loaded_box.start_agent().await?;
    let client = loaded.client().await?;
    let mut indexing = Vec::new();
    for (name, path) in [("small", &small), ("large", &large), ("folders", &folders)] {
        let took = open_and_index(&client, path).await?;
        indexing.push((name, took));
    }
    // The index is complete; let the last writes (state.db, logs) settle
    // before the first window.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (mut baseline_ticks, mut loaded_ticks) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let before = (
            cpu_ticks(baseline.pid()).unwrap_or(0),
            cpu_ticks(loaded.pid()).unwrap_or(0),
        );
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        let after = (
            cpu_ticks(baseline.pid()).unwrap_or(0),
            cpu_ticks(loaded.pid()).unwrap_or(0),
        );
        baseline_ticks.push((after.0 - before.0) as f64);
        loaded_ticks.push((after.1 - before.1) as f64);
    }
    let rss = (rss_mb(baseline.pid()), rss_mb(loaded.pid()));

    println!("## Idle with projects open ({})\n", machine());
    println!(
        "({rounds} windows of {seconds} s, median; alerts off; indexing: {})\n",
        indexing
            .iter()
            .map(|(name, took)| format!("{name} {:.2} s", took.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("| agent | CPU ticks per {seconds} s (each window) | median | RSS after |");
    println!("|---|---|---|---|");
    for (name, ticks, rss) in [
        ("no project (baseline)", &mut baseline_ticks, rss.0),
        (
            "small repo + 50 000-file repo + 100 000 files in 10 000 folders",
            &mut loaded_ticks,
            rss.1,
        ),
    ] {
        let each = ticks
            .iter()
            .map(|t| format!("{t:.0}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "| {name} | {each} | **{:.0}** | {rss:.1} MB |",
            median(ticks)
        );
    }
    Ok(())
}
