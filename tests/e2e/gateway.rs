//! The gateway end to end: a real agent supervising the Ollama double
//! serves Ollama's and OpenAI's HTTP APIs on `[gateway] listen`. The
//! official `ollama` and `openai` packages from PyPI list models, chat,
//! stream and embed through it (`tests/python/gateway_clients.py`); raw
//! HTTP checks the refusals (no token 401 with `WWW-Authenticate`, a model
//! outside the token's list 403, over its rate 429 with `Retry-After`,
//! pull and delete only with write), the streams' byte shapes (NDJSON
//! lines, SSE ending in `data: [DONE]`), `/metrics` counting the requests
//! made, and the activity log recording them without the prompt.

use std::time::Instant;

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{PATIENCE, TestResult, free_port};

use crate::ollama::{Setup, is, pull_to_end, setup, wait_status};

/// The Python interpreter with the client packages (scripts/test provides
/// it).
fn python() -> String {
    std::env::var("OMNIPANEL_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// An agent with the gateway on a free port and `test-small` pulled.
async fn gateway(extra: &str) -> TestResult<(Setup, String)> {
    let port = free_port()?;
    let setup = setup(
        &[],
        &format!("\n[gateway]\nlisten = \"127.0.0.1:{port}\"\n{extra}"),
    )
    .await?;
    wait_status(
        &setup.client,
        "Ollama running",
        is(pb::ServerState::Running),
    )
    .await?;
    pull_to_end(&setup.client, "test-small").await?;
    Ok((setup, format!("http://127.0.0.1:{port}")))
}

async fn token(
    client: &Client,
    name: &str,
    scopes: &[pb::Scope],
    models: &[&str],
    rpm: u32,
) -> TestResult<String> {
    Ok(client
        .agent()
        .create_token(pb::CreateTokenRequest {
            name: name.into(),
            scopes: scopes.iter().map(|s| i32::from(*s)).collect(),
            allowed_models: models.iter().map(|m| (*m).to_owned()).collect(),
            requests_per_minute: rpm,
            ..Default::default()
        })
        .await?
        .into_inner()
        .token)
}

fn http() -> TestResult<reqwest::Client> {
    Ok(omnipanel_tests::reqwest_builder().build()?)
}

fn chat_body(model: &str, prompt: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [{ "role": "user", "content": prompt }],
        "stream": stream,
    })
}

/// Run `gateway_clients.py` with each package against `base` and check
/// its lines: the list holds `listed`, the chat and the stream echo
/// "hello", the stream came in pieces with its usage, the embedding has
/// dimensions.
async fn official_clients(
    base: &str,
    secret: &str,
    model: &str,
    embed_model: &str,
    listed: &[&str],
) -> TestResult {
    let python = python();
    let probe = std::process::Command::new(&python)
        .args(["-c", "import ollama, openai"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        return Err(format!(
            "{python} lacks the ollama and openai packages: run scripts/test, or `pip install -r tests/python/requirements.txt` and set OMNIPANEL_TEST_PYTHON"
        )
        .into());
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/gateway_clients.py");
    for package in ["ollama", "openai"] {
        let output = tokio::process::Command::new(&python)
            .arg(&script)
            .args([package, base, secret, model, embed_model])
            .output()
            .await?;
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{package}: {text}\n{stderr}");
        let line = |step: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{step}: ")))
                .map(|l| l[step.len() + 2..].to_owned())
                .ok_or_else(|| format!("{package}: no {step:?} line in:\n{text}\n{stderr}"))
        };
        let list = line("list")?;
        for name in listed {
            assert!(
                list.split(',').any(|m| m == *name),
                "{package}: {name} not in {list}"
            );
        }
        assert!(line("chat")?.contains("hello"), "{package}: {text}");
        let streamed = line("stream")?;
        let pieces: usize = streamed
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_default();
        assert!(
            pieces > 2,
            "{package}: the reply came in pieces: {streamed}"
        );
        assert!(streamed.contains("done=True"), "{package}: {streamed}");
        assert!(streamed.contains("hello"), "{package}: {streamed}");
        assert!(
            !streamed.contains("eval_count=0"),
            "{package}: the usage is reported: {streamed}"
        );
        let dimensions: usize = line("embed")?.parse()?;
        assert!(dimensions > 0, "{package}: {text}");
    }
    Ok(())
}

#[tokio::test]
async fn the_official_ollama_and_openai_packages_work_through_the_gateway() -> TestResult {
    let (setup, base) = gateway("").await?;
    // `omnipanel status` shows where the gateway serves, with no warning
    // while Ollama listens on loopback.
    let info = setup
        .client
        .agent()
        .get_info(pb::GetInfoRequest {})
        .await?
        .into_inner();
    assert_eq!(format!("http://{}", info.gateway_address), base, "{info:?}");
    assert!(info.warnings.is_empty(), "{:?}", info.warnings);
    let secret = token(&setup.client, "tools", &[pb::Scope::Infer], &[], 0).await?;
    official_clients(
        &base,
        &secret,
        "test-small",
        "test-small",
        &["test-small:latest"],
    )
    .await
}

#[tokio::test]
async fn an_openai_compatible_provider_is_served_through_both_apis() -> TestResult {
    let (setup, base) = gateway("").await?;
    let fake =
        omnipanel_tests::FakeOpenAi::start(&[("FAKE_OPENAI_API_KEY", "sk-upstream")]).await?;
    setup
        .client
        .models()
        .add_provider(pb::AddProviderRequest {
            name: "lmstudio".into(),
            url: fake.url(),
            token: "sk-upstream".into(),
            kind: pb::ProviderKind::Openai.into(),
            ..Default::default()
        })
        .await?;
    let secret = token(&setup.client, "tools", &[pb::Scope::Infer], &[], 0).await?;
    official_clients(
        &base,
        &secret,
        "lmstudio/qwen2.5-7b-instruct",
        "lmstudio/text-embedding-nomic-embed-text-v1.5",
        &["test-small:latest", "lmstudio/qwen2.5-7b-instruct"],
    )
    .await
}

#[tokio::test]
async fn tokens_models_rates_and_scopes_are_enforced() -> TestResult {
    let (setup, base) = gateway("").await?;
    let http = http()?;
    // No token: 401 with the challenge, in each API's error shape.
    let none = http.get(format!("{base}/api/tags")).send().await?;
    assert_eq!(none.status(), 401);
    assert!(
        none.headers()["www-authenticate"]
            .to_str()?
            .starts_with("Bearer")
    );
    let body: serde_json::Value = none.json().await?;
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("token")),
        "{body}"
    );
    let none = http.get(format!("{base}/v1/models")).send().await?;
    assert_eq!(none.status(), 401);
    let body: serde_json::Value = none.json().await?;
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");
    let wrong = http
        .get(format!("{base}/api/tags"))
        .bearer_auth("omp_not_a_token")
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    // `/` answers like Ollama without a token.
    let root = http.get(format!("{base}/")).send().await?;
    assert_eq!(root.text().await?, "Ollama is running");

    // A token limited to one model: 403 for another, and the listing
    // shows only its model.
    let limited = token(
        &setup.client,
        "one-model",
        &[pb::Scope::Infer],
        &["test-small"],
        0,
    )
    .await?;
    let other = http
        .post(format!("{base}/api/chat"))
        .bearer_auth(&limited)
        .json(&chat_body("other-model", "hi", false))
        .send()
        .await?;
    assert_eq!(other.status(), 403);
    let body: serde_json::Value = other.json().await?;
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("may not use")),
        "{body}"
    );
    let allowed = http
        .post(format!("{base}/api/chat"))
        .bearer_auth(&limited)
        .json(&chat_body("test-small", "hi", false))
        .send()
        .await?;
    assert_eq!(allowed.status(), 200);
    let openai_other = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&limited)
        .json(&chat_body("other-model", "hi", false))
        .send()
        .await?;
    assert_eq!(openai_other.status(), 403);
    let body: serde_json::Value = openai_other.json().await?;
    assert_eq!(body["error"]["code"], "model_not_allowed", "{body}");

    // Two requests a minute: the third is 429 with Retry-After.
    let slow = token(&setup.client, "slow", &[pb::Scope::Infer], &[], 2).await?;
    for _ in 0..2 {
        let ok = http
            .get(format!("{base}/api/version"))
            .bearer_auth(&slow)
            .send()
            .await?;
        assert_eq!(ok.status(), 200);
    }
    let limited = http
        .get(format!("{base}/api/version"))
        .bearer_auth(&slow)
        .send()
        .await?;
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "Retry-After {retry}");

    // Pull and delete need write.
    let infer = token(&setup.client, "infer", &[pb::Scope::Infer], &[], 0).await?;
    let writer = token(
        &setup.client,
        "writer",
        &[pb::Scope::Write, pb::Scope::Infer],
        &[],
        0,
    )
    .await?;
    let pull = serde_json::json!({ "model": "test-small", "stream": false });
    let refused = http
        .post(format!("{base}/api/pull"))
        .bearer_auth(&infer)
        .json(&pull)
        .send()
        .await?;
    assert_eq!(refused.status(), 403);
    let pulled = http
        .post(format!("{base}/api/pull"))
        .bearer_auth(&writer)
        .json(&pull)
        .send()
        .await?;
    assert_eq!(pulled.status(), 200);
    assert_eq!(
        pulled.json::<serde_json::Value>().await?["status"],
        "success"
    );
    let delete = serde_json::json!({ "model": "test-small" });
    let refused = http
        .delete(format!("{base}/api/delete"))
        .bearer_auth(&infer)
        .json(&delete)
        .send()
        .await?;
    assert_eq!(refused.status(), 403);
    let deleted = http
        .delete(format!("{base}/api/delete"))
        .bearer_auth(&writer)
        .json(&delete)
        .send()
        .await?;
    assert_eq!(deleted.status(), 200);
    let gone = http
        .delete(format!("{base}/api/delete"))
        .bearer_auth(&writer)
        .json(&delete)
        .send()
        .await?;
    assert_eq!(gone.status(), 404);
    Ok(())
}

/// The requests `/metrics` counted for an endpoint.
fn counted(metrics: &str, endpoint: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("omnipanel_gateway_requests_total{")
                && l.contains(&format!("endpoint=\"{endpoint}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn streams_keep_the_original_shapes_and_are_counted_and_logged_without_the_prompt()
-> TestResult {
    let (setup, base) = gateway("").await?;
    let http = http()?;
    let secret = token(&setup.client, "shapes", &[pb::Scope::Infer], &[], 0).await?;
    const MARKER: &str = "zebracornmarker";

    // NDJSON: every line one JSON object, the last done with its counts.
    let ndjson = http
        .post(format!("{base}/api/chat"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({
            "model": "test-small",
            "messages": [{ "role": "user", "content": format!("say {MARKER}") }],
        }))
        .send()
        .await?;
    assert_eq!(ndjson.headers()["content-type"], "application/x-ndjson");
    let text = ndjson.text().await?;
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(lines.len() > 2, "{text}");
    assert!(text.ends_with("}\n"), "{text}");
    let last = &lines[lines.len() - 1];
    assert_eq!(last["done"], true, "{text}");
    assert_eq!(last["done_reason"], "stop", "{text}");
    assert!(last["eval_count"].as_u64().is_some_and(|n| n > 0), "{text}");
    assert!(
        lines[0]["message"]["role"] == "assistant" && lines[0]["done"] == false,
        "{text}"
    );

    // Generate's last line carries the context.
    let generated = http
        .post(format!("{base}/api/generate"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({ "model": "test-small", "prompt": "hi", "stream": false }))
        .send()
        .await?
        .json::<serde_json::Value>()
        .await?;
    assert!(
        generated["response"]
            .as_str()
            .is_some_and(|r| r.contains("You said: hi")),
        "{generated}"
    );
    assert!(generated["context"].is_array(), "{generated}");

    // SSE: data events, the usage chunk, then [DONE].
    let sse = http
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({
            "model": "test-small",
            "messages": [{ "role": "user", "content": "hi" }],
            "stream": true,
            "stream_options": { "include_usage": true },
        }))
        .send()
        .await?;
    assert!(
        sse.headers()["content-type"]
            .to_str()?
            .starts_with("text/event-stream")
    );
    let text = sse.text().await?;
    assert!(text.starts_with("data: {"), "{text}");
    assert!(text.ends_with("\n\ndata: [DONE]\n\n"), "{text}");
    let events: Vec<&str> = text.split_terminator("\n\n").collect();
    for event in &events[..events.len() - 1] {
        let chunk: serde_json::Value = serde_json::from_str(
            event
                .strip_prefix("data: ")
                .ok_or_else(|| format!("not a data event: {event}"))?,
        )?;
        assert_eq!(chunk["object"], "chat.completion.chunk", "{event}");
    }
    let usage: serde_json::Value =
        serde_json::from_str(events[events.len() - 2].trim_start_matches("data: "))?;
    assert_eq!(usage["choices"], serde_json::json!([]), "{text}");
    assert!(
        usage["usage"]["completion_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{text}"
    );

    // /metrics needs a token and counts what was served.
    let refused = http.get(format!("{base}/metrics")).send().await?;
    assert_eq!(refused.status(), 401);
    let metrics = http
        .get(format!("{base}/metrics"))
        .bearer_auth(&secret)
        .send()
        .await?
        .text()
        .await?;
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap_or_default();
        assert!(value.parse::<f64>().is_ok(), "not a sample: {line}");
    }
    assert_eq!(counted(&metrics, "POST /api/chat"), 1, "{metrics}");
    assert_eq!(
        counted(&metrics, "POST /v1/chat/completions"),
        1,
        "{metrics}"
    );
    assert_eq!(
        counted(&metrics, "GET /metrics"),
        1,
        "the refused scrape: {metrics}"
    );
    assert!(metrics.contains("omnipanel_ollama_up 1"), "{metrics}");
    assert!(
        metrics.contains(
            "omnipanel_gateway_tokens_total{model=\"test-small:latest\",direction=\"out\"}"
        ),
        "{metrics}"
    );

    // One activity-log entry per request, with the model and token counts,
    // never the prompt or the reply.
    let deadline = Instant::now() + PATIENCE;
    let entries = loop {
        let entries = setup
            .client
            .agent()
            .list_audit(pb::ListAuditRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner()
            .entries;
        if entries
            .iter()
            .any(|e| e.method == "gateway POST /v1/chat/completions")
            || Instant::now() > deadline
        {
            break entries;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let chat = entries
        .iter()
        .find(|e| e.method == "gateway POST /api/chat")
        .ok_or("no entry for the chat")?;
    assert_eq!(chat.client_name, "shapes");
    assert_eq!(chat.outcome, "ok");
    assert!(chat.target.contains("model=test-small"), "{chat:?}");
    assert!(chat.target.contains("tokens_out="), "{chat:?}");
    assert!(chat.peer_address.starts_with("127.0.0.1:"), "{chat:?}");
    for entry in &entries {
        assert!(
            !format!("{entry:?}").contains(MARKER),
            "the prompt leaked: {entry:?}"
        );
    }
    let state_db = std::fs::read(setup.sandbox.data_dir().join("state.db"))?;
    assert!(
        !state_db
            .windows(MARKER.len())
            .any(|w| w == MARKER.as_bytes()),
        "the prompt is in state.db"
    );
    Ok(())
}

#[tokio::test]
async fn with_a_certificate_the_gateway_speaks_tls_and_stops_with_the_agent() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (cert, key) = omnipanel_tests::self_signed_certificate(dir.path())?;
    let (mut setup, base) = gateway(&format!(
        "tls_cert = {:?}\ntls_key = {:?}\n",
        cert.display().to_string(),
        key.display().to_string()
    ))
    .await?;
    let https = base.replace("http://", "https://");
    let trusting = omnipanel_tests::reqwest_builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&cert)?)?)
        .build()?;
    let secret = token(&setup.client, "tls", &[pb::Scope::Infer], &[], 0).await?;
    let tags = trusting
        .get(format!("{https}/api/tags"))
        .bearer_auth(&secret)
        .send()
        .await?;
    assert_eq!(tags.status(), 200);
    let body: serde_json::Value = tags.json().await?;
    assert_eq!(body["models"][0]["name"], "test-small:latest", "{body}");
    // Plain HTTP gets no answer from a TLS listener.
    assert!(
        http()?
            .get(format!("{base}/api/tags"))
            .send()
            .await
            .is_err()
    );
    // The agent stops cleanly with the gateway serving.
    let status = setup.agent.stop().await?;
    assert!(status.success(), "{status:?}");
    Ok(())
}

#[tokio::test]
async fn a_request_while_ollama_is_stopped_starts_it_and_waits() -> TestResult {
    let (setup, base) = gateway("").await?;
    setup
        .client
        .models()
        .stop_server(pb::StopServerRequest {})
        .await?;
    wait_status(
        &setup.client,
        "Ollama stopped",
        is(pb::ServerState::Stopped),
    )
    .await?;
    let secret = token(&setup.client, "waiter", &[pb::Scope::Infer], &[], 0).await?;
    let reply = http()?
        .post(format!("{base}/api/chat"))
        .bearer_auth(&secret)
        .json(&chat_body("test-small", "hello", false))
        .send()
        .await?;
    assert_eq!(reply.status(), 200);
    let body: serde_json::Value = reply.json().await?;
    assert!(
        body["message"]["content"]
            .as_str()
            .is_some_and(|c| c.contains("You said: hello")),
        "{body}"
    );
    wait_status(
        &setup.client,
        "Ollama running",
        is(pb::ServerState::Running),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn show_ps_pull_delete_and_text_completions_work_through_the_gateway() -> TestResult {
    let (setup, base) = gateway("").await?;
    let http = http()?;
    let secret = token(
        &setup.client,
        "manage",
        &[pb::Scope::Infer, pb::Scope::Write],
        &[],
        0,
    )
    .await?;
    let post = |path: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}"))
            .bearer_auth(&secret)
            .json(&body)
            .send()
    };

    let shown = post("/api/show", serde_json::json!({ "model": "test-small" })).await?;
    assert_eq!(shown.status(), 200);
    let shown: serde_json::Value = shown.json().await?;
    assert!(
        shown["template"].is_string() && shown["details"].is_object(),
        "{shown}"
    );
    let unknown = post("/api/show", serde_json::json!({ "model": "no-such-model" })).await?;
    assert_eq!(unknown.status(), 404);

    // A chat loads the model; ps lists it.
    let chat = post("/api/chat", chat_body("test-small", "hi", false)).await?;
    assert_eq!(chat.status(), 200);
    let ps: serde_json::Value = http
        .get(format!("{base}/api/ps"))
        .bearer_auth(&secret)
        .send()
        .await?
        .json()
        .await?;
    assert!(ps["models"].to_string().contains("test-small"), "{ps}");

    // Pull, waiting for the one answer; then streamed (already there).
    let pulled = post(
        "/api/pull",
        serde_json::json!({ "model": "qwen2.5:0.5b", "stream": false }),
    )
    .await?;
    assert_eq!(pulled.status(), 200);
    assert_eq!(
        pulled.json::<serde_json::Value>().await?["status"],
        "success"
    );
    let streamed = post("/api/pull", serde_json::json!({ "model": "qwen2.5:0.5b" }))
        .await?
        .text()
        .await?;
    assert!(
        streamed.trim_end().ends_with(r#"{"status":"success"}"#),
        "{streamed}"
    );
    let tags: serde_json::Value = http
        .get(format!("{base}/api/tags"))
        .bearer_auth(&secret)
        .send()
        .await?
        .json()
        .await?;
    assert!(tags.to_string().contains("qwen2.5:0.5b"), "{tags}");
    let deleted = http
        .delete(format!("{base}/api/delete"))
        .bearer_auth(&secret)
        .json(&serde_json::json!({ "model": "qwen2.5:0.5b" }))
        .send()
        .await?;
    assert_eq!(deleted.status(), 200);
    let tags: serde_json::Value = http
        .get(format!("{base}/api/tags"))
        .bearer_auth(&secret)
        .send()
        .await?
        .json()
        .await?;
    assert!(!tags.to_string().contains("qwen2.5:0.5b"), "{tags}");

    // OpenAI's text completions, whole and streamed as SSE.
    let completion: serde_json::Value = post(
        "/v1/completions",
        serde_json::json!({ "model": "test-small", "prompt": "hello" }),
    )
    .await?
    .json()
    .await?;
    assert_eq!(completion["object"], "text_completion", "{completion}");
    assert!(
        completion["choices"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("hello")),
        "{completion}"
    );
    let sse = post(
        "/v1/completions",
        serde_json::json!({
            "model": "test-small",
            "prompt": "hello",
            "stream": true,
            "stream_options": { "include_usage": true },
        }),
    )
    .await?
    .text()
    .await?;
    assert!(
        sse.contains("data: ") && sse.trim_end().ends_with("data: [DONE]"),
        "{sse}"
    );
    Ok(())
}
