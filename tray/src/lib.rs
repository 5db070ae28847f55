//! OmniPanel's tray icon and popup panel, both plain clients of the agent.
//! The state mirror ([`state`]), the menu and panel view models ([`menu`],
//! [`views`]) and the icon ([`icon`]) are pure and unit-tested; the backend
//! ([`backend`]) speaks gRPC on tokio; the toolkit glue (GTK tray, winit +
//! glow + egui panel) only lays out what those produce.

pub mod backend;
pub mod gtk_tray;
pub mod host;
pub mod icon;
pub mod launch;
pub mod menu;
pub mod panel_app;
pub mod panel_gl;
pub mod panel_ui;
pub mod single;
pub mod state;
pub mod tray_app;
pub mod views;

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
