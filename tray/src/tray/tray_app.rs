//! `omnipanel-tray`: the winit event loop on the main thread (no windows;
//! it is the loop that, on every platform, owns the process), the GTK
//! thread with the icon and menu, and the backend on a tokio runtime.
//! Updates and menu clicks arrive as [`TrayEvent`]s through the
//! `EventLoopProxy`; nothing polls.

use std::{
    collections::HashSet,
    ffi::OsString,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use omnipanel_client::{Target, proto::v1::AlertState};
use tokio::sync::mpsc::UnboundedSender;
use winit::{
    application::ApplicationHandler,
    event::{StartCause, WindowEvent},
    event_loop::{ActiveEventLoop, ControlFlow, EventLoop},
    window::WindowId,
};

use super::{
    gtk_tray::{self, GtkMsg},
    host,
    menu::{self, Action, Entry},
};
use crate::core::{
    backend::{self, Command, Metrics, Options},
    launch,
    state::{AgentState, Update},
    stop_signal,
    views::{self, IconState},
};

/// What reaches the main loop.
#[derive(Debug)]
pub enum TrayEvent {
    /// The backend learned something.
    Update(Update),
    /// A menu item was clicked (its id).
    Menu(String),
    /// SIGTERM or SIGINT (its name): quit like "Quit tray".
    Stop(&'static str),
}

/// How the tray was asked to run.
#[derive(Debug, Clone, Default)]
pub struct TrayOptions {
    /// Do not start the agent when none runs.
    pub no_start_agent: bool,
}

/// How long "Quit OmniPanel" waits for the agent to confirm.
const QUIT_GRACE: Duration = Duration::from_secs(3);

struct App {
    state: AgentState,
    backend: UnboundedSender<Command>,
    gtk: Option<UnboundedSender<GtkMsg>>,
    menu: Vec<Entry>,
    icon: IconState,
    quit_by: Option<Instant>,
    /// Access requests and confirmations already announced: a reconnect
    /// reads them again, and each is announced once.
    announced: HashSet<String>,
    /// The home folder, to write the projects asked for as `~/app`.
    home: String,
}

/// Run the tray until "Quit"; the error says why it could not start.
pub fn run(options: &TrayOptions) -> anyhow::Result<()> {
    NO_START_AGENT.store(options.no_start_agent, Ordering::Relaxed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tray-rpc")
        .enable_all()
        .build()?;
    let event_loop = EventLoop::<TrayEvent>::with_user_event()
        .build()
        .map_err(|err| anyhow::anyhow!("cannot open the display: {err}"))?;
    event_loop.set_control_flow(ControlFlow::Wait);
    let proxy = event_loop.create_proxy();
    let stop_proxy = proxy.clone();
    stop_signal::on_stop_signal(&runtime, move |name| {
        let _ = stop_proxy.send_event(TrayEvent::Stop(name));
    })?;
    let sink_proxy = proxy.clone();
    let backend = backend::spawn(
        runtime.handle(),
        Options {
            target: Target::from_env(),
            launch_agent: !options.no_start_agent,
            metrics: Metrics::WithAlerts,
        },
        Arc::new(move |update| {
            // Fails only once the loop has ended: nothing left to tell.
            let _ = sink_proxy.send_event(TrayEvent::Update(update));
        }),
    );

    let state = AgentState::default();
    let entries = menu::build(&state);
    let icon = views::icon_state(&state);
    let gtk = start_tray(entries.clone(), icon, proxy);

    let mut app = App {
        state,
        backend,
        gtk,
        menu: entries,
        icon,
        quit_by: None,
        announced: HashSet::new(),
        home: std::env::var("HOME").unwrap_or_default(),
    };
    event_loop.run_app(&mut app)?;
    if let Some(gtk) = &app.gtk {
        let _ = gtk.send(GtkMsg::Quit);
    }
    // Let in-flight calls (e.g. Shutdown) finish briefly, not forever.
    runtime.shutdown_timeout(Duration::from_millis(500));
    Ok(())
}

/// Make the tray icon, or explain why there is none and open the panel
/// once instead. Never fails: without a tray the process keeps running
/// (and keeps the agent company) so a later session can still use it.
fn start_tray(
    entries: Vec<Entry>,
    icon: IconState,
    proxy: winit::event_loop::EventLoopProxy<TrayEvent>,
) -> Option<UnboundedSender<GtkMsg>> {
    if !host::appindicator_available() {
        no_tray(&format!(
            "OmniPanel cannot show a tray icon: {} is missing; {}",
            host::APPINDICATOR_LIB,
            host::INSTALL_HINT
        ));
        return None;
    }
    let gtk = match gtk_tray::start(entries, icon, move |id| {
        let _ = proxy.send_event(TrayEvent::Menu(id));
    }) {
        Ok(gtk) => gtk,
        Err(err) => {
            no_tray(&format!("OmniPanel cannot show a tray icon: {err}"));
            return None;
        }
    };
    match host::detect_tray_host() {
        host::TrayHost::None => no_tray(&format!(
            "No system tray found on this desktop, so the OmniPanel icon is not visible: {}",
            host::HOST_HINT
        )),
        found => tracing::info!("tray icon shown ({found:?} host)"),
    }
    Some(gtk)
}

/// Set when the tray was told not to start the agent: the panels it opens
/// are told the same.
static NO_START_AGENT: AtomicBool = AtomicBool::new(false);

fn panel_args() -> Vec<OsString> {
    if NO_START_AGENT.load(Ordering::Relaxed) {
        vec!["--no-start-agent".into()]
    } else {
        Vec::new()
    }
}

fn open_panel(extra: &[&str]) {
    let mut args = panel_args();
    args.extend(extra.iter().map(OsString::from));
    if let Err(err) = launch::open_panel(&args) {
        tracing::warn!("{err}");
        host::notify("OmniPanel", &err);
    }
}

fn no_tray(message: &str) {
    tracing::warn!("{message}");
    if !host::notify("OmniPanel has no tray icon", message) {
        tracing::info!("no desktop notification service either; opening the panel");
    }
    if let Err(err) = launch::open_panel(&panel_args()) {
        tracing::warn!("cannot open the panel: {err}");
    }
}

impl App {
    fn send(&self, command: Command) {
        if self.backend.send(command).is_err() {
            tracing::warn!("the backend has stopped");
        }
    }

    fn refresh(&mut self) {
        let entries = menu::build(&self.state);
        if entries != self.menu {
            // The items that open the Clients tab, in the log as they
            // appear: what the smoke test (which cannot read a GTK menu)
            // checks, and a record of when a question reached the menu.
            for entry in &entries {
                if let Entry::Item {
                    text,
                    action: Action::OpenClients,
                    ..
                } = entry
                    && !self.menu.contains(entry)
                {
                    tracing::info!("menu: {text}");
                }
            }
            self.menu = entries;
            if let Some(gtk) = &self.gtk {
                let _ = gtk.send(GtkMsg::Menu(self.menu.clone()));
            }
        }
        let icon = views::icon_state(&self.state);
        if icon != self.icon {
            tracing::info!("icon: {}", icon.name());
            self.icon = icon;
            if let Some(gtk) = &self.gtk {
                let _ = gtk.send(GtkMsg::Icon(icon));
            }
        }
    }

    fn on_update(&mut self, event_loop: &ActiveEventLoop, update: Update) {
        match &update {
            Update::Notice(notice) if notice.error => {
                tracing::warn!("{}: {}", notice.key, notice.message);
                host::notify("OmniPanel", &notice.message);
            }
            Update::Alert(alert) if alert.state() == AlertState::Active => {
                host::notify("OmniPanel alert", &views::alert_line(alert));
            }
            _ => {}
        }
        let ends_quit = matches!(&update, Update::Disconnected { .. } | Update::Notice(_));
        let waiting_before = self.state.pending_ids();
        self.state.apply(update);
        for (id, (summary, body)) in views::new_questions(&waiting_before, &self.state, &self.home)
        {
            if self.announced.insert(id) {
                tracing::info!("{body}");
                host::notify(&summary, &body);
            }
        }
        if self.quit_by.is_some() && ends_quit {
            event_loop.exit();
            return;
        }
        self.refresh();
    }

    fn on_action(&mut self, event_loop: &ActiveEventLoop, action: Action) {
        match action {
            Action::StartAgent => self.send(Command::StartAgent),
            Action::StartServer => self.send(Command::StartServer),
            Action::StopServer => self.send(Command::StopServer),
            Action::RestartServer => self.send(Command::RestartServer),
            Action::SetDefault(model) => self.send(Command::SetDefault(model)),
            Action::Unload(model) => self.send(Command::Unload(model)),
            Action::CancelPull(model) => self.send(Command::CancelPull(model)),
            Action::OpenProject(path) => {
                if let Err(err) = launch::open_path(&path) {
                    tracing::warn!("{err}");
                    host::notify("OmniPanel", &err);
                }
            }
            Action::OpenPanel => open_panel(&[]),
            Action::OpenClients => open_panel(&["--tab", "clients"]),
            Action::ToggleAutostart => {
                let enabled = self.state.autostart.as_ref().is_some_and(|a| a.enabled);
                self.send(Command::SetAutostart(!enabled));
            }
            Action::InstallUpdate => self.send(Command::InstallUpdate),
            Action::QuitTray => event_loop.exit(),
            Action::QuitAll => {
                if self.state.connected() {
                    self.send(Command::Shutdown);
                    let deadline = Instant::now() + QUIT_GRACE;
                    self.quit_by = Some(deadline);
                    event_loop.set_control_flow(ControlFlow::WaitUntil(deadline));
                } else {
                    event_loop.exit();
                }
            }
        }
        // GTK flips check items on click; put them back as the state says.
        if let Some(gtk) = &self.gtk {
            let _ = gtk.send(GtkMsg::Menu(self.menu.clone()));
        }
    }
}

impl ApplicationHandler<TrayEvent> for App {
    fn resumed(&mut self, _event_loop: &ActiveEventLoop) {}

    fn new_events(&mut self, event_loop: &ActiveEventLoop, cause: StartCause) {
        if let (StartCause::ResumeTimeReached { .. }, Some(_)) = (cause, self.quit_by) {
            tracing::warn!("the agent did not confirm the shutdown in time; quitting anyway");
            event_loop.exit();
        }
    }

    fn window_event(&mut self, _: &ActiveEventLoop, _: WindowId, _: WindowEvent) {}

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: TrayEvent) {
        match event {
            TrayEvent::Update(update) => self.on_update(event_loop, update),
            TrayEvent::Menu(id) => match Action::from_id(&id) {
                Some(action) => self.on_action(event_loop, action),
                None => tracing::debug!("menu id {id:?} is not an action"),
            },
            TrayEvent::Stop(name) => {
                tracing::info!("{name}: quitting");
                event_loop.exit();
            }
        }
    }
}
