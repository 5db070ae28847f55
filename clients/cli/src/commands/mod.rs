//! One module per command group, each owning its clap arguments and its
//! handler. A command module imports no other: what two groups share lives
//! outside `commands/` (`output`, `project_ref`, `log_tail`, `args`) or in
//! the client library (`omnipanel_client::display`, the call helpers).

pub mod agent;
pub mod alerts;
pub mod audit;
pub mod chat;
pub mod clients;
pub mod confirmations;
pub mod conversations;
pub mod files;
pub mod git;
pub mod lifecycle;
pub mod mcp;
pub mod models;
pub mod ollama;
pub mod projects;
pub mod system;
