//! The mirror of the agent's state that the tray and the panel draw from.
//! The backend sends [`Update`]s (results of calls and events from
//! `WatchEvents`); [`AgentState::apply`] is the one pure reducer that folds
//! them in, so every view is a function of this struct and is tested
//! without a socket or a display.

use std::collections::VecDeque;

use omnipanel_client::proto::v1::{
    AccessRequest, AccessRequestState, Alert, AlertState, AuditEntry, CheckFitResponse, Client,
    Confirmation, ConfirmationState, CrashReport, GetAutostartResponse, GetInfoResponse,
    GetThresholdsResponse, Model, Project, Provider, PullProgress, PullState,
    RepositoryChangedEvent, RunningModel, ServerStatus, Snapshot,
};

use crate::core::window_state::WindowState;
use crate::core::workspace::{
    chat::{ChatState, ChatUpdate},
    files::{FilesState, FilesUpdate},
    git::{GitState, GitUpdate},
};

/// How many metric samples the plots keep (two minutes at 1 s).
pub const HISTORY_LEN: usize = 120;
/// How many notices (results of actions) are kept.
pub const NOTICE_LEN: usize = 8;
/// How many alerts of history are kept.
pub const ALERT_HISTORY_LEN: usize = 50;
/// How many activity log entries the Audit tab keeps (the first page read,
/// then what arrives live, newest first).
pub const AUDIT_LEN: usize = 500;

/// Where the connection to the agent stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Connection {
    /// Not tried yet.
    #[default]
    Starting,
    /// Connected; the agent described itself.
    Connected(Box<GetInfoResponse>),
    /// Not connected; retrying.
    Disconnected {
        /// Why the last attempt failed.
        error: String,
        /// Attempts so far.
        attempt: u32,
        /// Whether we launched an agent ourselves (and are waiting for it).
        launched_agent: bool,
    },
}

/// The outcome of one user action, shown inline next to where it was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// What the action was about, e.g. `pull:llama3.2` or `server`.
    pub key: String,
    /// A line for a person: what happened, or the error.
    pub message: String,
    /// Whether it failed.
    pub error: bool,
}

/// A newer release the agent found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailableUpdate {
    /// Its version.
    pub version: String,
    /// The command that installs it when a package manager owns this
    /// installation (the .deb); the agent then refuses to install it.
    pub package_update: Option<String>,
}

/// One change to the mirrored state.
#[derive(Debug, Clone)]
pub enum Update {
    /// Connected (again) to the agent.
    Connected(Box<GetInfoResponse>),
    /// Lost (or could not get) the connection.
    Disconnected {
        /// Why.
        error: String,
        /// Attempts so far.
        attempt: u32,
        /// Whether we started an agent and wait for it.
        launched_agent: bool,
    },
    /// The Ollama server's status.
    Server(ServerStatus),
    /// The installed models.
    Models(Vec<Model>),
    /// The models loaded in memory.
    Running(Vec<RunningModel>),
    /// All known pulls (running and recent).
    Pulls(Vec<PullProgress>),
    /// One pull moved on.
    Pull(PullProgress),
    /// The default model changed.
    DefaultModel(String),
    /// The known projects.
    Projects(Vec<Project>),
    /// The model servers the agent knows (the whole list).
    Providers(Vec<Provider>),
    /// One provider's health changed (from a `ProviderStateChanged` event).
    ProviderState(Provider),
    /// A project's repository changed.
    Repository(RepositoryChangedEvent),
    /// Active alerts (first) and recent history.
    Alerts {
        /// Alerts currently raised.
        active: Vec<Alert>,
        /// Recent alerts, newest first (active and cleared).
        history: Vec<Alert>,
    },
    /// An alert was raised or cleared.
    Alert(Alert),
    /// The thresholds.
    Thresholds(GetThresholdsResponse),
    /// Whether the agent starts at login (`None`: the agent cannot tell).
    Autostart(Option<GetAutostartResponse>),
    /// A newer release the agent found (`None`: none, or it cannot tell).
    UpdateAvailable(Option<AvailableUpdate>),
    /// A metrics sample.
    Metrics(Box<Snapshot>),
    /// A fit check result for a model.
    Fit(String, CheckFitResponse),
    /// Log lines of a source; `reset` starts a new tail.
    Logs {
        /// `agent` or `ollama`.
        source: String,
        /// The lines, oldest first.
        lines: Vec<String>,
        /// Whether these replace what was shown.
        reset: bool,
    },
    /// The crash reports of every process, newest first (read while the
    /// Logs tab shows).
    CrashReports(Vec<CrashReport>),
    /// A bug report collected for the clipboard, as text.
    BugReport(String),
    /// The result of an action.
    Notice(Notice),
    /// The access requests waiting for the user (the whole list).
    AccessRequests(Vec<AccessRequest>),
    /// One access request in its new state (from an `access` event).
    AccessRequest(Box<AccessRequest>),
    /// The confirmations waiting for the user (the whole list).
    Confirmations(Vec<Confirmation>),
    /// One confirmation in its new state (from an `access` event).
    Confirmation(Box<Confirmation>),
    /// The admitted clients.
    Clients(Vec<Client>),
    /// Activity log entries: the first page of a (new) filter when `reset`,
    /// else entries that just happened; newest first either way.
    Audit {
        /// The entries.
        entries: Vec<AuditEntry>,
        /// Whether these replace what was shown.
        reset: bool,
    },
    /// The activity log cannot be read (an agent without it, or an error):
    /// why, for a person.
    AuditUnavailable(String),
    /// The Chat tab's side.
    Chat(ChatUpdate),
    /// The Projects tab's files side.
    Files(FilesUpdate),
    /// The Git tab's side.
    Git(GitUpdate),
    /// The panel's saved window state (`None`: none, or unreadable); the
    /// panel takes it, the state mirror keeps nothing of it.
    WindowState(Option<WindowState>),
}

/// Everything the tray and panel know about the agent.
#[derive(Debug, Clone, Default)]
pub struct AgentState {
    /// The connection.
    pub connection: Connection,
    /// Ollama's status, once known.
    pub server: Option<ServerStatus>,
    /// Installed models.
    pub models: Vec<Model>,
    /// Loaded models.
    pub running: Vec<RunningModel>,
    /// Pulls, running and finished, in the order they were first seen.
    pub pulls: Vec<PullProgress>,
    /// Known projects, most recently opened first.
    pub projects: Vec<Project>,
    /// The model servers the agent knows, "local" first.
    pub providers: Vec<Provider>,
    /// Alerts currently raised.
    pub active_alerts: Vec<Alert>,
    /// Recent alerts, newest first.
    pub alert_history: Vec<Alert>,
    /// Alert thresholds, once read.
    pub thresholds: Option<GetThresholdsResponse>,
    /// Autostart: `None` until read or when unsupported.
    pub autostart: Option<GetAutostartResponse>,
    /// A newer release, once the agent found one.
    pub update_available: Option<AvailableUpdate>,
    /// The latest metrics sample.
    pub metrics: Option<Snapshot>,
    /// Recent samples for the plots, oldest first.
    pub history: VecDeque<Snapshot>,
    /// Fit checks by model name.
    pub fits: Vec<(String, CheckFitResponse)>,
    /// The log source shown and its lines.
    pub log_source: String,
    /// Log lines, oldest first (bounded).
    pub log_lines: VecDeque<String>,
    /// Crash reports of the agent, the tray and the panel, newest first;
    /// `None` until read.
    pub crash_reports: Option<Vec<CrashReport>>,
    /// The last bug report collected for the clipboard, as text.
    pub bug_report: String,
    /// How many bug reports were collected: the panel copies the text when
    /// this moves past what it copied last.
    pub bug_reports_made: u64,
    /// Results of recent actions, newest last.
    pub notices: VecDeque<Notice>,
    /// Access requests waiting for the user, oldest first.
    pub access_requests: Vec<AccessRequest>,
    /// Destructive acts waiting for the user's answer, oldest first.
    pub confirmations: Vec<Confirmation>,
    /// Admitted clients, oldest first.
    pub clients: Vec<Client>,
    /// Activity log entries shown, newest first (bounded by [`AUDIT_LEN`]).
    pub audit: VecDeque<AuditEntry>,
    /// Why the activity log cannot be shown, when it cannot.
    pub audit_error: Option<String>,
    /// The Chat tab's conversations and streaming reply.
    pub chat: ChatState,
    /// The Projects tab's file tree, search and preview.
    pub files: FilesState,
    /// The Git tab's repository state.
    pub git: GitState,
}

/// How many log lines are kept.
pub const LOG_LEN: usize = 2000;

impl AgentState {
    /// Whether we talk to an agent right now.
    pub fn connected(&self) -> bool {
        matches!(self.connection, Connection::Connected(_))
    }

    /// The agent's version when connected.
    pub fn agent_version(&self) -> Option<&str> {
        match &self.connection {
            Connection::Connected(info) => Some(info.version.as_str()),
            _ => None,
        }
    }

    /// The default model: from the server status, else the flagged model.
    pub fn default_model(&self) -> Option<&str> {
        self.server
            .as_ref()
            .map(|s| s.default_model.as_str())
            .filter(|m| !m.is_empty())
            .or_else(|| {
                self.models
                    .iter()
                    .find(|m| m.is_default)
                    .map(|m| m.name.as_str())
            })
    }

    /// Pulls still going.
    pub fn running_pulls(&self) -> impl Iterator<Item = &PullProgress> {
        self.pulls.iter().filter(|p| pull_is_running(p))
    }

    /// The fit check of `model`, if one was made.
    pub fn fit(&self, model: &str) -> Option<&CheckFitResponse> {
        self.fits.iter().find(|(m, _)| m == model).map(|(_, f)| f)
    }

    /// The latest notice with `key`.
    pub fn notice(&self, key: &str) -> Option<&Notice> {
        self.notices.iter().rev().find(|n| n.key == key)
    }

    /// Fold one update in.
    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Connected(info) => self.connection = Connection::Connected(info),
            Update::Disconnected {
                error,
                attempt,
                launched_agent,
            } => {
                self.connection = Connection::Disconnected {
                    error,
                    attempt,
                    launched_agent,
                };
                // What we knew is stale; keep the history for the plots and
                // the notices, drop the live parts.
                self.server = None;
                self.running.clear();
                self.metrics = None;
                // Questions asked of a gone agent cannot be answered; the
                // lists are read again on reconnecting.
                self.access_requests.clear();
                self.confirmations.clear();
            }
            Update::Server(status) => self.server = Some(status),
            Update::Models(models) => self.models = models,
            Update::Running(running) => self.running = running,
            Update::Pulls(pulls) => self.pulls = pulls,
            Update::Pull(pull) => {
                match self
                    .pulls
                    .iter_mut()
                    .find(|p| p.model == pull.model && p.provider == pull.provider)
                {
                    Some(slot) => *slot = pull,
                    None => self.pulls.push(pull),
                }
            }
            Update::DefaultModel(name) => {
                if let Some(server) = self.server.as_mut() {
                    server.default_model.clone_from(&name);
                }
                for model in &mut self.models {
                    model.is_default = model.name == name;
                }
            }
            Update::Projects(projects) => self.projects = projects,
            Update::Providers(providers) => self.providers = providers,
            Update::ProviderState(provider) => {
                match self.providers.iter_mut().find(|p| p.name == provider.name) {
                    Some(slot) => *slot = provider,
                    // A provider added since the list was read.
                    None => self.providers.push(provider),
                }
            }
            Update::Repository(repo) => {
                self.git.apply(GitUpdate::Changed {
                    project: repo.project_id.clone(),
                });
                if let Some(project) = self.projects.iter_mut().find(|p| p.id == repo.project_id) {
                    let git = project.git.get_or_insert_with(Default::default);
                    git.branch = repo.branch;
                    git.detached = repo.detached;
                    git.dirty = repo.dirty;
                }
            }
            Update::Alerts { active, history } => {
                self.active_alerts = active;
                self.alert_history = history;
            }
            Update::Alert(alert) => {
                self.active_alerts.retain(|a| a.id != alert.id);
                if alert.state() == AlertState::Active {
                    self.active_alerts.push(alert.clone());
                }
                self.alert_history.retain(|a| a.id != alert.id);
                self.alert_history.insert(0, alert);
                self.alert_history.truncate(ALERT_HISTORY_LEN);
            }
            Update::Thresholds(thresholds) => self.thresholds = Some(thresholds),
            Update::Autostart(autostart) => self.autostart = autostart,
            Update::UpdateAvailable(available) => self.update_available = available,
            Update::Metrics(snapshot) => {
                if self.history.len() == HISTORY_LEN {
                    self.history.pop_front();
                }
                self.history.push_back((*snapshot).clone());
                self.metrics = Some(*snapshot);
            }
            Update::Fit(model, fit) => {
                self.fits.retain(|(m, _)| *m != model);
                self.fits.push((model, fit));
            }
            Update::Logs {
                source,
                lines,
                reset,
            } => {
                if reset || source != self.log_source {
                    self.log_lines.clear();
                    self.log_source = source;
                }
                self.log_lines.extend(lines);
                while self.log_lines.len() > LOG_LEN {
                    self.log_lines.pop_front();
                }
            }
            Update::CrashReports(reports) => self.crash_reports = Some(reports),
            Update::BugReport(text) => {
                self.bug_report = text;
                self.bug_reports_made += 1;
            }
            Update::Notice(notice) => {
                if self.notices.len() == NOTICE_LEN {
                    self.notices.pop_front();
                }
                self.notices.push_back(notice);
            }
            Update::AccessRequests(requests) => {
                self.access_requests = requests
                    .into_iter()
                    .filter(|r| r.state() == AccessRequestState::Pending)
                    .collect();
            }
            Update::AccessRequest(request) => {
                let slot = self.access_requests.iter().position(|r| r.id == request.id);
                match (slot, request.state() == AccessRequestState::Pending) {
                    (Some(i), true) => self.access_requests[i] = *request,
                    (None, true) => self.access_requests.push(*request),
                    (Some(i), false) => {
                        self.access_requests.remove(i);
                    }
                    (None, false) => {}
                }
            }
            Update::Confirmations(confirmations) => {
                self.confirmations = confirmations
                    .into_iter()
                    .filter(|c| c.state() == ConfirmationState::Pending)
                    .collect();
            }
            Update::Confirmation(confirmation) => {
                let slot = self
                    .confirmations
                    .iter()
                    .position(|c| c.id == confirmation.id);
                match (slot, confirmation.state() == ConfirmationState::Pending) {
                    (Some(i), true) => self.confirmations[i] = *confirmation,
                    (None, true) => self.confirmations.push(*confirmation),
                    (Some(i), false) => {
                        self.confirmations.remove(i);
                    }
                    (None, false) => {}
                }
            }
            Update::Clients(clients) => self.clients = clients,
            Update::Audit { entries, reset } => {
                if reset {
                    self.audit.clear();
                }
                self.audit_error = None;
                // A live entry may repeat one the first page already had
                // (the watch starts before the page is read): keep one.
                for entry in entries.into_iter().rev() {
                    self.audit.retain(|e| e.id != entry.id);
                    self.audit.push_front(entry);
                }
                self.audit
                    .make_contiguous()
                    .sort_by_key(|e| std::cmp::Reverse(e.id));
                self.audit.truncate(AUDIT_LEN);
            }
            Update::AuditUnavailable(why) => {
                self.audit.clear();
                self.audit_error = Some(why);
            }
            Update::Chat(update) => self.chat.apply(update),
            Update::Files(update) => self.files.apply(update),
            Update::Git(update) => self.git.apply(update),
            Update::WindowState(_) => {}
        }
    }

    /// Ids of the access requests and confirmations waiting now: the tray
    /// compares them before and after an update to tell what is new.
    pub fn pending_ids(&self) -> Vec<String> {
        self.access_requests
            .iter()
            .map(|r| r.id.clone())
            .chain(self.confirmations.iter().map(|c| c.id.clone()))
            .collect()
    }
}

/// Whether a pull is still transferring (or about to retry).
pub fn pull_is_running(pull: &PullProgress) -> bool {
    matches!(pull.state(), PullState::Running | PullState::Retrying)
}

/// A state that has just connected to an agent 0.1.0, for the view and
/// panel tests.
#[cfg(test)]
pub(crate) fn connected_for_tests() -> AgentState {
    let mut state = AgentState::default();
    state.apply(Update::Connected(Box::new(GetInfoResponse {
        version: "0.1.0".into(),
        ..Default::default()
    })));
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(name: &str, default: bool) -> Model {
        Model {
            name: name.into(),
            is_default: default,
            ..Default::default()
        }
    }

    #[test]
    fn default_model_change_moves_the_flag() {
        let mut state = AgentState::default();
        state.apply(Update::Models(vec![model("a", true), model("b", false)]));
        state.apply(Update::Server(ServerStatus {
            default_model: "a".into(),
            ..Default::default()
        }));
        state.apply(Update::DefaultModel("b".into()));
        assert_eq!(state.default_model(), Some("b"));
        assert!(!state.models[0].is_default);
        assert!(state.models[1].is_default);
    }

    #[test]
    fn pull_updates_replace_by_model() {
        let mut state = AgentState::default();
        let mut pull = PullProgress {
            model: "m".into(),
            state: PullState::Running as i32,
            completed_bytes: 1,
            ..Default::default()
        };
        state.apply(Update::Pull(pull.clone()));
        pull.completed_bytes = 5;
        state.apply(Update::Pull(pull.clone()));
        assert_eq!(state.pulls.len(), 1);
        assert_eq!(state.running_pulls().count(), 1);
        pull.state = PullState::Succeeded as i32;
        state.apply(Update::Pull(pull));
        assert_eq!(state.running_pulls().count(), 0);
    }

    #[test]
    fn alerts_move_between_active_and_history() {
        let mut state = AgentState::default();
        let mut alert = Alert {
            id: 7,
            metric: "cpu".into(),
            state: AlertState::Active as i32,
            ..Default::default()
        };
        state.apply(Update::Alert(alert.clone()));
        assert_eq!(state.active_alerts.len(), 1);
        alert.state = AlertState::Cleared as i32;
        state.apply(Update::Alert(alert));
        assert!(state.active_alerts.is_empty());
        assert_eq!(state.alert_history.len(), 1);
        assert_eq!(state.alert_history[0].state(), AlertState::Cleared);
    }

    #[test]
    fn disconnect_drops_live_state_and_history_is_bounded() {
        let mut state = AgentState::default();
        for _ in 0..HISTORY_LEN + 5 {
            state.apply(Update::Metrics(Box::default()));
        }
        assert_eq!(state.history.len(), HISTORY_LEN);
        state.apply(Update::Server(ServerStatus::default()));
        state.apply(Update::Disconnected {
            error: "gone".into(),
            attempt: 1,
            launched_agent: false,
        });
        assert!(state.server.is_none());
        assert!(state.metrics.is_none());
        assert!(!state.connected());
    }

    #[test]
    fn repository_event_updates_project_git() {
        let mut state = AgentState::default();
        state.apply(Update::Projects(vec![Project {
            id: "p1".into(),
            ..Default::default()
        }]));
        state.apply(Update::Repository(RepositoryChangedEvent {
            project_id: "p1".into(),
            branch: "main".into(),
            dirty: true,
            ..Default::default()
        }));
        let git = state.projects[0]
            .git
            .as_ref()
            .map(|g| (g.branch.as_str(), g.dirty));
        assert_eq!(git, Some(("main", true)));
    }

    #[test]
    fn logs_reset_on_new_source_and_are_bounded() {
        let mut state = AgentState::default();
        state.apply(Update::Logs {
            source: "agent".into(),
            lines: vec!["a".into()],
            reset: true,
        });
        state.apply(Update::Logs {
            source: "ollama".into(),
            lines: vec!["o".into(); LOG_LEN + 1],
            reset: false,
        });
        assert_eq!(state.log_source, "ollama");
        assert_eq!(state.log_lines.len(), LOG_LEN);
    }

    fn request(id: &str, state: AccessRequestState) -> AccessRequest {
        AccessRequest {
            id: id.into(),
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn access_requests_stay_while_pending_and_leave_when_answered() {
        let mut state = AgentState::default();
        state.apply(Update::AccessRequests(vec![
            request("a", AccessRequestState::Pending),
            request("old", AccessRequestState::Denied),
        ]));
        assert_eq!(state.pending_ids(), ["a"]);
        state.apply(Update::AccessRequest(Box::new(request(
            "b",
            AccessRequestState::Pending,
        ))));
        // An answer to a request never seen (made and answered while we
        // were away) adds nothing.
        state.apply(Update::AccessRequest(Box::new(request(
            "c",
            AccessRequestState::Expired,
        ))));
        assert_eq!(state.pending_ids(), ["a", "b"]);
        state.apply(Update::AccessRequest(Box::new(request(
            "a",
            AccessRequestState::Approved,
        ))));
        assert_eq!(state.pending_ids(), ["b"]);
        state.apply(Update::Disconnected {
            error: "gone".into(),
            attempt: 1,
            launched_agent: false,
        });
        assert!(state.pending_ids().is_empty());
    }

    #[test]
    fn confirmations_stay_while_pending() {
        let confirmation = |id: &str, s: ConfirmationState| Confirmation {
            id: id.into(),
            state: s as i32,
            ..Default::default()
        };
        let mut state = AgentState::default();
        state.apply(Update::Confirmations(vec![
            confirmation("x", ConfirmationState::Pending),
            confirmation("used", ConfirmationState::Used),
        ]));
        state.apply(Update::Confirmation(Box::new(confirmation(
            "y",
            ConfirmationState::Pending,
        ))));
        state.apply(Update::Confirmation(Box::new(confirmation(
            "x",
            ConfirmationState::Allowed,
        ))));
        assert_eq!(state.pending_ids(), ["y"]);
    }

    #[test]
    fn audit_keeps_newest_first_once_each_and_bounded() {
        let entry = |id: i64, count: u32| AuditEntry {
            id,
            count,
            ..Default::default()
        };
        let mut state = AgentState::default();
        state.apply(Update::AuditUnavailable("not yet".into()));
        state.apply(Update::Audit {
            entries: vec![entry(3, 1), entry(2, 1), entry(1, 1)],
            reset: true,
        });
        assert!(state.audit_error.is_none());
        // A live entry the page already had (the watch starts first), and
        // an aggregated read whose count grew: one row each, the latest.
        state.apply(Update::Audit {
            entries: vec![entry(3, 5)],
            reset: false,
        });
        state.apply(Update::Audit {
            entries: vec![entry(4, 1)],
            reset: false,
        });
        let ids: Vec<(i64, u32)> = state.audit.iter().map(|e| (e.id, e.count)).collect();
        assert_eq!(ids, [(4, 1), (3, 5), (2, 1), (1, 1)]);
        let many: Vec<AuditEntry> = (0..AUDIT_LEN as i64 + 10).map(|i| entry(i, 1)).collect();
        state.apply(Update::Audit {
            entries: many,
            reset: true,
        });
        assert_eq!(state.audit.len(), AUDIT_LEN);
        assert_eq!(
            state.audit.front().map(|e| e.id),
            Some(AUDIT_LEN as i64 + 9)
        );
        state.apply(Update::AuditUnavailable("gone".into()));
        assert!(state.audit.is_empty());
        assert_eq!(state.audit_error.as_deref(), Some("gone"));
    }
}
