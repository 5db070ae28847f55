//! Git on open projects, with libgit2 (git2, vendored; its network side
//! is OmniPanel's own: smart HTTP over the agent's HTTP stack and the
//! user's `ssh`, `transport/`). The [`Git`] facade holds one repository handle per project,
//! reused across calls, closed after a minute unused (`handles.rs`), and
//! used only on the blocking pool: each use case
//! (status, branches, history, diff, index, commit, fetch/pull/push) is one
//! async method that does its blocking work there itself. The repository
//! is the project's own and nothing else (`open.rs`: at the root only,
//! never one reaching outside the project), and its config never chooses
//! a program to run or where `git.token` goes (`credentials.rs`). This
//! module also turns the project watcher's "repository changed" items
//! (HEAD, index, refs, also changed by the user's own git) into a debounced
//! event with the new branch and dirty state on the bus.

pub mod credentials;
pub mod diff;
mod events;
mod handles;
pub mod index_file;
pub mod open;
pub mod remote;
pub mod repo;
pub mod transfer;
mod transport;
mod warm_status;

#[cfg(test)]
mod tests;

use std::{
    sync::{Arc, Once, Weak},
    time::Duration,
};

use git2::{ErrorClass, ErrorCode, Repository};

use crate::reason::Reason;
use crate::{
    error::{Error, ErrorKind, Result},
    events::Publisher,
    feed::{Cursor, Delivery},
    files::{OpenProject, watch::ChangeItem},
    git::{
        credentials::Token,
        diff::{DiffQuery, DiffResult},
        remote::{PullMode, PullOutcome, RefChange, Reporter},
        repo::{BranchInfo, CommitInfo, RepoStatus},
        transfer::Transfer,
        warm_status::StatusCache,
    },
    projects::ProjectObserver,
};
pub use events::GitEvent;
pub use handles::Released;
pub use open::open_project_repository;

/// Commits per history page when the caller names no limit.
const DEFAULT_LOG_LIMIT: usize = 50;
/// Most commits per history page.
const MAX_LOG_LIMIT: u32 = 1000;

/// How long a repository nobody uses stays open (`handles.rs`): long
/// enough for a session of edits and statuses, short enough that an agent
/// left alone holds no index.
pub const REPOSITORY_IDLE: Duration = Duration::from_secs(60);

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

/// A page of history to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogQuery {
    /// Where to start (a revision); empty for HEAD.
    pub start: String,
    /// Most commits; 0 for the default (50), at most 1000.
    pub limit: u32,
    /// The previous page's `next_page_token`; empty for the first page.
    pub page_token: String,
    /// Only commits touching this project path; empty for all.
    pub path: String,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogPage {
    /// Newest first.
    pub commits: Vec<CommitInfo>,
    /// Token for the next page; empty on the last one.
    pub next_page_token: String,
}

/// What a pull did, and where HEAD is after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullResult {
    /// Up to date, fast-forwarded, merged or stopped with conflicts.
    pub outcome: PullOutcome,
    /// HEAD's commit id.
    pub head: String,
}

/// What to push.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PushSpec {
    /// Remote; empty for the upstream's remote or "origin".
    pub remote: String,
    /// Branch; empty for the current one.
    pub branch: String,
    /// Make the remote branch the upstream.
    pub set_upstream: bool,
    /// Overwrite the remote branch even when it is not an ancestor.
    pub force: bool,
}

/// Git settings in effect.
#[derive(Debug, Clone, Default)]
pub struct GitSettings {
    /// `git.token` and the hosts it may be sent to (`git.token_hosts`).
    pub token: Option<Token>,
    /// Network timeout.
    pub timeout: Duration,
}

// `git2::Repository` has no Debug; the cached project ids say enough.
impl std::fmt::Debug for Git {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Git")
            .field("repositories", &self.handles.project_ids())
            .finish_non_exhaustive()
    }
}

/// The Git facade.
pub struct Git {
    /// Itself, for the per-project followers: they outlive the call that
    /// starts them and must not keep the facade alive.
    me: Weak<Git>,
    handles: Arc<handles::Handles>,
    bus: Publisher<GitEvent>,
    settings: GitSettings,
}

impl Git {
    /// The facade. libgit2 itself is set up on first use, not here: it
    /// reads the user's git configuration and allocates its caches, for a
    /// feature many sessions never touch.
    /// `released` runs after idle repositories were closed, on the
    /// blocking pool, to hand their memory back to the OS.
    pub async fn start(
        bus: Publisher<GitEvent>,
        settings: GitSettings,
        released: Released,
    ) -> Result<Arc<Self>> {
        if let Some(token) = &settings.token
            && token.hosts.is_empty()
        {
            tracing::warn!(
                "git.token is set but git.token_hosts lists no hosts, so the token is sent nowhere; list the https hosts it is for, e.g. token_hosts = [\"github.com\"] under [git] in config.toml"
            );
        }
        Ok(Arc::new_cyclic(|me| Self {
            me: me.clone(),
            handles: handles::Handles::new(REPOSITORY_IDLE, released),
            bus,
            settings,
        }))
    }

    /// Nothing runs in the background but the per-project followers,
    /// which end with their project.
    pub async fn shutdown(&self) {}

    /// Settings in effect.
    pub fn settings(&self) -> &GitSettings {
        &self.settings
    }

    /// The repository's state: branch, upstream, changes, operation.
    /// Answered from the previous status and the paths the watcher saw
    /// change when it can vouch for them (`warm_status.rs`).
    pub async fn status(self: &Arc<Self>, project: &Arc<OpenProject>) -> Result<RepoStatus> {
        self.with_status_cache(project, warm_status::status).await
    }

    /// [`status`](Self::status) on this (blocking-pool) thread.
    fn status_here(&self, project: &OpenProject) -> Result<RepoStatus> {
        self.blocking(project, warm_status::status)
    }

    /// Local branches, and remote ones with `include_remote`.
    pub async fn branches(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        include_remote: bool,
    ) -> Result<Vec<BranchInfo>> {
        self.with_repo(project, move |repo, _| repo::branches(repo, include_remote))
            .await
    }

    /// Create branch `name` at `start_point` (HEAD when empty), checking it
    /// out with `checkout`.
    pub async fn create_branch(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        name: String,
        start_point: String,
        checkout: bool,
    ) -> Result<BranchInfo> {
        self.with_repo(project, move |repo, _| {
            repo::create_branch(repo, &name, &start_point, checkout)
        })
        .await
    }

    /// Check out a branch or commit; the status after.
    pub async fn checkout(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        target: String,
    ) -> Result<RepoStatus> {
        self.change_then_status(project, move |repo, _| repo::checkout(repo, &target))
            .await
    }

    /// Delete a local branch; returns the commit it pointed at.
    pub async fn delete_branch(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        name: String,
        force: bool,
    ) -> Result<String> {
        self.with_repo(project, move |repo, _| {
            repo::delete_branch(repo, &name, force)
        })
        .await
    }

    /// A page of history.
    pub async fn log(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        query: LogQuery,
    ) -> Result<LogPage> {
        let limit = match query.limit {
            0 => DEFAULT_LOG_LIMIT,
            n if n > MAX_LOG_LIMIT => {
                return Err(Error::invalid_argument(
                    "limit",
                    "at most 1000 commits per page",
                ));
            }
            n => n as usize,
        };
        self.with_repo(project, move |repo, project| {
            let path = if query.path.is_empty() {
                None
            } else {
                repo::repo_paths(repo, project, std::slice::from_ref(&query.path))?
                    .into_iter()
                    .next()
            };
            let (commits, next_page_token) = repo::log(
                repo,
                &query.start,
                limit,
                &query.page_token,
                path.as_deref(),
            )?;
            Ok(LogPage {
                commits,
                next_page_token,
            })
        })
        .await
    }

    /// A diff between the worktree, the index, HEAD or two commits.
    pub async fn diff(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        query: DiffQuery,
    ) -> Result<DiffResult> {
        self.with_repo(project, move |repo, project| {
            let paths = repo::repo_paths(repo, project, &query.paths)?;
            diff::diff(
                repo,
                &query.target,
                &paths,
                query.context_lines,
                query.max_bytes,
            )
        })
        .await
    }

    /// Stage `paths` (project paths), or every change with `all`; the
    /// status after.
    pub async fn stage(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        paths: Vec<String>,
        all: bool,
    ) -> Result<RepoStatus> {
        self.change_index(project, paths, all, repo::stage).await
    }

    /// Unstage `paths` (project paths), or everything with `all`; the
    /// status after.
    pub async fn unstage(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        paths: Vec<String>,
        all: bool,
    ) -> Result<RepoStatus> {
        self.change_index(project, paths, all, repo::unstage).await
    }

    async fn change_index(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        paths: Vec<String>,
        all: bool,
        change: fn(&mut Repository, &[String], bool) -> Result<()>,
    ) -> Result<RepoStatus> {
        self.change_then_status(project, move |repo, project| {
            let paths = repo::repo_paths(repo, project, &paths)?;
            change(repo, &paths, all)
        })
        .await
    }

    /// Commit the index (or amend HEAD with it).
    pub async fn commit(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        message: String,
        amend: bool,
    ) -> Result<CommitInfo> {
        self.with_repo(project, move |repo, _| repo::commit(repo, &message, amend))
            .await
    }

    /// Start fetching `remote` (empty: the upstream's remote or "origin");
    /// the transfer ends with the references it updated.
    pub async fn fetch(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        remote: String,
    ) -> Transfer<Vec<RefChange>> {
        self.transfer(project, move |repo, reporter| {
            remote::fetch(repo, &remote, reporter).map(|(_, refs)| refs)
        })
    }

    /// Start pulling the current branch's upstream; the transfer ends with
    /// what the pull did and the new HEAD.
    pub async fn pull(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        remote: String,
        mode: PullMode,
    ) -> Transfer<PullResult> {
        self.transfer(project, move |repo, reporter| {
            remote::pull(repo, &remote, mode, reporter)
                .map(|(outcome, head)| PullResult { outcome, head })
        })
    }

    /// Start pushing a branch; the transfer ends with the remote's answer
    /// per reference.
    pub async fn push(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        spec: PushSpec,
    ) -> Transfer<Vec<RefChange>> {
        self.transfer(project, move |repo, reporter| {
            remote::push(
                repo,
                &spec.remote,
                &spec.branch,
                spec.set_upstream,
                spec.force,
                reporter,
            )
        })
    }

    fn transfer<R, W>(self: &Arc<Self>, project: &Arc<OpenProject>, work: W) -> Transfer<R>
    where
        R: Send + 'static,
        W: FnOnce(&mut Repository, &Reporter<'_>) -> Result<R> + Send + 'static,
    {
        let git = self.clone();
        let project = project.clone();
        let runtime = tokio::runtime::Handle::current();
        Transfer::spawn(move |reporter| {
            let network = transport::Network {
                token: git.settings.token.clone(),
                timeout: git.settings.timeout,
                runtime,
                cancelled: reporter.cancelled.clone(),
            };
            git.blocking(&project, |repository, _, _| {
                transport::during(&network, || work(repository, reporter))
            })
        })
    }

    /// Run `f` with the project's repository, here (a blocking-pool
    /// thread): libgit2 is set up first, the repository opened on first
    /// use.
    fn blocking<T>(
        &self,
        project: &OpenProject,
        f: impl FnOnce(&mut Repository, &mut Option<StatusCache>, &OpenProject) -> Result<T>,
    ) -> Result<T> {
        configure_libgit2(self.settings.timeout);
        self.handles
            .with(project, |repo, status| f(repo, status, project))
    }

    /// Run `change` with the project's repository on the blocking pool,
    /// then answer the status after it through the warm status, which
    /// follows a move of HEAD or the index path by path
    /// (`warm_status.rs`) instead of walking the whole tree.
    async fn change_then_status<F>(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        change: F,
    ) -> Result<RepoStatus>
    where
        F: FnOnce(&mut Repository, &OpenProject) -> Result<()> + Send + 'static,
    {
        self.with_status_cache(project, move |repo, status, project| {
            change(repo, project)?;
            warm_status::status(repo, status, project)
        })
        .await
    }

    /// Run `f` with the project's repository on the blocking pool (opening
    /// it, and libgit2 the first time, there too: both read the disk).
    async fn with_repo<T, F>(self: &Arc<Self>, project: &Arc<OpenProject>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Repository, &OpenProject) -> Result<T> + Send + 'static,
    {
        self.with_status_cache(project, move |repo, _, project| f(repo, project))
            .await
    }

    /// [`with_repo`](Self::with_repo), with the repository's status cache
    /// too (`warm_status.rs`).
    async fn with_status_cache<T, F>(
        self: &Arc<Self>,
        project: &Arc<OpenProject>,
        f: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Repository, &mut Option<StatusCache>, &OpenProject) -> Result<T>
            + Send
            + 'static,
    {
        let git = self.clone();
        let project = project.clone();
        tokio::task::spawn_blocking(move || git.blocking(&project, f)).await?
    }
}

/// Set libgit2 up, once per process, before the first repository
/// operation: OmniPanel's transports for http(s) and ssh, and the connect
/// and read timeouts of the one network protocol libgit2 still speaks
/// itself (`git://`); without them a dead server can hang a fetch
/// forever. Later calls return at once: like the rest of
/// [`GitSettings`], `git.timeout` is read at start-up.
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
            // SAFETY: as above, no transport is being created meanwhile.
            if let Err(err) = transport::register() {
                tracing::warn!(error = %err, "cannot set up git's https and ssh");
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
        let git = self.me.clone();
        let project = project.clone();
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
                        let Some(git) = git.upgrade() else { return };
                        // Through the warm status, which follows the
                        // moved HEAD or index path by path where it can
                        // and leaves the cache that the clients'
                        // GetStatus, which follows this event, answers
                        // from.
                        let Ok(status) = git.status(&project).await else {
                            continue;
                        };
                        git.bus.publish(GitEvent::RepositoryChanged {
                            project_id: project.id().to_owned(),
                            dirty: status.has_changes(),
                            branch: status.branch.unwrap_or_default(),
                            detached: status.detached,
                            head: status.head.unwrap_or_default(),
                        });
                    }
                }
            }
        });
    }

    fn closed(&self, project_id: &str) {
        self.handles.forget(project_id);
    }

    /// From the warm status (`warm_status.rs`): only what changed since
    /// the last status is read again. `None` where there is no repository.
    fn dirty(&self, project: &Arc<OpenProject>) -> Option<bool> {
        self.status_here(project)
            .ok()
            .map(|status| status.has_changes())
    }
}
