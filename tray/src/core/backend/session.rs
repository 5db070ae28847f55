//! The connection: dial the agent (starting it once if none runs), back
//! off and retry while it is unreachable, and, while connected, follow
//! `WatchEvents`, turning each event into an update or a re-read, and hand
//! the UI's commands to `actions`.

use omnipanel_client::{
    Client, ClientError,
    proto::v1::{
        Event, PullState, WatchEventsRequest, event::Payload, watch_events_response::Item,
    },
};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{
    Command, MIN_BACKOFF, Options, Sink, actions, backoff, notice,
    refresh::{
        metrics, refresh_all, refresh_autostart, refresh_models, refresh_projects,
        refresh_thresholds, refresh_update, tail_logs,
    },
};
use crate::core::{launch, state::Update};

pub(super) async fn run(options: Options, sink: Sink, mut rx: mpsc::UnboundedReceiver<Command>) {
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
                    tokio::spawn(actions::execute(client.clone(), command, sink.clone()));
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
