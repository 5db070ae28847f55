//! [`ReplyStream`]: a chat or generate reply as it streams from any
//! provider kind, in one provider-neutral shape ([`ReplyChunk`], with
//! [`GenerationStats`] on the last piece). Failures in the middle of a
//! reply are mapped by the same rules as those of any other call, the time
//! to the first token is measured here for every kind, and dropping the
//! stream drops the HTTP response, which closes the connection and makes
//! the server stop generating.

use std::time::Instant;

use tokio::sync::watch;

use super::{
    address::OllamaAddress,
    api::{ChatChunk, GenerateChunk, NdjsonStream, Timings},
    endpoints::Endpoint,
    errors::api_error,
    providers::ProviderKind,
    supervisor::ServerStatus,
};
use crate::error::Result;

/// Timings and token counts of a finished reply. Ollama reports them; for
/// OpenAI-compatible servers the durations are measured here and the
/// token counts come from the server's `usage` (0 without one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GenerationStats {
    /// Whole request, ns.
    pub total_duration_ns: u64,
    /// Loading the model, ns.
    pub load_duration_ns: u64,
    /// Tokens of the prompt.
    pub prompt_eval_count: u64,
    /// Reading the prompt, ns.
    pub prompt_eval_duration_ns: u64,
    /// Tokens generated.
    pub eval_count: u64,
    /// Generating, ns.
    pub eval_duration_ns: u64,
    /// From sending the request to the first piece of text, ns, as the
    /// agent measured it.
    pub time_to_first_token_ns: u64,
}

impl From<Timings> for GenerationStats {
    fn from(t: Timings) -> Self {
        Self {
            total_duration_ns: t.total_duration,
            load_duration_ns: t.load_duration,
            prompt_eval_count: t.prompt_eval_count,
            prompt_eval_duration_ns: t.prompt_eval_duration,
            eval_count: t.eval_count,
            eval_duration_ns: t.eval_duration,
            time_to_first_token_ns: 0,
        }
    }
}

/// One piece of a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyChunk {
    /// The new text (may be empty).
    pub text: String,
    /// The last piece?
    pub done: bool,
    /// Why it ended ("stop", "length"), on the last piece.
    pub done_reason: String,
    /// Timings, on the last piece.
    pub stats: Option<GenerationStats>,
    /// Context to continue a generate reply from (Ollama only), on the
    /// last piece.
    pub context: Vec<i64>,
}

/// Where the pieces come from.
#[derive(Debug)]
pub(super) enum Source {
    /// Ollama's `/api/chat`.
    OllamaChat(NdjsonStream<ChatChunk>),
    /// Ollama's `/api/generate`.
    OllamaGenerate(NdjsonStream<GenerateChunk>),
    /// An OpenAI-compatible server's SSE stream.
    OpenAi(crate::openai::client::CompletionStream),
}

/// What a failure is mapped with.
#[derive(Debug)]
pub(super) struct FailureContext {
    pub(super) endpoint: Endpoint,
    pub(super) address: OllamaAddress,
    /// Read when a failure happens, so a transport error names the state
    /// the local server is in at that moment.
    pub(super) server: watch::Receiver<ServerStatus>,
    /// Told how the request went (provider health).
    pub(super) health: super::health::Health,
    /// Counts the reply while it streams from the local server, so a
    /// settings change does not restart the server under it.
    pub(super) _local: Option<super::server_settings::LocalStream>,
}

/// A chat or generate reply streaming from a provider. An error ends the
/// stream; dropping it cancels the request upstream.
#[derive(Debug)]
pub struct ReplyStream {
    source: Source,
    provider: String,
    model: String,
    kind: ProviderKind,
    started: Instant,
    first_text_ns: Option<u64>,
    failure: FailureContext,
    finished: bool,
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

impl ReplyStream {
    pub(super) fn new(
        source: Source,
        model: String,
        started: Instant,
        failure: FailureContext,
    ) -> Self {
        Self {
            source,
            provider: failure.endpoint.name.clone(),
            kind: failure.endpoint.kind(),
            model,
            started,
            first_text_ns: None,
            failure,
            finished: false,
        }
    }

    /// The provider answering.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The model answering, as the provider names it.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The kind of the provider answering.
    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    /// The next piece; `None` after the last one. An error ends the
    /// stream.
    pub async fn next(&mut self) -> Option<Result<ReplyChunk>> {
        if self.finished {
            return None;
        }
        let item = match &mut self.source {
            Source::OllamaChat(lines) => lines.next().await.map(|line| {
                line.map(|c| ReplyChunk {
                    stats: c.done.then(|| c.timings().into()),
                    text: c.message.content,
                    done: c.done,
                    done_reason: c.done_reason,
                    context: Vec::new(),
                })
                .map_err(|err| self.failure.ollama_error(err))
            }),
            Source::OllamaGenerate(lines) => lines.next().await.map(|line| {
                line.map(|c| ReplyChunk {
                    stats: c.done.then(|| c.timings().into()),
                    text: c.response,
                    done: c.done,
                    done_reason: c.done_reason,
                    context: c.context,
                })
                .map_err(|err| self.failure.ollama_error(err))
            }),
            Source::OpenAi(stream) => stream
                .next()
                .await
                .map(|piece| piece.map_err(|err| self.failure.openai_error(err))),
        };
        match item {
            None => {
                self.finished = true;
                None
            }
            Some(Err(err)) => {
                self.finished = true;
                Some(Err(err))
            }
            Some(Ok(mut chunk)) => {
                if self.first_text_ns.is_none() && (!chunk.text.is_empty() || chunk.done) {
                    self.first_text_ns = Some(elapsed_ns(self.started));
                }
                if chunk.done {
                    self.finished = true;
                    if !self.failure.endpoint.local {
                        self.failure
                            .health
                            .succeeded(&self.failure.endpoint.subject());
                    }
                    let total = elapsed_ns(self.started);
                    let first = self.first_text_ns.unwrap_or(total);
                    let stats = chunk.stats.get_or_insert_with(GenerationStats::default);
                    stats.time_to_first_token_ns = first;
                    if self.kind == ProviderKind::OpenAi {
                        // OpenAI servers report no timings: measured here.
                        stats.total_duration_ns = total;
                        stats.prompt_eval_duration_ns = first;
                        stats.eval_duration_ns = total.saturating_sub(first);
                    }
                }
                Some(Ok(chunk))
            }
        }
    }
}

impl FailureContext {
    fn ollama_error(&self, err: super::api::ApiError) -> crate::error::Error {
        let server = self.server.borrow().clone();
        if !self.endpoint.local {
            self.health.failed_ollama(&self.endpoint.subject(), &err);
        }
        api_error(&self.address, &server, &self.endpoint, err)
    }

    fn openai_error(&self, err: crate::openai::client::OpenAiError) -> crate::error::Error {
        self.health.failed_openai(&self.endpoint.subject(), &err);
        err.into_error(&self.endpoint.name)
    }
}
