//! `omnipanel-tray`: the tray's executable, which is also the panel when
//! started as `omnipanel-panel` (`program.rs` chooses).

fn main() -> std::process::ExitCode {
    omnipanel_tray::program::main()
}
