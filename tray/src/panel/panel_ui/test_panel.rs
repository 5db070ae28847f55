//! The panel under `egui_kittest` without an agent, shared by every tab's
//! tests: a [`Panel`] (the UI, a state the test sets, and the commands the
//! UI sent) drawn by [`harness`] with an instant backend (each command is
//! answered at once, so no spinner keeps the UI repainting).

use egui_kittest::Harness;

use super::{PanelUi, Tab};
use crate::core::{backend::Command, state::AgentState};

/// The panel's UI, the state it draws and what it sent.
pub(crate) struct Panel {
    /// The UI.
    pub(crate) ui: PanelUi,
    /// The state drawn (the test applies updates to it).
    pub(crate) state: AgentState,
    /// The commands sent, oldest first.
    pub(crate) sent: Vec<Command>,
}

/// A panel on `tab` drawing `state` in a window of `width` × `height`.
pub(crate) fn harness(
    tab: Tab,
    state: AgentState,
    width: f32,
    height: f32,
) -> Harness<'static, Panel> {
    let panel = Panel {
        ui: PanelUi::new(tab, false, "/home/u"),
        state,
        sent: Vec::new(),
    };
    Harness::builder()
        .with_size(egui::vec2(width, height))
        .build_ui_state(
            |ui, panel: &mut Panel| {
                let Panel { ui: p, state, sent } = panel;
                let before = sent.len();
                p.show(ui, state, &mut |c| sent.push(c));
                for command in &sent[before..] {
                    p.answered(&command.key());
                }
            },
            panel,
        )
}
