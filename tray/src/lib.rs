//! OmniPanel's tray icon and popup panel, both plain clients of the agent,
//! in three layers whose dependencies point one way: [`core`] (the state
//! mirror, the backend that speaks gRPC on tokio, the pure view models and
//! icon, starting programs, one panel at a time) knows no toolkit; [`tray`]
//! (the GTK tray icon and its menu) and [`panel`] (the winit + glow + egui
//! window) each build on `core` and never on each other.

pub mod core;
pub mod panel;
pub mod tray;

/// Log to stderr, at `info` unless `OMNIPANEL_LOG` says otherwise.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OMNIPANEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
