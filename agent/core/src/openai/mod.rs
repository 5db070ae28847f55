//! Servers that speak the OpenAI chat completions API (LM Studio,
//! llama.cpp's server, vLLM, LocalAI, hosted endpoints): the wire format
//! of their streamed replies. `sse` cuts a byte stream into Server-Sent
//! Events, `chunks` reads OpenAI's stream payloads out of them. Groundwork
//! for issue 17's `openai` provider kind; the HTTP client comes next.

pub mod chunks;
pub mod sse;
