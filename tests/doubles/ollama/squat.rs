//! `fake-ollama squat`: a plain HTTP server that is *not* Ollama, for
//! testing how the supervisor handles its port being taken by something
//! else. Every request, on any path, gets `404` with the text `not ollama`.

use std::{io, net::SocketAddr, time::Instant};

use axum::{
    Router,
    extract::{ConnectInfo, Request},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use tokio::net::TcpListener;

use crate::logline;

/// The squatter's only answer.
pub const BODY: &str = "not ollama";

pub fn router() -> Router {
    Router::new()
        .fallback(|| async { (StatusCode::NOT_FOUND, BODY).into_response() })
        .layer(middleware::from_fn(access_log))
}

async fn access_log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip().to_string())
        .unwrap_or_default();
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

/// Serves until the listener fails.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let service = router().into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).await
}
