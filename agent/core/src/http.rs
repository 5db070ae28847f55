//! The one place an HTTP client is built. Every client OmniPanel makes (the
//! Ollama API, provider registries, update feeds and downloads) gets the
//! same user agent (`omnipanel/<version>`, the version the agent reports),
//! keeps no idle-pool timer (an idle agent runs no timers; a stale pooled
//! connection is noticed when it is next used), and leaves proxies to
//! reqwest's defaults (the `*_PROXY` variables). What differs between
//! callers — timeouts, pool size, whether a trust store is loaded — is in
//! [`HttpOptions`].

use std::time::Duration;

use crate::version;

/// Which TLS a client can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// None: an empty trust store, so nothing is loaded and an `https://`
    /// URL given to this client fails instead of going unverified. For
    /// `http://` URLs (usually the local Ollama).
    Off,
    /// The system's trust store. Loading it costs tens of milliseconds and
    /// megabytes, so callers build this client on first use and off the
    /// executor.
    SystemRoots,
}

/// What a caller chooses about its client.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How long a read may stall (`None`: no limit).
    pub read_timeout: Option<Duration>,
    /// Idle connections kept per host (`None`: reqwest's default, no limit).
    pub max_idle_per_host: Option<usize>,
    /// Which TLS it speaks.
    pub tls: Tls,
    /// Whether redirects are followed (up to ten, reqwest's default). Git
    /// follows them itself, on its first request only.
    pub follow_redirects: bool,
}

impl HttpOptions {
    /// The same options with another TLS choice.
    pub fn with_tls(&self, tls: Tls) -> Self {
        Self {
            tls,
            ..self.clone()
        }
    }
}

/// A client built from `options` and the settings every client shares.
pub fn client(options: &HttpOptions) -> reqwest::Result<reqwest::Client> {
    // reqwest is built without a TLS provider of its own and would panic
    // here without one; the first client installs ring (rustls's choice
    // in this build), whichever process or test builds it. `Err` only
    // says one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(None)
        .user_agent(format!("omnipanel/{}", version::current()));
    if let Some(timeout) = options.read_timeout {
        builder = builder.read_timeout(timeout);
    }
    if let Some(max) = options.max_idle_per_host {
        builder = builder.pool_max_idle_per_host(max);
    }
    if options.tls == Tls::Off {
        builder = builder.tls_certs_only([]);
    }
    if !options.follow_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    builder.build()
}

/// A reqwest error with its causes, in one line: reqwest's own message is
/// generic, and the source chain says what really happened (refused,
/// reset, timed out, a bad certificate).
pub fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tls_choices_build() -> reqwest::Result<()> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let options = HttpOptions {
            connect_timeout: Duration::from_secs(1),
            read_timeout: Some(Duration::from_secs(1)),
            max_idle_per_host: Some(1),
            tls: Tls::Off,
            follow_redirects: false,
        };
        client(&options)?;
        client(&options.with_tls(Tls::SystemRoots))?;
        Ok(())
    }
}
