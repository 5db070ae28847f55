//! Servers that speak the OpenAI chat completions API (LM Studio,
//! llama.cpp's server, vLLM, LocalAI, hosted endpoints), the `openai`
//! provider kind: `sse` cuts a byte stream into Server-Sent Events,
//! `chunks` reads OpenAI's stream payloads out of them, and `client` is
//! the HTTP client of one such server (models, streamed completions,
//! embeddings, and what its failures mean).

pub mod chunks;
pub mod client;
pub mod sse;
