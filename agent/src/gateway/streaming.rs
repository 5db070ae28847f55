//! A reply streamed to the client in its API's framing (Ollama's NDJSON,
//! OpenAI's Server-Sent Events): pieces are written as they come, the
//! last one carries the statistics, an error in the middle ends the
//! stream with an error frame, and the agent's shutdown ends it too. The
//! request's [`Activity`] rides along and is finished when the stream is
//! (or dropped with it, when the client goes away, which also drops the
//! upstream request).

use axum::{
    body::{Body, Bytes},
    http::StatusCode,
    response::Response,
};
use tokio_util::sync::CancellationToken;

use super::{
    activity::Activity,
    backend::{Piece, Reply},
    refuse,
    reply::{Dialect, Failure},
};

/// How an API frames a streamed reply.
pub trait Framing: Send + 'static {
    /// The bytes for one piece (empty: nothing to send).
    fn piece(&mut self, piece: &Piece) -> Vec<u8>;
    /// The bytes that end the stream after its last piece.
    fn end(&mut self) -> Vec<u8>;
    /// The bytes that report a failure in the middle of the stream.
    fn error(&mut self, failure: &Failure) -> Vec<u8>;
    /// The API whose error shape failures take.
    const DIALECT: Dialect;
    /// The streaming response around `body` (its content type).
    fn response(body: Body) -> Response;
}

/// Answer with `reply` as the API does: streamed in `framing` when the
/// client asked for a stream, else read whole and made into one response
/// by `whole` (given the framing, for the ids it holds).
pub async fn answer<F: Framing>(
    mut reply: Reply,
    framing: F,
    stream: bool,
    mut activity: Activity,
    shutdown: CancellationToken,
    whole: impl FnOnce(&F, &Piece) -> Response,
) -> Response {
    if stream {
        return F::response(body(reply, framing, activity, shutdown));
    }
    match collect(&mut reply).await {
        Ok(piece) => {
            activity.tokens(piece.stats.prompt_eval_count, piece.stats.eval_count);
            activity.ok();
            whole(&framing, &piece)
        }
        Err(failure) => refuse(activity, failure.in_dialect(F::DIALECT)),
    }
}

struct Flow<F> {
    reply: Reply,
    framing: F,
    activity: Option<Activity>,
    shutdown: CancellationToken,
}

/// The response body streaming `reply`.
pub fn body<F: Framing>(
    reply: Reply,
    framing: F,
    activity: Activity,
    shutdown: CancellationToken,
) -> Body {
    let flow = Flow {
        reply,
        framing,
        activity: Some(activity),
        shutdown,
    };
    let stream = futures_util::stream::unfold(flow, |mut flow| async move {
        let mut activity = flow.activity.take()?;
        let next = tokio::select! {
            next = flow.reply.next() => next,
            () = flow.shutdown.cancelled() => {
                let failure = Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "the agent is shutting down",
                );
                let bytes = flow.framing.error(&failure);
                activity.broke_off(&failure);
                return Some((Ok::<_, std::convert::Infallible>(Bytes::from(bytes)), flow));
            }
        };
        match next {
            Some(Ok(piece)) => {
                let mut bytes = flow.framing.piece(&piece);
                if piece.done {
                    bytes.extend(flow.framing.end());
                    activity.tokens(piece.stats.prompt_eval_count, piece.stats.eval_count);
                    activity.ok();
                } else {
                    flow.activity = Some(activity);
                }
                Some((Ok(Bytes::from(bytes)), flow))
            }
            Some(Err(err)) => {
                let failure = Failure::from_domain(&err);
                let bytes = flow.framing.error(&failure);
                activity.broke_off(&failure);
                Some((Ok(Bytes::from(bytes)), flow))
            }
            None => {
                // Ended without a last piece: close the framing anyway.
                let bytes = flow.framing.end();
                activity.ok();
                Some((Ok(Bytes::from(bytes)), flow))
            }
        }
    });
    Body::from_stream(stream)
}

/// Read a whole reply (for `"stream": false`): the text joined, the last
/// piece's statistics and reason.
pub async fn collect(reply: &mut Reply) -> Result<Piece, Failure> {
    let mut whole = Piece::default();
    while let Some(next) = reply.next().await {
        let piece = next.map_err(|err| Failure::from_domain(&err))?;
        whole.text.push_str(&piece.text);
        if piece.done {
            whole.done = true;
            whole.done_reason = piece.done_reason;
            whole.stats = piece.stats;
            whole.context = piece.context;
            break;
        }
    }
    whole.done = true;
    Ok(whole)
}
