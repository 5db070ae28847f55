//! The gRPC side, on a tokio runtime: connects to the agent (starting it
//! once if none runs), reconnects with backoff, mirrors its state from
//! `WatchEvents` (re-reading the affected lists on each event, everything
//! on connect and on a gap), streams metrics only as asked, and runs the
//! UI's [`Command`]s, each in its own task, reporting the outcome as a
//! [`Notice`]. Everything it learns leaves through the [`Sink`] as an
//! [`Update`]; it never touches a toolkit.
//!
//! This file is the interface the tray and panel use; the connection and
//! event subscription live in `session`, the reads that mirror the agent's
//! state in `refresh`, and the commands in `actions`.

mod actions;
mod chat;
mod files;
mod git;
mod refresh;
mod session;

use std::{sync::Arc, time::Duration};

use omnipanel_client::{
    Target,
    proto::v1::{Expiry, Scope, Threshold},
};
use tokio::sync::mpsc;

use crate::core::{
    state::{Notice, Update},
    window_state::WindowState,
    workspace::{chat::ChatCommand, files::FilesCommand, git::GitCommand},
};

/// Where updates go (the UI thread's event-loop proxy, wrapped).
pub type Sink = Arc<dyn Fn(Update) + Send + Sync>;

/// What the UI asks the backend to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Start the agent now (and retry connecting at once).
    StartAgent,
    /// Start Ollama.
    StartServer,
    /// Stop Ollama.
    StopServer,
    /// Restart Ollama.
    RestartServer,
    /// Make a model the default.
    SetDefault(String),
    /// Load a model into memory.
    Load(String),
    /// Unload a model.
    Unload(String),
    /// Pull a model (progress arrives as updates).
    Pull(String),
    /// Cancel a pull.
    CancelPull(String),
    /// Delete a model.
    Delete(String),
    /// Check whether a model fits.
    CheckFit(String),
    /// Register and open a project folder.
    OpenProject(String),
    /// Forget a project (by id).
    ForgetProject(String),
    /// Replace the thresholds (with the version they were read at).
    SetThresholds {
        /// The new set.
        thresholds: Vec<Threshold>,
        /// The version read; the agent refuses a stale write.
        expected_version: u64,
    },
    /// Go back to the default thresholds.
    ResetThresholds,
    /// Turn start at login on or off.
    SetAutostart(bool),
    /// Download the newer release (if not yet) and install it.
    InstallUpdate,
    /// Stop the agent.
    Shutdown,
    /// Follow a log source (`None`: stop following). Following one (the
    /// Logs tab shows) also reads the crash reports.
    Logs(Option<String>),
    /// Collect a bug report (what `omnipanel bugreport` collects) and send
    /// it as text for the clipboard.
    CopyBugReport,
    /// Admit a client that asked, with what the user chose.
    Approve(Approval),
    /// Refuse an access request (by id).
    Deny(String),
    /// Revoke an admitted client (by id): its token stops working and its
    /// open calls end.
    Revoke(String),
    /// Answer a confirmation of a destructive act.
    Answer {
        /// The confirmation's id.
        id: String,
        /// Allow (true) or deny.
        allow: bool,
        /// With allow: let the client do acts of this kind without asking
        /// for this many seconds (0: only this act).
        allow_kind_for_seconds: u32,
    },
    /// Show the activity log with these filters and follow it live (`None`:
    /// stop following; the Audit tab is not shown).
    Audit(Option<AuditFilter>),
    /// A chat command (conversations, a reply to stream or stop).
    Chat(ChatCommand),
    /// A files command (the tree, search, preview, copy in).
    Files(FilesCommand),
    /// A Git command (status, diff, stage, commit, branches, pull/push).
    Git(GitCommand),
    /// Read the panel's window state saved under this project (answered
    /// with `Update::WindowState`).
    LoadWindowState(String),
    /// Save the panel's window state under its project, and remember that
    /// project locally (nothing is saved without one).
    SaveWindowState(WindowState),
}

/// What the user chose for an access request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The request's id.
    pub id: String,
    /// The scopes granted (each asked for or implied by one asked for);
    /// empty grants what was asked.
    pub scopes: Vec<Scope>,
    /// The project folders granted (inside what was asked); empty grants
    /// what was asked.
    pub projects: Vec<String>,
    /// How long.
    pub expiry: Expiry,
}

/// Which activity log entries the Audit tab shows; empty fields match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// A client id or name.
    pub client: String,
    /// Text the method contains, e.g. "Delete" or "FileService/".
    pub method: String,
    /// An outcome: "ok" or an error reason.
    pub outcome: String,
}

impl AuditFilter {
    /// The same filter with each field trimmed (what the agent is sent).
    pub fn trimmed(&self) -> Self {
        Self {
            client: self.client.trim().to_owned(),
            method: self.method.trim().to_owned(),
            outcome: self.outcome.trim().to_owned(),
        }
    }

    /// Whether it filters anything out.
    pub fn is_empty(&self) -> bool {
        self.client.trim().is_empty()
            && self.method.trim().is_empty()
            && self.outcome.trim().is_empty()
    }
}

impl Command {
    /// The notice key of this command's outcome (where the UI shows it).
    pub fn key(&self) -> String {
        match self {
            Self::StartAgent | Self::Shutdown => "agent".to_owned(),
            Self::StartServer | Self::StopServer | Self::RestartServer => "server".to_owned(),
            Self::SetDefault(m)
            | Self::Load(m)
            | Self::Unload(m)
            | Self::Delete(m)
            | Self::CheckFit(m) => format!("model:{m}"),
            Self::Pull(_) | Self::CancelPull(_) => "pull".to_owned(),
            Self::OpenProject(_) | Self::ForgetProject(_) => "projects".to_owned(),
            Self::SetThresholds { .. } | Self::ResetThresholds => "thresholds".to_owned(),
            Self::SetAutostart(_) => "autostart".to_owned(),
            Self::InstallUpdate => "update".to_owned(),
            Self::Logs(_) => "logs".to_owned(),
            Self::CopyBugReport => "bugreport".to_owned(),
            Self::Approve(approval) => format!("access:{}", approval.id),
            Self::Deny(id) => format!("access:{id}"),
            Self::Revoke(id) => format!("client:{id}"),
            Self::Answer { id, .. } => format!("confirm:{id}"),
            Self::Audit(_) => "audit".to_owned(),
            Self::Chat(command) => command.key(),
            Self::Files(command) => command.key(),
            Self::Git(command) => command.key(),
            Self::LoadWindowState(_) | Self::SaveWindowState(_) => "window-state".to_owned(),
        }
    }
}

/// Which metrics the UI wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metrics {
    /// A stream at this interval (the panel, while open).
    Live(Duration),
    /// Ride along with the alert evaluator: a stream at the alert interval
    /// when alerts are on (the agent samples then anyway, so it costs
    /// nothing extra), else one snapshot per connection (the tray).
    WithAlerts,
}

/// How the backend behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the agent is.
    pub target: Target,
    /// Start the agent if none answers on the first try.
    pub launch_agent: bool,
    /// Metrics wanted.
    pub metrics: Metrics,
}

/// Shortest wait before reconnecting.
pub const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest wait before reconnecting.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The wait after `attempt` failed tries (1-based): doubling from
/// [`MIN_BACKOFF`] up to [`MAX_BACKOFF`].
pub fn backoff(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
    MIN_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Start the backend on `runtime`; commands go in through the sender.
/// Dropping the sender stops it.
pub fn spawn(
    runtime: &tokio::runtime::Handle,
    options: Options,
    sink: Sink,
) -> mpsc::UnboundedSender<Command> {
    let (tx, rx) = mpsc::unbounded_channel();
    runtime.spawn(session::run(options, sink, rx));
    tx
}

/// Report the outcome of the work behind `key`.
fn notice(sink: &Sink, key: impl Into<String>, result: Result<String, String>) {
    let (message, error) = match result {
        Ok(m) => (m, false),
        Err(m) => (m, true),
    };
    sink(Update::Notice(Notice {
        key: key.into(),
        message,
        error,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), MIN_BACKOFF);
        assert_eq!(backoff(2), MIN_BACKOFF * 2);
        assert_eq!(backoff(3), MIN_BACKOFF * 4);
        assert_eq!(backoff(100), MAX_BACKOFF);
        assert_eq!(backoff(0), MIN_BACKOFF);
    }

    #[test]
    fn commands_report_where_the_ui_asked() {
        assert_eq!(Command::Load("m".into()).key(), "model:m");
        assert_eq!(Command::Delete("m".into()).key(), "model:m");
        assert_eq!(Command::StopServer.key(), "server");
        assert_eq!(Command::Pull("x".into()).key(), "pull");
        assert_eq!(Command::Deny("r1".into()).key(), "access:r1");
        let approval = Approval {
            id: "r1".into(),
            scopes: Vec::new(),
            projects: Vec::new(),
            expiry: Expiry::Hour,
        };
        assert_eq!(Command::Approve(approval).key(), "access:r1");
        assert_eq!(Command::Revoke("c1".into()).key(), "client:c1");
        let answer = Command::Answer {
            id: "k1".into(),
            allow: true,
            allow_kind_for_seconds: 0,
        };
        assert_eq!(answer.key(), "confirm:k1");
    }

    #[test]
    fn audit_filters_are_sent_trimmed() {
        let filter = AuditFilter {
            client: " vs code ".into(),
            method: "\tDelete".into(),
            outcome: String::new(),
        };
        assert!(!filter.is_empty());
        assert_eq!(filter.trimmed().client, "vs code");
        assert_eq!(filter.trimmed().method, "Delete");
        assert!(AuditFilter::default().is_empty());
        let blank = AuditFilter {
            client: "  ".into(),
            ..AuditFilter::default()
        };
        assert!(blank.is_empty());
    }
}
