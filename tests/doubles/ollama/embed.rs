//! `POST /api/embed`: deterministic embeddings of installed models, in
//! Ollama's shape: `input` a string or a list of strings (at least one),
//! answered with `{"model", "embeddings": [[f32; 8]...], "total_duration",
//! "load_duration", "prompt_eval_count"}`; each vector is a unit vector
//! derived from the text's bytes, so equal texts embed equally. An
//! unknown model is `404` like the other routes; a missing input `400`.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    generate::tokenize,
    server::{self, ApiError, App, json_reply},
};

/// Components of each vector.
const DIM: usize = 8;

#[derive(Deserialize)]
struct EmbedRequest {
    model: Option<String>,
    input: Option<Value>,
}

fn vector(text: &str) -> Vec<f32> {
    let mut out = [0f32; DIM];
    for (i, byte) in text.bytes().enumerate() {
        out[i % DIM] += f32::from(byte);
    }
    out[0] += 1.0;
    let norm = out.iter().map(|v| v * v).sum::<f32>().sqrt();
    out.iter().map(|v| v / norm).collect()
}

pub async fn embed(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let request: EmbedRequest = match server::parse_body(&body) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    let model = request.model.unwrap_or_default();
    if model.is_empty() {
        return ApiError::new(StatusCode::BAD_REQUEST, "model is required").into_response();
    }
    if server::installed(&app, &model).is_none() {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            format!("model \"{model}\" not found, try pulling it first"),
        )
        .into_response();
    }
    let texts: Vec<String> = match request.input {
        Some(Value::String(text)) => vec![text],
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if texts.is_empty() {
        return ApiError::new(StatusCode::BAD_REQUEST, "input is required").into_response();
    }
    let tokens: usize = texts.iter().map(|t| tokenize(t).len().max(1)).sum();
    json_reply(
        StatusCode::OK,
        &json!({
            "model": model,
            "embeddings": texts.iter().map(|t| vector(t)).collect::<Vec<_>>(),
            "total_duration": 1_000_000u64,
            "load_duration": 0u64,
            "prompt_eval_count": tokens,
        }),
    )
}
