//! Ollama endpoints besides the local server ("providers"): a GPU box on
//! the LAN, a team server. Stored in state.db; checked with /api/version
//! before they are saved; only ever used, never started or stopped. The
//! local, supervised server is the provider "local" and cannot be removed.

use rusqlite::OptionalExtension;

use crate::{
    error::{Error, ErrorKind, Result},
    secrets::Secrets,
    store::{Store, now_ms},
};

/// Name of the supervised local server.
pub const LOCAL: &str = "local";

/// The API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderKind {
    /// Ollama's HTTP API (`/api/...`).
    #[default]
    Ollama,
    /// The OpenAI API (`/models`, `/chat/completions`, ...).
    OpenAi,
}

impl ProviderKind {
    /// The name stored in state.db and shown to users.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ollama => "ollama",
            Self::OpenAi => "openai",
        }
    }

    /// The kind a stored name means; anything unknown is Ollama (the only
    /// kind before migration 8).
    pub fn from_name(name: &str) -> Self {
        match name {
            "openai" => Self::OpenAi,
            _ => Self::Ollama,
        }
    }
}

/// A stored provider. Its API key and header values are not here: they
/// live in [`Secrets`] under [`key_secret`] and [`header_secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRecord {
    /// Unique name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// The API it speaks.
    pub kind: ProviderKind,
    /// Version seen when added (Ollama only).
    pub version: String,
    /// Names of the extra headers sent with every request.
    pub header_names: Vec<String>,
    /// Timeout for one request in seconds (0: the default).
    pub timeout_seconds: u32,
}

/// Where a provider's API key is kept in [`Secrets`].
pub fn key_secret(provider: &str) -> String {
    format!("provider/{provider}/api_key")
}

/// Where the value of a provider's extra header is kept in [`Secrets`].
pub fn header_secret(provider: &str, header: &str) -> String {
    format!("provider/{provider}/header/{header}")
}

/// Every secret of a provider starts with this.
pub fn secrets_prefix(provider: &str) -> String {
    format!("provider/{provider}/")
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

const COLUMNS: &str = "name, url, kind, version, headers, timeout_seconds";

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<ProviderRecord> {
    let headers: String = row.get(4)?;
    Ok(ProviderRecord {
        name: row.get(0)?,
        url: row.get(1)?,
        kind: ProviderKind::from_name(&row.get::<_, String>(2)?),
        version: row.get(3)?,
        // Written by `add` from a Vec<String>; anything else reads as none.
        header_names: serde_json::from_str(&headers).unwrap_or_default(),
        timeout_seconds: row.get(5)?,
    })
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
                    c.prepare(&format!("SELECT {COLUMNS} FROM providers ORDER BY name"))?;
                let rows = statement
                    .query_map([], row_to_record)?
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
                    &format!("SELECT {COLUMNS} FROM providers WHERE name = ?1"),
                    [&key],
                    row_to_record,
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
                let headers = serde_json::to_string(&record.header_names)
                    .map_err(|err| Error::internal(format!("cannot store header names: {err}")))?;
                tx.execute(
                    "INSERT INTO providers (name, url, token, version, created_ms, kind, headers, timeout_seconds) \
                     VALUES (?1, ?2, NULL, ?3, ?4, ?5, ?6, ?7)",
                    (
                        &record.name,
                        &record.url,
                        &record.version,
                        now_ms(),
                        record.kind.name(),
                        &headers,
                        record.timeout_seconds,
                    ),
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

impl Providers {
    /// Move the bearer tokens older releases kept in state.db into
    /// `secrets`, then empty the column: a token is in the secrets file
    /// before it leaves state.db, so a crash in between loses nothing. How
    /// many were moved. On a read-only state.db nothing is moved (the
    /// column cannot be emptied); the next start on a writable one does it.
    pub async fn move_tokens_to(&self, secrets: &Secrets) -> Result<usize> {
        if self.store.is_read_only() {
            return Ok(0);
        }
        let tokens: Vec<(String, String)> = self
            .store
            .read(|c| {
                let mut statement = c.prepare(
                    "SELECT name, token FROM providers WHERE token IS NOT NULL AND token != ''",
                )?;
                let rows = statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        if tokens.is_empty() {
            return Ok(0);
        }
        // Overwrite the old row's bytes instead of leaving them in the
        // page's free space, and fold the WAL into the file afterwards, so
        // no copy of a token stays in state.db's bytes (bug reports and
        // backups copy it).
        self.store
            .read(|c| Ok(c.pragma_update(None, "secure_delete", "ON")?))
            .await?;
        for (name, token) in &tokens {
            secrets.set(&key_secret(name), token).await?;
            let name = name.clone();
            self.store
                .write(move |tx| {
                    tx.execute("UPDATE providers SET token = NULL WHERE name = ?1", [&name])?;
                    Ok(())
                })
                .await?;
        }
        self.store
            .read(|c| {
                c.pragma_update(None, "secure_delete", "OFF")?;
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                Ok(())
            })
            .await?;
        tracing::info!(
            count = tokens.len(),
            "provider tokens moved from state.db to the secrets file"
        );
        Ok(tokens.len())
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
        let record = ProviderRecord {
            name: "lan".into(),
            url: "http://lan:1234/v1".into(),
            kind: ProviderKind::OpenAi,
            version: String::new(),
            header_names: vec!["OpenAI-Organization".into()],
            timeout_seconds: 30,
        };
        providers.add(record.clone()).await?;
        assert_eq!(providers.list().await?.len(), 1);
        assert_eq!(providers.get("lan").await?, record);
        assert_eq!(
            providers
                .add(ProviderRecord {
                    url: "http://x".into(),
                    ..record.clone()
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

    #[tokio::test]
    async fn tokens_leave_state_db_for_the_secrets_file() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let db = dir.path().join("state.db");
        {
            // A state.db as release 7 left it: a token in the table.
            let (store, _) = Store::open(&db)?;
            store
                .write(|tx| {
                    tx.execute(
                        "INSERT INTO providers (name, url, token, version, created_ms) \
                         VALUES ('gpu', 'http://gpu:11434', 'sekrit-token', '0.5', 1)",
                        [],
                    )?;
                    Ok(())
                })
                .await?;
        }
        let (store, _) = Store::open(&db)?;
        let providers = Providers::new(store.clone());
        let secrets = Secrets::at(dir.path().join("secrets.json"));
        assert_eq!(providers.move_tokens_to(&secrets).await?, 1);
        assert_eq!(
            secrets.get(&key_secret("gpu")).await?.as_deref(),
            Some("sekrit-token")
        );
        assert_eq!(providers.get("gpu").await?.kind, ProviderKind::Ollama);
        let left: Option<String> = store
            .read(|c| Ok(c.query_row("SELECT token FROM providers", [], |r| r.get(0))?))
            .await?;
        assert_eq!(left, None);
        assert_eq!(providers.move_tokens_to(&secrets).await?, 0, "idempotent");
        drop(store);
        let bytes = std::fs::read(&db).map_err(|e| Error::internal(e.to_string()))?;
        let wal = std::fs::read(dir.path().join("state.db-wal")).unwrap_or_default();
        for file in [&bytes, &wal] {
            assert!(
                !file.windows(12).any(|w| w == b"sekrit-token"),
                "the token is gone from the database's bytes"
            );
        }
        Ok(())
    }
}
