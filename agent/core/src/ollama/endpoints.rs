//! The endpoints a request can go to: the supervised local server
//! ("local") and the stored providers of either kind (an Ollama, or a
//! server speaking the OpenAI API). Picking one for a request (failing
//! fast when it is known to be down), listing them with their health
//! (probing those whose state is stale, and all of them periodically while
//! someone follows the "models" topic), adding one (after checking that
//! it answers with its kind's API and accepts the key, and saying what
//! failed when it does not) and removing one. API keys and header values
//! are read from the secrets file only to build a client; they are never
//! in a [`ProviderInfo`].

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio::sync::watch;

use super::{
    Ollama,
    api::{ApiError, OllamaApi},
    health::{ProviderState, Subject},
    providers::{
        self, LOCAL, ProviderKind, ProviderRecord, header_secret, key_secret, secrets_prefix,
    },
};
use crate::{
    error::{Error, ErrorKind, Result},
    model_route::{self, Catalog},
    ollama::OllamaEvent,
    openai::client::{OpenAiApi, OpenAiError, classify_text},
    reason::Reason,
};

/// Timeout of a request when the provider sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How old a state may be before ListProviders probes again.
const PROBE_AFTER: Duration = Duration::from_secs(5);

/// How long a probe or an AddProvider check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// How often providers are probed while someone follows the "models" topic
/// (the tray, the panel, an editor's status bar), so a provider that goes
/// down shows there without a request failing first.
pub const WATCHED_PROBE_INTERVAL: Duration = Duration::from_secs(30);

/// A provider as listed; never its key or header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// The supervised local server?
    pub local: bool,
    /// Sends an API key?
    pub has_token: bool,
    /// Version last seen (Ollama only).
    pub version: String,
    /// The API it speaks.
    pub kind: ProviderKind,
    /// Health.
    pub state: ProviderState,
    /// Why it is DOWN.
    pub last_error: String,
    /// When the state was established, ms since the epoch (0: never).
    pub checked_ms: i64,
    /// Names of the extra headers.
    pub header_names: Vec<String>,
    /// Timeout in seconds (0: the default).
    pub timeout_seconds: u32,
}

/// What AddProvider is given.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NewProvider {
    /// Unique name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// The API it speaks.
    pub kind: ProviderKind,
    /// API key ("" for none).
    pub api_key: String,
    /// Extra headers (the values are secret).
    pub headers: BTreeMap<String, String>,
    /// Timeout in seconds (0: the default).
    pub timeout_seconds: u32,
}

impl std::fmt::Debug for NewProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key or the header values.
        f.debug_struct("NewProvider")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("has_key", &!self.api_key.is_empty())
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

/// The client a request to an endpoint goes through.
#[derive(Debug, Clone)]
pub(super) enum Backend {
    /// Ollama's API.
    Ollama(OllamaApi),
    /// The OpenAI API.
    OpenAi(OpenAiApi),
}

/// An endpoint to send a request to.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) name: String,
    pub(super) url: String,
    pub(super) local: bool,
    pub(super) backend: Backend,
}

impl Endpoint {
    /// The kind of API it speaks.
    pub(super) fn kind(&self) -> ProviderKind {
        match self.backend {
            Backend::Ollama(_) => ProviderKind::Ollama,
            Backend::OpenAi(_) => ProviderKind::OpenAi,
        }
    }

    /// Who it is, for health records and events.
    pub(super) fn subject(&self) -> Subject {
        Subject {
            name: self.name.clone(),
            url: self.url.clone(),
            kind: self.kind(),
        }
    }

    /// Its Ollama client, for what only Ollama can do (`what`: "pull a
    /// model"); FAILED_PRECONDITION OLLAMA_ONLY for another kind.
    pub(super) fn ollama(&self, what: &str) -> Result<&OllamaApi> {
        match &self.backend {
            Backend::Ollama(api) => Ok(api),
            Backend::OpenAi(_) => Err(Error::failed_precondition(format!(
                "provider {} is an {} provider; only Ollama providers can {what}",
                self.name,
                self.kind().name()
            ))
            .with_reason(Reason::OllamaOnly)),
        }
    }
}

/// A validated header name (RFC 9110 token characters); the value must be
/// sendable too.
fn check_header(name: &str, value: &str) -> Result<()> {
    let field = format!("headers[{name}]");
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    {
        return Err(Error::invalid_argument(field, "is not a valid header name"));
    }
    if name.eq_ignore_ascii_case("authorization") {
        return Err(Error::invalid_argument(
            field,
            "the API key is sent as Authorization; give it as the token instead",
        ));
    }
    if reqwest::header::HeaderValue::from_str(value).is_err() {
        return Err(Error::invalid_argument(
            field,
            "its value has characters a header cannot carry",
        ));
    }
    Ok(())
}

/// Why a check before saving failed, as the error AddProvider answers.
fn check_failed(url: &str, kind: ProviderKind, err: OpenAiError) -> Error {
    let (error_kind, reason) = match &err {
        OpenAiError::Dns(_) => (ErrorKind::Unavailable, Reason::ProviderDnsFailed),
        OpenAiError::Tls(_) => (ErrorKind::Unavailable, Reason::ProviderTlsFailed),
        OpenAiError::Unreachable(_) | OpenAiError::Interrupted(_) => {
            (ErrorKind::Unavailable, Reason::ProviderUnreachable)
        }
        // Not PERMISSION_DENIED: that would tell a client its own access
        // is refused, and clients react by asking the user for access.
        OpenAiError::Unauthorized(_) => {
            (ErrorKind::FailedPrecondition, Reason::ProviderUnauthorized)
        }
        OpenAiError::RateLimited { .. } => {
            (ErrorKind::ResourceExhausted, Reason::ProviderRateLimited)
        }
        OpenAiError::ServerError { .. } | OpenAiError::InStream { .. } => {
            (ErrorKind::Unavailable, Reason::ProviderUnreachable)
        }
        OpenAiError::Rejected { .. } | OpenAiError::WrongApi(_) => {
            (ErrorKind::FailedPrecondition, Reason::ProviderWrongApi)
        }
    };
    let hint = match (&err, kind) {
        (OpenAiError::WrongApi(_) | OpenAiError::Rejected { .. }, ProviderKind::OpenAi) => {
            " (is it an OpenAI-compatible server, and does the URL end where the API paths start, often /v1?)"
        }
        (OpenAiError::WrongApi(_) | OpenAiError::Rejected { .. }, ProviderKind::Ollama) => {
            " (is it an Ollama server? For OpenAI-compatible servers choose the kind openai)"
        }
        _ => "",
    };
    let what = match (&err, kind) {
        (OpenAiError::WrongApi(why), ProviderKind::Ollama) => {
            format!("it does not speak Ollama's API: {why}")
        }
        _ => err.to_string(),
    };
    Error::new(
        error_kind,
        format!(
            "{url} ({} provider): {what}{hint}; nothing was saved",
            kind.name()
        ),
    )
    .with_reason(reason)
}

/// An Ollama client's failure in the terms of the check.
fn ollama_check_error(err: ApiError) -> OpenAiError {
    match err {
        ApiError::Unreachable(why) => classify_text(why),
        ApiError::Interrupted(why) => OpenAiError::Interrupted(why),
        ApiError::Ollama { status, message } if status == 401 || status == 403 => {
            OpenAiError::Unauthorized(message)
        }
        ApiError::Ollama { message, .. } | ApiError::Unexpected(message) => {
            OpenAiError::WrongApi(message)
        }
    }
}

impl Ollama {
    /// The local server, which must be up.
    fn local_endpoint(&self) -> Result<Endpoint> {
        let status = self.supervisor.status();
        if !status.state.is_up() {
            return Err(self.server_down(&status));
        }
        Ok(Endpoint {
            name: LOCAL.to_owned(),
            url: self.address.base_url(),
            local: true,
            backend: Backend::Ollama(self.local.clone()),
        })
    }

    /// The client of a stored provider, with its key and headers.
    async fn stored_endpoint(&self, record: &ProviderRecord) -> Result<Endpoint> {
        let key = self.secrets.get(&key_secret(&record.name)).await?;
        let mut headers = Vec::new();
        for name in &record.header_names {
            if let Some(value) = self.secrets.get(&header_secret(&record.name, name)).await? {
                headers.push((name.clone(), value));
            }
        }
        let http = self.http.for_url(&record.url).await?;
        let timeout = match record.timeout_seconds {
            0 => DEFAULT_TIMEOUT,
            seconds => Duration::from_secs(u64::from(seconds)),
        };
        let backend = match record.kind {
            ProviderKind::Ollama => Backend::Ollama(
                OllamaApi::new(http, &record.url, key)
                    .with_headers(headers)
                    .with_timeout(timeout),
            ),
            ProviderKind::OpenAi => {
                Backend::OpenAi(OpenAiApi::new(http, &record.url, key, headers, timeout))
            }
        };
        Ok(Endpoint {
            name: record.name.clone(),
            url: record.url.clone(),
            local: false,
            backend,
        })
    }

    /// Where a request for `provider` goes: "" and "local" mean the local
    /// server, which must be up; any other name a stored provider, which
    /// must not be known to be down (UNAVAILABLE PROVIDER_DOWN at once).
    pub(super) async fn endpoint(&self, provider: &str) -> Result<Endpoint> {
        if provider.is_empty() || provider == LOCAL {
            return self.local_endpoint();
        }
        let record = self.providers.get(provider).await?;
        if let Some(why) = self.health.down_recently(&record.name) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "provider {} at {} is down ({why}); it was checked less than {} s ago",
                    record.name,
                    record.url,
                    super::health::FAIL_FAST.as_secs()
                ),
            )
            .with_reason(Reason::ProviderDown));
        }
        self.stored_endpoint(&record).await
    }

    /// The stored providers, in list order.
    pub(super) async fn provider_records(&self) -> Result<Vec<ProviderRecord>> {
        self.providers.list().await
    }

    /// The names of every provider, "local" first.
    pub async fn list_provider_names(&self) -> Result<Vec<String>> {
        let mut names = vec![LOCAL.to_owned()];
        names.extend(self.providers.list().await?.into_iter().map(|r| r.name));
        Ok(names)
    }

    /// Ask a provider cheaply whether it is up and record the answer.
    async fn probe(&self, record: &ProviderRecord) {
        let endpoint = match self.stored_endpoint(record).await {
            Ok(endpoint) => endpoint,
            Err(err) => {
                tracing::debug!(provider = %record.name, error = %err, "cannot probe");
                return;
            }
        };
        let subject = endpoint.subject();
        let outcome = match &endpoint.backend {
            Backend::Ollama(api) => api.version(CHECK_TIMEOUT).await.map(drop).map_err(|err| {
                match err {
                    ApiError::Unreachable(why) => Some(why),
                    // It answered: up, whatever it said.
                    _ => None,
                }
            }),
            Backend::OpenAi(api) => match tokio::time::timeout(CHECK_TIMEOUT, api.models()).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(err)) if err.is_connect() => Err(Some(err.to_string())),
                Ok(Err(_)) => Err(None),
                Err(_) => Err(Some(format!(
                    "no answer within {} s",
                    CHECK_TIMEOUT.as_secs()
                ))),
            },
        };
        match outcome {
            Ok(()) | Err(None) => self.health.set(&subject, ProviderState::Up, String::new()),
            Err(Some(why)) => self.health.set(&subject, ProviderState::Down, why),
        }
    }

    /// Probe every stored provider every [`WATCHED_PROBE_INTERVAL`] while
    /// `listeners` (the number of event subscribers receiving the "models"
    /// topic) is above zero, at once when the first one arrives. While
    /// nobody listens the task waits on the count and no timer runs. Ends
    /// when the count's sender (the event bus) is gone.
    pub fn probe_while_watched(self: &Arc<Self>, mut listeners: watch::Receiver<usize>) {
        let ollama = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                if listeners.wait_for(|n| *n > 0).await.is_err() {
                    return;
                }
                let Some(strong) = ollama.upgrade() else {
                    return;
                };
                let records = strong.providers.list().await.unwrap_or_default();
                futures_util::future::join_all(records.iter().map(|r| strong.probe(r))).await;
                drop(strong);
                tokio::select! {
                    () = tokio::time::sleep(WATCHED_PROBE_INTERVAL) => {}
                    gone = listeners.wait_for(|n| *n == 0) => if gone.is_err() { return },
                }
            }
        });
    }

    /// "local" and the stored providers, with their health. Providers whose
    /// state is older than a few seconds are probed first (together).
    pub async fn list_providers(&self) -> Result<Vec<ProviderInfo>> {
        let records = self.providers.list().await?;
        let stale: Vec<&ProviderRecord> = records
            .iter()
            .filter(|r| self.health.get(&r.name).older_than(PROBE_AFTER))
            .collect();
        futures_util::future::join_all(stale.into_iter().map(|r| self.probe(r))).await;
        let status = self.supervisor.status();
        let mut out = vec![ProviderInfo {
            name: LOCAL.to_owned(),
            url: self.address.base_url(),
            local: true,
            has_token: false,
            version: status.version.clone().unwrap_or_default(),
            kind: ProviderKind::Ollama,
            state: if status.state.is_up() {
                ProviderState::Up
            } else {
                ProviderState::Down
            },
            last_error: if status.state.is_up() {
                String::new()
            } else {
                status.reason.clone()
            },
            checked_ms: crate::store::now_ms(),
            header_names: Vec::new(),
            timeout_seconds: 0,
        }];
        for record in records {
            out.push(self.info(record).await?);
        }
        Ok(out)
    }

    /// A stored provider as listed.
    async fn info(&self, record: ProviderRecord) -> Result<ProviderInfo> {
        let health = self.health.get(&record.name);
        Ok(ProviderInfo {
            has_token: self.secrets.get(&key_secret(&record.name)).await?.is_some(),
            name: record.name,
            url: record.url,
            local: false,
            version: record.version,
            kind: record.kind,
            state: health.state,
            last_error: health.last_error,
            checked_ms: health.checked_ms,
            header_names: record.header_names,
            timeout_seconds: record.timeout_seconds,
        })
    }

    /// Add a provider after checking that it answers with its kind's API
    /// and accepts the key. Nothing is saved when a check fails.
    pub async fn add_provider(&self, new: NewProvider) -> Result<ProviderInfo> {
        providers::validate_name(&new.name)?;
        let url = providers::validate_url(&new.url)?;
        for (name, value) in &new.headers {
            check_header(name, value)?;
        }
        self.check_name_is_free(&new.name).await?;
        let key = (!new.api_key.is_empty()).then(|| new.api_key.clone());
        let headers: Vec<(String, String)> = new
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let http = self.http.for_url(&url).await?;
        let version = match new.kind {
            ProviderKind::Ollama => {
                let api = OllamaApi::new(http, &url, key.clone()).with_headers(headers);
                let version = api
                    .version(CHECK_TIMEOUT)
                    .await
                    .map_err(|err| check_failed(&url, new.kind, ollama_check_error(err)))?;
                // A key an Ollama behind a proxy refuses shows on a real
                // call, not on /api/version, which proxies often let by.
                api.tags()
                    .await
                    .map_err(|err| check_failed(&url, new.kind, ollama_check_error(err)))?;
                version
            }
            ProviderKind::OpenAi => {
                let api = OpenAiApi::new(http, &url, key.clone(), headers, CHECK_TIMEOUT);
                api.models()
                    .await
                    .map_err(|err| check_failed(&url, new.kind, err))?;
                String::new()
            }
        };
        // Secrets first: a provider is never saved without its key.
        if let Some(key) = &key {
            self.secrets.set(&key_secret(&new.name), key).await?;
        }
        for (name, value) in &new.headers {
            self.secrets
                .set(&header_secret(&new.name, name), value)
                .await?;
        }
        let record = ProviderRecord {
            name: new.name.clone(),
            url: url.clone(),
            kind: new.kind,
            version,
            header_names: new.headers.keys().cloned().collect(),
            timeout_seconds: new.timeout_seconds,
        };
        if let Err(err) = self.providers.add(record.clone()).await {
            // Not saved (a name taken meanwhile): its secrets go too,
            // unless they belong to the provider already of that name.
            if err.kind() != ErrorKind::AlreadyExists {
                let _ = self.secrets.remove_prefix(&secrets_prefix(&new.name)).await;
            }
            return Err(err);
        }
        tracing::info!(name = %new.name, url = %url, kind = new.kind.name(), "provider added");
        self.health.set(
            &Subject {
                name: record.name.clone(),
                url: record.url.clone(),
                kind: record.kind,
            },
            ProviderState::Up,
            String::new(),
        );
        self.bus.publish(OllamaEvent::ProvidersChanged {
            name: new.name.clone(),
            removed: false,
        });
        self.info(record).await
    }

    /// ALREADY_EXISTS for a name in use, PROVIDER_NAME_RESERVED for one that
    /// would make `name/...` model strings ambiguous.
    async fn check_name_is_free(&self, name: &str) -> Result<()> {
        if self.providers.get(name).await.is_ok() {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a provider named {name:?} already exists"),
            ));
        }
        // The models every provider that answers has now: a name that is
        // the first segment of one of them is refused.
        let models = self.list_all_models().await.unwrap_or_default();
        let mut by_provider: Vec<(String, bool, Vec<&str>)> = Vec::new();
        for model in &models {
            match by_provider.iter_mut().find(|(p, ..)| *p == model.provider) {
                Some((_, _, names)) => names.push(&model.name),
                None => by_provider.push((
                    model.provider.clone(),
                    model.provider_kind == ProviderKind::Ollama,
                    vec![&model.name],
                )),
            }
        }
        let catalogs: Vec<Catalog<'_>> = by_provider
            .iter()
            .map(|(provider, ollama, names)| Catalog {
                provider,
                ollama: *ollama,
                models: names.clone(),
            })
            .collect();
        if let Some(why) = model_route::name_collision(name, &catalogs) {
            return Err(
                Error::invalid_argument("name", why).with_reason(Reason::ProviderNameReserved)
            );
        }
        Ok(())
    }

    /// Remove a provider and its secrets.
    pub async fn remove_provider(&self, name: &str) -> Result<()> {
        self.providers.remove(name).await?;
        self.secrets.remove_prefix(&secrets_prefix(name)).await?;
        self.health.forget(name);
        tracing::info!(name, "provider removed");
        self.bus.publish(OllamaEvent::ProvidersChanged {
            name: name.to_owned(),
            removed: true,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_and_values_are_checked() {
        assert!(check_header("OpenAI-Organization", "org-1").is_ok());
        assert!(check_header("bad name", "x").is_err());
        assert!(check_header("X-Ok", "line\nbreak").is_err());
        assert!(check_header("Authorization", "Bearer x").is_err());
    }

    #[test]
    fn a_failed_check_names_the_url_and_what_happened() {
        let err = check_failed(
            "http://box:1234/v1",
            ProviderKind::OpenAi,
            OpenAiError::WrongApi("HTML".into()),
        );
        assert_eq!(err.reason(), Some(Reason::ProviderWrongApi));
        assert!(err.message().contains("http://box:1234/v1"), "{err}");
        assert!(err.message().contains("nothing was saved"), "{err}");
        let err = check_failed(
            "http://x",
            ProviderKind::Ollama,
            ollama_check_error(ApiError::Ollama {
                status: 401,
                message: "unauthorized".into(),
            }),
        );
        assert_eq!(err.reason(), Some(Reason::ProviderUnauthorized));
    }
}
