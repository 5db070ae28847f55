//! Confirmation of destructive acts by clients other than the owner, in two
//! phases: the first call changes nothing and is answered
//! CONFIRMATION_REQUIRED with an id (published for the tray and panel to
//! ask the user); once the user allows it, the client's retry with that id
//! does the act, once. An id is bound to its client, its kind and its
//! exact target, so it cannot be spent on another act. The user may also
//! let a client do one kind of act without asking for a while; force push
//! is asked every time. Kept in memory: an agent restart forgets pending
//! confirmations, which is the safe direction.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{ConfirmKind, events::AccessEvent};
use crate::{
    config::SettingsStore,
    error::{Error, Result},
    events::Publisher,
    reason::Reason,
    store::now_ms,
    sync::lock,
    tokens::{Caller, hex, random_bytes},
};

/// Longest a kind of act may be allowed in advance.
pub const MAX_ALLOW_KIND: Duration = Duration::from_secs(24 * 3600);
/// ErrorInfo metadata key carrying the confirmation id.
pub const CONFIRMATION_ID_KEY: &str = "confirmation_id";

/// One destructive act, described by the handler about to do it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Act {
    /// Its kind.
    pub kind: ConfirmKind,
    /// What exactly it touches, as a stable key ("model=llama3:70b"): the
    /// id binds to it.
    pub target: String,
    /// For a person: "delete model llama3:70b (40 GB)".
    pub summary: String,
    /// The RPC ("ModelService/DeleteModel").
    pub method: String,
    /// The project it touches.
    pub project: Option<PathBuf>,
}

/// Where a confirmation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmationState {
    /// Waiting for the user.
    Pending,
    /// Allowed; the retry has not come yet.
    Allowed,
    /// Denied.
    Denied,
    /// Unanswered in time, or allowed and never retried.
    Expired,
    /// Allowed and done.
    Used,
}

/// A confirmation as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// Its id.
    pub id: String,
    /// The client's id.
    pub client_id: String,
    /// The client's name.
    pub client_name: String,
    /// The act.
    pub act: Act,
    /// Where it stands.
    pub state: ConfirmationState,
    /// Asked, ms since the epoch.
    pub created_ms: i64,
    /// When it lapses (unanswered, or allowed and not retried).
    pub expires_ms: i64,
}

#[derive(Debug, Default)]
struct Book {
    entries: HashMap<String, Confirmation>,
    /// (client id, kind) → allowed without asking until, ms.
    allowed_kinds: HashMap<(String, ConfirmKind), i64>,
}

/// The confirmations.
#[derive(Debug, Clone)]
pub struct Confirmations {
    book: Arc<Mutex<Book>>,
    settings: Arc<SettingsStore>,
    bus: Publisher<AccessEvent>,
}

impl Confirmations {
    /// None yet.
    pub fn new(settings: Arc<SettingsStore>, bus: Publisher<AccessEvent>) -> Self {
        Self {
            book: Arc::new(Mutex::new(Book::default())),
            settings,
            bus,
        }
    }

    /// Whether `caller` may do `act` now. The owner always may; a client
    /// may when the act's kind is allowed without asking, or when it
    /// presents (`presented`) the id of a confirmation the user allowed for
    /// this very act. Otherwise nothing may change: FAILED_PRECONDITION
    /// CONFIRMATION_REQUIRED with the id of a new confirmation (or of the
    /// one already waiting for the same act).
    pub fn check(&self, caller: &Caller, act: Act, presented: Option<&str>) -> Result<()> {
        let grant = match caller {
            Caller::Owner => return Ok(()),
            Caller::Token(grant) => grant,
            Caller::Anonymous => {
                return Err(Error::permission_denied(
                    "a client that was not admitted cannot do destructive acts",
                )
                .with_reason(Reason::NotAdmitted));
            }
        };
        let now = now_ms();
        let mut book = lock(&self.book);
        expire(&mut book, now);
        if act.kind.can_be_allowed_in_advance()
            && (grant.without_confirmation.contains(&act.kind)
                || book
                    .allowed_kinds
                    .get(&(grant.id.clone(), act.kind))
                    .is_some_and(|until| *until > now))
        {
            return Ok(());
        }
        if let Some(id) = presented.map(str::trim).filter(|id| !id.is_empty()) {
            let entry = book.entries.get_mut(id).filter(|entry| {
                entry.client_id == grant.id
                    && entry.act.kind == act.kind
                    && entry.act.target == act.target
            });
            let Some(entry) = entry else {
                return Err(Error::permission_denied(format!(
                    "confirmation {id} is unknown, expired, or was for another act or client; \
                     retry without it to ask the user again"
                ))
                .with_reason(Reason::ConfirmationDenied));
            };
            return match entry.state {
                ConfirmationState::Allowed => {
                    entry.state = ConfirmationState::Used;
                    let used = entry.clone();
                    drop(book);
                    self.bus.publish(AccessEvent::ConfirmationChanged(used));
                    Ok(())
                }
                ConfirmationState::Pending => Err(Error::failed_precondition(format!(
                    "confirmation {id} ({}) is still waiting for the user's answer",
                    entry.act.summary
                ))
                .with_reason(Reason::ConfirmationPending)
                .with_metadata(CONFIRMATION_ID_KEY, id)),
                ConfirmationState::Denied => Err(Error::permission_denied(format!(
                    "the user denied {}",
                    entry.act.summary
                ))
                .with_reason(Reason::ConfirmationDenied)),
                ConfirmationState::Expired | ConfirmationState::Used => {
                    Err(Error::permission_denied(format!(
                        "confirmation {id} was already used or has expired; retry without it to ask again"
                    ))
                    .with_reason(Reason::ConfirmationDenied))
                }
            };
        }
        let waiting = book.entries.values().find(|entry| {
            entry.state == ConfirmationState::Pending
                && entry.client_id == grant.id
                && entry.act == act
        });
        let entry = match waiting {
            Some(entry) => entry.clone(),
            None => {
                let timeout = self.settings.current().access.request_timeout;
                let entry = Confirmation {
                    id: hex(&random_bytes::<8>()?),
                    client_id: grant.id.clone(),
                    client_name: grant.name.clone(),
                    act,
                    state: ConfirmationState::Pending,
                    created_ms: now,
                    expires_ms: now + timeout.as_millis() as i64,
                };
                book.entries.insert(entry.id.clone(), entry.clone());
                drop(book);
                tracing::info!(id = %entry.id, client = %entry.client_name, act = %entry.act.summary, "confirmation asked");
                self.bus
                    .publish(AccessEvent::ConfirmationChanged(entry.clone()));
                entry
            }
        };
        Err(Error::failed_precondition(format!(
            "{} needs the user's confirmation; nothing was changed. Ask the user to allow it \
             (tray, panel, or `omnipanel confirmations allow {}`), then retry with metadata \
             `omnipanel-confirmation: {}`",
            entry.act.summary, entry.id, entry.id
        ))
        .with_reason(Reason::ConfirmationRequired)
        .with_metadata(CONFIRMATION_ID_KEY, &entry.id))
    }

    /// Those waiting for an answer, oldest first.
    pub fn pending(&self) -> Vec<Confirmation> {
        let mut book = lock(&self.book);
        expire(&mut book, now_ms());
        let mut pending: Vec<Confirmation> = book
            .entries
            .values()
            .filter(|entry| entry.state == ConfirmationState::Pending)
            .cloned()
            .collect();
        pending.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        pending
    }

    /// The user's answer to confirmation `id`; with `allow_kind_for`, the
    /// client may also do acts of this kind without asking for that long.
    pub fn answer(
        &self,
        id: &str,
        allow: bool,
        allow_kind_for: Option<Duration>,
    ) -> Result<Confirmation> {
        let now = now_ms();
        let mut book = lock(&self.book);
        expire(&mut book, now);
        let id = id.trim();
        let Some(entry) = book
            .entries
            .get(id)
            .filter(|entry| entry.state == ConfirmationState::Pending)
            .cloned()
        else {
            return Err(Error::not_found(format!(
                "no confirmation {id:?} is waiting: it was answered or expired \
                 (`omnipanel confirmations ls` lists those waiting)"
            )));
        };
        if let Some(duration) = allow_kind_for {
            if !allow {
                return Err(Error::invalid_argument(
                    "allow_kind_for_seconds",
                    "only an allowed act can allow its kind",
                ));
            }
            if !entry.act.kind.can_be_allowed_in_advance() {
                return Err(Error::invalid_argument(
                    "allow_kind_for_seconds",
                    format!(
                        "{} is asked every time; it cannot be allowed in advance",
                        entry.act.kind.name()
                    ),
                ));
            }
            if duration > MAX_ALLOW_KIND {
                return Err(Error::invalid_argument(
                    "allow_kind_for_seconds",
                    "at most one day (86400 seconds)",
                ));
            }
            book.allowed_kinds.insert(
                (entry.client_id.clone(), entry.act.kind),
                now + duration.as_millis() as i64,
            );
        }
        let timeout = self.settings.current().access.request_timeout;
        let Some(stored) = book.entries.get_mut(id) else {
            return Err(Error::internal(
                "a confirmation vanished while being answered",
            ));
        };
        stored.state = if allow {
            ConfirmationState::Allowed
        } else {
            ConfirmationState::Denied
        };
        // An allowed act waits for its retry as long as it waited for the
        // answer.
        stored.expires_ms = now + timeout.as_millis() as i64;
        let answered = stored.clone();
        drop(book);
        tracing::info!(id, allow, act = %answered.act.summary, "confirmation answered");
        self.bus
            .publish(AccessEvent::ConfirmationChanged(answered.clone()));
        Ok(answered)
    }

    /// Forget a client's allowances (it was revoked).
    pub fn forget_client(&self, client_id: &str) {
        let mut book = lock(&self.book);
        book.allowed_kinds
            .retain(|(client, _), _| client != client_id);
        book.entries.retain(|_, entry| entry.client_id != client_id);
    }
}

/// Mark lapsed entries expired and drop those long finished.
fn expire(book: &mut Book, now: i64) {
    for entry in book.entries.values_mut() {
        if matches!(
            entry.state,
            ConfirmationState::Pending | ConfirmationState::Allowed
        ) && entry.expires_ms <= now
        {
            entry.state = ConfirmationState::Expired;
        }
    }
    // Finished entries are kept a while so a late retry hears why.
    book.entries.retain(|_, entry| {
        matches!(
            entry.state,
            ConfirmationState::Pending | ConfirmationState::Allowed
        ) || now - entry.expires_ms < 10 * 60_000
    });
    book.allowed_kinds.retain(|_, until| *until > now);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        events::Recorder,
        tokens::{Scope, Scopes, TokenGrant},
    };

    type Seen = Recorder<AccessEvent>;

    fn fixture() -> (Confirmations, Arc<Seen>) {
        let dir = tempfile::tempdir().unwrap();
        let settings = Arc::new(SettingsStore::new(
            dir.path().join("config.toml"),
            Default::default(),
        ));
        let seen = Arc::new(Seen::default());
        (Confirmations::new(settings, seen.clone()), seen)
    }

    fn client(id: &str) -> Caller {
        Caller::Token(TokenGrant::new(id, Scopes::of([Scope::Write])))
    }

    fn delete_model(model: &str) -> Act {
        Act {
            kind: ConfirmKind::DeleteModel,
            target: format!("model={model}"),
            summary: format!("delete model {model}"),
            method: "ModelService/DeleteModel".into(),
            project: None,
        }
    }

    fn force_push() -> Act {
        Act {
            kind: ConfirmKind::ForcePush,
            target: "branch=main".into(),
            summary: "force push main".into(),
            method: "GitService/Push".into(),
            project: None,
        }
    }

    fn id_of(err: &Error) -> String {
        err.metadata()
            .iter()
            .find(|(key, _)| key == CONFIRMATION_ID_KEY)
            .map(|(_, value)| value.clone())
            .unwrap()
    }

    #[test]
    fn the_owner_never_asks_and_a_client_asks_once_per_act() {
        let (confirmations, seen) = fixture();
        assert!(
            confirmations
                .check(&Caller::Owner, delete_model("a"), None)
                .is_ok()
        );
        let vscode = client("vs");
        let first = confirmations
            .check(&vscode, delete_model("a"), None)
            .unwrap_err();
        assert_eq!(first.reason(), Some(Reason::ConfirmationRequired));
        let id = id_of(&first);
        let again = confirmations
            .check(&vscode, delete_model("a"), None)
            .unwrap_err();
        assert_eq!(
            id_of(&again),
            id,
            "the same act waits on the same confirmation"
        );
        assert_eq!(confirmations.pending().len(), 1);
        let early = confirmations
            .check(&vscode, delete_model("a"), Some(&id))
            .unwrap_err();
        assert_eq!(early.reason(), Some(Reason::ConfirmationPending));

        confirmations.answer(&id, true, None).unwrap();
        // Not for another model, nor for another client.
        let other_act = confirmations
            .check(&vscode, delete_model("b"), Some(&id))
            .unwrap_err();
        assert_eq!(other_act.reason(), Some(Reason::ConfirmationDenied));
        let other_client = confirmations
            .check(&client("x"), delete_model("a"), Some(&id))
            .unwrap_err();
        assert_eq!(other_client.reason(), Some(Reason::ConfirmationDenied));
        assert!(
            confirmations
                .check(&vscode, delete_model("a"), Some(&id))
                .is_ok()
        );
        let spent = confirmations
            .check(&vscode, delete_model("a"), Some(&id))
            .unwrap_err();
        assert_eq!(
            spent.reason(),
            Some(Reason::ConfirmationDenied),
            "an id is used once"
        );
        assert!(seen.events().len() >= 3);
    }

    #[test]
    fn denied_acts_stay_denied_and_kinds_can_be_allowed_for_a_while() {
        let (confirmations, _) = fixture();
        let vscode = client("vs");
        let id = id_of(
            &confirmations
                .check(&vscode, delete_model("a"), None)
                .unwrap_err(),
        );
        confirmations.answer(&id, false, None).unwrap();
        let denied = confirmations
            .check(&vscode, delete_model("a"), Some(&id))
            .unwrap_err();
        assert_eq!(denied.reason(), Some(Reason::ConfirmationDenied));
        assert_eq!(
            confirmations.answer(&id, true, None).unwrap_err().kind(),
            crate::error::ErrorKind::NotFound
        );

        let id = id_of(
            &confirmations
                .check(&vscode, delete_model("b"), None)
                .unwrap_err(),
        );
        confirmations
            .answer(&id, true, Some(Duration::from_secs(3600)))
            .unwrap();
        assert!(
            confirmations
                .check(&vscode, delete_model("c"), None)
                .is_ok(),
            "kind allowed for an hour"
        );
        assert!(
            confirmations
                .check(&client("other"), delete_model("c"), None)
                .is_err()
        );

        let force = force_push();
        let id = id_of(&confirmations.check(&vscode, force, None).unwrap_err());
        assert!(
            confirmations
                .answer(&id, true, Some(Duration::from_secs(60)))
                .is_err()
        );
    }

    #[test]
    fn grants_may_skip_kinds_but_never_force_push() {
        let (confirmations, _) = fixture();
        let mut grant = TokenGrant::new("ci", Scopes::of([Scope::Write]));
        grant.without_confirmation = vec![ConfirmKind::DeleteModel, ConfirmKind::ForcePush];
        let ci = Caller::Token(grant);
        assert!(confirmations.check(&ci, delete_model("a"), None).is_ok());
        let force = force_push();
        assert!(confirmations.check(&ci, force, None).is_err());
        assert!(
            confirmations
                .check(&Caller::Anonymous, delete_model("a"), None)
                .is_err()
        );
    }
}
