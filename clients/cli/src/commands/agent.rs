//! Commands about the agent itself: `status`, `events`, `logs`,
//! `settings`, `token`, `agent stop`, `crashes`, and `panel` (which starts
//! the panel beside it); their arguments and their handlers.

use std::time::Duration;

use clap::{Args, Subcommand};
use omnipanel_client::{Client, ClientError, EventSubscription, SubscriptionItem, Target, display};
use omnipanel_proto::v1::{
    self as pb, GetSettingsRequest, ListCrashReportsRequest, ListTokensRequest, RevokeTokenRequest,
    SettingChange, ShutdownRequest, UpdateSettingsRequest, event::Payload,
};

use crate::{
    Failure,
    args::{parse_scope, scopes_into_proto},
    log_tail,
    output::{Output, emit, errln, outln},
};

/// `omnipanel events`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep following new events (reconnecting if the agent restarts).
    #[arg(long, short)]
    pub follow: bool,
    /// Replay events after this sequence number (default: all the agent
    /// still holds).
    #[arg(long)]
    pub after: Option<u64>,
    /// Only events of these topics (repeatable), e.g. agent, settings.
    #[arg(long = "topic")]
    pub topics: Vec<String>,
}

/// `omnipanel logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new lines.
    #[arg(long, short)]
    pub follow: bool,
    /// How many of the last lines to print.
    #[arg(short = 'n', long = "lines", default_value_t = 100)]
    pub lines: u32,
    /// Log source, e.g. agent or ollama.
    #[arg(long, default_value = "agent")]
    pub source: String,
}

/// `omnipanel settings ...`
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show settings (all, or the keys given).
    Get {
        /// Dotted keys, e.g. log.filter.
        keys: Vec<String>,
    },
    /// Change a setting; plain text is accepted for string values.
    Set {
        /// Dotted key, e.g. log.filter.
        key: String,
        /// New value, e.g. debug or 127.0.0.1:7457.
        value: String,
    },
    /// Remove a setting from config.toml so its default applies.
    Reset {
        /// Dotted key.
        key: String,
    },
}

/// `omnipanel token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        /// A unique label, e.g. "vscode-laptop" (default: token-<time>).
        name: Option<String>,
        /// The same as NAME (the older spelling).
        #[arg(
            long = "name",
            id = "name_option",
            hide = true,
            conflicts_with = "name"
        )]
        name_option: Option<String>,
        /// Scopes granted, comma-separated: read, infer, write, admin
        /// (write includes read; admin includes all). `--scope` is the
        /// older spelling.
        #[arg(
            long,
            alias = "scope",
            value_delimiter = ',',
            value_parser = parse_scope,
            required = true,
            value_name = "SCOPE,..."
        )]
        scopes: Vec<pb::Scope>,
        /// A model the token may use for inference (the gateway, chat,
        /// generate, embed), as "model" or "provider/model"; repeat for
        /// more. Without it every model is allowed.
        #[arg(long = "model", value_name = "MODEL")]
        models: Vec<String>,
        /// Most gateway requests per minute (beyond them: 429 with
        /// Retry-After); 0 or absent: no limit.
        #[arg(long, value_name = "N", default_value_t = 0)]
        rpm: u32,
    },
    /// List tokens (never their secrets).
    #[command(visible_alias = "ls")]
    List,
    /// Revoke a token by id or name.
    Revoke {
        /// Token id or name.
        id: String,
    },
}

/// `omnipanel agent ...`
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Stop the agent gracefully and wait until it is gone.
    Stop,
}

/// `omnipanel panel`
#[derive(Debug, Args)]
pub struct PanelArgs {
    /// The tab to show.
    #[arg(long, value_parser = [
        "overview", "chat", "projects", "git", "models", "alerts", "logs", "clients", "audit",
        "setup",
    ])]
    pub tab: Option<String>,
    /// Show the first-run setup.
    #[arg(long)]
    pub setup: bool,
    /// Do not start the agent when none is running.
    #[arg(long)]
    pub no_start_agent: bool,
}

/// `omnipanel status`
pub async fn status(out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let info = client.info();
    if out.is_json() {
        return out.json(info);
    }
    outln!(
        "OmniPanel agent {} (protocol {}) is running",
        info.version,
        info.protocol_version
    )?;
    outln!(
        "  pid       {} (up {})",
        info.pid,
        display::elapsed_since(info.start_time_unix_ms)
    )?;
    outln!("  socket    {}", info.socket_path)?;
    let tcp = if info.tcp_address.is_empty() {
        "off"
    } else {
        &info.tcp_address
    };
    outln!("  tcp       {tcp}")?;
    let gateway = if info.gateway_address.is_empty() {
        "off"
    } else {
        &info.gateway_address
    };
    outln!("  gateway   {gateway}")?;
    outln!("  config    {}", info.config_path)?;
    outln!("  data      {}", info.data_dir)?;
    outln!("  logs      {}", info.log_dir)?;
    outln!("  features  {}", info.features.join(", "))?;
    outln!("  access    {}", access_text(info))?;
    if info.previous_run_crashed {
        outln!("  warning   the previous run crashed; see `omnipanel crashes`")?;
    }
    for warning in &info.warnings {
        outln!("  warning   {warning}")?;
    }
    Ok(())
}

/// What this client may do, as `status` shows it: the owner, a client
/// with its scopes, or one never admitted with the way to ask.
fn access_text(info: &pb::GetInfoResponse) -> String {
    let scopes = display::scope_names(&info.caller_scopes);
    if info.caller_is_owner {
        format!("the owner ({scopes})")
    } else if info
        .caller_scopes
        .iter()
        .all(|scope| *scope == i32::from(pb::Scope::Status))
    {
        "status only: not admitted (ask with `omnipanel clients request`, or set OMNIPANEL_TOKEN)"
            .to_owned()
    } else {
        format!("{scopes} (a client, not the owner)")
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
        Some(Payload::AccessRequestChanged(e)) => {
            let request = e.request.clone().unwrap_or_default();
            format!(
                "access request {} from {:?} (code {}): {}",
                request.id,
                request.client_name,
                request.code,
                display::access_request_state_name(request.state)
            )
        }
        Some(Payload::ConfirmationChanged(e)) => {
            let confirmation = e.confirmation.clone().unwrap_or_default();
            format!(
                "confirmation {} for {:?}: {} ({})",
                confirmation.id,
                confirmation.client_name,
                confirmation.summary,
                display::confirmation_state_name(confirmation.state)
            )
        }
        Some(Payload::ClientsChanged(e)) => format!(
            "client {} ({}) {}",
            e.client_name,
            e.client_id,
            if e.revoked { "revoked" } else { "admitted" }
        ),
        Some(Payload::OllamaStateChanged(e)) => {
            let status = e.status.clone().unwrap_or_default();
            let mut text = format!(
                "{} (was {})",
                display::server_status_line(&status),
                display::server_state_name(e.previous)
            );
            if !status.reason.is_empty() {
                text.push_str(&format!(": {}", status.reason));
            }
            text
        }
        Some(Payload::PullProgress(e)) => display::describe_pull(e),
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
                format!("detached at {}", display::short_id(&e.head))
            } else if e.head.is_empty() {
                format!("{} (no commits yet)", e.branch)
            } else {
                format!("{} at {}", e.branch, display::short_id(&e.head))
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
        Some(Payload::ProviderStateChanged(e)) => {
            let provider = e.provider.clone().unwrap_or_default();
            let state = match provider.state() {
                pb::ProviderState::Up => "up".to_owned(),
                pb::ProviderState::Down => format!("down ({})", provider.last_error),
                pb::ProviderState::Unknown | pb::ProviderState::Unspecified => "unknown".to_owned(),
            };
            format!("provider {} is {state}", provider.name)
        }
        Some(Payload::ConversationChanged(e)) => format!(
            "conversation {} of project {} {}",
            e.conversation_id, e.project_id, e.change
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

/// `omnipanel events`
pub async fn events(args: EventsArgs, out: Output) -> Result<(), Failure> {
    let target = Target::from_env();
    // Fail fast with the usual message when the agent is not there at all.
    Client::connect(target.clone()).await?;
    let mut subscription =
        EventSubscription::new(target, args.topics, Some(args.after.unwrap_or(0)))
            .reconnecting(args.follow);
    loop {
        match subscription.next().await? {
            SubscriptionItem::Event(event) => {
                if out.is_json() {
                    out.json(&event)?;
                } else {
                    emit(&format!(
                        "#{:<6} {}  {:<9} {}\n",
                        event.sequence,
                        display::timestamp(event.time_unix_ms),
                        event.topic,
                        describe_event(&event)
                    ))?;
                }
            }
            SubscriptionItem::Gap(gap) => {
                if out.is_json() {
                    out.json(&gap)?;
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

/// `omnipanel logs`
pub async fn logs(args: LogsArgs, out: Output) -> Result<(), Failure> {
    log_tail::logs(args.source, args.lines, args.follow, out).await
}

/// `omnipanel settings ...`
pub async fn settings(command: SettingsCommand, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut agent = client.agent();
    let changes = match command {
        SettingsCommand::Get { keys } => {
            let response = client
                .call(agent.get_settings(GetSettingsRequest { keys }))
                .await?;
            if out.is_json() {
                return out.json(&response);
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
    let response = client
        .call(agent.update_settings(UpdateSettingsRequest { changes }))
        .await?;
    if out.is_json() {
        return out.json(&response);
    }
    for setting in &response.settings {
        let value = if setting.value.is_empty() {
            "(unset)"
        } else {
            &setting.value
        };
        outln!("{} = {value}", setting.key)?;
    }
    let agent_restart = response.settings.iter().any(|s| s.restart_required);
    if agent_restart {
        outln!(
            "restart the agent for this to take effect (`omnipanel agent stop`, then start it again)"
        )?;
    } else if response.restart_required {
        // No key needs the agent restarted, so what waits is the managed
        // Ollama server, which was busy.
        outln!(
            "the Ollama server is in use (a model loaded, a pull or a reply running): this applies at its next restart (`omnipanel ollama restart`)"
        )?;
    }
    let for_ollama = response
        .settings
        .iter()
        .any(|s| OLLAMA_SERVER_KEYS.contains(&s.key.as_str()));
    if for_ollama && !response.restart_required {
        let status = client
            .call(
                client
                    .models()
                    .get_server_status(pb::GetServerStatusRequest {}),
            )
            .await?
            .status
            .unwrap_or_default();
        if status.state == i32::from(pb::ServerState::External) {
            outln!(
                "the Ollama server at {} was started outside OmniPanel: this does not apply to it (only to a server OmniPanel starts)",
                status.address
            )?;
        }
    }
    Ok(())
}

/// The settings the managed Ollama server is started with; a change
/// restarts it when nothing runs on it.
const OLLAMA_SERVER_KEYS: &[&str] = &[
    "ollama.models_dir",
    "ollama.keep_alive",
    "ollama.num_parallel",
    "ollama.max_loaded_models",
    "ollama.context_length",
    "ollama.flash_attention",
];

/// `omnipanel token ...`
pub async fn token(command: TokenCommand, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut agent = client.agent();
    match command {
        TokenCommand::Create {
            name,
            name_option,
            scopes,
            models,
            rpm,
        } => {
            let name = name.or(name_option).unwrap_or_else(|| {
                format!(
                    "token-{}",
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or_default()
                )
            });
            let response = client
                .call(agent.create_token(pb::CreateTokenRequest {
                    name,
                    scope: pb::Scope::Unspecified.into(),
                    scopes: scopes_into_proto(&scopes),
                    allowed_models: models,
                    requests_per_minute: rpm,
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            let info = response.info.unwrap_or_default();
            outln!("{}", response.token)?;
            errln!(
                "token {} ({:?}: {}) created; it is shown only once. Use it with:\n  export OMNIPANEL_TOKEN={}",
                info.id,
                info.name,
                display::scope_names(&info.scopes),
                response.token
            );
        }
        TokenCommand::List => {
            let response = client.call(agent.list_tokens(ListTokensRequest {})).await?;
            if out.is_json() {
                return out.json(&response);
            }
            if response.tokens.is_empty() {
                return outln!(
                    "no tokens; create one with `omnipanel token create NAME --scopes read`"
                );
            }
            out.table(
                &[
                    "ID",
                    "NAME",
                    "SCOPES",
                    "MODELS",
                    "RPM",
                    "CREATED",
                    "LAST USED",
                ],
                &token_rows(&response.tokens),
            )?;
        }
        TokenCommand::Revoke { id } => {
            let response = client
                .call(agent.revoke_token(RevokeTokenRequest { id }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            let info = response.info.unwrap_or_default();
            outln!("revoked token {} ({})", info.id, info.name)?;
        }
    }
    Ok(())
}

/// The table rows of `token list`.
fn token_rows(tokens: &[pb::TokenInfo]) -> Vec<Vec<String>> {
    tokens
        .iter()
        .map(|token| {
            vec![
                token.id.clone(),
                token.name.clone(),
                display::scope_names(&token.scopes),
                if token.allowed_models.is_empty() {
                    "all".to_owned()
                } else {
                    token.allowed_models.join(", ")
                },
                if token.requests_per_minute == 0 {
                    "-".to_owned()
                } else {
                    token.requests_per_minute.to_string()
                },
                display::timestamp(token.created_unix_ms),
                display::timestamp(token.last_used_unix_ms),
            ]
        })
        .collect()
}

/// `omnipanel agent ...`
pub async fn agent(command: AgentCommand, out: Output) -> Result<(), Failure> {
    match command {
        AgentCommand::Stop => stop(out).await,
    }
}

async fn stop(out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let pid = client.info().pid;
    client
        .call(client.agent().shutdown(ShutdownRequest {}))
        .await?;
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
    if out.is_json() {
        return out.json(&serde_json::json!({ "pid": pid, "stopped": stopped }));
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

/// `omnipanel crashes`
pub async fn crashes(out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let response = client
        .call(
            client
                .agent()
                .list_crash_reports(ListCrashReportsRequest {}),
        )
        .await?;
    out.show(&response, |response| {
        if response.reports.is_empty() {
            outln!("no crash reports")?;
        }
        for report in &response.reports {
            outln!(
                "{}  {:<5}  {}  {}\n    {}",
                display::timestamp(report.time_unix_ms),
                report.process,
                report.version,
                report.message,
                report.path
            )?;
        }
        Ok(())
    })
}

/// `omnipanel panel`: start `omnipanel-panel` (installed beside this
/// binary, else on PATH) without waiting for it; a panel that is already
/// open brings itself to the front and the new process exits.
pub fn panel(args: &PanelArgs) -> Result<(), Failure> {
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Grammar {
        #[command(subcommand)]
        command: TokenCommand,
    }

    fn create(args: &[&str]) -> Result<(Option<String>, Vec<pb::Scope>), String> {
        match Grammar::try_parse_from(["token", "create"].into_iter().chain(args.iter().copied())) {
            Ok(Grammar {
                command:
                    TokenCommand::Create {
                        name,
                        name_option,
                        scopes,
                        ..
                    },
            }) => Ok((name.or(name_option), scopes)),
            Ok(other) => Err(format!("parsed as {other:?}")),
            Err(err) => Err(err.to_string()),
        }
    }

    #[test]
    fn token_create_takes_a_name_and_a_scope_list() {
        assert_eq!(
            create(&["vscode", "--scopes", "read,infer"]),
            Ok((
                Some("vscode".to_owned()),
                vec![pb::Scope::Read, pb::Scope::Infer]
            ))
        );
        // The older spellings still work.
        assert_eq!(
            create(&["--scope", "write", "--name", "ci"]),
            Ok((Some("ci".to_owned()), vec![pb::Scope::Write]))
        );
        assert_eq!(
            create(&["--scope", "read", "--scope", "infer"]),
            Ok((None, vec![pb::Scope::Read, pb::Scope::Infer]))
        );
        let err = create(&["vscode"]).err().unwrap_or_default();
        assert!(err.contains("--scopes"), "a scope is required: {err}");
        let err = create(&["vscode", "--scopes", "reed"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("\"reed\" is not a scope"), "{err}");
        assert!(create(&["a", "--name", "b", "--scopes", "read"]).is_err());
    }

    #[test]
    fn token_create_takes_models_and_a_rate() {
        let parsed = Grammar::try_parse_from([
            "token",
            "create",
            "gw",
            "--scopes",
            "infer",
            "--model",
            "llama3.2",
            "--model",
            "lmstudio/qwen",
            "--rpm",
            "30",
        ]);
        match parsed {
            Ok(Grammar {
                command: TokenCommand::Create { models, rpm, .. },
            }) => {
                assert_eq!(models, ["llama3.2", "lmstudio/qwen"]);
                assert_eq!(rpm, 30);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tokens_list_every_scope() {
        let rows = token_rows(&[pb::TokenInfo {
            id: "tok_1".into(),
            name: "vscode".into(),
            scope: pb::Scope::Read.into(),
            scopes: vec![pb::Scope::Read.into(), pb::Scope::Infer.into()],
            ..pb::TokenInfo::default()
        }]);
        assert_eq!(
            rows,
            [[
                "tok_1",
                "vscode",
                "read, infer",
                "all",
                "-",
                "never",
                "never"
            ]
            .map(String::from)]
        );
    }

    #[test]
    fn status_says_who_the_caller_is() {
        let info = |scopes: &[pb::Scope], owner: bool| pb::GetInfoResponse {
            caller_scopes: scopes.iter().map(|scope| i32::from(*scope)).collect(),
            caller_is_owner: owner,
            ..pb::GetInfoResponse::default()
        };
        let all = [
            pb::Scope::Status,
            pb::Scope::Read,
            pb::Scope::Infer,
            pb::Scope::Write,
            pb::Scope::Admin,
        ];
        assert_eq!(
            access_text(&info(&all, true)),
            "the owner (read, infer, write, admin)"
        );
        assert_eq!(
            access_text(&info(&[pb::Scope::Status, pb::Scope::Read], false)),
            "read (a client, not the owner)"
        );
        for nothing in [&[pb::Scope::Status][..], &[]] {
            let text = access_text(&info(nothing, false));
            assert!(text.starts_with("status only: not admitted"), "{text}");
            assert!(text.contains("omnipanel clients request"), "{text}");
        }
    }

    fn described(payload: Payload) -> String {
        describe_event(&pb::Event {
            payload: Some(payload),
            ..Default::default()
        })
    }

    #[test]
    fn events_of_the_agent_and_of_access_read_as_sentences() {
        assert_eq!(
            described(Payload::AgentStopping(pb::AgentStopping {
                reason: "signal SIGTERM".into()
            })),
            "agent stopping: signal SIGTERM"
        );
        assert_eq!(
            described(Payload::CrashReported(pb::CrashReported {
                path: "/d/crashes/agent-1.txt".into(),
                message: "index out of bounds".into(),
            })),
            "an earlier run crashed: index out of bounds (report /d/crashes/agent-1.txt)"
        );
        assert_eq!(
            described(Payload::AccessRequestChanged(pb::AccessRequestChanged {
                request: Some(pb::AccessRequest {
                    id: "req_1".into(),
                    code: "K7Q2".into(),
                    client_name: "vscode".into(),
                    state: pb::AccessRequestState::Approved.into(),
                    ..Default::default()
                }),
            })),
            "access request req_1 from \"vscode\" (code K7Q2): approved"
        );
        assert_eq!(
            described(Payload::ConfirmationChanged(pb::ConfirmationChanged {
                confirmation: Some(pb::Confirmation {
                    id: "cf_1".into(),
                    client_name: "ci".into(),
                    summary: "delete model llama3:70b (40 GB)".into(),
                    state: pb::ConfirmationState::Pending.into(),
                    ..Default::default()
                }),
            })),
            "confirmation cf_1 for \"ci\": delete model llama3:70b (40 GB) (pending)"
        );
        for (revoked, word) in [(false, "admitted"), (true, "revoked")] {
            assert_eq!(
                described(Payload::ClientsChanged(pb::ClientsChanged {
                    client_id: "cl_1".into(),
                    client_name: "vscode".into(),
                    revoked,
                })),
                format!("client vscode (cl_1) {word}")
            );
        }
        // A payload this CLI does not know (a newer agent) is not an error.
        assert_eq!(
            describe_event(&pb::Event::default()),
            "(unknown event; upgrade omnipanel)"
        );
    }

    #[test]
    fn events_of_projects_and_repositories_name_the_project() {
        let watch = |state: pb::WatchState, detail: &str| {
            Payload::ProjectWatchChanged(pb::ProjectWatchChanged {
                project_id: "p1".into(),
                path: "/home/u/src/app".into(),
                watch: Some(pb::ProjectWatch {
                    state: state.into(),
                    detail: detail.into(),
                    ..Default::default()
                }),
            })
        };
        assert_eq!(
            described(watch(pb::WatchState::Live, "")),
            "project /home/u/src/app is watched in full again"
        );
        assert_eq!(
            described(watch(
                pb::WatchState::Degraded,
                "inotify watch limit reached; raise fs.inotify.max_user_watches"
            )),
            "project /home/u/src/app is not fully watched: inotify watch limit reached; \
             raise fs.inotify.max_user_watches"
        );
        let repository = |branch: &str, head: &str, detached: bool, dirty: bool| {
            described(Payload::RepositoryChanged(pb::RepositoryChangedEvent {
                project_id: "p1".into(),
                branch: branch.into(),
                head: head.into(),
                detached,
                dirty,
            }))
        };
        assert_eq!(
            repository("main", "0123456789abcdef", false, false),
            "repository of project p1 changed: main at 01234567"
        );
        assert_eq!(
            repository("", "0123456789abcdef", true, true),
            "repository of project p1 changed: detached at 01234567, uncommitted changes"
        );
        assert_eq!(
            repository("main", "", false, false),
            "repository of project p1 changed: main (no commits yet)"
        );
        assert_eq!(
            described(Payload::ConversationChanged(pb::ConversationChanged {
                conversation_id: "c1".into(),
                project_id: "p1".into(),
                change: "deleted".into(),
            })),
            "conversation c1 of project p1 deleted"
        );
    }

    #[test]
    fn events_of_providers_alerts_and_updates_say_what_changed() {
        for (removed, word) in [(false, "added"), (true, "removed")] {
            assert_eq!(
                described(Payload::ProvidersChanged(pb::ProvidersChanged {
                    name: "lmstudio".into(),
                    removed,
                })),
                format!("provider lmstudio {word}")
            );
        }
        let provider = |state: pb::ProviderState| {
            described(Payload::ProviderStateChanged(pb::ProviderStateChanged {
                provider: Some(pb::Provider {
                    name: "gpu-box".into(),
                    state: state.into(),
                    last_error: "connection refused".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }))
        };
        assert_eq!(provider(pb::ProviderState::Up), "provider gpu-box is up");
        assert_eq!(
            provider(pb::ProviderState::Down),
            "provider gpu-box is down (connection refused)"
        );
        assert_eq!(
            provider(pb::ProviderState::Unknown),
            "provider gpu-box is unknown"
        );
        let alert = pb::Alert {
            id: 7,
            message: "disk / is 95 % full".into(),
            clear_reason: "recovered".into(),
            ..Default::default()
        };
        assert_eq!(
            described(Payload::AlertRaised(pb::AlertRaised {
                alert: Some(alert.clone())
            })),
            "alert #7 raised: disk / is 95 % full"
        );
        assert_eq!(
            described(Payload::AlertCleared(pb::AlertCleared {
                alert: Some(alert)
            })),
            "alert #7 cleared (recovered): disk / is 95 % full"
        );
        assert_eq!(
            described(Payload::UpdateAvailable(pb::UpdateAvailable {
                version: "0.3.0".into(),
                current_version: "0.2.0".into(),
                ..Default::default()
            })),
            "update available: 0.3.0 (running 0.2.0)"
        );
        let progress = |state: pb::DownloadState, error: &str| {
            described(Payload::UpdateProgress(pb::UpdateProgress {
                version: "0.3.0".into(),
                state: state.into(),
                received_bytes: 10,
                total_bytes: 20,
                error: error.into(),
                ..Default::default()
            }))
        };
        assert_eq!(
            progress(pb::DownloadState::Downloading, ""),
            "update 0.3.0 download: Downloading, 10 of 20 bytes"
        );
        assert_eq!(
            progress(pb::DownloadState::Failed, "signature does not verify"),
            "update 0.3.0 download: Failed, 10 of 20 bytes (signature does not verify)"
        );
        assert_eq!(
            described(Payload::UpdateInstalled(pb::UpdateInstalled {
                from_version: "0.2.0".into(),
                to_version: "0.3.0".into(),
            })),
            "updated from 0.2.0 to 0.3.0"
        );
        for (automatic, word) in [(false, ""), (true, " automatically")] {
            assert_eq!(
                described(Payload::UpdateRolledBack(pb::UpdateRolledBack {
                    from_version: "0.3.0".into(),
                    to_version: "0.2.0".into(),
                    reason: "the new agent did not answer".into(),
                    automatic,
                })),
                format!("0.3.0 rolled back to 0.2.0{word}: the new agent did not answer")
            );
        }
    }
}
