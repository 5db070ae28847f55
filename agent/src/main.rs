//! `omnipanel-agent`: runs the agent in the foreground (the default), or
//! checks the configuration and prints where files live.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use omnipanel_agent::daemon::{self, EXIT_CONFIG, RunOptions};
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
        Command::Service(command) => service_command(command),
        Command::CrashTest => {
            omnipanel_core::crash::install_hook(paths.crash_dir.clone());
            panic!("crash test requested with `omnipanel-agent crash-test`");
        }
    }
}

fn service_command(command: ServiceCommand) -> ExitCode {
    match run_service_command(command) {
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

#[cfg(target_os = "linux")]
fn run_service_command(
    command: ServiceCommand,
) -> Result<Vec<String>, omnipanel_core::error::Error> {
    use omnipanel_agent::service::{self, Scope, SystemRunner, Systemd, UnitSpec};
    use omnipanel_core::error::Error;
    let scope = match &command {
        ServiceCommand::Install(scope)
        | ServiceCommand::Uninstall(scope)
        | ServiceCommand::Status(scope) => scope,
        ServiceCommand::PrintUnit { exec } => {
            let exe = match exec {
                Some(exe) => exe.clone(),
                None => this_program()?,
            };
            let unit = service::render_systemd_unit(&UnitSpec {
                exe,
                scope: Scope::User,
            });
            return Ok(unit.lines().map(str::to_owned).collect());
        }
    };
    let (scope, unit_dir) = if scope.system {
        let user = scope.user_name.clone().unwrap_or_default();
        let passwd = std::fs::read_to_string("/etc/passwd")
            .map_err(|err| Error::failed_precondition(format!("cannot read /etc/passwd: {err}")))?;
        let home = service::home_of(&passwd, &user).ok_or_else(|| {
            Error::invalid_argument("--user-name", format!("no user named {user:?} exists here"))
        })?;
        (
            Scope::System { user, home },
            PathBuf::from(service::SYSTEM_UNIT_DIR),
        )
    } else {
        (Scope::User, service::user_unit_dir()?)
    };
    let systemd = Systemd::new(SystemRunner, scope.clone(), unit_dir);
    match command {
        ServiceCommand::Install(_) => {
            let exe = std::env::current_exe().map_err(|err| {
                Error::internal(format!(
                    "cannot tell where this program is installed: {err}"
                ))
            })?;
            systemd.install(&UnitSpec { exe, scope })
        }
        ServiceCommand::Uninstall(_) => systemd.uninstall(),
        ServiceCommand::Status(_) => systemd.status(),
        // Answered above, before a unit folder is needed.
        ServiceCommand::PrintUnit { .. } => Ok(Vec::new()),
    }
}

/// Where this program is installed.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn this_program() -> Result<PathBuf, omnipanel_core::error::Error> {
    std::env::current_exe().map_err(|err| {
        omnipanel_core::error::Error::internal(format!(
            "cannot tell where this program is installed: {err}"
        ))
    })
}

#[cfg(target_os = "macos")]
fn run_service_command(
    command: ServiceCommand,
) -> Result<Vec<String>, omnipanel_core::error::Error> {
    use omnipanel_agent::service;
    use omnipanel_core::error::Error;
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .ok_or_else(|| Error::failed_precondition("HOME is not set; set it and try again"))?;
    let plist = home.join(format!(
        "Library/LaunchAgents/{}.plist",
        service::LAUNCHD_LABEL
    ));
    match command {
        ServiceCommand::Install(_) => {
            let exe = std::env::current_exe().map_err(|err| {
                Error::internal(format!("cannot tell where this program is: {err}"))
            })?;
            let paths = AgentPaths::from_env();
            let text = service::render_launchd_plist(&exe, &paths.log_dir);
            omnipanel_core::atomic_file::write_atomically(&plist, text.as_bytes()).map_err(
                |err| {
                    Error::failed_precondition(format!("cannot write {}: {err}", plist.display()))
                },
            )?;
            Ok(vec![
                format!("wrote {}", plist.display()),
                format!("load it with `launchctl load -w {}`", plist.display()),
            ])
        }
        ServiceCommand::Uninstall(_) => {
            let _ = std::fs::remove_file(&plist);
            Ok(vec![format!(
                "removed {} (run `launchctl unload` on it first if it was loaded)",
                plist.display()
            )])
        }
        ServiceCommand::PrintUnit { exec } => {
            let exe = match exec {
                Some(exe) => exe,
                None => this_program()?,
            };
            let paths = AgentPaths::from_env();
            let text = service::render_launchd_plist(&exe, &paths.log_dir);
            Ok(text.lines().map(str::to_owned).collect())
        }
        ServiceCommand::Status(_) => Ok(vec![format!(
            "{} {}",
            plist.display(),
            if plist.exists() {
                "is installed"
            } else {
                "is not installed"
            }
        )]),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn run_service_command(
    _command: ServiceCommand,
) -> Result<Vec<String>, omnipanel_core::error::Error> {
    // Windows: documented in the user guide (Run key via `omnipanel
    // autostart on`, or a scheduled task); no service code yet.
    Err(omnipanel_core::error::Error::new(
        omnipanel_core::error::ErrorKind::Unimplemented,
        "service install is not available on this platform; use `omnipanel autostart on` instead",
    ))
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
