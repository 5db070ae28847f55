//! The UI's commands: each runs in its own task, and its outcome (the
//! message a person reads, or the agent's error) becomes a notice under
//! the command's key.

use omnipanel_client::{
    Client, display,
    proto::v1::{
        AnswerConfirmationRequest, ApproveAccessRequest, CancelPullRequest, CheckFitRequest,
        DeleteModelRequest, DenyAccessRequest, DownloadUpdateRequest, ForgetProjectRequest,
        GetAutostartResponse, GetWorkspaceStateRequest, InstallUpdateRequest, LoadModelRequest,
        OpenProjectRequest, PullModelRequest, PullState, RestartServerRequest, RevokeClientRequest,
        SaveWorkspaceStateRequest, SetAutostartRequest, SetDefaultModelRequest,
        SetThresholdsRequest, ShutdownRequest, StartServerRequest, StopServerRequest,
        UnloadModelRequest,
    },
};

use super::{
    Approval, Command, Sink, notice,
    refresh::{refresh_access, refresh_models, refresh_projects, refresh_thresholds},
};
use crate::core::{
    state::{Update, pull_is_running},
    views,
    window_state::{self, WindowState},
};

pub(super) async fn execute(client: Client, command: Command, sink: Sink) {
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
        Command::Logs(_) | Command::Audit(_) => Ok(String::new()),
        Command::CopyBugReport => {
            // The collection reads files on the blocking pool; the panel
            // only puts the text on the clipboard.
            let report = omnipanel_client::bugreport::collect(Some(client), "panel")
                .await
                .map_err(|err| format!("the bug report could not be collected: {err}"))?;
            let text = report.to_text();
            let size = display::bytes(text.len() as u64);
            sink(Update::BugReport(text));
            Ok(format!(
                "Bug report copied ({size}): secrets in the settings are masked; read it before you paste it into a public issue"
            ))
        }
        Command::Chat(command) => super::chat::run(client, command, sink).await,
        Command::Files(command) => super::files::run(client, command, sink).await,
        Command::Git(command) => super::git::run(client, command, sink).await,
        // The window state is a convenience: a failure is logged, never
        // shown as an error in the panel (which then opens as new).
        Command::LoadWindowState(project) => {
            let saved = client
                .projects()
                .get_workspace_state(GetWorkspaceStateRequest {
                    project,
                    client_key: window_state::CLIENT_KEY.to_owned(),
                })
                .await;
            let state = match saved {
                Ok(saved) => {
                    let data = saved.into_inner().data;
                    (!data.is_empty())
                        .then(|| WindowState::decode(&data))
                        .flatten()
                }
                Err(status) => {
                    tracing::info!("no saved window state: {}", err(status));
                    None
                }
            };
            sink(Update::WindowState(state));
            Ok(String::new())
        }
        Command::SaveWindowState(state) => {
            if let Err(why) = save_window_state(client, state).await {
                tracing::warn!("the window state was not saved: {why}");
            }
            Ok(String::new())
        }
        Command::Approve(approval) => approve(client, approval, sink).await,
        Command::Deny(id) => {
            let denied = client
                .agent()
                .deny_access(DenyAccessRequest { id })
                .await
                .map_err(err)?
                .into_inner()
                .request;
            // The event says the same; reading again keeps the panel right
            // should the event stream lag.
            refresh_access(client.clone(), sink.clone()).await;
            Ok(match denied {
                Some(r) => format!("denied {} (code {})", r.client_name, r.code),
                None => "denied".to_owned(),
            })
        }
        Command::Revoke(id) => {
            let revoked = client
                .agent()
                .revoke_client(RevokeClientRequest { id })
                .await
                .map_err(err)?
                .into_inner()
                .client;
            refresh_access(client.clone(), sink.clone()).await;
            Ok(match revoked {
                Some(c) => format!("revoked {}: its token no longer works", c.name),
                None => "revoked".to_owned(),
            })
        }
        Command::Answer {
            id,
            allow,
            allow_kind_for_seconds,
        } => {
            let answered = client
                .agent()
                .answer_confirmation(AnswerConfirmationRequest {
                    id,
                    allow,
                    allow_kind_for_seconds,
                })
                .await
                .map_err(err)?
                .into_inner()
                .confirmation;
            refresh_access(client.clone(), sink.clone()).await;
            let what = answered.map_or_else(String::new, |c| {
                format!(": {} may {}", c.client_name, c.summary)
            });
            Ok(match (allow, allow_kind_for_seconds) {
                (false, _) => "denied".to_owned(),
                (true, 0) => format!("allowed once{what}"),
                (true, seconds) => format!(
                    "allowed{what}, and acts of this kind for {}",
                    display::duration(u64::from(seconds))
                ),
            })
        }
    }
}

async fn approve(client: &Client, approval: Approval, sink: &Sink) -> Result<String, String> {
    let granted = client
        .agent()
        .approve_access(ApproveAccessRequest {
            id: approval.id,
            scopes: approval.scopes.into_iter().map(|s| s as i32).collect(),
            projects: approval.projects,
            expiry: approval.expiry as i32,
            allowed_without_confirmation: Vec::new(),
        })
        .await
        .map_err(|status| client.error(status).to_string())?
        .into_inner()
        .client;
    refresh_access(client.clone(), sink.clone()).await;
    Ok(match granted {
        Some(c) => format!("admitted {} ({})", c.name, views::scope_text(&c.scopes)),
        None => "admitted".to_owned(),
    })
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

async fn save_window_state(client: &Client, state: WindowState) -> Result<(), String> {
    let Some(project) = state.project.clone() else {
        return Ok(());
    };
    client
        .projects()
        .save_workspace_state(SaveWorkspaceStateRequest {
            project: project.clone(),
            client_key: window_state::CLIENT_KEY.to_owned(),
            data: state.encode(),
            expected_version: None,
        })
        .await
        .map_err(|status| client.error(status).to_string())?;
    tokio::task::spawn_blocking(move || window_state::write_last_project(&project))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot remember the panel's project: {e}"))
}
