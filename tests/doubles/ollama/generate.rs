//! `POST /api/generate` and `POST /api/chat`: a deterministic echo "model".
//! The reply is `You said: <input>` plus a fixed sentence, streamed one
//! word-token at a time (with `FAKE_OLLAMA_TOKEN_DELAY_MS` before each) in
//! Ollama's chunk shapes, ending with a `done: true` chunk that carries
//! nanosecond timings. Empty input loads or unloads the model instead.
//!
//! Each generation runs in its own task that stops as soon as the client
//! is gone (its channel closes), so a disconnect is visible in the stats.
//! With `FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS` a reply breaks off with an
//! `{"error": ...}` line instead of its final chunk.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use crate::{
    catalog::CatalogModel,
    clock,
    keep_alive::{self, KeepAlive},
    server::{
        self, ApiError, App, ErrorBody, ReplyFailure, encode, error_reply, json_reply, ndjson_reply,
    },
    stats::{Activity, Outcome, Work},
};

/// The sentence every reply ends with.
pub const CANNED: &str = "This reply comes from fake-ollama.";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct GenerateRequest {
    model: Option<String>,
    prompt: Option<String>,
    system: Option<String>,
    template: Option<String>,
    stream: Option<bool>,
    raw: Option<bool>,
    format: Option<Value>,
    keep_alive: Option<Value>,
    options: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ChatRequest {
    model: Option<String>,
    messages: Option<Vec<ChatMessage>>,
    stream: Option<bool>,
    format: Option<Value>,
    keep_alive: Option<Value>,
    options: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ChatMessage {
    role: Option<String>,
    content: Option<String>,
}

/// The statistics of a final chunk, all durations in nanoseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Timings {
    pub total_duration: u64,
    pub load_duration: u64,
    pub prompt_eval_count: u64,
    pub prompt_eval_duration: u64,
    pub eval_count: u64,
    pub eval_duration: u64,
}

/// Ollama's `GenerateResponse`, fields in its order.
#[derive(Debug, Serialize)]
struct GenerateChunk {
    model: String,
    created_at: String,
    response: String,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Vec<u32>>,
    #[serde(flatten)]
    timings: Option<Timings>,
}

/// Ollama's `ChatResponse`, fields in its order.
#[derive(Debug, Serialize)]
struct ChatChunk {
    model: String,
    created_at: String,
    message: AssistantMessage,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_reason: Option<&'static str>,
    done: bool,
    #[serde(flatten)]
    timings: Option<Timings>,
}

#[derive(Debug, Serialize)]
struct AssistantMessage {
    role: &'static str,
    content: String,
}

impl GenerateChunk {
    fn new(model: &str, response: String) -> Self {
        Self {
            model: model.to_string(),
            created_at: clock::rfc3339(clock::now_nanos()),
            response,
            done: false,
            done_reason: None,
            context: None,
            timings: None,
        }
    }

    fn done(
        mut self,
        reason: &'static str,
        context: Option<Vec<u32>>,
        timings: Option<Timings>,
    ) -> Self {
        self.done = true;
        self.done_reason = Some(reason);
        self.context = context;
        self.timings = timings;
        self
    }
}

impl ChatChunk {
    fn new(model: &str, content: String) -> Self {
        Self {
            model: model.to_string(),
            created_at: clock::rfc3339(clock::now_nanos()),
            message: AssistantMessage {
                role: "assistant",
                content,
            },
            done_reason: None,
            done: false,
            timings: None,
        }
    }

    fn done(mut self, reason: &'static str, timings: Option<Timings>) -> Self {
        self.done = true;
        self.done_reason = Some(reason);
        self.timings = timings;
        self
    }
}

/// What the generation task reports.
#[derive(Debug)]
enum Event {
    Token(String),
    Done {
        reason: &'static str,
        timings: Timings,
    },
    /// The reply breaks off with this error (an injected failure).
    Failed(String),
}

/// A resolved request: the name as the client wrote it (echoed back, as
/// Ollama does), the model, and its keep-alive.
struct Target {
    echo: String,
    model: &'static CatalogModel,
    keep_alive: KeepAlive,
}

fn target(
    app: &App,
    model: Option<String>,
    keep_alive: Option<&Value>,
) -> Result<Target, ApiError> {
    let echo = model.unwrap_or_default();
    if echo.is_empty() {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "model is required"));
    }
    let keep_alive = keep_alive::from_json(keep_alive, app.default_keep_alive)
        .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, err))?;
    let Some(model) = server::installed(app, &echo) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("model \"{echo}\" not found, try pulling it first"),
        ));
    };
    Ok(Target {
        echo,
        model,
        keep_alive,
    })
}

/// The empty-input request: load, or with `keep_alive` 0 unload.
fn load_or_unload(app: &App, target: &Target) -> &'static str {
    let now = clock::now_nanos();
    if target.keep_alive.is_zero() {
        app.loaded.unload(target.model, now);
        "unload"
    } else {
        app.loaded.load(target.model, target.keep_alive, now);
        "load"
    }
}

pub async fn generate(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let request: GenerateRequest = match server::parse_body(&body) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    let target = match target(&app, request.model, request.keep_alive.as_ref()) {
        Ok(target) => target,
        Err(err) => return err.into_response(),
    };
    let prompt = request.prompt.unwrap_or_default();
    let no_input = [&request.system, &request.template]
        .iter()
        .all(|s| s.as_deref().unwrap_or_default().is_empty());
    if prompt.is_empty() && no_input {
        let reason = load_or_unload(&app, &target);
        let chunk = GenerateChunk::new(&target.echo, String::new()).done(reason, None, None);
        return json_reply(StatusCode::OK, &chunk);
    }
    let reply = reply_text(&prompt, request.format.as_ref());
    let (tokens, reason) = limit(tokenize(&reply), num_predict(request.options.as_ref()));
    // Raw mode returns no context, as the API documentation says.
    let context = (!request.raw.unwrap_or(false)).then(|| context_ids(&prompt, &tokens));
    let prompt_tokens = tokenize(&prompt).len().max(1) as u64;
    let echo = target.echo.clone();
    let rx = start(&app, &target, tokens, prompt_tokens, reason);
    if request.stream.unwrap_or(true) {
        return ndjson_reply(ReceiverStream::new(rx).map(move |event| {
            encode(&match event {
                Event::Token(token) => GenerateChunk::new(&echo, token),
                Event::Done { reason, timings } => GenerateChunk::new(&echo, String::new()).done(
                    reason,
                    context.clone(),
                    Some(timings),
                ),
                Event::Failed(message) => return encode(&ErrorBody { error: &message }),
            })
        }));
    }
    let (text, done) = collect(rx).await;
    match done {
        Ok((reason, timings)) => json_reply(
            StatusCode::OK,
            &GenerateChunk::new(&echo, text).done(reason, context, Some(timings)),
        ),
        Err(message) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, &message),
    }
}

pub async fn chat(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let request: ChatRequest = match server::parse_body(&body) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    let target = match target(&app, request.model, request.keep_alive.as_ref()) {
        Ok(target) => target,
        Err(err) => return err.into_response(),
    };
    let messages = request.messages.unwrap_or_default();
    if messages.is_empty() {
        let reason = load_or_unload(&app, &target);
        let chunk = ChatChunk::new(&target.echo, String::new()).done(reason, None);
        return json_reply(StatusCode::OK, &chunk);
    }
    // Answer the last user message (or the last message, if none is).
    let input = messages
        .iter()
        .rev()
        .find(|m| m.role.as_deref() == Some("user"))
        .or(messages.last())
        .and_then(|m| m.content.clone())
        .unwrap_or_default();
    let prompt_tokens = messages
        .iter()
        .map(|m| tokenize(m.content.as_deref().unwrap_or_default()).len())
        .sum::<usize>()
        .max(1) as u64;
    let reply = reply_text(&input, request.format.as_ref());
    let (tokens, reason) = limit(tokenize(&reply), num_predict(request.options.as_ref()));
    let echo = target.echo.clone();
    let rx = start(&app, &target, tokens, prompt_tokens, reason);
    if request.stream.unwrap_or(true) {
        return ndjson_reply(ReceiverStream::new(rx).map(move |event| {
            encode(&match event {
                Event::Token(token) => ChatChunk::new(&echo, token),
                Event::Done { reason, timings } => {
                    ChatChunk::new(&echo, String::new()).done(reason, Some(timings))
                }
                Event::Failed(message) => return encode(&ErrorBody { error: &message }),
            })
        }));
    }
    let (text, done) = collect(rx).await;
    match done {
        Ok((reason, timings)) => json_reply(
            StatusCode::OK,
            &ChatChunk::new(&echo, text).done(reason, Some(timings)),
        ),
        Err(message) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, &message),
    }
}

/// Reads a whole generation (for `stream: false`): the text with how it
/// ended, or the error that broke it off.
async fn collect(
    mut rx: mpsc::Receiver<Event>,
) -> (String, Result<(&'static str, Timings), String>) {
    let mut text = String::new();
    while let Some(event) = rx.recv().await {
        match event {
            Event::Token(token) => text.push_str(&token),
            Event::Done { reason, timings } => return (text, Ok((reason, timings))),
            Event::Failed(message) => return (text, Err(message)),
        }
    }
    (text, Err("generation ended early".to_string()))
}

/// Marks the model in use (so `/api/ps` shows it at once) and starts the
/// generation task.
fn start(
    app: &Arc<App>,
    target: &Target,
    tokens: Vec<String>,
    prompt_tokens: u64,
    reason: &'static str,
) -> mpsc::Receiver<Event> {
    let newly_loaded = app
        .loaded
        .begin_use(target.model, target.keep_alive, clock::now_nanos());
    let run = Run {
        in_use: InUse {
            app: Arc::clone(app),
            model: target.model,
            keep_alive: target.keep_alive,
            open: true,
        },
        activity: app.stats.begin(Work::Generation),
        delay: app.token_delay,
        failure: app.reply_failure.clone(),
        newly_loaded,
        prompt_tokens,
        reason,
    };
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(run.run(tokens, tx));
    rx
}

/// Releases the model when a generation ends, however it ends.
struct InUse {
    app: Arc<App>,
    model: &'static CatalogModel,
    keep_alive: KeepAlive,
    open: bool,
}

impl InUse {
    fn end(&mut self) {
        if self.open {
            self.open = false;
            self.app
                .loaded
                .end_use(self.model, self.keep_alive, clock::now_nanos());
        }
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.end();
    }
}

struct Run {
    in_use: InUse,
    activity: Activity,
    delay: Duration,
    failure: Option<ReplyFailure>,
    newly_loaded: bool,
    prompt_tokens: u64,
    reason: &'static str,
}

impl Run {
    async fn run(mut self, tokens: Vec<String>, tx: mpsc::Sender<Event>) {
        let started = Instant::now();
        let eval_count = tokens.len() as u64;
        for (index, token) in tokens.into_iter().enumerate() {
            if self
                .failure
                .as_ref()
                .is_some_and(|f| f.after_tokens == index)
            {
                return self.fail(&tx).await;
            }
            if !self.delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(self.delay) => {}
                    // Dropping `self` counts the generation as cancelled.
                    () = tx.closed() => return,
                }
            }
            if tx.send(Event::Token(token)).await.is_err() {
                return;
            }
        }
        // A reply shorter than the failure point fails where it would end.
        if self.failure.is_some() {
            return self.fail(&tx).await;
        }
        // Plausible numbers: a fresh load costs more, prompt evaluation
        // scales with its length, and evaluation is the real streaming time.
        let load_duration = if self.newly_loaded { 1_250_000 } else { 25_000 };
        let prompt_eval_duration = self.prompt_tokens * 150_000;
        let eval_duration = u64::try_from(started.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(eval_count * 1_000);
        let timings = Timings {
            total_duration: load_duration + prompt_eval_duration + eval_duration + 10_000,
            load_duration,
            prompt_eval_count: self.prompt_tokens,
            prompt_eval_duration,
            eval_count,
            eval_duration,
        };
        // Book-keeping first, so a client that reads `/api/ps` or the stats
        // right after the final chunk sees the finished state.
        self.in_use.end();
        self.activity.finish(Outcome::Completed);
        let _ = tx
            .send(Event::Done {
                reason: self.reason,
                timings,
            })
            .await;
    }
}

impl Run {
    /// Ends the reply with the injected error instead of its final chunk.
    async fn fail(mut self, tx: &mpsc::Sender<Event>) {
        let message = self.failure.take().map(|f| f.message).unwrap_or_default();
        self.in_use.end();
        self.activity.finish(Outcome::Failed);
        let _ = tx.send(Event::Failed(message)).await;
    }
}

/// The deterministic reply to `input`. With `format` (`"json"` or a
/// schema) the reply is a JSON object, as a model in JSON mode gives.
pub fn reply_text(input: &str, format: Option<&Value>) -> String {
    let said = input.split_whitespace().collect::<Vec<_>>().join(" ");
    let plain = format!("You said: {said}\n{CANNED}");
    let json_mode = match format {
        Some(Value::String(f)) => f == "json",
        Some(Value::Object(_)) => true,
        _ => false,
    };
    if json_mode {
        let mut object = serde_json::Map::new();
        object.insert("reply".to_string(), Value::String(plain));
        Value::Object(object).to_string()
    } else {
        plain
    }
}

/// Splits text into word tokens, each carrying the whitespace before it,
/// so the tokens concatenate back to exactly the text.
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    for c in text.chars() {
        if c.is_whitespace() && in_word {
            tokens.push(std::mem::take(&mut current));
            in_word = false;
        }
        in_word |= !c.is_whitespace();
        current.push(c);
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// `options.num_predict`, when it limits the reply.
fn num_predict(options: Option<&Value>) -> Option<usize> {
    let n = options?.get("num_predict")?.as_i64()?;
    usize::try_from(n).ok().filter(|&n| n > 0)
}

/// Cuts the reply at `num_predict` tokens; the reason is then `length`.
fn limit(mut tokens: Vec<String>, max: Option<usize>) -> (Vec<String>, &'static str) {
    match max {
        Some(max) if tokens.len() > max => {
            tokens.truncate(max);
            (tokens, "length")
        }
        _ => (tokens, "stop"),
    }
}

/// Stand-in token ids of prompt and reply, for the `context` field.
fn context_ids(prompt: &str, reply: &[String]) -> Vec<u32> {
    tokenize(prompt)
        .iter()
        .chain(reply)
        .map(|token| {
            let hash = token.bytes().fold(0x811c_9dc5_u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            hash % 32_000 + 1
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_rebuild_the_text() {
        let text = "You said: hello  there\nThis reply.";
        let tokens = tokenize(text);
        assert_eq!(
            tokens,
            ["You", " said:", " hello", "  there", "\nThis", " reply."]
        );
        assert_eq!(tokens.concat(), text);
        assert!(tokenize("").is_empty());
    }

    #[test]
    fn reply_depends_on_input_only() {
        assert_eq!(
            reply_text("why  is the\nsky blue?", None),
            format!("You said: why is the sky blue?\n{CANNED}")
        );
        assert_eq!(reply_text("x", None), reply_text("x", None));
        let json = reply_text("x", Some(&Value::String("json".into())));
        let parsed: Value = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(parsed["reply"], reply_text("x", None));
    }

    #[test]
    fn num_predict_cuts_the_reply() {
        let tokens = tokenize("a b c d");
        let options = serde_json::json!({ "num_predict": 2 });
        assert_eq!(
            limit(tokens.clone(), num_predict(Some(&options))).1,
            "length"
        );
        assert_eq!(limit(tokens, None).1, "stop");
    }
}
