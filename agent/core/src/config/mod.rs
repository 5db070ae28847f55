//! Settings: the typed contents of `config.toml`, their built-in defaults,
//! the table that documents every key, loading with errors that name file,
//! line and key, and edits made through the API that are written back with
//! comments and layout kept (toml_edit) and published to the running agent
//! through a watch channel.
//!
//! Each part lives in its own file: `sections` (the typed settings and
//! their defaults), `keys` (the documented key table), `validate` (the
//! rules serde cannot express), `edit` (describing and changing the file
//! with comments kept) and `store` (the running agent's copy). This file is
//! the public face: loading and parsing with errors located in the file,
//! and the types the API exchanges; everything is re-exported here so
//! callers name `config::X` whichever file `X` lives in.

mod edit;
mod keys;
mod sections;
mod store;
mod validate;

use std::{
    fmt,
    future::Future,
    ops::Range,
    path::{Path, PathBuf},
    pin::Pin,
};

use toml_edit::{Item, Table};

use self::validate::validate;
pub use self::{
    edit::{apply_changes, describe},
    keys::{HIDDEN_VALUE, SETTINGS, SettingSpec, owner_only, secret, spec},
    sections::{
        AccessSettings, AuditSettings, EventSettings, FilesSettings, GatewaySettings,
        GitSettingsFile, LogSettings, OllamaSettings, ServerSettings, Settings, SocketClients,
        SystemSettings, UpdateSettings,
    },
    store::SettingsStore,
    validate::UPDATE_CHANNELS,
};

/// A configuration file that cannot be used, located as precisely as the
/// parser allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key, when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// A setting's value and documentation, as `GetSettings` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingView {
    /// The documentation.
    pub spec: &'static SettingSpec,
    /// Effective value as a TOML literal; empty when unset.
    pub value: String,
    /// Default as a TOML literal; empty when unset by default.
    pub default_value: String,
    /// Whether config.toml sets it.
    pub is_set: bool,
}

/// A part of the running agent that puts settings into effect as they
/// change (the managed Ollama server restarts with its new settings), for
/// a change whose effect depends on what that part is doing. Settings
/// with no such condition follow the store's watch channel instead.
pub trait LiveSettings: Send + Sync + fmt::Debug {
    /// Put `settings` into effect after `keys` changed. Returns, when a
    /// change has to wait for a restart, what waits and why.
    fn apply<'a>(
        &'a self,
        settings: &'a Settings,
        keys: &'a [String],
    ) -> Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>>;
}

/// One requested change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingChange {
    /// Dotted key.
    pub key: String,
    /// New value (TOML literal or plain text); ignored when `reset`.
    pub value: String,
    /// Remove the key so the default applies.
    pub reset: bool,
}

/// Read and validate `path`. A missing file means defaults.
pub fn load(path: &Path) -> Result<Settings, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(err) => {
            return Err(ConfigError {
                path: path.to_owned(),
                line: None,
                key: None,
                message: format!("cannot read the file: {err}"),
            });
        }
    };
    parse(path, &text)
}

/// Parse and validate configuration text; `path` is only used in errors.
pub fn parse(path: &Path, text: &str) -> Result<Settings, ConfigError> {
    let located = |span: Option<Range<usize>>, key: Option<String>, message: String| ConfigError {
        path: path.to_owned(),
        line: span.map(|span| line_of(text, span.start)),
        key,
        message,
    };
    let document = toml_edit::Document::parse(text)
        .map_err(|err| located(err.span(), None, err.message().trim().to_owned()))?;
    let settings: Settings = toml_edit::de::from_str(text).map_err(|err| {
        let key = err
            .span()
            .and_then(|span| key_at(document.as_table(), span.start, ""));
        let span = err.span();
        located(span, key, err.message().trim().to_owned())
    })?;
    validate(&settings).map_err(|(key, message)| {
        let span = key_span(document.as_table(), key);
        located(span, Some(key.to_owned()), message)
    })?;
    Ok(settings)
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The dotted key whose key or value covers `offset`, deepest first.
fn key_at(table: &Table, offset: usize, prefix: &str) -> Option<String> {
    for (name, item) in table.iter() {
        let dotted = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}.{name}")
        };
        if let Item::Table(inner) = item
            && let Some(found) = key_at(inner, offset, &dotted)
        {
            return Some(found);
        }
        let key_covers = table
            .key(name)
            .and_then(toml_edit::Key::span)
            .is_some_and(|span| span.contains(&offset));
        let value_covers = item.span().is_some_and(|span| span.contains(&offset));
        let header_covers =
            matches!(item, Item::Table(t) if t.span().is_some_and(|s| s.contains(&offset)));
        if key_covers || value_covers || header_covers {
            return Some(dotted);
        }
    }
    None
}

/// Span of the value (or key) at a dotted key, for locating errors.
fn key_span(table: &Table, dotted: &str) -> Option<Range<usize>> {
    let (head, rest) = match dotted.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (dotted, None),
    };
    let item = table.get(head)?;
    match (rest, item) {
        (Some(rest), Item::Table(inner)) => key_span(inner, rest).or_else(|| inner.span()),
        (None, item) => item
            .span()
            .or_else(|| table.key(head).and_then(toml_edit::Key::span)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("/cfg/config.toml")
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(parse(path(), ""), Ok(Settings::default()));
    }

    #[test]
    fn unknown_key_is_named_with_its_line() {
        let err = parse(path(), "[log]\nfilter = \"info\"\nbogus = 3\n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert!(err.message.contains("bogus"), "{err}");
    }

    #[test]
    fn wrong_type_is_named_with_line_and_key() {
        let err = parse(path(), "[log]\n\nmax_files = \"many\"\n").unwrap_err();
        assert_eq!(err.line, Some(3), "{err}");
        assert_eq!(err.key.as_deref(), Some("log.max_files"), "{err}");
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = parse(path(), "[log\nfilter = 1\n").unwrap_err();
        assert_eq!(err.line, Some(1), "{err}");
    }
}
