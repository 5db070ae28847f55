//! The tray's and panel's backend (`omnipanel_tray::core::backend`), the
//! part of both that acts, driven directly against a real agent that
//! supervises the fake Ollama: each command a button or menu item sends
//! (models, Ollama, thresholds, projects, start at login, the bug report,
//! quitting the agent)
//! is carried out by the agent, answered with its notice, and checked
//! against what the agent then reports.

use std::{sync::Arc, time::Duration};

use omnipanel_client::proto::v1 as pb;
use omnipanel_tests::{PATIENCE, TestResult};
use omnipanel_tray::core::{
    backend::{self, Command, Metrics, Options},
    state::{Notice, Update},
};
use tokio::sync::mpsc;

use crate::ollama::{is, setup, wait_status};

/// The backend's command channel and what it reports.
struct Backend {
    commands: mpsc::UnboundedSender<Command>,
    updates: mpsc::UnboundedReceiver<Update>,
}

impl Backend {
    /// Send `command` and wait (bounded) for its notice, skipping other
    /// updates; the notice must not be an error.
    async fn done(&mut self, command: Command) -> TestResult<Notice> {
        let key = command.key();
        self.commands.send(command.clone())?;
        let notice = tokio::time::timeout(PATIENCE, async {
            while let Some(update) = self.updates.recv().await {
                if let Update::Notice(notice) = update
                    && notice.key.starts_with(&key)
                {
                    return Some(notice);
                }
            }
            None
        })
        .await
        .map_err(|_| format!("no notice for {command:?}"))?
        .ok_or("the backend ended")?;
        if notice.error {
            return Err(format!("{command:?} failed: {}", notice.message).into());
        }
        Ok(notice)
    }
}

#[tokio::test]
async fn the_backend_carries_out_server_and_model_commands() -> TestResult {
    let setup = setup(&[], "").await?;
    let client = &setup.client;
    wait_status(client, "RUNNING", is(pb::ServerState::Running)).await?;
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
    let mut backend = Backend { commands, updates };

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
