//! View models shared by the tray menu and the panel: agent state in, the
//! lines and rows to show out. Pure functions, unit-tested; the GTK and
//! egui code only lays these out. The words inside (sizes, rates,
//! durations, state and verdict names) come from
//! [`omnipanel_client::display`], so the tray, the panel and the CLI write
//! them the same way.

use omnipanel_client::{
    display,
    proto::v1::{
        Alert, Comparison, Model, Project, PullProgress, PullState, ServerState, Snapshot,
    },
};

use crate::core::state::{AgentState, Connection};

/// What the tray icon shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IconState {
    /// Connected, Ollama fine, nothing raised.
    Ok,
    /// A pull is running.
    Busy,
    /// An alert is raised.
    Warning,
    /// Ollama crashed or failed.
    Error,
    /// The agent is unreachable.
    Disconnected,
}

impl IconState {
    /// Every state, for drawing all icons.
    pub const ALL: [Self; 5] = [
        Self::Ok,
        Self::Busy,
        Self::Warning,
        Self::Error,
        Self::Disconnected,
    ];

    /// A short name (file names, logs).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Busy => "busy",
            Self::Warning => "warning",
            Self::Error => "error",
            Self::Disconnected => "disconnected",
        }
    }
}

/// The icon for `state`: disconnected, then error, warning, busy, ok.
pub fn icon_state(state: &AgentState) -> IconState {
    if !state.connected() {
        return IconState::Disconnected;
    }
    let server_failed = state
        .server
        .as_ref()
        .is_some_and(|s| matches!(s.state(), ServerState::Crashed | ServerState::Backoff));
    if server_failed {
        IconState::Error
    } else if !state.active_alerts.is_empty() {
        IconState::Warning
    } else if state.running_pulls().next().is_some() {
        IconState::Busy
    } else {
        IconState::Ok
    }
}

/// The fraction of a pull done, 0.0..=1.0 (0 when the size is unknown).
pub fn pull_fraction(pull: &PullProgress) -> f32 {
    if pull.total_bytes == 0 {
        return 0.0;
    }
    let fraction = pull.completed_bytes as f64 / pull.total_bytes as f64;
    fraction.clamp(0.0, 1.0) as f32
}

/// One line for a pull: `llama3.2: 42% · 1.2 GB of 2.0 GB · 35 MB/s · 25s left`.
pub fn pull_line(pull: &PullProgress) -> String {
    let name = &pull.model;
    match pull.state() {
        PullState::Succeeded => format!("{name}: done"),
        PullState::Failed => format!("{name}: failed: {}", pull.error),
        PullState::Cancelled => format!("{name}: cancelled"),
        PullState::Retrying => format!("{name}: retrying (attempt {})", pull.attempt),
        PullState::Running | PullState::Unspecified => {
            if pull.total_bytes == 0 {
                let status = if pull.status.is_empty() {
                    "starting"
                } else {
                    pull.status.as_str()
                };
                return format!("{name}: {status}");
            }
            let mut line = format!(
                "{name}: {}% · {} of {}",
                display::percent(pull.completed_bytes, pull.total_bytes),
                display::bytes(pull.completed_bytes),
                display::bytes(pull.total_bytes)
            );
            if pull.bytes_per_second > 0 {
                line.push_str(" · ");
                line.push_str(&display::rate(pull.bytes_per_second));
            }
            if pull.eta_seconds > 0 {
                line.push_str(&format!(
                    " · {} left",
                    display::duration_short(pull.eta_seconds)
                ));
            }
            line
        }
    }
}

/// Which server controls make sense in a state: (start, stop, restart).
pub fn server_controls(state: Option<ServerState>) -> (bool, bool, bool) {
    match state {
        Some(ServerState::Stopped | ServerState::Crashed | ServerState::Backoff) => {
            (true, false, true)
        }
        Some(ServerState::Running | ServerState::External) => (false, true, true),
        Some(ServerState::Starting) => (false, true, false),
        _ => (false, false, false),
    }
}

/// `Ollama 0.5.1: running · default llama3.2`.
pub fn server_line(state: &AgentState) -> String {
    let Some(server) = &state.server else {
        return "Ollama: unknown".to_owned();
    };
    let mut line = "Ollama".to_owned();
    if !server.version.is_empty() {
        line.push(' ');
        line.push_str(&server.version);
    }
    line.push_str(": ");
    line.push_str(display::server_state_label(server.state()));
    if let Some(model) = state.default_model() {
        line.push_str(" · default ");
        line.push_str(model);
    }
    line
}

/// Percent of memory used in a sample.
pub fn memory_percent(snapshot: &Snapshot) -> Option<f64> {
    let memory = snapshot.memory.as_ref()?;
    if memory.total_bytes == 0 {
        return None;
    }
    let percent = memory.used_bytes as f64 * 100.0 / memory.total_bytes as f64;
    Some(percent)
}

/// Percent of VRAM used over all GPUs, when there is one.
pub fn vram_percent(snapshot: &Snapshot) -> Option<f64> {
    let gpu = snapshot.gpu.as_ref()?;
    let total: u64 = gpu.gpus.iter().map(|g| g.memory_total_bytes).sum();
    if total == 0 {
        return None;
    }
    let used: u64 = gpu.gpus.iter().map(|g| g.memory_used_bytes).sum();
    let percent = used as f64 * 100.0 / total as f64;
    Some(percent)
}

/// Network throughput summed over interfaces: (rx, tx) bytes per second.
pub fn network_rates(snapshot: &Snapshot) -> (f64, f64) {
    snapshot.networks.iter().fold((0.0, 0.0), |(rx, tx), n| {
        (rx + n.rx_bytes_per_second, tx + n.tx_bytes_per_second)
    })
}

/// `CPU 12% · RAM 6.1 GB/16 GB · VRAM 2.0 GB/8.0 GB` (VRAM only with a GPU).
pub fn metrics_line(snapshot: &Snapshot) -> String {
    let mut parts = Vec::new();
    if let Some(cpu) = &snapshot.cpu {
        parts.push(format!("CPU {:.0}%", cpu.usage_percent));
    }
    if let Some(memory) = &snapshot.memory {
        parts.push(format!(
            "RAM {}/{}",
            display::bytes(memory.used_bytes),
            display::bytes(memory.total_bytes)
        ));
    }
    if let Some(gpu) = &snapshot.gpu {
        let total: u64 = gpu.gpus.iter().map(|g| g.memory_total_bytes).sum();
        if total > 0 {
            let used: u64 = gpu.gpus.iter().map(|g| g.memory_used_bytes).sum();
            parts.push(format!(
                "VRAM {}/{}",
                display::bytes(used),
                display::bytes(total)
            ));
        }
    }
    if parts.is_empty() {
        "no readings yet".to_owned()
    } else {
        parts.join(" · ")
    }
}

/// The header line: `OmniPanel 0.1.0` or why we are not connected.
pub fn agent_line(state: &AgentState) -> String {
    match &state.connection {
        Connection::Starting => "OmniPanel: connecting…".to_owned(),
        Connection::Connected(info) => format!("OmniPanel {}", info.version),
        Connection::Disconnected {
            launched_agent: true,
            ..
        } => "OmniPanel: starting the agent…".to_owned(),
        Connection::Disconnected { .. } => "OmniPanel: agent not running".to_owned(),
    }
}

/// An alert as one line: `cpu above 90 (now 97.2) on core 3`.
pub fn alert_line(alert: &Alert) -> String {
    let op = match alert.comparison() {
        Comparison::Below => "below",
        _ => "above",
    };
    let mut line = format!(
        "{} {op} {} (peak {:.1})",
        alert.metric,
        display::trim_float(alert.threshold_value),
        alert.peak_value
    );
    if !alert.subject.is_empty() {
        line.push_str(" on ");
        line.push_str(&alert.subject);
    }
    line
}

/// One row of the models table.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// The model's name.
    pub name: String,
    /// `4.7 GB`.
    pub size: String,
    /// `8B Q4_K_M`.
    pub details: String,
    /// Whether it is the default.
    pub is_default: bool,
    /// Whether it is loaded, and in how much VRAM (`2.0 GB VRAM`).
    pub loaded: Option<String>,
    /// The fit verdict, if checked.
    pub fit: Option<String>,
}

/// The models table: installed models, default first then by name.
pub fn model_rows(state: &AgentState) -> Vec<ModelRow> {
    let default = state.default_model().map(str::to_owned);
    let mut models: Vec<&Model> = state.models.iter().collect();
    models.sort_by(|a, b| {
        let a_default = Some(&a.name) == default.as_ref();
        let b_default = Some(&b.name) == default.as_ref();
        b_default.cmp(&a_default).then_with(|| a.name.cmp(&b.name))
    });
    models
        .into_iter()
        .map(|m| {
            let loaded = state.running.iter().find(|r| r.name == m.name).map(|r| {
                if r.size_vram_bytes > 0 {
                    format!("{} VRAM", display::bytes(r.size_vram_bytes))
                } else {
                    format!("{} RAM", display::bytes(r.size_bytes))
                }
            });
            ModelRow {
                name: m.name.clone(),
                size: display::bytes(m.size_bytes),
                details: display::model_details(m),
                is_default: Some(&m.name) == default.as_ref() || m.is_default,
                loaded,
                fit: state
                    .fit(&m.name)
                    .map(|f| display::fit_label(f.verdict()).to_owned()),
            }
        })
        .collect()
}

/// One row of the projects list.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectRow {
    /// The project id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its folder.
    pub path: String,
    /// `main*` (branch, `*` when dirty), empty without git.
    pub git: String,
    /// Whether the folder still exists.
    pub exists: bool,
}

/// The recent projects, most recently opened first.
pub fn project_rows(projects: &[Project]) -> Vec<ProjectRow> {
    let mut sorted: Vec<&Project> = projects.iter().collect();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.last_opened_unix_ms));
    sorted
        .into_iter()
        .map(|p| ProjectRow {
            id: p.id.clone(),
            name: if p.name.is_empty() {
                p.path.clone()
            } else {
                p.name.clone()
            },
            path: p.path.clone(),
            git: p
                .git
                .as_ref()
                .filter(|g| !g.branch.is_empty() || g.detached)
                .map(|g| {
                    let branch = if g.detached { "(detached)" } else { &g.branch };
                    format!("{branch}{}", if g.dirty { "*" } else { "" })
                })
                .unwrap_or_default(),
            exists: p.exists,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use omnipanel_client::proto::v1::{
        AlertState, CpuMetrics, GetInfoResponse, GitSummary, Gpu, GpuMetrics, MemoryMetrics,
        RunningModel, ServerStatus,
    };

    use super::*;
    use crate::core::state::Update;

    fn connected() -> AgentState {
        let mut state = AgentState::default();
        state.apply(Update::Connected(Box::new(GetInfoResponse {
            version: "0.1.0".into(),
            ..Default::default()
        })));
        state
    }

    /// The case issue 13 names: 999.6 MB printed "1000 MB" in the tray and
    /// "1 GB" in the CLI. Both now write [`display::bytes`]'s "1.0 GB", here
    /// where people read it: a model's size, what it holds loaded, a pull.
    #[test]
    fn sizes_just_under_a_gigabyte_read_as_the_cli_writes_them() {
        const SIZE: u64 = 999_600_000;
        let mut state = connected();
        state.apply(Update::Models(vec![Model {
            name: "m".into(),
            size_bytes: SIZE,
            ..Default::default()
        }]));
        state.apply(Update::Running(vec![RunningModel {
            name: "m".into(),
            size_vram_bytes: SIZE,
            ..Default::default()
        }]));
        let rows = model_rows(&state);
        assert_eq!(rows[0].size, "1.0 GB");
        assert_eq!(rows[0].size, display::bytes(SIZE));
        assert_eq!(rows[0].loaded.as_deref(), Some("1.0 GB VRAM"));
        let pull = PullProgress {
            model: "m".into(),
            state: PullState::Running as i32,
            completed_bytes: SIZE,
            total_bytes: 2 * SIZE,
            bytes_per_second: SIZE,
            ..Default::default()
        };
        assert_eq!(pull_line(&pull), "m: 50% · 1.0 GB of 2.0 GB · 1.0 GB/s");
    }

    #[test]
    fn pull_line_has_percent_speed_and_eta() {
        let pull = PullProgress {
            model: "llama3.2".into(),
            state: PullState::Running as i32,
            completed_bytes: 1_000_000_000,
            total_bytes: 2_000_000_000,
            bytes_per_second: 35_000_000,
            eta_seconds: 29,
            ..Default::default()
        };
        assert_eq!(
            pull_line(&pull),
            "llama3.2: 50% · 1.0 GB of 2.0 GB · 35 MB/s · 29s left"
        );
        assert!((pull_fraction(&pull) - 0.5).abs() < f32::EPSILON);
        // Rounded down, as the CLI does: a pull never reads 100% unfinished.
        let nearly = PullProgress {
            completed_bytes: 1_995_000_000,
            bytes_per_second: 0,
            eta_seconds: 0,
            ..pull
        };
        assert_eq!(pull_line(&nearly), "llama3.2: 99% · 2.0 GB of 2.0 GB");
    }

    #[test]
    fn icon_state_priorities() {
        let mut state = AgentState::default();
        assert_eq!(icon_state(&state), IconState::Disconnected);
        state = connected();
        assert_eq!(icon_state(&state), IconState::Ok);
        state.apply(Update::Pull(PullProgress {
            model: "m".into(),
            state: PullState::Running as i32,
            ..Default::default()
        }));
        assert_eq!(icon_state(&state), IconState::Busy);
        state.apply(Update::Alert(Alert {
            id: 1,
            state: AlertState::Active as i32,
            ..Default::default()
        }));
        assert_eq!(icon_state(&state), IconState::Warning);
        state.apply(Update::Server(ServerStatus {
            state: ServerState::Crashed as i32,
            ..Default::default()
        }));
        assert_eq!(icon_state(&state), IconState::Error);
    }

    #[test]
    fn server_controls_follow_state() {
        assert_eq!(
            server_controls(Some(ServerState::Stopped)),
            (true, false, true)
        );
        assert_eq!(
            server_controls(Some(ServerState::Running)),
            (false, true, true)
        );
        assert_eq!(
            server_controls(Some(ServerState::NotInstalled)),
            (false, false, false)
        );
        assert_eq!(server_controls(None), (false, false, false));
    }

    #[test]
    fn metrics_line_mentions_vram_only_with_a_gpu() {
        let mut snapshot = Snapshot {
            cpu: Some(CpuMetrics {
                usage_percent: 12.4,
                ..Default::default()
            }),
            memory: Some(MemoryMetrics {
                total_bytes: 16_000_000_000,
                used_bytes: 6_100_000_000,
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(metrics_line(&snapshot), "CPU 12% · RAM 6.1 GB/16 GB");
        snapshot.gpu = Some(GpuMetrics {
            gpus: vec![Gpu {
                memory_total_bytes: 8_000_000_000,
                memory_used_bytes: 2_000_000_000,
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(metrics_line(&snapshot).ends_with("VRAM 2.0 GB/8.0 GB"));
        assert_eq!(vram_percent(&snapshot), Some(25.0));
        assert!(memory_percent(&snapshot).is_some_and(|p| (p - 38.125).abs() < 1e-9));
    }

    #[test]
    fn model_rows_put_default_first_and_show_loaded() {
        let mut state = connected();
        state.apply(Update::Models(vec![
            Model {
                name: "a".into(),
                size_bytes: 2_000_000_000,
                parameter_size: "3B".into(),
                quantization_level: "Q4_K_M".into(),
                ..Default::default()
            },
            Model {
                name: "b".into(),
                ..Default::default()
            },
        ]));
        state.apply(Update::DefaultModel("b".into()));
        state.apply(Update::Running(vec![RunningModel {
            name: "a".into(),
            size_vram_bytes: 2_000_000_000,
            ..Default::default()
        }]));
        let rows = model_rows(&state);
        assert_eq!(rows[0].name, "b");
        assert!(rows[0].is_default);
        assert_eq!(rows[1].details, "3B Q4_K_M");
        assert_eq!(rows[1].loaded.as_deref(), Some("2.0 GB VRAM"));
    }

    #[test]
    fn project_rows_show_branch_and_dirty() {
        let projects = vec![
            Project {
                id: "1".into(),
                path: "/old".into(),
                last_opened_unix_ms: 1,
                ..Default::default()
            },
            Project {
                id: "2".into(),
                name: "new".into(),
                path: "/new".into(),
                last_opened_unix_ms: 2,
                git: Some(GitSummary {
                    branch: "main".into(),
                    dirty: true,
                    detached: false,
                }),
                ..Default::default()
            },
        ];
        let rows = project_rows(&projects);
        assert_eq!(rows[0].name, "new");
        assert_eq!(rows[0].git, "main*");
        assert_eq!(rows[1].name, "/old");
        assert_eq!(rows[1].git, "");
    }

    #[test]
    fn alert_line_reads_well() {
        let alert = Alert {
            metric: "cpu_percent".into(),
            comparison: Comparison::Above as i32,
            threshold_value: 90.0,
            peak_value: 97.26,
            subject: "core 3".into(),
            ..Default::default()
        };
        assert_eq!(
            alert_line(&alert),
            "cpu_percent above 90 (peak 97.3) on core 3"
        );
    }
}
