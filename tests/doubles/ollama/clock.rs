//! Wall-clock timestamps in the shapes Ollama puts on the wire and in its
//! logs. There is no date crate in this package, so the civil-date
//! conversion lives here; everything is UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch. `u128` because "loaded forever" is
/// stored as now + Go's largest duration (~292 years), like Ollama does.
pub fn now_nanos() -> u128 {
    // A clock before 1970 is a broken machine; treating it as the epoch
    // keeps the fake answering instead of failing every request.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Nanoseconds after `nanos` by `after`, saturating rather than wrapping.
pub fn later(nanos: u128, after: Duration) -> u128 {
    nanos.saturating_add(after.as_nanos())
}

/// Go's `time.RFC3339Nano` in UTC, the format `encoding/json` gives
/// `time.Time`: trailing zeros of the fraction are dropped, as is an
/// all-zero fraction.
pub fn rfc3339(nanos: u128) -> String {
    let (date, frac) = civil(nanos);
    let mut out = date;
    if frac != 0 {
        let digits = format!("{frac:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Millisecond precision, as Go's `slog` text handler prints `time=`.
pub fn rfc3339_millis(nanos: u128) -> String {
    let (date, frac) = civil(nanos);
    format!("{date}.{:03}Z", frac / 1_000_000)
}

/// gin's access-log stamp: `2006/01/02 - 15:04:05`.
pub fn gin_stamp(nanos: u128) -> String {
    let (date, _) = civil(nanos);
    // `date` is `YYYY-MM-DDTHH:MM:SS`; gin swaps the separators.
    let (day, time) = date.split_once('T').unwrap_or((date.as_str(), ""));
    format!("{} - {time}", day.replace('-', "/"))
}

/// `YYYY-MM-DDTHH:MM:SS` plus the nanosecond fraction.
fn civil(nanos: u128) -> (String, u32) {
    let secs = nanos / 1_000_000_000;
    let frac = (nanos % 1_000_000_000) as u32;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    (
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}"),
        frac,
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(1_717_511_911_837_530_000),
            "2024-06-04T14:38:31.83753Z"
        );
        assert_eq!(
            rfc3339_millis(1_717_511_911_837_530_000),
            "2024-06-04T14:38:31.837Z"
        );
        assert_eq!(
            gin_stamp(1_717_511_911_000_000_000),
            "2024/06/04 - 14:38:31"
        );
        // Leap day and the far future used for "forever".
        assert_eq!(rfc3339(951_782_400_000_000_000), "2000-02-29T00:00:00Z");
        let forever = later(
            1_717_511_911_000_000_000,
            Duration::from_nanos(i64::MAX as u64),
        );
        assert!(rfc3339(forever).starts_with("2316-"));
    }
}
