//! The OmniPanel agent as a library: the daemon's lifecycle and the domain
//! modules it is made of. `rpc` is the only module that knows gRPC; the rest
//! take and return plain Rust types and are tested without a socket. The
//! `omnipanel-agent` binary is a thin command line over [`daemon::run`].

pub mod atomic_file;
pub mod autostart;
pub mod config;
pub mod context;
pub mod crash;
pub mod daemon;
pub mod error;
pub mod events;
pub mod feed;
pub mod files;
pub mod git;
pub mod instance;
pub mod logs;
pub mod ollama;
pub mod paths;
pub mod projects;
pub mod rpc;
pub mod service;
pub mod store;
pub mod system;
pub mod tokens;
pub mod updates;
pub mod version;
