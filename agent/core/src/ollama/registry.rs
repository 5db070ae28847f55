//! The model registry (registry.ollama.ai by default), asked for a model's
//! manifest to learn its download size before it is pulled, so the fit
//! check can warn before a byte is downloaded.

use std::time::Duration;

use serde::Deserialize;

use crate::reason::Reason;
use crate::{
    error::{Error, ErrorKind, Result},
    ollama::names::ModelName,
};

#[derive(Debug, Deserialize)]
struct Blob {
    #[serde(default)]
    size: u64,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: Option<Blob>,
    #[serde(default)]
    layers: Vec<Blob>,
}

const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Download size of `name` in bytes, from its manifest.
pub async fn download_size(
    clients: &super::HttpClients,
    registry: &str,
    name: &ModelName,
) -> Result<u64> {
    let base = match name.host() {
        Some(host) => format!("https://{host}"),
        None => registry.trim_end_matches('/').to_owned(),
    };
    let http = clients.for_url(&base).await?;
    let (namespace, model, tag) = name.registry_path();
    let url = format!("{base}/v2/{namespace}/{model}/manifests/{tag}");
    let response = http
        .get(&url)
        .header(reqwest::header::ACCEPT, MANIFEST_TYPE)
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map_err(|err| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot reach the model registry at {base} to look up {name}: {err}"),
            )
        })?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(
            Error::not_found(format!("{name} does not exist in the registry at {base}"))
                .with_reason(Reason::ModelNotInRegistry),
        );
    }
    if !response.status().is_success() {
        return Err(Error::new(
            ErrorKind::Unavailable,
            format!(
                "the registry at {base} answered HTTP {} for {name}",
                response.status()
            ),
        ));
    }
    let manifest: Manifest = response.json().await.map_err(|err| {
        Error::new(
            ErrorKind::Unavailable,
            format!("the registry's manifest for {name} is unreadable: {err}"),
        )
    })?;
    Ok(manifest.config.map_or(0, |c| c.size) + manifest.layers.iter().map(|l| l.size).sum::<u64>())
}
