//! `fake-openai`: a test double of an OpenAI-compatible model server (the
//! API that LM Studio, llama.cpp's server, vLLM, LocalAI and hosted
//! endpoints speak), standing in for one in tests of OmniPanel's `openai`
//! provider kind and gateway. It answers deterministically, streams
//! server-sent events byte for byte the way OpenAI frames them, and can be
//! told to misbehave, at startup or between two requests.
//!
//! # Command line
//!
//! - `fake-openai serve`: run the server until SIGTERM or SIGINT (exit 0).
//! - no arguments, `help`, `-h`, `--help`: usage on stdout, exit 0.
//! - anything else: usage on stderr, exit 2.
//!
//! Once bound, `serve` prints `Listening on 127.0.0.1:PORT` on stderr (a
//! test reads the port from it), then one line per request.
//!
//! # The API
//!
//! - `GET /v1/models`: `{"object":"list","data":[{"id":..,"object":"model",
//!   "created":..,"owned_by":"fake-openai"}]}`.
//! - `POST /v1/chat/completions`: a `chat.completion`, or with
//!   `"stream":true` SSE (`Content-Type: text/event-stream`): frames
//!   `data: <chat.completion.chunk>\n\n`, the first with
//!   `delta.role` (and empty `content`), then one per word of the answer,
//!   then an empty `delta` with `finish_reason`, then (with
//!   `stream_options.include_usage`) a chunk with empty `choices` and
//!   `usage`, then `data: [DONE]\n\n`. The answer is the last user message,
//!   trimmed, a space, and `This is a canned answer from fake-openai.`;
//!   `max_tokens`/`max_completion_tokens` cut it (`finish_reason:"length"`).
//! - `POST /v1/completions`: the same for `prompt` (`text_completion`,
//!   chunks with `choices[0].text`).
//! - `POST /v1/embeddings`: `input` a string or a list → deterministic unit
//!   vectors (`encoding_format` `float` or `base64`), with `usage`.
//! - Errors have OpenAI's shape, `{"error":{"message":..,"type":..,
//!   "param":..,"code":..}}`: an unknown model is `404` `model_not_found`,
//!   a missing field `400` `missing_required_parameter`, an unknown path
//!   `404` `Invalid URL (GET /x)`.
//!
//! # Environment (read once at startup)
//!
//! - `FAKE_OPENAI_ADDR`: listen address (default `127.0.0.1:0`, a free
//!   port).
//! - `FAKE_OPENAI_API_KEY`: when set and not empty, every `/v1/*` request
//!   needs `Authorization: Bearer <key>`, else `401` with code
//!   `invalid_api_key`.
//! - `FAKE_OPENAI_MODELS`: comma-separated model ids (default
//!   `qwen2.5-7b-instruct,org/model-7b,text-embedding-nomic-embed-text-v1.5`);
//!   any of them can chat, complete and embed.
//! - `FAKE_OPENAI_EMBED_DIM`: embedding size (default 16).
//!
//! The switches (each also a field of `POST /__fake/switches`):
//!
//! - `FAKE_OPENAI_TOKEN_DELAY_MS=N` (`token_delay_ms`): delay before each
//!   streamed chunk after the first; a non-streamed answer waits N ms per
//!   word. Default 0.
//! - `FAKE_OPENAI_STREAM_ERROR_AFTER_CHUNKS=N`
//!   (`stream_error_after_chunks`, `null` = off): a stream sends N chunks,
//!   then `data: {"error":{..,"type":"server_error",..}}\n\n` and closes
//!   without `[DONE]`; a non-streamed request answers `500` with that error.
//! - `FAKE_OPENAI_STREAM_ERROR_MESSAGE` (`stream_error_message`): its text.
//! - `FAKE_OPENAI_RATE_LIMIT_NEXT=K` (`rate_limit_next`): the next K API
//!   requests get `429` (`rate_limit_exceeded`) with `Retry-After: N`,
//!   N from `FAKE_OPENAI_RETRY_AFTER_SECS` (`retry_after_secs`, default 1).
//! - `FAKE_OPENAI_SERVER_ERROR_NEXT=K` (`server_error_next`): the next K API
//!   requests get `500` (`server_error`).
//! - `FAKE_OPENAI_HANG=1` (`hang`): API requests are accepted and never
//!   answered (switching it off does not release requests already hung).
//! - `FAKE_OPENAI_WRONG_SHAPE=1` (`wrong_shape`): API requests get `200`
//!   with an HTML page, as from a URL that is a web UI and not an API.
//!
//! The switches act in this order: hang, wrong shape, auth, 429, 500, so a
//! request without the key is refused before it uses up a 429 or 500. An
//! unparsable variable is an error at startup (exit 1).
//!
//! # Not part of the API
//!
//! Never subject to the switches or the key, so a test can always reach
//! them:
//!
//! - `GET /__fake/stats`: `{"requests":{"/v1/models":2,..},
//!   "last_request":{"method":"POST","path":"/v1/chat/completions",
//!   "headers":{"authorization":"Bearer ..",..}},"streams_started":1,
//!   "streams_completed":0,"streams_failed":0,"streams_cancelled":1}`
//!   (`/__fake/*` requests are not counted and not "last").
//! - `GET /__fake/switches`: the switches now; `POST /__fake/switches`
//!   with any subset of them as JSON changes those (unknown names: `400`)
//!   and answers with all of them.

mod complete;
mod embed;
#[cfg(test)]
mod http_tests;
mod server;
mod stats;
mod switches;

use std::{io, io::Write, process::ExitCode};

use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

use crate::{
    server::{App, log},
    switches::Config,
};

const USAGE: &str = "Usage:
  fake-openai serve     Start the fake OpenAI-compatible server

A test double of an OpenAI-compatible model server. Configured by
FAKE_OPENAI_ADDR, FAKE_OPENAI_API_KEY, FAKE_OPENAI_MODELS and the other
FAKE_OPENAI_* variables documented in its source.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["help" | "-h" | "--help"] => {
            // Nothing useful to do if stdout is closed.
            let _ = io::stdout().write_all(USAGE.as_bytes());
            ExitCode::SUCCESS
        }
        ["serve"] => run(),
        _ => {
            let _ = io::stderr().write_all(USAGE.as_bytes());
            ExitCode::from(2)
        }
    }
}

fn run() -> ExitCode {
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => return fail(&err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err.to_string()),
    };
    let code = runtime.block_on(serve(config));
    // Open connections (hung ones included) are simply dropped.
    runtime.shutdown_background();
    code
}

fn fail(message: &str) -> ExitCode {
    log(&format!("error: {message}"));
    ExitCode::FAILURE
}

async fn serve(config: Config) -> ExitCode {
    // Registered before binding, so a stop request is never missed.
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(err), _) | (_, Err(err)) => return fail(&format!("signal handlers: {err}")),
    };
    let listener = match TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(err) => return fail(&format!("listen on {}: {err}", config.addr)),
    };
    let bound = listener
        .local_addr()
        .map_or_else(|_| config.addr.to_string(), |a| a.to_string());
    // Exactly this text, first, on its own line: tests parse it.
    let _ = writeln!(io::stderr().lock(), "Listening on {bound}");
    log(&format!(
        "models {:?}, api key {}, embedding size {}, switches {:?}",
        config.models,
        if config.api_key.is_some() {
            "required"
        } else {
            "not required"
        },
        config.embed_dim,
        config.switches
    ));
    let app = App::new(&config);
    tokio::select! {
        result = server::serve(listener, app) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err.to_string()),
        },
        _ = terminate.recv() => {
            log("received SIGTERM, shutting down");
            ExitCode::SUCCESS
        }
        _ = interrupt.recv() => {
            log("received SIGINT, shutting down");
            ExitCode::SUCCESS
        }
    }
}
