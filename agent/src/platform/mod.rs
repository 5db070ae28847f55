//! Everything in the server that differs between operating systems, one
//! small module per concern: the local socket as a file and its listener
//! (`socket.rs`), the peer's identity on it (`peer.rs`), the signals that
//! ask the agent to stop (`signals.rs`), installing it as a service
//! (`service.rs`), giving freed memory back to the OS (`memory.rs`), and
//! the code an idle agent does not run (`cold_code.rs`).
//! A Windows or macOS port changes these files (with
//! `omnipanel_core::platform` and `omnipanel-paths`' `platform.rs`) and
//! nothing else in the agent. Linux is the platform that is built and
//! tested.

pub mod cold_code;
pub mod memory;
pub mod peer;
pub mod service;
pub mod signals;
pub mod socket;
