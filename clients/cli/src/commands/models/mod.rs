//! Commands about Ollama and models: `omnipanel ollama ...` supervises the
//! local server, `omnipanel models ...` lists, pulls (with a progress bar
//! that can detach), loads, deletes and fit-checks models and manages
//! providers. All of it goes through the agent's ModelService.

use std::{
    io::IsTerminal,
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use omnipanel_client::Client;
use omnipanel_proto::v1::{
    self as pb, AddProviderRequest, CancelPullRequest, CheckFitRequest, DeleteModelRequest,
    GetServerStatusRequest, ListModelsRequest, ListProvidersRequest, ListPullsRequest,
    ListRunningModelsRequest, LoadModelRequest, PullModelRequest, RemoveProviderRequest,
    RestartServerRequest, SetDefaultModelRequest, ShowModelRequest, StartServerRequest,
    StopServerRequest, UnloadModelRequest,
};
use tokio::signal::unix::{SignalKind, signal};

use crate::{
    Failure, agent_commands,
    cli::{ModelsCommand, OllamaCommand, ProviderCommand},
    render::{
        duration_secs, emit, errln, human_size, now_ms, outln, percent, print_json, print_table,
        relative_time,
    },
};

/// The body of a unary call's answer, or the classified error.
pub fn rpc<T>(
    client: &Client,
    result: Result<tonic::Response<T>, tonic::Status>,
) -> Result<T, Failure> {
    result
        .map(tonic::Response::into_inner)
        .map_err(|status| Failure::Client(client.error(status)))
}

/// `omnipanel ollama ...`
pub async fn ollama(command: OllamaCommand, json: bool) -> Result<(), Failure> {
    let control = match command {
        OllamaCommand::Logs { follow, lines } => {
            return agent_commands::logs("ollama".to_owned(), lines, follow, json).await;
        }
        OllamaCommand::Status => None,
        OllamaCommand::Start => Some(Control::Start),
        OllamaCommand::Stop => Some(Control::Stop),
        OllamaCommand::Restart => Some(Control::Restart),
    };
    let client = Client::connect_from_env().await?;
    let mut models = client.models();
    let Some(control) = control else {
        let response = rpc(
            &client,
            models.get_server_status(GetServerStatusRequest {}).await,
        )?;
        if json {
            return print_json(&response);
        }
        print_server_status(&response.status.unwrap_or_default())?;
        return Ok(());
    };
    let status = match control {
        Control::Start => {
            let response = rpc(&client, models.start_server(StartServerRequest {}).await)?;
            if json {
                return print_json(&response);
            }
            response.status
        }
        Control::Restart => {
            let response = rpc(
                &client,
                models.restart_server(RestartServerRequest {}).await,
            )?;
            if json {
                return print_json(&response);
            }
            response.status
        }
        Control::Stop => {
            let response = rpc(&client, models.stop_server(StopServerRequest {}).await)?;
            if json {
                return print_json(&response);
            }
            response.status
        }
    }
    .unwrap_or_default();
    let wants_running = control != Control::Stop;
    outln!("{}", status_line(&status))?;
    let state = server_state(status.state);
    if wants_running && !matches!(state, pb::ServerState::Running | pb::ServerState::External) {
        // The start "settled" somewhere other than running (port taken,
        // crash on start, ...): a script chaining `ollama start && ...`
        // must see that as a failure.
        let why = if status.last_error.is_empty() {
            status.reason
        } else {
            status.last_error
        };
        return Err(Failure::Other(format!(
            "Ollama did not start: {}",
            one_line(&why)
        )));
    }
    if !wants_running && state == pb::ServerState::External {
        errln!(
            "omnipanel: this server was started outside OmniPanel, so OmniPanel does not stop it"
        );
    }
    Ok(())
}

/// What `omnipanel ollama start|stop|restart` asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Control {
    Start,
    Stop,
    Restart,
}

fn server_state(state: i32) -> pb::ServerState {
    pb::ServerState::try_from(state).unwrap_or(pb::ServerState::Unspecified)
}

/// A server state as the API names it, without the prefix: "RUNNING".
pub fn state_name(state: i32) -> &'static str {
    let name = server_state(state).as_str_name();
    name.strip_prefix("SERVER_STATE_").unwrap_or(name)
}

/// What a state means, for `omnipanel ollama status`.
fn state_meaning(state: i32) -> &'static str {
    match server_state(state) {
        pb::ServerState::NotInstalled => "no Ollama binary was found",
        pb::ServerState::Stopped => "installed, not running",
        pb::ServerState::Starting => "started by OmniPanel, not answering yet",
        pb::ServerState::Running => "managed by OmniPanel",
        pb::ServerState::Stopping => "being stopped by OmniPanel",
        pb::ServerState::Crashed => "exited or hung; a restart follows",
        pb::ServerState::Backoff => "waiting before the next start attempt",
        pb::ServerState::External => "started outside OmniPanel; used, never stopped",
        pb::ServerState::Unspecified => "unknown",
    }
}

/// "Ollama is RUNNING (version X, pid N) at ADDR".
pub fn status_line(status: &pb::ServerStatus) -> String {
    let mut details = Vec::new();
    if !status.version.is_empty() {
        details.push(format!("version {}", status.version));
    }
    if status.pid != 0 {
        details.push(format!("pid {}", status.pid));
    }
    let mut line = format!("Ollama is {}", state_name(status.state));
    if !details.is_empty() {
        line.push_str(&format!(" ({})", details.join(", ")));
    }
    if !status.address.is_empty() {
        line.push_str(&format!(" at {}", status.address));
    }
    line
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

/// `text` on one line: errors quoted from other programs (an HTTP body,
/// a process's output) may span many, which would break the layout.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.is_empty() {
        "-".to_owned()
    } else {
        joined
    }
}

fn print_server_status(status: &pb::ServerStatus) -> Result<(), Failure> {
    outln!("{}", status_line(status))?;
    outln!(
        "  state          {} ({})",
        state_name(status.state),
        state_meaning(status.state)
    )?;
    outln!("  version        {}", or_dash(&status.version))?;
    let pid = if status.pid == 0 {
        "-".to_owned()
    } else {
        status.pid.to_string()
    };
    outln!("  pid            {pid}")?;
    outln!("  address        {}", or_dash(&status.address))?;
    let uptime = if status.uptime_ms > 0 {
        duration_secs(u64::try_from(status.uptime_ms / 1000).unwrap_or_default())
    } else {
        "-".to_owned()
    };
    outln!("  uptime         {uptime}")?;
    outln!("  restarts       {}", status.restart_count)?;
    outln!("  last error     {}", one_line(&status.last_error))?;
    outln!("  reason         {}", one_line(&status.reason))?;
    outln!("  binary         {}", or_dash(&status.binary_path))?;
    let default = if status.default_model.is_empty() {
        "(none)"
    } else {
        &status.default_model
    };
    outln!("  default model  {default}")?;
    if server_state(status.state) == pb::ServerState::Backoff && status.next_attempt_unix_ms > 0 {
        outln!(
            "  next attempt   {}",
            relative_time(status.next_attempt_unix_ms)
        )?;
    }
    Ok(())
}

/// `omnipanel models ...`
pub async fn models(command: ModelsCommand, json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut models = client.models();
    match command {
        ModelsCommand::Ls { provider } => {
            let response = rpc(
                &client,
                models
                    .list_models(ListModelsRequest {
                        provider: provider.name(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            if response.models.is_empty() {
                outln!("no models installed; pull one with `omnipanel models pull llama3.2:1b`")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = response
                .models
                .iter()
                .map(|model| {
                    let mark = if model.is_default { '*' } else { ' ' };
                    vec![
                        format!("{mark} {}", model.name),
                        human_size(model.size_bytes),
                        relative_time(model.modified_unix_ms),
                    ]
                })
                .collect();
            print_table(&["  NAME", "SIZE", "MODIFIED"], &rows)?;
        }
        ModelsCommand::Show { name, provider } => {
            let response = rpc(
                &client,
                models
                    .show_model(ShowModelRequest {
                        model: name,
                        provider: provider.name(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            print_model(&response)?;
        }
        ModelsCommand::Pull {
            name,
            provider,
            insecure,
        } => return pull(&client, name, provider.name(), insecure, json).await,
        ModelsCommand::Rm { name, provider } => {
            let response = rpc(
                &client,
                models
                    .delete_model(DeleteModelRequest {
                        model: name.clone(),
                        provider: provider.name(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            outln!("deleted {name}")?;
        }
        ModelsCommand::Ps { provider } => {
            let response = rpc(
                &client,
                models
                    .list_running_models(ListRunningModelsRequest {
                        provider: provider.name(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            if response.models.is_empty() {
                outln!("no models loaded")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = response
                .models
                .iter()
                .map(|model| {
                    vec![
                        model.name.clone(),
                        human_size(model.size_bytes),
                        format!(
                            "{} ({}%)",
                            human_size(model.size_vram_bytes),
                            percent(model.size_vram_bytes, model.size_bytes)
                        ),
                        expiry(model.expires_unix_ms),
                    ]
                })
                .collect();
            print_table(&["NAME", "SIZE", "VRAM", "EXPIRES"], &rows)?;
        }
        ModelsCommand::Load {
            name,
            keep_alive,
            provider,
        } => {
            let response = rpc(
                &client,
                models
                    .load_model(LoadModelRequest {
                        model: name.clone(),
                        provider: provider.name(),
                        keep_alive: keep_alive.clone().unwrap_or_default(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let loaded = if response.model.is_empty() {
                name
            } else {
                response.model
            };
            match keep_alive.as_deref() {
                Some("-1") => outln!("loaded {loaded} (kept loaded until unloaded)"),
                Some(keep) => outln!("loaded {loaded} (kept loaded for {keep} when unused)"),
                None => outln!("loaded {loaded}"),
            }?;
        }
        ModelsCommand::Unload { name, provider } => {
            let response = rpc(
                &client,
                models
                    .unload_model(UnloadModelRequest {
                        model: name.clone(),
                        provider: provider.name(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            outln!("unloaded {name}")?;
        }
        ModelsCommand::Default { name, clear } => {
            let model = match (name, clear) {
                (Some(name), _) => name,
                (None, true) => String::new(),
                (None, false) => {
                    // There is no getter for the default alone; the server
                    // status carries it.
                    let status = rpc(
                        &client,
                        models.get_server_status(GetServerStatusRequest {}).await,
                    )?
                    .status
                    .unwrap_or_default();
                    if json {
                        return print_json(&pb::SetDefaultModelResponse {
                            model: status.default_model,
                        });
                    }
                    if status.default_model.is_empty() {
                        outln!("no default model; set one with `omnipanel models default NAME`")?;
                    } else {
                        outln!("{}", status.default_model)?;
                    }
                    return Ok(());
                }
            };
            let response = rpc(
                &client,
                models
                    .set_default_model(SetDefaultModelRequest { model })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            if response.model.is_empty() {
                outln!("default model cleared")?;
            } else {
                outln!("default model is now {}", response.model)?;
            }
        }
        ModelsCommand::Fit { name, provider } => {
            let response = rpc(
                &client,
                models
                    .check_fit(CheckFitRequest {
                        model: name.clone(),
                        provider: provider.name(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            print_fit(&name, &response)?;
        }
        ModelsCommand::Pulls => {
            let response = rpc(&client, models.list_pulls(ListPullsRequest {}).await)?;
            if json {
                return print_json(&response);
            }
            if response.pulls.is_empty() {
                outln!("no pulls")?;
                return Ok(());
            }
            let rows: Vec<Vec<String>> = response
                .pulls
                .iter()
                .map(|pull| {
                    let detail = if pull.error.is_empty() {
                        pull.status.clone()
                    } else {
                        pull.error.clone()
                    };
                    vec![
                        pull.model.clone(),
                        or_dash(&pull.provider).to_owned(),
                        pull_state_name(pull.state).to_owned(),
                        amount(pull.completed_bytes, pull.total_bytes),
                        relative_time(pull.started_unix_ms),
                        detail,
                    ]
                })
                .collect();
            print_table(
                &[
                    "MODEL", "PROVIDER", "STATE", "PROGRESS", "STARTED", "DETAIL",
                ],
                &rows,
            )?;
        }
        ModelsCommand::Cancel { name, provider } => {
            let response = rpc(
                &client,
                models
                    .cancel_pull(CancelPullRequest {
                        model: name.clone(),
                        provider: provider.name(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let progress = response.progress.unwrap_or_default();
            outln!(
                "cancelled the pull of {name} at {}",
                amount(progress.completed_bytes, progress.total_bytes)
            )?;
        }
        ModelsCommand::Providers => {
            let response = rpc(
                &client,
                models.list_providers(ListProvidersRequest {}).await,
            )?;
            if json {
                return print_json(&response);
            }
            let rows: Vec<Vec<String>> = response
                .providers
                .iter()
                .map(|provider| {
                    vec![
                        provider.name.clone(),
                        provider.url.clone(),
                        or_dash(&provider.version).to_owned(),
                        if provider.local { "local" } else { "remote" }.to_owned(),
                        if provider.has_token { "yes" } else { "no" }.to_owned(),
                    ]
                })
                .collect();
            print_table(&["NAME", "URL", "VERSION", "KIND", "TOKEN"], &rows)?;
        }
        ModelsCommand::Provider(ProviderCommand::Add { name, url, token }) => {
            let response = rpc(
                &client,
                models
                    .add_provider(AddProviderRequest {
                        name,
                        url,
                        token: token.unwrap_or_default(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let provider = response.provider.unwrap_or_default();
            let version = if provider.version.is_empty() {
                String::new()
            } else {
                format!(" (Ollama {})", provider.version)
            };
            outln!(
                "added provider {} at {}{version}",
                provider.name,
                provider.url
            )?;
        }
        ModelsCommand::Provider(ProviderCommand::Rm { name }) => {
            let response = rpc(
                &client,
                models
                    .remove_provider(RemoveProviderRequest { name: name.clone() })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            outln!("removed provider {name}")?;
        }
    }
    Ok(())
}

/// When a loaded model will be unloaded. Ollama writes "for ever" as a
/// date centuries away, which reads better as "never".
fn expiry(ms: i64) -> String {
    const CENTURY_MS: i64 = 100 * 365 * 86_400_000;
    if ms <= 0 {
        return "-".to_owned();
    }
    if ms - now_ms() > CENTURY_MS {
        return "never".to_owned();
    }
    relative_time(ms)
}

/// "300 MB of 637 MB (47%)", or just the bytes when the total is unknown.
fn amount(done: u64, total: u64) -> String {
    if total == 0 {
        return human_size(done);
    }
    format!(
        "{} of {} ({}%)",
        human_size(done),
        human_size(total),
        percent(done, total)
    )
}

fn print_model(response: &pb::ShowModelResponse) -> Result<(), Failure> {
    let model = response.model.clone().unwrap_or_default();
    outln!("{}", model.name)?;
    let mut facts: Vec<(&str, String)> = Vec::new();
    let mut fact = |key, value: String| {
        if !value.is_empty() {
            facts.push((key, value));
        }
    };
    fact("architecture", response.architecture.clone());
    let parameters = if model.parameter_size.is_empty() && response.parameter_count > 0 {
        response.parameter_count.to_string()
    } else {
        model.parameter_size.clone()
    };
    fact("parameters", parameters);
    if response.context_length > 0 {
        fact("context length", response.context_length.to_string());
    }
    fact("quantization", model.quantization_level.clone());
    fact("family", model.family.clone());
    fact("format", model.format.clone());
    if model.size_bytes > 0 {
        fact("size", human_size(model.size_bytes));
    }
    fact("digest", model.digest.clone());
    if model.modified_unix_ms > 0 {
        fact("modified", relative_time(model.modified_unix_ms));
    }
    fact("provider", model.provider.clone());
    fact("capabilities", response.capabilities.join(", "));
    if model.is_default {
        fact("default", "yes".to_owned());
    }
    for (key, value) in facts {
        outln!("  {key:<15} {value}")?;
    }
    section("System", &response.system, usize::MAX)?;
    section("Template", &response.template, usize::MAX)?;
    section("Parameters", &response.parameters, usize::MAX)?;
    // Licenses run to hundreds of lines; the start says which one it is.
    section("License", &response.license, 10)?;
    Ok(())
}

/// A titled, indented block of text; at most `max_lines` lines of it.
fn section(title: &str, text: &str, max_lines: usize) -> Result<(), Failure> {
    let text = text.trim_end();
    if text.trim().is_empty() {
        return Ok(());
    }
    outln!()?;
    outln!("{title}")?;
    let lines: Vec<&str> = text.lines().collect();
    for line in lines.iter().take(max_lines) {
        outln!("    {line}")?;
    }
    if lines.len() > max_lines {
        outln!(
            "    ... ({} more lines; --json shows all)",
            lines.len() - max_lines
        )?;
    }
    Ok(())
}

fn fit_verdict(verdict: i32) -> pb::FitVerdict {
    pb::FitVerdict::try_from(verdict).unwrap_or(pb::FitVerdict::Unspecified)
}

/// A fit verdict in words.
fn verdict_words(fit: &pb::CheckFitResponse) -> &'static str {
    match fit_verdict(fit.verdict) {
        pb::FitVerdict::FitsGpu => "fits in GPU memory",
        pb::FitVerdict::FitsCpuOnly if fit.gpu_present => {
            "runs on the CPU only (too large for free GPU memory)"
        }
        pb::FitVerdict::FitsCpuOnly => "runs on the CPU (no supported GPU)",
        pb::FitVerdict::NoDisk => "not enough free disk to download it",
        pb::FitVerdict::TooLarge => "too large: fits neither in GPU memory nor in RAM",
        pb::FitVerdict::Unspecified => "unknown",
    }
}

fn print_fit(name: &str, fit: &pb::CheckFitResponse) -> Result<(), Failure> {
    outln!("{name}: {}", verdict_words(fit))?;
    let installed = if fit.installed {
        "installed"
    } else {
        "download"
    };
    outln!(
        "  model size   {} ({installed})",
        human_size(fit.model_bytes)
    )?;
    outln!(
        "  needs        {} of memory to run",
        human_size(fit.required_bytes)
    )?;
    if fit.gpu_present {
        outln!(
            "  GPU memory   {} free of {}",
            human_size(fit.free_vram_bytes),
            human_size(fit.total_vram_bytes)
        )?;
    } else {
        outln!("  GPU memory   no supported GPU found")?;
    }
    outln!("  free RAM     {}", human_size(fit.free_ram_bytes))?;
    outln!("  free disk    {}", human_size(fit.free_disk_bytes))?;
    if !fit.explanation.is_empty() {
        outln!("{}", fit.explanation)?;
    }
    Ok(())
}

fn pull_state(state: i32) -> pb::PullState {
    pb::PullState::try_from(state).unwrap_or(pb::PullState::Unspecified)
}

/// A pull state in lower case: "running", "succeeded", ...
pub fn pull_state_name(state: i32) -> &'static str {
    match pull_state(state) {
        pb::PullState::Running => "running",
        pb::PullState::Retrying => "retrying",
        pb::PullState::Succeeded => "succeeded",
        pb::PullState::Failed => "failed",
        pb::PullState::Cancelled => "cancelled",
        pb::PullState::Unspecified => "unknown",
    }
}

/// One line about a pull, for events and for pulls not drawn as a bar:
/// "pull of tinyllama: pulling 6a0746a1ec1a, 12 MB of 637 MB (2%), 5 MB/s, 2m left".
pub fn describe_pull(progress: &pb::PullProgress) -> String {
    let mut line = format!("pull of {}", progress.model);
    if !progress.provider.is_empty() && progress.provider != "local" {
        line.push_str(&format!(" on {}", progress.provider));
    }
    match pull_state(progress.state) {
        pb::PullState::Succeeded => {
            line.push_str(&format!(
                " succeeded ({})",
                human_size(progress.total_bytes)
            ));
        }
        pb::PullState::Failed => line.push_str(&format!(" failed: {}", progress.error)),
        pb::PullState::Cancelled => line.push_str(" cancelled"),
        pb::PullState::Retrying => line.push_str(&format!(
            " retrying (attempt {}): {}",
            progress.attempt, progress.error
        )),
        pb::PullState::Running | pb::PullState::Unspecified => {
            line.push_str(": ");
            if !progress.status.is_empty() {
                line.push_str(&progress.status);
                line.push_str(", ");
            }
            line.push_str(&amount(progress.completed_bytes, progress.total_bytes));
            if progress.bytes_per_second > 0 {
                line.push_str(&format!(", {}/s", human_size(progress.bytes_per_second)));
            }
            if progress.eta_seconds >= 0 && progress.bytes_per_second > 0 {
                line.push_str(&format!(
                    ", {} left",
                    duration_secs(progress.eta_seconds.unsigned_abs())
                ));
            }
        }
    }
    line
}

/// How pull progress is shown: a bar on a terminal, else a line (or JSON
/// object) per update.
enum PullView {
    Bar {
        bar: ProgressBar,
        /// The agent's speed and ETA: it measures over the whole pull, which
        /// a client that attached midway could not.
        speed: Arc<AtomicU64>,
        eta: Arc<AtomicI64>,
    },
    Lines {
        last: String,
    },
    Json,
}

impl PullView {
    fn new(json: bool) -> Self {
        if json {
            return Self::Json;
        }
        if !std::io::stdout().is_terminal() {
            return Self::Lines {
                last: String::new(),
            };
        }
        let speed = Arc::new(AtomicU64::new(0));
        let eta = Arc::new(AtomicI64::new(-1));
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        let (speed_key, eta_key) = (Arc::clone(&speed), Arc::clone(&eta));
        // The template is a constant; should it ever fail to parse, the
        // default style still shows progress.
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{bar:20}] {done} / {total}  {speed}  {eta_left}  {wide_msg}",
        ) {
            bar.set_style(
                style
                    .progress_chars("=> ")
                    .with_key(
                        "done",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = w.write_str(&human_size(state.pos()));
                        },
                    )
                    .with_key(
                        "total",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let total = state.len().unwrap_or_default();
                            let text = if total == 0 {
                                "?".to_owned()
                            } else {
                                human_size(total)
                            };
                            let _ = w.write_str(&text);
                        },
                    )
                    .with_key(
                        "speed",
                        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let bps = speed_key.load(Ordering::Relaxed);
                            let _ = write!(w, "{}/s", human_size(bps));
                        },
                    )
                    .with_key(
                        "eta_left",
                        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let secs = eta_key.load(Ordering::Relaxed);
                            let text = if secs < 0 {
                                "ETA ?".to_owned()
                            } else {
                                format!("ETA {}", duration_secs(secs.unsigned_abs()))
                            };
                            let _ = w.write_str(&text);
                        },
                    ),
            );
        }
        bar.enable_steady_tick(Duration::from_millis(120));
        Self::Bar { bar, speed, eta }
    }

    /// Print a line to stderr without tearing the bar.
    fn warn(&self, text: &str) {
        match self {
            Self::Bar { bar, .. } => bar.suspend(|| errln!("omnipanel: warning: {text}")),
            _ => errln!("omnipanel: warning: {text}"),
        }
    }

    fn update(&mut self, response: &pb::PullModelResponse) -> Result<(), Failure> {
        let progress = response.progress.clone().unwrap_or_default();
        match self {
            Self::Json => print_json(response)?,
            Self::Lines { last } => {
                let line = describe_pull(&progress);
                if line != *last {
                    emit(&format!("{line}\n"))?;
                    *last = line;
                }
            }
            Self::Bar { bar, speed, eta } => {
                speed.store(progress.bytes_per_second, Ordering::Relaxed);
                eta.store(progress.eta_seconds, Ordering::Relaxed);
                let total = progress.total_bytes.max(progress.completed_bytes);
                // An unknown total stays unset: indicatif draws a zero
                // length as a full bar.
                if total > 0 {
                    bar.set_length(total);
                }
                bar.set_position(progress.completed_bytes);
                bar.set_message(bar_message(&progress));
            }
        }
        Ok(())
    }

    fn clear(&self) {
        if let Self::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

fn bar_message(progress: &pb::PullProgress) -> String {
    if pull_state(progress.state) == pb::PullState::Retrying {
        return format!(
            "retrying (attempt {}): {}",
            progress.attempt, progress.error
        );
    }
    let mut message = progress.status.clone();
    if !progress.current_layer.is_empty() && !message.contains(&progress.current_layer) {
        message.push_str(&format!(" {}", progress.current_layer));
    }
    if progress.layers_total > 1 {
        let current = (progress.layers_done + 1).min(progress.layers_total);
        message.push_str(&format!(" (layer {current}/{})", progress.layers_total));
    }
    message
}

/// How following a pull ended.
enum PullEnd {
    /// The stream ended; the last progress seen, if any.
    Finished(Option<pb::PullProgress>),
    /// Ctrl-C: the pull goes on in the agent.
    Detached,
}

/// What Ctrl-C during a pull prints: the pull goes on, and the commands
/// that reach it again, which need the same provider to find it.
fn detach_message(name: &str, provider: &str) -> String {
    let provider = if provider.is_empty() {
        String::new()
    } else {
        format!(" --provider {provider}")
    };
    format!(
        "detached: the pull of {name} continues in the agent; `omnipanel models pull {name}{provider}` shows it again, `omnipanel models cancel {name}{provider}` stops it"
    )
}

async fn pull(
    client: &Client,
    name: String,
    provider: String,
    insecure: bool,
    json: bool,
) -> Result<(), Failure> {
    // Listen for Ctrl-C before anything else, so an early one detaches
    // cleanly instead of killing the process mid-draw.
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|err| Failure::Other(format!("cannot watch for Ctrl-C: {err}")))?;
    let request = PullModelRequest {
        model: name.clone(),
        provider: provider.clone(),
        insecure,
    };
    let mut view = PullView::new(json);
    let end = async {
        let mut models = client.models();
        let started = tokio::select! {
            response = models.pull_model(request) => response,
            // The agent may already have started the pull.
            _ = interrupt.recv() => return Ok::<_, Failure>(PullEnd::Detached),
        };
        let mut stream = rpc(client, started)?;
        let mut last = None;
        loop {
            let message = tokio::select! {
                message = stream.message() => message.map_err(|status| Failure::Client(client.error(status)))?,
                _ = interrupt.recv() => return Ok(PullEnd::Detached),
            };
            let Some(message) = message else {
                return Ok(PullEnd::Finished(last));
            };
            if let Some(fit) = &message.fit {
                let verdict = fit_verdict(fit.verdict);
                if matches!(verdict, pb::FitVerdict::NoDisk | pb::FitVerdict::TooLarge) {
                    // The pull has already started; warn and go on, the user
                    // can cancel.
                    let text = if fit.explanation.is_empty() {
                        format!("{name}: {}", verdict_words(fit))
                    } else {
                        fit.explanation.clone()
                    };
                    view.warn(&text);
                }
            }
            view.update(&message)?;
            last = message.progress;
        }
    }
    .await;
    view.clear();
    match end? {
        PullEnd::Detached => {
            let text = detach_message(&name, &provider);
            // Keep stdout pure JSON lines under --json.
            if json {
                errln!("{text}");
            } else {
                outln!("{text}")?;
            }
            Ok(())
        }
        PullEnd::Finished(last) => {
            let progress = last.unwrap_or_default();
            match pull_state(progress.state) {
                pb::PullState::Succeeded => {
                    if !json {
                        let size = progress.total_bytes.max(progress.completed_bytes);
                        if size > 0 {
                            outln!("pulled {name} ({})", human_size(size))?;
                        } else {
                            outln!("pulled {name}")?;
                        }
                    }
                    Ok(())
                }
                pb::PullState::Failed => {
                    let why = if progress.error.is_empty() {
                        "no reason given".to_owned()
                    } else {
                        progress.error
                    };
                    Err(Failure::Other(format!("pull of {name} failed: {why}")))
                }
                pb::PullState::Cancelled => {
                    Err(Failure::Other(format!("pull of {name} was cancelled")))
                }
                // The agent ends streams early only when it shuts down.
                _ => Err(Failure::Other(format!(
                    "the agent stopped reporting on the pull of {name} before it finished; `omnipanel models pulls` shows its state"
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detach_message_names_the_provider_of_a_remote_pull() {
        let local = detach_message("llama3.2:1b", "");
        assert!(
            local.contains("`omnipanel models pull llama3.2:1b`")
                && local.contains("`omnipanel models cancel llama3.2:1b`"),
            "{local}"
        );
        let remote = detach_message("llama3.2:1b", "gpu-box");
        assert!(
            remote.contains("`omnipanel models pull llama3.2:1b --provider gpu-box`")
                && remote.contains("`omnipanel models cancel llama3.2:1b --provider gpu-box`"),
            "{remote}"
        );
    }
}
