//! Models on an endpoint: listing, showing, deleting, loading into and
//! unloading from memory, and the default model used when a request names
//! none (kept in state.db).

use super::{
    Ollama,
    api::{self, ShowResponse},
    endpoints::{Backend, Endpoint},
    inference::keep_alive_value,
    names::{self, ModelName},
    providers::{LOCAL, ProviderKind},
};
use crate::reason::Reason;
use crate::{
    error::{Error, Result},
    model_route::{self, Route},
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
    /// The kind of the provider serving it.
    pub provider_kind: ProviderKind,
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

    /// The models a provider serves: installed models on Ollama (newest
    /// first), `/models` on an OpenAI server (in its order).
    pub async fn list_models(&self, provider: &str) -> Result<Vec<ModelInfo>> {
        let endpoint = self.endpoint(provider).await?;
        let default = self.default_model().await.unwrap_or_default();
        let api = match &endpoint.backend {
            Backend::Ollama(api) => api,
            Backend::OpenAi(api) => {
                let models = api
                    .models()
                    .await
                    .map_err(|err| self.openai_error(&endpoint, err))?;
                self.record_success(&endpoint);
                let qualified = |id: &str| format!("{}/{id}", endpoint.name);
                return Ok(models
                    .into_iter()
                    .map(|m| ModelInfo {
                        is_default: !default.is_empty() && default == qualified(&m.id),
                        name: m.id,
                        size: 0,
                        digest: String::new(),
                        modified_ms: m.created.saturating_mul(1000),
                        details: api::Details::default(),
                        provider: endpoint.name.clone(),
                        provider_kind: ProviderKind::OpenAi,
                    })
                    .collect());
            }
        };
        let tags = api
            .tags()
            .await
            .map_err(|err| self.api_error(&endpoint, err))?;
        self.record_success(&endpoint);
        let mut models: Vec<ModelInfo> = tags
            .into_iter()
            .map(|tag| ModelInfo {
                is_default: !default.is_empty()
                    && if endpoint.local {
                        names::same_model(&tag.name, &default)
                    } else {
                        default
                            .strip_prefix(&format!("{}/", endpoint.name))
                            .is_some_and(|rest| names::same_model(&tag.name, rest))
                    },
                modified_ms: api::timestamp_ms(&tag.modified_at),
                name: tag.name,
                size: tag.size,
                digest: tag.digest,
                details: tag.details,
                provider: endpoint.name.clone(),
                provider_kind: ProviderKind::Ollama,
            })
            .collect();
        models.sort_by(|a, b| {
            b.modified_ms
                .cmp(&a.modified_ms)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(models)
    }

    /// The models of every provider that answers, "local" first, then the
    /// stored providers in list order; a provider that fails is left out
    /// (its health says why).
    pub async fn list_all_models(&self) -> Result<Vec<ModelInfo>> {
        let mut names = Vec::new();
        if self.supervisor.status().state.is_up() {
            names.push(LOCAL.to_owned());
        }
        names.extend(
            self.provider_records()
                .await?
                .into_iter()
                .filter(|r| self.health.down_recently(&r.name).is_none())
                .map(|r| r.name),
        );
        let lists =
            futures_util::future::join_all(names.iter().map(|name| self.list_models(name))).await;
        let mut out = Vec::new();
        for (name, list) in names.iter().zip(lists) {
            match list {
                Ok(models) => out.extend(models),
                Err(err) => {
                    tracing::debug!(provider = %name, error = %err, "left out of the model list")
                }
            }
        }
        Ok(out)
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
            .ollama("show model details")?
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
                provider_kind: ProviderKind::Ollama,
            });
        Ok(ModelDetails { info, show })
    }

    /// Delete a model.
    pub async fn delete_model(&self, provider: &str, model: &str) -> Result<()> {
        let name = ModelName::parse("model", model)?;
        let endpoint = self.endpoint(provider).await?;
        endpoint
            .ollama("delete models")?
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
            .ollama("list running models")?
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
            .ollama("load models")?
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
            .ollama("unload models")?
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
        let records = self.provider_records().await?;
        let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
        let value = if model.is_empty() {
            String::new()
        } else if let Route::Provider {
            provider,
            model: rest,
        } = model_route::route(model, &names)
        {
            // A model of another provider ("lmstudio/qwen2.5-7b"): kept as
            // written, Ollama names with their tag; not checked against
            // the provider, which may be down now.
            let ollama = records
                .iter()
                .any(|r| r.name == provider && r.kind == ProviderKind::Ollama);
            if ollama {
                format!("{provider}/{}", ModelName::parse("model", &rest)?.display())
            } else {
                model.to_owned()
            }
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
