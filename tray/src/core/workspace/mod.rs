//! The panel workspace's per-domain state and commands, one module each:
//! [`chat`] (conversations and the streaming reply), [`files`] (the open
//! project's tree, search and preview) and [`git`] (its repository). Each
//! holds the commands the UI sends, the updates the backend returns and
//! the pure reducer that folds them into [`crate::core::state::AgentState`].

pub mod chat;
pub mod files;
pub mod git;
