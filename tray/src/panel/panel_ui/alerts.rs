//! The Alerts tab: active alerts, the thresholds editor and recent history.

use super::*;

impl PanelUi {
    pub(super) fn alerts(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.heading("Active");
        if state.active_alerts.is_empty() {
            ui.weak(
                "No alerts: you are told here and by the tray when a threshold below is crossed.",
            );
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
                ui.weak(if state.connected() {
                    "Reading the thresholds…"
                } else {
                    "Not connected to the agent: the thresholds show once it answers."
                });
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
}
