//! Turning agent responses into text for people or JSON for programs:
//! times, durations, and the proto3 JSON mapping for `--json`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::Failure;

/// Print `value` as one line of JSON.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string(value)
        .map_err(|err| Failure::Other(format!("cannot encode JSON: {err}")))?;
    println!("{text}");
    Ok(())
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
    humantime::format_duration(Duration::from_secs(elapsed.as_secs())).to_string()
}
