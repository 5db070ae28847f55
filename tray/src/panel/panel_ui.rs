//! What the panel draws, with egui: a header with the connection, tabs
//! (Setup on first run, Overview, Chat, Projects, Git, Models, Alerts,
//! Logs, Clients, Audit; the chat, files and Git views in their own
//! modules), and each action's result inline where it was asked. The Clients
//! tab answers what waits for the user (access requests, confirmations)
//! and lists the admitted clients; the Audit tab shows the activity log. Rows and lines come
//! from [`crate::core::views`], single words from
//! [`omnipanel_client::display`]; this file only lays them out and turns
//! clicks into backend [`Command`]s (sent, never awaited: the UI never blocks).

use std::collections::{HashMap, HashSet};

use egui::{Color32, Key, RichText};
use egui_plot::{Legend, Line, Plot, PlotPoints};
use omnipanel_client::{
    display,
    proto::v1::{Comparison, ServerState, Threshold},
};

use crate::core::{
    backend::{AuditFilter, Command},
    launch,
    state::{AgentState, Connection},
    views,
};

mod alerts;
mod audit;
mod chat;
mod clients;
mod files;
mod git;
mod header;
mod logs;
mod models;
mod overview;
mod providers;
#[cfg(test)]
mod test_panel;

pub use clients::ALLOW_KIND_SECONDS;
use clients::Choice;

/// The model the setup suggests: small enough for any laptop.
pub const SUGGESTED_MODEL: &str = "llama3.2:1b";

/// The panel's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// First-run setup.
    Setup,
    /// Machine and Ollama at a glance.
    Overview,
    /// Chat with a model, conversations kept per project.
    Chat,
    /// The projects, and the selected one's files: tree, go to file,
    /// text search, preview.
    Projects,
    /// The selected project's repository.
    Git,
    /// Installed models and pulls.
    Models,
    /// Alerts and thresholds.
    Alerts,
    /// Agent and Ollama logs.
    Logs,
    /// Access requests, confirmations and admitted clients.
    Clients,
    /// The activity log.
    Audit,
}

impl Tab {
    /// The tabs reachable with Ctrl+1..9, in order.
    pub const MAIN: [Self; 9] = [
        Self::Overview,
        Self::Chat,
        Self::Projects,
        Self::Git,
        Self::Models,
        Self::Alerts,
        Self::Logs,
        Self::Clients,
        Self::Audit,
    ];

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Setup => "Setup",
            Self::Overview => "Overview",
            Self::Chat => "Chat",
            Self::Projects => "Projects",
            Self::Git => "Git",
            Self::Models => "Models",
            Self::Alerts => "Alerts",
            Self::Logs => "Logs",
            Self::Clients => "Clients",
            Self::Audit => "Audit",
        }
    }

    /// The tab named on the command line or by a second `open`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Setup]
            .into_iter()
            .chain(Self::MAIN)
            .find(|t| t.title().eq_ignore_ascii_case(name.trim()))
    }

    /// The tab of Ctrl+`digit` (1-based).
    pub fn for_digit(digit: usize) -> Option<Self> {
        digit
            .checked_sub(1)
            .and_then(|i| Self::MAIN.get(i).copied())
    }
}

/// The panel's own UI state (what is typed, what awaits an answer).
#[derive(Debug)]
pub struct PanelUi {
    /// The tab shown.
    pub tab: Tab,
    /// Whether the setup tab is offered.
    pub show_setup: bool,
    /// Set when the user asked to close (Esc).
    pub close: bool,
    /// Set when the user finished the setup.
    pub setup_finished: bool,
    pull_name: String,
    project_path: String,
    confirm_delete: Option<String>,
    thresholds: Option<(u64, Vec<Threshold>)>,
    log_source: String,
    follow: bool,
    following: Option<String>,
    pending: HashSet<String>,
    opened: Option<(String, bool)>,
    home: String,
    /// What the user ticked on each access request card, by request id.
    choices: HashMap<String, Choice>,
    /// The client whose revocation awaits "Revoke" or "Cancel": (id, name).
    revoking: Option<(String, String)>,
    /// The Audit tab's filter as typed, and as applied (sent).
    audit_typed: AuditFilter,
    audit_filter: AuditFilter,
    audit_following: Option<AuditFilter>,
    /// The project the Chat, Projects (files) and Git tabs work on (its
    /// id); `None`: the most recently opened one.
    project: Option<String>,
    /// The project whose changes the backend follows.
    watching: Option<String>,
    chat: chat::ChatTab,
    files: files::FilesTab,
    git: git::GitTab,
    /// Bug reports put on the clipboard (see `AgentState::bug_reports_made`).
    bug_reports_copied: u64,
    /// What the Clients tab's admitted list is filtered by.
    clients_filter: String,
}

impl PanelUi {
    /// A panel opening on `tab`.
    pub fn new(tab: Tab, show_setup: bool, home: &str) -> Self {
        Self {
            tab,
            show_setup,
            close: false,
            setup_finished: false,
            pull_name: String::new(),
            project_path: home.to_owned(),
            confirm_delete: None,
            thresholds: None,
            log_source: "agent".to_owned(),
            follow: true,
            following: None,
            pending: HashSet::new(),
            opened: None,
            home: home.to_owned(),
            choices: HashMap::new(),
            revoking: None,
            audit_typed: AuditFilter::default(),
            audit_filter: AuditFilter::default(),
            audit_following: None,
            project: None,
            watching: None,
            chat: chat::ChatTab::default(),
            files: files::FilesTab::default(),
            git: git::GitTab::default(),
            bug_reports_copied: 0,
            clients_filter: String::new(),
        }
    }

    /// The project the Chat, Projects and Git tabs work on: the one picked,
    /// else the most recently opened open one.
    pub fn current_project<'a>(
        &self,
        state: &'a AgentState,
    ) -> Option<&'a omnipanel_client::proto::v1::Project> {
        match &self.project {
            Some(id) => state.projects.iter().find(|p| &p.id == id),
            None => state.projects.iter().find(|p| p.open),
        }
    }

    /// Work on project `id` from now on.
    pub fn select_project(&mut self, id: Option<String>) {
        self.project = id;
    }

    /// The project whose file changes to follow now (`None`: none): the
    /// one shown, while the Projects tab shows; the app sends a
    /// `Command::Files(FilesCommand::Watch(..))` when this changes.
    pub fn wanted_watch(&self, state: &AgentState) -> Option<String> {
        (self.tab == Tab::Projects)
            .then(|| self.current_project(state))
            .flatten()
            .filter(|p| p.open)
            .map(|p| p.id.clone())
    }

    /// Remember which project's changes the backend follows.
    pub fn set_watching(&mut self, project: Option<String>) {
        self.watching = project;
    }

    /// The project whose changes the backend follows.
    pub fn watching(&self) -> Option<&String> {
        self.watching.as_ref()
    }

    /// The follow commands to send after a frame: the log, the activity
    /// log and the project's file watch are followed only while their tab
    /// shows, and each change of what is wanted is sent once. The panel's
    /// loop and the live tests both call this, so they cannot drift apart.
    pub fn follow_changes(&mut self, state: &AgentState) -> Vec<Command> {
        let mut commands = Vec::new();
        let wanted = self.wanted_logs();
        if wanted.as_ref() != self.following() {
            self.set_following(wanted.clone());
            commands.push(Command::Logs(wanted));
        }
        let wanted = self.wanted_audit();
        if wanted.as_ref() != self.audit_following() {
            self.set_audit_following(wanted.clone());
            commands.push(Command::Audit(wanted));
        }
        let wanted = self.wanted_watch(state);
        if wanted.as_ref() != self.watching() {
            self.set_watching(wanted.clone());
            commands.push(Command::Files(
                crate::core::workspace::files::FilesCommand::Watch(wanted),
            ));
        }
        commands
    }

    /// The activity log filter to follow now (`None`: none); the app sends
    /// a `Command::Audit` when this changes.
    pub fn wanted_audit(&self) -> Option<AuditFilter> {
        (self.tab == Tab::Audit).then(|| self.audit_filter.clone())
    }

    /// Remember which activity log filter the backend follows.
    pub fn set_audit_following(&mut self, filter: Option<AuditFilter>) {
        self.audit_following = filter;
    }

    /// The activity log filter the backend follows.
    pub fn audit_following(&self) -> Option<&AuditFilter> {
        self.audit_following.as_ref()
    }

    /// An action's answer arrived.
    pub fn answered(&mut self, key: &str) {
        self.pending.remove(key);
    }

    /// The log source to follow now (`None`: none); the app sends a
    /// `Command::Logs` when this changes.
    pub fn wanted_logs(&self) -> Option<String> {
        (self.tab == Tab::Logs && self.follow).then(|| self.log_source.clone())
    }

    /// Remember which log source the backend follows.
    pub fn set_following(&mut self, source: Option<String>) {
        self.following = source;
    }

    /// The log source the backend follows.
    pub fn following(&self) -> Option<&String> {
        self.following.as_ref()
    }

    /// Draw everything; `send` passes commands to the backend.
    pub fn show(&mut self, ui: &mut egui::Ui, state: &AgentState, send: &mut dyn FnMut(Command)) {
        ui.ctx()
            .data_mut(|d| d.remove_temp::<Vec<String>>(errors_id()));
        self.keys(ui);
        self.copy_bug_report(ui, state);
        // Views push commands here; they are sent (and marked pending)
        // after drawing, so no view needs the backend.
        let mut out: Vec<Command> = Vec::new();
        if self.tab != Tab::Git {
            self.git.hidden();
        }
        egui::Panel::top("header").show(ui, |ui| self.header(ui, state, &mut out));
        // The latest result that says something (silent ones, like the
        // window state's saves, leave the hint or the last message).
        let last = state.notices.iter().rev().find(|n| !n.message.is_empty());
        egui::Panel::bottom("notices").show(ui, |ui| match last {
            Some(n) => notice_label(ui, &n.message, n.error),
            None => {
                ui.weak("Esc closes · Ctrl+1..9 switch tabs · Ctrl+K go to file");
            }
        });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show(ui, |ui| match self.tab {
                    Tab::Setup => self.setup(ui, state, &mut out),
                    Tab::Overview => self.overview(ui, state, &mut out),
                    Tab::Chat => {
                        let project = self.current_project(state).cloned();
                        self.chat.show(ui, state, project.as_ref(), &mut out);
                    }
                    Tab::Projects => {
                        self.projects(ui, state, &mut out);
                        let project = self.current_project(state).cloned();
                        self.files.show(ui, state, project.as_ref(), &mut out);
                    }
                    Tab::Git => {
                        let project = self.current_project(state).cloned();
                        self.git
                            .show(ui, state, project.as_ref(), &self.pending, &mut out);
                    }
                    Tab::Models => self.models(ui, state, &mut out),
                    Tab::Alerts => self.alerts(ui, state, &mut out),
                    Tab::Logs => self.logs(ui, state, &mut out),
                    Tab::Clients => self.clients(ui, state, &mut out),
                    Tab::Audit => self.audit(ui, state),
                });
        });
        for command in out {
            self.pending.insert(command.key());
            send(command);
        }
    }

    fn keys(&mut self, ui: &egui::Ui) {
        let (escape, digit, goto) = ui.input(|i| {
            let digits = [
                Key::Num1,
                Key::Num2,
                Key::Num3,
                Key::Num4,
                Key::Num5,
                Key::Num6,
                Key::Num7,
                Key::Num8,
                Key::Num9,
            ];
            let digit = if i.modifiers.ctrl || i.modifiers.command {
                digits.iter().position(|k| i.key_pressed(*k)).map(|p| p + 1)
            } else {
                None
            };
            let goto = i.modifiers.command && i.key_pressed(Key::K);
            (i.key_pressed(Key::Escape), digit, goto)
        });
        // Esc closes the open dialog first, the panel only when none is.
        if escape
            && self.revoking.take().is_none()
            && !self.chat.close_dialog()
            && !self.files.close_dialog()
            && !self.git.close_dialog()
        {
            self.close = true;
        }
        if goto {
            self.tab = Tab::Projects;
            self.files.open_goto();
        }
        if let Some(tab) = digit.and_then(Tab::for_digit) {
            self.tab = tab;
        }
    }

    fn notice(&self, ui: &mut egui::Ui, state: &AgentState, key: &str) {
        notice(&self.pending, ui, state, key);
    }

    fn server_box(&self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            ui.strong(views::server_line(state));
        });
        let server_state = state.server.as_ref().map(|s| s.state());
        if let Some(server) = &state.server {
            if !server.last_error.is_empty() {
                notice_label(ui, &server.last_error, true);
            }
            if server_state == Some(ServerState::NotInstalled) {
                ui.label("Install Ollama from https://ollama.com/download (Linux: curl -fsSL https://ollama.com/install.sh | sh), then press Start.");
            }
        }
        let (start, stop, restart) = views::server_controls(server_state);
        ui.horizontal(|ui| {
            let not_installed = server_state == Some(ServerState::NotInstalled);
            if ui
                .add_enabled(start || not_installed, egui::Button::new("Start"))
                .clicked()
            {
                out.push(Command::StartServer);
            }
            if ui.add_enabled(stop, egui::Button::new("Stop")).clicked() {
                out.push(Command::StopServer);
            }
            if ui
                .add_enabled(restart, egui::Button::new("Restart"))
                .clicked()
            {
                out.push(Command::RestartServer);
            }
        });
        self.notice(ui, state, "server");
    }

    fn setup(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.heading("Welcome to OmniPanel");
        ui.label("Three steps and you are done.");
        ui.separator();
        ui.strong("1. Ollama");
        self.server_box(ui, state, out);
        ui.separator();
        ui.strong(format!("2. A first model: {SUGGESTED_MODEL}"));
        ui.horizontal(|ui| {
            if ui.button("Will it fit?").clicked() {
                out.push(Command::CheckFit(SUGGESTED_MODEL.to_owned()));
            }
            if ui.button("Pull it").clicked() {
                out.push(Command::Pull(SUGGESTED_MODEL.to_owned()));
            }
        });
        if let Some(fit) = state.fit(SUGGESTED_MODEL) {
            ui.label(format!(
                "{}: {}",
                display::fit_label(fit.verdict()),
                fit.explanation
            ));
        }
        self.notice(ui, state, &format!("model:{SUGGESTED_MODEL}"));
        pulls(ui, state, out);
        self.notice(ui, state, "pull");
        ui.separator();
        ui.strong("3. A projects folder");
        ui.horizontal(|ui| {
            ui.text_edit_singleline(&mut self.project_path);
            if ui.button("Open project").clicked() && !self.project_path.trim().is_empty() {
                out.push(Command::OpenProject(self.project_path.trim().to_owned()));
            }
        });
        self.notice(ui, state, "projects");
        ui.separator();
        if ui.button("Done").clicked() {
            self.setup_finished = true;
            self.show_setup = false;
            self.tab = Tab::Overview;
        }
    }

    fn projects(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            let label = ui.label("Open a folder as a project:");
            ui.text_edit_singleline(&mut self.project_path)
                .labelled_by(label.id);
            if ui.button("Add").clicked() && !self.project_path.trim().is_empty() {
                out.push(Command::OpenProject(self.project_path.trim().to_owned()));
            }
        });
        self.notice(ui, state, "projects");
        if let Some((message, error)) = &self.opened {
            notice_label(ui, message, *error);
        }
        ui.separator();
        let rows = views::project_rows(&state.projects);
        let current = self.current_project(state).map(|p| p.id.clone());
        if rows.is_empty() {
            ui.weak("No projects yet.");
        }
        egui::Grid::new("projects")
            .striped(true)
            .num_columns(5)
            .show(ui, |ui| {
                for row in rows {
                    ui.strong(&row.name).on_hover_text(&row.path);
                    match &row.model {
                        Some(model) => ui.label(format!("model {model}")),
                        None => ui.weak("default model"),
                    }
                    .on_hover_text(format!(
                        "set with `omnipanel models default MODEL --project {}`",
                        row.path
                    ));
                    ui.label(if row.git.is_empty() {
                        "–".to_owned()
                    } else {
                        row.git.clone()
                    });
                    if !row.exists {
                        ui.colored_label(Color32::from_rgb(0xfb, 0x8c, 0x00), "folder missing");
                    } else {
                        ui.weak(&row.path);
                    }
                    ui.horizontal(|ui| {
                        if ui
                            .add_enabled(row.exists, egui::Button::new("Open"))
                            .clicked()
                            && let Err(err) = launch::open_path(&row.path)
                        {
                            tracing::warn!("{err}");
                        }
                        // The project whose files show below (and that the
                        // Chat and Git tabs work on).
                        let selected = current.as_ref() == Some(&row.id);
                        if ui
                            .add(egui::Button::selectable(selected, "Select"))
                            .on_hover_text("Show its files below; Chat and Git work on it too")
                            .clicked()
                        {
                            self.select_project(Some(row.id.clone()));
                        }
                        if ui.button("Forget").clicked() {
                            out.push(Command::ForgetProject(row.id.clone()));
                        }
                    });
                    ui.end_row();
                }
            });
    }
}

fn pulls(ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
    for pull in &state.pulls {
        ui.horizontal(|ui| {
            let running = crate::core::state::pull_is_running(pull);
            ui.add(
                egui::ProgressBar::new(views::pull_fraction(pull))
                    .text(views::pull_line(pull))
                    .desired_width(420.0),
            );
            if running && ui.button("Cancel").clicked() {
                out.push(Command::CancelPull(pull.model.clone()));
            }
        });
    }
}

/// The state of the action `key`: a spinner while it runs, then its result.
fn notice(pending: &HashSet<String>, ui: &mut egui::Ui, state: &AgentState, key: &str) {
    if pending.contains(key) {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.weak("working…");
        });
    } else if let Some(n) = state.notice(key) {
        notice_label(ui, &n.message, n.error);
    }
}

fn errors_id() -> egui::Id {
    egui::Id::unique("omnipanel-errors-shown")
}

/// The errors (red notices) the last frame showed, in drawing order: the
/// screenshot test's "no tab shows an error" reads them.
pub fn errors_shown(ctx: &egui::Context) -> Vec<String> {
    ctx.data(|d| d.get_temp::<Vec<String>>(errors_id()))
        .unwrap_or_default()
}

/// A result in place: green, or red for an error (also recorded for
/// [`errors_shown`]).
fn notice_label(ui: &mut egui::Ui, message: &str, error: bool) {
    if message.is_empty() {
        return;
    }
    let color = if error {
        ui.ctx().data_mut(|d| {
            d.get_temp_mut_or_default::<Vec<String>>(errors_id())
                .push(message.to_owned());
        });
        Color32::from_rgb(0xe5, 0x39, 0x35)
    } else {
        Color32::from_rgb(0x43, 0xa0, 0x47)
    };
    ui.label(RichText::new(message).color(color));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::panel::panel_ui::test_panel::{self, Panel};

    #[test]
    fn ctrl_digits_pick_main_tabs() {
        assert_eq!(Tab::for_digit(1), Some(Tab::Overview));
        assert_eq!(Tab::for_digit(2), Some(Tab::Chat));
        assert_eq!(Tab::for_digit(4), Some(Tab::Git));
        assert_eq!(Tab::for_digit(7), Some(Tab::Logs));
        assert_eq!(Tab::for_digit(8), Some(Tab::Clients));
        assert_eq!(Tab::for_digit(9), Some(Tab::Audit));
        assert_eq!(Tab::for_digit(0), None);
        assert_eq!(Tab::for_digit(10), None);
    }

    #[test]
    fn tabs_parse_by_title() {
        assert_eq!(Tab::parse("models"), Some(Tab::Models));
        assert_eq!(Tab::parse(" Setup "), Some(Tab::Setup));
        assert_eq!(Tab::parse("clients"), Some(Tab::Clients));
        assert_eq!(Tab::parse("Audit"), Some(Tab::Audit));
        assert_eq!(Tab::parse("nope"), None);
    }

    #[test]
    fn logs_are_followed_only_on_the_logs_tab() {
        let mut ui = PanelUi::new(Tab::Overview, false, "/home/u");
        assert_eq!(ui.wanted_logs(), None);
        ui.tab = Tab::Logs;
        assert_eq!(ui.wanted_logs().as_deref(), Some("agent"));
        ui.follow = false;
        assert_eq!(ui.wanted_logs(), None);
    }

    /// The panel driven through its accessibility tree, as a person with a
    /// mouse or keyboard would: what it shows and what it sends.
    mod kittest {
        use egui_kittest::{Harness, kittest::Queryable};
        use omnipanel_client::proto::v1::{
            AccessRequest, AccessRequestState, Client, ConfirmKind, Confirmation,
            ConfirmationState, Expiry, Peer, PeerProcess, Scope,
        };

        use super::*;
        use crate::core::{backend::Approval, state::Update};

        fn harness(state: AgentState) -> Harness<'static, Panel> {
            harness_on(Tab::Clients, state)
        }

        fn harness_on(tab: Tab, state: AgentState) -> Harness<'static, Panel> {
            test_panel::harness(tab, state, 900.0, 1400.0)
        }

        fn connected() -> AgentState {
            crate::core::state::connected_for_tests()
        }

        #[test]
        fn the_models_tab_lists_providers_with_their_health() {
            let mut state = connected();
            state.apply(Update::Providers(vec![
                omnipanel_client::proto::v1::Provider {
                    name: "local".into(),
                    local: true,
                    url: "http://127.0.0.1:11434".into(),
                    state: omnipanel_client::proto::v1::ProviderState::Up as i32,
                    ..Default::default()
                },
                omnipanel_client::proto::v1::Provider {
                    name: "gpu-box".into(),
                    kind: omnipanel_client::proto::v1::ProviderKind::Openai as i32,
                    url: "http://gpu-box:8000/v1".into(),
                    state: omnipanel_client::proto::v1::ProviderState::Down as i32,
                    last_error: "connection refused".into(),
                    has_token: true,
                    ..Default::default()
                },
            ]));
            let harness = harness_on(Tab::Models, state);
            harness.get_by_label("Providers");
            harness.get_by_label("gpu-box");
            harness.get_by_label("openai");
            harness.get_by_label("down: connection refused");
            harness.get_by_label("http://gpu-box:8000/v1");
            harness.get_by_label("ollama (local)");
        }

        fn vs_code_request() -> AccessRequest {
            AccessRequest {
                id: "r1".into(),
                code: "123-456".into(),
                client_name: "VS Code".into(),
                scopes: vec![Scope::Read as i32, Scope::Write as i32],
                projects: vec!["/home/u/app".into()],
                reason: "edit your project".into(),
                peer: Some(Peer {
                    transport: "socket".into(),
                    processes: vec![
                        PeerProcess {
                            pid: 4242,
                            executable: "/usr/share/code/code".into(),
                            command_line: "code --extension omnipanel".into(),
                        },
                        PeerProcess {
                            pid: 17,
                            executable: "/usr/bin/bash".into(),
                            command_line: "bash".into(),
                        },
                    ],
                    address: String::new(),
                }),
                state: AccessRequestState::Pending as i32,
                expiry: Expiry::Day as i32,
                ..Default::default()
            }
        }

        fn confirmation(kind: ConfirmKind, summary: &str) -> Confirmation {
            Confirmation {
                id: "k1".into(),
                client_id: "c1".into(),
                client_name: "VS Code".into(),
                kind: kind as i32,
                summary: summary.into(),
                method: "ModelService/DeleteModel".into(),
                state: ConfirmationState::Pending as i32,
                ..Default::default()
            }
        }

        #[test]
        fn a_pending_request_shows_what_is_known_and_is_narrowed_then_allowed() {
            let mut state = connected();
            state.apply(Update::AccessRequest(Box::new(vs_code_request())));
            let mut harness = harness(state);
            harness.run();
            // What is really known, and the client's claims marked as such.
            harness.get_by_label("VS Code (self-declared)");
            harness.get_by_label("Reason (self-declared): edit your project");
            harness.get_by_label("123-456");
            harness.get_by_label_contains("pid 4242 · /usr/share/code/code · code --extension");
            harness.get_by_label_contains("parent pid 17 · /usr/bin/bash");
            harness.get_by_label("Asks for read, write on ~/app · for how long: 1 day");
            harness.get_by_label("Clients (1)");
            // Narrow to read only, then allow for an hour.
            harness.get_by_label("write").click();
            harness.run();
            harness.get_by_label("Allow for 1 hour").click();
            harness.run();
            assert_eq!(
                harness.state().sent,
                vec![Command::Approve(Approval {
                    id: "r1".into(),
                    scopes: vec![Scope::Read],
                    projects: vec!["/home/u/app".into()],
                    expiry: Expiry::Hour,
                })]
            );
        }

        #[test]
        fn nothing_ticked_cannot_be_allowed_but_can_be_denied() {
            let mut state = connected();
            state.apply(Update::AccessRequest(Box::new(vs_code_request())));
            let mut harness = harness(state);
            harness.run();
            harness.get_by_label("read").click();
            harness.run();
            harness.get_by_label("write").click();
            harness.run();
            harness.get_by_label("Tick at least one scope, or deny.");
            harness.get_by_label("Always").click();
            harness.run();
            assert!(harness.state().sent.is_empty(), "a disabled button sent");
            harness.get_by_label("Deny").click();
            harness.run();
            assert_eq!(harness.state().sent, vec![Command::Deny("r1".into())]);
        }

        #[test]
        fn a_confirmation_is_allowed_for_its_kind_for_an_hour() {
            let mut state = connected();
            state.apply(Update::Confirmation(Box::new(confirmation(
                ConfirmKind::DeleteModel,
                "delete model llama3:70b (40 GB)",
            ))));
            let mut harness = harness(state);
            harness.run();
            harness.get_by_label("VS Code wants to delete model llama3:70b (40 GB)");
            harness
                .get_by_label("Allow this kind for this client for 1 hour")
                .click();
            harness.run();
            assert_eq!(
                harness.state().sent,
                vec![Command::Answer {
                    id: "k1".into(),
                    allow: true,
                    allow_kind_for_seconds: ALLOW_KIND_SECONDS,
                }]
            );
        }

        #[test]
        fn a_force_push_is_asked_every_time() {
            let mut state = connected();
            state.apply(Update::Confirmation(Box::new(confirmation(
                ConfirmKind::ForcePush,
                "force push main to origin",
            ))));
            let mut harness = harness(state);
            harness.run();
            harness.get_by_label("VS Code wants to force push main to origin");
            assert!(
                harness
                    .query_by_label("Allow this kind for this client for 1 hour")
                    .is_none()
            );
            harness.get_by_label("Deny").click();
            harness.run();
            assert_eq!(
                harness.state().sent,
                vec![Command::Answer {
                    id: "k1".into(),
                    allow: false,
                    allow_kind_for_seconds: 0,
                }]
            );
        }

        #[test]
        fn revoking_asks_first_and_the_keyboard_answers() {
            let mut state = connected();
            state.apply(Update::Clients(vec![Client {
                id: "c1".into(),
                name: "VS Code".into(),
                scopes: vec![Scope::Read as i32],
                open_calls: 2,
                ..Default::default()
            }]));
            let mut harness = harness(state);
            harness.run();
            harness.get_by_label("Revoke VS Code…").click();
            harness.run();
            harness.get_by_label("Revoke VS Code?");
            // Esc closes the dialog, not the panel.
            harness.key_press(Key::Escape);
            harness.run();
            assert!(harness.query_by_label("Revoke VS Code?").is_none());
            assert!(!harness.state().ui.close);
            assert!(harness.state().sent.is_empty());
            // Enter in the dialog revokes.
            harness.get_by_label("Revoke VS Code…").click();
            harness.run();
            harness.key_press(Key::Enter);
            harness.run();
            assert_eq!(harness.state().sent, vec![Command::Revoke("c1".into())]);
            assert!(harness.query_by_label("Revoke VS Code?").is_none());
        }

        #[test]
        fn the_audit_tab_says_why_it_is_empty_and_filters_on_enter() {
            let mut harness = harness(connected());
            harness.state_mut().ui.tab = Tab::Audit;
            harness.run();
            harness.get_by_label_contains("No activity recorded yet");
            assert_eq!(
                harness.state().ui.wanted_audit(),
                Some(AuditFilter::default())
            );
            harness.get_by_label("Client:");
            let method = harness.get_by_label("Method:");
            method.focus();
            method.type_text("Delete");
            harness.run();
            harness.key_press(Key::Enter);
            harness.run();
            let wanted = harness.state().ui.wanted_audit().unwrap_or_default();
            assert_eq!(wanted.method, "Delete");
            harness.get_by_label("No activity matches these filters.");
            harness.state_mut().state.apply(Update::AuditUnavailable(
                "this agent does not keep an activity log".into(),
            ));
            harness.run();
            harness.get_by_label("this agent does not keep an activity log");
        }
    }
}
