//! The panel's header: health at a glance as coloured chips (agent,
//! Ollama, default model, alerts; words from [`crate::core::health`]),
//! "Start agent" when it is not running, and the tab bar with the counts
//! that wait for the user.

use super::*;
use crate::core::health::{self, Chip, Tone};

impl PanelUi {
    pub(super) fn header(&mut self, ui: &mut egui::Ui, state: &AgentState, out: &mut Vec<Command>) {
        ui.add_space(4.0);
        ui.horizontal_wrapped(|ui| {
            for chip in health::chips(state) {
                health_chip(ui, &chip);
            }
            if let Connection::Disconnected { error, attempt, .. } = &state.connection {
                if ui.button("Start agent").clicked() {
                    out.push(Command::StartAgent);
                }
                ui.add(
                    egui::Label::new(RichText::new(format!("retrying (attempt {attempt})")).weak())
                        .truncate(),
                )
                .on_hover_text(error);
            }
        });
        ui.add_space(4.0);
        ui.horizontal_wrapped(|ui| {
            let tabs: Vec<Tab> = self
                .show_setup
                .then_some(Tab::Setup)
                .into_iter()
                .chain(Tab::MAIN)
                .collect();
            let (requests, confirmations) = views::waiting(state);
            for tab in tabs {
                let mut title = tab.title().to_owned();
                if tab == Tab::Alerts && !state.active_alerts.is_empty() {
                    title = format!("Alerts ({})", state.active_alerts.len());
                }
                if tab == Tab::Clients && requests + confirmations > 0 {
                    title = format!("Clients ({})", requests + confirmations);
                }
                if ui.selectable_label(self.tab == tab, title).clicked() {
                    self.tab = tab;
                }
            }
        });
        ui.add_space(2.0);
    }
}

/// A header chip: a coloured dot and its words in a rounded frame. The
/// words are a plain label, so screen readers (and the tests) read them;
/// the colour repeats what the words say, never replaces them.
fn health_chip(ui: &mut egui::Ui, chip: &Chip) {
    let color = match chip.tone {
        Tone::Good => Color32::from_rgb(0x43, 0xa0, 0x47),
        Tone::Warning => Color32::from_rgb(0xfb, 0x8c, 0x00),
        Tone::Bad => Color32::from_rgb(0xe5, 0x39, 0x35),
        Tone::Neutral => Color32::GRAY,
    };
    egui::Frame::new()
        .stroke(egui::Stroke::new(1.0, color))
        .corner_radius(8.0)
        .inner_margin(egui::Margin::symmetric(6, 2))
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing.x = 4.0;
                let (dot, _) = ui.allocate_exact_size(egui::vec2(8.0, 8.0), egui::Sense::hover());
                ui.painter().circle_filled(dot.center(), 4.0, color);
                ui.label(RichText::new(&chip.text).strong());
            });
        })
        .response
        .on_hover_text(&chip.hint);
}

#[cfg(test)]
mod tests {
    //! The header, the empty states of the Models and Alerts tabs and the
    //! tab keys, driven through the accessibility tree.

    use egui_kittest::{Harness, kittest::Queryable};
    use omnipanel_client::proto::v1::{Alert, ServerStatus};

    use super::*;
    use crate::core::state::{Update, connected_for_tests};
    use crate::panel::panel_ui::test_panel::{self, Panel};

    fn harness_on(tab: Tab, state: AgentState) -> Harness<'static, Panel> {
        let mut harness = test_panel::harness(tab, state, 900.0, 900.0);
        harness.run();
        harness
    }

    fn with_server(state: ServerState, default_model: &str) -> AgentState {
        let mut agent = connected_for_tests();
        agent.apply(Update::Server(ServerStatus {
            state: state as i32,
            version: "0.5.1".into(),
            default_model: default_model.into(),
            ..Default::default()
        }));
        agent
    }

    #[test]
    fn the_header_sums_up_health_in_the_clis_words() {
        let mut state = with_server(ServerState::Running, "llama3.2:1b");
        state.apply(Update::Alerts {
            active: vec![Alert {
                metric: "cpu".into(),
                ..Default::default()
            }],
            history: Vec::new(),
        });
        let harness = harness_on(Tab::Overview, state);
        harness.get_by_label("Agent 0.1.0");
        harness.get_by_label("Ollama: running");
        harness.get_by_label("Default: llama3.2:1b");
        harness.get_by_label("1 alert");
        harness.get_by_label("Alerts (1)");
    }

    #[test]
    fn a_missing_agent_is_said_and_can_be_started() {
        let mut state = AgentState::default();
        state.apply(Update::Disconnected {
            error: "no socket".into(),
            attempt: 3,
            launched_agent: false,
        });
        let mut harness = harness_on(Tab::Overview, state);
        harness.get_by_label("Agent: not running");
        harness.get_by_label("retrying (attempt 3)");
        assert!(harness.query_by_label("No alerts").is_none());
        harness.get_by_label("Start agent").click();
        harness.run();
        assert_eq!(harness.state().sent, vec![Command::StartAgent]);
    }

    #[test]
    fn no_models_says_what_to_pull_and_pulls_it() {
        let mut harness = harness_on(Tab::Models, with_server(ServerState::Running, ""));
        harness.get_by_label("No default model");
        harness.get_by_label(&format!("No models yet: pull {SUGGESTED_MODEL}"));
        harness
            .get_by_label(&format!("Pull {SUGGESTED_MODEL}"))
            .click();
        harness.run();
        assert_eq!(
            harness.state().sent,
            vec![Command::Pull(SUGGESTED_MODEL.to_owned())]
        );
    }

    #[test]
    fn no_models_with_ollama_stopped_offers_to_start_it() {
        let mut harness = harness_on(Tab::Models, with_server(ServerState::Stopped, ""));
        harness.get_by_label("Ollama: stopped");
        harness.get_by_label("Ollama is not running: start it to see and pull models.");
        assert!(harness.query_by_label_contains("No models yet").is_none());
        harness.get_by_label("Start Ollama").click();
        harness.run();
        assert_eq!(harness.state().sent, vec![Command::StartServer]);
    }

    #[test]
    fn no_alerts_says_when_one_would_come() {
        let harness = harness_on(Tab::Alerts, connected_for_tests());
        harness.get_by_label_contains("No alerts: you are told here");
        harness.get_by_label("Reading the thresholds…");
        harness.get_by_label("No alerts so far.");
        harness.get_by_label("No alerts");
    }

    #[test]
    fn ctrl_digits_switch_tabs_and_escape_closes() {
        let mut harness = harness_on(Tab::Overview, connected_for_tests());
        harness.key_press_modifiers(egui::Modifiers::CTRL, Key::Num5);
        harness.run();
        assert_eq!(harness.state().ui.tab, Tab::Models);
        harness.get_by_label("Alerts").click();
        harness.run();
        assert_eq!(harness.state().ui.tab, Tab::Alerts);
        assert!(!harness.state().ui.close);
        harness.key_press(Key::Escape);
        harness.run();
        assert!(harness.state().ui.close);
    }
}
