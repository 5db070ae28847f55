//! `omnipanel-agent`: runs the agent in the foreground (the default), or
//! checks the configuration and prints where files live.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use omnipanel_agent::{
    config,
    daemon::{self, EXIT_CONFIG, RunOptions},
    paths::AgentPaths,
};

/// The OmniPanel agent: supervises Ollama, knows your projects and serves
/// the OmniPanel API on a local socket. With no command it runs in the
/// foreground.
#[derive(Debug, Parser)]
#[command(name = "omnipanel-agent", version)]
struct Cli {
    /// Socket to listen on (default: $XDG_RUNTIME_DIR/omnipanel/agent.sock).
    #[arg(long, env = "OMNIPANEL_SOCKET", global = true)]
    socket: Option<PathBuf>,
    /// Configuration file (default: $XDG_CONFIG_HOME/omnipanel/config.toml).
    #[arg(long, env = "OMNIPANEL_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Do not copy log lines to stderr (they always go to the log file).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent in the foreground (the default).
    Run,
    /// Validate config.toml and print the effective settings.
    CheckConfig,
    /// Print where the agent keeps its socket, settings, state and logs.
    Paths,
    /// Panic on purpose to test crash reporting.
    #[command(hide = true)]
    CrashTest,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut paths = AgentPaths::from_env();
    if let Some(socket) = cli.socket {
        paths.socket = socket;
    }
    if let Some(config) = cli.config {
        paths.config_file = config;
    }
    match cli.command.unwrap_or(Command::Run) {
        Command::Run => daemon::run(
            &paths,
            &RunOptions {
                log_to_stderr: !cli.quiet,
            },
        ),
        Command::CheckConfig => check_config(&paths),
        Command::Paths => {
            println!("socket   {}", paths.socket.display());
            println!("config   {}", paths.config_file.display());
            println!("state    {}", paths.state_db().display());
            println!("logs     {}", paths.log_dir.display());
            println!("crashes  {}", paths.crash_dir.display());
            ExitCode::SUCCESS
        }
        Command::CrashTest => {
            omnipanel_agent::crash::install_hook(paths.crash_dir.clone());
            panic!("crash test requested with `omnipanel-agent crash-test`");
        }
    }
}

fn check_config(paths: &AgentPaths) -> ExitCode {
    match config::load(&paths.config_file) {
        Ok(settings) => {
            let text = std::fs::read_to_string(&paths.config_file).unwrap_or_default();
            println!(
                "# {} is valid; effective settings:",
                paths.config_file.display()
            );
            for view in config::describe(&settings, &text) {
                let value = if view.value.is_empty() {
                    "(unset)"
                } else {
                    view.value.as_str()
                };
                println!("{} = {value}", view.spec.key);
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("omnipanel-agent: invalid configuration: {err}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
