//! `GET /metrics`: the agent (uptime, memory), the local Ollama (state,
//! memory, loaded models), the GPUs (memory, utilisation, where NVML
//! reads them) from the system sampler's snapshot, and the gateway's own
//! counters (`metrics.rs`), in Prometheus' text format. Any token may read
//! it (every token holds the status scope), or a loopback caller without
//! one when `gateway.loopback_without_token` is on.

use std::fmt::Write as _;

use axum::{
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use omnipanel_core::{store::now_ms, tokens::Scope};

use super::{
    Peer, St, listen,
    metrics::{escape, gauge, header as describe},
    reply::Dialect,
};

/// `GET /metrics`.
pub(super) async fn metrics(
    State(s): St,
    ConnectInfo(listen::PeerAddr(peer)): Peer,
    headers: HeaderMap,
) -> Response {
    let activity = match s.begin(
        "GET /metrics",
        &headers,
        peer,
        Scope::Status,
        Dialect::Ollama,
    ) {
        Ok((activity, _)) => activity,
        Err(refused) => return *refused,
    };
    let mut out = String::new();
    gauge(
        &mut out,
        "omnipanel_agent_uptime_seconds",
        "Seconds since the agent started.",
        (now_ms() - s.ctx.start_time_ms).max(0) as f64 / 1000.0,
    );
    gauge(
        &mut out,
        "omnipanel_gateway_ollama_exposed",
        "1 when the local Ollama listens off loopback, where the gateway protects nothing (see the agent's log).",
        if s.ollama_exposed.is_some() { 1.0 } else { 0.0 },
    );
    let status = s.ctx.ollama.server_watch().borrow().clone();
    gauge(
        &mut out,
        "omnipanel_ollama_up",
        "Whether the local Ollama server answers (1) or not (0).",
        if status.state.is_up() { 1.0 } else { 0.0 },
    );
    describe(
        &mut out,
        "omnipanel_ollama_state",
        "gauge",
        "The local Ollama server's supervision state (1 for the current one).",
    );
    let _ = writeln!(
        out,
        "omnipanel_ollama_state{{state=\"{}\"}} 1",
        escape(status.state.name())
    );
    if status.state.is_up()
        && let Ok(loaded) = s.backend.running().await
    {
        gauge(
            &mut out,
            "omnipanel_ollama_loaded_models",
            "Models loaded in the local Ollama server.",
            loaded.len() as f64,
        );
    }
    if let Ok((sample, _)) = s.ctx.system.snapshot().await {
        if let Some(agent) = &sample.agent {
            gauge(
                &mut out,
                "omnipanel_agent_resident_memory_bytes",
                "The agent's resident memory.",
                agent.rss as f64,
            );
        }
        if let Some(ollama) = &sample.ollama {
            gauge(
                &mut out,
                "omnipanel_ollama_resident_memory_bytes",
                "Resident memory of the Ollama server and its runners.",
                ollama.rss as f64,
            );
        }
        let gpus = sample.gpu.gpus();
        if !gpus.is_empty() {
            describe(
                &mut out,
                "omnipanel_gpu_memory_used_bytes",
                "gauge",
                "GPU memory in use.",
            );
            for gpu in gpus {
                let _ = writeln!(
                    out,
                    "omnipanel_gpu_memory_used_bytes{{gpu=\"{}\",name=\"{}\"}} {}",
                    gpu.index,
                    escape(&gpu.name),
                    gpu.memory_used
                );
            }
            describe(
                &mut out,
                "omnipanel_gpu_memory_total_bytes",
                "gauge",
                "GPU memory installed.",
            );
            for gpu in gpus {
                let _ = writeln!(
                    out,
                    "omnipanel_gpu_memory_total_bytes{{gpu=\"{}\",name=\"{}\"}} {}",
                    gpu.index,
                    escape(&gpu.name),
                    gpu.memory_total
                );
            }
            describe(
                &mut out,
                "omnipanel_gpu_utilization_ratio",
                "gauge",
                "GPU utilisation, 0 to 1.",
            );
            for gpu in gpus {
                if let Some(percent) = gpu.utilization_percent {
                    let _ = writeln!(
                        out,
                        "omnipanel_gpu_utilization_ratio{{gpu=\"{}\",name=\"{}\"}} {}",
                        gpu.index,
                        escape(&gpu.name),
                        percent / 100.0
                    );
                }
            }
        }
    }
    // This request is counted once it is answered: the next scrape shows
    // it, as Prometheus expects of a scrape.
    s.metrics.write(&mut out, s.backend.waiting());
    activity.ok();
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
