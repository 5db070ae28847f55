//! The Git tab's mirror of one project's repository: status, the diff shown, branches and the progress of a pull or push, kept current by the "repository changed" event. Folded in by [`GitState::apply`].

/// What the panel asks the backend to do on the git side.
#[derive(Debug, Clone, PartialEq)]
pub enum GitCommand {}

impl GitCommand {
    /// The key its outcome (a notice) is filed under.
    pub fn key(&self) -> String {
        match *self {}
    }
}

/// One change to [`GitState`].
#[derive(Debug, Clone)]
pub enum GitUpdate {}

/// The mirrored state.
#[derive(Debug, Clone, Default)]
pub struct GitState {}

impl GitState {
    /// Fold one update in.
    pub fn apply(&mut self, update: GitUpdate) {
        match update {}
    }
}
