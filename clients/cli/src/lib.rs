//! The `omnipanel` command-line client of the OmniPanel agent, as a
//! library: [`main`] parses the command line, connects through
//! omnipanel-client, runs the command and maps failures to exit codes (1
//! failure, 2 usage, 3 agent not running, 4 and 5 an access request denied
//! or unanswered, 141 stdout's reader went away). The agent's executable
//! runs it when started under the name `omnipanel` (one file, two
//! programs: `agent/src/program.rs`).

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
        agent, alerts, audit, chat, clients, confirmations, conversations, files, git, lifecycle,
        mcp, models, ollama, projects, system,
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
    /// A refusal scripts branch on: `message`, then exit with `code`
    /// (`clients request` denied: [`EXIT_ACCESS_DENIED`]).
    Refused {
        /// The exit code.
        code: u8,
        /// What to tell the user.
        message: String,
    },
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Client(err) => err.fmt(f),
            Self::Other(message) => f.write_str(message),
            Self::OutputClosed => f.write_str("stdout was closed"),
            Self::Exit(code) => write!(f, "exit code {code}"),
            Self::Refused { message, .. } => f.write_str(message),
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

/// Exit code of `clients request` when the user denied the request: do
/// not ask again unless the user says so.
pub const EXIT_ACCESS_DENIED: u8 = 4;

/// Exit code of `clients request` when nobody answered in time (or the
/// request was withdrawn): asking again later may succeed.
pub const EXIT_ACCESS_UNANSWERED: u8 = 5;

/// Exit code when whoever read stdout went away (`omnipanel logs | head`):
/// 128 + SIGPIPE, what a shell reports for coreutils or git killed by the
/// signal, so `set -o pipefail` sees the same as with them. Not 0: the
/// output was cut short. Not 1: nothing failed, and no message is printed.
/// Windows has no SIGPIPE, but its broken pipe (ERROR_NO_DATA) is also an
/// `ErrorKind::BrokenPipe`, so it would get the same quiet 141.
const EXIT_OUTPUT_CLOSED: u8 = 141;

/// Run the `omnipanel` command line (its arguments from the process's);
/// returns the exit code.
pub fn main() -> ExitCode {
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
            let credential = omnipanel_paths::owner_credential_path();
            if let Some(advice) = advice(
                err.reason().as_deref(),
                err.confirmation_id().as_deref(),
                &credential,
                &credential_problem(&credential),
            ) {
                errln!("omnipanel: {advice}");
            }
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
        Err(Failure::Refused { code, message }) => {
            errln!("omnipanel: {message}");
            ExitCode::from(code)
        }
    }
}

/// What to do about a refusal whose reason the message alone does not
/// settle for a CLI user: not admitted (this CLI is not the owner: why,
/// and the two ways on), or a confirmation to answer (its id on a line of
/// its own, for scripts and for copying). `problem` is what is wrong with
/// the owner credential at `credential`, from [`credential_problem`].
fn advice(
    reason: Option<&str>,
    confirmation_id: Option<&str>,
    credential: &std::path::Path,
    problem: &str,
) -> Option<String> {
    match reason? {
        "NOT_ADMITTED" => Some(format!(
            "this client is not the owner: the owner credential at {} {problem}; ask for access \
             with `omnipanel clients request`, or set OMNIPANEL_TOKEN to a token the owner made \
             (`omnipanel token create`)",
            credential.display()
        )),
        "CONFIRMATION_REQUIRED" | "CONFIRMATION_PENDING" => confirmation_id.map(|id| {
            format!(
                "confirmation {id} is waiting: the owner allows it with `omnipanel confirmations allow {id}` (or in the tray or panel); then run this command again with OMNIPANEL_CONFIRMATION={id}"
            )
        }),
        _ => None,
    }
}

/// Why the owner credential at `path` did not make this CLI the owner, as
/// the end of "the owner credential at PATH ...".
fn credential_problem(path: &std::path::Path) -> String {
    match std::fs::File::open(path) {
        Ok(_) => "was not accepted (does the agent keep its data in another folder? \
                  `omnipanel status` shows the one it uses)"
            .to_owned(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            "does not exist (the agent makes it at start in its data folder)".to_owned()
        }
        Err(err) => format!("is not readable by it ({err})"),
    }
}

/// Commands that need the agent, on a tokio runtime.
fn run(cli: Cli) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Other(format!("cannot start: {err}")))?;
    let result = runtime.block_on(async {
        #[cfg(coverage)]
        tokio::spawn(exit_on_sigterm());
        dispatch(cli).await
    });
    // Reading stdin (chat) blocks a runtime thread that cannot be
    // cancelled; waiting for it would hang the exit until the next line.
    runtime.shutdown_background();
    result
}

/// Only in an instrumented build (`cargo llvm-cov` sets `cfg(coverage)`):
/// the coverage profile is written when the process exits, and the tests
/// end the commands that follow (`events --follow`, `logs -f`, `files
/// watch`, `alerts watch`) with SIGTERM, whose default action ends the
/// process without exiting. Exit instead (143, as the signal would), so
/// what those commands ran counts. Normal builds keep the default action.
#[cfg(coverage)]
async fn exit_on_sigterm() {
    use tokio::signal::unix::{SignalKind, signal};
    if let Ok(mut terminate) = signal(SignalKind::terminate()) {
        terminate.recv().await;
        std::process::exit(143);
    }
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
        Command::Mcp(args) => mcp::mcp(args).await,
        Command::Ollama(command) => ollama::ollama(command, out).await,
        Command::Models(command) => models::models(command, out).await,
        Command::Providers(command) => models::providers(command, out).await,
        Command::Embed(args) => models::embed(args, out).await,
        Command::Chat(args) => chat::chat(args, out).await,
        Command::Conversations(command) => conversations::conversations(command, out).await,
        Command::Projects(command) => projects::projects(command, out).await,
        Command::Files(args) => files::files(args, out).await,
        Command::Git(args) => git::git(args, out).await,
        Command::Sys(args) => system::sys(args.command, out).await,
        Command::Alerts(command) => alerts::alerts(command, out).await,
        Command::Clients(command) => clients::clients(command, out).await,
        Command::Confirmations(command) => confirmations::confirmations(command, out).await,
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn not_admitted_says_why_and_how_on() {
        let path = Path::new("/home/me/.local/share/omnipanel/owner-credential");
        let advice = advice(
            Some("NOT_ADMITTED"),
            None,
            path,
            "is not readable by it (Permission denied)",
        )
        .unwrap_or_default();
        assert!(
            advice.starts_with(
                "this client is not the owner: the owner credential at \
                 /home/me/.local/share/omnipanel/owner-credential is not readable by it"
            ),
            "{advice}"
        );
        assert!(advice.contains("`omnipanel clients request`"), "{advice}");
        assert!(advice.contains("OMNIPANEL_TOKEN"), "{advice}");
    }

    #[test]
    fn confirmations_are_named_with_their_answer() {
        let path = Path::new("/x");
        let advice =
            advice(Some("CONFIRMATION_REQUIRED"), Some("c0ffee"), path, "").unwrap_or_default();
        assert!(
            advice.contains("`omnipanel confirmations allow c0ffee`"),
            "{advice}"
        );
        assert_eq!(
            super::advice(Some("CONFIRMATION_REQUIRED"), None, path, ""),
            None
        );
        assert_eq!(super::advice(Some("NOT_FOUND"), None, path, ""), None);
        assert_eq!(super::advice(None, None, path, ""), None);
    }

    #[test]
    fn the_credentials_problem_is_told_apart() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("owner-credential");
        assert!(credential_problem(&path).starts_with("does not exist"));
        std::fs::write(&path, "ompo_x")?;
        assert!(credential_problem(&path).starts_with("was not accepted"));
        Ok(())
    }
}
