//! The command-line grammar of `omnipanel` (clap derive). Kept apart from
//! the code that runs commands so completions and man pages can be generated
//! from it alone.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Command-line client for the OmniPanel agent.
///
/// Exit codes: 0 success, 1 failure, 2 usage error, 3 the agent is not
/// running.
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
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

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

/// Token scopes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// Read-only calls.
    Read,
    /// Read and change state.
    Write,
    /// Everything, including shutdown, settings and tokens.
    Admin,
}

/// `omnipanel token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        /// Access level.
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// A unique label, e.g. "vscode-laptop".
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (never their secrets).
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
