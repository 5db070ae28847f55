//! `kill -9` of the agent in the middle of a write, 100 times for each of
//! WriteFile, ApplyBatch and a settings write: after every kill the agent
//! is started again and what it wrote is checked whole (the old contents or
//! the new, never a mix; a batch applied entirely or not at all; the
//! setting old or new with config.toml accepted), no temporary file of the
//! killed write is left once the agent is back (the project walked again,
//! for a project's files), and state.db passes
//! SQLite's `PRAGMA integrity_check` (the `sqlite3` program, Debian's
//! `sqlite3`). The kill comes after a delay that walks through the call's
//! length, so it lands before, during and after the write.

use std::{
    future::Future,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{
    AgentProcess, Sandbox, TestResult,
    projects::{open_project, wait_for_index},
};

use crate::{
    faults::{Outcome, check, names_in},
    report::Report,
};

const ROUNDS: u64 = 100;

pub async fn run(only: Option<&str>, report: &mut Report) {
    check(
        report,
        only,
        "kill -9 during WriteFile ×100",
        "after each restart the 2 MiB file is wholly the old or the new contents, and once the project is indexed again no temporary file is left; state.db integrity_check ok",
        write_file_loop,
    )
    .await;
    check(
        report,
        only,
        "kill -9 during ApplyBatch ×100",
        "after each restart the batch (5 files replaced, 1 created, 1 deleted) is applied entirely or not at all, nothing left aside (no temporary file either, once the project is indexed again); state.db integrity_check ok",
        apply_batch_loop,
    )
    .await;
    check(
        report,
        only,
        "kill -9 during a settings write ×100",
        "after each restart the agent starts (config.toml accepted), the setting is the old or the new value, no temporary file is left beside config.toml; state.db integrity_check ok",
        settings_loop,
    )
    .await;
}

/// `PRAGMA integrity_check` of the sandbox's state.db: "ok" or what is
/// wrong.
pub fn integrity(sandbox: &Sandbox) -> TestResult<String> {
    let db = sandbox.data_dir().join("state.db");
    let output = Command::new("sqlite3")
        .arg(&db)
        .arg("PRAGMA integrity_check;")
        .output()
        .map_err(|err| format!("cannot run sqlite3 ({err}); Debian: apt-get install sqlite3"))?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() {
        return Ok(format!(
            "sqlite3 failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(text)
}

/// A kill delay for round `round` of a call that takes about `typical`:
/// from before the call reaches the agent to after it ended.
fn delay(round: u64, typical: Duration) -> Duration {
    let span = typical.as_micros().max(1000) as u64 * 3 / 2;
    // A stride coprime with 100 visits the span evenly in any order.
    Duration::from_micros((round * 37 % ROUNDS) * span / ROUNDS)
}

/// Kill the agent `after` the call started by `call` was sent; returns the
/// restarted agent and a client of it.
async fn kill_during<F>(
    sandbox: &Sandbox,
    agent: &mut AgentProcess,
    after: Duration,
    call: F,
) -> TestResult<(AgentProcess, Client)>
where
    F: Future<Output = ()> + Send + 'static,
{
    let task = tokio::spawn(call);
    tokio::time::sleep(after).await;
    agent.kill().await?;
    let _ = task.await;
    let restarted = sandbox.start_agent().await?;
    let client = restarted.client().await?;
    Ok((restarted, client))
}

/// How many times the agent's log says it removed temporaries that killed
/// writes had left (at most once per start or walk): that the cleanup ran,
/// not only that nothing was left.
fn cleanups_logged(sandbox: &Sandbox) -> usize {
    std::fs::read_to_string(sandbox.agent_log())
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("removed temporary files"))
        .count()
}

/// The leftovers of a write in `dir` besides `expected` names.
fn litter(dir: &Path, expected: &[&str]) -> TestResult<Vec<String>> {
    Ok(names_in(dir)?
        .into_iter()
        .filter(|name| !expected.contains(&name.as_str()))
        .collect())
}

async fn write_file_loop() -> Outcome {
    let sandbox = Sandbox::new()?;
    let dir = sandbox.project_dir("crash-write");
    std::fs::create_dir_all(&dir)?;
    let size = 2 * 1024 * 1024;
    let versions: Vec<Vec<u8>> = (0..ROUNDS + 1)
        .map(|n| vec![b'a' + (n % 26) as u8; size])
        .collect();
    std::fs::write(dir.join("big.bin"), &versions[0])?;
    let mut agent = sandbox.start_agent().await?;
    let mut client = agent.client().await?;
    let project = open_project(&client, &dir).await?;
    let started = Instant::now();
    client
        .files()
        .write_file(pb::WriteFileRequest {
            project: project.clone(),
            path: "big.bin".into(),
            content: versions[0].clone(),
            ..Default::default()
        })
        .await?;
    let typical = started.elapsed();
    let (mut torn, mut bad_db, mut new_seen) = (0, Vec::new(), 0);
    let mut current = 0usize;
    let mut max_litter = 0;
    for round in 1..=ROUNDS {
        let next = round as usize;
        let (files, project2, content) = (client.files(), project.clone(), versions[next].clone());
        let mut files = files;
        let (restarted, fresh) =
            kill_during(&sandbox, &mut agent, delay(round, typical), async move {
                let _ = files
                    .write_file(pb::WriteFileRequest {
                        project: project2,
                        path: "big.bin".into(),
                        content,
                        ..Default::default()
                    })
                    .await;
            })
            .await?;
        agent = restarted;
        client = fresh;
        // The walk of the reopened project is what removes the killed
        // write's temporary.
        wait_for_index(&client, &project).await?;
        let on_disk = std::fs::read(dir.join("big.bin"))?;
        if on_disk == versions[next] {
            new_seen += 1;
            current = next;
        } else if on_disk != versions[current] {
            torn += 1;
        }
        max_litter = max_litter.max(litter(&dir, &["big.bin"])?.len());
        let check = integrity(&sandbox)?;
        if check != "ok" {
            bad_db.push(format!("round {round}: {check}"));
        }
    }
    let left = litter(&dir, &["big.bin"])?;
    let cleaned = cleanups_logged(&sandbox);
    Ok((
        format!(
            "{ROUNDS} kills over a {:.0} ms write: {new_seen} new, {} old, {torn} torn; integrity_check not ok {} times{}; temporary files left behind: {} at most at once, {} at the end (e.g. {:?}); restarts that removed a killed write's temporary: {cleaned}",
            typical.as_secs_f64() * 1000.0,
            ROUNDS - new_seen - torn,
            bad_db.len(),
            bad_db
                .first()
                .map(|b| format!(" ({b})"))
                .unwrap_or_default(),
            max_litter,
            left.len(),
            left.first().map_or("", String::as_str)
        ),
        torn == 0 && bad_db.is_empty() && max_litter == 0,
    ))
}

const BATCH_FILES: [&str; 5] = ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"];

/// The batch of round `round` on a project at round `base`: replace the
/// five files with this round's contents, create `created-<round>.txt`,
/// delete `created-<base>.txt`.
fn batch(project: &str, base: u64, round: u64) -> pb::ApplyBatchRequest {
    use pb::batch_operation::Operation;
    let mut operations: Vec<pb::BatchOperation> = BATCH_FILES
        .iter()
        .map(|name| pb::BatchOperation {
            operation: Some(Operation::Write(pb::BatchWrite {
                path: (*name).to_owned(),
                content: contents(name, round),
                ..Default::default()
            })),
        })
        .collect();
    operations.push(pb::BatchOperation {
        operation: Some(Operation::Write(pb::BatchWrite {
            path: format!("created-{round}.txt"),
            content: b"created\n".to_vec(),
            create_only: true,
            ..Default::default()
        })),
    });
    operations.push(pb::BatchOperation {
        operation: Some(Operation::Delete(pb::BatchDelete {
            path: format!("created-{base}.txt"),
            permanent: true,
        })),
    });
    pb::ApplyBatchRequest {
        project: project.to_owned(),
        operations,
    }
}

fn contents(name: &str, round: u64) -> Vec<u8> {
    let line = format!("{name} of round {round}\n");
    line.repeat(256 * 1024 / line.len()).into_bytes()
}

/// Whether the project is wholly at round `round`: the five files with its
/// contents, its created file and no other.
fn wholly_at(dir: &Path, round: u64) -> TestResult<bool> {
    let files = BATCH_FILES
        .iter()
        .all(|name| std::fs::read(dir.join(name)).ok() == Some(contents(name, round)));
    let mut expected: Vec<String> = BATCH_FILES.iter().map(|n| (*n).to_owned()).collect();
    expected.push(format!("created-{round}.txt"));
    expected.sort();
    let present: Vec<String> = names_in(dir)?
        .into_iter()
        .filter(|name| !is_write_litter(name))
        .collect();
    Ok(files && present == expected)
}

/// Whether `name` is the temporary file of an atomic write that a kill
/// left behind (`.NAME.omnipanel-PID-START-HEX.tmp`, earlier
/// `.NAME.omnipanel-HEX.tmp`): litter, counted apart, not a change the
/// batch made.
fn is_write_litter(name: &str) -> bool {
    name.starts_with('.') && name.contains(".omnipanel-") && name.ends_with(".tmp")
}

/// Put the project at round `round` by hand (after a mixed result).
fn reset_to(dir: &Path, round: u64) -> TestResult {
    for name in names_in(dir)? {
        let path = dir.join(&name);
        if path.is_dir() {
            std::fs::remove_dir_all(path)?;
        } else {
            std::fs::remove_file(path)?;
        }
    }
    for name in BATCH_FILES {
        std::fs::write(dir.join(name), contents(name, round))?;
    }
    std::fs::write(dir.join(format!("created-{round}.txt")), "created\n")?;
    Ok(())
}

async fn apply_batch_loop() -> Outcome {
    let sandbox = Sandbox::new()?;
    let dir = sandbox.project_dir("crash-batch");
    std::fs::create_dir_all(&dir)?;
    reset_to(&dir, 0)?;
    let mut agent = sandbox.start_agent().await?;
    let mut client = agent.client().await?;
    let project = open_project(&client, &dir).await?;
    let started = Instant::now();
    let first = client
        .files()
        .apply_batch(batch(&project, 0, 1))
        .await?
        .into_inner();
    if !first.success || !wholly_at(&dir, 1)? {
        return Err(format!("a plain batch was not applied: {first:?}").into());
    }
    let typical = started.elapsed();
    let mut base = 1u64;
    let (mut mixed, mut applied, mut bad_db) = (Vec::new(), 0, Vec::new());
    let mut max_batch_litter = 0;
    for round in 2..ROUNDS + 2 {
        let mut files = client.files();
        let request = batch(&project, base, round);
        let (restarted, fresh) =
            kill_during(&sandbox, &mut agent, delay(round, typical), async move {
                let _ = files.apply_batch(request).await;
            })
            .await?;
        agent = restarted;
        client = fresh;
        wait_for_index(&client, &project).await?;
        let litter = names_in(&dir)?
            .iter()
            .filter(|name| is_write_litter(name))
            .count();
        max_batch_litter = max_batch_litter.max(litter);
        if wholly_at(&dir, round)? {
            applied += 1;
            base = round;
        } else if !wholly_at(&dir, base)? {
            // Which round each file holds, and any journal left behind.
            let rounds: Vec<String> = BATCH_FILES
                .iter()
                .map(|name| {
                    let text = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
                    let round = text.lines().next().unwrap_or("missing").to_owned();
                    format!(
                        "{name}: {} ({} bytes, whole: {})",
                        round.rsplit(' ').next().unwrap_or(""),
                        text.len(),
                        text.as_bytes() == contents(name, base).as_slice()
                    )
                })
                .collect();
            let journals = names_in(&sandbox.data_dir().join("batches")).unwrap_or_default();
            let log = std::fs::read_to_string(sandbox.agent_log()).unwrap_or_default();
            let recovered: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("interrupted by a crash"))
                .collect();
            mixed.push(format!(
                "round {round} on round {base}: {:?}, rounds {rounds:?}, journals {journals:?}, recoveries logged {} (last {:?})",
                names_in(&dir)?,
                recovered.len(),
                recovered.last()
            ));
            reset_to(&dir, round)?;
            base = round;
        }
        let check = integrity(&sandbox)?;
        if check != "ok" {
            bad_db.push(format!("round {round}: {check}"));
        }
    }
    Ok((
        format!(
            "{ROUNDS} kills over a {:.0} ms batch: {applied} applied, {} not applied, {} mixed{}; integrity_check not ok {} times; atomic-write temporaries left behind: up to {max_batch_litter}",
            typical.as_secs_f64() * 1000.0,
            ROUNDS - applied - mixed.len() as u64,
            mixed.len(),
            mixed
                .first()
                .map(|m| format!(" (first: {m})"))
                .unwrap_or_default(),
            bad_db.len()
        ),
        mixed.is_empty() && bad_db.is_empty() && max_batch_litter == 0,
    ))
}

async fn settings_loop() -> Outcome {
    let sandbox = Sandbox::new()?;
    sandbox.write_config("# the user's comment, kept by every edit\n[log]\nmax_files = 5\n")?;
    let mut agent = sandbox.start_agent().await?;
    let mut client = agent.client().await?;
    let started = Instant::now();
    set_max_files(&client, 5).await?;
    let typical = started.elapsed();
    let (mut wrong, mut new_seen, mut bad_db) = (Vec::new(), 0, Vec::new());
    let mut current = 5u64;
    let mut max_litter = 0;
    let config_dir = sandbox
        .config_file()
        .parent()
        .map(Path::to_path_buf)
        .ok_or("config.toml has no folder")?;
    for round in 1..=ROUNDS {
        let next = 5 + round % 2 + 1;
        let mut agent_api = client.agent();
        let (restarted, fresh) =
            kill_during(&sandbox, &mut agent, delay(round, typical), async move {
                let _ = agent_api
                    .update_settings(pb::UpdateSettingsRequest {
                        changes: vec![pb::SettingChange {
                            key: "log.max_files".to_owned(),
                            value: next.to_string(),
                            reset: false,
                        }],
                    })
                    .await;
            })
            .await?;
        agent = restarted;
        client = fresh;
        let text = std::fs::read_to_string(sandbox.config_file())?;
        max_litter = max_litter.max(
            names_in(&config_dir)?
                .iter()
                .filter(|name| is_write_litter(name))
                .count(),
        );
        let value = max_files(&client).await?;
        if value == next {
            new_seen += 1;
            current = next;
        } else if value != current {
            wrong.push(format!("round {round}: {value}"));
        }
        if !text.contains("# the user's comment") {
            wrong.push(format!("round {round}: the comment was lost"));
        }
        let check = integrity(&sandbox)?;
        if check != "ok" {
            bad_db.push(format!("round {round}: {check}"));
        }
    }
    let cleaned = cleanups_logged(&sandbox);
    Ok((
        format!(
            "{ROUNDS} kills: the agent restarted every time; {new_seen} new, {} old, {} wrong{}; integrity_check not ok {} times; temporary files beside config.toml after a restart: {max_litter} at most; restarts that removed a killed write's temporary: {cleaned}",
            ROUNDS - new_seen - wrong.len() as u64,
            wrong.len(),
            wrong.first().map(|w| format!(" ({w})")).unwrap_or_default(),
            bad_db.len()
        ),
        wrong.is_empty() && bad_db.is_empty() && max_litter == 0,
    ))
}

async fn set_max_files(client: &Client, value: u64) -> TestResult {
    client
        .agent()
        .update_settings(pb::UpdateSettingsRequest {
            changes: vec![pb::SettingChange {
                key: "log.max_files".to_owned(),
                value: value.to_string(),
                reset: false,
            }],
        })
        .await?;
    Ok(())
}

async fn max_files(client: &Client) -> TestResult<u64> {
    let settings = client
        .agent()
        .get_settings(pb::GetSettingsRequest::default())
        .await?
        .into_inner();
    let setting = settings
        .settings
        .iter()
        .find(|s| s.key == "log.max_files")
        .ok_or("no log.max_files setting")?;
    Ok(setting.value.trim().parse()?)
}
