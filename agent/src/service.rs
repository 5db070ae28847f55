//! The agent as a headless service: `omnipanel-agent service
//! install|uninstall|status`. On Linux it writes a systemd unit (a user
//! unit, or a system unit running as a named user) and enables it with
//! `systemctl`; on macOS the equivalent is a LaunchAgent plist (rendered
//! here, installed with `launchctl`). Windows runs the agent from the Run
//! key (`omnipanel autostart on`) or as a scheduled task; there is no
//! service code for it.
//!
//! Rendering is pure (unit-tested as text on every platform); the
//! `systemctl` calls go through [`CommandRunner`] so tests run without
//! systemd. Every step is idempotent and reported in plain words.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use omnipanel_core::error::{Error, Result};
use omnipanel_core::reason::Reason;

/// The unit's name.
pub const UNIT_NAME: &str = "omnipanel-agent.service";
/// The LaunchAgent's label.
pub const LAUNCHD_LABEL: &str = "dev.omnipanel.agent";
/// Socket of a system-wide service (clients set OMNIPANEL_SOCKET to it).
pub const SYSTEM_SOCKET: &str = "/run/omnipanel/agent.sock";

/// Who the service runs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A systemd user unit in the user's own service manager.
    User,
    /// A system unit running as this user.
    System {
        /// Login name.
        user: String,
        /// Their home folder.
        home: PathBuf,
    },
}

/// What the unit is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// The agent executable.
    pub exe: PathBuf,
    /// User or system unit.
    pub scope: Scope,
}

/// Quote one word of an `ExecStart=` line the way systemd parses it:
/// double quotes with C escapes when needed; `%` and `$` doubled so they
/// are not specifiers or variable references.
pub fn quote_systemd_word(word: &str) -> String {
    let escaped = word.replace('%', "%%").replace('$', "$$");
    if !escaped.is_empty()
        && !escaped
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        return escaped;
    }
    let mut out = String::from("\"");
    for c in escaped.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// A path in a setting that takes a space-separated list of paths
/// (ReadWritePaths=): quoted when it has spaces.
fn quote_path_setting(path: &Path) -> String {
    quote_systemd_word(&path.display().to_string())
}

/// The systemd unit for `spec`.
pub fn render_systemd_unit(spec: &UnitSpec) -> String {
    let exec = format!(
        "{} run --quiet",
        quote_systemd_word(&spec.exe.display().to_string())
    );
    let mut unit = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        unit,
        "# Written by `omnipanel-agent service install`; rewritten by it, so\n\
         # put local changes in a drop-in (`systemctl{} edit {UNIT_NAME}`).",
        if spec.scope == Scope::User {
            " --user"
        } else {
            ""
        }
    );
    let _ = writeln!(unit, "[Unit]");
    let _ = writeln!(
        unit,
        "Description=OmniPanel agent (local LLM and project API)"
    );
    let _ = writeln!(unit, "Documentation=https://github.com/omnipanel/omnipanel");
    match &spec.scope {
        Scope::User => {}
        Scope::System { .. } => {
            let _ = writeln!(unit, "After=network-online.target");
            let _ = writeln!(unit, "Wants=network-online.target");
        }
    }
    let _ = writeln!(unit);
    let _ = writeln!(unit, "[Service]");
    let _ = writeln!(unit, "Type=simple");
    let _ = writeln!(unit, "ExecStart={exec}");
    let _ = writeln!(unit, "Restart=on-failure");
    let _ = writeln!(unit, "RestartSec=2s");
    // A bad config.toml exits 78 (EX_CONFIG): restarting cannot fix it.
    let _ = writeln!(unit, "RestartPreventExitStatus=78");
    let _ = writeln!(unit, "TimeoutStopSec=15s");
    let _ = writeln!(
        unit,
        "# Hardening. The agent writes its XDG folders, the runtime dir and"
    );
    let _ = writeln!(
        unit,
        "# your projects (under your home); the rest of the system is read-only."
    );
    let _ = writeln!(unit, "NoNewPrivileges=yes");
    let _ = writeln!(unit, "ProtectSystem=strict");
    let _ = writeln!(unit, "PrivateTmp=yes");
    match &spec.scope {
        Scope::User => {
            // %h: the home folder (XDG config, data and state live below
            // it, and so do the projects); %t: $XDG_RUNTIME_DIR (socket).
            let _ = writeln!(unit, "ReadWritePaths=%h %t");
            let _ = writeln!(unit);
            let _ = writeln!(unit, "[Install]");
            let _ = writeln!(unit, "WantedBy=default.target");
        }
        Scope::System { user, home } => {
            let _ = writeln!(unit, "User={user}");
            let _ = writeln!(
                unit,
                "Environment={}",
                quote_systemd_word(&format!("HOME={}", home.display()))
            );
            // No login session gives a system service an XDG_RUNTIME_DIR,
            // and PrivateTmp hides /tmp: the socket lives in /run/omnipanel,
            // created for the user by systemd, private to them.
            let _ = writeln!(unit, "RuntimeDirectory=omnipanel");
            let _ = writeln!(unit, "RuntimeDirectoryMode=0700");
            let _ = writeln!(unit, "Environment=OMNIPANEL_SOCKET={SYSTEM_SOCKET}");
            let _ = writeln!(unit, "ReadWritePaths={}", quote_path_setting(home));
            let _ = writeln!(unit);
            let _ = writeln!(unit, "[Install]");
            let _ = writeln!(unit, "WantedBy=multi-user.target");
        }
    }
    unit
}

/// Escape text for an XML element.
fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The macOS LaunchAgent (`~/Library/LaunchAgents/<label>.plist`) that
/// keeps the agent running for the logged-in user; `log_dir` receives its
/// stdout and stderr.
pub fn render_launchd_plist(exe: &Path, log_dir: &Path) -> String {
    let exe = xml_escape(&exe.display().to_string());
    let out = xml_escape(&log_dir.join("launchd.log").display().to_string());
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>{LAUNCHD_LABEL}</string>
  <key>ProgramArguments</key>
  <array>
    <string>{exe}</string>
    <string>run</string>
    <string>--quiet</string>
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ProcessType</key>
  <string>Background</string>
  <key>StandardOutPath</key>
  <string>{out}</string>
  <key>StandardErrorPath</key>
  <string>{out}</string>
</dict>
</plist>
"#
    )
}

/// The outcome of running a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutput {
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl RunOutput {
    fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `systemctl` (or a stand-in in tests).
pub trait CommandRunner {
    /// Run `program args`. `Err` with `NotFound` means the program is not
    /// installed.
    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<RunOutput>;
}

/// Runs real programs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRunner;

impl CommandRunner for SystemRunner {
    fn run(&self, program: &str, args: &[&str]) -> std::io::Result<RunOutput> {
        let output = std::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()?;
        Ok(RunOutput {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).trim().to_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// A service manager for one scope: where the unit goes and how
/// `systemctl` is called.
#[derive(Debug, Clone)]
pub struct Systemd<R> {
    runner: R,
    scope: Scope,
    unit_dir: PathBuf,
}

impl<R: CommandRunner> Systemd<R> {
    /// Units in `unit_dir`, managed through `runner`.
    pub fn new(runner: R, scope: Scope, unit_dir: PathBuf) -> Self {
        Self {
            runner,
            scope,
            unit_dir,
        }
    }

    /// Where the unit file is.
    pub fn unit_path(&self) -> PathBuf {
        self.unit_dir.join(UNIT_NAME)
    }

    fn systemctl(&self, args: &[&str]) -> Result<RunOutput> {
        let mut full: Vec<&str> = Vec::with_capacity(args.len() + 1);
        if self.scope == Scope::User {
            full.push("--user");
        }
        full.extend_from_slice(args);
        match self.runner.run("systemctl", &full) {
            Ok(output) => Ok(output),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::failed_precondition(
                "systemctl was not found: this system does not run systemd. Start `omnipanel-agent` from your init system or login session instead (`omnipanel autostart on` registers it for a desktop login)",
            )
            .with_reason(Reason::SystemdMissing)),
            Err(err) => Err(Error::internal(format!("cannot run systemctl: {err}"))),
        }
    }

    fn systemctl_ok(&self, args: &[&str]) -> Result<()> {
        let output = self.systemctl(args)?;
        if output.success() {
            return Ok(());
        }
        let user = if self.scope == Scope::User {
            " --user"
        } else {
            ""
        };
        let hint = if self.scope == Scope::User && output.stderr.contains("bus") {
            " (no user service manager is reachable: log in through a session, or run `loginctl enable-linger $USER` for a headless machine)"
        } else if matches!(self.scope, Scope::System { .. }) && output.stderr.contains("ermission")
        {
            " (system units need root: run it with sudo)"
        } else {
            ""
        };
        Err(Error::failed_precondition(format!(
            "`systemctl{user} {}` failed: {}{hint}",
            args.join(" "),
            if output.stderr.is_empty() {
                &output.stdout
            } else {
                &output.stderr
            }
        )))
    }

    /// Write the unit for `spec` and enable and start it. Returns what was
    /// done, one line per step.
    pub fn install(&self, spec: &UnitSpec) -> Result<Vec<String>> {
        let mut done = Vec::new();
        // Fail before touching anything when systemctl is missing.
        self.systemctl(&["--version"])?;
        let path = self.unit_path();
        let text = render_systemd_unit(spec);
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|current| current == text);
        if unchanged {
            done.push(format!("{} is already up to date", path.display()));
        } else {
            std::fs::create_dir_all(&self.unit_dir).map_err(|err| {
                Error::failed_precondition(format!(
                    "cannot create {}: {err}",
                    self.unit_dir.display()
                ))
            })?;
            omnipanel_core::atomic_file::write_atomically(&path, text.as_bytes()).map_err(
                |err| Error::failed_precondition(format!("cannot write {}: {err}", path.display())),
            )?;
            done.push(format!("wrote {}", path.display()));
            self.systemctl_ok(&["daemon-reload"])?;
            done.push("reloaded the service manager".to_owned());
        }
        self.systemctl_ok(&["enable", UNIT_NAME])?;
        done.push(format!("enabled {UNIT_NAME} (starts at boot/login)"));
        // restart rather than start when the unit changed, so the running
        // service uses the new unit.
        let verb = if unchanged { "start" } else { "restart" };
        self.systemctl_ok(&[verb, UNIT_NAME])?;
        done.push(format!("{verb}ed {UNIT_NAME}"));
        if let Scope::System { user, .. } = &self.scope {
            done.push(format!(
                "clients of {user} reach it with OMNIPANEL_SOCKET={SYSTEM_SOCKET}"
            ));
        }
        Ok(done)
    }

    /// Stop and disable the service and remove the unit. Idempotent.
    pub fn uninstall(&self) -> Result<Vec<String>> {
        let mut done = Vec::new();
        self.systemctl(&["--version"])?;
        let path = self.unit_path();
        if !path.exists() {
            done.push(format!(
                "{} does not exist; nothing to remove",
                path.display()
            ));
            return Ok(done);
        }
        // disable --now both stops and disables; a unit that is not running
        // is fine.
        self.systemctl_ok(&["disable", "--now", UNIT_NAME])?;
        done.push(format!("stopped and disabled {UNIT_NAME}"));
        std::fs::remove_file(&path).map_err(|err| {
            Error::failed_precondition(format!("cannot remove {}: {err}", path.display()))
        })?;
        done.push(format!("removed {}", path.display()));
        self.systemctl_ok(&["daemon-reload"])?;
        done.push("reloaded the service manager".to_owned());
        Ok(done)
    }

    /// Installed, enabled, active: one line each.
    pub fn status(&self) -> Result<Vec<String>> {
        let path = self.unit_path();
        let mut lines = vec![format!(
            "unit     {} ({})",
            path.display(),
            if path.exists() {
                "installed"
            } else {
                "not installed"
            }
        )];
        let enabled = self.systemctl(&["is-enabled", UNIT_NAME])?;
        lines.push(format!("enabled  {}", word_or(&enabled.stdout, "unknown")));
        let active = self.systemctl(&["is-active", UNIT_NAME])?;
        lines.push(format!("active   {}", word_or(&active.stdout, "unknown")));
        Ok(lines)
    }
}

fn word_or<'a>(text: &'a str, fallback: &'a str) -> &'a str {
    let word = text.lines().next().unwrap_or("").trim();
    if word.is_empty() { fallback } else { word }
}

/// The folder for user units: `$XDG_CONFIG_HOME/systemd/user`.
pub fn user_unit_dir() -> Result<PathBuf> {
    match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) if Path::new(&dir).is_absolute() => Ok(PathBuf::from(dir).join("systemd/user")),
        _ => std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|home| PathBuf::from(home).join(".config/systemd/user"))
            .ok_or_else(|| Error::failed_precondition("HOME is not set; set it and try again")),
    }
}

/// The folder for system units.
pub const SYSTEM_UNIT_DIR: &str = "/etc/systemd/system";

/// The home folder of `user` from a passwd-format text.
pub fn home_of(passwd: &str, user: &str) -> Option<PathBuf> {
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 7 && fields[0] == user).then(|| PathBuf::from(fields[5]))
    })
}

#[cfg(test)]
mod tests {
    use std::{cell::RefCell, rc::Rc};

    use super::*;

    #[test]
    fn user_unit_restarts_on_failure_with_hardening() {
        let unit = render_systemd_unit(&UnitSpec {
            exe: "/home/me/.local/bin/omnipanel-agent".into(),
            scope: Scope::User,
        });
        for line in [
            "ExecStart=/home/me/.local/bin/omnipanel-agent run --quiet",
            "Restart=on-failure",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=%h %t",
            "PrivateTmp=yes",
            "WantedBy=default.target",
            "RestartPreventExitStatus=78",
        ] {
            assert!(
                unit.lines().any(|l| l == line),
                "missing {line:?} in\n{unit}"
            );
        }
        assert!(!unit.contains("User="));
    }

    #[test]
    fn system_unit_runs_as_the_user_with_a_private_socket_dir() {
        let unit = render_systemd_unit(&UnitSpec {
            exe: "/opt/Omni Panel/omnipanel-agent".into(),
            scope: Scope::System {
                user: "llm".into(),
                home: "/srv/llm home".into(),
            },
        });
        for line in [
            "ExecStart=\"/opt/Omni Panel/omnipanel-agent\" run --quiet",
            "User=llm",
            "Environment=\"HOME=/srv/llm home\"",
            "RuntimeDirectory=omnipanel",
            "Environment=OMNIPANEL_SOCKET=/run/omnipanel/agent.sock",
            "ReadWritePaths=\"/srv/llm home\"",
            "WantedBy=multi-user.target",
        ] {
            assert!(
                unit.lines().any(|l| l == line),
                "missing {line:?} in\n{unit}"
            );
        }
    }

    #[test]
    fn specifiers_and_variables_are_escaped() {
        assert_eq!(quote_systemd_word("/a%b$c"), "/a%%b$$c");
        assert_eq!(quote_systemd_word("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn plist_is_escaped_xml() {
        let plist = render_launchd_plist(Path::new("/Apps/A&B/omnipanel-agent"), Path::new("/l"));
        assert!(plist.contains("<string>/Apps/A&amp;B/omnipanel-agent</string>"));
        assert!(plist.contains("<string>dev.omnipanel.agent</string>"));
        assert!(plist.contains("<key>KeepAlive</key>"));
    }

    #[test]
    fn home_is_read_from_passwd() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\nllm:x:1001:1001::/srv/llm:/bin/sh\n";
        assert_eq!(home_of(passwd, "llm"), Some(PathBuf::from("/srv/llm")));
        assert_eq!(home_of(passwd, "nobody"), None);
    }

    /// Records calls; answers from a script.
    #[derive(Clone, Default)]
    struct FakeRunner {
        calls: Rc<RefCell<Vec<String>>>,
        missing: bool,
    }

    impl CommandRunner for FakeRunner {
        fn run(&self, program: &str, args: &[&str]) -> std::io::Result<RunOutput> {
            if self.missing {
                return Err(std::io::ErrorKind::NotFound.into());
            }
            self.calls
                .borrow_mut()
                .push(format!("{program} {}", args.join(" ")));
            let stdout = match args.last() {
                Some(&UNIT_NAME) if args.contains(&"is-enabled") => "enabled",
                Some(&UNIT_NAME) if args.contains(&"is-active") => "active",
                _ => "",
            };
            Ok(RunOutput {
                code: Some(0),
                stdout: stdout.to_owned(),
                stderr: String::new(),
            })
        }
    }

    #[test]
    fn install_is_idempotent_and_says_what_it_did() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let runner = FakeRunner::default();
        let systemd = Systemd::new(runner.clone(), Scope::User, dir.path().join("user"));
        let spec = UnitSpec {
            exe: "/usr/bin/omnipanel-agent".into(),
            scope: Scope::User,
        };
        let first = systemd.install(&spec)?;
        assert!(first[0].starts_with("wrote "), "{first:?}");
        assert!(systemd.unit_path().exists());
        let calls = runner.calls.borrow().clone();
        assert!(
            calls.contains(&"systemctl --user daemon-reload".to_owned()),
            "{calls:?}"
        );
        assert!(calls.contains(&format!("systemctl --user enable {UNIT_NAME}")));
        runner.calls.borrow_mut().clear();
        let second = systemd.install(&spec)?;
        assert!(second[0].ends_with("already up to date"), "{second:?}");
        assert!(
            !runner
                .calls
                .borrow()
                .iter()
                .any(|c| c.contains("daemon-reload"))
        );
        let status = systemd.status()?;
        assert_eq!(status[1], "enabled  enabled");
        let removed = systemd.uninstall()?;
        assert!(
            removed.iter().any(|l| l.starts_with("removed ")),
            "{removed:?}"
        );
        assert!(!systemd.unit_path().exists());
        let again = systemd.uninstall()?;
        assert!(again[0].contains("nothing to remove"));
        Ok(())
    }

    #[test]
    fn missing_systemctl_is_a_clear_error_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let runner = FakeRunner {
            missing: true,
            ..FakeRunner::default()
        };
        let systemd = Systemd::new(runner, Scope::User, dir.path().join("user"));
        let err = systemd
            .install(&UnitSpec {
                exe: "/usr/bin/omnipanel-agent".into(),
                scope: Scope::User,
            })
            .expect_err("refused");
        assert!(err.message().contains("does not run systemd"), "{err}");
        assert!(!systemd.unit_path().exists());
    }
}
