//! The fake OpenAI-compatible HTTP server: shared state, the router, the
//! one middleware where every misbehaviour switch acts (hang, wrong API
//! shape, auth, 429, 500, in that order), OpenAI's error body, `/v1/models`
//! and the test-only `/__fake/*` endpoints. Completions live in
//! `complete.rs`, embeddings in `embed.rs`.
//!
//! Request bodies are parsed by hand rather than with axum's `Json`
//! extractor, so a malformed body gets OpenAI's error shape (clients parse
//! `error.message`) instead of axum's plain-text rejection.

use std::{
    io,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;
use tokio::net::TcpListener;

use crate::{
    complete, embed,
    stats::Stats,
    switches::{Config, Patch, Switches},
};

/// `owned_by` of every listed model (LM Studio says `organization_owner`,
/// vLLM `vllm`; clients ignore it).
const OWNER: &str = "fake-openai";

/// State shared by all requests.
#[derive(Debug)]
pub struct App {
    api_key: Option<String>,
    pub models: Vec<String>,
    pub embed_dim: usize,
    pub stats: Stats,
    switches: Mutex<Switches>,
    /// Numbers the `id`s of completions, so they are unique and stable.
    next_id: AtomicU64,
    /// `created` of every model, fixed at startup like a real server's.
    started: u64,
}

impl App {
    pub fn new(config: &Config) -> Arc<Self> {
        Arc::new(Self {
            api_key: config.api_key.clone(),
            models: config.models.clone(),
            embed_dim: config.embed_dim,
            stats: Stats::default(),
            switches: Mutex::new(config.switches.clone()),
            next_id: AtomicU64::new(1),
            started: unix_now(),
        })
    }

    /// The switches as they are now (a copy: a request keeps the mode it
    /// started with even if a test flips a switch meanwhile).
    pub fn switches(&self) -> Switches {
        self.lock_switches().clone()
    }

    fn lock_switches(&self) -> std::sync::MutexGuard<'_, Switches> {
        self.switches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The listed model a request names, or OpenAI's 404.
    pub fn model<'a>(&self, name: Option<&'a str>) -> Result<&'a str, ApiError> {
        let name = name.ok_or_else(|| ApiError::missing("model"))?;
        if self.models.iter().any(|m| m == name) {
            Ok(name)
        } else {
            Err(ApiError::new(
                StatusCode::NOT_FOUND,
                format!("The model `{name}` does not exist or you do not have access to it."),
                "invalid_request_error",
                Some("model_not_found"),
            ))
        }
    }
}

/// Seconds since the epoch, for `created` fields.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Serves until the listener fails.
pub async fn serve(listener: TcpListener, app: Arc<App>) -> io::Result<()> {
    use axum::serve::ListenerExt;
    // Small SSE frames must not wait for delayed ACKs (uvicorn, which
    // vLLM and LocalAI's Python parts use, also turns Nagle off).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(app)).await
}

/// Every route of the fake.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(complete::chat))
        .route("/v1/completions", post(complete::completions))
        .route("/v1/embeddings", post(embed::embeddings))
        .route("/__fake/stats", get(stats))
        .route("/__fake/switches", get(get_switches).post(set_switches))
        .fallback(invalid_url)
        .method_not_allowed_fallback(invalid_url)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), gate))
        .with_state(app)
}

/// Counts and logs every request and applies the misbehaviour switches to
/// the API (never to `/__fake/*`, so a test can always switch back).
async fn gate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    if path.starts_with("/__fake/") {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    app.stats.count_request(&method, &path, request.headers());
    let response = match refusal(&app, &request) {
        Gate::Pass => next.run(request).await,
        Gate::Hang => {
            log(&format!("{method} {path} -> (hung, never answered)"));
            // The connection stays open and nothing is ever written: to
            // a client this is a server stuck in a deadlock.
            return std::future::pending().await;
        }
        Gate::Answer(response) => response,
    };
    log(&format!(
        "{method} {path} -> {}",
        response.status().as_u16()
    ));
    response
}

enum Gate {
    Pass,
    Hang,
    Answer(Response),
}

/// What the switches make of one API request. Counting 429s and 500s down
/// happens here, under the lock, so concurrent requests take distinct
/// slots.
fn refusal(app: &App, request: &Request) -> Gate {
    let mut switches = app.lock_switches();
    if switches.hang {
        return Gate::Hang;
    }
    if switches.wrong_shape {
        return Gate::Answer(
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                "<!doctype html><html><head><title>Not an API</title></head>\
                 <body><h1>Welcome</h1><p>This is a web page, not an \
                 OpenAI-compatible API.</p></body></html>\n",
            )
                .into_response(),
        );
    }
    if let Some(key) = &app.api_key {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        match given {
            Some(given) if given == key => {}
            Some(given) => {
                return Gate::Answer(
                    ApiError::unauthorized(format!(
                        "Incorrect API key provided: {}. You can find your API key at \
                         https://platform.openai.com/account/api-keys.",
                        redact(given)
                    ))
                    .into_response(),
                );
            }
            None => {
                return Gate::Answer(
                    ApiError::unauthorized(
                        "You didn't provide an API key. You need to provide your API key \
                         in an Authorization header using Bearer auth (i.e. Authorization: \
                         Bearer YOUR_KEY)."
                            .to_string(),
                    )
                    .into_response(),
                );
            }
        }
    }
    if switches.rate_limit_next > 0 {
        switches.rate_limit_next -= 1;
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limit reached for requests. Please try again later.".to_string(),
            "requests",
            Some("rate_limit_exceeded"),
        );
        error.retry_after = Some(switches.retry_after_secs);
        return Gate::Answer(error.into_response());
    }
    if switches.server_error_next > 0 {
        switches.server_error_next -= 1;
        return Gate::Answer(ApiError::server_error(DEFAULT_500).into_response());
    }
    Gate::Pass
}

/// OpenAI's text for an internal error.
const DEFAULT_500: &str =
    "The server had an error while processing your request. Sorry about that!";

/// A key as OpenAI echoes it in a 401: the first and last few characters.
fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

/// One log line on stderr. Write errors are ignored on purpose: a parent
/// that closed our stderr must not be able to kill the server.
pub fn log(text: &str) {
    use std::io::Write;
    let _ = writeln!(io::stderr().lock(), "fake-openai: {text}");
}

/// OpenAI's error reply: `{"error":{"message","type","param","code"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        message: String,
        kind: &'static str,
        code: Option<&'static str>,
    ) -> Self {
        Self {
            status,
            message,
            kind,
            param: None,
            code,
            retry_after: None,
        }
    }

    fn unauthorized(message: String) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            message,
            "invalid_request_error",
            Some("invalid_api_key"),
        )
    }

    pub fn server_error(message: &str) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            message.to_string(),
            "server_error",
            None,
        )
    }

    pub fn bad_request(message: String) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            message,
            "invalid_request_error",
            None,
        )
    }

    pub fn missing(param: &'static str) -> Self {
        let mut error = Self::bad_request(format!("Missing required parameter: '{param}'."));
        error.param = Some(param);
        error.code = Some("missing_required_parameter");
        error
    }

    /// The body, also the payload of a mid-stream error frame.
    pub fn body(&self) -> serde_json::Value {
        json!({ "error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = json_reply(self.status, &self.body());
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A JSON reply.
pub fn json_reply<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(err) => {
            ApiError::server_error(&format!("could not encode reply: {err}")).into_response()
        }
    }
}

/// Decodes a JSON request body into OpenAI's 400 if it cannot.
pub fn parse_body<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| {
        ApiError::bad_request(format!(
            "We could not parse the JSON body of your request. ({err})"
        ))
    })
}

async fn models(State(app): State<Arc<App>>) -> Response {
    let data: Vec<serde_json::Value> = app
        .models
        .iter()
        .map(|id| json!({ "id": id, "object": "model", "created": app.started, "owned_by": OWNER }))
        .collect();
    json_reply(StatusCode::OK, &json!({ "object": "list", "data": data }))
}

/// OpenAI's answer to a path (or method) it does not serve.
async fn invalid_url(request: Request) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "Invalid URL ({} {})",
            request.method(),
            request.uri().path()
        ),
        "invalid_request_error",
        None,
    )
    .into_response()
}

async fn stats(State(app): State<Arc<App>>) -> Response {
    json_reply(StatusCode::OK, &app.stats.snapshot())
}

async fn get_switches(State(app): State<Arc<App>>) -> Response {
    json_reply(StatusCode::OK, &app.switches())
}

async fn set_switches(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let patch: Patch = match parse_body(&body) {
        Ok(patch) => patch,
        Err(err) => return err.into_response(),
    };
    let now = {
        let mut switches = app.lock_switches();
        switches.apply(patch);
        switches.clone()
    };
    log(&format!("switches now {now:?}"));
    json_reply(StatusCode::OK, &now)
}
