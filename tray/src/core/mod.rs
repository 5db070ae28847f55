//! What the tray and the panel share, with no toolkit in it: the state
//! mirror of the agent ([`state`]) and the backend that keeps it current
//! ([`backend`], the only tray code that speaks gRPC), the pure view models
//! and icon both draw from ([`views`], [`icon`]), the panel header's health
//! chips ([`health`]), starting programs
//! ([`launch`]), keeping one panel at a time ([`single`]), the system's
//! light/dark preference ([`theme`]), the panel's window state
//! ([`window_state`]), ending either loop on SIGTERM and SIGINT
//! ([`stop_signal`]), and the
//! panel workspace's chat, files and Git state ([`workspace`]). Nothing here
//! imports `tray` or `panel`.

pub mod backend;
pub mod health;
pub mod icon;
pub mod launch;
pub mod single;
pub mod state;
pub mod stop_signal;
pub mod theme;
pub mod views;
pub mod window_state;
pub mod workspace;
