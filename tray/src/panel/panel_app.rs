//! `omnipanel-panel`: one egui window on winit + glow in its own process.
//! It claims the panel socket (a second start focuses this one and exits),
//! runs the backend with a live metrics stream, and repaints only when an
//! update arrives or egui asks for it: no frame loop while idle. Closing
//! the window ends the process, so its memory goes back.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use omnipanel_client::Target;
use tokio::sync::mpsc::UnboundedSender;
use winit::{
    application::ApplicationHandler,
    dpi::LogicalSize,
    event::{StartCause, WindowEvent},
    event_loop::{ActiveEventLoop, ControlFlow, EventLoop, EventLoopProxy},
    platform::x11::EventLoopBuilderExtX11 as _,
    window::{Icon, Window, WindowId},
};

use super::{
    panel_gl::GlWindow,
    panel_ui::{PanelUi, Tab},
};
use crate::core::{
    backend::{self, Command, Metrics, Options},
    icon, single,
    state::{AgentState, Update},
    stop_signal,
    theme::{self, Scheme},
    views::{self, IconState},
    window_state::{self, WindowState},
};

/// What reaches the panel's loop.
#[derive(Debug)]
pub enum PanelEvent {
    /// The backend learned something.
    Update(Update),
    /// Another `open` asked us to come forward (optionally on a tab).
    Focus(Option<Tab>),
    /// egui wants a repaint after this delay.
    Repaint(Duration),
    /// The system's light/dark preference (first reading or a change).
    Theme(Scheme),
    /// A screen reader asked for the tree, acted, or left (AccessKit).
    AccessKit(egui_winit::accesskit_winit::Event),
    /// SIGTERM or SIGINT (its name): close like Esc.
    Stop(&'static str),
}

impl From<egui_winit::accesskit_winit::Event> for PanelEvent {
    fn from(event: egui_winit::accesskit_winit::Event) -> Self {
        Self::AccessKit(event)
    }
}

/// Whether to offer the accessibility tree: yes, unless `NO_AT_BRIDGE=1`
/// (the variable that turns it off for GTK programs too; the smoke test
/// sets it so no accessibility bus is started on its private D-Bus).
fn accessibility_wanted() -> bool {
    std::env::var("NO_AT_BRIDGE").map_or(true, |v| v.trim() != "1")
}

/// How the panel was asked to open.
#[derive(Debug, Clone, Default)]
pub struct PanelOptions {
    /// The tab to show first.
    pub tab: Option<Tab>,
    /// Show the setup even if it was done.
    pub setup: bool,
    /// Do not start the agent when none runs.
    pub no_start_agent: bool,
}

/// Test only: a file the panel appends `<tab> errors=<n>[: messages]` to
/// whenever the tab shown or the errors on it change (the screenshot test
/// waits on it before each shot and fails on any error shown).
pub const REPORT_ENV: &str = "OMNIPANEL_TEST_REPORT";

/// The notice key of the window state's load and save.
const WINDOW_STATE_KEY: &str = "window-state";

/// The file whose existence says the first-run setup was done.
pub fn setup_marker() -> PathBuf {
    omnipanel_paths::state_dir().join("panel-setup-done")
}

struct Gui {
    // Dropped first: egui's GL objects need the context still alive.
    egui: egui_glow::EguiGlow,
    gl: GlWindow,
}

struct App {
    proxy: EventLoopProxy<PanelEvent>,
    backend: UnboundedSender<Command>,
    state: AgentState,
    ui: PanelUi,
    gui: Option<Gui>,
    repaint_at: Option<Instant>,
    error: Option<anyhow::Error>,
    /// The scheme shown: `OMNIPANEL_THEME`, else the system's.
    scheme: Scheme,
    /// Test only (`OMNIPANEL_TEST_REPORT`): where each change of tab and
    /// errors shown is written, and the last line written.
    report: Option<(PathBuf, String)>,
    /// The window state: what to restore, and what was saved last.
    window: Restore,
}

/// Where the window state stands: restored once, at the first connection,
/// then saved on a change of tab or project and at close (events, not
/// timers).
#[derive(Debug, Default)]
struct Restore {
    /// The project the state was last saved under (the local file), until
    /// asked for.
    from: Option<String>,
    /// Whether restoring is over (done, nothing to restore, or failed):
    /// nothing is saved before, so a start never overwrites what it is
    /// about to read.
    done: bool,
    /// The tab was named on the command line (or the setup shows): keep it.
    keep_tab: bool,
    /// What was saved (or restored) last.
    saved: Option<WindowState>,
}

/// Run the panel until its window closes.
pub fn run(options: &PanelOptions) -> anyhow::Result<()> {
    let first_tab = options.tab;
    let message = match first_tab {
        Some(tab) => format!("focus {}", tab.title()),
        None => "focus".to_owned(),
    };
    let listener = match single::claim(&single::socket_path(), &message)? {
        single::Claim::Signalled => {
            tracing::info!("a panel is already open; asked it to come forward");
            return Ok(());
        }
        single::Claim::First(listener) => listener,
    };

    // X11 (XWayland under Wayland) always: the GL setup (glutin with GLX
    // and EGL on X11) has no Wayland path, and winit's Wayland backend is
    // only compiled in because AccessKit's winit adapter enables it.
    let event_loop = EventLoop::<PanelEvent>::with_user_event()
        .with_x11()
        .build()
        .map_err(|err| anyhow::anyhow!("cannot open the display: {err}"))?;
    event_loop.set_control_flow(ControlFlow::Wait);
    let proxy = event_loop.create_proxy();

    let focus_proxy = proxy.clone();
    single::serve(listener, move |line| {
        let tab = line
            .strip_prefix("focus")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .and_then(Tab::parse);
        let _ = focus_proxy.send_event(PanelEvent::Focus(tab));
    })?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("panel-rpc")
        .enable_all()
        .build()?;
    let stop_proxy = proxy.clone();
    stop_signal::on_stop_signal(&runtime, move |name| {
        let _ = stop_proxy.send_event(PanelEvent::Stop(name));
    })?;
    let sink_proxy = proxy.clone();
    // The save at close is answered after the event loop has ended: its
    // notice also comes here, for `run` to wait on.
    let (saved_tx, saved_rx) = std::sync::mpsc::channel::<()>();
    let saved_tx = std::sync::Mutex::new(saved_tx);
    let backend = backend::spawn(
        runtime.handle(),
        Options {
            target: Target::from_env(),
            launch_agent: !options.no_start_agent,
            metrics: Metrics::Live(Duration::from_secs(1)),
        },
        Arc::new(move |update| {
            if let Update::Notice(notice) = &update
                && notice.key == WINDOW_STATE_KEY
                && let Ok(tx) = saved_tx.lock()
            {
                let _ = tx.send(());
            }
            let _ = sink_proxy.send_event(PanelEvent::Update(update));
        }),
    );

    let show_setup = options.setup || !setup_marker().exists();
    let tab = if show_setup {
        Tab::Setup
    } else {
        first_tab.unwrap_or(Tab::Overview)
    };
    let home = std::env::var("HOME").unwrap_or_default();
    // The override wins and is never watched; otherwise the portal's
    // answer (and each change) arrives as an event.
    let forced = theme::from_env();
    let theme_proxy = proxy.clone();
    let mut theme_monitor = match forced {
        Some(_) => None,
        None => theme::follow(move |scheme| {
            let _ = theme_proxy.send_event(PanelEvent::Theme(scheme));
        }),
    };
    let mut app = App {
        proxy,
        backend,
        state: AgentState::default(),
        ui: PanelUi::new(tab, show_setup, &home),
        gui: None,
        repaint_at: None,
        error: None,
        scheme: forced.unwrap_or(Scheme::Light),
        report: std::env::var_os(REPORT_ENV).map(|p| (PathBuf::from(p), String::new())),
        window: Restore {
            from: window_state::read_last_project(),
            done: false,
            keep_tab: first_tab.is_some() || show_setup,
            saved: None,
        },
    };
    let ran = event_loop.run_app(&mut app);
    if app.save_window_state(true) {
        // Drain answers to earlier saves, then wait (briefly) for this one.
        while saved_rx.try_recv().is_ok() {}
        if saved_rx.recv_timeout(Duration::from_secs(1)).is_err() {
            tracing::warn!("the window state was not saved in time");
        }
    }
    if let Some(monitor) = theme_monitor.as_mut() {
        // Ours, started above; it would otherwise outlive the panel.
        let _ = monitor.kill();
        let _ = monitor.wait();
    }
    ran?;
    // egui's GL objects were freed in `exiting`; now the surface, context
    // and window go, in that order.
    drop(app.gui.take());
    runtime.shutdown_timeout(Duration::from_millis(200));
    // The socket path is ours until we exit; a later panel replaces it
    // anyway if this fails.
    let _ = std::fs::remove_file(single::socket_path());
    app.error.map_or(Ok(()), Err)
}

fn egui_theme(scheme: Scheme) -> egui::Theme {
    match scheme {
        Scheme::Light => egui::Theme::Light,
        Scheme::Dark => egui::Theme::Dark,
    }
}

fn window_icon() -> Option<Icon> {
    let size = 64;
    Icon::from_rgba(icon::rasterize(IconState::Ok, size), size, size).ok()
}

impl App {
    fn redraw(&mut self, event_loop: &ActiveEventLoop) {
        let Some(gui) = self.gui.as_mut() else {
            return;
        };
        let backend = self.backend.clone();
        let state = &self.state;
        let ui = &mut self.ui;
        gui.egui.run(gui.gl.window(), |root| {
            ui.show(root, state, &mut |command| {
                if backend.send(command).is_err() {
                    tracing::warn!("the backend has stopped");
                }
            });
        });
        gui.egui.paint(gui.gl.window());
        if let Err(err) = gui.gl.swap_buffers() {
            tracing::warn!("{err:#}");
        }
        if let Some((path, last)) = self.report.as_mut() {
            let errors = super::panel_ui::errors_shown(&gui.egui.egui_ctx);
            let mut line = format!("{} errors={}", self.ui.tab.title(), errors.len());
            if !errors.is_empty() {
                line.push_str(": ");
                line.push_str(&errors.join(" | "));
            }
            if *last != line {
                use std::io::Write as _;
                let written = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&*path)
                    .and_then(|mut f| writeln!(f, "{line}"));
                if let Err(err) = written {
                    tracing::warn!("cannot write {}: {err}", path.display());
                }
                *last = line;
            }
        }
        if self.ui.close {
            event_loop.exit();
        }
        if self.ui.setup_finished {
            self.ui.setup_finished = false;
            let marker = setup_marker();
            let written = marker
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&marker, b"done\n"));
            if let Err(err) = written {
                tracing::warn!("cannot write {}: {err}", marker.display());
            }
        }
        self.save_window_state(false);
        for command in self.ui.follow_changes(&self.state) {
            let _ = self.backend.send(command);
        }
    }

    /// The window state now (`None` before the window exists).
    fn window_state(&self) -> Option<WindowState> {
        let gui = self.gui.as_ref()?;
        let window = gui.gl.window();
        let size = window.inner_size().to_logical::<f64>(window.scale_factor());
        let tab = match self.ui.tab {
            Tab::Setup => Tab::Overview,
            tab => tab,
        };
        // Clamped to what a screen can be first, so the casts are exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (width, height) = (
            size.width.clamp(0.0, 100_000.0).round() as u32,
            size.height.clamp(0.0, 100_000.0).round() as u32,
        );
        Some(WindowState {
            width,
            height,
            tab: tab.title().to_owned(),
            project: self.ui.current_project(&self.state).map(|p| p.id.clone()),
        })
    }

    /// Save the window state if restoring is over and the tab or project
    /// changed (`closing`: if anything changed, the size included).
    /// Returns whether a save was sent.
    fn save_window_state(&mut self, closing: bool) -> bool {
        if !self.window.done || !self.state.connected() {
            return false;
        }
        let Some(now) = self.window_state() else {
            return false;
        };
        if now.project.is_none() {
            return false;
        }
        let changed = match &self.window.saved {
            None => true,
            Some(saved) if closing => *saved != now,
            Some(saved) => saved.tab != now.tab || saved.project != now.project,
        };
        if !changed {
            return false;
        }
        self.window.saved = Some(now.clone());
        self.backend.send(Command::SaveWindowState(now)).is_ok()
    }

    /// The saved window state arrived: size, tab (unless named on the
    /// command line) and project.
    fn restore(&mut self, saved: Option<WindowState>) {
        if self.window.done {
            return;
        }
        self.window.done = true;
        let Some(saved) = saved else {
            return;
        };
        if saved.has_size()
            && let Some(gui) = &self.gui
        {
            let _ = gui.gl.window().request_inner_size(LogicalSize::new(
                f64::from(saved.width),
                f64::from(saved.height),
            ));
        }
        if !self.window.keep_tab
            && let Some(tab) = Tab::parse(&saved.tab).filter(|t| *t != Tab::Setup)
        {
            self.ui.tab = tab;
        }
        if saved.project.is_some() {
            self.ui.select_project(saved.project.clone());
        }
        self.window.saved = Some(saved);
    }

    fn request_redraw(&self) {
        if let Some(gui) = &self.gui {
            gui.gl.window().request_redraw();
        }
    }

    fn title(&self) -> String {
        if self.state.connected() {
            "OmniPanel".to_owned()
        } else {
            format!("OmniPanel ({})", views::agent_line(&self.state))
        }
    }
}

impl ApplicationHandler<PanelEvent> for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.gui.is_some() {
            return;
        }
        let attributes = Window::default_attributes()
            .with_title("OmniPanel")
            .with_inner_size(LogicalSize::new(760.0, 600.0))
            .with_min_inner_size(LogicalSize::new(480.0, 360.0))
            .with_window_icon(window_icon())
            // AccessKit's adapter must exist before the window first shows.
            .with_visible(false);
        match GlWindow::new(event_loop, attributes) {
            Ok((gl_window, gl)) => {
                let mut egui = egui_glow::EguiGlow::new(event_loop, gl, None, None, true);
                // egui-winit takes the scale factor from the window each
                // frame (and on ScaleFactorChanged): DPI needs nothing here.
                egui.egui_ctx.set_theme(egui_theme(self.scheme));
                let proxy = self.proxy.clone();
                egui.egui_ctx.set_request_repaint_callback(move |info| {
                    let _ = proxy.send_event(PanelEvent::Repaint(info.delay));
                });
                if accessibility_wanted() {
                    // Screen readers get egui's tree (built only once one
                    // asks: `InitialTreeRequested` below).
                    egui.egui_winit.init_accesskit(
                        event_loop,
                        gl_window.window(),
                        self.proxy.clone(),
                    );
                }
                gl_window.window().set_visible(true);
                gl_window.window().focus_window();
                self.gui = Some(Gui {
                    egui,
                    gl: gl_window,
                });
                self.request_redraw();
            }
            Err(err) => {
                self.error = Some(err.context("cannot open the panel window"));
                event_loop.exit();
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        match &event {
            WindowEvent::CloseRequested | WindowEvent::Destroyed => {
                event_loop.exit();
                return;
            }
            WindowEvent::RedrawRequested => {
                self.redraw(event_loop);
                return;
            }
            WindowEvent::Resized(size) => {
                if let Some(gui) = &self.gui {
                    gui.gl.resize(size.width, size.height);
                }
            }
            _ => {}
        }
        if let Some(gui) = self.gui.as_mut() {
            let response = gui.egui.on_window_event(gui.gl.window(), &event);
            if response.repaint {
                gui.gl.window().request_redraw();
            }
        }
    }

    fn user_event(&mut self, event_loop: &ActiveEventLoop, event: PanelEvent) {
        match event {
            PanelEvent::Update(Update::WindowState(saved)) => {
                self.restore(saved);
                self.request_redraw();
            }
            PanelEvent::Update(update) => {
                if let Update::Notice(notice) = &update {
                    self.ui.answered(&notice.key);
                    // A failed read (the project was forgotten) ends
                    // restoring as well.
                    if notice.key == WINDOW_STATE_KEY && notice.error {
                        self.restore(None);
                    }
                }
                if let Update::Connected(_) = &update
                    && !self.window.done
                {
                    match self.window.from.take() {
                        Some(project) => {
                            let _ = self.backend.send(Command::LoadWindowState(project));
                        }
                        None => self.window.done = true,
                    }
                }
                let connected_before = self.state.connected();
                self.state.apply(update);
                if connected_before != self.state.connected()
                    && let Some(gui) = &self.gui
                {
                    gui.gl.window().set_title(&self.title());
                }
                self.request_redraw();
            }
            PanelEvent::Focus(tab) => {
                if let Some(tab) = tab {
                    self.ui.tab = tab;
                }
                if let Some(gui) = &self.gui {
                    let window = gui.gl.window();
                    window.set_minimized(false);
                    window.set_visible(true);
                    window.focus_window();
                    window.request_user_attention(Some(
                        winit::window::UserAttentionType::Informational,
                    ));
                }
                self.request_redraw();
            }
            PanelEvent::AccessKit(event) => {
                use egui_winit::accesskit_winit::WindowEvent as Access;
                if let Some(gui) = self.gui.as_mut() {
                    match event.window_event {
                        Access::InitialTreeRequested => gui.egui.egui_ctx.enable_accesskit(),
                        Access::ActionRequested(request) => {
                            gui.egui.egui_winit.on_accesskit_action_request(request);
                        }
                        Access::AccessibilityDeactivated => {
                            gui.egui.egui_ctx.disable_accesskit();
                        }
                    }
                }
                self.request_redraw();
            }
            PanelEvent::Stop(name) => {
                tracing::info!("{name}: closing");
                event_loop.exit();
            }
            PanelEvent::Theme(scheme) => {
                self.scheme = scheme;
                if let Some(gui) = &self.gui {
                    gui.egui.egui_ctx.set_theme(egui_theme(scheme));
                }
                self.request_redraw();
            }
            PanelEvent::Repaint(delay) => {
                if delay.is_zero() {
                    self.request_redraw();
                } else if let Some(at) = Instant::now().checked_add(delay) {
                    // Animations (spinners) ask for a frame later; keep the
                    // earliest such request.
                    let at = self.repaint_at.map_or(at, |t| t.min(at));
                    self.repaint_at = Some(at);
                    event_loop.set_control_flow(ControlFlow::WaitUntil(at));
                }
            }
        }
    }

    fn new_events(&mut self, event_loop: &ActiveEventLoop, cause: StartCause) {
        if let StartCause::ResumeTimeReached { .. } = cause {
            self.repaint_at = None;
            event_loop.set_control_flow(ControlFlow::Wait);
            self.request_redraw();
        }
    }

    fn exiting(&mut self, _event_loop: &ActiveEventLoop) {
        if let Some(gui) = self.gui.as_mut() {
            gui.egui.destroy();
        }
    }
}
