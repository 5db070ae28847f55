//! The fault scenarios: each states what the agent must do, hurts it, and
//! records what it did. Here: the disk filling up under WriteFile, the
//! socket folder deleted under a running agent, the clock jumping forward
//! and back (libfaketime from Debian's `faketime`, monotonic time left
//! alone as the kernel leaves it), and state.db made read-only (the
//! immutable flag for root, which ignores file modes, else the mode; a bind
//! mount cannot be made read-only while the agent holds the database open
//! for writing). The `kill -9` loops are in `crash_loops.rs`, Ollama's
//! faults in
//! `ollama_faults.rs`. Mounting needs root; without it those faults are
//! recorded as not run.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{AgentProcess, PATIENCE, ReadOnly, Sandbox, TestResult, process_exists};
use tonic::Code;

use crate::{crash_loops, ollama_faults, report::Report};

/// What a fault check found: the observation and whether it held.
pub type Outcome = TestResult<(String, bool)>;

/// Run one fault if `only` selects it, recording a failure to run as a
/// failed row.
pub async fn check<F: Future<Output = Outcome>>(
    report: &mut Report,
    only: Option<&str>,
    name: &str,
    expected: &str,
    fault: impl FnOnce() -> F,
) {
    if only.is_some_and(|only| !name.contains(only)) {
        return;
    }
    report.expect(name, expected);
    let (observed, passed) = match fault().await {
        Ok(outcome) => outcome,
        Err(err) => (format!("the check itself failed: {err}"), false),
    };
    report.row(name, expected, observed, passed);
}

pub async fn run(only: Option<&str>, report: &mut Report) -> TestResult {
    check(
        report,
        only,
        "disk full during WriteFile",
        "RESOURCE_EXHAUSTED naming the disk; the old file intact; no temporary file left; the next write after space is freed succeeds",
        disk_full_write,
    )
    .await;
    ollama_faults::run(only, report).await;
    crash_loops::run(only, report).await;
    check(
        report,
        only,
        "socket folder deleted under a running agent",
        "within 60 s the socket is back and answers, or the agent has exited with a log line naming the socket; never running without a socket",
        socket_folder_deleted,
    )
    .await;
    check(
        report,
        only,
        "clock jumps forward 400 days, then back 1 day",
        "no activity-log rows and no log files purged by either jump; StreamMetrics keeps its 1 s pace after each; the agent answers",
        clock_jumps,
    )
    .await;
    check(
        report,
        only,
        "state.db made read-only (immutable), agent started on it",
        "the agent starts; reads (GetInfo, ListProjects, GetProject, GetSettings) answer; a write (OpenProject) fails with a message naming state.db; nothing crashes",
        read_only_state_db,
    )
    .await;
    Ok(())
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A file system mounted for one fault, unmounted when dropped.
pub struct Mount {
    path: PathBuf,
}

impl Mount {
    pub fn tmpfs(path: &Path, size: &str) -> TestResult<Self> {
        std::fs::create_dir_all(path)?;
        run_command(Command::new("mount").args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size}"),
            "tmpfs",
            &path.display().to_string(),
        ]))?;
        Ok(Self {
            path: path.to_owned(),
        })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

pub fn run_command(command: &mut Command) -> TestResult {
    let output = command.output()?;
    if !output.status.success() {
        return Err(format!(
            "{command:?}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// The file names in `dir`, sorted.
pub fn names_in(dir: &Path) -> TestResult<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

async fn open(client: &Client, path: &Path) -> TestResult<String> {
    omnipanel_tests::projects::open_project(client, path).await
}

async fn write_file(
    client: &Client,
    project: &str,
    path: &str,
    content: Vec<u8>,
) -> Result<(), tonic::Status> {
    client
        .files()
        .write_file(pb::WriteFileRequest {
            project: project.to_owned(),
            path: path.to_owned(),
            content,
            ..Default::default()
        })
        .await
        .map(drop)
}

async fn disk_full_write() -> Outcome {
    if !is_root() {
        return Ok(("not run: mounting a tmpfs needs root".to_owned(), false));
    }
    let sandbox = Sandbox::new()?;
    let dir = sandbox.project_dir("small-disk");
    let _mount = Mount::tmpfs(&dir, "1m")?;
    let original = b"the original contents\n".to_vec();
    std::fs::write(dir.join("keep.txt"), &original)?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let project = open(&client, &dir).await?;
    // Fill the disk to its last byte.
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(dir.join("filler.bin"))?;
        let chunk = vec![0u8; 4096];
        while filler.write_all(&chunk).is_ok() {}
        let _ = filler.write_all(&[0]);
    }
    let before = names_in(&dir)?;
    let refused = write_file(&client, &project, "keep.txt", vec![b'x'; 256 * 1024]).await;
    let kept = std::fs::read(dir.join("keep.txt"))? == original;
    let after = names_in(&dir)?;
    std::fs::remove_file(dir.join("filler.bin"))?;
    let again = write_file(&client, &project, "keep.txt", b"new\n".to_vec()).await;
    let (code, message) = match &refused {
        Ok(()) => ("OK".to_owned(), String::new()),
        Err(status) => (format!("{:?}", status.code()), status.message().to_owned()),
    };
    let passed = matches!(&refused, Err(s) if s.code() == Code::ResourceExhausted)
        && kept
        && before == after
        && again.is_ok();
    Ok((
        format!(
            "{code} \"{message}\"; old file intact: {kept}; files before {before:?}, after {after:?}; write after freeing space: {}",
            if again.is_ok() { "ok" } else { "failed" }
        ),
        passed,
    ))
}

/// The agent's log and stderr, for a line that explains an exit.
fn agent_words(sandbox: &Sandbox, agent: &AgentProcess) -> String {
    let log = std::fs::read_to_string(sandbox.agent_log()).unwrap_or_default();
    format!("{log}\n{}", agent.stderr())
}

async fn socket_folder_deleted() -> Outcome {
    let sandbox = Sandbox::new()?;
    let mut agent = sandbox.start_agent().await?;
    let pid = agent.pid();
    let folder = sandbox
        .socket()
        .parent()
        .ok_or("no socket folder")?
        .to_owned();
    std::fs::remove_dir_all(&folder)?;
    let deleted = Instant::now();
    let deadline = deleted + PATIENCE;
    loop {
        if !process_exists(pid) {
            let status = agent.wait_exit().await?;
            let words = agent_words(&sandbox, &agent);
            let line = words
                .lines()
                .rev()
                .find(|l| l.contains("socket"))
                .unwrap_or("")
                .trim()
                .to_owned();
            return Ok((
                format!(
                    "the agent exited ({status}) after {:.1} s; last log line naming the socket: {line:?}",
                    deleted.elapsed().as_secs_f64()
                ),
                !line.is_empty(),
            ));
        }
        if sandbox.socket().exists() && Client::connect(sandbox.target()).await.is_ok() {
            return Ok((
                format!(
                    "the socket was recreated and answered after {:.1} s",
                    deleted.elapsed().as_secs_f64()
                ),
                true,
            ));
        }
        if Instant::now() > deadline {
            return Ok((
                format!(
                    "after {} s the agent still runs with no socket folder and logged nothing about it (a silent zombie)",
                    PATIENCE.as_secs()
                ),
                false,
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const FAKETIME_LIBRARY: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

async fn audit_rows(client: &Client) -> TestResult<usize> {
    let mut rows = 0;
    let mut page_token = String::new();
    loop {
        let page = client
            .agent()
            .list_audit(pb::ListAuditRequest {
                page_size: 500,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await?
            .into_inner();
        rows += page.entries.len();
        if page.next_page_token.is_empty() {
            return Ok(rows);
        }
        page_token = page.next_page_token;
    }
}

/// Messages a StreamMetrics stream delivers in `window`.
async fn metrics_in(
    stream: &mut tonic::Streaming<pb::StreamMetricsResponse>,
    window: Duration,
) -> usize {
    let deadline = tokio::time::Instant::now() + window;
    let mut count = 0;
    while let Ok(Ok(Some(_))) = tokio::time::timeout_at(deadline, stream.message()).await {
        count += 1;
    }
    count
}

/// Bytes in the log folder's files (the current log and its rotations).
fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    })
}

async fn clock_jumps() -> Outcome {
    if !Path::new(FAKETIME_LIBRARY).exists() {
        return Ok((
            format!("not run: {FAKETIME_LIBRARY} is missing (Debian: faketime)"),
            false,
        ));
    }
    let sandbox = Sandbox::new()?;
    let offset = sandbox.root().join("faketime");
    std::fs::write(&offset, "+0\n")?;
    let offset_text = offset.display().to_string();
    let agent = AgentProcess::start(
        &sandbox,
        &[
            ("LD_PRELOAD", FAKETIME_LIBRARY),
            ("FAKETIME_TIMESTAMP_FILE", &offset_text),
            ("FAKETIME_NO_CACHE", "1"),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    )
    .await?;
    let client = agent.client().await?;
    let dir = sandbox.project_dir("clock");
    std::fs::create_dir_all(&dir)?;
    let project = open(&client, &dir).await?;
    for n in 0..20 {
        write_file(&client, &project, &format!("f{n}.txt"), b"x".to_vec()).await?;
    }
    let mut metrics = client
        .system()
        .stream_metrics(pb::StreamMetricsRequest { interval_ms: 1000 })
        .await?
        .into_inner();
    let rows_before = audit_rows(&client).await?;
    let pace_before = metrics_in(&mut metrics, Duration::from_secs(5)).await;
    let log_dir = sandbox
        .agent_log()
        .parent()
        .ok_or("no log folder")?
        .to_owned();
    let logs_before = log_bytes(&log_dir);
    let mut seen = vec![format!(
        "{rows_before} rows, {logs_before} bytes of logs, {pace_before} snapshots in 5 s before"
    )];
    let mut passed = rows_before > 0 && pace_before >= 3;
    for (jump, label) in [
        ("+400d", "after +400 d"),
        ("-1d", "after going back to -1 d"),
    ] {
        std::fs::write(&offset, format!("{jump}\n"))?;
        // A write makes the activity log prune by age (its row is
        // written a moment later); opening a project writes a log line.
        write_file(
            &client,
            &project,
            "after-jump.txt",
            jump.as_bytes().to_vec(),
        )
        .await?;
        let other = sandbox.project_dir(&format!("after{jump}"));
        std::fs::create_dir_all(&other)?;
        open(&client, &other).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut rows = audit_rows(&client).await?;
        while rows <= rows_before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            rows = audit_rows(&client).await?;
        }
        let pace = metrics_in(&mut metrics, Duration::from_secs(5)).await;
        let info = client.agent().get_info(pb::GetInfoRequest {}).await.is_ok();
        let logs = log_bytes(&log_dir);
        seen.push(format!(
            "{label}: {rows} rows, {logs} bytes of logs, {pace} snapshots in 5 s, GetInfo {}",
            if info { "ok" } else { "failed" }
        ));
        passed &= rows > rows_before && logs >= logs_before && pace >= 3 && info;
    }
    std::fs::write(&offset, "+0\n")?;
    Ok((seen.join("; "), passed))
}

async fn read_only_state_db() -> Outcome {
    let sandbox = Sandbox::new()?;
    let mut agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let first = sandbox.project_dir("first");
    std::fs::create_dir_all(&first)?;
    let project = open(&client, &first).await?;
    drop(client);
    agent.stop().await?;
    // Read-only as a read-only file system or `chmod a-w` makes it for a
    // user; root ignores modes, not the immutable flag (`ReadOnly` uses
    // whichever binds this process).
    let db = sandbox.data_dir().join("state.db");
    let Some(_read_only) = ReadOnly::make(&db) else {
        return Ok((
            "not run: root may not set the immutable flag here".to_owned(),
            false,
        ));
    };
    let agent = match AgentProcess::start(&sandbox, &[]).await {
        Ok(agent) => agent,
        Err(err) => {
            let words = std::fs::read_to_string(sandbox.agent_log()).unwrap_or_default();
            let last = words.lines().last().unwrap_or("").to_owned();
            let mut said = err.to_string();
            said.truncate(400);
            return Ok((
                format!("the agent did not start: {said}; last log line {last:?}"),
                false,
            ));
        }
    };
    let client = agent.client().await?;
    let reads = [
        (
            "GetInfo",
            client.agent().get_info(pb::GetInfoRequest {}).await.err(),
        ),
        (
            "ListProjects",
            client
                .projects()
                .list_projects(pb::ListProjectsRequest::default())
                .await
                .err(),
        ),
        (
            "GetProject",
            client
                .projects()
                .get_project(pb::GetProjectRequest {
                    project: project.clone(),
                })
                .await
                .err(),
        ),
        (
            "GetSettings",
            client
                .agent()
                .get_settings(pb::GetSettingsRequest::default())
                .await
                .err(),
        ),
    ];
    let failed_reads: Vec<String> = reads
        .iter()
        .filter_map(|(name, err)| err.as_ref().map(|e| format!("{name}: {e}")))
        .collect();
    let second = sandbox.project_dir("second");
    std::fs::create_dir_all(&second)?;
    let write = client
        .projects()
        .open_project(pb::OpenProjectRequest {
            path: second.display().to_string(),
            name: String::new(),
        })
        .await;
    let alive = process_exists(agent.pid());
    let (write_said, clear) = match &write {
        Ok(_) => ("OpenProject succeeded".to_owned(), false),
        Err(status) => (
            format!("{:?} \"{}\"", status.code(), status.message()),
            ["state.db", "read-only", "readonly", "state database"]
                .iter()
                .any(|word| status.message().contains(word)),
        ),
    };
    Ok((
        format!(
            "the agent started; reads: {}; a write (OpenProject): {write_said}; agent alive: {alive}",
            if failed_reads.is_empty() {
                "all answered".to_owned()
            } else {
                failed_reads.join(", ")
            },
        ),
        failed_reads.is_empty() && clear && alive,
    ))
}
