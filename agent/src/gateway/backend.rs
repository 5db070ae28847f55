//! What the gateway asks of the domain, in one place: resolving a model
//! string to a provider and model, chat and generate streams, embeddings,
//! the model listings, pulls and deletes, all through the `Ollama` facade
//! (the model-service facade in front of every provider). The wire
//! handlers (`ollama_api.rs`, `openai_api.rs`) speak only these plain
//! types, so a change in the domain's inference API touches this file
//! alone.
//!
//! It also makes requests wait, bounded, while the local Ollama is not up
//! yet: a request for the local server when it is starting (or stopped,
//! with autostart on: the supervisor's start path is asked once) waits for
//! it to answer, at most `gateway.wait_timeout`, and at most
//! `gateway.max_waiting` requests wait at once; beyond either bound the
//! answer is 503 with what was waited for. Ollama itself holds a request
//! while its model loads; those requests count as waiting (the `waiting`
//! gauge in /metrics) until their first piece arrives.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::http::StatusCode;
use omnipanel_core::{
    error::{ErrorKind, Result},
    ollama::{
        ChatMessage, EmbedOptions, GenerateParams, GenerationOptions, LoadedModel, ModelDetails,
        ModelInfo, Ollama, ReplyChunk, ReplyStream, Target, providers::LOCAL, pulls::PullProgress,
        supervisor::ServerState,
    },
};
use tokio::sync::watch;

use super::reply::Failure;

/// What a model string resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The provider ("local" for the managed Ollama).
    pub provider: String,
    /// The model as that provider names it.
    pub model: String,
}

impl Resolved {
    /// The domain's target for this exact provider and model.
    fn target(&self) -> Target {
        Target {
            provider: self.provider.clone(),
            model: self.model.clone(),
            project: String::new(),
        }
    }

    /// The name a client sees: local models as they are, others as
    /// `provider/model`.
    pub fn public_name(&self) -> String {
        public_name(&self.provider, &self.model)
    }
}

/// The name a client sees for `model` on `provider`.
pub fn public_name(provider: &str, model: &str) -> String {
    if provider == LOCAL || provider.is_empty() {
        model.to_owned()
    } else {
        format!("{provider}/{model}")
    }
}

/// Run statistics of a finished reply (Ollama's names, nanoseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Whole request.
    pub total_duration: u64,
    /// Loading the model.
    pub load_duration: u64,
    /// Prompt tokens.
    pub prompt_eval_count: u64,
    /// Reading the prompt.
    pub prompt_eval_duration: u64,
    /// Tokens generated.
    pub eval_count: u64,
    /// Generating.
    pub eval_duration: u64,
}

/// One piece of a reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Piece {
    /// New text.
    pub text: String,
    /// The last piece?
    pub done: bool,
    /// Why it ended ("stop", "length").
    pub done_reason: String,
    /// Statistics (last piece).
    pub stats: Stats,
    /// Generate's context to continue from (last piece).
    pub context: Vec<i64>,
}

impl From<ReplyChunk> for Piece {
    fn from(chunk: ReplyChunk) -> Self {
        let stats = chunk.stats.unwrap_or_default();
        Self {
            text: chunk.text,
            done: chunk.done,
            done_reason: chunk.done_reason,
            stats: Stats {
                total_duration: stats.total_duration_ns,
                load_duration: stats.load_duration_ns,
                prompt_eval_count: stats.prompt_eval_count,
                prompt_eval_duration: stats.prompt_eval_duration_ns,
                eval_count: stats.eval_count,
                eval_duration: stats.eval_duration_ns,
            },
            context: chunk.context,
        }
    }
}

/// A reply streaming from a provider. Dropping it ends the upstream
/// request.
#[derive(Debug)]
pub struct Reply(ReplyStream);

impl Reply {
    /// The next piece; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<Piece>> {
        self.0.next().await.map(|r| r.map(Piece::from))
    }
}

/// Embeddings of a request's inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    /// One vector per input.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens read.
    pub prompt_tokens: u64,
    /// Nanoseconds.
    pub total_duration: u64,
}

/// The domain behind the gateway, with the bounded wait.
#[derive(Debug)]
pub struct Backend {
    ollama: Arc<Ollama>,
    server: watch::Receiver<omnipanel_core::ollama::supervisor::ServerStatus>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    wait_timeout: Duration,
}

/// A place among the waiting requests, given back when dropped.
#[derive(Debug)]
pub struct WaitSlot(Arc<AtomicUsize>);

impl Drop for WaitSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Backend {
    /// The domain, with the gateway's waiting bounds.
    pub fn new(ollama: Arc<Ollama>, max_waiting: usize, wait_timeout: Duration) -> Self {
        Self {
            server: ollama.server_watch(),
            ollama,
            waiting: Arc::default(),
            max_waiting,
            wait_timeout,
        }
    }

    /// Requests waiting now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// A place among the waiting requests, or 503 when they are full.
    pub fn wait_slot(&self) -> Result<WaitSlot, Failure> {
        let taken = self.waiting.fetch_add(1, Ordering::AcqRel);
        let slot = WaitSlot(self.waiting.clone());
        if taken >= self.max_waiting {
            return Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "TOO_MANY_WAITING",
                format!(
                    "{} requests are already waiting for a model to load or Ollama to start (gateway.max_waiting); try again shortly",
                    self.max_waiting
                ),
            )
            .retry_after(1));
        }
        Ok(slot)
    }

    /// Run `call` (a chat, generate or embed that may wait for a model to
    /// load) holding a place among the waiting requests: 503 when they are
    /// full, the domain's failure mapped otherwise. The place is given back
    /// once the reply starts.
    pub async fn started<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T, Failure> {
        let _slot = self.wait_slot()?;
        call.await.map_err(|err| Failure::from_domain(&err))
    }

    /// Which provider and model a model string means (the domain's
    /// rules: `provider/model` when the first segment is a provider; else
    /// local Ollama first, then the other providers). An empty string is
    /// the default model.
    pub async fn resolve(&self, model: &str) -> Result<Resolved> {
        let resolved = self
            .ollama
            .resolve(&Target {
                model: model.trim().to_owned(),
                ..Target::default()
            })
            .await?;
        Ok(Resolved {
            provider: resolved.provider,
            model: resolved.model,
        })
    }

    /// Wait (bounded) until the local server answers, when the request
    /// goes there; asks the supervisor to start it when it is stopped.
    pub async fn ready(&self, provider: &str) -> Result<(), Failure> {
        if provider != LOCAL {
            return Ok(());
        }
        let state = self.server.borrow().state;
        if state.is_up() {
            return Ok(());
        }
        let _slot = self.wait_slot()?;
        if matches!(state, ServerState::Stopped | ServerState::Crashed) {
            // The same start the StartServer RPC makes; it fails at once
            // when there is no binary.
            if let Err(err) = self.ollama.start_server().await
                && err.kind() != ErrorKind::AlreadyExists
            {
                return Err(Failure::from_domain(&err));
            }
        }
        let mut server = self.server.clone();
        let up = tokio::time::timeout(self.wait_timeout, async {
            loop {
                let state = server.borrow_and_update().state;
                if state.is_up() {
                    return Ok(());
                }
                if matches!(state, ServerState::NotInstalled) {
                    return Err(());
                }
                if server.changed().await.is_err() {
                    return Err(());
                }
            }
        })
        .await;
        match up {
            Ok(Ok(())) => Ok(()),
            Ok(Err(())) => Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "OLLAMA_DOWN",
                "the local Ollama server is not running and cannot be started; see `omnipanel ollama status`",
            )),
            Err(_) => Err(Failure::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "OLLAMA_DOWN",
                format!(
                    "the local Ollama server did not come up within {} (gateway.wait_timeout); see `omnipanel ollama status`",
                    humanize(self.wait_timeout)
                ),
            )
            .retry_after(5)),
        }
    }

    /// Start a chat.
    pub async fn chat(
        &self,
        target: &Resolved,
        messages: Vec<ChatMessage>,
        options: GenerationOptions,
    ) -> Result<Reply> {
        let stream = self
            .ollama
            .chat(&target.target(), messages, options)
            .await?;
        Ok(Reply(stream))
    }

    /// Start a completion.
    pub async fn generate(
        &self,
        target: &Resolved,
        params: GenerateParams,
        options: GenerationOptions,
    ) -> Result<Reply> {
        let stream = self
            .ollama
            .generate(&target.target(), params, options)
            .await?;
        Ok(Reply(stream))
    }

    /// Embeddings of `inputs`.
    pub async fn embed(&self, target: &Resolved, inputs: Vec<String>) -> Result<Embeddings> {
        let embeddings = self
            .ollama
            .embed(&target.target(), inputs, EmbedOptions::default())
            .await?;
        Ok(Embeddings {
            vectors: embeddings.vectors,
            prompt_tokens: embeddings.prompt_tokens,
            total_duration: embeddings.total_duration_ns,
        })
    }

    /// Every provider's models that answer, local first.
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        self.ollama.list_all_models().await
    }

    /// One model's details.
    pub async fn show(&self, target: &Resolved) -> Result<ModelDetails> {
        self.ollama
            .show_model(&target.provider, &target.model)
            .await
    }

    /// Models loaded on the local server.
    pub async fn running(&self) -> Result<Vec<LoadedModel>> {
        self.ollama.running_models(LOCAL).await
    }

    /// Start or follow a pull.
    pub async fn pull(&self, target: &Resolved) -> Result<watch::Receiver<PullProgress>> {
        let (progress, _) = self
            .ollama
            .pull(&target.provider, &target.model, false)
            .await?;
        Ok(progress)
    }

    /// Delete a model.
    pub async fn delete(&self, target: &Resolved) -> Result<()> {
        self.ollama
            .delete_model(&target.provider, &target.model)
            .await
    }

    /// The local server's version, when it answers.
    pub fn server_version(&self) -> Option<String> {
        self.server.borrow().version.clone()
    }
}

fn humanize(duration: Duration) -> String {
    format!("{} s", duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_models_keep_their_name_and_others_carry_their_provider() {
        assert_eq!(public_name("local", "llama3.2:latest"), "llama3.2:latest");
        assert_eq!(public_name("lmstudio", "qwen"), "lmstudio/qwen");
    }
}
