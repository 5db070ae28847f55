//! `omnipanel models ...`: list, show, pull (in `pull`), load, unload,
//! delete and fit-check models, the default model (also a project's) and
//! the providers (in `providers`, also `omnipanel providers`); `omnipanel
//! embed`; the arguments and the handlers, all through the agent's
//! ModelService (and ProjectService for a project's model).

mod providers;
mod pull;

pub use providers::{ProviderCommand, providers};

use clap::Subcommand;
use omnipanel_client::{Client, display};
use omnipanel_proto::v1::{
    self as pb, CancelPullRequest, CheckFitRequest, DeleteModelRequest, GetServerStatusRequest,
    ListModelsRequest, ListProvidersRequest, ListPullsRequest, ListRunningModelsRequest,
    LoadModelRequest, SetDefaultModelRequest, ShowModelRequest, UnloadModelRequest,
};

use crate::{
    Failure,
    args::ProviderArg,
    output::{Output, outln},
    project_ref,
};

/// `models default [MODEL|--clear] --project P`: show or set the model a
/// project prefers. `provider/model` names another provider's model.
async fn project_default(
    client: &Client,
    project: &str,
    name: Option<String>,
    clear: bool,
    out: Output,
) -> Result<(), Failure> {
    let chosen = project_ref::choose_project(client, Some(project)).await?;
    let project = if name.is_none() && !clear {
        chosen
    } else {
        let model = name.unwrap_or_default();
        // A first segment naming a provider picks that provider; the agent
        // resolves anything else across providers.
        let known = client
            .call(client.models().list_providers(ListProvidersRequest {}))
            .await?
            .providers;
        let (provider, model) = match model.split_once('/') {
            Some((first, rest)) if known.iter().any(|p| p.name == first && !p.local) => {
                (first.to_owned(), rest.to_owned())
            }
            _ => (String::new(), model),
        };
        client
            .call(
                client
                    .projects()
                    .set_project_model(pb::SetProjectModelRequest {
                        project: chosen.id.clone(),
                        model,
                        provider,
                    }),
            )
            .await?
            .project
            .unwrap_or_default()
    };
    if out.is_json() {
        return out.json(&project);
    }
    match display::preferred_model(&project) {
        Some(model) => outln!("{} uses {model}", project.name)?,
        None => outln!(
            "{} has no preferred model: it uses the default model (set one with `omnipanel models default MODEL --project {}`)",
            project.name,
            project.path
        )?,
    }
    Ok(())
}

/// `omnipanel models ...`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List installed models; `*` marks the default.
    #[command(visible_alias = "list")]
    Ls {
        #[command(flatten)]
        provider: ProviderArg,
        /// The models of every provider, with a PROVIDER column.
        #[arg(long, conflicts_with = "provider")]
        all: bool,
    },
    /// Show a model's details, template, parameters and license.
    Show {
        /// Model name, e.g. llama3.2:1b.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Download a model with a progress bar. Ctrl-C detaches: the pull
    /// continues in the agent.
    Pull {
        /// Model name, e.g. llama3.2:1b.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
        /// Allow insecure connections to the registry.
        #[arg(long)]
        insecure: bool,
    },
    /// Delete an installed model.
    #[command(visible_alias = "delete")]
    Rm {
        /// Model name.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// List the models loaded in memory.
    Ps {
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Load a model into memory ahead of use.
    Load {
        /// Model name.
        name: String,
        /// How long to keep it loaded, e.g. 10m, 1h, or -1 for ever
        /// (default: Ollama's).
        #[arg(long, allow_hyphen_values = true)]
        keep_alive: Option<String>,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Free the memory a loaded model holds.
    Unload {
        /// Model name.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Show or set the model chat uses when none is named; with
    /// --project, the model a project prefers (used by requests that name
    /// the project).
    Default {
        /// New default model (`provider/model` for another provider's);
        /// without it the current one is printed.
        #[arg(conflicts_with = "clear")]
        name: Option<String>,
        /// Clear the default.
        #[arg(long)]
        clear: bool,
        /// The project's preferred model instead of the agent's default
        /// (PATH or id; without a value, the project containing the current
        /// directory).
        #[arg(long, num_args = 0..=1, default_missing_value = ".")]
        project: Option<String>,
    },
    /// Check whether a model fits this machine's GPU memory, RAM and disk.
    Fit {
        /// Model name (installed, or looked up in the registry).
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// List running and recently finished pulls.
    Pulls,
    /// Stop a running pull.
    Cancel {
        /// Model name.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// List the model servers OmniPanel knows (as `omnipanel providers
    /// list`).
    Providers,
    /// Add or remove a model server (as `omnipanel providers`).
    #[command(subcommand)]
    Provider(ProviderCommand),
}

/// `omnipanel embed`
#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    /// Embedding model (`provider/model` for another provider's; default:
    /// the project's preferred model, else the default model).
    #[arg(long)]
    pub model: Option<String>,
    #[command(flatten)]
    pub provider: ProviderArg,
    /// The project whose preferred model to use (PATH or id).
    #[arg(long)]
    pub project: Option<String>,
    /// The texts to embed, one vector each.
    #[arg(required = true)]
    pub text: Vec<String>,
}

/// `omnipanel embed [--model M] TEXT...`: one line per text with its
/// vector's dimensions, or the vectors themselves with --json.
pub async fn embed(args: EmbedArgs, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let project = match &args.project {
        Some(arg) => project_ref::project_reference(arg)?,
        None => String::new(),
    };
    let response = client
        .call(client.models().embed(pb::EmbedRequest {
            model: args.model.unwrap_or_default(),
            provider: args.provider.name(),
            input: args.text.clone(),
            project,
            ..Default::default()
        }))
        .await?;
    if out.is_json() {
        return out.json(&response);
    }
    outln!("model {}", response.model)?;
    for (text, embedding) in args.text.iter().zip(&response.embeddings) {
        outln!(
            "{} dimensions  {}",
            embedding.values.len(),
            display::one_line(text)
        )?;
    }
    Ok(())
}

/// `omnipanel models ...`
pub async fn models(command: ModelsCommand, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut models = client.models();
    match command {
        ModelsCommand::Ls { provider, all } => {
            let response = client
                .call(models.list_models(ListModelsRequest {
                    provider: provider.name(),
                    all_providers: all,
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
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
                    let mut row = vec![format!("{mark} {}", model.name)];
                    if all {
                        row.push(display::or_dash(&model.provider).to_owned());
                    }
                    row.push(if model.size_bytes == 0 {
                        "-".to_owned()
                    } else {
                        display::bytes(model.size_bytes)
                    });
                    row.push(if model.modified_unix_ms == 0 {
                        "-".to_owned()
                    } else {
                        display::relative_time(model.modified_unix_ms)
                    });
                    row
                })
                .collect();
            if all {
                out.table(&["  NAME", "PROVIDER", "SIZE", "MODIFIED"], &rows)?;
            } else {
                out.table(&["  NAME", "SIZE", "MODIFIED"], &rows)?;
            }
        }
        ModelsCommand::Show { name, provider } => {
            let response = client
                .call(models.show_model(ShowModelRequest {
                    model: name,
                    provider: provider.name(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            print_model(&response)?;
        }
        ModelsCommand::Pull {
            name,
            provider,
            insecure,
        } => return pull::pull(&client, name, provider.name(), insecure, out).await,
        ModelsCommand::Rm { name, provider } => {
            let response = client
                .call(models.delete_model(DeleteModelRequest {
                    model: name.clone(),
                    provider: provider.name(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            outln!("deleted {name}")?;
        }
        ModelsCommand::Ps { provider } => {
            let response = client
                .call(models.list_running_models(ListRunningModelsRequest {
                    provider: provider.name(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
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
                        display::bytes(model.size_bytes),
                        format!(
                            "{} ({}%)",
                            display::bytes(model.size_vram_bytes),
                            display::percent(model.size_vram_bytes, model.size_bytes)
                        ),
                        expiry(model.expires_unix_ms),
                    ]
                })
                .collect();
            out.table(&["NAME", "SIZE", "VRAM", "EXPIRES"], &rows)?;
        }
        ModelsCommand::Load {
            name,
            keep_alive,
            provider,
        } => {
            let response = client
                .call(models.load_model(LoadModelRequest {
                    model: name.clone(),
                    provider: provider.name(),
                    keep_alive: keep_alive.clone().unwrap_or_default(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
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
            let response = client
                .call(models.unload_model(UnloadModelRequest {
                    model: name.clone(),
                    provider: provider.name(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            outln!("unloaded {name}")?;
        }
        ModelsCommand::Default {
            name,
            clear,
            project: Some(project),
        } => return project_default(&client, &project, name, clear, out).await,
        ModelsCommand::Default {
            name,
            clear,
            project: None,
        } => {
            let model = match (name, clear) {
                (Some(name), _) => name,
                (None, true) => String::new(),
                (None, false) => {
                    // There is no getter for the default alone; the server
                    // status carries it.
                    let status = client
                        .call(models.get_server_status(GetServerStatusRequest {}))
                        .await?
                        .status
                        .unwrap_or_default();
                    if out.is_json() {
                        return out.json(&pb::SetDefaultModelResponse {
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
            let response = client
                .call(models.set_default_model(SetDefaultModelRequest { model }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            if response.model.is_empty() {
                outln!("default model cleared")?;
            } else {
                outln!("default model is now {}", response.model)?;
            }
        }
        ModelsCommand::Fit { name, provider } => {
            let response = client
                .call(models.check_fit(CheckFitRequest {
                    model: name.clone(),
                    provider: provider.name(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            print_fit(&name, &response)?;
        }
        ModelsCommand::Pulls => {
            let response = client.call(models.list_pulls(ListPullsRequest {})).await?;
            if out.is_json() {
                return out.json(&response);
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
                        display::or_dash(&pull.provider).to_owned(),
                        display::pull_state_name(pull.state).to_owned(),
                        display::amount(pull.completed_bytes, pull.total_bytes),
                        display::relative_time(pull.started_unix_ms),
                        detail,
                    ]
                })
                .collect();
            out.table(
                &[
                    "MODEL", "PROVIDER", "STATE", "PROGRESS", "STARTED", "DETAIL",
                ],
                &rows,
            )?;
        }
        ModelsCommand::Cancel { name, provider } => {
            let response = client
                .call(models.cancel_pull(CancelPullRequest {
                    model: name.clone(),
                    provider: provider.name(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            let progress = response.progress.unwrap_or_default();
            outln!(
                "cancelled the pull of {name} at {}",
                display::amount(progress.completed_bytes, progress.total_bytes)
            )?;
        }
        ModelsCommand::Providers => providers::list(&client, &out).await?,
        ModelsCommand::Provider(command) => return providers::run(&client, command, out).await,
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
    if ms - display::now_ms() > CENTURY_MS {
        return "never".to_owned();
    }
    display::relative_time(ms)
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
        fact("size", display::bytes(model.size_bytes));
    }
    fact("digest", model.digest.clone());
    if model.modified_unix_ms > 0 {
        fact("modified", display::relative_time(model.modified_unix_ms));
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

pub(super) fn fit_verdict(verdict: i32) -> pb::FitVerdict {
    pb::FitVerdict::try_from(verdict).unwrap_or(pb::FitVerdict::Unspecified)
}

/// A fit verdict in words.
pub(super) fn verdict_words(fit: &pb::CheckFitResponse) -> &'static str {
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
        display::bytes(fit.model_bytes)
    )?;
    outln!(
        "  needs        {} of memory to run",
        display::bytes(fit.required_bytes)
    )?;
    if fit.gpu_present {
        outln!(
            "  GPU memory   {} free of {}",
            display::bytes(fit.free_vram_bytes),
            display::bytes(fit.total_vram_bytes)
        )?;
    } else {
        outln!("  GPU memory   no supported GPU found")?;
    }
    outln!("  free RAM     {}", display::bytes(fit.free_ram_bytes))?;
    outln!("  free disk    {}", display::bytes(fit.free_disk_bytes))?;
    if !fit.explanation.is_empty() {
        outln!("{}", fit.explanation)?;
    }
    Ok(())
}
