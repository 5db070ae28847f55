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
use omnipanel_proto::{VERSION_HEADER, access::MethodPolicy};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::{Status, body::Body, transport::server::UdsConnectInfo};
use tower::{Layer, Service};

use crate::rpc::BoxFuture;

use crate::{
    platform::peer,
    rpc::{convert::TryFromProto, status::to_status},
};
use omnipanel_core::reason::Reason;
use omnipanel_core::{
    access::{Origin, owner::OwnerCredential},
    config::SocketClients,
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

/// Where a request came from, for access requests: the socket peer's pid,
/// or the TCP peer's address.
pub fn origin<T>(request: &tonic::Request<T>) -> Origin {
    if let Some(info) = request.extensions().get::<UdsConnectInfo>() {
        return Origin::Socket(
            info.peer_cred
                .and_then(|cred| cred.pid())
                .and_then(|pid| u32::try_from(pid).ok()),
        );
    }
    match request.remote_addr() {
        Some(address) => Origin::Tcp(address.to_string()),
        None => Origin::Socket(None),
    }
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
    /// The policies the proto files declare, from the methods read once
    /// at start (`omnipanel_proto::access::method_policies`).
    pub fn from_methods(methods: &[MethodPolicy]) -> Self {
        let mut by_path = HashMap::new();
        for method in methods {
            let requirement = method.policy.as_ref().map_or(UNDECLARED, |policy| {
                match Scope::try_from_proto(policy.scope) {
                    Ok(scope) => Requirement {
                        scope: Some(scope),
                        owner_only: policy.owner_only,
                    },
                    Err(_) => UNDECLARED,
                }
            });
            by_path.insert(method.path.clone(), requirement);
        }
        Self { by_path }
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
            // What any client may learn: the API's shape.
            Some((
                "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection",
                _,
            )) => Requirement {
                scope: Some(Scope::Status),
                owner_only: false,
            },
            _ => UNDECLARED,
        }
    }

    /// The scope the method at `path` needs (see [`Policies::required`]).
    pub fn required_scope(&self, path: &str) -> Option<Scope> {
        self.required(path).scope
    }
}

/// What callers are checked against: the owner credential, the tokens,
/// and who an uncredentialed socket client is.
#[derive(Debug, Clone)]
pub struct Identities {
    /// The owner credential.
    pub owner: OwnerCredential,
    /// The token index.
    pub tokens: Tokens,
    /// Who a process of the user on the socket is without a credential.
    pub socket_clients: SocketClients,
}

/// How callers on one listener are identified.
#[derive(Debug, Clone)]
pub enum Listener {
    /// The Unix socket: the peer uid must equal `owner_uid`; then the
    /// credential presented (owner credential or token) says who it is.
    Unix {
        /// Our uid.
        owner_uid: u32,
        /// What credentials are checked against.
        identities: Identities,
    },
    /// TCP: tokens; no token is a client with status only.
    Tcp {
        /// What credentials are checked against.
        identities: Identities,
    },
}

impl Listener {
    fn identify<B>(&self, req: &Request<B>) -> Result<Caller, Error> {
        let presented = req.headers().get(http::header::AUTHORIZATION).map(|value| {
            let text = value.to_str().unwrap_or_default();
            text.strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .unwrap_or(text)
                .trim()
                .to_owned()
        });
        match self {
            Self::Unix {
                owner_uid,
                identities,
            } => {
                let uid = req
                    .extensions()
                    .get::<UdsConnectInfo>()
                    .and_then(|info| info.peer_cred)
                    .map(|cred| peer::peer_uid(&cred));
                match uid {
                    Some(uid) if uid == *owner_uid => {}
                    Some(uid) => {
                        return Err(Error::permission_denied(format!(
                            "this agent belongs to uid {owner_uid}; connections from uid {uid} are refused"
                        ))
                        .with_reason(Reason::ForeignUid));
                    }
                    None => {
                        return Err(Error::permission_denied(
                            "the caller's identity could not be read from the socket",
                        )
                        .with_reason(Reason::NoPeerCredentials));
                    }
                }
                match presented {
                    Some(secret) if identities.owner.matches(&secret) => Ok(Caller::Owner),
                    Some(secret) => verify_token(identities, &secret),
                    None => Ok(match identities.socket_clients {
                        SocketClients::Trusted => Caller::Owner,
                        SocketClients::Owner => Caller::Anonymous,
                    }),
                }
            }
            Self::Tcp { identities } => match presented {
                Some(secret) if identities.owner.matches(&secret) => Err(Error::new(
                    ErrorKind::Unauthenticated,
                    "the owner credential is accepted only on the agent's local socket; over TCP present a token",
                )
                .with_reason(Reason::TokenInvalid)),
                Some(secret) => verify_token(identities, &secret),
                None => Ok(Caller::Anonymous),
            },
        }
    }
}

fn verify_token(identities: &Identities, secret: &str) -> Result<Caller, Error> {
    identities
        .tokens
        .verify(secret)
        .map(Caller::Token)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Unauthenticated,
                "the token is not valid: it was revoked, it expired, or it was never made",
            )
            .with_reason(Reason::TokenInvalid)
        })
}

/// Who made a call, put into every response's extensions (refusals too)
/// for the layers outside this one: the activity log. `None` when the
/// caller could not be identified.
#[derive(Debug, Clone)]
pub struct Identified(pub Option<Caller>);

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
        let identified = self.layer.listener.identify(&req);
        let who = identified.as_ref().ok().cloned();
        let decision = decide(
            &self.layer.listener,
            self.layer.policies.required(&path),
            &path,
            identified,
        );
        match decision {
            Ok(caller) => {
                let revoked = match &caller {
                    Some(Caller::Token(grant)) => Some((grant.revoked.clone(), grant.expires_ms)),
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
                    parts.extensions.insert(Identified(who));
                    let body = match revoked {
                        Some((revoked, expires_ms)) => {
                            Body::new(RevocableBody::new(body, revoked, expires_ms))
                        }
                        None => body,
                    };
                    Ok(Response::from_parts(parts, body))
                })
            }
            Err(err) => {
                let caller = who
                    .as_ref()
                    .map_or_else(|| "an unidentified caller".to_owned(), Caller::describe);
                let pid = req
                    .extensions()
                    .get::<UdsConnectInfo>()
                    .and_then(|info| info.peer_cred)
                    .and_then(|cred| cred.pid());
                tracing::warn!(path, caller, pid, error = %err, "request refused");
                let status: Status = to_status(err);
                let mut response = status.into_http::<Body>();
                response.headers_mut().insert(VERSION_HEADER, version);
                response.extensions_mut().insert(Identified(who));
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
    if !caller.has(scope) {
        if matches!(caller, Caller::Anonymous) {
            return Err(Error::permission_denied(format!(
                "{path} needs the {} scope, and this client was not admitted: ask the user \
                 with AgentService.RequestAccess (the user approves it in the tray, the panel or \
                 `omnipanel clients approve`), or present a token (`authorization: Bearer …`)",
                scope.name()
            ))
            .with_reason(Reason::NotAdmitted));
        }
        return Err(Error::permission_denied(format!(
            "{path} needs the {} scope; {} has {}",
            scope.name(),
            caller.describe(),
            caller.scopes().names()
        ))
        .with_reason(Reason::ScopeTooLow));
    }
    Ok(Some(caller))
}

/// A response body that ends, with UNAUTHENTICATED in its trailers, when the
/// token the call was made with is revoked or its grant expires: a stream
/// opened with a token must not outlive it.
struct RevocableBody {
    inner: Body,
    revoked: Pin<Box<WaitForCancellationFutureOwned>>,
    /// The grant's end; one sleep per open stream of an expiring grant.
    expires: Option<Pin<Box<tokio::time::Sleep>>>,
    ended: bool,
}

impl RevocableBody {
    fn new(inner: Body, revoked: CancellationToken, expires_ms: Option<i64>) -> Self {
        let expires = expires_ms.map(|at| {
            let left =
                u64::try_from(at.saturating_sub(omnipanel_core::store::now_ms())).unwrap_or(0);
            Box::pin(tokio::time::sleep(std::time::Duration::from_millis(left)))
        });
        Self {
            inner,
            revoked: Box::pin(revoked.cancelled_owned()),
            expires,
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
        let expired = self
            .expires
            .as_mut()
            .is_some_and(|sleep| sleep.as_mut().poll(cx).is_ready());
        if expired || self.revoked.as_mut().poll(cx).is_ready() {
            self.ended = true;
            let status = to_status(
                Error::new(
                    ErrorKind::Unauthenticated,
                    if expired {
                        "the access this call was made with has expired"
                    } else {
                        "the token this call was made with was revoked"
                    },
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
    use omnipanel_core::tokens::{Scopes, TokenGrant};
    use omnipanel_proto::{COMPACT_DESCRIPTOR_SET, access::method_policies, v1 as pb};

    use super::*;

    fn policies() -> Policies {
        match method_policies(COMPACT_DESCRIPTOR_SET) {
            Ok(methods) => Policies::from_methods(&methods),
            Err(err) => panic!("{err}"),
        }
    }

    fn token(scopes: Scopes) -> Caller {
        Caller::Token(TokenGrant::new("t1", scopes))
    }

    async fn identities(socket_clients: SocketClients) -> (Identities, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("owner-credential");
        let owner = OwnerCredential::load_or_create(&path).expect("credential");
        let secret = std::fs::read_to_string(&path)
            .expect("read")
            .trim()
            .to_owned();
        let store = omnipanel_core::store::Store::in_memory().expect("store");
        let tokens = Tokens::load(store).await.expect("tokens");
        (
            Identities {
                owner,
                tokens,
                socket_clients,
            },
            secret,
            dir,
        )
    }

    fn request(authorization: Option<&str>, cred: Option<peer::PeerCredentials>) -> Request<()> {
        let mut builder = Request::builder().uri("/omnipanel.v1.FileService/ReadFile");
        if let Some(value) = authorization {
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        let mut request = builder.body(()).expect("request");
        if let Some(cred) = cred {
            request.extensions_mut().insert(UdsConnectInfo {
                peer_addr: None,
                peer_cred: Some(cred),
            });
        }
        request
    }

    #[test]
    fn required_scope_is_what_each_rpc_declares_in_the_proto() {
        let policies = policies();
        let methods = match method_policies(COMPACT_DESCRIPTOR_SET) {
            Ok(methods) => methods,
            Err(err) => panic!("{err}"),
        };
        assert!(methods.len() > 80);
        for method in methods {
            let Some(declared) = method.policy else {
                panic!("{} declares no access policy", method.path);
            };
            let declared_scope = match declared.scope() {
                pb::Scope::Status => Scope::Status,
                pb::Scope::Read => Scope::Read,
                pb::Scope::Infer => Scope::Infer,
                pb::Scope::Write => Scope::Write,
                pb::Scope::Admin => Scope::Admin,
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
            Some(Scope::Status)
        );
        assert_eq!(
            scope("/omnipanel.v1.AgentService/RequestAccess"),
            Some(Scope::Status)
        );
        assert_eq!(scope("/omnipanel.v1.ModelService/Chat"), Some(Scope::Infer));
        assert_eq!(
            scope("/omnipanel.v1.AgentService/Shutdown"),
            Some(Scope::Admin)
        );
        assert_eq!(
            scope("/omnipanel.v1.SystemService/SetThresholds"),
            Some(Scope::Write)
        );
        assert!(
            policies
                .required("/omnipanel.v1.AgentService/ApproveAccess")
                .owner_only
        );
        assert_eq!(scope("/grpc.health.v1.Health/Check"), None);
        assert_eq!(scope("/grpc.health.v1.Health/Watch"), Some(Scope::Read));
        assert_eq!(policies.required("/made.Up/Thing"), UNDECLARED);
    }

    #[test]
    fn clients_get_their_scopes_and_never_owner_only_methods() {
        let socket = Listener::Unix {
            owner_uid: 0,
            identities: Identities {
                owner: OwnerCredential::load_or_create(
                    &tempfile::tempdir().expect("dir").path().join("c"),
                )
                .expect("credential"),
                tokens: futures_tokens(),
                socket_clients: SocketClients::Owner,
            },
        };
        let owner_only = Requirement {
            scope: Some(Scope::Read),
            owner_only: true,
        };
        let write = Requirement {
            scope: Some(Scope::Write),
            owner_only: false,
        };
        let reason =
            |result: Result<Option<Caller>, Error>| result.err().and_then(|err| err.reason());
        assert_eq!(
            reason(decide(
                &socket,
                owner_only,
                "/x/Y",
                Ok(token(Scopes::all()))
            )),
            Some(Reason::OwnerOnly)
        );
        assert!(decide(&socket, owner_only, "/x/Y", Ok(Caller::Owner)).is_ok());
        assert_eq!(
            reason(decide(
                &socket,
                write,
                "/x/Y",
                Ok(token(Scopes::of([Scope::Read, Scope::Infer])))
            )),
            Some(Reason::ScopeTooLow)
        );
        assert!(
            decide(
                &socket,
                write,
                "/x/Y",
                Ok(token(Scopes::of([Scope::Write])))
            )
            .is_ok()
        );
        let refused = decide(&socket, write, "/x/Y", Ok(Caller::Anonymous)).unwrap_err();
        assert_eq!(refused.reason(), Some(Reason::NotAdmitted));
        assert!(refused.message().contains("RequestAccess"), "{refused}");
        let status = Requirement {
            scope: Some(Scope::Status),
            owner_only: false,
        };
        assert!(decide(&socket, status, "/x/Y", Ok(Caller::Anonymous)).is_ok());
    }

    fn futures_tokens() -> Tokens {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime
            .block_on(Tokens::load(
                omnipanel_core::store::Store::in_memory().expect("store"),
            ))
            .expect("tokens")
    }

    #[tokio::test]
    async fn the_owner_credential_makes_the_owner_and_nothing_else_does() {
        let uid = peer::owner_uid();
        // Real credentials of this process, as the kernel gives them.
        let (ours, _theirs) = tokio::net::UnixStream::pair().expect("socket pair");
        let cred = ours.peer_cred().expect("peer credentials");
        let (identities, secret, _dir) = identities(SocketClients::Owner).await;
        let (_, token_secret) = {
            let (secret, info) = identities
                .tokens
                .create("ci", Scopes::of([Scope::Read]))
                .await
                .expect("token");
            (info, secret)
        };
        let socket = Listener::Unix {
            owner_uid: uid,
            identities: identities.clone(),
        };
        let who = |auth: Option<String>| socket.identify(&request(auth.as_deref(), Some(cred)));
        assert!(matches!(
            who(Some(format!("Bearer {secret}"))),
            Ok(Caller::Owner)
        ));
        assert!(matches!(who(None), Ok(Caller::Anonymous)));
        assert!(matches!(
            who(Some(format!("Bearer {token_secret}"))),
            Ok(Caller::Token(_))
        ));
        let wrong = who(Some("Bearer ompo_guess".into())).unwrap_err();
        assert_eq!(wrong.reason(), Some(Reason::TokenInvalid));

        let trusted = Listener::Unix {
            owner_uid: uid,
            identities: Identities {
                socket_clients: SocketClients::Trusted,
                ..identities.clone()
            },
        };
        assert!(matches!(
            trusted.identify(&request(None, Some(cred))),
            Ok(Caller::Owner)
        ));

        let tcp = Listener::Tcp { identities };
        let over_tcp = tcp
            .identify(&request(Some(&format!("Bearer {secret}")), None))
            .unwrap_err();
        assert!(
            over_tcp
                .message()
                .contains("only on the agent's local socket")
        );
        assert!(matches!(
            tcp.identify(&request(None, None)),
            Ok(Caller::Anonymous)
        ));
    }
}
