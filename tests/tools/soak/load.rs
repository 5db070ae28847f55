//! The load run: 1 000 concurrent streams (WatchEvents, StreamMetrics and
//! a project's Watch, a third each) on four connections of 250, under the
//! 256 calls a connection may hold (`agent/src/rpc/limits.rs`), plus 16
//! callers making unary calls (GetInfo and Stat) in a closed loop, each on
//! its own connection: as many calls as the machine sustains, with the
//! owner's 1 024 open calls across connections never exceeded
//! (1 000 + 16 + the publisher's one). A publisher writes a file every
//! 500 ms and changes a setting every 2 s, so the streams carry something.
//! Connections are churned: every 15 s one stream connection is closed and
//! replaced; every unary caller reconnects after 2 000 calls.
//!
//! Figures: throughput, p50/p99 latency, streamed messages, refusals; the
//! agent's RSS and open fds at the start (after the streams opened), the
//! middle and the end, once the clients have left, and settled a little
//! over a minute later.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{PATIENCE, Sandbox, TestResult, projects::open_project};
use serde_json::json;
use tokio::task::JoinHandle;
use tonic::Code;

use crate::{
    report::Report,
    sampling::{Sample, all_to_json, rss_growth_percent},
};

const STREAM_CONNECTIONS: usize = 4;
const STREAMS_PER_CONNECTION: usize = 250;
const UNARY_CALLERS: usize = 16;
const CALLS_PER_CONNECTION: usize = 2_000;
const CHURN_EVERY: Duration = Duration::from_secs(15);
/// How long after the clients leave the settled RSS is read: past the
/// agent's trim, which comes at most a minute after the last calls.
const SETTLE_AFTER_LOAD: Duration = Duration::from_secs(75);

/// Counters shared by every task.
#[derive(Debug, Default)]
struct Counters {
    messages: [AtomicU64; 3],
    stream_errors: AtomicU64,
    unary_errors: AtomicU64,
    refused: AtomicU64,
    reconnects: AtomicU64,
    published: AtomicU64,
    /// The first unexpected error, for a person reading a failure.
    first_error: std::sync::Mutex<Option<String>>,
}

impl Counters {
    fn error(&self, what: &str, err: &dyn std::fmt::Display) {
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            *first = Some(format!("{what}: {err}"));
        }
    }
}

/// One connection of streams and the tasks reading them.
struct StreamConnection {
    _client: Client,
    readers: Vec<JoinHandle<()>>,
}

impl Drop for StreamConnection {
    fn drop(&mut self) {
        for reader in &self.readers {
            reader.abort();
        }
    }
}

/// Open one stream of `kind` (0 events, 1 metrics, 2 watch), retrying
/// while the agent says the places are taken (a replaced connection's
/// streams are given back a moment after it closes).
async fn open_stream(
    client: &Client,
    kind: usize,
    project: &str,
    counters: &Arc<Counters>,
) -> TestResult<JoinHandle<()>> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let opened: Result<JoinHandle<()>, tonic::Status> = match kind {
            0 => client
                .agent()
                .watch_events(pb::WatchEventsRequest::default())
                .await
                .map(|r| reader(r.into_inner(), kind, counters.clone())),
            1 => client
                .system()
                .stream_metrics(pb::StreamMetricsRequest { interval_ms: 1000 })
                .await
                .map(|r| reader(r.into_inner(), kind, counters.clone())),
            _ => client
                .files()
                .watch(pb::WatchRequest {
                    project: project.to_owned(),
                    after_sequence: None,
                    instance_id: 0,
                })
                .await
                .map(|r| reader(r.into_inner(), kind, counters.clone())),
        };
        match opened {
            Ok(task) => return Ok(task),
            Err(status) if status.code() == Code::ResourceExhausted => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                if Instant::now() > deadline {
                    return Err(format!("still refused after {PATIENCE:?}: {status}").into());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(status) => return Err(format!("opening a stream: {status}").into()),
        }
    }
}

fn reader<M: Send + 'static>(
    mut stream: tonic::Streaming<M>,
    kind: usize,
    counters: Arc<Counters>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match stream.message().await {
                Ok(Some(_)) => {
                    counters.messages[kind].fetch_add(1, Ordering::Relaxed);
                }
                Ok(None) => {
                    counters.stream_errors.fetch_add(1, Ordering::Relaxed);
                    counters.error("a stream ended", &"the agent closed it");
                    return;
                }
                Err(status) => {
                    counters.stream_errors.fetch_add(1, Ordering::Relaxed);
                    counters.error("a stream failed", &status);
                    return;
                }
            }
        }
    })
}

async fn stream_connection(
    sandbox: &Sandbox,
    project: &str,
    counters: &Arc<Counters>,
) -> TestResult<StreamConnection> {
    let client = Client::connect(sandbox.target()).await?;
    let mut readers = Vec::new();
    for i in 0..STREAMS_PER_CONNECTION {
        readers.push(open_stream(&client, i % 3, project, counters).await?);
    }
    Ok(StreamConnection {
        _client: client,
        readers,
    })
}

/// One unary caller: GetInfo and Stat in turn until `stop`; the latency of
/// each call in microseconds.
async fn unary_caller(
    sandbox: Arc<Sandbox>,
    project: String,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let client = match Client::connect(sandbox.target()).await {
            Ok(client) => client,
            Err(err) => {
                counters.unary_errors.fetch_add(1, Ordering::Relaxed);
                counters.error("connecting", &err);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        counters.reconnects.fetch_add(1, Ordering::Relaxed);
        let (mut agent, mut files) = (client.agent(), client.files());
        for n in 0..CALLS_PER_CONNECTION {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let started = Instant::now();
            let result = if n % 2 == 0 {
                agent.get_info(pb::GetInfoRequest {}).await.map(drop)
            } else {
                files
                    .stat(pb::StatRequest {
                        project: project.clone(),
                        path: format!("file-{}.txt", n % 50),
                    })
                    .await
                    .map(drop)
            };
            match result {
                Ok(()) => {
                    latencies.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX))
                }
                Err(status) if status.code() == Code::ResourceExhausted => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(status) => {
                    counters.unary_errors.fetch_add(1, Ordering::Relaxed);
                    counters.error("a unary call", &status);
                }
            }
        }
    }
    latencies
}

/// Writes a file every 500 ms and flips a setting every 2 s.
async fn publisher(
    client: Client,
    project: String,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let written = client
            .files()
            .write_file(pb::WriteFileRequest {
                project: project.clone(),
                path: format!("published-{}.txt", n % 10),
                content: format!("write {n}\n").into_bytes(),
                ..Default::default()
            })
            .await;
        let changed = if n.is_multiple_of(4) {
            client
                .agent()
                .update_settings(pb::UpdateSettingsRequest {
                    changes: vec![pb::SettingChange {
                        key: "log.max_files".to_owned(),
                        value: if n.is_multiple_of(8) { "6" } else { "5" }.to_owned(),
                        reset: false,
                    }],
                })
                .await
                .map(drop)
        } else {
            Ok(())
        };
        for result in [written.map(drop), changed] {
            match result {
                Ok(()) => {
                    counters.published.fetch_add(1, Ordering::Relaxed);
                }
                Err(status) if status.code() == Code::ResourceExhausted => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                }
                Err(status) => {
                    counters.unary_errors.fetch_add(1, Ordering::Relaxed);
                    counters.error("a publisher call", &status);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[index.min(sorted.len() - 1)]) / 1000.0
}

pub async fn run(length: Duration, report: &mut Report) -> TestResult {
    let minutes = length.as_secs() / 60;
    let sandbox = Arc::new(Sandbox::new()?);
    sandbox.write_config("[system]\nalerts = false\n")?;
    let dir = sandbox.project_dir("load");
    std::fs::create_dir_all(&dir)?;
    for i in 0..50 {
        std::fs::write(dir.join(format!("file-{i}.txt")), format!("file {i}\n"))?;
    }
    let agent = sandbox.start_agent().await?;
    let pid = agent.pid();
    let setup = agent.client().await?;
    let project = open_project(&setup, &dir).await?;
    let clock = Instant::now();
    // Let the project's walk and the first writes settle before the
    // baseline.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let baseline = Sample::take(pid, clock);

    let name = format!(
        "1 000 streams on {STREAM_CONNECTIONS} connections + {UNARY_CALLERS} unary callers, {minutes} min, churned"
    );
    let expected = "every call answered or refused RESOURCE_EXHAUSTED (no other error, no stream lost); RSS growth ≤ 5 % from the first minute to the end; open fds back to the baseline once the clients leave";
    report.expect(&name, expected);

    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut connections = Vec::new();
    for _ in 0..STREAM_CONNECTIONS {
        connections.push(stream_connection(&sandbox, &project, &counters).await?);
    }
    let start = Sample::take(pid, clock);
    eprintln!(
        "[soak] 1 000 streams open; RSS {:.1} MB, {} fds",
        start.rss_mb, start.fds
    );
    let callers: Vec<JoinHandle<Vec<u32>>> = (0..UNARY_CALLERS)
        .map(|_| {
            tokio::spawn(unary_caller(
                sandbox.clone(),
                project.clone(),
                counters.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let publishing = tokio::spawn(publisher(
        Client::connect(sandbox.target()).await?,
        project.clone(),
        counters.clone(),
        stop.clone(),
    ));

    let mut samples = vec![start];
    let began = Instant::now();
    let mut next_churn = CHURN_EVERY;
    let mut next_sample = Duration::from_secs(60);
    let mut churned = 0usize;
    while began.elapsed() < length {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if began.elapsed() >= next_churn {
            next_churn += CHURN_EVERY;
            let slot = churned % STREAM_CONNECTIONS;
            churned += 1;
            // Close first: the new connection needs the places back.
            connections.remove(slot);
            connections.insert(
                slot,
                stream_connection(&sandbox, &project, &counters).await?,
            );
        }
        if began.elapsed() >= next_sample {
            next_sample += Duration::from_secs(60);
            let sample = Sample::take(pid, clock);
            eprintln!(
                "[soak] minute {}: RSS {:.1} MB, {} fds, {} calls refused so far",
                samples.len(),
                sample.rss_mb,
                sample.fds,
                counters.refused.load(Ordering::Relaxed)
            );
            samples.push(sample);
        }
    }
    let elapsed = began.elapsed();
    let end = Sample::take(pid, clock);
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for caller in callers {
        latencies.extend(caller.await?);
    }
    publishing.await?;
    drop(connections);
    // The clients have left: the agent must give back what they held.
    let left_at = Instant::now();
    let mut after = Sample::take(pid, clock);
    while after.fds > baseline.fds && left_at.elapsed() < PATIENCE {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = Sample::take(pid, clock);
    }
    // The agent gives freed memory back a minute after calls stop
    // (`agent/src/platform/memory.rs`): what it holds then is what an
    // agent left alone after a busy spell costs.
    tokio::time::sleep(SETTLE_AFTER_LOAD).await;
    let settled = Sample::take(pid, clock);
    latencies.sort_unstable();
    let calls = latencies.len();
    let throughput = calls as f64 / elapsed.as_secs_f64();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    let warm = if samples.len() > 2 {
        samples[1]
    } else {
        samples[0]
    };
    let middle = samples[samples.len() / 2];
    let growth = rss_growth_percent(&warm, &end);
    let messages: Vec<u64> = counters
        .messages
        .iter()
        .map(|m| m.load(Ordering::Relaxed))
        .collect();
    let stream_errors = counters.stream_errors.load(Ordering::Relaxed);
    let unary_errors = counters.unary_errors.load(Ordering::Relaxed);
    let refused = counters.refused.load(Ordering::Relaxed);
    let alive = omnipanel_tests::process_exists(pid);
    let first_error = counters
        .first_error
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    report.row(
        &name,
        expected,
        format!(
            "{calls} unary calls, {throughput:.0}/s, p50 {p50:.2} ms, p99 {p99:.2} ms; {} / {} / {} events / metrics / watch messages; {churned} stream connections and {} unary connections churned; {refused} refused, {unary_errors} unary errors, {stream_errors} streams lost; RSS {:.1} (start) → {:.1} (warm) → {:.1} (middle) → {:.1} MB (end), {growth:+.1} %; fds {} (baseline) → {} / {} / {} → {} after the clients left; RSS {:.1} MB (baseline {:.1}) {} s after they left",
            messages[0],
            messages[1],
            messages[2],
            counters.reconnects.load(Ordering::Relaxed),
            start.rss_mb,
            warm.rss_mb,
            middle.rss_mb,
            end.rss_mb,
            baseline.fds,
            start.fds,
            middle.fds,
            end.fds,
            after.fds,
            settled.rss_mb,
            baseline.rss_mb,
            SETTLE_AFTER_LOAD.as_secs(),
        ),
        alive
            && unary_errors == 0
            && stream_errors == 0
            && growth <= 5.0
            && after.fds <= baseline.fds
            && calls > 0
            && messages.iter().all(|m| *m > 0),
    );
    samples.push(end);
    report.samples(
        "load",
        json!({
            "baseline": baseline.to_json(),
            "samples": all_to_json(&samples),
            "after_clients_left": after.to_json(),
            "settled": settled.to_json(),
            "calls": calls,
            "calls_per_second": throughput,
            "p50_ms": p50,
            "p99_ms": p99,
            "messages": {"events": messages[0], "metrics": messages[1], "watch": messages[2]},
            "refused": refused,
            "first_error": first_error,
            "published": counters.published.load(Ordering::Relaxed),
        }),
    );
    drop(setup);
    Ok(())
}
