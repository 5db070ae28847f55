//! The gateway: Ollama's and OpenAI's HTTP APIs (the subsets tools use)
//! in front of every provider, behind the agent's tokens, off by default
//! (`[gateway] listen`). It speaks HTTP/1.1 and JSON with axum on the
//! agent's runtime and calls the domain directly, like the gRPC layer;
//! it knows no gRPC and no generated types.
//!
//! Where things live: `mod.rs` binds the listener (TLS off loopback, with
//! the certificate the settings name, `listen.rs`), builds the routes and
//! serves until the agent stops; `auth.rs` the tokens, scopes, the
//! loopback rule and rate limits; `backend.rs` every call into the domain
//! and the bounded wait for Ollama; `ollama_api.rs` and `openai_api.rs`
//! the two wire formats and their handlers; `streaming.rs` NDJSON and SSE
//! bodies; `activity.rs` the activity-log entry and metrics of each
//! request; `metrics.rs` and `exposition.rs` `/metrics`; `reply.rs` the
//! errors in each API's shape and the one mapping from domain errors.

mod activity;
mod auth;
mod backend;
mod exposition;
mod listen;
mod metrics;
mod ollama_api;
mod openai_api;
mod reply;
mod streaming;
mod wire;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{ConnectInfo, DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use omnipanel_core::{
    audit::Audit,
    config::{GatewaySettings, Settings},
    error::{Error, Result},
    tokens::Scope,
};
use tokio_util::sync::CancellationToken;

pub use self::listen::Bound;
use self::{
    activity::Activity,
    auth::{Client, Door},
    backend::Backend,
    metrics::Metrics,
    reply::{Dialect, Failure},
};
use crate::context::AgentContext;

/// Largest request body: a chat with a few images.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// How long shutdown waits for clients to close their connections.
const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    door: Door,
    backend: Backend,
    metrics: Arc<Metrics>,
    audit: Arc<Audit>,
    ctx: Arc<AgentContext>,
    shutdown: CancellationToken,
    /// Set when Ollama itself listens off loopback (shown in /metrics).
    ollama_exposed: Option<String>,
}

type St = State<Arc<Shared>>;
type Peer = ConnectInfo<listen::PeerAddr>;

impl Shared {
    /// Begin a request: its activity record, and the caller if admitted
    /// with `scope`; otherwise the refusal, already recorded.
    fn begin(
        &self,
        endpoint: &str,
        headers: &HeaderMap,
        peer: SocketAddr,
        scope: Scope,
        dialect: Dialect,
    ) -> Result<(Activity, Client), Box<Response>> {
        let mut activity = Activity::begin(
            self.audit.clone(),
            self.metrics.clone(),
            endpoint.to_owned(),
            peer,
        );
        match self.door.admit(headers, peer, scope) {
            Ok(client) => {
                activity.caller(&client);
                Ok((activity, client))
            }
            Err(failure) => Err(Box::new(refuse(activity, failure.in_dialect(dialect)))),
        }
    }

    /// [`Shared::begin`], then the JSON body parsed as `R` (a refusal,
    /// recorded, when it is not).
    fn begin_with_body<R: serde::de::DeserializeOwned>(
        &self,
        endpoint: &str,
        headers: &HeaderMap,
        peer: SocketAddr,
        scope: Scope,
        dialect: Dialect,
        body: &axum::body::Bytes,
    ) -> Result<(Activity, Client, R), Box<Response>> {
        let (activity, client) = self.begin(endpoint, headers, peer, scope, dialect)?;
        match wire::parse(body, dialect) {
            Ok(request) => Ok((activity, client, request)),
            Err(failure) => Err(Box::new(refuse(activity, failure))),
        }
    }
}

impl Shared {
    /// What a request's model string means, once the caller may use it
    /// and its server is up (waiting, bounded, while it starts).
    async fn target(
        &self,
        activity: &mut Activity,
        client: &Client,
        model: &str,
    ) -> Result<backend::Resolved, Failure> {
        let target = self
            .backend
            .resolve(model)
            .await
            .map_err(|err| Failure::from_domain(&err))?;
        activity.model(&target.public_name());
        client.check_model(&target.provider, &target.model)?;
        self.backend.ready(&target.provider).await?;
        Ok(target)
    }
}

/// Record a failure and answer it.
fn refuse(activity: Activity, failure: Failure) -> Response {
    activity.failed(&failure);
    failure.into_response()
}

/// Bind the gateway's listener (and load its certificate) at start, so a
/// bad address or certificate stops the agent with a clear message like
/// the gRPC listener's.
pub async fn bind(settings: &GatewaySettings) -> Result<Option<Bound>> {
    let Some(addr) = settings.listen_address() else {
        return Ok(None);
    };
    listen::bind(addr, settings).await.map(Some)
}

/// Serve the gateway until the agent stops.
pub async fn serve(ctx: Arc<AgentContext>, bound: Bound, all: Settings) -> Result<()> {
    let settings = all.gateway;
    let shutdown = ctx.shutdown_token();
    let ollama_exposed = ollama_exposure(all.ollama.host.as_deref(), bound.local_addr());
    if let Some(warning) = &ollama_exposed {
        tracing::warn!("{warning}");
    }
    tracing::info!(address = ?bound.local_addr(), tls = matches!(bound, Bound::Tls(_)), "gateway serving");
    let shared = Arc::new(Shared {
        door: Door::new(ctx.access.tokens().clone(), settings.loopback_without_token),
        backend: Backend::new(
            ctx.ollama.clone(),
            settings.max_waiting as usize,
            settings.wait_timeout,
        ),
        metrics: Arc::default(),
        audit: ctx.audit.clone(),
        ctx: ctx.clone(),
        shutdown: shutdown.clone(),
        ollama_exposed,
    });
    let app = routes(shared).into_make_service_with_connect_info::<listen::PeerAddr>();
    let graceful = shutdown.clone();
    let served = async {
        match bound {
            Bound::Plain(listener) => axum::serve(listener, app)
                .with_graceful_shutdown(graceful.cancelled_owned())
                .await
                .map_err(|err| err.to_string()),
            Bound::Tls(listener) => axum::serve(listener, app)
                .with_graceful_shutdown(graceful.cancelled_owned())
                .await
                .map_err(|err| err.to_string()),
        }
    };
    let drain_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN_DEADLINE).await;
    };
    tokio::select! {
        result = served => result.map_err(|err| Error::internal(format!("the gateway failed: {err}"))),
        () = drain_deadline => {
            tracing::warn!("gateway clients kept connections open after shutdown began; stopping anyway");
            Ok(())
        }
    }
}

/// The warning to give when the local Ollama listens where other machines
/// can reach it: the gateway then guards a door next to an open one.
pub(crate) fn ollama_exposure(
    configured: Option<&str>,
    gateway: Option<SocketAddr>,
) -> Option<String> {
    let host = configured
        .map(str::to_owned)
        .or_else(|| std::env::var("OLLAMA_HOST").ok())
        .unwrap_or_default();
    let address = omnipanel_core::ollama::address::OllamaAddress::parse(&host);
    if address.is_loopback() {
        return None;
    }
    Some(format!(
        "Ollama listens on {} (ollama.host or OLLAMA_HOST), where other machines can reach it: the gateway on {} protects nothing while Ollama itself answers without a token; make Ollama listen on 127.0.0.1",
        address.listen(),
        gateway.map_or_else(|| "its address".to_owned(), |a| a.to_string())
    ))
}

fn routes(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(root).head(root))
        .route("/api/version", get(ollama_api::version))
        .route("/api/tags", get(ollama_api::tags))
        .route("/api/show", post(ollama_api::show))
        .route("/api/ps", get(ollama_api::ps))
        .route("/api/chat", post(ollama_api::chat))
        .route("/api/generate", post(ollama_api::generate))
        .route("/api/embed", post(ollama_api::embed))
        .route("/api/embeddings", post(ollama_api::embeddings))
        .route("/api/pull", post(ollama_api::pull))
        .route("/api/delete", delete(ollama_api::delete))
        .route("/v1/models", get(openai_api::models))
        .route("/v1/chat/completions", post(openai_api::chat_completions))
        .route("/v1/completions", post(openai_api::completions))
        .route("/v1/embeddings", post(openai_api::embeddings))
        .route("/metrics", get(exposition::metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(shared)
}

/// `GET /`: what Ollama answers, for tools that probe it. It says nothing
/// about the agent, so it needs no token.
async fn root() -> &'static str {
    "Ollama is running"
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "404 page not found").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_off_loopback_is_a_warning() {
        assert_eq!(ollama_exposure(Some("127.0.0.1:11434"), None), None);
        assert_eq!(ollama_exposure(Some("localhost:11434"), None), None);
        let warning = ollama_exposure(Some("0.0.0.0:11434"), "127.0.0.1:11435".parse().ok());
        assert!(
            warning.is_some_and(|w| w.contains("0.0.0.0:11434") && w.contains("127.0.0.1:11435"))
        );
    }
}
