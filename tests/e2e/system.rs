//! System metrics and alerts end to end: snapshots with the GPU reported
//! absent, one shared sampler behind many streams (checked through the
//! readings' run numbers, not timing), each stream at its own rate, an
//! agent that reads nothing while nobody listens, thresholds that survive
//! a restart, bad thresholds refused by field, and an alert raised and
//! cleared on the bus, in history and on WatchAlerts.

use std::{collections::BTreeSet, time::Duration};

use omnipanel_client::{Client, EventSubscription, SubscriptionItem, proto::v1 as pb};
use omnipanel_proto::v1::system_service_client::SystemServiceClient;
use omnipanel_tests::{AgentProcess, PATIENCE, Sandbox, TestResult, free_port, stderr, stdout};
use pb::event::Payload;
use tonic::Code;

type System = SystemServiceClient<omnipanel_client::Authed>;

/// NVML pointed at a file that does not exist: the GPU is absent on any
/// machine, with or without an NVIDIA driver.
const NO_NVML: (&str, &str) = ("OMNIPANEL_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");

async fn start(sandbox: &Sandbox, config: &str) -> TestResult<(AgentProcess, Client)> {
    sandbox.write_config(config)?;
    let agent = AgentProcess::start(sandbox, &[NO_NVML]).await?;
    let client = agent.client().await?;
    Ok((agent, client))
}

async fn snapshot(system: &mut System) -> TestResult<pb::Snapshot> {
    Ok(system
        .get_snapshot(pb::GetSnapshotRequest {})
        .await?
        .into_inner()
        .snapshot
        .ok_or("no snapshot")?)
}

fn runs(snapshot: &pb::Snapshot) -> u64 {
    snapshot.sampler.map_or(0, |s| s.runs)
}

#[tokio::test]
async fn snapshot_describes_the_machine_and_marks_the_gpu_absent() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (agent, client) = start(&sandbox, "").await?;
    let snap = snapshot(&mut client.system()).await?;
    let cpu = snap.cpu.clone().ok_or("no cpu")?;
    assert!(cpu.logical_cores >= 1);
    assert_eq!(cpu.core_usage_percent.len(), cpu.logical_cores as usize);
    assert!((0.0..=100.0).contains(&cpu.usage_percent));
    let memory = snap.memory.ok_or("no memory")?;
    assert!(memory.total_bytes > 0 && memory.used_bytes <= memory.total_bytes);
    let own = snap.agent.clone().ok_or("no agent process")?;
    assert_eq!(own.pid, agent.pid());
    assert!(own.rss_bytes > 0);
    assert!(snap.ollama.is_none(), "no Ollama runs in the sandbox");
    let gpu = snap.gpu.clone().ok_or("no gpu section")?;
    assert_eq!(gpu.status, i32::from(pb::GpuStatus::Absent), "{gpu:?}");
    assert!(gpu.detail.contains("no NVIDIA"), "{}", gpu.detail);
    assert!(gpu.gpus.is_empty());

    let text = sandbox.cli(&["sys"])?;
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    assert!(text.contains("gpu      absent"), "{text}");
    assert!(
        text.contains(&format!("agent    pid {}", agent.pid())),
        "{text}"
    );
    let json = sandbox.cli(&["sys", "--json"])?;
    let value: serde_json::Value = serde_json::from_str(&stdout(&json))?;
    assert_eq!(value["snapshot"]["gpu"]["status"], "GPU_STATUS_ABSENT");
    let processes = sandbox.cli(&["sys", "ps", "--sort", "memory", "-n", "3", "--json"])?;
    let value: serde_json::Value = serde_json::from_str(&stdout(&processes))?;
    assert_eq!(value["processes"].as_array().map(Vec::len), Some(3));
    Ok(())
}

#[tokio::test]
async fn the_managed_ollama_server_process_is_reported() -> TestResult {
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    sandbox.configure_fake_ollama(port, "")?;
    let mut env = sandbox.fake_env();
    env.push((NO_NVML.0.to_owned(), NO_NVML.1.to_owned()));
    let agent = sandbox.start_agent_with(&env).await?;
    let client = agent.client().await?;
    let deadline = std::time::Instant::now() + PATIENCE;
    let pid = loop {
        let status = client
            .models()
            .get_server_status(pb::GetServerStatusRequest {})
            .await?
            .into_inner()
            .status
            .unwrap_or_default();
        if status.state == i32::from(pb::ServerState::Running) {
            break status.pid;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("the fake Ollama never ran: {status:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let snap = snapshot(&mut client.system()).await?;
    let ollama = snap.ollama.ok_or("the Ollama process is missing")?;
    assert_eq!(ollama.pid, pid);
    assert_eq!(ollama.name, "fake-ollama");
    assert!(ollama.process_count >= 1);
    assert!(ollama.rss_bytes > 0);
    Ok(())
}

#[tokio::test]
async fn an_idle_agent_with_alerts_off_reads_nothing() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (_agent, client) = start(&sandbox, "[system]\nalerts = false\n").await?;
    let mut system = client.system();
    let first = snapshot(&mut system).await?;
    let sampler = first.sampler.ok_or("no sampler stats")?;
    assert_eq!(sampler.interval_ms, 0, "{sampler:?}");
    assert!(!sampler.alerts_active);
    // Whatever time passes, nothing is read but what is asked for: the
    // next snapshot is exactly the next reading.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = snapshot(&mut system).await?;
    assert_eq!(runs(&second), runs(&first) + 1);

    // With alerts on (the default) the sampler runs at the alert interval.
    let sandbox = Sandbox::new()?;
    let (_agent, client) = start(&sandbox, "").await?;
    let stats = snapshot(&mut client.system())
        .await?
        .sampler
        .ok_or("no stats")?;
    assert!(stats.alerts_active);
    assert_eq!(stats.interval_ms, 5000);
    Ok(())
}

/// Read `count` snapshots from a stream, returning their run numbers.
async fn collect(
    mut stream: tonic::Streaming<pb::StreamMetricsResponse>,
    count: usize,
) -> TestResult<Vec<u64>> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await??
            .ok_or("the stream ended")?;
        seen.push(message.snapshot.as_ref().map_or(0, runs));
    }
    Ok(seen)
}

#[tokio::test]
async fn many_streams_share_one_sampler() -> TestResult {
    const STREAMS: usize = 20;
    const EACH: usize = 5;
    let sandbox = Sandbox::new()?;
    let (_agent, client) = start(&sandbox, "[system]\nalerts = false\n").await?;
    let mut readers = tokio::task::JoinSet::new();
    for _ in 0..STREAMS {
        let stream = client
            .system()
            .stream_metrics(pb::StreamMetricsRequest { interval_ms: 500 })
            .await?
            .into_inner();
        readers.spawn(collect(stream, EACH));
    }
    let mut distinct = BTreeSet::new();
    let mut received = 0;
    while let Some(result) = readers.join_next().await {
        let seen = result??;
        received += seen.len();
        distinct.extend(seen);
    }
    assert_eq!(received, STREAMS * EACH);
    // One sampler: the streams got the same readings. Twenty samplers
    // would have taken about a hundred distinct ones. A few extra allow
    // for streams that opened while a reading was being taken.
    assert!(
        distinct.len() <= EACH + 3,
        "{} distinct readings for {STREAMS} streams of {EACH}: {distinct:?}",
        distinct.len()
    );
    Ok(())
}

#[tokio::test]
async fn a_fast_and_a_slow_stream_each_get_their_own_rate() -> TestResult {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let sandbox = Sandbox::new()?;
    let (_agent, client) = start(&sandbox, "[system]\nalerts = false\n").await?;
    let mut slow = client
        .system()
        .stream_metrics(pb::StreamMetricsRequest { interval_ms: 1000 })
        .await?
        .into_inner();
    let mut fast = client
        .system()
        .stream_metrics(pb::StreamMetricsRequest { interval_ms: 250 })
        .await?
        .into_inner();
    let fast_count = Arc::new(AtomicUsize::new(0));
    let counter = fast_count.clone();
    let fast_reader = tokio::spawn(async move {
        while let Ok(Some(_)) = fast.message().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    // Count the fast stream's readings between the slow stream's first and
    // fifth: four slow intervals.
    collect_one(&mut slow).await?;
    let fast_at_start = fast_count.load(Ordering::SeqCst);
    let mut slow_runs = Vec::new();
    for _ in 0..4 {
        slow_runs.push(collect_one(&mut slow).await?);
    }
    let fast_between = fast_count.load(Ordering::SeqCst) - fast_at_start;
    fast_reader.abort();
    // About 16 are expected; a loaded machine delays both streams alike.
    assert!(
        fast_between >= 2 * slow_runs.len(),
        "the 250 ms stream got {fast_between} readings while the 1 s stream got {}",
        slow_runs.len()
    );
    // One sampler served both: the slow stream's readings skip the ones
    // only the fast stream needed.
    let span = slow_runs.last().copied().unwrap_or(0) - slow_runs.first().copied().unwrap_or(0);
    assert!(span >= 2 * 3, "run numbers {slow_runs:?}");
    Ok(())
}

async fn collect_one(stream: &mut tonic::Streaming<pb::StreamMetricsResponse>) -> TestResult<u64> {
    let message = tokio::time::timeout(PATIENCE, stream.message())
        .await??
        .ok_or("the stream ended")?;
    Ok(message.snapshot.as_ref().map_or(0, runs))
}

fn threshold(metric: &str, comparison: pb::Comparison, value: f64, hold_ms: i64) -> pb::Threshold {
    pb::Threshold {
        metric: metric.to_owned(),
        comparison: comparison.into(),
        value,
        hold_ms,
        clear_value: None,
    }
}

#[tokio::test]
async fn thresholds_persist_across_a_restart() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (mut agent, client) = start(&sandbox, "").await?;
    let before = client
        .system()
        .get_thresholds(pb::GetThresholdsRequest {})
        .await?
        .into_inner();
    assert!(before.defaults);
    assert_eq!(before.thresholds.len(), 4);
    assert!(
        before
            .metrics
            .iter()
            .any(|m| m.name == "disk.free_percent" && m.per_subject)
    );
    let output = sandbox.cli(&[
        "alerts",
        "thresholds",
        "set",
        "swap.used_percent",
        ">",
        "50%",
        "--for",
        "1m",
        "--clear-below",
        "40",
    ])?;
    assert!(output.status.success(), "{}", stderr(&output));
    let output = sandbox.cli(&["alerts", "thresholds", "rm", "cpu.usage_percent"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    drop(client);
    assert!(agent.stop().await?.success());

    let (_agent, client) = start(&sandbox, "").await?;
    let after = client
        .system()
        .get_thresholds(pb::GetThresholdsRequest {})
        .await?
        .into_inner();
    assert!(!after.defaults);
    let metrics: Vec<&str> = after.thresholds.iter().map(|t| t.metric.as_str()).collect();
    assert_eq!(
        metrics,
        [
            "memory.used_percent",
            "disk.free_percent",
            "gpu.vram_used_percent",
            "swap.used_percent"
        ]
    );
    let swap = after.thresholds.last().ok_or("no swap threshold")?;
    assert_eq!(swap.value, 50.0);
    assert_eq!(swap.hold_ms, 60_000);
    assert_eq!(swap.clear_value, Some(40.0));
    assert_eq!(swap.comparison, i32::from(pb::Comparison::Above));
    Ok(())
}

fn bad_field(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .and_then(|b| b.field_violations.first().map(|v| v.field.clone()))
}

#[tokio::test]
async fn bad_thresholds_are_refused_naming_the_field() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (_agent, client) = start(&sandbox, "").await?;
    let mut system = client.system();
    let cases = [
        (
            vec![
                threshold("memory.used_percent", pb::Comparison::Above, 90.0, 0),
                threshold("vram", pb::Comparison::Above, 90.0, 0),
            ],
            "thresholds[1].metric",
        ),
        (
            vec![threshold(
                "memory.used_percent",
                pb::Comparison::Above,
                f64::NAN,
                0,
            )],
            "thresholds[0].value",
        ),
        (
            vec![threshold(
                "memory.used_percent",
                pb::Comparison::Above,
                90.0,
                -1000,
            )],
            "thresholds[0].hold_ms",
        ),
        (
            vec![threshold(
                "memory.used_percent",
                pb::Comparison::Unspecified,
                90.0,
                0,
            )],
            "thresholds[0].comparison",
        ),
    ];
    for (thresholds, field) in cases {
        let err = system
            .set_thresholds(pb::SetThresholdsRequest {
                thresholds,
                ..Default::default()
            })
            .await
            .err()
            .ok_or("bad input was accepted")?;
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(bad_field(&err).as_deref(), Some(field), "{err:?}");
    }
    // Nothing changed.
    let current = system
        .get_thresholds(pb::GetThresholdsRequest {})
        .await?
        .into_inner();
    assert!(current.defaults);
    // A stale version is refused too.
    let err = system
        .set_thresholds(pb::SetThresholdsRequest {
            thresholds: Vec::new(),
            reset_to_defaults: false,
            expected_version: current.version + 7,
        })
        .await
        .err()
        .ok_or("a stale version was accepted")?;
    assert_eq!(err.code(), Code::Aborted);
    let output = sandbox.cli(&["alerts", "thresholds", "set", "nope", "above", "1"])?;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("unknown metric"),
        "{}",
        stderr(&output)
    );
    Ok(())
}

/// The next WatchAlerts item about memory, bounded by PATIENCE. Alerts on
/// other metrics are skipped: the built-in thresholds are active until the
/// test replaces them, and this machine's disks are none of its business.
async fn next_alert(
    stream: &mut tonic::Streaming<pb::WatchAlertsResponse>,
) -> TestResult<pb::WatchAlertsResponse> {
    loop {
        let item = tokio::time::timeout(PATIENCE, stream.message())
            .await??
            .ok_or("the alert stream ended")?;
        if item.alert.as_ref().is_some_and(|a| a.metric == MEMORY) {
            return Ok(item);
        }
    }
}

const MEMORY: &str = "memory.used_percent";

#[tokio::test]
async fn an_alert_is_raised_and_cleared_end_to_end() -> TestResult {
    let sandbox = Sandbox::new()?;
    // A quick alert interval keeps the test short; the threshold change
    // itself also triggers a reading.
    let (_agent, client) = start(&sandbox, "[system]\nalert_interval = \"250ms\"\n").await?;
    let mut system = client.system();
    let mut events = EventSubscription::new(sandbox.target(), vec!["alerts".into()], Some(0));
    let mut watch = system
        .watch_alerts(pb::WatchAlertsRequest {})
        .await?
        .into_inner();

    // Memory in use is always above 0 % and never above 100 %, however
    // loaded the machine is.
    system
        .set_thresholds(pb::SetThresholdsRequest {
            thresholds: vec![threshold(MEMORY, pb::Comparison::Above, 0.0, 0)],
            ..Default::default()
        })
        .await?;
    let raised = next_alert(&mut watch).await?;
    assert_eq!(raised.change, i32::from(pb::AlertChange::Raised));
    let alert = raised.alert.ok_or("no alert")?;
    assert_eq!(alert.metric, "memory.used_percent");
    assert_eq!(alert.state, i32::from(pb::AlertState::Active));
    assert!(alert.value > 0.0);
    assert!(
        alert.message.contains("memory.used_percent is"),
        "{}",
        alert.message
    );
    let active = system
        .list_alerts(pb::ListAlertsRequest {
            active_only: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    assert!(active.alerts.iter().any(|a| a.id == alert.id));

    // A second watcher starts with the active alert.
    let mut late = system
        .watch_alerts(pb::WatchAlertsRequest {})
        .await?
        .into_inner();
    let first = next_alert(&mut late).await?;
    assert_eq!(first.change, i32::from(pb::AlertChange::Active));
    assert_eq!(first.alert.map(|a| a.id), Some(alert.id));

    // Raising the limit to 100 % with a clear value of 100 % clears it.
    let mut limit = threshold(MEMORY, pb::Comparison::Above, 100.0, 0);
    limit.clear_value = Some(100.0);
    system
        .set_thresholds(pb::SetThresholdsRequest {
            thresholds: vec![limit],
            ..Default::default()
        })
        .await?;
    let cleared = next_alert(&mut watch).await?;
    assert_eq!(cleared.change, i32::from(pb::AlertChange::Cleared));
    let cleared = cleared.alert.ok_or("no alert")?;
    assert_eq!(cleared.id, alert.id);
    assert_eq!(cleared.clear_reason, "back to normal");
    assert!(cleared.cleared_unix_ms >= alert.raised_unix_ms);

    let history = system
        .list_alerts(pb::ListAlertsRequest::default())
        .await?
        .into_inner();
    let memory: Vec<&pb::Alert> = history
        .alerts
        .iter()
        .filter(|a| a.metric == MEMORY)
        .collect();
    assert_eq!(memory.len(), 1);
    assert_eq!(memory[0].state, i32::from(pb::AlertState::Cleared));

    // The bus carried the same story.
    let mut kinds = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while kinds.len() < 4 {
            if let SubscriptionItem::Event(event) = events.next().await? {
                let about_memory =
                    |alert: &Option<pb::Alert>| alert.as_ref().is_some_and(|a| a.metric == MEMORY);
                match event.payload {
                    Some(Payload::ThresholdsChanged(_)) => kinds.push("thresholds"),
                    Some(Payload::AlertRaised(e)) if about_memory(&e.alert) => kinds.push("raised"),
                    Some(Payload::AlertCleared(e)) if about_memory(&e.alert) => {
                        kinds.push("cleared");
                    }
                    _ => {}
                }
            }
        }
        Ok::<_, omnipanel_client::ClientError>(())
    })
    .await??;
    assert_eq!(kinds, ["thresholds", "raised", "thresholds", "cleared"]);

    let output = sandbox.cli(&["alerts", "ls"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("back to normal"),
        "{}",
        stdout(&output)
    );
    Ok(())
}
