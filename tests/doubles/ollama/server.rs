//! The fake Ollama HTTP server: shared state, the router, the access log
//! (which is also where a "hung" server stops answering), and the model
//! management endpoints (`/`, `/api/version`, `/api/tags`, `/api/ps`,
//! `/api/show`, `/api/pull`, `/api/delete`), plus the test-only
//! `/__fake/stats`. Generation lives in `generate.rs`, the registry's
//! manifest endpoint (not part of Ollama's API) in `registry.rs`.
//!
//! Request bodies are parsed by hand rather than with axum's `Json`
//! extractor, because Ollama (gin) accepts JSON whatever the
//! `Content-Type`, and `curl -d` sends a form type.

use std::{
    cmp::Reverse,
    collections::HashSet,
    convert::Infallible,
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::{Stream, StreamExt, wrappers::ReceiverStream};

use crate::{
    catalog::{self, CatalogModel, Details},
    clock, embed, generate,
    keep_alive::KeepAlive,
    loaded::Loaded,
    logline,
    names::ModelName,
    pull::{Line, PullConfig, Puller},
    registry,
    stats::Stats,
    store::Store,
};

/// What `/api/version` and `--version` report.
pub const VERSION: &str = "0.0.0-fake";

/// Behaviour knobs of one server (see the switches in `main.rs`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub token_delay: Duration,
    pub default_keep_alive: KeepAlive,
    pub pull: PullConfig,
    /// Stop answering requests this long after the server started.
    pub hang_after: Option<Duration>,
    /// End every streamed generation and chat with an error line.
    pub reply_failure: Option<ReplyFailure>,
}

/// `FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS`: a reply that breaks off after
/// `after_tokens` tokens with `{"error": message}`, as Ollama does when
/// its model runner fails in the middle of a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyFailure {
    pub after_tokens: usize,
    pub message: String,
}

/// State shared by all requests.
#[derive(Debug)]
pub struct App {
    pub store: Arc<Store>,
    pub stats: Arc<Stats>,
    pub puller: Arc<Puller>,
    pub loaded: Loaded,
    pub token_delay: Duration,
    pub default_keep_alive: KeepAlive,
    pub reply_failure: Option<ReplyFailure>,
    started: Instant,
    hang_after: Option<Duration>,
}

impl App {
    /// The hang clock starts now, so create the app right after binding.
    pub fn new(store: Arc<Store>, settings: Settings) -> Arc<Self> {
        let stats = Arc::new(Stats::default());
        let puller = Arc::new(Puller::new(
            Arc::clone(&store),
            Arc::clone(&stats),
            settings.pull,
        ));
        Arc::new(Self {
            store,
            stats,
            puller,
            loaded: Loaded::default(),
            token_delay: settings.token_delay,
            reply_failure: settings.reply_failure,
            default_keep_alive: settings.default_keep_alive,
            started: Instant::now(),
            hang_after: settings.hang_after,
        })
    }

    fn is_hung(&self) -> bool {
        self.hang_after
            .is_some_and(|after| self.started.elapsed() >= after)
    }
}

/// Serves until the listener fails.
pub async fn serve(listener: TcpListener, app: Arc<App>) -> io::Result<()> {
    use axum::serve::ListenerExt;
    let service = router(app).into_make_service_with_connect_info::<SocketAddr>();
    // Go's net/http (and so real Ollama) turns Nagle off on every
    // connection; without this, small streamed chunks would wait for
    // delayed ACKs and the double would be slower than the real thing.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, service).await
}

/// Every route of the fake. `get` routes answer `HEAD` too, as Ollama's do.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/api/version", get(version))
        .route("/api/tags", get(tags))
        .route("/api/ps", get(ps))
        .route("/api/show", post(show))
        .route("/api/pull", post(pull))
        .route("/api/delete", delete(remove))
        .route("/api/generate", post(generate::generate))
        .route("/api/chat", post(generate::chat))
        .route("/api/embed", post(embed::embed))
        .route("/__fake/stats", get(stats))
        // Registry stand-in, so one process can play registry.ollama.ai too.
        .route(registry::ROUTE, get(registry::manifest_endpoint))
        .fallback(not_found)
        // gin, which Ollama uses, answers a wrong method with a plain 404.
        .method_not_allowed_fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), access_log))
        .with_state(app)
}

/// Counts and logs every request, and is where a hung server stalls.
async fn access_log(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if app.is_hung() {
        // The connection stays open and nothing is ever written: to a
        // client this looks like a server stuck in a deadlock.
        return std::future::pending().await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
        .unwrap_or_default();
    app.stats.count_request(&path);
    let started = Instant::now();
    let response = next.run(request).await;
    logline::access(
        response.status().as_u16(),
        started.elapsed(),
        &client,
        method.as_str(),
        &path,
    );
    response
}

/// A JSON reply, with gin's `Content-Type`.
pub fn json_reply<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            bytes,
        )
            .into_response(),
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("could not encode reply: {err}"),
        )
            .into_response(),
    }
}

/// Ollama's error shape, also the last line of a stream that broke off.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    pub error: &'a str,
}

/// Ollama's error shape: `{"error": "..."}`.
pub fn error_reply(status: StatusCode, message: &str) -> Response {
    json_reply(status, &ErrorBody { error: message })
}

/// An error reply not yet rendered; small enough to travel in a `Result`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_reply(self.status, &self.message)
    }
}

/// A streamed reply, one JSON document per line.
pub fn ndjson_reply(lines: impl Stream<Item = String> + Send + 'static) -> Response {
    let body = Body::from_stream(lines.map(|mut line| {
        line.push('\n');
        Ok::<_, Infallible>(line)
    }));
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response()
}

/// Decodes a JSON request body, answering 400 as Ollama does if it cannot.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing request body",
        ));
    }
    serde_json::from_slice(body)
        .map_err(|err| ApiError::new(StatusCode::BAD_REQUEST, err.to_string()))
}

/// Encodes a line of a stream; these plain structs always serialise.
pub fn encode<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string())
}

/// The installed model a raw name refers to, if any.
pub fn installed(app: &App, raw: &str) -> Option<&'static CatalogModel> {
    let name = ModelName::parse(raw)?;
    app.store.installed_model(&name.key())?;
    catalog::lookup(&name)
}

/// The shortest form of a stored name (`tinyllama:latest`), as Ollama
/// lists models.
fn display_name(key: &str) -> String {
    ModelName::parse(key).map_or_else(|| key.to_string(), |name| name.display())
}

/// Bodies that name a model: `model`, or the older `name`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ModelRequest {
    model: Option<String>,
    name: Option<String>,
    stream: Option<bool>,
}

impl ModelRequest {
    fn requested(&self) -> String {
        self.model
            .clone()
            .filter(|m| !m.is_empty())
            .or_else(|| self.name.clone())
            .unwrap_or_default()
    }
}

#[derive(Serialize)]
struct Models<T> {
    models: Vec<T>,
}

#[derive(Serialize)]
struct ListedModel {
    name: String,
    model: String,
    modified_at: String,
    size: u64,
    digest: String,
    details: Details,
}

#[derive(Serialize)]
struct RunningModel {
    name: String,
    model: String,
    size: u64,
    digest: String,
    details: Details,
    expires_at: String,
    size_vram: u64,
}

#[derive(Serialize)]
struct ShowReply {
    license: &'static str,
    modelfile: String,
    parameters: String,
    template: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    system: &'static str,
    details: Details,
    model_info: serde_json::Map<String, serde_json::Value>,
    capabilities: Vec<&'static str>,
    modified_at: String,
}

#[derive(Serialize)]
struct VersionReply {
    version: &'static str,
}

async fn root() -> &'static str {
    "Ollama is running"
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}

async fn version() -> Response {
    json_reply(StatusCode::OK, &VersionReply { version: VERSION })
}

async fn stats(State(app): State<Arc<App>>) -> Response {
    json_reply(StatusCode::OK, &app.stats.snapshot())
}

async fn tags(State(app): State<Arc<App>>) -> Response {
    let mut listed: Vec<(u64, ListedModel)> = app
        .store
        .installed()
        .into_iter()
        .filter_map(|(key, saved)| {
            let model = catalog::find(&saved.name)?;
            let name = display_name(&key);
            Some((
                saved.modified_at_ns,
                ListedModel {
                    name: name.clone(),
                    model: name,
                    modified_at: clock::rfc3339(u128::from(saved.modified_at_ns)),
                    size: model.total_size(),
                    digest: model.manifest_digest.clone(),
                    details: model.details(),
                },
            ))
        })
        .collect();
    // Newest first, as `ollama list` shows them.
    listed.sort_by_key(|(modified_at, _)| Reverse(*modified_at));
    let models = listed.into_iter().map(|(_, m)| m).collect();
    json_reply(StatusCode::OK, &Models { models })
}

async fn ps(State(app): State<Arc<App>>) -> Response {
    let models = app
        .loaded
        .running(clock::now_nanos())
        .into_iter()
        .map(|running| {
            let model = running.model;
            let name = display_name(model.key());
            RunningModel {
                name: name.clone(),
                model: name,
                size: model.total_size(),
                digest: model.manifest_digest.clone(),
                details: model.details(),
                expires_at: clock::rfc3339(running.expires_at),
                size_vram: model.total_size(),
            }
        })
        .collect();
    json_reply(StatusCode::OK, &Models { models })
}

async fn show(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let request: ModelRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    let raw = request.requested();
    if raw.is_empty() {
        return error_reply(StatusCode::BAD_REQUEST, "model is required");
    }
    let Some(model) = installed(&app, &raw) else {
        return error_reply(StatusCode::NOT_FOUND, &format!("model '{raw}' not found"));
    };
    let modified_at = app
        .store
        .installed_model(model.key())
        .map_or(0, |saved| saved.modified_at_ns);
    json_reply(
        StatusCode::OK,
        &ShowReply {
            license: model.spec.license,
            modelfile: model.modelfile(app.store.dir()),
            parameters: model.parameters_text(),
            template: model.spec.template,
            system: model.spec.system,
            details: model.details(),
            model_info: model.model_info(),
            capabilities: model.capabilities(),
            modified_at: clock::rfc3339(u128::from(modified_at)),
        },
    )
}

async fn pull(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let request: ModelRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    let Some(name) = ModelName::parse(&request.requested()) else {
        return error_reply(StatusCode::BAD_REQUEST, "invalid model name");
    };
    let model = catalog::lookup(&name);
    let key = name.key();
    // The pull runs in its own task and stops when the receiver is dropped,
    // which is how a client disconnect cancels it.
    let (tx, mut rx) = mpsc::channel(32);
    let puller = Arc::clone(&app.puller);
    tokio::spawn(async move { puller.run(&key, model, &tx).await });
    if request.stream.unwrap_or(true) {
        return ndjson_reply(ReceiverStream::new(rx).map(|line| line.to_json()));
    }
    // Not streaming: the last status, or the error with a 500, as Ollama's
    // `waitForStream` does.
    let mut last = None;
    while let Some(line) = rx.recv().await {
        match line {
            Line::Progress(progress) => last = Some(progress),
            Line::Error(message) => {
                return error_reply(StatusCode::INTERNAL_SERVER_ERROR, &message);
            }
        }
    }
    match last {
        Some(progress) if progress.status == "success" => json_reply(StatusCode::OK, &progress),
        _ => error_reply(StatusCode::INTERNAL_SERVER_ERROR, "unknown error"),
    }
}

async fn remove(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let request: ModelRequest = match parse_body(&body) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    let raw = request.requested();
    let Some(model) = installed(&app, &raw) else {
        return error_reply(StatusCode::NOT_FOUND, &format!("model '{raw}' not found"));
    };
    app.store.uninstall(model.key());
    app.loaded.unload(model, clock::now_nanos());
    // Like Ollama, drop the blobs no remaining model uses.
    let still_used: HashSet<String> = app
        .store
        .installed()
        .iter()
        .filter_map(|(_, saved)| catalog::find(&saved.name))
        .flat_map(|m| m.layers.iter().map(|l| l.digest.clone()))
        .collect();
    app.store.forget_layers(
        model
            .layers
            .iter()
            .map(|l| l.digest.as_str())
            .filter(|d| !still_used.contains(*d)),
    );
    match app.store.persist().await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(err) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, &err.to_string()),
    }
}
