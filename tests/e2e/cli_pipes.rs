//! The CLI when whoever reads its output goes away (`omnipanel ... | head
//! -1`): every output-heavy command (completions, logs, sys ps, files
//! find/grep, git log, events), run for real against a real agent with its
//! stdout on a pipe that the test closes early, must exit quietly with
//! status 141 (no panic, no backtrace, nothing on stderr); the following
//! ones (`events --follow`, `logs -f`) at their next write. Where the test
//! reads a first line before closing, the output is made larger than a
//! pipe's buffer and checked to be, so the CLI is still writing when the
//! pipe closes; where the output cannot be made that large (the machine's
//! processes, the agent's few events), the pipe is closed before any output.

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use omnipanel_tests::{PATIENCE, Sandbox, TestResult, binary, stderr, stdout};

/// The status the CLI exits with when its reader went away: what a shell
/// reports for a program killed by SIGPIPE (see clients/cli/src/main.rs).
const EXIT_OUTPUT_CLOSED: i32 = 141;

/// Linux's default pipe buffer (the largest of the usual defaults). An
/// output the test reads one line of must be well beyond it, or the CLI
/// may have written all of it before the pipe closes, and rightly exit 0.
const PIPE_BUFFER: usize = 64 * 1024;

/// When the test closes the CLI's stdout.
#[derive(Debug, Clone, Copy)]
enum Close {
    /// At once: the CLI's first write fails, whatever the output's size.
    BeforeOutput,
    /// After reading its first line, like `head -1`.
    AfterFirstLine,
}

/// A CLI run whose stdout the test has closed; killed when dropped.
struct Cut {
    args: Vec<String>,
    child: Child,
    stderr_path: PathBuf,
}

impl Cut {
    /// Start `omnipanel args` with its stdout on a pipe, close the pipe as
    /// `close` says, and return once it is closed.
    fn start(sandbox: &Sandbox, args: &[&str], close: Close) -> TestResult<Self> {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        let stderr_path = sandbox.root().join(format!(
            "cli-stderr-{}.log",
            RUNS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut child = sandbox
            .command(&binary("omnipanel"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()?;
        let out = child.stdout.take().ok_or("no stdout")?;
        // From here a failure drops the Cut, which kills the CLI.
        let cut = Self {
            args: args.iter().map(|&arg| arg.to_owned()).collect(),
            child,
            stderr_path,
        };
        match close {
            Close::BeforeOutput => drop(out),
            Close::AfterFirstLine => first_line_then_close(out)?,
        }
        Ok(cut)
    }

    /// Wait (bounded by [`PATIENCE`]) for the CLI to exit, and check that
    /// it ended quietly with [`EXIT_OUTPUT_CLOSED`].
    fn assert_quiet_exit(mut self) -> TestResult {
        let status = self.wait()?;
        let mut errors = String::new();
        std::fs::File::open(&self.stderr_path)?.read_to_string(&mut errors)?;
        let args = &self.args;
        assert!(
            !errors.contains("panicked") && !errors.contains("backtrace"),
            "omnipanel {args:?} panicked: {errors}"
        );
        assert!(
            errors.trim().is_empty(),
            "omnipanel {args:?} was not quiet: {errors}"
        );
        assert_eq!(
            status.code(),
            Some(EXIT_OUTPUT_CLOSED),
            "omnipanel {args:?} ended with {status}"
        );
        Ok(())
    }

    fn wait(&mut self) -> TestResult<ExitStatus> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "omnipanel {:?} still runs {} s after its reader went away",
                    self.args,
                    PATIENCE.as_secs()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Cut {
    fn drop(&mut self) {
        omnipanel_tests::stop_child(&mut self.child);
    }
}

/// Read `out` up to its first newline, then close it. The read runs on a
/// thread, so a CLI that never writes fails the test after [`PATIENCE`]
/// (the caller then kills the CLI, which ends the read) instead of hanging
/// it.
fn first_line_then_close(mut out: std::process::ChildStdout) -> TestResult {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Byte by byte: nothing beyond the first line leaves the pipe.
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while let Ok(1) = out.read(&mut byte) {
            line.push(byte[0]);
            if byte[0] == b'\n' {
                break;
            }
        }
        drop(out);
        let _ = done.send(line);
    });
    match finished.recv_timeout(PATIENCE) {
        Ok(line) if line.ends_with(b"\n") => Ok(()),
        Ok(line) => Err(format!(
            "the output ended before a first line: {:?}",
            String::from_utf8_lossy(&line)
        )
        .into()),
        Err(_) => Err("no first line in time".into()),
    }
}

/// Run `omnipanel args` to its end and check that its output is large
/// enough for [`Close::AfterFirstLine`] to cut it short.
fn assert_outgrows_a_pipe(sandbox: &Sandbox, args: &[&str]) -> TestResult {
    let output = sandbox.cli(args)?;
    assert!(
        output.status.success(),
        "omnipanel {args:?}: {}",
        stderr(&output)
    );
    let size = output.stdout.len();
    assert!(
        size > PIPE_BUFFER * 3 / 2,
        "omnipanel {args:?} printed only {size} bytes; the test needs more than a pipe holds"
    );
    Ok(())
}

/// The real git in `dir`, with the sandbox's HOME and no system config,
/// `input` on its stdin.
fn git(sandbox: &Sandbox, dir: &Path, args: &[&str], input: &str) -> TestResult {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", sandbox.root().join("home"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(input.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(format!("git {args:?} failed: {}", stderr(&output)).into());
    }
    Ok(())
}

/// `omnipanel projects open DIR`; returns the path to pass as `--project`.
fn open_project(sandbox: &Sandbox, dir: &Path) -> TestResult<String> {
    let at = std::fs::canonicalize(dir)?.display().to_string();
    let output = sandbox.cli(&["projects", "open", &at])?;
    assert!(output.status.success(), "{}", stderr(&output));
    Ok(at)
}

#[tokio::test]
async fn completions_end_quietly_when_the_reader_leaves_after_one_line() -> TestResult {
    // The issue: clap_complete panicked ("failed to write completion
    // file"). No agent is needed.
    let sandbox = Sandbox::new()?;
    for shell in ["bash", "zsh", "fish"] {
        let args = ["completions", shell];
        assert_outgrows_a_pipe(&sandbox, &args)?;
        Cut::start(&sandbox, &args, Close::AfterFirstLine)?.assert_quiet_exit()?;
    }
    Ok(())
}

#[tokio::test]
async fn logs_end_quietly_when_the_reader_leaves_after_one_line() -> TestResult {
    let sandbox = Sandbox::new()?;
    // A long log from "earlier runs", which the agent appends to.
    let log = sandbox.agent_log();
    std::fs::create_dir_all(log.parent().ok_or("no log folder")?)?;
    let filler: String = (0..4000)
        .map(|i| {
            format!(
                "2025-01-01T00:00:00Z  INFO omnipanel_agent: an earlier line {i:05} {}\n",
                "x".repeat(80)
            )
        })
        .collect();
    std::fs::write(&log, filler)?;
    let _agent = sandbox.start_agent().await?;
    let args = ["logs", "-n", "5000"];
    assert_outgrows_a_pipe(&sandbox, &args)?;
    Cut::start(&sandbox, &args, Close::AfterFirstLine)?.assert_quiet_exit()?;
    Ok(())
}

#[tokio::test]
async fn sys_ps_and_events_end_quietly_when_the_reader_is_gone_before_they_print() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    for args in [
        &["sys", "ps", "-n", "1000"][..],
        &["sys", "ps", "--json", "-n", "1000"],
        &["events"],
        &["events", "--json"],
    ] {
        Cut::start(&sandbox, args, Close::BeforeOutput)?.assert_quiet_exit()?;
    }
    Ok(())
}

#[tokio::test]
async fn files_find_and_grep_end_quietly_when_the_reader_leaves_after_one_line() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let root = sandbox.root().join("many-files");
    // Long paths, so the 1000 that find prints far exceed a pipe.
    let folder = root.join(format!("a-folder-with-a-long-name-{}", "f".repeat(80)));
    std::fs::create_dir_all(&folder)?;
    for i in 0..1200 {
        std::fs::write(
            folder.join(format!("file-{i:04}-{}.txt", "n".repeat(80))),
            "",
        )?;
    }
    let needles: String = (0..2000)
        .map(|i| format!("needle {i:05} {}\n", "t".repeat(200)))
        .collect();
    std::fs::write(root.join("haystack.txt"), needles)?;
    let at = open_project(&sandbox, &root)?;

    let find = ["files", "--project", &at, "find", "", "-n", "1000"];
    // The fuzzy index is built after the project opens; until then find
    // answers with what it has.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let output = sandbox.cli(&find)?;
        if stdout(&output).lines().count() == 1000 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "find never listed 1000 files: {}",
            stderr(&output)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_outgrows_a_pipe(&sandbox, &find)?;
    Cut::start(&sandbox, &find, Close::AfterFirstLine)?.assert_quiet_exit()?;

    let grep = ["files", "--project", &at, "grep", "needle"];
    assert_outgrows_a_pipe(&sandbox, &grep)?;
    Cut::start(&sandbox, &grep, Close::AfterFirstLine)?.assert_quiet_exit()?;
    Ok(())
}

#[tokio::test]
async fn git_log_ends_quietly_when_the_reader_leaves_after_one_line() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let dir = sandbox.root().join("long-history");
    std::fs::create_dir_all(&dir)?;
    git(&sandbox, &dir, &["init", "-q", "-b", "main"], "")?;
    // 1000 commits in one `git fast-import` (each continues from the
    // branch's tip), with long summaries.
    let mut stream = String::new();
    for i in 0..1000 {
        let message = format!("commit {i:04} {}\n", "s".repeat(150));
        stream.push_str(&format!(
            "commit refs/heads/main\ncommitter Test User <test@example.com> {} +0000\ndata {}\n{message}\n",
            1_700_000_000 + i,
            message.len()
        ));
    }
    git(&sandbox, &dir, &["fast-import", "--quiet"], &stream)?;
    let at = open_project(&sandbox, &dir)?;

    let log = ["git", "--project", &at, "log", "-n", "1000"];
    assert_outgrows_a_pipe(&sandbox, &log)?;
    Cut::start(&sandbox, &log, Close::AfterFirstLine)?.assert_quiet_exit()?;
    Ok(())
}

#[tokio::test]
async fn following_commands_end_at_their_next_write_once_the_reader_is_gone() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    // The first line (the replayed start event, the last log line) shows
    // that each is following; then the pipe closes.
    let events = Cut::start(&sandbox, &["events", "--follow"], Close::AfterFirstLine)?;
    let logs = Cut::start(&sandbox, &["logs", "-f", "-n", "1"], Close::AfterFirstLine)?;
    // Something new for both to write: a token's event and its log line.
    let created = sandbox.cli(&[
        "token",
        "create",
        "--scope",
        "read",
        "--name",
        "after-close",
    ])?;
    assert!(created.status.success(), "{}", stderr(&created));
    events.assert_quiet_exit()?;
    logs.assert_quiet_exit()?;
    Ok(())
}
