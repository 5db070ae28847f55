//! The panel header's health at a glance, as chips: the agent (connected,
//! its version), Ollama (its state), the default model and the active
//! alerts. Pure: state in, words and a tone out, so the panel only colours
//! them and the words are tested here. State names come from
//! [`omnipanel_client::display`], as the CLI and the tray menu write them.

use omnipanel_client::{display, proto::v1::ServerState};

use crate::core::state::{AgentState, Connection};

/// How a chip reads at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// All is well (green).
    Good,
    /// Needs a look, not broken (amber).
    Warning,
    /// Broken or missing (red).
    Bad,
    /// Nothing to judge yet (grey).
    Neutral,
}

/// One chip of the header: its words (also its accessible label), its tone
/// and a longer hint for the tooltip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chip {
    /// What it says.
    pub text: String,
    /// Its colour.
    pub tone: Tone,
    /// What it means, in a sentence.
    pub hint: String,
}

fn chip(text: impl Into<String>, tone: Tone, hint: impl Into<String>) -> Chip {
    Chip {
        text: text.into(),
        tone,
        hint: hint.into(),
    }
}

/// The header's chips: the agent always; Ollama, the default model and
/// the alerts once connected (before that they would only guess).
pub fn chips(state: &AgentState) -> Vec<Chip> {
    let agent = match &state.connection {
        Connection::Connected(info) => chip(
            format!("Agent {}", info.version),
            Tone::Good,
            "connected to the OmniPanel agent",
        ),
        Connection::Starting => chip("Agent: connecting…", Tone::Neutral, "connecting"),
        Connection::Disconnected {
            launched_agent: true,
            ..
        } => chip(
            "Agent: starting…",
            Tone::Warning,
            "the agent was started and is not answering yet",
        ),
        Connection::Disconnected { error, .. } => chip("Agent: not running", Tone::Bad, error),
    };
    if !state.connected() {
        return vec![agent];
    }
    let ollama = match &state.server {
        None => chip("Ollama: unknown", Tone::Neutral, "not read yet"),
        Some(server) => {
            let tone = match server.state() {
                ServerState::Running | ServerState::External => Tone::Good,
                ServerState::Starting
                | ServerState::Stopping
                | ServerState::Stopped
                | ServerState::Backoff => Tone::Warning,
                ServerState::Crashed | ServerState::NotInstalled => Tone::Bad,
                ServerState::Unspecified => Tone::Neutral,
            };
            chip(
                format!("Ollama: {}", display::server_state_label(server.state())),
                tone,
                display::server_state_meaning(server.state),
            )
        }
    };
    let model = match state.default_model() {
        Some(model) => chip(
            format!("Default: {model}"),
            Tone::Good,
            "the model used when a request names none",
        ),
        None => chip(
            "No default model",
            Tone::Warning,
            "pull a model on the Models tab and make it the default",
        ),
    };
    let alerts = match state.active_alerts.len() {
        0 => chip("No alerts", Tone::Good, "no threshold is crossed"),
        1 => chip("1 alert", Tone::Bad, "see the Alerts tab"),
        n => chip(format!("{n} alerts"), Tone::Bad, "see the Alerts tab"),
    };
    vec![agent, ollama, model, alerts]
}

#[cfg(test)]
mod tests {
    use omnipanel_client::proto::v1::{Alert, ServerStatus};

    use super::*;
    use crate::core::state::{Update, connected_for_tests};

    fn texts(state: &AgentState) -> Vec<(String, Tone)> {
        chips(state).into_iter().map(|c| (c.text, c.tone)).collect()
    }

    #[test]
    fn before_connecting_only_the_agent_is_shown() {
        assert_eq!(
            texts(&AgentState::default()),
            vec![("Agent: connecting…".to_owned(), Tone::Neutral)]
        );
        let mut state = AgentState::default();
        state.apply(Update::Disconnected {
            error: "no socket".into(),
            attempt: 2,
            launched_agent: false,
        });
        let chips = chips(&state);
        assert_eq!(chips.len(), 1);
        assert_eq!(chips[0].text, "Agent: not running");
        assert_eq!(chips[0].tone, Tone::Bad);
        assert_eq!(chips[0].hint, "no socket");
    }

    #[test]
    fn connected_shows_ollama_the_default_model_and_alerts() {
        let mut state = connected_for_tests();
        assert_eq!(
            texts(&state),
            vec![
                ("Agent 0.1.0".to_owned(), Tone::Good),
                ("Ollama: unknown".to_owned(), Tone::Neutral),
                ("No default model".to_owned(), Tone::Warning),
                ("No alerts".to_owned(), Tone::Good),
            ]
        );
        state.apply(Update::Server(ServerStatus {
            state: ServerState::Crashed as i32,
            default_model: "llama3.2:1b".into(),
            ..Default::default()
        }));
        state.apply(Update::Alerts {
            active: vec![Alert::default(), Alert::default()],
            history: Vec::new(),
        });
        assert_eq!(
            texts(&state)[1..],
            [
                ("Ollama: crashed".to_owned(), Tone::Bad),
                ("Default: llama3.2:1b".to_owned(), Tone::Good),
                ("2 alerts".to_owned(), Tone::Bad),
            ]
        );
    }
}
