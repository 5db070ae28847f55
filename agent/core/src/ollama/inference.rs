//! Chat and generate: checking a request's parameters (roles, options,
//! keep_alive, format) before anything is sent, proxying it to the
//! endpoint, and [`ReplyStream`], which maps failures in the middle of a
//! reply like those of any other call.

use tokio::sync::watch;

use super::{
    Ollama,
    address::OllamaAddress,
    api::{ChatChunk, GenerateChunk, NdjsonStream, StreamLine},
    endpoints::Endpoint,
    errors::api_error,
    server_settings::LocalStream,
    supervisor::ServerStatus,
};
use crate::error::{Error, Result};

/// A chat turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Role.
    pub role: String,
    /// Text.
    pub content: String,
    /// Base64 images.
    pub images: Vec<String>,
}

/// Parameters shared by chat and generate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerationOptions {
    /// Model options as JSON text.
    pub options_json: String,
    /// keep_alive.
    pub keep_alive: String,
    /// "", "json" or a JSON schema.
    pub format: String,
}

/// A generate request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateParams {
    /// Prompt.
    pub prompt: String,
    /// System prompt.
    pub system: String,
    /// Context to continue.
    pub context: Vec<i64>,
    /// Skip the template.
    pub raw: bool,
}

/// Check a keep_alive value the way Ollama parses it: a number of seconds
/// or a Go duration ("10m", "1h30m", "-1" for forever). Returns the JSON
/// value to send.
pub fn keep_alive_value(raw: &str) -> Result<Option<serde_json::Value>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(seconds) = raw.parse::<i64>() {
        return Ok(Some(serde_json::Value::from(seconds)));
    }
    let body = raw.strip_prefix('-').unwrap_or(raw);
    let mut rest = body;
    let mut any = false;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            break;
        }
        let after = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| after.starts_with(*u))
            .max_by_key(|u| u.len());
        let Some(unit) = unit else { break };
        rest = &after[unit.len()..];
        any = true;
    }
    if !any || !rest.is_empty() {
        return Err(Error::invalid_argument(
            "keep_alive",
            format!(
                "{raw:?} is not a duration; use seconds or e.g. \"10m\", \"1h\", \"-1\" (forever)"
            ),
        ));
    }
    Ok(Some(serde_json::Value::from(raw)))
}

fn parse_json_object(field: &str, text: &str) -> Result<Option<serde_json::Value>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(Some(value)),
        Ok(_) => Err(Error::invalid_argument(field, "must be a JSON object")),
        Err(err) => Err(Error::invalid_argument(
            field,
            format!("is not valid JSON: {err}"),
        )),
    }
}

fn format_value(format: &str) -> Result<Option<serde_json::Value>> {
    match format.trim() {
        "" => Ok(None),
        "json" => Ok(Some(serde_json::Value::from("json"))),
        schema => parse_json_object("format", schema)
            .map_err(|_| Error::invalid_argument("format", "use \"json\" or a JSON schema object")),
    }
}

fn apply_options(body: &mut serde_json::Value, options: &GenerationOptions) -> Result<()> {
    if let Some(value) = parse_json_object("options_json", &options.options_json)? {
        body["options"] = value;
    }
    if let Some(value) = keep_alive_value(&options.keep_alive)? {
        body["keep_alive"] = value;
    }
    if let Some(value) = format_value(&options.format)? {
        body["format"] = value;
    }
    Ok(())
}

impl Ollama {
    /// A reply stream whose failures are mapped like any other call's.
    fn reply_stream<T: StreamLine>(
        &self,
        endpoint: Endpoint,
        lines: NdjsonStream<T>,
    ) -> ReplyStream<T> {
        ReplyStream {
            _local: endpoint.local.then(|| self.local_streams.enter()),
            lines,
            endpoint,
            address: self.address.clone(),
            server: self.supervisor.watch(),
        }
    }

    /// Start a chat stream.
    pub async fn chat(
        &self,
        provider: &str,
        model: &str,
        messages: Vec<ChatMessage>,
        options: GenerationOptions,
    ) -> Result<ReplyStream<ChatChunk>> {
        if messages.is_empty() {
            return Err(Error::invalid_argument(
                "messages",
                "a chat needs at least one message",
            ));
        }
        for (index, message) in messages.iter().enumerate() {
            if !matches!(
                message.role.as_str(),
                "system" | "user" | "assistant" | "tool"
            ) {
                return Err(Error::invalid_argument(
                    format!("messages[{index}].role"),
                    format!(
                        "{:?} is not one of system, user, assistant, tool",
                        message.role
                    ),
                ));
            }
        }
        let name = self.resolve_model(model).await?;
        let messages: Vec<serde_json::Value> = messages
            .into_iter()
            .map(|m| {
                let mut value = serde_json::json!({ "role": m.role, "content": m.content });
                if !m.images.is_empty() {
                    value["images"] = serde_json::Value::from(m.images);
                }
                value
            })
            .collect();
        let mut body =
            serde_json::json!({ "model": name.display(), "messages": messages, "stream": true });
        apply_options(&mut body, &options)?;
        let endpoint = self.endpoint(provider).await?;
        let lines = endpoint
            .api
            .chat(&body)
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        Ok(self.reply_stream(endpoint, lines))
    }

    /// Start a generate stream.
    pub async fn generate(
        &self,
        provider: &str,
        model: &str,
        params: GenerateParams,
        options: GenerationOptions,
    ) -> Result<ReplyStream<GenerateChunk>> {
        let name = self.resolve_model(model).await?;
        let mut body =
            serde_json::json!({ "model": name.display(), "prompt": params.prompt, "stream": true });
        if !params.system.is_empty() {
            body["system"] = serde_json::Value::from(params.system);
        }
        if !params.context.is_empty() {
            body["context"] = serde_json::Value::from(params.context);
        }
        if params.raw {
            body["raw"] = serde_json::Value::from(true);
        }
        apply_options(&mut body, &options)?;
        let endpoint = self.endpoint(provider).await?;
        let lines = endpoint
            .api
            .generate(&body)
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        Ok(self.reply_stream(endpoint, lines))
    }
}

/// A chat or generate reply streaming from Ollama. An `{"error": ...}`
/// line or a broken connection in the middle of it comes out as a domain
/// error, mapped by the same rules as the failure of any other call, so a
/// client sees Ollama's message and a code it can act on rather than a
/// generic "unavailable".
#[derive(Debug)]
pub struct ReplyStream<T> {
    lines: NdjsonStream<T>,
    endpoint: Endpoint,
    address: OllamaAddress,
    /// Read when a failure happens, so a transport error names the state
    /// the server is in at that moment.
    server: watch::Receiver<ServerStatus>,
    /// Counts this reply while it streams from the local server, so a
    /// settings change does not restart the server under it.
    _local: Option<LocalStream>,
}

impl<T: StreamLine> ReplyStream<T> {
    /// The next chunk; `None` at the end. An error ends the stream.
    pub async fn next(&mut self) -> Option<Result<T>> {
        let line = self.lines.next().await?;
        Some(line.map_err(|err| {
            let server = self.server.borrow().clone();
            api_error(&self.address, &server, &self.endpoint, err)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_accepts_what_ollama_accepts() {
        for ok in ["", "0", "300", "-1", "10m", "1h30m", "1.5h", "500ms", "-1m"] {
            assert!(keep_alive_value(ok).is_ok(), "{ok}");
        }
        for bad in ["ten", "10 minutes", "5x", "m", "1h-"] {
            assert!(keep_alive_value(bad).is_err(), "{bad}");
        }
        assert_eq!(
            keep_alive_value("0").ok().flatten(),
            Some(serde_json::Value::from(0))
        );
    }

    #[test]
    fn options_must_be_json_objects() {
        let mut body = serde_json::json!({});
        let bad = GenerationOptions {
            options_json: "[1]".into(),
            ..Default::default()
        };
        assert_eq!(
            apply_options(&mut body, &bad).unwrap_err().field(),
            Some("options_json")
        );
        let good = GenerationOptions {
            options_json: "{\"temperature\":0.1}".into(),
            format: "json".into(),
            keep_alive: "5m".into(),
        };
        assert!(apply_options(&mut body, &good).is_ok());
        assert_eq!(body["options"]["temperature"], 0.1);
        assert_eq!(body["format"], "json");
    }
}
