//! The HTTP clients the facade talks to Ollama servers with: one without
//! TLS for the local server, one with the system's trust store for https
//! providers, both tuned so an idle agent keeps no timers.

use std::time::Duration;

use crate::error::{Error, Result};

/// The settings every client shares, TLS or not.
pub(super) fn http_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // No idle-pool timer: an idle agent runs no timers. Stale pooled
        // connections are detected when they are next used.
        .pool_idle_timeout(None)
        .pool_max_idle_per_host(4)
        .user_agent(concat!("omnipanel/", env!("CARGO_PKG_VERSION")))
}

/// HTTP clients: a plain one for `http://` (the local server, usually),
/// and one with the system's trust store for `https://`, built on first
/// use because loading the trust store costs tens of milliseconds and
/// megabytes that an agent talking only to a local Ollama never needs.
#[derive(Debug)]
pub(super) struct HttpClients {
    pub(super) plain: reqwest::Client,
    tls: tokio::sync::OnceCell<reqwest::Client>,
}

impl HttpClients {
    pub(super) fn new() -> Result<Self> {
        let plain = http_builder()
            // An empty trust store: nothing is loaded, and an https URL
            // given to this client fails instead of going unverified.
            .tls_certs_only([])
            .build()
            .map_err(|err| Error::internal(format!("cannot build the HTTP client: {err}")))?;
        Ok(Self {
            plain,
            tls: tokio::sync::OnceCell::new(),
        })
    }

    pub(super) async fn for_url(&self, url: &str) -> Result<reqwest::Client> {
        if !url.starts_with("https://") {
            return Ok(self.plain.clone());
        }
        let client = self
            .tls
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(|| http_builder().build())
                    .await?
                    .map_err(|err| Error::internal(format!("cannot set up TLS: {err}")))
            })
            .await?;
        Ok(client.clone())
    }
}
