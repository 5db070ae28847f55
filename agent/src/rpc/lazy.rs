//! A gRPC service built on its first call instead of at start-up. Server
//! reflection decodes every descriptor set it serves when it is built, a
//! seventh of the agent's start-up and memory held for good, while most
//! sessions never see a reflection client; wrapped in [`Lazy`], that cost
//! moves to the first reflection call, on the blocking pool.

use std::{
    convert::Infallible,
    fmt,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll},
};

use http::{Request, Response};
use omnipanel_core::error::Error;
use tonic::{body::Body, server::NamedService};
use tower::{Service, ServiceExt};

use crate::rpc::status::to_status;

/// A service of type `S`, made by `build` the first time a request needs
/// it and shared by every clone afterwards.
pub struct Lazy<S, F> {
    built: Arc<OnceLock<Result<S, String>>>,
    build: F,
}

impl<S, F> Lazy<S, F>
where
    F: Fn() -> Result<S, String>,
{
    /// A service that will be `build()` when first called. A build error
    /// answers every call with INTERNAL and that message.
    pub fn new(build: F) -> Self {
        Self {
            built: Arc::new(OnceLock::new()),
            build,
        }
    }
}

impl<S, F: Clone> Clone for Lazy<S, F> {
    fn clone(&self) -> Self {
        Self {
            built: self.built.clone(),
            build: self.build.clone(),
        }
    }
}

impl<S, F> fmt::Debug for Lazy<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lazy")
            .field("built", &self.built.get().is_some())
            .finish_non_exhaustive()
    }
}

impl<S: NamedService, F> NamedService for Lazy<S, F> {
    const NAME: &'static str = S::NAME;
}

impl<S, F> Service<Request<Body>> for Lazy<S, F>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
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
        let built = self.built.clone();
        let build = self.build.clone();
        Box::pin(async move {
            let service = match built.get() {
                Some(service) => service.clone(),
                None => {
                    // Two first calls may both build; the first stored wins
                    // and the other copy is dropped. Building is pure.
                    let fresh = tokio::task::spawn_blocking(build)
                        .await
                        .unwrap_or_else(|err| Err(format!("building the service failed: {err}")));
                    built.get_or_init(|| fresh).clone()
                }
            };
            match service {
                Ok(service) => service.oneshot(request).await,
                Err(message) => Ok(to_status(Error::internal(message)).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

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
            let mut response = Response::new(Body::empty());
            response
                .headers_mut()
                .insert("build", http::HeaderValue::from(self.0));
            std::future::ready(Ok(response))
        }
    }

    fn request() -> Request<Body> {
        Request::new(Body::empty())
    }

    #[tokio::test]
    async fn builds_once_on_first_call_and_shares_it() {
        static BUILDS: AtomicUsize = AtomicUsize::new(0);
        let lazy = Lazy::new(|| Ok(Numbered(BUILDS.fetch_add(1, Ordering::SeqCst) + 1)));
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
        let mut lazy = Lazy::new(|| Err::<Numbered, _>("no descriptors".to_owned()));
        let Ok(response) = lazy.call(request()).await;
        // gRPC errors travel in headers: status 13 is INTERNAL.
        assert_eq!(response.headers()["grpc-status"], "13");
        assert_eq!(response.headers()["grpc-message"], "no%20descriptors");
    }
}
