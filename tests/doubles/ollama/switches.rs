//! The environment `fake-ollama` reads once at startup: Ollama's own
//! variables (`OLLAMA_HOST`, `OLLAMA_MODELS`, `OLLAMA_KEEP_ALIVE`) and the
//! `FAKE_OLLAMA_*` switches that make it misbehave on purpose. The list with
//! their meanings is at the top of `main.rs`.

use std::{ffi::OsString, path::PathBuf, time::Duration};

use crate::{
    host::{self, ListenAddr},
    keep_alive::{self, KeepAlive},
    pull::PullConfig,
    server::ReplyFailure,
};

/// What a reply ends with under `FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS` when
/// `FAKE_OLLAMA_REPLY_ERROR` does not say otherwise: Ollama's words when
/// its model runner dies in the middle of a generation.
pub const DEFAULT_REPLY_ERROR: &str = "model runner has unexpectedly stopped, this may be due to resource limitations or an internal error";

/// Default simulated download rate: 512 MiB/s, so `test-small` is done at
/// once and `tinyllama` (~640 MB) takes a little over a second.
pub const DEFAULT_PULL_BYTES_PER_SEC: u64 = 512 * 1024 * 1024;

/// Everything configurable, parsed.
#[derive(Debug, Clone)]
pub struct Switches {
    pub host: ListenAddr,
    pub models_dir: PathBuf,
    pub default_keep_alive: KeepAlive,
    pub crash_after: Option<Duration>,
    pub hang_after: Option<Duration>,
    pub start_delay: Duration,
    pub token_delay: Duration,
    /// Log SIGTERM and carry on (a server that will not stop).
    pub ignore_sigterm: bool,
    pub reply_failure: Option<ReplyFailure>,
    pub pull: PullConfig,
    /// Problems Ollama would only warn about (it falls back to a default).
    pub warnings: Vec<String>,
}

impl Switches {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|key| std::env::var_os(key))
    }

    /// Parses from any variable source; an error names the bad variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<OsString>) -> Result<Self, String> {
        // Unset and empty (or blank) mean the same, as in Ollama.
        let text = |key: &str| -> Result<Option<String>, String> {
            match get(key) {
                None => Ok(None),
                Some(value) => {
                    let value = value
                        .into_string()
                        .map_err(|_| format!("{key} is not valid UTF-8"))?;
                    let value = value.trim();
                    Ok((!value.is_empty()).then(|| value.to_string()))
                }
            }
        };
        let number =
            |key: &str, what: &str, ok: &dyn Fn(f64) -> bool| -> Result<Option<f64>, String> {
                match text(key)? {
                    None => Ok(None),
                    Some(value) => match value.parse::<f64>() {
                        Ok(n) if n.is_finite() && ok(n) => Ok(Some(n)),
                        _ => Err(format!("{key}={value:?}: expected {what}")),
                    },
                }
            };
        let seconds = |key: &str| -> Result<Option<Duration>, String> {
            Ok(number(key, "a number of seconds >= 0", &|n| n >= 0.0)?
                .and_then(|n| Duration::try_from_secs_f64(n).ok()))
        };
        let millis = |key: &str| -> Result<Duration, String> {
            Ok(number(key, "a number of milliseconds >= 0", &|n| n >= 0.0)?
                .and_then(|n| Duration::try_from_secs_f64(n / 1000.0).ok())
                .unwrap_or(Duration::ZERO))
        };

        let mut warnings = Vec::new();
        let host = host::parse(text("OLLAMA_HOST")?.as_deref());
        let models_dir = match get("OLLAMA_MODELS").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match get("HOME").filter(|v| !v.is_empty()) {
                Some(home) => PathBuf::from(home).join(".ollama").join("models"),
                None => return Err("$HOME is not defined".to_string()),
            },
        };
        let default_keep_alive = match text("OLLAMA_KEEP_ALIVE")? {
            None => keep_alive::DEFAULT,
            Some(value) => keep_alive::parse_text(&value).unwrap_or_else(|err| {
                warnings.push(format!(
                    "invalid OLLAMA_KEEP_ALIVE {value:?} ({err}), using the default 5m"
                ));
                keep_alive::DEFAULT
            }),
        };
        let bytes_per_sec = number(
            "FAKE_OLLAMA_PULL_BYTES_PER_SEC",
            "a rate of at least 1 byte per second",
            &|n| n >= 1.0,
        )?
        .map_or(DEFAULT_PULL_BYTES_PER_SEC, |n| n as u64);
        let fail_at_percent = number(
            "FAKE_OLLAMA_PULL_FAIL_AT_PERCENT",
            "a percentage from 0 to 100",
            &|n| (0.0..=100.0).contains(&n),
        )?;
        let flag = |key: &str| -> Result<bool, String> {
            match text(key)?.as_deref() {
                None => Ok(false),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(other) => Err(format!("{key}={other:?}: expected 1 or 0")),
            }
        };
        let fail_once = flag("FAKE_OLLAMA_PULL_FAIL_ONCE")?;
        let reply_failure = number(
            "FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS",
            "a whole number of tokens >= 0",
            &|n| n >= 0.0 && n.fract() == 0.0,
        )?
        .map(|after| ReplyFailure {
            after_tokens: after as usize,
            message: text("FAKE_OLLAMA_REPLY_ERROR")
                .ok()
                .flatten()
                .unwrap_or_else(|| DEFAULT_REPLY_ERROR.to_string()),
        });
        Ok(Self {
            host,
            models_dir,
            default_keep_alive,
            crash_after: seconds("FAKE_OLLAMA_CRASH_AFTER_SECS")?,
            hang_after: seconds("FAKE_OLLAMA_HANG_AFTER_SECS")?,
            start_delay: millis("FAKE_OLLAMA_START_DELAY_MS")?,
            token_delay: millis("FAKE_OLLAMA_TOKEN_DELAY_MS")?,
            ignore_sigterm: flag("FAKE_OLLAMA_IGNORE_SIGTERM")?,
            reply_failure,
            pull: PullConfig {
                bytes_per_sec,
                fail_at_percent,
                fail_once,
            },
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<Switches, String> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_string(), OsString::from(v)))
            .collect();
        Switches::from_lookup(|key| vars.get(key).cloned())
    }

    #[test]
    fn defaults_and_values() -> Result<(), String> {
        let s = parse(&[("HOME", "/home/u")])?;
        assert_eq!(s.host.to_string(), "127.0.0.1:11434");
        assert_eq!(s.models_dir, PathBuf::from("/home/u/.ollama/models"));
        assert_eq!(s.default_keep_alive, keep_alive::DEFAULT);
        assert_eq!((s.crash_after, s.hang_after), (None, None));
        assert_eq!(s.pull.bytes_per_sec, DEFAULT_PULL_BYTES_PER_SEC);
        assert!(s.pull.fail_at_percent.is_none() && !s.pull.fail_once);
        assert!(s.reply_failure.is_none());
        assert!(!s.ignore_sigterm);

        let s = parse(&[
            ("OLLAMA_HOST", "127.0.0.1:0"),
            ("OLLAMA_MODELS", "/m"),
            ("OLLAMA_KEEP_ALIVE", "-1"),
            ("FAKE_OLLAMA_CRASH_AFTER_SECS", "1.5"),
            ("FAKE_OLLAMA_HANG_AFTER_SECS", "0"),
            ("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "1000"),
            ("FAKE_OLLAMA_PULL_FAIL_AT_PERCENT", "50"),
            ("FAKE_OLLAMA_PULL_FAIL_ONCE", "1"),
            ("FAKE_OLLAMA_TOKEN_DELAY_MS", "20"),
            ("FAKE_OLLAMA_START_DELAY_MS", "300"),
            ("FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS", "3"),
            ("FAKE_OLLAMA_IGNORE_SIGTERM", "1"),
        ])?;
        assert!(s.ignore_sigterm);
        assert_eq!(s.host.port, 0);
        assert_eq!(s.models_dir, PathBuf::from("/m"));
        assert_eq!(s.default_keep_alive, KeepAlive::Forever);
        assert_eq!(s.crash_after, Some(Duration::from_millis(1500)));
        assert_eq!(s.hang_after, Some(Duration::ZERO));
        assert_eq!(s.pull.bytes_per_sec, 1000);
        assert_eq!(s.pull.fail_at_percent, Some(50.0));
        assert!(s.pull.fail_once);
        assert_eq!(s.token_delay, Duration::from_millis(20));
        assert_eq!(s.start_delay, Duration::from_millis(300));
        assert_eq!(
            s.reply_failure,
            Some(ReplyFailure {
                after_tokens: 3,
                message: DEFAULT_REPLY_ERROR.to_string()
            })
        );
        let s = parse(&[
            ("HOME", "/h"),
            ("FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS", "0"),
            ("FAKE_OLLAMA_REPLY_ERROR", "boom"),
        ])?;
        assert_eq!(s.reply_failure.map(|f| f.message), Some("boom".to_string()));
        Ok(())
    }

    #[test]
    fn rejects_bad_values() {
        for (key, value) in [
            ("FAKE_OLLAMA_CRASH_AFTER_SECS", "soon"),
            ("FAKE_OLLAMA_HANG_AFTER_SECS", "-1"),
            ("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "0"),
            ("FAKE_OLLAMA_PULL_FAIL_AT_PERCENT", "101"),
            ("FAKE_OLLAMA_PULL_FAIL_ONCE", "maybe"),
            ("FAKE_OLLAMA_IGNORE_SIGTERM", "sometimes"),
            ("FAKE_OLLAMA_TOKEN_DELAY_MS", "x"),
            ("FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS", "1.5"),
            ("FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS", "-1"),
        ] {
            let err = parse(&[("HOME", "/h"), (key, value)])
                .err()
                .unwrap_or_default();
            assert!(err.starts_with(key), "{key}: {err}");
        }
        assert!(parse(&[]).is_err(), "no HOME and no OLLAMA_MODELS");
        let s = parse(&[("HOME", "/h"), ("OLLAMA_KEEP_ALIVE", "bogus")]);
        assert!(s.is_ok_and(|s| s.warnings.len() == 1));
    }
}
