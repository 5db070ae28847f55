//! The agent's executable is two programs: the agent, and the `omnipanel`
//! command-line client (`omnipanel-cli`). They share tokio, tonic, prost
//! and the API types, so packages install one file and link `omnipanel`
//! to it. [`main`] chooses by the name the executable was started under;
//! the rest of this file is the agent's own command line.

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use crate::{
    daemon::{self, EXIT_CONFIG, RunOptions},
    platform::service,
};
use clap::{Parser, Subcommand};
use omnipanel_core::config;
use omnipanel_paths::AgentPaths;

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
    /// Run the agent as a background service (systemd on Linux).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Panic on purpose to test crash reporting.
    #[command(hide = true)]
    CrashTest,
}

#[derive(Debug, Subcommand)]
enum ServiceCommand {
    /// Write, enable and start the service (idempotent).
    Install(ServiceScope),
    /// Stop, disable and remove the service (idempotent).
    Uninstall(ServiceScope),
    /// Show whether the service is installed, enabled and running.
    Status(ServiceScope),
    /// Print the user unit (LaunchAgent plist on macOS) without installing
    /// it; packages ship this file.
    PrintUnit {
        /// The agent binary the unit starts (default: this one).
        #[arg(long, value_name = "PATH")]
        exec: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct ServiceScope {
    /// A system unit (needs root) instead of a user unit.
    #[arg(long, requires = "user_name")]
    system: bool,
    /// The user a system unit runs as.
    #[arg(long, value_name = "USER")]
    user_name: Option<String>,
}

/// The programs the executable holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// The agent (`omnipanel-agent`, and any other name: updates and
    /// service managers start it under names of their own).
    Agent,
    /// The command-line client, started as `omnipanel`.
    Cli,
}

/// The program an executable started as `argv0` runs: the CLI for a file
/// named `omnipanel` (`omnipanel.exe`), the agent for anything else.
pub fn program_named(argv0: Option<&OsStr>) -> Program {
    let stem = argv0.map(Path::new).and_then(Path::file_stem);
    if stem == Some(OsStr::new("omnipanel")) {
        Program::Cli
    } else {
        Program::Agent
    }
}

/// Run the program this executable was started as; returns its exit code.
pub fn main() -> ExitCode {
    match program_named(std::env::args_os().next().as_deref()) {
        Program::Agent => agent_main(),
        Program::Cli => omnipanel_cli::main(),
    }
}

fn agent_main() -> ExitCode {
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
        Command::Service(command) => service_command(command),
        Command::CrashTest => {
            omnipanel_core::crash::install_hook(paths.crash_dir.clone());
            panic!("crash test requested with `omnipanel-agent crash-test`");
        }
    }
}

fn service_command(command: ServiceCommand) -> ExitCode {
    let scope = |scope: ServiceScope| service::ScopeArgs {
        system: scope.system,
        user_name: scope.user_name,
    };
    let request = match command {
        ServiceCommand::Install(s) => service::Request::Install(scope(s)),
        ServiceCommand::Uninstall(s) => service::Request::Uninstall(scope(s)),
        ServiceCommand::Status(s) => service::Request::Status(scope(s)),
        ServiceCommand::PrintUnit { exec } => service::Request::PrintUnit { exec },
    };
    match service::run(request) {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("omnipanel-agent: {err}");
            ExitCode::FAILURE
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_chooses_the_program() {
        let named = |name: &str| program_named(Some(OsStr::new(name)));
        assert_eq!(named("omnipanel"), Program::Cli);
        assert_eq!(named("/usr/bin/omnipanel"), Program::Cli);
        assert_eq!(named("omnipanel.exe"), Program::Cli);
        assert_eq!(named("omnipanel-agent"), Program::Agent);
        assert_eq!(named("/home/me/.local/bin/omnipanel-agent"), Program::Agent);
        // An update's staged copy and a renamed file stay the agent.
        assert_eq!(named(".omnipanel-agent.omnipanel-new"), Program::Agent);
        assert_eq!(named("omnipanel-old"), Program::Agent);
        assert_eq!(program_named(None), Program::Agent);
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
