//! Describing the settings and changing them through the API. Changes are
//! made with toml_edit on the user's own text, not by serialising
//! `Settings` again, so their comments, order and layout survive; each
//! candidate value is tried by parsing the whole file again, so a change is
//! held to exactly the rules that loading applies.

use std::path::Path;

use toml_edit::{DocumentMut, Item, Table, TableLike, Value};

use crate::reason::Reason;
use crate::{
    config::{SETTINGS, SettingChange, SettingView, Settings, parse, spec},
    error::{Error, Result},
};

/// Render every documented key of `settings` against the raw file text.
pub fn describe(settings: &Settings, file_text: &str) -> Vec<SettingView> {
    let effective = to_document(settings);
    let defaults = to_document(&Settings::default());
    let file = file_text.parse::<DocumentMut>().unwrap_or_default();
    SETTINGS
        .iter()
        .map(|spec| SettingView {
            spec,
            value: literal_at(&effective, spec.key).unwrap_or_default(),
            default_value: literal_at(&defaults, spec.key).unwrap_or_default(),
            is_set: item_at(file.as_table(), spec.key).is_some(),
        })
        .collect()
}

// pub(super): the key table's test serialises a full `Settings` this same
// way to list the keys it must document.
pub(super) fn to_document(settings: &Settings) -> DocumentMut {
    // Serialising plain structs of strings, numbers and paths cannot fail;
    // an empty document is a harmless fallback that shows values as unset.
    toml_edit::ser::to_document(settings).unwrap_or_default()
}

/// The item at a dotted key; nested tables may be standard or inline (the
/// serialiser writes inline ones).
fn item_at<'a>(table: &'a dyn TableLike, dotted: &str) -> Option<&'a Item> {
    match dotted.split_once('.') {
        Some((head, rest)) => item_at(table.get(head)?.as_table_like()?, rest),
        None => table.get(dotted).filter(|item| !item.is_none()),
    }
}

fn literal_at(document: &DocumentMut, dotted: &str) -> Option<String> {
    let value = item_at(document.as_table(), dotted)?.as_value()?;
    Some(value.clone().decorated("", "").to_string())
}

/// Apply `changes` to the configuration text, returning the new text and
/// settings. Nothing is written; an error names the offending key.
pub fn apply_changes(
    path: &Path,
    text: &str,
    changes: &[SettingChange],
) -> Result<(String, Settings)> {
    let mut document = text.parse::<DocumentMut>().map_err(|err| {
        Error::failed_precondition(format!(
            "{} cannot be parsed, fix it first: {}",
            path.display(),
            err.message().trim()
        ))
        .with_reason(Reason::ConfigInvalid)
    })?;
    // The file must be valid as it stands, or the error would be blamed on
    // the change.
    parse(path, text).map_err(|err| {
        Error::failed_precondition(format!("fix config.toml first: {err}"))
            .with_reason(Reason::ConfigInvalid)
    })?;
    if changes.is_empty() {
        return Err(Error::invalid_argument("changes", "no changes given"));
    }
    for change in changes {
        let Some(spec) = spec(&change.key) else {
            let known: Vec<&str> = SETTINGS.iter().map(|s| s.key).collect();
            return Err(Error::invalid_argument(
                format!("changes.key {:?}", change.key),
                format!("unknown setting; known settings: {}", known.join(", ")),
            ));
        };
        if change.reset {
            remove_item(&mut document, spec.key);
            continue;
        }
        let candidates = candidate_values(&change.value);
        let mut last_error = String::new();
        let mut accepted = false;
        for candidate in candidates {
            let mut trial = document.clone();
            set_item(&mut trial, spec.key, candidate);
            match parse(path, &trial.to_string()) {
                Ok(_) => {
                    document = trial;
                    accepted = true;
                    break;
                }
                Err(err) => {
                    last_error = err.message;
                }
            }
        }
        if !accepted {
            return Err(Error::invalid_argument(
                spec.key,
                format!("{:?} is not accepted: {last_error}", change.value),
            ));
        }
    }
    let new_text = document.to_string();
    let settings = parse(path, &new_text)
        .map_err(|err| Error::invalid_argument("changes", err.message.clone()))?;
    Ok((new_text, settings))
}

/// A value as TOML when it parses as TOML, and then as a plain string, so
/// `log.filter=debug` and `server.tcp=127.0.0.1:7457` need no quotes.
fn candidate_values(raw: &str) -> Vec<Value> {
    let mut candidates = Vec::with_capacity(2);
    if let Ok(value) = raw.trim().parse::<Value>() {
        candidates.push(value);
    }
    if !matches!(candidates.first(), Some(Value::String(_))) {
        candidates.push(Value::from(raw));
    }
    candidates
}

// Both walk through standard, dotted and inline tables alike: a user who
// wrote `log = { filter = "info", max_files = 3 }` keeps `max_files` when
// the API changes or resets `log.filter`.
fn set_item(document: &mut DocumentMut, dotted: &str, mut value: Value) {
    let parts: Vec<&str> = dotted.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut table: &mut dyn TableLike = document.as_table_mut();
    for part in parents {
        if !table.get(part).is_some_and(Item::is_table_like) {
            table.insert(part, Item::Table(Table::new()));
        }
        let Some(inner) = table.get_mut(part).and_then(Item::as_table_like_mut) else {
            return;
        };
        table = inner;
    }
    // Replaced in place, the key keeps the comment above it and the value
    // the comment after it.
    match table.get_mut(last) {
        Some(item) => {
            if let Some(old) = item.as_value() {
                *value.decor_mut() = old.decor().clone();
            }
            *item = Item::Value(value);
        }
        None => {
            table.insert(last, Item::Value(value));
        }
    }
}

fn remove_item(document: &mut DocumentMut, dotted: &str) {
    let parts: Vec<&str> = dotted.split('.').collect();
    let Some((last, parents)) = parts.split_last() else {
        return;
    };
    let mut table: &mut dyn TableLike = document.as_table_mut();
    for part in parents {
        let Some(inner) = table.get_mut(part).and_then(Item::as_table_like_mut) else {
            return;
        };
        table = inner;
    }
    table.remove(last);
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use crate::config::LogSettings;

    use super::*;

    fn path() -> &'static Path {
        Path::new("/cfg/config.toml")
    }

    #[test]
    fn changes_keep_comments_and_accept_unquoted_strings() -> Result<()> {
        let text = "# my settings\n[log]\n# chatty\nfilter = \"info\"\n";
        let (new_text, settings) = apply_changes(
            path(),
            text,
            &[
                SettingChange {
                    key: "log.filter".into(),
                    value: "debug".into(),
                    reset: false,
                },
                SettingChange {
                    key: "server.tcp".into(),
                    value: "127.0.0.1:7457".into(),
                    reset: false,
                },
            ],
        )?;
        assert!(new_text.contains("# my settings"), "{new_text}");
        assert!(new_text.contains("# chatty"), "{new_text}");
        assert_eq!(settings.log.filter, "debug");
        assert_eq!(
            settings.server.tcp,
            Some(SocketAddr::from(([127, 0, 0, 1], 7457)))
        );
        Ok(())
    }

    #[test]
    fn bad_change_names_the_key_and_changes_nothing() {
        let err = apply_changes(
            path(),
            "",
            &[SettingChange {
                key: "log.max_files".into(),
                value: "lots".into(),
                reset: false,
            }],
        )
        .unwrap_err();
        assert_eq!(err.field(), Some("log.max_files"));
        let err = apply_changes(
            path(),
            "",
            &[SettingChange {
                key: "log.nope".into(),
                value: "1".into(),
                reset: false,
            }],
        )
        .unwrap_err();
        assert!(err.message().contains("unknown setting"), "{err}");
    }

    #[test]
    fn inline_tables_keep_their_other_keys() -> Result<()> {
        let text = "log = { filter = \"info\", max_files = 3 } # mine\n";
        let change = |key: &str, value: &str, reset: bool| SettingChange {
            key: key.into(),
            value: value.into(),
            reset,
        };
        let (text, settings) =
            apply_changes(path(), text, &[change("log.filter", "debug", false)])?;
        assert_eq!(settings.log.filter, "debug");
        assert_eq!(settings.log.max_files, 3, "{text}");
        assert!(text.contains("# mine"), "{text}");
        let (text, settings) = apply_changes(path(), &text, &[change("log.max_files", "", true)])?;
        assert!(!text.contains("max_files"), "{text}");
        assert_eq!(settings.log.max_files, LogSettings::default().max_files);
        assert_eq!(settings.log.filter, "debug", "{text}");
        Ok(())
    }

    #[test]
    fn a_value_replaced_in_place_keeps_its_comment() -> Result<()> {
        let text = "[log]\nmax_files = 9 # keep a week\n";
        let (text, settings) = apply_changes(
            path(),
            text,
            &[SettingChange {
                key: "log.max_files".into(),
                value: "4".into(),
                reset: false,
            }],
        )?;
        assert_eq!(settings.log.max_files, 4);
        assert!(text.contains("max_files = 4 # keep a week"), "{text}");
        Ok(())
    }

    #[test]
    fn reset_removes_the_key() -> Result<()> {
        let (text, settings) = apply_changes(
            path(),
            "[log]\nmax_files = 9\n",
            &[SettingChange {
                key: "log.max_files".into(),
                value: String::new(),
                reset: true,
            }],
        )?;
        assert!(!text.contains("max_files"), "{text}");
        assert_eq!(settings.log.max_files, LogSettings::default().max_files);
        Ok(())
    }

    #[test]
    fn describe_reports_values_defaults_and_what_is_set() {
        let settings = parse(path(), "[log]\nmax_files = 9\n").unwrap_or_default();
        let views = describe(&settings, "[log]\nmax_files = 9\n");
        let max_files = views.iter().find(|v| v.spec.key == "log.max_files");
        let Some(max_files) = max_files else {
            panic!("log.max_files missing from {views:?}");
        };
        assert_eq!(max_files.value, "9");
        assert_eq!(max_files.default_value, "5");
        assert!(max_files.is_set);
        let tcp = views.iter().find(|v| v.spec.key == "server.tcp");
        assert_eq!(tcp.map(|v| v.value.as_str()), Some(""));
    }
}
