//! The panel's Audit tab: the activity log (who did what, when, with
//! which outcome) with filters for client, method and outcome, applied on
//! Enter or "Filter"; the app reads and follows the log only while the tab
//! shows (`PanelUi::wanted_audit`).

use egui::{Color32, Key};
use omnipanel_client::display;

use super::{PanelUi, notice_label};
use crate::core::{backend::AuditFilter, state::AgentState, views};

impl PanelUi {
    pub(super) fn audit(&mut self, ui: &mut egui::Ui, state: &AgentState) {
        let mut apply = false;
        ui.horizontal_wrapped(|ui| {
            for (text, hint, field) in [
                ("Client:", "id or name", &mut self.audit_typed.client),
                ("Method:", "e.g. Delete", &mut self.audit_typed.method),
                ("Outcome:", "ok or a reason", &mut self.audit_typed.outcome),
            ] {
                let label = ui.label(text);
                let edit = ui.add(
                    egui::TextEdit::singleline(field)
                        .hint_text(hint)
                        .desired_width(120.0),
                );
                let edit = edit.labelled_by(label.id);
                if edit.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter)) {
                    apply = true;
                }
            }
            if ui.button("Filter").clicked() {
                apply = true;
            }
            if ui
                .add_enabled(!self.audit_filter.is_empty(), egui::Button::new("Clear"))
                .clicked()
            {
                self.audit_typed = AuditFilter::default();
                apply = true;
            }
        });
        if apply {
            self.audit_filter = self.audit_typed.trimmed();
        }
        ui.separator();
        if let Some(why) = &state.audit_error {
            notice_label(ui, why, true);
            return;
        }
        let rows = views::audit_rows(&state.audit, display::now_ms());
        if rows.is_empty() {
            ui.weak(if self.audit_filter.is_empty() {
                "No activity recorded yet: changes, access decisions and other clients' reads appear here as they happen."
            } else {
                "No activity matches these filters."
            });
            return;
        }
        egui::Grid::new("audit")
            .striped(true)
            .num_columns(5)
            .show(ui, |ui| {
                for header in ["When", "Client", "Method", "Target", "Outcome"] {
                    ui.strong(header);
                }
                ui.end_row();
                for row in &rows {
                    ui.label(&row.when).on_hover_text(&row.at);
                    let client = ui.label(&row.client);
                    if !row.process.is_empty() {
                        client.on_hover_text(&row.process);
                    }
                    ui.label(&row.method);
                    ui.label(display::or_dash(&row.target));
                    if row.refused {
                        ui.colored_label(Color32::from_rgb(0xe5, 0x39, 0x35), &row.outcome);
                    } else {
                        ui.label(&row.outcome);
                    }
                    ui.end_row();
                }
            });
    }
}
