//! The system's light/dark preference, for the panel's theme. winit
//! reports no theme on X11, so it is read from the XDG desktop portal over
//! D-Bus (`org.freedesktop.portal.Settings.Read("org.freedesktop.appearance",
//! "color-scheme")`: 1 dark, 2 light, 0 no preference, which we take as
//! light) and followed through its `SettingChanged` signal, with no polling.
//! No D-Bus crate is in the build (the tray's GTK stack links libdbus but
//! exposes no API for it), so this runs glib's `gdbus` tool: one `call` and
//! one `monitor` that lives as long as the panel, both read off the UI
//! thread. `OMNIPANEL_THEME=light|dark` overrides the system (tests, users).

use std::{
    io::{BufRead as _, BufReader},
    process::{Child, Command, Stdio},
};

/// The environment variable that overrides the system preference.
pub const ENV: &str = "OMNIPANEL_THEME";

/// Light or dark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Dark text on light backgrounds (also "no preference").
    Light,
    /// Light text on dark backgrounds.
    Dark,
}

impl Scheme {
    /// The portal's `color-scheme` value: 1 is dark, anything else light.
    pub fn from_portal(value: u32) -> Self {
        if value == 1 { Self::Dark } else { Self::Light }
    }

    /// `light` or `dark` (any case); `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "light" => Some(Self::Light),
            "dark" => Some(Self::Dark),
            _ => None,
        }
    }
}

/// The scheme `OMNIPANEL_THEME` asks for, if set to a known word (an
/// unknown one is logged and ignored).
pub fn from_env() -> Option<Scheme> {
    let value = std::env::var(ENV).ok()?;
    let scheme = Scheme::parse(&value);
    if scheme.is_none() && !value.trim().is_empty() {
        tracing::warn!("{ENV}={value:?} is neither light nor dark; following the system");
    }
    scheme
}

/// The last `uint32 N` in gdbus output: `(<<uint32 1>>,)` from `Read`, or
/// a monitor line ending `<uint32 1>)`.
fn last_uint32(text: &str) -> Option<u32> {
    let (_, after) = text.rsplit_once("uint32 ")?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The scheme in the output of `gdbus call … Settings.Read`.
pub fn parse_read(output: &str) -> Option<Scheme> {
    last_uint32(output).map(Scheme::from_portal)
}

/// The scheme a `gdbus monitor` line announces, if it is the portal's
/// `SettingChanged` for the colour scheme.
pub fn parse_signal(line: &str) -> Option<Scheme> {
    if !line.contains("SettingChanged")
        || !line.contains("'org.freedesktop.appearance', 'color-scheme'")
    {
        return None;
    }
    last_uint32(line).map(Scheme::from_portal)
}

const PORTAL: [&str; 4] = [
    "--session",
    "--dest",
    "org.freedesktop.portal.Desktop",
    "--object-path",
];
const PORTAL_PATH: &str = "/org/freedesktop/portal/desktop";

/// Follow the system's scheme: `sink` gets the current one (light when the
/// portal cannot be asked) and then each change. Returns the monitor
/// process, for the caller to end when it exits; `None` when there is none
/// (no `gdbus`, no session bus), and then only the first answer comes.
pub fn follow(sink: impl Fn(Scheme) + Send + 'static) -> Option<Child> {
    // The monitor starts first so no change falls between read and watch.
    let mut monitor = Command::new("gdbus")
        .arg("monitor")
        .args(PORTAL)
        .arg(PORTAL_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| tracing::debug!("cannot run gdbus monitor: {err}"))
        .ok();
    let lines = monitor.as_mut().and_then(|m| m.stdout.take());
    let spawned = std::thread::Builder::new()
        .name("panel-theme".into())
        .spawn(move || {
            let read = Command::new("gdbus")
                .arg("call")
                .args(PORTAL)
                .arg(PORTAL_PATH)
                .args([
                    "--timeout",
                    "3",
                    "--method",
                    "org.freedesktop.portal.Settings.Read",
                    "org.freedesktop.appearance",
                    "color-scheme",
                ])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .output();
            let scheme = match read {
                Ok(out) if out.status.success() => {
                    parse_read(&String::from_utf8_lossy(&out.stdout))
                }
                Ok(_) => None,
                Err(err) => {
                    tracing::debug!("cannot run gdbus call: {err}");
                    None
                }
            };
            if scheme.is_none() {
                tracing::info!("no colour scheme from the desktop portal; using light");
            }
            sink(scheme.unwrap_or(Scheme::Light));
            let Some(lines) = lines else {
                return;
            };
            for line in BufReader::new(lines).lines() {
                let Ok(line) = line else {
                    break;
                };
                if let Some(scheme) = parse_signal(&line) {
                    sink(scheme);
                }
            }
        });
    if let Err(err) = spawned {
        tracing::warn!("cannot follow the colour scheme: {err}");
    }
    monitor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portal_values_map_to_schemes() {
        assert_eq!(Scheme::from_portal(1), Scheme::Dark);
        assert_eq!(Scheme::from_portal(2), Scheme::Light);
        // No preference reads as light.
        assert_eq!(Scheme::from_portal(0), Scheme::Light);
    }

    #[test]
    fn the_read_answer_and_the_signal_are_parsed() {
        assert_eq!(parse_read("(<<uint32 1>>,)\n"), Some(Scheme::Dark));
        assert_eq!(parse_read("(<<uint32 0>>,)\n"), Some(Scheme::Light));
        assert_eq!(parse_read("Error: no such interface"), None);
        let line = "/org/freedesktop/portal/desktop: org.freedesktop.portal.Settings.SettingChanged ('org.freedesktop.appearance', 'color-scheme', <uint32 1>)";
        assert_eq!(parse_signal(line), Some(Scheme::Dark));
        let other = "/org/freedesktop/portal/desktop: org.freedesktop.portal.Settings.SettingChanged ('org.gnome.desktop.interface', 'font-name', <'Cantarell 11'>)";
        assert_eq!(parse_signal(other), None);
        let accent = "/org/freedesktop/portal/desktop: org.freedesktop.portal.Settings.SettingChanged ('org.freedesktop.appearance', 'contrast', <uint32 1>)";
        assert_eq!(parse_signal(accent), None);
    }

    #[test]
    fn the_override_takes_light_or_dark_only() {
        assert_eq!(Scheme::parse(" Dark "), Some(Scheme::Dark));
        assert_eq!(Scheme::parse("light"), Some(Scheme::Light));
        assert_eq!(Scheme::parse("blue"), None);
    }
}
