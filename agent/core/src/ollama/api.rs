//! A client for Ollama's HTTP API (docs/api.md in the ollama repository):
//! typed requests and responses, NDJSON streams read line by line, and
//! Ollama's `{"error": ...}` bodies (also as the last line of a stream that
//! already started) turned into [`ApiError::Ollama`] with its own message.

use std::{marker::PhantomData, time::Duration};

use serde::{Deserialize, de::DeserializeOwned};

/// How a call to Ollama failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Nothing answered (refused, unreachable, timed out).
    Unreachable(String),
    /// Ollama answered with an error.
    Ollama {
        /// HTTP status (200 when the error ended a stream).
        status: u16,
        /// Ollama's message.
        message: String,
    },
    /// Something answered that does not speak Ollama's API.
    Unexpected(String),
    /// The connection broke in the middle of a response.
    Interrupted(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) => write!(f, "Ollama does not answer: {why}"),
            Self::Ollama { message, .. } => f.write_str(message),
            Self::Unexpected(why) => write!(f, "unexpected answer: {why}"),
            Self::Interrupted(why) => write!(f, "the connection broke: {why}"),
        }
    }
}

fn transport_error(err: &reqwest::Error) -> ApiError {
    if err.is_connect() || err.is_timeout() {
        ApiError::Unreachable(crate::http::describe(err))
    } else if err.is_decode() {
        ApiError::Unexpected(crate::http::describe(err))
    } else {
        ApiError::Interrupted(crate::http::describe(err))
    }
}

/// The start of a body, on one line, for error messages: a foreign server
/// may answer with a whole HTML page.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 120 {
        out = out.chars().take(117).collect::<String>() + "...";
    }
    out
}

/// Model details as Ollama reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Details {
    /// e.g. "gguf".
    pub format: String,
    /// e.g. "llama".
    pub family: String,
    /// e.g. "1.2B".
    pub parameter_size: String,
    /// e.g. "Q4_K_M".
    pub quantization_level: String,
}

/// One entry of `/api/tags`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TagModel {
    /// Name with tag.
    pub name: String,
    /// RFC 3339 modification time.
    pub modified_at: String,
    /// Bytes on disk.
    pub size: u64,
    /// Digest (hex).
    pub digest: String,
    /// Details.
    pub details: Details,
}

#[derive(Debug, Deserialize)]
struct Tags {
    #[serde(default)]
    models: Vec<TagModel>,
}

/// `/api/show`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ShowResponse {
    /// License text.
    pub license: String,
    /// Modelfile.
    pub modelfile: String,
    /// Parameters.
    pub parameters: String,
    /// Template.
    pub template: String,
    /// System prompt.
    pub system: String,
    /// Details.
    pub details: Details,
    /// `general.*` and architecture keys.
    pub model_info: serde_json::Map<String, serde_json::Value>,
    /// Capabilities.
    pub capabilities: Vec<String>,
    /// Modification time.
    pub modified_at: String,
}

/// One entry of `/api/ps`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct RunningModel {
    /// Name.
    pub name: String,
    /// Bytes in memory.
    pub size: u64,
    /// Bytes in VRAM.
    pub size_vram: u64,
    /// Digest.
    pub digest: String,
    /// RFC 3339 expiry.
    pub expires_at: String,
}

#[derive(Debug, Deserialize)]
struct Running {
    #[serde(default)]
    models: Vec<RunningModel>,
}

/// One line of a `/api/pull` stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PullLine {
    /// "pulling manifest", "pulling <digest12>", "success", ...
    pub status: String,
    /// Layer digest for layer lines.
    pub digest: Option<String>,
    /// Layer size.
    pub total: Option<u64>,
    /// Layer bytes done (absent when 0).
    pub completed: Option<u64>,
    /// Error ending the stream.
    pub error: Option<String>,
}

/// Timings on the last chunk of a generation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timings {
    /// ns.
    pub total_duration: u64,
    /// ns.
    pub load_duration: u64,
    /// tokens.
    pub prompt_eval_count: u64,
    /// ns.
    pub prompt_eval_duration: u64,
    /// tokens.
    pub eval_count: u64,
    /// ns.
    pub eval_duration: u64,
}

/// A chat message in a chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ChunkMessage {
    /// Role.
    pub role: String,
    /// Text.
    pub content: String,
}

/// One chunk of `/api/chat`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ChatChunk {
    /// Model.
    pub model: String,
    /// The new text.
    pub message: ChunkMessage,
    /// Last chunk?
    pub done: bool,
    /// Why it ended.
    pub done_reason: String,
    /// ns (last chunk).
    pub total_duration: u64,
    /// ns.
    pub load_duration: u64,
    /// tokens.
    pub prompt_eval_count: u64,
    /// ns.
    pub prompt_eval_duration: u64,
    /// tokens.
    pub eval_count: u64,
    /// ns.
    pub eval_duration: u64,
    /// Error ending the stream.
    pub error: Option<String>,
}

/// One chunk of `/api/generate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct GenerateChunk {
    /// Model.
    pub model: String,
    /// The new text.
    pub response: String,
    /// Last chunk?
    pub done: bool,
    /// Why it ended.
    pub done_reason: String,
    /// Context to continue from (last chunk).
    pub context: Vec<i64>,
    /// ns (last chunk).
    pub total_duration: u64,
    /// ns.
    pub load_duration: u64,
    /// tokens.
    pub prompt_eval_count: u64,
    /// ns.
    pub prompt_eval_duration: u64,
    /// tokens.
    pub eval_count: u64,
    /// ns.
    pub eval_duration: u64,
    /// Error ending the stream.
    pub error: Option<String>,
}

/// The timing fields both chunk kinds carry (serde's `flatten` would share
/// them, but it buffers every line through a map, which costs more than the
/// proxying itself).
macro_rules! timings_of {
    ($chunk:ty) => {
        impl $chunk {
            /// Ollama's timings (meaningful on the last chunk).
            pub fn timings(&self) -> Timings {
                Timings {
                    total_duration: self.total_duration,
                    load_duration: self.load_duration,
                    prompt_eval_count: self.prompt_eval_count,
                    prompt_eval_duration: self.prompt_eval_duration,
                    eval_count: self.eval_count,
                    eval_duration: self.eval_duration,
                }
            }
        }
    };
}
timings_of!(ChatChunk);
timings_of!(GenerateChunk);

/// Chunks that can carry a stream-ending error.
pub trait StreamLine: DeserializeOwned {
    /// The error, if this line is one.
    fn error(&self) -> Option<&str>;
}

impl StreamLine for PullLine {
    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}
impl StreamLine for ChatChunk {
    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}
impl StreamLine for GenerateChunk {
    fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// The longest stream line accepted, in bytes. Ollama's lines are small,
/// but a generate stream's last line carries the context (a number per
/// token: under 1 MiB at 128 k tokens); past this the server is not
/// speaking Ollama's protocol, and buffering on would let it take the
/// agent's memory.
pub const NDJSON_LINE_LIMIT: usize = 16 << 20;

/// An NDJSON response read one line at a time. Dropping it closes the
/// connection, which makes Ollama stop the work behind it.
#[derive(Debug)]
pub struct NdjsonStream<T> {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// Start of the unread part of `buffer`.
    start: usize,
    /// How much of the unread part is known to hold no newline, so a long
    /// line arriving in many chunks is searched once, not once per chunk.
    scanned: usize,
    /// Refuse lines longer than this ([`NDJSON_LINE_LIMIT`] but in tests).
    limit: usize,
    finished: bool,
    _item: PhantomData<T>,
}

impl<T: StreamLine> NdjsonStream<T> {
    /// The lines of a response whose status was accepted. Public (hidden)
    /// for the fuzz targets (`fuzz/targets`), which feed it bodies cut
    /// into arbitrary pieces.
    #[doc(hidden)]
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
            start: 0,
            scanned: 0,
            limit: NDJSON_LINE_LIMIT,
            finished: false,
            _item: PhantomData,
        }
    }

    /// The same with another line limit (tests).
    #[doc(hidden)]
    pub fn with_line_limit(response: reqwest::Response, limit: usize) -> Self {
        Self {
            limit,
            ..Self::new(response)
        }
    }

    /// The next line; `None` at the end of the stream. An error line ends
    /// the stream with [`ApiError::Ollama`].
    pub async fn next(&mut self) -> Option<Result<T, ApiError>> {
        loop {
            let unread = &self.buffer[self.start..];
            if let Some(offset) = unread[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|found| self.scanned + found)
            {
                if offset > self.limit {
                    return Some(self.refuse_long_line());
                }
                let line_start = self.start;
                self.start += offset + 1;
                self.scanned = 0;
                if self.buffer[line_start..line_start + offset]
                    .iter()
                    .all(u8::is_ascii_whitespace)
                {
                    continue;
                }
                let decoded = decode_line(&self.buffer[line_start..line_start + offset]);
                return Some(self.settle(decoded));
            }
            self.scanned = unread.len();
            if self.scanned > self.limit {
                return Some(self.refuse_long_line());
            }
            if self.finished {
                let rest = self.buffer.split_off(self.start);
                self.buffer.clear();
                self.start = 0;
                self.scanned = 0;
                if rest.iter().all(u8::is_ascii_whitespace) {
                    return None;
                }
                let decoded = decode_line(&rest);
                return Some(self.settle(decoded));
            }
            // Drop consumed bytes before reading more, so the buffer only
            // ever holds one partial line plus the new chunk.
            self.buffer.drain(..self.start);
            self.start = 0;
            match self.response.chunk().await {
                Ok(Some(bytes)) => self.buffer.extend_from_slice(&bytes),
                Ok(None) => self.finished = true,
                Err(err) => {
                    self.finished = true;
                    self.buffer.clear();
                    return Some(Err(ApiError::Interrupted(crate::http::describe(&err))));
                }
            }
        }
    }

    /// Ends the stream on a line of more than `limit` bytes starting at
    /// `start`. The same refusal whether the line's end has arrived or
    /// not, so what a reader sees does not depend on how the network cut
    /// the stream.
    fn refuse_long_line(&mut self) -> Result<T, ApiError> {
        let line = &self.buffer[self.start..];
        let refusal = ApiError::Unexpected(format!(
            "the server sent a stream line longer than {} bytes: {}",
            self.limit,
            snippet(&line[..line.len().min(self.limit).min(256)])
        ));
        self.settle(Err(refusal))
    }

    /// An error line ends the stream.
    fn settle(&mut self, decoded: Result<T, ApiError>) -> Result<T, ApiError> {
        if decoded.is_err() {
            self.finished = true;
            self.buffer.clear();
            self.start = 0;
            self.scanned = 0;
        }
        decoded
    }
}

fn decode_line<T: StreamLine>(text: &[u8]) -> Result<T, ApiError> {
    let line: T = serde_json::from_slice(text).map_err(|err| {
        ApiError::Unexpected(format!(
            "not an Ollama stream line ({err}): {}",
            snippet(text)
        ))
    })?;
    if let Some(message) = line.error() {
        return Err(ApiError::Ollama {
            status: 200,
            message: message.to_owned(),
        });
    }
    Ok(line)
}

/// A client for one Ollama endpoint.
#[derive(Clone)]
pub struct OllamaApi {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    headers: Vec<(String, String)>,
    /// Bound on waiting for the status line (a provider's timeout).
    timeout: Option<Duration>,
}

impl std::fmt::Debug for OllamaApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token or the header values.
        f.debug_struct("OllamaApi")
            .field("base", &self.base)
            .field("has_token", &self.token.is_some())
            .finish()
    }
}

/// The answer of `/api/embed`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EmbedResponse {
    /// Model.
    pub model: String,
    /// One vector per input.
    pub embeddings: Vec<Vec<f32>>,
    /// ns.
    pub total_duration: u64,
    /// Tokens of the inputs.
    pub prompt_eval_count: u64,
}

#[derive(Debug, Deserialize)]
struct VersionBody {
    version: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
}

impl OllamaApi {
    /// A client for `base` (e.g. `http://127.0.0.1:11434`), sending
    /// `token` as a bearer token when set.
    pub fn new(http: reqwest::Client, base: &str, token: Option<String>) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            headers: Vec::new(),
            timeout: None,
        }
    }

    /// The same client, giving up on a request whose status line has not
    /// come within `timeout` (a stream may pause as long as it likes
    /// afterwards).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The same client, sending `headers` with every request too.
    pub fn with_headers(mut self, headers: Vec<(String, String)>) -> Self {
        self.headers = headers;
        self
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut builder = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> Result<reqwest::Response, ApiError> {
        let response = match self.timeout {
            Some(limit) => tokio::time::timeout(limit, builder.send())
                .await
                .map_err(|_| {
                    ApiError::Unreachable(format!("no answer within {} s", limit.as_secs()))
                })?,
            None => builder.send().await,
        }
        .map_err(|err| transport_error(&err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|body| body.error)
            .unwrap_or_else(|_| format!("HTTP {status}: {}", snippet(text.as_bytes())));
        Err(ApiError::Ollama {
            status: status.as_u16(),
            message,
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<T, ApiError> {
        let response = self.send(builder).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|err| transport_error(&err))?;
        serde_json::from_slice(&bytes)
            .map_err(|err| ApiError::Unexpected(format!("{err}: {}", snippet(&bytes))))
    }

    /// `GET /api/version`, bounded by `timeout`. A 404 or a body without a
    /// version means the server is not Ollama.
    pub async fn version(&self, timeout: Duration) -> Result<String, ApiError> {
        let builder = self
            .request(reqwest::Method::GET, "/api/version")
            .timeout(timeout);
        match self.json::<VersionBody>(builder).await {
            Ok(body) => Ok(body.version),
            Err(ApiError::Ollama { status, message }) => Err(ApiError::Unexpected(format!(
                "/api/version answered HTTP {status} ({message})"
            ))),
            Err(other) => Err(other),
        }
    }

    /// `GET /api/tags`.
    pub async fn tags(&self) -> Result<Vec<TagModel>, ApiError> {
        let tags: Tags = self
            .json(self.request(reqwest::Method::GET, "/api/tags"))
            .await?;
        Ok(tags.models)
    }

    /// `POST /api/show`.
    pub async fn show(&self, model: &str) -> Result<ShowResponse, ApiError> {
        let body = serde_json::json!({ "model": model });
        self.json(self.request(reqwest::Method::POST, "/api/show").json(&body))
            .await
    }

    /// `GET /api/ps`.
    pub async fn ps(&self) -> Result<Vec<RunningModel>, ApiError> {
        let running: Running = self
            .json(self.request(reqwest::Method::GET, "/api/ps"))
            .await?;
        Ok(running.models)
    }

    /// `DELETE /api/delete`.
    pub async fn delete(&self, model: &str) -> Result<(), ApiError> {
        let body = serde_json::json!({ "model": model });
        self.send(
            self.request(reqwest::Method::DELETE, "/api/delete")
                .json(&body),
        )
        .await?;
        Ok(())
    }

    /// `POST /api/pull`, streamed.
    pub async fn pull(
        &self,
        model: &str,
        insecure: bool,
    ) -> Result<NdjsonStream<PullLine>, ApiError> {
        let body = serde_json::json!({ "model": model, "insecure": insecure, "stream": true });
        let response = self
            .send(self.request(reqwest::Method::POST, "/api/pull").json(&body))
            .await?;
        Ok(NdjsonStream::new(response))
    }

    /// `POST /api/chat`, streamed. `body` is the request as Ollama takes it.
    pub async fn chat(
        &self,
        body: &serde_json::Value,
    ) -> Result<NdjsonStream<ChatChunk>, ApiError> {
        let response = self
            .send(self.request(reqwest::Method::POST, "/api/chat").json(body))
            .await?;
        Ok(NdjsonStream::new(response))
    }

    /// `POST /api/generate`, streamed.
    pub async fn generate(
        &self,
        body: &serde_json::Value,
    ) -> Result<NdjsonStream<GenerateChunk>, ApiError> {
        let response = self
            .send(
                self.request(reqwest::Method::POST, "/api/generate")
                    .json(body),
            )
            .await?;
        Ok(NdjsonStream::new(response))
    }

    /// `POST /api/embed`; `body` is the request as Ollama takes it.
    pub async fn embed(&self, body: &serde_json::Value) -> Result<EmbedResponse, ApiError> {
        self.json(self.request(reqwest::Method::POST, "/api/embed").json(body))
            .await
    }

    /// `POST /api/generate` without streaming (load and unload use it).
    pub async fn generate_once(&self, body: &serde_json::Value) -> Result<GenerateChunk, ApiError> {
        let chunk: GenerateChunk = self
            .json(
                self.request(reqwest::Method::POST, "/api/generate")
                    .json(body),
            )
            .await?;
        match chunk.error {
            Some(message) => Err(ApiError::Ollama {
                status: 200,
                message,
            }),
            None => Ok(chunk),
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 time as Ollama writes it
/// (nanosecond fractions, `Z` or a numeric offset); 0 when unparseable.
pub fn timestamp_ms(text: &str) -> i64 {
    let text = text.trim();
    // Split a trailing numeric offset (+07:00 / -07:00) from the time.
    let (local, offset_minutes) = match text.len().checked_sub(6).map(|i| text.split_at(i)) {
        Some((local, offset))
            if (offset.starts_with('+') || offset.starts_with('-'))
                && offset.as_bytes()[3] == b':' =>
        {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let hours: i64 = offset[1..3].parse().unwrap_or(0);
            let minutes: i64 = offset[4..6].parse().unwrap_or(0);
            (local, sign * (hours * 60 + minutes))
        }
        _ => (text.trim_end_matches('Z'), 0),
    };
    match humantime::parse_rfc3339_weak(local) {
        Ok(time) => {
            let ms = time
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                .unwrap_or_default();
            ms - offset_minutes * 60_000
        }
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(body: &'static str) -> NdjsonStream<PullLine> {
        NdjsonStream::new(reqwest::Response::from(http::Response::new(body)))
    }

    #[tokio::test]
    async fn ndjson_lines_blank_lines_last_line_and_errors() {
        let mut lines =
            stream("{\"status\":\"a\"}\n\n{\"status\":\"b\",\"total\":5}\n{\"status\":\"c\"}");
        let mut seen = Vec::new();
        while let Some(line) = lines.next().await {
            seen.push(line.map(|l| l.status).unwrap_or_default());
        }
        assert_eq!(seen, ["a", "b", "c"]);

        let mut failing = stream(
            "{\"status\":\"a\"}\n{\"error\":\"max retries exceeded: EOF\"}\n{\"status\":\"never\"}\n",
        );
        assert!(failing.next().await.is_some_and(|l| l.is_ok()));
        assert_eq!(
            failing.next().await,
            Some(Err(ApiError::Ollama {
                status: 200,
                message: "max retries exceeded: EOF".into()
            }))
        );
        assert_eq!(failing.next().await, None, "an error ends the stream");

        let mut garbage = stream("<html>\n  not json  </html>\n");
        assert!(matches!(
            garbage.next().await,
            Some(Err(ApiError::Unexpected(_)))
        ));
    }

    #[tokio::test]
    async fn a_line_over_the_limit_ends_the_stream_after_the_lines_before_it() {
        for body in [
            "{\"status\":\"a\"}\n{\"status\":\"far too long for the limit\"}\n{\"status\":\"b\"}\n",
            "{\"status\":\"a\"}\n{\"status\":\"far too long, never ended",
        ] {
            let response = reqwest::Response::from(http::Response::new(body));
            let mut lines = NdjsonStream::<PullLine>::with_line_limit(response, 20);
            assert_eq!(
                lines.next().await.map(|l| l.map(|l| l.status)),
                Some(Ok("a".to_owned()))
            );
            match lines.next().await {
                Some(Err(ApiError::Unexpected(message))) => assert!(
                    message.starts_with(
                        "the server sent a stream line longer than 20 bytes: {\"status\":\"far too"
                    ),
                    "{message}"
                ),
                other => panic!("expected the refusal, got {other:?}"),
            }
            assert_eq!(lines.next().await, None, "the refusal ends the stream");
        }
    }

    #[test]
    fn timestamps_with_offsets_and_nanoseconds() {
        assert_eq!(timestamp_ms("1970-01-01T00:00:01Z"), 1000);
        assert_eq!(timestamp_ms("1970-01-01T01:00:01.5+01:00"), 1500);
        assert_eq!(
            timestamp_ms("2023-11-04T14:56:49.277302595-07:00"),
            1_699_135_009_277
        );
        assert_eq!(timestamp_ms("garbage"), 0);
    }
}
