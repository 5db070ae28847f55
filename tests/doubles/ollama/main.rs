//! `fake-ollama`: a test double of the Ollama server, standing in for the
//! real `ollama` executable in end-to-end tests of OmniPanel's Ollama
//! supervisor. It speaks Ollama's HTTP API (see `docs/api.md` in
//! ollama/ollama) closely enough for a supervisor, simulates model pulls
//! without transferring anything, and can be told to misbehave.
//!
//! # Command line
//!
//! - `fake-ollama serve`: run the server, like `ollama serve`.
//! - `fake-ollama squat`: run a plain HTTP server on the same address that
//!   is *not* Ollama (every request: `404`, body `not ollama`).
//! - `fake-ollama -v` / `--version`: print `ollama version is 0.0.0-fake`.
//! - no arguments, `help`, `-h`, `--help`: usage on stdout, exit 0.
//! - anything else: usage on stderr, exit 2.
//!
//! # Environment (read once at startup)
//!
//! Ollama's own:
//!
//! - `OLLAMA_HOST`: listen address, interpreted like Ollama does
//!   (`host:port`, `http://host[:port]` with default port 80,
//!   `https://host[:port]` with 443, `:port` for every interface, a bare
//!   host with port 11434; unset or empty: `127.0.0.1:11434`; port `0`
//!   picks a free port, reported in the `Listening on` line).
//! - `OLLAMA_MODELS`: where the state file lives (default
//!   `$HOME/.ollama/models`).
//! - `OLLAMA_KEEP_ALIVE`: default keep-alive of loaded models (default 5m).
//!
//! The fake's switches:
//!
//! - `FAKE_OLLAMA_CRASH_AFTER_SECS=N` (fractions allowed): N seconds after
//!   the listener is bound, print a Go-style `panic:` banner on stderr and
//!   exit with status 1 at once.
//! - `FAKE_OLLAMA_HANG_AFTER_SECS=N`: N seconds after binding, stop
//!   answering: connections are still accepted, but no request (the stats
//!   endpoint included) ever gets a reply. `0` hangs right after binding.
//! - `FAKE_OLLAMA_PULL_BYTES_PER_SEC=N`: simulated download rate (default
//!   512 MiB/s). A layer reports progress at most every 50 ms, plus a final
//!   line when it completes.
//! - `FAKE_OLLAMA_PULL_FAIL_AT_PERCENT=X` (0–100): a pull stops once X% of
//!   the model's bytes are downloaded, with the final line
//!   `{"error":"max retries exceeded: EOF"}`; the progress so far is saved
//!   so a later pull resumes from it.
//! - `FAKE_OLLAMA_PULL_FAIL_ONCE=1`: only the first pull (per process) that
//!   reaches that point fails.
//! - `FAKE_OLLAMA_TOKEN_DELAY_MS=N`: delay before each streamed token of a
//!   generation or chat (default 0).
//! - `FAKE_OLLAMA_START_DELAY_MS=N`: wait this long before binding
//!   (simulating a slow start).
//! - `FAKE_OLLAMA_REPLY_FAIL_AFTER_TOKENS=N`: a streamed `/api/generate` or
//!   `/api/chat` reply stops after N tokens with the final line
//!   `{"error":"<message>"}` (HTTP 200, as Ollama ends a stream that had
//!   already started); without streaming the answer is `500` with that
//!   error. The message is `FAKE_OLLAMA_REPLY_ERROR` if set, else Ollama's
//!   "model runner has unexpectedly stopped, this may be due to resource
//!   limitations or an internal error".
//!
//! - `FAKE_OLLAMA_IGNORE_SIGTERM=1`: `serve` logs SIGTERM and carries on
//!   (a server that will not stop, for a supervisor's SIGKILL fallback).
//!   SIGINT still stops it, and so does its parent going away, since the
//!   signal a dying parent sends (PR_SET_PDEATHSIG) is the ignored SIGTERM.
//!
//! An unparsable switch is an error (exit 1); a bad `OLLAMA_KEEP_ALIVE` is
//! only a warning, as in Ollama.
//!
//! # Signals
//!
//! SIGTERM and SIGINT: log a shutdown line, save the state, exit 0 (but see
//! `FAKE_OLLAMA_IGNORE_SIGTERM`).
//!
//! # Not part of Ollama
//!
//! `GET /__fake/stats` returns counters for tests (see `stats.rs`):
//! `{"requests":{"/api/pull":2,...},"pulls_started":0,"pulls_completed":0,
//! "pulls_failed":0,"pulls_cancelled":0,"pulls_active":0,
//! "generations_started":0,"generations_completed":0,
//! "generations_failed":0,"generations_cancelled":0,"generations_active":0,
//! "env":{"OLLAMA_HOST":"127.0.0.1:11434",...}}` (`env`: the `OLLAMA_*`
//! variables it was started with).
//!
//! `GET /v2/<namespace>/<model>/manifests/<tag>` (and `HEAD`) is a registry
//! stand-in, not part of Ollama's API: it answers like registry.ollama.ai
//! (e.g. `/v2/library/tinyllama/manifests/latest`), so tests can use the
//! same process as the registry, for instance to learn a model's download
//! size before pulling it (see `registry.rs`). `200` with content type
//! `application/vnd.docker.distribution.manifest.v2+json`,
//! `Content-Length` and `Docker-Content-Digest: sha256:<hex>` (the digest
//! `/api/tags` shows) and the body
//! `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
//! "config":{"mediaType":"application/vnd.docker.container.image.v1+json",
//! "digest":"sha256:<hex>","size":483},"layers":[{"mediaType":
//! "application/vnd.ollama.image.model","digest":"sha256:<hex>","size":637699456},...]}`,
//! listing the blobs a pull reports (model, template, [system,] license,
//! params), so `config.size` plus all `layers[].size` equals the bytes a
//! pull downloads. Names match case-insensitively. Unknown model or tag:
//! `404` with `{"errors":[{"code":"MANIFEST_UNKNOWN","message":
//! "manifest unknown","detail":{"Tag":"<tag>"}}]}` (no body for `HEAD`).
//! These requests are counted in `/__fake/stats` like any other path.

mod catalog;
mod clock;
mod embed;
mod generate;
mod host;
#[cfg(test)]
mod http_tests;
mod keep_alive;
mod loaded;
mod logline;
mod names;
mod pull;
mod registry;
mod server;
mod squat;
mod stats;
mod store;
mod switches;

use std::{future::Future, io, io::Write, process::ExitCode, sync::Arc, time::Duration};

use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

use crate::{
    host::ListenAddr,
    keep_alive::KeepAlive,
    server::{App, Settings, VERSION},
    store::Store,
    switches::Switches,
};

const USAGE: &str = "Usage:
  fake-ollama serve          Start the fake Ollama server
  fake-ollama squat          Serve a non-Ollama HTTP server on OLLAMA_HOST
  fake-ollama -v|--version   Show version information

A test double of `ollama`. Configured by OLLAMA_HOST, OLLAMA_MODELS,
OLLAMA_KEEP_ALIVE and the FAKE_OLLAMA_* switches documented in its source.
";

#[derive(Debug, Clone, Copy)]
enum Mode {
    Serve,
    Squat,
}

fn main() -> ExitCode {
    let args: Result<Vec<String>, _> = std::env::args_os()
        .skip(1)
        .map(|a| a.into_string())
        .collect();
    let Ok(args) = args else {
        return usage_error();
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] | ["help" | "-h" | "--help"] => {
            // Nothing useful to do if stdout is closed.
            let _ = io::stdout().write_all(USAGE.as_bytes());
            ExitCode::SUCCESS
        }
        ["-v" | "--version"] => {
            let _ = writeln!(io::stdout(), "ollama version is {VERSION}");
            ExitCode::SUCCESS
        }
        ["serve"] => run(Mode::Serve),
        ["squat"] => run(Mode::Squat),
        _ => usage_error(),
    }
}

fn usage_error() -> ExitCode {
    let _ = io::stderr().write_all(USAGE.as_bytes());
    ExitCode::from(2)
}

fn run(mode: Mode) -> ExitCode {
    let switches = match Switches::from_env() {
        Ok(switches) => switches,
        Err(err) => return fail(&err),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(&err.to_string()),
    };
    let code = runtime.block_on(async move {
        match mode {
            Mode::Serve => serve(switches).await,
            Mode::Squat => squat(switches).await,
        }
    });
    // Open connections and streams are simply dropped: a supervisor
    // expects a prompt exit, not a drain.
    runtime.shutdown_background();
    code
}

/// Prints an `Error: ...` line like the Ollama CLI and returns status 1.
fn fail(message: &str) -> ExitCode {
    logline::line(&format!("Error: {message}"));
    ExitCode::FAILURE
}

async fn serve(switches: Switches) -> ExitCode {
    for warning in &switches.warnings {
        logline::warn(warning);
    }
    logline::info(&format!(
        "server config: OLLAMA_HOST={} OLLAMA_MODELS={} OLLAMA_KEEP_ALIVE={} \
         pull_bytes_per_sec={} pull_fail_at_percent={:?} pull_fail_once={} \
         token_delay={:?} reply_failure={:?} crash_after={:?} hang_after={:?} start_delay={:?} \
         ignore_sigterm={}",
        switches.host,
        switches.models_dir.display(),
        match switches.default_keep_alive {
            KeepAlive::Forever => "forever".to_string(),
            KeepAlive::For(d) => format!("{d:?}"),
        },
        switches.pull.bytes_per_sec,
        switches.pull.fail_at_percent,
        switches.pull.fail_once,
        switches.token_delay,
        switches.reply_failure,
        switches.crash_after,
        switches.hang_after,
        switches.start_delay,
        switches.ignore_sigterm,
    ));
    let mut shutdown = match shutdown_signal(switches.ignore_sigterm) {
        Ok(shutdown) => Box::pin(shutdown),
        Err(err) => return fail(&format!("signal handlers: {err}")),
    };
    if !switches.start_delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(switches.start_delay) => {}
            signal = &mut shutdown => {
                logline::info(&format!("received {signal}, shutting down"));
                return ExitCode::SUCCESS;
            }
        }
    }
    let store = match Store::open(&switches.models_dir) {
        Ok(store) => Arc::new(store),
        Err(err) => {
            return fail(&format!(
                "mkdir {}: {}",
                switches.models_dir.display(),
                go_error_text(&err)
            ));
        }
    };
    let listener = match bind(&switches.host).await {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    logline::info(&format!(
        "Listening on {} (version {VERSION})",
        listened(&listener, &switches.host)
    ));
    let app = App::new(
        Arc::clone(&store),
        Settings {
            token_delay: switches.token_delay,
            default_keep_alive: switches.default_keep_alive,
            pull: switches.pull,
            hang_after: switches.hang_after,
            reply_failure: switches.reply_failure.clone(),
        },
    );
    if let Some(after) = switches.crash_after {
        tokio::spawn(crash_after(after));
    }
    tokio::select! {
        result = server::serve(listener, app) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err.to_string()),
        },
        signal = shutdown => {
            logline::info(&format!("received {signal}, shutting down"));
            store.persist_or_warn().await;
            ExitCode::SUCCESS
        }
    }
}

async fn squat(switches: Switches) -> ExitCode {
    let shutdown = match shutdown_signal(false) {
        Ok(shutdown) => shutdown,
        Err(err) => return fail(&format!("signal handlers: {err}")),
    };
    let listener = match bind(&switches.host).await {
        Ok(listener) => listener,
        Err(code) => return code,
    };
    logline::info(&format!(
        "Listening on {} (squatter: not ollama)",
        listened(&listener, &switches.host)
    ));
    tokio::select! {
        result = squat::serve(listener) => match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err.to_string()),
        },
        signal = shutdown => {
            logline::info(&format!("received {signal}, shutting down"));
            ExitCode::SUCCESS
        }
    }
}

/// Binds like Ollama, failing with its wording:
/// `Error: listen tcp 127.0.0.1:11434: bind: address already in use`.
async fn bind(addr: &ListenAddr) -> Result<TcpListener, ExitCode> {
    TcpListener::bind(addr.bind_target()).await.map_err(|err| {
        let reason = match err.kind() {
            io::ErrorKind::AddrInUse => "bind: address already in use".to_string(),
            io::ErrorKind::PermissionDenied => "bind: permission denied".to_string(),
            io::ErrorKind::AddrNotAvailable => "bind: cannot assign requested address".to_string(),
            _ => go_error_text(&err),
        };
        fail(&format!("listen tcp {addr}: {reason}"))
    })
}

/// The address actually bound (it differs from the request for port 0).
fn listened(listener: &TcpListener, requested: &ListenAddr) -> String {
    listener
        .local_addr()
        .map_or_else(|_| requested.to_string(), |addr| addr.to_string())
}

/// An OS error the way Go prints it: lower case, without Rust's
/// `(os error N)` suffix.
fn go_error_text(err: &io::Error) -> String {
    let text = err.to_string();
    let text = text
        .split_once(" (os error")
        .map_or(text.as_str(), |(message, _)| message);
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// Resolves with the signal's Go name once SIGTERM or SIGINT arrives.
/// Registered before binding, so a stop request is never missed. With
/// `ignore_term` SIGTERM is only logged; then the parent is watched
/// instead, so a supervisor that dies does not leave the fake behind.
fn shutdown_signal(ignore_term: bool) -> io::Result<impl Future<Output = &'static str>> {
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let parent = std::os::unix::process::parent_id();
    Ok(async move {
        let mut orphan_check = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = terminate.recv() => {
                    if !ignore_term {
                        return "terminated";
                    }
                    logline::info("received terminated, ignoring it (FAKE_OLLAMA_IGNORE_SIGTERM)");
                }
                _ = interrupt.recv() => return "interrupt",
                _ = orphan_check.tick(), if ignore_term => {
                    if std::os::unix::process::parent_id() != parent {
                        return "parent exit";
                    }
                }
            }
        }
    })
}

/// `FAKE_OLLAMA_CRASH_AFTER_SECS`: dies like a Go program that panicked,
/// without saving anything.
async fn crash_after(after: Duration) {
    tokio::time::sleep(after).await;
    logline::line(&format!(
        "panic: fake-ollama: simulated crash after {after:?} (FAKE_OLLAMA_CRASH_AFTER_SECS)\n\n\
         goroutine 1 [running]:\nmain.main()\n\tfake-ollama/main.rs"
    ));
    std::process::exit(1);
}
