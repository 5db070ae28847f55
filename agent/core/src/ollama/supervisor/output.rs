//! The managed server's output: reader threads copy its stdout and stderr
//! into the ollama log and keep the last lines, which name the reason when
//! it exits, and tell a port held by another process (Ollama's "address
//! already in use") from a crash.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Write},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::oneshot;

use super::process::Managed;
use crate::logs::RotatingWriter;

/// What Ollama (Go's net package) prints when its port is taken.
const PORT_IN_USE: &str = "address already in use";

impl Managed {
    pub(super) fn last_output(&self) -> Option<String> {
        crate::sync::lock(&self.recent_output).back().cloned()
    }

    /// The line saying the port is taken, if the server wrote one. Any
    /// line will do: the clash may not be the last one.
    pub(super) fn port_clash(&self) -> Option<String> {
        self.output_containing(PORT_IN_USE)
    }

    /// The most recent output line containing `needle`.
    fn output_containing(&self, needle: &str) -> Option<String> {
        crate::sync::lock(&self.recent_output)
            .iter()
            .rev()
            .find(|line| line.contains(needle))
            .cloned()
    }

    /// After the server exited: wait, at most `limit`, until the readers
    /// have read everything it wrote. `wait()` returns as soon as the
    /// process is gone, usually before its last line (the reason it
    /// exited) has gone through the reader threads.
    pub(super) async fn drain_output(&mut self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        for pump in self.pumps.drain(..) {
            let _ = tokio::time::timeout_at(deadline, pump).await;
        }
    }
}

/// Copy a child's output into the ollama log (on a plain thread: blocking
/// reads and file writes stay off the executor), keeping the last lines for
/// error messages. The receiver resolves once the pipe is read to its end.
pub(super) fn pump_output<R>(
    pipe: R,
    log: Arc<Mutex<RotatingWriter>>,
    recent: Arc<Mutex<VecDeque<String>>>,
) -> Option<oneshot::Receiver<()>>
where
    R: IntoStd,
{
    let reader = pipe.into_std()?;
    let (finished, drained) = oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("omnipanel-ollama-log".into())
        .spawn(move || {
            // Dropped when the thread ends, however it ends.
            let _finished = finished;
            let reader = BufReader::new(reader);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                {
                    let mut writer = crate::sync::lock(&log);
                    let _ = writer.write_all(line.as_bytes());
                    let _ = writer.write_all(b"\n");
                }
                let mut recent = crate::sync::lock(&recent);
                if recent.len() == 20 {
                    recent.pop_front();
                }
                recent.push_back(line);
            }
        });
    match spawned {
        Ok(_) => Some(drained),
        Err(err) => {
            tracing::warn!(error = %err, "cannot start the ollama log reader");
            None
        }
    }
}

/// A tokio child pipe turned into a blocking reader.
pub(super) trait IntoStd {
    fn into_std(self) -> Option<std::fs::File>;
}

impl IntoStd for tokio::process::ChildStdout {
    fn into_std(self) -> Option<std::fs::File> {
        self.into_owned_fd().ok().map(std::fs::File::from)
    }
}

impl IntoStd for tokio::process::ChildStderr {
    fn into_std(self) -> Option<std::fs::File> {
        self.into_owned_fd().ok().map(std::fs::File::from)
    }
}
