//! The gRPC edge of the agent, and the only code that knows tonic and the
//! generated types: listeners (Unix socket, optional TCP with TLS), access
//! control, limits (connections, calls, deadlines, message sizes, keep-alive),
//! health and reflection, the error mapping, and one thin folder
//! per service (or, until they move, one file): its handler (`mod.rs`) parses
//! the request, calls the domain facade and converts the answer, through
//! the conversions in its `convert.rs`.

pub mod access;
mod agent;
pub mod audit;
pub mod connections;
pub mod convert;
mod events;
mod files;
mod git;
mod guard;
mod lazy;
pub mod limits;
mod models;
mod projects;
pub mod status;
mod streaming;
mod system;
mod updates;

use std::{path::PathBuf, pin::Pin, sync::Arc};

use omnipanel_proto::{
    COMPACT_DESCRIPTOR_SET, FILE_DESCRIPTOR_SET,
    access::method_policies,
    v1::{
        agent_service_server::AgentServiceServer, file_service_server::FileServiceServer,
        git_service_server::GitServiceServer, model_service_server::ModelServiceServer,
        project_service_server::ProjectServiceServer, system_service_server::SystemServiceServer,
        update_service_server::UpdateServiceServer,
    },
};
use tokio::net::{TcpListener, UnixListener};
use tokio_stream::{StreamExt, wrappers::UnixListenerStream};
use tonic::{
    service::Routes,
    transport::{Identity, Server, ServerTlsConfig, server::TcpIncoming},
};
use tonic_health::ServingStatus;

use crate::{
    context::AgentContext,
    rpc::{
        access::{AccessLayer, Identities, Listener, Policies},
        audit::{AuditLayer, AuditTable},
        connections::{CappedIncoming, ConnectionLayer, Tracked},
        lazy::Lazy,
        limits::{
            CONTROL_MESSAGES, Caps, Deadlines, FILE_MESSAGES, GIT_MESSAGES,
            H2_CONNECTION_WINDOW_BYTES, H2_MAX_CONCURRENT_STREAMS, H2_MAX_HEADER_LIST_BYTES,
            Ledger, LimitsLayer, MODEL_MESSAGES,
        },
    },
};
use omnipanel_core::error::{Error, Result};

/// The boxed future the server's tower layers answer with.
pub(crate) type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// Fully qualified names of the services this agent serves, for health.
const SERVICES: &[&str] = &[
    "omnipanel.v1.AgentService",
    "omnipanel.v1.ModelService",
    "omnipanel.v1.ProjectService",
    "omnipanel.v1.FileService",
    "omnipanel.v1.GitService",
    "omnipanel.v1.SystemService",
    "omnipanel.v1.UpdateService",
];

/// How long shutdown waits for clients to close their connections.
const DRAIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// How often an idle TCP connection is probed with an HTTP/2 ping, and how
/// long the answer may take before the connection is dropped: a peer that
/// vanished (a laptop closed, a network gone) otherwise holds its
/// connection and streams until the kernel gives up, hours later. Only TCP
/// connections are probed, and only while they exist: an agent with no
/// TCP client never wakes for this (a Unix socket peer that dies is closed
/// by the kernel at once).
const H2_KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
const H2_KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);
/// TCP keep-alive (kernel probes, no wake-ups of the agent) on accepted
/// connections, for peers that stop answering below HTTP/2.
const TCP_KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(60);

/// The optional TCP listener.
#[derive(Debug)]
pub struct TcpEndpoint {
    /// Bound socket.
    pub listener: TcpListener,
    /// PEM certificate chain and key, when TLS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// The configurable limits (`[server]` in config.toml); the rest are
/// constants in [`limits`].
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Bound of unary calls (`server.request_timeout`).
    pub request_timeout: std::time::Duration,
    /// Most TCP connections at once (`server.max_tcp_connections`).
    pub max_tcp_connections: usize,
}

impl From<&omnipanel_core::config::ServerSettings> for ServerLimits {
    fn from(settings: &omnipanel_core::config::ServerSettings) -> Self {
        Self {
            request_timeout: settings.request_timeout,
            max_tcp_connections: settings.max_tcp_connections,
        }
    }
}

fn routes(
    ctx: &Arc<AgentContext>,
    health: tonic_health::pb::health_server::HealthServer<
        impl tonic_health::pb::health_server::Health,
    >,
    ledger: &Arc<Ledger>,
) -> Routes {
    // Each reflection version lists what it was given: give both every
    // descriptor we serve (ours, health, and the other reflection version)
    // so v1 and v1alpha clients see the same complete list. Built on first
    // use: see `lazy`.
    let reflection = |other_reflection: &'static [u8]| {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(other_reflection)
    };
    let idle = lazy::idle_drop();
    let reflection_v1 = Lazy::new(
        move || {
            reflection(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
                .build_v1()
                .map_err(|err| format!("reflection setup failed: {err}"))
        },
        idle,
    );
    let reflection_v1alpha = Lazy::new(
        move || {
            reflection(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .build_v1alpha()
                .map_err(|err| format!("reflection setup failed: {err}"))
        },
        idle,
    );
    // Every service states its message sizes (see `limits`); health and
    // reflection keep tonic's 4 MiB for their small requests.
    Routes::new(
        AgentServiceServer::new(agent::AgentApi::new(ctx.clone(), ledger.clone()))
            .max_decoding_message_size(CONTROL_MESSAGES.decode)
            .max_encoding_message_size(CONTROL_MESSAGES.encode),
    )
    .add_service(
        ModelServiceServer::new(models::ModelApi::new(
            ctx.ollama.clone(),
            ctx.conversations.clone(),
            guard::Guard::new(ctx),
            ctx.shutdown_token(),
        ))
        .max_decoding_message_size(MODEL_MESSAGES.decode)
        .max_encoding_message_size(MODEL_MESSAGES.encode),
    )
    .add_service(
        ProjectServiceServer::new(projects::ProjectApi::new(
            ctx.projects.clone(),
            ctx.ollama.clone(),
            ctx.conversations.clone(),
        ))
        .max_decoding_message_size(CONTROL_MESSAGES.decode)
        .max_encoding_message_size(CONTROL_MESSAGES.encode),
    )
    .add_service(
        FileServiceServer::new(files::FileApi::new(
            ctx.files.clone(),
            guard::Guard::new(ctx),
            ctx.shutdown_token(),
        ))
        .max_decoding_message_size(FILE_MESSAGES.decode)
        .max_encoding_message_size(FILE_MESSAGES.encode),
    )
    .add_service(
        GitServiceServer::new(git::GitApi::new(
            ctx.git.clone(),
            ctx.projects.clone(),
            guard::Guard::new(ctx),
            ctx.shutdown_token(),
        ))
        .max_decoding_message_size(GIT_MESSAGES.decode)
        .max_encoding_message_size(GIT_MESSAGES.encode),
    )
    .add_service(
        SystemServiceServer::new(system::SystemApi::new(
            ctx.system.clone(),
            ctx.bus.clone(),
            ctx.shutdown_token(),
        ))
        .max_decoding_message_size(CONTROL_MESSAGES.decode)
        .max_encoding_message_size(CONTROL_MESSAGES.encode),
    )
    .add_service(
        UpdateServiceServer::new(updates::UpdateApi::new(ctx.clone()))
            .max_decoding_message_size(CONTROL_MESSAGES.decode)
            .max_encoding_message_size(CONTROL_MESSAGES.encode),
    )
    .add_service(health)
    .add_service(reflection_v1)
    .add_service(reflection_v1alpha)
}

fn tls_config(cert: &PathBuf, key: &PathBuf) -> Result<ServerTlsConfig> {
    let read = |path: &PathBuf, what: &str| {
        std::fs::read(path).map_err(|err| {
            Error::failed_precondition(format!(
                "cannot read the TLS {what} {}: {err}",
                path.display()
            ))
        })
    };
    let identity = Identity::from_pem(read(cert, "certificate")?, read(key, "key")?);
    Ok(ServerTlsConfig::new().identity(identity))
}

/// Serve until the context's shutdown token fires, then mark every service
/// NOT_SERVING and wait for in-flight calls (streams end on the token).
/// `ready` runs once the servers are built, just before they accept: the
/// end of start-up.
pub async fn serve(
    ctx: Arc<AgentContext>,
    unix: UnixListener,
    tcp: Option<TcpEndpoint>,
    limits: ServerLimits,
    ready: impl FnOnce(),
) -> Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in SERVICES {
        reporter
            .set_service_status(*service, ServingStatus::Serving)
            .await;
    }
    let owner_uid = crate::platform::peer::owner_uid();
    let identities = Identities {
        owner: ctx.access.owner().clone(),
        tokens: ctx.access.tokens().clone(),
        socket_clients: ctx.access.socket_clients(),
    };
    // Decoded once, for every layer that reads them, then dropped: each
    // layer keeps its own table, none the descriptor pool. The set without
    // comments, a fraction of the time and memory of the one reflection
    // serves.
    let methods =
        method_policies(COMPACT_DESCRIPTOR_SET).map_err(|err| Error::internal(err.to_string()))?;
    let policies = Arc::new(Policies::from_methods(&methods));
    let audit = AuditLayer::new(
        ctx.audit.clone(),
        Arc::new(AuditTable::from_methods(&methods)),
    );

    // One ledger for both listeners: the owner's calls are counted together
    // whichever connection they use.
    let ledger = Ledger::new(Caps::default());
    let routes = routes(&ctx, health, &ledger);
    let deadlines = Arc::new(Deadlines::new(limits.request_timeout, &methods));
    drop(methods);
    // Applied to both listeners: no tonic timeout (ours answers
    // DEADLINE_EXCEEDED with a reason), HTTP/2's own stream and header
    // caps under our call counts.
    let builder = || {
        Server::builder()
            .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS)
            .initial_connection_window_size(H2_CONNECTION_WINDOW_BYTES)
            .http2_max_header_list_size(H2_MAX_HEADER_LIST_BYTES)
    };

    let shutdown = ctx.shutdown_token();
    let unix_server = builder()
        .layer(ConnectionLayer)
        .layer(audit.clone())
        .layer(AccessLayer::new(
            Listener::Unix {
                owner_uid,
                identities: identities.clone(),
            },
            policies.clone(),
        ))
        .layer(LimitsLayer::new(ledger.clone(), deadlines.clone(), false))
        .add_routes(routes.clone())
        .serve_with_incoming_shutdown(
            UnixListenerStream::new(unix).map(|accepted| accepted.map(Tracked::uncounted)),
            shutdown.clone().cancelled_owned(),
        );

    let tcp_server = match tcp {
        None => None,
        Some(endpoint) => {
            let mut builder = builder()
                .http2_keepalive_interval(Some(H2_KEEPALIVE_INTERVAL))
                .http2_keepalive_timeout(Some(H2_KEEPALIVE_TIMEOUT));
            if let Some((cert, key)) = &endpoint.tls {
                builder = builder.tls_config(tls_config(cert, key)?).map_err(|err| {
                    Error::failed_precondition(format!("TLS setup failed: {err}"))
                })?;
            }
            Some(
                builder
                    .layer(ConnectionLayer)
                    .layer(audit)
                    .layer(AccessLayer::new(Listener::Tcp { identities }, policies))
                    .layer(LimitsLayer::new(ledger, deadlines, true))
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(
                        CappedIncoming::new(
                            TcpIncoming::from(endpoint.listener)
                                .with_nodelay(Some(true))
                                .with_keepalive(Some(TCP_KEEPALIVE)),
                            limits.max_tcp_connections,
                        ),
                        shutdown.clone().cancelled_owned(),
                    ),
            )
        }
    };

    let health_on_shutdown = async {
        shutdown.cancelled().await;
        for service in SERVICES {
            reporter
                .set_service_status(*service, ServingStatus::NotServing)
                .await;
        }
    };

    let servers = async {
        let result = match tcp_server {
            Some(tcp_server) => {
                let (unix_result, tcp_result) = tokio::join!(unix_server, tcp_server);
                unix_result.and(tcp_result)
            }
            None => unix_server.await,
        };
        if let Err(err) = &result {
            ctx.request_shutdown(&format!("the gRPC server failed: {err}"));
        }
        result
    };
    // Graceful shutdown waits for clients to close their connections; a
    // client that never does (hung, stopped in a debugger) must not keep the
    // agent alive, so draining has a deadline.
    let drain_deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(DRAIN_DEADLINE).await;
    };
    ready();
    let (result, ()) = tokio::select! {
        both = async { tokio::join!(servers, health_on_shutdown) } => both,
        () = drain_deadline => {
            tracing::warn!(
                seconds = DRAIN_DEADLINE.as_secs(),
                "clients kept connections open after shutdown began; stopping anyway"
            );
            (Ok(()), ())
        }
    };
    result.map_err(|err| Error::internal(format!("the gRPC server failed: {err}")))
}
