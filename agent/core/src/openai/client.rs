//! A client for one OpenAI-compatible server: `GET /models`, streamed
//! `POST /chat/completions` and `/completions` (read with `sse` and
//! `chunks`), `POST /embeddings`. It sends the API key as a bearer token
//! and the provider's extra headers, bounds each request by the provider's
//! timeout (for a stream, until its status line: a reply may pause as long
//! as it likes afterwards), and says how a call failed in terms a client
//! can act on ([`OpenAiError`], mapped to a domain error naming the
//! provider by [`OpenAiError::into_error`]). Keys and header values are
//! never part of a message or a `Debug` output.

use std::{fmt, time::Duration};

use serde::Deserialize;

use super::{
    chunks::{self, ChunkError, Piece, Usage},
    sse::Decoder,
};
use crate::{
    error::{Error, ErrorKind},
    ollama::{GenerationStats, ReplyChunk},
    reason::Reason,
};

/// Longest SSE line or event accepted (a chunk is a few hundred bytes).
const EVENT_LIMIT: usize = 1 << 20;

/// How a call to an OpenAI-compatible server failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenAiError {
    /// The host name does not resolve.
    Dns(String),
    /// The TLS handshake failed (a bad certificate, or a port that does
    /// not speak TLS).
    Tls(String),
    /// Nothing answered (refused, unreachable, timed out).
    Unreachable(String),
    /// 401 or 403: the key is missing or wrong.
    Unauthorized(String),
    /// 429, with the server's Retry-After in seconds when it sent one.
    RateLimited {
        /// The server's message.
        message: String,
        /// Seconds to wait.
        retry_after: Option<u64>,
    },
    /// A 5xx answer.
    ServerError {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// Any other 4xx answer (an unknown model, a bad parameter).
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
        /// Its error code or type ("model_not_found").
        code: String,
    },
    /// An error sent in the middle of a stream.
    InStream {
        /// The server's message.
        message: String,
        /// Its code or type.
        code: String,
    },
    /// The answer is not the OpenAI API's (an HTML page, an Ollama).
    WrongApi(String),
    /// The connection broke in the middle of a response.
    Interrupted(String),
}

impl fmt::Display for OpenAiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(why) => write!(f, "the host name does not resolve: {why}"),
            Self::Tls(why) => write!(f, "the TLS handshake failed: {why}"),
            Self::Unreachable(why) => write!(f, "it does not answer: {why}"),
            Self::Unauthorized(why) => write!(f, "it refused the API key: {why}"),
            Self::RateLimited { message, .. } => write!(f, "rate limited: {message}"),
            Self::ServerError { status, message } => write!(f, "HTTP {status}: {message}"),
            Self::Rejected {
                status, message, ..
            } => write!(f, "HTTP {status}: {message}"),
            Self::InStream { message, code } if code.is_empty() => f.write_str(message),
            Self::InStream { message, code } => write!(f, "{message} ({code})"),
            Self::WrongApi(why) => write!(f, "it does not speak the OpenAI API: {why}"),
            Self::Interrupted(why) => write!(f, "the connection broke: {why}"),
        }
    }
}

impl OpenAiError {
    /// Whether it says the server is not there (health: DOWN).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Dns(_) | Self::Tls(_) | Self::Unreachable(_))
    }

    /// The domain error a client gets, naming the provider.
    pub fn into_error(self, provider: &str) -> Error {
        let text = format!("provider {provider}: {self}");
        match self {
            Self::Dns(_) => {
                Error::new(ErrorKind::Unavailable, text).with_reason(Reason::ProviderDnsFailed)
            }
            Self::Tls(_) => {
                Error::new(ErrorKind::Unavailable, text).with_reason(Reason::ProviderTlsFailed)
            }
            Self::Unreachable(_) | Self::Interrupted(_) => {
                Error::new(ErrorKind::Unavailable, text).with_reason(Reason::ProviderUnreachable)
            }
            // Not PERMISSION_DENIED, which would mean the caller's own
            // access: the provider refused the key the agent holds.
            Self::Unauthorized(_) => Error::new(ErrorKind::FailedPrecondition, text)
                .with_reason(Reason::ProviderUnauthorized),
            Self::RateLimited { retry_after, .. } => {
                let err = Error::new(ErrorKind::ResourceExhausted, text)
                    .with_reason(Reason::ProviderRateLimited);
                match retry_after {
                    Some(seconds) => err.with_metadata("retry_after_seconds", &seconds.to_string()),
                    None => err,
                }
            }
            Self::ServerError { .. } | Self::InStream { .. } => {
                Error::new(ErrorKind::Unavailable, text).with_reason(Reason::ProviderDown)
            }
            Self::Rejected { status: 404, .. } => {
                Error::not_found(text).with_reason(Reason::ModelNotFound)
            }
            Self::Rejected { message, .. } => Error::invalid_argument(
                "request",
                format!("provider {provider} refused it: {message}"),
            ),
            Self::WrongApi(_) => Error::new(ErrorKind::FailedPrecondition, text)
                .with_reason(Reason::ProviderWrongApi),
        }
    }
}

/// What a failed send means: DNS, TLS, or nothing answering. reqwest
/// reports all three as "connect" errors; the source chain tells them
/// apart (hyper-util's resolver error, rustls's error).
pub fn classify_transport(err: &reqwest::Error) -> OpenAiError {
    let text = crate::http::describe(err);
    if err.is_connect() {
        let mut source = std::error::Error::source(err);
        while let Some(inner) = source {
            if inner.downcast_ref::<rustls::Error>().is_some() {
                return OpenAiError::Tls(text);
            }
            if let Some(io) = inner.downcast_ref::<std::io::Error>()
                && io.get_ref().is_some_and(|e| e.is::<rustls::Error>())
            {
                return OpenAiError::Tls(text);
            }
            source = inner.source();
        }
        return classify_text(text);
    }
    if err.is_timeout() {
        OpenAiError::Unreachable(text)
    } else {
        OpenAiError::Interrupted(text)
    }
}

/// What a connection failure's description says: DNS, TLS, or nothing
/// answering. (Where only the text is left, as from Ollama's client, and
/// where rustls's error is wrapped beyond a downcast.)
pub fn classify_text(text: String) -> OpenAiError {
    let lower = text.to_ascii_lowercase();
    if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
    {
        OpenAiError::Dns(text)
    } else if lower.contains("tls")
        || lower.contains("certificate")
        || lower.contains("handshake")
        || lower.contains("invalidcontenttype")
        || lower.contains("corrupt message")
        || lower.contains("received fatal alert")
    {
        OpenAiError::Tls(text)
    } else {
        OpenAiError::Unreachable(text)
    }
}

/// The start of a body, on one line, for error messages.
fn snippet(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 120 {
        out = out.chars().take(117).collect::<String>() + "...";
    }
    out
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorFields,
}

#[derive(Deserialize)]
struct ErrorFields {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// A failed answer as an [`OpenAiError`], by its status and body.
fn error_answer(status: u16, retry_after: Option<u64>, body: &[u8]) -> OpenAiError {
    let parsed = serde_json::from_slice::<ErrorEnvelope>(body).ok();
    let (message, code) = match parsed {
        Some(envelope) => {
            let code = match envelope.error.code {
                Some(serde_json::Value::String(code)) => code,
                Some(serde_json::Value::Number(code)) => code.to_string(),
                _ => envelope.error.kind.unwrap_or_default(),
            };
            (
                envelope
                    .error
                    .message
                    .unwrap_or_else(|| format!("HTTP {status}")),
                code,
            )
        }
        None if status == 404 && !looks_like_json(body) => {
            return OpenAiError::WrongApi(format!(
                "HTTP 404 for an API path ({}); is the URL the one the API paths follow (often ending in /v1)?",
                snippet(body)
            ));
        }
        None => (snippet(body), String::new()),
    };
    match status {
        401 | 403 => OpenAiError::Unauthorized(message),
        429 => OpenAiError::RateLimited {
            message,
            retry_after,
        },
        500..=599 => OpenAiError::ServerError { status, message },
        _ => OpenAiError::Rejected {
            status,
            message,
            code,
        },
    }
}

fn looks_like_json(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
}

/// One model of `GET /models`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct ApiModel {
    /// Its id, the name requests use.
    pub id: String,
    /// Unix seconds.
    pub created: i64,
    /// Owner as the server says.
    pub owned_by: String,
}

#[derive(Deserialize)]
struct ModelList {
    data: Vec<ApiModel>,
}

/// The answer of `POST /embeddings`, vectors in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiEmbeddings {
    /// The model that embedded.
    pub model: String,
    /// One vector per input.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens of the inputs.
    pub prompt_tokens: u64,
}

#[derive(Deserialize)]
struct EmbeddingList {
    data: Vec<EmbeddingItem>,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    #[serde(default)]
    index: usize,
    embedding: Vec<f32>,
}

/// A client for one OpenAI-compatible server.
#[derive(Clone)]
pub struct OpenAiApi {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
    headers: Vec<(String, String)>,
    timeout: Duration,
}

impl fmt::Debug for OpenAiApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key or the header values.
        f.debug_struct("OpenAiApi")
            .field("base", &self.base)
            .field("has_key", &self.key.is_some())
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OpenAiApi {
    /// A client for `base` (the URL the API paths follow, e.g.
    /// `http://127.0.0.1:1234/v1`).
    pub fn new(
        http: reqwest::Client,
        base: &str,
        key: Option<String>,
        headers: Vec<(String, String)>,
        timeout: Duration,
    ) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            headers,
            timeout,
        }
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
        match &self.key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// Send, bounded by the timeout until the status line; a failed answer
    /// becomes its error.
    async fn send(
        &self,
        builder: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, OpenAiError> {
        let response = match tokio::time::timeout(self.timeout, builder.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => return Err(classify_transport(&err)),
            Err(_) => {
                return Err(OpenAiError::Unreachable(format!(
                    "no answer within {} s",
                    self.timeout.as_secs()
                )));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response.bytes().await.unwrap_or_default();
        Err(error_answer(status.as_u16(), retry_after, &body))
    }

    /// A whole JSON answer, within the timeout.
    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        builder: reqwest::RequestBuilder,
        what: &str,
    ) -> Result<T, OpenAiError> {
        let response = self.send(builder).await?;
        let bytes = match tokio::time::timeout(self.timeout, response.bytes()).await {
            Ok(Ok(bytes)) => bytes,
            Ok(Err(err)) => return Err(classify_transport(&err)),
            Err(_) => {
                return Err(OpenAiError::Unreachable(format!(
                    "the answer did not arrive within {} s",
                    self.timeout.as_secs()
                )));
            }
        };
        serde_json::from_slice(&bytes).map_err(|_| {
            OpenAiError::WrongApi(format!(
                "{what} answered something else than the OpenAI API's answer: {}",
                snippet(&bytes)
            ))
        })
    }

    /// `GET /models`.
    pub async fn models(&self) -> Result<Vec<ApiModel>, OpenAiError> {
        let list: ModelList = self
            .json(self.request(reqwest::Method::GET, "/models"), "/models")
            .await?;
        Ok(list.data)
    }

    /// `POST /chat/completions` (`chat`) or `/completions`, streamed;
    /// `body` is the request as the API takes it, `stream` already set.
    pub async fn stream(
        &self,
        chat: bool,
        body: &serde_json::Value,
    ) -> Result<CompletionStream, OpenAiError> {
        let path = if chat {
            "/chat/completions"
        } else {
            "/completions"
        };
        let response = self
            .send(self.request(reqwest::Method::POST, path).json(body))
            .await?;
        let html = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/html"));
        if html {
            let body = response.bytes().await.unwrap_or_default();
            return Err(OpenAiError::WrongApi(format!(
                "{path} answered an HTML page: {}",
                snippet(&body)
            )));
        }
        Ok(CompletionStream::from_response(response, EVENT_LIMIT))
    }

    /// `POST /embeddings` with float vectors.
    pub async fn embed(&self, model: &str, input: &[String]) -> Result<ApiEmbeddings, OpenAiError> {
        let body =
            serde_json::json!({ "model": model, "input": input, "encoding_format": "float" });
        let mut list: EmbeddingList = self
            .json(
                self.request(reqwest::Method::POST, "/embeddings")
                    .json(&body),
                "/embeddings",
            )
            .await?;
        list.data.sort_by_key(|item| item.index);
        if list.data.len() != input.len() {
            return Err(OpenAiError::WrongApi(format!(
                "/embeddings returned {} vectors for {} inputs",
                list.data.len(),
                input.len()
            )));
        }
        Ok(ApiEmbeddings {
            model: list.model,
            vectors: list.data.into_iter().map(|item| item.embedding).collect(),
            prompt_tokens: list.usage.map_or(0, |u| u.prompt_tokens),
        })
    }
}

/// A streamed completion: text pieces, then one last piece with the
/// finish reason and the token counts (timings are the caller's). Dropping
/// it closes the connection, which makes the server stop generating.
#[derive(Debug)]
pub struct CompletionStream {
    response: reqwest::Response,
    decoder: Decoder,
    pending: std::collections::VecDeque<Result<Piece, ChunkError>>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    ended: bool,
}

impl CompletionStream {
    /// The stream of a response whose status was accepted, refusing events
    /// longer than `limit` bytes. Public (hidden) for the fuzz targets
    /// (`fuzz/targets`), which feed it bodies cut into arbitrary pieces.
    #[doc(hidden)]
    pub fn from_response(response: reqwest::Response, limit: usize) -> Self {
        Self {
            response,
            decoder: Decoder::new(limit),
            pending: std::collections::VecDeque::new(),
            finish_reason: None,
            usage: None,
            ended: false,
        }
    }

    /// The next piece; `None` after the last one. An error ends the
    /// stream.
    pub async fn next(&mut self) -> Option<Result<ReplyChunk, OpenAiError>> {
        if self.ended {
            return None;
        }
        loop {
            while let Some(piece) = self.pending.pop_front() {
                match piece {
                    Ok(Piece::Done) => return Some(Ok(self.last())),
                    Ok(Piece::Delta {
                        content,
                        finish_reason,
                        usage,
                    }) => {
                        if finish_reason.is_some() {
                            self.finish_reason = finish_reason;
                        }
                        if usage.is_some() {
                            self.usage = usage;
                        }
                        if !content.is_empty() {
                            return Some(Ok(ReplyChunk {
                                text: content,
                                ..ReplyChunk::default()
                            }));
                        }
                    }
                    Err(ChunkError::Server { message, code }) => {
                        return Some(Err(self.fail(OpenAiError::InStream { message, code })));
                    }
                    Err(ChunkError::NotOpenAi(start)) => {
                        return Some(Err(self.fail(OpenAiError::WrongApi(format!(
                            "the stream is not the OpenAI API's: {start}"
                        )))));
                    }
                }
            }
            match self.response.chunk().await {
                Ok(Some(bytes)) => match self.decoder.feed(&bytes) {
                    Ok(events) => self
                        .pending
                        .extend(events.iter().map(|event| chunks::piece(&event.data))),
                    Err(err) => {
                        return Some(Err(self.fail(OpenAiError::WrongApi(err.to_string()))));
                    }
                },
                Ok(None) => {
                    if let Err(err) = self.decoder.finish() {
                        return Some(Err(self.fail(OpenAiError::WrongApi(err.to_string()))));
                    }
                    // Some servers close after the finish reason without
                    // `[DONE]`: the reply is whole. Without either it was
                    // cut off.
                    if self.finish_reason.is_some() {
                        return Some(Ok(self.last()));
                    }
                    return Some(Err(self.fail(OpenAiError::Interrupted(
                        "the stream ended before the reply was complete".to_owned(),
                    ))));
                }
                Err(err) => {
                    let err = classify_transport(&err);
                    return Some(Err(self.fail(err)));
                }
            }
        }
    }

    fn fail(&mut self, err: OpenAiError) -> OpenAiError {
        self.ended = true;
        self.pending.clear();
        err
    }

    fn last(&mut self) -> ReplyChunk {
        self.ended = true;
        self.pending.clear();
        let usage = self.usage.take();
        ReplyChunk {
            text: String::new(),
            done: true,
            done_reason: self
                .finish_reason
                .take()
                .unwrap_or_else(|| "stop".to_owned()),
            stats: Some(GenerationStats {
                prompt_eval_count: usage.map_or(0, |u| u.prompt_tokens),
                eval_count: usage.map_or(0, |u| u.completion_tokens),
                ..GenerationStats::default()
            }),
            context: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(body: &'static str) -> CompletionStream {
        CompletionStream::from_response(
            reqwest::Response::from(http::Response::new(body)),
            EVENT_LIMIT,
        )
    }

    async fn all(mut s: CompletionStream) -> Vec<Result<ReplyChunk, OpenAiError>> {
        let mut out = Vec::new();
        while let Some(piece) = s.next().await {
            out.push(piece);
        }
        out
    }

    #[tokio::test]
    async fn a_stream_gives_text_then_one_last_piece_with_usage() {
        let pieces = all(stream(concat!(
            "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            ": keep-alive\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"length\"}]}\n\n",
            "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n",
            "data: [DONE]\n\n",
        )))
        .await;
        let texts: Vec<String> = pieces
            .iter()
            .filter_map(|p| p.as_ref().ok().map(|c| c.text.clone()))
            .collect();
        assert_eq!(texts, ["Hel", "lo", ""]);
        let last = pieces
            .last()
            .cloned()
            .and_then(Result::ok)
            .unwrap_or_default();
        assert!(last.done);
        assert_eq!(last.done_reason, "length");
        let stats = last.stats.unwrap_or_default();
        assert_eq!((stats.prompt_eval_count, stats.eval_count), (3, 2));
    }

    #[tokio::test]
    async fn an_error_in_the_stream_ends_it_and_a_cut_stream_is_an_error() {
        let pieces = all(stream(concat!(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
            "data: {\"error\":{\"message\":\"CUDA out of memory\",\"type\":\"server_error\"}}\n\n",
            "data: {\"choices\":[{\"delta\":{\"content\":\"never\"}}]}\n\n",
        )))
        .await;
        assert_eq!(pieces.len(), 2);
        assert_eq!(
            pieces[1],
            Err(OpenAiError::InStream {
                message: "CUDA out of memory".into(),
                code: "server_error".into()
            })
        );
        let cut = all(stream(
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        ))
        .await;
        assert!(matches!(cut.last(), Some(Err(OpenAiError::Interrupted(_)))));
        let html = all(stream("data: <html>\n\n")).await;
        assert!(matches!(html.last(), Some(Err(OpenAiError::WrongApi(_)))));
    }

    #[test]
    fn failed_answers_map_to_reasons_naming_the_provider() {
        let body = br#"{"error":{"message":"Incorrect API key","code":"invalid_api_key"}}"#;
        let err = error_answer(401, None, body).into_error("lmstudio");
        assert_eq!(err.reason(), Some(Reason::ProviderUnauthorized));
        assert!(err.message().contains("lmstudio"), "{err}");
        let err =
            error_answer(429, Some(7), b"{\"error\":{\"message\":\"slow down\"}}").into_error("p");
        assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
        assert_eq!(err.reason(), Some(Reason::ProviderRateLimited));
        assert!(
            err.metadata()
                .contains(&("retry_after_seconds".to_owned(), "7".to_owned()))
        );
        let err = error_answer(502, None, b"bad gateway").into_error("vllm");
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.message().contains("vllm"));
        let err = error_answer(404, None, b"<html>Not Found</html>").into_error("p");
        assert_eq!(err.reason(), Some(Reason::ProviderWrongApi));
        let err = error_answer(
            404,
            None,
            br#"{"error":{"message":"no such model","code":"model_not_found"}}"#,
        )
        .into_error("p");
        assert_eq!(err.reason(), Some(Reason::ModelNotFound));
    }

    fn api(url: &str) -> OpenAiApi {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = crate::http::HttpOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: None,
            max_idle_per_host: None,
            tls: crate::http::Tls::SystemRoots,
            follow_redirects: true,
        };
        let http = crate::http::client(&options).unwrap_or_default();
        OpenAiApi::new(http, url, None, Vec::new(), Duration::from_secs(30))
    }

    #[tokio::test]
    async fn transport_failures_are_told_apart_on_real_sockets() {
        // A closed port: refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let refused = api(&format!("http://127.0.0.1:{closed}/v1")).models().await;
        assert!(
            matches!(refused, Err(OpenAiError::Unreachable(_))),
            "{refused:?}"
        );

        // A port that speaks plain HTTP, asked for TLS.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await;
        let plain = plain
            .ok()
            .and_then(|l| l.local_addr().ok().map(|a| (l, a.port())));
        let Some((listener, port)) = plain else {
            panic!("cannot listen on loopback");
        };
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
            }
        });
        let tls = api(&format!("https://127.0.0.1:{port}/v1")).models().await;
        assert!(matches!(tls, Err(OpenAiError::Tls(_))), "{tls:?}");

        // A name that never resolves (RFC 6761), offline as online.
        let dns = api("http://nonexistent.invalid/v1").models().await;
        assert!(matches!(dns, Err(OpenAiError::Dns(_))), "{dns:?}");
    }
}
