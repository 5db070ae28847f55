//! The managed Ollama server's settings end to end: a change of
//! `ollama.num_parallel` and its neighbours, made with the CLI or
//! UpdateSettings, restarts the fake Ollama the agent supervises with the
//! new `OLLAMA_*` variables when nothing runs on it, waits for the next
//! restart while a reply streams, and leaves a server started outside
//! OmniPanel alone. The fake reports the variables it started with in
//! `/__fake/stats`.

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_proto::v1::{
    agent_service_client::AgentServiceClient, model_service_client::ModelServiceClient,
};
use omnipanel_tests::{FakeOllama, Sandbox, TestResult, eventually, fake_stats, free_port};

use crate::ollama::{is, pull_to_end, setup, wait_status};

fn models(client: &Client) -> ModelServiceClient<omnipanel_client::Authed> {
    ModelServiceClient::with_interceptor(client.channel(), client.interceptor())
}

fn agent(client: &Client) -> AgentServiceClient<omnipanel_client::Authed> {
    AgentServiceClient::with_interceptor(client.channel(), client.interceptor())
}

/// The fake's `OLLAMA_*` variable `name`, if it was started with it.
fn fake_env(port: u16, name: &str) -> Option<String> {
    fake_stats(port)
        .ok()?
        .get("env")?
        .get(name)?
        .as_str()
        .map(str::to_owned)
}

async fn set(client: &Client, key: &str, value: &str) -> TestResult<pb::UpdateSettingsResponse> {
    Ok(agent(client)
        .update_settings(pb::UpdateSettingsRequest {
            changes: vec![pb::SettingChange {
                key: key.into(),
                value: value.into(),
                reset: false,
            }],
        })
        .await?
        .into_inner())
}

#[tokio::test]
async fn a_change_restarts_an_idle_managed_server_with_the_new_variables() -> TestResult {
    let setup = setup(&[], "").await?;
    let before = wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    assert_eq!(fake_env(setup.port, "OLLAMA_NUM_PARALLEL"), None);

    let output = setup
        .sandbox
        .cli(&["settings", "set", "ollama.num_parallel", "3"])?;
    let text = omnipanel_tests::stdout(&output);
    assert!(output.status.success(), "{text}{output:?}");
    assert!(text.contains("ollama.num_parallel = 3"), "{text}");
    assert!(!text.contains("restart"), "nothing waits: {text}");
    eventually("the fake to run with OLLAMA_NUM_PARALLEL=3", || {
        fake_env(setup.port, "OLLAMA_NUM_PARALLEL").as_deref() == Some("3")
    })
    .await?;
    let after = wait_status(&setup.client, "RUNNING again", |s| {
        s.state == i32::from(pb::ServerState::Running) && s.pid != before.pid
    })
    .await?;
    assert_ne!(after.pid, 0);

    // The other keys, through the API, in one restart each.
    let response = set(&setup.client, "ollama.flash_attention", "false").await?;
    assert!(!response.restart_required);
    eventually("OLLAMA_FLASH_ATTENTION=0", || {
        fake_env(setup.port, "OLLAMA_FLASH_ATTENTION").as_deref() == Some("0")
    })
    .await?;
    set(&setup.client, "ollama.keep_alive", "-1").await?;
    eventually("OLLAMA_KEEP_ALIVE=-1", || {
        fake_env(setup.port, "OLLAMA_KEEP_ALIVE").as_deref() == Some("-1")
            && fake_env(setup.port, "OLLAMA_NUM_PARALLEL").as_deref() == Some("3")
    })
    .await?;

    // A bad value is refused with the key named, and changes nothing.
    let err = set(&setup.client, "ollama.keep_alive", "\"ten minutes\"")
        .await
        .err()
        .ok_or("a bad keep_alive was accepted")?;
    let err = err
        .downcast_ref::<tonic::Status>()
        .ok_or("not a status")?
        .clone();
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("ollama.keep_alive"), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn a_change_waits_for_the_next_restart_while_a_reply_streams() -> TestResult {
    let setup = setup(&[("FAKE_OLLAMA_TOKEN_DELAY_MS", "100")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    pull_to_end(&setup.client, "test-small").await?;
    let before = wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut stream = models(&setup.client)
        .generate(pb::GenerateRequest {
            model: "test-small".into(),
            prompt: "a long story please".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    stream.message().await?.ok_or("no first piece")?;

    let output = setup
        .sandbox
        .cli(&["settings", "set", "ollama.num_parallel", "2"])?;
    let text = omnipanel_tests::stdout(&output);
    assert!(output.status.success(), "{text}{output:?}");
    assert!(text.contains("next restart"), "{text}");
    assert!(!text.contains("restart the agent"), "{text}");

    // The reply streams on to its end from the same server.
    let mut last = None;
    while let Some(piece) = stream.message().await? {
        last = Some(piece);
    }
    assert!(last.is_some_and(|p| p.done), "the reply ended normally");
    let now = wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    assert_eq!(now.pid, before.pid, "the server was not restarted");
    assert_eq!(fake_env(setup.port, "OLLAMA_NUM_PARALLEL"), None);

    // The next restart takes the setting.
    models(&setup.client)
        .restart_server(pb::RestartServerRequest {})
        .await?;
    eventually("OLLAMA_NUM_PARALLEL=2 after the restart", || {
        fake_env(setup.port, "OLLAMA_NUM_PARALLEL").as_deref() == Some("2")
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_external_server_is_told_apart_and_left_alone() -> TestResult {
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    let mut external = FakeOllama::start("serve", port, &sandbox.ollama_models(), &[]).await?;
    sandbox.configure_fake_ollama(port, "")?;
    let agent = sandbox.start_agent_with(&sandbox.fake_env()).await?;
    let client = agent.client().await?;
    wait_status(&client, "EXTERNAL", is(pb::ServerState::External)).await?;
    let output = sandbox.cli(&["settings", "set", "ollama.num_parallel", "4"])?;
    let text = omnipanel_tests::stdout(&output);
    assert!(output.status.success(), "{text}{output:?}");
    assert!(text.contains("does not apply to it"), "{text}");
    assert!(external.is_running(), "the external server is left running");
    assert_eq!(fake_env(port, "OLLAMA_NUM_PARALLEL"), None);
    Ok(())
}
