//! `omnipanel-panel`: the OmniPanel popup panel, an egui window in its own
//! process. A second start brings the open panel forward instead.

use std::process::ExitCode;

use omnipanel_tray::panel::{
    panel_app::{self, PanelOptions},
    panel_ui::Tab,
};

const USAGE: &str = "usage: omnipanel-panel [--tab overview|models|projects|alerts|logs|setup] [--setup] [--no-start-agent]

The OmniPanel panel. If one is open already it is brought forward.
Keys: Esc closes, Ctrl+1..5 switch tabs.";

fn main() -> ExitCode {
    omnipanel_tray::init_logging();
    let mut options = PanelOptions::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tab" => match args.next().as_deref().and_then(Tab::parse) {
                Some(tab) => options.tab = Some(tab),
                None => {
                    eprintln!(
                        "--tab needs one of overview, models, projects, alerts, logs, setup\n{USAGE}"
                    );
                    return ExitCode::from(2);
                }
            },
            "--setup" => options.setup = true,
            "--no-start-agent" => options.no_start_agent = true,
            "--version" | "-V" => {
                println!("omnipanel-panel {}", env!("CARGO_PKG_VERSION"));
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
    match panel_app::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
