//! In-process checks of the HTTP surface: the real router on an ephemeral
//! 127.0.0.1 port, spoken to by a tiny raw HTTP/1.1 client (no HTTP client
//! crate is available to this package), so what is tested is the bytes a
//! client sees: status lines, headers, SSE frames exactly as sent.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::{
    complete::CANNED,
    embed,
    server::{self, App},
    switches::Config,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const MODEL: &str = "qwen2.5-7b-instruct";

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

    /// The payloads of the SSE `data:` frames, checking the framing: every
    /// frame is exactly `data: <payload>\n\n`.
    fn frames(&self) -> io::Result<Vec<&str>> {
        let body = self
            .body
            .strip_suffix("\n\n")
            .ok_or_else(|| invalid("stream does not end with a blank line"))?;
        body.split("\n\n")
            .map(|frame| {
                frame
                    .strip_prefix("data: ")
                    .filter(|payload| !payload.contains('\n'))
                    .ok_or_else(|| invalid(&format!("bad frame {frame:?}")))
            })
            .collect()
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Sends one request on a fresh connection; `headers` are extra lines.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> io::Result<TcpStream> {
    let body = body.map(Value::to_string).unwrap_or_default();
    let extra: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    let mut stream = TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!(
                "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await?;
    Ok(stream)
}

async fn call_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> io::Result<Reply> {
    let mut stream = send(addr, method, path, headers, body).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut raw))
        .await
        .map_err(|_| invalid("no reply within 10 s"))??;
    parse_reply(&raw)
}

async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> io::Result<Reply> {
    call_with(addr, method, path, &[], body).await
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

/// Starts a server configured by `env` (as if those were the
/// environment) on an ephemeral port.
async fn start(env: &[(&str, &str)]) -> Result<(SocketAddr, Arc<App>), Box<dyn std::error::Error>> {
    let config = Config::from_lookup(|name| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| (*v).to_string())
    })?;
    let app = App::new(&config);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(server::serve(listener, Arc::clone(&app)));
    Ok((addr, app))
}

async fn switch(addr: SocketAddr, patch: Value) -> TestResult {
    let reply = call(addr, "POST", "/__fake/switches", Some(&patch)).await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    Ok(())
}

fn chat_body(text: &str, stream: bool) -> Value {
    json!({ "model": MODEL, "stream": stream, "messages": [
        { "role": "system", "content": "Be brief." },
        { "role": "user", "content": text },
    ]})
}

#[tokio::test]
async fn lists_models_and_checks_the_key() -> TestResult {
    let (addr, _) = start(&[
        ("FAKE_OPENAI_API_KEY", "sk-test-123456789"),
        ("FAKE_OPENAI_MODELS", "a-model,org/model-7b"),
    ])
    .await?;

    let none = call(addr, "GET", "/v1/models", None).await?;
    assert_eq!(none.status, 401);
    assert_eq!(none.header("content-type"), Some("application/json"));
    let error = &none.json()?["error"];
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["code"], "invalid_api_key");
    assert_eq!(error["param"], Value::Null);
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("didn't provide"))
    );

    let wrong = call_with(
        addr,
        "GET",
        "/v1/models",
        &[("Authorization", "Bearer sk-wrong-0000000")],
        None,
    )
    .await?;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()?["error"]["code"], "invalid_api_key");
    // The key is never echoed in full.
    assert!(!wrong.body.contains("sk-wrong-0000000"));

    let right = call_with(
        addr,
        "GET",
        "/v1/models",
        &[
            ("Authorization", "Bearer sk-test-123456789"),
            ("X-Extra", "one"),
        ],
        None,
    )
    .await?;
    assert_eq!(right.status, 200);
    let list = right.json()?;
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["a-model", "org/model-7b"]);
    assert_eq!(list["data"][0]["object"], "model");
    assert_eq!(list["data"][0]["owned_by"], "fake-openai");
    assert!(list["data"][0]["created"].is_u64());

    // The test-only endpoints need no key, and show what was forwarded.
    let stats = call(addr, "GET", "/__fake/stats", None).await?.json()?;
    assert_eq!(stats["requests"]["/v1/models"], 3);
    let last = &stats["last_request"];
    assert_eq!(last["path"], "/v1/models");
    assert_eq!(last["headers"]["authorization"], "Bearer sk-test-123456789");
    assert_eq!(last["headers"]["x-extra"], "one");

    let unknown = call_with(
        addr,
        "GET",
        "/v2/nothing",
        &[("Authorization", "Bearer sk-test-123456789")],
        None,
    )
    .await?;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        unknown.json()?["error"]["message"],
        "Invalid URL (GET /v2/nothing)"
    );
    Ok(())
}

#[tokio::test]
async fn chats_without_streaming() -> TestResult {
    let (addr, _) = start(&[]).await?;
    let reply = call(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(&chat_body("Hello there", false)),
    )
    .await?;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json()?;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], MODEL);
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        format!("Hello there {CANNED}")
    );
    assert_eq!(choice["finish_reason"], "stop");
    // "Be brief." (2) + "Hello there" (2); answer 2 + 7 words.
    assert_eq!(
        body["usage"],
        json!({ "prompt_tokens": 4, "completion_tokens": 9, "total_tokens": 13 })
    );

    let mut short = chat_body("Hello there", false);
    short["max_tokens"] = json!(3);
    let body = call(addr, "POST", "/v1/chat/completions", Some(&short))
        .await?
        .json()?;
    assert_eq!(body["choices"][0]["message"]["content"], "Hello there This");
    assert_eq!(body["choices"][0]["finish_reason"], "length");

    let mut unknown = chat_body("hi", false);
    unknown["model"] = json!("gpt-nope");
    let reply = call(addr, "POST", "/v1/chat/completions", Some(&unknown)).await?;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()?["error"]["code"], "model_not_found");

    let reply = call(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(&json!({ "model": MODEL })),
    )
    .await?;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()?["error"]["param"], "messages");

    let reply = call(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(&json!("not an object")),
    )
    .await?;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()?["error"]["type"], "invalid_request_error");
    Ok(())
}

#[tokio::test]
async fn streams_sse_byte_for_byte() -> TestResult {
    let (addr, app) = start(&[]).await?;
    let mut body = chat_body("Hi", true);
    body["messages"] = json!([{ "role": "user", "content": [{ "type": "text", "text": "Hi" }] }]);
    let reply = call(addr, "POST", "/v1/chat/completions", Some(&body)).await?;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));

    let frames = reply.frames()?;
    let first: Value = serde_json::from_str(frames.first().copied().unwrap_or("{}"))?;
    let id = first["id"].as_str().unwrap_or_default();
    let created = first["created"].as_u64().unwrap_or_default();
    let head = format!(
        r#"{{"id":"{id}","object":"chat.completion.chunk","created":{created},"model":"{MODEL}","system_fingerprint":"fp_fake","choices":[{{"index":0,"delta":"#
    );
    let mut expected = format!(
        r#"data: {head}{{"role":"assistant","content":""}},"logprobs":null,"finish_reason":null}}]}}"#
    );
    expected.push_str("\n\n");
    for word in [
        "Hi",
        " This",
        " is",
        " a",
        " canned",
        " answer",
        " from",
        " fake-openai.",
    ] {
        expected.push_str(&format!(
            "data: {head}{{\"content\":\"{word}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
        ));
    }
    expected.push_str(&format!(
        "data: {head}{{}},\"logprobs\":null,\"finish_reason\":\"stop\"}}]}}\n\n"
    ));
    expected.push_str("data: [DONE]\n\n");
    assert_eq!(reply.body, expected);
    assert_eq!(frames.last(), Some(&"[DONE]"));

    let stats = app.stats.snapshot();
    assert_eq!((stats.streams_started, stats.streams_completed), (1, 1));
    Ok(())
}

#[tokio::test]
async fn a_stream_can_end_with_usage() -> TestResult {
    let (addr, _) = start(&[]).await?;
    let mut body = chat_body("Hi", true);
    body["stream_options"] = json!({ "include_usage": true });
    let reply = call(addr, "POST", "/v1/chat/completions", Some(&body)).await?;
    let frames = reply.frames()?;
    assert_eq!(frames.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f))
        .collect::<Result<_, _>>()?;
    let (usage_chunk, content_chunks) = chunks.split_last().ok_or_else(|| invalid("no chunks"))?;
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"],
        json!({ "prompt_tokens": 3, "completion_tokens": 8, "total_tokens": 11 })
    );
    // Every other chunk carries `usage: null`, as OpenAI sends it.
    assert!(
        content_chunks
            .iter()
            .all(|c| c.get("usage") == Some(&Value::Null))
    );
    assert_eq!(
        content_chunks
            .last()
            .map(|c| c["choices"][0]["finish_reason"].clone()),
        Some(json!("stop"))
    );
    Ok(())
}

#[tokio::test]
async fn completes_prompts_plain_and_streamed() -> TestResult {
    let (addr, _) = start(&[]).await?;
    let body = json!({ "model": "org/model-7b", "prompt": "Once upon" });
    let reply = call(addr, "POST", "/v1/completions", Some(&body))
        .await?
        .json()?;
    assert_eq!(reply["object"], "text_completion");
    assert_eq!(reply["choices"][0]["text"], format!("Once upon {CANNED}"));
    assert_eq!(reply["usage"]["prompt_tokens"], 2);

    let body = json!({ "model": "org/model-7b", "prompt": "Once upon", "stream": true });
    let reply = call(addr, "POST", "/v1/completions", Some(&body)).await?;
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let frames = reply.frames()?;
    assert_eq!(frames.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f))
        .collect::<Result<_, _>>()?;
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, format!("Once upon {CANNED}"));
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    assert_eq!(
        chunks
            .last()
            .map(|c| c["choices"][0]["finish_reason"].clone()),
        Some(json!("stop"))
    );
    Ok(())
}

#[tokio::test]
async fn embeds_strings_and_lists() -> TestResult {
    let (addr, _) = start(&[("FAKE_OPENAI_EMBED_DIM", "4")]).await?;
    let one = call(
        addr,
        "POST",
        "/v1/embeddings",
        Some(&json!({ "model": MODEL, "input": "hello" })),
    )
    .await?
    .json()?;
    assert_eq!(one["object"], "list");
    assert_eq!(one["data"][0]["object"], "embedding");
    // Compared as f32: serde_json's default float parsing may miss the
    // last bit of an f64, which the narrowing absorbs.
    let got: Vec<f32> = one["data"][0]["embedding"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .map(|v| v as f32)
        .collect();
    assert_eq!(got, embed::vector("hello", 4));
    assert_eq!(
        one["usage"],
        json!({ "prompt_tokens": 1, "total_tokens": 1 })
    );

    let two = call(
        addr,
        "POST",
        "/v1/embeddings",
        Some(&json!({ "model": MODEL, "input": ["hello", "bye now"], "encoding_format": "base64", "dimensions": 2 })),
    )
    .await?
    .json()?;
    assert_eq!(two["data"][1]["index"], 1);
    let bytes: Vec<u8> = embed::vector("bye now", 2)
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    assert_eq!(
        two["data"][1]["embedding"],
        json!(embed::encode_base64(&bytes))
    );
    assert_eq!(two["usage"]["prompt_tokens"], 3);

    let reply = call(
        addr,
        "POST",
        "/v1/embeddings",
        Some(&json!({ "model": "nope", "input": "x" })),
    )
    .await?;
    assert_eq!(reply.status, 404);
    Ok(())
}

#[tokio::test]
async fn rate_limits_with_retry_after_then_recovers() -> TestResult {
    let (addr, _) = start(&[("FAKE_OPENAI_RATE_LIMIT_NEXT", "1")]).await?;
    switch(addr, json!({ "rate_limit_next": 2, "retry_after_secs": 7 })).await?;
    for _ in 0..2 {
        let reply = call(addr, "GET", "/v1/models", None).await?;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("7"));
        assert_eq!(reply.json()?["error"]["code"], "rate_limit_exceeded");
    }
    assert_eq!(call(addr, "GET", "/v1/models", None).await?.status, 200);

    switch(addr, json!({ "server_error_next": 1 })).await?;
    let reply = call(addr, "GET", "/v1/models", None).await?;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()?["error"]["type"], "server_error");
    assert_eq!(call(addr, "GET", "/v1/models", None).await?.status, 200);

    let typo = call(
        addr,
        "POST",
        "/__fake/switches",
        Some(&json!({ "rate_limit": 1 })),
    )
    .await?;
    assert_eq!(typo.status, 400);
    Ok(())
}

#[tokio::test]
async fn breaks_a_stream_off_with_an_error_frame() -> TestResult {
    let (addr, app) = start(&[("FAKE_OPENAI_STREAM_ERROR_AFTER_CHUNKS", "2")]).await?;
    let reply = call(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(&chat_body("Hi", true)),
    )
    .await?;
    assert_eq!(reply.status, 200);
    let frames = reply.frames()?;
    assert_eq!(frames.len(), 3, "{frames:?}");
    let error: Value = serde_json::from_str(frames[2])?;
    assert_eq!(
        error,
        json!({ "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error", "param": null, "code": null,
        }})
    );
    assert!(!reply.body.contains("[DONE]"));
    assert_eq!(app.stats.snapshot().streams_failed, 1);

    // Without streaming the same failure is a 500.
    switch(addr, json!({ "stream_error_message": "runner died" })).await?;
    let reply = call(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(&chat_body("Hi", false)),
    )
    .await?;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()?["error"]["message"], "runner died");

    switch(addr, json!({ "stream_error_after_chunks": null })).await?;
    let reply = call(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(&chat_body("Hi", true)),
    )
    .await?;
    assert!(reply.body.ends_with("data: [DONE]\n\n"));
    Ok(())
}

#[tokio::test]
async fn hangs_and_answers_in_the_wrong_shape() -> TestResult {
    let (addr, _) = start(&[("FAKE_OPENAI_HANG", "1")]).await?;
    let mut hung = send(addr, "GET", "/v1/models", &[], None).await?;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(300), hung.read(&mut buf)).await;
    assert!(read.is_err(), "a hung server answered");

    switch(addr, json!({ "hang": false, "wrong_shape": true })).await?;
    let reply = call(addr, "GET", "/v1/models", None).await?;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    assert!(reply.json().is_err());
    Ok(())
}

#[tokio::test]
async fn a_client_that_leaves_cancels_the_stream() -> TestResult {
    let (addr, app) = start(&[("FAKE_OPENAI_TOKEN_DELAY_MS", "50")]).await?;
    let mut stream = send(
        addr,
        "POST",
        "/v1/chat/completions",
        &[],
        Some(&chat_body("Hi", true)),
    )
    .await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await??;
    assert!(n > 0);
    drop(stream);
    for _ in 0..100 {
        if app.stats.snapshot().streams_cancelled == 1 {
            assert_eq!(app.stats.snapshot().streams_completed, 0);
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("the stream was not seen as cancelled".into())
}
