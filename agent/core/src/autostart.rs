//! Start at login: registers the tray (`omnipanel-tray`, or the agent itself
//! when no tray binary is installed next to it) with the desktop's login
//! items. What to register and the `.desktop` entry text (rendering with
//! a correctly quoted `Exec=`, parsing a desktop's on/off switches) live
//! here and are tested on every platform; registering with the OS is
//! `platform::autostart` (the `auto-launch` crate, with the Linux entry
//! rewritten at the XDG location and its status read back from the file).
//!
//! Everything here is blocking file work: callers run it off the executor.

use std::path::{Path, PathBuf};

use crate::{
    error::{Error, Result},
    platform,
};

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
    pub(crate) program: PathBuf,
    /// Arguments it gets.
    pub(crate) args: Vec<String>,
    /// `$HOME`.
    pub(crate) home: PathBuf,
    /// `$XDG_CONFIG_HOME` (absolute), else `$HOME/.config`.
    pub(crate) config_home: PathBuf,
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

    /// Read the registration as it is now.
    pub fn status(&self) -> Result<AutostartStatus> {
        platform::autostart::status(self)
    }

    /// Turn start-at-login on or off; returns the status read back.
    pub fn set(&self, enabled: bool) -> Result<AutostartStatus> {
        platform::autostart::set(self, enabled)
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
