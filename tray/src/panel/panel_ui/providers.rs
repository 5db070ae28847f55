//! The Models tab's providers: every model server the agent knows, with
//! its kind, health (and why it is down), URL and whether a key is stored;
//! the list follows the agent's provider events (no polling). Adding one
//! is the CLI's (`omnipanel providers add`), which reads the key from
//! stdin rather than from a window.

use egui::Color32;
use omnipanel_client::{display, proto::v1::ProviderState};

use crate::core::state::AgentState;

/// The model servers with their kind and health (kept current by their
/// events), and how to add one.
pub(super) fn providers(ui: &mut egui::Ui, state: &AgentState) {
    ui.heading("Providers");
    egui::Grid::new("providers")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            ui.strong("Name");
            ui.strong("Kind");
            ui.strong("State");
            ui.strong("URL");
            ui.strong("API key");
            ui.end_row();
            for provider in &state.providers {
                ui.label(&provider.name);
                ui.label(if provider.local {
                    "ollama (local)"
                } else {
                    display::provider_kind_name(provider.kind)
                });
                let line = display::provider_state_line(provider);
                if provider.state == ProviderState::Down as i32 {
                    ui.colored_label(Color32::from_rgb(0xe5, 0x39, 0x35), line);
                } else {
                    ui.label(line);
                }
                ui.weak(&provider.url);
                ui.label(if provider.has_token { "yes" } else { "no" });
                ui.end_row();
            }
        });
    ui.weak(
        "Add one: omnipanel providers add NAME URL --kind openai --api-key-stdin. The managed Ollama's settings: omnipanel settings get (keys ollama.*).",
    );
}
