//! What the panel draws, with egui: a header with the connection, tabs
//! (Setup on first run, Overview, Models, Projects, Alerts, Logs), and
//! each action's result inline where it was asked. Rows and lines come
//! from [`crate::core::views`], single words from
//! [`omnipanel_client::display`]; this file only lays them out and turns
//! clicks into backend [`Command`]s (sent, never awaited: the UI never blocks).

use std::collections::HashSet;

use egui::{Color32, Key, RichText};
use egui_plot::{Legend, Line, Plot, PlotPoints};
use omnipanel_client::{
    display,
    proto::v1::{Comparison, ServerState, Threshold},
};

use crate::core::{
    backend::Command,
    launch,
    state::{AgentState, Connection},
    views,
};

/// The model the setup suggests: small enough for any laptop.
pub const SUGGESTED_MODEL: &str = "llama3.2:1b";

/// The panel's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// First-run setup.
    Setup,
    /// Machine and Ollama at a glance.
    Overview,
    /// Installed models and pulls.
    Models,
    /// Recent projects.
    Projects,
    /// Alerts and thresholds.
    Alerts,
    /// Agent and Ollama logs.
    Logs,
}

impl Tab {
    /// The tabs reachable with Ctrl+1..5, in order.
    pub const MAIN: [Self; 5] = [
        Self::Overview,
        Self::Models,
        Self::Projects,
        Self::Alerts,
        Self::Logs,
    ];

    /// Its title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Setup => "Setup",
            Self::Overview => "Overview",
            Self::Models => "Models",
            Self::Projects => "Projects",
            Self::Alerts => "Alerts",
            Self::Logs => "Logs",
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
        }
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
        self.keys(ui);
        // Views push commands here; they are sent (and marked pending)
        // after drawing, so no view needs the backend.
        let mut out: Vec<Command> = Vec::new();
        egui::Panel::top("header").show(ui, |ui| {
            ui.horizontal(|ui| {
                let (color, text) = match &state.connection {
                    Connection::Connected(_) => (
                        Color32::from_rgb(0x43, 0xa0, 0x47),
                        views::agent_line(state),
                    ),
                    Connection::Starting => (Color32::GRAY, views::agent_line(state)),
                    Connection::Disconnected { .. } => (
                        Color32::from_rgb(0xe5, 0x39, 0x35),
                        views::agent_line(state),
                    ),
                };
                let (dot, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
                ui.painter().circle_filled(dot.center(), 5.0, color);
                ui.strong(text);
                if let Connection::Disconnected { error, attempt, .. } = &state.connection {
                    if ui.button("Start agent").clicked() {
                        out.push(Command::StartAgent);
                    }
                    ui.add(
                        egui::Label::new(
                            RichText::new(format!("retrying (attempt {attempt})")).weak(),
                        )
                        .truncate(),
                    )
                    .on_hover_text(error);
                }
            });
            ui.horizontal(|ui| {
                let tabs: Vec<Tab> = self
                    .show_setup
                    .then_some(Tab::Setup)
                    .into_iter()
                    .chain(Tab::MAIN)
                    .collect();
                for tab in tabs {
                    let mut title = tab.title().to_owned();
                    if tab == Tab::Alerts && !state.active_alerts.is_empty() {
                        title = format!("Alerts ({})", state.active_alerts.len());
                    }
                    if ui.selectable_label(self.tab == tab, title).clicked() {
                        self.tab = tab;
                    }
                }
            });
        });
        egui::Panel::bottom("notices").show(ui, |ui| match state.notices.back() {
            Some(n) => notice_label(ui, &n.message, n.error),
            None => {
                ui.weak("Esc closes · Ctrl+1..5 switch tabs");
            }
        });
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical()
                .auto_shrink([false, false])
                .show(ui, |ui| match self.tab {
                    Tab::Setup => self.setup(ui, state, &mut out),
                    Tab::Overview => self.overview(ui, state, &mut out),
                    Tab::Models => self.models(ui, state, &mut out),
                    Tab::Projects => self.projects(ui, state, &mut out),
                    Tab::Alerts => self.alerts(ui, state, &mut out),
                    Tab::Logs => self.logs(ui, state),
                });
        });
        for command in out {
            self.pending.insert(command.key());
            send(command);
        }
    }

    fn keys(&mut self, ui: &egui::Ui) {
        let (escape, digit) = ui.input(|i| {
            let digits = [Key::Num1, Key::Num2, Key::Num3, Key::Num4, Key::Num5];
            let digit = if i.modifiers.ctrl || i.modifiers.command {
                digits.iter().position(|k| i.key_pressed(*k)).map(|p| p + 1)
            } else {
                None
            };
            (i.key_pressed(Key::Escape), digit)
        });
        if escape {
            self.close = true;
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

    fn overview(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        self.server_box(ui, state, out);
        ui.separator();
        match &state.metrics {
            Some(snapshot) => {
                ui.label(views::metrics_line(snapshot));
            }
            None => {
                ui.weak("waiting for the first reading…");
            }
        }
        let samples: Vec<_> = state.history.iter().collect();
        let x = |i: usize| i as f64 - samples.len() as f64;
        let series =
            |f: &dyn Fn(&omnipanel_client::proto::v1::Snapshot) -> Option<f64>| -> Vec<[f64; 2]> {
                samples
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| f(s).map(|y| [x(i), y]))
                    .collect()
            };
        let cpu = series(&|s| s.cpu.as_ref().map(|c| c.usage_percent));
        let memory = series(&views::memory_percent);
        let vram = series(&views::vram_percent);
        Plot::new("usage")
            .height(160.0)
            .include_y(0.0)
            .include_y(100.0)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .legend(Legend::default())
            .show(ui, |plot| {
                plot.line(Line::new("CPU %", PlotPoints::from(cpu)));
                plot.line(Line::new("Memory %", PlotPoints::from(memory)));
                if !vram.is_empty() {
                    plot.line(Line::new("VRAM %", PlotPoints::from(vram)));
                }
            });
        let rx = series(&|s| Some(views::network_rates(s).0 / 1000.0));
        let tx = series(&|s| Some(views::network_rates(s).1 / 1000.0));
        Plot::new("network")
            .height(120.0)
            .include_y(0.0)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .legend(Legend::default())
            .show(ui, |plot| {
                plot.line(Line::new("Network in KB/s", PlotPoints::from(rx)));
                plot.line(Line::new("Network out KB/s", PlotPoints::from(tx)));
            });
    }

    fn models(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            ui.label("Pull a model:");
            let edit = ui.text_edit_singleline(&mut self.pull_name);
            let name = self.pull_name.trim().to_owned();
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            if ui
                .add_enabled(!name.is_empty(), egui::Button::new("Pull"))
                .clicked()
                || (enter && !name.is_empty())
            {
                out.push(Command::Pull(name.clone()));
            }
            if ui
                .add_enabled(!name.is_empty(), egui::Button::new("Will it fit?"))
                .clicked()
            {
                out.push(Command::CheckFit(name));
            }
        });
        let typed = self.pull_name.trim().to_owned();
        if !typed.is_empty() {
            if let Some(fit) = state.fit(&typed) {
                ui.label(format!(
                    "{typed}: {} {}",
                    display::fit_label(fit.verdict()),
                    fit.explanation
                ));
            }
            // An installed model's result shows under the table instead.
            if !state.models.iter().any(|m| m.name == typed) {
                self.notice(ui, state, &format!("model:{typed}"));
            }
        }
        pulls(ui, state, out);
        self.notice(ui, state, "pull");
        ui.separator();
        let rows = views::model_rows(state);
        if rows.is_empty() {
            ui.weak(if state.connected() {
                "No models installed (or Ollama is not running)."
            } else {
                "Not connected."
            });
        }
        egui::Grid::new("models")
            .striped(true)
            .num_columns(7)
            .show(ui, |ui| {
                ui.strong("Default");
                ui.strong("Model");
                ui.strong("Size");
                ui.strong("Details");
                ui.strong("Fit");
                ui.strong("Loaded");
                ui.strong("");
                ui.end_row();
                for row in &rows {
                    if ui
                        .radio(row.is_default, "")
                        .on_hover_text("make default")
                        .clicked()
                        && !row.is_default
                    {
                        out.push(Command::SetDefault(row.name.clone()));
                    }
                    ui.label(&row.name);
                    ui.label(&row.size);
                    ui.label(&row.details);
                    ui.label(row.fit.as_deref().unwrap_or("–"));
                    ui.label(row.loaded.as_deref().unwrap_or("–"));
                    ui.horizontal(|ui| {
                        if row.loaded.is_some() {
                            if ui.button("Unload").clicked() {
                                out.push(Command::Unload(row.name.clone()));
                            }
                        } else if ui.button("Load").clicked() {
                            out.push(Command::Load(row.name.clone()));
                        }
                        if ui.button("Fit").clicked() {
                            out.push(Command::CheckFit(row.name.clone()));
                        }
                        if self.confirm_delete.as_deref() == Some(row.name.as_str()) {
                            ui.colored_label(Color32::from_rgb(0xe5, 0x39, 0x35), "Delete?");
                            if ui.button("Yes, delete").clicked() {
                                out.push(Command::Delete(row.name.clone()));
                                self.confirm_delete = None;
                            }
                            if ui.button("No").clicked() {
                                self.confirm_delete = None;
                            }
                        } else if ui.button("Delete…").clicked() {
                            self.confirm_delete = Some(row.name.clone());
                        }
                    });
                    ui.end_row();
                }
            });
        // Each model's last action, under the table (the messages name
        // the model).
        for row in &rows {
            notice(&self.pending, ui, state, &format!("model:{}", row.name));
        }
    }

    fn projects(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            ui.label("Open a folder as a project:");
            ui.text_edit_singleline(&mut self.project_path);
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
        if rows.is_empty() {
            ui.weak("No projects yet.");
        }
        egui::Grid::new("projects")
            .striped(true)
            .num_columns(4)
            .show(ui, |ui| {
                for row in rows {
                    ui.strong(&row.name).on_hover_text(&row.path);
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
                        if ui.button("Forget").clicked() {
                            out.push(Command::ForgetProject(row.id.clone()));
                        }
                    });
                    ui.end_row();
                }
            });
    }

    fn alerts(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.heading("Active");
        if state.active_alerts.is_empty() {
            ui.weak("Nothing raised.");
        }
        for alert in &state.active_alerts {
            ui.colored_label(
                Color32::from_rgb(0xfb, 0x8c, 0x00),
                views::alert_line(alert),
            );
        }
        ui.separator();
        ui.heading("Thresholds");
        match &state.thresholds {
            None => {
                ui.weak("not read yet");
            }
            Some(current) => {
                if !current.alerts_enabled {
                    ui.weak("Alerts are off ([system] alerts = false in config.toml).");
                }
                // Edit a copy; reload it when the agent's version moves on.
                let stale = self
                    .thresholds
                    .as_ref()
                    .is_none_or(|(v, _)| *v != current.version);
                if stale {
                    self.thresholds = Some((current.version, current.thresholds.clone()));
                }
                if let Some((version, edited)) = self.thresholds.as_mut() {
                    egui::Grid::new("thresholds")
                        .striped(true)
                        .num_columns(4)
                        .show(ui, |ui| {
                            ui.strong("Metric");
                            ui.strong("When");
                            ui.strong("Value");
                            ui.strong("Held for (s)");
                            ui.end_row();
                            for t in edited.iter_mut() {
                                ui.label(&t.metric);
                                ui.label(if t.comparison() == Comparison::Below {
                                    "below"
                                } else {
                                    "above"
                                });
                                ui.add(egui::DragValue::new(&mut t.value).speed(0.5));
                                let mut seconds = t.hold_ms / 1000;
                                if ui
                                    .add(egui::DragValue::new(&mut seconds).range(0..=3600))
                                    .changed()
                                {
                                    t.hold_ms = seconds * 1000;
                                }
                                ui.end_row();
                            }
                        });
                    ui.horizontal(|ui| {
                        let changed = *edited != current.thresholds;
                        if ui.add_enabled(changed, egui::Button::new("Save")).clicked() {
                            out.push(Command::SetThresholds {
                                thresholds: edited.clone(),
                                expected_version: *version,
                            });
                        }
                        if ui.add_enabled(changed, egui::Button::new("Undo")).clicked() {
                            *edited = current.thresholds.clone();
                        }
                        if ui
                            .add_enabled(!current.defaults, egui::Button::new("Reset to defaults"))
                            .clicked()
                        {
                            out.push(Command::ResetThresholds);
                        }
                    });
                }
                self.notice(ui, state, "thresholds");
            }
        }
        ui.separator();
        ui.heading("History");
        if state.alert_history.is_empty() {
            ui.weak("No alerts so far.");
        }
        for alert in &state.alert_history {
            let when = if alert.cleared_unix_ms > 0 {
                "cleared"
            } else {
                "active"
            };
            ui.label(format!("{} · {when}", views::alert_line(alert)));
        }
    }

    fn logs(&mut self, ui: &mut egui::Ui, state: &AgentState) {
        ui.horizontal(|ui| {
            for source in ["agent", "ollama"] {
                if ui
                    .selectable_label(self.log_source == source, source)
                    .clicked()
                {
                    self.log_source = source.to_owned();
                }
            }
            ui.checkbox(&mut self.follow, "Follow");
        });
        self.notice(ui, state, "logs");
        ui.separator();
        egui::ScrollArea::vertical()
            .id_salt("log-lines")
            .stick_to_bottom(self.follow)
            .auto_shrink([false, false])
            .show(ui, |ui| {
                if state.log_source == self.log_source {
                    for line in &state.log_lines {
                        ui.monospace(line);
                    }
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

fn notice_label(ui: &mut egui::Ui, message: &str, error: bool) {
    if message.is_empty() {
        return;
    }
    let color = if error {
        Color32::from_rgb(0xe5, 0x39, 0x35)
    } else {
        Color32::from_rgb(0x43, 0xa0, 0x47)
    };
    ui.label(RichText::new(message).color(color));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_digits_pick_main_tabs() {
        assert_eq!(Tab::for_digit(1), Some(Tab::Overview));
        assert_eq!(Tab::for_digit(5), Some(Tab::Logs));
        assert_eq!(Tab::for_digit(0), None);
        assert_eq!(Tab::for_digit(6), None);
    }

    #[test]
    fn tabs_parse_by_title() {
        assert_eq!(Tab::parse("models"), Some(Tab::Models));
        assert_eq!(Tab::parse(" Setup "), Some(Tab::Setup));
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
}
