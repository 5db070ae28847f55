//! The agent's crash reports: the shared writer and parser of
//! `omnipanel-crash` (which the tray and the panel use too), with the
//! agent's process name and stamped version filled in. The check at start
//! that reports crashes of earlier runs once is the daemon's.

use std::path::PathBuf;

pub use omnipanel_crash::{AGENT, CrashReport, list_reports, parse_report};

/// Install the panic hook that writes the agent's crash reports into
/// `crash_dir`.
pub fn install_hook(crash_dir: PathBuf) {
    omnipanel_crash::install_hook(crash_dir, AGENT, crate::version::current());
}
