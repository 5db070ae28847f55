//! Git benchmark (`cargo bench -p omnipanel-tests --bench git`, or
//! `scripts/bench`): GetStatus through the agent against
//! `git status --porcelain=v2 --branch` on a generated 50 000-file
//! repository with some modified, staged and untracked files, all measured
//! in the same run, several rounds, median: GetStatus cold (git's config
//! changed, so the agent walks everything), after a stage (a file saved
//! and staged: the index moved, and the agent reads again only the index's
//! side and the paths staged before or after) and warm (one file saved
//! since the last status: the agent looks only where its watcher saw
//! changes). The agent's time is the whole round trip a client sees
//! (socket, repository handle reuse, status, conversion); git's is a
//! process start plus its status walk.

use std::time::{Duration, Instant};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{
    Sandbox, TestResult,
    measure::median,
    projects::open_project,
    trees::{git_in, repository_with_changes},
};

const FILES: usize = 50_000;
const ROUNDS: usize = 15;

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
        repository_with_changes(&home, &root, FILES)?;
        let generation = started.elapsed();
        let agent = sandbox.start_agent().await?;
        let client = agent.client().await?;
        let project = open_project(&client, &root).await?;
        // Warm both: the page cache, git's index stat data, the agent's
        // repository handle.
        let (_, entries) = get_status(&client, &project).await?;
        git_in(&home, &root, &["status", "--porcelain=v2", "--branch"])?;
        let git_status = || -> TestResult<f64> {
            Ok(
                git_in(&home, &root, &["status", "--porcelain=v2", "--branch"])?.as_secs_f64()
                    * 1000.0,
            )
        };
        let config = root.join(".git/config");
        let saved = root.join("pkg000/mod1/file_1.rs");
        let (mut warm, mut staged, mut cold, mut theirs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // Cold: git's config changed, so nothing kept can be trusted
            // and the agent walks the whole tree.
            std::fs::File::options()
                .append(true)
                .open(&config)?
                .set_modified(std::time::SystemTime::now())?;
            cold.push(get_status(&client, &project).await?.0.as_secs_f64() * 1000.0);
            // Staged: a file saved and staged since the last status, so
            // the index moved (as after a stage, an unstage, a commit).
            std::fs::write(&saved, format!("// staged in round {round}\n"))?;
            git_in(&home, &root, &["add", "pkg000/mod1/file_1.rs"])?;
            staged.push(get_status(&client, &project).await?.0.as_secs_f64() * 1000.0);
            // Warm: a file saved since the last status, as while editing.
            std::fs::write(&saved, format!("// saved in round {round}\n"))?;
            warm.push(get_status(&client, &project).await?.0.as_secs_f64() * 1000.0);
            theirs.push(git_status()?);
        }
        let (warm, staged, cold, theirs) = (
            median(&mut warm),
            median(&mut staged),
            median(&mut cold),
            median(&mut theirs),
        );
        println!("## Git\n");
        println!(
            "(repository: {FILES} files, {entries} changed entries, generated in {:.1} s; {ROUNDS} rounds, median)\n",
            generation.as_secs_f64()
        );
        println!("| Operation | OmniPanel | baseline | ratio |");
        println!("|---|---|---|---|");
        println!(
            "| GetStatus, warm, vs `git status --porcelain=v2 --branch` | {warm:.1} ms | {theirs:.1} ms | **{:.2}×** |",
            warm / theirs
        );
        println!(
            "| GetStatus after a stage, vs `git status --porcelain=v2 --branch` | {staged:.1} ms | {theirs:.1} ms | **{:.2}×** |",
            staged / theirs
        );
        println!(
            "| GetStatus, cold, vs `git status --porcelain=v2 --branch` | {cold:.1} ms | {theirs:.1} ms | **{:.2}×** |",
            cold / theirs
        );
        Ok(())
    })
}
