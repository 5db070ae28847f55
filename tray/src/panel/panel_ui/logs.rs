//! The Logs tab: the crash reports of every OmniPanel process (the agent,
//! the tray, the panel) with "Copy bug report", and the agent's and
//! Ollama's log, followed live.

use super::*;

impl PanelUi {
    pub(super) fn logs(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        self.crash_reports(ui, state, out);
        ui.separator();
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

    /// The crash reports (read when the tab shows and when the agent
    /// reports one), and the button that copies a bug report.
    fn crash_reports(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.horizontal(|ui| {
            ui.strong("Crash reports");
            let collecting = self.pending.contains("bugreport");
            if ui
                .add_enabled(
                    state.connected() && !collecting,
                    egui::Button::new("Copy bug report"),
                )
                .on_hover_text(
                    "Versions, settings with secrets masked, recent logs and crash reports, \
                     as `omnipanel bugreport` collects them, copied as text",
                )
                .clicked()
            {
                out.push(Command::CopyBugReport);
            }
        });
        self.notice(ui, state, "bugreport");
        self.notice(ui, state, "crashes");
        match &state.crash_reports {
            None => {
                ui.weak("Reading crash reports…");
            }
            Some(reports) if reports.is_empty() => {
                ui.weak("No crash reports: neither the agent, the tray nor the panel has crashed.");
            }
            Some(reports) => {
                egui::Grid::new("crash-reports")
                    .num_columns(3)
                    .spacing([12.0, 4.0])
                    .striped(true)
                    .show(ui, |ui| {
                        for report in reports.iter().take(20) {
                            ui.label(display::timestamp(report.time_unix_ms));
                            ui.label(display::or_dash(&report.process));
                            ui.label(display::one_line(&report.message))
                                .on_hover_text(format!(
                                    "{}\n{} {}\n{}",
                                    report.location, report.process, report.version, report.path
                                ));
                            ui.end_row();
                        }
                    });
                if reports.len() > 20 {
                    ui.weak(format!(
                        "{} more: `omnipanel crashes` lists them all",
                        reports.len() - 20
                    ));
                }
            }
        }
    }

    /// Put a newly collected bug report on the clipboard: the backend
    /// collected it off the UI thread, the clipboard belongs to this one.
    pub(super) fn copy_bug_report(&mut self, ui: &egui::Ui, state: &AgentState) {
        if state.bug_reports_made > self.bug_reports_copied {
            self.bug_reports_copied = state.bug_reports_made;
            ui.ctx().copy_text(state.bug_report.clone());
        }
    }
}
