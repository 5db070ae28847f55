//! Target `config_edit`: `config.toml` parsing and the API's edits of it
//! (`omnipanel_core::config::{parse, apply_changes, describe}`). The input
//! is text: the first line is the change, `KEY=VALUE` to set a key (the
//! value as a client types it: a TOML literal or plain text) or `KEY!` to
//! reset it; the rest is the file as the user wrote it.
//!
//! Invariants, beyond "no panic":
//! - an edited file parses again to the settings the edit returned;
//! - every other setting keeps its value, and every comment line of the
//!   file outside the changed value survives;
//! - a set key reads as set afterwards, a reset one as unset;
//! - the same edit made again changes nothing more.

use std::path::Path;

use omnipanel_core::config::{SettingChange, apply_changes, describe, parse};
use toml_edit::{DocumentMut, TableLike};

/// Run one input.
pub fn run(data: &[u8]) {
    let input = crate::text(data);
    let (first, text) = input.split_once('\n').unwrap_or((&input, ""));
    let path = Path::new("/fuzz/config.toml");
    let before = parse(path, text);
    let change = match first.split_once('=') {
        Some((key, value)) => SettingChange {
            key: key.trim().to_owned(),
            value: value.to_owned(),
            reset: false,
        },
        None => SettingChange {
            key: first.trim().trim_end_matches('!').to_owned(),
            value: String::new(),
            reset: first.trim_end().ends_with('!'),
        },
    };
    let result = apply_changes(path, text, std::slice::from_ref(&change));
    let Ok(settings_before) = before else {
        assert!(result.is_err(), "an edit of an invalid file was accepted");
        return;
    };
    let Ok((new_text, settings_after)) = result else {
        return;
    };
    let reparsed = parse(path, &new_text);
    assert_eq!(
        reparsed.as_ref().ok(),
        Some(&settings_after),
        "the edited file does not parse to what the edit returned:\n{new_text}"
    );

    let old_views = describe(&settings_before, text);
    let new_views = describe(&settings_after, &new_text);
    for (old, new) in old_views.iter().zip(&new_views) {
        assert_eq!(old.spec.key, new.spec.key);
        if old.spec.key == change.key {
            assert_eq!(
                new.is_set, !change.reset,
                "{}: is_set after the edit:\n{new_text}",
                change.key
            );
        } else {
            assert_eq!(
                (&old.value, old.is_set),
                (&new.value, new.is_set),
                "{} changed by an edit of {}:\n{text}\n---\n{new_text}",
                old.spec.key,
                change.key
            );
        }
    }

    let changed_value = raw_item(text, &change.key);
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') && !changed_value.contains(line) && !change.reset {
            assert!(
                new_text.contains(line),
                "the comment {line:?} was lost by an edit of {}:\n{text}\n---\n{new_text}",
                change.key
            );
        }
    }

    let again = apply_changes(path, &new_text, std::slice::from_ref(&change));
    assert_eq!(
        again.as_ref().map(|(t, _)| t.as_str()).ok(),
        Some(new_text.as_str()),
        "the same edit again changed the file:\n{new_text}"
    );
}

/// The text of the value at a dotted key as the file has it (comments
/// inside an array included): what an edit of that key may replace.
fn raw_item(text: &str, dotted: &str) -> String {
    fn find(table: &dyn TableLike, dotted: &str) -> Option<String> {
        match dotted.split_once('.') {
            Some((head, rest)) => find(table.get(head)?.as_table_like()?, rest),
            None => table.get(dotted).map(ToString::to_string),
        }
    }
    text.parse::<DocumentMut>()
        .ok()
        .and_then(|document| find(document.as_table(), dotted))
        .unwrap_or_default()
}
