//! Access requests: a client asks for scopes and projects, the user sees a
//! short code, what the kernel says about the caller (executable, command
//! line, parents) and the client's own, self-declared name and reason, and
//! approves (possibly narrowing), or denies; or nobody answers in time. The
//! approved client receives its token on its own request stream, never the
//! approver. Closing that stream while pending withdraws the request.
//! Requests are limited per peer (a few pending, a few a minute) and an
//! identical pending request from the same peer is joined, not repeated.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::watch;

use super::{ConfirmKind, events::AccessEvent};
use crate::{
    config::SettingsStore,
    error::{Error, ErrorKind, Result},
    events::Publisher,
    platform::peer_process::PeerProcess,
    reason::Reason,
    store::now_ms,
    sync::lock,
    tokens::{GrantTerms, Scopes, TokenInfo, Tokens, hex, random_bytes},
};

/// Most requests one peer may have pending at once.
const MAX_PENDING_PER_PEER: usize = 3;
/// Most requests one peer may make in a minute.
const MAX_PER_MINUTE: usize = 10;
/// Longest client name and reason kept, in characters.
const MAX_TEXT: usize = 200;
/// How long a grant for this run only may last at most.
const ONCE_LIMIT: Duration = Duration::from_secs(24 * 3600);

/// How long a grant lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// Not said: an approval gives what was asked, a request asks for
    /// `Always`.
    #[default]
    Unspecified,
    /// This run of the agent, at most a day.
    Once,
    /// An hour.
    Hour,
    /// A day.
    Day,
    /// Until revoked.
    Always,
}

impl Expiry {
    /// From a word: once, 1h, 1d, always.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "once" => Some(Self::Once),
            "1h" | "hour" => Some(Self::Hour),
            "1d" | "day" => Some(Self::Day),
            "always" | "forever" => Some(Self::Always),
            _ => None,
        }
    }

    fn terms(self, now: i64) -> (Option<i64>, bool) {
        let at = |duration: Duration| Some(now + duration.as_millis() as i64);
        match self {
            Self::Once => (at(ONCE_LIMIT), true),
            Self::Hour => (at(Duration::from_secs(3600)), false),
            Self::Day => (at(Duration::from_secs(24 * 3600)), false),
            Self::Always | Self::Unspecified => (None, false),
        }
    }
}

/// Where an access request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    /// Waiting for the user.
    Pending,
    /// Approved.
    Approved,
    /// Denied.
    Denied,
    /// Unanswered in time, or the agent stopped.
    Expired,
    /// The client went away first.
    Withdrawn,
}

/// What the agent knows for certain about a caller.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Peer {
    /// "socket" or "tcp".
    pub transport: String,
    /// On the socket: the calling process, then its parents.
    pub processes: Vec<PeerProcess>,
    /// Over TCP: the remote address.
    pub address: String,
}

impl Peer {
    /// What requests are limited and joined by: the calling process, or
    /// the remote host.
    fn key(&self) -> String {
        match self.processes.first() {
            Some(process) => format!("pid:{}", process.pid),
            None => {
                // The port changes with every connection; the host does not.
                let host = self
                    .address
                    .rsplit_once(':')
                    .map_or(self.address.as_str(), |(host, _)| host);
                format!("{}:{host}", self.transport)
            }
        }
    }
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AccessAsk {
    /// The name it gives itself.
    pub client_name: String,
    /// Scopes wanted.
    pub scopes: Scopes,
    /// Project folders wanted; empty for every project in the roots.
    pub projects: Vec<PathBuf>,
    /// Why, in its words.
    pub reason: String,
    /// For how long.
    pub expiry: Expiry,
}

/// One request as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRequest {
    /// Its id.
    pub id: String,
    /// The code both sides show.
    pub code: String,
    /// What was asked.
    pub ask: AccessAsk,
    /// Who asked.
    pub peer: Peer,
    /// Where it stands.
    pub state: RequestState,
    /// Made, ms since the epoch.
    pub created_ms: i64,
    /// Expires unanswered, ms since the epoch.
    pub expires_ms: i64,
}

/// A request's state as its client sees it: on approval, with the token.
#[derive(Debug, Clone)]
pub struct RequestUpdate {
    /// The request.
    pub request: AccessRequest,
    /// The secret, on approval only.
    pub token: Option<String>,
    /// The grant made, on approval only.
    pub client: Option<TokenInfo>,
}

/// The owner's answer, narrowing what was asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approval {
    /// Narrower scopes; `None` for what was asked.
    pub scopes: Option<Scopes>,
    /// Narrower projects; empty for what was asked.
    pub projects: Vec<PathBuf>,
    /// For how long; unspecified for what was asked.
    pub expiry: Expiry,
    /// Acts the client may do without asking.
    pub without_confirmation: Vec<ConfirmKind>,
}

#[derive(Debug)]
struct Pending {
    sender: watch::Sender<RequestUpdate>,
    peer_key: String,
}

#[derive(Debug, Default)]
struct Book {
    pending: HashMap<String, Pending>,
    recent: HashMap<String, Vec<i64>>,
}

/// The pending requests.
#[derive(Debug, Clone)]
pub struct Requests {
    book: Arc<Mutex<Book>>,
    tokens: Tokens,
    settings: Arc<SettingsStore>,
    bus: Publisher<AccessEvent>,
}

/// A client's view of its request: the updates, and withdrawal of the
/// request when the view is dropped while it is still pending.
#[derive(Debug)]
pub struct RequestWatch {
    receiver: Option<watch::Receiver<RequestUpdate>>,
    id: String,
    requests: Requests,
}

impl RequestWatch {
    /// The request's state now; then, awaiting, each change. `None` once
    /// the request has ended and its last state was seen.
    pub async fn next(&mut self, first: bool) -> Option<RequestUpdate> {
        let receiver = self.receiver.as_mut()?;
        if !first && receiver.changed().await.is_err() {
            return None;
        }
        Some(receiver.borrow_and_update().clone())
    }
}

impl Drop for RequestWatch {
    fn drop(&mut self) {
        // Drop our receiver first so the count below sees only others.
        self.receiver = None;
        self.requests.withdraw_if_unwatched(&self.id);
    }
}

impl Requests {
    /// No requests yet.
    pub fn new(tokens: Tokens, settings: Arc<SettingsStore>, bus: Publisher<AccessEvent>) -> Self {
        Self {
            book: Arc::new(Mutex::new(Book::default())),
            tokens,
            settings,
            bus,
        }
    }

    /// Make (or join) a request from `peer`. Blocking: it resolves the
    /// project folders asked for.
    pub fn submit(&self, ask: AccessAsk, peer: Peer) -> Result<RequestWatch> {
        let ask = validate(ask)?;
        let peer_key = peer.key();
        let now = now_ms();
        let mut book = lock(&self.book);
        if let Some((id, pending)) = book.pending.iter().find(|(_, pending)| {
            let request = &pending.sender.borrow().request;
            pending.peer_key == peer_key && request.ask == ask
        }) {
            return Ok(RequestWatch {
                receiver: Some(pending.sender.subscribe()),
                id: id.clone(),
                requests: self.clone(),
            });
        }
        let open = book
            .pending
            .values()
            .filter(|pending| pending.peer_key == peer_key)
            .count();
        let recent = book.recent.entry(peer_key.clone()).or_default();
        recent.retain(|at| now - at < 60_000);
        if open >= MAX_PENDING_PER_PEER || recent.len() >= MAX_PER_MINUTE {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "this client has {open} access requests waiting and made {} in the last minute; \
                     wait for the user to answer",
                    recent.len()
                ),
            )
            .with_reason(Reason::TooManyRequests));
        }
        recent.push(now);
        let timeout = self.settings.current().access.request_timeout;
        let request = AccessRequest {
            id: hex(&random_bytes::<8>()?),
            code: code()?,
            ask,
            peer,
            state: RequestState::Pending,
            created_ms: now,
            expires_ms: now + timeout.as_millis() as i64,
        };
        let (sender, receiver) = watch::channel(RequestUpdate {
            request: request.clone(),
            token: None,
            client: None,
        });
        book.pending
            .insert(request.id.clone(), Pending { sender, peer_key });
        drop(book);
        tracing::info!(
            id = %request.id,
            client = %request.ask.client_name,
            scopes = %request.ask.scopes.names(),
            pid = request.peer.processes.first().map(|p| p.pid),
            "access requested"
        );
        self.bus
            .publish(AccessEvent::RequestChanged(request.clone()));
        let requests = self.clone();
        let id = request.id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            requests.finish(&id, RequestState::Expired, None);
        });
        Ok(RequestWatch {
            receiver: Some(receiver),
            id: request.id,
            requests: self.clone(),
        })
    }

    /// The pending requests, oldest first.
    pub fn pending(&self) -> Vec<AccessRequest> {
        let mut requests: Vec<AccessRequest> = lock(&self.book)
            .pending
            .values()
            .map(|pending| pending.sender.borrow().request.clone())
            .collect();
        requests.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        requests
    }

    /// Admit request `id` on the owner's terms: the grant is made and its
    /// token sent to the requesting client.
    pub async fn approve(&self, id: &str, approval: Approval) -> Result<TokenInfo> {
        let request = self.pending_request(id)?;
        let scopes = match approval.scopes {
            Some(scopes) => {
                if !request.ask.scopes.covers(scopes) {
                    return Err(Error::invalid_argument(
                        "scopes",
                        format!(
                            "the client asked for {}; an approval may only narrow that, not grant {}",
                            request.ask.scopes.names(),
                            scopes.names()
                        ),
                    ));
                }
                scopes
            }
            None => request.ask.scopes,
        };
        let projects = if approval.projects.is_empty() {
            request.ask.projects.clone()
        } else {
            let narrowed = approval.projects;
            let projects =
                tokio::task::spawn_blocking(move || normalize_projects(narrowed)).await??;
            if !request.ask.projects.is_empty() {
                for project in &projects {
                    if !request
                        .ask
                        .projects
                        .iter()
                        .any(|asked| project.starts_with(asked))
                    {
                        return Err(Error::invalid_argument(
                            "projects",
                            format!(
                                "{} is not inside the projects the client asked for",
                                project.display()
                            ),
                        ));
                    }
                }
            }
            projects
        };
        if let Some(kind) = approval
            .without_confirmation
            .iter()
            .find(|kind| !kind.can_be_allowed_in_advance())
        {
            return Err(Error::invalid_argument(
                "allowed_without_confirmation",
                format!(
                    "{} is asked every time; it cannot be allowed in advance",
                    kind.name()
                ),
            ));
        }
        let expiry = match approval.expiry {
            Expiry::Unspecified => request.ask.expiry,
            chosen => chosen,
        };
        let (expires_ms, this_run_only) = expiry.terms(now_ms());
        let terms = GrantTerms {
            scopes,
            projects,
            expires_ms,
            this_run_only,
            without_confirmation: approval.without_confirmation,
            client_name: request.ask.client_name.clone(),
            peer: request.peer.processes.clone(),
            // Admission grants no inference limits; the owner's own tokens
            // (`omnipanel token create`) carry them.
            allowed_models: Vec::new(),
            requests_per_minute: 0,
        };
        let label = format!("{} ({})", request.ask.client_name, request.code);
        let (token, info) = match self.tokens.create_grant(&label, terms.clone()).await {
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                self.tokens
                    .create_grant(&format!("{label} {}", request.id), terms)
                    .await?
            }
            other => other?,
        };
        if !self.finish(id, RequestState::Approved, Some((token, info.clone()))) {
            // The client left (or the request expired) while the grant was
            // being made: nobody has the token, so it must not live on.
            let _ = self.tokens.revoke(&info.id).await;
            return Err(Error::failed_precondition(format!(
                "access request {id} ended before it was approved; the client must ask again"
            )));
        }
        self.bus.publish(AccessEvent::ClientsChanged {
            client_id: info.id.clone(),
            client_name: request.ask.client_name,
            revoked: false,
        });
        Ok(info)
    }

    /// Refuse request `id`.
    pub fn deny(&self, id: &str) -> Result<AccessRequest> {
        let mut request = self.pending_request(id)?;
        if !self.finish(id, RequestState::Denied, None) {
            return Err(not_pending(id));
        }
        request.state = RequestState::Denied;
        Ok(request)
    }

    /// End every pending request (the agent is stopping).
    pub fn shutdown(&self) {
        let ids: Vec<String> = lock(&self.book).pending.keys().cloned().collect();
        for id in ids {
            self.finish(&id, RequestState::Expired, None);
        }
    }

    fn pending_request(&self, id: &str) -> Result<AccessRequest> {
        lock(&self.book)
            .pending
            .get(id.trim())
            .map(|pending| pending.sender.borrow().request.clone())
            .ok_or_else(|| not_pending(id))
    }

    fn withdraw_if_unwatched(&self, id: &str) {
        let unwatched = lock(&self.book)
            .pending
            .get(id)
            .is_some_and(|pending| pending.sender.receiver_count() == 0);
        if unwatched {
            self.finish(id, RequestState::Withdrawn, None);
        }
    }

    /// Move a pending request to its final `state`; false when it was no
    /// longer pending.
    fn finish(&self, id: &str, state: RequestState, grant: Option<(String, TokenInfo)>) -> bool {
        let Some(pending) = lock(&self.book).pending.remove(id) else {
            return false;
        };
        let mut update = pending.sender.borrow().clone();
        update.request.state = state;
        if let Some((token, info)) = grant {
            update.token = Some(token);
            update.client = Some(info);
        }
        let request = update.request.clone();
        pending.sender.send_replace(update);
        tracing::info!(id, client = %request.ask.client_name, state = ?state, "access request ended");
        self.bus.publish(AccessEvent::RequestChanged(request));
        true
    }
}

fn not_pending(id: &str) -> Error {
    Error::not_found(format!(
        "no pending access request {:?}: it was answered, expired or withdrawn (`omnipanel clients pending` lists those waiting)",
        id.trim()
    ))
}

/// A short code both sides show: six digits in two groups.
fn code() -> Result<String> {
    let bytes = random_bytes::<4>()?;
    let number = u32::from_le_bytes(bytes) % 1_000_000;
    Ok(format!("{:03}-{:03}", number / 1000, number % 1000))
}

fn clean_text(field: &str, text: &str) -> Result<String> {
    let text = text.trim();
    if text.chars().count() > MAX_TEXT {
        return Err(Error::invalid_argument(
            field,
            format!("at most {MAX_TEXT} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::invalid_argument(
            field,
            "control characters are not allowed",
        ));
    }
    Ok(text.to_owned())
}

fn validate(ask: AccessAsk) -> Result<AccessAsk> {
    let client_name = clean_text("client_name", &ask.client_name)?;
    if client_name.is_empty() {
        return Err(Error::invalid_argument(
            "client_name",
            "say who is asking, e.g. \"VS Code\"",
        ));
    }
    let reason = clean_text("reason", &ask.reason)?;
    if ask.scopes == Scopes::STATUS {
        return Err(Error::invalid_argument(
            "scopes",
            "ask for at least one of read, infer, write or admin (status needs no asking)",
        ));
    }
    Ok(AccessAsk {
        client_name,
        scopes: ask.scopes,
        projects: normalize_projects(ask.projects)?,
        reason,
        expiry: match ask.expiry {
            Expiry::Unspecified => Expiry::Always,
            chosen => chosen,
        },
    })
}

/// Absolute folders, resolved (symlinks, `..`) when they exist, without
/// duplicates.
fn normalize_projects(projects: Vec<PathBuf>) -> Result<Vec<PathBuf>> {
    let mut normalized: Vec<PathBuf> = Vec::new();
    for project in projects {
        if !project.is_absolute() {
            return Err(Error::invalid_argument(
                "projects",
                format!("{} is not an absolute path", project.display()),
            ));
        }
        let resolved = std::fs::canonicalize(&project).unwrap_or_else(|_| lexical(&project));
        if !normalized.contains(&resolved) {
            normalized.push(resolved);
        }
    }
    Ok(normalized)
}

/// `path` with `.` and `..` taken out by their text.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{events::Recorder, store::Store, tokens::Scope};

    type Seen = Recorder<AccessEvent>;

    async fn fixture() -> (Requests, Tokens, Arc<Seen>) {
        let tokens = Tokens::load(Store::in_memory().unwrap()).await.unwrap();
        let seen = Arc::new(Seen::default());
        let dir = tempfile::tempdir().unwrap();
        let settings = Arc::new(SettingsStore::new(
            dir.path().join("config.toml"),
            Default::default(),
        ));
        (
            Requests::new(tokens.clone(), settings, seen.clone()),
            tokens,
            seen,
        )
    }

    fn peer(pid: u32) -> Peer {
        Peer {
            transport: "socket".into(),
            processes: vec![PeerProcess {
                pid,
                executable: "/usr/bin/code".into(),
                command_line: "code".into(),
            }],
            address: String::new(),
        }
    }

    fn ask(name: &str) -> AccessAsk {
        AccessAsk {
            client_name: name.into(),
            scopes: Scopes::of([Scope::Write]),
            projects: vec![PathBuf::from("/home/me/app")],
            reason: "edit files".into(),
            expiry: Expiry::Unspecified,
        }
    }

    #[tokio::test]
    async fn approval_sends_the_token_to_the_client_only() {
        let (requests, tokens, seen) = fixture().await;
        let mut watch = requests.submit(ask("VS Code"), peer(10)).unwrap();
        let first = watch.next(true).await.unwrap();
        assert_eq!(first.request.state, RequestState::Pending);
        assert_eq!(first.request.code.len(), 7);
        assert_eq!(requests.pending().len(), 1);
        let narrowed = Approval {
            scopes: Some(Scopes::of([Scope::Read])),
            projects: vec![PathBuf::from("/home/me/app/sub")],
            expiry: Expiry::Hour,
            without_confirmation: vec![ConfirmKind::Push],
        };
        let info = requests.approve(&first.request.id, narrowed).await.unwrap();
        let last = watch.next(false).await.unwrap();
        assert_eq!(last.request.state, RequestState::Approved);
        let token = last.token.unwrap();
        let grant = tokens.verify(&token).unwrap();
        assert_eq!(grant.id, info.id);
        assert_eq!(grant.name, "VS Code");
        assert!(!grant.scopes.contains(Scope::Write));
        assert_eq!(grant.projects, vec![PathBuf::from("/home/me/app/sub")]);
        assert!(grant.expires_ms.is_some());
        assert!(requests.pending().is_empty());
        // The events carry the request, never the token.
        let events = seen.events();
        assert!(
            events
                .iter()
                .any(|e| matches!(e, AccessEvent::ClientsChanged { revoked: false, .. }))
        );
        assert!(!format!("{events:?}").contains(&token));
    }

    #[tokio::test]
    async fn approvals_only_narrow() {
        let (requests, _, _) = fixture().await;
        let mut watch = requests.submit(ask("x"), peer(11)).unwrap();
        let id = watch.next(true).await.unwrap().request.id;
        let wider = Approval {
            scopes: Some(Scopes::all()),
            ..Approval::default()
        };
        assert_eq!(
            requests.approve(&id, wider).await.unwrap_err().field(),
            Some("scopes")
        );
        let elsewhere = Approval {
            projects: vec![PathBuf::from("/home/me/other")],
            ..Approval::default()
        };
        assert_eq!(
            requests.approve(&id, elsewhere).await.unwrap_err().field(),
            Some("projects")
        );
        let force = Approval {
            without_confirmation: vec![ConfirmKind::ForcePush],
            ..Approval::default()
        };
        assert!(requests.approve(&id, force).await.is_err());
        assert_eq!(
            requests.pending().len(),
            1,
            "a refused approval leaves it pending"
        );
    }

    #[tokio::test]
    async fn denied_withdrawn_joined_and_limited() {
        let (requests, _, _) = fixture().await;
        let mut watch = requests.submit(ask("a"), peer(12)).unwrap();
        let id = watch.next(true).await.unwrap().request.id;
        let mut joined = requests.submit(ask("a"), peer(12)).unwrap();
        assert_eq!(
            joined.next(true).await.unwrap().request.id,
            id,
            "same ask, same peer: joined"
        );
        requests.deny(&id).unwrap();
        assert_eq!(
            watch.next(false).await.unwrap().request.state,
            RequestState::Denied
        );
        assert_eq!(requests.deny(&id).unwrap_err().kind(), ErrorKind::NotFound);

        let gone = requests.submit(ask("b"), peer(13)).unwrap();
        assert_eq!(requests.pending().len(), 1);
        drop(gone);
        assert!(
            requests.pending().is_empty(),
            "a client that leaves withdraws its request"
        );

        let mut held = Vec::new();
        for n in 0..MAX_PENDING_PER_PEER {
            held.push(requests.submit(ask(&format!("c{n}")), peer(14)).unwrap());
        }
        let err = requests.submit(ask("one more"), peer(14)).unwrap_err();
        assert_eq!(err.reason(), Some(Reason::TooManyRequests));
        assert!(requests.submit(ask("another peer"), peer(15)).is_ok());
    }

    #[tokio::test]
    async fn bad_asks_name_their_field() {
        let (requests, _, _) = fixture().await;
        let field = |ask: AccessAsk| {
            requests
                .submit(ask, peer(20))
                .unwrap_err()
                .field()
                .map(str::to_owned)
        };
        assert_eq!(field(ask(" ")), Some("client_name".into()));
        assert_eq!(field(ask("a\u{1b}[2J")), Some("client_name".into()));
        assert_eq!(
            field(AccessAsk {
                scopes: Scopes::STATUS,
                ..ask("a")
            }),
            Some("scopes".into())
        );
        assert_eq!(
            field(AccessAsk {
                projects: vec![PathBuf::from("relative")],
                ..ask("a")
            }),
            Some("projects".into())
        );
    }
}
