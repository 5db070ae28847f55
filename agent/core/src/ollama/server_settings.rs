//! The managed server's settings while the agent runs: a change of the
//! `[ollama]` keys given to `ollama serve` (models folder, keep-alive,
//! parallel requests, loaded models, context length, flash attention)
//! restarts a managed server only when nothing runs on it — no pull, no
//! chat or generate reply streaming from it, no model loaded (`/api/ps`
//! empty) — and otherwise waits for its next restart. A server started
//! outside OmniPanel is never touched. Streams to the local server are
//! counted here ([`LocalStreams`]) so the check sees them even before
//! Ollama lists their model.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::{
    Ollama,
    supervisor::{Reconfigured, ServerEnv, ServerState},
};
use crate::{
    config::{LiveSettings, OllamaSettings, Settings},
    error::Result,
};

/// The settings keys a managed server is started with.
pub const SERVER_KEYS: &[&str] = &[
    "ollama.models_dir",
    "ollama.keep_alive",
    "ollama.num_parallel",
    "ollama.max_loaded_models",
    "ollama.context_length",
    "ollama.flash_attention",
];

/// How many chat and generate replies are streaming from the local server.
#[derive(Debug, Clone, Default)]
pub(super) struct LocalStreams(Arc<AtomicUsize>);

/// One reply streaming from the local server; dropping it ends the count.
#[derive(Debug)]
pub(super) struct LocalStream(Arc<AtomicUsize>);

impl LocalStreams {
    /// Count a reply until the guard is dropped.
    pub(super) fn enter(&self) -> LocalStream {
        self.0.fetch_add(1, Ordering::SeqCst);
        LocalStream(self.0.clone())
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for LocalStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Ollama {
    /// Give the managed server the server part of `settings`: at once
    /// (a restart) when nothing runs on it, else at its next restart.
    pub async fn apply_server_settings(&self, settings: &OllamaSettings) -> Result<Reconfigured> {
        let env = ServerEnv::from_settings(settings);
        let busy = self.server_busy().await;
        if let Some(why) = &busy {
            tracing::debug!(why, "the local Ollama server is in use");
        }
        self.supervisor.configure(env, busy.is_none()).await
    }

    /// What runs on the local server, if anything: a pull, a streaming
    /// reply, a loaded model (or a server that cannot say).
    async fn server_busy(&self) -> Option<String> {
        if self.pulls.any_running() {
            return Some("a pull is running".to_owned());
        }
        let streams = self.local_streams.count();
        if streams > 0 {
            return Some(format!("{streams} replies are streaming"));
        }
        if self.supervisor.status().state != ServerState::Running {
            return None;
        }
        match self.local.ps().await {
            Ok(models) if models.is_empty() => None,
            Ok(models) => Some(format!(
                "{} loaded",
                models
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(err) => Some(format!("cannot tell which models are loaded ({err})")),
        }
    }
}

impl LiveSettings for Ollama {
    fn apply<'a>(
        &'a self,
        settings: &'a Settings,
        keys: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
        Box::pin(async move {
            if !keys.iter().any(|key| SERVER_KEYS.contains(&key.as_str())) {
                return None;
            }
            match self.apply_server_settings(&settings.ollama).await {
                Ok(Reconfigured::Deferred) => Some(
                    "the Ollama server is in use (a model loaded, a pull or a reply running): the new settings apply at its next restart (`omnipanel ollama restart`)".to_owned(),
                ),
                Ok(Reconfigured::External) => {
                    tracing::warn!(
                        "the Ollama server was started outside OmniPanel: the new [ollama] server settings do not apply to it"
                    );
                    None
                }
                Ok(_) => None,
                Err(err) => Some(format!("the Ollama server settings were not applied: {err}")),
            }
        })
    }
}
