//! The tray's executable is two programs, the tray and the panel: they
//! share GTK's link, tokio, tonic and the client, so packages install one
//! file and link `omnipanel-panel` to it. [`main`] chooses by the name the
//! executable was started under.

use std::{ffi::OsStr, path::Path, process::ExitCode};

/// The programs the executable holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// The tray icon (`omnipanel-tray`, and any other name).
    Tray,
    /// The panel window, started as `omnipanel-panel`.
    Panel,
}

/// The program an executable started as `argv0` runs: the panel for a file
/// named `omnipanel-panel` (`omnipanel-panel.exe`), the tray for anything
/// else.
pub fn program_named(argv0: Option<&OsStr>) -> Program {
    let stem = argv0.map(Path::new).and_then(Path::file_stem);
    if stem == Some(OsStr::new("omnipanel-panel")) {
        Program::Panel
    } else {
        Program::Tray
    }
}

/// Run the program this executable was started as; returns its exit code.
pub fn main() -> ExitCode {
    match program_named(std::env::args_os().next().as_deref()) {
        Program::Tray => crate::tray::command::main(),
        Program::Panel => crate::panel::command::main(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_chooses_the_program() {
        let named = |name: &str| program_named(Some(OsStr::new(name)));
        assert_eq!(named("omnipanel-panel"), Program::Panel);
        assert_eq!(named("/usr/bin/omnipanel-panel"), Program::Panel);
        assert_eq!(named("omnipanel-panel.exe"), Program::Panel);
        assert_eq!(named("omnipanel-tray"), Program::Tray);
        assert_eq!(named("/opt/x/omnipanel-tray"), Program::Tray);
        assert_eq!(program_named(None), Program::Tray);
    }
}
