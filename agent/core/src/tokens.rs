//! Access tokens for the TCP listener: creation (a random secret shown
//! once), storage as a SHA-256 hash in state.db, listing, revocation, and the
//! check made on every TCP request, and [`Caller`], who a request comes
//! from. Scopes are ordered levels: admin includes write, write includes
//! read. Each live token carries a cancellation token that revocation fires,
//! so streams opened with it end at once.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, ErrorKind, Result},
    store::{Store, now_ms},
};

/// An access level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Read-only calls.
    Read = 1,
    /// Calls that change state.
    Write = 2,
    /// Agent administration.
    Admin = 3,
}

impl Scope {
    /// From the stored integer.
    pub fn from_level(level: i64) -> Option<Self> {
        match level {
            1 => Some(Self::Read),
            2 => Some(Self::Write),
            3 => Some(Self::Admin),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

/// Who a request comes from, as the access layer identified them.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The user the agent runs as, on the Unix socket: every scope, and no
    /// project-roots limit (the hard deny-list still binds).
    Owner,
    /// A bearer token on the TCP listener.
    Token(TokenGrant),
}

impl Caller {
    /// The scope this caller holds.
    pub fn scope(&self) -> Scope {
        match self {
            Self::Owner => Scope::Admin,
            Self::Token(grant) => grant.scope,
        }
    }

    /// Whether this is the owner rather than a token.
    pub fn is_owner(&self) -> bool {
        matches!(self, Self::Owner)
    }

    /// How the caller is named in errors and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Owner => "the owner".to_owned(),
            Self::Token(grant) => format!("token {} ({})", grant.id, grant.scope.name()),
        }
    }
}

/// What a live token grants.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The token's id.
    pub id: String,
    /// Its scope.
    pub scope: Scope,
    /// Fires when the token is revoked.
    pub revoked: CancellationToken,
}

/// A token as listed (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Identifier.
    pub id: String,
    /// Unique label.
    pub name: String,
    /// Granted level.
    pub scope: Scope,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
    /// Last use, ms since the epoch; 0 if never.
    pub last_used_ms: i64,
}

/// SHA-256 of a secret → what it grants.
type TokenIndex = HashMap<[u8; 32], TokenGrant>;

/// Prefix that makes tokens recognisable (e.g. to secret scanners).
const TOKEN_PREFIX: &str = "omp_";
const MAX_NAME_LEN: usize = 100;

/// Tokens, backed by state.db with an in-memory index of hashes so that
/// checking a request costs no database round trip.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: Store,
    by_hash: Arc<RwLock<TokenIndex>>,
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|err| Error::internal(format!("no randomness from the OS: {err}")))?;
    Ok(bytes)
}

impl Tokens {
    /// Load the index from the store.
    pub async fn load(store: Store) -> Result<Self> {
        let rows = store
            .read(|c| {
                let mut statement = c.prepare("SELECT secret_hash, id, scope FROM tokens")?;
                let rows = statement
                    .query_map([], |row| {
                        Ok((
                            row.get::<_, Vec<u8>>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        let mut by_hash = HashMap::new();
        for (hash, id, level) in rows {
            if let (Ok(hash), Some(scope)) = (<[u8; 32]>::try_from(hash), Scope::from_level(level))
            {
                by_hash.insert(
                    hash,
                    TokenGrant {
                        id,
                        scope,
                        revoked: CancellationToken::new(),
                    },
                );
            }
        }
        Ok(Self {
            store,
            by_hash: Arc::new(RwLock::new(by_hash)),
        })
    }

    /// Create a token; returns the secret (shown once) and its description.
    pub async fn create(&self, name: &str, scope: Scope) -> Result<(String, TokenInfo)> {
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(Error::invalid_argument("name", "a token needs a name"));
        }
        if name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
            return Err(Error::invalid_argument(
                "name",
                format!("at most {MAX_NAME_LEN} bytes of printable text"),
            ));
        }
        let secret = format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
        );
        let id = hex(&random_bytes::<6>()?);
        let secret_hash = hash(&secret);
        let info = TokenInfo {
            id: id.clone(),
            name: name.clone(),
            scope,
            created_ms: now_ms(),
            last_used_ms: 0,
        };
        let row = info.clone();
        self.store
            .write(move |tx| {
                let exists: Option<String> = tx
                    .query_row("SELECT id FROM tokens WHERE name = ?1", [&row.name], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if exists.is_some() {
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!("a token named {:?} already exists; revoke it first or pick another name", row.name),
                    ));
                }
                tx.execute(
                    "INSERT INTO tokens (id, name, scope, secret_hash, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                    (&row.id, &row.name, row.scope as i64, &secret_hash[..], row.created_ms),
                )?;
                Ok(())
            })
            .await?;
        self.index_mut().insert(
            secret_hash,
            TokenGrant {
                id,
                scope,
                revoked: CancellationToken::new(),
            },
        );
        Ok((secret, info))
    }

    /// All tokens, oldest first.
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        self.store
            .read(|c| {
                let mut statement = c.prepare(
                    "SELECT id, name, scope, created_ms, last_used_ms FROM tokens ORDER BY created_ms, id",
                )?;
                let rows = statement
                    .query_map([], row_to_info)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows.into_iter().flatten().collect())
            })
            .await
    }

    /// Revoke a token by id or name.
    pub async fn revoke(&self, id_or_name: &str) -> Result<TokenInfo> {
        let key = id_or_name.trim().to_owned();
        if key.is_empty() {
            return Err(Error::invalid_argument("id", "name the token to revoke"));
        }
        let (info, secret_hash) = self
            .store
            .write(move |tx| {
                let found = tx
                    .query_row(
                        "SELECT id, name, scope, created_ms, last_used_ms, secret_hash FROM tokens WHERE id = ?1 OR name = ?1",
                        [&key],
                        |row| Ok((row_to_info(row)?, row.get::<_, Vec<u8>>(5)?)),
                    )
                    .optional()?;
                let Some((Some(info), secret_hash)) = found else {
                    return Err(Error::not_found(format!("no token with id or name {key:?}")));
                };
                tx.execute("DELETE FROM tokens WHERE id = ?1", [&info.id])?;
                Ok((info, secret_hash))
            })
            .await?;
        if let Ok(secret_hash) = <[u8; 32]>::try_from(secret_hash)
            && let Some(grant) = self.index_mut().remove(&secret_hash)
        {
            grant.revoked.cancel();
        }
        Ok(info)
    }

    /// What a presented secret grants, if it is a live token. Records the
    /// use in the background.
    pub fn verify(&self, secret: &str) -> Option<TokenGrant> {
        let secret_hash = hash(secret);
        let grant = crate::sync::read(&self.by_hash)
            .get(&secret_hash)
            .cloned()?;
        let id = grant.id.clone();
        let store = self.store.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let used = now_ms();
                let _ = store
                    .write(move |tx| {
                        tx.execute(
                            "UPDATE tokens SET last_used_ms = ?1 WHERE id = ?2",
                            (used, id),
                        )?;
                        Ok(())
                    })
                    .await;
            });
        }
        Some(grant)
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, TokenIndex> {
        crate::sync::write(&self.by_hash)
    }
}

fn row_to_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<TokenInfo>> {
    let level: i64 = row.get(2)?;
    Ok(Scope::from_level(level).map(|scope| TokenInfo {
        id: row.get(0).unwrap_or_default(),
        name: row.get(1).unwrap_or_default(),
        scope,
        created_ms: row.get(3).unwrap_or_default(),
        last_used_ms: row.get(4).unwrap_or_default(),
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn create_verify_revoke() -> Result<()> {
        let tokens = Tokens::load(Store::in_memory()?).await?;
        let (secret, info) = tokens.create("ci", Scope::Read).await?;
        assert!(secret.starts_with(TOKEN_PREFIX));
        let grant = tokens
            .verify(&secret)
            .map(|grant| (grant.scope, grant.revoked));
        let Some((Scope::Read, revoked)) = grant else {
            panic!("the new token should grant read");
        };
        assert!(tokens.verify("omp_wrong").is_none());
        let listed = tokens.list().await?;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, info.id);
        let duplicate = tokens.create("ci", Scope::Admin).await.unwrap_err();
        assert_eq!(duplicate.kind(), ErrorKind::AlreadyExists);
        assert!(!revoked.is_cancelled());
        tokens.revoke("ci").await?;
        assert!(revoked.is_cancelled(), "streams opened with it must end");
        assert!(tokens.verify(&secret).is_none());
        let missing = tokens.revoke("ci").await.unwrap_err();
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        Ok(())
    }

    #[tokio::test]
    async fn index_survives_reload() -> Result<()> {
        let store = Store::in_memory()?;
        let (secret, _) = Tokens::load(store.clone())
            .await?
            .create("x", Scope::Write)
            .await?;
        let reloaded = Tokens::load(store).await?;
        assert_eq!(
            reloaded.verify(&secret).map(|grant| grant.scope),
            Some(Scope::Write)
        );
        Ok(())
    }

    #[test]
    fn scopes_are_ordered() {
        assert!(Scope::Admin > Scope::Write && Scope::Write > Scope::Read);
    }

    #[tokio::test]
    async fn bad_names_are_refused() -> Result<()> {
        let tokens = Tokens::load(Store::in_memory()?).await?;
        assert_eq!(
            tokens.create("  ", Scope::Read).await.unwrap_err().field(),
            Some("name")
        );
        assert_eq!(
            tokens
                .create("a\u{7}b", Scope::Read)
                .await
                .unwrap_err()
                .field(),
            Some("name")
        );
        Ok(())
    }
}
