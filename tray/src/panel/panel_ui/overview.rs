//! The Overview tab: Ollama's controls and the machine's usage plots.

use super::*;

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
                ui.weak("waiting for the first reading…");
            }
        }
        let samples: Vec<_> = state.history.iter().collect();
        let x = |i: usize| i as f64 - samples.len() as f64;
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
        Plot::new("usage")
            .height(160.0)
            .include_y(0.0)
            .include_y(100.0)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .legend(Legend::default())
            .show(ui, |plot| {
                plot.line(Line::new("CPU %", PlotPoints::from(cpu)));
                plot.line(Line::new("Memory %", PlotPoints::from(memory)));
                if !vram.is_empty() {
                    plot.line(Line::new("VRAM %", PlotPoints::from(vram)));
                }
            });
        let rx = series(&|s| Some(views::network_rates(s).0 / 1000.0));
        let tx = series(&|s| Some(views::network_rates(s).1 / 1000.0));
        Plot::new("network")
            .height(120.0)
            .include_y(0.0)
            .allow_drag(false)
            .allow_zoom(false)
            .allow_scroll(false)
            .legend(Legend::default())
            .show(ui, |plot| {
                plot.line(Line::new("Network in KB/s", PlotPoints::from(rx)));
                plot.line(Line::new("Network out KB/s", PlotPoints::from(tx)));
            });
    }
}
