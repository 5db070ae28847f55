//! The tray menu as plain data: [`build`] turns the agent state into a
//! tree of [`Entry`]s, each clickable one carrying an [`Action`]. The GTK
//! side only turns entries into muda items; the action travels back as the
//! item id ([`Action::id`] / [`Action::from_id`]).

use crate::core::{
    state::AgentState,
    views::{self, server_controls},
};

/// What clicking a menu item does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the agent (when it is not running).
    StartAgent,
    /// Start Ollama.
    StartServer,
    /// Stop Ollama.
    StopServer,
    /// Restart Ollama.
    RestartServer,
    /// Make a model the default.
    SetDefault(String),
    /// Unload a loaded model.
    Unload(String),
    /// Cancel a pull.
    CancelPull(String),
    /// Open a project folder (file manager or `OMNIPANEL_EDITOR`).
    OpenProject(String),
    /// Open the panel.
    OpenPanel,
    /// Open the panel on the Clients tab (access requests, confirmations).
    OpenClients,
    /// Toggle start at login.
    ToggleAutostart,
    /// Download (if needed) and install the release the agent found.
    InstallUpdate,
    /// Quit the tray only.
    QuitTray,
    /// Quit the tray and stop the agent.
    QuitAll,
}

impl Action {
    /// The stable id of the menu item carrying this action.
    pub fn id(&self) -> String {
        match self {
            Self::StartAgent => "start-agent".to_owned(),
            Self::StartServer => "start-server".to_owned(),
            Self::StopServer => "stop-server".to_owned(),
            Self::RestartServer => "restart-server".to_owned(),
            Self::SetDefault(m) => format!("default:{m}"),
            Self::Unload(m) => format!("unload:{m}"),
            Self::CancelPull(m) => format!("cancel-pull:{m}"),
            Self::OpenProject(p) => format!("open-project:{p}"),
            Self::OpenPanel => "open-panel".to_owned(),
            Self::OpenClients => "open-clients".to_owned(),
            Self::ToggleAutostart => "autostart".to_owned(),
            Self::InstallUpdate => "install-update".to_owned(),
            Self::QuitTray => "quit-tray".to_owned(),
            Self::QuitAll => "quit-all".to_owned(),
        }
    }

    /// The action behind a menu item id; `None` for ids we did not make.
    pub fn from_id(id: &str) -> Option<Self> {
        if let Some((kind, arg)) = id.split_once(':') {
            let arg = arg.to_owned();
            return match kind {
                "default" => Some(Self::SetDefault(arg)),
                "unload" => Some(Self::Unload(arg)),
                "cancel-pull" => Some(Self::CancelPull(arg)),
                "open-project" => Some(Self::OpenProject(arg)),
                _ => None,
            };
        }
        Some(match id {
            "start-agent" => Self::StartAgent,
            "start-server" => Self::StartServer,
            "stop-server" => Self::StopServer,
            "restart-server" => Self::RestartServer,
            "open-panel" => Self::OpenPanel,
            "open-clients" => Self::OpenClients,
            "autostart" => Self::ToggleAutostart,
            "install-update" => Self::InstallUpdate,
            "quit-tray" => Self::QuitTray,
            "quit-all" => Self::QuitAll,
            _ => return None,
        })
    }
}

/// One menu entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    /// A line of text that does nothing (shown greyed out).
    Label(String),
    /// A clickable item.
    Item {
        /// Its text.
        text: String,
        /// What it does.
        action: Action,
        /// Whether it can be clicked now.
        enabled: bool,
    },
    /// A checkbox (also used for the radio group of models: muda has no
    /// radio items, a checked box is how GTK menus show the choice).
    Check {
        /// Its text.
        text: String,
        /// What clicking does.
        action: Action,
        /// Whether it is ticked.
        checked: bool,
    },
    /// A submenu.
    Submenu {
        /// Its text.
        text: String,
        /// Its entries.
        entries: Vec<Entry>,
    },
    /// A line between groups.
    Separator,
}

impl Entry {
    fn item(text: impl Into<String>, action: Action) -> Self {
        Self::Item {
            text: text.into(),
            action,
            enabled: true,
        }
    }
}

/// How many recent projects the menu lists.
pub const MENU_PROJECTS: usize = 8;
/// How many active alerts the menu lists.
pub const MENU_ALERTS: usize = 5;

/// The whole tray menu for `state`.
pub fn build(state: &AgentState) -> Vec<Entry> {
    let mut menu = vec![Entry::Label(views::agent_line(state))];
    if !state.connected() {
        menu.push(Entry::item("Start agent", Action::StartAgent));
        menu.push(Entry::item("Open panel", Action::OpenPanel));
        menu.push(Entry::Separator);
        menu.push(Entry::item("Quit tray", Action::QuitTray));
        return menu;
    }
    menu.push(Entry::Label(views::server_line(state)));
    if let Some(snapshot) = &state.metrics {
        menu.push(Entry::Label(views::metrics_line(snapshot)));
    }
    // The first item that can be clicked: the main thing the tray is for
    // (and what keyboard navigation lands on first).
    menu.push(Entry::item("Open panel", Action::OpenPanel));
    // What waits for the user's answer comes right after: a client stuck
    // until the user looks.
    let (requests, confirmations) = views::waiting(state);
    if requests > 0 {
        menu.push(Entry::item(
            format!("Access requests ({requests})…"),
            Action::OpenClients,
        ));
    }
    if confirmations > 0 {
        menu.push(Entry::item(
            format!("Confirmations ({confirmations})…"),
            Action::OpenClients,
        ));
    }
    menu.push(Entry::Separator);

    // Ollama controls.
    let (start, stop, restart) = server_controls(state.server.as_ref().map(|s| s.state()));
    for (text, action, enabled) in [
        ("Start Ollama", Action::StartServer, start),
        ("Stop Ollama", Action::StopServer, stop),
        ("Restart Ollama", Action::RestartServer, restart),
    ] {
        menu.push(Entry::Item {
            text: text.to_owned(),
            action,
            enabled,
        });
    }

    // Models: the default as a radio group, loaded ones with Unload.
    let mut models = Vec::new();
    let default = state.default_model();
    let mut names: Vec<&str> = state.models.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    for name in &names {
        models.push(Entry::Check {
            text: (*name).to_owned(),
            action: Action::SetDefault((*name).to_owned()),
            checked: Some(*name) == default,
        });
    }
    if names.is_empty() {
        models.push(Entry::Label("No models installed".to_owned()));
    }
    if !state.running.is_empty() {
        models.push(Entry::Separator);
        models.push(Entry::Label("Loaded".to_owned()));
        for running in &state.running {
            models.push(Entry::item(
                format!("Unload {}", running.name),
                Action::Unload(running.name.clone()),
            ));
        }
    }
    menu.push(Entry::Submenu {
        text: match default {
            Some(model) => format!("Models (default: {model})"),
            None => "Models".to_owned(),
        },
        entries: models,
    });

    // The other model servers and their health, kept current by their
    // events. The submenu's title never changes, so a state change updates
    // a label in place rather than rebuilding an open menu.
    let providers: Vec<Entry> = state
        .providers
        .iter()
        .filter(|p| !p.local)
        .map(|p| Entry::Label(views::provider_line(p)))
        .collect();
    if !providers.is_empty() {
        menu.push(Entry::Submenu {
            text: "Providers".to_owned(),
            entries: providers,
        });
    }

    // Pulls in flight: the line is a label (labels update in place; GTK
    // does not repaint a changed submenu title), Cancel an item below it.
    let mut pulls = Vec::new();
    for pull in state.running_pulls() {
        pulls.push(Entry::Label(views::pull_line(pull)));
        pulls.push(Entry::item(
            format!("Cancel pull of {}", pull.model),
            Action::CancelPull(pull.model.clone()),
        ));
    }
    if !pulls.is_empty() {
        menu.push(Entry::Separator);
        menu.extend(pulls);
    }

    // Recent projects.
    let projects = views::project_rows(&state.projects);
    if !projects.is_empty() {
        let entries = projects
            .into_iter()
            .take(MENU_PROJECTS)
            .map(|p| {
                let text = if p.git.is_empty() {
                    p.name
                } else {
                    format!("{} ({})", p.name, p.git)
                };
                Entry::Item {
                    text,
                    action: Action::OpenProject(p.path),
                    enabled: p.exists,
                }
            })
            .collect();
        menu.push(Entry::Submenu {
            text: "Recent projects".to_owned(),
            entries,
        });
    }

    // Active alerts.
    if !state.active_alerts.is_empty() {
        menu.push(Entry::Separator);
        menu.push(Entry::Label(format!(
            "⚠ {} alert(s)",
            state.active_alerts.len()
        )));
        for alert in state.active_alerts.iter().take(MENU_ALERTS) {
            menu.push(Entry::Label(views::alert_line(alert)));
        }
    }

    if let Some(update) = &state.update_available {
        menu.push(Entry::Separator);
        match &update.package_update {
            // The agent refuses to replace a package's files: say what does.
            Some(command) => menu.push(Entry::Label(format!(
                "Update {} with: {command}",
                update.version
            ))),
            None => menu.push(Entry::item(
                format!("Install update {}", update.version),
                Action::InstallUpdate,
            )),
        }
    }

    if let Some(autostart) = &state.autostart {
        menu.push(Entry::Separator);
        menu.push(Entry::Check {
            text: "Start at login".to_owned(),
            action: Action::ToggleAutostart,
            checked: autostart.enabled,
        });
    }
    menu.push(Entry::Separator);
    menu.push(Entry::item("Quit tray", Action::QuitTray));
    menu.push(Entry::item("Quit OmniPanel", Action::QuitAll));
    menu
}

/// The entries' ids and kinds in order: two menus with the same shape can
/// be updated in place (texts, checks) instead of rebuilt, which keeps an
/// open menu open. A submenu's title is part of its shape: muda changes it
/// on the GTK item, but the appindicator menu does not show the change.
pub fn shape(entries: &[Entry]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in entries {
        match entry {
            Entry::Label(_) => out.push("label".to_owned()),
            Entry::Separator => out.push("sep".to_owned()),
            Entry::Item { action, .. } => out.push(format!("item {}", action.id())),
            Entry::Check { action, .. } => out.push(format!("check {}", action.id())),
            Entry::Submenu { text, entries } => {
                out.push(format!("submenu {text} {{"));
                out.extend(shape(entries));
                out.push("}".to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use omnipanel_client::proto::v1::{
        Alert, AlertState, GetAutostartResponse, GetInfoResponse, Model, Provider, ProviderState,
        PullProgress, PullState, RunningModel, ServerState, ServerStatus,
    };

    use super::*;
    use crate::core::state::{AvailableUpdate, Update};

    fn texts(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match e {
                Entry::Label(t) | Entry::Item { text: t, .. } | Entry::Check { text: t, .. } => {
                    t.clone()
                }
                Entry::Submenu { text, .. } => format!("{text} >"),
                Entry::Separator => "--".to_owned(),
            })
            .collect()
    }

    fn find<'a>(entries: &'a [Entry], prefix: &str) -> Option<&'a Entry> {
        entries.iter().find(|e| match e {
            Entry::Item { text, .. }
            | Entry::Check { text, .. }
            | Entry::Submenu { text, .. }
            | Entry::Label(text) => text.starts_with(prefix),
            Entry::Separator => false,
        })
    }

    fn connected() -> AgentState {
        let mut state = AgentState::default();
        state.apply(Update::Connected(Box::new(GetInfoResponse {
            version: "1.2.3".into(),
            ..Default::default()
        })));
        state.apply(Update::Server(ServerStatus {
            state: ServerState::Running as i32,
            version: "0.5.1".into(),
            default_model: "qwen".into(),
            ..Default::default()
        }));
        state.apply(Update::Models(vec![
            Model {
                name: "qwen".into(),
                ..Default::default()
            },
            Model {
                name: "llama".into(),
                ..Default::default()
            },
        ]));
        state
    }

    #[test]
    fn action_ids_round_trip() {
        for action in [
            Action::StartAgent,
            Action::StartServer,
            Action::StopServer,
            Action::RestartServer,
            Action::SetDefault("llama3.2:1b".into()),
            Action::Unload("a:b".into()),
            Action::CancelPull("m".into()),
            Action::OpenProject("/home/u/my project".into()),
            Action::OpenPanel,
            Action::OpenClients,
            Action::ToggleAutostart,
            Action::InstallUpdate,
            Action::QuitTray,
            Action::QuitAll,
        ] {
            assert_eq!(Action::from_id(&action.id()), Some(action));
        }
        assert_eq!(Action::from_id("bogus"), None);
        assert_eq!(Action::from_id("bogus:x"), None);
    }

    #[test]
    fn providers_show_their_health_and_follow_its_events() {
        let mut state = connected();
        assert!(
            find(&build(&state), "Providers").is_none(),
            "only local: no submenu"
        );
        state.apply(Update::Providers(vec![
            Provider {
                name: "local".into(),
                local: true,
                ..Default::default()
            },
            Provider {
                name: "lmstudio".into(),
                state: ProviderState::Up as i32,
                ..Default::default()
            },
            Provider {
                name: "gpu-box".into(),
                state: ProviderState::Unknown as i32,
                ..Default::default()
            },
        ]));
        let before = build(&state);
        let Some(Entry::Submenu { entries, .. }) = find(&before, "Providers") else {
            panic!("no Providers submenu: {:?}", texts(&before));
        };
        assert_eq!(texts(entries), ["lmstudio — up", "gpu-box — unknown"]);
        state.apply(Update::ProviderState(Provider {
            name: "gpu-box".into(),
            state: ProviderState::Down as i32,
            last_error: "connection refused".into(),
            ..Default::default()
        }));
        let after = build(&state);
        let Some(Entry::Submenu { entries, .. }) = find(&after, "Providers") else {
            panic!("no Providers submenu");
        };
        assert_eq!(
            texts(entries),
            ["lmstudio — up", "gpu-box — down: connection refused"]
        );
        assert_eq!(shape(&before), shape(&after), "updated in place");
    }

    #[test]
    fn disconnected_menu_offers_start_agent() {
        let menu = build(&AgentState::default());
        assert_eq!(
            texts(&menu),
            [
                "OmniPanel: connecting…",
                "Start agent",
                "Open panel",
                "--",
                "Quit tray"
            ]
        );
    }

    #[test]
    fn connected_menu_has_header_controls_and_default_radio() {
        let state = connected();
        let menu = build(&state);
        let texts = texts(&menu);
        assert_eq!(texts[0], "OmniPanel 1.2.3");
        assert_eq!(texts[1], "Ollama 0.5.1: running · default qwen");
        assert_eq!(texts[2], "Open panel");
        assert!(matches!(
            find(&menu, "Start Ollama"),
            Some(Entry::Item { enabled: false, .. })
        ));
        assert!(matches!(
            find(&menu, "Stop Ollama"),
            Some(Entry::Item { enabled: true, .. })
        ));
        let Some(Entry::Submenu { text, entries }) = find(&menu, "Models") else {
            panic!("no models submenu in {texts:?}");
        };
        assert_eq!(text, "Models (default: qwen)");
        assert_eq!(
            entries,
            &vec![
                Entry::Check {
                    text: "llama".into(),
                    action: Action::SetDefault("llama".into()),
                    checked: false
                },
                Entry::Check {
                    text: "qwen".into(),
                    action: Action::SetDefault("qwen".into()),
                    checked: true
                },
            ]
        );
        assert!(texts.contains(&"Quit OmniPanel".to_owned()));
        assert!(
            texts.windows(2).all(|w| w != ["--", "--"]),
            "doubled separator in {texts:?}"
        );
        // Autostart stays hidden until the agent told us.
        assert!(find(&menu, "Start at login").is_none());
        assert!(!texts.iter().any(|t| t.starts_with("Install update")));
    }

    #[test]
    fn an_available_update_offers_to_install_it() {
        let mut state = connected();
        state.apply(Update::UpdateAvailable(Some(AvailableUpdate {
            version: "1.3.0".into(),
            package_update: None,
        })));
        let menu = build(&state);
        assert!(matches!(
            find(&menu, "Install update 1.3.0"),
            Some(Entry::Item {
                action: Action::InstallUpdate,
                ..
            })
        ));
        state.apply(Update::UpdateAvailable(None));
        assert!(find(&build(&state), "Install update 1.3.0").is_none());
    }

    #[test]
    fn an_update_of_a_package_install_names_the_package_managers_command() {
        let mut state = connected();
        state.apply(Update::UpdateAvailable(Some(AvailableUpdate {
            version: "1.3.0".into(),
            package_update: Some("sudo apt update && sudo apt upgrade omnipanel".into()),
        })));
        let menu = build(&state);
        assert!(find(&menu, "Install update 1.3.0").is_none());
        assert!(matches!(
            find(
                &menu,
                "Update 1.3.0 with: sudo apt update && sudo apt upgrade omnipanel"
            ),
            Some(Entry::Label(_))
        ));
    }

    #[test]
    fn loaded_models_pulls_alerts_and_autostart_appear() {
        let mut state = connected();
        state.apply(Update::Running(vec![RunningModel {
            name: "qwen".into(),
            ..Default::default()
        }]));
        state.apply(Update::Pull(PullProgress {
            model: "big".into(),
            state: PullState::Running as i32,
            completed_bytes: 25,
            total_bytes: 100,
            ..Default::default()
        }));
        state.apply(Update::Alert(Alert {
            id: 1,
            metric: "memory_percent".into(),
            threshold_value: 90.0,
            peak_value: 95.0,
            state: AlertState::Active as i32,
            ..Default::default()
        }));
        state.apply(Update::Autostart(Some(GetAutostartResponse {
            enabled: true,
            location: String::new(),
            program: String::new(),
        })));
        let menu = build(&state);
        let Some(Entry::Submenu { entries, .. }) = find(&menu, "Models") else {
            panic!("no models submenu");
        };
        assert!(entries.contains(&Entry::Item {
            text: "Unload qwen".into(),
            action: Action::Unload("qwen".into()),
            enabled: true
        }));
        assert!(find(&menu, "big: 25%").is_some());
        assert!(find(&menu, "⚠ 1 alert(s)").is_some());
        assert!(find(&menu, "memory_percent above 90").is_some());
        assert!(matches!(
            find(&menu, "Start at login"),
            Some(Entry::Check { checked: true, .. })
        ));
    }

    #[test]
    fn progress_keeps_the_shape_but_a_new_model_changes_it() {
        let mut state = connected();
        let mut pull = PullProgress {
            model: "big".into(),
            state: PullState::Running as i32,
            completed_bytes: 1,
            total_bytes: 100,
            ..Default::default()
        };
        state.apply(Update::Pull(pull.clone()));
        let before = build(&state);
        pull.completed_bytes = 50;
        state.apply(Update::Pull(pull));
        let after = build(&state);
        assert_ne!(before, after);
        assert_eq!(shape(&before), shape(&after));
        let mut models = state.models.clone();
        models.push(Model {
            name: "new".into(),
            ..Default::default()
        });
        state.apply(Update::Models(models));
        assert_ne!(shape(&after), shape(&build(&state)));
    }

    #[test]
    fn waiting_questions_open_the_clients_tab_after_open_panel() {
        use omnipanel_client::proto::v1::{
            AccessRequest, AccessRequestState, Confirmation, ConfirmationState,
        };
        let mut state = connected();
        let quiet = build(&state);
        assert!(find(&quiet, "Access requests").is_none());
        assert!(find(&quiet, "Confirmations").is_none());
        for id in ["r1", "r2"] {
            state.apply(Update::AccessRequest(Box::new(AccessRequest {
                id: id.into(),
                state: AccessRequestState::Pending as i32,
                ..Default::default()
            })));
        }
        state.apply(Update::Confirmation(Box::new(Confirmation {
            id: "c1".into(),
            state: ConfirmationState::Pending as i32,
            ..Default::default()
        })));
        let menu = build(&state);
        let texts = texts(&menu);
        // "Open panel" stays the first clickable item (keyboard users and
        // the smoke test land on it); the questions follow it.
        assert_eq!(texts[2], "Open panel");
        assert_eq!(texts[3], "Access requests (2)…");
        assert_eq!(texts[4], "Confirmations (1)…");
        for prefix in ["Access requests", "Confirmations"] {
            assert!(matches!(
                find(&menu, prefix),
                Some(Entry::Item {
                    action: Action::OpenClients,
                    enabled: true,
                    ..
                })
            ));
        }
        // An answered request leaves the menu.
        state.apply(Update::AccessRequest(Box::new(AccessRequest {
            id: "r1".into(),
            state: AccessRequestState::Approved as i32,
            ..Default::default()
        })));
        assert!(find(&build(&state), "Access requests (1)…").is_some());
        assert_ne!(shape(&quiet), shape(&menu));
    }
}
