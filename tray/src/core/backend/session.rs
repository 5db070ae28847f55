//! The connection: dial the agent (starting it once if none runs), back
//! off and retry while it is unreachable, and, while connected, follow
//! `WatchEvents`, turning each event into an update or a re-read, and hand
//! the UI's commands to `actions`. The followed log and the followed
//! activity log are the two reads that last as long as the UI wants them:
//! each is one task, replaced when the UI asks for another and started
//! again after a reconnect. The project's file watch and text search are
//! kept the same way, by `files::Streams`. A chat reply is one task too,
//! kept so that "Stop" can abort it (which cancels the stream).

use omnipanel_client::{
    Client, ClientError,
    proto::v1::{
        Event, PullState, WatchEventsRequest, event::Payload, watch_events_response::Item,
    },
};
use tokio::{sync::mpsc, task::JoinHandle};

use super::{
    AuditFilter, Command, MIN_BACKOFF, Options, Sink, actions, backoff, files, notice,
    refresh::{
        ServerEvents, follow_audit, metrics, refresh_all, refresh_autostart, refresh_clients,
        refresh_crashes, refresh_models, refresh_projects, refresh_providers, refresh_thresholds,
        refresh_update, tail_logs,
    },
};
use crate::core::{
    launch,
    state::Update,
    workspace::chat::{ChatCommand, ChatUpdate},
};

pub(super) async fn run(options: Options, sink: Sink, mut rx: mpsc::UnboundedReceiver<Command>) {
    let mut attempt = 0u32;
    let mut tried_launch = !options.launch_agent;
    let mut launched = false;
    let mut follows = Follows::default();
    loop {
        match Client::connect(options.target.clone()).await {
            Ok(client) => {
                attempt = 0;
                launched = false;
                tried_launch = true;
                sink(Update::Connected(Box::new(client.info().clone())));
                match session(&client, &options, &sink, &mut rx, &mut follows).await {
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
                        Some(Command::Logs(source)) => follows.logs = source,
                        Some(Command::Audit(filter)) => follows.audit = filter,
                        Some(Command::Files(command)) if files::Streams::handles(&command) => {
                            follows.files.want(&command);
                        }
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

/// What the UI wants followed, kept across reconnects.
#[derive(Default)]
struct Follows {
    /// The log source.
    logs: Option<String>,
    /// The activity log, with its filter.
    audit: Option<AuditFilter>,
    /// The project's changes watched, and the running text search.
    files: files::Streams,
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
    follows: &mut Follows,
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
    let server_events = ServerEvents::default();
    let mut tasks = Tasks::default();
    tasks.0.push(tokio::spawn(refresh_all(
        client.clone(),
        sink.clone(),
        server_events.clone(),
    )));
    tasks.0.push(tokio::spawn(metrics(
        client.clone(),
        options.metrics,
        sink.clone(),
    )));
    if follows.logs.is_some() {
        tasks
            .0
            .push(tokio::spawn(refresh_crashes(client.clone(), sink.clone())));
    }
    let mut log_task = follows
        .logs
        .clone()
        .map(|source| tokio::spawn(tail_logs(client.clone(), source, sink.clone())));
    let mut audit_task = follows
        .audit
        .clone()
        .map(|filter| tokio::spawn(follow_audit(client.clone(), filter, sink.clone())));
    let mut reply_task: Option<JoinHandle<()>> = None;
    follows.files.resume(client, sink);
    let end = loop {
        tokio::select! {
            message = events.message() => match message {
                Ok(Some(response)) => match response.item {
                    Some(Item::Event(event)) => {
                        on_event(client, sink, &server_events, event, follows.logs.is_some())
                    }
                    Some(Item::Gap(gap)) => {
                        tracing::info!("event gap ({}): re-reading everything", gap.reason);
                        tokio::spawn(refresh_all(client.clone(), sink.clone(), server_events.clone()));
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
                    // The Logs tab came into view: its crash reports too.
                    if source.is_some() && follows.logs.is_none() {
                        tokio::spawn(refresh_crashes(client.clone(), sink.clone()));
                    }
                    log_task = source
                        .clone()
                        .map(|s| tokio::spawn(tail_logs(client.clone(), s, sink.clone())));
                    follows.logs = source;
                }
                Some(Command::Audit(filter)) => {
                    if let Some(task) = audit_task.take() {
                        task.abort();
                    }
                    audit_task = filter
                        .clone()
                        .map(|f| tokio::spawn(follow_audit(client.clone(), f, sink.clone())));
                    follows.audit = filter;
                }
                Some(command @ Command::Chat(ChatCommand::Send(_))) => {
                    if let Some(task) = reply_task.take() {
                        task.abort();
                    }
                    reply_task = Some(tokio::spawn(actions::execute(
                        client.clone(),
                        command,
                        sink.clone(),
                    )));
                }
                Some(command @ Command::Chat(ChatCommand::Stop)) => {
                    // Dropping the stream cancels the call; the agent keeps
                    // what had arrived.
                    if let Some(task) = reply_task.take() {
                        task.abort();
                    }
                    tokio::spawn(actions::execute(client.clone(), command, sink.clone()));
                }
                Some(Command::Files(command)) if files::Streams::handles(&command) => {
                    follows.files.run(client, command, sink);
                }
                Some(command) => {
                    tokio::spawn(actions::execute(client.clone(), command, sink.clone()));
                }
            },
        }
    };
    for task in [log_task, audit_task, reply_task].into_iter().flatten() {
        task.abort();
    }
    follows.files.pause();
    end
}

/// Fold in one event; `logs_shown`: the Logs tab shows (it lists the
/// crash reports, re-read when one is reported).
fn on_event(
    client: &Client,
    sink: &Sink,
    server_events: &ServerEvents,
    event: Event,
    logs_shown: bool,
) {
    let Some(payload) = event.payload else {
        return;
    };
    match payload {
        Payload::OllamaStateChanged(change) => {
            if let Some(status) = change.status {
                server_events.applied();
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
        Payload::ProvidersChanged(_) => {
            tokio::spawn(refresh_providers(client.clone(), sink.clone()));
            tokio::spawn(refresh_models(client.clone(), sink.clone()));
        }
        Payload::ProviderStateChanged(changed) => {
            if let Some(provider) = changed.provider {
                sink(Update::ProviderState(provider));
            }
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
        // Re-read rather than take the event's version: the status also
        // says whether a package manager, not the agent, installs it.
        Payload::UpdateAvailable(_)
        | Payload::UpdateInstalled(_)
        | Payload::UpdateRolledBack(_) => {
            tokio::spawn(refresh_update(client.clone(), sink.clone()));
        }
        // The two questions carry themselves whole: no re-read needed.
        Payload::AccessRequestChanged(changed) => {
            if let Some(request) = changed.request {
                sink(Update::AccessRequest(Box::new(request)));
            }
        }
        Payload::ConfirmationChanged(changed) => {
            if let Some(confirmation) = changed.confirmation {
                sink(Update::Confirmation(Box::new(confirmation)));
            }
        }
        // The Chat tab reads again what changed when it shows.
        Payload::ConversationChanged(change) => sink(Update::Chat(ChatUpdate::Changed(change))),
        Payload::ClientsChanged(_) => {
            tokio::spawn(refresh_clients(client.clone(), sink.clone()));
        }
        Payload::CrashReported(_) if logs_shown => {
            tokio::spawn(refresh_crashes(client.clone(), sink.clone()));
        }
        _ => {}
    }
}
