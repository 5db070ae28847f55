//! `POST /v1/chat/completions` and `POST /v1/completions`, plain and
//! streamed as server-sent events the way OpenAI frames them: one
//! `data: <json>\n\n` per chunk, `data: [DONE]\n\n` last, and with
//! `stream_options.include_usage` a usage chunk with empty `choices` just
//! before `[DONE]`. The answer is deterministic (the last user message
//! echoed, then `CANNED`), split into word tokens that each keep their
//! leading whitespace, so the pieces concatenate to the exact answer.

use std::{convert::Infallible, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use crate::{
    server::{ApiError, App, json_reply, parse_body, unix_now},
    stats::Outcome,
    switches::Switches,
};

/// The fixed sentence after the echo.
pub const CANNED: &str = "This is a canned answer from fake-openai.";

/// What real servers put in `system_fingerprint`; constant here.
const FINGERPRINT: &str = "fp_fake";

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// The fields of a chat request the fake looks at; the rest (temperature,
/// tools, ...) is accepted and ignored, as llama.cpp's server does.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    model: Option<String>,
    messages: Option<Vec<Message>>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<usize>,
    max_completion_tokens: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    role: String,
    content: Option<Content>,
}

/// A message's content: a string, or a list of parts of which the text
/// parts count (images and audio are ignored).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Debug, Deserialize)]
pub struct Part {
    text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    model: Option<String>,
    prompt: Option<Prompt>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    max_tokens: Option<usize>,
}

/// A completion prompt: a string or a list of strings (a token-id prompt
/// is echoed as its JSON text).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    Text(String),
    Texts(Vec<String>),
    Other(serde_json::Value),
}

impl Prompt {
    fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            Self::Texts(texts) => texts.join("\n"),
            Self::Other(value) => value.to_string(),
        }
    }
}

/// The deterministic answer to a message.
pub fn answer(last_user: &str) -> String {
    let echo = last_user.trim();
    if echo.is_empty() {
        CANNED.to_string()
    } else {
        format!("{echo} {CANNED}")
    }
}

/// Splits text into "tokens" the way BPE vocabularies mostly do: a new
/// one starts at whitespace that follows a non-space character, so
/// `"a b"` is `["a", " b"]` and the pieces always join back to the input.
pub fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut previous_word = false;
    for c in text.chars() {
        match out.last_mut() {
            Some(last) if !(previous_word && c.is_whitespace()) => last.push(c),
            _ => out.push(c.to_string()),
        }
        previous_word = !c.is_whitespace();
    }
    out
}

/// Token counts as `usage` reports them.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
}

impl Usage {
    fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// The answer cut to `max_tokens`, and why it ended.
fn limited(mut pieces: Vec<String>, max: Option<usize>) -> (Vec<String>, &'static str) {
    match max {
        Some(max) if max < pieces.len() => {
            pieces.truncate(max);
            (pieces, "length")
        }
        _ => (pieces, "stop"),
    }
}

/// One `chat.completion.chunk`. Field order is OpenAI's; `usage` is
/// absent without `include_usage`, `null` on the content chunks with it.
#[derive(Debug, Serialize)]
struct ChatChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Debug, Serialize)]
struct ChunkChoice {
    index: u32,
    delta: Delta,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Debug, Default, Serialize)]
struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
}

/// One streamed `text_completion` chunk.
#[derive(Debug, Serialize)]
struct TextChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: Vec<TextChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Option<Usage>>,
}

#[derive(Debug, Serialize)]
struct TextChoice {
    text: String,
    index: u32,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

fn encode<T: Serialize>(value: &T) -> String {
    // Plain structs of strings and numbers: this cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

pub async fn chat(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match chat_reply(&app, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn chat_reply(app: &Arc<App>, body: &Bytes) -> Result<Response, ApiError> {
    let request: ChatRequest = parse_body(body)?;
    let messages = request
        .messages
        .as_ref()
        .ok_or_else(|| ApiError::missing("messages"))?;
    let model = app.model(request.model.as_deref())?.to_string();
    let prompt_text: Vec<String> = messages
        .iter()
        .filter_map(|m| m.content.as_ref().map(Content::text))
        .collect();
    let prompt_tokens = prompt_text.iter().map(|t| tokens(t).len()).sum();
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.as_ref())
        .map(Content::text)
        .unwrap_or_default();
    let max = request.max_completion_tokens.or(request.max_tokens);
    let (pieces, finish) = limited(tokens(&answer(&last_user)), max);
    let usage = Usage::new(prompt_tokens, pieces.len());
    let id = format!("chatcmpl-fake{}", app.next_id());
    let created = unix_now();
    let switches = app.switches();

    if request.stream != Some(true) {
        slow_down(&switches, pieces.len()).await;
        if switches.stream_error_after_chunks.is_some() {
            return Err(ApiError::server_error(&switches.stream_error_message));
        }
        return Ok(json_reply(
            StatusCode::OK,
            &json!({
                "id": id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": pieces.concat(), "refusal": null },
                    "logprobs": null,
                    "finish_reason": finish,
                }],
                "usage": usage,
            }),
        ));
    }

    let include_usage = request
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let chunk = |delta: Delta, finish_reason: Option<&'static str>| {
        encode(&ChatChunk {
            id: &id,
            object: "chat.completion.chunk",
            created,
            model: &model,
            system_fingerprint: FINGERPRINT,
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            usage: include_usage.then_some(None),
        })
    };
    let mut frames = vec![chunk(
        Delta {
            role: Some("assistant"),
            content: Some(String::new()),
        },
        None,
    )];
    for piece in pieces {
        frames.push(chunk(
            Delta {
                role: None,
                content: Some(piece),
            },
            None,
        ));
    }
    frames.push(chunk(Delta::default(), Some(finish)));
    if include_usage {
        frames.push(encode(&ChatChunk {
            id: &id,
            object: "chat.completion.chunk",
            created,
            model: &model,
            system_fingerprint: FINGERPRINT,
            choices: Vec::new(),
            usage: Some(Some(usage)),
        }));
    }
    Ok(sse(app, frames, switches))
}

pub async fn completions(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match completion_reply(&app, &body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn completion_reply(app: &Arc<App>, body: &Bytes) -> Result<Response, ApiError> {
    let request: CompletionRequest = parse_body(body)?;
    let prompt = request
        .prompt
        .as_ref()
        .ok_or_else(|| ApiError::missing("prompt"))?
        .text();
    let model = app.model(request.model.as_deref())?.to_string();
    let (pieces, finish) = limited(tokens(&answer(&prompt)), request.max_tokens);
    let usage = Usage::new(tokens(&prompt).len(), pieces.len());
    let id = format!("cmpl-fake{}", app.next_id());
    let created = unix_now();
    let switches = app.switches();

    if request.stream != Some(true) {
        slow_down(&switches, pieces.len()).await;
        if switches.stream_error_after_chunks.is_some() {
            return Err(ApiError::server_error(&switches.stream_error_message));
        }
        return Ok(json_reply(
            StatusCode::OK,
            &json!({
                "id": id,
                "object": "text_completion",
                "created": created,
                "model": model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{
                    "text": pieces.concat(),
                    "index": 0,
                    "logprobs": null,
                    "finish_reason": finish,
                }],
                "usage": usage,
            }),
        ));
    }

    let include_usage = request
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    let chunk = |choices: Vec<TextChoice>, usage: Option<Option<Usage>>| {
        encode(&TextChunk {
            id: &id,
            object: "text_completion",
            created,
            model: &model,
            system_fingerprint: FINGERPRINT,
            choices,
            usage,
        })
    };
    let choice = |text: String, finish_reason: Option<&'static str>| TextChoice {
        text,
        index: 0,
        logprobs: None,
        finish_reason,
    };
    let mut frames: Vec<String> = pieces
        .into_iter()
        .map(|piece| chunk(vec![choice(piece, None)], include_usage.then_some(None)))
        .collect();
    frames.push(chunk(
        vec![choice(String::new(), Some(finish))],
        include_usage.then_some(None),
    ));
    if include_usage {
        frames.push(chunk(Vec::new(), Some(Some(usage))));
    }
    Ok(sse(app, frames, switches))
}

/// A non-streamed answer takes as long as its streamed form would.
async fn slow_down(switches: &Switches, pieces: usize) {
    let delay = switches.token_delay();
    if !delay.is_zero() {
        let pieces = u32::try_from(pieces).unwrap_or(u32::MAX);
        tokio::time::sleep(delay.saturating_mul(pieces)).await;
    }
}

/// Streams `frames` as SSE from a task of its own, so the end of the
/// stream is observed (and counted) even when the client goes away: the
/// channel then closes and the next send fails.
fn sse(app: &Arc<App>, frames: Vec<String>, switches: Switches) -> Response {
    // Capacity 1: a disconnect is noticed at the next token, not after a
    // whole buffered answer.
    let (tx, rx) = mpsc::channel::<String>(1);
    let app = Arc::clone(app);
    tokio::spawn(async move {
        app.stats.stream_started();
        let outcome = send_frames(&tx, frames, &switches).await;
        app.stats.stream_ended(outcome);
    });
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn send_frames(
    tx: &mpsc::Sender<String>,
    frames: Vec<String>,
    switches: &Switches,
) -> Outcome {
    let cut = switches
        .stream_error_after_chunks
        .map(|n| n.min(frames.len()));
    let delay = switches.token_delay();
    for (i, frame) in frames.into_iter().enumerate() {
        if cut == Some(i) {
            break;
        }
        if i > 0 && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if tx.send(format!("data: {frame}\n\n")).await.is_err() {
            return Outcome::Cancelled;
        }
    }
    if cut.is_some() {
        // As OpenAI and vLLM end a stream that failed after it started:
        // an error object in a data frame, then the connection closes
        // without `[DONE]`.
        let error = ApiError::server_error(&switches.stream_error_message);
        let _ = tx.send(format!("data: {}\n\n", error.body())).await;
        return Outcome::Failed;
    }
    if tx.send("data: [DONE]\n\n".to_string()).await.is_err() {
        return Outcome::Cancelled;
    }
    Outcome::Completed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_join_back_to_the_text() {
        assert_eq!(tokens("Hi  there\nyou"), ["Hi", "  there", "\nyou"]);
        for text in ["", " lead", "a b c ", "x"] {
            assert_eq!(tokens(text).concat(), text);
        }
        assert_eq!(answer("  hello "), format!("hello {CANNED}"));
        assert_eq!(answer(""), CANNED);
    }
}
