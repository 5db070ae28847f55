//! The panel driven as a person drives it, against a real agent and the
//! Ollama double: `egui_kittest` finds controls by their accessible label,
//! clicks and types; the panel's real backend (the same code the
//! `omnipanel-panel` program runs) talks to the agent over its socket; and
//! every test checks the effect in the agent, not only on screen.
//!
//! [`LivePanel`] is the shared driver: each frame it folds in what the
//! backend reported, draws, and sends what was clicked. [`LiveHarness::
//! wait_for`] steps frames until a condition holds (bounded by
//! [`PATIENCE`], never a fixed sleep).

use std::{
    sync::mpsc,
    time::{Duration, Instant},
};

use egui_kittest::{Harness, kittest::Queryable};
use omnipanel_client::{Client, Credential, proto::v1 as pb};
use omnipanel_tests::{PATIENCE, TestResult};
use omnipanel_tray::{
    core::{
        backend::{self, Command, Metrics, Options},
        state::{AgentState, Update},
    },
    panel::panel_ui::{PanelUi, Tab},
};
use tokio::sync::mpsc::UnboundedSender;

use crate::ollama::{Setup, setup};

/// The panel's UI state, its mirror of the agent, and the wires to its
/// backend.
pub(crate) struct LivePanel {
    pub(crate) ui: PanelUi,
    pub(crate) state: AgentState,
    commands: UnboundedSender<Command>,
    updates: mpsc::Receiver<Update>,
}

impl LivePanel {
    /// Fold in what the backend reported since the last frame (what the
    /// panel's event loop does with its `PanelEvent::Update`s).
    fn absorb(&mut self) {
        while let Ok(update) = self.updates.try_recv() {
            if let Update::Notice(notice) = &update {
                self.ui.answered(&notice.key);
            }
            self.state.apply(update);
        }
    }

    /// One frame: absorb, draw, send.
    fn frame(&mut self, ui: &mut egui::Ui) {
        self.absorb();
        let Self {
            ui: panel,
            state,
            commands,
            ..
        } = self;
        panel.show(ui, state, &mut |command| {
            // The backend lives as long as the runtime; a send fails only
            // after the test is over.
            let _ = commands.send(command);
        });
        // What the app does after each frame: follow logs, the activity
        // log and the project's file changes only while their tab shows.
        for command in panel.follow_changes(state) {
            let _ = commands.send(command);
        }
    }
}

/// A harness over a [`LivePanel`].
pub(crate) type LiveHarness = Harness<'static, LivePanel>;

/// An agent supervising the Ollama double, and the panel on `tab` connected
/// to it. The runtime runs the panel's backend; keep it (and the setup)
/// alive for the test.
pub(crate) struct Live {
    pub(crate) setup: Setup,
    pub(crate) harness: LiveHarness,
    pub(crate) runtime: tokio::runtime::Runtime,
}

/// Start an agent with the Ollama double and a panel on `tab`, and wait
/// until the panel is connected and sees Ollama running.
pub(crate) fn live(tab: Tab) -> TestResult<Live> {
    live_with(tab, &[])
}

/// [`live`] with `switches` in the Ollama double's environment (e.g. a
/// token delay, so a reply streams long enough to be stopped).
pub(crate) fn live_with(tab: Tab, switches: &[(&str, &str)]) -> TestResult<Live> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let setup = runtime.block_on(setup(switches, ""))?;
    let (sink_tx, updates) = mpsc::channel();
    let commands = backend::spawn(
        runtime.handle(),
        Options {
            target: setup.sandbox.target(),
            launch_agent: false,
            metrics: Metrics::Live(Duration::from_secs(1)),
        },
        std::sync::Arc::new(move |update| {
            let _ = sink_tx.send(update);
        }),
    );
    let home = setup.sandbox.home().display().to_string();
    let panel = LivePanel {
        ui: PanelUi::new(tab, false, &home),
        state: AgentState::default(),
        commands,
        updates,
    };
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1000.0, 1400.0))
        .build_ui_state(|ui, panel: &mut LivePanel| panel.frame(ui), panel);
    wait_for(
        &mut harness,
        "the panel to connect and Ollama to run",
        |h| {
            let state = &h.state().state;
            state.connected()
                && state
                    .server
                    .as_ref()
                    .is_some_and(|s| s.state() == pb::ServerState::Running)
        },
    )?;
    Ok(Live {
        setup,
        harness,
        runtime,
    })
}

/// Step frames until `done` holds; an error naming `what` after
/// [`PATIENCE`].
pub(crate) fn wait_for(
    harness: &mut LiveHarness,
    what: &str,
    done: impl Fn(&LiveHarness) -> bool,
) -> TestResult {
    let deadline = Instant::now() + PATIENCE;
    loop {
        harness.step();
        if done(harness) {
            return Ok(());
        }
        if Instant::now() > deadline {
            let notices: Vec<_> = harness
                .state()
                .state
                .notices
                .iter()
                .map(|n| format!("{}: {}", n.key, n.message))
                .collect();
            return Err(format!(
                "timed out waiting for {what}; the panel's last notices: {notices:?}"
            )
            .into());
        }
        // Let the backend's tasks run; the next frame absorbs what they
        // reported.
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a node labelled exactly `label` shows.
pub(crate) fn shows(harness: &LiveHarness, label: &str) -> bool {
    harness.query_by_label(label).is_some()
}

/// Click the control labelled `label` and let the click take effect (one
/// frame handles the press, the next draws its result). Through
/// accesskit, by the widget's id, as a screen reader clicks: a pointer
/// click goes to where the widget was in the last frame, and on a loaded
/// machine an update (the models gone, a notice) can move it before the
/// press is handled, so the press lands on nothing.
pub(crate) fn click(harness: &mut LiveHarness, label: &str) {
    harness.get_by_label(label).click_accesskit();
    harness.run_steps(2);
}

/// Focus the field labelled `label` and type `text` into it.
pub(crate) fn type_into(harness: &mut LiveHarness, label: &str, text: &str) {
    let field = harness.get_by_label(label);
    field.focus();
    field.type_text(text);
    harness.run_steps(2);
}

#[test]
fn pulling_a_model_shows_progress_and_the_model_appears() -> TestResult {
    let Live {
        setup,
        mut harness,
        runtime,
    } = live(Tab::Models)?;
    let name = "llama3.2:1b";
    type_into(&mut harness, "Pull a model:", name);
    click(&mut harness, "Pull");
    wait_for(&mut harness, "the model in the table", |h| {
        h.state().state.models.iter().any(|m| m.name == name) && shows(h, name)
    })?;
    // The progress line stayed (finished) under the field.
    assert!(
        !harness.state().state.pulls.is_empty(),
        "no pull progress was shown"
    );
    // The effect is in the agent, not only on screen.
    let listed = runtime.block_on(async {
        let client = setup.agent.client().await?;
        let models = client
            .models()
            .list_models(pb::ListModelsRequest::default())
            .await?
            .into_inner()
            .models;
        TestResult::Ok(models)
    })?;
    assert!(
        listed.iter().any(|m| m.name == name),
        "the agent does not list {name}: {listed:?}"
    );
    Ok(())
}

#[test]
fn a_pending_client_is_approved_in_the_panel_and_admitted() -> TestResult {
    let Live {
        setup,
        mut harness,
        runtime,
    } = live(Tab::Clients)?;
    // A client with no credential asks for read access and waits.
    let target = setup.sandbox.target();
    let asking = runtime.spawn(async move {
        let client = Client::connect_as(target, Credential::Nothing).await?;
        let mut updates = client
            .agent()
            .request_access(pb::RequestAccessRequest {
                client_name: "Notebook".into(),
                scopes: vec![pb::Scope::Read.into()],
                reason: "read my projects".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        while let Some(update) = updates.message().await? {
            if !update.token.is_empty() {
                return TestResult::Ok(update.token);
            }
        }
        Err("the request ended without a token".into())
    });
    wait_for(&mut harness, "the request's card", |h| {
        shows(h, "Notebook (self-declared)")
    })?;
    click(&mut harness, "Allow for 1 day");
    let token = runtime
        .block_on(async { TestResult::Ok(tokio::time::timeout(PATIENCE, asking).await??) })??;
    assert!(!token.is_empty());
    // The agent lists it as admitted.
    wait_for(&mut harness, "the client in the admitted list", |h| {
        h.state().state.clients.iter().any(|c| c.name == "Notebook")
    })?;
    let clients = runtime.block_on(async {
        let client = setup.agent.client().await?;
        TestResult::Ok(
            client
                .agent()
                .list_clients(pb::ListClientsRequest::default())
                .await?
                .into_inner()
                .clients,
        )
    })?;
    assert!(
        clients.iter().any(|c| c.name == "Notebook"),
        "the agent does not list the client: {clients:?}"
    );
    Ok(())
}
