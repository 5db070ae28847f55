//! The registry's manifest endpoint, `GET|HEAD
//! /v2/<namespace>/<model>/manifests/<tag>`, served from the catalog so the
//! same fake process can stand in for registry.ollama.ai as well as for the
//! Ollama server (this endpoint is not part of Ollama's own API). OmniPanel
//! reads it to learn a model's download size before pulling.
//!
//! The manifest lists exactly the blobs a pull of the model reports, with
//! the same digests and sizes, so `config.size` plus every `layers[].size`
//! equals the bytes a pull downloads. The `Docker-Content-Digest` is the
//! manifest digest `/api/tags` shows; like every digest of the fake it is
//! not a real SHA-256 of the body.

use axum::{
    extract::{Path, rejection::PathRejection},
    http::{HeaderName, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{
    catalog::{self, CatalogModel, Layer, MEDIA_CONFIG},
    names::DEFAULT_HOST,
    server::{error_reply, json_reply},
};

/// The route, in axum's syntax.
pub const ROUTE: &str = "/v2/{namespace}/{model}/manifests/{tag}";
/// Docker's image manifest v2 schema 2, which registry.ollama.ai serves.
pub const MEDIA_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");

/// One blob reference in a manifest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: &'static str,
    pub digest: String,
    pub size: u64,
}

impl From<&Layer> for Descriptor {
    fn from(layer: &Layer) -> Self {
        Self {
            media_type: layer.media_type,
            digest: layer.digest.clone(),
            size: layer.size,
        }
    }
}

/// The manifest body, fields in the registry's order.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub media_type: &'static str,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The manifest of a catalog model: its config blob apart, every other blob
/// in pull order. `None` only if the catalog entry had no config blob,
/// which the catalog never builds (a unit test holds it to that).
pub fn manifest(model: &CatalogModel) -> Option<Manifest> {
    let config = model.layers.iter().find(|l| l.media_type == MEDIA_CONFIG)?;
    Some(Manifest {
        schema_version: 2,
        media_type: MEDIA_MANIFEST,
        config: config.into(),
        layers: model
            .layers
            .iter()
            .filter(|l| l.media_type != MEDIA_CONFIG)
            .map(Descriptor::from)
            .collect(),
    })
}

/// The catalog model a manifest path names. The segments are compared
/// with the catalog's lookup keys directly rather than parsed as a model
/// name, so that a segment holding `@`, `:` or `/` cannot be read as a
/// digest or tag separator and match some other model.
fn lookup(namespace: &str, model: &str, tag: &str) -> Option<&'static CatalogModel> {
    // Keys are lower-cased: the registry, like the rest of the fake,
    // matches names case-insensitively.
    let key = format!("{DEFAULT_HOST}/{namespace}/{model}:{tag}").to_ascii_lowercase();
    catalog::all().iter().find(|m| m.key() == key)
}

#[derive(Serialize)]
struct RegistryErrors<'a> {
    errors: [RegistryError<'a>; 1],
}

#[derive(Serialize)]
struct RegistryError<'a> {
    code: &'static str,
    message: &'static str,
    detail: TagDetail<'a>,
}

#[derive(Serialize)]
struct TagDetail<'a> {
    #[serde(rename = "Tag")]
    tag: &'a str,
}

/// The registry's 404 for a manifest it does not have.
fn manifest_unknown(tag: &str) -> Response {
    json_reply(
        StatusCode::NOT_FOUND,
        &RegistryErrors {
            errors: [RegistryError {
                code: "MANIFEST_UNKNOWN",
                message: "manifest unknown",
                detail: TagDetail { tag },
            }],
        },
    )
}

/// `GET` and `HEAD` (axum answers `HEAD` with this `GET` handler and drops
/// the body, keeping the headers).
pub async fn manifest_endpoint(
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    // A segment that does not decode (bad percent-encoding) names no
    // model; the registry says so rather than axum's plain-text 400.
    let Ok(Path((namespace, model, tag))) = path else {
        return manifest_unknown("");
    };
    let Some(model) = lookup(&namespace, &model, &tag) else {
        return manifest_unknown(&tag);
    };
    let Some(manifest) = manifest(model) else {
        return error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("catalog model {} has no config blob", model.name()),
        );
    };
    let body = match serde_json::to_vec(&manifest) {
        Ok(body) => body,
        Err(err) => {
            return error_reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("could not encode manifest: {err}"),
            );
        }
    };
    // Content-Length is set outright so a `HEAD`, whose body axum removes,
    // still tells the client the manifest's size.
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, MEDIA_MANIFEST.to_string()),
            (header::CONTENT_LENGTH, body.len().to_string()),
            (
                DOCKER_CONTENT_DIGEST,
                format!("sha256:{}", model.manifest_digest),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::Arc};

    use tokio::sync::mpsc;

    use super::*;
    use crate::{
        catalog::{MEDIA_LICENSE, MEDIA_MODEL, MEDIA_PARAMS, MEDIA_SYSTEM, MEDIA_TEMPLATE},
        pull::{Line, PullConfig, Puller},
        stats::Stats,
        store::Store,
    };

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// What a client reading the manifest expects to download.
    fn manifest_bytes(manifest: &Manifest) -> u64 {
        manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }

    /// Pulls `model` into a fresh store, as fast as the simulation allows,
    /// and returns each layer's `total` as the pull reported it.
    async fn pulled_totals(model: &CatalogModel) -> Result<BTreeMap<String, u64>, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = Arc::new(Store::open(dir.path()).map_err(|e| e.to_string())?);
        let puller = Puller::new(
            store,
            Arc::new(Stats::default()),
            PullConfig {
                // Even the 42 GB model finishes at once.
                bytes_per_sec: u64::MAX,
                fail_at_percent: None,
                fail_once: false,
            },
        );
        let (tx, mut rx) = mpsc::channel(16);
        let collect = async {
            let mut totals = BTreeMap::new();
            let mut ended = None;
            while let Some(line) = rx.recv().await {
                match line {
                    Line::Progress(p) if !p.digest.is_empty() => {
                        totals.insert(p.digest, p.total);
                    }
                    Line::Progress(p) => ended = Some(p.status),
                    Line::Error(e) => return Err(e),
                }
            }
            match ended.as_deref() {
                Some("success") => Ok(totals),
                other => Err(format!("pull ended with {other:?}")),
            }
        };
        let run = async move { puller.run(model.key(), Some(model), &tx).await };
        let ((), totals) = tokio::join!(run, collect);
        totals
    }

    #[tokio::test]
    async fn manifest_sizes_add_up_to_the_pull() -> TestResult {
        for model in catalog::all() {
            let manifest = manifest(model).ok_or("no config blob")?;
            let totals = pulled_totals(model).await?;
            let pulled: u64 = totals.values().sum();
            assert_eq!(manifest_bytes(&manifest), pulled, "{}", model.name());
            assert_eq!(
                manifest_bytes(&manifest),
                model.total_size(),
                "{}",
                model.name()
            );
            // The same blobs, not just the same sum.
            let listed: BTreeMap<String, u64> = std::iter::once(&manifest.config)
                .chain(&manifest.layers)
                .map(|d| (d.digest.clone(), d.size))
                .collect();
            assert_eq!(listed, totals, "{}", model.name());
        }
        Ok(())
    }

    #[test]
    fn manifest_has_the_registry_shape() -> TestResult {
        for model in catalog::all() {
            let manifest = manifest(model).ok_or("no config blob")?;
            assert_eq!(manifest.config.media_type, MEDIA_CONFIG);
            assert_eq!(manifest.layers.len() + 1, model.layers.len());
            assert_eq!(
                manifest.layers.first().map(|l| l.media_type),
                Some(MEDIA_MODEL)
            );
            let known = [
                MEDIA_MODEL,
                MEDIA_TEMPLATE,
                MEDIA_SYSTEM,
                MEDIA_LICENSE,
                MEDIA_PARAMS,
            ];
            assert!(
                manifest
                    .layers
                    .iter()
                    .all(|l| known.contains(&l.media_type))
            );
        }
        let tiny = catalog::find("tinyllama").ok_or("tinyllama missing")?;
        let json = serde_json::to_value(manifest(tiny).ok_or("no config blob")?)?;
        assert_eq!(json["schemaVersion"], 2);
        assert_eq!(json["mediaType"], MEDIA_MANIFEST);
        assert_eq!(
            json["config"]["mediaType"],
            "application/vnd.docker.container.image.v1+json"
        );
        assert_eq!(json["layers"][0]["mediaType"], MEDIA_MODEL);
        assert!(json["layers"][0]["digest"].as_str().is_some_and(|d| {
            d.strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        }));
        assert!(json["layers"][0]["size"].is_u64());
        Ok(())
    }

    #[test]
    fn paths_match_case_insensitively_and_exactly() {
        let name = |m: Option<&CatalogModel>| m.map(CatalogModel::name);
        assert_eq!(
            name(lookup("library", "tinyllama", "latest")),
            Some("tinyllama:latest")
        );
        assert_eq!(
            name(lookup("Library", "TinyLlama", "LATEST")),
            Some("tinyllama:latest")
        );
        assert_eq!(
            name(lookup("library", "qwen2.5", "0.5b")),
            Some("qwen2.5:0.5b")
        );
        for (namespace, model, tag) in [
            ("library", "tinyllama", "nope"),
            ("someone", "tinyllama", "latest"),
            ("library", "nonexistent", "latest"),
            ("library", "tinyllama", "latest@sha256:00"),
            ("library", "tinyllama", ""),
        ] {
            assert_eq!(name(lookup(namespace, model, tag)), None, "{tag}");
        }
    }
}
