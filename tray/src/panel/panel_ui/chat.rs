//! The Chat tab: pick a model (the project's preferred one preselected), stream the answer with stop, the project's conversations kept by the agent, copy a code block, tokens/s and time to first token, and errors shown in place with the action that fixes them.

use omnipanel_client::proto::v1::Project;

use crate::core::{backend::Command, state::AgentState};

/// The tab's own UI state (what is typed and picked).
#[derive(Debug, Default)]
pub(super) struct ChatTab {}

impl ChatTab {
    /// Draw the tab for `project` (`None`: no project open yet).
    pub(super) fn show(
        &mut self,
        ui: &mut egui::Ui,
        _state: &AgentState,
        project: Option<&Project>,
        _out: &mut Vec<Command>,
    ) {
        if project.is_none() {
            ui.weak("Open a project on the Projects tab first.");
        }
    }
}
