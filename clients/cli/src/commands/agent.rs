//! Commands about the agent itself: status, events, logs, settings, tokens,
//! stop and crash reports; and the dispatch of every command.

use std::time::Duration;

use omnipanel_client::{Client, ClientError, EventSubscription, SubscriptionItem, Target};
use omnipanel_proto::v1::{
    self as pb, GetSettingsRequest, ListCrashReportsRequest, ListTokensRequest, RevokeTokenRequest,
    SettingChange, ShutdownRequest, TailLogsRequest, UpdateSettingsRequest, event::Payload,
};

use crate::{
    Failure, chat,
    cli::{AgentCommand, Cli, Command, EventsArgs, ScopeArg, SettingsCommand, TokenCommand},
    file_commands, git_commands, lifecycle_commands,
    model_commands::{self, describe_pull, state_name, status_line},
    project_commands,
    render::{elapsed_since, emit, errln, outln, print_json, timestamp},
    system_commands,
};

/// Run a parsed command.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    match cli.command {
        Command::Status => status(json).await,
        Command::Events(args) => events(args, json).await,
        Command::Logs(args) => logs(args.source, args.lines, args.follow, json).await,
        Command::Settings(command) => settings(command, json).await,
        Command::Token(command) => token(command, json).await,
        Command::Agent(AgentCommand::Stop) => stop(json).await,
        Command::Crashes => crashes(json).await,
        Command::Ollama(command) => model_commands::ollama(command, json).await,
        Command::Models(command) => model_commands::models(command, json).await,
        Command::Chat(args) => chat::chat(args, json).await,
        Command::Projects(command) => project_commands::projects(command, json).await,
        Command::Files(args) => file_commands::files(args, json).await,
        Command::Git(args) => git_commands::git(args, json).await,
        Command::Panel(args) => open_panel(&args),
        Command::Sys(args) => system_commands::sys(args.command, json).await,
        Command::Alerts(command) => system_commands::alerts(command, json).await,
        Command::Autostart { action } => lifecycle_commands::autostart(action, json).await,
        Command::Update(command) => lifecycle_commands::update(command, json).await,
        Command::Bugreport { output } => lifecycle_commands::bugreport(output, json).await,
        Command::Completions { .. } | Command::Manpages { .. } => Ok(()),
    }
}

async fn status(json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let info = client.info();
    if json {
        return print_json(info);
    }
    outln!(
        "OmniPanel agent {} (protocol {}) is running",
        info.version,
        info.protocol_version
    )?;
    outln!(
        "  pid       {} (up {})",
        info.pid,
        elapsed_since(info.start_time_unix_ms)
    )?;
    outln!("  socket    {}", info.socket_path)?;
    let tcp = if info.tcp_address.is_empty() {
        "off"
    } else {
        &info.tcp_address
    };
    outln!("  tcp       {tcp}")?;
    outln!("  config    {}", info.config_path)?;
    outln!("  data      {}", info.data_dir)?;
    outln!("  logs      {}", info.log_dir)?;
    outln!("  features  {}", info.features.join(", "))?;
    outln!("  access    {}", scope_name(info.caller_scope))?;
    if info.previous_run_crashed {
        outln!("  warning   the previous run crashed; see `omnipanel crashes`")?;
    }
    Ok(())
}

fn scope_name(scope: i32) -> &'static str {
    match pb::Scope::try_from(scope) {
        Ok(pb::Scope::Read) => "read",
        Ok(pb::Scope::Write) => "write",
        Ok(pb::Scope::Admin) => "admin",
        _ => "none",
    }
}

/// One line describing an event for people.
fn describe_event(event: &pb::Event) -> String {
    match &event.payload {
        Some(Payload::AgentStarted(e)) => {
            format!("agent {} started (pid {})", e.version, e.pid)
        }
        Some(Payload::AgentStopping(e)) => format!("agent stopping: {}", e.reason),
        Some(Payload::SettingsChanged(e)) => format!(
            "settings changed: {}{}",
            e.keys.join(", "),
            if e.restart_required {
                " (restart required)"
            } else {
                ""
            }
        ),
        Some(Payload::StateRecovered(e)) => format!(
            "state.db was unreadable ({}); moved to {} and recreated",
            e.reason, e.moved_to
        ),
        Some(Payload::CrashReported(e)) => {
            format!("an earlier run crashed: {} (report {})", e.message, e.path)
        }
        Some(Payload::TokensChanged(e)) => format!(
            "token {} {}",
            e.token_id,
            if e.revoked { "revoked" } else { "created" }
        ),
        Some(Payload::OllamaStateChanged(e)) => {
            let status = e.status.clone().unwrap_or_default();
            let mut text = format!("{} (was {})", status_line(&status), state_name(e.previous));
            if !status.reason.is_empty() {
                text.push_str(&format!(": {}", status.reason));
            }
            text
        }
        Some(Payload::PullProgress(e)) => describe_pull(e),
        Some(Payload::ModelsChanged(e)) => {
            let mut text = format!("model {} {}", e.model, e.change);
            if !e.provider.is_empty() {
                text.push_str(&format!(" on {}", e.provider));
            }
            text
        }
        Some(Payload::DefaultModelChanged(e)) => {
            if e.model.is_empty() {
                "default model cleared".to_owned()
            } else {
                format!("default model is now {}", e.model)
            }
        }
        // The path is what people know a project by; the id is for
        // `--project` and scripts.
        Some(Payload::ProjectChanged(e)) => {
            let change = match e.change.as_str() {
                "forgotten" => "forgotten (its files were not touched)",
                other => other,
            };
            format!("project {} {change} (id {})", e.path, e.project_id)
        }
        Some(Payload::ProjectWatchChanged(e)) => {
            let watch = e.watch.clone().unwrap_or_default();
            match watch.state() {
                pb::WatchState::Live => {
                    format!("project {} is watched in full again", e.path)
                }
                _ => format!("project {} is not fully watched: {}", e.path, watch.detail),
            }
        }
        Some(Payload::RepositoryChanged(e)) => {
            let at = if e.detached {
                format!("detached at {}", short_id(&e.head))
            } else if e.head.is_empty() {
                format!("{} (no commits yet)", e.branch)
            } else {
                format!("{} at {}", e.branch, short_id(&e.head))
            };
            let dirty = if e.dirty { ", uncommitted changes" } else { "" };
            format!(
                "repository of project {} changed: {at}{dirty}",
                e.project_id
            )
        }
        Some(Payload::ProvidersChanged(e)) => format!(
            "provider {} {}",
            e.name,
            if e.removed { "removed" } else { "added" }
        ),
        Some(Payload::AlertRaised(e)) => {
            let alert = e.alert.clone().unwrap_or_default();
            format!("alert #{} raised: {}", alert.id, alert.message)
        }
        Some(Payload::AlertCleared(e)) => {
            let alert = e.alert.clone().unwrap_or_default();
            format!(
                "alert #{} cleared ({}): {}",
                alert.id, alert.clear_reason, alert.message
            )
        }
        Some(Payload::ThresholdsChanged(e)) => format!(
            "alert thresholds changed: {} in effect{} (version {})",
            e.count,
            if e.defaults {
                ", the built-in ones"
            } else {
                ""
            },
            e.version
        ),
        Some(Payload::UpdateAvailable(e)) => format!(
            "update available: {} (running {})",
            e.version, e.current_version
        ),
        Some(Payload::UpdateProgress(e)) => format!(
            "update {} download: {:?}, {} of {} bytes{}",
            e.version,
            e.state(),
            e.received_bytes,
            e.total_bytes,
            if e.error.is_empty() {
                String::new()
            } else {
                format!(" ({})", e.error)
            }
        ),
        Some(Payload::UpdateInstalled(e)) => {
            format!("updated from {} to {}", e.from_version, e.to_version)
        }
        Some(Payload::UpdateRolledBack(e)) => format!(
            "{} rolled back to {}{}: {}",
            e.from_version,
            e.to_version,
            if e.automatic { " automatically" } else { "" },
            e.reason
        ),
        None => "(unknown event; upgrade omnipanel)".to_owned(),
    }
}

async fn events(args: EventsArgs, json: bool) -> Result<(), Failure> {
    let target = Target::from_env();
    // Fail fast with the usual message when the agent is not there at all.
    Client::connect(target.clone()).await?;
    let mut subscription =
        EventSubscription::new(target, args.topics, Some(args.after.unwrap_or(0)))
            .reconnecting(args.follow);
    loop {
        match subscription.next().await? {
            SubscriptionItem::Event(event) => {
                if json {
                    print_json(&event)?;
                } else {
                    emit(&format!(
                        "#{:<6} {}  {:<9} {}\n",
                        event.sequence,
                        timestamp(event.time_unix_ms),
                        event.topic,
                        describe_event(&event)
                    ))?;
                }
            }
            SubscriptionItem::Gap(gap) => {
                if json {
                    print_json(&gap)?;
                } else {
                    errln!(
                        "omnipanel: events were missed ({}); continuing from #{}",
                        gap.reason,
                        gap.resume_sequence
                    );
                }
            }
            SubscriptionItem::CaughtUp => {
                if !args.follow {
                    return Ok(());
                }
            }
            SubscriptionItem::Disconnected(why) => {
                errln!("omnipanel: lost the agent ({why}); reconnecting...");
            }
            SubscriptionItem::Connected => {}
        }
    }
}

/// Print the last `lines` lines of a log source (`omnipanel logs`,
/// `omnipanel ollama logs`), then follow it when asked.
pub async fn logs(source: String, lines: u32, follow: bool, json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut stream = client
        .agent()
        .tail_logs(TailLogsRequest {
            source,
            lines,
            follow,
        })
        .await
        .map_err(|status| client.error(status))?
        .into_inner();
    while let Some(batch) = stream
        .message()
        .await
        .map_err(|status| client.error(status))?
    {
        if json {
            print_json(&batch)?;
        } else {
            let mut text = batch.lines.join("\n");
            if !text.is_empty() {
                text.push('\n');
                emit(&text)?;
            }
        }
    }
    Ok(())
}

async fn settings(command: SettingsCommand, json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut agent = client.agent();
    let changes = match command {
        SettingsCommand::Get { keys } => {
            let response = agent
                .get_settings(GetSettingsRequest { keys })
                .await
                .map_err(|status| client.error(status))?
                .into_inner();
            if json {
                return print_json(&response);
            }
            outln!("# {}", response.config_path)?;
            for setting in response.settings {
                let value = if setting.value.is_empty() {
                    "(unset)".to_owned()
                } else {
                    setting.value
                };
                let origin = if setting.is_set { "" } else { "  (default)" };
                outln!("{} = {value}{origin}", setting.key)?;
                outln!("    {}", setting.description)?;
            }
            return Ok(());
        }
        SettingsCommand::Set { key, value } => vec![SettingChange {
            key,
            value,
            reset: false,
        }],
        SettingsCommand::Reset { key } => vec![SettingChange {
            key,
            value: String::new(),
            reset: true,
        }],
    };
    let response = agent
        .update_settings(UpdateSettingsRequest { changes })
        .await
        .map_err(|status| client.error(status))?
        .into_inner();
    if json {
        return print_json(&response);
    }
    for setting in &response.settings {
        let value = if setting.value.is_empty() {
            "(unset)"
        } else {
            &setting.value
        };
        outln!("{} = {value}", setting.key)?;
    }
    if response.restart_required {
        outln!(
            "restart the agent for this to take effect (`omnipanel agent stop`, then start it again)"
        )?;
    }
    Ok(())
}

async fn token(command: TokenCommand, json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut agent = client.agent();
    match command {
        TokenCommand::Create { scope, name } => {
            let scope = match scope {
                ScopeArg::Read => pb::Scope::Read,
                ScopeArg::Write => pb::Scope::Write,
                ScopeArg::Admin => pb::Scope::Admin,
            };
            let name = name.unwrap_or_else(|| {
                format!(
                    "token-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default()
                )
            });
            let response = agent
                .create_token(pb::CreateTokenRequest {
                    name,
                    scope: scope.into(),
                })
                .await
                .map_err(|status| client.error(status))?
                .into_inner();
            if json {
                return print_json(&response);
            }
            let info = response.info.unwrap_or_default();
            outln!("{}", response.token)?;
            errln!(
                "token {} ({:?}, {} scope) created; it is shown only once. Use it with:\n  export OMNIPANEL_TOKEN={}",
                info.id,
                info.name,
                scope_name(info.scope),
                response.token
            );
        }
        TokenCommand::List => {
            let response = agent
                .list_tokens(ListTokensRequest {})
                .await
                .map_err(|status| client.error(status))?
                .into_inner();
            if json {
                return print_json(&response);
            }
            if response.tokens.is_empty() {
                outln!("no tokens; create one with `omnipanel token create --scope read`")?;
            }
            for token in response.tokens {
                outln!(
                    "{}  {:<6} {:<24} created {}  last used {}",
                    token.id,
                    scope_name(token.scope),
                    token.name,
                    timestamp(token.created_unix_ms),
                    timestamp(token.last_used_unix_ms)
                )?;
            }
        }
        TokenCommand::Revoke { id } => {
            let response = agent
                .revoke_token(RevokeTokenRequest { id })
                .await
                .map_err(|status| client.error(status))?
                .into_inner();
            if json {
                return print_json(&response);
            }
            let info = response.info.unwrap_or_default();
            outln!("revoked token {} ({})", info.id, info.name)?;
        }
    }
    Ok(())
}

async fn stop(json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let pid = client.info().pid;
    client
        .agent()
        .shutdown(ShutdownRequest {})
        .await
        .map_err(|status| client.error(status))?;
    // Wait (bounded) until the agent no longer answers, so scripts can
    // start a new one right after.
    let target = client.target().clone();
    drop(client);
    let mut stopped = false;
    for _ in 0..100 {
        match Client::connect_unchecked(target.clone()).await {
            Err(ClientError::AgentNotRunning { .. }) => {
                stopped = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    if json {
        return print_json(&serde_json::json!({ "pid": pid, "stopped": stopped }));
    }
    if stopped {
        outln!("agent (pid {pid}) stopped")?;
        Ok(())
    } else {
        Err(Failure::Other(format!(
            "asked the agent (pid {pid}) to stop, but it still answers after 10 s"
        )))
    }
}

async fn crashes(json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let response = client
        .agent()
        .list_crash_reports(ListCrashReportsRequest {})
        .await
        .map_err(|status| client.error(status))?
        .into_inner();
    if json {
        return print_json(&response);
    }
    if response.reports.is_empty() {
        outln!("no crash reports")?;
    }
    for report in response.reports {
        outln!(
            "{}  {}  {}\n    {}",
            timestamp(report.time_unix_ms),
            report.version,
            report.message,
            report.path
        )?;
    }
    Ok(())
}

/// The first 8 characters of a commit id, as people quote them.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// `omnipanel panel`: start `omnipanel-panel` (installed beside this
/// binary, else on PATH) without waiting for it; a panel that is already
/// open brings itself to the front and the new process exits.
fn open_panel(args: &crate::cli::PanelArgs) -> Result<(), Failure> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("omnipanel-panel")))
        .filter(|path| path.is_file());
    let program = beside.unwrap_or_else(|| std::path::PathBuf::from("omnipanel-panel"));
    let mut command = std::process::Command::new(&program);
    if let Some(tab) = &args.tab {
        command.args(["--tab", tab]);
    }
    if args.setup {
        command.arg("--setup");
    }
    if args.no_start_agent {
        command.arg("--no-start-agent");
    }
    // Its own process group: Ctrl-C in this terminal must not close it.
    std::os::unix::process::CommandExt::process_group(&mut command, 0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|err| {
            Failure::Other(format!(
                "cannot start {}: {err} (is the OmniPanel tray package installed?)",
                program.display()
            ))
        })
}
