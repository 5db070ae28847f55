//! The panel's Clients tab: the access requests waiting for the user,
//! each a card naming what is really known of the caller (its process and
//! parents) beside what it claims (its name and reason, marked
//! self-declared), with the code to compare, ticks to narrow its scopes
//! and projects, and Allow once / for 1 hour / for 1 day / Always / Deny;
//! the confirmations of destructive acts (Allow / Deny / allow the kind
//! for an hour, never for force push); the admitted clients, filtered by
//! what is typed above them, with Revoke behind a dialog that Enter
//! confirms and Esc cancels. Each section says what to do when empty.

use egui::{Key, RichText};
use omnipanel_client::{
    display,
    proto::v1::{Expiry, Scope},
};

use super::{PanelUi, notice, notice_label};
use crate::core::{
    backend::{Approval, Command},
    state::AgentState,
    views,
};

/// What the requests section says when none waits: how one comes.
pub(super) const NO_REQUESTS: &str = "No client has asked for access. Editors and scripts ask when they first connect; run `omnipanel clients request` to try.";

/// Space between the tab's sections (requests, confirmations, clients).
const SECTION_GAP: f32 = 8.0;

/// How long "Allow this kind for this client" lasts.
pub const ALLOW_KIND_SECONDS: u32 = 3600;

/// What the user narrowed an access request to.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Choice {
    /// Each scope offered, and whether it is ticked.
    scopes: Vec<(Scope, bool)>,
    /// Each project folder asked for, and whether it is ticked.
    projects: Vec<(String, bool)>,
    /// For a request naming no project: folders typed to narrow it to.
    folders: String,
}

impl Choice {
    pub(super) fn new(card: &views::RequestCard) -> Self {
        Self {
            scopes: card.scopes.clone(),
            projects: card.projects.iter().map(|p| (p.clone(), true)).collect(),
            folders: String::new(),
        }
    }

    /// The approval for `expiry`, or why it cannot be given.
    fn approval(&self, id: &str, expiry: Expiry, home: &str) -> Result<Approval, &'static str> {
        let scopes: Vec<Scope> = self
            .scopes
            .iter()
            .filter(|(_, on)| *on)
            .map(|(s, _)| *s)
            .collect();
        if scopes.is_empty() && !self.scopes.is_empty() {
            return Err("Tick at least one scope, or deny.");
        }
        let projects: Vec<String> = if self.projects.is_empty() {
            views::folders_from_text(&self.folders, home)
        } else {
            let ticked: Vec<String> = self
                .projects
                .iter()
                .filter(|(_, on)| *on)
                .map(|(p, _)| p.clone())
                .collect();
            if ticked.is_empty() {
                return Err("Tick at least one project, or deny.");
            }
            ticked
        };
        Ok(Approval {
            id: id.to_owned(),
            scopes,
            projects,
            expiry,
        })
    }
}

impl PanelUi {
    pub(super) fn clients(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        out: &mut Vec<Command>,
    ) {
        // Enter answers the revoke dialog only once it is shown: the Enter
        // that pressed "Revoke…" from the keyboard must not also confirm.
        let dialog_was_open = self.revoking.is_some();
        let now = display::now_ms();
        let requests = views::request_cards(&state.access_requests, &self.home, now);
        // Forget the ticks of requests no longer waiting.
        self.choices
            .retain(|id, _| requests.iter().any(|card| card.id == *id));
        ui.heading("Access requests");
        if requests.is_empty() {
            ui.weak(NO_REQUESTS);
        }
        for card in &requests {
            self.request_card(ui, state, card, out);
        }
        ui.add_space(SECTION_GAP);
        ui.separator();
        ui.heading("Confirmations");
        let confirmations = views::confirmation_cards(&state.confirmations, &self.home, now);
        if confirmations.is_empty() {
            ui.weak("Nothing waits for your confirmation.");
        }
        for card in &confirmations {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                ui.set_width(ui.available_width());
                ui.strong(&card.line);
                ui.weak(format!("{} · {}", card.details, card.expires));
                ui.horizontal(|ui| {
                    if ui.button("Allow").clicked() {
                        out.push(Command::Answer {
                            id: card.id.clone(),
                            allow: true,
                            allow_kind_for_seconds: 0,
                        });
                    }
                    if ui.button("Deny").clicked() {
                        out.push(Command::Answer {
                            id: card.id.clone(),
                            allow: false,
                            allow_kind_for_seconds: 0,
                        });
                    }
                    if card.offer_kind
                        && ui
                            .button("Allow this kind for this client for 1 hour")
                            .clicked()
                    {
                        out.push(Command::Answer {
                            id: card.id.clone(),
                            allow: true,
                            allow_kind_for_seconds: ALLOW_KIND_SECONDS,
                        });
                    }
                });
                self.notice(ui, state, &format!("confirm:{}", card.id));
            });
        }
        ui.add_space(SECTION_GAP);
        ui.separator();
        ui.heading("Admitted clients");
        let all = views::client_rows(&state.clients, &self.home, now);
        if all.is_empty() {
            ui.weak("No client has been admitted. Our own CLI, tray and panel need no admission.");
            self.revoking = None;
            return;
        }
        ui.horizontal(|ui| {
            let label = ui.label("Filter clients:");
            ui.add(
                egui::TextEdit::singleline(&mut self.clients_filter)
                    .hint_text("name, scope or project")
                    .desired_width(220.0),
            )
            .labelled_by(label.id);
            if ui
                .add_enabled(
                    !self.clients_filter.trim().is_empty(),
                    egui::Button::new("Clear filter"),
                )
                .clicked()
            {
                self.clients_filter.clear();
            }
        });
        let rows: Vec<_> = all
            .into_iter()
            .filter(|row| row.matches(&self.clients_filter))
            .collect();
        if rows.is_empty() {
            ui.weak("No admitted client matches this filter: clear it to see them all.");
            self.revoke_dialog(ui, out, dialog_was_open);
            return;
        }
        egui::Grid::new("clients")
            .striped(true)
            .num_columns(7)
            .show(ui, |ui| {
                for header in [
                    "Client",
                    "Scopes",
                    "Projects",
                    "Expires",
                    "Last used",
                    "Connected",
                    "",
                ] {
                    ui.strong(header);
                }
                ui.end_row();
                for row in &rows {
                    ui.label(&row.name);
                    ui.label(&row.scopes);
                    ui.label(&row.projects);
                    ui.label(&row.expires);
                    ui.label(&row.last_used);
                    ui.label(if row.connected { "yes" } else { "no" });
                    if ui.button(format!("Revoke {}…", row.name)).clicked() {
                        self.revoking = Some((row.id.clone(), row.name.clone()));
                    }
                    ui.end_row();
                }
            });
        for row in &rows {
            self.notice(ui, state, &format!("client:{}", row.id));
        }
        self.revoke_dialog(ui, out, dialog_was_open);
    }

    fn request_card(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        card: &views::RequestCard,
        out: &mut Vec<Command>,
    ) {
        let home = self.home.clone();
        let choice = self
            .choices
            .entry(card.id.clone())
            .or_insert_with(|| Choice::new(card));
        egui::Frame::group(ui.style()).show(ui, |ui| {
            ui.set_width(ui.available_width());
            ui.horizontal(|ui| {
                ui.label("Code:");
                ui.label(RichText::new(&card.code).size(28.0).monospace().strong())
                    .on_hover_text("The client shows the same code: compare them.");
            });
            ui.strong(&card.client);
            if !card.reason.is_empty() {
                ui.label(format!("Reason (self-declared): {}", card.reason));
            }
            ui.label(format!(
                "Asks for {} · for how long: {}",
                card.asks, card.wants_for
            ));
            ui.weak("Who is really calling (from the system, not the client):");
            for (i, line) in card.peer.iter().enumerate() {
                let prefix = if i == 0 { "" } else { "↳ parent " };
                ui.monospace(format!("{prefix}{line}"));
            }
            ui.weak(&card.expires);
            if !choice.scopes.is_empty() {
                ui.horizontal_wrapped(|ui| {
                    ui.label("Grant:");
                    for (scope, on) in &mut choice.scopes {
                        ui.checkbox(on, display::scope_name(*scope as i32));
                    }
                });
            }
            if choice.projects.is_empty() {
                ui.horizontal(|ui| {
                    let label = ui.label("Only these folders (optional, comma-separated):");
                    ui.text_edit_singleline(&mut choice.folders)
                        .labelled_by(label.id);
                });
            } else {
                ui.horizontal_wrapped(|ui| {
                    ui.label("Projects:");
                    for (project, on) in &mut choice.projects {
                        ui.checkbox(on, display::home_relative(project, &home));
                    }
                });
            }
            let approvals = [
                ("Allow once", Expiry::Once),
                ("Allow for 1 hour", Expiry::Hour),
                ("Allow for 1 day", Expiry::Day),
                ("Always", Expiry::Always),
            ]
            .map(|(text, expiry)| (text, choice.approval(&card.id, expiry, &home)));
            ui.horizontal(|ui| {
                for (text, approval) in &approvals {
                    if ui
                        .add_enabled(approval.is_ok(), egui::Button::new(*text))
                        .clicked()
                        && let Ok(approval) = approval
                    {
                        out.push(Command::Approve(approval.clone()));
                    }
                }
                if ui.button("Deny").clicked() {
                    out.push(Command::Deny(card.id.clone()));
                }
            });
            if let Some((_, Err(why))) = approvals.first() {
                notice_label(ui, why, true);
            }
            notice(&self.pending, ui, state, &format!("access:{}", card.id));
        });
    }

    fn revoke_dialog(&mut self, ui: &mut egui::Ui, out: &mut Vec<Command>, was_open: bool) {
        let Some((id, name)) = self.revoking.clone() else {
            return;
        };
        let mut answer = None;
        egui::Modal::new(egui::Id::unique("revoke-dialog")).show(ui.ctx(), |ui| {
            ui.heading(format!("Revoke {name}?"));
            ui.label("Its token stops working at once and its open calls end.");
            ui.weak("Enter revokes · Esc cancels");
            ui.horizontal(|ui| {
                if ui.button("Revoke").clicked() {
                    answer = Some(true);
                }
                if ui.button("Cancel").clicked() {
                    answer = Some(false);
                }
            });
        });
        if answer.is_none() && was_open && ui.input(|i| i.key_pressed(Key::Enter)) {
            answer = Some(true);
        }
        match answer {
            Some(true) => {
                out.push(Command::Revoke(id));
                self.revoking = None;
            }
            Some(false) => self.revoking = None,
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use egui_kittest::{Harness, kittest::Queryable};
    use omnipanel_client::proto::v1::Client;

    use super::*;
    use crate::panel::panel_ui::test_panel::{self, Panel};
    use crate::{core::state::Update, panel::panel_ui::Tab};

    fn harness(state: AgentState) -> Harness<'static, Panel> {
        test_panel::harness(Tab::Clients, state, 900.0, 1000.0)
    }

    fn client(id: &str, name: &str, projects: &[&str]) -> Client {
        Client {
            id: id.into(),
            name: name.into(),
            scopes: vec![Scope::Read as i32],
            projects: projects.iter().map(|p| (*p).to_owned()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn empty_sections_say_what_to_do() {
        let harness = harness(crate::core::state::connected_for_tests());
        harness.get_by_label(NO_REQUESTS);
        harness.get_by_label("Nothing waits for your confirmation.");
        harness.get_by_label(
            "No client has been admitted. Our own CLI, tray and panel need no admission.",
        );
        // No list, no filter.
        assert!(harness.query_by_label("Filter clients:").is_none());
    }

    #[test]
    fn the_filter_narrows_the_admitted_clients_and_clears() {
        let mut state = crate::core::state::connected_for_tests();
        state.apply(Update::Clients(vec![
            client("c1", "VS Code", &["/home/u/app"]),
            client("c2", "Notebook", &["/home/u/data"]),
        ]));
        let mut harness = harness(state);
        harness.run();
        harness.get_by_label("Revoke VS Code…");
        harness.get_by_label("Revoke Notebook…");

        // The field is found by its label; typing narrows the list by
        // project as well as by name, without case.
        let field = harness.get_by_label("Filter clients:");
        field.focus();
        field.type_text("DATA");
        harness.run();
        assert!(harness.query_by_label("Revoke VS Code…").is_none());
        harness.get_by_label("Revoke Notebook…");

        harness
            .get_by_label("Filter clients:")
            .type_text(" nothing");
        harness.run();
        harness.get_by_label("No admitted client matches this filter: clear it to see them all.");

        harness.get_by_label("Clear filter").click();
        harness.run();
        harness.get_by_label("Revoke VS Code…");
        harness.get_by_label("Revoke Notebook…");
        assert!(harness.state().sent.is_empty(), "filtering sends nothing");
    }
}
