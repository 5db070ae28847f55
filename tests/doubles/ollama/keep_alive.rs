//! `keep_alive` values the way Ollama's `api.Duration` decodes them: a JSON
//! number is seconds, a string is a Go duration (`"10m"`, `"1h30m"`), and
//! anything negative means "keep loaded forever". The same parser serves
//! the `OLLAMA_KEEP_ALIVE` environment variable.

use std::time::Duration;

use serde_json::Value;

use crate::clock;

/// How long a model stays loaded after a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    Forever,
    For(Duration),
}

/// Ollama's default when neither the request nor `OLLAMA_KEEP_ALIVE` says.
pub const DEFAULT: KeepAlive = KeepAlive::For(Duration::from_secs(5 * 60));

impl KeepAlive {
    /// `0` / `"0"` / `"0s"`: unload as soon as the request is done.
    pub fn is_zero(self) -> bool {
        self == KeepAlive::For(Duration::ZERO)
    }

    /// When a model loaded at `now` expires. Forever is now plus Go's
    /// largest duration, which is what Ollama itself reports in `/api/ps`.
    pub fn expires_at(self, now: u128) -> u128 {
        match self {
            KeepAlive::Forever => clock::later(now, Duration::from_nanos(i64::MAX as u64)),
            KeepAlive::For(d) => clock::later(now, d),
        }
    }
}

/// Decodes a request's `keep_alive` (absent or `null`: `default`). The
/// error text is what the fake answers with a 400.
pub fn from_json(value: Option<&Value>, default: KeepAlive) -> Result<KeepAlive, String> {
    match value {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => {
            let secs = n.as_f64().unwrap_or(0.0);
            if secs < 0.0 {
                return Ok(KeepAlive::Forever);
            }
            // Past what a Go duration can hold is as good as forever.
            Ok(Duration::try_from_secs_f64(secs).map_or(KeepAlive::Forever, KeepAlive::For))
        }
        Some(Value::String(s)) => parse_text(s),
        Some(other) => Err(format!("Unsupported type: '{}'", go_type_name(other))),
    }
}

/// A textual keep-alive: a Go duration, or (as `OLLAMA_KEEP_ALIVE` also
/// allows) a bare integer number of seconds, so `"-1"` means forever.
pub fn parse_text(text: &str) -> Result<KeepAlive, String> {
    let nanos = match parse_go_duration(text) {
        Ok(nanos) => nanos,
        Err(err) => match text.trim().parse::<i64>() {
            Ok(secs) => i128::from(secs) * 1_000_000_000,
            Err(_) => return Err(err),
        },
    };
    if nanos < 0 {
        return Ok(KeepAlive::Forever);
    }
    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
    Ok(KeepAlive::For(Duration::from_nanos(nanos)))
}

/// Go's `time.ParseDuration`, with its error messages, in signed
/// nanoseconds.
pub fn parse_go_duration(text: &str) -> Result<i128, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(f) => {
                let len = f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len());
                f.split_at(len)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(invalid());
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("time: missing unit in duration {text:?}"));
        }
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        let whole: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut value = whole.checked_mul(scale).ok_or_else(invalid)?;
        // Fractions are exact only to the nanosecond, as in Go.
        let mut place = scale;
        for digit in frac_part.bytes().take(30) {
            place /= 10;
            value += i128::from(digit - b'0') * place;
        }
        total = total.checked_add(value).ok_or_else(invalid)?;
        if total > i128::from(i64::MAX) {
            return Err(invalid());
        }
        rest = after;
    }
    Ok(if negative { -total } else { total })
}

/// The Go type name Ollama's error message uses for an unexpected JSON type.
fn go_type_name(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "bool",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "<nil>",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secs(s: u64) -> KeepAlive {
        KeepAlive::For(Duration::from_secs(s))
    }

    #[test]
    fn numbers_are_seconds() {
        let decode = |v: Value| from_json(Some(&v), DEFAULT);
        assert_eq!(decode(json!(0)), Ok(secs(0)));
        assert!(decode(json!(0)).is_ok_and(KeepAlive::is_zero));
        assert_eq!(decode(json!(30)), Ok(secs(30)));
        assert_eq!(
            decode(json!(1.5)),
            Ok(KeepAlive::For(Duration::from_millis(1500)))
        );
        assert_eq!(decode(json!(-1)), Ok(KeepAlive::Forever));
        assert_eq!(decode(json!(1e300)), Ok(KeepAlive::Forever));
        assert_eq!(from_json(None, DEFAULT), Ok(DEFAULT));
        assert_eq!(from_json(Some(&Value::Null), secs(7)), Ok(secs(7)));
        assert_eq!(decode(json!(true)), Err("Unsupported type: 'bool'".into()));
    }

    #[test]
    fn strings_are_go_durations() {
        assert_eq!(parse_text("0"), Ok(secs(0)));
        assert_eq!(parse_text("0s"), Ok(secs(0)));
        assert_eq!(parse_text("10m"), Ok(secs(600)));
        assert_eq!(parse_text("1h"), Ok(secs(3600)));
        assert_eq!(parse_text("1h30m"), Ok(secs(5400)));
        assert_eq!(
            parse_text("1.5s"),
            Ok(KeepAlive::For(Duration::from_millis(1500)))
        );
        assert_eq!(
            parse_text("250ms"),
            Ok(KeepAlive::For(Duration::from_millis(250)))
        );
        assert_eq!(parse_text("-1m"), Ok(KeepAlive::Forever));
        assert_eq!(parse_text("-1"), Ok(KeepAlive::Forever));
        assert_eq!(parse_text("300"), Ok(secs(300)));
        assert_eq!(
            parse_text("5x"),
            Err(r#"time: unknown unit "x" in duration "5x""#.into())
        );
        assert_eq!(
            parse_text("1.5"),
            Err(r#"time: missing unit in duration "1.5""#.into())
        );
        assert_eq!(parse_text(""), Err(r#"time: invalid duration """#.into()));
        assert_eq!(
            parse_text("forever"),
            Err(r#"time: invalid duration "forever""#.into())
        );
        assert!(parse_text("999999999h").is_err());
    }
}
