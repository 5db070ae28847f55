//! The `omnipanel-panel` program's command line: the egui panel window
//! in its own process. A second start brings the open panel forward
//! instead.

use std::process::ExitCode;

use crate::panel::{
    panel_app::{self, PanelOptions},
    panel_ui::Tab,
};
use clap::{
    Parser,
    builder::{PossibleValuesParser, TypedValueParser},
};

/// The OmniPanel panel. If one is open already it is brought forward.
#[derive(Debug, Parser)]
#[command(
    name = "omnipanel-panel",
    version,
    // A flag given twice counts once (the hand-written parser took the last).
    args_override_self = true,
    after_help = "Keys: Esc closes, Ctrl+1..9 switch tabs."
)]
struct Args {
    /// The tab to show first.
    #[arg(long, value_parser = tab_parser(), ignore_case = true)]
    tab: Option<Tab>,
    /// Show the first-run setup even if it was done.
    #[arg(long)]
    setup: bool,
    /// Do not start the agent when none is running.
    #[arg(long)]
    no_start_agent: bool,
    /// Panic on purpose to test crash reports (hidden: for tests only).
    #[arg(long, hide = true)]
    crash_test: bool,
}

/// The tabs `--tab` takes (listed in `--help`), each read by `Tab::parse`
/// as a second panel's "focus" message is.
const TABS: [&str; 10] = [
    "overview", "chat", "projects", "git", "models", "alerts", "logs", "clients", "audit", "setup",
];

fn tab_parser() -> impl TypedValueParser<Value = Tab> {
    PossibleValuesParser::new(TABS).try_map(|name| Tab::parse(&name).ok_or("not a panel tab"))
}

/// Run the panel with the process's arguments; returns the exit code.
pub fn main() -> ExitCode {
    let args = Args::parse();
    omnipanel_crash::install_hook(
        omnipanel_paths::crash_dir(),
        omnipanel_crash::PANEL,
        env!("CARGO_PKG_VERSION"),
    );
    if args.crash_test {
        panic!("crash test requested with `omnipanel-panel --crash-test`");
    }
    crate::init_logging();
    let options = PanelOptions {
        tab: args.tab,
        setup: args.setup,
        no_start_agent: args.no_start_agent,
    };
    match panel_app::run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
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
    fn every_listed_tab_is_a_tab() {
        for name in TABS {
            assert!(Tab::parse(name).is_some(), "{name}");
        }
    }

    #[test]
    fn flags_parse_and_bad_ones_are_refused() {
        let args = Args::try_parse_from(["omnipanel-panel", "--tab", "Models", "--setup"])
            .expect("parses");
        assert_eq!(args.tab, Some(Tab::Models));
        assert!(args.setup && !args.no_start_agent);
        let args = Args::try_parse_from(["omnipanel-panel", "--no-start-agent"]).expect("parses");
        assert_eq!(args.tab, None);
        assert!(args.no_start_agent);
        let err = Args::try_parse_from(["omnipanel-panel", "--tab", "nope"]).expect_err("refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::InvalidValue);
        let err = Args::try_parse_from(["omnipanel-panel", "extra"]).expect_err("refused");
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
