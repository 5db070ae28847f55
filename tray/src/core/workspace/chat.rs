//! The Chat tab's mirror: the selected project's conversations (kept by the agent), the one being shown, and the reply streaming into it. Folded in by [`ChatState::apply`]; drawn by the panel's chat view.

/// What the panel asks the backend to do on the chat side.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatCommand {}

impl ChatCommand {
    /// The key its outcome (a notice) is filed under.
    pub fn key(&self) -> String {
        match *self {}
    }
}

/// One change to [`ChatState`].
#[derive(Debug, Clone)]
pub enum ChatUpdate {}

/// The mirrored state.
#[derive(Debug, Clone, Default)]
pub struct ChatState {}

impl ChatState {
    /// Fold one update in.
    pub fn apply(&mut self, update: ChatUpdate) {
        match update {}
    }
}
