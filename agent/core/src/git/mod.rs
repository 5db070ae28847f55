//! Git on open projects, with libgit2 (git2, vendored, https and ssh
//! built in). One repository handle per project, reused across calls and
//! used only on the blocking pool. This module also turns the project
//! watcher's "repository changed" items (HEAD, index, refs, also changed by
//! the user's own git) into a debounced event with the new branch and dirty
//! state on the bus.

pub mod diff;
mod events;
pub mod remote;
pub mod repo;

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex, Once},
    time::Duration,
};

use git2::{ErrorClass, ErrorCode, Repository};

use crate::reason::Reason;
use crate::{
    error::{Error, ErrorKind, Result},
    events::Publisher,
    feed::{Cursor, Delivery},
    files::{OpenProject, watch::ChangeItem},
    projects::{ProjectObserver, git_summary},
};
pub use events::GitEvent;

/// How long repository changes must be quiet before the event goes out.
const CHANGE_DEBOUNCE: Duration = Duration::from_millis(200);

/// A git2 error as a domain error; `what` says what was being done.
pub fn git_error(what: &str, err: &git2::Error) -> Error {
    let message = format!("{what}: {}", err.message());
    match err.code() {
        ErrorCode::NotFound => Error::not_found(message),
        ErrorCode::Exists => Error::new(ErrorKind::AlreadyExists, message),
        ErrorCode::Auth => Error::new(ErrorKind::Unauthenticated, message).with_reason(Reason::GitAuth),
        ErrorCode::Conflict | ErrorCode::MergeConflict => {
            Error::failed_precondition(message).with_reason(Reason::GitConflict)
        }
        ErrorCode::UnbornBranch => {
            Error::failed_precondition(format!("{what}: the repository has no commits yet"))
        }
        ErrorCode::Locked => Error::failed_precondition(format!(
            "{what}: another git process holds a lock ({}); wait for it or remove the stale .lock file",
            err.message()
        ))
        .with_reason(Reason::GitLocked),
        ErrorCode::InvalidSpec | ErrorCode::Invalid | ErrorCode::Ambiguous => {
            Error::invalid_argument("ref", message)
        }
        ErrorCode::User => Error::new(ErrorKind::Aborted, message),
        _ if matches!(err.class(), ErrorClass::Net | ErrorClass::Ssh | ErrorClass::Http | ErrorClass::Ssl) => {
            if err.message().to_lowercase().contains("auth") || err.message().contains("credentials") {
                Error::new(ErrorKind::Unauthenticated, message).with_reason(Reason::GitAuth)
            } else {
                Error::new(ErrorKind::Unavailable, message).with_reason(Reason::GitNetwork)
            }
        }
        _ => Error::failed_precondition(message),
    }
}

/// Git settings in effect.
#[derive(Debug, Clone, Default)]
pub struct GitSettings {
    /// Token for https remotes, when no credential helper has one.
    pub token: Option<String>,
    /// Network timeout.
    pub timeout: Duration,
}

// `git2::Repository` has no Debug; the cached project ids say enough.
impl std::fmt::Debug for Git {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let handles = crate::sync::lock(&self.handles)
            .keys()
            .cloned()
            .collect::<Vec<_>>();
        f.debug_struct("Git")
            .field("repositories", &handles)
            .finish_non_exhaustive()
    }
}

/// The Git facade.
pub struct Git {
    handles: Mutex<HashMap<String, Arc<Mutex<Repository>>>>,
    bus: Publisher<GitEvent>,
    settings: GitSettings,
}

impl Git {
    /// The facade. libgit2 itself is set up on first use, not here:
    /// initialising it loads the system's certificate store through
    /// OpenSSL, which took a third of the agent's start-up and a megabyte
    /// of memory, for a feature many sessions never touch.
    pub fn new(bus: Publisher<GitEvent>, settings: GitSettings) -> Arc<Self> {
        Arc::new(Self {
            handles: Mutex::new(HashMap::new()),
            bus,
            settings,
        })
    }

    /// Settings in effect.
    pub fn settings(&self) -> &GitSettings {
        &self.settings
    }

    fn handle(&self, project: &OpenProject) -> Result<Arc<Mutex<Repository>>> {
        let mut handles = crate::sync::lock(&self.handles);
        if let Some(handle) = handles.get(project.id()) {
            return Ok(handle.clone());
        }
        let repo = open_repository(project.root())?;
        let handle = Arc::new(Mutex::new(repo));
        handles.insert(project.id().to_owned(), handle.clone());
        Ok(handle)
    }

    /// Run `f` with the project's repository on the blocking pool (opening
    /// it, and libgit2 the first time, there too: both read the disk).
    pub async fn with_repo<T, F>(self: &Arc<Self>, project: &Arc<OpenProject>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Repository, &OpenProject) -> Result<T> + Send + 'static,
    {
        let git = self.clone();
        let project = project.clone();
        tokio::task::spawn_blocking(move || {
            configure_libgit2(git.settings.timeout);
            let handle = git.handle(&project)?;
            let mut repo = crate::sync::lock(&handle);
            f(&mut repo, &project)
        })
        .await?
    }

    /// Forget a project's handle (closed or forgotten).
    fn drop_handle(&self, project_id: &str) {
        crate::sync::lock(&self.handles).remove(project_id);
    }
}

/// Open the repository at (or above) `root`.
fn open_repository(root: &Path) -> Result<Repository> {
    Repository::discover(root).map_err(|err| {
        if err.code() == ErrorCode::NotFound {
            Error::failed_precondition(format!(
                "{} is not a git repository (or inside one); run `git init` there first",
                root.display()
            ))
            .with_reason(Reason::NotARepository)
        } else {
            git_error("cannot open the repository", &err)
        }
    })
}

/// Set libgit2's connect and read timeouts, once per process, before the
/// first repository operation; without them a dead server can hang a fetch
/// forever. Later calls return at once: like the rest of [`GitSettings`],
/// `git.timeout` is read at start-up.
fn configure_libgit2(timeout: Duration) {
    static CONFIGURED: Once = Once::new();
    CONFIGURED.call_once(|| {
        let millis = i32::try_from(timeout.as_millis())
            .unwrap_or(i32::MAX)
            .max(1);
        // SAFETY: these only set process-wide integers inside libgit2. The
        // `Once` runs them before any repository operation goes on (every
        // one passes through here first), and blocks concurrent callers
        // until they are set.
        #[allow(unsafe_code)] // git2 exposes these options only as unsafe functions.
        unsafe {
            if let Err(err) = git2::opts::set_server_connect_timeout_in_milliseconds(millis) {
                tracing::warn!(error = %err, "cannot set git's connect timeout");
            }
            if let Err(err) = git2::opts::set_server_timeout_in_milliseconds(millis) {
                tracing::warn!(error = %err, "cannot set git's network timeout");
            }
        }
    });
}

impl ProjectObserver for Git {
    /// Follow the project's change feed and publish debounced repository
    /// events. No polling: the watcher reports .git changes.
    fn opened(&self, project: &Arc<OpenProject>) {
        let feed = project.changes().clone();
        let mut subscription = feed.subscribe(Cursor::default(), Vec::new());
        let stop = project.stopped();
        let bus = self.bus.clone();
        let project_id = project.id().to_owned();
        let root = project.root().to_owned();
        tokio::spawn(async move {
            let mut pending = false;
            loop {
                let next = tokio::select! {
                    () = stop.cancelled() => return,
                    delivery = subscription.next() => Some(delivery),
                    () = tokio::time::sleep(CHANGE_DEBOUNCE), if pending => None,
                };
                match next {
                    Some(None) => return,
                    Some(Some(Delivery::Event(record))) => {
                        // The watcher reports a repository change only
                        // when its meaning changed, after lost events too.
                        if matches!(record.payload, ChangeItem::RepositoryChanged(_)) {
                            pending = true;
                        }
                    }
                    Some(Some(_)) => {}
                    None => {
                        pending = false;
                        let path = root.clone();
                        let Ok(Some(summary)) =
                            tokio::task::spawn_blocking(move || git_summary(&path)).await
                        else {
                            continue;
                        };
                        let head = {
                            let path = root.clone();
                            tokio::task::spawn_blocking(move || {
                                Repository::discover(&path).ok().and_then(|r| {
                                    r.head()
                                        .ok()
                                        .and_then(|h| h.target())
                                        .map(|o| o.to_string())
                                })
                            })
                            .await
                            .ok()
                            .flatten()
                            .unwrap_or_default()
                        };
                        bus.publish(GitEvent::RepositoryChanged {
                            project_id: project_id.clone(),
                            branch: summary.branch.unwrap_or_default(),
                            detached: summary.detached,
                            dirty: summary.dirty,
                            head,
                        });
                    }
                }
            }
        });
    }

    fn closed(&self, project_id: &str) {
        self.drop_handle(project_id);
    }
}
