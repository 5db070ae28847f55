//! Bounds on what callers can hold in the server, and how long a call may
//! take. [`LimitsLayer`] sits behind the access layer (so only admitted
//! calls are counted) and does two things for every call:
//!
//! - It counts the call, a unary call in flight and an open stream alike,
//!   against its connection, its caller (the owner on the socket, each
//!   token on TCP) and, on TCP, all remote callers together; beyond a cap
//!   the call is answered RESOURCE_EXHAUSTED (`TOO_MANY_STREAMS`) at once,
//!   naming the cap, instead of piling up. The count is given back when the
//!   response body is dropped: when the call ends or the client resets the
//!   stream or goes away.
//! - It bounds unary calls by `server.request_timeout` (the few that wait
//!   for a server, a download, a network transfer or a big tree of files
//!   by [`LONG_CALL_TIMEOUT`]), or the client's own `grpc-timeout` when
//!   shorter, answering DEADLINE_EXCEEDED. Streams are not bounded in time:
//!   they live as long as their client reads them, and the counts bound
//!   how many there are.
//!
//! It also turns tonic's OUT_OF_RANGE for a message over a service's size
//! limit (the sizes are [`MessageSizes`]) into RESOURCE_EXHAUSTED with the
//! `MESSAGE_TOO_LARGE` reason: the domain never answers OUT_OF_RANGE, so
//! that code can only come from the codec.
//!
//! Below these, HTTP/2 itself caps streams per connection
//! ([`H2_MAX_CONCURRENT_STREAMS`], above our own cap so that a client is
//! told RESOURCE_EXHAUSTED rather than made to wait), and
//! `connections.rs` caps TCP connections.

use std::{
    collections::{HashMap, HashSet},
    hash::{BuildHasher, RandomState},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use prost::Message;
use tonic::{Code, Status, body::Body, codegen::Bytes};
use tower::{Layer, Service};

use crate::rpc::BoxFuture;

use crate::rpc::{access::Granted, connections::ConnectionId, status::to_status};
use omnipanel_core::{
    error::{Error, ErrorKind},
    reason::Reason,
    sync,
};
use omnipanel_proto::access::MethodPolicy;

/// Calls one connection may hold at once. A client multiplexes everything
/// over one connection (the tray: events, metrics, alerts, a watch per open
/// project, a chat), which is tens of streams; 256 leaves room for an
/// editor with many projects while a runaway loop is stopped early.
pub const MAX_CALLS_PER_CONNECTION: usize = 256;

/// Calls one caller may hold across all its connections: the owner (every
/// connection on the socket is the owner) or one token on TCP. Four full
/// connections' worth; each call costs a task and a small buffer, so this
/// bounds a caller to a few MiB.
pub const MAX_CALLS_PER_CALLER: usize = 1024;

/// Calls all TCP callers together may hold. The owner's calls on the socket
/// are not counted here, so remote callers cannot lock the owner out.
pub const MAX_REMOTE_CALLS: usize = 2048;

/// HTTP/2's own cap on concurrent streams per connection (tonic's default
/// is none). Above [`MAX_CALLS_PER_CONNECTION`] so our layer, which answers
/// RESOURCE_EXHAUSTED at once, refuses first; a client that ignores that
/// and keeps more than this many streams open is made to wait by HTTP/2
/// (or gets REFUSED_STREAM).
pub const H2_MAX_CONCURRENT_STREAMS: u32 = 512;

/// The HTTP/2 connection window the server offers each client, in bytes.
/// HTTP/2 (h2) also guards against floods of small DATA frames: it closes
/// the connection (GOAWAY ENHANCE_YOUR_CALM, "too_many_data_frames") once
/// small frames that nobody has read yet cost more than half this window,
/// each counted as 256 bytes. Every gRPC request is one such small frame,
/// held until the call's handler reads or drops it; on a loaded machine a
/// client opening streams fast has up to [`H2_MAX_CONCURRENT_STREAMS`] of
/// them waiting at once. h2's default window (64 KiB) covers 128, so a
/// busy client was disconnected where it should have been told
/// RESOURCE_EXHAUSTED per call; 1 MiB covers 2048 (see the test below).
pub const H2_CONNECTION_WINDOW_BYTES: u32 = 1024 * 1024;

/// The largest request header list HTTP/2 accepts: a token and gRPC's
/// own headers need well under 1 KiB.
pub const H2_MAX_HEADER_LIST_BYTES: u32 = 16 * 1024;

/// The bound of the unary calls in [`LONG_CALLS`]: they wait for something
/// outside the agent (a server to start, a model to load, an update to
/// install, a remote) or work through a tree of any size.
pub const LONG_CALL_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Unary calls bounded by [`LONG_CALL_TIMEOUT`] rather than
/// `server.request_timeout`.
pub const LONG_CALLS: &[&str] = &[
    // Waits for the agent to stop serving.
    "/omnipanel.v1.AgentService/Shutdown",
    // Wait for Ollama to come up or go down (its own start and stop
    // timeouts bound them too), or for a model to load into memory.
    "/omnipanel.v1.ModelService/StartServer",
    "/omnipanel.v1.ModelService/StopServer",
    "/omnipanel.v1.ModelService/RestartServer",
    "/omnipanel.v1.ModelService/LoadModel",
    // Fetch a manifest from the registry.
    "/omnipanel.v1.ModelService/CheckFit",
    // Network, then install and restart.
    "/omnipanel.v1.UpdateService/CheckForUpdate",
    "/omnipanel.v1.UpdateService/InstallUpdate",
    "/omnipanel.v1.UpdateService/Rollback",
    // Whole trees of the user's files.
    "/omnipanel.v1.FileService/Copy",
    "/omnipanel.v1.FileService/Move",
    "/omnipanel.v1.FileService/Delete",
    "/omnipanel.v1.FileService/ApplyBatch",
    // The work tree or the index of a repository of any size.
    "/omnipanel.v1.GitService/Checkout",
    "/omnipanel.v1.GitService/Stage",
    "/omnipanel.v1.GitService/Unstage",
    "/omnipanel.v1.GitService/Commit",
];

/// Largest message each service decodes (requests) and encodes (answers),
/// in bytes; tonic's defaults are 4 MiB in and unlimited out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSizes {
    /// Largest request message.
    pub decode: usize,
    /// Largest answer message (one item of a stream).
    pub encode: usize,
}

const MIB: usize = 1024 * 1024;

/// Settings, tokens, logs, workspace state, thresholds, update status:
/// small messages both ways (a log tail is sent in chunks).
pub const CONTROL_MESSAGES: MessageSizes = MessageSizes {
    decode: 4 * MIB,
    encode: 16 * MIB,
};

/// ModelService: a chat carries its history and base64 images.
pub const MODEL_MESSAGES: MessageSizes = MessageSizes {
    decode: 64 * MIB,
    encode: 16 * MIB,
};

/// GitService: small requests; a status, log page or diff of a big
/// repository can be large (diffs are cut at their `max_bytes`).
pub const GIT_MESSAGES: MessageSizes = MessageSizes {
    decode: 4 * MIB,
    encode: 64 * MIB,
};

/// FileService: a write or batch up to 64 MiB of content (plus its
/// envelope); a listing or search answer of a huge folder (reads stream in
/// chunks).
pub const FILE_MESSAGES: MessageSizes = MessageSizes {
    decode: crate::rpc::files::MAX_REQUEST_BYTES,
    encode: 64 * MIB,
};

/// The caps of a [`Ledger`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Per connection.
    pub per_connection: usize,
    /// Per caller.
    pub per_caller: usize,
    /// All remote callers together.
    pub remote: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Self {
            per_connection: MAX_CALLS_PER_CONNECTION,
            per_caller: MAX_CALLS_PER_CALLER,
            remote: MAX_REMOTE_CALLS,
        }
    }
}

/// Who a call is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    /// The agent's owner, across all its connections.
    Owner,
    /// A client with a token, by a keyed hash of its id (the access layer
    /// has already checked it), on the socket or TCP.
    Token(u64),
    /// Callers that were not admitted, together.
    Anonymous,
}

#[derive(Debug, Default)]
struct Counts {
    connections: HashMap<ConnectionId, usize>,
    callers: HashMap<Caller, usize>,
    remote: usize,
}

/// The open calls of every connection and caller; one for the whole agent.
#[derive(Debug)]
pub struct Ledger {
    caps: Caps,
    counts: Mutex<Counts>,
    token_keys: RandomState,
}

impl Ledger {
    /// An empty ledger enforcing `caps`.
    pub fn new(caps: Caps) -> Arc<Self> {
        Arc::new(Self {
            caps,
            counts: Mutex::new(Counts::default()),
            token_keys: RandomState::new(),
        })
    }

    /// Who a call of `caller` is counted against: a client by its token's
    /// id (so two spellings of one secret share a budget), whichever
    /// listener it came through; callers that were not admitted share one.
    pub fn counted_as(&self, caller: Option<&omnipanel_core::tokens::Caller>) -> Caller {
        match caller {
            Some(omnipanel_core::tokens::Caller::Owner) => Caller::Owner,
            Some(omnipanel_core::tokens::Caller::Token(grant)) => {
                Caller::Token(self.token_keys.hash_one(&grant.id))
            }
            Some(omnipanel_core::tokens::Caller::Anonymous) | None => Caller::Anonymous,
        }
    }

    /// Calls and streams the client holding token `id` has open now.
    pub fn open_calls_of_token(&self, id: &str) -> u32 {
        let key = Caller::Token(self.token_keys.hash_one(id));
        u32::try_from(self.open_calls(key)).unwrap_or(u32::MAX)
    }

    /// Count one more call, or say which cap it would pass.
    pub fn acquire(
        self: &Arc<Self>,
        connection: Option<ConnectionId>,
        caller: Caller,
        remote: bool,
    ) -> Result<Permit, Error> {
        let refuse = |message: String| {
            Err(Error::new(ErrorKind::ResourceExhausted, message)
                .with_reason(Reason::TooManyStreams))
        };
        let mut counts = sync::lock(&self.counts);
        let on_connection = connection
            .and_then(|id| counts.connections.get(&id).copied())
            .unwrap_or(0);
        if on_connection >= self.caps.per_connection {
            return refuse(format!(
                "this connection already has {} calls and streams open, the most one connection may hold; \
                 close streams it no longer reads",
                self.caps.per_connection
            ));
        }
        let of_caller = counts.callers.get(&caller).copied().unwrap_or(0);
        if of_caller >= self.caps.per_caller {
            let who = match caller {
                Caller::Owner => "the agent's owner",
                Caller::Token(_) => "this token",
                Caller::Anonymous => "callers without a token",
            };
            return refuse(format!(
                "{who} already has {} calls and streams open across its connections, the most one caller may hold; \
                 close streams it no longer reads",
                self.caps.per_caller
            ));
        }
        if remote && counts.remote >= self.caps.remote {
            return refuse(format!(
                "remote callers together already have {} calls and streams open, the most the TCP listener serves; \
                 try again once some have ended",
                self.caps.remote
            ));
        }
        if let Some(id) = connection {
            *counts.connections.entry(id).or_insert(0) += 1;
        }
        *counts.callers.entry(caller).or_insert(0) += 1;
        if remote {
            counts.remote += 1;
        }
        Ok(Permit {
            ledger: self.clone(),
            connection,
            caller,
            remote,
        })
    }

    /// Calls now counted against `caller` (for tests and diagnostics).
    pub fn open_calls(&self, caller: Caller) -> usize {
        sync::lock(&self.counts)
            .callers
            .get(&caller)
            .copied()
            .unwrap_or(0)
    }
}

/// One counted call; dropping it gives the place back.
#[derive(Debug)]
pub struct Permit {
    ledger: Arc<Ledger>,
    connection: Option<ConnectionId>,
    caller: Caller,
    remote: bool,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = sync::lock(&self.ledger.counts);
        fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
            if let Some(count) = map.get_mut(key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    map.remove(key);
                }
            }
        }
        if let Some(id) = &self.connection {
            release(&mut counts.connections, id);
        }
        release(&mut counts.callers, &self.caller);
        if self.remote {
            counts.remote = counts.remote.saturating_sub(1);
        }
    }
}

/// How long each unary call may take.
#[derive(Debug)]
pub struct Deadlines {
    default: Duration,
    unary: HashSet<String>,
}

impl Deadlines {
    /// `default` for unary calls not in [`LONG_CALLS`]; which calls are
    /// unary comes from the API's methods (read once at start) and the
    /// health service's descriptors.
    pub fn new(default: Duration, api: &[MethodPolicy]) -> Self {
        let mut unary = unary_methods(tonic_health::pb::FILE_DESCRIPTOR_SET);
        unary.extend(
            api.iter()
                .filter(|method| method.unary)
                .map(|method| method.path.clone()),
        );
        Self { default, unary }
    }

    /// The bound of a call to `path` whose client sent `headers`; `None`
    /// for streams (and for unknown methods, which answer UNIMPLEMENTED).
    fn of(&self, path: &str, headers: &HeaderMap) -> Option<Duration> {
        if !self.unary.contains(path) {
            return None;
        }
        let ours = if LONG_CALLS.contains(&path) {
            LONG_CALL_TIMEOUT
        } else {
            self.default
        };
        Some(match client_timeout(headers) {
            Some(theirs) => ours.min(theirs),
            None => ours,
        })
    }
}

/// Paths (`/package.Service/Method`) of the unary methods in `descriptors`.
fn unary_methods(descriptors: &[u8]) -> HashSet<String> {
    let Ok(set) = prost_types::FileDescriptorSet::decode(descriptors) else {
        // Built into the binary and decoded by tests: cannot fail in a
        // release; if it did, every call would go unbounded, not refused.
        tracing::error!("the API descriptors do not decode; unary calls have no deadline");
        return HashSet::new();
    };
    let mut out = HashSet::new();
    for file in set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            let service_name = service.name.unwrap_or_default();
            for method in service.method {
                if !method.client_streaming() && !method.server_streaming() {
                    out.insert(format!(
                        "/{package}.{service_name}/{}",
                        method.name.unwrap_or_default()
                    ));
                }
            }
        }
    }
    out
}

/// The client's `grpc-timeout` header: digits and a unit (H, M, S, m, u, n).
fn client_timeout(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value.saturating_mul(3600)),
        "M" => Duration::from_secs(value.saturating_mul(60)),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

/// Logs an event at most once per [`LogThrottle::INTERVAL`], with how many
/// were left unlogged since; it keeps no timer, only the time of the last
/// report.
#[derive(Debug)]
pub struct LogThrottle {
    state: Mutex<(Option<Instant>, u64)>,
}

impl LogThrottle {
    /// Once a minute is enough to see a flood in the log without it
    /// filling the log.
    pub const INTERVAL: Duration = Duration::from_secs(60);

    /// Nothing logged yet.
    pub fn new() -> Self {
        Self {
            state: Mutex::new((None, 0)),
        }
    }

    /// An event happened: `log` it (given how many went unlogged before
    /// it) unless one was logged less than an interval ago.
    pub fn note(&self, log: impl FnOnce(u64)) {
        let mut state = sync::lock(&self.state);
        let now = Instant::now();
        let due = state
            .0
            .is_none_or(|last| now.duration_since(last) >= Self::INTERVAL);
        if due {
            let suppressed = state.1;
            *state = (Some(now), 0);
            drop(state);
            log(suppressed);
        } else {
            state.1 += 1;
        }
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new()
    }
}

/// The layer; one per listener, sharing one [`Ledger`] and [`Deadlines`].
#[derive(Debug, Clone)]
pub struct LimitsLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    ledger: Arc<Ledger>,
    deadlines: Arc<Deadlines>,
    /// TCP: calls count towards the remote cap.
    remote: bool,
    refusals: LogThrottle,
}

impl LimitsLayer {
    /// Limits for the Unix socket (`remote` false) or the TCP listener.
    pub fn new(ledger: Arc<Ledger>, deadlines: Arc<Deadlines>, remote: bool) -> Self {
        Self {
            shared: Arc::new(Shared {
                ledger,
                deadlines,
                remote,
                refusals: LogThrottle::new(),
            }),
        }
    }
}

impl Shared {
    fn caller<B>(&self, req: &Request<B>) -> Caller {
        // The access layer ahead of this one put who it admitted into the
        // request.
        self.ledger
            .counted_as(req.extensions().get::<Granted>().map(|granted| &granted.0))
    }
}

impl<S> Layer<S> for LimitsLayer {
    type Service = LimitsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitsService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service produced by [`LimitsLayer`].
#[derive(Debug, Clone)]
pub struct LimitsService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S> Service<Request<Body>> for LimitsService<S>
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

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let shared = &self.shared;
        let connection = req.extensions().get::<ConnectionId>().copied();
        let caller = shared.caller(&req);
        let permit = match shared.ledger.acquire(connection, caller, shared.remote) {
            Ok(permit) => permit,
            Err(err) => {
                let path = req.uri().path().to_owned();
                shared.refusals.note(|suppressed| {
                    tracing::warn!(
                        path,
                        error = %err,
                        refused_since_last_report = suppressed,
                        "call refused"
                    );
                });
                let response = to_status(err).into_http::<Body>();
                return Box::pin(async move { Ok(response) });
            }
        };
        let path = req.uri().path().to_owned();
        let deadline = shared.deadlines.of(&path, req.headers());
        // The clone that was polled ready must serve this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let answer = inner.call(req);
            let response = match deadline {
                None => answer.await?,
                Some(deadline) => match tokio::time::timeout(deadline, answer).await {
                    Ok(response) => response?,
                    Err(_) => {
                        tracing::warn!(path, ?deadline, "call ran past its deadline");
                        return Ok(past_deadline(&path, deadline).into_http());
                    }
                },
            };
            let (mut parts, body) = response.into_parts();
            if let Some(status) = Status::from_header_map(&parts.headers)
                && status.code() == Code::OutOfRange
            {
                // A trailers-only answer: the status is in the headers.
                let mut replacement = HeaderMap::new();
                if too_large(&status).add_header(&mut replacement).is_ok() {
                    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
                        parts.headers.remove(name);
                    }
                    parts.headers.extend(replacement);
                }
            }
            Ok(Response::from_parts(
                parts,
                Body::new(Held {
                    body,
                    _permit: permit,
                }),
            ))
        })
    }
}

fn past_deadline(path: &str, deadline: Duration) -> Status {
    to_status(
        Error::new(
            ErrorKind::DeadlineExceeded,
            format!(
                "{path} did not finish within its deadline of {}; the agent stopped waiting for it",
                humanize(deadline)
            ),
        )
        .with_reason(Reason::DeadlineExceeded),
    )
}

fn humanize(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

/// tonic's OUT_OF_RANGE for a message over the size limit, as ours.
fn too_large(status: &Status) -> Status {
    to_status(
        Error::new(
            ErrorKind::ResourceExhausted,
            format!(
                "the message is larger than this service accepts ({})",
                status.message()
            ),
        )
        .with_reason(Reason::MessageTooLarge),
    )
}

/// A response body that holds its call's [`Permit`] until it is dropped,
/// and turns an OUT_OF_RANGE in its trailers (an answer over the size
/// limit) into ours.
struct Held {
    body: Body,
    _permit: Permit,
}

impl HttpBody for Held {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        let Poll::Ready(Some(Ok(frame))) = polled else {
            return polled;
        };
        let frame = match frame.into_trailers() {
            Ok(mut trailers) => {
                if let Some(status) = Status::from_header_map(&trailers)
                    && status.code() == Code::OutOfRange
                {
                    let mut replacement = HeaderMap::new();
                    if too_large(&status).add_header(&mut replacement).is_ok() {
                        trailers = replacement;
                    }
                }
                Frame::trailers(trailers)
            }
            Err(frame) => frame,
        };
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// h2 budgets half the connection window for small unread DATA frames,
    /// 256 bytes each; every stream HTTP/2 lets in may hold one.
    #[test]
    fn the_connection_window_covers_a_small_frame_per_allowed_stream() {
        const H2_SMALL_FRAME_COST: u32 = 256;
        const {
            assert!(
                H2_CONNECTION_WINDOW_BYTES / 2 >= H2_MAX_CONCURRENT_STREAMS * H2_SMALL_FRAME_COST
            );
        }
    }

    fn small() -> Arc<Ledger> {
        Ledger::new(Caps {
            per_connection: 2,
            per_caller: 3,
            remote: 4,
        })
    }

    fn conn(n: u64) -> Option<ConnectionId> {
        Some(crate::rpc::connections::test_id(n))
    }

    #[test]
    fn a_connection_is_capped_and_its_places_come_back() {
        let ledger = small();
        let a = ledger.acquire(conn(1), Caller::Owner, false).unwrap();
        let _b = ledger.acquire(conn(1), Caller::Owner, false).unwrap();
        let err = ledger.acquire(conn(1), Caller::Owner, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
        assert_eq!(err.reason(), Some(Reason::TooManyStreams));
        assert!(err.message().contains("this connection"), "{err}");
        drop(a);
        ledger.acquire(conn(1), Caller::Owner, false).unwrap();
    }

    #[test]
    fn a_caller_is_capped_across_connections() {
        let ledger = small();
        let held: Vec<_> = (0..3)
            .map(|n| ledger.acquire(conn(n), Caller::Owner, false).unwrap())
            .collect();
        let err = ledger.acquire(conn(9), Caller::Owner, false).unwrap_err();
        assert!(err.message().contains("the agent's owner"), "{err}");
        assert_eq!(ledger.open_calls(Caller::Owner), 3);
        drop(held);
        assert_eq!(ledger.open_calls(Caller::Owner), 0);
        assert!(sync::lock(&ledger.counts).connections.is_empty());
    }

    #[test]
    fn remote_callers_together_are_capped_but_not_the_owner() {
        let ledger = small();
        let _held: Vec<_> = (0..4)
            .map(|n| ledger.acquire(conn(n), Caller::Token(n), true).unwrap())
            .collect();
        let err = ledger.acquire(conn(8), Caller::Token(8), true).unwrap_err();
        assert!(err.message().contains("remote callers"), "{err}");
        ledger.acquire(conn(9), Caller::Owner, false).unwrap();
    }

    #[test]
    fn unary_calls_get_the_default_or_the_long_bound_and_streams_none() {
        let deadlines = Deadlines::new(Duration::from_secs(60), &api_methods());
        let none = HeaderMap::new();
        assert_eq!(
            deadlines.of("/omnipanel.v1.AgentService/GetInfo", &none),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            deadlines.of("/omnipanel.v1.ModelService/StartServer", &none),
            Some(LONG_CALL_TIMEOUT)
        );
        assert_eq!(
            deadlines.of("/omnipanel.v1.AgentService/WatchEvents", &none),
            None
        );
        assert_eq!(deadlines.of("/omnipanel.v1.ModelService/Chat", &none), None);
        assert_eq!(
            deadlines.of("/grpc.health.v1.Health/Check", &none),
            Some(Duration::from_secs(60))
        );
        assert_eq!(deadlines.of("/grpc.health.v1.Health/Watch", &none), None);
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", http::HeaderValue::from_static("1500m"));
        assert_eq!(
            deadlines.of("/omnipanel.v1.ModelService/StartServer", &headers),
            Some(Duration::from_millis(1500))
        );
        headers.insert("grpc-timeout", http::HeaderValue::from_static("2H"));
        assert_eq!(
            deadlines.of("/omnipanel.v1.AgentService/GetInfo", &headers),
            Some(Duration::from_secs(60))
        );
    }

    fn api_methods() -> Vec<MethodPolicy> {
        omnipanel_proto::access::method_policies(omnipanel_proto::COMPACT_DESCRIPTOR_SET)
            .expect("the API's descriptors")
    }

    #[test]
    fn every_long_call_is_a_unary_rpc_of_the_api() {
        let unary: HashSet<String> = api_methods()
            .into_iter()
            .filter(|method| method.unary)
            .map(|method| method.path)
            .collect();
        assert!(unary.len() > 40, "{unary:?}");
        for path in LONG_CALLS {
            assert!(unary.contains(*path), "{path} is not a unary RPC");
        }
    }

    #[test]
    fn bad_grpc_timeouts_are_ignored() {
        for text in ["", "5", "5x", "m", "1234567890S", "-5S"] {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", http::HeaderValue::from_str(text).unwrap());
            assert_eq!(client_timeout(&headers), None, "{text:?}");
        }
    }

    #[test]
    fn the_log_throttle_reports_the_first_and_counts_the_rest() {
        let throttle = LogThrottle::new();
        let mut logged = Vec::new();
        for _ in 0..5 {
            throttle.note(|suppressed| logged.push(suppressed));
        }
        assert_eq!(logged, vec![0]);
        assert_eq!(sync::lock(&throttle.state).1, 4);
    }
}
