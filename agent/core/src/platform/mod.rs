//! Everything in the domain crate that differs between operating systems,
//! one small module per concern, each with a portable interface and its
//! `cfg`-gated implementations side by side: process control
//! (`process.rs`), start at login (`autostart.rs`), file-system facts
//! (`fs.rs`: free space, the executable bit, owner-only and
//! executable modes; opens that never block on a FIFO and never follow a
//! final symlink; which bytes separate a path's parts), moving to the
//! trash from an open folder (`trash.rs`), a socket caller's process
//! chain (`peer_process.rs`). A Windows or macOS port
//! changes these files (and the watcher's backends, `files/watch/source.rs`)
//! and nothing else here. Linux is the platform that is built and tested;
//! the other branches compile in principle and answer plainly where they
//! have nothing to offer.

pub mod autostart;
pub mod fs;
pub mod peer_process;
pub mod process;
pub mod trash;
