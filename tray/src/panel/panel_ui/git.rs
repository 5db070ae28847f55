//! The Git tab: the selected project's status (staged, unstaged, untracked, conflicts), a file's coloured diff, stage/unstage, commit, branches (switch, create), pull/push with progress, kept current by the "repository changed" event.

use omnipanel_client::proto::v1::Project;

use crate::core::{backend::Command, state::AgentState};

/// The tab's own UI state (what is typed and picked).
#[derive(Debug, Default)]
pub(super) struct GitTab {}

impl GitTab {
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
