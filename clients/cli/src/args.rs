//! Arguments more than one command group takes (`--provider` for the model
//! commands and chat), flattened into each group's own grammar, and the
//! words several groups parse the same way (scope names and durations of
//! access, for `token create`, the `clients` commands and `mcp`).

use clap::Args;
use omnipanel_proto::v1::{Expiry, Scope};

/// `--provider`, shared by the model commands and chat.
#[derive(Debug, Args)]
pub struct ProviderArg {
    /// Ollama endpoint to use (see `omnipanel models providers`); default
    /// "local".
    #[arg(long)]
    pub provider: Option<String>,
}

impl ProviderArg {
    /// The provider for a request; "" asks the agent for "local".
    pub fn name(self) -> String {
        self.provider.unwrap_or_default()
    }
}

/// The scope names a user may type, in the order help texts list them.
pub const SCOPE_NAMES: &str = "status, read, infer, write, admin";

/// One scope from its name as `omnipanel_client::display::scope_name`
/// writes it ("read", "infer"), for clap's `value_parser` (with
/// `value_delimiter = ','` a list "read,infer" becomes several). The
/// generated enum's own names are the one list, so a scope added to the
/// API is accepted here without a change.
pub fn parse_scope(text: &str) -> Result<Scope, String> {
    let word = text.trim();
    Scope::from_str_name(&format!("SCOPE_{}", word.to_ascii_uppercase()))
        .filter(|scope| *scope != Scope::Unspecified && !word.is_empty())
        .ok_or_else(|| format!("{word:?} is not a scope; use one of {SCOPE_NAMES}"))
}

/// Scopes as the API's repeated field carries them.
pub fn scopes_into_proto(scopes: &[Scope]) -> Vec<i32> {
    scopes.iter().map(|scope| i32::from(*scope)).collect()
}

/// How long a grant lasts, from the word `--for` takes: once, 1h, 1d,
/// always (and the agent's synonyms hour, day, forever).
pub fn parse_expiry(text: &str) -> Result<Expiry, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "once" => Ok(Expiry::Once),
        "1h" | "hour" => Ok(Expiry::Hour),
        "1d" | "day" => Ok(Expiry::Day),
        "always" | "forever" => Ok(Expiry::Always),
        other => Err(format!(
            "{other:?} is not a duration for access; use once (this run of the agent), 1h, 1d or always"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_parsed_by_their_lower_case_names() {
        assert_eq!(parse_scope("read"), Ok(Scope::Read));
        assert_eq!(parse_scope(" Infer "), Ok(Scope::Infer));
        assert_eq!(parse_scope("WRITE"), Ok(Scope::Write));
        assert_eq!(parse_scope("admin"), Ok(Scope::Admin));
        assert_eq!(parse_scope("status"), Ok(Scope::Status));
        for name in ["status", "read", "infer", "write", "admin"] {
            let scope = parse_scope(name).unwrap_or(Scope::Unspecified);
            assert_eq!(
                omnipanel_client::display::scope_name(scope.into()),
                name,
                "what is shown can be typed back"
            );
        }
    }

    #[test]
    fn unknown_scopes_are_refused_with_the_list() {
        for bad in ["", "unspecified", "SCOPE_READ", "reed", "read,write"] {
            let err = parse_scope(bad).err().unwrap_or_default();
            assert!(
                err.contains("is not a scope") && err.contains(SCOPE_NAMES),
                "{bad:?}: {err}"
            );
        }
    }
}
