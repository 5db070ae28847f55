//! `omnipanel`: the command-line client of the OmniPanel agent. Parses the
//! command line, connects through omnipanel-client, runs the command and
//! maps failures to exit codes (1 failure, 2 usage, 3 agent not running).

mod agent_commands;
mod chat;
mod cli;
mod file_commands;
mod git_commands;
mod lifecycle_commands;
mod model_commands;
mod project_commands;
mod render;
mod system_commands;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use omnipanel_client::ClientError;

use crate::cli::{Cli, Command};

/// A failed command, with what to tell the user.
#[derive(Debug)]
pub enum Failure {
    /// Talking to the agent failed.
    Client(ClientError),
    /// Anything else (bad local input, I/O).
    Other(String),
    /// Whoever read stdout went away (`omnipanel events | head`); there is
    /// nobody to tell.
    OutputClosed,
    /// Exit with this code without a message: the outcome is an answer,
    /// not an error (`files grep` found nothing, like grep's 1).
    Exit(u8),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(err) => err.fmt(f),
            Self::Other(message) => f.write_str(message),
            Self::OutputClosed => f.write_str("stdout was closed"),
            Self::Exit(code) => write!(f, "exit code {code}"),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        Self::Client(err)
    }
}

/// Exit code when the agent is not running.
const EXIT_AGENT_NOT_RUNNING: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(
            *shell,
            &mut Cli::command(),
            "omnipanel",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    if let Command::Manpages { dir } = &cli.command {
        return match write_manpages(dir) {
            Ok(count) => {
                println!("wrote {count} man pages to {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!(
                    "omnipanel: cannot write man pages to {}: {err}",
                    dir.display()
                );
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("omnipanel: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(agent_commands::run(cli));
    // Reading stdin (chat) blocks a runtime thread that cannot be
    // cancelled; waiting for it would hang the exit until the next line.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Client(err)) => {
            eprintln!("omnipanel: {err}");
            match err {
                ClientError::AgentNotRunning { .. } => ExitCode::from(EXIT_AGENT_NOT_RUNNING),
                _ => ExitCode::FAILURE,
            }
        }
        Err(Failure::Other(message)) => {
            eprintln!("omnipanel: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::OutputClosed) => ExitCode::FAILURE,
        Err(Failure::Exit(code)) => ExitCode::from(code),
    }
}

/// `omnipanel.1` plus `omnipanel-SUB.1` for every visible subcommand, as
/// `man omnipanel-git` finds them.
fn write_manpages(dir: &std::path::Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let command = Cli::command();
    let mut written = 0;
    let mut render =
        |command: clap::Command, name: String, invoked: String| -> std::io::Result<()> {
            let mut page = Vec::new();
            clap_mangen::Man::new(command.bin_name(invoked))
                .title(name.to_uppercase())
                .render(&mut page)?;
            std::fs::write(dir.join(format!("{name}.1")), page)?;
            written += 1;
            Ok(())
        };
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("omnipanel-{}", sub.get_name());
        render(sub.clone(), name, format!("omnipanel {}", sub.get_name()))?;
    }
    render(command, "omnipanel".to_owned(), "omnipanel".to_owned())?;
    Ok(written)
}
