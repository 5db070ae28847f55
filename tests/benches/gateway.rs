//! Gateway benchmark (`cargo bench -p omnipanel-tests --bench gateway`, or
//! `scripts/bench`): the same chat streamed from a model server directly and
//! through the agent's gateway, interleaved in one run, for both wire
//! formats the gateway speaks: Ollama's NDJSON (`/api/chat`, the fake
//! Ollama supervised by the agent) and OpenAI's SSE (`/v1/chat/completions`,
//! the fake OpenAI-compatible server added as a provider). Reports time to
//! first token and streamed tokens per second for both. Nothing asserts on
//! speed; the figures are for docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{
    FakeOpenAi, Sandbox, TestResult, eventually, free_port,
    measure::{StreamSample, stream_medians, word_prompt},
};

const RUNS: usize = 15;
/// Words in the prompt; both fakes answer with one token per word.
const PROMPT_WORDS: usize = 400;

fn prompt() -> String {
    word_prompt(PROMPT_WORDS)
}

/// Which wire format a stream is read in.
#[derive(Clone, Copy)]
enum Wire {
    /// Ollama's `/api/chat`: one JSON object per line.
    Ndjson,
    /// OpenAI's `/v1/chat/completions`: `data: {...}` events, `[DONE]` last.
    Sse,
}

/// The text a line of the stream adds, if any.
fn piece(wire: Wire, line: &[u8]) -> TestResult<bool> {
    let json = match wire {
        Wire::Ndjson => line,
        Wire::Sse => match line.strip_prefix(b"data: ") {
            Some(b"[DONE]") | None => return Ok(false),
            Some(data) => data,
        },
    };
    if json.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let value: serde_json::Value = serde_json::from_slice(json)?;
    let content = match wire {
        Wire::Ndjson => &value["message"]["content"],
        Wire::Sse => &value["choices"][0]["delta"]["content"],
    };
    Ok(content.as_str().is_some_and(|c| !c.is_empty()))
}

/// Stream one chat from `url` and time it.
async fn stream(
    http: &reqwest::Client,
    wire: Wire,
    url: &str,
    model: &str,
    bearer: Option<&str>,
) -> TestResult<StreamSample> {
    let body = serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt()}],
        "stream": true,
    });
    let start = Instant::now();
    let mut request = http.post(url).json(&body);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let mut response = request.send().await?.error_for_status()?;
    let mut first_token = None;
    let mut tokens = 0;
    let mut buffer = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            if piece(wire, line.trim_ascii_end())? {
                tokens += 1;
                first_token.get_or_insert_with(|| start.elapsed());
            }
        }
    }
    Ok(StreamSample {
        first_token: first_token.ok_or("no tokens")?,
        tokens,
        elapsed: start.elapsed(),
    })
}

struct Paths {
    label: &'static str,
    wire: Wire,
    direct: String,
    gateway: String,
    direct_model: &'static str,
    gateway_model: &'static str,
}

async fn measure(http: &reqwest::Client, token: &str, paths: &Paths, pace: &str) -> TestResult {
    let direct = || stream(http, paths.wire, &paths.direct, paths.direct_model, None);
    let gateway = || {
        stream(
            http,
            paths.wire,
            &paths.gateway,
            paths.gateway_model,
            Some(token),
        )
    };
    // Warm both paths (connections, model load in the fakes).
    direct().await?;
    gateway().await?;
    let (mut direct_samples, mut gateway_samples) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        direct_samples.push(direct().await?);
        gateway_samples.push(gateway().await?);
    }
    let (direct_ttft, direct_rate) = stream_medians(&direct_samples);
    let (gateway_ttft, gateway_rate) = stream_medians(&gateway_samples);
    println!(
        "| {}, {pace} | TTFT {direct_ttft:.2} ms, {direct_rate:.0} tok/s | TTFT {gateway_ttft:.2} ms, {gateway_rate:.0} tok/s | **{:.2} ms** | **{:.3}** |",
        paths.label,
        gateway_ttft - direct_ttft,
        gateway_rate / direct_rate
    );
    Ok(())
}

async fn scenario(pace: &str, token_delay_ms: &str) -> TestResult {
    let sandbox = Sandbox::new()?;
    let (ollama_port, gateway_port) = (free_port()?, free_port()?);
    sandbox.configure_fake_ollama(
        ollama_port,
        &format!("\n[gateway]\nlisten = \"127.0.0.1:{gateway_port}\""),
    )?;
    let mut env = sandbox.fake_env();
    env.push(("FAKE_OLLAMA_TOKEN_DELAY_MS".into(), token_delay_ms.into()));
    let agent = sandbox.start_agent_with(&env).await?;
    let client: Client = agent.client().await?;

    let openai = FakeOpenAi::start(&[("FAKE_OPENAI_TOKEN_DELAY_MS", token_delay_ms)]).await?;

    let mut models = client.models();
    loop {
        let status = models
            .get_server_status(pb::GetServerStatusRequest {})
            .await?
            .into_inner()
            .status
            .unwrap_or_default();
        if status.state == i32::from(pb::ServerState::Running) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut pull = models
        .pull_model(pb::PullModelRequest {
            model: "test-small".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    while pull.message().await?.is_some() {}
    models
        .add_provider(pb::AddProviderRequest {
            name: "lmstudio".into(),
            url: openai.url(),
            kind: pb::ProviderKind::Openai.into(),
            ..Default::default()
        })
        .await?;
    let token = client
        .agent()
        .create_token(pb::CreateTokenRequest {
            name: "bench".into(),
            scopes: vec![pb::Scope::Infer.into()],
            ..Default::default()
        })
        .await?
        .into_inner()
        .token;
    eventually("the gateway to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", gateway_port)).is_ok()
    })
    .await?;

    // reqwest is built without a default TLS backend (the agent picks ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    let gateway = format!("http://127.0.0.1:{gateway_port}");
    measure(
        &http,
        &token,
        &Paths {
            label: "Ollama `/api/chat` (NDJSON)",
            wire: Wire::Ndjson,
            direct: format!("http://127.0.0.1:{ollama_port}/api/chat"),
            gateway: format!("{gateway}/api/chat"),
            direct_model: "test-small",
            gateway_model: "test-small",
        },
        pace,
    )
    .await?;
    measure(
        &http,
        &token,
        &Paths {
            label: "OpenAI `/v1/chat/completions` (SSE)",
            wire: Wire::Sse,
            direct: format!("{}/chat/completions", openai.url()),
            gateway: format!("{gateway}/v1/chat/completions"),
            direct_model: "qwen2.5-7b-instruct",
            gateway_model: "lmstudio/qwen2.5-7b-instruct",
        },
        pace,
    )
    .await?;
    drop(openai);
    drop(agent);
    Ok(())
}

fn main() -> TestResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!("## Gateway (median of {RUNS} interleaved runs, {PROMPT_WORDS}-token replies)\n");
        println!("| path, pace | direct | via gateway | added TTFT | throughput ratio |");
        println!("|---|---|---|---|---|");
        scenario("5 ms/token", "5").await?;
        scenario("flat out", "0").await?;
        Ok(())
    })
}
