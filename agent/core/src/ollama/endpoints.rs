//! The endpoints a request can go to: the supervised local server
//! ("local") and the stored providers. Picking one for a request, listing
//! them, adding one (after checking that it answers) and removing one.

use std::time::Duration;

use super::{
    Ollama,
    api::OllamaApi,
    providers::{self, LOCAL, ProviderRecord},
};
use crate::reason::Reason;
use crate::{
    error::{Error, ErrorKind, Result},
    ollama::OllamaEvent,
};

/// A provider as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderInfo {
    /// Name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// The supervised local server?
    pub local: bool,
    /// Sends a token?
    pub has_token: bool,
    /// Version last seen.
    pub version: String,
}

/// An endpoint to send a request to.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) name: String,
    pub(super) api: OllamaApi,
    pub(super) local: bool,
}

impl Ollama {
    /// Where a request for `provider` goes: "" and "local" mean the local
    /// server, which must be up; any other name a stored provider.
    pub(super) async fn endpoint(&self, provider: &str) -> Result<Endpoint> {
        if provider.is_empty() || provider == LOCAL {
            let status = self.supervisor.status();
            if !status.state.is_up() {
                return Err(self.server_down(&status));
            }
            return Ok(Endpoint {
                name: LOCAL.to_owned(),
                api: self.local.clone(),
                local: true,
            });
        }
        let record = self.providers.get(provider).await?;
        Ok(Endpoint {
            name: record.name,
            api: OllamaApi::new(
                self.http.for_url(&record.url).await?,
                &record.url,
                record.token,
            ),
            local: false,
        })
    }

    /// "local" and the stored providers.
    pub async fn list_providers(&self) -> Result<Vec<ProviderInfo>> {
        let status = self.supervisor.status();
        let mut out = vec![ProviderInfo {
            name: LOCAL.to_owned(),
            url: self.address.base_url(),
            local: true,
            has_token: false,
            version: status.version.unwrap_or_default(),
        }];
        out.extend(
            self.providers
                .list()
                .await?
                .into_iter()
                .map(|p| ProviderInfo {
                    has_token: p.token.is_some(),
                    name: p.name,
                    url: p.url,
                    local: false,
                    version: p.version,
                }),
        );
        Ok(out)
    }

    /// Add a provider after checking that it answers.
    pub async fn add_provider(&self, name: &str, url: &str, token: &str) -> Result<ProviderInfo> {
        providers::validate_name(name)?;
        let url = providers::validate_url(url)?;
        let token = (!token.is_empty()).then(|| token.to_owned());
        let api = OllamaApi::new(self.http.for_url(&url).await?, &url, token.clone());
        let version = api.version(Duration::from_secs(10)).await.map_err(|err| {
            Error::new(
                ErrorKind::Unavailable,
                format!("{url} does not answer like an Ollama server ({err}); nothing was saved"),
            )
            .with_reason(Reason::ProviderUnreachable)
        })?;
        self.providers
            .add(ProviderRecord {
                name: name.to_owned(),
                url: url.clone(),
                token: token.clone(),
                version: version.clone(),
            })
            .await?;
        tracing::info!(name, url = %url, "provider added");
        self.bus.publish(OllamaEvent::ProvidersChanged {
            name: name.to_owned(),
            removed: false,
        });
        Ok(ProviderInfo {
            name: name.to_owned(),
            url,
            local: false,
            has_token: token.is_some(),
            version,
        })
    }

    /// Remove a provider.
    pub async fn remove_provider(&self, name: &str) -> Result<()> {
        self.providers.remove(name).await?;
        tracing::info!(name, "provider removed");
        self.bus.publish(OllamaEvent::ProvidersChanged {
            name: name.to_owned(),
            removed: true,
        });
        Ok(())
    }
}
