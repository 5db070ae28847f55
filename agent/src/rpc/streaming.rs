//! Server-streaming responses built from a producer task: the task sends
//! into a small bounded channel (so a slow client slows the producer instead
//! of growing memory), and stops when the client goes away or the agent
//! shuts down.

use std::{future::Future, pin::Pin};

use tokio::sync::mpsc;
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::Status;

/// The stream type every streaming RPC returns.
pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Items buffered between producer and client.
const BUFFER: usize = 16;

/// Run `producer` in a task feeding the returned stream. The producer gets
/// the sender; `send` failing means the client is gone and it should return.
/// Shutdown ends the task (and so the stream) at the next await point.
pub fn spawn_stream<T, F, Fut>(shutdown: CancellationToken, producer: F) -> ResponseStream<T>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<Result<T, Status>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(BUFFER);
    let closed = tx.clone();
    let work = producer(tx);
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = closed.closed() => {}
            () = work => {}
        }
    });
    Box::pin(ReceiverStream::new(rx))
}
