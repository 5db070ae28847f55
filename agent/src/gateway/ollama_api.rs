//! Ollama's HTTP API, the subset tools use (`docs/api.md` of Ollama):
//! version, tags, show, ps, chat, generate, embed (and the legacy
//! embeddings), pull and delete, with NDJSON streams (`"stream"` defaults
//! to true; `false` answers one object) and `{"error": "..."}` failures.
//! Models of other providers appear as `provider/model`.

use axum::{
    Json,
    body::{Body, Bytes},
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt as _;
use omnipanel_core::{
    ollama::{ChatMessage, GenerateParams, GenerationOptions, pulls::PullState},
    tokens::Scope,
};
use serde::{Deserialize, Serialize};
use tokio_stream::wrappers::WatchStream;

use super::{
    Peer, St,
    backend::{Piece, Stats, public_name},
    listen, refuse,
    reply::{Dialect, Failure},
    streaming::{self, Framing},
    wire::{json_text, now_rfc3339, rfc3339_ms},
};

const NDJSON: &str = "application/x-ndjson";

fn model_of(model: &str, name: &str) -> String {
    if model.is_empty() { name } else { model }.to_owned()
}

#[derive(Debug, Deserialize)]
pub(super) struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    images: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    messages: Vec<InMessage>,
    stream: Option<bool>,
    format: Option<serde_json::Value>,
    options: Option<serde_json::Value>,
    keep_alive: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct GenerateRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    system: String,
    #[serde(default)]
    context: Vec<i64>,
    #[serde(default)]
    raw: bool,
    stream: Option<bool>,
    format: Option<serde_json::Value>,
    options: Option<serde_json::Value>,
    keep_alive: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct NameRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    name: String,
    stream: Option<bool>,
}

impl NameRequest {
    fn model(&self) -> &str {
        if self.model.is_empty() {
            &self.name
        } else {
            &self.model
        }
    }
}

#[derive(Debug, Deserialize)]
struct EmbedRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    input: serde_json::Value,
    #[serde(default)]
    prompt: String,
}

/// The statistics of a last line.
#[derive(Debug, Serialize, PartialEq, Eq)]
struct StatsOut {
    total_duration: u64,
    load_duration: u64,
    prompt_eval_count: u64,
    prompt_eval_duration: u64,
    eval_count: u64,
    eval_duration: u64,
}

impl From<Stats> for StatsOut {
    fn from(s: Stats) -> Self {
        Self {
            total_duration: s.total_duration,
            load_duration: s.load_duration,
            prompt_eval_count: s.prompt_eval_count,
            prompt_eval_duration: s.prompt_eval_duration,
            eval_count: s.eval_count,
            eval_duration: s.eval_duration,
        }
    }
}

#[derive(Debug, Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: &'a str,
}

/// A line of `/api/chat`, in Ollama's field order.
#[derive(Debug, Serialize)]
struct ChatLine<'a> {
    model: &'a str,
    created_at: String,
    message: OutMessage<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_reason: Option<&'a str>,
    done: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    stats: Option<StatsOut>,
}

/// A line of `/api/generate`, in Ollama's field order.
#[derive(Debug, Serialize)]
struct GenerateLine<'a> {
    model: &'a str,
    created_at: String,
    response: &'a str,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a [i64]>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    stats: Option<StatsOut>,
}

fn chat_line(model: &str, piece: &Piece) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&ChatLine {
        model,
        created_at: now_rfc3339(),
        message: OutMessage {
            role: "assistant",
            content: &piece.text,
        },
        done_reason: piece.done.then_some(if piece.done_reason.is_empty() {
            "stop"
        } else {
            &piece.done_reason
        }),
        done: piece.done,
        stats: piece.done.then(|| piece.stats.into()),
    })
}

fn generate_line(model: &str, piece: &Piece) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&GenerateLine {
        model,
        created_at: now_rfc3339(),
        response: &piece.text,
        done: piece.done,
        done_reason: piece.done.then_some(if piece.done_reason.is_empty() {
            "stop"
        } else {
            &piece.done_reason
        }),
        context: (piece.done && !piece.context.is_empty()).then_some(piece.context.as_slice()),
        stats: piece.done.then(|| piece.stats.into()),
    })
}

/// NDJSON framing of chat or generate lines.
struct Ndjson {
    model: String,
    chat: bool,
}

impl Framing for Ndjson {
    fn piece(&mut self, piece: &Piece) -> Vec<u8> {
        let line = if self.chat {
            chat_line(&self.model, piece)
        } else {
            generate_line(&self.model, piece)
        };
        let mut line = line.unwrap_or_default();
        line.push(b'\n');
        line
    }

    fn end(&mut self) -> Vec<u8> {
        Vec::new()
    }

    fn error(&mut self, failure: &Failure) -> Vec<u8> {
        let mut line = failure.body().to_string().into_bytes();
        line.push(b'\n');
        line
    }

    const DIALECT: Dialect = Dialect::Ollama;

    fn response(body: Body) -> Response {
        ndjson(body)
    }
}

fn ndjson(body: Body) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    response
}

fn messages(input: Vec<InMessage>) -> Vec<ChatMessage> {
    input
        .into_iter()
        .map(|m| ChatMessage {
            role: m.role,
            content: m.content.unwrap_or_default(),
            images: m.images.unwrap_or_default(),
        })
        .collect()
}

fn options(
    options: Option<&serde_json::Value>,
    keep_alive: Option<&serde_json::Value>,
    format: Option<&serde_json::Value>,
) -> GenerationOptions {
    GenerationOptions {
        options_json: json_text(options),
        keep_alive: json_text(keep_alive),
        format: json_text(format),
    }
}

/// `POST /api/chat`.
pub(super) async fn chat(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut activity, client, request) = match s.begin_with_body::<ChatRequest>(
        "POST /api/chat",
        &headers,
        peer,
        Scope::Infer,
        Dialect::Ollama,
        &body,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let target = match s.target(&mut activity, &client, &request.model).await {
        Ok(target) => target,
        Err(failure) => return refuse(activity, failure.in_dialect(Dialect::Ollama)),
    };
    let options = options(
        request.options.as_ref(),
        request.keep_alive.as_ref(),
        request.format.as_ref(),
    );
    let started = s
        .backend
        .started(s.backend.chat(&target, messages(request.messages), options));
    let reply = match started.await {
        Ok(reply) => reply,
        Err(failure) => return refuse(activity, failure.in_dialect(Dialect::Ollama)),
    };
    let model = model_of(&request.model, &target.public_name());
    let framing = Ndjson { model, chat: true };
    streaming::answer(
        reply,
        framing,
        request.stream.unwrap_or(true),
        activity,
        s.shutdown.clone(),
        |framing, whole| json_bytes(chat_line(&framing.model, whole)),
    )
    .await
}

/// `POST /api/generate`.
pub(super) async fn generate(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut activity, client, request) = match s.begin_with_body::<GenerateRequest>(
        "POST /api/generate",
        &headers,
        peer,
        Scope::Infer,
        Dialect::Ollama,
        &body,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let target = match s.target(&mut activity, &client, &request.model).await {
        Ok(target) => target,
        Err(failure) => return refuse(activity, failure.in_dialect(Dialect::Ollama)),
    };
    let options = options(
        request.options.as_ref(),
        request.keep_alive.as_ref(),
        request.format.as_ref(),
    );
    let params = GenerateParams {
        prompt: request.prompt,
        system: request.system,
        context: request.context,
        raw: request.raw,
    };
    let reply = match s
        .backend
        .started(s.backend.generate(&target, params, options))
        .await
    {
        Ok(reply) => reply,
        Err(failure) => return refuse(activity, failure.in_dialect(Dialect::Ollama)),
    };
    let model = model_of(&request.model, &target.public_name());
    let framing = Ndjson { model, chat: false };
    streaming::answer(
        reply,
        framing,
        request.stream.unwrap_or(true),
        activity,
        s.shutdown.clone(),
        |framing, whole| json_bytes(generate_line(&framing.model, whole)),
    )
    .await
}

fn json_bytes(bytes: serde_json::Result<Vec<u8>>) -> Response {
    match bytes {
        Ok(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
        }
        Err(err) => Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            err.to_string(),
        )
        .into_response(),
    }
}

/// The inputs of an embed request: one string or a list of them.
pub(super) fn inputs(input: &serde_json::Value, dialect: Dialect) -> Result<Vec<String>, Failure> {
    let list = match input {
        serde_json::Value::String(text) => vec![text.clone()],
        serde_json::Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                Failure::bad_request("input must be a string or a list of strings")
                    .in_dialect(dialect)
            })?,
        _ => Vec::new(),
    };
    if list.is_empty() {
        return Err(Failure::bad_request("input is required").in_dialect(dialect));
    }
    Ok(list)
}

/// `POST /api/embed`, and the legacy `POST /api/embeddings` (one
/// `prompt`, one `embedding`).
async fn embed_any(s: St, peer: Peer, headers: HeaderMap, body: Bytes, legacy: bool) -> Response {
    let endpoint = if legacy {
        "POST /api/embeddings"
    } else {
        "POST /api/embed"
    };
    let (mut activity, client, request) = match s.begin_with_body::<EmbedRequest>(
        endpoint,
        &headers,
        peer.0.0,
        Scope::Infer,
        Dialect::Ollama,
        &body,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let input = if legacy {
        Ok(vec![request.prompt.clone()])
    } else {
        inputs(&request.input, Dialect::Ollama)
    };
    let input = match input {
        Ok(input) => input,
        Err(failure) => return refuse(activity, failure),
    };
    let target = match s.target(&mut activity, &client, &request.model).await {
        Ok(target) => target,
        Err(failure) => return refuse(activity, failure.in_dialect(Dialect::Ollama)),
    };
    let embeddings = match s.backend.embed(&target, input).await {
        Ok(embeddings) => embeddings,
        Err(err) => return refuse(activity, Failure::from_domain(&err)),
    };
    activity.tokens(embeddings.prompt_tokens, 0);
    activity.ok();
    if legacy {
        let first = embeddings.vectors.into_iter().next().unwrap_or_default();
        return Json(serde_json::json!({ "embedding": first })).into_response();
    }
    Json(serde_json::json!({
        "model": model_of(&request.model, &target.public_name()),
        "embeddings": embeddings.vectors,
        "total_duration": embeddings.total_duration,
        "load_duration": 0,
        "prompt_eval_count": embeddings.prompt_tokens,
    }))
    .into_response()
}

/// `POST /api/embed`.
pub(super) async fn embed(s: St, peer: Peer, headers: HeaderMap, body: Bytes) -> Response {
    embed_any(s, peer, headers, body, false).await
}

/// `POST /api/embeddings`.
pub(super) async fn embeddings(s: St, peer: Peer, headers: HeaderMap, body: Bytes) -> Response {
    embed_any(s, peer, headers, body, true).await
}

/// `GET /api/version`.
pub(super) async fn version(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
) -> Response {
    let activity = match s.begin(
        "GET /api/version",
        &headers,
        peer,
        Scope::Infer,
        Dialect::Ollama,
    ) {
        Ok((activity, _)) => activity,
        Err(refused) => return *refused,
    };
    activity.ok();
    let version = s
        .backend
        .server_version()
        .unwrap_or_else(|| "0.0.0".to_owned());
    Json(serde_json::json!({ "version": version })).into_response()
}

fn details(d: &omnipanel_core::ollama::api::Details) -> serde_json::Value {
    serde_json::json!({
        "parent_model": "",
        "format": d.format,
        "family": d.family,
        "families": if d.family.is_empty() { serde_json::Value::Null } else { serde_json::json!([d.family]) },
        "parameter_size": d.parameter_size,
        "quantization_level": d.quantization_level,
    })
}

/// `GET /api/tags`: every provider's models the caller may use.
pub(super) async fn tags(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
) -> Response {
    let (activity, client) = match s.begin(
        "GET /api/tags",
        &headers,
        peer,
        Scope::Infer,
        Dialect::Ollama,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let models = match s.backend.models().await {
        Ok(models) => models,
        Err(err) => return refuse(activity, Failure::from_domain(&err)),
    };
    activity.ok();
    let models: Vec<serde_json::Value> = models
        .iter()
        .filter(|m| client.sees_model(&m.provider, &m.name))
        .map(|m| {
            let name = public_name(&m.provider, &m.name);
            serde_json::json!({
                "name": name,
                "model": name,
                "modified_at": rfc3339_ms(m.modified_ms),
                "size": m.size,
                "digest": m.digest,
                "details": details(&m.details),
            })
        })
        .collect();
    Json(serde_json::json!({ "models": models })).into_response()
}

/// `GET /api/ps`: the models loaded on the local server.
pub(super) async fn ps(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
) -> Response {
    let (activity, client) =
        match s.begin("GET /api/ps", &headers, peer, Scope::Infer, Dialect::Ollama) {
            Ok(begun) => begun,
            Err(refused) => return *refused,
        };
    let running = match s.backend.running().await {
        Ok(running) => running,
        Err(err) => return refuse(activity, Failure::from_domain(&err)),
    };
    activity.ok();
    let models: Vec<serde_json::Value> = running
        .iter()
        .filter(|m| client.sees_model(&m.provider, &m.name))
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "model": m.name,
                "size": m.size,
                "digest": m.digest,
                "details": {},
                "expires_at": rfc3339_ms(m.expires_ms),
                "size_vram": m.size_vram,
            })
        })
        .collect();
    Json(serde_json::json!({ "models": models })).into_response()
}

/// `POST /api/show`.
pub(super) async fn show(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut activity, client, request) = match s.begin_with_body::<NameRequest>(
        "POST /api/show",
        &headers,
        peer,
        Scope::Infer,
        Dialect::Ollama,
        &body,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let target = match s.target(&mut activity, &client, request.model()).await {
        Ok(target) => target,
        Err(failure) => return refuse(activity, failure.in_dialect(Dialect::Ollama)),
    };
    let shown = match s.backend.show(&target).await {
        Ok(shown) => shown,
        Err(err) => return refuse(activity, Failure::from_domain(&err)),
    };
    activity.ok();
    let show = shown.show;
    Json(serde_json::json!({
        "license": show.license,
        "modelfile": show.modelfile,
        "parameters": show.parameters,
        "template": show.template,
        "system": show.system,
        "details": details(&show.details),
        "model_info": show.model_info,
        "capabilities": show.capabilities,
        "modified_at": show.modified_at,
    }))
    .into_response()
}

/// `POST /api/pull` (write scope): the agent's shared pull, its progress
/// as Ollama's status lines.
pub(super) async fn pull(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut activity, client, request) = match s.begin_with_body::<NameRequest>(
        "POST /api/pull",
        &headers,
        peer,
        Scope::Write,
        Dialect::Ollama,
        &body,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let target = match s.target(&mut activity, &client, request.model()).await {
        Ok(target) => target,
        Err(failure) => return refuse(activity, failure.in_dialect(Dialect::Ollama)),
    };
    let progress = match s.backend.pull(&target).await {
        Ok(progress) => progress,
        Err(err) => return refuse(activity, Failure::from_domain(&err)),
    };
    let mut updates = WatchStream::new(progress);
    if !request.stream.unwrap_or(true) {
        while let Some(update) = updates.next().await {
            match update.state {
                PullState::Succeeded => {
                    activity.ok();
                    return Json(serde_json::json!({ "status": "success" })).into_response();
                }
                PullState::Failed | PullState::Cancelled => {
                    let failure = Failure::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "PULL_FAILED",
                        update
                            .error
                            .unwrap_or_else(|| "the pull was cancelled".to_owned()),
                    );
                    return refuse(activity, failure);
                }
                PullState::Running | PullState::Retrying => {}
            }
        }
        return refuse(
            activity,
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "PULL_FAILED",
                "the pull ended without a result",
            ),
        );
    }
    let mut activity = Some(activity);
    let lines = updates.scan(false, move |ended, update| {
        if *ended {
            return std::future::ready(None);
        }
        let line = match update.state {
            PullState::Succeeded => {
                *ended = true;
                if let Some(activity) = activity.take() {
                    activity.ok();
                }
                serde_json::json!({ "status": "success" })
            }
            PullState::Failed | PullState::Cancelled => {
                *ended = true;
                let message = update
                    .error
                    .unwrap_or_else(|| "the pull was cancelled".to_owned());
                if let Some(activity) = activity.take() {
                    activity.broke_off(&Failure::new(StatusCode::OK, "PULL_FAILED", &message));
                }
                serde_json::json!({ "error": message })
            }
            PullState::Running | PullState::Retrying if update.total_bytes > 0 => {
                serde_json::json!({
                    "status": update.status,
                    "digest": update.current_layer,
                    "total": update.total_bytes,
                    "completed": update.completed_bytes,
                })
            }
            PullState::Running | PullState::Retrying => {
                serde_json::json!({ "status": update.status })
            }
        };
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        std::future::ready(Some(Ok::<_, std::convert::Infallible>(Bytes::from(bytes))))
    });
    ndjson(Body::from_stream(lines))
}

/// `DELETE /api/delete` (write scope).
pub(super) async fn delete(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (mut activity, client, request) = match s.begin_with_body::<NameRequest>(
        "DELETE /api/delete",
        &headers,
        peer,
        Scope::Write,
        Dialect::Ollama,
        &body,
    ) {
        Ok(begun) => begun,
        Err(refused) => return *refused,
    };
    let target = match s.target(&mut activity, &client, request.model()).await {
        Ok(target) => target,
        Err(failure) => return refuse(activity, failure.in_dialect(Dialect::Ollama)),
    };
    match s.backend.delete(&target).await {
        Ok(()) => {
            activity.ok();
            ().into_response()
        }
        Err(err) => refuse(activity, Failure::from_domain(&err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last() -> Piece {
        Piece {
            text: String::new(),
            done: true,
            done_reason: "stop".into(),
            stats: Stats {
                total_duration: 10,
                load_duration: 1,
                prompt_eval_count: 3,
                prompt_eval_duration: 2,
                eval_count: 4,
                eval_duration: 5,
            },
            context: vec![1, 2],
        }
    }

    fn without_time(bytes: &[u8]) -> String {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        assert!(
            value["created_at"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z'))
        );
        value["created_at"] = "T".into();
        String::from_utf8(serde_json::to_vec(&value).unwrap()).unwrap()
    }

    #[test]
    fn chat_lines_have_ollamas_fields() {
        let piece = Piece {
            text: "Hi".into(),
            ..Piece::default()
        };
        let line = chat_line("llama3.2", &piece).unwrap();
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"model":"llama3.2","created_at":""#),
            "{text}"
        );
        assert!(
            text.ends_with(r#""message":{"role":"assistant","content":"Hi"},"done":false}"#),
            "{text}"
        );
        let end = without_time(&chat_line("llama3.2", &last()).unwrap());
        assert_eq!(
            end,
            r#"{"created_at":"T","done":true,"done_reason":"stop","eval_count":4,"eval_duration":5,"load_duration":1,"message":{"content":"","role":"assistant"},"model":"llama3.2","prompt_eval_count":3,"prompt_eval_duration":2,"total_duration":10}"#
        );
    }

    #[test]
    fn the_last_generate_line_carries_the_context() {
        let end = without_time(&generate_line("m", &last()).unwrap());
        assert_eq!(
            end,
            r#"{"context":[1,2],"created_at":"T","done":true,"done_reason":"stop","eval_count":4,"eval_duration":5,"load_duration":1,"model":"m","prompt_eval_count":3,"prompt_eval_duration":2,"response":"","total_duration":10}"#
        );
        let mut framing = Ndjson {
            model: "m".into(),
            chat: false,
        };
        assert!(framing.piece(&last()).ends_with(b"}\n"));
        let failure = Failure::new(StatusCode::OK, "X", "boom");
        assert_eq!(framing.error(&failure), b"{\"error\":\"boom\"}\n");
    }

    #[test]
    fn embed_input_is_a_string_or_strings() {
        assert_eq!(
            inputs(&serde_json::json!("a"), Dialect::Ollama).unwrap(),
            vec!["a".to_owned()]
        );
        assert_eq!(
            inputs(&serde_json::json!(["a", "b"]), Dialect::Ollama)
                .unwrap()
                .len(),
            2
        );
        assert!(inputs(&serde_json::json!([1]), Dialect::Ollama).is_err());
        assert!(inputs(&serde_json::Value::Null, Dialect::Ollama).is_err());
    }
}
