//! Model names as Ollama resolves them: `[host/][namespace/]model[:tag]`,
//! with `registry.ollama.ai`, `library` and `latest` filled in, compared
//! case-insensitively, and shown in their shortest form (`tinyllama:latest`).

/// The registry that a bare name refers to.
pub const DEFAULT_HOST: &str = "registry.ollama.ai";
/// The namespace that a name without one refers to.
pub const DEFAULT_NAMESPACE: &str = "library";
/// The tag that a name without one refers to.
pub const DEFAULT_TAG: &str = "latest";

/// A fully qualified model name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelName {
    pub host: String,
    pub namespace: String,
    pub model: String,
    pub tag: String,
}

impl ModelName {
    /// Parses a name the way Ollama's `model.ParseName` does; `None` for a
    /// name Ollama would call invalid.
    pub fn parse(raw: &str) -> Option<Self> {
        let mut s = raw.trim();
        // A pinned digest (`name@sha256:...`) does not change which model
        // is meant; the fake has one version of each.
        if let Some((name, _digest)) = s.rsplit_once('@') {
            s = name;
        }
        if let Some((_scheme, rest)) = s.split_once("://") {
            s = rest;
        }
        // "/" cannot appear in a tag, so a colon after the last slash is the
        // tag separator and any earlier one belongs to a host's port.
        let tag_at = s.rfind(':').filter(|&c| s.rfind('/').is_none_or(|p| c > p));
        let (path, tag) = match tag_at {
            Some(at) => (&s[..at], &s[at + 1..]),
            None => (s, DEFAULT_TAG),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (host, namespace, model) = match parts.as_slice() {
            [model] => (DEFAULT_HOST, DEFAULT_NAMESPACE, *model),
            [namespace, model] => (DEFAULT_HOST, *namespace, *model),
            [host, namespace, model] => (*host, *namespace, *model),
            _ => return None,
        };
        let name = Self {
            host: host.to_string(),
            namespace: namespace.to_string(),
            model: model.to_string(),
            tag: tag.to_string(),
        };
        name.is_valid().then_some(name)
    }

    fn is_valid(&self) -> bool {
        let part = |s: &str, max: usize, first: &dyn Fn(char) -> bool, rest: &str| {
            let mut chars = s.chars();
            (1..=max).contains(&s.len())
                && chars.next().is_some_and(first)
                && chars.all(|c| c.is_ascii_alphanumeric() || rest.contains(c))
        };
        let alnum = |c: char| c.is_ascii_alphanumeric();
        let alnum_or_underscore = |c: char| c.is_ascii_alphanumeric() || c == '_';
        part(&self.host, 350, &|c: char| alnum(c) || c == '_', "._-:")
            && part(&self.namespace, 80, &alnum, "_-")
            && part(&self.model, 80, &alnum, "_-.")
            && part(&self.tag, 80, &alnum_or_underscore, "_-.")
    }

    /// The shortest unambiguous form, which `/api/tags` and `/api/ps` show.
    pub fn display(&self) -> String {
        if !self.host.eq_ignore_ascii_case(DEFAULT_HOST) {
            format!(
                "{}/{}/{}:{}",
                self.host, self.namespace, self.model, self.tag
            )
        } else if !self.namespace.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
            format!("{}/{}:{}", self.namespace, self.model, self.tag)
        } else {
            format!("{}:{}", self.model, self.tag)
        }
    }

    /// Identity for lookups: Ollama compares names case-insensitively.
    pub fn key(&self) -> String {
        format!(
            "{}/{}/{}:{}",
            self.host, self.namespace, self.model, self.tag
        )
        .to_ascii_lowercase()
    }
}

/// The lookup key of a raw name, or `None` if it is not a valid name.
pub fn key_of(raw: &str) -> Option<String> {
    ModelName::parse(raw).map(|n| n.key())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_in_defaults() -> Result<(), &'static str> {
        let full = "registry.ollama.ai/library/tinyllama:latest";
        for raw in [
            "tinyllama",
            "tinyllama:latest",
            "library/tinyllama",
            "registry.ollama.ai/library/tinyllama",
            "registry.ollama.ai/library/tinyllama:latest",
            "https://registry.ollama.ai/library/tinyllama:latest",
            "TinyLlama:Latest",
            "tinyllama@sha256:0123",
        ] {
            assert_eq!(key_of(raw).as_deref(), Some(full), "{raw}");
        }
        let n = ModelName::parse("qwen2.5:0.5b").ok_or("qwen2.5:0.5b is valid")?;
        assert_eq!((n.model.as_str(), n.tag.as_str()), ("qwen2.5", "0.5b"));
        assert_eq!(n.display(), "qwen2.5:0.5b");
        Ok(())
    }

    #[test]
    fn displays_shortest_form() {
        let show = |s: &str| ModelName::parse(s).map(|n| n.display());
        assert_eq!(show("tinyllama").as_deref(), Some("tinyllama:latest"));
        assert_eq!(show("me/model").as_deref(), Some("me/model:latest"));
        assert_eq!(
            show("localhost:5000/me/model:v1").as_deref(),
            Some("localhost:5000/me/model:v1")
        );
    }

    #[test]
    fn rejects_invalid_names() {
        for raw in [
            "",
            ":latest",
            "tinyllama:",
            "a/b/c/d",
            "bad name",
            "-x",
            "x:-y",
            "x:a/b",
        ] {
            assert_eq!(key_of(raw), None, "{raw:?}");
        }
    }
}
