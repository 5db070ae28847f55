//! The local Ollama server's supervisor: one task owning a state machine.
//! At start it adopts a server that already answers (EXTERNAL, never
//! stopped), or starts `ollama serve` (MANAGED) when autostart is on. A
//! managed server that exits is restarted with exponential backoff (by
//! default 1 s doubling to 60 s, reset after 60 s healthy: see
//! [`BackoffPolicy`]); one that fails its health
//! check (GET /api/version) three times in a row is killed and restarted.
//! A port held by something that is not Ollama means BACKOFF with a message
//! naming the port. Every state change is published with its reason.
//!
//! The health check is the one periodic timer the agent runs, and only while
//! there is a server to watch.
//!
//! This module is the task and its handle ([`Supervisor`]): the phases, the
//! commands, probing the address. The pure rules are in `state` (states,
//! the status record, the backoff schedule), the child process in `process`
//! (spawn, SIGTERM then SIGKILL, dying with the agent), its environment in
//! `env` (the `[ollama]` settings given to it), and its output in
//! `output` (the log, the last lines, the port clash).
//!
//! A change of the server's settings ([`Supervisor::configure`]) is kept
//! for the next start, and restarts a running managed server at once only
//! when its caller says nothing runs on it.

mod env;
mod output;
mod process;
mod state;

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot, watch};

pub use self::{
    env::ServerEnv,
    state::{BackoffPolicy, ServerState, ServerStatus},
};
use self::{
    process::{Managed, describe_exit},
    state::Backoff,
};
use crate::reason::Reason;
use crate::{
    error::{Error, Result},
    events::Publisher,
    logs::RotatingWriter,
    ollama::OllamaEvent,
    ollama::{
        address::OllamaAddress,
        api::{ApiError, OllamaApi},
        discovery,
    },
    store::now_ms,
};

/// Tunables, from `[ollama]` in config.toml.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    /// `ollama.binary`.
    pub binary: Option<PathBuf>,
    /// The `[ollama]` settings given to a started server.
    pub env: ServerEnv,
    /// Where the server listens.
    pub address: OllamaAddress,
    /// Start a server when none answers.
    pub autostart: bool,
    /// Time between health checks.
    pub health_interval: Duration,
    /// Time a health check may take.
    pub health_timeout: Duration,
    /// Failed checks in a row that mean "hung".
    pub health_failures: u32,
    /// How long a stop waits after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
    /// When to try again after a failed start or a crash.
    pub backoff: BackoffPolicy,
    /// How long a start may take to answer.
    pub startup_timeout: Duration,
    /// How long to wait, once the server exited, for its last output
    /// (which says why it exited) to be read. Bounded because a child of
    /// the server (Ollama's model runners) may hold the pipes open.
    pub output_drain: Duration,
}

/// Default of [`SupervisorConfig::output_drain`].
pub const OUTPUT_DRAIN: Duration = Duration::from_secs(2);

const STARTUP_POLL: Duration = Duration::from_millis(100);

type Reply = oneshot::Sender<Result<ServerStatus>>;

#[derive(Debug)]
enum Request {
    Start(Reply),
    Stop(Reply),
    Restart(Reply),
    Configure {
        env: ServerEnv,
        restart: bool,
        reply: oneshot::Sender<Reconfigured>,
    },
    Shutdown(oneshot::Sender<()>),
}

/// What became of new server settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconfigured {
    /// They are the settings already in use.
    Unchanged,
    /// The managed server was stopped and is starting with them.
    Restarted,
    /// The managed server runs on with the old ones: they apply at its
    /// next restart.
    Deferred,
    /// The server was started outside OmniPanel: they do not apply to it
    /// (only to a server OmniPanel starts later).
    External,
    /// No managed server runs: the next start uses them.
    NotRunning,
}

/// Handle to the supervisor task.
#[derive(Debug, Clone)]
pub struct Supervisor {
    commands: mpsc::Sender<Request>,
    status: watch::Receiver<ServerStatus>,
}

impl Supervisor {
    /// Start supervising. `log` receives the server's stdout and stderr.
    pub fn spawn(
        config: SupervisorConfig,
        api: OllamaApi,
        log: Arc<Mutex<RotatingWriter>>,
        bus: Publisher<OllamaEvent>,
    ) -> Self {
        let initial = ServerStatus {
            state: ServerState::Stopped,
            version: None,
            pid: None,
            address: config.address.listen(),
            ready_since_ms: None,
            restart_count: 0,
            last_error: None,
            binary: None,
            next_attempt_ms: None,
            reason: "the agent started".to_owned(),
        };
        let (status_tx, status) = watch::channel(initial);
        let (commands, receiver) = mpsc::channel(16);
        let machine = Machine {
            want_running: config.autostart,
            backoff: Backoff::new(config.backoff),
            config,
            api,
            log,
            bus,
            status: status_tx,
            waiting: Vec::new(),
        };
        tokio::spawn(machine.run(receiver));
        Self { commands, status }
    }

    /// The current status.
    pub fn status(&self) -> ServerStatus {
        self.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn watch(&self) -> watch::Receiver<ServerStatus> {
        self.status.clone()
    }

    async fn ask(&self, make: impl FnOnce(Reply) -> Request) -> Result<ServerStatus> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| Error::internal("the Ollama supervisor has stopped"))?;
        answer
            .await
            .map_err(|_| Error::internal("the Ollama supervisor has stopped"))?
    }

    /// Start the server (idempotent); answers once the state settles.
    pub async fn start(&self) -> Result<ServerStatus> {
        self.ask(Request::Start).await
    }

    /// Stop a managed server.
    pub async fn stop(&self) -> Result<ServerStatus> {
        self.ask(Request::Stop).await
    }

    /// Stop (if managed and running) and start again.
    pub async fn restart(&self) -> Result<ServerStatus> {
        self.ask(Request::Restart).await
    }

    /// Use `env` for every later start. A managed server that is running or
    /// starting is restarted with it at once when `restart` (its caller
    /// checked that nothing runs on it), else keeps running as it is.
    pub async fn configure(&self, env: ServerEnv, restart: bool) -> Result<Reconfigured> {
        let (reply, answer) = oneshot::channel();
        let stopped = || Error::internal("the Ollama supervisor has stopped");
        self.commands
            .send(Request::Configure {
                env,
                restart,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }

    /// Stop a managed server and end supervision (agent shutdown). An
    /// external server is left alone.
    pub async fn shutdown(&self) {
        let (reply, done) = oneshot::channel();
        if self.commands.send(Request::Shutdown(reply)).await.is_ok() {
            let _ = done.await;
        }
    }
}

enum Phase {
    Probe,
    Idle,
    Starting(Managed),
    Running(Managed),
    External,
    Backoff(Instant),
    Exit,
}

/// What a probe of the address found.
enum Probe {
    Ollama(String),
    Nothing,
    NotOllama(String),
}

struct Machine {
    config: SupervisorConfig,
    api: OllamaApi,
    log: Arc<Mutex<RotatingWriter>>,
    bus: Publisher<OllamaEvent>,
    status: watch::Sender<ServerStatus>,
    want_running: bool,
    backoff: Backoff,
    /// Start/Restart callers waiting for the state to settle.
    waiting: Vec<Reply>,
}

impl Machine {
    fn update(&self, change: impl FnOnce(&mut ServerStatus)) {
        let previous = self.status.borrow().clone();
        let mut next = previous.clone();
        change(&mut next);
        if next == previous {
            return;
        }
        let announce = next.state != previous.state || next.reason != previous.reason;
        self.status.send_replace(next.clone());
        if announce {
            tracing::info!(
                state = next.state.name(),
                reason = %next.reason,
                "ollama server state changed"
            );
            self.bus.publish(OllamaEvent::OllamaStateChanged {
                status: next,
                previous: previous.state,
            });
        }
    }

    fn set_state(&self, state: ServerState, reason: impl Into<String>) {
        let reason = reason.into();
        self.update(|s| s.enter(state, reason));
    }

    /// Answer waiting Start/Restart callers with the settled status.
    fn settle(&mut self) {
        let status = self.status.borrow().clone();
        for reply in self.waiting.drain(..) {
            let answer = if status.state == ServerState::NotInstalled {
                Err(Error::failed_precondition(status.reason.clone())
                    .with_reason(Reason::OllamaNotInstalled))
            } else {
                Ok(status.clone())
            };
            let _ = reply.send(answer);
        }
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Request>) {
        let mut phase = Phase::Probe;
        loop {
            phase = match phase {
                Phase::Probe => self.probe_phase().await,
                Phase::Idle => self.idle(&mut commands).await,
                Phase::Starting(managed) => self.starting(managed, &mut commands).await,
                Phase::Running(managed) => self.running(managed, &mut commands).await,
                Phase::External => self.external(&mut commands).await,
                Phase::Backoff(until) => self.backoff_wait(until, &mut commands).await,
                Phase::Exit => break,
            };
        }
        self.settle();
    }

    async fn probe(&self) -> Probe {
        let connect = tokio::time::timeout(
            self.config.health_timeout,
            tokio::net::TcpStream::connect(self.config.address.dial()),
        )
        .await;
        match connect {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Probe::Nothing,
            Err(_) => {
                return Probe::NotOllama(format!(
                    "port {} does not accept connections in time",
                    self.config.address.port()
                ));
            }
        }
        match self.api.version(self.config.health_timeout).await {
            Ok(version) => Probe::Ollama(version),
            Err(ApiError::Unreachable(why)) if why.contains("refused") => Probe::Nothing,
            Err(ApiError::Unreachable(_)) => Probe::NotOllama(format!(
                "port {} is taken by a process that does not answer (a hung Ollama?)",
                self.config.address.port()
            )),
            Err(err) => Probe::NotOllama(format!(
                "port {} is taken by something that is not Ollama ({err})",
                self.config.address.port()
            )),
        }
    }

    /// Decide what to do: adopt, spawn, wait, or stay stopped.
    async fn probe_phase(&mut self) -> Phase {
        match self.probe().await {
            Probe::Ollama(version) => {
                self.update(|s| {
                    s.version = Some(version);
                    s.ready_since_ms = Some(now_ms());
                });
                self.set_state(
                    ServerState::External,
                    format!(
                        "a server started outside OmniPanel answers at {}; using it",
                        self.config.address
                    ),
                );
                self.settle();
                Phase::External
            }
            Probe::NotOllama(why) => {
                if self.want_running {
                    self.enter_backoff(why)
                } else {
                    self.update(|s| s.last_error = Some(why.clone()));
                    self.set_state(ServerState::Stopped, why);
                    self.settle();
                    Phase::Idle
                }
            }
            Probe::Nothing => {
                let binary = discovery::find_binary(self.config.binary.as_deref());
                match binary {
                    Err(why) => {
                        // Whatever the discovery said, the one thing that
                        // fixes it is installing Ollama: every reader of
                        // this state (StartServer, other calls, the tray)
                        // gets the hint from here.
                        let why = discovery::with_install_hint(&why);
                        self.update(|s| {
                            s.binary = None;
                            s.last_error = Some(why.clone());
                        });
                        self.set_state(ServerState::NotInstalled, why);
                        self.settle();
                        Phase::Idle
                    }
                    Ok(path) if self.want_running => self.spawn(path),
                    Ok(path) => {
                        self.update(|s| s.binary = Some(path));
                        self.set_state(ServerState::Stopped, "autostart is off");
                        self.settle();
                        Phase::Idle
                    }
                }
            }
        }
    }

    fn spawn(&mut self, binary: PathBuf) -> Phase {
        self.update(|s| s.binary = Some(binary.clone()));
        let spawned = process::spawn(&binary, &self.config.address, &self.config.env, &self.log);
        match spawned {
            Ok(managed) => {
                let pid = managed.pid;
                self.update(|s| s.pid = pid);
                self.set_state(
                    ServerState::Starting,
                    format!(
                        "started {} serve (pid {})",
                        binary.display(),
                        pid.unwrap_or(0)
                    ),
                );
                Phase::Starting(managed)
            }
            Err(err) => self.enter_backoff(format!("cannot run {}: {err}", binary.display())),
        }
    }

    fn enter_backoff(&mut self, why: String) -> Phase {
        let delay = self.backoff.take();
        let next_ms = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
        self.update(|s| {
            s.last_error = Some(why.clone());
            s.next_attempt_ms = Some(next_ms);
        });
        self.set_state(
            ServerState::Backoff,
            format!(
                "{why}; next attempt in {}",
                humantime::format_duration(delay)
            ),
        );
        self.update(|s| s.next_attempt_ms = Some(next_ms));
        self.settle();
        Phase::Backoff(Instant::now() + delay)
    }

    /// A managed server failed (exited or hung): record it, then back off.
    fn crashed(&mut self, why: String, ready_since: Option<Instant>) -> Phase {
        self.backoff
            .failed_after(ready_since.map(|since| since.elapsed()));
        tracing::warn!(reason = %why, "ollama server failed");
        self.update(|s| {
            s.last_error = Some(why.clone());
            s.restart_count += 1;
        });
        self.set_state(ServerState::Crashed, why.clone());
        self.enter_backoff(why)
    }

    /// SIGTERM, then SIGKILL after `stop_timeout`. Returns whether it had to
    /// be killed.
    async fn stop_managed(&mut self, managed: Managed, reason: &str) -> bool {
        self.set_state(ServerState::Stopping, reason);
        managed.stop(self.config.stop_timeout).await
    }

    /// Handle a command in a phase with no managed server. Returns the next
    /// phase when the command changes it.
    fn command_without_server(&mut self, command: Request, external: bool) -> Option<Phase> {
        match command {
            Request::Start(reply) => {
                self.want_running = true;
                if external {
                    let _ = reply.send(Ok(self.status.borrow().clone()));
                    None
                } else {
                    self.waiting.push(reply);
                    self.backoff.reset();
                    Some(Phase::Probe)
                }
            }
            Request::Stop(reply) => {
                if external {
                    let _ = reply.send(Err(external_refusal(&self.config.address)));
                    return None;
                }
                self.want_running = false;
                // Nothing runs, and STOPPED would claim an installed server:
                // NOT_INSTALLED stays what it is until a start finds one.
                if self.status.borrow().state == ServerState::NotInstalled {
                    let _ = reply.send(Ok(self.status.borrow().clone()));
                    return None;
                }
                self.set_state(ServerState::Stopped, "stopped by request");
                let _ = reply.send(Ok(self.status.borrow().clone()));
                Some(Phase::Idle)
            }
            Request::Restart(reply) => {
                if external {
                    let _ = reply.send(Err(external_refusal(&self.config.address)));
                    return None;
                }
                self.want_running = true;
                self.backoff.reset();
                self.waiting.push(reply);
                Some(Phase::Probe)
            }
            Request::Configure { env, reply, .. } => {
                let outcome = if env == self.config.env {
                    Reconfigured::Unchanged
                } else if external {
                    Reconfigured::External
                } else {
                    Reconfigured::NotRunning
                };
                self.config.env = env;
                let _ = reply.send(outcome);
                None
            }
            Request::Shutdown(done) => {
                let _ = done.send(());
                Some(Phase::Exit)
            }
        }
    }

    async fn idle(&mut self, commands: &mut mpsc::Receiver<Request>) -> Phase {
        loop {
            let Some(command) = commands.recv().await else {
                return Phase::Exit;
            };
            if let Some(next) = self.command_without_server(command, false) {
                return next;
            }
        }
    }

    async fn backoff_wait(
        &mut self,
        until: Instant,
        commands: &mut mpsc::Receiver<Request>,
    ) -> Phase {
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => return Phase::Probe,
                command = commands.recv() => {
                    let Some(command) = command else { return Phase::Exit };
                    if let Some(next) = self.command_without_server(command, false) {
                        return next;
                    }
                }
            }
        }
    }

    /// Handle a command while we manage a server. `Some` ends the phase.
    async fn command_with_server(
        &mut self,
        command: Request,
        managed: &mut Option<Managed>,
    ) -> Option<Phase> {
        match command {
            Request::Start(reply) => {
                self.want_running = true;
                if self.status.borrow().state == ServerState::Running {
                    let _ = reply.send(Ok(self.status.borrow().clone()));
                } else {
                    self.waiting.push(reply);
                }
                None
            }
            Request::Stop(reply) => {
                self.want_running = false;
                let killed = match managed.take() {
                    Some(server) => self.stop_managed(server, "stopping by request").await,
                    None => false,
                };
                let reason = if killed {
                    format!(
                        "stopped by request (it did not stop within {} of SIGTERM, so it was killed)",
                        humantime::format_duration(self.config.stop_timeout)
                    )
                } else {
                    "stopped by request".to_owned()
                };
                self.set_state(ServerState::Stopped, reason);
                let _ = reply.send(Ok(self.status.borrow().clone()));
                self.settle();
                Some(Phase::Idle)
            }
            Request::Restart(reply) => {
                self.want_running = true;
                if let Some(server) = managed.take() {
                    // A restart goes on whether or not it had to be killed.
                    let _ = self.stop_managed(server, "restarting by request").await;
                }
                self.set_state(ServerState::Stopped, "restarting by request");
                self.backoff.reset();
                self.waiting.push(reply);
                Some(Phase::Probe)
            }
            Request::Configure {
                env,
                restart,
                reply,
            } => {
                if env == self.config.env {
                    let _ = reply.send(Reconfigured::Unchanged);
                    return None;
                }
                self.config.env = env;
                let Some(server) = managed.take_if(|_| restart) else {
                    tracing::info!(
                        "new Ollama server settings apply at its next restart: it is in use"
                    );
                    let _ = reply.send(Reconfigured::Deferred);
                    return None;
                };
                let _ = self
                    .stop_managed(server, "restarting to apply new settings")
                    .await;
                self.set_state(ServerState::Stopped, "restarting to apply new settings");
                self.backoff.reset();
                let _ = reply.send(Reconfigured::Restarted);
                Some(Phase::Probe)
            }
            Request::Shutdown(done) => {
                if let Some(server) = managed.take() {
                    let _ = self
                        .stop_managed(server, "the agent is shutting down")
                        .await;
                }
                self.set_state(ServerState::Stopped, "the agent stopped it on shutdown");
                let _ = done.send(());
                Some(Phase::Exit)
            }
        }
    }

    async fn starting(
        &mut self,
        managed: Managed,
        commands: &mut mpsc::Receiver<Request>,
    ) -> Phase {
        let deadline = Instant::now() + self.config.startup_timeout;
        let mut managed = Some(managed);
        loop {
            let Some(server) = managed.as_mut() else {
                return Phase::Probe;
            };
            tokio::select! {
                status = server.child.wait() => {
                    server.drain_output(self.config.output_drain).await;
                    if let Some(line) = server.port_clash() {
                        return self.enter_backoff(format!(
                            "port {} is already in use: {line}",
                            self.config.address.port()
                        ));
                    }
                    let output = server.last_output().map(|l| format!(": {l}")).unwrap_or_default();
                    let why = format!("ollama {} during start-up{output}", describe_exit(status));
                    return self.crashed(why, None);
                }
                () = tokio::time::sleep(STARTUP_POLL) => {
                    match self.api.version(self.config.health_timeout).await {
                        Ok(version) => {
                            // Before the state changes, so the RUNNING
                            // event already says since when.
                            self.update(|s| {
                                s.version = Some(version);
                                s.last_error = None;
                                s.ready_since_ms = Some(now_ms());
                            });
                            self.set_state(ServerState::Running, "the server answers");
                            self.settle();
                            return match managed.take() {
                                Some(server) => Phase::Running(server),
                                None => Phase::Probe,
                            };
                        }
                        Err(_) if Instant::now() >= deadline => {
                            let secs = self.config.startup_timeout.as_secs();
                            if let Some(server) = managed.take() {
                                server.kill().await;
                            }
                            return self.crashed(format!("ollama did not answer within {secs} s of starting"), None);
                        }
                        Err(_) => {}
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { return Phase::Exit };
                    if let Some(next) = self.command_with_server(command, &mut managed).await {
                        return next;
                    }
                }
            }
        }
    }

    async fn running(&mut self, managed: Managed, commands: &mut mpsc::Receiver<Request>) -> Phase {
        let ready_since = Instant::now();
        let mut failures = 0u32;
        let mut managed = Some(managed);
        let mut ticker = tokio::time::interval(self.config.health_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            let Some(server) = managed.as_mut() else {
                return Phase::Probe;
            };
            tokio::select! {
                status = server.child.wait() => {
                    server.drain_output(self.config.output_drain).await;
                    let output = server.last_output().map(|l| format!(" (last output: {l})")).unwrap_or_default();
                    return self.crashed(format!("ollama {} unexpectedly{output}", describe_exit(status)), Some(ready_since));
                }
                _ = ticker.tick() => {
                    match self.api.version(self.config.health_timeout).await {
                        Ok(_) => failures = 0,
                        Err(err) => {
                            failures += 1;
                            tracing::warn!(failures, error = %err, "ollama health check failed");
                            if failures >= self.config.health_failures {
                                if let Some(server) = managed.take() {
                                    server.kill().await;
                                }
                                return self.crashed(
                                    format!("ollama hung: {failures} health checks in a row failed (last: {err}); killed it"),
                                    Some(ready_since),
                                );
                            }
                        }
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { return Phase::Exit };
                    if let Some(next) = self.command_with_server(command, &mut managed).await {
                        return next;
                    }
                }
            }
        }
    }

    async fn external(&mut self, commands: &mut mpsc::Receiver<Request>) -> Phase {
        let mut failures = 0u32;
        let mut ticker = tokio::time::interval(self.config.health_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    match self.api.version(self.config.health_timeout).await {
                        Ok(version) => {
                            failures = 0;
                            self.update(|s| s.version = Some(version));
                        }
                        Err(err) => {
                            failures += 1;
                            if failures >= self.config.health_failures {
                                self.update(|s| {
                                    s.last_error = Some(err.to_string());
                                    s.version = None;
                                });
                                self.set_state(
                                    ServerState::Stopped,
                                    format!("the external server at {} stopped answering", self.config.address),
                                );
                                return Phase::Probe;
                            }
                        }
                    }
                }
                command = commands.recv() => {
                    let Some(command) = command else { return Phase::Exit };
                    if let Some(next) = self.command_without_server(command, true) {
                        return next;
                    }
                }
            }
        }
    }
}

fn external_refusal(address: &OllamaAddress) -> Error {
    Error::failed_precondition(format!(
        "the Ollama server at {address} was started outside OmniPanel; stop or restart it where it was started"
    ))
    .with_reason(Reason::OllamaExternal)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::logs::{LogSource, RotationPolicy};

    /// A port on 127.0.0.1 that nothing listens on.
    fn idle_port() -> std::io::Result<u16> {
        Ok(std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port())
    }

    /// An executable shell script standing in for `ollama`.
    fn script(dir: &std::path::Path, body: &str) -> std::io::Result<PathBuf> {
        let path = dir.join("ollama");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n"))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        Ok(path)
    }

    fn config(binary: PathBuf, port: u16) -> SupervisorConfig {
        SupervisorConfig {
            binary: Some(binary),
            env: ServerEnv::default(),
            address: OllamaAddress::parse(&format!("127.0.0.1:{port}")),
            autostart: true,
            health_interval: Duration::from_secs(1),
            health_timeout: Duration::from_secs(1),
            health_failures: 3,
            stop_timeout: Duration::from_secs(5),
            backoff: BackoffPolicy::default(),
            startup_timeout: Duration::from_secs(30),
            // Only bounds a hang; the readers finish long before.
            output_drain: Duration::from_secs(60),
        }
    }

    fn supervise(config: SupervisorConfig, dir: &std::path::Path) -> std::io::Result<Supervisor> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = crate::http::client(&crate::ollama::http::options(crate::http::Tls::Off))
            .map_err(std::io::Error::other)?;
        let api = OllamaApi::new(http, &config.address.base_url(), None);
        let log = RotatingWriter::open(
            LogSource::new("ollama", dir.join("ollama.log")),
            RotationPolicy {
                max_bytes: 1 << 20,
                max_files: 1,
                max_age: Duration::from_secs(86_400),
            },
        )?;
        let bus = Arc::new(crate::events::EventBus::<OllamaEvent>::new(1, 64));
        Ok(Supervisor::spawn(
            config,
            api,
            Arc::new(Mutex::new(log)),
            bus,
        ))
    }

    #[tokio::test]
    async fn a_port_clash_reported_after_the_exit_is_still_a_clash()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let port = idle_port()?;
        // The server exits at once; its complaint arrives a moment later
        // through a child that still holds its stderr, as Ollama's runner
        // processes can. Read only when `wait()` returns, the output is
        // empty and the clash would pass for a crash.
        let binary = script(
            dir.path(),
            &format!(
                "(sleep 1; echo 'Error: listen tcp 127.0.0.1:{port}: bind: address already in use' >&2) &\nexit 1"
            ),
        )?;
        let supervisor = supervise(config(binary, port), dir.path())?;
        let mut watch = supervisor.watch();
        let settled = tokio::time::timeout(
            Duration::from_secs(60),
            watch.wait_for(|s| matches!(s.state, ServerState::Backoff | ServerState::Crashed)),
        )
        .await??
        .clone();
        assert_eq!(settled.state, ServerState::Backoff, "{settled:?}");
        assert_eq!(settled.restart_count, 0, "a clash is not a crash");
        let why = settled.last_error.unwrap_or_default();
        assert!(
            why.contains(&format!("port {port} is already in use")) && why.contains("bind:"),
            "{why}"
        );
        supervisor.shutdown().await;
        Ok(())
    }
}
