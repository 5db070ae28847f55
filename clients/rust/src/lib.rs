//! Rust client library for the OmniPanel agent. It finds the agent (the
//! `OMNIPANEL_SOCKET` / `OMNIPANEL_ADDR` + `OMNIPANEL_TOKEN` environment or
//! the default per-user socket), connects with the `localhost` authority the
//! HTTP/2 layer requires, checks the protocol version, turns failures into
//! messages a person can act on, and offers an event subscription that
//! resumes from its last sequence after a reconnect. Calls come back as
//! generated messages or classified errors (`calls`), `display` holds
//! the words and numbers every client shows the same way, and `bugreport`
//! collects what a bug report holds for the CLI and the panel alike.

pub mod bugreport;
mod calls;
mod connect;
pub mod display;
mod error;
mod events;
pub mod location;
mod transport;

pub use calls::{Answer, MessageStream};
pub use connect::{AuthInterceptor, Authed, Client, Credential, Target};
pub use error::ClientError;
pub use events::{EventSubscription, SubscriptionItem};
pub use omnipanel_proto as proto;
