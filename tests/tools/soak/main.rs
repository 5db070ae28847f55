//! `soak idle|load|faults [--minutes N] [--out FILE] [--only NAME]`: the
//! long-running checks of issue 19 that no test run can afford, run by
//! `scripts/soak` against the real agent on loopback only. Each scenario
//! writes its expected behaviour before it runs, asserts it, and ends up
//! as rows of one table (`report.rs`): printed as Markdown for
//! docs/QUALITY.md and written as JSON for machines. The scenarios:
//!
//! - `idle.rs`: the agent left with real projects open, first untouched,
//!   then under an editor's load (a save a second, a commit a minute);
//! - `load.rs`: 1 000 concurrent streams and unary calls at the rate the
//!   machine sustains, connections churned;
//! - `faults.rs` (with `crash_loops.rs` and `ollama_faults.rs`): a full
//!   disk, `kill -9` in the middle of writes, Ollama stopped or killed,
//!   the socket folder deleted, the clock jumping, state.db read-only.
//!
//! The exit status is 0 when every row passed, 1 when one failed, 2 when
//! the run itself could not be made (bad arguments, no binaries).

mod crash_loops;
mod faults;
mod idle;
mod load;
mod ollama_faults;
mod report;
mod sampling;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use omnipanel_tests::TestResult;

use crate::report::Report;

const USAGE: &str = "usage: soak idle|load|faults [--minutes N] [--out FILE] [--only NAME]
  idle    the agent with real projects open for N minutes untouched, then
          N minutes under an editor-like load
  load    1 000 streams and unary calls for N minutes, connections churned
  faults  disk full, kill -9 loops, Ollama stopped and killed, socket
          folder deleted, clock jumps, state.db read-only (--minutes unused;
          --only runs the faults whose name contains NAME)";

/// What the command line asked for.
struct Args {
    scenario: String,
    minutes: u64,
    out: Option<PathBuf>,
    only: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().ok_or("no scenario given")?;
    if !["idle", "load", "faults"].contains(&scenario.as_str()) {
        return Err(format!("unknown scenario {scenario:?}"));
    }
    let mut parsed = Args {
        scenario,
        minutes: 1,
        out: None,
        only: None,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--minutes" => {
                parsed.minutes = value
                    .parse()
                    .ok()
                    .filter(|m| *m > 0)
                    .ok_or(format!("--minutes {value:?}: expected a whole number > 0"))?;
            }
            "--out" => parsed.out = Some(PathBuf::from(value)),
            "--only" => parsed.only = Some(value),
            _ => return Err(format!("unknown option {flag:?}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("soak: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("soak: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(report) => {
            print!("{}", report.markdown());
            if let Some(out) = &args.out
                && let Err(err) = report.write_json(out)
            {
                eprintln!("soak: cannot write {}: {err}", out.display());
                return ExitCode::from(2);
            }
            if report.all_passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(err) => {
            eprintln!("soak {}: {err}", args.scenario);
            ExitCode::from(2)
        }
    }
}

async fn run(args: &Args) -> TestResult<Report> {
    let minutes = Duration::from_secs(args.minutes * 60);
    let mut report = Report::new(&args.scenario, args.minutes);
    match args.scenario.as_str() {
        "idle" => idle::run(minutes, &mut report).await?,
        "load" => load::run(minutes, &mut report).await?,
        _ => faults::run(args.only.as_deref(), &mut report).await?,
    }
    Ok(report)
}
