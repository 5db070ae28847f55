//! Git benchmark (`cargo bench -p omnipanel-tests --bench git`, or
//! `scripts/bench`): GetStatus through the agent against
//! `git status --porcelain=v2 --branch` on a generated 50 000-file
//! repository with some modified, staged and untracked files, both measured
//! in the same run, warm, several rounds, median. The agent's time is the
//! whole round trip a client sees (socket, repository handle reuse, status
//! walk, conversion); git's is a process start plus its status walk.

use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{Sandbox, TestResult};

const FILES: usize = 50_000;
const ROUNDS: usize = 15;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn git(home: &Path, dir: &Path, args: &[&str]) -> TestResult<Duration> {
    let started = Instant::now();
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()?;
    let took = started.elapsed();
    if !output.status.success() {
        return Err(format!("git {args:?}: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    Ok(took)
}

/// 50 000 files in 500 folders, committed; then 100 modified, 50 staged
/// and 50 untracked.
fn generate(home: &Path, root: &Path) -> TestResult {
    std::fs::create_dir_all(root)?;
    for i in 0..FILES {
        let dir = root.join(format!("pkg{:03}/mod{}", i / 100, i % 4));
        if i % 100 < 4 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(
            dir.join(format!("file_{i}.rs")),
            format!("// generated file {i}\npub fn f{i}() -> usize {{ {i} }}\n"),
        )?;
    }
    git(home, root, &["init", "-q", "-b", "main"])?;
    git(home, root, &["add", "-A"])?;
    git(home, root, &["commit", "-q", "-m", "generated"])?;
    for i in (0..FILES).step_by(FILES / 100) {
        let path = root.join(format!("pkg{:03}/mod{}/file_{i}.rs", i / 100, i % 4));
        std::fs::write(path, format!("// changed {i}\n"))?;
    }
    for i in (1..FILES).step_by(FILES / 50) {
        let rel = format!("pkg{:03}/mod{}/file_{i}.rs", i / 100, i % 4);
        std::fs::write(root.join(&rel), format!("// staged {i}\n"))?;
        git(home, root, &["add", &rel])?;
    }
    for i in 0..50 {
        std::fs::write(root.join(format!("pkg{i:03}/untracked_{i}.txt")), "new\n")?;
    }
    Ok(())
}

async fn get_status(client: &Client, project: &str) -> TestResult<(Duration, usize)> {
    let started = Instant::now();
    let status = client
        .git()
        .get_status(pb::GetStatusRequest {
            project: project.into(),
        })
        .await?
        .into_inner()
        .status
        .ok_or("no status")?;
    let took = started.elapsed();
    Ok((
        took,
        status.staged.len() + status.unstaged.len() + status.untracked.len(),
    ))
}

fn main() -> TestResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sandbox = Sandbox::new()?;
        let home = sandbox.root().join("home");
        std::fs::write(
            home.join(".gitconfig"),
            "[user]\n\tname = Bench\n\temail = bench@example.com\n",
        )?;
        let root = sandbox.root().join("big");
        let started = Instant::now();
        generate(&home, &root)?;
        let generation = started.elapsed();
        let agent = sandbox.start_agent().await?;
        let client = agent.client().await?;
        let project = client
            .projects()
            .open_project(pb::OpenProjectRequest {
                path: root.display().to_string(),
                name: String::new(),
            })
            .await?
            .into_inner()
            .project
            .ok_or("no project")?
            .id;
        // Warm both: the page cache, git's index stat data, the agent's
        // repository handle.
        let (_, entries) = get_status(&client, &project).await?;
        git(&home, &root, &["status", "--porcelain=v2", "--branch"])?;
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            ours.push(get_status(&client, &project).await?.0.as_secs_f64() * 1000.0);
            theirs.push(
                git(&home, &root, &["status", "--porcelain=v2", "--branch"])?.as_secs_f64()
                    * 1000.0,
            );
        }
        let (ours, theirs) = (median(ours), median(theirs));
        println!("## Git\n");
        println!(
            "(repository: {FILES} files, {entries} changed entries, generated in {:.1} s; {ROUNDS} rounds, median)\n",
            generation.as_secs_f64()
        );
        println!("| Operation | OmniPanel | baseline | ratio |");
        println!("|---|---|---|---|");
        println!(
            "| GetStatus vs `git status --porcelain=v2 --branch` | {ours:.1} ms | {theirs:.1} ms | **{:.2}×** |",
            ours / theirs
        );
        Ok(())
    })
}
