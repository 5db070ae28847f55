//! `omnipanel sys ...`: what the machine is doing: a snapshot (CPU,
//! memory, disks, network, GPUs, the agent and Ollama), `sys ps`, and the
//! live `sys top` (in `top`); the arguments and the handlers, through the
//! agent's SystemService.

mod top;

use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use omnipanel_client::{Authed, Client, display};
use omnipanel_proto::v1::{self as pb, system_service_client::SystemServiceClient};

use crate::{
    Failure,
    output::{Output, emit},
};

/// `omnipanel sys`
#[derive(Debug, Args)]
pub struct SysArgs {
    /// Without a subcommand: one snapshot.
    #[command(subcommand)]
    pub command: Option<SysCommand>,
}

/// Process orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProcessSortArg {
    /// Highest CPU use first.
    Cpu,
    /// Largest resident memory first.
    Memory,
}

/// `omnipanel sys ...`
#[derive(Debug, Subcommand)]
pub enum SysCommand {
    /// A live view refreshing in place; q or Ctrl-C quits, c and m sort
    /// processes by CPU or memory.
    Top(TopArgs),
    /// List the busiest processes.
    Ps {
        /// Order.
        #[arg(long, value_enum, default_value = "cpu")]
        sort: ProcessSortArg,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 10)]
        limit: u32,
    },
}

/// `omnipanel sys top`
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Time between refreshes, e.g. 1s or 500ms (at least 250ms).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// Order of the process list.
    #[arg(long, value_enum, default_value = "cpu")]
    pub sort: ProcessSortArg,
    /// Processes shown (default: as many as fit the terminal).
    #[arg(short = 'n', long)]
    pub processes: Option<u32>,
    /// Stop after this many refreshes (default: until q or Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
}

type System = SystemServiceClient<Authed>;

/// `omnipanel sys [top|ps]`
pub async fn sys(command: Option<SysCommand>, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut system = client.system();
    match command {
        None => {
            let response = client
                .call(system.get_snapshot(pb::GetSnapshotRequest {}))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            let snapshot = response.snapshot.unwrap_or_default();
            emit(&snapshot_text(&snapshot))
        }
        Some(SysCommand::Ps { sort, limit }) => {
            let response = client
                .call(system.list_processes(pb::ListProcessesRequest {
                    sort: sort_to_proto(sort).into(),
                    limit,
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            let rows: Vec<Vec<String>> = response.processes.iter().map(process_row).collect();
            out.table(&["PID", "CPU%", "RSS", "NAME", "COMMAND"], &rows)?;
            Ok(())
        }
        Some(SysCommand::Top(args)) => top::top(&client, system, args, out).await,
    }
}

fn sort_to_proto(sort: ProcessSortArg) -> pb::ProcessSort {
    match sort {
        ProcessSortArg::Cpu => pb::ProcessSort::Cpu,
        ProcessSortArg::Memory => pb::ProcessSort::Memory,
    }
}

fn process_row(p: &pb::ProcessInfo) -> Vec<String> {
    let command = if p.command.is_empty() {
        p.name.clone()
    } else {
        p.command.clone()
    };
    vec![
        p.pid.to_string(),
        format!("{:.1}", p.cpu_percent),
        display::bytes(p.rss_bytes),
        p.name.clone(),
        command,
    ]
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // Display only: precision loss above 2^53 is irrelevant.
    #[allow(clippy::cast_precision_loss)]
    let ratio = part as f64 * 100.0 / whole as f64;
    ratio
}

/// The GPU section of a snapshot, one line per GPU.
fn gpu_lines(gpu: &pb::GpuMetrics) -> Vec<String> {
    match pb::GpuStatus::try_from(gpu.status) {
        Ok(pb::GpuStatus::Present) => {
            let mut lines = Vec::new();
            for g in &gpu.gpus {
                let mut line = format!(
                    "GPU {}  {}  VRAM {} / {} ({:.0} %)",
                    g.index,
                    g.name,
                    display::bytes(g.memory_used_bytes),
                    display::bytes(g.memory_total_bytes),
                    pct(g.memory_used_bytes, g.memory_total_bytes)
                );
                if let Some(util) = g.utilization_percent {
                    line.push_str(&format!(", busy {util:.0} %"));
                }
                if let Some(temp) = g.temperature_celsius {
                    line.push_str(&format!(", {temp:.0} °C"));
                }
                if let Some(watts) = g.power_watts {
                    line.push_str(&format!(", {watts:.0} W"));
                }
                lines.push(line);
                for p in &g.processes {
                    let memory = p
                        .memory_bytes
                        .map_or_else(|| "?".to_owned(), display::bytes);
                    let name = if p.name.is_empty() { "?" } else { &p.name };
                    lines.push(format!("    pid {} {name}: {memory}", p.pid));
                }
            }
            lines
        }
        Ok(pb::GpuStatus::Absent) => vec![format!("absent ({})", gpu.detail)],
        Ok(pb::GpuStatus::Error) => vec![format!("error: {}", gpu.detail)],
        _ => vec!["not read".to_owned()],
    }
}

fn process_line(label: &str, p: &pb::ProcessMetrics) -> String {
    let mut line = format!(
        "{label} pid {}: {:.1} % CPU, {} RSS",
        p.pid,
        p.cpu_percent,
        display::bytes(p.rss_bytes)
    );
    if p.vram_bytes > 0 {
        line.push_str(&format!(", {} VRAM", display::bytes(p.vram_bytes)));
    }
    if p.process_count > 1 {
        line.push_str(&format!(" ({} processes)", p.process_count));
    }
    line
}

fn sampler_line(sampler: &pb::SamplerStats) -> String {
    if sampler.interval_ms == 0 {
        return "stopped (nobody is streaming and alerts need no readings)".to_owned();
    }
    let why = match (sampler.subscribers, sampler.alerts_active) {
        (0, _) => "for alerts".to_owned(),
        (1, _) => "for 1 stream".to_owned(),
        (n, _) => format!("for {n} streams"),
    };
    format!(
        "every {} {why}",
        humantime::format_duration(Duration::from_millis(u64::from(sampler.interval_ms)))
    )
}

/// `omnipanel sys` as text.
fn snapshot_text(s: &pb::Snapshot) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "host     {} (up {}), {}",
        s.hostname,
        display::duration(s.uptime_seconds),
        display::timestamp(s.time_unix_ms)
    ));
    let cpu = s.cpu.clone().unwrap_or_default();
    let load = s.load.unwrap_or_default();
    line(format!(
        "cpu      {:.1} % of {} cores ({}), load {:.2} {:.2} {:.2}",
        cpu.usage_percent,
        cpu.logical_cores,
        if cpu.brand.is_empty() {
            "?"
        } else {
            &cpu.brand
        },
        load.one,
        load.five,
        load.fifteen
    ));
    let cores: Vec<String> = cpu
        .core_usage_percent
        .iter()
        .map(|c| format!("{c:.0}"))
        .collect();
    line(format!("         per core % {}", cores.join(" ")));
    let memory = s.memory.unwrap_or_default();
    line(format!(
        "memory   {} of {} used ({:.0} %), {} available",
        display::bytes(memory.used_bytes),
        display::bytes(memory.total_bytes),
        pct(memory.used_bytes, memory.total_bytes),
        display::bytes(memory.available_bytes)
    ));
    if memory.swap_total_bytes > 0 {
        line(format!(
            "swap     {} of {} used ({:.0} %)",
            display::bytes(memory.swap_used_bytes),
            display::bytes(memory.swap_total_bytes),
            pct(memory.swap_used_bytes, memory.swap_total_bytes)
        ));
    } else {
        line("swap     none".to_owned());
    }
    line("disks".to_owned());
    for d in &s.disks {
        line(format!(
            "  {:<20} {:<8} {} of {} used ({:.0} %), {} free{}",
            d.mount_point,
            d.file_system,
            display::bytes(d.used_bytes),
            display::bytes(d.total_bytes),
            pct(d.used_bytes, d.total_bytes),
            display::bytes(d.available_bytes),
            if d.read_only { ", read-only" } else { "" }
        ));
    }
    line("network".to_owned());
    for n in s.networks.iter().filter(|n| n.interface != "lo") {
        line(format!(
            "  {:<20} in {:>10}  out {:>10}  (total in {}, out {})",
            n.interface,
            display::rate_f64(n.rx_bytes_per_second),
            display::rate_f64(n.tx_bytes_per_second),
            display::bytes(n.rx_total_bytes),
            display::bytes(n.tx_total_bytes)
        ));
    }
    let gpus = s.gpu.clone().unwrap_or_default();
    for (i, text) in gpu_lines(&gpus).into_iter().enumerate() {
        line(format!(
            "{}{text}",
            if i == 0 { "gpu      " } else { "         " }
        ));
    }
    if let Some(agent) = &s.agent {
        line(process_line("agent   ", agent));
    }
    match &s.ollama {
        Some(ollama) => line(process_line("ollama  ", ollama)),
        None => line("ollama   no server process known".to_owned()),
    }
    let sampler = s.sampler.unwrap_or_default();
    line(format!("sampler  {}", sampler_line(&sampler)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_as_text() {
        let snapshot = pb::Snapshot {
            hostname: "box".into(),
            gpu: Some(pb::GpuMetrics {
                status: pb::GpuStatus::Absent.into(),
                detail: "no NVIDIA driver library".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = snapshot_text(&snapshot);
        assert!(
            text.contains("gpu      absent (no NVIDIA driver library)"),
            "{text}"
        );
        assert!(text.contains("ollama   no server process known"), "{text}");
        assert!(text.contains("sampler  stopped"), "{text}");
    }
}
