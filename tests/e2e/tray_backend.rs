//! The tray's and panel's backend (`omnipanel_tray::core::backend`), the
//! part of both that acts, driven directly against a real agent that
//! supervises the fake Ollama: each command a button or menu item sends
//! (models, Ollama, thresholds, projects, start at login, the bug report,
//! quitting the agent; answering access requests and confirmations,
//! revoking a client; cancelling a pull; a stale threshold edit; a
//! project's conversations and model; no agent yet: commands refused
//! until it starts, what the UI follows kept and followed once it does)
//! is carried out by the agent, answered with its notice, and checked
//! against what the agent then reports.

use std::{sync::Arc, time::Duration};

use omnipanel_client::{Client, Credential, proto::v1 as pb};
use omnipanel_proto::CONFIRMATION_HEADER;
use omnipanel_tests::{PATIENCE, Sandbox, TestResult};
use omnipanel_tray::core::{
    backend::{self, Command, Metrics, Options},
    state::{Notice, Update},
    workspace::chat::{ChatCommand, ModelChoice},
};
use tokio::sync::mpsc;

use crate::ollama::{Setup, is, pull_to_end, setup, wait_status};

/// The backend's command channel and what it reports.
struct Backend {
    commands: mpsc::UnboundedSender<Command>,
    updates: mpsc::UnboundedReceiver<Update>,
}

impl Backend {
    /// The backend of the tray and panel, started against `setup`'s agent.
    fn spawn(setup: &Setup) -> Self {
        let (sink_tx, updates) = mpsc::unbounded_channel();
        let commands = backend::spawn(
            &tokio::runtime::Handle::current(),
            Options {
                target: setup.sandbox.target(),
                launch_agent: false,
                metrics: Metrics::Live(Duration::from_millis(500)),
            },
            Arc::new(move |update| {
                let _ = sink_tx.send(update);
            }),
        );
        Self { commands, updates }
    }

    /// Send `command` and wait (bounded) for its notice, skipping other
    /// updates; the notice must not be an error.
    async fn done(&mut self, command: Command) -> TestResult<Notice> {
        let notice = self.answered(command.clone()).await?;
        if notice.error {
            return Err(format!("{command:?} failed: {}", notice.message).into());
        }
        Ok(notice)
    }

    /// Send `command` and wait (bounded) for its notice, an error or not.
    async fn answered(&mut self, command: Command) -> TestResult<Notice> {
        let key = command.key();
        self.commands.send(command.clone())?;
        self.next_notice(&key)
            .await
            .map_err(|why| format!("{command:?}: {why}").into())
    }

    /// The next notice under `key` (bounded), skipping other updates.
    async fn next_notice(&mut self, key: &str) -> Result<Notice, String> {
        tokio::time::timeout(PATIENCE, async {
            while let Some(update) = self.updates.recv().await {
                if let Update::Notice(notice) = update
                    && notice.key.starts_with(key)
                {
                    return Some(notice);
                }
            }
            None
        })
        .await
        .map_err(|_| format!("no notice under {key:?}"))?
        .ok_or_else(|| "the backend ended".to_owned())
    }
}

#[tokio::test]
async fn the_backend_carries_out_server_and_model_commands() -> TestResult {
    let setup = setup(&[], "").await?;
    let client = &setup.client;
    wait_status(client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut backend = Backend::spawn(&setup);

    let pulled = backend.done(Command::Pull("test-small".into())).await?;
    assert!(pulled.message.contains("test-small"), "{pulled:?}");
    let models = || async {
        TestResult::Ok(
            client
                .models()
                .list_models(pb::ListModelsRequest::default())
                .await?
                .into_inner()
                .models
                .into_iter()
                .map(|m| m.name)
                .collect::<Vec<_>>(),
        )
    };
    assert!(models().await?.iter().any(|m| m.starts_with("test-small")));

    backend
        .done(Command::SetDefault("test-small".into()))
        .await?;
    backend.done(Command::Load("test-small".into())).await?;
    backend.done(Command::Unload("test-small".into())).await?;
    let fit = backend.done(Command::CheckFit("test-small".into())).await?;
    assert!(!fit.message.is_empty());

    backend.done(Command::StopServer).await?;
    wait_status(client, "STOPPED", is(pb::ServerState::Stopped)).await?;
    backend.done(Command::StartServer).await?;
    wait_status(client, "RUNNING", is(pb::ServerState::Running)).await?;
    backend.done(Command::RestartServer).await?;
    wait_status(client, "RUNNING again", is(pb::ServerState::Running)).await?;

    backend.done(Command::Delete("test-small".into())).await?;
    assert!(!models().await?.iter().any(|m| m.starts_with("test-small")));

    backend.done(Command::ResetThresholds).await?;

    // A project opened and forgotten.
    let folder = setup.sandbox.project_dir("from-the-panel");
    std::fs::create_dir_all(&folder)?;
    let path = std::fs::canonicalize(&folder)?.display().to_string();
    let opened = backend.done(Command::OpenProject(path.clone())).await?;
    assert!(opened.message.contains("from-the-panel"), "{opened:?}");
    let projects = client
        .projects()
        .list_projects(pb::ListProjectsRequest {})
        .await?
        .into_inner()
        .projects;
    let id = projects
        .iter()
        .find(|p| p.path == path)
        .map(|p| p.id.clone())
        .ok_or("the opened project is not listed")?;
    backend.done(Command::ForgetProject(id)).await?;
    let listed = client
        .projects()
        .list_projects(pb::ListProjectsRequest {})
        .await?
        .into_inner()
        .projects;
    assert!(listed.iter().all(|p| p.path != path));

    // Start at login on and off: the agent's own answer follows.
    let autostart = || async {
        TestResult::Ok(
            client
                .agent()
                .get_autostart(pb::GetAutostartRequest {})
                .await?
                .into_inner()
                .enabled,
        )
    };
    backend.done(Command::SetAutostart(true)).await?;
    assert!(autostart().await?);
    backend.done(Command::SetAutostart(false)).await?;
    assert!(!autostart().await?);

    let report = backend.done(Command::CopyBugReport).await?;
    assert!(
        report.message.starts_with("Bug report copied"),
        "{report:?}"
    );

    // All of it is on the event bus, as `omnipanel events` describes it.
    let events = setup.sandbox.cli(&["events"])?;
    assert!(events.status.success());
    let events = omnipanel_tests::stdout(&events);
    assert!(
        events.contains("test-small") && events.contains("from-the-panel"),
        "{events}"
    );

    // "Quit OmniPanel": the agent shuts down through its normal path.
    backend.done(Command::Shutdown).await?;
    let mut agent = setup.agent;
    let status = agent.wait_exit().await?;
    assert!(status.success(), "{status}");
    Ok(())
}

/// A client with no credential asks for `scopes`; its pending request and
/// the stream that brings the answer.
async fn ask_for_access(
    setup: &Setup,
    scopes: &[pb::Scope],
) -> TestResult<(
    pb::AccessRequest,
    tonic::Streaming<pb::RequestAccessResponse>,
)> {
    let asking = Client::connect_as(setup.sandbox.target(), Credential::Nothing).await?;
    let mut answers = asking
        .agent()
        .request_access(pb::RequestAccessRequest {
            client_name: "Rust test".into(),
            scopes: scopes.iter().map(|s| i32::from(*s)).collect(),
            projects: Vec::new(),
            reason: "e2e".into(),
            expiry: pb::Expiry::Unspecified.into(),
        })
        .await?
        .into_inner();
    let pending = tokio::time::timeout(PATIENCE, answers.message())
        .await??
        .and_then(|u| u.request)
        .ok_or("no first state")?;
    Ok((pending, answers))
}

/// The access panel's buttons: deny a request, approve one, answer the
/// admitted client's confirmations (deny, allow once, allow the kind for a
/// while), revoke the client; each answered with a notice that names the
/// client and what was decided, and each decision held by the agent.
#[tokio::test]
async fn the_backend_answers_access_requests_and_confirmations() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    pull_to_end(&setup.client, "test-small").await?;
    let mut backend = Backend::spawn(&setup);

    // Denied: the asking client is told so.
    let (pending, mut answers) = ask_for_access(&setup, &[pb::Scope::Write]).await?;
    let denied = backend.done(Command::Deny(pending.id.clone())).await?;
    assert_eq!(
        denied.message,
        format!("denied Rust test (code {})", pending.code)
    );
    let answer = tokio::time::timeout(PATIENCE, answers.message())
        .await??
        .and_then(|u| u.request)
        .ok_or("no answer to the denied request")?;
    assert_eq!(answer.state(), pb::AccessRequestState::Denied);
    // Denying it again: the agent's reason, not a silent success.
    let again = backend.answered(Command::Deny(pending.id.clone())).await?;
    assert!(again.error, "{again:?}");
    assert!(!again.message.is_empty(), "{again:?}");

    // Approved with what was asked: the client gets a token.
    let (pending, mut answers) = ask_for_access(&setup, &[pb::Scope::Write]).await?;
    let approved = backend
        .done(Command::Approve(backend::Approval {
            id: pending.id.clone(),
            scopes: Vec::new(),
            projects: Vec::new(),
            expiry: pb::Expiry::Unspecified,
        }))
        .await?;
    assert!(
        approved.message.starts_with("admitted Rust test"),
        "{approved:?}"
    );
    let admitted = tokio::time::timeout(PATIENCE, answers.message())
        .await??
        .ok_or("no answer to the approved request")?;
    let client_id = setup
        .client
        .agent()
        .list_clients(pb::ListClientsRequest {})
        .await?
        .into_inner()
        .clients
        .into_iter()
        .find(|c| c.name == "Rust test")
        .map(|c| c.id)
        .ok_or("the admitted client is not listed")?;
    let client =
        Client::connect_as(setup.sandbox.target(), Credential::Bearer(admitted.token)).await?;

    // The admitted client deletes a model: each try waits for the user.
    let delete = |confirmation: Option<&str>| {
        let mut request = tonic::Request::new(pb::DeleteModelRequest {
            model: "test-small".into(),
            provider: String::new(),
        });
        if let Some(id) = confirmation
            && let Ok(value) = id.parse()
        {
            request.metadata_mut().insert(CONFIRMATION_HEADER, value);
        }
        let client = client.clone();
        async move { client.call(client.models().delete_model(request)).await }
    };
    let asked = |client_error: omnipanel_client::ClientError| {
        client_error
            .confirmation_id()
            .ok_or_else(|| format!("no confirmation asked: {client_error}"))
    };
    let first = asked(delete(None).await.err().ok_or("deleted without asking")?)?;
    let refused = backend
        .done(Command::Answer {
            id: first.clone(),
            allow: false,
            allow_kind_for_seconds: 0,
        })
        .await?;
    assert_eq!(refused.message, "denied");
    assert!(
        delete(Some(&first)).await.is_err(),
        "a denied confirmation does not let the act through"
    );

    let second = asked(delete(None).await.err().ok_or("deleted without asking")?)?;
    let once = backend
        .done(Command::Answer {
            id: second.clone(),
            allow: true,
            allow_kind_for_seconds: 0,
        })
        .await?;
    assert!(
        once.message.starts_with("allowed once: Rust test may ")
            && once.message.contains("test-small"),
        "{once:?}"
    );
    delete(Some(&second)).await?;

    pull_to_end(&setup.client, "test-small").await?;
    let third = asked(delete(None).await.err().ok_or("deleted without asking")?)?;
    let for_a_while = backend
        .done(Command::Answer {
            id: third.clone(),
            allow: true,
            allow_kind_for_seconds: 600,
        })
        .await?;
    assert!(
        for_a_while
            .message
            .contains("and acts of this kind for 10m"),
        "{for_a_while:?}"
    );
    delete(Some(&third)).await?;

    // Revoked: the token stops working.
    let revoked = backend.done(Command::Revoke(client_id.clone())).await?;
    assert_eq!(
        revoked.message,
        "revoked Rust test: its token no longer works"
    );
    let after = client
        .call(
            client
                .models()
                .list_models(pb::ListModelsRequest::default()),
        )
        .await;
    assert!(after.is_err(), "a revoked token still works: {after:?}");
    let unknown = backend
        .answered(Command::Revoke("no-such-client".into()))
        .await?;
    assert!(unknown.error, "{unknown:?}");
    Ok(())
}

/// Cancel in the models tab: the pull the panel started ends as cancelled,
/// and both notices say so. A threshold edit made on a stale version is
/// refused with the agent's reason; one on the current version is saved.
#[tokio::test]
async fn the_backend_cancels_a_pull_and_saves_thresholds() -> TestResult {
    let setup = setup(&[("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "20000000")], "").await?;
    let client = &setup.client;
    wait_status(client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut backend = Backend::spawn(&setup);

    let model = "llama3.2:1b";
    backend.commands.send(Command::Pull(model.into()))?;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let pulls = client
            .models()
            .list_pulls(pb::ListPullsRequest {})
            .await?
            .into_inner()
            .pulls;
        if pulls
            .iter()
            .any(|p| p.model.starts_with(model) && p.completed_bytes > 0)
        {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("the panel's pull never downloaded: {pulls:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    backend.commands.send(Command::CancelPull(model.into()))?;
    let mut notices = Vec::new();
    for _ in 0..2 {
        let notice = backend.next_notice("pull").await?;
        assert!(!notice.error, "{notice:?}");
        notices.push(notice.message);
    }
    notices.sort();
    assert_eq!(
        notices,
        [
            format!("cancelled the pull of {model}"),
            format!("pull of {model} cancelled"),
        ]
    );

    let current = client
        .system()
        .get_thresholds(pb::GetThresholdsRequest {})
        .await?
        .into_inner();
    let mut edited = current.thresholds.clone();
    let changed = edited.first_mut().ok_or("no thresholds")?;
    changed.hold_ms += 1000;
    let first = changed.clone();
    let stale = backend
        .answered(Command::SetThresholds {
            thresholds: edited.clone(),
            expected_version: current.version + 100,
        })
        .await?;
    assert!(stale.error, "a stale version was accepted: {stale:?}");
    let saved = backend
        .done(Command::SetThresholds {
            thresholds: edited.clone(),
            expected_version: current.version,
        })
        .await?;
    let now = client
        .system()
        .get_thresholds(pb::GetThresholdsRequest {})
        .await?
        .into_inner();
    assert_eq!(
        saved.message,
        format!("thresholds saved (version {})", now.version)
    );
    assert!(
        now.thresholds
            .iter()
            .any(|t| t.metric == first.metric && t.hold_ms == first.hold_ms),
        "the edit was not kept: {:?}",
        now.thresholds
    );
    Ok(())
}

/// The chat tab's conversation list and model: a new conversation is kept
/// by the agent for the project, a deleted one is gone, and "use for this
/// project" becomes the project's preferred model.
#[tokio::test]
async fn the_backend_keeps_a_projects_conversations_and_model() -> TestResult {
    let setup = setup(&[], "").await?;
    let client = &setup.client;
    wait_status(client, "RUNNING", is(pb::ServerState::Running)).await?;
    pull_to_end(client, "test-small").await?;
    let mut backend = Backend::spawn(&setup);
    let folder = setup.sandbox.project_dir("chatting");
    std::fs::create_dir_all(&folder)?;
    let path = std::fs::canonicalize(&folder)?.display().to_string();
    backend.done(Command::OpenProject(path.clone())).await?;
    let project = || async {
        TestResult::Ok(
            client
                .projects()
                .list_projects(pb::ListProjectsRequest {})
                .await?
                .into_inner()
                .projects
                .into_iter()
                .find(|p| p.path == path)
                .ok_or("the opened project is not listed")?,
        )
    };
    let id = project().await?.id;
    let conversations = || async {
        TestResult::Ok(
            client
                .projects()
                .list_conversations(pb::ListConversationsRequest {
                    project: id.clone(),
                    limit: 0,
                })
                .await?
                .into_inner()
                .conversations,
        )
    };

    let created = backend
        .done(Command::Chat(ChatCommand::New {
            project: id.clone(),
            model: "test-small".into(),
        }))
        .await?;
    assert_eq!(created.message, "new conversation");
    let listed = conversations().await?;
    let [conversation] = listed.as_slice() else {
        return Err(format!("one conversation expected: {listed:?}").into());
    };
    assert!(
        conversation.model.starts_with("test-small"),
        "{conversation:?}"
    );

    let deleted = backend
        .done(Command::Chat(ChatCommand::Delete {
            id: conversation.id.clone(),
            project: id.clone(),
        }))
        .await?;
    assert_eq!(deleted.message, "conversation deleted");
    assert!(conversations().await?.is_empty());
    // Deleting it again: the agent's NOT_FOUND, as a notice.
    let again = backend
        .answered(Command::Chat(ChatCommand::Delete {
            id: conversation.id.clone(),
            project: id.clone(),
        }))
        .await?;
    assert!(again.error, "{again:?}");

    let chosen = backend
        .done(Command::Chat(ChatCommand::UseForProject {
            project: id.clone(),
            model: ModelChoice {
                provider: String::new(),
                name: "test-small".into(),
            },
        }))
        .await?;
    assert_eq!(chosen.message, "test-small is this project's model");
    assert_eq!(project().await?.preferred_model, "test-small");
    Ok(())
}

/// Before the agent runs, a command is answered "not connected" at once
/// (not queued behind the reconnect backoff); the log source the panel
/// shows is remembered and followed as soon as the agent is there.
#[tokio::test]
async fn without_an_agent_commands_are_refused_and_follows_wait_for_it() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (sink_tx, updates) = mpsc::unbounded_channel();
    let commands = backend::spawn(
        &tokio::runtime::Handle::current(),
        Options {
            target: sandbox.target(),
            launch_agent: false,
            metrics: Metrics::Live(Duration::from_millis(500)),
        },
        Arc::new(move |update| {
            let _ = sink_tx.send(update);
        }),
    );
    let mut backend = Backend { commands, updates };
    let refused = backend.answered(Command::Pull("test-small".into())).await?;
    assert!(refused.error, "{refused:?}");
    assert_eq!(refused.message, "not connected to the agent");
    backend
        .commands
        .send(Command::Logs(Some("agent".to_owned())))?;
    backend.commands.send(Command::Audit(None))?;

    let _agent = sandbox.start_agent().await?;
    let lines = tokio::time::timeout(PATIENCE, async {
        while let Some(update) = backend.updates.recv().await {
            if let Update::Logs { source, lines, .. } = update
                && source == "agent"
                && !lines.is_empty()
            {
                return Some(lines);
            }
        }
        None
    })
    .await
    .map_err(|_| "the agent's log was not followed once it started")?
    .ok_or("the backend ended")?;
    assert!(lines.iter().any(|l| l.contains("starting")), "{lines:?}");
    Ok(())
}
