//! Ollama supervision and model management end to end, against the
//! `fake-ollama` test double run as a real process: managed and adopted
//! servers, crash and hang recovery, a port held by something else, shared
//! and cancellable pulls that outlive their client, Ollama's own error
//! messages, chat and generate streams, fit checks, providers; an adopted
//! server that goes away, and one slower to start than the start-up
//! timeout.

use std::time::Duration;

use omnipanel_client::{Client, EventSubscription, SubscriptionItem, proto::v1 as pb};
use omnipanel_proto::v1::model_service_client::ModelServiceClient;
use omnipanel_tests::{
    AgentProcess, FakeOllama, PATIENCE, Sandbox, TestResult, eventually, fake_stats, free_port,
    process_exists,
};
use pb::event::Payload;
use tonic::Code;

type Models = ModelServiceClient<omnipanel_client::Authed>;

fn models(client: &Client) -> Models {
    ModelServiceClient::with_interceptor(client.channel(), client.interceptor())
}

pub(crate) struct Setup {
    pub(crate) sandbox: Sandbox,
    pub(crate) agent: AgentProcess,
    pub(crate) client: Client,
    pub(crate) port: u16,
}

/// An agent supervising the fake Ollama, with `switches` in its
/// environment (inherited by the fake) and `extra` config lines.
pub(crate) async fn setup(switches: &[(&str, &str)], extra: &str) -> TestResult<Setup> {
    let sandbox = Sandbox::new()?;
    let (agent, port) = sandbox
        .start_agent_with_fake_ollama(switches, extra)
        .await?;
    let client = agent.client().await?;
    Ok(Setup {
        sandbox,
        agent,
        client,
        port,
    })
}

async fn status(client: &Client) -> TestResult<pb::ServerStatus> {
    Ok(models(client)
        .get_server_status(pb::GetServerStatusRequest {})
        .await?
        .into_inner()
        .status
        .ok_or("no status")?)
}

/// Poll the server status until `check` holds.
pub(crate) async fn wait_status(
    client: &Client,
    what: &str,
    check: impl Fn(&pb::ServerStatus) -> bool,
) -> TestResult<pb::ServerStatus> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let current = status(client).await?;
        if check(&current) {
            return Ok(current);
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}; last status {current:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn is(state: pb::ServerState) -> impl Fn(&pb::ServerStatus) -> bool {
    move |s| s.state == i32::from(state)
}

/// Every Ollama state change published so far and from now on, in order,
/// until `stop` says enough.
async fn state_changes(
    sandbox: &Sandbox,
    stop: impl Fn(&[pb::OllamaStateChanged]) -> bool,
) -> TestResult<Vec<pb::OllamaStateChanged>> {
    let mut subscription = EventSubscription::new(sandbox.target(), vec!["ollama".into()], Some(0));
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while !stop(&seen) {
            if let SubscriptionItem::Event(event) = subscription.next().await?
                && let Some(Payload::OllamaStateChanged(change)) = event.payload
            {
                seen.push(change);
            }
        }
        Ok::<_, omnipanel_client::ClientError>(())
    })
    .await
    .map_err(|_| format!("timed out; state changes so far: {seen:?}"))??;
    Ok(seen)
}

fn state_of(change: &pb::OllamaStateChanged) -> i32 {
    change.status.as_ref().map_or(0, |s| s.state)
}

fn reason_of(change: &pb::OllamaStateChanged) -> &str {
    change.status.as_ref().map_or("", |s| s.reason.as_str())
}

/// Pull `model` to the end and return the final progress.
pub(crate) async fn pull_to_end(client: &Client, model: &str) -> TestResult<pb::PullProgress> {
    let mut stream = models(client)
        .pull_model(pb::PullModelRequest {
            model: model.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut last = None;
    while let Some(message) = tokio::time::timeout(PATIENCE, stream.message()).await?? {
        last = message.progress;
    }
    last.ok_or_else(|| "no progress".into())
}

#[tokio::test]
async fn managed_server_starts_with_the_agent_and_stops_with_it() -> TestResult {
    let mut setup = setup(&[], "").await?;
    let running = wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    assert_eq!(running.version, "0.0.0-fake");
    assert!(running.pid > 0);
    assert_eq!(running.address, format!("127.0.0.1:{}", setup.port));
    // Its output goes to the "ollama" log.
    let mut tail = setup
        .client
        .agent()
        .tail_logs(pb::TailLogsRequest {
            source: "ollama".into(),
            lines: 50,
            follow: false,
        })
        .await?
        .into_inner();
    let mut text = String::new();
    while let Some(batch) = tail.message().await? {
        text.push_str(&batch.lines.join("\n"));
    }
    assert!(text.contains("Listening on"), "{text}");
    // Start is idempotent.
    let again = models(&setup.client)
        .start_server(pb::StartServerRequest {})
        .await?
        .into_inner()
        .status
        .ok_or("no status")?;
    assert_eq!(again.pid, running.pid);
    // The agent's shutdown stops the server it started.
    assert!(setup.agent.stop().await?.success());
    eventually("the managed server to exit", || {
        !process_exists(running.pid)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn stop_start_and_restart_on_request() -> TestResult {
    let setup = setup(&[], "").await?;
    let first = wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut api = models(&setup.client);
    let stopped = api
        .stop_server(pb::StopServerRequest {})
        .await?
        .into_inner()
        .status
        .ok_or("no status")?;
    assert_eq!(stopped.state, i32::from(pb::ServerState::Stopped));
    eventually("the server to exit", || !process_exists(first.pid)).await?;
    // Requests for models now say the server is down, and how to start it.
    let err = api
        .list_models(pb::ListModelsRequest::default())
        .await
        .err()
        .ok_or("listed models")?;
    assert_eq!(err.code(), Code::Unavailable);
    assert!(
        err.message().contains("omnipanel ollama start"),
        "{}",
        err.message()
    );
    let started = api
        .start_server(pb::StartServerRequest {})
        .await?
        .into_inner()
        .status
        .ok_or("no status")?;
    assert_eq!(started.state, i32::from(pb::ServerState::Running));
    let restarted = api
        .restart_server(pb::RestartServerRequest {})
        .await?
        .into_inner()
        .status
        .ok_or("no status")?;
    assert_eq!(restarted.state, i32::from(pb::ServerState::Running));
    assert_ne!(restarted.pid, started.pid);
    // A restart by request is not counted as a crash.
    assert_eq!(restarted.restart_count, 0);
    Ok(())
}

/// Everything the "ollama" log source holds.
async fn ollama_log(client: &Client) -> TestResult<String> {
    let mut tail = client
        .agent()
        .tail_logs(pb::TailLogsRequest {
            source: "ollama".into(),
            lines: 1000,
            follow: false,
        })
        .await?
        .into_inner();
    let mut text = String::new();
    while let Some(batch) = tail.message().await? {
        text.push_str(&batch.lines.join("\n"));
        text.push('\n');
    }
    Ok(text)
}

#[tokio::test]
async fn stop_kills_a_server_that_ignores_sigterm_after_the_grace_period() -> TestResult {
    let setup = setup(
        &[("FAKE_OLLAMA_IGNORE_SIGTERM", "1")],
        "stop_timeout = \"1s\"\n",
    )
    .await?;
    let running = wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let stopped = models(&setup.client)
        .stop_server(pb::StopServerRequest {})
        .await?
        .into_inner()
        .status
        .ok_or("no status")?;
    assert_eq!(
        stopped.state,
        i32::from(pb::ServerState::Stopped),
        "{stopped:?}"
    );
    assert!(
        stopped.reason.contains("did not stop within 1s of SIGTERM")
            && stopped.reason.contains("killed"),
        "{stopped:?}"
    );
    eventually("the server to be gone", || !process_exists(running.pid)).await?;
    // It was asked politely first.
    let log = ollama_log(&setup.client).await?;
    assert!(log.contains("received terminated, ignoring it"), "{log}");
    Ok(())
}

#[tokio::test]
async fn a_started_server_keeps_its_models_in_the_configured_folder() -> TestResult {
    // A models folder that already holds a model, named only in the
    // config: the agent's own OLLAMA_MODELS points elsewhere (the harness
    // sets it), so the server lists the model only if the agent passes the
    // setting on.
    let folder = tempfile::tempdir()?;
    let models_dir = folder.path().join("models");
    std::fs::create_dir_all(&models_dir)?;
    std::fs::write(
        models_dir.join("fake-ollama-state.json"),
        serde_json::json!({
            "models": {
                "registry.ollama.ai/library/test-small:latest": {
                    "name": "test-small:latest",
                    "modified_at_ns": 1_700_000_000_000_000_000_u64
                }
            }
        })
        .to_string(),
    )?;
    let setup = setup(
        &[],
        &format!("models_dir = {:?}\n", models_dir.display().to_string()),
    )
    .await?;
    assert_ne!(setup.sandbox.ollama_models(), models_dir);
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let listed = models(&setup.client)
        .list_models(pb::ListModelsRequest::default())
        .await?
        .into_inner();
    let names: Vec<&str> = listed.models.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["test-small:latest"]);
    let log = ollama_log(&setup.client).await?;
    assert!(
        log.contains(&format!("OLLAMA_MODELS={}", models_dir.display())),
        "{log}"
    );
    Ok(())
}

#[tokio::test]
async fn an_external_server_is_adopted_and_left_running() -> TestResult {
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    let mut external = FakeOllama::start("serve", port, &sandbox.ollama_models(), &[]).await?;
    sandbox.configure_fake_ollama(port, "")?;
    let mut agent = sandbox.start_agent_with(&sandbox.fake_env()).await?;
    let client = agent.client().await?;
    let adopted = wait_status(&client, "EXTERNAL", is(pb::ServerState::External)).await?;
    assert_eq!(adopted.pid, 0, "an adopted server has no pid of ours");
    let err = models(&client)
        .stop_server(pb::StopServerRequest {})
        .await
        .err()
        .ok_or("stopped an external server")?;
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("outside OmniPanel"),
        "{}",
        err.message()
    );
    // Models work through it.
    let pulled = pull_to_end(&client, "test-small").await?;
    assert_eq!(pulled.state, i32::from(pb::PullState::Succeeded));
    assert!(agent.stop().await?.success());
    assert!(
        external.is_running(),
        "the agent must not stop an external server"
    );
    assert_eq!(omnipanel_tests::http_get(port, "/api/version")?.0, 200);
    Ok(())
}

/// An adopted server is not the agent's to restart; when it goes away
/// the agent says so, and with autostart off it does not start one of its
/// own in its place.
#[tokio::test]
async fn an_external_server_that_goes_away_is_noticed_and_not_replaced() -> TestResult {
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    let external = FakeOllama::start("serve", port, &sandbox.ollama_models(), &[]).await?;
    sandbox.configure_fake_ollama(port, "autostart = false")?;
    let agent = sandbox.start_agent_with(&sandbox.fake_env()).await?;
    let client = agent.client().await?;
    wait_status(&client, "EXTERNAL", is(pb::ServerState::External)).await?;
    let err = models(&client)
        .restart_server(pb::RestartServerRequest {})
        .await
        .err()
        .ok_or("restarted an external server")?;
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("outside OmniPanel"),
        "{}",
        err.message()
    );

    drop(external);
    events_saying(
        &sandbox,
        &[
            &format!("the external server at 127.0.0.1:{port} stopped answering"),
            "autostart is off",
        ],
    )
    .await?;
    let stopped = wait_status(&client, "STOPPED", is(pb::ServerState::Stopped)).await?;
    assert_eq!(stopped.pid, 0, "the agent started no server of its own");
    Ok(())
}

/// Wait (bounded) until `omnipanel events` has said each of `texts`.
async fn events_saying(sandbox: &Sandbox, texts: &[&str]) -> TestResult {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let events = omnipanel_tests::stdout(&sandbox.cli(&["events"])?);
        if texts.iter().all(|text| events.contains(text)) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("the events never said {texts:?}:\n{events}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A started server that does not answer within `startup_timeout` is
/// killed and counted as a crash, with the timeout in the reason.
#[tokio::test]
async fn a_server_slower_than_the_startup_timeout_is_given_up() -> TestResult {
    let setup = setup(
        &[("FAKE_OLLAMA_START_DELAY_MS", "60000")],
        "startup_timeout = \"1s\"",
    )
    .await?;
    events_saying(
        &setup.sandbox,
        &["ollama did not answer within 1 s of starting"],
    )
    .await
}

#[tokio::test]
async fn a_crashing_server_is_restarted_with_growing_backoff() -> TestResult {
    let setup = setup(&[("FAKE_OLLAMA_CRASH_AFTER_SECS", "0.5")], "").await?;
    let changes = state_changes(&setup.sandbox, |seen| {
        seen.iter()
            .filter(|c| state_of(c) == i32::from(pb::ServerState::Crashed))
            .count()
            >= 2
            && seen
                .last()
                .is_some_and(|c| state_of(c) == i32::from(pb::ServerState::Backoff))
    })
    .await?;
    let backoffs: Vec<&str> = changes
        .iter()
        .filter(|c| state_of(c) == i32::from(pb::ServerState::Backoff))
        .map(reason_of)
        .collect();
    assert!(backoffs[0].contains("next attempt in 1s"), "{backoffs:?}");
    assert!(backoffs[1].contains("next attempt in 2s"), "{backoffs:?}");
    let crashed: Vec<&str> = changes
        .iter()
        .filter(|c| state_of(c) == i32::from(pb::ServerState::Crashed))
        .map(reason_of)
        .collect();
    assert!(crashed[0].contains("exited with status 1"), "{crashed:?}");
    // It came back in between.
    let running = changes
        .iter()
        .filter(|c| state_of(c) == i32::from(pb::ServerState::Running))
        .count();
    assert!(running >= 2, "{changes:?}");
    let current = status(&setup.client).await?;
    assert!(current.restart_count >= 2, "{current:?}");
    Ok(())
}

#[tokio::test]
async fn a_hung_server_is_detected_killed_and_restarted() -> TestResult {
    let setup = setup(
        &[("FAKE_OLLAMA_HANG_AFTER_SECS", "0.5")],
        "health_failures = 3\n",
    )
    .await?;
    let first = wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let changes = state_changes(&setup.sandbox, |seen| {
        seen.iter()
            .any(|c| state_of(c) == i32::from(pb::ServerState::Crashed))
    })
    .await?;
    let crash = changes.last().ok_or("no crash")?;
    assert!(reason_of(crash).contains("hung"), "{crash:?}");
    assert!(reason_of(crash).contains("3 health checks"), "{crash:?}");
    eventually("the hung server to be killed", || {
        !process_exists(first.pid)
    })
    .await?;
    let again = wait_status(&setup.client, "a new server", |s| {
        s.state == i32::from(pb::ServerState::Running) && s.pid != first.pid
    })
    .await?;
    assert!(again.restart_count >= 1);
    Ok(())
}

#[tokio::test]
async fn a_port_taken_by_something_else_is_named() -> TestResult {
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    let _squatter = FakeOllama::start("squat", port, &sandbox.ollama_models(), &[]).await?;
    sandbox.configure_fake_ollama(port, "")?;
    let agent = sandbox.start_agent_with(&sandbox.fake_env()).await?;
    let client = agent.client().await?;
    let backoff = wait_status(&client, "BACKOFF", is(pb::ServerState::Backoff)).await?;
    assert!(
        backoff.last_error.contains(&format!("port {port}"))
            && backoff.last_error.contains("not Ollama"),
        "{backoff:?}"
    );
    Ok(())
}

#[tokio::test]
async fn without_ollama_start_says_how_to_install_and_the_rest_works() -> TestResult {
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    sandbox.write_config(&format!(
        "[ollama]\nbinary = \"/nonexistent/ollama\"\nhost = \"127.0.0.1:{port}\"\n"
    ))?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let current = wait_status(&client, "NOT_INSTALLED", is(pb::ServerState::NotInstalled)).await?;
    assert!(current.last_error.contains("does not exist"), "{current:?}");
    let err = models(&client)
        .start_server(pb::StartServerRequest {})
        .await
        .err()
        .ok_or("started without ollama")?;
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message().contains("/nonexistent/ollama"),
        "{}",
        err.message()
    );
    // A wrong path is not the whole story: the user may simply not have
    // Ollama yet, so the answer says how to install it.
    assert!(err.message().contains("ollama.com"), "{}", err.message());
    // Everything else keeps working.
    client.agent().get_info(pb::GetInfoRequest {}).await?;
    Ok(())
}

#[tokio::test]
async fn stop_without_ollama_keeps_not_installed() -> TestResult {
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    sandbox.write_config(&format!(
        "[ollama]\nbinary = \"/nonexistent/ollama\"\nhost = \"127.0.0.1:{port}\"\n"
    ))?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let before = wait_status(&client, "NOT_INSTALLED", is(pb::ServerState::NotInstalled)).await?;
    // Stopping nothing is fine, but it must not pretend an installed,
    // stopped server: the answer and the status stay NOT_INSTALLED.
    let answered = models(&client)
        .stop_server(pb::StopServerRequest {})
        .await?
        .into_inner()
        .status
        .ok_or("no status")?;
    assert_eq!(
        answered.state,
        i32::from(pb::ServerState::NotInstalled),
        "{answered:?}"
    );
    assert_eq!(answered.last_error, before.last_error);
    let after = status(&client).await?;
    assert_eq!(
        after.state,
        i32::from(pb::ServerState::NotInstalled),
        "{after:?}"
    );
    // Requests still say how to install it, not how to start it.
    let err = models(&client)
        .list_models(pb::ListModelsRequest::default())
        .await
        .err()
        .ok_or("listed models without ollama")?;
    assert_eq!(err.code(), Code::Unavailable);
    assert!(err.message().contains("ollama.com"), "{}", err.message());
    Ok(())
}

#[tokio::test]
async fn two_clients_share_one_pull_that_survives_its_starter() -> TestResult {
    // ~640 MB at 400 MB/s: long enough to attach, short enough for a test.
    let setup = setup(&[("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "400000000")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let request = pb::PullModelRequest {
        model: "tinyllama".into(),
        ..Default::default()
    };
    let mut starter = models(&setup.client)
        .pull_model(request.clone())
        .await?
        .into_inner();
    let first = starter.message().await?.ok_or("no first message")?;
    let fit = first.fit.ok_or("the first message carries the fit check")?;
    assert!(fit.model_bytes > 600_000_000, "{fit:?}");
    // A second client attaches to the same pull.
    let second_client = setup.agent.client().await?;
    let mut attached = models(&second_client)
        .pull_model(request)
        .await?
        .into_inner();
    let seen = attached
        .message()
        .await?
        .ok_or("nothing for the second client")?;
    assert_eq!(
        seen.progress.map(|p| p.model),
        Some("tinyllama:latest".to_owned())
    );
    // The starter goes away; the pull goes on.
    drop(starter);
    drop(setup.client.clone());
    let mut last = None;
    while let Some(message) = tokio::time::timeout(PATIENCE, attached.message()).await?? {
        let progress = message.progress.ok_or("no progress")?;
        if let Some(previous) = &last {
            let previous: &pb::PullProgress = previous;
            assert!(
                progress.completed_bytes >= previous.completed_bytes,
                "progress went backwards"
            );
        }
        last = Some(progress);
    }
    let last = last.ok_or("no progress")?;
    assert_eq!(last.state, i32::from(pb::PullState::Succeeded), "{last:?}");
    assert_eq!(last.completed_bytes, last.total_bytes);
    let stats = fake_stats(setup.port)?;
    assert_eq!(
        stats["pulls_started"], 1,
        "one pull for two clients: {stats}"
    );
    let listed = models(&setup.client)
        .list_models(pb::ListModelsRequest::default())
        .await?
        .into_inner();
    assert!(
        listed.models.iter().any(|m| m.name == "tinyllama:latest"),
        "{listed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_pull_continues_when_its_only_client_disconnects() -> TestResult {
    let setup = setup(&[("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "400000000")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    {
        let mut stream = models(&setup.client)
            .pull_model(pb::PullModelRequest {
                model: "qwen2.5:0.5b".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        stream.message().await?;
    }
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let pulls = models(&setup.client)
            .list_pulls(pb::ListPullsRequest {})
            .await?
            .into_inner()
            .pulls;
        let pull = pulls
            .iter()
            .find(|p| p.model == "qwen2.5:0.5b")
            .ok_or("pull not listed")?;
        if pull.state == i32::from(pb::PullState::Succeeded) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pull never finished: {pull:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

#[tokio::test]
async fn cancel_pull_stops_the_download() -> TestResult {
    let setup = setup(&[("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "20000000")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut stream = models(&setup.client)
        .pull_model(pb::PullModelRequest {
            model: "llama3.2:1b".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    // Cancel once Ollama is really downloading.
    loop {
        let message = stream.message().await?.ok_or("stream ended early")?;
        if message.progress.is_some_and(|p| p.completed_bytes > 0) {
            break;
        }
    }
    let cancelled = models(&setup.client)
        .cancel_pull(pb::CancelPullRequest {
            model: "llama3.2:1b".into(),
            provider: String::new(),
        })
        .await?
        .into_inner()
        .progress
        .ok_or("no progress")?;
    assert_eq!(cancelled.state, i32::from(pb::PullState::Cancelled));
    // The stream ends with the cancellation.
    let mut last = None;
    while let Some(message) = tokio::time::timeout(PATIENCE, stream.message()).await?? {
        last = message.progress;
    }
    assert_eq!(
        last.map(|p| p.state),
        Some(i32::from(pb::PullState::Cancelled))
    );
    let seen = eventually("Ollama to see the pull cancelled", || {
        fake_stats(setup.port).is_ok_and(|s| s["pulls_cancelled"] == 1 && s["pulls_active"] == 0)
    })
    .await;
    assert!(seen.is_ok(), "{:?}", fake_stats(setup.port));
    // Nothing to cancel any more.
    let err = models(&setup.client)
        .cancel_pull(pb::CancelPullRequest {
            model: "llama3.2:1b".into(),
            provider: String::new(),
        })
        .await
        .err()
        .ok_or("cancelled twice")?;
    assert_eq!(err.code(), Code::NotFound);
    Ok(())
}

#[tokio::test]
async fn pull_failures_carry_ollamas_own_message() -> TestResult {
    let setup = setup(&[("FAKE_OLLAMA_PULL_FAIL_AT_PERCENT", "50")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let failed = pull_to_end(&setup.client, "qwen2.5:0.5b").await?;
    assert_eq!(failed.state, i32::from(pb::PullState::Failed));
    assert_eq!(failed.error, "max retries exceeded: EOF");
    let unknown = pull_to_end(&setup.client, "no-such-model").await?;
    assert_eq!(unknown.state, i32::from(pb::PullState::Failed));
    assert!(unknown.error.contains("file does not exist"), "{unknown:?}");
    Ok(())
}

#[tokio::test]
async fn a_pull_resumes_after_the_server_restarts() -> TestResult {
    let setup = setup(&[("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "150000000")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut stream = models(&setup.client)
        .pull_model(pb::PullModelRequest {
            model: "tinyllama".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    // Wait for real progress, then restart Ollama under the pull.
    loop {
        let message = stream.message().await?.ok_or("stream ended early")?;
        if message
            .progress
            .is_some_and(|p| p.completed_bytes > 50_000_000)
        {
            break;
        }
    }
    models(&setup.client)
        .restart_server(pb::RestartServerRequest {})
        .await?;
    let mut states = Vec::new();
    let mut last = None;
    while let Some(message) = tokio::time::timeout(PATIENCE, stream.message()).await?? {
        let progress = message.progress.ok_or("no progress")?;
        states.push(progress.state);
        last = Some(progress);
    }
    let last = last.ok_or("no progress")?;
    assert!(
        states.contains(&i32::from(pb::PullState::Retrying)),
        "{states:?}"
    );
    assert_eq!(last.state, i32::from(pb::PullState::Succeeded), "{last:?}");
    assert!(last.attempt >= 2);
    Ok(())
}

#[tokio::test]
async fn chat_and_generate_stream_through_the_agent() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut api = models(&setup.client);
    // No default model yet: a clear error.
    let err = api
        .chat(pb::ChatRequest {
            messages: vec![pb::ChatMessage {
                role: "user".into(),
                content: "hi".into(),
                images: vec![],
            }],
            ..Default::default()
        })
        .await
        .err()
        .ok_or("chatted without a model")?;
    assert_eq!(err.code(), Code::InvalidArgument);
    // A model that is not installed: NOT_FOUND with Ollama's message.
    let err = api
        .chat(pb::ChatRequest {
            model: "tinyllama".into(),
            messages: vec![pb::ChatMessage {
                role: "user".into(),
                content: "hi".into(),
                images: vec![],
            }],
            ..Default::default()
        })
        .await
        .err()
        .ok_or("chatted with a missing model")?;
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    pull_to_end(&setup.client, "test-small").await?;
    api.set_default_model(pb::SetDefaultModelRequest {
        model: "test-small".into(),
    })
    .await?;
    let mut stream = api
        .chat(pb::ChatRequest {
            messages: vec![pb::ChatMessage {
                role: "user".into(),
                content: "hello   there".into(),
                images: vec![],
            }],
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut text = String::new();
    let mut pieces = 0;
    let mut last = None;
    while let Some(piece) = stream.message().await? {
        text.push_str(&piece.content);
        pieces += 1;
        last = Some(piece);
    }
    let last = last.ok_or("no reply")?;
    assert_eq!(
        text,
        "You said: hello there\nThis reply comes from fake-ollama."
    );
    assert!(pieces > 3, "the reply is streamed in pieces");
    assert!(last.done && last.done_reason == "stop");
    assert!(last.stats.is_some_and(|s| s.eval_count > 0));

    let mut stream = api
        .generate(pb::GenerateRequest {
            prompt: "why is the sky blue".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut text = String::new();
    let mut context = Vec::new();
    while let Some(piece) = stream.message().await? {
        text.push_str(&piece.response);
        context = piece.context;
    }
    assert!(text.starts_with("You said: why is the sky blue"), "{text}");
    assert!(!context.is_empty());
    Ok(())
}

/// The ErrorInfo an agent error carries: (domain, reason).
fn error_info(status: &tonic::Status) -> Option<(String, String)> {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| (info.domain, info.reason))
}

/// Read a reply stream to its end; the text and the error that ended it.
async fn reply_error<T>(
    mut stream: tonic::Streaming<T>,
    text_of: impl Fn(&T) -> &str,
) -> TestResult<(String, tonic::Status)> {
    let mut text = String::new();
    loop {
        match tokio::time::timeout(PATIENCE, stream.message()).await? {
            Ok(Some(piece)) => text.push_str(text_of(&piece)),
            Ok(None) => return Err(format!("the reply ended without an error: {text:?}").into()),
            Err(status) => return Ok((text, status)),
        }
    }
}

#[tokio::test]
async fn an_error_line_mid_reply_reaches_the_client_with_ollamas_message_and_code() -> TestResult {
    let setup = setup(&[("FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS", "2")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    pull_to_end(&setup.client, "test-small").await?;
    let mut api = models(&setup.client);
    // Ollama's model runner dies after two tokens: the client gets what
    // was streamed, then Ollama's own words with the code the agent uses
    // for Ollama's errors elsewhere, and the agent's ErrorInfo.
    let stream = api
        .chat(pb::ChatRequest {
            model: "test-small".into(),
            messages: vec![pb::ChatMessage {
                role: "user".into(),
                content: "hello there".into(),
                images: vec![],
            }],
            ..Default::default()
        })
        .await?
        .into_inner();
    let (text, err) = reply_error(stream, |piece: &pb::ChatResponse| &piece.content).await?;
    assert_eq!(text, "You said:");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        err.message(),
        "model runner has unexpectedly stopped, this may be due to resource limitations or an internal error"
    );
    assert_eq!(
        error_info(&err),
        Some(("omnipanel.v1".to_owned(), "OLLAMA_ERROR".to_owned()))
    );

    // A remote provider whose reply ends saying the model is gone: that is
    // NOT_FOUND, whether Ollama says it before or during the reply.
    let remote_port = free_port()?;
    let _remote = FakeOllama::start(
        "serve",
        remote_port,
        &setup.sandbox.root().join("remote-models"),
        &[
            ("FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS", "1"),
            ("FAKE_OLLAMA_REPLY_ERROR", "model 'test-small' not found"),
        ],
    )
    .await?;
    api.add_provider(pb::AddProviderRequest {
        name: "gpu-box".into(),
        url: format!("http://127.0.0.1:{remote_port}"),
        token: String::new(),
        ..Default::default()
    })
    .await?;
    let mut pull = api
        .pull_model(pb::PullModelRequest {
            model: "test-small".into(),
            provider: "gpu-box".into(),
            insecure: false,
        })
        .await?
        .into_inner();
    while tokio::time::timeout(PATIENCE, pull.message())
        .await??
        .is_some()
    {}
    let stream = api
        .generate(pb::GenerateRequest {
            model: "test-small".into(),
            provider: "gpu-box".into(),
            prompt: "hello".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let (text, err) = reply_error(stream, |piece: &pb::GenerateResponse| &piece.response).await?;
    assert_eq!(text, "You");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(err.message(), "model 'test-small' not found");
    assert_eq!(
        error_info(&err),
        Some(("omnipanel.v1".to_owned(), "MODEL_NOT_FOUND".to_owned()))
    );
    Ok(())
}

#[tokio::test]
async fn a_client_leaving_mid_reply_cancels_the_generation() -> TestResult {
    let setup = setup(&[("FAKE_OLLAMA_TOKEN_DELAY_MS", "200")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    pull_to_end(&setup.client, "test-small").await?;
    let mut stream = models(&setup.client)
        .generate(pb::GenerateRequest {
            model: "test-small".into(),
            prompt: "a long story please".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    stream.message().await?;
    drop(stream);
    eventually("Ollama to see the generation cancelled", || {
        fake_stats(setup.port).is_ok_and(|s| s["generations_cancelled"] == 1)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn bad_model_names_are_refused_before_any_request() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let before = fake_stats(setup.port)?;
    let mut api = models(&setup.client);
    for bad in [
        "",
        "a/b/c/d",
        "bad..name",
        "has space",
        "semi;colon",
        "ns.dot/model",
    ] {
        let show = api
            .show_model(pb::ShowModelRequest {
                model: bad.into(),
                provider: String::new(),
            })
            .await
            .err()
            .ok_or("accepted a bad name")?;
        assert_eq!(show.code(), Code::InvalidArgument, "{bad:?}: {show:?}");
        assert!(show.message().starts_with("model"), "{}", show.message());
        let pull = api
            .pull_model(pb::PullModelRequest {
                model: bad.into(),
                ..Default::default()
            })
            .await
            .err()
            .ok_or("pulled a bad name")?;
        assert_eq!(pull.code(), Code::InvalidArgument);
    }
    let bad_keep_alive = api
        .load_model(pb::LoadModelRequest {
            model: "test-small".into(),
            keep_alive: "ten minutes".into(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("accepted a bad keep_alive")?;
    assert_eq!(bad_keep_alive.code(), Code::InvalidArgument);
    let after = fake_stats(setup.port)?;
    assert_eq!(
        before["requests"].get("/api/show"),
        after["requests"].get("/api/show")
    );
    assert_eq!(
        before["requests"].get("/api/pull"),
        after["requests"].get("/api/pull")
    );
    Ok(())
}

#[tokio::test]
async fn bad_requests_are_invalid_even_with_the_server_stopped() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut api = models(&setup.client);
    api.stop_server(pb::StopServerRequest {}).await?;
    // What is wrong with the request is the answer, not that the server
    // is down: starting it would not help.
    let bad = "bad..name";
    let mut refusals = vec![
        (
            "ShowModel",
            api.show_model(pb::ShowModelRequest {
                model: bad.into(),
                provider: String::new(),
            })
            .await
            .err(),
        ),
        (
            "DeleteModel",
            api.delete_model(pb::DeleteModelRequest {
                model: bad.into(),
                provider: String::new(),
            })
            .await
            .err(),
        ),
        (
            "UnloadModel",
            api.unload_model(pb::UnloadModelRequest {
                model: bad.into(),
                provider: String::new(),
            })
            .await
            .err(),
        ),
        (
            "LoadModel",
            api.load_model(pb::LoadModelRequest {
                model: bad.into(),
                ..Default::default()
            })
            .await
            .err(),
        ),
        (
            "LoadModel keep_alive",
            api.load_model(pb::LoadModelRequest {
                model: "test-small".into(),
                keep_alive: "ten minutes".into(),
                ..Default::default()
            })
            .await
            .err(),
        ),
        (
            "Generate options",
            api.generate(pb::GenerateRequest {
                model: "test-small".into(),
                prompt: "hi".into(),
                options_json: "[1]".into(),
                ..Default::default()
            })
            .await
            .err(),
        ),
    ];
    refusals.push((
        "Chat",
        api.chat(pb::ChatRequest {
            model: bad.into(),
            messages: vec![pb::ChatMessage {
                role: "user".into(),
                content: "hi".into(),
                images: vec![],
            }],
            ..Default::default()
        })
        .await
        .err(),
    ));
    for (call, refusal) in refusals {
        let err = refusal.ok_or(format!("{call} accepted a bad request"))?;
        assert_eq!(err.code(), Code::InvalidArgument, "{call}: {err:?}");
    }
    // A good name gets the server's state.
    let down = api
        .show_model(pb::ShowModelRequest {
            model: "test-small".into(),
            provider: String::new(),
        })
        .await
        .err()
        .ok_or("showed a model with the server stopped")?;
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");
    Ok(())
}

#[tokio::test]
async fn load_unload_delete_default_and_fit() -> TestResult {
    let mut setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut api = models(&setup.client);
    // Fit of a model that is not installed comes from the registry.
    let fit = api
        .check_fit(pb::CheckFitRequest {
            model: "llama3.1:70b".into(),
            provider: String::new(),
        })
        .await?
        .into_inner();
    assert!(
        !fit.installed && fit.model_bytes > 40_000_000_000,
        "{fit:?}"
    );
    // The verdict depends on this machine's free disk and RAM: the test
    // checks the agent applies its rules to the numbers it reports.
    let expected = if fit.model_bytes > fit.free_disk_bytes {
        pb::FitVerdict::NoDisk
    } else if fit.required_bytes <= fit.free_ram_bytes {
        pb::FitVerdict::FitsCpuOnly
    } else {
        pb::FitVerdict::TooLarge
    };
    assert_eq!(fit.verdict, i32::from(expected), "{fit:?}");
    assert!(!fit.explanation.is_empty());
    let missing = api
        .check_fit(pb::CheckFitRequest {
            model: "no-such-model".into(),
            provider: String::new(),
        })
        .await
        .err()
        .ok_or("fit of a missing model")?;
    assert_eq!(missing.code(), Code::NotFound);

    pull_to_end(&setup.client, "test-small").await?;
    let fit = api
        .check_fit(pb::CheckFitRequest {
            model: "test-small".into(),
            provider: String::new(),
        })
        .await?
        .into_inner();
    assert!(fit.installed);
    assert_eq!(
        fit.verdict,
        i32::from(pb::FitVerdict::FitsCpuOnly),
        "{fit:?}"
    );

    api.load_model(pb::LoadModelRequest {
        model: "test-small".into(),
        keep_alive: "10m".into(),
        ..Default::default()
    })
    .await?;
    let running = api
        .list_running_models(pb::ListRunningModelsRequest::default())
        .await?
        .into_inner();
    assert_eq!(running.models.len(), 1, "{running:?}");
    assert!(running.models[0].expires_unix_ms > 0);
    api.unload_model(pb::UnloadModelRequest {
        model: "test-small".into(),
        provider: String::new(),
    })
    .await?;
    let running = api
        .list_running_models(pb::ListRunningModelsRequest::default())
        .await?
        .into_inner();
    assert!(running.models.is_empty(), "{running:?}");

    // The default model needs an installed model, and survives a restart.
    let err = api
        .set_default_model(pb::SetDefaultModelRequest {
            model: "tinyllama".into(),
        })
        .await
        .err()
        .ok_or("default set to a missing model")?;
    assert_eq!(err.code(), Code::NotFound);
    api.set_default_model(pb::SetDefaultModelRequest {
        model: "test-small".into(),
    })
    .await?;
    setup.agent.stop().await?;
    let agent = setup
        .sandbox
        .start_agent_with(&setup.sandbox.fake_env())
        .await?;
    setup.client = agent.client().await?;
    let current = wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    assert_eq!(current.default_model, "test-small:latest");
    let listed = models(&setup.client)
        .list_models(pb::ListModelsRequest::default())
        .await?
        .into_inner();
    assert!(
        listed
            .models
            .iter()
            .any(|m| m.name == "test-small:latest" && m.is_default)
    );

    let mut api = models(&setup.client);
    api.delete_model(pb::DeleteModelRequest {
        model: "test-small".into(),
        provider: String::new(),
    })
    .await?;
    let err = api
        .delete_model(pb::DeleteModelRequest {
            model: "test-small".into(),
            provider: String::new(),
        })
        .await
        .err()
        .ok_or("deleted twice")?;
    assert_eq!(err.code(), Code::NotFound);
    Ok(())
}

#[tokio::test]
async fn remote_providers_are_checked_used_and_removed() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let remote_port = free_port()?;
    let remote_models = setup.sandbox.root().join("remote-models");
    let mut remote = FakeOllama::start("serve", remote_port, &remote_models, &[]).await?;
    let mut api = models(&setup.client);
    let added = api
        .add_provider(pb::AddProviderRequest {
            name: "gpu-box".into(),
            url: format!("http://127.0.0.1:{remote_port}"),
            token: "secret".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .provider
        .ok_or("no provider")?;
    assert!(added.has_token && added.version == "0.0.0-fake");
    let unreachable = api
        .add_provider(pb::AddProviderRequest {
            name: "nowhere".into(),
            url: format!("http://127.0.0.1:{}", free_port()?),
            token: String::new(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("added an unreachable provider")?;
    assert_eq!(unreachable.code(), Code::Unavailable);
    let providers = api
        .list_providers(pb::ListProvidersRequest {})
        .await?
        .into_inner()
        .providers;
    let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["local", "gpu-box"]);

    // Pull onto the remote; the local server does not get it.
    let mut stream = api
        .pull_model(pb::PullModelRequest {
            model: "test-small".into(),
            provider: "gpu-box".into(),
            insecure: false,
        })
        .await?
        .into_inner();
    while stream.message().await?.is_some() {}
    let remote_list = api
        .list_models(pb::ListModelsRequest {
            provider: "gpu-box".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(remote_list.models.len(), 1);
    let local_list = api
        .list_models(pb::ListModelsRequest::default())
        .await?
        .into_inner();
    assert!(local_list.models.is_empty());

    let err = api
        .remove_provider(pb::RemoveProviderRequest {
            name: "local".into(),
        })
        .await
        .err()
        .ok_or("removed local")?;
    assert_eq!(err.code(), Code::FailedPrecondition);
    api.remove_provider(pb::RemoveProviderRequest {
        name: "gpu-box".into(),
    })
    .await?;
    let err = api
        .list_models(pb::ListModelsRequest {
            provider: "gpu-box".into(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("used a removed provider")?;
    assert_eq!(err.code(), Code::NotFound);
    assert!(remote.is_running(), "remote providers are never stopped");
    Ok(())
}

#[tokio::test]
async fn the_cli_pulls_chats_and_reports() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let sandbox = &setup.sandbox;
    let output = sandbox.cli(&["ollama", "status"])?;
    assert!(
        output.status.success(),
        "{}",
        omnipanel_tests::stderr(&output)
    );
    assert!(
        omnipanel_tests::stdout(&output).contains("RUNNING"),
        "{}",
        omnipanel_tests::stdout(&output)
    );

    let output = sandbox.cli(&["models", "pull", "test-small"])?;
    assert!(
        output.status.success(),
        "{}",
        omnipanel_tests::stderr(&output)
    );
    assert!(
        omnipanel_tests::stdout(&output).contains("pulled test-small"),
        "{}",
        omnipanel_tests::stdout(&output)
    );

    let output = sandbox.cli(&["models", "ls"])?;
    assert!(omnipanel_tests::stdout(&output).contains("test-small:latest"));

    let output = sandbox.cli_with_input(&["chat", "test-small"], "hello\n/bye\n")?;
    assert!(
        output.status.success(),
        "{}",
        omnipanel_tests::stderr(&output)
    );
    assert!(
        omnipanel_tests::stdout(&output).contains("You said: hello"),
        "{}",
        omnipanel_tests::stdout(&output)
    );

    let output = sandbox.cli(&["models", "pull", "no-such-model"])?;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        omnipanel_tests::stderr(&output).contains("file does not exist"),
        "{}",
        omnipanel_tests::stderr(&output)
    );

    let output = sandbox.cli(&["models", "show", "bad..name"])?;
    assert_eq!(output.status.code(), Some(1));
    assert!(
        omnipanel_tests::stderr(&output).contains("invalid argument"),
        "{}",
        omnipanel_tests::stderr(&output)
    );
    Ok(())
}

#[tokio::test]
async fn watch_events_carries_the_progress_of_a_pull() -> TestResult {
    // ~640 MB at 150 MB/s: several throttled progress events.
    let setup = setup(&[("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "150000000")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    // From the start of the bus, so nothing of the pull can be missed.
    let mut events = EventSubscription::new(setup.sandbox.target(), vec!["models".into()], Some(0));
    // Nobody follows the pull's own stream: the bus is the only witness.
    drop(
        models(&setup.client)
            .pull_model(pb::PullModelRequest {
                model: "tinyllama".into(),
                ..Default::default()
            })
            .await?,
    );
    let mut progress: Vec<pb::PullProgress> = Vec::new();
    let mut pulled = false;
    let running = |p: &pb::PullProgress| {
        p.state == i32::from(pb::PullState::Running)
            || p.state == i32::from(pb::PullState::Retrying)
    };
    tokio::time::timeout(PATIENCE, async {
        // Until the end of the pull and the "pulled" change, in any order.
        while !(pulled && progress.last().is_some_and(|p| !running(p))) {
            let SubscriptionItem::Event(event) = events.next().await? else {
                continue;
            };
            match event.payload {
                Some(Payload::PullProgress(p)) if p.model == "tinyllama:latest" => progress.push(p),
                Some(Payload::ModelsChanged(change)) if change.change == "pulled" => pulled = true,
                _ => {}
            }
        }
        Ok::<_, omnipanel_client::ClientError>(())
    })
    .await
    .map_err(|_| format!("timed out; pull events so far: {progress:?}"))??;
    let last = progress.last().ok_or("no pull progress on the bus")?;
    assert_eq!(last.state, i32::from(pb::PullState::Succeeded), "{last:?}");
    assert_eq!(last.provider, "local");
    assert!(last.total_bytes > 600_000_000 && last.completed_bytes == last.total_bytes);
    // Progress in between, in order, with the numbers a progress bar needs.
    let midway: Vec<&pb::PullProgress> = progress
        .iter()
        .filter(|p| {
            p.state == i32::from(pb::PullState::Running)
                && p.completed_bytes > 0
                && p.completed_bytes < p.total_bytes
        })
        .collect();
    assert!(!midway.is_empty(), "{progress:?}");
    assert!(
        midway
            .iter()
            .any(|p| p.bytes_per_second > 0 && !p.current_layer.is_empty()),
        "{midway:?}"
    );
    assert!(
        progress
            .windows(2)
            .all(|w| w[0].completed_bytes <= w[1].completed_bytes),
        "progress went backwards: {progress:?}"
    );
    Ok(())
}

#[tokio::test]
async fn chat_with_the_server_stopped_is_unavailable_naming_its_state() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    pull_to_end(&setup.client, "test-small").await?;
    let mut api = models(&setup.client);
    api.stop_server(pb::StopServerRequest {}).await?;
    let err = api
        .chat(pb::ChatRequest {
            model: "test-small".into(),
            messages: vec![pb::ChatMessage {
                role: "user".into(),
                content: "hi".into(),
                images: vec![],
            }],
            ..Default::default()
        })
        .await
        .err()
        .ok_or("chatted with the server stopped")?;
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains("state STOPPED") && err.message().contains("omnipanel ollama start"),
        "{}",
        err.message()
    );
    assert_eq!(
        error_info(&err),
        Some(("omnipanel.v1".to_owned(), "OLLAMA_DOWN".to_owned()))
    );
    Ok(())
}

/// Run the CLI; its stdout when it succeeded, else an error with both
/// streams.
fn cli_ok(sandbox: &Sandbox, args: &[&str]) -> TestResult<String> {
    let output = sandbox.cli(args)?;
    if !output.status.success() {
        return Err(format!(
            "`omnipanel {}` failed ({}): {}{}",
            args.join(" "),
            output.status,
            omnipanel_tests::stdout(&output),
            omnipanel_tests::stderr(&output)
        )
        .into());
    }
    Ok(omnipanel_tests::stdout(&output))
}

#[tokio::test]
async fn the_cli_manages_models_and_the_server() -> TestResult {
    let setup = setup(&[], "").await?;
    let first = wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let sandbox = &setup.sandbox;
    cli_ok(sandbox, &["models", "pull", "test-small"])?;

    let fit = cli_ok(sandbox, &["models", "fit", "test-small"])?;
    assert!(
        fit.starts_with("test-small: ") && fit.contains("(installed)") && fit.contains("free disk"),
        "{fit}"
    );

    let loaded = cli_ok(
        sandbox,
        &["models", "load", "test-small", "--keep-alive", "10m"],
    )?;
    assert!(
        loaded.contains("loaded test-small:latest (kept loaded for 10m when unused)"),
        "{loaded}"
    );
    let ps = cli_ok(sandbox, &["models", "ps"])?;
    assert!(
        ps.contains("NAME") && ps.contains("test-small:latest"),
        "{ps}"
    );
    let unloaded = cli_ok(sandbox, &["models", "unload", "test-small"])?;
    assert!(unloaded.contains("unloaded test-small"), "{unloaded}");
    let ps = cli_ok(sandbox, &["models", "ps"])?;
    assert!(ps.contains("no models loaded"), "{ps}");

    let set = cli_ok(sandbox, &["models", "default", "test-small"])?;
    assert!(
        set.contains("default model is now test-small:latest"),
        "{set}"
    );
    let shown = cli_ok(sandbox, &["models", "default"])?;
    assert_eq!(shown.trim(), "test-small:latest");
    let listed = cli_ok(sandbox, &["models", "ls"])?;
    assert!(listed.contains("* test-small:latest"), "{listed}");
    let cleared = cli_ok(sandbox, &["models", "default", "--clear"])?;
    assert!(cleared.contains("default model cleared"), "{cleared}");

    let deleted = cli_ok(sandbox, &["models", "rm", "test-small"])?;
    assert!(deleted.contains("deleted test-small"), "{deleted}");
    let listed = cli_ok(sandbox, &["models", "ls"])?;
    assert!(listed.contains("no models installed"), "{listed}");
    let again = sandbox.cli(&["models", "rm", "test-small"])?;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        omnipanel_tests::stderr(&again).contains("not found"),
        "{}",
        omnipanel_tests::stderr(&again)
    );

    let stopped = cli_ok(sandbox, &["ollama", "stop"])?;
    assert!(stopped.contains("Ollama is STOPPED"), "{stopped}");
    eventually("the server to exit", || !process_exists(first.pid)).await?;
    let status_text = cli_ok(sandbox, &["ollama", "status"])?;
    assert!(status_text.contains("STOPPED"), "{status_text}");
    let started = cli_ok(sandbox, &["ollama", "start"])?;
    assert!(started.contains("Ollama is RUNNING"), "{started}");
    let before = status(&setup.client).await?;
    let restarted = cli_ok(sandbox, &["ollama", "restart"])?;
    assert!(restarted.contains("Ollama is RUNNING"), "{restarted}");
    let after = status(&setup.client).await?;
    assert_ne!(after.pid, before.pid, "a restart runs a new process");
    assert!(
        restarted.contains(&format!("pid {}", after.pid)),
        "{restarted}"
    );
    let logs = cli_ok(sandbox, &["ollama", "logs", "-n", "500"])?;
    assert!(logs.contains("Listening on"), "{logs}");
    assert!(logs.contains("received terminated"), "{logs}");
    Ok(())
}

/// Start `omnipanel models pull ARGS...` in the background.
fn spawn_cli_pull(sandbox: &Sandbox, args: &[&str]) -> TestResult<std::process::Child> {
    Ok(sandbox
        .command(&omnipanel_tests::binary("omnipanel"))
        .args(["models", "pull"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?)
}

/// The pull of `model` on `provider` as the agent lists it, if any.
async fn listed_pull(
    client: &Client,
    provider: &str,
    model: &str,
) -> TestResult<Option<pb::PullProgress>> {
    Ok(models(client)
        .list_pulls(pb::ListPullsRequest {})
        .await?
        .into_inner()
        .pulls
        .into_iter()
        .find(|p| p.provider == provider && p.model == model))
}

/// Ctrl-C for a CLI started by [`spawn_cli_pull`] once the agent reports
/// progress on its pull; returns its exit status and output.
async fn interrupt_when_pulling(
    client: &Client,
    mut child: std::process::Child,
    provider: &str,
    model: &str,
) -> TestResult<(std::process::ExitStatus, String, String)> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let pull = listed_pull(client, provider, model).await?;
        if pull
            .is_some_and(|p| p.state == i32::from(pb::PullState::Running) && p.completed_bytes > 0)
        {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!("the pull of {model} on {provider} never got going").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id())?).ok_or("no pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::INT)?;
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await???;
    Ok((
        output.status,
        omnipanel_tests::stdout(&output),
        omnipanel_tests::stderr(&output),
    ))
}

/// Wait for the agent to finish the pull; its final state.
async fn pull_outcome(
    client: &Client,
    provider: &str,
    model: &str,
) -> TestResult<pb::PullProgress> {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if let Some(pull) = listed_pull(client, provider, model).await?
            && pull.state != i32::from(pb::PullState::Running)
            && pull.state != i32::from(pb::PullState::Retrying)
        {
            return Ok(pull);
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("the pull of {model} on {provider} never ended").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn ctrl_c_detaches_the_cli_from_a_pull_that_goes_on() -> TestResult {
    // ~640 MB at 50 MB/s: seconds of pulling to interrupt.
    let rate = ("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "50000000");
    let setup = setup(&[rate], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    // The same on a remote provider, whose hint must name it.
    let remote_port = free_port()?;
    let _remote = FakeOllama::start(
        "serve",
        remote_port,
        &setup.sandbox.root().join("remote-models"),
        &[rate],
    )
    .await?;
    models(&setup.client)
        .add_provider(pb::AddProviderRequest {
            name: "gpu-box".into(),
            url: format!("http://127.0.0.1:{remote_port}"),
            token: String::new(),
            ..Default::default()
        })
        .await?;

    let local = spawn_cli_pull(&setup.sandbox, &["tinyllama"])?;
    let remote = spawn_cli_pull(&setup.sandbox, &["tinyllama", "--provider", "gpu-box"])?;
    let (status, out, err) =
        interrupt_when_pulling(&setup.client, local, "local", "tinyllama:latest").await?;
    assert!(status.success(), "{status}: {out}{err}");
    assert!(
        out.contains("detached: the pull of tinyllama continues in the agent")
            && out.contains("`omnipanel models pull tinyllama`")
            && out.contains("`omnipanel models cancel tinyllama`"),
        "{out}{err}"
    );
    let (status, out, err) =
        interrupt_when_pulling(&setup.client, remote, "gpu-box", "tinyllama:latest").await?;
    assert!(status.success(), "{status}: {out}{err}");
    assert!(
        out.contains("`omnipanel models pull tinyllama --provider gpu-box`")
            && out.contains("`omnipanel models cancel tinyllama --provider gpu-box`"),
        "{out}{err}"
    );

    // Both pulls finish in the agent with no client attached.
    for provider in ["local", "gpu-box"] {
        let outcome = pull_outcome(&setup.client, provider, "tinyllama:latest").await?;
        assert_eq!(
            outcome.state,
            i32::from(pb::PullState::Succeeded),
            "{outcome:?}"
        );
    }
    let listed = models(&setup.client)
        .list_models(pb::ListModelsRequest::default())
        .await?
        .into_inner();
    assert!(
        listed.models.iter().any(|m| m.name == "tinyllama:latest"),
        "{listed:?}"
    );
    Ok(())
}
