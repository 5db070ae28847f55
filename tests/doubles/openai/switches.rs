//! The fake's settings and misbehaviour switches: read once from the
//! environment at startup (`Config::from_env`), and the switch part
//! changeable afterwards through `POST /__fake/switches` (`Patch`), so one
//! running double can change mode between two requests of a test.

use std::{net::SocketAddr, str::FromStr, time::Duration};

use serde::{Deserialize, Deserializer, Serialize};

/// Models listed when `FAKE_OPENAI_MODELS` is unset: a chat model with an
/// LM Studio style id, a vLLM style `org/model` id (the slash matters to
/// the agent's model-string routing), and an embedding model.
pub const DEFAULT_MODELS: &str =
    "qwen2.5-7b-instruct,org/model-7b,text-embedding-nomic-embed-text-v1.5";

/// Embedding size when `FAKE_OPENAI_EMBED_DIM` is unset.
pub const DEFAULT_EMBED_DIM: usize = 16;

/// Retry-After seconds when `FAKE_OPENAI_RETRY_AFTER_SECS` is unset.
pub const DEFAULT_RETRY_AFTER_SECS: u64 = 1;

/// What a broken-off stream says when no message was configured; the
/// text vLLM and OpenAI use for an internal failure.
pub const DEFAULT_STREAM_ERROR: &str =
    "The server had an error while processing your request. Sorry about that!";

/// Everything read at startup.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub api_key: Option<String>,
    pub models: Vec<String>,
    pub embed_dim: usize,
    pub switches: Switches,
}

/// The behaviour that tests may change while the server runs. Serialised
/// as the reply of `/__fake/switches`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Switches {
    /// Delay before each streamed chunk after the first (and between the
    /// words of a non-streamed answer, so a slow model is slow either way).
    pub token_delay_ms: u64,
    /// A streamed completion stops after this many `data:` chunks with an
    /// error frame and no `[DONE]`; a non-streamed one answers 500.
    pub stream_error_after_chunks: Option<usize>,
    pub stream_error_message: String,
    /// The next K `/v1/*` requests get 429 with `Retry-After`.
    pub rate_limit_next: u64,
    pub retry_after_secs: u64,
    /// The next K `/v1/*` requests get 500.
    pub server_error_next: u64,
    /// `/v1/*` requests are accepted and never answered.
    pub hang: bool,
    /// `/v1/*` requests get a 200 HTML page instead of JSON, like a URL
    /// that points at some web UI rather than at an API.
    pub wrong_shape: bool,
}

impl Default for Switches {
    fn default() -> Self {
        Self {
            token_delay_ms: 0,
            stream_error_after_chunks: None,
            stream_error_message: DEFAULT_STREAM_ERROR.to_string(),
            rate_limit_next: 0,
            retry_after_secs: DEFAULT_RETRY_AFTER_SECS,
            server_error_next: 0,
            hang: false,
            wrong_shape: false,
        }
    }
}

impl Switches {
    pub fn token_delay(&self) -> Duration {
        Duration::from_millis(self.token_delay_ms)
    }

    /// Applies the fields a patch names; the others keep their values.
    pub fn apply(&mut self, patch: Patch) {
        if let Some(v) = patch.token_delay_ms {
            self.token_delay_ms = v;
        }
        if let Some(v) = patch.stream_error_after_chunks {
            self.stream_error_after_chunks = v;
        }
        if let Some(v) = patch.stream_error_message {
            self.stream_error_message = v.unwrap_or_else(|| DEFAULT_STREAM_ERROR.to_string());
        }
        if let Some(v) = patch.rate_limit_next {
            self.rate_limit_next = v;
        }
        if let Some(v) = patch.retry_after_secs {
            self.retry_after_secs = v;
        }
        if let Some(v) = patch.server_error_next {
            self.server_error_next = v;
        }
        if let Some(v) = patch.hang {
            self.hang = v;
        }
        if let Some(v) = patch.wrong_shape {
            self.wrong_shape = v;
        }
    }
}

/// The body of `POST /__fake/switches`: any subset of the switches. For
/// the optional ones `null` switches them off, which is why those are an
/// `Option` of an `Option` (absent vs. null). Unknown names are refused so
/// a typo in a test fails loudly instead of silently doing nothing.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Patch {
    token_delay_ms: Option<u64>,
    #[serde(deserialize_with = "present")]
    stream_error_after_chunks: Option<Option<usize>>,
    #[serde(deserialize_with = "present")]
    stream_error_message: Option<Option<String>>,
    rate_limit_next: Option<u64>,
    retry_after_secs: Option<u64>,
    server_error_next: Option<u64>,
    hang: Option<bool>,
    wrong_shape: Option<bool>,
}

/// Marks a field that was present (even as `null`) as `Some`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl Config {
    /// Reads the `FAKE_OPENAI_*` variables; an unparsable value is an
    /// error, so a test with a typo fails at once rather than misleading.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let addr = parse_or(
            &get,
            "FAKE_OPENAI_ADDR",
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )?;
        let models: Vec<String> = get("FAKE_OPENAI_MODELS")
            .unwrap_or_else(|| DEFAULT_MODELS.to_string())
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        let embed_dim = parse_or(&get, "FAKE_OPENAI_EMBED_DIM", DEFAULT_EMBED_DIM)?;
        if embed_dim == 0 {
            return Err("FAKE_OPENAI_EMBED_DIM: must be at least 1".to_string());
        }
        let defaults = Switches::default();
        let switches = Switches {
            token_delay_ms: parse_or(&get, "FAKE_OPENAI_TOKEN_DELAY_MS", 0)?,
            stream_error_after_chunks: get("FAKE_OPENAI_STREAM_ERROR_AFTER_CHUNKS")
                .map(|v| parse("FAKE_OPENAI_STREAM_ERROR_AFTER_CHUNKS", &v))
                .transpose()?,
            stream_error_message: get("FAKE_OPENAI_STREAM_ERROR_MESSAGE")
                .unwrap_or(defaults.stream_error_message),
            rate_limit_next: parse_or(&get, "FAKE_OPENAI_RATE_LIMIT_NEXT", 0)?,
            retry_after_secs: parse_or(
                &get,
                "FAKE_OPENAI_RETRY_AFTER_SECS",
                DEFAULT_RETRY_AFTER_SECS,
            )?,
            server_error_next: parse_or(&get, "FAKE_OPENAI_SERVER_ERROR_NEXT", 0)?,
            hang: flag(&get, "FAKE_OPENAI_HANG")?,
            wrong_shape: flag(&get, "FAKE_OPENAI_WRONG_SHAPE")?,
        };
        Ok(Self {
            addr,
            // An empty key is "no key", like LM Studio with auth turned off.
            api_key: get("FAKE_OPENAI_API_KEY"),
            models,
            embed_dim,
            switches,
        })
    }
}

fn parse<T: FromStr>(name: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name}: cannot parse {value:?}"))
}

fn parse_or<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
) -> Result<T, String> {
    get(name).map_or(Ok(default), |v| parse(name, &v))
}

fn flag(get: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, String> {
    match get(name).as_deref().map(str::trim) {
        None | Some("0" | "false") => Ok(false),
        Some("1" | "true") => Ok(true),
        Some(other) => Err(format!("{name}: expected 1 or 0, got {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_environment_and_refuses_typos() -> Result<(), String> {
        let config = Config::from_lookup(|name| match name {
            "FAKE_OPENAI_MODELS" => Some(" a , b/c ,".to_string()),
            "FAKE_OPENAI_RATE_LIMIT_NEXT" => Some("2".to_string()),
            "FAKE_OPENAI_HANG" => Some("1".to_string()),
            _ => None,
        })?;
        assert_eq!(config.models, ["a", "b/c"]);
        assert_eq!(config.api_key, None);
        assert_eq!(config.switches.rate_limit_next, 2);
        assert!(config.switches.hang);
        assert!(
            Config::from_lookup(|n| (n == "FAKE_OPENAI_TOKEN_DELAY_MS").then(|| "x".into()))
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn a_patch_changes_only_what_it_names() -> Result<(), serde_json::Error> {
        let mut switches = Switches {
            stream_error_after_chunks: Some(3),
            ..Switches::default()
        };
        switches.apply(serde_json::from_str(r#"{"hang":true}"#)?);
        assert_eq!(switches.stream_error_after_chunks, Some(3));
        assert!(switches.hang);
        switches.apply(serde_json::from_str(
            r#"{"stream_error_after_chunks":null}"#,
        )?);
        assert_eq!(switches.stream_error_after_chunks, None);
        assert!(serde_json::from_str::<Patch>(r#"{"hnag":true}"#).is_err());
        Ok(())
    }
}
