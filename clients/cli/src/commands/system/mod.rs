//! Commands about the machine: `omnipanel sys` (a snapshot), `sys ps`,
//! `sys top` (a live view redrawn in place with plain ANSI escapes; the
//! terminal goes into no-echo, no-line-buffering mode so `q` quits at once,
//! and is restored on every way out, Ctrl-C included), and `omnipanel
//! alerts ...` (history, a live watch, thresholds). All of it goes through
//! the agent's SystemService.

use std::{
    io::{IsTerminal, Read},
    time::Duration,
};

use omnipanel_client::{Authed, Client};
use omnipanel_proto::v1::{self as pb, system_service_client::SystemServiceClient};
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};

use crate::{
    Failure,
    cli::{AlertsCommand, ProcessSortArg, SysCommand, ThresholdsCommand, TopArgs},
    model_commands::rpc,
    render::{
        duration_secs, emit, human_size, outln, print_json, print_table, relative_time, timestamp,
    },
};

type System = SystemServiceClient<Authed>;

/// `omnipanel sys [top|ps]`
pub async fn sys(command: Option<SysCommand>, json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut system = client.system();
    match command {
        None => {
            let response = rpc(
                &client,
                system.get_snapshot(pb::GetSnapshotRequest {}).await,
            )?;
            if json {
                return print_json(&response);
            }
            let snapshot = response.snapshot.unwrap_or_default();
            emit(&snapshot_text(&snapshot))
        }
        Some(SysCommand::Ps { sort, limit }) => {
            let response = rpc(
                &client,
                system
                    .list_processes(pb::ListProcessesRequest {
                        sort: sort_to_proto(sort).into(),
                        limit,
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let rows: Vec<Vec<String>> = response.processes.iter().map(process_row).collect();
            print_table(&["PID", "CPU%", "RSS", "NAME", "COMMAND"], &rows)?;
            Ok(())
        }
        Some(SysCommand::Top(args)) => top(&client, system, args, json).await,
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
        human_size(p.rss_bytes),
        p.name.clone(),
        command,
    ]
}

/// "1.2 MB/s".
fn rate(bytes_per_second: f64) -> String {
    // Rates are far below 2^53 bytes/s; truncation to whole bytes is
    // what is shown anyway.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = bytes_per_second.max(0.0).round() as u64;
    format!("{}/s", human_size(bytes))
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
                    human_size(g.memory_used_bytes),
                    human_size(g.memory_total_bytes),
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
                    let memory = p.memory_bytes.map_or_else(|| "?".to_owned(), human_size);
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
        human_size(p.rss_bytes)
    );
    if p.vram_bytes > 0 {
        line.push_str(&format!(", {} VRAM", human_size(p.vram_bytes)));
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
        duration_secs(s.uptime_seconds),
        timestamp(s.time_unix_ms)
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
        human_size(memory.used_bytes),
        human_size(memory.total_bytes),
        pct(memory.used_bytes, memory.total_bytes),
        human_size(memory.available_bytes)
    ));
    if memory.swap_total_bytes > 0 {
        line(format!(
            "swap     {} of {} used ({:.0} %)",
            human_size(memory.swap_used_bytes),
            human_size(memory.swap_total_bytes),
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
            human_size(d.used_bytes),
            human_size(d.total_bytes),
            pct(d.used_bytes, d.total_bytes),
            human_size(d.available_bytes),
            if d.read_only { ", read-only" } else { "" }
        ));
    }
    line("network".to_owned());
    for n in s.networks.iter().filter(|n| n.interface != "lo") {
        line(format!(
            "  {:<20} in {:>10}  out {:>10}  (total in {}, out {})",
            n.interface,
            rate(n.rx_bytes_per_second),
            rate(n.tx_bytes_per_second),
            human_size(n.rx_total_bytes),
            human_size(n.tx_total_bytes)
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

/// A bar of `width` cells filled to `percent`.
fn bar(percent: f64, width: usize) -> String {
    // Display only: the value is clamped to 0..=width first.
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!(
        "[{}{}]",
        "#".repeat(filled),
        ".".repeat(width - filled.min(width))
    )
}

/// One frame of `sys top`: header lines, then the process table.
fn top_frame(s: &pb::Snapshot, processes: &[pb::ProcessInfo], sort: ProcessSortArg) -> Vec<String> {
    let mut lines = Vec::new();
    let cpu = s.cpu.clone().unwrap_or_default();
    let load = s.load.unwrap_or_default();
    let memory = s.memory.unwrap_or_default();
    lines.push(format!(
        "omnipanel sys top — {} — {}   (q quits; c, m: sort by CPU, memory)",
        s.hostname,
        timestamp(s.time_unix_ms)
    ));
    lines.push(format!(
        "CPU  {} {:5.1} %  load {:.2} {:.2} {:.2}",
        bar(cpu.usage_percent, 30),
        cpu.usage_percent,
        load.one,
        load.five,
        load.fifteen
    ));
    let cores: Vec<String> = cpu
        .core_usage_percent
        .iter()
        .map(|c| format!("{c:4.0}"))
        .collect();
    lines.push(format!("     cores %{}", cores.join("")));
    let used = pct(memory.used_bytes, memory.total_bytes);
    lines.push(format!(
        "MEM  {} {used:5.1} %  {} / {}   swap {:.0} %",
        bar(used, 30),
        human_size(memory.used_bytes),
        human_size(memory.total_bytes),
        pct(memory.swap_used_bytes, memory.swap_total_bytes)
    ));
    let gpu = s.gpu.clone().unwrap_or_default();
    if pb::GpuStatus::try_from(gpu.status) == Ok(pb::GpuStatus::Present) {
        for g in &gpu.gpus {
            let vram = pct(g.memory_used_bytes, g.memory_total_bytes);
            lines.push(format!(
                "GPU{} {} {vram:5.1} %  {} / {}  busy {}  {}",
                g.index,
                bar(vram, 30),
                human_size(g.memory_used_bytes),
                human_size(g.memory_total_bytes),
                g.utilization_percent
                    .map_or_else(|| "?".to_owned(), |u| format!("{u:.0} %")),
                g.temperature_celsius
                    .map_or_else(String::new, |t| format!("{t:.0} °C")),
            ));
        }
    } else {
        lines.push(format!("GPU  {}", gpu_lines(&gpu).join("; ")));
    }
    let disks: Vec<String> = s
        .disks
        .iter()
        .map(|d| {
            format!(
                "{} {:.0} %",
                d.mount_point,
                pct(d.used_bytes, d.total_bytes)
            )
        })
        .collect();
    lines.push(format!("DISK {}", disks.join("  ")));
    let nets: Vec<String> = s
        .networks
        .iter()
        .filter(|n| n.interface != "lo")
        .map(|n| {
            format!(
                "{} in {} out {}",
                n.interface,
                rate(n.rx_bytes_per_second),
                rate(n.tx_bytes_per_second)
            )
        })
        .collect();
    lines.push(format!("NET  {}", nets.join("  ")));
    lines.push(match &s.ollama {
        Some(o) => process_line("OLLAMA", o),
        None => "OLLAMA no server process known".to_owned(),
    });
    lines.push(String::new());
    let order = match sort {
        ProcessSortArg::Cpu => "by CPU",
        ProcessSortArg::Memory => "by memory",
    };
    lines.push(format!(
        "{:>8} {:>6} {:>8}  {:<16} COMMAND ({order})",
        "PID", "CPU%", "RSS", "NAME"
    ));
    for p in processes {
        let command = if p.command.is_empty() {
            &p.name
        } else {
            &p.command
        };
        lines.push(format!(
            "{:>8} {:>6.1} {:>8}  {:<16} {command}",
            p.pid,
            p.cpu_percent,
            human_size(p.rss_bytes),
            p.name
        ));
    }
    lines
}

/// Lines that fit a `width`-column terminal.
fn fit_width(line: &str, width: usize) -> String {
    line.chars().take(width).collect()
}

/// The terminal while `sys top` runs: alternate screen, hidden cursor, and
/// keys read one at a time without echo. Dropping it restores everything.
struct Terminal {
    saved: Option<rustix::termios::Termios>,
}

impl Terminal {
    fn enter() -> Self {
        use rustix::termios::{
            LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr,
        };
        let stdin = std::io::stdin();
        let saved = if stdin.is_terminal() {
            tcgetattr(&stdin).ok().and_then(|saved| {
                let mut keys = saved.clone();
                // Keep ISIG: Ctrl-C stays a signal, which the loop turns
                // into a clean exit.
                keys.local_modes -= LocalModes::ICANON | LocalModes::ECHO;
                keys.special_codes[SpecialCodeIndex::VMIN] = 1;
                keys.special_codes[SpecialCodeIndex::VTIME] = 0;
                tcsetattr(&stdin, OptionalActions::Now, &keys)
                    .ok()
                    .map(|()| saved)
            })
        } else {
            None
        };
        // Alternate screen, cursor hidden.
        let _ = emit("\x1b[?1049h\x1b[?25l");
        Self { saved }
    }

    fn size() -> (usize, usize) {
        rustix::termios::tcgetwinsize(std::io::stdout())
            .ok()
            .filter(|size| size.ws_col > 0 && size.ws_row > 0)
            .map_or((100, 40), |size| {
                (usize::from(size.ws_col), usize::from(size.ws_row))
            })
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = emit("\x1b[?25h\x1b[?1049l");
        if let Some(saved) = &self.saved {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                saved,
            );
        }
    }
}

/// Keys typed while `sys top` runs, from a thread blocked on stdin (the
/// process exits without waiting for it).
fn keys() -> mpsc::UnboundedReceiver<u8> {
    let (tx, rx) = mpsc::unbounded_channel();
    if std::io::stdin().is_terminal() {
        std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            let mut stdin = std::io::stdin();
            while let Ok(1) = stdin.read(&mut byte) {
                if tx.send(byte[0]).is_err() {
                    return;
                }
            }
        });
    }
    rx
}

/// `omnipanel sys top`
async fn top(
    client: &Client,
    mut system: System,
    args: TopArgs,
    json: bool,
) -> Result<(), Failure> {
    let interval_ms = u32::try_from(args.interval.as_millis()).unwrap_or(u32::MAX);
    let mut stream = rpc(
        client,
        system
            .stream_metrics(pb::StreamMetricsRequest { interval_ms })
            .await,
    )?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|err| Failure::Other(format!("cannot handle Ctrl-C: {err}")))?;
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|err| Failure::Other(format!("cannot handle SIGTERM: {err}")))?;
    let live = !json && std::io::stdout().is_terminal();
    let terminal = live.then(Terminal::enter);
    let mut keys = keys();
    let mut keys_open = true;
    let mut sort = args.sort;
    let mut frames = 0u64;
    let mut latest: Option<pb::Snapshot> = None;
    loop {
        let redraw = tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            key = keys.recv(), if keys_open => match key {
                // q, Q, Ctrl-C (when it arrives as a byte), Esc.
                Some(b'q' | b'Q' | 3 | 27) => break,
                Some(b'c' | b'C') => { sort = ProcessSortArg::Cpu; true }
                Some(b'm' | b'M') => { sort = ProcessSortArg::Memory; true }
                Some(_) => false,
                None => { keys_open = false; false }
            },
            message = stream.message() => match message {
                Ok(Some(message)) => {
                    latest = message.snapshot;
                    frames += 1;
                    true
                }
                Ok(None) => break,
                Err(status) => {
                    drop(terminal);
                    return Err(Failure::Client(client.error(status)));
                }
            },
        };
        let Some(snapshot) = latest.as_ref().filter(|_| redraw) else {
            continue;
        };
        if json {
            print_json(snapshot)?;
        } else {
            let (width, height) = Terminal::size();
            // Ten header lines above the process list.
            let fitting = u32::try_from(height.saturating_sub(11).max(1)).unwrap_or(1);
            let limit = args.processes.unwrap_or(if live { fitting } else { 10 });
            let processes = rpc(
                client,
                system
                    .list_processes(pb::ListProcessesRequest {
                        sort: sort_to_proto(sort).into(),
                        limit,
                    })
                    .await,
            )?;
            let lines = top_frame(snapshot, &processes.processes, sort);
            // Piped output keeps whole lines up to a generous width.
            let width = if live { width } else { 200 };
            let text = if live {
                // Home, each line cleared to its end, then the rest of the
                // screen cleared: redrawn in place without flicker.
                let mut text = String::from("\x1b[H");
                for line in lines.iter().take(height) {
                    text.push_str(&fit_width(line, width));
                    text.push_str("\x1b[K\r\n");
                }
                text.push_str("\x1b[J");
                text
            } else {
                let mut text = String::new();
                for line in &lines {
                    text.push_str(&fit_width(line, width));
                    text.push('\n');
                }
                text.push('\n');
                text
            };
            emit(&text)?;
        }
        if args.count.is_some_and(|count| frames >= count) {
            break;
        }
    }
    drop(terminal);
    Ok(())
}

/// `omnipanel alerts ...`
pub async fn alerts(command: AlertsCommand, json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let mut system = client.system();
    match command {
        AlertsCommand::Ls {
            limit,
            before,
            active,
        } => {
            let response = rpc(
                &client,
                system
                    .list_alerts(pb::ListAlertsRequest {
                        limit,
                        before_id: before.unwrap_or(0),
                        active_only: active,
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            if response.alerts.is_empty() {
                outln!("no alerts")?;
            }
            for alert in &response.alerts {
                outln!("{}", alert_line(alert))?;
            }
            if response.next_before_id != 0 {
                outln!(
                    "(older: omnipanel alerts ls --before {})",
                    response.next_before_id
                )?;
            }
            Ok(())
        }
        AlertsCommand::Watch => watch(&client, system, json).await,
        AlertsCommand::Thresholds(args) => thresholds(&client, system, args.command, json).await,
    }
}

fn value_text(metric: &str, value: f64) -> String {
    if metric.ends_with("_bytes") {
        // Byte counts are whole and far below 2^63.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bytes = value.max(0.0) as u64;
        human_size(bytes)
    } else if metric.ends_with("_percent") {
        format!("{value:.1} %")
    } else if metric.ends_with("_celsius") {
        format!("{value:.0} °C")
    } else {
        format!("{value:.2}")
    }
}

fn alert_line(alert: &pb::Alert) -> String {
    let active = pb::AlertState::try_from(alert.state) == Ok(pb::AlertState::Active);
    let mut line = format!(
        "#{:<5} {:<7} {}  {}",
        alert.id,
        if active { "ACTIVE" } else { "cleared" },
        timestamp(alert.raised_unix_ms),
        alert.message
    );
    if alert.peak_value != alert.value {
        line.push_str(&format!(
            " (worst {})",
            value_text(&alert.metric, alert.peak_value)
        ));
    }
    if !active {
        let lasted = u64::try_from((alert.cleared_unix_ms - alert.raised_unix_ms).max(0) / 1000)
            .unwrap_or_default();
        line.push_str(&format!(
            "; cleared {} after {}: {}",
            relative_time(alert.cleared_unix_ms),
            duration_secs(lasted),
            alert.clear_reason
        ));
    }
    line
}

async fn watch(client: &Client, mut system: System, json: bool) -> Result<(), Failure> {
    let mut stream = rpc(client, system.watch_alerts(pb::WatchAlertsRequest {}).await)?;
    while let Some(item) = stream
        .message()
        .await
        .map_err(|status| client.error(status))?
    {
        if json {
            print_json(&item)?;
            continue;
        }
        let alert = item.alert.unwrap_or_default();
        let text = match pb::AlertChange::try_from(item.change) {
            Ok(pb::AlertChange::Active) => format!("active   #{} {}", alert.id, alert.message),
            Ok(pb::AlertChange::Raised) => format!(
                "{} RAISED  #{} {}",
                timestamp(alert.raised_unix_ms),
                alert.id,
                alert.message
            ),
            Ok(pb::AlertChange::Cleared) => format!(
                "{} cleared #{} {} ({}; now {})",
                timestamp(alert.cleared_unix_ms),
                alert.id,
                alert.metric,
                alert.clear_reason,
                value_text(&alert.metric, alert.cleared_value)
            ),
            _ => format!("#{} {}", alert.id, alert.message),
        };
        emit(&format!("{text}\n"))?;
    }
    Ok(())
}

/// `>`/above or `<`/below.
fn parse_op(op: &str) -> Result<pb::Comparison, Failure> {
    match op.trim().to_ascii_lowercase().as_str() {
        ">" | "gt" | "above" | ">=" => Ok(pb::Comparison::Above),
        "<" | "lt" | "below" | "<=" => Ok(pb::Comparison::Below),
        other => Err(Failure::Other(format!(
            "{other:?} is not a comparison; use above (or '>') or below (or '<')"
        ))),
    }
}

/// "90", "90%", "8GB", "512MiB".
fn parse_value(text: &str) -> Result<f64, Failure> {
    let trimmed = text.trim();
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(number_end);
    let scale = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "%" | "b" | "°c" | "c" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(Failure::Other(format!(
                "{text:?}: unknown unit {other:?}; write e.g. 90, 90%, 8GB"
            )));
        }
    };
    number
        .parse::<f64>()
        .map(|n| n * scale)
        .map_err(|_| Failure::Other(format!("{text:?} is not a number")))
}

async fn thresholds(
    client: &Client,
    mut system: System,
    command: Option<ThresholdsCommand>,
    json: bool,
) -> Result<(), Failure> {
    let Some(command) = command else {
        let response = rpc(
            client,
            system.get_thresholds(pb::GetThresholdsRequest {}).await,
        )?;
        if json {
            return print_json(&response);
        }
        print_thresholds(&response)?;
        return Ok(());
    };
    if let ThresholdsCommand::Reset = command {
        let response = rpc(
            client,
            system
                .set_thresholds(pb::SetThresholdsRequest {
                    reset_to_defaults: true,
                    ..pb::SetThresholdsRequest::default()
                })
                .await,
        )?;
        if json {
            return print_json(&response);
        }
        outln!("back to the built-in thresholds:")?;
        print_threshold_table(&response.thresholds)?;
        return Ok(());
    }
    // Read, change, write with the version read: a concurrent change is
    // refused by the agent (ABORTED) and the edit is redone on the new set.
    for _ in 0..3 {
        let current = rpc(
            client,
            system.get_thresholds(pb::GetThresholdsRequest {}).await,
        )?;
        let mut set = current.thresholds.clone();
        match &command {
            ThresholdsCommand::Set {
                metric,
                op,
                value,
                hold,
                clear_below,
                clear_above,
            } => {
                let comparison = parse_op(op)?;
                let clear = match (comparison, clear_below, clear_above) {
                    (pb::Comparison::Above, Some(_), _) | (pb::Comparison::Below, _, Some(_)) => {
                        clear_below.as_deref().or(clear_above.as_deref())
                    }
                    (_, None, None) => None,
                    (pb::Comparison::Above, None, Some(_)) => {
                        return Err(Failure::Other(
                            "an \"above\" threshold clears below its limit: use --clear-below"
                                .into(),
                        ));
                    }
                    _ => {
                        return Err(Failure::Other(
                            "a \"below\" threshold clears above its limit: use --clear-above"
                                .into(),
                        ));
                    }
                };
                let threshold = pb::Threshold {
                    metric: metric.clone(),
                    comparison: comparison.into(),
                    value: parse_value(value)?,
                    hold_ms: i64::try_from(hold.as_millis()).unwrap_or(i64::MAX),
                    clear_value: clear.map(parse_value).transpose()?,
                };
                match set
                    .iter_mut()
                    .find(|t| t.metric == *metric && t.comparison == threshold.comparison)
                {
                    Some(existing) => *existing = threshold,
                    None => set.push(threshold),
                }
            }
            ThresholdsCommand::Rm { metric, op } => {
                let comparison = op.as_deref().map(parse_op).transpose()?;
                let before = set.len();
                set.retain(|t| {
                    !(t.metric == *metric
                        && comparison.is_none_or(|c| t.comparison == i32::from(c)))
                });
                if set.len() == before {
                    return Err(Failure::Other(format!(
                        "no threshold on {metric} to remove"
                    )));
                }
            }
            ThresholdsCommand::Reset => {}
        }
        let result = system
            .set_thresholds(pb::SetThresholdsRequest {
                thresholds: set,
                reset_to_defaults: false,
                expected_version: current.version,
            })
            .await;
        match result {
            Err(status) if status.code() == tonic::Code::Aborted => continue,
            result => {
                let response = rpc(client, result)?;
                if json {
                    return print_json(&response);
                }
                print_threshold_table(&response.thresholds)?;
                return Ok(());
            }
        }
    }
    Err(Failure::Other(
        "the thresholds kept changing while this edit was made; try again".into(),
    ))
}

fn op_symbol(comparison: i32) -> &'static str {
    match pb::Comparison::try_from(comparison) {
        Ok(pb::Comparison::Above) => ">",
        Ok(pb::Comparison::Below) => "<",
        _ => "?",
    }
}

fn print_threshold_table(thresholds: &[pb::Threshold]) -> Result<(), Failure> {
    if thresholds.is_empty() {
        return outln!("no thresholds: alerts never fire");
    }
    let rows: Vec<Vec<String>> = thresholds
        .iter()
        .map(|t| {
            let hold = u64::try_from(t.hold_ms).unwrap_or_default();
            vec![
                t.metric.clone(),
                op_symbol(t.comparison).to_owned(),
                value_text(&t.metric, t.value),
                if hold == 0 {
                    "-".to_owned()
                } else {
                    humantime::format_duration(Duration::from_millis(hold)).to_string()
                },
                t.clear_value
                    .map_or_else(|| "-".to_owned(), |c| value_text(&t.metric, c)),
            ]
        })
        .collect();
    print_table(&["METRIC", "OP", "VALUE", "FOR", "CLEARS AT"], &rows)?;
    Ok(())
}

fn print_thresholds(response: &pb::GetThresholdsResponse) -> Result<(), Failure> {
    if response.alerts_enabled {
        outln!(
            "alerts are on; thresholds are checked every {}{}",
            humantime::format_duration(Duration::from_millis(u64::from(
                response.alert_interval_ms
            ))),
            if response.defaults {
                " (built-in thresholds)"
            } else {
                ""
            }
        )?;
    } else {
        outln!("alerts are off (`omnipanel settings set system.alerts true` turns them on)")?;
    }
    outln!()?;
    print_threshold_table(&response.thresholds)?;
    outln!()?;
    outln!("metrics:")?;
    let rows: Vec<Vec<String>> = response
        .metrics
        .iter()
        .map(|m| {
            vec![
                format!("  {}", m.name),
                if m.unit.is_empty() {
                    "-".to_owned()
                } else {
                    m.unit.clone()
                },
                m.description.clone(),
            ]
        })
        .collect();
    print_table(&["  NAME", "UNIT", "WHAT"], &rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_accept_percent_and_units() -> Result<(), String> {
        let parse = |t: &str| parse_value(t).map_err(|e| e.to_string());
        assert_eq!(parse("90")?, 90.0);
        assert_eq!(parse("90%")?, 90.0);
        assert_eq!(parse(" 2.5 GB")?, 2.5e9);
        assert_eq!(parse("1GiB")?, 1_073_741_824.0);
        assert!(parse("ten").is_err());
        assert!(parse("5 parsecs").is_err());
        Ok(())
    }

    #[test]
    fn comparisons_in_words_or_symbols() {
        assert!(matches!(parse_op(">"), Ok(pb::Comparison::Above)));
        assert!(matches!(parse_op("Below"), Ok(pb::Comparison::Below)));
        assert!(parse_op("=").is_err());
    }

    #[test]
    fn bars_are_bounded() {
        assert_eq!(bar(50.0, 4), "[##..]");
        assert_eq!(bar(150.0, 4), "[####]");
        assert_eq!(bar(-3.0, 2), "[..]");
    }

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
