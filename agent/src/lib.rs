//! The OmniPanel agent as a library: the server around the domain crate
//! (`omnipanel-core`). `daemon` runs the agent's lifecycle (settings, single
//! instance, listeners, signals, shutdown), `rpc` is the only module that
//! knows gRPC and the generated types, `gateway` serves Ollama's and
//! OpenAI's HTTP APIs in front of the providers, `platform` holds what differs
//! between operating systems, and the rest are the pieces only a server
//! needs. `program` is the executable's entry: the agent's command line
//! over [`daemon::run`], or the `omnipanel` CLI, chosen by name.

pub mod context;
pub mod daemon;
pub mod events;
pub mod gateway;
pub mod instance;
pub mod platform;
pub mod program;
pub mod rpc;
pub mod service;
pub mod update_probe;
