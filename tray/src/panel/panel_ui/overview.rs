//! The Overview tab: Ollama's controls and the machine's usage plots. The
//! plots read like the CLI: x in seconds before now (one sample a second,
//! the last [`HISTORY_LEN`] kept), usage in %, the network as a rate
//! written by [`display::rate_f64`].

use egui_plot::GridMark;

use super::*;
use crate::core::state::HISTORY_LEN;

/// Height of each plot, and of the space between them: one rhythm.
const PLOT_HEIGHT: f32 = 150.0;

impl PanelUi {
    pub(super) fn overview(
        &mut self,
        ui: &mut egui::Ui,
        state: &AgentState,
        out: &mut Vec<Command>,
    ) {
        self.server_box(ui, state, out);
        ui.separator();
        match &state.metrics {
            Some(snapshot) => {
                ui.label(views::metrics_line(snapshot));
            }
            None => {
                ui.weak(if state.connected() {
                    "Waiting for the first reading (one a second)…"
                } else {
                    "Not connected to the agent: the readings start once it answers."
                });
            }
        }
        let samples: Vec<_> = state.history.iter().collect();
        // The newest sample is "now" (x = 0), the one before 1 s ago.
        let x = |i: usize| i as f64 + 1.0 - samples.len() as f64;
        let series =
            |f: &dyn Fn(&omnipanel_client::proto::v1::Snapshot) -> Option<f64>| -> Vec<[f64; 2]> {
                samples
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| f(s).map(|y| [x(i), y]))
                    .collect()
            };
        let cpu = series(&|s| s.cpu.as_ref().map(|c| c.usage_percent));
        let memory = series(&views::memory_percent);
        let vram = series(&views::vram_percent);
        ui.add_space(4.0);
        ui.strong("Usage");
        timeline("usage")
            .include_y(0.0)
            .include_y(100.0)
            .y_axis_label("%")
            .y_axis_formatter(|mark: GridMark, _| format!("{}%", mark.value.round()))
            .show(ui, |plot| {
                plot.line(Line::new("CPU", PlotPoints::from(cpu)));
                plot.line(Line::new("Memory", PlotPoints::from(memory)));
                if !vram.is_empty() {
                    plot.line(Line::new("VRAM", PlotPoints::from(vram)));
                }
            });
        let rx = series(&|s| Some(views::network_rates(s).0));
        let tx = series(&|s| Some(views::network_rates(s).1));
        ui.add_space(4.0);
        ui.strong("Network");
        timeline("network")
            .include_y(0.0)
            // A flat line at zero still gets a readable scale.
            .include_y(1024.0)
            .y_axis_label("rate")
            .y_axis_min_width(64.0)
            .y_axis_formatter(|mark: GridMark, _| display::rate_f64(mark.value.max(0.0)))
            .show(ui, |plot| {
                plot.line(Line::new("In", PlotPoints::from(rx)));
                plot.line(Line::new("Out", PlotPoints::from(tx)));
            });
    }
}

/// A plot over the kept history: fixed x range, ticks in seconds before
/// now, a legend, no pan or zoom (it is a gauge, not an explorer).
fn timeline(id: &str) -> Plot<'static> {
    Plot::new(id)
        .height(PLOT_HEIGHT)
        .include_x(1.0 - HISTORY_LEN as f64)
        .include_x(0.0)
        .x_axis_label("seconds ago")
        .x_axis_formatter(|mark: GridMark, _| seconds_ago(mark.value))
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .legend(Legend::default())
}

/// An x tick: `now` at 0, `60 s ago` before.
fn seconds_ago(x: f64) -> String {
    let seconds = (-x).round();
    if seconds <= 0.0 {
        "now".to_owned()
    } else {
        format!("{seconds} s ago")
    }
}

#[cfg(test)]
mod tests {
    use super::seconds_ago;

    #[test]
    fn ticks_count_seconds_back_to_now() {
        assert_eq!(seconds_ago(0.0), "now");
        assert_eq!(seconds_ago(-60.0), "60 s ago");
        assert_eq!(seconds_ago(-119.6), "120 s ago");
    }
}
