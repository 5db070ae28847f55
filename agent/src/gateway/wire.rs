//! What both wire formats share: reading a JSON body into a request type
//! (a body that is not one is a 400 in the API's shape), timestamps as
//! Ollama writes them (RFC 3339 in UTC), and model options carried as
//! JSON text to the domain.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use serde::de::DeserializeOwned;

use super::reply::{Dialect, Failure};

/// Parse a request body.
pub fn parse<T: DeserializeOwned>(body: &Bytes, dialect: Dialect) -> Result<T, Failure> {
    if body.is_empty() {
        return Err(Failure::bad_request("missing request body").in_dialect(dialect));
    }
    serde_json::from_slice(body)
        .map_err(|err| Failure::bad_request(format!("invalid request: {err}")).in_dialect(dialect))
}

/// Now, as Ollama's `created_at`.
pub fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A time in milliseconds since the epoch, as RFC 3339.
pub fn rfc3339_ms(ms: i64) -> String {
    rfc3339(
        ms.div_euclid(1000),
        (ms.rem_euclid(1000) * 1_000_000) as u32,
    )
}

/// RFC 3339 in UTC with nanoseconds, from the civil calendar (Howard
/// Hinnant's days-to-date algorithm).
pub fn rfc3339(seconds: i64, nanos: u32) -> String {
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// A JSON value as the domain's text fields take it ("" for none).
pub fn json_text(value: Option<&serde_json::Value>) -> String {
    match value {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;

    #[test]
    fn timestamps_are_rfc3339_in_utc() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_709_251_200, 5), "2024-03-01T00:00:00.000000005Z");
        assert_eq!(
            rfc3339_ms(951_782_400_123),
            "2000-02-29T00:00:00.123000000Z"
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_a_400_in_the_api_shape() {
        let failure =
            parse::<serde_json::Value>(&Bytes::from_static(b"{"), Dialect::OpenAi).unwrap_err();
        assert_eq!(failure.status, StatusCode::BAD_REQUEST);
        assert!(failure.body()["error"]["message"].is_string());
    }
}
