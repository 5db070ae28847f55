//! Chat proxy benchmark (`cargo bench -p omnipanel-tests --bench chat`, or
//! `scripts/bench`): the same chat streamed from the fake Ollama directly
//! (HTTP NDJSON, as any Ollama client would) and through the agent (gRPC
//! Chat), interleaved in one run. Reports time to first token and streamed
//! tokens per second for both, at a realistic token pace and flat out.
//! Nothing asserts on speed; the figures are for docs/BENCHMARKS.md.

use std::time::{Duration, Instant};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_proto::v1::model_service_client::ModelServiceClient;
use omnipanel_tests::{
    Sandbox, TestResult, free_port,
    measure::{StreamSample, stream_medians, word_prompt},
};

const RUNS: usize = 15;
/// Words in the prompt; the fake echoes them, one token each.
const PROMPT_WORDS: usize = 400;

fn prompt() -> String {
    word_prompt(PROMPT_WORDS)
}

async fn direct(http: &reqwest::Client, port: u16) -> TestResult<StreamSample> {
    let body = serde_json::json!({
        "model": "test-small",
        "messages": [{"role": "user", "content": prompt()}],
        "stream": true,
    });
    let start = Instant::now();
    let mut response = http
        .post(format!("http://127.0.0.1:{port}/api/chat"))
        .json(&body)
        .send()
        .await?;
    let mut first_token = None;
    let mut tokens = 0;
    let mut buffer = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        buffer.extend_from_slice(&chunk);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buffer.drain(..=end).collect();
            let value: serde_json::Value = serde_json::from_slice(&line)?;
            if value["message"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
            {
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

async fn proxied(
    models: &mut ModelServiceClient<omnipanel_client::Authed>,
) -> TestResult<StreamSample> {
    let start = Instant::now();
    let mut stream = models
        .chat(pb::ChatRequest {
            model: "test-small".into(),
            messages: vec![pb::ChatMessage {
                role: "user".into(),
                content: prompt(),
                images: vec![],
            }],
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut first_token = None;
    let mut tokens = 0;
    while let Some(piece) = stream.message().await? {
        if !piece.content.is_empty() {
            tokens += 1;
            first_token.get_or_insert_with(|| start.elapsed());
        }
    }
    Ok(StreamSample {
        first_token: first_token.ok_or("no tokens")?,
        tokens,
        elapsed: start.elapsed(),
    })
}

async fn scenario(label: &str, token_delay_ms: &str) -> TestResult {
    let sandbox = Sandbox::new()?;
    let port = free_port()?;
    sandbox.configure_fake_ollama(port, "")?;
    let mut env = sandbox.fake_env();
    env.push(("FAKE_OLLAMA_TOKEN_DELAY_MS".into(), token_delay_ms.into()));
    let agent = sandbox.start_agent_with(&env).await?;
    let client: Client = agent.client().await?;
    let mut models = ModelServiceClient::with_interceptor(client.channel(), client.interceptor());
    // Wait for the managed server, then install the model.
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

    // reqwest is built without a default TLS backend (the agent picks ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder().tcp_nodelay(true).build()?;
    // Warm both paths (connections, model load in the fake).
    direct(&http, port).await?;
    proxied(&mut models).await?;
    let (mut direct_samples, mut proxied_samples) = (Vec::new(), Vec::new());
    for _ in 0..RUNS {
        direct_samples.push(direct(&http, port).await?);
        proxied_samples.push(proxied(&mut models).await?);
    }
    let (direct_ttft, direct_rate) = stream_medians(&direct_samples);
    let (proxied_ttft, proxied_rate) = stream_medians(&proxied_samples);
    println!(
        "| {label} | direct: TTFT {direct_ttft:.2} ms, {direct_rate:.0} tok/s | via agent: TTFT {proxied_ttft:.2} ms, {proxied_rate:.0} tok/s | added TTFT **{:.2} ms**, throughput ratio **{:.3}** |",
        proxied_ttft - direct_ttft,
        proxied_rate / direct_rate
    );
    drop(agent);
    Ok(())
}

fn main() -> TestResult {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!(
            "## Chat proxy (median of {RUNS} interleaved runs, {PROMPT_WORDS}-token replies)\n"
        );
        scenario("paced like a fast local model (5 ms/token)", "5").await?;
        scenario("flat out (no delay between tokens)", "0").await?;
        Ok(())
    })
}
