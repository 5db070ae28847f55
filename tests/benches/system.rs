//! System metrics benchmark (`cargo bench -p omnipanel-tests --bench
//! system`, or `scripts/bench`): the agent's CPU time over a 60 s window
//!
//! - idle with alerts off (`[system] alerts = false`): the baseline, which
//!   should be zero: nothing is read while nobody listens;
//! - idle with the default thresholds: the alert sampler reads the machine
//!   every 5 s;
//! - with 50 StreamMetrics subscribers at 1 Hz (alerts off), spread over 5
//!   connections: one shared reading per second, 50 messages sent.
//!
//! The three agents run side by side in the same window, so machine noise
//! hits them alike; the window is repeated and medians are reported as
//! percent of one core, next to the baseline. Set OMNIPANEL_BENCH_ROUNDS and
//! OMNIPANEL_BENCH_SECONDS for a quicker look. Nothing here asserts on
//! speed; the numbers are for people (docs/BENCHMARKS.md).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{
    AgentProcess, Sandbox, TestResult,
    measure::{cpu_ticks, machine, median, rss_mb},
};

const SUBSCRIBERS: usize = 50;
const CONNECTIONS: usize = 5;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> TestResult {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run_all())
}

/// Clock ticks per second (USER_HZ); 100 on every Linux we run on.
const TICKS_PER_SECOND: f64 = 100.0;

fn percent_of_core(ticks: u64, seconds: f64) -> f64 {
    ticks as f64 / TICKS_PER_SECOND / seconds * 100.0
}

struct Round {
    baseline: f64,
    alerts: f64,
    streams: f64,
    received: u64,
    rss: [f64; 3],
    seconds: f64,
}

async fn start(sandbox: &Sandbox, config: &str) -> TestResult<AgentProcess> {
    sandbox.write_config(config)?;
    AgentProcess::start(sandbox, &[("OMNIPANEL_LOG", "warn")]).await
}

async fn round(seconds: u64) -> TestResult<Round> {
    let (quiet_box, alerts_box, streams_box) = (Sandbox::new()?, Sandbox::new()?, Sandbox::new()?);
    let quiet = start(&quiet_box, "[system]\nalerts = false\n").await?;
    let alerting = start(&alerts_box, "").await?;
    let streaming = start(&streams_box, "[system]\nalerts = false\n").await?;

    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(Client::connect(streams_box.target()).await?);
    }
    for index in 0..SUBSCRIBERS {
        let client = &clients[index % CONNECTIONS];
        let mut stream = client
            .system()
            .stream_metrics(pb::StreamMetricsRequest { interval_ms: 1000 })
            .await?
            .into_inner();
        let received = received.clone();
        readers.push(tokio::spawn(async move {
            while let Ok(Some(_)) = stream.message().await {
                received.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Let start-up work (state.db, first readings) settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let pids = [quiet.pid(), alerting.pid(), streaming.pid()];
    let before: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).collect();
    let received_before = received.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let elapsed = started.elapsed().as_secs_f64();
    let after: Vec<u64> = pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).collect();
    let received_in_window = received.load(Ordering::Relaxed) - received_before;
    let rss = [rss_mb(pids[0]), rss_mb(pids[1]), rss_mb(pids[2])];
    let used = |i: usize| percent_of_core(after[i].saturating_sub(before[i]), elapsed);
    for reader in readers {
        reader.abort();
    }
    drop(clients);
    Ok(Round {
        baseline: used(0),
        alerts: used(1),
        streams: used(2),
        received: received_in_window,
        rss,
        seconds: elapsed,
    })
}

async fn run_all() -> TestResult {
    let rounds = env_number("OMNIPANEL_BENCH_ROUNDS", 3).max(1);
    let seconds = env_number("OMNIPANEL_BENCH_SECONDS", 60).max(1);
    println!("## System metrics ({})\n", machine());
    println!(
        "| round | idle, alerts off (baseline) | idle, default alerts (5 s) | 50 streams at 1 Hz | stream messages in window |"
    );
    println!("|---|---|---|---|---|");
    let mut results = Vec::new();
    for index in 0..rounds {
        let result = round(seconds).await?;
        println!(
            "| {} | {:.3} % | {:.3} % | {:.3} % | {} in {:.0} s |",
            index + 1,
            result.baseline,
            result.alerts,
            result.streams,
            result.received,
            result.seconds
        );
        results.push(result);
    }
    let pick = |f: fn(&Round) -> f64| median(&mut results.iter().map(f).collect::<Vec<_>>());
    let (baseline, alerts, streams) = (
        pick(|r| r.baseline),
        pick(|r| r.alerts),
        pick(|r| r.streams),
    );
    let rss: Vec<f64> = (0..3)
        .map(|i| median(&mut results.iter().map(|r| r.rss[i]).collect::<Vec<_>>()))
        .collect();
    println!();
    println!(
        "| measure ({seconds} s window, median of {rounds}) | CPU, % of one core | RSS after the window |"
    );
    println!("|---|---|---|");
    println!(
        "| idle, alerts off (baseline) | {baseline:.3} % | {:.1} MB |",
        rss[0]
    );
    println!(
        "| idle, default alerts | {alerts:.3} % ({:+.3} points over the baseline) | {:.1} MB |",
        alerts - baseline,
        rss[1]
    );
    println!(
        "| 50 subscribers at 1 Hz | {streams:.3} % ({:+.3} points over the baseline) | {:.1} MB |",
        streams - baseline,
        rss[2]
    );
    Ok(())
}
