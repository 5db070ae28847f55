//! The `omnipanel-tray` program's command line: starts the agent if none
//! runs, keeps the menu current from the agent's events, and opens the
//! panel on demand. `--export-icons DIR` writes the icon set (PNGs of every
//! size, SVGs) for packaging.

use std::{path::Path, path::PathBuf, process::ExitCode};

use crate::{
    core::{icon, launch},
    tray::tray_app,
};
use clap::Parser;

/// The OmniPanel tray icon. Without a tray host it says what to install and
/// opens the panel instead.
#[derive(Debug, Parser)]
#[command(
    name = "omnipanel-tray",
    version,
    // A flag given twice counts once (the hand-written parser took the last).
    args_override_self = true,
    after_help = "Environment: OMNIPANEL_SOCKET (agent socket), OMNIPANEL_EDITOR (command that \
                  opens a project), OMNIPANEL_LOG (log filter)."
)]
struct Args {
    /// Do not start the agent when none is running.
    #[arg(long)]
    no_start_agent: bool,
    /// Write the icon set (PNGs of every size, SVGs) into DIR and exit,
    /// for packaging.
    #[arg(long, value_name = "DIR")]
    export_icons: Option<PathBuf>,
    /// Panic on purpose to test crash reports (hidden: for tests only).
    #[arg(long, hide = true)]
    crash_test: bool,
}

/// Run the tray with the process's arguments; returns the exit code.
pub fn main() -> ExitCode {
    // First, while this is the only thread.
    launch::disable_gdk_gl();
    let args = Args::parse();
    omnipanel_crash::install_hook(
        omnipanel_paths::crash_dir(),
        omnipanel_crash::TRAY,
        env!("CARGO_PKG_VERSION"),
    );
    if args.crash_test {
        panic!("crash test requested with `omnipanel-tray --crash-test`");
    }
    crate::init_logging();
    if let Some(dir) = &args.export_icons {
        return export_icons(dir);
    }
    let options = tray_app::TrayOptions {
        no_start_agent: args.no_start_agent,
    };
    match tray_app::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn export_icons(dir: &Path) -> ExitCode {
    match icon::export(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cannot write icons to {}: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_grammar_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_parse_and_unknown_ones_are_refused() {
        let args = Args::try_parse_from(["omnipanel-tray", "--no-start-agent"]).expect("parses");
        assert!(args.no_start_agent);
        assert_eq!(args.export_icons, None);
        let args = Args::try_parse_from(["omnipanel-tray", "--export-icons", "out/icons"])
            .expect("parses");
        assert_eq!(args.export_icons, Some(PathBuf::from("out/icons")));
        let err = Args::try_parse_from(["omnipanel-tray", "--bogus"]).expect_err("refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
        let err = Args::try_parse_from(["omnipanel-tray", "--export-icons"]).expect_err("refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
    }
}
