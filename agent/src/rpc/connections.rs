//! Accepted connections as the limits see them. Every connection, on the
//! socket and on TCP, is wrapped in [`Tracked`], which gives it a
//! [`ConnectionId`] so calls can be counted per connection (`limits.rs`);
//! the TCP listener's [`CappedIncoming`] also admits at most
//! `server.max_tcp_connections` connections at once and closes the excess
//! as soon as it is accepted, logging that at most once a minute. The Unix
//! socket is not capped: only its owner may connect to it (its folder and
//! mode, then the peer uid in the access layer), and the owner can exhaust
//! their own account in simpler ways; its calls are still bounded per
//! connection and per caller.
//!
//! tonic hands each request its connection's `connect_info()`; since that is
//! now [`TrackedInfo`], [`ConnectionLayer`] (the outermost layer) puts the
//! IO's own info (`UdsConnectInfo`, `TcpConnectInfo`) back beside the id, so
//! the layers after it read what tonic would have given them.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use http::{Extensions, Request};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_stream::Stream;
use tonic::transport::server::{Connected, TcpConnectInfo, TcpIncoming, UdsConnectInfo};
use tower::{Layer, Service};

use crate::rpc::limits::LogThrottle;

/// Identifies one accepted connection for as long as it is open (ids are
/// never reused within a run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnectionId(u64);

impl ConnectionId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// One place in the TCP listener's connection count, given back when the
/// connection is dropped (closed by either side).
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An accepted connection with its id (and, on TCP, its place in the count).
#[derive(Debug)]
pub struct Tracked<IO> {
    io: IO,
    id: ConnectionId,
    _slot: Option<Slot>,
}

impl<IO> Tracked<IO> {
    /// A connection that takes no place in any count (the Unix socket).
    pub fn uncounted(io: IO) -> Self {
        Self {
            io,
            id: ConnectionId::next(),
            _slot: None,
        }
    }
}

/// What tonic puts into each request of a [`Tracked`] connection.
#[derive(Debug, Clone)]
pub struct TrackedInfo<I> {
    id: ConnectionId,
    inner: I,
}

impl<IO: Connected> Connected for Tracked<IO> {
    type ConnectInfo = TrackedInfo<IO::ConnectInfo>;

    fn connect_info(&self) -> Self::ConnectInfo {
        TrackedInfo {
            id: self.id,
            inner: self.io.connect_info(),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The TCP listener's accepted connections, at most `cap` open at once.
/// Nothing here runs between accepts: a refused connection is closed in the
/// accept that found it, and the count falls when a connection is dropped.
#[derive(Debug)]
pub struct CappedIncoming {
    inner: TcpIncoming,
    open: Arc<AtomicUsize>,
    cap: usize,
    refusals: LogThrottle,
}

impl CappedIncoming {
    /// Admit at most `cap` connections from `inner` at once.
    pub fn new(inner: TcpIncoming, cap: usize) -> Self {
        Self {
            inner,
            open: Arc::new(AtomicUsize::new(0)),
            cap,
            refusals: LogThrottle::new(),
        }
    }

    /// Take a place for a new connection, or `None` when all are taken.
    fn admit(&self) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.cap).then_some(open + 1)
            })
            .ok()
            .map(|_| Slot(self.open.clone()))
    }
}

impl Stream for CappedIncoming {
    type Item = io::Result<Tracked<tokio::net::TcpStream>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let stream = match Pin::new(&mut self.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(stream))) => stream,
                other => {
                    return other.map(|item| item.map(|result| result.map(Tracked::uncounted)));
                }
            };
            match self.admit() {
                Some(slot) => {
                    return Poll::Ready(Some(Ok(Tracked {
                        io: stream,
                        id: ConnectionId::next(),
                        _slot: Some(slot),
                    })));
                }
                None => {
                    let peer = stream.peer_addr().ok();
                    // Dropped here: the peer sees its connection closed at
                    // once rather than waiting for a handshake that never
                    // comes.
                    drop(stream);
                    let cap = self.cap;
                    self.refusals.note(|suppressed| {
                        tracing::warn!(
                            peer = ?peer,
                            cap,
                            refused_since_last_report = suppressed,
                            "a TCP connection was refused: server.max_tcp_connections connections are open"
                        );
                    });
                }
            }
        }
    }
}

/// Puts each request's [`ConnectionId`] and its IO's own connect info
/// into its extensions; the outermost layer on both listeners.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConnectionLayer;

impl<S> Layer<S> for ConnectionLayer {
    type Service = ConnectionService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConnectionService { inner }
    }
}

/// The service produced by [`ConnectionLayer`].
#[derive(Debug, Clone)]
pub struct ConnectionService<S> {
    inner: S,
}

impl<S, B> Service<Request<B>> for ConnectionService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        crate::platform::memory::note_call();
        lift(req.extensions_mut());
        self.inner.call(req)
    }
}

fn lift(extensions: &mut Extensions) {
    if let Some(info) = extensions.get::<TrackedInfo<UdsConnectInfo>>().cloned() {
        extensions.insert(info.id);
        extensions.insert(info.inner);
    } else if let Some(info) = extensions.get::<TrackedInfo<TcpConnectInfo>>().cloned() {
        extensions.insert(info.id);
        extensions.insert(info.inner);
    } else if let Some(info) = extensions
        .get::<tonic::transport::server::TlsConnectInfo<TrackedInfo<TcpConnectInfo>>>()
        .map(|tls| tls.get_ref().clone())
    {
        extensions.insert(info.id);
        extensions.insert(info.inner);
    }
}

/// A fixed id, for tests of what is counted per connection.
#[cfg(test)]
pub fn test_id(n: u64) -> ConnectionId {
    ConnectionId(u64::MAX - n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_are_distinct() {
        let a = ConnectionId::next();
        let b = ConnectionId::next();
        assert_ne!(a, b);
    }

    #[test]
    fn the_ios_own_info_is_put_back_beside_the_id() {
        let id = ConnectionId::next();
        let mut extensions = Extensions::new();
        extensions.insert(TrackedInfo {
            id,
            inner: UdsConnectInfo {
                peer_addr: None,
                peer_cred: None,
            },
        });
        lift(&mut extensions);
        assert_eq!(extensions.get::<ConnectionId>(), Some(&id));
        assert!(extensions.get::<UdsConnectInfo>().is_some());
    }
}
