//! The `omnipanel-tray` program's own code: its command line
//! ([`command`]), the menu's view model
//! ([`menu`], pure and unit-tested), the GTK thread that shows the icon and
//! menu ([`gtk_tray`]), tray-host detection and notifications ([`host`]),
//! and the main loop tying them to the backend ([`tray_app`]). Builds on
//! [`crate::core`]; never imports the panel (it starts the panel as its own
//! process).

pub mod command;
pub mod gtk_tray;
pub mod host;
pub mod menu;
pub mod tray_app;
