//! OmniPanel's domain: what the agent knows and does, in plain Rust types.
//! One module per capability (`ollama`, `projects`, `files`, `git`,
//! `system`, `updates`) plus the agent's own state (`config`, `store`,
//! `events`, `logs`, `tokens`, `crash`, `autostart`, administered through
//! the `agent` facade). Nothing here knows gRPC, HTTP/2 or
//! the generated API types: the server crate (`omnipanel-agent`) adapts
//! these types to the API, and everything here is tested without a socket.

pub mod access;
pub mod agent;
pub mod atomic_file;
pub mod audit;
pub mod autostart;
pub mod clock;
pub mod config;
pub mod conversations;
pub mod crash;
pub mod error;
pub mod events;
pub mod feed;
pub mod files;
pub mod git;
pub mod http;
pub mod logs;
pub mod model_route;
pub mod ollama;
pub mod openai;
pub mod platform;
pub mod projects;
pub mod reason;
pub mod secrets;
#[cfg(test)]
mod seeded_random;
pub mod store;
pub mod sync;
pub mod system;
pub mod tokens;
pub mod updates;
pub mod version;
