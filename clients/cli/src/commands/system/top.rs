//! `omnipanel sys top`: a live view redrawn in place with plain ANSI
//! escapes. The terminal goes into no-echo, no-line-buffering mode so `q`
//! quits at once, and is restored on every way out, Ctrl-C included.

use std::io::{IsTerminal, Read};

use omnipanel_client::{Client, display};
use omnipanel_proto::v1 as pb;
use tokio::{
    signal::unix::{SignalKind, signal},
    sync::mpsc,
};

use super::{ProcessSortArg, System, TopArgs, gpu_lines, pct, process_line, sort_to_proto};
use crate::{
    Failure,
    output::{Output, emit},
};

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
        display::timestamp(s.time_unix_ms)
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
        display::bytes(memory.used_bytes),
        display::bytes(memory.total_bytes),
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
                display::bytes(g.memory_used_bytes),
                display::bytes(g.memory_total_bytes),
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
                display::rate_f64(n.rx_bytes_per_second),
                display::rate_f64(n.tx_bytes_per_second)
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
            display::bytes(p.rss_bytes),
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
pub async fn top(
    client: &Client,
    mut system: System,
    args: TopArgs,
    out: Output,
) -> Result<(), Failure> {
    let interval_ms = u32::try_from(args.interval.as_millis()).unwrap_or(u32::MAX);
    let mut stream = client
        .call_stream(system.stream_metrics(pb::StreamMetricsRequest { interval_ms }))
        .await?;
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|err| Failure::Other(format!("cannot handle Ctrl-C: {err}")))?;
    let mut terminate = signal(SignalKind::terminate())
        .map_err(|err| Failure::Other(format!("cannot handle SIGTERM: {err}")))?;
    let live = !out.is_json() && std::io::stdout().is_terminal();
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
                Err(err) => {
                    drop(terminal);
                    return Err(Failure::Client(err));
                }
            },
        };
        let Some(snapshot) = latest.as_ref().filter(|_| redraw) else {
            continue;
        };
        if out.is_json() {
            out.json(snapshot)?;
        } else {
            let (width, height) = Terminal::size();
            // Ten header lines above the process list.
            let fitting = u32::try_from(height.saturating_sub(11).max(1)).unwrap_or(1);
            let limit = args.processes.unwrap_or(if live { fitting } else { 10 });
            let processes = client
                .call(system.list_processes(pb::ListProcessesRequest {
                    sort: sort_to_proto(sort).into(),
                    limit,
                }))
                .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_bounded() {
        assert_eq!(bar(50.0, 4), "[##..]");
        assert_eq!(bar(150.0, 4), "[####]");
        assert_eq!(bar(-3.0, 2), "[..]");
    }
}
