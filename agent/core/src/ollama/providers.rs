//! Ollama endpoints besides the local server ("providers"): a GPU box on
//! the LAN, a team server. Stored in state.db; checked with /api/version
//! before they are saved; only ever used, never started or stopped. The
//! local, supervised server is the provider "local" and cannot be removed.

use rusqlite::OptionalExtension;

use crate::{
    error::{Error, ErrorKind, Result},
    store::{Store, now_ms},
};

/// Name of the supervised local server.
pub const LOCAL: &str = "local";

/// A stored provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    /// Unique name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// Bearer token, if any.
    pub token: Option<String>,
    /// Version seen when added.
    pub version: String,
}

/// Check a provider name: letters, digits, `-`, `_`; 1 to 40 characters.
pub fn validate_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 40 {
        return Err(Error::invalid_argument(
            "name",
            "must be 1 to 40 characters",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::invalid_argument(
            "name",
            format!("{name:?} may only contain letters, digits, '-' and '_'"),
        ));
    }
    if name.eq_ignore_ascii_case(LOCAL) {
        return Err(Error::invalid_argument(
            "name",
            "\"local\" is the supervised local server and always exists",
        ));
    }
    Ok(())
}

/// Check and normalise a provider URL (http or https, with a host).
pub fn validate_url(url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return Err(Error::invalid_argument(
            "url",
            format!("{url:?} needs a scheme, e.g. http://gpu-box:11434"),
        ));
    };
    if scheme != "http" && scheme != "https" {
        return Err(Error::invalid_argument(
            "url",
            format!("{scheme:?} is not supported; use http or https"),
        ));
    }
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::invalid_argument(
            "url",
            format!("{url:?} has no valid host"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Stored providers.
#[derive(Debug, Clone)]
pub struct Providers {
    store: Store,
}

impl Providers {
    /// Over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// All remote providers, by name.
    pub async fn list(&self) -> Result<Vec<ProviderRecord>> {
        self.store
            .read(|c| {
                let mut statement =
                    c.prepare("SELECT name, url, token, version FROM providers ORDER BY name")?;
                let rows = statement
                    .query_map([], |row| {
                        Ok(ProviderRecord {
                            name: row.get(0)?,
                            url: row.get(1)?,
                            token: row.get(2)?,
                            version: row.get(3)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
    }

    /// One provider by name.
    pub async fn get(&self, name: &str) -> Result<ProviderRecord> {
        let key = name.to_owned();
        let found = self
            .store
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT name, url, token, version FROM providers WHERE name = ?1",
                    [&key],
                    |row| {
                        Ok(ProviderRecord {
                            name: row.get(0)?,
                            url: row.get(1)?,
                            token: row.get(2)?,
                            version: row.get(3)?,
                        })
                    },
                )
                .optional()?)
            })
            .await?;
        found.ok_or_else(|| {
            Error::not_found(format!(
                "no provider named {name:?}; see `omnipanel models providers`"
            ))
        })
    }

    /// Save a provider (already checked to answer).
    pub async fn add(&self, record: ProviderRecord) -> Result<()> {
        self.store
            .write(move |tx| {
                let exists: Option<String> = tx
                    .query_row("SELECT name FROM providers WHERE name = ?1", [&record.name], |r| r.get(0))
                    .optional()?;
                if exists.is_some() {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!("a provider named {:?} already exists", record.name),
                    ));
                }
                tx.execute(
                    "INSERT INTO providers (name, url, token, version, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    (&record.name, &record.url, &record.token, &record.version, now_ms()),
                )?;
                Ok(())
            })
            .await
    }

    /// Forget a provider.
    pub async fn remove(&self, name: &str) -> Result<()> {
        if name.eq_ignore_ascii_case(LOCAL) {
            return Err(Error::failed_precondition(
                "the local provider is the supervised server and cannot be removed",
            ));
        }
        let key = name.to_owned();
        let removed = self
            .store
            .write(move |tx| Ok(tx.execute("DELETE FROM providers WHERE name = ?1", [&key])?))
            .await?;
        if removed == 0 {
            return Err(Error::not_found(format!("no provider named {name:?}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_urls_are_checked() {
        assert!(validate_name("gpu-box_2").is_ok());
        assert!(validate_name("local").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name("").is_err());
        assert_eq!(
            validate_url("http://box:11434/").ok().as_deref(),
            Some("http://box:11434")
        );
        assert!(validate_url("box:11434").is_err());
        assert!(validate_url("ftp://box").is_err());
        assert!(validate_url("http://").is_err());
    }

    #[tokio::test]
    async fn add_list_remove() -> Result<()> {
        let providers = Providers::new(Store::in_memory()?);
        providers
            .add(ProviderRecord {
                name: "lan".into(),
                url: "http://lan:11434".into(),
                token: Some("t".into()),
                version: "0.5".into(),
            })
            .await?;
        assert_eq!(providers.list().await?.len(), 1);
        assert_eq!(providers.get("lan").await?.token.as_deref(), Some("t"));
        assert_eq!(
            providers
                .add(ProviderRecord {
                    name: "lan".into(),
                    url: "http://x".into(),
                    token: None,
                    version: String::new(),
                })
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::AlreadyExists
        );
        providers.remove("lan").await?;
        assert_eq!(
            providers.remove("lan").await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(providers.remove("local").await.is_err());
        Ok(())
    }
}
