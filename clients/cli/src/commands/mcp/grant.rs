//! The MCP server's own access to the agent. It is a client like any
//! other, never the owner (an AI agent must not act with the user's full
//! rights): it presents `OMNIPANEL_TOKEN` when the user set one, else the
//! token it was given before (kept in a 0600 file per agent, project, name
//! and scopes), else it asks through the admission flow and waits for the
//! user's answer. Asking starts when the server starts, so the request is
//! in the tray by the time the AI agent calls its first tool; a tool call
//! waits a bounded time for the answer and otherwise tells the AI agent
//! what the user has to do.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use omnipanel_client::{Client, ClientError, Credential, Target, display};
use omnipanel_proto::v1::{self as pb, AccessRequestState, Expiry, Scope};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::{args::scopes_into_proto, output::errln};

/// What the server asks for.
#[derive(Debug, Clone)]
pub struct Wanted {
    /// The name the user sees.
    pub name: String,
    /// Scopes asked for.
    pub scopes: Vec<Scope>,
    /// The project folder (absolute): the only one asked for.
    pub project: String,
    /// How long.
    pub expiry: Expiry,
}

/// Where the grant stands.
#[derive(Debug, Clone)]
enum State {
    /// Nothing running; the text says why the last attempt ended, if one
    /// did (the agent was not running, nobody answered in time).
    Idle(Option<String>),
    /// Looking for a token or connecting.
    Starting,
    /// A request waits for the user's answer.
    Asking { id: String, code: String },
    /// Admitted.
    Ready(Box<Client>),
    /// The user said no: not asked again until the server restarts, so a
    /// loop in an AI agent cannot nag the user.
    Denied(String),
}

/// The grant, shared by every tool call.
#[derive(Debug)]
pub struct Grant {
    wanted: Wanted,
    target: Target,
    cache: TokenCache,
    state: watch::Sender<State>,
}

impl Grant {
    /// A grant for `wanted` at `target`, tokens kept in `cache`.
    pub fn new(wanted: Wanted, target: Target, cache: TokenCache) -> Arc<Self> {
        Arc::new(Self {
            wanted,
            target,
            cache,
            state: watch::Sender::new(State::Idle(None)),
        })
    }

    /// Start obtaining access (a token, or a request to the user) unless
    /// that is under way or done.
    pub fn start(self: &Arc<Self>) {
        let started = self.state.send_if_modified(|state| {
            if matches!(state, State::Idle(_)) {
                *state = State::Starting;
                true
            } else {
                false
            }
        });
        if started {
            let grant = Arc::clone(self);
            tokio::spawn(async move {
                let outcome = grant.obtain().await;
                grant.state.send_replace(outcome);
            });
        }
    }

    /// A client holding this server's grant, waiting at most `wait` for
    /// the user to answer; otherwise what the user has to do, worded for
    /// the AI agent to pass on.
    pub async fn client(self: &Arc<Self>, wait: Duration) -> Result<Client, String> {
        let mut state = self.state.subscribe();
        self.start();
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            match &*state.borrow_and_update() {
                State::Ready(client) => return Ok(Client::clone(client)),
                State::Denied(why) => return Err(why.clone()),
                State::Idle(why) => {
                    return Err(why.clone().unwrap_or_else(|| {
                        "OmniPanel access is not set up yet; call the tool again".to_owned()
                    }));
                }
                State::Starting | State::Asking { .. } => {}
            }
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        return Err("the MCP server is shutting down".to_owned());
                    }
                }
                () = &mut deadline => return Err(self.still_waiting()),
            }
        }
    }

    /// The agent refused the token (revoked, expired): forget it, so the
    /// next call asks the user again.
    pub async fn forget(self: &Arc<Self>, why: &str) {
        let key = self.key();
        if let Err(err) = self.cache.remove(key).await {
            errln!("omnipanel mcp: {err}");
        }
        self.state.send_replace(State::Idle(Some(format!(
            "OmniPanel access ended ({why}); call the tool again to ask the user for access again"
        ))));
    }

    fn still_waiting(&self) -> String {
        match &*self.state.borrow() {
            State::Asking { id, code } => format!(
                "OmniPanel is waiting for the user to approve access for {:?} (request {id}, code {code}). \
                 Ask the user to approve it in the OmniPanel tray or panel, or to run \
                 `omnipanel clients approve {id}`; then call this tool again.",
                self.wanted.name
            ),
            _ => "OmniPanel access is still being set up; call the tool again".to_owned(),
        }
    }

    fn key(&self) -> CacheKey {
        CacheKey {
            agent: self.target.to_string(),
            project: self.wanted.project.clone(),
            name: self.wanted.name.clone(),
            scopes: display::scope_names(&scopes_into_proto(&self.wanted.scopes)),
        }
    }

    /// A token the user set, else the one kept from before, else a new
    /// request and its answer.
    async fn obtain(&self) -> State {
        let explicit = std::env::var(omnipanel_paths::TOKEN_ENV)
            .is_ok_and(|token| !token.trim().is_empty())
            || matches!(self.target, Target::Tcp { .. });
        if explicit {
            return match Client::connect_as(self.target.clone(), Credential::FromEnv).await {
                Ok(client) => State::Ready(Box::new(client)),
                Err(err) => State::Idle(Some(err.to_string())),
            };
        }
        let anonymous = match Client::connect_as(self.target.clone(), Credential::Nothing).await {
            Ok(client) => client,
            Err(err) => return State::Idle(Some(err.to_string())),
        };
        match self.cache.load(self.key()).await {
            Ok(Some(token)) => match self.check(&anonymous, &token).await {
                Ok(client) => return State::Ready(Box::new(client)),
                Err(err) if is_token_refused(&err) => {
                    errln!("omnipanel mcp: the kept token was refused ({err}); asking again");
                    if let Err(err) = self.cache.remove(self.key()).await {
                        errln!("omnipanel mcp: {err}");
                    }
                }
                Err(err) => return State::Idle(Some(err.to_string())),
            },
            Ok(None) => {}
            Err(err) => errln!("omnipanel mcp: {err}; asking for access again"),
        }
        self.ask(anonymous).await
    }

    /// `anonymous` presenting `token`, once the agent looked at it: the
    /// agent checks tokens per call, and the project is what the tools
    /// need first anyway (any answer but UNAUTHENTICATED means the token
    /// is still good).
    async fn check(&self, anonymous: &Client, token: &str) -> Result<Client, ClientError> {
        let client = anonymous.with_token(token)?;
        let project = pb::GetProjectRequest {
            project: self.wanted.project.clone(),
        };
        match client.call(client.projects().get_project(project)).await {
            Err(err) if is_token_refused(&err) => Err(err),
            _ => Ok(client),
        }
    }

    /// Ask the user, and wait for the answer.
    async fn ask(&self, anonymous: Client) -> State {
        let request = pb::RequestAccessRequest {
            client_name: self.wanted.name.clone(),
            scopes: scopes_into_proto(&self.wanted.scopes),
            projects: vec![self.wanted.project.clone()],
            reason: "an AI agent's tools (MCP) for this project".to_owned(),
            expiry: self.wanted.expiry.into(),
        };
        let mut stream = match anonymous
            .call_stream(anonymous.agent().request_access(request))
            .await
        {
            Ok(stream) => stream,
            Err(err) => return State::Idle(Some(err.to_string())),
        };
        loop {
            let update = match stream.message().await {
                Ok(Some(update)) => update,
                Ok(None) => {
                    return State::Idle(Some(
                        "the agent ended the access request without an answer".to_owned(),
                    ));
                }
                Err(err) => return State::Idle(Some(err.to_string())),
            };
            let request = update.request.unwrap_or_default();
            let state = AccessRequestState::try_from(request.state)
                .unwrap_or(AccessRequestState::Unspecified);
            match state {
                AccessRequestState::Pending => {
                    errln!(
                        "omnipanel mcp: asked the agent to admit {:?} with {} on {} (code {}). \
                         Approve with: omnipanel clients approve {}",
                        request.client_name,
                        display::scope_names(&request.scopes),
                        self.wanted.project,
                        request.code,
                        request.id
                    );
                    self.state.send_replace(State::Asking {
                        id: request.id,
                        code: request.code,
                    });
                }
                AccessRequestState::Approved if !update.token.is_empty() => {
                    if let Err(err) = self.cache.save(self.key(), update.token.clone()).await {
                        errln!("omnipanel mcp: {err}; access lasts until this server stops");
                    }
                    return match anonymous.with_token(&update.token) {
                        Ok(client) => {
                            errln!("omnipanel mcp: access approved");
                            State::Ready(Box::new(client))
                        }
                        Err(err) => State::Idle(Some(err.to_string())),
                    };
                }
                AccessRequestState::Denied => {
                    return State::Denied(format!(
                        "the user denied OmniPanel access to {:?} (request {}); it is not asked \
                         again until the MCP server restarts",
                        self.wanted.name, request.id
                    ));
                }
                other => {
                    return State::Idle(Some(format!(
                        "the access request {} ended {} without approval; call the tool again \
                         to ask the user again",
                        request.id,
                        display::access_request_state_name(other.into())
                    )));
                }
            }
        }
    }
}

/// Whether `err` says the token is not (or no longer) accepted.
pub fn is_token_refused(err: &ClientError) -> bool {
    matches!(err, ClientError::Unauthenticated { .. })
        || err.reason().as_deref() == Some("TOKEN_INVALID")
}

/// What a kept token was given for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// The agent's socket or address.
    pub agent: String,
    /// The project folder.
    pub project: String,
    /// The name the server asked with.
    pub name: String,
    /// The scopes it asked for.
    pub scopes: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    grants: Vec<CachedGrant>,
}

#[derive(Debug, Serialize, Deserialize)]
struct CachedGrant {
    #[serde(flatten)]
    key: CacheKey,
    token: String,
}

/// The tokens `omnipanel mcp` was given, in one file only this user may
/// read (it holds secrets): the user approves an AI agent's access once,
/// not every time the AI agent starts the server.
#[derive(Debug, Clone)]
pub struct TokenCache {
    path: PathBuf,
}

impl TokenCache {
    /// The cache in `$XDG_DATA_HOME/omnipanel/mcp-grants.json`, next to
    /// the other secrets of this user's OmniPanel.
    pub fn in_data_folder() -> Self {
        Self::at(
            omnipanel_paths::data_home()
                .join("omnipanel")
                .join("mcp-grants.json"),
        )
    }

    /// A cache at `path`.
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    async fn load(&self, key: CacheKey) -> Result<Option<String>, String> {
        let path = self.path.clone();
        run_blocking(move || {
            Ok(read_cache(&path)?
                .grants
                .into_iter()
                .find(|grant| grant.key == key)
                .map(|grant| grant.token))
        })
        .await
    }

    async fn save(&self, key: CacheKey, token: String) -> Result<(), String> {
        let path = self.path.clone();
        run_blocking(move || {
            let mut file = read_cache(&path).unwrap_or_default();
            file.grants.retain(|grant| grant.key != key);
            file.grants.push(CachedGrant { key, token });
            write_cache(&path, &file)
        })
        .await
    }

    async fn remove(&self, key: CacheKey) -> Result<(), String> {
        let path = self.path.clone();
        run_blocking(move || {
            let mut file = read_cache(&path)?;
            let before = file.grants.len();
            file.grants.retain(|grant| grant.key != key);
            if file.grants.len() == before {
                return Ok(());
            }
            write_cache(&path, &file)
        })
        .await
    }
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| format!("the token file task failed: {err}"))?
}

fn read_cache(path: &Path) -> Result<CacheFile, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
            format!(
                "{} is not a valid token file ({err}); delete it to start over",
                path.display()
            )
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(CacheFile::default()),
        Err(err) => Err(format!("cannot read {}: {err}", path.display())),
    }
}

/// Write through a temporary file made owner-only before any secret is in
/// it, then rename: a reader sees the old file or the new one, never half.
fn write_cache(path: &Path, file: &CacheFile) -> Result<(), String> {
    use std::{
        io::Write,
        os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    };
    let failed =
        |what: &str, err: std::io::Error| format!("cannot {what} {}: {err}", path.display());
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| failed("make the folder of", err))?;
    let text =
        serde_json::to_vec_pretty(file).map_err(|err| format!("cannot encode tokens: {err}"))?;
    let temporary = path.with_extension(format!("json.{}.tmp", std::process::id()));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|err| failed("write", err))?;
    let written = out
        .write_all(&text)
        .and_then(|()| out.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(failed("write", err));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn key(project: &str) -> CacheKey {
        CacheKey {
            agent: "/run/user/1000/omnipanel/agent.sock".to_owned(),
            project: project.to_owned(),
            name: "MCP".to_owned(),
            scopes: "read, write".to_owned(),
        }
    }

    #[tokio::test]
    async fn tokens_are_kept_per_key_in_an_owner_only_file() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let cache = TokenCache::at(dir.path().join("sub/mcp-grants.json"));
        assert_eq!(cache.load(key("/a")).await?, None);
        cache.save(key("/a"), "ompt_a".to_owned()).await?;
        cache.save(key("/b"), "ompt_b".to_owned()).await?;
        cache.save(key("/a"), "ompt_a2".to_owned()).await?;
        assert_eq!(cache.load(key("/a")).await?.as_deref(), Some("ompt_a2"));
        assert_eq!(cache.load(key("/b")).await?.as_deref(), Some("ompt_b"));
        let mode = std::fs::metadata(dir.path().join("sub/mcp-grants.json"))
            .map_err(|err| err.to_string())?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        cache.remove(key("/a")).await?;
        assert_eq!(cache.load(key("/a")).await?, None);
        assert_eq!(cache.load(key("/b")).await?.as_deref(), Some("ompt_b"));
        Ok(())
    }

    #[tokio::test]
    async fn a_damaged_token_file_is_reported_and_replaced_on_save() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let path = dir.path().join("mcp-grants.json");
        std::fs::write(&path, "{not json").map_err(|err| err.to_string())?;
        let cache = TokenCache::at(path.clone());
        let err = cache.load(key("/a")).await.err().unwrap_or_default();
        assert!(err.contains("not a valid token file"), "{err}");
        cache.save(key("/a"), "ompt_a".to_owned()).await?;
        assert_eq!(cache.load(key("/a")).await?.as_deref(), Some("ompt_a"));
        Ok(())
    }
}
