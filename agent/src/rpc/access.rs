//! Who is calling and what they may do, decided in one place for every RPC:
//! a tower layer in front of all services. On the Unix socket the peer's uid
//! (SO_PEERCRED) must be ours, for every method including health checks,
//! and grants admin; on TCP a bearer token grants its scope, and health
//! checks need none. Each method needs a scope from [`required_scope`]; a
//! method missing from that table needs admin, so a new RPC is never
//! accidentally open. Every response carries the agent version header.

use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use http::{HeaderValue, Request, Response};
use omnipanel_proto::VERSION_HEADER;
use tonic::{Status, body::Body, transport::server::UdsConnectInfo};
use tower::{Layer, Service};

use crate::{platform::peer, rpc::status::to_status};
use omnipanel_core::reason::Reason;
use omnipanel_core::{
    error::{Error, ErrorKind},
    tokens::{Scope, Tokens},
};

/// The access level granted to the current request, put into the request
/// extensions for handlers (e.g. GetInfo reports it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted(pub Scope);

/// The scope a method needs; `None` for methods that need no token on TCP
/// (health checks; on the socket the caller's uid is still checked).
/// Unknown methods need admin.
pub fn required_scope(path: &str) -> Option<Scope> {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    match (service, method) {
        ("grpc.health.v1.Health", _) => None,
        ("grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection", _) => {
            Some(Scope::Read)
        }
        (
            "omnipanel.v1.AgentService",
            "GetInfo" | "WatchEvents" | "TailLogs" | "ListCrashReports" | "GetAutostart",
        ) => Some(Scope::Read),
        (
            "omnipanel.v1.AgentService",
            "Shutdown" | "GetSettings" | "UpdateSettings" | "SetAutostart" | "CreateToken"
            | "ListTokens" | "RevokeToken",
        ) => Some(Scope::Admin),
        (
            "omnipanel.v1.ModelService",
            "GetServerStatus" | "ListModels" | "ShowModel" | "ListPulls" | "ListRunningModels"
            | "CheckFit" | "ListProviders",
        ) => Some(Scope::Read),
        (
            "omnipanel.v1.ModelService",
            "StartServer" | "StopServer" | "RestartServer" | "PullModel" | "CancelPull"
            | "DeleteModel" | "LoadModel" | "UnloadModel" | "SetDefaultModel" | "Chat" | "Generate",
        ) => Some(Scope::Write),
        ("omnipanel.v1.ModelService", "AddProvider" | "RemoveProvider") => Some(Scope::Admin),
        ("omnipanel.v1.ProjectService", "ListProjects" | "GetProject" | "GetWorkspaceState") => {
            Some(Scope::Read)
        }
        (
            "omnipanel.v1.ProjectService",
            "CreateProject" | "OpenProject" | "CloseProject" | "ForgetProject"
            | "SaveWorkspaceState",
        ) => Some(Scope::Write),
        (
            "omnipanel.v1.FileService",
            "ListDirectory" | "Stat" | "ReadFile" | "FindFiles" | "SearchText" | "Watch",
        ) => Some(Scope::Read),
        (
            "omnipanel.v1.FileService",
            "WriteFile" | "CreateDirectory" | "Move" | "Copy" | "Delete" | "ApplyBatch",
        ) => Some(Scope::Write),
        ("omnipanel.v1.GitService", "GetStatus" | "ListBranches" | "GetLog" | "GetDiff") => {
            Some(Scope::Read)
        }
        (
            "omnipanel.v1.GitService",
            "CreateBranch" | "Checkout" | "DeleteBranch" | "Stage" | "Unstage" | "Commit" | "Fetch"
            | "Pull" | "Push",
        ) => Some(Scope::Write),
        (
            "omnipanel.v1.SystemService",
            "GetSnapshot" | "StreamMetrics" | "ListProcesses" | "GetThresholds" | "ListAlerts"
            | "WatchAlerts",
        ) => Some(Scope::Read),
        ("omnipanel.v1.SystemService", "SetThresholds") => Some(Scope::Write),
        ("omnipanel.v1.UpdateService", "CheckForUpdate" | "GetUpdateStatus") => Some(Scope::Read),
        ("omnipanel.v1.UpdateService", "DownloadUpdate" | "InstallUpdate" | "Rollback") => {
            Some(Scope::Admin)
        }
        _ => Some(Scope::Admin),
    }
}

/// Methods the table above classifies on purpose (checked by a test against
/// the descriptor set, so every RPC is listed deliberately).
#[cfg(test)]
const CLASSIFIED: &[&str] = &[
    "omnipanel.v1.AgentService/GetInfo",
    "omnipanel.v1.AgentService/WatchEvents",
    "omnipanel.v1.AgentService/TailLogs",
    "omnipanel.v1.AgentService/ListCrashReports",
    "omnipanel.v1.AgentService/GetAutostart",
    "omnipanel.v1.AgentService/Shutdown",
    "omnipanel.v1.AgentService/GetSettings",
    "omnipanel.v1.AgentService/UpdateSettings",
    "omnipanel.v1.AgentService/SetAutostart",
    "omnipanel.v1.AgentService/CreateToken",
    "omnipanel.v1.AgentService/ListTokens",
    "omnipanel.v1.AgentService/RevokeToken",
    "omnipanel.v1.ModelService/GetServerStatus",
    "omnipanel.v1.ModelService/ListModels",
    "omnipanel.v1.ModelService/ShowModel",
    "omnipanel.v1.ModelService/ListPulls",
    "omnipanel.v1.ModelService/ListRunningModels",
    "omnipanel.v1.ModelService/CheckFit",
    "omnipanel.v1.ModelService/ListProviders",
    "omnipanel.v1.ModelService/StartServer",
    "omnipanel.v1.ModelService/StopServer",
    "omnipanel.v1.ModelService/RestartServer",
    "omnipanel.v1.ModelService/PullModel",
    "omnipanel.v1.ModelService/CancelPull",
    "omnipanel.v1.ModelService/DeleteModel",
    "omnipanel.v1.ModelService/LoadModel",
    "omnipanel.v1.ModelService/UnloadModel",
    "omnipanel.v1.ModelService/SetDefaultModel",
    "omnipanel.v1.ModelService/Chat",
    "omnipanel.v1.ModelService/Generate",
    "omnipanel.v1.ModelService/AddProvider",
    "omnipanel.v1.ModelService/RemoveProvider",
    "omnipanel.v1.ProjectService/ListProjects",
    "omnipanel.v1.ProjectService/GetProject",
    "omnipanel.v1.ProjectService/GetWorkspaceState",
    "omnipanel.v1.ProjectService/CreateProject",
    "omnipanel.v1.ProjectService/OpenProject",
    "omnipanel.v1.ProjectService/CloseProject",
    "omnipanel.v1.ProjectService/ForgetProject",
    "omnipanel.v1.ProjectService/SaveWorkspaceState",
    "omnipanel.v1.FileService/ListDirectory",
    "omnipanel.v1.FileService/Stat",
    "omnipanel.v1.FileService/ReadFile",
    "omnipanel.v1.FileService/FindFiles",
    "omnipanel.v1.FileService/SearchText",
    "omnipanel.v1.FileService/Watch",
    "omnipanel.v1.FileService/WriteFile",
    "omnipanel.v1.FileService/CreateDirectory",
    "omnipanel.v1.FileService/Move",
    "omnipanel.v1.FileService/Copy",
    "omnipanel.v1.FileService/Delete",
    "omnipanel.v1.FileService/ApplyBatch",
    "omnipanel.v1.GitService/GetStatus",
    "omnipanel.v1.GitService/ListBranches",
    "omnipanel.v1.GitService/GetLog",
    "omnipanel.v1.GitService/GetDiff",
    "omnipanel.v1.GitService/CreateBranch",
    "omnipanel.v1.GitService/Checkout",
    "omnipanel.v1.GitService/DeleteBranch",
    "omnipanel.v1.GitService/Stage",
    "omnipanel.v1.GitService/Unstage",
    "omnipanel.v1.GitService/Commit",
    "omnipanel.v1.GitService/Fetch",
    "omnipanel.v1.GitService/Pull",
    "omnipanel.v1.GitService/Push",
    "omnipanel.v1.SystemService/GetSnapshot",
    "omnipanel.v1.SystemService/StreamMetrics",
    "omnipanel.v1.SystemService/ListProcesses",
    "omnipanel.v1.SystemService/GetThresholds",
    "omnipanel.v1.SystemService/ListAlerts",
    "omnipanel.v1.SystemService/WatchAlerts",
    "omnipanel.v1.SystemService/SetThresholds",
    "omnipanel.v1.UpdateService/CheckForUpdate",
    "omnipanel.v1.UpdateService/GetUpdateStatus",
    "omnipanel.v1.UpdateService/DownloadUpdate",
    "omnipanel.v1.UpdateService/InstallUpdate",
    "omnipanel.v1.UpdateService/Rollback",
];

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
    fn identify<B>(&self, req: &Request<B>) -> Result<Scope, Error> {
        match self {
            Self::Unix { owner_uid } => {
                let uid = req
                    .extensions()
                    .get::<UdsConnectInfo>()
                    .and_then(|info| info.peer_cred)
                    .map(|cred| peer::peer_uid(&cred));
                match uid {
                    Some(uid) if uid == *owner_uid => Ok(Scope::Admin),
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
                tokens.verify(secret).ok_or_else(|| {
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
    version: HeaderValue,
}

impl AccessLayer {
    /// A layer identifying callers the way `listener` does.
    pub fn new(listener: Listener) -> Self {
        Self {
            listener: Arc::new(listener),
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
        let decision = match required_scope(req.uri().path()) {
            // A load balancer or container probe may check health over TCP
            // without a token; a foreign uid on our socket learns nothing,
            // not even that we are alive.
            None => match self.layer.listener.identify(&req) {
                Ok(granted) => Ok(Some(granted)),
                Err(err) if matches!(*self.layer.listener, Listener::Unix { .. }) => Err(err),
                Err(_) => Ok(None),
            },
            Some(needed) => match self.layer.listener.identify(&req) {
                Ok(granted) if granted >= needed => Ok(Some(granted)),
                Ok(granted) => Err(Error::permission_denied(format!(
                    "{} needs the {} scope; this caller has {}",
                    req.uri().path(),
                    needed.name(),
                    granted.name()
                ))
                .with_reason(Reason::ScopeTooLow)),
                Err(err) => Err(err),
            },
        };
        match decision {
            Ok(granted) => {
                if let Some(scope) = granted {
                    req.extensions_mut().insert(Granted(scope));
                }
                // The clone that was polled ready must serve this call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move {
                    let mut response = inner.call(req).await?;
                    response.headers_mut().insert(VERSION_HEADER, version);
                    Ok(response)
                })
            }
            Err(err) => {
                tracing::warn!(path = req.uri().path(), error = %err, "request refused");
                let status: Status = to_status(err);
                let mut response = status.into_http::<Body>();
                response.headers_mut().insert(VERSION_HEADER, version);
                Box::pin(async move { Ok(response) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn every_rpc_in_the_api_is_classified() {
        let set = prost_types::FileDescriptorSet::decode(omnipanel_proto::FILE_DESCRIPTOR_SET);
        let Ok(set) = set else {
            panic!("descriptor set does not decode");
        };
        let mut missing = Vec::new();
        for file in set.file {
            for service in file.service {
                for method in service.method {
                    let full = format!(
                        "{}.{}/{}",
                        file.package.clone().unwrap_or_default(),
                        service.name.clone().unwrap_or_default(),
                        method.name.unwrap_or_default()
                    );
                    if !CLASSIFIED.contains(&full.as_str()) {
                        missing.push(full);
                    }
                }
            }
        }
        assert!(
            missing.is_empty(),
            "classify these in required_scope: {missing:?}"
        );
    }

    #[test]
    fn mutations_need_more_than_read() {
        assert_eq!(
            required_scope("/omnipanel.v1.AgentService/GetInfo"),
            Some(Scope::Read)
        );
        assert_eq!(
            required_scope("/omnipanel.v1.AgentService/Shutdown"),
            Some(Scope::Admin)
        );
        assert_eq!(
            required_scope("/omnipanel.v1.SystemService/StreamMetrics"),
            Some(Scope::Read)
        );
        assert_eq!(
            required_scope("/omnipanel.v1.SystemService/SetThresholds"),
            Some(Scope::Write)
        );
        assert_eq!(required_scope("/grpc.health.v1.Health/Check"), None);
        assert_eq!(required_scope("/made.Up/Thing"), Some(Scope::Admin));
    }
}
