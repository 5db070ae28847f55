//! Files benchmarks (`cargo bench -p omnipanel-tests --bench files`, or
//! `scripts/bench`; `-- find` and the like run one part), each against a
//! baseline measured in the same run:
//!
//! - SearchText against `rg` on a large real source tree (the crates in the
//!   cargo registry's source folder), same pattern, same ignore rules;
//! - FindFiles on a generated 100 000-file project, against walking the
//!   tree for every query (what the index saves);
//! - Watch: time from a file write to the change at the client, against
//!   `inotifywait` seeing the same write.
//!
//! Needs `rg` and `inotifywait` (scripts/bench installs them).

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{
    Sandbox, TestResult,
    measure::{median, percentile},
};

async fn open(client: &Client, path: &Path) -> TestResult<String> {
    Ok(client
        .projects()
        .open_project(pb::OpenProjectRequest {
            path: path.display().to_string(),
            name: String::new(),
        })
        .await?
        .into_inner()
        .project
        .ok_or("no project")?
        .id)
}

fn registry_sources() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let src = home.join("registry/src");
    std::fs::read_dir(&src)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir())
}

async fn search_text(client: &Client) -> TestResult {
    let Some(tree) = registry_sources() else {
        println!("| SearchText vs rg | skipped: no cargo registry sources found |");
        return Ok(());
    };
    let project = open(client, &tree).await?;
    const PATTERNS: &[&str] = &["fn main", "unsafe impl", "TODO"];
    const RUNS: usize = 5;
    for pattern in PATTERNS {
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        let (mut our_count, mut their_count) = (0, 0);
        for _ in 0..RUNS {
            let start = Instant::now();
            let mut stream = client
                .files()
                .search_text(pb::SearchTextRequest {
                    project: project.clone(),
                    pattern: (*pattern).into(),
                    case_mode: pb::CaseMode::Sensitive.into(),
                    max_results: 100_000,
                    ..Default::default()
                })
                .await?
                .into_inner();
            let mut count = 0;
            while let Some(message) = stream.message().await? {
                count += message.matches.len();
            }
            ours.push(start.elapsed().as_secs_f64() * 1000.0);
            our_count = count;

            let start = Instant::now();
            let output = Command::new("rg")
                .args([
                    "--no-require-git",
                    "--case-sensitive",
                    "--fixed-strings",
                    "--line-number",
                    pattern,
                ])
                .arg(&tree)
                .stderr(Stdio::null())
                .output()?;
            theirs.push(start.elapsed().as_secs_f64() * 1000.0);
            their_count = output.stdout.iter().filter(|&&b| b == b'\n').count();
        }
        let (ours, theirs) = (median(&mut ours), median(&mut theirs));
        println!(
            "| SearchText {pattern:?} ({our_count} matching lines; rg: {their_count}) | agent {ours:.0} ms, rg {theirs:.0} ms | **{:.2}×** rg |",
            ours / theirs
        );
    }
    Ok(())
}

async fn find_files(client: &Client, sandbox: &Sandbox) -> TestResult {
    let root = sandbox.root().join("big");
    let count = 100_000;
    let started = Instant::now();
    for i in 0..count {
        let dir = root.join(format!("pkg{:03}/module{:02}", i % 500, (i / 500) % 20));
        if i < 10_000 {
            std::fs::create_dir_all(&dir)?;
        }
        std::fs::write(
            dir.join(format!(
                "file_{i}_{}.rs",
                ["alpha", "beta", "gamma", "delta"][i % 4]
            )),
            "",
        )?;
    }
    let generation = started.elapsed();
    let project = open(client, &std::fs::canonicalize(&root)?).await?;
    // Wait for the index (its first walk) to be complete.
    let started = Instant::now();
    loop {
        let result = client
            .files()
            .find_files(pb::FindFilesRequest {
                project: project.clone(),
                query: String::new(),
                limit: 1,
            })
            .await?
            .into_inner();
        if result.index_complete && result.total_files >= count as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let indexing = started.elapsed();
    let queries = omnipanel_tests::trees::FIND_QUERIES;
    let mut times = Vec::new();
    for _ in 0..5 {
        for query in queries {
            let start = Instant::now();
            client
                .files()
                .find_files(pb::FindFilesRequest {
                    project: project.clone(),
                    query: query.into(),
                    limit: 50,
                })
                .await?;
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    // Baseline: what each keystroke would cost without the index (a walk).
    let mut walks = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        let mut seen = 0usize;
        for entry in ignore::WalkBuilder::new(&root).build().flatten() {
            if entry.file_type().is_some_and(|t| t.is_file()) {
                seen += 1;
            }
        }
        assert!(seen >= count);
        walks.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50, p90) = (percentile(&mut times, 0.5), percentile(&mut times, 0.9));
    let walk = median(&mut walks);
    println!(
        "| FindFiles, {count} files ({} queries; generated in {:.1} s, indexed in {:.1} s) | p50 {p50:.2} ms, p90 {p90:.2} ms | walking the tree instead: {walk:.0} ms (**{:.0}×** slower than the p50) |",
        queries.len() * 5,
        generation.as_secs_f64(),
        indexing.as_secs_f64(),
        walk / p50
    );
    Ok(())
}

async fn watch_latency(client: &Client, sandbox: &Sandbox) -> TestResult {
    let root = sandbox.root().join("watched");
    std::fs::create_dir_all(&root)?;
    let root = std::fs::canonicalize(root)?;
    let project = open(client, &root).await?;
    let mut stream = client
        .files()
        .watch(pb::WatchRequest {
            project: project.clone(),
            after_sequence: None,
            instance_id: 0,
        })
        .await?
        .into_inner();
    stream.message().await?; // caught up
    let mut inotify = Command::new("inotifywait")
        .args(["-m", "-q", "-e", "close_write", "--format", "%f"])
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = inotify.stdout.take().ok_or("no inotifywait output")?;
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if line.is_err() || lines_tx.send(Instant::now()).is_err() {
                break;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..25 {
        let written = Instant::now();
        std::fs::write(root.join(format!("f{i}.txt")), format!("{i}"))?;
        let seen_by_inotifywait = lines_rx.recv().await.ok_or("inotifywait ended")?;
        loop {
            let message = stream.message().await?.ok_or("watch ended")?;
            if matches!(message.item, Some(pb::watch_response::Item::Batch(_))) {
                break;
            }
        }
        ours.push(written.elapsed().as_secs_f64() * 1000.0);
        theirs.push(seen_by_inotifywait.duration_since(written).as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let _ = inotify.kill();
    let _ = inotify.wait();
    let (ours, theirs) = (median(&mut ours), median(&mut theirs));
    println!(
        "| Watch: write → change at the client (settle 50 ms) | agent {ours:.1} ms, inotifywait {theirs:.1} ms | over settle + inotifywait: **{:.1} ms** |",
        ours - 50.0 - theirs
    );
    Ok(())
}

fn main() -> TestResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let sandbox = Sandbox::new()?;
        let agent = sandbox.start_agent().await?;
        let client = agent.client().await?;
        // `cargo bench --bench files -- find` runs only the parts named
        // (search, find, watch); none named runs them all.
        let named: Vec<String> = std::env::args()
            .skip(1)
            .filter(|arg| !arg.starts_with('-'))
            .collect();
        let runs = |part: &str| named.is_empty() || named.iter().any(|n| n == part);
        println!("## Files\n");
        if runs("search") {
            search_text(&client).await?;
        }
        if runs("find") {
            find_files(&client, &sandbox).await?;
        }
        if runs("watch") {
            watch_latency(&client, &sandbox).await?;
        }
        Ok(())
    })
}
