//! The facade's side of pulls and fit checks: whether a model will fit
//! on this machine (its size from the local server or the registry, the
//! free memory and disk), and starting, attaching to, cancelling and
//! listing pulls. The download itself is run by `PullManager` in `pulls`,
//! which waits here (`ServerWait`) for a local server that went away in the
//! middle of one.

use std::{sync::Arc, time::Duration};

use tokio::sync::watch;

use super::{
    Ollama,
    fit::{self, FitReport, Resources},
    names::ModelName,
    providers::LOCAL,
    pulls::{PullEnvironment, PullProgress},
    registry,
    supervisor::{ServerState, ServerStatus},
};
use crate::error::{Error, Result};

/// The pull task's view of the supervisor.
#[derive(Debug)]
struct ServerWait {
    status: watch::Receiver<ServerStatus>,
}

/// How long an interrupted pull waits for the local server to come back.
const PULL_SERVER_WAIT: Duration = Duration::from_secs(120);

impl PullEnvironment for ServerWait {
    async fn wait_until_up(&self, provider: &str) -> std::result::Result<(), String> {
        if provider != LOCAL {
            return Ok(());
        }
        let mut status = self.status.clone();
        let waited = tokio::time::timeout(
            PULL_SERVER_WAIT,
            status.wait_for(|s| {
                s.state.is_up()
                    || matches!(s.state, ServerState::Stopped | ServerState::NotInstalled)
            }),
        )
        .await;
        match waited {
            Ok(Ok(s)) if s.state.is_up() => Ok(()),
            Ok(Ok(s)) => Err(format!(
                "the Ollama server is {} ({}); the pull cannot continue",
                s.state.name(),
                s.reason
            )),
            Ok(Err(_)) => Err("the Ollama supervisor stopped".to_owned()),
            Err(_) => Err(format!(
                "the Ollama server did not come back within {} s",
                PULL_SERVER_WAIT.as_secs()
            )),
        }
    }
}

impl Ollama {
    /// Whether a pull is running.
    pub fn pull_running(&self) -> bool {
        self.pulls.any_running()
    }

    /// Will `model` fit on this machine?
    pub async fn check_fit(&self, provider: &str, model: &str) -> Result<FitReport> {
        if !(provider.is_empty() || provider == LOCAL) {
            // An OpenAI provider's own error says more than the local-only
            // one: it cannot even list sizes.
            self.endpoint(provider)
                .await?
                .ollama("check whether models fit")?;
            return Err(Error::failed_precondition(
                "fit checks compare with this machine's memory, so they are only available for the local provider",
            ));
        }
        let name = ModelName::parse("model", model)?;
        let installed = if self.supervisor.status().state.is_up() {
            let endpoint = self.endpoint(LOCAL).await?;
            self.installed(&endpoint, &name).await?
        } else {
            None
        };
        let (size, is_installed) = match installed {
            Some(model) => (model.size, true),
            None => (
                registry::download_size(&self.http, &self.registry, &name).await?,
                false,
            ),
        };
        let models_dir = self.models_dir.clone();
        let vram = self.vram.clone();
        let resources = tokio::task::spawn_blocking(move || Resources {
            // Without a GPU reading the verdict is based on RAM alone.
            vram: vram.read(),
            free_ram: fit::available_memory(),
            free_disk: fit::free_disk(&models_dir),
        })
        .await?;
        Ok(fit::assess(size, is_installed, resources))
    }

    /// Start (or attach to) a pull. Also returns the fit check when it
    /// could be made.
    pub async fn pull(
        &self,
        provider: &str,
        model: &str,
        insecure: bool,
    ) -> Result<(watch::Receiver<PullProgress>, Option<FitReport>)> {
        let name = ModelName::parse("model", model)?;
        let endpoint = self.endpoint(provider).await?;
        let api = endpoint.ollama("pull models")?.clone();
        let fit = if endpoint.local {
            match self.check_fit(LOCAL, model).await {
                Ok(report) => Some(report),
                Err(err) => {
                    tracing::info!(model = %name, error = %err, "no fit check before the pull");
                    None
                }
            }
        } else {
            None
        };
        let env = Arc::new(ServerWait {
            status: self.supervisor.watch(),
        });
        let progress = self.pulls.start_or_attach(
            env,
            api,
            &endpoint.name,
            &name.key(),
            &name.display(),
            insecure,
        );
        Ok((progress, fit))
    }

    /// Cancel a pull.
    pub async fn cancel_pull(&self, provider: &str, model: &str) -> Result<PullProgress> {
        let name = ModelName::parse("model", model)?;
        let provider = if provider.is_empty() { LOCAL } else { provider };
        self.pulls.cancel(provider, &name.key()).await
    }

    /// Running and recent pulls.
    pub fn list_pulls(&self) -> Vec<PullProgress> {
        self.pulls.list()
    }
}
