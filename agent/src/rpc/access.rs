//! Who is calling and what they may do, decided in one place for every RPC:
//! a tower layer in front of all services. On the Unix socket the peer's uid
//! (SO_PEERCRED) must be ours, for every method including health checks,
//! and makes the caller the owner; on TCP a bearer token grants its scope,
//! and only a health Check needs none. What each method needs comes from
//! the `omnipanel.v1.access` option its proto declares ([`Policies`], read
//! at start-up); a method declaring nothing needs admin and the owner, so a
//! new RPC is never accidentally open. A stream opened with a token ends
//! when the token is revoked. Every response carries the agent version
//! header.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use std::collections::HashMap;

use http::{HeaderValue, Request, Response};
use omnipanel_proto::{FILE_DESCRIPTOR_SET, VERSION_HEADER, access::method_policies};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Status, body::Body, transport::server::UdsConnectInfo};
use tower::{Layer, Service};

use crate::{
    platform::peer,
    rpc::{convert::TryFromProto, status::to_status},
};
use omnipanel_core::reason::Reason;
use omnipanel_core::{
    error::{Error, ErrorKind},
    tokens::{Caller, Scope, Tokens},
};

/// Who is calling, put into the request extensions for handlers: GetInfo
/// reports the scope, ProjectService applies the project roots to tokens,
/// SystemService hides other users' command lines from tokens.
#[derive(Debug, Clone)]
pub struct Granted(pub Caller);

/// The caller a handler serves. Every request that reaches a handler went
/// through [`AccessLayer`]; one that somehow did not is refused, not served
/// as the owner.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Caller, Status> {
    request
        .extensions()
        .get::<Granted>()
        .map(|granted| granted.0.clone())
        .ok_or_else(|| {
            to_status(
                Error::permission_denied("the caller was not identified")
                    .with_reason(Reason::NoPeerCredentials),
            )
        })
}

/// What one method asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The least scope; `None` for health checks, which need no token on
    /// TCP (on the socket the caller's uid is still checked).
    pub scope: Option<Scope>,
    /// Only the owner, never a token.
    pub owner_only: bool,
}

/// What a method that declares nothing needs: everything, so a new RPC
/// without its `omnipanel.v1.access` option is never accidentally open.
const UNDECLARED: Requirement = Requirement {
    scope: Some(Scope::Admin),
    owner_only: true,
};

/// Every method's [`Requirement`], read from the `omnipanel.v1.access`
/// option of each RPC in the compiled-in descriptor set.
#[derive(Debug, Clone)]
pub struct Policies {
    by_path: HashMap<String, Requirement>,
}

impl Policies {
    /// Read the policies the proto files declare.
    pub fn from_descriptors() -> Result<Self, Error> {
        let methods =
            method_policies(FILE_DESCRIPTOR_SET).map_err(|err| Error::internal(err.to_string()))?;
        let mut by_path = HashMap::new();
        for method in methods {
            let requirement =
                method.policy.map_or(UNDECLARED, |policy| {
                    match Scope::try_from_proto(policy.scope) {
                        Ok(scope) => Requirement {
                            scope: Some(scope),
                            owner_only: policy.owner_only,
                        },
                        Err(_) => UNDECLARED,
                    }
                });
            by_path.insert(method.path, requirement);
        }
        Ok(Self { by_path })
    }

    /// What the method at `path` (`/package.Service/Method`) needs.
    pub fn required(&self, path: &str) -> Requirement {
        if let Some(requirement) = self.by_path.get(path) {
            return *requirement;
        }
        let read = Requirement {
            scope: Some(Scope::Read),
            owner_only: false,
        };
        match path.trim_start_matches('/').split_once('/') {
            // A load balancer or container probe may check health over TCP
            // without a token; watching health holds a stream open, so that
            // needs one.
            Some(("grpc.health.v1.Health", "Check")) => Requirement {
                scope: None,
                owner_only: false,
            },
            Some(("grpc.health.v1.Health", _)) => read,
            Some((
                "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection",
                _,
            )) => read,
            _ => UNDECLARED,
        }
    }

    /// The scope the method at `path` needs (see [`Policies::required`]).
    pub fn required_scope(&self, path: &str) -> Option<Scope> {
        self.required(path).scope
    }
}

/// How callers on one listener are identified.
#[derive(Debug, Clone)]
pub enum Listener {
    /// The Unix socket: the peer uid must equal `owner_uid`.
    Unix {
        /// Our uid.
        owner_uid: u32,
    },
    /// TCP: bearer tokens.
    Tcp {
        /// The token index.
        tokens: Tokens,
    },
}

impl Listener {
    fn identify<B>(&self, req: &Request<B>) -> Result<Caller, Error> {
        match self {
            Self::Unix { owner_uid } => {
                let uid = req
                    .extensions()
                    .get::<UdsConnectInfo>()
                    .and_then(|info| info.peer_cred)
                    .map(|cred| peer::peer_uid(&cred));
                match uid {
                    Some(uid) if uid == *owner_uid => Ok(Caller::Owner),
                    Some(uid) => Err(Error::permission_denied(format!(
                        "this agent belongs to uid {owner_uid}; connections from uid {uid} are refused"
                    ))
                    .with_reason(Reason::ForeignUid)),
                    None => Err(Error::permission_denied(
                        "the caller's identity could not be read from the socket",
                    )
                    .with_reason(Reason::NoPeerCredentials)),
                }
            }
            Self::Tcp { tokens } => {
                let header = req
                    .headers()
                    .get(http::header::AUTHORIZATION)
                    .and_then(|value| value.to_str().ok());
                let Some(header) = header else {
                    return Err(Error::new(
                        ErrorKind::Unauthenticated,
                        "this listener needs a token: send `authorization: Bearer <token>`",
                    )
                    .with_reason(Reason::TokenMissing));
                };
                let secret = header
                    .strip_prefix("Bearer ")
                    .or_else(|| header.strip_prefix("bearer "))
                    .unwrap_or(header)
                    .trim();
                tokens.verify(secret).map(Caller::Token).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Unauthenticated,
                        "the token is not valid or was revoked",
                    )
                    .with_reason(Reason::TokenInvalid)
                })
            }
        }
    }
}

/// The layer; one per listener.
#[derive(Debug, Clone)]
pub struct AccessLayer {
    listener: Arc<Listener>,
    policies: Arc<Policies>,
    version: HeaderValue,
}

impl AccessLayer {
    /// A layer identifying callers the way `listener` does and holding them
    /// to `policies`.
    pub fn new(listener: Listener, policies: Arc<Policies>) -> Self {
        Self {
            listener: Arc::new(listener),
            policies,
            // A stamped version is checked text, but a header must never panic.
            version: HeaderValue::from_str(omnipanel_core::version::current())
                .unwrap_or_else(|_| HeaderValue::from_static(env!("CARGO_PKG_VERSION"))),
        }
    }
}

impl<S> Layer<S> for AccessLayer {
    type Service = AccessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`AccessLayer`].
#[derive(Debug, Clone)]
pub struct AccessService<S> {
    inner: S,
    layer: AccessLayer,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S> Service<Request<Body>> for AccessService<S>
where
    S: Service<Request<Body>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let version = self.layer.version.clone();
        let path = req.uri().path().to_owned();
        let decision = decide(
            &self.layer.listener,
            self.layer.policies.required(&path),
            &path,
            self.layer.listener.identify(&req),
        );
        match decision {
            Ok(caller) => {
                let revoked = match &caller {
                    Some(Caller::Token(grant)) => Some(grant.revoked.clone()),
                    _ => None,
                };
                if let Some(caller) = caller {
                    req.extensions_mut().insert(Granted(caller));
                }
                // The clone that was polled ready must serve this call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    let response = inner.call(req).await?;
                    let (mut parts, body) = response.into_parts();
                    parts.headers.insert(VERSION_HEADER, version);
                    let body = match revoked {
                        Some(revoked) => Body::new(RevocableBody::new(body, revoked)),
                        None => body,
                    };
                    Ok(Response::from_parts(parts, body))
                })
            }
            Err(err) => {
                tracing::warn!(path, error = %err, "request refused");
                let status: Status = to_status(err);
                let mut response = status.into_http::<Body>();
                response.headers_mut().insert(VERSION_HEADER, version);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

/// Whether a caller identified as `identified` may call `path`, which
/// needs `needed`: the caller to put into the request (none for an
/// anonymous health check over TCP), or why not.
fn decide(
    listener: &Listener,
    needed: Requirement,
    path: &str,
    identified: Result<Caller, Error>,
) -> Result<Option<Caller>, Error> {
    let Some(scope) = needed.scope else {
        // A foreign uid on our socket learns nothing, not even that we
        // are alive; over TCP an anonymous health check is fine.
        return match identified {
            Ok(caller) => Ok(Some(caller)),
            Err(err) if matches!(listener, Listener::Unix { .. }) => Err(err),
            Err(_) => Ok(None),
        };
    };
    let caller = identified?;
    if needed.owner_only && !caller.is_owner() {
        return Err(Error::permission_denied(format!(
            "{path} is only for the agent's owner on its local socket; {} may not call it",
            caller.describe()
        ))
        .with_reason(Reason::OwnerOnly));
    }
    if caller.scope() < scope {
        return Err(Error::permission_denied(format!(
            "{path} needs the {} scope; this caller has {}",
            scope.name(),
            caller.scope().name()
        ))
        .with_reason(Reason::ScopeTooLow));
    }
    Ok(Some(caller))
}

/// A response body that ends, with UNAUTHENTICATED in its trailers, when the
/// token the call was made with is revoked: a stream opened with a token
/// must not outlive it.
struct RevocableBody {
    inner: Body,
    revoked: Pin<Box<WaitForCancellationFutureOwned>>,
    ended: bool,
}

impl RevocableBody {
    fn new(inner: Body, revoked: CancellationToken) -> Self {
        Self {
            inner,
            revoked: Box::pin(revoked.cancelled_owned()),
            ended: false,
        }
    }
}

impl http_body::Body for RevocableBody {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        if self.revoked.as_mut().poll(cx).is_ready() {
            self.ended = true;
            let status = to_status(
                Error::new(
                    ErrorKind::Unauthenticated,
                    "the token this call was made with was revoked",
                )
                .with_reason(Reason::TokenInvalid),
            );
            let mut trailers = http::HeaderMap::new();
            return Poll::Ready(Some(match status.add_header(&mut trailers) {
                Ok(()) => Ok(http_body::Frame::trailers(trailers)),
                Err(err) => Err(err),
            }));
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use omnipanel_core::tokens::TokenGrant;
    use omnipanel_proto::v1 as pb;

    use super::*;

    fn policies() -> Policies {
        match Policies::from_descriptors() {
            Ok(policies) => policies,
            Err(err) => panic!("{err}"),
        }
    }

    fn token(scope: Scope) -> Caller {
        Caller::Token(TokenGrant {
            id: "t1".into(),
            scope,
            revoked: CancellationToken::new(),
        })
    }

    #[test]
    fn required_scope_is_what_each_rpc_declares_in_the_proto() {
        let policies = policies();
        let methods = match method_policies(FILE_DESCRIPTOR_SET) {
            Ok(methods) => methods,
            Err(err) => panic!("{err}"),
        };
        assert!(methods.len() > 70);
        for method in methods {
            let Some(declared) = method.policy else {
                panic!("{} declares no access policy", method.path);
            };
            let declared_scope = match declared.scope() {
                pb::Scope::Read => Scope::Read,
                pb::Scope::Write => Scope::Write,
                pb::Scope::Admin => Scope::Admin,
                pb::Scope::Status | pb::Scope::Infer => continue,
                pb::Scope::Unspecified => panic!("{} declares no scope", method.path),
            };
            assert_eq!(
                policies.required_scope(&method.path),
                Some(declared_scope),
                "{}",
                method.path
            );
            assert_eq!(
                policies.required(&method.path).owner_only,
                declared.owner_only,
                "{}",
                method.path
            );
        }
    }

    #[test]
    fn mutations_need_more_than_read_and_unknown_methods_need_everything() {
        let policies = policies();
        let scope = |path| policies.required_scope(path);
        assert_eq!(
            scope("/omnipanel.v1.AgentService/GetInfo"),
            Some(Scope::Read)
        );
        assert_eq!(
            scope("/omnipanel.v1.AgentService/Shutdown"),
            Some(Scope::Admin)
        );
        assert_eq!(
            scope("/omnipanel.v1.SystemService/SetThresholds"),
            Some(Scope::Write)
        );
        assert_eq!(scope("/grpc.health.v1.Health/Check"), None);
        assert_eq!(scope("/grpc.health.v1.Health/Watch"), Some(Scope::Read));
        assert_eq!(policies.required("/made.Up/Thing"), UNDECLARED);
    }

    #[test]
    fn tokens_get_their_scope_and_never_owner_only_methods() {
        // Any listener: the requirement, not how the caller was identified,
        // decides here.
        let tcp = Listener::Unix { owner_uid: 0 };
        let admin_owner_only = Requirement {
            scope: Some(Scope::Read),
            owner_only: true,
        };
        let write = Requirement {
            scope: Some(Scope::Write),
            owner_only: false,
        };
        let refused = decide(&tcp, admin_owner_only, "/x/Y", Ok(token(Scope::Admin)));
        assert!(
            matches!(&refused, Err(err) if err.reason() == Some(Reason::OwnerOnly)),
            "{refused:?}"
        );
        assert!(decide(&tcp, admin_owner_only, "/x/Y", Ok(Caller::Owner)).is_ok());
        let refused = decide(&tcp, write, "/x/Y", Ok(token(Scope::Read)));
        assert!(
            matches!(&refused, Err(err) if err.reason() == Some(Reason::ScopeTooLow)),
            "{refused:?}"
        );
        assert!(decide(&tcp, write, "/x/Y", Ok(token(Scope::Write))).is_ok());
    }
}
