//! In-process checks of the HTTP surface: the real router on an ephemeral
//! 127.0.0.1 port, spoken to by a tiny raw HTTP/1.1 client (no HTTP client
//! crate is available to this package), so what is tested is the bytes a
//! supervisor would see: status lines, content types, chunked NDJSON.

use std::{
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    catalog,
    generate::CANNED,
    keep_alive,
    pull::PullConfig,
    server::{self, App, ReplyFailure, Settings},
    squat,
    store::Store,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A decoded HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// Header names lower-cased.
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.body)
    }

    /// The body as NDJSON: one JSON value per non-empty line.
    fn lines(&self) -> Result<Vec<Value>, serde_json::Error> {
        self.body
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect()
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn request_bytes(addr: SocketAddr, method: &str, path: &str, body: Option<&Value>) -> String {
    let body = body.map(Value::to_string).unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// One request on a fresh connection, read to the end.
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> io::Result<Reply> {
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(request_bytes(addr, method, path, body).as_bytes())
        .await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> io::Result<Reply> {
    let text = std::str::from_utf8(raw).map_err(|_| invalid("reply is not UTF-8"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| invalid("no end of headers"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// Undoes HTTP/1.1 chunked transfer encoding.
fn dechunk(mut rest: &str) -> io::Result<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| invalid("bad chunk header"))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            return Ok(out);
        }
        out.push_str(after.get(..size).ok_or_else(|| invalid("short chunk"))?);
        rest = after
            .get(size + 2..)
            .ok_or_else(|| invalid("missing chunk end"))?;
    }
}

fn settings(token_delay: Duration, hang_after: Option<Duration>) -> Settings {
    Settings {
        token_delay,
        default_keep_alive: keep_alive::DEFAULT,
        pull: PullConfig {
            bytes_per_sec: 1 << 30,
            fail_at_percent: None,
            fail_once: false,
        },
        hang_after,
        reply_failure: None,
    }
}

/// Starts a server on an ephemeral port; the folder must outlive it.
async fn start(dir: &std::path::Path, settings: Settings) -> io::Result<(SocketAddr, Arc<App>)> {
    let store = Arc::new(Store::open(dir)?);
    let app = App::new(store, settings);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(server::serve(listener, Arc::clone(&app)));
    Ok((addr, app))
}

#[tokio::test]
async fn speaks_ollamas_api() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (addr, app) = start(dir.path(), settings(Duration::ZERO, None)).await?;

    let root = call(addr, "GET", "/", None).await?;
    assert_eq!(
        (root.status, root.body.as_str()),
        (200, "Ollama is running")
    );
    assert_eq!(call(addr, "HEAD", "/", None).await?.status, 200);

    let version = call(addr, "GET", "/api/version", None).await?;
    assert_eq!(version.status, 200);
    assert_eq!(version.json()?, json!({ "version": "0.0.0-fake" }));

    // Nothing installed yet.
    assert_eq!(
        call(addr, "GET", "/api/tags", None).await?.json()?,
        json!({ "models": [] })
    );

    // Pull, streamed as NDJSON.
    let pull = call(
        addr,
        "POST",
        "/api/pull",
        Some(&json!({ "model": "test-small" })),
    )
    .await?;
    assert_eq!(pull.status, 200);
    assert_eq!(pull.header("content-type"), Some("application/x-ndjson"));
    let lines = pull.lines()?;
    let statuses: Vec<&str> = lines.iter().filter_map(|l| l["status"].as_str()).collect();
    assert_eq!(statuses.first(), Some(&"pulling manifest"));
    assert_eq!(
        &statuses[statuses.len() - 3..],
        ["verifying sha256 digest", "writing manifest", "success"]
    );
    let model = catalog::find("test-small").ok_or("test-small missing")?;
    for layer in &model.layers {
        let last = lines
            .iter()
            .rfind(|l| l["digest"] == layer.digest.as_str())
            .ok_or("layer never reported")?;
        assert_eq!(last["total"], layer.size);
        assert_eq!(last["completed"], layer.size);
        assert_eq!(last["status"], format!("pulling {}", layer.short()));
    }

    // Installed now.
    let tags = call(addr, "GET", "/api/tags", None).await?.json()?;
    let listed = &tags["models"][0];
    assert_eq!(listed["name"], "test-small:latest");
    assert_eq!(listed["model"], "test-small:latest");
    assert_eq!(listed["size"], model.total_size());
    assert_eq!(listed["digest"].as_str().map(str::len), Some(64));
    assert_eq!(listed["details"]["format"], "gguf");
    assert_eq!(listed["details"]["family"], "llama");
    assert!(
        listed["modified_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    // Show.
    let show = call(
        addr,
        "POST",
        "/api/show",
        Some(&json!({ "name": "test-small" })),
    )
    .await?;
    assert_eq!(show.status, 200);
    let show = show.json()?;
    assert_eq!(show["model_info"]["general.architecture"], "llama");
    assert_eq!(show["model_info"]["llama.context_length"], 2048);
    assert!(show["model_info"]["general.parameter_count"].is_u64());
    assert_eq!(show["capabilities"], json!(["completion"]));
    assert!(
        show["modelfile"]
            .as_str()
            .is_some_and(|m| m.contains("FROM "))
    );

    // Generate, streamed.
    let generated = call(
        addr,
        "POST",
        "/api/generate",
        Some(&json!({ "model": "test-small", "prompt": "hello there" })),
    )
    .await?;
    assert_eq!(generated.status, 200);
    assert_eq!(
        generated.header("content-type"),
        Some("application/x-ndjson")
    );
    let chunks = generated.lines()?;
    let (last, tokens) = chunks.split_last().ok_or("no chunks")?;
    assert!(tokens.len() > 3);
    assert!(
        tokens
            .iter()
            .all(|c| c["done"] == false && c["model"] == "test-small")
    );
    let text: String = tokens
        .iter()
        .filter_map(|c| c["response"].as_str())
        .collect();
    assert_eq!(text, format!("You said: hello there\n{CANNED}"));
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["response"], "");
    assert!(last["context"].as_array().is_some_and(|c| !c.is_empty()));
    assert_eq!(last["eval_count"], tokens.len());
    assert_eq!(last["prompt_eval_count"], 2);
    for field in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(last[field].as_u64().is_some_and(|n| n > 0), "{field}");
    }

    // Loaded with the default keep-alive.
    let ps = call(addr, "GET", "/api/ps", None).await?.json()?;
    assert_eq!(ps["models"][0]["name"], "test-small:latest");
    assert!(ps["models"][0]["expires_at"].is_string());
    assert!(ps["models"][0]["size_vram"].is_u64());

    // Chat, not streamed.
    let chat = call(
        addr,
        "POST",
        "/api/chat",
        Some(&json!({
            "model": "test-small:latest",
            "stream": false,
            "messages": [{ "role": "user", "content": "ping" }],
        })),
    )
    .await?;
    assert_eq!(
        chat.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let chat = chat.json()?;
    assert_eq!(chat["message"]["role"], "assistant");
    assert_eq!(
        chat["message"]["content"],
        format!("You said: ping\n{CANNED}")
    );
    assert_eq!(
        (chat["done"].clone(), chat["done_reason"].clone()),
        (json!(true), json!("stop"))
    );

    // Unload with an empty prompt and keep_alive 0.
    let unload = call(
        addr,
        "POST",
        "/api/generate",
        Some(&json!({ "model": "test-small", "keep_alive": 0 })),
    )
    .await?
    .json()?;
    assert_eq!(unload["done_reason"], "unload");
    assert_eq!(
        call(addr, "GET", "/api/ps", None).await?.json()?,
        json!({ "models": [] })
    );

    // Load again, forever.
    let load = call(
        addr,
        "POST",
        "/api/chat",
        Some(&json!({ "model": "test-small", "messages": [], "keep_alive": "-1m" })),
    )
    .await?
    .json()?;
    assert_eq!(load["done_reason"], "load");
    let ps = call(addr, "GET", "/api/ps", None).await?.json()?;
    assert!(
        ps["models"][0]["expires_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("23"))
    );

    // Errors.
    let missing = call(
        addr,
        "POST",
        "/api/generate",
        Some(&json!({ "model": "nope", "prompt": "hi" })),
    )
    .await?;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.json()?,
        json!({ "error": "model \"nope\" not found, try pulling it first" })
    );
    let bad_keep_alive = call(
        addr,
        "POST",
        "/api/generate",
        Some(&json!({ "model": "test-small", "keep_alive": "soon" })),
    )
    .await?;
    assert_eq!(bad_keep_alive.status, 400);
    let unknown_pull = call(addr, "POST", "/api/pull", Some(&json!({ "model": "nope" }))).await?;
    assert_eq!(unknown_pull.status, 200);
    assert_eq!(
        unknown_pull.lines()?.last(),
        Some(&json!({ "error": "pull model manifest: file does not exist" }))
    );
    let unknown_quiet = call(
        addr,
        "POST",
        "/api/pull",
        Some(&json!({ "model": "nope", "stream": false })),
    )
    .await?;
    assert_eq!(unknown_quiet.status, 500);
    assert_eq!(call(addr, "GET", "/api/nothing", None).await?.status, 404);
    let empty = call(addr, "POST", "/api/show", None).await?;
    assert_eq!(
        (empty.status, empty.json()?),
        (400, json!({ "error": "missing request body" }))
    );

    // Delete.
    let body = json!({ "model": "test-small" });
    assert_eq!(
        call(addr, "DELETE", "/api/delete", Some(&body))
            .await?
            .status,
        200
    );
    let again = call(addr, "DELETE", "/api/delete", Some(&body)).await?;
    assert_eq!(again.status, 404);
    assert_eq!(
        again.json()?,
        json!({ "error": "model 'test-small' not found" })
    );
    assert_eq!(
        call(addr, "GET", "/api/ps", None).await?.json()?,
        json!({ "models": [] })
    );

    // Quiet pull gives one object.
    let quiet = call(
        addr,
        "POST",
        "/api/pull",
        Some(&json!({ "model": "registry.ollama.ai/library/test-small:latest", "stream": false })),
    )
    .await?;
    assert_eq!(
        (quiet.status, quiet.json()?),
        (200, json!({ "status": "success" }))
    );

    let stats = call(addr, "GET", "/__fake/stats", None).await?.json()?;
    assert_eq!(stats["pulls_started"], 4);
    assert_eq!(stats["pulls_completed"], 2);
    assert_eq!(stats["pulls_failed"], 2);
    assert_eq!(stats["pulls_active"], 0);
    assert_eq!(stats["generations_completed"], 2);
    assert_eq!(stats["generations_active"], 0);
    assert_eq!(stats["requests"]["/api/pull"], 4);
    assert_eq!(stats["requests"]["/__fake/stats"], 1);
    assert_eq!(app.stats.snapshot().generations_cancelled, 0);
    Ok(())
}

#[tokio::test]
async fn serves_registry_manifests() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (addr, _app) = start(dir.path(), settings(Duration::ZERO, None)).await?;
    let model = catalog::find("tinyllama").ok_or("tinyllama missing")?;
    let manifest_type = "application/vnd.docker.distribution.manifest.v2+json";
    let digest = format!("sha256:{}", model.manifest_digest);
    let path = "/v2/library/tinyllama/manifests/latest";

    let got = call(addr, "GET", path, None).await?;
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some(manifest_type));
    assert_eq!(got.header("docker-content-digest"), Some(digest.as_str()));
    let length = got.body.len().to_string();
    assert_eq!(got.header("content-length"), Some(length.as_str()));
    let manifest = got.json()?;
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], manifest_type);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    let layers = manifest["layers"].as_array().ok_or("no layers")?;
    let media: Vec<&str> = layers
        .iter()
        .filter_map(|l| l["mediaType"].as_str())
        .collect();
    assert_eq!(
        media,
        [
            "application/vnd.ollama.image.model",
            "application/vnd.ollama.image.template",
            "application/vnd.ollama.image.system",
            "application/vnd.ollama.image.license",
            "application/vnd.ollama.image.params",
        ]
    );
    // The same blobs a pull reports, in pull order, config last.
    let listed: Vec<(Value, Value)> = layers
        .iter()
        .chain([&manifest["config"]])
        .map(|l| (l["digest"].clone(), l["size"].clone()))
        .collect();
    let pulled: Vec<(Value, Value)> = model
        .layers
        .iter()
        .map(|l| (json!(l.digest), json!(l.size)))
        .collect();
    assert_eq!(listed, pulled);
    let size: u64 = listed.iter().filter_map(|(_, s)| s.as_u64()).sum();
    assert_eq!(size, model.total_size());

    // Names match case-insensitively, as everywhere in the fake.
    let shouted = call(addr, "GET", "/v2/Library/TinyLlama/manifests/Latest", None).await?;
    assert_eq!(shouted.status, 200);
    assert_eq!(shouted.json()?, manifest);
    let qwen = call(addr, "GET", "/v2/library/qwen2.5/manifests/0.5b", None).await?;
    assert_eq!(qwen.status, 200);

    // HEAD: the same headers, no body.
    let head = call(addr, "HEAD", path, None).await?;
    assert_eq!(head.status, 200);
    assert_eq!(head.body, "");
    assert_eq!(head.header("content-length"), Some(length.as_str()));
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(head.header("content-type"), Some(manifest_type));

    // Unknown model, unknown tag.
    for (path, tag) in [
        ("/v2/library/nonexistent/manifests/latest", "latest"),
        ("/v2/library/tinyllama/manifests/v9", "v9"),
    ] {
        let missing = call(addr, "GET", path, None).await?;
        assert_eq!(missing.status, 404, "{path}");
        assert_eq!(
            missing.json()?,
            json!({ "errors": [{
                "code": "MANIFEST_UNKNOWN",
                "message": "manifest unknown",
                "detail": { "Tag": tag },
            }] })
        );
        let head = call(addr, "HEAD", path, None).await?;
        assert_eq!((head.status, head.body.as_str()), (404, ""), "{path}");
        assert_eq!(head.header("docker-content-digest"), None);
    }

    let stats = call(addr, "GET", "/__fake/stats", None).await?.json()?;
    assert_eq!(stats["requests"][path], 2);
    assert_eq!(
        stats["requests"]["/v2/library/nonexistent/manifests/latest"],
        2
    );
    assert_eq!(stats["pulls_started"], 0);
    Ok(())
}

#[tokio::test]
async fn disconnect_cancels_generation() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (addr, app) = start(dir.path(), settings(Duration::from_millis(100), None)).await?;
    let pull = call(
        addr,
        "POST",
        "/api/pull",
        Some(&json!({ "model": "test-small" })),
    )
    .await?;
    assert_eq!(pull.status, 200);

    let body = json!({ "model": "test-small", "prompt": "a long story" });
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(request_bytes(addr, "POST", "/api/generate", Some(&body)).as_bytes())
        .await?;
    // Wait for the headers and the first token, then hang up.
    let mut seen = Vec::new();
    let mut buf = [0_u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("\"done\":false") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await??;
        if n == 0 {
            return Err("stream ended early".into());
        }
        seen.extend_from_slice(&buf[..n]);
    }
    assert_eq!(app.stats.snapshot().generations_active, 1);
    drop(stream);

    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = app.stats.snapshot();
        if stats.generations_cancelled == 1 && stats.generations_active == 0 {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("generation not cancelled: {stats:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.stats.snapshot().generations_completed, 0);
    Ok(())
}

#[tokio::test]
async fn hung_server_accepts_but_never_answers() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (addr, _app) = start(dir.path(), settings(Duration::ZERO, Some(Duration::ZERO))).await?;
    let answer = tokio::time::timeout(
        Duration::from_millis(300),
        call(addr, "GET", "/api/version", None),
    )
    .await;
    assert!(answer.is_err(), "a hung server answered: {answer:?}");
    Ok(())
}

#[tokio::test]
async fn squatter_is_not_ollama() -> TestResult {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(squat::serve(listener));
    for path in ["/", "/api/version", "/api/tags"] {
        let reply = call(addr, "GET", path, None).await?;
        assert_eq!((reply.status, reply.body.as_str()), (404, "not ollama"));
    }
    Ok(())
}

#[tokio::test]
async fn a_reply_can_break_off_with_an_error_line() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut with_failure = settings(Duration::ZERO, None);
    with_failure.reply_failure = Some(ReplyFailure {
        after_tokens: 2,
        message: "runner died".to_string(),
    });
    let (addr, app) = start(dir.path(), with_failure).await?;
    let pull = json!({ "model": "test-small" });
    assert_eq!(
        call(addr, "POST", "/api/pull", Some(&pull)).await?.status,
        200
    );

    // Streamed: two tokens, then Ollama's error line, with HTTP 200.
    for (path, body) in [
        (
            "/api/generate",
            json!({ "model": "test-small", "prompt": "hello there" }),
        ),
        (
            "/api/chat",
            json!({ "model": "test-small", "messages": [{ "role": "user", "content": "hi" }] }),
        ),
    ] {
        let reply = call(addr, "POST", path, Some(&body)).await?;
        assert_eq!(reply.status, 200, "{path}");
        let lines = reply.lines()?;
        assert_eq!(lines.len(), 3, "{path}: {lines:?}");
        assert!(lines[..2].iter().all(|l| l["done"] == false), "{lines:?}");
        assert_eq!(lines[2], json!({ "error": "runner died" }), "{path}");
    }
    // Not streamed: the error is the answer.
    let quiet = json!({ "model": "test-small", "prompt": "hi", "stream": false });
    let reply = call(addr, "POST", "/api/generate", Some(&quiet)).await?;
    assert_eq!(
        (reply.status, reply.json()?),
        (500, json!({ "error": "runner died" }))
    );
    let stats = app.stats.snapshot();
    assert_eq!((stats.generations_failed, stats.generations_active), (3, 0));
    Ok(())
}
