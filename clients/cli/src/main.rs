//! `omnipanel`: the command-line client of the OmniPanel agent. Parses the
//! command line, connects through omnipanel-client, runs the command and
//! maps failures to exit codes (1 failure, 2 usage, 3 agent not running,
//! 141 stdout's reader went away).

// Output goes through `output` (Output, outln!, emit, ...), which returns
// write errors where print! and eprintln! would panic; see output.rs.
#![deny(clippy::print_stdout, clippy::print_stderr)]

mod args;
mod cli;
mod commands;
mod log_tail;
mod output;
mod project_ref;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use omnipanel_client::ClientError;

use crate::{
    cli::{Cli, Command},
    commands::{
        agent, alerts, audit, chat, files, git, lifecycle, models, ollama, projects, system,
    },
    output::{Output, emit_bytes, errln, outln},
};

/// A failed command, with what to tell the user.
#[derive(Debug)]
pub enum Failure {
    /// Talking to the agent failed.
    Client(ClientError),
    /// Anything else (bad local input, I/O).
    Other(String),
    /// Whoever read stdout went away (`omnipanel events | head`); there is
    /// nobody to tell, so the exit is quiet, with [`EXIT_OUTPUT_CLOSED`].
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

/// Exit code when whoever read stdout went away (`omnipanel logs | head`):
/// 128 + SIGPIPE, what a shell reports for coreutils or git killed by the
/// signal, so `set -o pipefail` sees the same as with them. Not 0: the
/// output was cut short. Not 1: nothing failed, and no message is printed.
/// Windows has no SIGPIPE, but its broken pipe (ERROR_NO_DATA) is also an
/// `ErrorKind::BrokenPipe`, so it would get the same quiet 141.
const EXIT_OUTPUT_CLOSED: u8 = 141;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Completions { shell } => completions(*shell),
        Command::Manpages { dir } => write_manpages(dir)
            .map_err(|err| {
                Failure::Other(format!(
                    "cannot write man pages to {}: {err}",
                    dir.display()
                ))
            })
            .and_then(|count| outln!("wrote {count} man pages to {}", dir.display())),
        _ => run(cli),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Client(err)) => {
            errln!("omnipanel: {err}");
            match err {
                ClientError::AgentNotRunning { .. } => ExitCode::from(EXIT_AGENT_NOT_RUNNING),
                _ => ExitCode::FAILURE,
            }
        }
        Err(Failure::Other(message)) => {
            errln!("omnipanel: {message}");
            ExitCode::FAILURE
        }
        Err(Failure::OutputClosed) => ExitCode::from(EXIT_OUTPUT_CLOSED),
        Err(Failure::Exit(code)) => ExitCode::from(code),
    }
}

/// Commands that need the agent, on a tokio runtime.
fn run(cli: Cli) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Other(format!("cannot start: {err}")))?;
    let result = runtime.block_on(dispatch(cli));
    // Reading stdin (chat) blocks a runtime thread that cannot be
    // cancelled; waiting for it would hang the exit until the next line.
    runtime.shutdown_background();
    result
}

/// Run a parsed command that needs the agent.
async fn dispatch(cli: Cli) -> Result<(), Failure> {
    let out = Output::new(cli.json);
    match cli.command {
        Command::Status => agent::status(out).await,
        Command::Events(args) => agent::events(args, out).await,
        Command::Logs(args) => agent::logs(args, out).await,
        Command::Settings(command) => agent::settings(command, out).await,
        Command::Token(command) => agent::token(command, out).await,
        Command::Agent(command) => agent::agent(command, out).await,
        Command::Crashes => agent::crashes(out).await,
        Command::Panel(args) => agent::panel(&args),
        Command::Ollama(command) => ollama::ollama(command, out).await,
        Command::Models(command) => models::models(command, out).await,
        Command::Chat(args) => chat::chat(args, out).await,
        Command::Projects(command) => projects::projects(command, out).await,
        Command::Files(args) => files::files(args, out).await,
        Command::Git(args) => git::git(args, out).await,
        Command::Sys(args) => system::sys(args.command, out).await,
        Command::Alerts(command) => alerts::alerts(command, out).await,
        Command::Audit(args) => audit::audit(args, out).await,
        Command::Autostart { action } => lifecycle::autostart(action, out).await,
        Command::Update(command) => lifecycle::update(command, out).await,
        Command::Bugreport { output } => lifecycle::bugreport(output, out).await,
        Command::Completions { .. } | Command::Manpages { .. } => Ok(()),
    }
}

/// `omnipanel completions SHELL`. clap_complete panics when its writer
/// fails, so the script is generated into memory and written with the
/// usual handling of a closed stdout.
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "omnipanel", &mut script);
    emit_bytes(&script)
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
