//! Target `model_streams`: the streamed answers of model servers, read the
//! way the agent reads them from the network: Ollama's NDJSON
//! (`ollama::api::NdjsonStream` of chat, generate and pull lines) and an
//! OpenAI-compatible server's Server-Sent Events (`openai::sse::Decoder`,
//! and `openai::client::CompletionStream` over it). The first byte picks
//! the stream (its value modulo 4: chat, generate, pull, OpenAI), the
//! second seeds how the body is cut into pieces and the SSE size limit,
//! and the rest is the response body.
//!
//! Invariants, beyond "no panic": the body read whole, read one byte at a
//! time and read in the seeded pieces gives the same items (lines, events,
//! reply pieces) and the same errors, a stream refused as too long
//! included (the items before the refusal come first). NDJSON gives at
//! most one item per line and nothing after an error (a line over the
//! limit, seeded small, is one); SSE events stay
//! under the limit; a reply has nothing after its error.

use std::{collections::VecDeque, convert::Infallible, pin::Pin, task::Poll};

use bytes::Bytes;
use omnipanel_core::{
    ollama::api::{ChatChunk, GenerateChunk, NdjsonStream, PullLine, StreamLine},
    openai::{
        chunks,
        client::{CompletionStream, OpenAiError},
        sse::{Decoder, Event, SseError},
    },
};

/// A response body that hands out the given pieces one frame each, as a
/// connection delivers what arrived.
struct Pieces(VecDeque<Bytes>);

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(
            self.get_mut()
                .0
                .pop_front()
                .map(|b| Ok(http_body::Frame::data(b))),
        )
    }
}

fn response(pieces: &[&[u8]]) -> reqwest::Response {
    let body = Pieces(pieces.iter().map(|p| Bytes::copy_from_slice(p)).collect());
    reqwest::Response::from(http::Response::new(reqwest::Body::wrap(body)))
}

/// Three ways to cut `body`: whole, byte by byte, and pieces whose sizes
/// follow a small generator seeded by `seed` (1 to 64 bytes, sometimes
/// empty pieces).
fn cuts(body: &[u8], seed: u8) -> [Vec<&[u8]>; 3] {
    let whole = vec![body];
    let bytewise: Vec<&[u8]> = body.chunks(1).collect();
    let mut seeded = Vec::new();
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut rest = body;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let size = ((state >> 16) % 65) as usize;
        let (piece, tail) = rest.split_at(size.min(rest.len()));
        seeded.push(piece);
        rest = tail;
    }
    [whole, bytewise, seeded]
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime can be built")
    })
}

/// Run one input.
pub fn run(data: &[u8]) {
    let [mode, seed, body @ ..] = data else {
        return;
    };
    match mode % 4 {
        0 => ndjson::<ChatChunk>(body, *seed),
        1 => ndjson::<GenerateChunk>(body, *seed),
        2 => ndjson::<PullLine>(body, *seed),
        _ => {
            sse_events(body, *seed);
            completions(body, *seed);
        }
    }
}

fn ndjson<T: StreamLine + PartialEq + std::fmt::Debug>(body: &[u8], seed: u8) {
    // Small enough that inputs reach it, as the SSE limit below.
    let limit = 8 + usize::from(seed % 64) * 16;
    let lines = body.split(|&b| b == b'\n').count();
    let mut reference = None;
    for pieces in cuts(body, seed) {
        let items = runtime().block_on(async {
            let mut stream = NdjsonStream::<T>::with_line_limit(response(&pieces), limit);
            let mut items = Vec::new();
            while let Some(item) = stream.next().await {
                items.push(item);
                assert!(items.len() <= lines, "more items than lines");
            }
            items
        });
        if let Some(error) = items.iter().position(Result::is_err) {
            assert_eq!(error, items.len() - 1, "an item after an error");
        }
        match &reference {
            None => reference = Some(items),
            Some(expected) => assert_eq!(&items, expected, "NDJSON items depend on the cut"),
        }
    }
}

/// The events of `pieces` fed to one decoder, and the error that stopped
/// it, if any.
fn decode(pieces: &[&[u8]], limit: usize) -> (Vec<Event>, Option<SseError>) {
    let mut decoder = Decoder::new(limit);
    let mut events = Vec::new();
    for piece in pieces {
        match decoder.feed(piece) {
            Ok(more) => events.extend(more),
            Err(err) => return (events, Some(err)),
        }
    }
    (events, decoder.finish().err())
}

fn sse_events(body: &[u8], seed: u8) {
    let limit = 8 + usize::from(seed % 64) * 4;
    let [whole, bytewise, seeded] = cuts(body, seed);
    let reference = decode(&bytewise, limit);
    for event in &reference.0 {
        assert!(event.data.len() <= limit, "an event over the limit");
        let _ = chunks::piece(&event.data);
    }
    for pieces in [whole, seeded] {
        assert_eq!(
            decode(&pieces, limit),
            reference,
            "SSE events depend on the cut"
        );
    }
}

type Reply = Vec<Result<omnipanel_core::ollama::ReplyChunk, OpenAiError>>;

fn completions(body: &[u8], seed: u8) {
    let limit = 8 + usize::from(seed % 64) * 4;
    let read = |pieces: &[&[u8]]| -> Reply {
        runtime().block_on(async {
            let mut stream = CompletionStream::from_response(response(pieces), limit);
            let mut items = Vec::new();
            while let Some(item) = stream.next().await {
                items.push(item);
            }
            items
        })
    };
    let [whole, bytewise, seeded] = cuts(body, seed);
    let reference = read(&bytewise);
    if let Some(error) = reference.iter().position(Result::is_err) {
        assert_eq!(error, reference.len() - 1, "a reply piece after an error");
    }
    for pieces in [whole, seeded] {
        assert_eq!(read(&pieces), reference, "reply pieces depend on the cut");
    }
}
