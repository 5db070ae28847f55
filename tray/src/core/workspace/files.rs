//! The Projects tab's mirror of one project's files: the folders of the tree read so far (lazily, live through `Watch`), FindFiles and SearchText results, and the preview open. Folded in by [`FilesState::apply`].

/// What the panel asks the backend to do on the files side.
#[derive(Debug, Clone, PartialEq)]
pub enum FilesCommand {}

impl FilesCommand {
    /// The key its outcome (a notice) is filed under.
    pub fn key(&self) -> String {
        match *self {}
    }
}

/// One change to [`FilesState`].
#[derive(Debug, Clone)]
pub enum FilesUpdate {}

/// The mirrored state.
#[derive(Debug, Clone, Default)]
pub struct FilesState {}

impl FilesState {
    /// Fold one update in.
    pub fn apply(&mut self, update: FilesUpdate) {
        match update {}
    }
}
