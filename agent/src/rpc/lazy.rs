//! A gRPC service built on its first call instead of at start-up, and
//! dropped again when nobody has used it for a while. Server reflection
//! decodes every descriptor set it serves when it is built, a seventh of
//! the agent's start-up and about 4 MB held, while most sessions never see
//! a reflection client, and those that do (grpcurl, Postman) ask a few
//! questions and go. Wrapped in [`Lazy`], that cost moves to the first
//! reflection call, on the blocking pool, and goes away [`IDLE_DROP`] after
//! the last call ended; the next call builds it again.
//!
//! Nothing polls: the one timer is armed when the last open call ends
//! (for a stream, when its response body is dropped), and is not re-armed
//! by calls that come while it sleeps; when it wakes it sleeps again until
//! the latest end plus the idle time, or drops the service.

use std::{
    convert::Infallible,
    fmt,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use omnipanel_core::{error::Error, sync::lock};
use tokio::time::Instant;
use tonic::{body::Body, server::NamedService};
use tower::{Service, ServiceExt};

use crate::rpc::status::to_status;

/// How long a built service is kept after its last call ended.
pub const IDLE_DROP: Duration = Duration::from_secs(30);

/// The test suite's override of [`IDLE_DROP`], in milliseconds, so an
/// end-to-end test need not wait half a minute.
pub const IDLE_DROP_ENV: &str = "OMNIPANEL_TEST_LAZY_IDLE_MS";

/// [`IDLE_DROP`], or the test override when set.
pub fn idle_drop() -> Duration {
    std::env::var(IDLE_DROP_ENV)
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(IDLE_DROP, Duration::from_millis)
}

/// A service of type `S`, made by `build` the first time a request needs
/// it, shared by every clone, and dropped after `idle` without calls.
pub struct Lazy<S, F> {
    shared: Arc<Shared<S>>,
    build: F,
}

struct Shared<S> {
    state: Mutex<State<S>>,
    idle: Duration,
    /// Times the service was built, and dropped (for tests and logs).
    builds: AtomicU64,
    drops: AtomicU64,
}

struct State<S> {
    built: Option<Result<S, String>>,
    /// Calls whose response has not ended yet.
    open: usize,
    /// When the last call ended.
    last_end: Instant,
    /// A drop timer is sleeping.
    timer: bool,
}

impl<S, F> Lazy<S, F>
where
    F: Fn() -> Result<S, String>,
{
    /// A service that will be `build()` when first called and dropped
    /// `idle` after its last call ended. A build error answers every call
    /// with INTERNAL and that message (until it is dropped in turn).
    pub fn new(build: F, idle: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    built: None,
                    open: 0,
                    last_end: Instant::now(),
                    timer: false,
                }),
                idle,
                builds: AtomicU64::new(0),
                drops: AtomicU64::new(0),
            }),
            build,
        }
    }
}

impl<S, F> Lazy<S, F> {
    /// Whether the service is built now.
    #[cfg(test)]
    fn is_built(&self) -> bool {
        lock(&self.shared.state).built.is_some()
    }

    /// Times it was built.
    #[cfg(test)]
    fn builds(&self) -> u64 {
        self.shared.builds.load(Ordering::Relaxed)
    }
}

impl<S, F: Clone> Clone for Lazy<S, F> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            build: self.build.clone(),
        }
    }
}

impl<S, F> fmt::Debug for Lazy<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lazy")
            .field("built", &lock(&self.shared.state).built.is_some())
            .field("builds", &self.shared.builds.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<S: NamedService, F> NamedService for Lazy<S, F> {
    const NAME: &'static str = S::NAME;
}

impl<S: NamedService + Send + 'static> Shared<S> {
    /// A call ended: when it was the last one open, make sure a timer
    /// will look at the service `idle` from now.
    fn call_ended(self: &Arc<Self>) {
        let mut state = lock(&self.state);
        state.open = state.open.saturating_sub(1);
        state.last_end = Instant::now();
        if state.open > 0 || state.timer || state.built.is_none() {
            return;
        }
        // Outside a runtime (a body dropped at shutdown) there is nothing
        // to arm; the process is ending anyway.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        state.timer = true;
        drop(state);
        let shared = self.clone();
        runtime.spawn(async move { shared.drop_when_idle().await });
    }

    /// Sleep until the last call ended `idle` ago, then drop the service,
    /// unless a call is open (its end arms a new timer).
    async fn drop_when_idle(self: Arc<Self>) {
        loop {
            let deadline = lock(&self.state).last_end + self.idle;
            tokio::time::sleep_until(deadline).await;
            let mut state = lock(&self.state);
            if state.open > 0 {
                state.timer = false;
                return;
            }
            if Instant::now() >= state.last_end + self.idle {
                state.timer = false;
                let built = state.built.take();
                drop(state);
                // Freed on the blocking pool, outside the lock: freeing the
                // descriptors takes a moment, and the thread that frees
                // them caches the blocks, which the release flushes
                // before it returns the freed pages (else the resident
                // size stays where the build left it).
                // The service's code, grouped as cold, goes back with it.
                tokio::task::spawn_blocking(move || {
                    drop(built);
                    crate::platform::cold_code::hand_back();
                    crate::platform::memory::release_free_memory();
                });
                let drops = self.drops.fetch_add(1, Ordering::Relaxed) + 1;
                // Rare (once per reflection session) and what the e2e
                // test and a curious user look for.
                tracing::info!(
                    service = S::NAME,
                    drops,
                    "released a lazily built service after its idle time; the next call builds it again"
                );
                return;
            }
        }
    }
}

/// Marks its call ended when dropped.
struct OpenCall<S: NamedService + Send + 'static>(Arc<Shared<S>>);

impl<S: NamedService + Send + 'static> Drop for OpenCall<S> {
    fn drop(&mut self) {
        self.0.call_ended();
    }
}

/// A response body that holds its call open until it is dropped (a
/// reflection stream lives as long as its body).
struct HeldBody<S: NamedService + Send + 'static> {
    inner: Body,
    _open: OpenCall<S>,
}

impl<S: NamedService + Send + 'static> http_body::Body for HeldBody<S> {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl<S, F> Service<Request<Body>> for Lazy<S, F>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + NamedService
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    F: Fn() -> Result<S, String> + Clone + Send + Sync + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is the inner service's, checked per call below.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        let build = self.build.clone();
        Box::pin(async move {
            let existing = {
                let mut state = lock(&shared.state);
                state.open += 1;
                state.built.clone()
            };
            // Ends the call if this future is dropped before the response.
            let open = OpenCall(shared.clone());
            let service = match existing {
                Some(service) => service,
                None => {
                    // Two first calls may both build; the first stored wins
                    // and the other copy is dropped. Building is pure.
                    let fresh = tokio::task::spawn_blocking(build)
                        .await
                        .unwrap_or_else(|err| Err(format!("building the service failed: {err}")));
                    let mut state = lock(&shared.state);
                    if state.built.is_none() {
                        shared.builds.fetch_add(1, Ordering::Relaxed);
                        state.built = Some(fresh);
                    }
                    state.built.clone().unwrap_or_else(|| {
                        Err("the service was dropped while being built".to_owned())
                    })
                }
            };
            let response = match service {
                Ok(service) => service.oneshot(request).await,
                Err(message) => Ok(to_status(Error::internal(message)).into_http()),
            };
            Ok(response
                .unwrap_or_else(|never| match never {})
                .map(|inner| Body::new(HeldBody { inner, _open: open })))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts how often it is built; answers every call with its build
    /// number in a header.
    #[derive(Clone)]
    struct Numbered(usize);

    impl NamedService for Numbered {
        const NAME: &'static str = "test.Numbered";
    }

    impl Service<Request<Body>> for Numbered {
        type Response = Response<Body>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _request: Request<Body>) -> Self::Future {
            let mut response = Response::new(Body::new(Streaming));
            response
                .headers_mut()
                .insert("build", http::HeaderValue::from(self.0));
            std::future::ready(Ok(response))
        }
    }

    /// A response body that is still streaming: tonic replaces a body
    /// that has already ended, so only a live one holds its call open.
    struct Streaming;

    impl http_body::Body for Streaming {
        type Data = Bytes;
        type Error = tonic::Status;

        fn poll_frame(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
            Poll::Pending
        }
    }

    fn request() -> Request<Body> {
        Request::new(Body::empty())
    }

    #[tokio::test]
    async fn builds_once_on_first_call_and_shares_it() {
        static BUILDS: AtomicUsize = AtomicUsize::new(0);
        let lazy = Lazy::new(
            || Ok(Numbered(BUILDS.fetch_add(1, Ordering::SeqCst) + 1)),
            IDLE_DROP,
        );
        assert_eq!(BUILDS.load(Ordering::SeqCst), 0, "built before any call");
        let mut clone = lazy.clone();
        for service in [&mut lazy.clone(), &mut clone] {
            let Ok(response) = service.call(request()).await;
            assert_eq!(response.headers()["build"], "1");
        }
        assert_eq!(BUILDS.load(Ordering::SeqCst), 1);
        assert_eq!(
            <Lazy<Numbered, fn() -> Result<Numbered, String>>>::NAME,
            "test.Numbered"
        );
    }

    #[tokio::test]
    async fn a_failed_build_answers_internal_with_its_message() {
        let mut lazy = Lazy::new(
            || Err::<Numbered, _>("no descriptors".to_owned()),
            IDLE_DROP,
        );
        let Ok(response) = lazy.call(request()).await;
        // gRPC errors travel in headers: status 13 is INTERNAL.
        assert_eq!(response.headers()["grpc-status"], "13");
        assert_eq!(response.headers()["grpc-message"], "no%20descriptors");
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_after_the_idle_time_and_built_again_on_the_next_call() {
        let idle = Duration::from_secs(30);
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = builds.clone();
        let mut lazy = Lazy::new(
            move || Ok(Numbered(counter.fetch_add(1, Ordering::SeqCst) + 1)),
            idle,
        );
        let Ok(response) = lazy.call(request()).await;
        assert_eq!(response.headers()["build"], "1");
        // The call is open while its body lives: no timer runs.
        tokio::time::sleep(idle * 3).await;
        assert!(lazy.is_built(), "dropped under an open call");
        drop(response);
        // Calls that come and go before the deadline push it back.
        tokio::time::sleep(idle / 2).await;
        let Ok(response) = lazy.call(request()).await;
        drop(response);
        tokio::time::sleep(idle / 2 + Duration::from_secs(1)).await;
        assert!(
            lazy.is_built(),
            "dropped before the last call was idle long enough"
        );
        tokio::time::sleep(idle / 2).await;
        assert!(
            !lazy.is_built(),
            "still built a full idle time after the last call"
        );
        assert_eq!(lazy.builds(), 1);
        // The next call builds a fresh one.
        let Ok(response) = lazy.call(request()).await;
        assert_eq!(response.headers()["build"], "2");
        assert_eq!(lazy.builds(), 2);
        assert_eq!(builds.load(Ordering::SeqCst), 2);
        drop(response);
        tokio::time::sleep(idle + Duration::from_secs(1)).await;
        assert!(!lazy.is_built());
    }
}
