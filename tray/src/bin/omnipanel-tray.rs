//! `omnipanel-tray`: the OmniPanel tray icon and menu. Starts the agent if
//! none runs, keeps the menu current from the agent's events, and opens
//! the panel on demand. `--export-icons DIR` writes the icon set (PNGs of
//! every size, SVGs) for packaging.

use std::{path::PathBuf, process::ExitCode};

use omnipanel_tray::{core::icon, tray::tray_app};

const USAGE: &str = "usage: omnipanel-tray [--no-start-agent] [--export-icons DIR]

The OmniPanel tray icon. Without a tray host it says what to install and
opens the panel instead. Environment: OMNIPANEL_SOCKET (agent socket),
OMNIPANEL_EDITOR (command that opens a project), OMNIPANEL_LOG (log filter).";

fn main() -> ExitCode {
    // First, while this is the only thread.
    omnipanel_tray::core::launch::disable_gdk_gl();
    omnipanel_tray::init_logging();
    let mut options = tray_app::TrayOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--no-start-agent" => options.no_start_agent = true,
            "--export-icons" => {
                let Some(dir) = args.next() else {
                    eprintln!("--export-icons needs a folder\n{USAGE}");
                    return ExitCode::from(2);
                };
                return export_icons(&PathBuf::from(dir));
            }
            "--version" | "-V" => {
                println!("omnipanel-tray {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    match tray_app::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

fn export_icons(dir: &std::path::Path) -> ExitCode {
    match icon::export(dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cannot write icons to {}: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}
