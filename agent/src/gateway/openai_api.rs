//! OpenAI's HTTP API, the subset tools use: `/v1/models`,
//! `/v1/chat/completions`, `/v1/completions` and `/v1/embeddings`, with
//! Server-Sent Events exactly as OpenAI streams them (`data: {...}` events
//! of `chat.completion.chunk` or `text_completion` objects, the role in the
//! first delta, a last chunk with the finish reason, the usage chunk with
//! empty choices when `stream_options.include_usage` asks, then
//! `data: [DONE]`), and errors as `{"error": {"message", "type", "param",
//! "code"}}`. Embeddings come as floats or, when `encoding_format` is
//! `base64` (the `openai` Python package's default), as the base64 of
//! little-endian f32s.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use omnipanel_core::{
    ollama::{ChatMessage, GenerateParams, GenerationOptions},
    tokens::{Scope, hex, random_bytes},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    Peer, St,
    backend::{Piece, public_name},
    listen,
    ollama_api::inputs,
    refuse,
    reply::{Dialect, Failure},
    streaming::{self, Framing},
    wire::now_unix,
};

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Sampling parameters both completion endpoints take.
#[derive(Debug, Deserialize, Default)]
struct Sampling {
    temperature: Option<f64>,
    top_p: Option<f64>,
    max_tokens: Option<u64>,
    max_completion_tokens: Option<u64>,
    stop: Option<Value>,
    seed: Option<i64>,
    frequency_penalty: Option<f64>,
    presence_penalty: Option<f64>,
    response_format: Option<Value>,
}

impl Sampling {
    /// The domain's options: Ollama's option names as JSON, and the format.
    fn options(&self) -> GenerationOptions {
        let mut options = serde_json::Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                options.insert(key.to_owned(), value);
            }
        };
        put("temperature", self.temperature.map(Value::from));
        put("top_p", self.top_p.map(Value::from));
        put(
            "num_predict",
            self.max_completion_tokens
                .or(self.max_tokens)
                .map(Value::from),
        );
        put(
            "stop",
            self.stop.clone().map(|stop| match stop {
                Value::String(one) => json!([one]),
                many => many,
            }),
        );
        put("seed", self.seed.map(Value::from));
        put("frequency_penalty", self.frequency_penalty.map(Value::from));
        put("presence_penalty", self.presence_penalty.map(Value::from));
        let format = match &self.response_format {
            Some(format) => match format["type"].as_str() {
                Some("json_object") => "json".to_owned(),
                Some("json_schema") => format["json_schema"]["schema"].to_string(),
                _ => String::new(),
            },
            None => String::new(),
        };
        GenerationOptions {
            options_json: if options.is_empty() {
                String::new()
            } else {
                Value::Object(options).to_string()
            },
            keep_alive: String::new(),
            format,
        }
    }
}

#[derive(Debug, Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<InMessage>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    #[serde(flatten)]
    sampling: Sampling,
}

#[derive(Debug, Deserialize)]
struct CompletionRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: Value,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    #[serde(flatten)]
    sampling: Sampling,
}

#[derive(Debug, Deserialize)]
struct EmbeddingRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    encoding_format: Option<String>,
}

/// A message's content: a string, or parts of text and images (data URLs
/// carry the image; remote URLs are not fetched).
fn message(m: InMessage) -> Result<ChatMessage, Failure> {
    let role = if m.role == "developer" {
        "system".to_owned()
    } else {
        m.role
    };
    let mut content = String::new();
    let mut images = Vec::new();
    match m.content {
        Value::Null => {}
        Value::String(text) => content = text,
        Value::Array(parts) => {
            for part in parts {
                match part["type"].as_str() {
                    Some("text") => content.push_str(part["text"].as_str().unwrap_or_default()),
                    Some("image_url") => {
                        let url = part["image_url"]["url"]
                            .as_str()
                            .or_else(|| part["image_url"].as_str())
                            .unwrap_or_default();
                        match url.split_once(";base64,") {
                            Some((head, data)) if head.starts_with("data:") => {
                                images.push(data.to_owned())
                            }
                            _ => {
                                return Err(Failure::bad_request(
                                    "images must be data URLs (data:image/...;base64,...)",
                                )
                                .in_dialect(Dialect::OpenAi));
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {
            return Err(Failure::bad_request(
                "message content must be a string or a list of parts",
            )
            .in_dialect(Dialect::OpenAi));
        }
    }
    Ok(ChatMessage {
        role,
        content,
        images,
    })
}

fn finish_reason(piece: &Piece) -> &'static str {
    if piece.done_reason == "length" {
        "length"
    } else {
        "stop"
    }
}

fn usage(piece: &Piece) -> Value {
    let (prompt, completion) = (piece.stats.prompt_eval_count, piece.stats.eval_count);
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

fn new_id(prefix: &str) -> String {
    let bytes = random_bytes::<12>().unwrap_or_default();
    format!("{prefix}-{}", hex(&bytes))
}

/// SSE framing of chat or text completion chunks.
struct Sse {
    id: String,
    created: i64,
    model: String,
    chat: bool,
    include_usage: bool,
    first: bool,
}

impl Sse {
    fn event(value: &Value) -> Vec<u8> {
        format!("data: {value}\n\n").into_bytes()
    }

    fn chunk(&self, choices: Value, usage: Option<Value>) -> Value {
        let mut chunk = json!({
            "id": self.id,
            "object": if self.chat { "chat.completion.chunk" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_omnipanel",
            "choices": choices,
        });
        if self.include_usage {
            chunk["usage"] = usage.unwrap_or(Value::Null);
        }
        chunk
    }

    fn choice(&mut self, text: &str, finish: Option<&str>) -> Value {
        if self.chat {
            let delta = match (finish, self.first) {
                (Some(_), _) if text.is_empty() => json!({}),
                (_, true) => json!({ "role": "assistant", "content": text }),
                _ => json!({ "content": text }),
            };
            self.first = false;
            json!([{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }])
        } else {
            json!([{ "index": 0, "text": text, "logprobs": null, "finish_reason": finish }])
        }
    }
}

impl Framing for Sse {
    fn piece(&mut self, piece: &Piece) -> Vec<u8> {
        let mut out = Vec::new();
        if !piece.text.is_empty() || (self.first && !piece.done) {
            let choices = self.choice(&piece.text, None);
            out.extend(Self::event(&self.chunk(choices, None)));
        }
        if piece.done {
            let choices = self.choice("", Some(finish_reason(piece)));
            out.extend(Self::event(&self.chunk(choices, None)));
            if self.include_usage {
                out.extend(Self::event(&self.chunk(json!([]), Some(usage(piece)))));
            }
        }
        out
    }

    fn end(&mut self) -> Vec<u8> {
        b"data: [DONE]\n\n".to_vec()
    }

    fn error(&mut self, failure: &Failure) -> Vec<u8> {
        let failure = failure.clone().in_dialect(Dialect::OpenAi);
        Self::event(&failure.body())
    }

    const DIALECT: Dialect = Dialect::OpenAi;

    fn response(body: Body) -> Response {
        sse(body)
    }
}

fn sse(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat_completions(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dialect = Dialect::OpenAi;
    let (mut activity, client, request) = match s.begin_with_body::<ChatRequest>(
        "POST /v1/chat/completions",
        &headers,
        peer,
        Scope::Infer,
        dialect,
        &body,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let messages = match request
        .messages
        .into_iter()
        .map(message)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(messages) => messages,
        Err(failure) => return refuse(activity, failure),
    };
    let target = match s.target(&mut activity, &client, &request.model).await {
        Ok(target) => target,
        Err(failure) => return refuse(activity, failure.in_dialect(dialect)),
    };
    let started = s.backend.started(
        s.backend
            .chat(&target, messages, request.sampling.options()),
    );
    let reply = match started.await {
        Ok(reply) => reply,
        Err(failure) => return refuse(activity, failure.in_dialect(dialect)),
    };
    let model = if request.model.is_empty() {
        target.public_name()
    } else {
        request.model
    };
    let framing = Sse {
        id: new_id("chatcmpl"),
        created: now_unix(),
        model,
        chat: true,
        include_usage: request.stream_options.is_some_and(|o| o.include_usage),
        first: true,
    };
    streaming::answer(
        reply,
        framing,
        request.stream,
        activity,
        s.shutdown.clone(),
        |framing, whole| {
            Json(json!({
                "id": framing.id,
                "object": "chat.completion",
                "created": framing.created,
                "model": framing.model,
                "system_fingerprint": "fp_omnipanel",
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": whole.text },
                    "logprobs": null,
                    "finish_reason": finish_reason(whole),
                }],
                "usage": usage(whole),
            }))
            .into_response()
        },
    )
    .await
}

/// `POST /v1/completions`.
pub(super) async fn completions(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dialect = Dialect::OpenAi;
    let (mut activity, client, request) = match s.begin_with_body::<CompletionRequest>(
        "POST /v1/completions",
        &headers,
        peer,
        Scope::Infer,
        dialect,
        &body,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let prompt = match &request.prompt {
        Value::String(text) => text.clone(),
        Value::Array(items) if items.len() == 1 && items[0].is_string() => {
            items[0].as_str().unwrap_or_default().to_owned()
        }
        _ => {
            let failure = Failure::bad_request("prompt must be one string").in_dialect(dialect);
            return refuse(activity, failure);
        }
    };
    let target = match s.target(&mut activity, &client, &request.model).await {
        Ok(target) => target,
        Err(failure) => return refuse(activity, failure.in_dialect(dialect)),
    };
    let params = GenerateParams {
        prompt,
        ..GenerateParams::default()
    };
    let started = s.backend.started(s.backend.generate(
        &target,
        params,
        request.sampling.options(),
    ));
    let reply = match started.await {
        Ok(reply) => reply,
        Err(failure) => return refuse(activity, failure.in_dialect(dialect)),
    };
    let model = if request.model.is_empty() {
        target.public_name()
    } else {
        request.model
    };
    let framing = Sse {
        id: new_id("cmpl"),
        created: now_unix(),
        model,
        chat: false,
        include_usage: request.stream_options.is_some_and(|o| o.include_usage),
        first: true,
    };
    streaming::answer(
        reply,
        framing,
        request.stream,
        activity,
        s.shutdown.clone(),
        |framing, whole| {
            Json(json!({
                "id": framing.id,
                "object": "text_completion",
                "created": framing.created,
                "model": framing.model,
                "system_fingerprint": "fp_omnipanel",
                "choices": [{
                    "index": 0,
                    "text": whole.text,
                    "logprobs": null,
                    "finish_reason": finish_reason(whole),
                }],
                "usage": usage(whole),
            }))
            .into_response()
        },
    )
    .await
}

/// An embedding as the request asked: floats, or base64 of little-endian
/// f32s.
fn encode(vector: Vec<f32>, base64: bool) -> Value {
    if base64 {
        let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        Value::from(STANDARD.encode(bytes))
    } else {
        Value::from(vector)
    }
}

/// `POST /v1/embeddings`.
pub(super) async fn embeddings(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dialect = Dialect::OpenAi;
    let (mut activity, client, request) = match s.begin_with_body::<EmbeddingRequest>(
        "POST /v1/embeddings",
        &headers,
        peer,
        Scope::Infer,
        dialect,
        &body,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            let failure =
                Failure::bad_request(format!("encoding_format {other:?} is not float or base64"))
                    .in_dialect(dialect);
            return refuse(activity, failure);
        }
    };
    let input = match inputs(&request.input, dialect) {
        Ok(input) => input,
        Err(failure) => return refuse(activity, failure),
    };
    let target = match s.target(&mut activity, &client, &request.model).await {
        Ok(target) => target,
        Err(failure) => return refuse(activity, failure.in_dialect(dialect)),
    };
    let embeddings = match s.backend.embed(&target, input).await {
        Ok(embeddings) => embeddings,
        Err(err) => return refuse(activity, Failure::from_domain(&err).in_dialect(dialect)),
    };
    activity.tokens(embeddings.prompt_tokens, 0);
    activity.ok();
    let data: Vec<Value> = embeddings
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| json!({ "object": "embedding", "index": index, "embedding": encode(vector, base64) }))
        .collect();
    let model = if request.model.is_empty() {
        target.public_name()
    } else {
        request.model
    };
    Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": embeddings.prompt_tokens, "total_tokens": embeddings.prompt_tokens },
    }))
    .into_response()
}

/// `GET /v1/models`: every provider's models the caller may use.
pub(super) async fn models(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
) -> Response {
    let dialect = Dialect::OpenAi;
    let (activity, client) = match s.begin("GET /v1/models", &headers, peer, Scope::Infer, dialect)
    {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let models = match s.backend.models().await {
        Ok(models) => models,
        Err(err) => return refuse(activity, Failure::from_domain(&err).in_dialect(dialect)),
    };
    activity.ok();
    let data: Vec<Value> = models
        .iter()
        .filter(|m| client.sees_model(&m.provider, &m.name))
        .map(|m| {
            json!({
                "id": public_name(&m.provider, &m.name),
                "object": "model",
                "created": m.modified_ms / 1000,
                "owned_by": m.provider,
            })
        })
        .collect();
    Json(json!({ "object": "list", "data": data })).into_response()
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;

    use super::*;
    use crate::gateway::backend::Stats;

    fn framing(include_usage: bool) -> Sse {
        Sse {
            id: "chatcmpl-1".into(),
            created: 7,
            model: "m".into(),
            chat: true,
            include_usage,
            first: true,
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_streamed_chat_is_openais_sse_byte_for_byte() {
        let mut sse = framing(true);
        let first = Piece {
            text: "Hi".into(),
            ..Piece::default()
        };
        assert_eq!(
            text(sse.piece(&first)),
            "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\",\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}],\"created\":7,\"id\":\"chatcmpl-1\",\"model\":\"m\",\"object\":\"chat.completion.chunk\",\"system_fingerprint\":\"fp_omnipanel\",\"usage\":null}\n\n"
        );
        let last = Piece {
            done: true,
            done_reason: "stop".into(),
            stats: Stats {
                prompt_eval_count: 3,
                eval_count: 4,
                ..Stats::default()
            },
            ..Piece::default()
        };
        let end = text(sse.piece(&last));
        let events: Vec<&str> = end.split_terminator("\n\n").collect();
        assert_eq!(events.len(), 2, "{end}");
        assert!(
            events[0].contains("\"delta\":{},\"finish_reason\":\"stop\""),
            "{end}"
        );
        assert!(events[1].contains("\"choices\":[]"), "{end}");
        assert!(
            events[1].contains(
                "\"usage\":{\"completion_tokens\":4,\"prompt_tokens\":3,\"total_tokens\":7}"
            ),
            "{end}"
        );
        assert_eq!(text(sse.end()), "data: [DONE]\n\n");
    }

    #[test]
    fn without_include_usage_there_is_no_usage_field() {
        let mut sse = framing(false);
        let piece = Piece {
            text: "x".into(),
            ..Piece::default()
        };
        assert!(!text(sse.piece(&piece)).contains("usage"));
    }

    #[test]
    fn errors_in_a_stream_are_openai_error_events() {
        let mut sse = framing(false);
        let failure = Failure::new(StatusCode::SERVICE_UNAVAILABLE, "OLLAMA_DOWN", "down");
        assert_eq!(
            text(sse.error(&failure)),
            "data: {\"error\":{\"code\":null,\"message\":\"down\",\"param\":null,\"type\":\"server_error\"}}\n\n"
        );
    }

    #[test]
    fn base64_embeddings_are_little_endian_f32s() {
        assert_eq!(encode(vec![1.0], true), Value::from("AACAPw=="));
        assert_eq!(encode(vec![0.5], false), json!([0.5]));
    }

    #[test]
    fn sampling_parameters_become_ollama_options() {
        let sampling: Sampling = serde_json::from_value(json!({
            "temperature": 0.2,
            "max_tokens": 5,
            "stop": "END",
            "response_format": { "type": "json_object" },
        }))
        .unwrap();
        let options = sampling.options();
        assert_eq!(options.format, "json");
        let parsed: Value = serde_json::from_str(&options.options_json).unwrap();
        assert_eq!(
            parsed,
            json!({ "temperature": 0.2, "num_predict": 5, "stop": ["END"] })
        );
    }

    #[test]
    fn content_parts_give_text_and_images() {
        let m = message(InMessage {
            role: "developer".into(),
            content: json!([
                { "type": "text", "text": "look" },
                { "type": "image_url", "image_url": { "url": "data:image/png;base64,AAAA" } },
            ]),
        })
        .unwrap();
        assert_eq!((m.role.as_str(), m.content.as_str()), ("system", "look"));
        assert_eq!(m.images, vec!["AAAA".to_owned()]);
    }
}
