//! The top of the command-line grammar of `omnipanel` (clap derive): the
//! global flags and the list of commands. Each command group's own
//! arguments live beside its handler in `commands/`.

use clap::{Parser, Subcommand};

use crate::commands::{
    agent::{AgentCommand, EventsArgs, LogsArgs, PanelArgs, SettingsCommand, TokenCommand},
    alerts::AlertsCommand,
    audit::AuditArgs,
    chat::ChatArgs,
    clients::ClientsCommand,
    confirmations::ConfirmationsCommand,
    conversations::ConversationsCommand,
    files::FilesArgs,
    git::GitArgs,
    lifecycle::{AutostartAction, UpdateCommand},
    mcp::McpArgs,
    models::{EmbedArgs, ModelsCommand, ProviderCommand},
    ollama::OllamaCommand,
    projects::ProjectsCommand,
    system::SysArgs,
};

/// Command-line client for the OmniPanel agent.
///
/// Exit codes: 0 success, 1 failure, 2 usage error, 3 the agent is not
/// running, 4 an access request was denied, 5 an access request expired
/// unanswered, 141 the reader of the output went away (`| head`).
#[derive(Debug, Parser)]
#[command(name = "omnipanel", version, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON (proto3 JSON mapping) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the agent's version, process and locations.
    Status,
    /// Show events from the agent's event bus.
    Events(EventsArgs),
    /// Show the agent's log (or another log source).
    Logs(LogsArgs),
    /// Read or change settings (config.toml).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Manage bearer tokens for the TCP listener.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Control the agent process.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// List crash reports written by the agent.
    Crashes,
    /// Supervise the local Ollama server.
    #[command(subcommand)]
    Ollama(OllamaCommand),
    /// Manage models: list, pull, load, delete, fit checks, providers.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// The model servers OmniPanel knows (Ollama and OpenAI-compatible):
    /// list them with their health, add one, remove one.
    #[command(subcommand)]
    Providers(ProviderCommand),
    /// Embed texts with an embedding model: their vectors' dimensions, or
    /// the vectors with --json.
    Embed(EmbedArgs),
    /// Chat with a model interactively (one message per line when stdin is
    /// not a terminal).
    Chat(ChatArgs),
    /// The chat conversations the agent keeps per project: list them,
    /// show one, remove one (`chat --conversation` continues one).
    #[command(subcommand)]
    Conversations(ConversationsCommand),
    /// Manage projects: the folders whose files the agent serves.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Work with the files of an open project (by default the one
    /// containing the current directory).
    Files(FilesArgs),
    /// Git on an open project (by default the one containing the current
    /// directory).
    Git(GitArgs),
    /// Show what the machine is doing: CPU, memory, disks, network, GPUs,
    /// the agent and Ollama (`sys top` for a live view).
    Sys(SysArgs),
    /// Alerts raised when the machine crosses a threshold, and the
    /// thresholds themselves.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Clients of the agent: ask for access, answer access requests, list
    /// and revoke the admitted clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Answer the destructive acts clients asked to do (delete a model,
    /// push): list, allow or deny them.
    #[command(subcommand)]
    Confirmations(ConfirmationsCommand),
    /// The activity log: who called what, on what, and the outcome
    /// (owner only).
    Audit(AuditArgs),
    /// Serve the Model Context Protocol on stdin/stdout, so AI coding
    /// agents (Claude Code, Codex, Continue, Cursor) reach this project's
    /// files, Git, local models and the machine's state under a grant the
    /// user approves; destructive tools wait for the user's confirmation.
    Mcp(McpArgs),
    /// Open the popup panel (or bring the open one to the front).
    Panel(PanelArgs),
    /// Start OmniPanel at login (the tray, or the agent without one).
    Autostart {
        /// on, off, or status (the default).
        #[arg(value_enum, default_value_t = AutostartAction::Status)]
        action: AutostartAction,
    },
    /// Check for, download, install or roll back OmniPanel updates.
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Write an archive to attach to a bug report: versions, OS, redacted
    /// settings, recent logs and crash reports.
    Bugreport {
        /// Where to write the archive (default: the current directory).
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (omnipanel.1 and one per subcommand) into a folder;
    /// used when packaging.
    #[command(hide = true)]
    Manpages {
        /// Where to write them.
        dir: std::path::PathBuf,
    },
}
