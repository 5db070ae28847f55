//! Client admission end to end: a client that was never admitted (plain
//! grpcio in Python, and the Rust client without the owner credential) gets
//! status only, asks for access, is approved by the user, writes in the
//! project it was granted and not in another, loses its streams when
//! revoked, and must wait for the user's confirmation before a destructive
//! act. The owner credential is a 0600 file in the data folder, never next
//! to the socket.

use std::{process::Stdio, time::Duration};

use omnipanel_client::{Client, Credential, proto::v1 as pb};
use omnipanel_proto::CONFIRMATION_HEADER;
use omnipanel_tests::{PATIENCE, Sandbox, TestResult, projects::open_project, stderr};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Code;

use crate::ollama::{is, pull_to_end, setup, wait_status};

/// The Python interpreter with grpcio (scripts/test provides it).
fn python() -> String {
    std::env::var("OMNIPANEL_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// The next JSON line the Python client prints.
async fn next_step(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    step: &str,
) -> TestResult<serde_json::Value> {
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await??
        .ok_or_else(|| format!("the Python client ended before step {step}"))?;
    let value: serde_json::Value = serde_json::from_str(&line)?;
    assert_eq!(value["step"], step, "{value}");
    Ok(value)
}

#[tokio::test]
async fn a_client_asks_is_approved_and_is_held_to_its_grant() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let owner = agent.client().await?;
    assert!(owner.info().caller_is_owner, "our own client is the owner");

    // The owner credential: owner-only, in the data folder, not beside the
    // socket (a container given the socket's folder must not get it).
    let credential = sandbox.data_dir().join("owner-credential");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&credential)?.permissions());
    assert_eq!(mode & 0o777, 0o600);
    let socket_dir = sandbox
        .socket()
        .parent()
        .ok_or("socket has no folder")?
        .to_owned();
    let beside_socket: Vec<String> = std::fs::read_dir(&socket_dir)?
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !beside_socket.iter().any(|name| name.contains("owner")),
        "{beside_socket:?}"
    );

    let granted = sandbox.project_dir("granted");
    let other = sandbox.project_dir("other");
    for dir in [&granted, &other] {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("hello.txt"), "hello")?;
        open_project(&owner, dir).await?;
    }

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/admission_client.py");
    let mut python = tokio::process::Command::new(python())
        .arg(script)
        .arg(sandbox.socket())
        .arg(&granted)
        .arg(&other)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let python_pid = python.id().ok_or("python has no pid")?;
    let mut lines = BufReader::new(python.stdout.take().ok_or("no stdout")?).lines();

    // Never admitted: status only, and told how to ask.
    let refused = next_step(&mut lines, "not_admitted").await?;
    assert_eq!(refused["owner"], false);
    assert_eq!(refused["read"], "PERMISSION_DENIED", "{refused}");
    assert_eq!(refused["write"], "PERMISSION_DENIED", "{refused}");
    let message = refused["read_message"].as_str().unwrap_or_default();
    assert!(message.contains("RequestAccess"), "{message}");

    // It asks; the user sees the request with what the kernel says about
    // the caller, and the same code.
    let pending = next_step(&mut lines, "pending").await?;
    let id = pending["id"].as_str().ok_or("no id")?.to_owned();
    assert_eq!(pending["pid"], python_pid);
    let listed = owner
        .agent()
        .list_access_requests(pb::ListAccessRequestsRequest {})
        .await?
        .into_inner()
        .requests;
    let request = listed
        .iter()
        .find(|r| r.id == id)
        .ok_or("request not listed")?;
    assert_eq!(request.code, pending["code"].as_str().unwrap_or_default());
    assert_eq!(request.client_name, "Python script");
    let caller = request
        .peer
        .as_ref()
        .and_then(|peer| peer.processes.first())
        .ok_or("no peer process")?;
    assert!(caller.executable.contains("python"), "{caller:?}");

    let approved = sandbox.cli(&["clients", "approve", &id])?;
    assert!(approved.status.success(), "{}", stderr(&approved));

    let answered = next_step(&mut lines, "answered").await?;
    assert_eq!(answered["state"], "ACCESS_REQUEST_STATE_APPROVED");
    assert_eq!(answered["has_token"], true);
    let client_id = answered["client_id"]
        .as_str()
        .ok_or("no client id")?
        .to_owned();

    // Its token writes in the granted project, and not in the other.
    let writes = next_step(&mut lines, "writes").await?;
    assert_eq!(writes["granted"], "OK", "{writes}");
    assert_eq!(writes["other"], "PERMISSION_DENIED", "{writes}");
    assert_eq!(
        std::fs::read_to_string(granted.join("from-python.txt"))?,
        "hello from python"
    );
    assert!(!other.join("from-python.txt").exists());

    // Revoked: its open Watch ends at once.
    next_step(&mut lines, "watching").await?;
    let revoked = sandbox.cli(&["clients", "revoke", &client_id])?;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let ended = next_step(&mut lines, "watch_ended").await?;
    assert_eq!(ended["code"], "UNAUTHENTICATED", "{ended}");
    let status = tokio::time::timeout(PATIENCE, python.wait()).await??;
    assert!(status.success());

    // The activity log has each step, with who did it and how it ended,
    // and keeps it across a restart.
    drop(owner);
    let mut agent = agent;
    agent.stop().await?;
    let _agent = sandbox.start_agent().await?;
    let steps = audit(&sandbox)?;
    let has = |method: &str, client: &str, outcome: &str| {
        steps
            .iter()
            .any(|e| e["method"] == method && e["clientName"] == client && e["outcome"] == outcome)
    };
    assert!(
        has("AgentService/RequestAccess", "anonymous", "ok"),
        "{steps:#?}"
    );
    assert!(
        has("AgentService/ApproveAccess", "owner", "ok"),
        "{steps:#?}"
    );
    assert!(
        has("FileService/WriteFile", "anonymous", "NOT_ADMITTED"),
        "{steps:#?}"
    );
    assert!(
        has("FileService/WriteFile", "Python script", "ok"),
        "{steps:#?}"
    );
    assert!(
        has(
            "FileService/WriteFile",
            "Python script",
            "PROJECT_NOT_GRANTED"
        ),
        "{steps:#?}"
    );
    assert!(
        has("AgentService/RevokeClient", "owner", "ok"),
        "{steps:#?}"
    );
    let refused = steps
        .iter()
        .find(|e| e["outcome"] == "PROJECT_NOT_GRANTED")
        .ok_or("no refusal")?;
    assert_eq!(refused["peerPid"], python_pid, "{refused}");
    Ok(())
}

/// Every entry of the activity log, as `omnipanel audit --json` prints it.
fn audit(sandbox: &Sandbox) -> TestResult<Vec<serde_json::Value>> {
    let listed = sandbox.cli(&["audit", "--json", "--limit", "1000"])?;
    assert!(listed.status.success(), "{}", stderr(&listed));
    Ok(String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<serde_json::Value>, _>>()?)
}

/// Ask for `scopes` (on every project in the roots) as a client with no
/// credential; the user approves through the CLI; the token.
async fn admitted(sandbox: &Sandbox, scopes: &[pb::Scope]) -> TestResult<String> {
    admitted_to(sandbox, scopes, &[]).await
}

/// Ask for `scopes` on `projects`; the user approves through the CLI; the
/// token.
pub(crate) async fn admitted_to(
    sandbox: &Sandbox,
    scopes: &[pb::Scope],
    projects: &[&std::path::Path],
) -> TestResult<String> {
    let asking = Client::connect_as(sandbox.target(), Credential::Nothing).await?;
    assert_eq!(asking.info().caller_scope, i32::from(pb::Scope::Status));
    let mut updates = asking
        .agent()
        .request_access(pb::RequestAccessRequest {
            client_name: "Rust test".into(),
            scopes: scopes.iter().map(|s| i32::from(*s)).collect(),
            projects: projects.iter().map(|p| p.display().to_string()).collect(),
            reason: "e2e".into(),
            expiry: pb::Expiry::Unspecified.into(),
        })
        .await?
        .into_inner();
    let first = tokio::time::timeout(PATIENCE, updates.message())
        .await??
        .and_then(|u| u.request)
        .ok_or("no first state")?;
    let approved = sandbox.cli(&["clients", "approve", &first.id])?;
    assert!(approved.status.success(), "{}", stderr(&approved));
    let last = tokio::time::timeout(PATIENCE, updates.message())
        .await??
        .ok_or("no answer")?;
    assert!(!last.token.is_empty(), "{last:?}");
    Ok(last.token)
}

#[tokio::test]
async fn deleting_a_model_waits_for_the_users_confirmation() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    pull_to_end(&setup.client, "test-small").await?;
    let token = admitted(&setup.sandbox, &[pb::Scope::Write]).await?;
    let client =
        Client::connect_as(setup.sandbox.target(), Credential::Bearer(token.clone())).await?;
    assert!(!client.info().caller_is_owner);

    let delete = || pb::DeleteModelRequest {
        model: "test-small".into(),
        provider: String::new(),
    };
    let first = client
        .call(client.models().delete_model(delete()))
        .await
        .err()
        .ok_or("deleted without asking")?;
    assert_eq!(first.code(), Code::FailedPrecondition, "{first}");
    assert_eq!(first.reason().as_deref(), Some("CONFIRMATION_REQUIRED"));
    let id = first.confirmation_id().ok_or("no confirmation id")?;
    let installed = |client: &Client| {
        let client = client.clone();
        async move {
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                client
                    .models()
                    .list_models(pb::ListModelsRequest::default())
                    .await?
                    .into_inner()
                    .models
                    .iter()
                    .any(|m| m.name.starts_with("test-small")),
            )
        }
    };
    assert!(
        installed(&setup.client).await?,
        "nothing may change before the answer"
    );

    // The user sees it, with what is at stake, and allows it.
    let listed = setup.sandbox.cli(&["confirmations", "ls"])?;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(text.contains(&id) && text.contains("test-small"), "{text}");

    // The same act from the CLI, as the same client, waits on the same
    // confirmation and says how to retry.
    let cli_first = setup.sandbox.cli_with_env(
        &["models", "rm", "test-small"],
        &[("OMNIPANEL_TOKEN", &token)],
    )?;
    assert!(!cli_first.status.success());
    assert!(
        stderr(&cli_first).contains(&format!("OMNIPANEL_CONFIRMATION={id}")),
        "{}",
        stderr(&cli_first)
    );

    let allowed = setup.sandbox.cli(&["confirmations", "allow", &id])?;
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    let retried = setup.sandbox.cli_with_env(
        &["models", "rm", "test-small"],
        &[("OMNIPANEL_TOKEN", &token), ("OMNIPANEL_CONFIRMATION", &id)],
    )?;
    assert!(retried.status.success(), "{}", stderr(&retried));
    assert!(
        !installed(&setup.client).await?,
        "the allowed retry deletes"
    );

    let retry = |id: &str| {
        let mut request = tonic::Request::new(delete());
        request
            .metadata_mut()
            .insert(CONFIRMATION_HEADER, id.parse().expect("an id is ASCII"));
        request
    };

    // An id is spent once.
    let again = client
        .models()
        .delete_model(retry(&id))
        .await
        .err()
        .ok_or("an id was used twice")?;
    assert_eq!(again.code(), Code::PermissionDenied, "{again:?}");

    // The log has the question, the answer and the act.
    let steps = audit(&setup.sandbox)?;
    let outcomes: Vec<&str> = steps
        .iter()
        .filter(|e| e["method"] == "ModelService/DeleteModel" && e["clientName"] == "Rust test")
        .filter_map(|e| e["outcome"].as_str())
        .collect();
    for outcome in ["CONFIRMATION_REQUIRED", "ok", "CONFIRMATION_DENIED"] {
        assert!(outcomes.contains(&outcome), "{outcomes:?}");
    }
    assert!(
        steps
            .iter()
            .any(|e| e["method"] == "AgentService/AnswerConfirmation" && e["outcome"] == "ok"),
        "{steps:#?}"
    );
    let deleted = steps
        .iter()
        .find(|e| e["method"] == "ModelService/DeleteModel" && e["outcome"] == "ok")
        .ok_or("no deletion")?;
    assert!(
        deleted["target"]
            .as_str()
            .unwrap_or_default()
            .contains("test-small"),
        "{deleted}"
    );
    Ok(())
}

#[tokio::test]
async fn a_grant_survives_a_restart_and_a_denied_request_gets_nothing() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut agent = sandbox.start_agent().await?;
    let token = admitted(&sandbox, &[pb::Scope::Read]).await?;
    agent.stop().await?;
    let _agent = sandbox.start_agent().await?;
    let client = Client::connect_as(sandbox.target(), Credential::Bearer(token)).await?;
    assert_eq!(client.info().caller_scope, i32::from(pb::Scope::Read));

    // A denied request ends with no token, and the client is told so.
    let asking = Client::connect_as(sandbox.target(), Credential::Nothing).await?;
    let mut updates = asking
        .agent()
        .request_access(pb::RequestAccessRequest {
            client_name: "Unwanted".into(),
            scopes: vec![pb::Scope::Admin.into()],
            ..Default::default()
        })
        .await?
        .into_inner();
    let first = updates
        .message()
        .await?
        .and_then(|u| u.request)
        .ok_or("no state")?;
    let denied = sandbox.cli(&["clients", "deny", &first.id])?;
    assert!(denied.status.success(), "{}", stderr(&denied));
    let last = tokio::time::timeout(Duration::from_secs(60), updates.message())
        .await??
        .ok_or("no answer")?;
    assert!(last.token.is_empty());
    assert_eq!(
        last.request.map(|r| r.state),
        Some(pb::AccessRequestState::Denied.into())
    );
    Ok(())
}

/// The reason of a refused call.
fn reason_of<T>(result: Result<T, omnipanel_client::ClientError>) -> Option<String> {
    result.err().and_then(|err| err.reason())
}

#[tokio::test]
async fn file_acts_a_client_cannot_undo_wait_and_it_sees_only_its_projects() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let owner = agent.client().await?;
    let app = sandbox.project_dir("app");
    let hidden = sandbox.project_dir("hidden");
    std::fs::create_dir_all(app.join("sub"))?;
    std::fs::create_dir_all(&hidden)?;
    for name in ["a.txt", "b.txt", "x.txt", "y.txt", "sub/c.txt"] {
        std::fs::write(app.join(name), name)?;
    }
    let app_id = open_project(&owner, &app).await?;
    let token = admitted_to(&sandbox, &[pb::Scope::Write], &[&app]).await?;
    let client = Client::connect_as(sandbox.target(), Credential::Bearer(token)).await?;
    let project = app.display().to_string();
    let delete = |path: &str, permanent: bool| pb::DeleteRequest {
        project: project.clone(),
        path: path.into(),
        permanent,
        recursive: true,
    };

    // What can be undone goes through: a file to the trash.
    client
        .call(client.files().delete(delete("a.txt", false)))
        .await?;
    assert!(!app.join("a.txt").exists());
    // What cannot waits for the user, and nothing changes meanwhile.
    let required = Some("CONFIRMATION_REQUIRED".to_owned());
    assert_eq!(
        reason_of(
            client
                .call(client.files().delete(delete("b.txt", true)))
                .await
        ),
        required
    );
    assert_eq!(
        reason_of(
            client
                .call(client.files().delete(delete("sub", false)))
                .await
        ),
        required
    );
    let overwrite = pb::MoveRequest {
        project: project.clone(),
        from: "x.txt".into(),
        to: "y.txt".into(),
        overwrite: true,
    };
    assert_eq!(
        reason_of(client.call(client.files().r#move(overwrite)).await),
        required
    );
    let batch = pb::ApplyBatchRequest {
        project: project.clone(),
        operations: vec![pb::BatchOperation {
            operation: Some(pb::batch_operation::Operation::Delete(pb::BatchDelete {
                path: "y.txt".into(),
                permanent: true,
            })),
        }],
    };
    assert_eq!(
        reason_of(client.call(client.files().apply_batch(batch)).await),
        required
    );
    for name in ["b.txt", "sub/c.txt", "x.txt", "y.txt"] {
        assert!(
            app.join(name).exists(),
            "{name} changed before the user answered"
        );
    }
    // A move onto nothing replaces nothing.
    let fresh = pb::MoveRequest {
        project: project.clone(),
        from: "x.txt".into(),
        to: "z.txt".into(),
        overwrite: true,
    };
    client.call(client.files().r#move(fresh)).await?;
    // The owner is never asked.
    owner
        .call(owner.files().delete(delete("b.txt", true)))
        .await?;
    assert!(!app.join("b.txt").exists());

    // Another project, even one the owner opened, is out of its reach.
    open_project(&owner, &hidden).await?;
    let listed = client
        .call(client.projects().list_projects(pb::ListProjectsRequest {}))
        .await?;
    let paths: Vec<&str> = listed.projects.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, [project.as_str()], "{listed:?}");
    let status = client
        .call(client.git().get_status(pb::GetStatusRequest {
            project: hidden.display().to_string(),
        }))
        .await;
    assert_eq!(reason_of(status), Some("PROJECT_NOT_GRANTED".to_owned()));

    // Its event stream shows its project, not the other, and none of the
    // owner's business (access requests, clients).
    let mut events = client
        .agent()
        .watch_events(pb::WatchEventsRequest {
            after_sequence: Some(0),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut seen = Vec::new();
    while let Some(message) = tokio::time::timeout(PATIENCE, events.message()).await?? {
        match message.item {
            Some(pb::watch_events_response::Item::Event(event)) => seen.push(event),
            Some(pb::watch_events_response::Item::CaughtUp(_)) => break,
            _ => {}
        }
    }
    assert!(seen.iter().all(|e| e.topic != "access"), "{seen:?}");
    let projects: Vec<&str> = seen
        .iter()
        .filter_map(|e| match &e.payload {
            Some(pb::event::Payload::ProjectChanged(changed)) => Some(changed.path.as_str()),
            _ => None,
        })
        .collect();
    assert!(projects.contains(&project.as_str()), "{seen:?}");
    assert!(
        !projects.iter().any(|p| p.ends_with("hidden")),
        "{projects:?}"
    );
    assert!(!app_id.is_empty());
    Ok(())
}
