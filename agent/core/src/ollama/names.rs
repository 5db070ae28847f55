//! Model names, checked against Ollama's own rules before any request is
//! made: `[host/][namespace/]model[:tag]`, at most 128 characters, letters,
//! digits, `_`, `-` and `.` (no `.` in a namespace, never two dots in a
//! row). Names are compared and deduplicated in canonical form: lower case,
//! default tag `latest`, default registry and namespace dropped.

use std::fmt;

use crate::error::{Error, Result};

const MAX_LEN: usize = 128;
const DEFAULT_HOST: &str = "registry.ollama.ai";
const DEFAULT_NAMESPACE: &str = "library";
const DEFAULT_TAG: &str = "latest";

/// A valid model name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelName {
    host: Option<String>,
    namespace: Option<String>,
    model: String,
    tag: Option<String>,
}

fn valid_byte(byte: u8, allow_dot: bool) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-' || (allow_dot && byte == b'.')
}

fn check_part(field: &str, what: &str, part: &str, allow_dot: bool) -> Result<()> {
    if part.is_empty() {
        return Err(Error::invalid_argument(
            field,
            format!("the {what} is empty"),
        ));
    }
    if let Some(bad) = part
        .chars()
        .find(|c| !c.is_ascii() || !valid_byte(*c as u8, allow_dot))
    {
        let allowed = if allow_dot {
            "letters, digits, '_', '-' and '.'"
        } else {
            "letters, digits, '_' and '-'"
        };
        return Err(Error::invalid_argument(
            field,
            format!("{bad:?} is not allowed in the {what} {part:?}; use {allowed}"),
        ));
    }
    Ok(())
}

impl ModelName {
    /// Parse and validate `raw`; `field` names the request field in errors.
    pub fn parse(field: &str, raw: &str) -> Result<Self> {
        if raw.is_empty() {
            return Err(Error::invalid_argument(field, "a model name is required"));
        }
        if raw.trim() != raw {
            return Err(Error::invalid_argument(
                field,
                format!("{raw:?} has leading or trailing spaces"),
            ));
        }
        let stripped = raw
            .strip_prefix("http://")
            .or_else(|| raw.strip_prefix("https://"))
            .unwrap_or(raw);
        if stripped.len() > MAX_LEN {
            return Err(Error::invalid_argument(
                field,
                format!(
                    "the name is {} characters long; at most {MAX_LEN} are allowed",
                    stripped.len()
                ),
            ));
        }
        if stripped.contains("..") {
            return Err(Error::invalid_argument(
                field,
                format!("{raw:?} contains two dots in a row"),
            ));
        }
        let (path, tag) = match stripped.rsplit_once(':') {
            Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
            _ => (stripped, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (host, namespace, model) = match parts.as_slice() {
            [model] => (None, None, *model),
            [namespace, model] => (None, Some(*namespace), *model),
            [host, namespace, model] => (Some(*host), Some(*namespace), *model),
            _ => {
                return Err(Error::invalid_argument(
                    field,
                    format!(
                        "{raw:?} has too many '/' parts; expected [host/][namespace/]model[:tag]"
                    ),
                ));
            }
        };
        if let Some(host) = host {
            check_part(field, "registry host", host, true)?;
        }
        if let Some(namespace) = namespace {
            check_part(field, "namespace", namespace, false)?;
        }
        check_part(field, "model name", model, true)?;
        if let Some(tag) = tag {
            check_part(field, "tag", tag, true)?;
        }
        Ok(Self {
            host: host.map(str::to_owned),
            namespace: namespace.map(str::to_owned),
            model: model.to_owned(),
            tag: tag.map(str::to_owned),
        })
    }

    /// The name as Ollama lists it: default registry and namespace dropped,
    /// tag always present.
    pub fn display(&self) -> String {
        let mut out = String::new();
        let default_host = self
            .host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(DEFAULT_HOST));
        let default_namespace = self
            .namespace
            .as_deref()
            .is_none_or(|n| n.eq_ignore_ascii_case(DEFAULT_NAMESPACE));
        if !default_host && let Some(host) = &self.host {
            out.push_str(host);
            out.push('/');
        }
        if !(default_host && default_namespace) {
            out.push_str(self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE));
            out.push('/');
        }
        out.push_str(&self.model);
        out.push(':');
        out.push_str(self.tag.as_deref().unwrap_or(DEFAULT_TAG));
        out
    }

    /// Case-insensitive identity, for deduplicating pulls and comparisons.
    pub fn key(&self) -> String {
        self.display().to_ascii_lowercase()
    }

    /// `(namespace, model, tag)` for registry manifest URLs.
    pub fn registry_path(&self) -> (String, String, String) {
        (
            self.namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            self.model.clone(),
            self.tag.clone().unwrap_or_else(|| DEFAULT_TAG.to_owned()),
        )
    }

    /// The registry host, when the name names one.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display())
    }
}

/// Whether two names (as Ollama reports them) are the same model.
pub fn same_model(a: &str, b: &str) -> bool {
    match (ModelName::parse("a", a), ModelName::parse("b", b)) {
        (Ok(a), Ok(b)) => a.key() == b.key(),
        _ => a.eq_ignore_ascii_case(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ollama_names_and_canonicalises() {
        for (raw, shown) in [
            ("llama3.2", "llama3.2:latest"),
            ("llama3.2:1b", "llama3.2:1b"),
            ("library/qwen2.5:0.5b", "qwen2.5:0.5b"),
            ("registry.ollama.ai/library/tinyllama", "tinyllama:latest"),
            ("jmorgan/grok:Q4_0", "jmorgan/grok:Q4_0"),
            (
                "example.com/team/model-x:v1.2",
                "example.com/team/model-x:v1.2",
            ),
            ("https://example.com/team/m", "example.com/team/m:latest"),
        ] {
            let name = ModelName::parse("model", raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!(name.display(), shown, "{raw}");
        }
        assert!(same_model("TinyLlama", "tinyllama:latest"));
        assert!(!same_model("tinyllama:1b", "tinyllama"));
    }

    #[test]
    fn refuses_what_ollama_refuses() {
        for raw in [
            "",
            " llama",
            "llama ",
            "a/b/c/d",
            "bad..name",
            "spaces in name",
            "emoji🦙",
            "name:",
            ":tag",
            "ns.with.dot/model",
            "model:tag/extra",
            "semi;colon",
            &"x".repeat(129),
        ] {
            let err = ModelName::parse("model", raw).expect_err(raw);
            assert_eq!(err.field(), Some("model"), "{raw}");
        }
    }
}
