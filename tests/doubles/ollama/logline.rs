//! Server log lines on stderr, shaped like Ollama's own (Go `slog` text
//! records and gin's access log) so a supervisor capturing them sees
//! familiar text.
//!
//! Writes go straight to the unbuffered stderr handle, so a test reading
//! the pipe sees each line at once. Write errors are ignored on purpose: a
//! supervisor that closed our stderr must not be able to kill the server.

use std::{io::Write, time::Duration};

use crate::clock;

/// An `INFO` record.
pub fn info(msg: &str) {
    record("INFO", msg);
}

/// A `WARN` record.
pub fn warn(msg: &str) {
    record("WARN", msg);
}

fn record(level: &str, msg: &str) {
    line(&format!(
        "time={} level={level} source=fake-ollama msg={msg:?}",
        clock::rfc3339_millis(clock::now_nanos())
    ));
}

/// One access-log line per request, in gin's layout:
/// `[GIN] 2024/06/04 - 14:38:31 | 200 |    1.2ms |  127.0.0.1 | POST  "/api/pull"`.
pub fn access(status: u16, latency: Duration, client: &str, method: &str, path: &str) {
    // Rust's `Debug` for `Duration` ("1.234ms", "56.7µs") matches Go's
    // `Duration.String` closely enough for a log.
    let latency = format!("{latency:?}");
    line(&format!(
        "[GIN] {} | {status:>3} | {latency:>13} | {client:>15} | {method:<8}{path:?}",
        clock::gin_stamp(clock::now_nanos())
    ));
}

/// A line that is not a log record (the crash banner, errors at startup).
pub fn line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}
