//! The requests to stop that come from outside as signals: SIGTERM (a
//! service manager, `kill`) and SIGINT (Ctrl-C). A port maps its own
//! console and service events to the same two calls.

use omnipanel_core::error::{Error, Result};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// The signals that ask the agent to stop, listened to from creation on.
#[derive(Debug)]
pub struct StopSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl StopSignals {
    /// Start listening (must run inside the runtime).
    pub fn listen() -> Result<Self> {
        let terminate = signal(SignalKind::terminate())
            .map_err(|err| Error::internal(format!("cannot handle SIGTERM: {err}")))?;
        let interrupt = signal(SignalKind::interrupt())
            .map_err(|err| Error::internal(format!("cannot handle SIGINT: {err}")))?;
        Ok(Self {
            terminate,
            interrupt,
        })
    }

    /// The next request to stop, named for the log ("signal SIGTERM").
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "signal SIGTERM",
            _ = self.interrupt.recv() => "signal SIGINT",
        }
    }
}
