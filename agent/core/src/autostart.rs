//! Start at login: registers the tray (`omnipanel-tray`, or the agent itself
//! when no tray binary is installed next to it) with the desktop's login
//! items through the `auto-launch` crate (XDG autostart on Linux, a
//! LaunchAgent on macOS, the Run key on Windows).
//!
//! On Linux the crate has gaps this module works around: it writes
//! `$HOME/.config/autostart` even when `XDG_CONFIG_HOME` points elsewhere
//! (desktops read `$XDG_CONFIG_HOME/autostart`), its `Exec=` line is not
//! quoted (a path with spaces runs the wrong program), and its `is_enabled`
//! only checks that a file exists (a desktop's "Hidden=true" or
//! "X-GNOME-Autostart-enabled=false" switch is ignored). So after the crate
//! registers, the entry is rewritten with a quoted `Exec=` at the XDG
//! location, and the status is always read back from the file itself.
//!
//! Everything here is blocking file work: callers run it off the executor.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Name of the login item (the `.desktop` file stem on Linux).
pub const APP_NAME: &str = "omnipanel";
/// The tray binary started at login when it is installed.
pub const TRAY_BINARY: &str = "omnipanel-tray";

/// Where start-at-login stands, read from the real registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutostartStatus {
    /// Registered and not switched off.
    pub enabled: bool,
    /// The file (or registry entry) that registers it.
    pub location: String,
    /// The program started at login ("" when not registered).
    pub program: String,
}

/// Start-at-login for one user.
#[derive(Debug, Clone)]
pub struct Autostart {
    /// The program to register (tray, else agent).
    program: PathBuf,
    /// Arguments it gets.
    args: Vec<String>,
    /// `$HOME`.
    home: PathBuf,
    /// `$XDG_CONFIG_HOME` (absolute), else `$HOME/.config`.
    config_home: PathBuf,
}

impl Autostart {
    /// Start-at-login for the binaries installed next to `agent_exe`, with
    /// the user folders from the environment.
    pub fn from_env(agent_exe: &Path) -> Result<Self> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| {
                Error::failed_precondition(
                    "HOME is not set, so there is no place for login items; set HOME and restart the agent",
                )
            })?;
        let config_home = match std::env::var_os("XDG_CONFIG_HOME") {
            Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
            _ => home.join(".config"),
        };
        Ok(Self::new(agent_exe, home, config_home))
    }

    /// Start-at-login with explicit folders (tests).
    pub fn new(agent_exe: &Path, home: PathBuf, config_home: PathBuf) -> Self {
        let (program, args) = login_program(agent_exe);
        Self {
            program,
            args,
            home,
            config_home,
        }
    }

    /// The `.desktop` file desktops read (Linux).
    pub fn desktop_file(&self) -> PathBuf {
        self.config_home
            .join("autostart")
            .join(format!("{APP_NAME}.desktop"))
    }

    /// Where auto-launch itself writes the entry (Linux): always under
    /// `$HOME/.config`.
    fn crate_desktop_file(&self) -> PathBuf {
        self.home
            .join(".config")
            .join("autostart")
            .join(format!("{APP_NAME}.desktop"))
    }

    fn launcher(&self) -> Result<auto_launch::AutoLaunch> {
        let program = self.program.to_str().ok_or_else(|| {
            Error::failed_precondition(format!(
                "{} is not valid UTF-8, which login items cannot hold; install OmniPanel under a plain path",
                self.program.display()
            ))
        })?;
        let mut builder = auto_launch::AutoLaunchBuilder::new();
        builder
            .set_app_name(APP_NAME)
            .set_app_path(program)
            .set_args(&self.args);
        #[cfg(target_os = "linux")]
        builder.set_linux_launch_mode(auto_launch::LinuxLaunchMode::XdgAutostart);
        #[cfg(target_os = "macos")]
        builder.set_macos_launch_mode(auto_launch::MacOSLaunchMode::LaunchAgent);
        builder
            .build()
            .map_err(|err| Error::internal(format!("cannot prepare the login item: {err}")))
    }

    /// Read the registration as it is now.
    pub fn status(&self) -> Result<AutostartStatus> {
        #[cfg(target_os = "linux")]
        {
            let path = self.desktop_file();
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(AutostartStatus {
                        enabled: false,
                        location: path.display().to_string(),
                        program: String::new(),
                    });
                }
                Err(err) => {
                    return Err(Error::internal(format!(
                        "cannot read {}: {err}",
                        path.display()
                    )));
                }
            };
            let entry = parse_desktop_entry(&text);
            Ok(AutostartStatus {
                enabled: entry.enabled,
                location: path.display().to_string(),
                program: entry.program,
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let enabled = self
                .launcher()?
                .is_enabled()
                .map_err(|err| Error::internal(format!("cannot read the login item: {err}")))?;
            Ok(AutostartStatus {
                enabled,
                location: APP_NAME.to_owned(),
                program: if enabled {
                    self.program.display().to_string()
                } else {
                    String::new()
                },
            })
        }
    }

    /// Turn start-at-login on or off; returns the status read back.
    pub fn set(&self, enabled: bool) -> Result<AutostartStatus> {
        let launcher = self.launcher()?;
        if enabled {
            launcher
                .enable()
                .map_err(|err| Error::internal(format!("cannot register the login item: {err}")))?;
            #[cfg(target_os = "linux")]
            self.fix_desktop_entry()?;
        } else {
            launcher
                .disable()
                .map_err(|err| Error::internal(format!("cannot remove the login item: {err}")))?;
            #[cfg(target_os = "linux")]
            remove_if_present(&self.desktop_file())?;
        }
        self.status()
    }

    /// Replace what auto-launch wrote with a correctly quoted entry at the
    /// XDG location, and remove its copy when that is elsewhere.
    #[cfg(target_os = "linux")]
    fn fix_desktop_entry(&self) -> Result<()> {
        let path = self.desktop_file();
        let text = render_desktop_entry(&self.program, &self.args);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|err| {
                Error::internal(format!("cannot create {}: {err}", dir.display()))
            })?;
        }
        crate::atomic_file::write_atomically(&path, text.as_bytes())
            .map_err(|err| Error::internal(format!("cannot write {}: {err}", path.display())))?;
        let crate_file = self.crate_desktop_file();
        if crate_file != path {
            remove_if_present(&crate_file)?;
        }
        Ok(())
    }
}

/// The tray next to the agent when it exists, else the agent (which then
/// runs headless at login).
fn login_program(agent_exe: &Path) -> (PathBuf, Vec<String>) {
    let tray = agent_exe.with_file_name(TRAY_BINARY);
    if tray.is_file() {
        (tray, Vec::new())
    } else {
        (
            agent_exe.to_owned(),
            vec!["run".to_owned(), "--quiet".to_owned()],
        )
    }
}

#[cfg(target_os = "linux")]
fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(Error::internal(format!(
            "cannot remove {}: {err}",
            path.display()
        ))),
    }
}

/// The `.desktop` entry that starts `program` at login.
pub fn render_desktop_entry(program: &Path, args: &[String]) -> String {
    let mut exec = quote_exec_arg(&program.display().to_string());
    for arg in args {
        exec.push(' ');
        exec.push_str(&quote_exec_arg(arg));
    }
    format!(
        "[Desktop Entry]\n\
         Type=Application\n\
         Version=1.0\n\
         Name=OmniPanel\n\
         Comment=Local LLM and project assistant (tray)\n\
         Exec={exec}\n\
         Icon=omnipanel\n\
         Terminal=false\n\
         StartupNotify=false\n\
         X-GNOME-Autostart-enabled=true\n"
    )
}

/// Quote one `Exec=` argument per the Desktop Entry specification: an
/// argument with reserved characters goes in double quotes with `"`, `` ` ``,
/// `$` and `\` backslash-escaped; then the value itself escapes `\` as
/// `\\` (the string-value rule), and `%` is doubled (field codes).
pub fn quote_exec_arg(arg: &str) -> String {
    const RESERVED: &[char] = &[
        ' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(',
        ')', '`',
    ];
    let arg = arg.replace('%', "%%");
    let quoted = if arg.is_empty() || arg.contains(RESERVED) {
        let mut out = String::from("\"");
        for c in arg.chars() {
            if matches!(c, '"' | '`' | '$' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    } else {
        arg
    };
    quoted.replace('\\', "\\\\")
}

/// Split an `Exec=` value back into arguments (the inverse of
/// [`quote_exec_arg`]).
pub fn parse_exec(value: &str) -> Vec<String> {
    // Undo the string-value escaping first, then the quoting.
    let mut unescaped = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\') => unescaped.push('\\'),
                Some('s') => unescaped.push(' '),
                Some('n') => unescaped.push('\n'),
                Some('t') => unescaped.push('\t'),
                Some(other) => {
                    unescaped.push('\\');
                    unescaped.push(other);
                }
                None => unescaped.push('\\'),
            }
        } else {
            unescaped.push(c);
        }
    }
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut quoted = false;
    let mut chars = unescaped.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_arg = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '%' if chars.peek() == Some(&'%') => {
                chars.next();
                current.push('%');
                in_arg = true;
            }
            ' ' | '\t' if !quoted => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            other => {
                current.push(other);
                in_arg = true;
            }
        }
    }
    if in_arg {
        args.push(current);
    }
    args
}

/// What a `.desktop` entry says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesktopEntry {
    /// Not hidden and not switched off.
    pub enabled: bool,
    /// The program `Exec=` starts.
    pub program: String,
}

/// Read the keys that decide whether an autostart entry runs.
pub fn parse_desktop_entry(text: &str) -> DesktopEntry {
    let mut in_main = false;
    let mut enabled = true;
    let mut program = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_main = line == "[Desktop Entry]";
            continue;
        }
        if !in_main {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        match (key.trim(), value.trim()) {
            ("Hidden", "true") => enabled = false,
            ("X-GNOME-Autostart-enabled", "false") => enabled = false,
            ("Exec", exec) => program = parse_exec(exec).into_iter().next().unwrap_or_default(),
            _ => {}
        }
    }
    if program.is_empty() {
        // An entry that runs nothing starts nothing.
        enabled = false;
    }
    DesktopEntry { enabled, program }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_arguments_are_left_alone() {
        assert_eq!(
            quote_exec_arg("/usr/bin/omnipanel-tray"),
            "/usr/bin/omnipanel-tray"
        );
    }

    #[test]
    fn paths_with_spaces_are_quoted_and_round_trip() {
        let program = "/home/a b/My Apps/omnipanel-tray";
        let quoted = quote_exec_arg(program);
        assert_eq!(quoted, "\"/home/a b/My Apps/omnipanel-tray\"");
        assert_eq!(parse_exec(&format!("{quoted} run")), vec![program, "run"]);
    }

    #[test]
    fn reserved_characters_survive_both_escaping_layers() {
        for arg in ["a\"b", "c$d", "e\\f", "100%", "g`h", "it's"] {
            let exec = quote_exec_arg(arg);
            assert_eq!(parse_exec(&exec), vec![arg.to_owned()], "{exec}");
        }
        assert_eq!(quote_exec_arg("e\\f"), "\"e\\\\\\\\f\"");
    }

    #[test]
    fn entry_reports_program_and_switches() {
        let text = render_desktop_entry(Path::new("/opt/my apps/omnipanel-tray"), &[]);
        let entry = parse_desktop_entry(&text);
        assert!(entry.enabled);
        assert_eq!(entry.program, "/opt/my apps/omnipanel-tray");
        let hidden = format!("{text}Hidden=true\n");
        assert!(!parse_desktop_entry(&hidden).enabled);
        let off = text.replace(
            "X-GNOME-Autostart-enabled=true",
            "X-GNOME-Autostart-enabled=false",
        );
        assert!(!parse_desktop_entry(&off).enabled);
    }

    #[test]
    fn agent_is_registered_when_no_tray_is_installed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let agent = dir.path().join("omnipanel-agent");
        let (program, args) = login_program(&agent);
        assert_eq!(program, agent);
        assert_eq!(args, vec!["run", "--quiet"]);
        std::fs::write(dir.path().join(TRAY_BINARY), b"").expect("tray");
        let (program, args) = login_program(&agent);
        assert_eq!(program, dir.path().join(TRAY_BINARY));
        assert!(args.is_empty());
    }
}
