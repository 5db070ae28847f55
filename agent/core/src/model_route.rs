//! Which provider a single model string means, where a request carries
//! no separate provider (the gateway, the CLI): `lmstudio/qwen2.5-7b`
//! addresses the provider `lmstudio` when one of that name is configured;
//! any other string is a model name, looked for across providers, the
//! local Ollama first. Model names contain slashes of their own (Ollama's
//! `hf.co/org/repo:Q4_K_M`, vLLM's `org/model`), so a provider may not be
//! named like the first segment of a model name: [`name_collision`] is
//! what AddProvider checks. Groundwork for issue 17; pure, no I/O.

use crate::ollama::names::same_model;

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
