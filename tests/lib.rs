//! Shared harness for OmniPanel's end-to-end tests and benchmarks: a
//! [`Sandbox`] of temporary XDG folders, the real `omnipanel-agent` started
//! in it ([`AgentProcess`]), clients connected over its real socket, and the
//! real `omnipanel` CLI run against it (to its end, or followed line by
//! line). Binaries come from the workspace's target folder; `scripts/test`
//! builds them before the tests run.

use std::{
    ffi::OsString,
    io::Read,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    time::{Duration, Instant},
};

use omnipanel_client::{Client, ClientError, Target};

pub mod measure;
pub mod projects;
pub mod trees;

#[cfg(test)]
mod tidy;
#[path = "doubles/updates/mod.rs"]
pub mod update_server;

/// Generous upper bound for anything the tests wait for. Tests never assert
/// on speed; this only turns a hang into a failure.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Result type for tests: any error, with its message.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Path of a workspace binary, e.g. `omnipanel-agent`.
pub fn binary(name: &str) -> PathBuf {
    // Tests run from target/<profile>/deps; binaries live one level up.
    let mut dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --workspace --bins`, which scripts/test does)",
        path.display()
    );
    path
}

/// Temporary XDG folders for one agent.
#[derive(Debug)]
pub struct Sandbox {
    root: tempfile::TempDir,
    /// A port nothing listens on, given to the agent as OLLAMA_HOST so a
    /// real Ollama on the developer's machine is never adopted by tests.
    idle_ollama_port: u16,
}

impl Sandbox {
    /// Fresh, empty folders.
    pub fn new() -> TestResult<Self> {
        let root = tempfile::Builder::new()
            .prefix("omnipanel-e2e-")
            .tempdir()?;
        for dir in ["runtime", "config", "data", "state", "home"] {
            std::fs::create_dir_all(root.path().join(dir))?;
        }
        std::fs::set_permissions(
            root.path().join("runtime"),
            std::fs::Permissions::from_mode(0o700),
        )?;
        Ok(Self {
            root,
            idle_ollama_port: free_port()?,
        })
    }

    /// The sandbox root.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The sandbox's HOME: the default project root for tokens.
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// Where a test's project `name` lives: under HOME, as a user's would
    /// (the agent lets tokens reach only `access.project_roots`, the home by
    /// default; tests talk as the owner, who may open projects anywhere).
    pub fn project_dir(&self, name: &str) -> PathBuf {
        self.home().join(name)
    }

    /// Environment that points a process at this sandbox.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        let at = |dir: &str| self.root.path().join(dir).into_os_string();
        vec![
            ("XDG_RUNTIME_DIR", at("runtime")),
            ("XDG_CONFIG_HOME", at("config")),
            ("XDG_DATA_HOME", at("data")),
            ("XDG_STATE_HOME", at("state")),
            ("HOME", at("home")),
        ]
    }

    /// A command for `binary` with this sandbox's environment and none of
    /// the caller's OmniPanel variables.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        for var in [
            "OMNIPANEL_SOCKET",
            "OMNIPANEL_ADDR",
            "OMNIPANEL_TOKEN",
            "OMNIPANEL_CONFIG",
            "OMNIPANEL_LOG",
            "OLLAMA_HOST",
        ] {
            command.env_remove(var);
        }
        command.envs(self.env());
        command.env(
            "OLLAMA_HOST",
            format!("127.0.0.1:{}", self.idle_ollama_port),
        );
        command.env("OLLAMA_MODELS", self.root.path().join("ollama-models"));
        command
    }

    /// The agent's socket.
    pub fn socket(&self) -> PathBuf {
        self.root.path().join("runtime/omnipanel/agent.sock")
    }

    /// config.toml.
    pub fn config_file(&self) -> PathBuf {
        self.root.path().join("config/omnipanel/config.toml")
    }

    /// state.db's folder.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data/omnipanel")
    }

    /// The agent's log file.
    pub fn agent_log(&self) -> PathBuf {
        self.root.path().join("state/omnipanel/logs/agent.log")
    }

    /// The crash report folder.
    pub fn crash_dir(&self) -> PathBuf {
        self.root.path().join("state/omnipanel/crashes")
    }

    /// Write config.toml.
    pub fn write_config(&self, text: &str) -> TestResult {
        let path = self.config_file();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text)?;
        Ok(())
    }

    /// The socket target.
    pub fn target(&self) -> Target {
        Target::Unix(self.socket())
    }

    /// Run the `omnipanel` CLI against this sandbox's agent.
    pub fn cli(&self, args: &[&str]) -> TestResult<Output> {
        Ok(self
            .command(&binary("omnipanel"))
            .args(args)
            .stdin(Stdio::null())
            .output()?)
    }

    /// Run the CLI with extra environment variables.
    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> TestResult<Output> {
        let mut command = self.command(&binary("omnipanel"));
        command.args(args).stdin(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        Ok(command.output()?)
    }

    /// Run the CLI with `input` on its stdin.
    pub fn cli_with_input(&self, args: &[&str], input: &str) -> TestResult<Output> {
        use std::io::Write;
        let mut child = self
            .command(&binary("omnipanel"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes())?;
        }
        Ok(child.wait_with_output()?)
    }

    /// Start a long-running CLI command (`events --follow`, `logs -f`)
    /// whose stdout lines are read as they come.
    pub fn cli_follow(&self, args: &[&str]) -> TestResult<FollowedOutput> {
        FollowedOutput::spawn(
            self.command(&binary("omnipanel"))
                .args(args)
                .stdin(Stdio::null()),
        )
    }

    /// Start an agent in this sandbox and wait until it answers.
    pub async fn start_agent(&self) -> TestResult<AgentProcess> {
        AgentProcess::start(self, &[]).await
    }
}

/// A running `omnipanel-agent`.
#[derive(Debug)]
pub struct AgentProcess {
    child: Option<Child>,
    target: Target,
    stderr_path: PathBuf,
}

impl AgentProcess {
    /// Spawn the agent with `extra_env` and wait until GetInfo answers. If
    /// the process exits first, the error carries its stderr.
    pub async fn start(sandbox: &Sandbox, extra_env: &[(&str, &str)]) -> TestResult<Self> {
        Self::start_program(sandbox, &binary("omnipanel-agent"), extra_env).await
    }

    /// Like [`AgentProcess::start`], running `program` (e.g. a copy of the
    /// agent in an install folder that an update may replace).
    pub async fn start_program(
        sandbox: &Sandbox,
        program: &Path,
        extra_env: &[(&str, &str)],
    ) -> TestResult<Self> {
        let stderr_path = sandbox.root().join(format!(
            "agent-stderr-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        let stderr = std::fs::File::create(&stderr_path)?;
        let mut command = sandbox.command(program);
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let child = command.spawn()?;
        let mut agent = Self {
            child: Some(child),
            target: sandbox.target(),
            stderr_path,
        };
        agent.wait_ready().await?;
        Ok(agent)
    }

    async fn wait_ready(&mut self) -> TestResult {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.try_exit_status()? {
                return Err(format!(
                    "the agent exited with {status} before answering; stderr:\n{}",
                    self.stderr()
                )
                .into());
            }
            match Client::connect(self.target.clone()).await {
                Ok(_) => return Ok(()),
                Err(ClientError::AgentNotRunning { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => return Err(format!("agent never answered: {err}").into()),
            }
        }
    }

    /// A connected client.
    pub async fn client(&self) -> TestResult<Client> {
        Ok(Client::connect(self.target.clone()).await?)
    }

    /// The agent's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What the agent wrote to stderr so far.
    pub fn stderr(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.stderr_path) {
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    fn try_exit_status(&mut self) -> TestResult<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => Err("the agent was already reaped".into()),
        }
    }

    /// Send a signal to the agent.
    pub fn signal(&self, signal: rustix::process::Signal) -> TestResult {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid())?)
            .ok_or("the agent has no pid")?;
        rustix::process::kill_process(pid, signal)?;
        Ok(())
    }

    /// Wait (bounded by [`PATIENCE`]) for the agent to exit.
    pub async fn wait_exit(&mut self) -> TestResult<ExitStatus> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.try_exit_status()? {
                self.child = None;
                return Ok(status);
            }
            if Instant::now() > deadline {
                return Err("the agent did not exit in time".into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL the agent and reap it (simulates a crash or power cut).
    pub async fn kill(&mut self) -> TestResult {
        self.signal(rustix::process::Signal::KILL)?;
        self.wait_exit().await?;
        Ok(())
    }

    /// Stop gracefully with SIGTERM; returns the exit status.
    pub async fn stop(&mut self) -> TestResult<ExitStatus> {
        self.signal(rustix::process::Signal::TERM)?;
        self.wait_exit().await
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child);
        }
    }
}

/// How long a child asked to stop with SIGTERM has before it is killed.
/// Generous: only a hung shutdown ever waits this long.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Stop a child the tests started: SIGTERM, then wait (bounded by
/// [`STOP_GRACE`], then SIGKILL) and reap it. Not SIGKILL at once: a
/// process that exits through its normal path writes its coverage profile
/// (an instrumented build's counters are written at exit; a killed process
/// writes none, and `scripts/coverage` would miss what it ran). A child
/// that ignores SIGTERM still ends.
pub fn stop_child(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    let asked = pid.is_some_and(|pid| {
        let asked = rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok();
        // A stopped child (a hang test's SIGSTOP) only acts on SIGTERM once
        // continued; without this it would sit out the whole grace.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::CONT);
        asked
    });
    if asked {
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Run `command` (e.g. an agent that should refuse to start) to its
/// end, killing it after [`PATIENCE`] so a process that wrongly keeps
/// running fails the test instead of hanging it.
pub fn run_to_end(command: &mut Command) -> TestResult<Output> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let output = child.wait_with_output()?;
            return Err(format!(
                "still running after {} s (killed); stdout:\n{}\nstderr:\n{}",
                PATIENCE.as_secs(),
                stdout(&output),
                stderr(&output)
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(child.wait_with_output()?)
}

/// A child process whose stdout is read line by line on a thread, so a
/// test can wait (bounded) for the line it expects. Stopped ([`stop_child`])
/// when dropped.
#[derive(Debug)]
pub struct FollowedOutput {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl FollowedOutput {
    /// Spawn `command` with its stdout piped.
    pub fn spawn(command: &mut Command) -> TestResult<Self> {
        use std::io::BufRead;
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines })
    }

    /// The next line for which `wanted` holds (earlier lines are
    /// skipped), waiting at most [`PATIENCE`] in all.
    pub fn line_matching(&self, what: &str, wanted: impl Fn(&str) -> bool) -> TestResult<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if wanted(&line) => return Ok(line),
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("timed out waiting for {what}").into());
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("the output ended before {what}").into());
                }
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Its pid (to signal it, e.g. Ctrl-C's SIGINT).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for FollowedOutput {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Wait until `check` returns true, polling every 20 ms, bounded by
/// [`PATIENCE`]. For conditions that have no event to wait on (files
/// appearing, processes exiting).
pub async fn eventually<F: FnMut() -> bool>(what: &str, mut check: F) -> TestResult {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// stdout of a finished command, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// stderr of a finished command, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A TCP port on 127.0.0.1 that was free a moment ago and that this test
/// process has not handed out before. The kernel may give a port it just
/// gave (its listener here is closed at once), and tests run in parallel
/// threads of one process: two of them must never be told the same port.
pub fn free_port() -> TestResult<u16> {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    unclaimed_port(&mut handed_out, || {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        Ok(listener.local_addr()?.port())
    })
}

/// The first port `next` offers that is not in `handed_out`, which it
/// joins.
fn unclaimed_port(
    handed_out: &mut Vec<u16>,
    mut next: impl FnMut() -> TestResult<u16>,
) -> TestResult<u16> {
    // The ephemeral range has ~28 000 ports; a run uses a few hundred.
    for _ in 0..1000 {
        let port = next()?;
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return Ok(port);
        }
    }
    Err("no unclaimed port after 1000 tries".into())
}

/// A self-signed certificate for `localhost` and 127.0.0.1, made with the
/// `openssl` command as `cert.pem` and `key.pem` in `dir`: (certificate,
/// key). For the TLS listeners the tests start (the agent's, the gateway's,
/// a loopback git server) and the clients told to trust it. An end-entity
/// certificate (`CA:FALSE`), trusted directly, as a user trusts one they
/// made for their own host.
pub fn self_signed_certificate(dir: &Path) -> TestResult<(PathBuf, PathBuf)> {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()?;
    if !made.status.success() {
        return Err(format!("openssl could not make a certificate: {}", stderr(&made)).into());
    }
    Ok((cert, key))
}

/// A reqwest client builder for the tests' HTTP calls (the gateway,
/// `/metrics`), with no proxy. reqwest is built without a TLS provider of
/// its own, and even plain HTTP needs one installed in the process: done
/// here, so a test does not pass only after another installed it.
pub fn reqwest_builder() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy()
}

/// `GET path` on 127.0.0.1:`port` with a bare HTTP/1.1 request; returns
/// the status code and body. Enough to read the fake's test endpoints.
pub fn http_get(port: u16, path: &str) -> TestResult<(u16, String)> {
    http_request(port, "GET", path, None)
}

/// `POST path` with a JSON `body`, like [`http_get`] (the doubles' switch
/// endpoints).
pub fn http_post(port: u16, path: &str, body: &serde_json::Value) -> TestResult<(u16, String)> {
    http_request(port, "POST", path, Some(body))
}

fn http_request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> TestResult<(u16, String)> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let body = body.map(ToString::to_string).unwrap_or_default();
    let content = if body.is_empty() {
        String::new()
    } else {
        format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        )
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{content}\r\n{body}"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or("no HTTP status")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The fake Ollama's counters (`GET /__fake/stats`).
pub fn fake_stats(port: u16) -> TestResult<serde_json::Value> {
    let (_, body) = http_get(port, "/__fake/stats")?;
    Ok(serde_json::from_str(&body)?)
}

impl Sandbox {
    /// Where the fake Ollama started by this sandbox's agent keeps models.
    pub fn ollama_models(&self) -> PathBuf {
        self.root.path().join("ollama-models")
    }

    /// Configure the agent to supervise the fake Ollama on `port` (which
    /// also stands in for the registry), with quick health checks so hangs
    /// are found fast. `extra` is appended to the `[ollama]` table; a key
    /// it sets replaces the default given here (TOML refuses a key twice).
    pub fn configure_fake_ollama(&self, port: u16, extra: &str) -> TestResult {
        let set_by_extra = |key: &str| {
            extra
                .lines()
                .any(|line| line.split('=').next().is_some_and(|k| k.trim() == key))
        };
        let mut text = format!(
            "[ollama]\nbinary = {:?}\nhost = \"127.0.0.1:{port}\"\nregistry = \"http://127.0.0.1:{port}\"\n",
            binary("fake-ollama").display().to_string(),
        );
        for (key, value) in [
            (
                "models_dir",
                format!("{:?}", self.ollama_models().display().to_string()),
            ),
            ("health_interval", "\"200ms\"".to_owned()),
            ("health_timeout", "\"1s\"".to_owned()),
            ("stop_timeout", "\"5s\"".to_owned()),
        ] {
            if !set_by_extra(key) {
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
        text.push_str(extra);
        text.push('\n');
        self.write_config(&text)
    }

    /// Environment for the agent (inherited by the fake it starts).
    pub fn fake_env(&self) -> Vec<(String, String)> {
        vec![(
            "OLLAMA_MODELS".to_owned(),
            self.ollama_models().display().to_string(),
        )]
    }

    /// Start an agent supervising the fake Ollama on a free port (see
    /// [`Sandbox::configure_fake_ollama`] for `extra`), with the fake's
    /// `switches` in the agent's environment, which the fake inherits. The
    /// agent and the fake's port.
    pub async fn start_agent_with_fake_ollama(
        &self,
        switches: &[(&str, &str)],
        extra: &str,
    ) -> TestResult<(AgentProcess, u16)> {
        let port = free_port()?;
        self.configure_fake_ollama(port, extra)?;
        let mut env = self.fake_env();
        env.extend(
            switches
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Ok((self.start_agent_with(&env).await?, port))
    }

    /// Start an agent with extra environment variables (owned strings).
    pub async fn start_agent_with(&self, env: &[(String, String)]) -> TestResult<AgentProcess> {
        let borrowed: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        AgentProcess::start(self, &borrowed).await
    }
}

/// A fake Ollama started directly (not by an agent): an "external" server.
#[derive(Debug)]
pub struct FakeOllama {
    child: Child,
    port: u16,
}

impl FakeOllama {
    /// Start `fake-ollama <mode>` on `port` with `env`, and wait until it
    /// accepts connections.
    pub async fn start(
        mode: &str,
        port: u16,
        models: &Path,
        env: &[(&str, &str)],
    ) -> TestResult<Self> {
        let mut command = Command::new(binary("fake-ollama"));
        command
            .arg(mode)
            .env("OLLAMA_HOST", format!("127.0.0.1:{port}"))
            .env("OLLAMA_MODELS", models)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn()?;
        let fake = Self { child, port };
        eventually("the fake Ollama to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await?;
        Ok(fake)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for FakeOllama {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// A fake OpenAI-compatible server (`fake-openai serve`) on a free port,
/// configured by `FAKE_OPENAI_*` variables; stopped when dropped.
#[derive(Debug)]
pub struct FakeOpenAi {
    child: Child,
    port: u16,
}

impl FakeOpenAi {
    /// Start it with `env` and wait until it accepts connections.
    pub async fn start(env: &[(&str, &str)]) -> TestResult<Self> {
        let port = free_port()?;
        let mut command = Command::new(binary("fake-openai"));
        command
            .arg("serve")
            .env("FAKE_OPENAI_ADDR", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn()?;
        let fake = Self { child, port };
        eventually("the fake OpenAI server to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await?;
        Ok(fake)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The base URL a provider is added with (`.../v1`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Change switches (`POST /__fake/switches`), e.g.
    /// `json!({"rate_limit_next": 1})`.
    pub fn switch(&self, switches: serde_json::Value) -> TestResult {
        let (status, body) = http_post(self.port, "/__fake/switches", &switches)?;
        if status != 200 {
            return Err(format!("switches refused ({status}): {body}").into());
        }
        Ok(())
    }

    /// Its counters and last request (`GET /__fake/stats`).
    pub fn stats(&self) -> TestResult<serde_json::Value> {
        fake_stats(self.port)
    }

    /// Stop it now (a provider going down).
    pub fn stop(&mut self) -> TestResult {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Whether a process with this pid exists.
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                !stat
                    .rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
}

/// A file or folder made read-only for this process until dropped: the
/// immutable flag for root (root ignores file modes; `chattr +i` does the
/// same), else the modes 0444 for a file, 0555 for a folder.
pub struct ReadOnly(PathBuf);

impl ReadOnly {
    /// `None` where root may not set the immutable flag (no
    /// CAP_LINUX_IMMUTABLE, as in a default container, or a file system
    /// without the flag): what needs it cannot be tested there.
    pub fn make(path: &Path) -> Option<Self> {
        if rustix::process::geteuid().is_root() {
            let file = std::fs::File::open(path).ok()?;
            let flags = rustix::fs::ioctl_getflags(&file).ok()?;
            rustix::fs::ioctl_setflags(&file, flags | rustix::fs::IFlags::IMMUTABLE).ok()?;
        } else {
            let mode = if path.is_dir() { 0o555 } else { 0o444 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).ok()?;
        }
        Some(Self(path.to_owned()))
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if let Ok(file) = std::fs::File::open(&self.0)
            && let Ok(flags) = rustix::fs::ioctl_getflags(&file)
        {
            let _ = rustix::fs::ioctl_setflags(&file, flags - rustix::fs::IFlags::IMMUTABLE);
        }
        let mode = if self.0.is_dir() { 0o700 } else { 0o600 };
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(mode));
    }
}

#[cfg(test)]
mod port_tests {
    use super::*;

    #[test]
    fn a_port_the_kernel_offers_again_is_not_handed_out_twice() {
        let mut offers = [40_001, 40_001, 40_002].into_iter();
        let mut handed_out = Vec::new();
        let mut next = || Ok(offers.next().ok_or("no more offers")?);
        assert_eq!(unclaimed_port(&mut handed_out, &mut next).unwrap(), 40_001);
        assert_eq!(unclaimed_port(&mut handed_out, &mut next).unwrap(), 40_002);
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
    }
}
