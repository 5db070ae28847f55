//! Models on an endpoint: listing, showing, deleting, loading into and
//! unloading from memory, and the default model used when a request names
//! none (kept in state.db).

use super::{
    Ollama,
    api::{self, ShowResponse},
    endpoints::Endpoint,
    inference::keep_alive_value,
    names::{self, ModelName},
    providers::LOCAL,
};
use crate::reason::Reason;
use crate::{
    error::{Error, Result},
    ollama::OllamaEvent,
};

/// An installed model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    /// Name with tag.
    pub name: String,
    /// Bytes on disk.
    pub size: u64,
    /// Digest.
    pub digest: String,
    /// Modification time, ms since the epoch.
    pub modified_ms: i64,
    /// Details.
    pub details: api::Details,
    /// Provider.
    pub provider: String,
    /// Whether it is the default model.
    pub is_default: bool,
}

/// A model's full description.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDetails {
    /// Summary.
    pub info: ModelInfo,
    /// Raw answer of /api/show.
    pub show: ShowResponse,
}

/// A loaded model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedModel {
    /// Name.
    pub name: String,
    /// Bytes in memory.
    pub size: u64,
    /// Bytes in VRAM.
    pub size_vram: u64,
    /// Expiry, ms since the epoch.
    pub expires_ms: i64,
    /// Digest.
    pub digest: String,
    /// Provider.
    pub provider: String,
}

const DEFAULT_MODEL_KEY: &str = "default_model";

impl Ollama {
    /// The default model, "" when none is set.
    pub async fn default_model(&self) -> Result<String> {
        Ok(self
            .store
            .meta(DEFAULT_MODEL_KEY)
            .await?
            .unwrap_or_default())
    }

    /// Resolve the model of a request: the given one, else the default.
    pub(super) async fn resolve_model(&self, model: &str) -> Result<ModelName> {
        if model.is_empty() {
            let default = self.default_model().await?;
            if default.is_empty() {
                return Err(Error::invalid_argument(
                    "model",
                    "no model given and no default model set; set one with `omnipanel models default NAME`",
                ));
            }
            return ModelName::parse("model", &default);
        }
        ModelName::parse("model", model)
    }

    /// Installed models, newest first.
    pub async fn list_models(&self, provider: &str) -> Result<Vec<ModelInfo>> {
        let endpoint = self.endpoint(provider).await?;
        let tags = endpoint
            .api
            .tags()
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        let default = self.default_model().await.unwrap_or_default();
        let mut models: Vec<ModelInfo> = tags
            .into_iter()
            .map(|tag| ModelInfo {
                is_default: endpoint.local
                    && !default.is_empty()
                    && names::same_model(&tag.name, &default),
                modified_ms: api::timestamp_ms(&tag.modified_at),
                name: tag.name,
                size: tag.size,
                digest: tag.digest,
                details: tag.details,
                provider: endpoint.name.clone(),
            })
            .collect();
        models.sort_by(|a, b| {
            b.modified_ms
                .cmp(&a.modified_ms)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(models)
    }

    /// One installed model, or NOT_FOUND.
    pub(super) async fn installed(
        &self,
        endpoint: &Endpoint,
        name: &ModelName,
    ) -> Result<Option<ModelInfo>> {
        let models = self.list_models(&endpoint.name).await?;
        Ok(models
            .into_iter()
            .find(|m| names::same_model(&m.name, &name.display())))
    }

    /// Details of a model.
    pub async fn show_model(&self, provider: &str, model: &str) -> Result<ModelDetails> {
        let name = ModelName::parse("model", model)?;
        let endpoint = self.endpoint(provider).await?;
        let show = endpoint
            .api
            .show(&name.display())
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        let info = self
            .installed(&endpoint, &name)
            .await?
            .unwrap_or(ModelInfo {
                name: name.display(),
                size: 0,
                digest: String::new(),
                modified_ms: api::timestamp_ms(&show.modified_at),
                details: show.details.clone(),
                provider: endpoint.name.clone(),
                is_default: false,
            });
        Ok(ModelDetails { info, show })
    }

    /// Delete a model.
    pub async fn delete_model(&self, provider: &str, model: &str) -> Result<()> {
        let name = ModelName::parse("model", model)?;
        let endpoint = self.endpoint(provider).await?;
        endpoint
            .api
            .delete(&name.display())
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        tracing::info!(provider = %endpoint.name, model = %name, "model deleted");
        self.bus.publish(OllamaEvent::ModelsChanged {
            provider: endpoint.name.clone(),
            model: name.display(),
            change: "deleted".to_owned(),
        });
        Ok(())
    }

    /// Loaded models.
    pub async fn running_models(&self, provider: &str) -> Result<Vec<LoadedModel>> {
        let endpoint = self.endpoint(provider).await?;
        let running = endpoint
            .api
            .ps()
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        Ok(running
            .into_iter()
            .map(|m| LoadedModel {
                expires_ms: api::timestamp_ms(&m.expires_at),
                name: m.name,
                size: m.size,
                size_vram: m.size_vram,
                digest: m.digest,
                provider: endpoint.name.clone(),
            })
            .collect())
    }

    /// Load a model (the default one when `model` is empty).
    pub async fn load_model(
        &self,
        provider: &str,
        model: &str,
        keep_alive: &str,
    ) -> Result<String> {
        let name = self.resolve_model(model).await?;
        let mut body =
            serde_json::json!({ "model": name.display(), "prompt": "", "stream": false });
        if let Some(keep_alive) = keep_alive_value(keep_alive)? {
            body["keep_alive"] = keep_alive;
        }
        let endpoint = self.endpoint(provider).await?;
        endpoint
            .api
            .generate_once(&body)
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        self.bus.publish(OllamaEvent::ModelsChanged {
            provider: endpoint.name.clone(),
            model: name.display(),
            change: "loaded".to_owned(),
        });
        Ok(name.display())
    }

    /// Unload a model.
    pub async fn unload_model(&self, provider: &str, model: &str) -> Result<()> {
        let name = ModelName::parse("model", model)?;
        let endpoint = self.endpoint(provider).await?;
        let body = serde_json::json!({ "model": name.display(), "keep_alive": 0, "stream": false });
        endpoint
            .api
            .generate_once(&body)
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        self.bus.publish(OllamaEvent::ModelsChanged {
            provider: endpoint.name.clone(),
            model: name.display(),
            change: "unloaded".to_owned(),
        });
        Ok(())
    }

    /// Set (or clear, with "") the default model.
    pub async fn set_default_model(&self, model: &str) -> Result<String> {
        let value = if model.is_empty() {
            String::new()
        } else {
            let name = ModelName::parse("model", model)?;
            if self.supervisor.status().state.is_up() {
                let endpoint = self.endpoint(LOCAL).await?;
                if self.installed(&endpoint, &name).await?.is_none() {
                    return Err(Error::not_found(format!(
                        "{name} is not installed; pull it first with `omnipanel models pull {name}`"
                    ))
                    .with_reason(Reason::ModelNotFound));
                }
            }
            name.display()
        };
        self.store
            .set_meta(DEFAULT_MODEL_KEY, value.clone())
            .await?;
        tracing::info!(model = %value, "default model changed");
        self.bus.publish(OllamaEvent::DefaultModelChanged {
            model: value.clone(),
        });
        Ok(value)
    }
}
