//! Bearer tokens and the grants they carry: creation (a random secret shown
//! once), storage as a SHA-256 hash in state.db, listing, revocation,
//! expiry, and the check made on every request that presents one; and
//! [`Caller`], who a request comes from. A grant is a set of [`Scopes`]
//! (write includes read; admin includes every scope; everyone has status),
//! the projects it may use, an expiry, and the destructive acts it may do
//! without asking, and for inference (the gateway, Chat, Generate, Embed)
//! the models it may use and its requests per minute at the gateway. Each
//! live token carries a cancellation token that revocation fires, so
//! streams opened with it end at once.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, RwLock},
};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rusqlite::OptionalExtension;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::{
    access::ConfirmKind,
    error::{Error, ErrorKind, Result},
    model_route,
    platform::peer_process::PeerProcess,
    store::{Store, now_ms},
};

/// One kind of access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// What every client has: the agent's and the servers' status.
    Status,
    /// Project contents, logs, processes, events.
    Read,
    /// Running models.
    Infer,
    /// Calls that change state.
    Write,
    /// Agent administration.
    Admin,
}

impl Scope {
    /// Every scope, in the order they are listed.
    pub const ALL: [Scope; 5] = [
        Scope::Status,
        Scope::Read,
        Scope::Infer,
        Scope::Write,
        Scope::Admin,
    ];

    /// The ordered levels of tokens made before scopes were sets.
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
            Self::Status => "status",
            Self::Read => "read",
            Self::Infer => "infer",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    /// From its lower-case name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.name().eq_ignore_ascii_case(name.trim()))
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes, with the implications applied: status always, write
/// brings read, admin brings everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Scopes(u8);

impl Scopes {
    /// Only status: a client never admitted.
    pub const STATUS: Scopes = Scopes(1);

    /// Every scope.
    pub fn all() -> Self {
        Self::of([Scope::Admin])
    }

    /// The set holding `scopes` and what they imply.
    pub fn of(scopes: impl IntoIterator<Item = Scope>) -> Self {
        let mut bits = Scope::Status.bit();
        for scope in scopes {
            bits |= scope.bit();
            match scope {
                Scope::Admin => {
                    bits |= Scope::ALL.iter().fold(0, |all, scope| all | scope.bit());
                }
                Scope::Write => bits |= Scope::Read.bit(),
                Scope::Status | Scope::Read | Scope::Infer => {}
            }
        }
        Self(bits)
    }

    /// Whether `scope` is in the set.
    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Whether every scope of `other` is in this set.
    pub fn covers(self, other: Scopes) -> bool {
        self.0 & other.0 == other.0
    }

    /// The scopes of both sets.
    pub fn intersect(self, other: Scopes) -> Self {
        Self((self.0 & other.0) | Scope::Status.bit())
    }

    /// The scopes, in [`Scope::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL
            .into_iter()
            .filter(move |scope| self.contains(*scope))
    }

    /// Comma-separated names ("status,read,write").
    pub fn names(self) -> String {
        self.iter().map(Scope::name).collect::<Vec<_>>().join(",")
    }

    /// From comma-separated names; unknown names are an error naming them.
    pub fn parse(text: &str) -> Result<Self> {
        let mut scopes = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            scopes.push(Scope::parse(name).ok_or_else(|| {
                Error::invalid_argument(
                    "scopes",
                    format!(
                        "unknown scope {name:?}; scopes are status, read, infer, write and admin"
                    ),
                )
            })?);
        }
        Ok(Self::of(scopes))
    }

    /// The highest of the old ordered levels the set holds (admin, write,
    /// read), or status.
    pub fn level(self) -> Scope {
        [Scope::Admin, Scope::Write, Scope::Read]
            .into_iter()
            .find(|scope| self.contains(*scope))
            .unwrap_or(Scope::Status)
    }
}

/// Who a request comes from, as the access layer identified them.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Whoever presented the owner credential (or, with `access.socket_clients
    /// = "trusted"`, any process of the user on the socket): every scope,
    /// and no project-roots limit (the hard deny-list still binds).
    Owner,
    /// A client presenting a token: what its grant allows.
    Token(TokenGrant),
    /// A client that presented nothing: status only.
    Anonymous,
}

impl Caller {
    /// The scopes this caller holds.
    pub fn scopes(&self) -> Scopes {
        match self {
            Self::Owner => Scopes::all(),
            Self::Token(grant) => grant.scopes,
            Self::Anonymous => Scopes::STATUS,
        }
    }

    /// Whether the caller holds `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes().contains(scope)
    }

    /// Whether this is the owner.
    pub fn is_owner(&self) -> bool {
        matches!(self, Self::Owner)
    }

    /// The id the activity log and limits know the caller by: "owner",
    /// "anonymous", or the grant's id.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Owner => "owner",
            Self::Token(grant) => &grant.id,
            Self::Anonymous => "anonymous",
        }
    }

    /// The caller's name for people: "owner", "anonymous", or the name the
    /// client gave itself.
    pub fn client_name(&self) -> &str {
        match self {
            Self::Owner => "owner",
            Self::Token(grant) => &grant.name,
            Self::Anonymous => "anonymous",
        }
    }

    /// How the caller is named in errors and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Owner => "the owner".to_owned(),
            Self::Token(grant) => format!(
                "client {:?} (token {}, scopes {})",
                grant.name,
                grant.id,
                grant.scopes.names()
            ),
            Self::Anonymous => "a client that was not admitted".to_owned(),
        }
    }

    /// The project folders the caller is limited to: `None` for the owner
    /// and for grants covering every project inside the roots.
    pub fn projects(&self) -> Option<&[PathBuf]> {
        match self {
            Self::Token(grant) if !grant.projects.is_empty() => Some(&grant.projects),
            Self::Owner | Self::Token(_) | Self::Anonymous => None,
        }
    }
}

/// What a live token grants.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The token's id.
    pub id: String,
    /// The client's name (self-declared) or the token's label.
    pub name: String,
    /// Its scopes.
    pub scopes: Scopes,
    /// Project folders it may use; empty for every project inside the
    /// project roots.
    pub projects: Vec<PathBuf>,
    /// When it stops working, ms since the epoch.
    pub expires_ms: Option<i64>,
    /// Destructive acts it may do without asking.
    pub without_confirmation: Vec<ConfirmKind>,
    /// Models it may use for inference ("model" or "provider/model");
    /// empty allows every model.
    pub allowed_models: Vec<String>,
    /// Gateway requests per minute; 0 means no limit.
    pub requests_per_minute: u32,
    /// Fires when the token is revoked.
    pub revoked: CancellationToken,
}

impl TokenGrant {
    /// A grant of `scopes` on every project, never expiring (tests and
    /// tokens made by the owner).
    pub fn new(id: impl Into<String>, scopes: Scopes) -> Self {
        let id = id.into();
        Self {
            name: id.clone(),
            id,
            scopes,
            projects: Vec::new(),
            expires_ms: None,
            without_confirmation: Vec::new(),
            allowed_models: Vec::new(),
            requests_per_minute: 0,
            revoked: CancellationToken::new(),
        }
    }

    /// Whether the grant may use `model` on `provider`, as the request
    /// resolved it (see [`model_route::allowed`]).
    pub fn allows_model(&self, provider: &str, model: &str) -> bool {
        model_route::allowed(&self.allowed_models, provider, model)
    }
}

/// What a new grant holds, beyond its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantTerms {
    /// Scopes.
    pub scopes: Scopes,
    /// Project folders; empty for every project inside the roots.
    pub projects: Vec<PathBuf>,
    /// When it ends, ms since the epoch.
    pub expires_ms: Option<i64>,
    /// Dropped when the agent stops.
    pub this_run_only: bool,
    /// Destructive acts allowed without asking.
    pub without_confirmation: Vec<ConfirmKind>,
    /// The name the client gave itself, when admitted through a request.
    pub client_name: String,
    /// Who asked, when admitted through a request.
    pub peer: Vec<PeerProcess>,
    /// Models it may use for inference; empty allows every model.
    pub allowed_models: Vec<String>,
    /// Gateway requests per minute; 0 means no limit.
    pub requests_per_minute: u32,
}

/// A token as listed (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// Identifier.
    pub id: String,
    /// Unique label.
    pub name: String,
    /// Granted scopes.
    pub scopes: Scopes,
    /// Creation (or approval) time, ms since the epoch.
    pub created_ms: i64,
    /// Last use, ms since the epoch; 0 if never.
    pub last_used_ms: i64,
    /// What else the grant holds.
    pub terms: GrantTerms,
}

/// SHA-256 of a secret → what it grants.
type TokenIndex = HashMap<[u8; 32], TokenGrant>;

/// Prefix that makes tokens recognisable (e.g. to secret scanners).
pub const TOKEN_PREFIX: &str = "omp_";
const MAX_NAME_LEN: usize = 100;

/// Tokens, backed by state.db with an in-memory index of hashes so that
/// checking a request costs no database round trip.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: Store,
    by_hash: Arc<RwLock<TokenIndex>>,
    /// When each token's use was last written, so a busy client costs one
    /// write a minute, not one per call.
    use_recorded: Arc<Mutex<HashMap<String, i64>>>,
}

/// How stale a token's "last used" may be.
const USE_RECORD_INTERVAL_MS: i64 = 60_000;

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// `N` random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|err| Error::internal(format!("no randomness from the OS: {err}")))?;
    Ok(bytes)
}

const COLUMNS: &str = "id, name, scope, created_ms, last_used_ms, scopes, projects, expires_ms, \
                       this_run, no_confirm, client_name, peer, allowed_models, rpm";
/// The column after [`COLUMNS`] in queries that also read the hash.
const HASH_COLUMN: usize = 14;

impl Tokens {
    /// Load the index from the store, dropping grants made for one run of
    /// the agent and grants that expired (from the store too, unless it is
    /// read-only: then they are only left out).
    pub async fn load(store: Store) -> Result<Self> {
        let now = now_ms();
        let read = move |c: &rusqlite::Connection| -> Result<Vec<_>> {
            let mut statement = c.prepare(&format!(
                "SELECT {COLUMNS}, secret_hash FROM tokens
                 WHERE NOT (this_run = 1 OR (expires_ms > 0 AND expires_ms <= ?1))"
            ))?;
            let rows = statement
                .query_map([now], |row| {
                    Ok((row_to_info(row)?, row.get::<_, Vec<u8>>(HASH_COLUMN)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        };
        let rows = if store.is_read_only() {
            store.read(read).await?
        } else {
            store
                .write(move |tx| {
                    tx.execute(
                        "DELETE FROM tokens WHERE this_run = 1 OR (expires_ms > 0 AND expires_ms <= ?1)",
                        [now],
                    )?;
                    read(tx)
                })
                .await?
        };
        let mut by_hash = HashMap::new();
        for (info, hash) in rows {
            if let (Ok(hash), Some(info)) = (<[u8; 32]>::try_from(hash), info) {
                by_hash.insert(hash, info.grant(CancellationToken::new()));
            }
        }
        Ok(Self {
            store,
            by_hash: Arc::new(RwLock::new(by_hash)),
            use_recorded: Arc::default(),
        })
    }

    /// Create a token the owner asked for by name; returns the secret
    /// (shown once) and its description.
    pub async fn create(&self, name: &str, scopes: Scopes) -> Result<(String, TokenInfo)> {
        self.create_grant(
            name,
            GrantTerms {
                scopes,
                ..GrantTerms::default()
            },
        )
        .await
    }

    /// Create a token holding `terms`; returns the secret (shown once) and
    /// its description.
    pub async fn create_grant(&self, name: &str, terms: GrantTerms) -> Result<(String, TokenInfo)> {
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
        model_route::check_allowed(&terms.allowed_models)?;
        let secret = format!(
            "{TOKEN_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
        );
        let id = hex(&random_bytes::<6>()?);
        let secret_hash = hash(&secret);
        let info = TokenInfo {
            id: id.clone(),
            name: name.clone(),
            scopes: terms.scopes,
            created_ms: now_ms(),
            last_used_ms: 0,
            terms,
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
                    "INSERT INTO tokens (id, name, scope, secret_hash, created_ms, scopes, projects, \
                     expires_ms, this_run, no_confirm, client_name, peer, allowed_models, rpm) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                    rusqlite::params![
                        &row.id,
                        &row.name,
                        level_number(row.scopes),
                        &secret_hash[..],
                        row.created_ms,
                        row.scopes.names(),
                        join_paths(&row.terms.projects),
                        row.terms.expires_ms.unwrap_or(0),
                        i64::from(row.terms.this_run_only),
                        row.terms
                            .without_confirmation
                            .iter()
                            .map(|kind| kind.name())
                            .collect::<Vec<_>>()
                            .join(","),
                        &row.terms.client_name,
                        encode_peer(&row.terms.peer),
                        row.terms.allowed_models.join("\n"),
                        i64::from(row.terms.requests_per_minute),
                    ],
                )?;
                Ok(())
            })
            .await?;
        self.index_mut()
            .insert(secret_hash, info.grant(CancellationToken::new()));
        Ok((secret, info))
    }

    /// All live tokens, oldest first (expired ones are dropped).
    pub async fn list(&self) -> Result<Vec<TokenInfo>> {
        self.expire().await?;
        self.store
            .read(|c| {
                let mut statement = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM tokens ORDER BY created_ms, id"
                ))?;
                let rows = statement
                    .query_map([], row_to_info)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows.into_iter().flatten().collect())
            })
            .await
    }

    /// Drop the grants whose time is up, ending their streams; returns them.
    pub async fn expire(&self) -> Result<Vec<TokenInfo>> {
        let now = now_ms();
        let gone: Vec<([u8; 32], String)> = crate::sync::read(&self.by_hash)
            .iter()
            .filter(|(_, grant)| grant.expires_ms.is_some_and(|at| at <= now))
            .map(|(hash, grant)| (*hash, grant.id.clone()))
            .collect();
        let mut infos = Vec::new();
        for (_, id) in gone {
            if let Ok(info) = self.revoke(&id).await {
                infos.push(info);
            }
        }
        Ok(infos)
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
                // By id, by the token's label, or by the name a client gave
                // itself (when only one client has that name).
                let mut statement = tx.prepare(&format!(
                    "SELECT {COLUMNS}, secret_hash FROM tokens \
                     WHERE id = ?1 OR name = ?1 OR (client_name = ?1 AND client_name != '')"
                ))?;
                let found = statement
                    .query_map([&key], |row| {
                        Ok((row_to_info(row)?, row.get::<_, Vec<u8>>(HASH_COLUMN)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                drop(statement);
                let exact = found.iter().position(|(info, _)| {
                    info.as_ref().is_some_and(|i| i.id == key || i.name == key)
                });
                let chosen = match (exact, found.len()) {
                    (Some(index), _) => found.into_iter().nth(index),
                    (None, 0 | 1) => found.into_iter().next(),
                    (None, many) => {
                        let ids: Vec<String> = found
                            .iter()
                            .filter_map(|(info, _)| info.as_ref().map(|i| i.id.clone()))
                            .collect();
                        return Err(Error::invalid_argument(
                            "id",
                            format!(
                                "{many} clients are named {key:?} ({}); name one by its id",
                                ids.join(", ")
                            ),
                        ));
                    }
                };
                let Some((Some(info), secret_hash)) = chosen else {
                    return Err(Error::not_found(format!(
                        "no client or token with id or name {key:?}"
                    )));
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

    /// The live grant with this id, if any.
    pub fn grant(&self, id: &str) -> Option<TokenGrant> {
        crate::sync::read(&self.by_hash)
            .values()
            .find(|grant| grant.id == id)
            .cloned()
    }

    /// What a presented secret grants, if it is a live, unexpired token.
    /// Records the use in the background, at most once a minute per token.
    pub fn verify(&self, secret: &str) -> Option<TokenGrant> {
        let secret_hash = hash(secret);
        let grant = crate::sync::read(&self.by_hash)
            .get(&secret_hash)
            .cloned()?;
        if grant.expires_ms.is_some_and(|at| at <= now_ms()) {
            return None;
        }
        let now = now_ms();
        let due = {
            let mut recorded = crate::sync::lock(&self.use_recorded);
            let last = recorded.get(&grant.id).copied().unwrap_or(i64::MIN);
            let due = now.saturating_sub(last) >= USE_RECORD_INTERVAL_MS;
            if due {
                recorded.insert(grant.id.clone(), now);
            }
            due
        };
        let id = grant.id.clone();
        let store = self.store.clone();
        if due && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let used = now;
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

impl TokenInfo {
    fn grant(&self, revoked: CancellationToken) -> TokenGrant {
        TokenGrant {
            id: self.id.clone(),
            name: if self.terms.client_name.is_empty() {
                self.name.clone()
            } else {
                self.terms.client_name.clone()
            },
            scopes: self.scopes,
            projects: self.terms.projects.clone(),
            expires_ms: self.terms.expires_ms,
            without_confirmation: self.terms.without_confirmation.clone(),
            allowed_models: self.terms.allowed_models.clone(),
            requests_per_minute: self.terms.requests_per_minute,
            revoked,
        }
    }
}

/// The old `scope` column: the highest ordered level, kept so an older
/// agent reading this database after a rollback still understands it.
fn level_number(scopes: Scopes) -> i64 {
    match scopes.level() {
        Scope::Admin => 3,
        Scope::Write => 2,
        Scope::Read => 1,
        Scope::Status | Scope::Infer => 0,
    }
}

fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|path| path.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn encode_peer(peer: &[PeerProcess]) -> String {
    peer.iter()
        .map(|process| {
            format!(
                "{}\t{}\t{}",
                process.pid,
                process.executable.replace(['\t', '\n'], " "),
                process.command_line.replace(['\t', '\n'], " ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_peer(text: &str) -> Vec<PeerProcess> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            Some(PeerProcess {
                pid: fields.next()?.parse().ok()?,
                executable: fields.next().unwrap_or_default().to_owned(),
                command_line: fields.next().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

fn row_to_info(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<TokenInfo>> {
    let level: i64 = row.get(2)?;
    let names: String = row.get(5).unwrap_or_default();
    let scopes = if names.is_empty() {
        // A token made before scopes were sets: its level, as it was.
        match Scope::from_level(level) {
            Some(Scope::Read) => Scopes::of([Scope::Read]),
            Some(Scope::Write) => Scopes::of([Scope::Write, Scope::Infer]),
            Some(scope) => Scopes::of([scope]),
            None => return Ok(None),
        }
    } else {
        match Scopes::parse(&names) {
            Ok(scopes) => scopes,
            Err(_) => return Ok(None),
        }
    };
    let projects: String = row.get(6).unwrap_or_default();
    let expires_ms: i64 = row.get(7).unwrap_or_default();
    let no_confirm: String = row.get(9).unwrap_or_default();
    let peer: String = row.get(11).unwrap_or_default();
    let allowed_models: String = row.get(12).unwrap_or_default();
    let rpm: i64 = row.get(13).unwrap_or_default();
    Ok(Some(TokenInfo {
        id: row.get(0).unwrap_or_default(),
        name: row.get(1).unwrap_or_default(),
        scopes,
        created_ms: row.get(3).unwrap_or_default(),
        last_used_ms: row.get(4).unwrap_or_default(),
        terms: GrantTerms {
            scopes,
            projects: projects
                .lines()
                .filter(|line| !line.is_empty())
                .map(PathBuf::from)
                .collect(),
            expires_ms: (expires_ms > 0).then_some(expires_ms),
            this_run_only: row.get::<_, i64>(8).unwrap_or_default() != 0,
            without_confirmation: no_confirm
                .split(',')
                .filter_map(ConfirmKind::parse)
                .collect(),
            client_name: row.get(10).unwrap_or_default(),
            peer: decode_peer(&peer),
            allowed_models: allowed_models
                .lines()
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect(),
            requests_per_minute: u32::try_from(rpm).unwrap_or(0),
        },
    }))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_models_match_by_name_or_provider_and_tag() {
        let mut grant = TokenGrant::new("t", Scopes::of([Scope::Infer]));
        assert!(
            grant.allows_model("local", "anything:7b"),
            "empty allows all"
        );
        grant.allowed_models = vec!["llama3.2".into(), "lmstudio/qwen2.5-7b".into()];
        assert!(grant.allows_model("local", "llama3.2:latest"));
        assert!(grant.allows_model("other", "llama3.2"));
        assert!(grant.allows_model("lmstudio", "qwen2.5-7b"));
        assert!(!grant.allows_model("vllm", "qwen2.5-7b"));
        assert!(!grant.allows_model("local", "llama3.2:1b"));
        assert!(!grant.allows_model("local", "mistral"));
        grant.allowed_models = vec!["org/model-7b".into()];
        assert!(
            grant.allows_model("vllm", "org/model-7b"),
            "a slash in the id"
        );
    }

    #[tokio::test]
    async fn inference_limits_are_stored_and_granted() -> Result<()> {
        let store = Store::in_memory()?;
        let tokens = Tokens::load(store.clone()).await?;
        let terms = GrantTerms {
            scopes: Scopes::of([Scope::Infer]),
            allowed_models: vec!["llama3.2".into(), "lmstudio/qwen".into()],
            requests_per_minute: 30,
            ..GrantTerms::default()
        };
        let (secret, info) = tokens.create_grant("gw", terms.clone()).await?;
        assert_eq!(info.terms, terms);
        let reloaded = Tokens::load(store).await?;
        let grant = reloaded
            .verify(&secret)
            .ok_or_else(|| Error::internal("no grant"))?;
        assert_eq!(grant.allowed_models, terms.allowed_models);
        assert_eq!(grant.requests_per_minute, 30);
        assert_eq!(reloaded.list().await?[0].terms, terms);
        let bad = GrantTerms {
            allowed_models: vec!["two words".into()],
            ..terms
        };
        let err = tokens.create_grant("bad", bad).await.unwrap_err();
        assert_eq!(err.field(), Some("allowed_models"));
        Ok(())
    }

    #[tokio::test]
    async fn create_verify_revoke() -> Result<()> {
        let tokens = Tokens::load(Store::in_memory()?).await?;
        let (secret, info) = tokens.create("ci", Scopes::of([Scope::Read])).await?;
        assert!(secret.starts_with(TOKEN_PREFIX));
        let grant = tokens
            .verify(&secret)
            .ok_or_else(|| Error::internal("no grant"))?;
        assert!(grant.scopes.contains(Scope::Read) && !grant.scopes.contains(Scope::Write));
        let revoked = grant.revoked;
        assert!(tokens.verify("omp_wrong").is_none());
        let listed = tokens.list().await?;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, info.id);
        let duplicate = tokens.create("ci", Scopes::all()).await.unwrap_err();
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
    async fn a_client_is_revoked_by_the_name_it_gave_itself_when_that_is_unique() -> Result<()> {
        let tokens = Tokens::load(Store::in_memory()?).await?;
        let named = |client_name: &str| GrantTerms {
            scopes: Scopes::of([Scope::Read]),
            client_name: client_name.to_owned(),
            ..GrantTerms::default()
        };
        tokens
            .create_grant("backup (111-111)", named("backup"))
            .await?;
        let revoked = tokens.revoke("backup").await?;
        assert_eq!(revoked.name, "backup (111-111)");
        tokens.create_grant("vs (1)", named("vs")).await?;
        tokens.create_grant("vs (2)", named("vs")).await?;
        let ambiguous = tokens.revoke("vs").await.unwrap_err();
        assert_eq!(ambiguous.field(), Some("id"));
        assert!(ambiguous.message().contains("2 clients"), "{ambiguous}");
        tokens.revoke("vs (2)").await?;
        tokens.revoke("vs").await?;
        Ok(())
    }

    #[tokio::test]
    async fn grants_survive_a_reload_except_this_run_only_and_expired_ones() -> Result<()> {
        let store = Store::in_memory()?;
        let tokens = Tokens::load(store.clone()).await?;
        let terms = GrantTerms {
            scopes: Scopes::of([Scope::Write]),
            projects: vec![PathBuf::from("/home/me/app")],
            without_confirmation: vec![ConfirmKind::Push],
            client_name: "VS Code".into(),
            peer: vec![PeerProcess {
                pid: 42,
                executable: "/usr/bin/code".into(),
                command_line: "code --x".into(),
            }],
            ..GrantTerms::default()
        };
        let (kept, info) = tokens.create_grant("VS Code 1", terms.clone()).await?;
        let (once, _) = tokens
            .create_grant(
                "once",
                GrantTerms {
                    this_run_only: true,
                    ..terms.clone()
                },
            )
            .await?;
        let (old, _) = tokens
            .create_grant(
                "old",
                GrantTerms {
                    expires_ms: Some(now_ms() - 1),
                    ..terms.clone()
                },
            )
            .await?;
        assert!(tokens.verify(&old).is_none(), "expired grants are refused");
        let reloaded = Tokens::load(store).await?;
        let grant = reloaded
            .verify(&kept)
            .ok_or_else(|| Error::internal("kept grant lost"))?;
        assert_eq!(grant.name, "VS Code");
        assert_eq!(grant.projects, terms.projects);
        assert_eq!(grant.without_confirmation, vec![ConfirmKind::Push]);
        assert!(grant.scopes.contains(Scope::Read), "write brings read");
        assert!(reloaded.verify(&once).is_none());
        let mut listed = reloaded.list().await?;
        // `verify` records the use in the background, and whether that
        // write lands before the list is a race (a warm CI run lost it);
        // the test of recorded uses below waits for it.
        for token in &mut listed {
            token.last_used_ms = 0;
        }
        assert_eq!(listed, vec![info]);
        Ok(())
    }

    #[tokio::test]
    async fn a_grant_past_its_time_is_revoked_and_its_streams_end() -> Result<()> {
        let tokens = Tokens::load(Store::in_memory()?).await?;
        let (secret, _) = tokens
            .create_grant(
                "soon",
                GrantTerms {
                    scopes: Scopes::of([Scope::Read]),
                    expires_ms: Some(now_ms() + 60_000),
                    ..GrantTerms::default()
                },
            )
            .await?;
        let grant = tokens.verify(&secret).ok_or_else(|| Error::internal("x"))?;
        assert!(tokens.expire().await?.is_empty());
        {
            let mut index = tokens.index_mut();
            for grant in index.values_mut() {
                grant.expires_ms = Some(now_ms() - 1);
            }
        }
        assert_eq!(tokens.expire().await?.len(), 1);
        assert!(grant.revoked.is_cancelled());
        Ok(())
    }

    #[tokio::test]
    async fn a_busy_token_records_its_use_once_a_minute() -> Result<()> {
        let store = Store::in_memory()?;
        let tokens = Tokens::load(store.clone()).await?;
        let (secret, info) = tokens.create("busy", Scopes::of([Scope::Read])).await?;
        let recorded_at = |tokens: &Tokens| {
            crate::sync::lock(&tokens.use_recorded)
                .get(&info.id)
                .copied()
        };
        tokens.verify(&secret);
        let first = recorded_at(&tokens);
        assert!(first.is_some());
        for _ in 0..50 {
            tokens.verify(&secret);
        }
        assert_eq!(
            recorded_at(&tokens),
            first,
            "no second write within the minute"
        );
        crate::sync::lock(&tokens.use_recorded).insert(info.id.clone(), 0);
        tokens.verify(&secret);
        assert_ne!(
            recorded_at(&tokens),
            Some(0),
            "a minute later it is written again"
        );
        // The one write lands in the background.
        for _ in 0..200 {
            if tokens.list().await?[0].last_used_ms > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let listed = tokens.list().await?;
        assert!(listed[0].last_used_ms >= info.created_ms, "{listed:?}");
        Ok(())
    }

    #[test]
    fn scope_sets_apply_their_implications() {
        let write = Scopes::of([Scope::Write]);
        assert!(write.contains(Scope::Read) && write.contains(Scope::Status));
        assert!(!write.contains(Scope::Infer) && !write.contains(Scope::Admin));
        assert!(Scopes::of([Scope::Admin]).covers(Scopes::of([Scope::Infer, Scope::Write])));
        assert_eq!(Scopes::STATUS.names(), "status");
        assert_eq!(
            Scopes::parse("read, infer").map(Scopes::names),
            Ok("status,read,infer".to_owned())
        );
        let err = Scopes::parse("read,root").unwrap_err();
        assert!(err.message().contains("\"root\""), "{err}");
        assert_eq!(Scopes::of([Scope::Infer]).level(), Scope::Status);
        assert_eq!(
            Scopes::of([Scope::Infer, Scope::Read])
                .intersect(Scopes::of([Scope::Read]))
                .names(),
            "status,read"
        );
    }

    #[tokio::test]
    async fn bad_names_are_refused() -> Result<()> {
        let tokens = Tokens::load(Store::in_memory()?).await?;
        let read = Scopes::of([Scope::Read]);
        assert_eq!(
            tokens.create("  ", read).await.unwrap_err().field(),
            Some("name")
        );
        assert_eq!(
            tokens.create("a\u{7}b", read).await.unwrap_err().field(),
            Some("name")
        );
        Ok(())
    }

    #[test]
    fn peers_round_trip_through_their_column() {
        let peer = vec![
            PeerProcess {
                pid: 7,
                executable: "/bin/a\tb".into(),
                command_line: "a\nb c".into(),
            },
            PeerProcess {
                pid: 3,
                ..PeerProcess::default()
            },
        ];
        let decoded = decode_peer(&encode_peer(&peer));
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].executable, "/bin/a b");
        assert_eq!(decoded[0].command_line, "a b c");
        assert_eq!(decoded[1].pid, 3);
    }
}
