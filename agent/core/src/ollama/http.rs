//! The HTTP clients the facade talks to Ollama servers with: one without
//! TLS for the local server, one with the system's trust store for https
//! providers, both from the one builder (`crate::http`).

use std::time::Duration;

use crate::{
    error::{Error, Result},
    http::{HttpOptions, Tls},
};

/// What Ollama's clients choose: a quick connect (the server is usually
/// local) and a small pool, no read limit (generation streams pause).
pub(super) fn options(tls: Tls) -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_secs(5),
        read_timeout: None,
        max_idle_per_host: Some(4),
        tls,
        follow_redirects: true,
    }
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
        let plain = crate::http::client(&options(Tls::Off))
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
                tokio::task::spawn_blocking(|| crate::http::client(&options(Tls::SystemRoots)))
                    .await?
                    .map_err(|err| Error::internal(format!("cannot set up TLS: {err}")))
            })
            .await?;
        Ok(client.clone())
    }
}
