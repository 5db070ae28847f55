//! `omnipanel-panel`, as cargo builds it: the tray's executable again,
//! under the panel's name, so development builds have both programs.
//! Packages install one file and a link (`scripts/package`); either way
//! the name chooses the program (`program.rs`).

fn main() -> std::process::ExitCode {
    omnipanel_tray::program::main()
}
