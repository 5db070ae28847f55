//! The gRPC side, on a tokio runtime: connects to the agent (starting it
//! once if none runs), reconnects with backoff, mirrors its state from
//! `WatchEvents` (re-reading the affected lists on each event, everything
//! on connect and on a gap), streams metrics only as asked, and runs the
//! UI's [`Command`]s, each in its own task, reporting the outcome as a
//! [`Notice`]. Everything it learns leaves through the [`Sink`] as an
//! [`Update`]; it never touches a toolkit.

use std::{sync::Arc, time::Duration};

use omnipanel_client::{
    Client, ClientError, Target,
    proto::v1::{
        CancelPullRequest, CheckFitRequest, DeleteModelRequest, DownloadUpdateRequest, Event,
        ForgetProjectRequest, GetAutostartRequest, GetAutostartResponse, GetServerStatusRequest,
        GetSnapshotRequest, GetThresholdsRequest, GetUpdateStatusRequest, InstallUpdateRequest,
        ListAlertsRequest, ListModelsRequest, ListProjectsRequest, ListPullsRequest,
        ListRunningModelsRequest, LoadModelRequest, OpenProjectRequest, PullModelRequest,
        PullState, RestartServerRequest, SetAutostartRequest, SetDefaultModelRequest,
        SetThresholdsRequest, ShutdownRequest, StartServerRequest, StopServerRequest,
        StreamMetricsRequest, TailLogsRequest, Threshold, UnloadModelRequest, WatchEventsRequest,
        event::Payload, watch_events_response::Item,
    },
};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::core::{
    launch,
    state::{Notice, Update, pull_is_running},
};

/// Where updates go (the UI thread's event-loop proxy, wrapped).
pub type Sink = Arc<dyn Fn(Update) + Send + Sync>;

/// What the UI asks the backend to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start the agent now (and retry connecting at once).
    StartAgent,
    /// Start Ollama.
    StartServer,
    /// Stop Ollama.
    StopServer,
    /// Restart Ollama.
    RestartServer,
    /// Make a model the default.
    SetDefault(String),
    /// Load a model into memory.
    Load(String),
    /// Unload a model.
    Unload(String),
    /// Pull a model (progress arrives as updates).
    Pull(String),
    /// Cancel a pull.
    CancelPull(String),
    /// Delete a model.
    Delete(String),
    /// Check whether a model fits.
    CheckFit(String),
    /// Register and open a project folder.
    OpenProject(String),
    /// Forget a project (by id).
    ForgetProject(String),
    /// Replace the thresholds (with the version they were read at).
    SetThresholds {
        /// The new set.
        thresholds: Vec<Threshold>,
        /// The version read; the agent refuses a stale write.
        expected_version: u64,
    },
    /// Go back to the default thresholds.
    ResetThresholds,
    /// Turn start at login on or off.
    SetAutostart(bool),
    /// Download the newer release (if not yet) and install it.
    InstallUpdate,
    /// Stop the agent.
    Shutdown,
    /// Follow a log source (`None`: stop following).
    Logs(Option<String>),
}

impl Command {
    /// The notice key of this command's outcome (where the UI shows it).
    pub fn key(&self) -> String {
        match self {
            Self::StartAgent | Self::Shutdown => "agent".to_owned(),
            Self::StartServer | Self::StopServer | Self::RestartServer => "server".to_owned(),
            Self::SetDefault(m)
            | Self::Load(m)
            | Self::Unload(m)
            | Self::Delete(m)
            | Self::CheckFit(m) => format!("model:{m}"),
            Self::Pull(_) | Self::CancelPull(_) => "pull".to_owned(),
            Self::OpenProject(_) | Self::ForgetProject(_) => "projects".to_owned(),
            Self::SetThresholds { .. } | Self::ResetThresholds => "thresholds".to_owned(),
            Self::SetAutostart(_) => "autostart".to_owned(),
            Self::InstallUpdate => "update".to_owned(),
            Self::Logs(_) => "logs".to_owned(),
        }
    }
}

/// Which metrics the UI wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metrics {
    /// A stream at this interval (the panel, while open).
    Live(Duration),
    /// Ride along with the alert evaluator: a stream at the alert interval
    /// when alerts are on (the agent samples then anyway, so it costs
    /// nothing extra), else one snapshot per connection (the tray).
    WithAlerts,
}

/// How the backend behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the agent is.
    pub target: Target,
    /// Start the agent if none answers on the first try.
    pub launch_agent: bool,
    /// Metrics wanted.
    pub metrics: Metrics,
}

/// Shortest wait before reconnecting.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait before reconnecting.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The wait after `attempt` failed tries (1-based): doubling from
/// [`MIN_BACKOFF`] up to [`MAX_BACKOFF`].
pub fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    MIN_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Start the backend on `runtime`; commands go in through the sender.
/// Dropping the sender stops it.
pub fn spawn(
    runtime: &tokio::runtime::Handle,
    options: Options,
    sink: Sink,
) -> mpsc::UnboundedSender<Command> {
    let (tx, rx) = mpsc::unbounded_channel();
    runtime.spawn(run(options, sink, rx));
    tx
}

fn notice(sink: &Sink, key: impl Into<String>, result: Result<String, String>) {
    let (message, error) = match result {
        Ok(m) => (m, false),
        Err(m) => (m, true),
    };
    sink(Update::Notice(Notice {
        key: key.into(),
        message,
        error,
    }));
}

async fn run(options: Options, sink: Sink, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut attempt = 0u32;
    let mut tried_launch = !options.launch_agent;
    let mut launched = false;
    let mut logs: Option<String> = None;
    loop {
        match Client::connect(options.target.clone()).await {
            Ok(client) => {
                attempt = 0;
                launched = false;
                tried_launch = true;
                sink(Update::Connected(Box::new(client.info().clone())));
                match session(&client, &options, &sink, &mut rx, &mut logs).await {
                    SessionEnd::Quit => return,
                    SessionEnd::Lost(error) => {
                        tracing::warn!("lost the agent: {error}");
                        sink(Update::Disconnected {
                            error,
                            attempt: 0,
                            launched_agent: false,
                        });
                    }
                }
            }
            Err(err) => {
                attempt = attempt.saturating_add(1);
                let not_running = matches!(err, ClientError::AgentNotRunning { .. });
                if not_running && !tried_launch {
                    tried_launch = true;
                    match launch::start_agent() {
                        Ok(pid) => {
                            launched = true;
                            notice(&sink, "agent", Ok(format!("started the agent (pid {pid})")));
                        }
                        Err(e) => notice(&sink, "agent", Err(e)),
                    }
                }
                if attempt == 1 || attempt.is_multiple_of(10) {
                    tracing::info!("agent not reachable (attempt {attempt}): {err}");
                }
                sink(Update::Disconnected {
                    error: err.to_string(),
                    attempt,
                    launched_agent: launched,
                });
                // Wait for the backoff, or for the user to ask for something.
                tokio::select! {
                    () = tokio::time::sleep(backoff(attempt)) => {}
                    command = rx.recv() => match command {
                        None => return,
                        Some(Command::StartAgent) => {
                            attempt = 0;
                            match launch::start_agent() {
                                Ok(pid) => {
                                    launched = true;
                                    notice(&sink, "agent", Ok(format!("started the agent (pid {pid})")));
                                    // Give it a moment to create its socket.
                                    tokio::time::sleep(MIN_BACKOFF).await;
                                }
                                Err(e) => notice(&sink, "agent", Err(e)),
                            }
                        }
                        Some(Command::Logs(source)) => logs = source,
                        Some(other) => notice(
                            &sink,
                            other.key(),
                            Err("not connected to the agent".to_owned()),
                        ),
                    },
                }
            }
        }
    }
}

enum SessionEnd {
    /// The UI went away.
    Quit,
    /// The connection broke.
    Lost(String),
}

/// Tasks that end with the session.
#[derive(Default)]
struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

async fn session(
    client: &Client,
    options: &Options,
    sink: &Sink,
    rx: &mut mpsc::UnboundedReceiver<Command>,
    logs: &mut Option<String>,
) -> SessionEnd {
    // Subscribe first, then read: nothing that happens in between is lost.
    let request = WatchEventsRequest {
        after_sequence: None,
        instance_id: 0,
        topics: Vec::new(),
    };
    let mut events = match client.agent().watch_events(request).await {
        Ok(stream) => stream.into_inner(),
        Err(status) => return SessionEnd::Lost(client.error(status).to_string()),
    };
    let mut tasks = Tasks::default();
    tasks
        .0
        .push(tokio::spawn(refresh_all(client.clone(), sink.clone())));
    tasks.0.push(tokio::spawn(metrics(
        client.clone(),
        options.metrics,
        sink.clone(),
    )));
    let mut log_task = logs
        .clone()
        .map(|source| tokio::spawn(tail_logs(client.clone(), source, sink.clone())));
    let end = loop {
        tokio::select! {
            message = events.message() => match message {
                Ok(Some(response)) => match response.item {
                    Some(Item::Event(event)) => on_event(client, sink, event),
                    Some(Item::Gap(gap)) => {
                        tracing::info!("event gap ({}): re-reading everything", gap.reason);
                        tokio::spawn(refresh_all(client.clone(), sink.clone()));
                    }
                    Some(Item::CaughtUp(_)) | None => {}
                },
                Ok(None) => break SessionEnd::Lost("the agent closed the connection".to_owned()),
                Err(status) => break SessionEnd::Lost(client.error(status).to_string()),
            },
            command = rx.recv() => match command {
                None => break SessionEnd::Quit,
                Some(Command::Logs(source)) => {
                    if let Some(task) = log_task.take() {
                        task.abort();
                    }
                    log_task = source
                        .clone()
                        .map(|s| tokio::spawn(tail_logs(client.clone(), s, sink.clone())));
                    *logs = source;
                }
                Some(command) => {
                    tokio::spawn(execute(client.clone(), command, sink.clone()));
                }
            },
        }
    };
    if let Some(task) = log_task {
        task.abort();
    }
    end
}

fn on_event(client: &Client, sink: &Sink, event: Event) {
    let Some(payload) = event.payload else {
        return;
    };
    match payload {
        Payload::OllamaStateChanged(change) => {
            if let Some(status) = change.status {
                sink(Update::Server(status));
            }
            // Running models vanish with the server; models appear with it.
            tokio::spawn(refresh_models(client.clone(), sink.clone()));
        }
        Payload::PullProgress(pull) => {
            let finished = pull.state() == PullState::Succeeded;
            sink(Update::Pull(pull));
            if finished {
                tokio::spawn(refresh_models(client.clone(), sink.clone()));
            }
        }
        Payload::ModelsChanged(_) => {
            tokio::spawn(refresh_models(client.clone(), sink.clone()));
        }
        Payload::DefaultModelChanged(change) => sink(Update::DefaultModel(change.model)),
        Payload::ProjectChanged(_) => {
            tokio::spawn(refresh_projects(client.clone(), sink.clone()));
        }
        Payload::RepositoryChanged(change) => sink(Update::Repository(change)),
        Payload::AlertRaised(raised) => {
            if let Some(alert) = raised.alert {
                sink(Update::Alert(alert));
            }
        }
        Payload::AlertCleared(cleared) => {
            if let Some(alert) = cleared.alert {
                sink(Update::Alert(alert));
            }
        }
        Payload::ThresholdsChanged(_) => {
            tokio::spawn(refresh_thresholds(client.clone(), sink.clone()));
        }
        Payload::SettingsChanged(_) => {
            tokio::spawn(refresh_autostart(client.clone(), sink.clone()));
        }
        Payload::UpdateAvailable(available) => {
            sink(Update::UpdateAvailable(Some(available.version)))
        }
        Payload::UpdateInstalled(_) | Payload::UpdateRolledBack(_) => {
            tokio::spawn(refresh_update(client.clone(), sink.clone()));
        }
        _ => {}
    }
}

async fn refresh_all(client: Client, sink: Sink) {
    let server = client
        .models()
        .get_server_status(GetServerStatusRequest {})
        .await;
    if let Ok(Some(status)) = server.map(|r| r.into_inner().status) {
        sink(Update::Server(status));
    }
    refresh_models(client.clone(), sink.clone()).await;
    if let Ok(pulls) = client.models().list_pulls(ListPullsRequest {}).await {
        sink(Update::Pulls(pulls.into_inner().pulls));
    }
    refresh_projects(client.clone(), sink.clone()).await;
    refresh_alerts(client.clone(), sink.clone()).await;
    refresh_thresholds(client.clone(), sink.clone()).await;
    refresh_autostart(client.clone(), sink.clone()).await;
    refresh_update(client, sink).await;
}

async fn refresh_update(client: Client, sink: Sink) {
    // An agent without UpdateService (or that cannot tell) hides the item.
    let available = client
        .updates()
        .get_update_status(GetUpdateStatusRequest {})
        .await
        .ok()
        .map(tonic::Response::into_inner)
        .filter(|status| status.update_available)
        .and_then(|status| status.latest.map(|release| release.version));
    sink(Update::UpdateAvailable(available));
}

async fn refresh_models(client: Client, sink: Sink) {
    // Both fail while Ollama is down: show nothing rather than stale rows.
    let models = client
        .models()
        .list_models(ListModelsRequest::default())
        .await
        .map(|r| r.into_inner().models)
        .unwrap_or_default();
    sink(Update::Models(models));
    let running = client
        .models()
        .list_running_models(ListRunningModelsRequest::default())
        .await
        .map(|r| r.into_inner().models)
        .unwrap_or_default();
    sink(Update::Running(running));
}

async fn refresh_projects(client: Client, sink: Sink) {
    match client
        .projects()
        .list_projects(ListProjectsRequest {})
        .await
    {
        Ok(r) => sink(Update::Projects(r.into_inner().projects)),
        Err(status) => tracing::warn!("listing projects: {}", client.error(status)),
    }
}

async fn refresh_alerts(client: Client, sink: Sink) {
    let mut system = client.system();
    let active = system
        .list_alerts(ListAlertsRequest {
            limit: 100,
            before_id: 0,
            active_only: true,
        })
        .await;
    let history = system
        .list_alerts(ListAlertsRequest {
            limit: 50,
            before_id: 0,
            active_only: false,
        })
        .await;
    match (active, history) {
        (Ok(active), Ok(history)) => sink(Update::Alerts {
            active: active.into_inner().alerts,
            history: history.into_inner().alerts,
        }),
        (Err(status), _) | (_, Err(status)) => {
            tracing::warn!("listing alerts: {}", client.error(status));
        }
    }
}

async fn refresh_thresholds(client: Client, sink: Sink) {
    match client
        .system()
        .get_thresholds(GetThresholdsRequest {})
        .await
    {
        Ok(r) => sink(Update::Thresholds(r.into_inner())),
        Err(status) => tracing::warn!("reading thresholds: {}", client.error(status)),
    }
}

async fn refresh_autostart(client: Client, sink: Sink) {
    // An agent that cannot manage autostart here answers with an error:
    // the menu then hides the checkbox.
    let autostart = client
        .agent()
        .get_autostart(GetAutostartRequest {})
        .await
        .ok()
        .map(tonic::Response::into_inner);
    sink(Update::Autostart(autostart));
}

async fn metrics(client: Client, wanted: Metrics, sink: Sink) {
    let interval = match wanted {
        Metrics::Live(interval) => interval,
        Metrics::WithAlerts => {
            let thresholds = client
                .system()
                .get_thresholds(GetThresholdsRequest {})
                .await
                .map(tonic::Response::into_inner);
            match thresholds {
                Ok(t) if t.alerts_enabled && t.alert_interval_ms > 0 => {
                    Duration::from_millis(u64::from(t.alert_interval_ms))
                }
                _ => {
                    if let Ok(Some(snapshot)) = client
                        .system()
                        .get_snapshot(GetSnapshotRequest {})
                        .await
                        .map(|r| r.into_inner().snapshot)
                    {
                        sink(Update::Metrics(Box::new(snapshot)));
                    }
                    return;
                }
            }
        }
    };
    let request = StreamMetricsRequest {
        interval_ms: u32::try_from(interval.as_millis()).unwrap_or(u32::MAX),
    };
    let mut stream = match client.system().stream_metrics(request).await {
        Ok(s) => s.into_inner(),
        Err(status) => {
            tracing::warn!("metrics stream: {}", client.error(status));
            return;
        }
    };
    while let Ok(Some(response)) = stream.message().await {
        if let Some(snapshot) = response.snapshot {
            sink(Update::Metrics(Box::new(snapshot)));
        }
    }
}

async fn tail_logs(client: Client, source: String, sink: Sink) {
    let request = TailLogsRequest {
        source: source.clone(),
        lines: 300,
        follow: true,
    };
    let mut stream = match client.agent().tail_logs(request).await {
        Ok(s) => s.into_inner(),
        Err(status) => {
            notice(&sink, "logs", Err(client.error(status).to_string()));
            return;
        }
    };
    let mut reset = true;
    loop {
        match stream.message().await {
            Ok(Some(response)) => {
                sink(Update::Logs {
                    source: source.clone(),
                    lines: response.lines,
                    reset,
                });
                reset = false;
            }
            Ok(None) => return,
            Err(status) => {
                notice(&sink, "logs", Err(client.error(status).to_string()));
                return;
            }
        }
    }
}

async fn execute(client: Client, command: Command, sink: Sink) {
    let key = command.key();
    let result = run_command(&client, command, &sink).await;
    notice(&sink, key, result);
}

async fn run_command(client: &Client, command: Command, sink: &Sink) -> Result<String, String> {
    let err = |status: tonic::Status| client.error(status).to_string();
    match command {
        Command::StartAgent => Ok("the agent is running".to_owned()),
        Command::InstallUpdate => {
            let mut download = client
                .updates()
                .download_update(DownloadUpdateRequest {})
                .await
                .map_err(err)?
                .into_inner();
            while download.message().await.map_err(err)?.is_some() {}
            // The agent restarts into the new version; the connection
            // drops and the tray reconnects.
            let installed = client
                .updates()
                .install_update(InstallUpdateRequest { force: false })
                .await
                .map_err(err)?
                .into_inner();
            Ok(format!(
                "installing {} (from {}); the agent restarts",
                installed.to_version, installed.from_version
            ))
        }
        Command::StartServer => {
            let r = client
                .models()
                .start_server(StartServerRequest {})
                .await
                .map_err(err)?;
            if let Some(status) = r.into_inner().status {
                sink(Update::Server(status));
            }
            Ok("Ollama started".to_owned())
        }
        Command::StopServer => {
            let r = client
                .models()
                .stop_server(StopServerRequest {})
                .await
                .map_err(err)?;
            if let Some(status) = r.into_inner().status {
                sink(Update::Server(status));
            }
            Ok("Ollama stopped".to_owned())
        }
        Command::RestartServer => {
            let r = client
                .models()
                .restart_server(RestartServerRequest {})
                .await
                .map_err(err)?;
            if let Some(status) = r.into_inner().status {
                sink(Update::Server(status));
            }
            Ok("Ollama restarted".to_owned())
        }
        Command::SetDefault(model) => {
            client
                .models()
                .set_default_model(SetDefaultModelRequest {
                    model: model.clone(),
                })
                .await
                .map_err(err)?;
            sink(Update::DefaultModel(model.clone()));
            Ok(format!("{model} is the default model"))
        }
        Command::Load(model) => {
            client
                .models()
                .load_model(LoadModelRequest {
                    model: model.clone(),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            refresh_models(client.clone(), sink.clone()).await;
            Ok(format!("{model} loaded"))
        }
        Command::Unload(model) => {
            client
                .models()
                .unload_model(UnloadModelRequest {
                    model: model.clone(),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            refresh_models(client.clone(), sink.clone()).await;
            Ok(format!("{model} unloaded"))
        }
        Command::Delete(model) => {
            client
                .models()
                .delete_model(DeleteModelRequest {
                    model: model.clone(),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            refresh_models(client.clone(), sink.clone()).await;
            Ok(format!("{model} deleted"))
        }
        Command::CheckFit(model) => {
            let fit = client
                .models()
                .check_fit(CheckFitRequest {
                    model: model.clone(),
                    ..Default::default()
                })
                .await
                .map_err(err)?
                .into_inner();
            let explanation = fit.explanation.clone();
            sink(Update::Fit(model.clone(), fit));
            Ok(if explanation.is_empty() {
                format!("checked {model}")
            } else {
                explanation
            })
        }
        Command::Pull(model) => pull(client, model, sink).await,
        Command::CancelPull(model) => {
            client
                .models()
                .cancel_pull(CancelPullRequest {
                    model: model.clone(),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            Ok(format!("cancelled the pull of {model}"))
        }
        Command::OpenProject(path) => {
            let project = client
                .projects()
                .open_project(OpenProjectRequest {
                    path: path.clone(),
                    name: String::new(),
                })
                .await
                .map_err(err)?
                .into_inner()
                .project;
            refresh_projects(client.clone(), sink.clone()).await;
            Ok(format!(
                "opened {}",
                project.map_or(path, |p| if p.name.is_empty() { p.path } else { p.name })
            ))
        }
        Command::ForgetProject(id) => {
            client
                .projects()
                .forget_project(ForgetProjectRequest { project: id })
                .await
                .map_err(err)?;
            refresh_projects(client.clone(), sink.clone()).await;
            Ok("project forgotten (its files are untouched)".to_owned())
        }
        Command::SetThresholds {
            thresholds,
            expected_version,
        } => {
            let r = client
                .system()
                .set_thresholds(SetThresholdsRequest {
                    thresholds,
                    reset_to_defaults: false,
                    expected_version,
                })
                .await
                .map_err(err)?;
            refresh_thresholds(client.clone(), sink.clone()).await;
            Ok(format!(
                "thresholds saved (version {})",
                r.into_inner().version
            ))
        }
        Command::ResetThresholds => {
            client
                .system()
                .set_thresholds(SetThresholdsRequest {
                    thresholds: Vec::new(),
                    reset_to_defaults: true,
                    expected_version: 0,
                })
                .await
                .map_err(err)?;
            refresh_thresholds(client.clone(), sink.clone()).await;
            Ok("thresholds reset to the defaults".to_owned())
        }
        Command::SetAutostart(enabled) => {
            let r = client
                .agent()
                .set_autostart(SetAutostartRequest { enabled })
                .await
                .map_err(err)?
                .into_inner();
            let message = if r.enabled {
                format!("OmniPanel starts at login ({})", r.location)
            } else {
                "OmniPanel no longer starts at login".to_owned()
            };
            sink(Update::Autostart(Some(GetAutostartResponse {
                enabled: r.enabled,
                location: r.location,
                program: r.program,
            })));
            Ok(message)
        }
        Command::Shutdown => {
            client
                .agent()
                .shutdown(ShutdownRequest {})
                .await
                .map_err(err)?;
            Ok("the agent is stopping".to_owned())
        }
        Command::Logs(_) => Ok(String::new()),
    }
}

async fn pull(client: &Client, model: String, sink: &Sink) -> Result<String, String> {
    let mut stream = client
        .models()
        .pull_model(PullModelRequest {
            model: model.clone(),
            ..Default::default()
        })
        .await
        .map_err(|status| client.error(status).to_string())?
        .into_inner();
    let mut last = None;
    loop {
        match stream.message().await {
            Ok(Some(response)) => {
                if let Some(fit) = response.fit {
                    sink(Update::Fit(model.clone(), fit));
                }
                if let Some(progress) = response.progress {
                    sink(Update::Pull(progress.clone()));
                    last = Some(progress);
                }
            }
            Ok(None) => break,
            Err(status) => return Err(client.error(status).to_string()),
        }
    }
    match last {
        Some(p) if p.state() == PullState::Succeeded => Ok(format!("{model} pulled")),
        Some(p) if p.state() == PullState::Cancelled => Ok(format!("pull of {model} cancelled")),
        Some(p) if p.state() == PullState::Failed => {
            Err(format!("pull of {model} failed: {}", p.error))
        }
        Some(p) if pull_is_running(&p) => Ok(format!("{model} is still pulling in the agent")),
        _ => Ok(format!("{model} pulled")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), MIN_BACKOFF);
        assert_eq!(backoff(2), MIN_BACKOFF * 2);
        assert_eq!(backoff(3), MIN_BACKOFF * 4);
        assert_eq!(backoff(100), MAX_BACKOFF);
        assert_eq!(backoff(0), MIN_BACKOFF);
    }

    #[test]
    fn commands_report_where_the_ui_asked() {
        assert_eq!(Command::Load("m".into()).key(), "model:m");
        assert_eq!(Command::Delete("m".into()).key(), "model:m");
        assert_eq!(Command::StopServer.key(), "server");
        assert_eq!(Command::Pull("x".into()).key(), "pull");
    }
}
