//! Which provider a single model string means, where a request carries
//! no separate provider (the gateway, the CLI): `lmstudio/qwen2.5-7b`
//! addresses the provider `lmstudio` when one of that name is configured;
//! any other string is a model name, looked for across providers, the
//! local Ollama first. Model names contain slashes of their own (Ollama's
//! `hf.co/org/repo:Q4_K_M`, vLLM's `org/model`), so a provider may not be
//! named like the first segment of a model name: [`name_collision`] is
//! what AddProvider checks. A token's allowed models are matched against
//! what a request resolved to here too ([`allowed`]). Pure, no I/O.

use crate::{
    error::{Error, Result},
    ollama::names::same_model,
};

/// The name of the supervised local Ollama server.
const LOCAL: &str = "local";

/// Namespaces of model names that are never provider names, whatever is
/// installed: registries Ollama pulls from.
const RESERVED: &[&str] = &["hf.co", "huggingface.co", "registry.ollama.ai", "library"];

/// What a model string addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A model on a named provider.
    Provider {
        /// The provider.
        provider: String,
        /// The model, as that provider names it.
        model: String,
    },
    /// A model name to look for across providers.
    Anywhere(String),
}

/// Read a model string against the configured provider names.
pub fn route(model: &str, providers: &[&str]) -> Route {
    if let Some((first, rest)) = model.split_once('/')
        && !rest.is_empty()
        && providers.contains(&first)
    {
        return Route::Provider {
            provider: first.to_owned(),
            model: rest.to_owned(),
        };
    }
    Route::Anywhere(model.to_owned())
}

/// The models one provider has, for finding a model by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog<'a> {
    /// Provider name.
    pub provider: &'a str,
    /// Whether it speaks Ollama's API (names compare with Ollama's rules:
    /// `llama3` is `llama3:latest`); else names compare exactly.
    pub ollama: bool,
    /// Its model names.
    pub models: Vec<&'a str>,
}

/// The provider that has `model`: the local server first, then the others
/// in the order given; `None` when none has it.
pub fn find<'a>(model: &str, catalogs: &[Catalog<'a>]) -> Option<&'a str> {
    let has = |catalog: &Catalog<'_>| {
        catalog.models.iter().any(|name| {
            if catalog.ollama {
                same_model(name, model)
            } else {
                *name == model
            }
        })
    };
    catalogs
        .iter()
        .filter(|catalog| catalog.provider == LOCAL)
        .chain(catalogs.iter().filter(|catalog| catalog.provider != LOCAL))
        .find(|catalog| has(catalog))
        .map(|catalog| catalog.provider)
}

/// Why `name` may not name a provider: it is (case-insensitively) a
/// registry namespace, or the first segment of a model some provider has,
/// so `name/...` would be ambiguous. `None` when it is free.
pub fn name_collision(name: &str, catalogs: &[Catalog<'_>]) -> Option<String> {
    if RESERVED
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(name))
    {
        return Some(format!(
            "{name:?} is a namespace of model names (e.g. {name}/org/model), so \"{name}/...\" would be ambiguous; choose another name"
        ));
    }
    catalogs.iter().find_map(|catalog| {
        catalog.models.iter().find_map(|model| {
            let (first, _) = model.split_once('/')?;
            first.eq_ignore_ascii_case(name).then(|| {
                format!(
                    "the provider {:?} has a model named {model:?}, so \"{name}/...\" would be ambiguous; choose another name",
                    catalog.provider
                )
            })
        })
    })
}

/// Whether a token whose allowed models are `entries` may use `model` on
/// `provider`, as a request resolved it. Empty entries allow every model.
/// An entry is "model" (on any provider) or "provider/model"; a missing
/// Ollama tag is `latest` (`llama3.2` is `llama3.2:latest`). Model ids may
/// hold slashes themselves (`org/model`, `hf.co/org/repo`), so an entry is
/// compared both whole and as provider plus model.
pub fn allowed(entries: &[String], provider: &str, model: &str) -> bool {
    entries.is_empty()
        || entries.iter().any(|entry| {
            same_tagged(entry, model)
                || entry
                    .split_once('/')
                    .is_some_and(|(p, m)| p == provider && same_tagged(m, model))
        })
}

/// Two names are equal once a missing tag is read as `latest`.
fn same_tagged(a: &str, b: &str) -> bool {
    let tagged = |name: &str| {
        let last = name.rsplit('/').next().unwrap_or(name);
        if last.contains(':') {
            name.to_owned()
        } else {
            format!("{name}:latest")
        }
    };
    a == b || tagged(a) == tagged(b)
}

/// Most entries in a token's allowed models.
const MAX_ALLOWED: usize = 100;

/// Check a token's allowed models as the owner typed them.
pub fn check_allowed(entries: &[String]) -> Result<()> {
    if entries.len() > MAX_ALLOWED {
        return Err(Error::invalid_argument(
            "allowed_models",
            format!("at most {MAX_ALLOWED} models"),
        ));
    }
    for entry in entries {
        if entry.is_empty()
            || entry.len() > 300
            || entry.chars().any(|c| c.is_whitespace() || c.is_control())
            || entry.starts_with('/')
            || entry.ends_with('/')
        {
            return Err(Error::invalid_argument(
                "allowed_models",
                format!("{entry:?} is not a model name; write \"model\" or \"provider/model\""),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogs() -> Vec<Catalog<'static>> {
        vec![
            Catalog {
                provider: "vllm",
                ollama: false,
                models: vec!["org/model-7b", "llama3"],
            },
            Catalog {
                provider: "local",
                ollama: true,
                models: vec!["llama3:latest", "hf.co/bartowski/qwen:Q4_K_M"],
            },
            Catalog {
                provider: "lmstudio",
                ollama: false,
                models: vec!["qwen2.5-7b-instruct"],
            },
        ]
    }

    #[test]
    fn a_first_segment_naming_a_provider_addresses_it() {
        let providers = ["local", "lmstudio", "vllm"];
        assert_eq!(
            route("lmstudio/qwen2.5-7b", &providers),
            Route::Provider {
                provider: "lmstudio".to_owned(),
                model: "qwen2.5-7b".to_owned()
            }
        );
        assert_eq!(
            route("vllm/org/model-7b", &providers),
            Route::Provider {
                provider: "vllm".to_owned(),
                model: "org/model-7b".to_owned()
            }
        );
        for plain in [
            "org/model-7b",
            "hf.co/bartowski/qwen:Q4_K_M",
            "llama3",
            "lmstudio/",
            "LMSTUDIO/x",
        ] {
            assert_eq!(
                route(plain, &providers),
                Route::Anywhere(plain.to_owned()),
                "{plain}"
            );
        }
    }

    #[test]
    fn a_bare_name_is_found_on_the_local_server_first() {
        let all = catalogs();
        assert_eq!(find("llama3", &all), Some("local"));
        assert_eq!(find("llama3:latest", &all), Some("local"));
        assert_eq!(find("org/model-7b", &all), Some("vllm"));
        assert_eq!(find("qwen2.5-7b-instruct", &all), Some("lmstudio"));
        // Ollama's tag rules apply to Ollama providers only.
        assert_eq!(find("qwen2.5-7b-instruct:latest", &all), None);
        assert_eq!(find("missing", &all), None);
    }

    #[test]
    fn provider_names_that_collide_with_model_namespaces_are_refused() {
        let all = catalogs();
        assert!(name_collision("org", &all).is_some_and(|why| why.contains("org/model-7b")));
        assert!(name_collision("HF.CO", &all).is_some());
        assert!(name_collision("library", &[]).is_some());
        assert_eq!(name_collision("lmstudio", &all), None);
    }
}
