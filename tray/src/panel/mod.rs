//! The `omnipanel-panel` program's own code: its command line
//! ([`command`]), the GL window ([`panel_gl`],
//! winit + glutin), the egui UI that lays out [`crate::core::views`]
//! ([`panel_ui`]), and the main loop with the first-run setup
//! ([`panel_app`]). Builds on [`crate::core`]; never imports the tray.

pub mod command;
pub mod panel_app;
pub mod panel_gl;
pub mod panel_ui;
