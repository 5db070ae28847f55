//! The Logs tab: the agent's and Ollama's log, followed live.

use super::*;

impl PanelUi {
    pub(super) fn logs(&mut self, ui: &mut egui::Ui, state: &AgentState) {
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
