//! The agent's lifecycle: load settings (refusing a bad file with exit code
//! 78), become the single instance, open logs and state.db, report crashes
//! of earlier runs, bind the listeners, serve, and shut down gracefully on
//! SIGTERM, SIGINT or the Shutdown RPC, removing the socket on the way out.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
};

use tokio::net::TcpListener;

use crate::{
    context::{AgentContext, Listening},
    events::{EventBus, ServerEvent},
    gateway,
    instance::{self, Claim},
    platform::{self, signals::StopSignals},
    rpc::{self, TcpEndpoint},
    update_probe::ClientVersionProbe,
};
use omnipanel_core::{
    access::Access,
    agent::AgentAdmin,
    atomic_file,
    audit::{Audit, Retention},
    config::{self, Settings, SettingsStore},
    conversations::Conversations,
    crash,
    error::{Error, Result},
    files::Files,
    git::{Git, GitSettings, credentials::Token},
    logs::{self, LogHub, LogSource},
    ollama::{Ollama, fit::VramSource},
    projects::{ProjectBoundaries, ProjectObserver, Projects},
    secrets::{SECRETS_FILE, Secrets},
    store::{Store, now_ms},
    system::SystemMonitor,
    tokens::Tokens,
    updates::{RestartPlan, Updater, handover},
};
use omnipanel_paths::AgentPaths;

/// Exit code for an unusable configuration (sysexits' EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;

/// How the agent was asked to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Also log to stderr.
    pub log_to_stderr: bool,
}

/// Run the agent in the foreground until it is told to stop.
pub fn run(paths: &AgentPaths, options: &RunOptions) -> ExitCode {
    crash::install_hook(paths.crash_dir.clone());
    let settings = match config::load(&paths.config_file) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("omnipanel-agent: invalid configuration: {err}");
            eprintln!(
                "omnipanel-agent: fix the file (or move it away to use the defaults) and start again"
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let strict_dir = paths.socket.parent() == Some(omnipanel_paths::runtime_dir().as_path());
    let lock = match instance::claim(
        &paths.socket,
        &paths.lock_file(),
        &paths.user_lock_file(),
        strict_dir,
    ) {
        Ok(Claim::Acquired(lock)) => lock,
        Ok(Claim::AlreadyRunning { pid, socket }) => {
            // The running agent's socket, which may not be ours: that is
            // where clients of this user should go.
            let pid = pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            let socket = socket.map_or_else(|| "unknown".to_owned(), |s| s.display().to_string());
            println!("omnipanel-agent: already running (pid {pid}, socket {socket})");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("omnipanel-agent: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("omnipanel-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("omnipanel-agent: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(paths, settings, options));
    drop(runtime);
    drop(lock);
    match result {
        // An install or rollback stopped the agent to restart it: this
        // process becomes the new agent (or the old one again).
        Ok(Some(plan)) => handover::perform(plan, paths, &ClientVersionProbe),
        Ok(None) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "the agent stopped with an error");
            eprintln!("omnipanel-agent: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(
    paths: &AgentPaths,
    mut settings: Settings,
    options: &RunOptions,
) -> Result<Option<RestartPlan>> {
    if std::env::var_os(handover::PROBE_ENV).is_some() {
        // The probe of an update runs for seconds next to nothing: it must
        // not start an Ollama server just to stop it again.
        settings.ollama.autostart = false;
    }
    // Recorded now: once an update renames a new binary over this one,
    // /proc/self/exe no longer names the installed path.
    let agent_exe = std::env::current_exe().unwrap_or_else(|_| {
        std::env::args_os()
            .next()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("omnipanel-agent"))
    });
    let start_time_ms = now_ms();
    // The clock retention trusts starts from here (`clock.rs`).
    omnipanel_core::clock::start();
    let log_hub = Arc::new(LogHub::default());
    let agent_log = LogSource::new("agent", paths.log_dir.join("agent.log"));
    log_hub.register(agent_log.clone());
    let logging = Arc::new(logs::init(agent_log, &settings.log, options.log_to_stderr)?);
    tracing::info!(
        version = omnipanel_core::version::current(),
        pid = std::process::id(),
        "starting"
    );

    let mut instance_bytes = [0u8; 8];
    getrandom::fill(&mut instance_bytes)
        .map_err(|err| Error::internal(format!("no randomness from the OS: {err}")))?;
    let bus = Arc::new(EventBus::new(
        u64::from_le_bytes(instance_bytes).max(1),
        settings.events.history as usize,
    ));

    // A kill during a settings or secrets write leaves its temporary
    // beside the file; this run's writes never produce those names.
    let written_files = [paths.config_file.clone(), paths.data_dir.join(SECRETS_FILE)];
    let removed = tokio::task::spawn_blocking(move || {
        written_files
            .iter()
            .map(|path| atomic_file::remove_stale_temporaries(path))
            .sum::<usize>()
    })
    .await?;
    if removed > 0 {
        tracing::info!(
            count = removed,
            "removed temporary files that a settings or secrets write interrupted by a crash or kill had left"
        );
    }

    let state_db = paths.state_db();
    let (store, recovery) = tokio::task::spawn_blocking(move || Store::open(&state_db)).await??;
    if let Some(recovery) = recovery {
        tracing::warn!(
            moved_to = %recovery.moved_to.display(),
            reason = %recovery.reason,
            "state.db was unreadable; it was moved aside and a fresh one created"
        );
        bus.publish(ServerEvent::StateRecovered {
            moved_to: recovery.moved_to.display().to_string(),
            reason: recovery.reason,
        });
    }
    if store.is_read_only() {
        tracing::warn!(
            state_db = %store.path().display(),
            "state.db is read-only: the agent serves reads; every change kept there (projects, \
             tokens, alert thresholds, conversations, the activity log) fails until it is made \
             writable and the agent restarted"
        );
    }
    let previous_run_crashed = report_earlier_crashes(&store, &paths.crash_dir, &bus).await;
    let tokens = Tokens::load(store.clone()).await?;

    // From here on every way out of this function, `?` included, removes
    // the socket (the guard): a start-up failure must not leave a dead
    // socket behind.
    let (unix, socket_guard) = bind_socket(&paths.socket)?;
    let tcp = match settings.server.tcp {
        Some(addr) => Some(bind_tcp(addr, &settings).await?),
        None => None,
    };
    let tcp_address = tcp.as_ref().and_then(|t| t.listener.local_addr().ok());
    let gateway = gateway::bind(&settings.gateway).await?;
    let gateway_settings = settings.clone();
    let gateway_address = gateway.as_ref().and_then(gateway::Bound::local_addr);
    let limits = rpc::ServerLimits::from(&settings.server);

    let system = SystemMonitor::start(&settings.system, store.clone(), bus.clone()).await?;
    let vram_source = system.clone();
    let ollama = Ollama::start(
        &settings.ollama,
        store.clone(),
        Secrets::at(paths.data_dir.join(SECRETS_FILE)),
        bus.clone(),
        &log_hub,
        &paths.log_dir,
        (&settings.log).into(),
        VramSource::new(move || vram_source.gpu_memory_blocking()),
    )
    .await?;
    let git = Git::start(
        bus.clone(),
        GitSettings {
            token: settings.git.token.clone().map(|secret| Token {
                secret,
                hosts: settings
                    .git
                    .token_hosts
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect(),
            }),
            timeout: settings.git.timeout,
        },
        Arc::new(platform::memory::release_free_memory),
    )
    .await?;
    let projects = Projects::start(
        store.clone(),
        bus.clone(),
        settings.files.clone(),
        ProjectBoundaries::new(
            &paths.agent_dirs(),
            &omnipanel_paths::home_dir(),
            &omnipanel_paths::data_home(),
            &settings.access.project_roots,
        ),
        vec![git.clone() as Arc<dyn ProjectObserver>],
    )
    .await?;
    ollama.attach_projects(projects.clone());
    ollama.probe_while_watched(bus.listeners("models"));
    let files = Files::start(projects.clone()).await?;
    let conversations = Conversations::new(store.clone(), bus.clone(), projects.clone());
    system.follow_ollama(ollama.server_watch());
    let settings_store = Arc::new(SettingsStore::new(paths.config_file.clone(), settings));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let updates = Updater::start(
        settings_store.clone(),
        store.clone(),
        bus.clone(),
        ollama.clone(),
        &paths.data_dir,
        agent_exe.clone(),
        &shutdown,
    )
    .await?;
    let access = Access::start(
        &paths.owner_credential(),
        tokens.clone(),
        settings_store.clone(),
        bus.clone(),
    )
    .await?;
    let audit = Audit::start(
        store.clone(),
        Retention::from(&settings_store.current().audit),
    )
    .await?;
    let agent = AgentAdmin::start(
        settings_store.clone(),
        tokens,
        log_hub,
        paths.crash_dir.clone(),
        agent_exe,
        bus.clone(),
        // The managed Ollama server restarts with its new settings when
        // nothing runs on it.
        vec![ollama.clone()],
    )
    .await?;
    let ctx = Arc::new(AgentContext::new(
        paths.clone(),
        start_time_ms,
        agent.clone(),
        access.clone(),
        audit.clone(),
        store,
        bus.clone(),
        ollama.clone(),
        projects.clone(),
        conversations,
        files.clone(),
        git.clone(),
        system.clone(),
        updates.clone(),
        Listening {
            tcp: tcp_address,
            gateway: gateway_address,
            warnings: gateway_address
                .and_then(|address| {
                    gateway::ollama_exposure(gateway_settings.ollama.host.as_deref(), Some(address))
                })
                .into_iter()
                .collect(),
        },
        previous_run_crashed,
        shutdown,
    ));
    spawn_settings_follower(&settings_store, logging.clone(), &ctx);

    spawn_signal_handler(&ctx)?;
    spawn_socket_watch(&ctx, &paths.socket);
    platform::memory::spawn_trimmer(ctx.shutdown_token());

    bus.publish(ServerEvent::AgentStarted {
        version: omnipanel_core::version::current().to_owned(),
        pid: std::process::id(),
    });
    // Start-up ends once the servers are built: what it freed, and the
    // code only it ran, go back to the OS.
    let ready = || {
        tracing::info!(
            socket = %paths.socket.display(),
            tcp = ?tcp_address,
            "serving"
        );
        platform::cold_code::hand_back();
        platform::memory::release_start_up_memory();
    };
    let served = match gateway {
        Some(bound) => {
            let (rpc, gateway) = tokio::join!(
                rpc::serve(ctx.clone(), unix, tcp, limits, ready),
                gateway::serve(ctx.clone(), bound, gateway_settings)
            );
            if let Err(err) = gateway {
                tracing::error!(error = %err, "the gateway stopped with an error");
            }
            rpc
        }
        None => rpc::serve(ctx.clone(), unix, tcp, limits, ready).await,
    };
    drop(socket_guard);
    let socket_removed = ctx.shutdown_reason() == Some(SOCKET_REMOVED);
    // In the reverse of the order they started: nothing stops while a
    // facade built on it still runs.
    access.shutdown().await;
    // After the server: the calls that ended while it drained are in the
    // queue, and are written now.
    audit.shutdown().await;
    agent.shutdown().await;
    updates.shutdown().await;
    files.shutdown().await;
    projects.shutdown().await;
    git.shutdown().await;
    // A server we started goes down with us; one we adopted stays up.
    ollama.shutdown().await;
    system.shutdown().await;
    tracing::info!(
        reason = ctx.shutdown_reason().unwrap_or("unknown"),
        "stopped"
    );
    let restart = updates.take_restart_plan();
    if restart.is_some() {
        tracing::info!("restarting for an update");
    }
    // Last use of the logger: dropping it flushes the log file.
    drop(logging);
    served?;
    if socket_removed {
        // A failure, so that a service manager starts a fresh agent.
        return Err(Error::failed_precondition(format!(
            "stopped because the socket {} was removed; start the agent again",
            paths.socket.display()
        )));
    }
    Ok(restart)
}

fn bind_socket(socket: &Path) -> Result<(platform::socket::Listener, SocketGuard<'_>)> {
    platform::socket::clear_stale_socket(socket)?;
    let listener = platform::socket::listen(socket)?;
    let guard = SocketGuard(socket);
    platform::socket::protect_socket(socket)?;
    Ok((listener, guard))
}

async fn bind_tcp(addr: SocketAddr, settings: &Settings) -> Result<TcpEndpoint> {
    let listener = TcpListener::bind(addr).await.map_err(|err| {
        Error::failed_precondition(format!(
            "cannot listen on {addr} (server.tcp in config.toml): {err}"
        ))
    })?;
    let tls = match (&settings.server.tls_cert, &settings.server.tls_key) {
        (Some(cert), Some(key)) => Some((PathBuf::from(cert), PathBuf::from(key))),
        _ => None,
    };
    Ok(TcpEndpoint { listener, tls })
}

/// Removes the socket we bound when dropped: after serving, and on any
/// early return between binding and serving.
struct SocketGuard<'a>(&'a Path);

impl Drop for SocketGuard<'_> {
    fn drop(&mut self) {
        let socket = self.0;
        match std::fs::remove_file(socket) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                tracing::warn!(socket = %socket.display(), error = %err, "cannot remove the socket")
            }
        }
    }
}

/// Log and publish the agent's crash reports written since the last start;
/// returns whether there were any. The tray's and the panel's reports share
/// the folder (ListCrashReports lists them) but say nothing about the
/// agent's previous run.
async fn report_earlier_crashes(store: &Store, crash_dir: &Path, bus: &EventBus) -> bool {
    const SEEN_KEY: &str = "crash_reports_seen_ms";
    let seen: i64 = match store.meta(SEEN_KEY).await {
        Ok(value) => value.and_then(|v| v.parse().ok()).unwrap_or(0),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read which crash reports were already reported");
            0
        }
    };
    let dir = crash_dir.to_owned();
    let reports = match tokio::task::spawn_blocking(move || crash::list_reports(&dir)).await {
        Ok(Ok(reports)) => reports,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "cannot list crash reports");
            return false;
        }
        Err(err) => {
            tracing::warn!(error = %err, "cannot list crash reports");
            return false;
        }
    };
    let fresh: Vec<_> = reports
        .into_iter()
        .filter(|r| r.time_ms > seen && r.process == crash::AGENT)
        .collect();
    for report in fresh.iter().rev() {
        tracing::warn!(
            report = %report.path.display(),
            message = %report.message,
            "the previous run crashed; a crash report was written"
        );
        bus.publish(ServerEvent::CrashReported {
            path: report.path.display().to_string(),
            message: report.message.clone(),
        });
    }
    // Read-only: they are reported again next time, which is better than a
    // warning that they could not be recorded.
    if let Some(newest) = fresh.first().filter(|_| !store.is_read_only())
        && let Err(err) = store.set_meta(SEEN_KEY, newest.time_ms.to_string()).await
    {
        tracing::warn!(error = %err, "cannot record reported crash reports");
    }
    !fresh.is_empty()
}

/// Apply live-changeable settings (the log filter, alerts) when they
/// change.
fn spawn_settings_follower(
    settings: &SettingsStore,
    logging: Arc<logs::Logging>,
    ctx: &Arc<AgentContext>,
) {
    let mut changes = settings.subscribe();
    let shutdown = ctx.shutdown_token();
    let system = ctx.system.clone();
    tokio::spawn(async move {
        let mut filter = changes.borrow().log.filter.clone();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = changes.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let current = changes.borrow_and_update().clone();
                    if let Err(err) = system.apply_settings(&current.system).await {
                        tracing::warn!(error = %err, "alert settings not applied");
                    }
                    let wanted = current.log.filter.clone();
                    if wanted != filter {
                        match logging.set_filter(&wanted) {
                            Ok(()) => tracing::info!(filter = %wanted, "log filter changed"),
                            Err(err) => tracing::warn!(error = %err, "log filter not changed"),
                        }
                        filter = wanted;
                    }
                }
            }
        }
    });
}

/// The shutdown reason when the socket was removed under the agent.
const SOCKET_REMOVED: &str = "socket removed";

/// Stop when the socket or its folder is removed under us: no client can
/// reach this agent any more, and its lock may be gone with the folder, so
/// a second agent could start beside it. Rather than run on unreachable,
/// the agent says so in its log and exits with a failure, which a service
/// manager (the systemd unit restarts on failure) answers with a fresh
/// start that binds the socket again.
fn spawn_socket_watch(ctx: &Arc<AgentContext>, socket: &Path) {
    let ctx = ctx.clone();
    let socket = socket.to_owned();
    let stopping = ctx.shutdown_token();
    tokio::spawn(async move {
        tokio::select! {
            () = stopping.cancelled() => {}
            removed = platform::socket::removed(&socket) => match removed {
                Ok(()) => {
                    tracing::error!(
                        socket = %socket.display(),
                        "the socket (or its folder) was removed, so no client can reach this agent; stopping: start it again to serve on a fresh socket"
                    );
                    ctx.request_shutdown(SOCKET_REMOVED);
                }
                Err(err) => tracing::warn!(
                    socket = %socket.display(),
                    error = %err,
                    "cannot follow the socket; if it is removed, restart the agent"
                ),
            }
        }
    });
}

fn spawn_signal_handler(ctx: &Arc<AgentContext>) -> Result<()> {
    let mut signals = StopSignals::listen()?;
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let name = signals.next().await;
        ctx.request_shutdown(name);
        // A second signal means "now": the user does not want to wait for
        // streams to drain.
        signals.next().await;
        tracing::warn!("second signal received; exiting immediately");
        std::process::exit(1);
    });
    Ok(())
}
