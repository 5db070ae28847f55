//! The Models tab: pull (with a fit check), the installed models with
//! default, load/unload, fit and delete, and the providers below.

use super::*;

impl PanelUi {
    pub(super) fn models(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            // Labelled for screen readers (and the accessibility check of
            // the tests).
            let label = ui.label("Pull a model:");
            let edit = ui
                .text_edit_singleline(&mut self.pull_name)
                .labelled_by(label.id);
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
            self.no_models(ui, state, out);
            ui.separator();
            providers::providers(ui, state);
            return;
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
        ui.separator();
        providers::providers(ui, state);
    }

    /// What the Models tab says with no model: why, and the one action
    /// that fixes it.
    fn no_models(&self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        let server = state.server.as_ref().map(|s| s.state());
        if !state.connected() {
            ui.weak("Not connected to the agent: the models show once it answers.");
        } else if matches!(
            server,
            Some(ServerState::Running | ServerState::External | ServerState::Starting)
        ) {
            ui.horizontal(|ui| {
                ui.label(format!("No models yet: pull {SUGGESTED_MODEL}"));
                if ui.button(format!("Pull {SUGGESTED_MODEL}")).clicked() {
                    out.push(Command::Pull(SUGGESTED_MODEL.to_owned()));
                }
            });
        } else {
            ui.horizontal(|ui| {
                ui.label("Ollama is not running: start it to see and pull models.");
                if ui.button("Start Ollama").clicked() {
                    out.push(Command::StartServer);
                }
            });
            self.notice(ui, state, "server");
        }
    }
}
