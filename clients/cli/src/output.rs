//! The one way out of the CLI: [`Output`] shows a command's result as text
//! for people or as JSON for programs (`--json`), and every write to stdout
//! and stderr (`outln!`, `out!`, `errln!`, [`emit`]) reports a closed pipe
//! instead of panicking. Also the terminal's colours. The words and numbers
//! themselves come from `omnipanel_client::display`.

use std::io::{IsTerminal, Write};

use omnipanel_client::display;
use serde::Serialize;

use crate::Failure;

/// How a command shows its results: text for people, or one JSON object
/// per result (the proto3 JSON mapping) with `--json`. Copied into every
/// command; its writes go through [`emit`], so a closed pipe ends the
/// command with [`Failure::OutputClosed`].
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    /// Text, or JSON when `json`.
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    /// Whether results are shown as JSON (`--json`).
    pub fn is_json(self) -> bool {
        self.json
    }

    /// `value` as one line of JSON.
    pub fn json<T: Serialize>(self, value: &T) -> Result<(), Failure> {
        let mut text = serde_json::to_string(value)
            .map_err(|err| Failure::Other(format!("cannot encode JSON: {err}")))?;
        text.push('\n');
        emit(&text)
    }

    /// `value` as JSON with `--json`, else as `text` writes it for people.
    pub fn show<T: Serialize>(
        self,
        value: &T,
        text: impl FnOnce(&T) -> Result<(), Failure>,
    ) -> Result<(), Failure> {
        if self.json {
            self.json(value)
        } else {
            text(value)
        }
    }

    /// Rows under a header, each column padded to its widest cell.
    pub fn table(self, header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
        emit_lines(&display::table(header, rows))
    }
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
        $crate::output::emit("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::emit_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use outln;

/// `print!` that returns a write error instead of panicking (and flushes,
/// so a prompt shows at once).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::emit_fmt(format_args!($($arg)*))
    };
}
pub(crate) use out;

/// `eprintln!` that never panics: when stderr cannot be written to there
/// is nobody left to tell, so the error is dropped and the command goes on
/// (or ends at its next write to stdout).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::report_fmt(format_args!("{}\n", format_args!($($arg)*)))
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
