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

#[cfg(test)]
mod tests {
    use egui_kittest::{Harness, kittest::Queryable};
    use omnipanel_client::proto::v1::CrashReport;

    use super::*;
    use crate::core::state::Update;
    use crate::panel::panel_ui::test_panel::{self, Panel};

    fn harness(state: AgentState) -> Harness<'static, Panel> {
        test_panel::harness(Tab::Logs, state, 900.0, 800.0)
    }

    #[test]
    fn crash_reports_are_listed_with_their_process_or_said_to_be_none() {
        let mut state = crate::core::state::connected_for_tests();
        state.apply(Update::CrashReports(Vec::new()));
        let empty = harness(state);
        empty.get_by_label(
            "No crash reports: neither the agent, the tray nor the panel has crashed.",
        );

        let mut state = crate::core::state::connected_for_tests();
        state.apply(Update::CrashReports(vec![CrashReport {
            process: "tray".into(),
            message: "index out of bounds\nsecond line".into(),
            time_unix_ms: 1_000_000_000_000,
            ..Default::default()
        }]));
        let harness = harness(state);
        harness.get_by_label("tray");
        harness.get_by_label(&display::one_line("index out of bounds\nsecond line"));
        harness.get_by_label(&display::timestamp(1_000_000_000_000));
    }

    #[test]
    fn copy_bug_report_asks_the_backend_then_copies_what_it_collected() {
        let mut harness = harness(crate::core::state::connected_for_tests());
        harness.get_by_label("Copy bug report").click();
        harness.run_steps(2);
        assert_eq!(harness.state().sent, vec![Command::CopyBugReport]);

        // The backend's answer: the text reaches the clipboard once.
        harness
            .state_mut()
            .state
            .apply(Update::BugReport("==> summary.txt <==".into()));
        harness.step();
        let copied = |h: &Harness<'static, Panel>| {
            h.output()
                .platform_output
                .commands
                .iter()
                .filter(
                    |c| matches!(c, egui::OutputCommand::CopyText(t) if t == "==> summary.txt <=="),
                )
                .count()
        };
        assert_eq!(copied(&harness), 1);
        harness.step();
        assert_eq!(copied(&harness), 0, "copied again");
    }
}
