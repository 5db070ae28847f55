//! The managed server as a process: spawning `ollama serve` with its
//! output piped to the log readers and tied to the agent's life, stopping
//! it with SIGTERM then SIGKILL after a grace period, and describing how it
//! exited. The supervisor task decides when to do each of these; this
//! module only knows how, and asks `platform::process` for what differs
//! between operating systems.

use std::{
    collections::VecDeque,
    path::Path,
    process::{ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    process::{Child, Command},
    sync::oneshot,
};

use super::{env::ServerEnv, output::pump_output};
use crate::{
    logs::RotatingWriter,
    ollama::address::OllamaAddress,
    platform::process::{die_with_parent, exit_signal, terminate},
};

/// A server we started.
pub(super) struct Managed {
    pub(super) child: Child,
    pub(super) pid: Option<u32>,
    pub(super) recent_output: Arc<Mutex<VecDeque<String>>>,
    /// One per output reader; each resolves when its reader has read to
    /// the end of its pipe.
    pub(super) pumps: Vec<oneshot::Receiver<()>>,
}

/// Run `binary serve` on `address` with the settings in `env`, its stdout
/// and stderr copied into `log`.
pub(super) fn spawn(
    binary: &Path,
    address: &OllamaAddress,
    env: &ServerEnv,
    log: &Arc<Mutex<RotatingWriter>>,
) -> std::io::Result<Managed> {
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env("OLLAMA_HOST", address.env_value())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // The folder the fit check measures must be the one the server
    // fills, and the tunables the user set must be the server's; without a
    // setting the server's own default (or the inherited variable) applies.
    command.envs(env.vars());
    die_with_parent(&mut command);
    let mut child = command.spawn()?;
    let pid = child.id();
    let recent_output = Arc::new(Mutex::new(VecDeque::new()));
    let mut pumps = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        pumps.extend(pump_output(stdout, log.clone(), recent_output.clone()));
    }
    if let Some(stderr) = child.stderr.take() {
        pumps.extend(pump_output(stderr, log.clone(), recent_output.clone()));
    }
    Ok(Managed {
        child,
        pid,
        recent_output,
        pumps,
    })
}

impl Managed {
    /// SIGTERM, then SIGKILL after `grace`. Returns whether it had to be
    /// killed.
    pub(super) async fn stop(mut self, grace: Duration) -> bool {
        if let Some(pid) = self.pid {
            terminate(pid);
        }
        let exited = tokio::time::timeout(grace, self.child.wait()).await;
        if exited.is_ok() {
            return false;
        }
        tracing::warn!(
            grace = %humantime::format_duration(grace),
            "ollama did not stop after SIGTERM; killing it"
        );
        self.kill().await;
        true
    }

    /// SIGKILL, and wait until it is gone.
    pub(super) async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// How a process ended, as the end of "ollama ...".
pub(super) fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => match status.code() {
            Some(code) => format!("exited with status {code}"),
            None => match exit_signal(&status) {
                Some(signal) => format!("was killed by signal {signal}"),
                None => "exited".to_owned(),
            },
        },
        Err(err) => format!("could not be waited for: {err}"),
    }
}
