//! `POST /v1/embeddings`: `input` a string or a list of strings (token-id
//! inputs are embedded as their JSON text) → one deterministic unit vector
//! per input, of `FAKE_OPENAI_EMBED_DIM` floats (or the request's
//! `dimensions`). Equal texts give equal vectors, different texts
//! different ones. `encoding_format: "base64"` (which the official Python
//! client asks for by default) packs the floats as little-endian `f32`s.

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
    complete::tokens,
    server::{ApiError, App, json_reply, parse_body},
};

#[derive(Debug, Deserialize)]
pub struct EmbedRequest {
    model: Option<String>,
    input: Option<Value>,
    dimensions: Option<usize>,
    encoding_format: Option<String>,
}

pub async fn embeddings(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match reply(&app, &body) {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

fn reply(app: &App, body: &Bytes) -> Result<Response, ApiError> {
    let request: EmbedRequest = parse_body(body)?;
    let input = request.input.ok_or_else(|| ApiError::missing("input"))?;
    let model = app.model(request.model.as_deref())?;
    let texts: Vec<String> = match input {
        Value::String(text) => vec![text],
        Value::Array(items) if items.iter().all(Value::is_string) => items
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        // One list of token ids is one input, a list of lists several.
        Value::Array(items) if items.iter().all(Value::is_number) => {
            vec![Value::Array(items).to_string()]
        }
        Value::Array(items) => items.iter().map(Value::to_string).collect(),
        _ => {
            return Err(ApiError::bad_request(
                "'input' must be a string or an array".to_string(),
            ));
        }
    };
    let dim = request.dimensions.unwrap_or(app.embed_dim);
    if dim == 0 {
        return Err(ApiError::bad_request(
            "'dimensions' must be at least 1".to_string(),
        ));
    }
    let base64 = match request.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "'{other}' is not one of ['float', 'base64'] - 'encoding_format'"
            )));
        }
    };
    let prompt_tokens: usize = texts.iter().map(|t| tokens(t).len()).sum();
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let vector = vector(text, dim);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
                json!(encode_base64(&bytes))
            } else {
                json!(vector)
            };
            json!({ "object": "embedding", "index": index, "embedding": embedding })
        })
        .collect();
    Ok(json_reply(
        StatusCode::OK,
        &json!({
            "object": "list",
            "data": data,
            "model": model,
            "usage": { "prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens },
        }),
    ))
}

/// A unit vector derived from the text alone: FNV-1a of the text seeds a
/// xorshift generator whose outputs, mapped to [-1, 1], are normalised.
pub fn vector(text: &str, dim: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut values: Vec<f32> = (0..dim)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // The top 24 bits fit an f32 exactly.
            let unit = (state >> 40) as f32 / (1u64 << 24) as f32;
            unit * 2.0 - 1.0
        })
        .collect();
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        for v in &mut values {
            *v /= norm;
        }
    }
    values
}

/// Standard base64 with padding (no crate for it in this package).
pub fn encode_base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let a = vector("hello", 16);
        assert_eq!(a, vector("hello", 16));
        assert_ne!(a, vector("hellp", 16));
        let norm: f32 = a.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode_base64(plain.as_bytes()), encoded);
        }
    }
}
