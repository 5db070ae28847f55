//! View models shared by the tray menu and the panel: agent state in, the
//! lines and rows to show out. Pure functions, unit-tested; the GTK and
//! egui code only lays these out. The words inside (sizes, rates,
//! durations, state and verdict names) come from
//! [`omnipanel_client::display`], so the tray, the panel and the CLI write
//! them the same way.

use omnipanel_client::{
    display,
    proto::v1::{
        AccessRequest, Alert, AuditEntry, Client, Comparison, ConfirmKind, Confirmation, Model,
        Peer, Project, PullProgress, PullState, Scope, ServerState, Snapshot,
    },
};

use crate::core::state::{AgentState, Connection};

/// What the tray icon shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IconState {
    /// Connected, Ollama fine, nothing raised.
    Ok,
    /// A pull is running.
    Busy,
    /// An alert is raised.
    Warning,
    /// Ollama crashed or failed.
    Error,
    /// The agent is unreachable.
    Disconnected,
}

impl IconState {
    /// Every state, for drawing all icons.
    pub const ALL: [Self; 5] = [
        Self::Ok,
        Self::Busy,
        Self::Warning,
        Self::Error,
        Self::Disconnected,
    ];

    /// A short name (file names, logs).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Busy => "busy",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Disconnected => "disconnected",
        }
    }
}

/// The icon for `state`: disconnected, then error, warning, busy, ok.
pub fn icon_state(state: &AgentState) -> IconState {
    if !state.connected() {
        return IconState::Disconnected;
    }
    let server_failed = state
        .server
        .as_ref()
        .is_some_and(|s| matches!(s.state(), ServerState::Crashed | ServerState::Backoff));
    if server_failed {
        IconState::Error
    } else if !state.active_alerts.is_empty() {
        IconState::Warning
    } else if state.running_pulls().next().is_some() {
        IconState::Busy
    } else {
        IconState::Ok
    }
}

/// The fraction of a pull done, 0.0..=1.0 (0 when the size is unknown).
pub fn pull_fraction(pull: &PullProgress) -> f32 {
    if pull.total_bytes == 0 {
        return 0.0;
    }
    let fraction = pull.completed_bytes as f64 / pull.total_bytes as f64;
    fraction.clamp(0.0, 1.0) as f32
}

/// One line for a pull: `llama3.2: 42% · 1.2 GB of 2.0 GB · 35 MB/s · 25s left`.
pub fn pull_line(pull: &PullProgress) -> String {
    let name = &pull.model;
    match pull.state() {
        PullState::Succeeded => format!("{name}: done"),
        PullState::Failed => format!("{name}: failed: {}", pull.error),
        PullState::Cancelled => format!("{name}: cancelled"),
        PullState::Retrying => format!("{name}: retrying (attempt {})", pull.attempt),
        PullState::Running | PullState::Unspecified => {
            if pull.total_bytes == 0 {
                let status = if pull.status.is_empty() {
                    "starting"
                } else {
                    pull.status.as_str()
                };
                return format!("{name}: {status}");
            }
            let mut line = format!(
                "{name}: {}% · {} of {}",
                display::percent(pull.completed_bytes, pull.total_bytes),
                display::bytes(pull.completed_bytes),
                display::bytes(pull.total_bytes)
            );
            if pull.bytes_per_second > 0 {
                line.push_str(" · ");
                line.push_str(&display::rate(pull.bytes_per_second));
            }
            if pull.eta_seconds > 0 {
                line.push_str(&format!(
                    " · {} left",
                    display::duration_short(pull.eta_seconds)
                ));
            }
            line
        }
    }
}

/// Which server controls make sense in a state: (start, stop, restart).
pub fn server_controls(state: Option<ServerState>) -> (bool, bool, bool) {
    match state {
        Some(ServerState::Stopped | ServerState::Crashed | ServerState::Backoff) => {
            (true, false, true)
        }
        Some(ServerState::Running | ServerState::External) => (false, true, true),
        Some(ServerState::Starting) => (false, true, false),
        _ => (false, false, false),
    }
}

/// A provider and its health for the menu and the panel: "lmstudio —
/// up", "gpu-box — down: connection refused".
pub fn provider_line(provider: &omnipanel_client::proto::v1::Provider) -> String {
    format!(
        "{} — {}",
        provider.name,
        display::provider_state_line(provider)
    )
}

/// `Ollama 0.5.1: running · default llama3.2`.
pub fn server_line(state: &AgentState) -> String {
    let Some(server) = &state.server else {
        return "Ollama: unknown".to_owned();
    };
    let mut line = "Ollama".to_owned();
    if !server.version.is_empty() {
        line.push(' ');
        line.push_str(&server.version);
    }
    line.push_str(": ");
    line.push_str(display::server_state_label(server.state()));
    if let Some(model) = state.default_model() {
        line.push_str(" · default ");
        line.push_str(model);
    }
    line
}

/// Percent of memory used in a sample.
pub fn memory_percent(snapshot: &Snapshot) -> Option<f64> {
    let memory = snapshot.memory.as_ref()?;
    if memory.total_bytes == 0 {
        return None;
    }
    let percent = memory.used_bytes as f64 * 100.0 / memory.total_bytes as f64;
    Some(percent)
}

/// Percent of VRAM used over all GPUs, when there is one.
pub fn vram_percent(snapshot: &Snapshot) -> Option<f64> {
    let gpu = snapshot.gpu.as_ref()?;
    let total: u64 = gpu.gpus.iter().map(|g| g.memory_total_bytes).sum();
    if total == 0 {
        return None;
    }
    let used: u64 = gpu.gpus.iter().map(|g| g.memory_used_bytes).sum();
    let percent = used as f64 * 100.0 / total as f64;
    Some(percent)
}

/// Network throughput summed over interfaces: (rx, tx) bytes per second.
pub fn network_rates(snapshot: &Snapshot) -> (f64, f64) {
    snapshot.networks.iter().fold((0.0, 0.0), |(rx, tx), n| {
        (rx + n.rx_bytes_per_second, tx + n.tx_bytes_per_second)
    })
}

/// `CPU 12% · RAM 6.1 GB/16 GB · VRAM 2.0 GB/8.0 GB` (VRAM only with a GPU).
pub fn metrics_line(snapshot: &Snapshot) -> String {
    let mut parts = Vec::new();
    if let Some(cpu) = &snapshot.cpu {
        parts.push(format!("CPU {:.0}%", cpu.usage_percent));
    }
    if let Some(memory) = &snapshot.memory {
        parts.push(format!(
            "RAM {}/{}",
            display::bytes(memory.used_bytes),
            display::bytes(memory.total_bytes)
        ));
    }
    if let Some(gpu) = &snapshot.gpu {
        let total: u64 = gpu.gpus.iter().map(|g| g.memory_total_bytes).sum();
        if total > 0 {
            let used: u64 = gpu.gpus.iter().map(|g| g.memory_used_bytes).sum();
            parts.push(format!(
                "VRAM {}/{}",
                display::bytes(used),
                display::bytes(total)
            ));
        }
    }
    if parts.is_empty() {
        "no readings yet".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// The header line: `OmniPanel 0.1.0` or why we are not connected.
pub fn agent_line(state: &AgentState) -> String {
    match &state.connection {
        Connection::Starting => "OmniPanel: connecting…".to_owned(),
        Connection::Connected(info) => format!("OmniPanel {}", info.version),
        Connection::Disconnected {
            launched_agent: true,
            ..
        } => "OmniPanel: starting the agent…".to_owned(),
        Connection::Disconnected { .. } => "OmniPanel: agent not running".to_owned(),
    }
}

/// An alert as one line: `cpu above 90 (now 97.2) on core 3`.
pub fn alert_line(alert: &Alert) -> String {
    let op = match alert.comparison() {
        Comparison::Below => "below",
        _ => "above",
    };
    let mut line = format!(
        "{} {op} {} (peak {:.1})",
        alert.metric,
        display::trim_float(alert.threshold_value),
        alert.peak_value
    );
    if !alert.subject.is_empty() {
        line.push_str(" on ");
        line.push_str(&alert.subject);
    }
    line
}

/// One row of the models table.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// The model's name.
    pub name: String,
    /// `4.7 GB`.
    pub size: String,
    /// `8B Q4_K_M`.
    pub details: String,
    /// Whether it is the default.
    pub is_default: bool,
    /// Whether it is loaded, and in how much VRAM (`2.0 GB VRAM`).
    pub loaded: Option<String>,
    /// The fit verdict, if checked.
    pub fit: Option<String>,
}

/// The models table: installed models, default first then by name.
pub fn model_rows(state: &AgentState) -> Vec<ModelRow> {
    let default = state.default_model().map(str::to_owned);
    let mut models: Vec<&Model> = state.models.iter().collect();
    models.sort_by(|a, b| {
        let a_default = Some(&a.name) == default.as_ref();
        let b_default = Some(&b.name) == default.as_ref();
        b_default.cmp(&a_default).then_with(|| a.name.cmp(&b.name))
    });
    models
        .into_iter()
        .map(|m| {
            let loaded = state.running.iter().find(|r| r.name == m.name).map(|r| {
                if r.size_vram_bytes > 0 {
                    format!("{} VRAM", display::bytes(r.size_vram_bytes))
                } else {
                    format!("{} RAM", display::bytes(r.size_bytes))
                }
            });
            ModelRow {
                name: m.name.clone(),
                size: display::bytes(m.size_bytes),
                details: display::model_details(m),
                is_default: Some(&m.name) == default.as_ref() || m.is_default,
                loaded,
                fit: state
                    .fit(&m.name)
                    .map(|f| display::fit_label(f.verdict()).to_owned()),
            }
        })
        .collect()
}

/// One row of the projects list.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRow {
    /// The project id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its folder.
    pub path: String,
    /// `main*` (branch, `*` when dirty), empty without git.
    pub git: String,
    /// Whether the folder still exists.
    pub exists: bool,
    /// Its preferred model as a model string; `None`: the default model.
    pub model: Option<String>,
}

/// The recent projects, most recently opened first.
pub fn project_rows(projects: &[Project]) -> Vec<ProjectRow> {
    let mut sorted: Vec<&Project> = projects.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.last_opened_unix_ms));
    sorted
        .into_iter()
        .map(|p| ProjectRow {
            id: p.id.clone(),
            name: if p.name.is_empty() {
                p.path.clone()
            } else {
                p.name.clone()
            },
            path: p.path.clone(),
            git: p
                .git
                .as_ref()
                .filter(|g| !g.branch.is_empty() || g.detached)
                .map(|g| {
                    let branch = if g.detached { "(detached)" } else { &g.branch };
                    format!("{branch}{}", if g.dirty { "*" } else { "" })
                })
                .unwrap_or_default(),
            exists: p.exists,
            model: display::preferred_model(p),
        })
        .collect()
}

/// Scopes as [`display::scope_names`] writes them, in the API's order
/// (read before write, whatever order the client asked in), without
/// `status`, which every client has ("status" alone when nothing else).
pub fn scope_text(scopes: &[i32]) -> String {
    let mut sorted: Vec<i32> = scopes
        .iter()
        .copied()
        .filter(|s| *s != Scope::Status as i32)
        .collect();
    sorted.sort_unstable();
    sorted.dedup();
    display::scope_names(&sorted)
}

/// What an access request's notification and card call the client: its
/// name as it gave it, marked as its own claim.
pub fn self_declared(name: &str) -> String {
    let name = name.trim();
    if name.is_empty() {
        "An unnamed client (self-declared)".to_owned()
    } else {
        format!("{name} (self-declared)")
    }
}

/// The projects asked for or granted: "~/app, ~/lib", or "every project"
/// for none named (every project inside `access.project_roots`).
pub fn project_list(projects: &[String], home: &str) -> String {
    if projects.is_empty() {
        "every project".to_owned()
    } else {
        projects
            .iter()
            .map(|p| display::home_relative(p, home))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The desktop notification of a new access request: summary and body,
/// e.g. "VS Code (self-declared) asks for read, write on ~/app — code
/// 123-456".
pub fn access_request_notification(request: &AccessRequest, home: &str) -> (String, String) {
    let body = format!(
        "{} asks for {} on {} — code {}",
        self_declared(&request.client_name),
        scope_text(&request.scopes),
        project_list(&request.projects, home),
        request.code
    );
    ("OmniPanel: a client asks for access".to_owned(), body)
}

/// What a confirmation asks, as a sentence: "VS Code wants to delete model
/// llama3:70b (40 GB)".
pub fn confirmation_line(confirmation: &Confirmation) -> String {
    let name = match confirmation.client_name.trim() {
        "" => "A client",
        name => name,
    };
    let what = if confirmation.summary.trim().is_empty() {
        display::confirm_kind_label(confirmation.kind).to_owned()
    } else {
        confirmation.summary.trim().to_owned()
    };
    format!("{name} wants to {what}")
}

/// The desktop notification of a new confirmation: summary and body.
pub fn confirmation_notification(confirmation: &Confirmation) -> (String, String) {
    (
        "OmniPanel: confirm a destructive act".to_owned(),
        confirmation_line(confirmation),
    )
}

/// How much of a process's command line a request card shows.
pub const COMMAND_CHARS: usize = 120;

/// The processes behind a connection, caller first: "pid 4242 ·
/// /usr/bin/code · code --folder ~/app"; or the TCP address.
pub fn peer_lines(peer: Option<&Peer>) -> Vec<String> {
    let Some(peer) = peer else {
        return vec!["not known".to_owned()];
    };
    if peer.transport == "tcp" || !peer.address.is_empty() {
        return vec![format!("TCP from {}", display::or_dash(&peer.address))];
    }
    if peer.processes.is_empty() {
        return vec!["not known (the process had gone)".to_owned()];
    }
    peer.processes
        .iter()
        .map(|p| {
            let mut line = format!("pid {}", p.pid);
            line.push_str(" · ");
            line.push_str(display::or_dash(&p.executable));
            let mut command = display::one_line(&p.command_line);
            // A launcher's command line can be a screenful (a whole
            // environment as JSON) and would push the buttons out of
            // sight; the start names the program well enough.
            if let Some((cut, _)) = command.char_indices().nth(COMMAND_CHARS) {
                command.truncate(cut);
                command.push('…');
            }
            if command != "-" {
                line.push_str(" · ");
                line.push_str(&command);
            }
            line
        })
        .collect()
}

/// The scopes a user may grant a request, each with whether it starts
/// ticked: those asked for, ticked, and those they imply (write implies
/// read; admin everything), unticked, so the user can narrow "write" to
/// "read". Status is never listed: every client has it.
pub fn scope_choices(asked: &[i32]) -> Vec<(Scope, bool)> {
    let asked: Vec<Scope> = asked
        .iter()
        .filter_map(|s| Scope::try_from(*s).ok())
        .filter(|s| !matches!(s, Scope::Unspecified | Scope::Status))
        .collect();
    let implied = |scope: Scope| match scope {
        Scope::Read | Scope::Infer => asked
            .iter()
            .any(|a| *a == Scope::Admin || (*a == Scope::Write && scope == Scope::Read)),
        Scope::Write => asked.contains(&Scope::Admin),
        _ => false,
    };
    [Scope::Read, Scope::Infer, Scope::Write, Scope::Admin]
        .into_iter()
        .filter_map(|scope| {
            if asked.contains(&scope) {
                Some((scope, true))
            } else if implied(scope) {
                Some((scope, false))
            } else {
                None
            }
        })
        .collect()
}

/// A pending access request as the panel's card shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestCard {
    /// The request's id.
    pub id: String,
    /// The code to compare with what the client shows.
    pub code: String,
    /// "VS Code (self-declared)".
    pub client: String,
    /// Its reason, in its own words (self-declared); empty if none.
    pub reason: String,
    /// What it asks: "read, write on ~/app".
    pub asks: String,
    /// How long it would like: "1 hour".
    pub wants_for: &'static str,
    /// The calling process and its parents, caller first.
    pub peer: Vec<String>,
    /// "1m52s left".
    pub expires: String,
    /// The scopes the user may tick, and whether each starts ticked.
    pub scopes: Vec<(Scope, bool)>,
    /// The project folders asked for (empty: every project).
    pub projects: Vec<String>,
}

/// The cards of the pending access requests, oldest first.
pub fn request_cards(requests: &[AccessRequest], home: &str, now_ms: i64) -> Vec<RequestCard> {
    requests
        .iter()
        .map(|r| RequestCard {
            id: r.id.clone(),
            code: r.code.clone(),
            client: self_declared(&r.client_name),
            reason: r.reason.trim().to_owned(),
            asks: format!(
                "{} on {}",
                scope_text(&r.scopes),
                project_list(&r.projects, home)
            ),
            wants_for: display::expiry_label(r.expiry),
            peer: peer_lines(r.peer.as_ref()),
            expires: display::time_left(r.expires_unix_ms, now_ms),
            scopes: scope_choices(&r.scopes),
            projects: r.projects.clone(),
        })
        .collect()
}

/// A pending confirmation as the panel shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmationCard {
    /// Its id.
    pub id: String,
    /// "VS Code wants to delete model llama3:70b (40 GB)".
    pub line: String,
    /// "delete a model · ModelService/DeleteModel · ~/app".
    pub details: String,
    /// Whether "allow this kind for this client for 1 hour" is offered
    /// (never for force push, which is asked every time).
    pub offer_kind: bool,
    /// "1m52s left".
    pub expires: String,
}

/// The cards of the pending confirmations, oldest first.
pub fn confirmation_cards(
    confirmations: &[Confirmation],
    home: &str,
    now_ms: i64,
) -> Vec<ConfirmationCard> {
    confirmations
        .iter()
        .map(|c| {
            let mut details = vec![display::confirm_kind_label(c.kind).to_owned()];
            if !c.method.is_empty() {
                details.push(c.method.clone());
            }
            if !c.project.is_empty() {
                details.push(display::home_relative(&c.project, home));
            }
            ConfirmationCard {
                id: c.id.clone(),
                line: confirmation_line(c),
                details: details.join(" · "),
                offer_kind: c.kind() != ConfirmKind::ForcePush,
                expires: display::time_left(c.expires_unix_ms, now_ms),
            }
        })
        .collect()
}

/// One admitted client in the panel's list.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRow {
    /// Its id (what Revoke sends).
    pub id: String,
    /// Its name.
    pub name: String,
    /// "read, write".
    pub scopes: String,
    /// "~/app" or "every project".
    pub projects: String,
    /// "in 59 minutes", "never", "when the agent stops".
    pub expires: String,
    /// "3 minutes ago", "never".
    pub last_used: String,
    /// Whether it has calls open now.
    pub connected: bool,
}

/// The admitted clients, connected ones first, then by name.
pub fn client_rows(clients: &[Client], home: &str, now_ms: i64) -> Vec<ClientRow> {
    let mut rows: Vec<ClientRow> = clients
        .iter()
        .map(|c| ClientRow {
            id: c.id.clone(),
            name: if c.name.trim().is_empty() {
                c.id.clone()
            } else {
                c.name.clone()
            },
            scopes: scope_text(&c.scopes),
            projects: project_list(&c.projects, home),
            expires: display::grant_end(c.expires_unix_ms, c.this_run_only, now_ms),
            last_used: display::relative_to(c.last_used_unix_ms, now_ms),
            connected: c.open_calls > 0,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.connected
            .cmp(&a.connected)
            .then_with(|| a.name.cmp(&b.name))
    });
    rows
}

impl ClientRow {
    /// Whether the row matches what was typed in the Clients tab's filter:
    /// every word, without case, in its name, id, scopes or projects.
    pub fn matches(&self, filter: &str) -> bool {
        let haystack = format!(
            "{} {} {} {}",
            self.name, self.id, self.scopes, self.projects
        )
        .to_lowercase();
        filter
            .split_whitespace()
            .all(|word| haystack.contains(&word.to_lowercase()))
    }
}

/// One row of the Audit tab's table.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRow {
    /// Its id.
    pub id: i64,
    /// "5 minutes ago" (the exact time on hover: [`AuditRow::at`]).
    pub when: String,
    /// RFC 3339, UTC.
    pub at: String,
    /// The client's name (or id).
    pub client: String,
    /// The calling process, when known: "pid 4242 /usr/bin/code".
    pub process: String,
    /// The method, with "×12" for aggregated reads.
    pub method: String,
    /// What it acted on.
    pub target: String,
    /// "ok" or the error's reason.
    pub outcome: String,
    /// Whether the outcome was not "ok".
    pub refused: bool,
}

/// The Audit tab's rows, newest first.
pub fn audit_rows<'a>(
    entries: impl IntoIterator<Item = &'a AuditEntry>,
    now_ms: i64,
) -> Vec<AuditRow> {
    entries
        .into_iter()
        .map(|e| AuditRow {
            id: e.id,
            when: display::relative_to(e.time_unix_ms, now_ms),
            at: display::timestamp(e.time_unix_ms),
            client: if e.client_name.is_empty() {
                e.client_id.clone()
            } else {
                e.client_name.clone()
            },
            process: if e.peer_pid == 0 {
                String::new()
            } else {
                format!("pid {} {}", e.peer_pid, e.peer_executable)
                    .trim_end()
                    .to_owned()
            },
            method: if e.count > 1 {
                format!("{} ×{}", e.method, e.count)
            } else {
                e.method.clone()
            },
            target: e.target.clone(),
            outcome: e.outcome.clone(),
            refused: e.outcome != "ok",
        })
        .collect()
}

/// The tray menu's and the Clients tab's count of what waits for the
/// user: (access requests, confirmations).
pub fn waiting(state: &AgentState) -> (usize, usize) {
    (state.access_requests.len(), state.confirmations.len())
}

/// The desktop notifications to show after an update: one for each
/// access request or confirmation waiting now whose id was not waiting
/// before (`before`: [`AgentState::pending_ids`] then). Each comes with its
/// id, so a caller can also skip one it already showed (after a
/// reconnect, the same question is read again).
pub fn new_questions(
    before: &[String],
    state: &AgentState,
    home: &str,
) -> Vec<(String, (String, String))> {
    let requests = state
        .access_requests
        .iter()
        .filter(|r| !before.contains(&r.id))
        .map(|r| (r.id.clone(), access_request_notification(r, home)));
    let confirmations = state
        .confirmations
        .iter()
        .filter(|c| !before.contains(&c.id))
        .map(|c| (c.id.clone(), confirmation_notification(c)));
    requests.chain(confirmations).collect()
}

/// Folders typed to narrow a request ("~/app, /srv/site"): each trimmed,
/// `~` made the home folder; blanks dropped.
pub fn folders_from_text(text: &str, home: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(|f| match f.strip_prefix('~') {
            Some(rest) if !home.is_empty() && (rest.is_empty() || rest.starts_with('/')) => {
                format!("{}{rest}", home.trim_end_matches('/'))
            }
            _ => f.to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use omnipanel_client::proto::v1::{
        AlertState, CpuMetrics, GitSummary, Gpu, GpuMetrics, MemoryMetrics, RunningModel,
        ServerStatus,
    };

    use super::*;
    use crate::core::state::Update;

    fn connected() -> AgentState {
        crate::core::state::connected_for_tests()
    }

    /// The case issue 13 names: 999.6 MB printed "1000 MB" in the tray and
    /// "1 GB" in the CLI. Both now write [`display::bytes`]'s "1.0 GB", here
    /// where people read it: a model's size, what it holds loaded, a pull.
    #[test]
    fn sizes_just_under_a_gigabyte_read_as_the_cli_writes_them() {
        const SIZE: u64 = 999_600_000;
        let mut state = connected();
        state.apply(Update::Models(vec![Model {
            name: "m".into(),
            size_bytes: SIZE,
            ..Default::default()
        }]));
        state.apply(Update::Running(vec![RunningModel {
            name: "m".into(),
            size_vram_bytes: SIZE,
            ..Default::default()
        }]));
        let rows = model_rows(&state);
        assert_eq!(rows[0].size, "1.0 GB");
        assert_eq!(rows[0].size, display::bytes(SIZE));
        assert_eq!(rows[0].loaded.as_deref(), Some("1.0 GB VRAM"));
        let pull = PullProgress {
            model: "m".into(),
            state: PullState::Running as i32,
            completed_bytes: SIZE,
            total_bytes: 2 * SIZE,
            bytes_per_second: SIZE,
            ..Default::default()
        };
        assert_eq!(pull_line(&pull), "m: 50% · 1.0 GB of 2.0 GB · 1.0 GB/s");
    }

    #[test]
    fn pull_line_has_percent_speed_and_eta() {
        let pull = PullProgress {
            model: "llama3.2".into(),
            state: PullState::Running as i32,
            completed_bytes: 1_000_000_000,
            total_bytes: 2_000_000_000,
            bytes_per_second: 35_000_000,
            eta_seconds: 29,
            ..Default::default()
        };
        assert_eq!(
            pull_line(&pull),
            "llama3.2: 50% · 1.0 GB of 2.0 GB · 35 MB/s · 29s left"
        );
        assert!((pull_fraction(&pull) - 0.5).abs() < f32::EPSILON);
        // Rounded down, as the CLI does: a pull never reads 100% unfinished.
        let nearly = PullProgress {
            completed_bytes: 1_995_000_000,
            bytes_per_second: 0,
            eta_seconds: 0,
            ..pull
        };
        assert_eq!(pull_line(&nearly), "llama3.2: 99% · 2.0 GB of 2.0 GB");
    }

    #[test]
    fn icon_state_priorities() {
        let mut state = AgentState::default();
        assert_eq!(icon_state(&state), IconState::Disconnected);
        state = connected();
        assert_eq!(icon_state(&state), IconState::Ok);
        state.apply(Update::Pull(PullProgress {
            model: "m".into(),
            state: PullState::Running as i32,
            ..Default::default()
        }));
        assert_eq!(icon_state(&state), IconState::Busy);
        state.apply(Update::Alert(Alert {
            id: 1,
            state: AlertState::Active as i32,
            ..Default::default()
        }));
        assert_eq!(icon_state(&state), IconState::Warning);
        state.apply(Update::Server(ServerStatus {
            state: ServerState::Crashed as i32,
            ..Default::default()
        }));
        assert_eq!(icon_state(&state), IconState::Error);
    }

    #[test]
    fn server_controls_follow_state() {
        assert_eq!(
            server_controls(Some(ServerState::Stopped)),
            (true, false, true)
        );
        assert_eq!(
            server_controls(Some(ServerState::Running)),
            (false, true, true)
        );
        assert_eq!(
            server_controls(Some(ServerState::NotInstalled)),
            (false, false, false)
        );
        assert_eq!(server_controls(None), (false, false, false));
    }

    #[test]
    fn metrics_line_mentions_vram_only_with_a_gpu() {
        let mut snapshot = Snapshot {
            cpu: Some(CpuMetrics {
                usage_percent: 12.4,
                ..Default::default()
            }),
            memory: Some(MemoryMetrics {
                total_bytes: 16_000_000_000,
                used_bytes: 6_100_000_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(metrics_line(&snapshot), "CPU 12% · RAM 6.1 GB/16 GB");
        snapshot.gpu = Some(GpuMetrics {
            gpus: vec![Gpu {
                memory_total_bytes: 8_000_000_000,
                memory_used_bytes: 2_000_000_000,
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(metrics_line(&snapshot).ends_with("VRAM 2.0 GB/8.0 GB"));
        assert_eq!(vram_percent(&snapshot), Some(25.0));
        assert!(memory_percent(&snapshot).is_some_and(|p| (p - 38.125).abs() < 1e-9));
    }

    #[test]
    fn model_rows_put_default_first_and_show_loaded() {
        let mut state = connected();
        state.apply(Update::Models(vec![
            Model {
                name: "a".into(),
                size_bytes: 2_000_000_000,
                parameter_size: "3B".into(),
                quantization_level: "Q4_K_M".into(),
                ..Default::default()
            },
            Model {
                name: "b".into(),
                ..Default::default()
            },
        ]));
        state.apply(Update::DefaultModel("b".into()));
        state.apply(Update::Running(vec![RunningModel {
            name: "a".into(),
            size_vram_bytes: 2_000_000_000,
            ..Default::default()
        }]));
        let rows = model_rows(&state);
        assert_eq!(rows[0].name, "b");
        assert!(rows[0].is_default);
        assert_eq!(rows[1].details, "3B Q4_K_M");
        assert_eq!(rows[1].loaded.as_deref(), Some("2.0 GB VRAM"));
    }

    #[test]
    fn project_rows_show_branch_and_dirty() {
        let projects = vec![
            Project {
                id: "1".into(),
                path: "/old".into(),
                last_opened_unix_ms: 1,
                ..Default::default()
            },
            Project {
                id: "2".into(),
                name: "new".into(),
                path: "/new".into(),
                last_opened_unix_ms: 2,
                git: Some(GitSummary {
                    branch: "main".into(),
                    dirty: true,
                    detached: false,
                }),
                ..Default::default()
            },
        ];
        let rows = project_rows(&projects);
        assert_eq!(rows[0].name, "new");
        assert_eq!(rows[0].git, "main*");
        assert_eq!(rows[1].name, "/old");
        assert_eq!(rows[1].git, "");
    }

    #[test]
    fn alert_line_reads_well() {
        let alert = Alert {
            metric: "cpu_percent".into(),
            comparison: Comparison::Above as i32,
            threshold_value: 90.0,
            peak_value: 97.26,
            subject: "core 3".into(),
            ..Default::default()
        };
        assert_eq!(
            alert_line(&alert),
            "cpu_percent above 90 (peak 97.3) on core 3"
        );
    }

    fn vs_code(projects: &[&str]) -> AccessRequest {
        AccessRequest {
            id: "r1".into(),
            code: "123-456".into(),
            client_name: "VS Code".into(),
            scopes: vec![Scope::Write as i32, Scope::Read as i32],
            projects: projects.iter().map(|p| (*p).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn an_access_request_notification_names_the_claim_scopes_projects_and_code() {
        let (summary, body) = access_request_notification(&vs_code(&["/home/u/app"]), "/home/u");
        assert_eq!(summary, "OmniPanel: a client asks for access");
        assert_eq!(
            body,
            "VS Code (self-declared) asks for read, write on ~/app — code 123-456"
        );
        let (_, body) = access_request_notification(&vs_code(&[]), "/home/u");
        assert!(body.contains("on every project"), "{body}");
        // The CLI asks for status too; every client has it, so it is not
        // news.
        let mut request = vs_code(&[]);
        request.scopes.push(Scope::Status as i32);
        let (_, body) = access_request_notification(&request, "/home/u");
        assert!(body.contains("asks for read, write on"), "{body}");
    }

    #[test]
    fn a_confirmation_reads_as_a_sentence() {
        use omnipanel_client::proto::v1::ConfirmKind;
        let mut confirmation = Confirmation {
            client_name: "VS Code".into(),
            kind: ConfirmKind::DeleteModel as i32,
            summary: "delete model llama3:70b".into(),
            ..Default::default()
        };
        assert_eq!(
            confirmation_notification(&confirmation).1,
            "VS Code wants to delete model llama3:70b"
        );
        confirmation.summary.clear();
        confirmation.client_name.clear();
        assert_eq!(
            confirmation_line(&confirmation),
            "A client wants to delete a model"
        );
    }

    #[test]
    fn only_questions_not_waiting_before_are_announced() {
        use omnipanel_client::proto::v1::AccessRequestState;
        let mut state = connected();
        let mut request = vs_code(&[]);
        request.state = AccessRequestState::Pending as i32;
        state.apply(Update::AccessRequest(Box::new(request.clone())));
        let new = new_questions(&[], &state, "/home/u");
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].0, "r1");
        assert!(new_questions(&state.pending_ids(), &state, "/home/u").is_empty());
    }

    #[test]
    fn scope_choices_offer_what_was_asked_and_what_it_implies() {
        let choices =
            |asked: &[Scope]| scope_choices(&asked.iter().map(|s| *s as i32).collect::<Vec<_>>());
        assert_eq!(
            choices(&[Scope::Write]),
            [(Scope::Read, false), (Scope::Write, true)]
        );
        assert_eq!(
            choices(&[Scope::Read, Scope::Status]),
            [(Scope::Read, true)]
        );
        assert_eq!(
            choices(&[Scope::Admin]),
            [
                (Scope::Read, false),
                (Scope::Infer, false),
                (Scope::Write, false),
                (Scope::Admin, true)
            ]
        );
    }

    #[test]
    fn a_request_card_shows_the_peer_chain_and_the_claims() {
        use omnipanel_client::proto::v1::{Peer, PeerProcess};
        let mut request = vs_code(&["/home/u/app"]);
        request.reason = "  lint  ".into();
        request.expires_unix_ms = 1_000_120_000;
        request.peer = Some(Peer {
            transport: "socket".into(),
            processes: vec![
                PeerProcess {
                    pid: 9,
                    executable: "/usr/bin/code".into(),
                    command_line: "code\n--x".into(),
                },
                PeerProcess {
                    pid: 1,
                    executable: String::new(),
                    command_line: String::new(),
                },
            ],
            address: String::new(),
        });
        let cards = request_cards(&[request], "/home/u", 1_000_000_000);
        let card = &cards[0];
        assert_eq!(card.client, "VS Code (self-declared)");
        assert_eq!(card.reason, "lint");
        assert_eq!(card.asks, "read, write on ~/app");
        assert_eq!(card.peer, ["pid 9 · /usr/bin/code · code --x", "pid 1 · -"]);
        assert_eq!(card.expires, "2m00s left");
        let tcp = Peer {
            transport: "tcp".into(),
            processes: Vec::new(),
            address: "10.0.0.2:5555".into(),
        };
        assert_eq!(peer_lines(Some(&tcp)), ["TCP from 10.0.0.2:5555"]);
        let long = Peer {
            transport: "socket".into(),
            processes: vec![PeerProcess {
                pid: 2,
                executable: "/bin/launcher".into(),
                command_line: "x".repeat(1024),
            }],
            address: String::new(),
        };
        let line = &peer_lines(Some(&long))[0];
        assert!(line.ends_with('…') && line.len() < 200, "{line}");
    }

    #[test]
    fn clients_list_connected_first_with_their_grant() {
        let now = 1_000_000_000_000;
        let clients = [
            Client {
                id: "a".into(),
                name: "Zed".into(),
                scopes: vec![Scope::Read as i32],
                expires_unix_ms: now + 3_600_000,
                last_used_unix_ms: now - 180_000,
                open_calls: 1,
                ..Default::default()
            },
            Client {
                id: "b".into(),
                name: "Aider".into(),
                projects: vec!["/home/u/app".into()],
                ..Default::default()
            },
        ];
        let rows = client_rows(&clients, "/home/u", now);
        assert_eq!(rows[0].name, "Zed");
        assert!(rows[0].connected);
        assert_eq!(rows[0].expires, "in 1 hour");
        assert_eq!(rows[0].last_used, "3 minutes ago");
        assert_eq!(rows[1].projects, "~/app");
        assert_eq!(rows[1].scopes, "status");
        assert_eq!(rows[1].expires, "never");
        assert_eq!(rows[1].last_used, "never");
        // The Clients tab's filter: every word, any case, any column.
        assert!(rows[1].matches(""));
        assert!(rows[1].matches("aider ~/APP"));
        assert!(rows[1].matches("status"));
        assert!(!rows[1].matches("aider data"));
        assert!(rows[0].matches("zed read"));
    }

    #[test]
    fn audit_rows_mark_refusals_and_aggregates() {
        let entries = [AuditEntry {
            id: 1,
            time_unix_ms: 1_000_000_000_000,
            client_id: "c1".into(),
            peer_pid: 42,
            peer_executable: "/usr/bin/code".into(),
            method: "FileService/ReadFile".into(),
            outcome: "PERMISSION_DENIED".into(),
            count: 12,
            ..Default::default()
        }];
        let rows = audit_rows(&entries, 1_000_000_300_000);
        assert_eq!(rows[0].when, "5 minutes ago");
        assert_eq!(rows[0].client, "c1");
        assert_eq!(rows[0].process, "pid 42 /usr/bin/code");
        assert_eq!(rows[0].method, "FileService/ReadFile ×12");
        assert!(rows[0].refused);
    }

    #[test]
    fn typed_folders_expand_the_home_folder() {
        assert_eq!(
            folders_from_text(" ~/app, /srv/x ,,~", "/home/u/"),
            ["/home/u/app", "/srv/x", "/home/u"]
        );
        assert_eq!(folders_from_text("~other/x", "/home/u"), ["~other/x"]);
        assert!(folders_from_text("  ", "/home/u").is_empty());
    }
}
