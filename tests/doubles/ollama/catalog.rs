//! The fake's stand-in for registry.ollama.ai: a fixed set of pullable
//! models with realistic names, layer media types, sizes and
//! `sha256:<64 hex>` digests. Nothing is downloaded; sizes only drive the
//! simulated progress, and the text layers (template, license, params) are
//! sized from their real text so `/api/show` and the sizes agree.
//!
//! Digests are not real SHA-256 values (this package has no hash crate);
//! they are derived deterministically from the layer content so they are
//! stable across runs and distinct per layer.

use std::{path::Path, sync::LazyLock};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::names::{self, ModelName};

pub const MEDIA_MODEL: &str = "application/vnd.ollama.image.model";
pub const MEDIA_TEMPLATE: &str = "application/vnd.ollama.image.template";
pub const MEDIA_SYSTEM: &str = "application/vnd.ollama.image.system";
pub const MEDIA_LICENSE: &str = "application/vnd.ollama.image.license";
pub const MEDIA_PARAMS: &str = "application/vnd.ollama.image.params";
pub const MEDIA_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// One blob of a model, pulled in order.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: &'static str,
    /// `sha256:<64 hex>`, as on the wire.
    pub digest: String,
    pub size: u64,
}

impl Layer {
    /// The 12 hex digits Ollama shows in `pulling <short>` statuses.
    pub fn short(&self) -> &str {
        let hex = self.digest.strip_prefix("sha256:").unwrap_or(&self.digest);
        hex.get(..12).unwrap_or(hex)
    }
}

/// The hand-written facts about one model.
#[derive(Debug)]
pub struct Spec {
    /// `model:tag`, the display name.
    pub name: &'static str,
    pub family: &'static str,
    pub parameter_size: &'static str,
    pub quantization_level: &'static str,
    pub file_type: u32,
    pub parameter_count: u64,
    pub context_length: u64,
    pub embedding_length: u64,
    pub block_count: u64,
    pub model_bytes: u64,
    pub config_bytes: u64,
    pub template: &'static str,
    pub system: &'static str,
    pub license: &'static str,
    /// Modelfile `PARAMETER`s; `stop` values are strings, the rest numbers.
    pub params: &'static [(&'static str, &'static str)],
    pub tools: bool,
}

/// A pullable model: its spec plus the derived layers.
#[derive(Debug)]
pub struct CatalogModel {
    pub spec: &'static Spec,
    /// Model, template, [system,] license, params, then the config blob,
    /// which Ollama pulls last.
    pub layers: Vec<Layer>,
    /// Manifest digest, bare hex, as `/api/tags` and `/api/ps` show it.
    pub manifest_digest: String,
    key: String,
}

/// The `details` object of `/api/tags`, `/api/show` and `/api/ps`.
#[derive(Debug, Clone, Serialize)]
pub struct Details {
    pub parent_model: &'static str,
    pub format: &'static str,
    pub family: &'static str,
    pub families: Vec<&'static str>,
    pub parameter_size: &'static str,
    pub quantization_level: &'static str,
}

impl CatalogModel {
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// Lookup key (see [`names::ModelName::key`]).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Sum of all blobs, which is what `/api/tags` reports as `size`.
    pub fn total_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    pub fn details(&self) -> Details {
        Details {
            parent_model: "",
            format: "gguf",
            family: self.spec.family,
            families: vec![self.spec.family],
            parameter_size: self.spec.parameter_size,
            quantization_level: self.spec.quantization_level,
        }
    }

    /// GGUF metadata as `/api/show` returns it in `model_info`.
    pub fn model_info(&self) -> Map<String, Value> {
        let s = self.spec;
        let arch = s.family;
        let mut info = Map::new();
        info.insert("general.architecture".into(), Value::from(arch));
        info.insert("general.file_type".into(), Value::from(s.file_type));
        info.insert(
            "general.parameter_count".into(),
            Value::from(s.parameter_count),
        );
        info.insert("general.quantization_version".into(), Value::from(2));
        info.insert(
            format!("{arch}.context_length"),
            Value::from(s.context_length),
        );
        info.insert(
            format!("{arch}.embedding_length"),
            Value::from(s.embedding_length),
        );
        info.insert(format!("{arch}.block_count"), Value::from(s.block_count));
        info.insert("tokenizer.ggml.model".into(), Value::from("gpt2"));
        info
    }

    /// `/api/show`'s `parameters`: one `name value` line per parameter,
    /// the name padded to 30 columns as Ollama prints it.
    pub fn parameters_text(&self) -> String {
        self.spec
            .params
            .iter()
            .map(|(k, v)| format!("{k:<30} {}", param_value(k, v)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The Modelfile `ollama show --modelfile` would print.
    pub fn modelfile(&self, models_dir: &Path) -> String {
        let s = self.spec;
        // Blobs are stored as `sha256-<hex>` files in Ollama's layout.
        let blob = self
            .layers
            .iter()
            .find(|l| l.media_type == MEDIA_MODEL)
            .map(|l| l.digest.replace(':', "-"))
            .unwrap_or_default();
        let mut out = format!(
            "# Modelfile generated by \"ollama show\"\n\
             # To build a new Modelfile based on this one, replace the FROM line with:\n\
             # FROM {}\n\nFROM {}\nTEMPLATE \"\"\"{}\"\"\"\n",
            s.name,
            models_dir.join("blobs").join(blob).display(),
            s.template
        );
        if !s.system.is_empty() {
            out.push_str(&format!("SYSTEM \"\"\"{}\"\"\"\n", s.system));
        }
        for (k, v) in s.params {
            out.push_str(&format!("PARAMETER {k} {}\n", param_value(k, v)));
        }
        out.push_str(&format!("LICENSE \"\"\"{}\"\"\"\n", s.license));
        out
    }

    pub fn capabilities(&self) -> Vec<&'static str> {
        if self.spec.tools {
            vec!["completion", "tools"]
        } else {
            vec!["completion"]
        }
    }
}

fn param_value(key: &str, value: &str) -> String {
    if key == "stop" {
        format!("{value:?}")
    } else {
        value.to_string()
    }
}

/// The params blob is JSON, as in Ollama; its length is the layer size.
fn params_json(params: &[(&str, &str)]) -> String {
    let mut map = Map::new();
    for (k, v) in params {
        if *k == "stop" {
            let entry = map.entry(*k).or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.push(Value::from(*v));
            }
        } else {
            let number = match (v.parse::<i64>(), v.parse::<f64>()) {
                (Ok(n), _) => Value::from(n),
                (_, Ok(n)) => Value::from(n),
                _ => Value::from(*v),
            };
            map.insert((*k).to_string(), number);
        }
    }
    Value::Object(map).to_string()
}

/// A stable, well-formed stand-in for a SHA-256 digest of `seed`.
fn fake_sha256(seed: &str) -> String {
    let mut state = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut hex = String::with_capacity(64);
    for _ in 0..4 {
        // splitmix64: spreads the FNV hash over 256 bits.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        hex.push_str(&format!("{:016x}", z ^ (z >> 31)));
    }
    hex
}

fn layer(media_type: &'static str, seed: &str, size: u64) -> Layer {
    Layer {
        media_type,
        digest: format!("sha256:{}", fake_sha256(seed)),
        size,
    }
}

fn build(spec: &'static Spec) -> CatalogModel {
    let mut layers = vec![layer(
        MEDIA_MODEL,
        &format!("{} weights", spec.name),
        spec.model_bytes,
    )];
    let mut text = |media, body: &str| layers.push(layer(media, body, body.len() as u64));
    text(MEDIA_TEMPLATE, spec.template);
    if !spec.system.is_empty() {
        text(MEDIA_SYSTEM, spec.system);
    }
    text(MEDIA_LICENSE, spec.license);
    text(MEDIA_PARAMS, &params_json(spec.params));
    layers.push(layer(
        MEDIA_CONFIG,
        &format!("{} config", spec.name),
        spec.config_bytes,
    ));
    let manifest_seed: String = layers.iter().map(|l| l.digest.as_str()).collect();
    let key = names::key_of(spec.name).unwrap_or_else(|| spec.name.to_string());
    CatalogModel {
        spec,
        manifest_digest: fake_sha256(&manifest_seed),
        layers,
        key,
    }
}

const LLAMA3_TEMPLATE: &str = "<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>";
const LLAMA3_STOPS: &[(&str, &str)] = &[
    ("stop", "<|start_header_id|>"),
    ("stop", "<|end_header_id|>"),
    ("stop", "<|eot_id|>"),
];

static SPECS: &[Spec] = &[
    Spec {
        name: "tinyllama:latest",
        family: "llama",
        parameter_size: "1B",
        quantization_level: "Q4_0",
        file_type: 2,
        parameter_count: 1_100_048_384,
        context_length: 2048,
        embedding_length: 2048,
        block_count: 22,
        model_bytes: 637_699_456,
        config_bytes: 483,
        template: "<|system|>\n{{ .System }}</s>\n<|user|>\n{{ .Prompt }}</s>\n<|assistant|>\n",
        system: "You are a helpful AI assistant.",
        license: "MIT License\n\nCopyright (c) TinyLlama authors. Permission is hereby granted, free of charge, to any person obtaining a copy of this software.",
        params: &[
            ("stop", "<|system|>"),
            ("stop", "<|user|>"),
            ("stop", "<|assistant|>"),
            ("stop", "</s>"),
        ],
        tools: false,
    },
    Spec {
        name: "qwen2.5:0.5b",
        family: "qwen2",
        parameter_size: "494.03M",
        quantization_level: "Q4_K_M",
        file_type: 15,
        parameter_count: 494_032_768,
        context_length: 32_768,
        embedding_length: 896,
        block_count: 24,
        model_bytes: 397_807_936,
        config_bytes: 488,
        template: "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n<|im_start|>assistant\n",
        system: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        license: "Apache License\nVersion 2.0, January 2004\nhttp://www.apache.org/licenses/",
        params: &[
            ("stop", "<|im_start|>"),
            ("stop", "<|im_end|>"),
            ("temperature", "0.7"),
        ],
        tools: true,
    },
    Spec {
        name: "llama3.2:1b",
        family: "llama",
        parameter_size: "1.2B",
        quantization_level: "Q8_0",
        file_type: 7,
        parameter_count: 1_235_814_432,
        context_length: 131_072,
        embedding_length: 2048,
        block_count: 16,
        model_bytes: 1_321_082_688,
        config_bytes: 485,
        template: LLAMA3_TEMPLATE,
        system: "",
        license: "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT\nLlama 3.2 Version Release Date: September 25, 2024",
        params: LLAMA3_STOPS,
        tools: true,
    },
    Spec {
        name: "llama3.1:70b",
        family: "llama",
        parameter_size: "70.6B",
        quantization_level: "Q4_K_M",
        file_type: 15,
        parameter_count: 70_553_706_496,
        context_length: 131_072,
        embedding_length: 8192,
        block_count: 80,
        model_bytes: 42_520_395_584,
        config_bytes: 487,
        template: LLAMA3_TEMPLATE,
        system: "",
        license: "LLAMA 3.1 COMMUNITY LICENSE AGREEMENT\nLlama 3.1 Version Release Date: July 23, 2024",
        params: LLAMA3_STOPS,
        tools: true,
    },
    Spec {
        name: "test-small:latest",
        family: "llama",
        parameter_size: "1.0M",
        quantization_level: "Q4_0",
        file_type: 2,
        parameter_count: 1_048_576,
        context_length: 2048,
        embedding_length: 64,
        block_count: 2,
        model_bytes: 4096,
        config_bytes: 412,
        template: "{{ .System }}\n{{ .Prompt }}\n",
        system: "",
        license: "Test fixture for fake-ollama; no rights reserved.",
        params: &[("num_ctx", "2048"), ("stop", "\n\n")],
        tools: false,
    },
];

static CATALOG: LazyLock<Vec<CatalogModel>> = LazyLock::new(|| SPECS.iter().map(build).collect());

/// Every pullable model.
pub fn all() -> &'static [CatalogModel] {
    &CATALOG
}

/// The catalog entry a parsed name refers to.
pub fn lookup(name: &ModelName) -> Option<&'static CatalogModel> {
    let key = name.key();
    all().iter().find(|m| m.key == key)
}

/// The catalog entry a raw name refers to, if the name is valid and known.
pub fn find(raw: &str) -> Option<&'static CatalogModel> {
    ModelName::parse(raw).and_then(|n| lookup(&n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_well_formed() {
        for model in all() {
            assert!(find(model.name()).is_some(), "{}", model.name());
            assert!(model.layers.len() >= 5);
            assert_eq!(model.layers[0].media_type, MEDIA_MODEL);
            for l in &model.layers {
                let hex = l.digest.strip_prefix("sha256:").unwrap_or_default();
                assert_eq!(hex.len(), 64);
                assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
                assert_eq!(l.short().len(), 12);
            }
            assert_eq!(model.manifest_digest.len(), 64);
        }
        let gb = |name: &str| find(name).map_or(0, |m| m.total_size() / 1_000_000);
        assert!((600..700).contains(&gb("tinyllama")));
        assert!((350..450).contains(&gb("qwen2.5:0.5b")));
        assert!((1200..1400).contains(&gb("llama3.2:1b")));
        assert!((39_000..44_000).contains(&gb("llama3.1:70b")));
        assert!(find("test-small").is_some_and(|m| m.total_size() < 10_000));
        assert!(find("registry.ollama.ai/library/tinyllama").is_some());
        assert!(find("nonexistent").is_none());
    }
}
