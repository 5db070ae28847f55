//! Turning agent responses into text for people or JSON for programs:
//! times, durations, sizes, aligned tables, and the proto3 JSON mapping for
//! `--json`; and the one way out to stdout and stderr (`outln!`, `emit`,
//! `errln!`), which reports a closed pipe instead of panicking.

use std::{
    io::{IsTerminal, Write},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::Serialize;

use crate::Failure;

/// Print `value` as one line of JSON.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let mut text = serde_json::to_string(value)
        .map_err(|err| Failure::Other(format!("cannot encode JSON: {err}")))?;
    text.push('\n');
    emit(&text)
}

// Everything the CLI prints to stdout goes through the functions and macros
// below (clippy's print_stdout and print_stderr lints are denied in main.rs
// to keep it so). `println!` panics on any write error, and Rust ignores
// SIGPIPE, so `omnipanel logs | head -1` used to end in a panic. Here a
// write error is returned instead: a reader that went away (EPIPE, or
// Windows' ERROR_NO_DATA; both are `BrokenPipe`) becomes
// `Failure::OutputClosed`, which `main` turns into a quiet exit with status
// 141, and streaming commands end at their next write. SIGPIPE stays
// ignored: restoring its default would also kill the CLI silently when the
// agent closes the socket under a write (std's Unix sockets write without
// MSG_NOSIGNAL), where it should report the error or reconnect.

/// `println!` that returns a write error instead of panicking:
/// `outln!("{x}")?`.
macro_rules! outln {
    () => {
        $crate::render::emit("\n")
    };
    ($($arg:tt)*) => {
        $crate::render::emit_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// `print!` that returns a write error instead of panicking (and flushes,
/// so a prompt shows at once).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::render::emit_fmt(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// `eprintln!` that never panics: when stderr cannot be written to there
/// is nobody left to tell, so the error is dropped and the command goes on
/// (or ends at its next write to stdout).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::render::report_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use errln;

/// Write `text` to stdout at once (no line buffering), for streamed output.
/// A reader that went away (`| head`) ends the command quietly, where
/// `print!` would panic.
pub fn emit(text: &str) -> Result<(), Failure> {
    emit_bytes(text.as_bytes())
}

/// Write one line (a newline is added) at once.
pub fn emit_line(line: &str) -> Result<(), Failure> {
    emit(&format!("{line}\n"))
}

/// Write `lines`, each ending in a newline, at once.
pub fn emit_lines(lines: &[String]) -> Result<(), Failure> {
    let mut text = String::new();
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    emit(&text)
}

/// Write raw bytes to stdout at once (`files cat`, completion scripts),
/// with the same handling of a closed pipe as [`emit`].
pub fn emit_bytes(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(write_failure)
}

/// Formatted output for [`outln!`] and [`out!`], written and flushed at
/// once like [`emit`].
pub fn emit_fmt(args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(write_failure)
}

/// Formatted text for [`errln!`] on stderr; write errors are dropped.
pub fn report_fmt(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// What a failed write to stdout means for the command.
fn write_failure(err: std::io::Error) -> Failure {
    match err.kind() {
        std::io::ErrorKind::BrokenPipe => Failure::OutputClosed,
        _ => Failure::Other(format!("cannot write to stdout: {err}")),
    }
}

/// Whether to colour what goes to stdout: only for a terminal, and never
/// when the user set `NO_COLOR` (https://no-color.org).
pub fn stdout_color() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// ANSI styles for highlighting; only written when [`stdout_color`] says so.
pub mod style {
    /// Bold.
    pub const BOLD: &str = "\x1b[1m";
    /// Bold red, ripgrep's colour for matches.
    pub const MATCH: &str = "\x1b[1;31m";
    /// Magenta, ripgrep's colour for paths.
    pub const PATH: &str = "\x1b[35m";
    /// Green, ripgrep's colour for line numbers.
    pub const LINE: &str = "\x1b[32m";
    /// Back to normal.
    pub const RESET: &str = "\x1b[0m";
}

/// `text` in the SGR colour `sgr` (e.g. "32" for green) when `on`.
pub fn paint(text: &str, sgr: &str, on: bool) -> String {
    if on {
        format!("\x1b[{sgr}m{text}{}", style::RESET)
    } else {
        text.to_owned()
    }
}

/// A Unix-epoch millisecond timestamp as RFC 3339 (UTC, seconds).
pub fn timestamp(ms: i64) -> String {
    if ms <= 0 {
        return "never".to_owned();
    }
    let time = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or_default());
    humantime::format_rfc3339_seconds(time).to_string()
}

/// Time since a Unix-epoch millisecond timestamp, rounded to seconds.
pub fn elapsed_since(ms: i64) -> String {
    let start = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or_default());
    let elapsed = SystemTime::now().duration_since(start).unwrap_or_default();
    duration_secs(elapsed.as_secs())
}

/// A number of seconds as humantime writes it, e.g. "1h 2m 3s".
pub fn duration_secs(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// A byte count in decimal units the way Ollama writes them: "512 B",
/// "637 MB", "1.3 GB" (one decimal only below 10, so columns stay short).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    // 999.6 MB would print as "1000 MB"; move up a unit before rounding does.
    // Precision loss above 2^53 bytes is irrelevant for display.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64 / 1000.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if value < 999.5 {
            break;
        }
        value /= 1000.0;
        unit = next;
    }
    if value >= 10.0 {
        format!("{value:.0} {unit}")
    } else {
        let text = format!("{value:.1}");
        let text = text.strip_suffix(".0").unwrap_or(&text);
        format!("{text} {unit}")
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A timestamp relative to now in words: "3 days ago", "in 4 minutes",
/// "just now". Coarse on purpose: listings only need the order of magnitude.
pub fn relative_time(ms: i64) -> String {
    relative_to(ms, now_ms())
}

fn relative_to(ms: i64, now: i64) -> String {
    if ms <= 0 {
        return "never".to_owned();
    }
    let delta_secs = (ms - now) / 1000;
    let abs = delta_secs.unsigned_abs();
    if abs < 5 {
        return if delta_secs <= 0 {
            "just now"
        } else {
            "in a moment"
        }
        .to_owned();
    }
    let (count, unit) = match abs {
        0..60 => (abs, "second"),
        60..3_600 => (abs / 60, "minute"),
        3_600..86_400 => (abs / 3_600, "hour"),
        86_400..604_800 => (abs / 86_400, "day"),
        // Months before weeks would skip "5 weeks"; 30-day months are close
        // enough for "modified 2 months ago".
        604_800..2_592_000 => (abs / 604_800, "week"),
        2_592_000..31_536_000 => (abs / 2_592_000, "month"),
        _ => (abs / 31_536_000, "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if delta_secs < 0 {
        format!("{count} {unit}{plural} ago")
    } else {
        format!("in {count} {unit}{plural}")
    }
}

/// `part` as a whole percentage of `whole` (0 when `whole` is 0).
pub fn percent(part: u64, whole: u64) -> u64 {
    if whole == 0 {
        return 0;
    }
    u64::try_from(u128::from(part.min(whole)) * 100 / u128::from(whole)).unwrap_or(100)
}

/// Print rows under a header, each column padded to its widest cell.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            text.push_str(cell);
            if i < last {
                let pad = width.saturating_sub(cell.chars().count()) + 3;
                text.push_str(&" ".repeat(pad));
            }
        }
        outln!("{}", text.trim_end())
    };
    line(header.to_vec())?;
    for row in rows {
        line(row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_ollama() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(999), "999 B");
        assert_eq!(human_size(1_000), "1 KB");
        assert_eq!(human_size(637_000_000), "637 MB");
        assert_eq!(human_size(1_321_098_329), "1.3 GB");
        assert_eq!(human_size(2_000_000_000), "2 GB");
        assert_eq!(human_size(42_500_000_000), "42 GB");
        assert_eq!(human_size(999_600_000), "1 GB");
        assert_eq!(human_size(u64::MAX), "18447 PB");
    }

    #[test]
    fn relative_times_in_words() {
        let now = 1_700_000_000_000;
        assert_eq!(relative_to(now, now), "just now");
        assert_eq!(relative_to(now + 2_000, now), "in a moment");
        assert_eq!(relative_to(now - 30_000, now), "30 seconds ago");
        assert_eq!(relative_to(now - 60_000, now), "1 minute ago");
        assert_eq!(relative_to(now - 3 * 86_400_000, now), "3 days ago");
        assert_eq!(relative_to(now + 4 * 60_000, now), "in 4 minutes");
        assert_eq!(relative_to(now - 400 * 86_400_000, now), "1 year ago");
        assert_eq!(relative_to(0, now), "never");
    }

    #[test]
    fn percent_is_bounded() {
        assert_eq!(percent(1, 0), 0);
        assert_eq!(percent(50, 200), 25);
        assert_eq!(percent(300, 200), 100);
        assert_eq!(percent(u64::MAX, u64::MAX), 100);
    }
}
