//! Installing the agent as a background service, per OS: on Linux a
//! systemd unit enabled with `systemctl` (the unit text and the
//! `systemctl` steps are `crate::service`, which is pure and tested
//! everywhere); on macOS a LaunchAgent plist; elsewhere a plain
//! "not available" (Windows users register the agent with `omnipanel
//! autostart on`). `omnipanel-agent service ...` hands its arguments here.

use std::path::PathBuf;

#[cfg(target_os = "macos")]
use omnipanel_paths::AgentPaths;

use omnipanel_core::error::{Error, Result};

/// Whose service: the caller's own (user unit), or a system unit running as
/// a named user.
#[derive(Debug, Clone, Default)]
pub struct ScopeArgs {
    /// A system unit (needs root) instead of a user unit.
    pub system: bool,
    /// The user a system unit runs as.
    pub user_name: Option<String>,
}

/// What `omnipanel-agent service` was asked to do.
#[derive(Debug, Clone)]
pub enum Request {
    /// Write, enable and start the service (idempotent).
    Install(ScopeArgs),
    /// Stop, disable and remove the service (idempotent).
    Uninstall(ScopeArgs),
    /// Whether the service is installed, enabled and running.
    Status(ScopeArgs),
    /// The unit (or plist) text, without installing it.
    PrintUnit {
        /// The agent binary the unit starts (default: this one).
        exec: Option<PathBuf>,
    },
}

/// Carry out `request`; returns what to print, one line each.
#[cfg(target_os = "linux")]
pub fn run(request: Request) -> Result<Vec<String>> {
    use crate::service::{self, Scope, SystemRunner, Systemd, UnitSpec};
    let scope = match &request {
        Request::Install(scope) | Request::Uninstall(scope) | Request::Status(scope) => scope,
        Request::PrintUnit { exec } => {
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
    match request {
        Request::Install(_) => {
            let exe = std::env::current_exe().map_err(|err| {
                Error::internal(format!(
                    "cannot tell where this program is installed: {err}"
                ))
            })?;
            systemd.install(&UnitSpec { exe, scope })
        }
        Request::Uninstall(_) => systemd.uninstall(),
        Request::Status(_) => systemd.status(),
        // Answered above, before a unit folder is needed.
        Request::PrintUnit { .. } => Ok(Vec::new()),
    }
}

/// Where this program is installed.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn this_program() -> Result<PathBuf> {
    std::env::current_exe().map_err(|err| {
        Error::internal(format!(
            "cannot tell where this program is installed: {err}"
        ))
    })
}

/// Carry out `request`; returns what to print, one line each.
#[cfg(target_os = "macos")]
pub fn run(request: Request) -> Result<Vec<String>> {
    use crate::service;
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .ok_or_else(|| Error::failed_precondition("HOME is not set; set it and try again"))?;
    let plist = home.join(format!(
        "Library/LaunchAgents/{}.plist",
        service::LAUNCHD_LABEL
    ));
    match request {
        Request::Install(_) => {
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
        Request::Uninstall(_) => {
            let _ = std::fs::remove_file(&plist);
            Ok(vec![format!(
                "removed {} (run `launchctl unload` on it first if it was loaded)",
                plist.display()
            )])
        }
        Request::PrintUnit { exec } => {
            let exe = match exec {
                Some(exe) => exe,
                None => this_program()?,
            };
            let paths = AgentPaths::from_env();
            let text = service::render_launchd_plist(&exe, &paths.log_dir);
            Ok(text.lines().map(str::to_owned).collect())
        }
        Request::Status(_) => Ok(vec![format!(
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

/// Carry out `request`: no service support here.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn run(_request: Request) -> Result<Vec<String>> {
    // Windows: documented in the user guide (Run key via `omnipanel
    // autostart on`, or a scheduled task); no service code yet.
    Err(Error::new(
        omnipanel_core::error::ErrorKind::Unimplemented,
        "service install is not available on this platform; use `omnipanel autostart on` instead",
    ))
}
