//! Live changes of a project: one OS watcher per project, watching each
//! folder that is not ignored (so node_modules and target cost no watches),
//! coalescing raw changes into batches after a settle time, publishing them
//! on the project's change feed (sequence numbers, replay for watchers that
//! reconnect) and keeping the file index current.
//!
//! Changes to .git's HEAD, index and refs are reported as "repository
//! changed", but only when the repository's meaning changed
//! (`repository.rs`): `git status` rewriting the index's timestamps is not
//! a change. A lost stretch of events (kernel queue overflow, a watcher
//! error) produces "rescan needed" and a fresh walk, never silence. Reading
//! the project (our own walks, Git, searches, the user's `rg`) produces no
//! events at all (`linux.rs` says why that needed inotify directly), so an
//! idle project costs nothing.
//!
//! When a watch limit is reached (`limit.rs`) the project goes on in
//! degraded mode: the top of the tree stays watched, the rest is still
//! indexed, FindFiles lists the unwatched folders again before it answers
//! (at most once per [`DEGRADED_FRESHNESS`]), and the status says which
//! limit to raise and how.

pub mod changed;
pub mod limit;
#[cfg(target_os = "linux")]
mod linux;
// Public (hidden) for the fuzz target `watch_coalescing` (`fuzz/targets`),
// which drives it as `Coalescer::absorb` does.
#[doc(hidden)]
pub mod pending;
// Compiled everywhere and unit-tested on Linux, used where inotify is not.
#[cfg_attr(target_os = "linux", allow(dead_code))]
mod portable;
mod repository;
pub(crate) mod source;
pub(crate) mod walk;

use std::{
    collections::BTreeSet,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{mpsc, oneshot};

use crate::feed::Topic;
use crate::files::{
    OpenProject,
    ignore_rules::{IgnoreRules, Verdict},
    sandbox::RelPath,
    watch::{
        limit::{LimitKind, WatchBudget},
        pending::Pending,
        repository::Fingerprint,
        source::{Backend, FolderWatches, RawChange, RawKind},
        walk::{Walked, walk},
    },
};

/// In degraded mode, how old the listing of unwatched folders may be when
/// FindFiles answers: a client typing a query sends many in a second, and
/// each need not list the unwatched part of the tree again.
pub const DEGRADED_FRESHNESS: Duration = Duration::from_secs(1);

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Appeared.
    Created,
    /// Contents or metadata changed.
    Modified,
    /// Disappeared.
    Deleted,
    /// Moved; `from` has the old path.
    Renamed,
}

/// One coalesced change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    /// What happened.
    pub kind: ChangeKind,
    /// Path (new path for renames).
    pub path: String,
    /// Old path, for renames.
    pub from: Option<String>,
    /// Whether it is a folder.
    pub is_dir: bool,
}

/// An item on a project's change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeItem {
    /// Changes that settled together.
    Batch(Vec<FileChange>),
    /// Git metadata changed (paths under .git).
    RepositoryChanged(Vec<String>),
    /// Events were lost, or are not all reported; re-read what you mirror.
    RescanNeeded(String),
}

impl Topic for ChangeItem {
    fn topic(&self) -> &str {
        "files"
    }
}

/// How a project's files are followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchPhase {
    /// The first walk is running.
    Indexing,
    /// Every folder that is not ignored is watched.
    Live,
    /// A watch limit is reached: some folders are not watched (see the
    /// status's detail).
    Degraded,
    /// Nothing can be watched; the index is refreshed on demand only.
    Unavailable,
}

/// The watcher's state, for `projects show` and the event bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchStatus {
    /// The phase.
    pub phase: WatchPhase,
    /// Folders watched.
    pub watched_folders: u64,
    /// Folders not watched because a limit was reached (as of the last
    /// listing of them).
    pub unwatched_folders: u64,
    /// Full rescans since the project was opened (after lost events).
    pub rescans: u64,
    /// Why the phase is not Live, and what to do about it.
    pub detail: String,
}

impl Default for WatchStatus {
    fn default() -> Self {
        Self {
            phase: WatchPhase::Indexing,
            watched_folders: 0,
            unwatched_folders: 0,
            rescans: 0,
            detail: String::new(),
        }
    }
}

/// A request to list the unwatched folders again; answered when done.
pub type RefreshRequest = oneshot::Sender<()>;

/// Start watching `project` and building its index; watches are drawn
/// from `budget`, and `refresh` carries on-demand relisting requests.
pub fn start(
    project: &Arc<OpenProject>,
    budget: Arc<WatchBudget>,
    refresh: mpsc::Receiver<RefreshRequest>,
) {
    let (watches, receiver, unavailable) = match start_backend(project, budget) {
        Ok((watches, receiver)) => (Some(watches), Some(receiver), None),
        Err(err) => {
            let detail = limit::unavailable_detail(&err);
            tracing::warn!(project = %project.root().display(), %detail, "cannot watch the project");
            (None, None, Some(detail))
        }
    };
    let mut coalescer = Coalescer {
        project: project.clone(),
        watches,
        rules: IgnoreRules::new(&project.settings().always_ignored),
        settle: project.settings().watch_settle,
        unwatched: BTreeSet::new(),
        unwatched_count: 0,
        limit: None,
        unavailable,
        fingerprint: None,
        rescans: 0,
        refreshed_at: None,
    };
    tokio::spawn(async move {
        coalescer.scan().await;
        if project_has_git(coalescer.project.root()) {
            coalescer.repository_changed().await;
        }
        coalescer.run(receiver, refresh).await;
    });
}

#[cfg(target_os = "linux")]
fn start_backend(project: &OpenProject, budget: Arc<WatchBudget>) -> std::io::Result<Backend> {
    linux::start(budget, project.stopped())
}

#[cfg(not(target_os = "linux"))]
fn start_backend(project: &OpenProject, budget: Arc<WatchBudget>) -> std::io::Result<Backend> {
    portable::start(project.root().to_owned(), budget)
}

fn project_has_git(root: &Path) -> bool {
    root.join(".git").is_dir()
}

struct Coalescer {
    project: Arc<OpenProject>,
    watches: Option<Arc<dyn FolderWatches>>,
    rules: IgnoreRules,
    settle: Duration,
    /// Roots of the subtrees left unwatched at a limit.
    unwatched: BTreeSet<RelPath>,
    /// Folders in those subtrees, as of their last listing.
    unwatched_count: usize,
    /// The limit that was reached.
    limit: Option<LimitKind>,
    /// Why nothing can be watched, when that is so.
    unavailable: Option<String>,
    /// What the repository meant when last looked at.
    fingerprint: Option<Fingerprint>,
    rescans: u64,
    /// When the unwatched folders were last listed on demand.
    refreshed_at: Option<Instant>,
}

impl Coalescer {
    fn watches(&self) -> Option<&dyn FolderWatches> {
        self.watches.as_deref()
    }

    /// Walk from `starts` on the blocking pool, watching as it goes, with
    /// `rules` (returned with the `.gitignore` files found on the way).
    async fn walk(
        &self,
        starts: Vec<RelPath>,
        mut rules: IgnoreRules,
    ) -> Option<(Walked, IgnoreRules)> {
        let project = self.project.clone();
        let watches = self.watches.clone();
        tokio::task::spawn_blocking(move || {
            let walked = walk(project.dir(), &starts, &mut rules, watches.as_deref());
            (walked, rules)
        })
        .await
        .ok()
    }

    /// Walk the whole project, rebuild the index and (re)add watches.
    async fn scan(&mut self) {
        let rules = IgnoreRules::new(&self.project.settings().always_ignored);
        let Some((walked, rules)) = self.walk(vec![RelPath::root()], rules).await else {
            return;
        };
        self.rules = rules;
        self.report_failures(&walked);
        self.project
            .changed_paths()
            .replace_blind(walked.blind.iter().cloned());
        if self.unavailable.is_some() {
            self.unwatched = BTreeSet::from([RelPath::root()]);
            self.unwatched_count = walked.dirs.len();
        } else {
            self.unwatched = walked.unwatched.into_iter().collect();
            self.unwatched_count = walked.unwatched_count;
            self.limit = walked.limit;
        }
        self.refreshed_at = Some(Instant::now());
        // The status first: a client that sees the index complete sees
        // how it is watched too.
        self.publish_status();
        self.project.index().replace(walked.files);
    }

    fn report_failures(&self, walked: &Walked) {
        if walked.stale_temporaries_removed > 0 {
            tracing::info!(
                project = %self.project.root().display(),
                count = walked.stale_temporaries_removed,
                "removed temporary files that writes interrupted by a crash or kill had left"
            );
        }
        if let Some(first) = walked.failures.first() {
            tracing::debug!(
                project = %self.project.root().display(),
                count = walked.failures.len(),
                first = %first,
                "folders that cannot be watched (gone or unreadable)"
            );
        }
    }

    /// Publish the watch status; log and announce a change of phase.
    fn publish_status(&self) {
        let watched = self.watches().map_or(0, FolderWatches::count) as u64;
        let unwatched = self.unwatched_count as u64;
        let (phase, detail) = if let Some(reason) = &self.unavailable {
            (WatchPhase::Unavailable, reason.clone())
        } else if self.unwatched.is_empty() {
            (WatchPhase::Live, String::new())
        } else {
            let kind = self.limit.unwrap_or(LimitKind::Kernel);
            (
                WatchPhase::Degraded,
                limit::degraded_detail(kind, watched, unwatched),
            )
        };
        let status = WatchStatus {
            phase,
            watched_folders: watched,
            unwatched_folders: unwatched,
            rescans: self.rescans,
            detail: detail.clone(),
        };
        self.project
            .changed_paths()
            .set_complete(phase == WatchPhase::Live);
        let before = self.project.set_watch_status(status);
        if before == phase {
            return;
        }
        let project = self.project.root().display();
        match phase {
            WatchPhase::Degraded | WatchPhase::Unavailable => {
                tracing::warn!(%project, %detail, "the project is not fully watched");
                self.project
                    .changes()
                    .publish(ChangeItem::RescanNeeded(detail));
            }
            WatchPhase::Live if before != WatchPhase::Indexing => {
                tracing::info!(%project, "every folder of the project is watched again");
            }
            WatchPhase::Live | WatchPhase::Indexing => {}
        }
    }

    async fn run(
        &mut self,
        mut receiver: Option<mpsc::Receiver<Vec<RawChange>>>,
        mut refresh: mpsc::Receiver<RefreshRequest>,
    ) {
        let stop = self.project.stopped();
        let mut pending = Pending::default();
        let mut first_at: Option<Instant> = None;
        let mut last_at = Instant::now();
        // Never hold a batch longer than this, even while events keep coming.
        let max_latency = (self.settle * 10).max(Duration::from_millis(500));
        loop {
            let deadline = first_at.map(|first| (last_at + self.settle).min(first + max_latency));
            tokio::select! {
                () = stop.cancelled() => return,
                batch = async {
                    match receiver.as_mut() {
                        Some(receiver) => receiver.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    let Some(batch) = batch else { return };
                    if let Some(reason) = self.absorb_batch(batch, &mut pending).await {
                        pending = Pending::default();
                        first_at = None;
                        // What is queued is part of the lost stretch.
                        if let Some(receiver) = receiver.as_mut() {
                            while receiver.try_recv().is_ok() {}
                        }
                        self.rescan(&reason).await;
                        continue;
                    }
                    last_at = Instant::now();
                    first_at.get_or_insert(last_at);
                }
                request = refresh.recv() => {
                    let Some(request) = request else { return };
                    self.flush(&mut pending).await;
                    first_at = None;
                    let mut waiting = vec![request];
                    while let Ok(more) = refresh.try_recv() {
                        waiting.push(more);
                    }
                    self.refresh_unwatched().await;
                    for request in waiting {
                        let _ = request.send(());
                    }
                }
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now).into()),
                    if deadline.is_some() => {
                    self.flush(&mut pending).await;
                    first_at = None;
                }
            }
        }
    }

    /// Absorb a batch; `Some(reason)` when events were lost.
    async fn absorb_batch(
        &mut self,
        batch: Vec<RawChange>,
        pending: &mut Pending,
    ) -> Option<String> {
        for change in batch {
            if let RawKind::Lost(reason) = change.kind {
                self.project.changed_paths().lost();
                return Some(reason);
            }
            self.absorb(change, pending).await;
        }
        None
    }

    async fn rescan(&mut self, reason: &str) {
        self.rescans += 1;
        tracing::info!(project = %self.project.root().display(), reason, "rescan needed");
        self.project
            .changes()
            .publish(ChangeItem::RescanNeeded(reason.to_owned()));
        self.scan().await;
        // A change of the repository may have been among the lost events.
        if project_has_git(self.project.root()) && self.repository_changed().await {
            self.project
                .changes()
                .publish(ChangeItem::RepositoryChanged(vec![".git".to_owned()]));
        }
    }

    /// Whether the repository means something else than when last looked
    /// at (always, when it cannot be read).
    async fn repository_changed(&mut self) -> bool {
        let root = self.project.root().to_owned();
        let now = tokio::task::spawn_blocking(move || repository::fingerprint(&root))
            .await
            .ok()
            .flatten();
        let changed = now.is_none() || now != self.fingerprint;
        self.fingerprint = now;
        changed
    }

    /// List the unwatched folders again (degraded mode, on demand), and
    /// watch what can be watched now.
    async fn refresh_unwatched(&mut self) {
        if self.unwatched.is_empty()
            || self
                .refreshed_at
                .is_some_and(|at| at.elapsed() < DEGRADED_FRESHNESS)
        {
            return;
        }
        let starts: Vec<RelPath> = self.unwatched.iter().cloned().collect();
        let Some((walked, rules)) = self.walk(starts.clone(), self.rules.clone()).await else {
            return;
        };
        self.rules = rules;
        self.report_failures(&walked);
        self.project
            .changed_paths()
            .add_blind(walked.blind.iter().cloned());
        if self.unavailable.is_none() {
            self.unwatched = walked.unwatched.into_iter().collect();
            self.unwatched_count = walked.unwatched_count;
            self.limit = walked.limit;
        } else {
            self.unwatched_count = walked.dirs.len();
        }
        self.project.index().replace_under(&starts, walked.files);
        self.refreshed_at = Some(Instant::now());
        self.publish_status();
    }

    async fn flush(&mut self, pending: &mut Pending) {
        if pending.is_empty() {
            return;
        }
        // Folders moved out of the project: their watches would report
        // from outside it.
        let moved_away: Vec<RelPath> = pending
            .moved_away()
            .filter(|(_, is_dir)| *is_dir)
            .map(|(path, _)| path.clone())
            .collect();
        for path in &moved_away {
            if let Some(watches) = self.watches() {
                watches.remove_tree(path);
            }
            self.forget_unwatched(path);
        }
        let (batch, repository) = pending.take();
        let index = self.project.index();
        for change in &batch {
            match change.kind {
                ChangeKind::Created if !change.is_dir => index.insert(&change.path),
                ChangeKind::Deleted => index.remove(&change.path),
                ChangeKind::Renamed => {
                    if let Some(from) = &change.from {
                        index.rename(from, &change.path);
                    }
                }
                _ => {}
            }
        }
        if !batch.is_empty() {
            self.project.changes().publish(ChangeItem::Batch(batch));
        }
        if !repository.is_empty() && self.repository_changed().await {
            self.project
                .changes()
                .publish(ChangeItem::RepositoryChanged(repository));
        }
        self.publish_status();
    }

    /// Unwatched roots at or below `path` are gone.
    fn forget_unwatched(&mut self, path: &RelPath) {
        self.unwatched.retain(|root| !root.starts_with(path));
    }

    /// Watch (and list) a folder that appeared; the changes of what it
    /// already holds go into `pending` when given.
    async fn adopt_dir(&mut self, dir: RelPath, pending: Option<&mut Pending>) {
        let Some((walked, rules)) = self.walk(vec![dir.clone()], self.rules.clone()).await else {
            return;
        };
        self.rules = rules;
        self.report_failures(&walked);
        let changed = self.project.changed_paths();
        changed.add_blind(walked.blind.iter().cloned());
        // What changed in it before its watch was added is known only
        // from this listing: Git's status looks at all of it again.
        changed.record(&dir);
        if let Some(pending) = pending {
            for sub in walked.dirs.iter().filter(|d| **d != dir) {
                pending.add(ChangeKind::Created, sub.as_str().to_owned(), true);
            }
            for file in &walked.files {
                pending.add(ChangeKind::Created, file.clone(), false);
            }
        }
        if !walked.unwatched.is_empty() {
            self.unwatched.extend(walked.unwatched);
            self.unwatched_count += walked.unwatched_count;
            self.limit = self.limit.or(walked.limit);
            self.publish_status();
        }
    }

    /// A `.gitignore` was touched: its folder's rules change.
    fn reload_rules_for(&mut self, path: &RelPath) {
        if path.name() == ".gitignore" {
            self.rules.load(self.project.dir(), &path.parent());
        }
    }

    async fn absorb(&mut self, change: RawChange, pending: &mut Pending) {
        let RawChange { kind, path, is_dir } = change;
        self.project.changed_paths().record(&path);
        self.reload_rules_for(&path);
        let verdict = self.rules.verdict(&path, is_dir);
        if is_dir
            && verdict == Verdict::Ignore
            && matches!(kind, RawKind::Created | RawKind::MovedTo(_))
        {
            // A folder nothing will watch: Git's status looks into it.
            self.project.changed_paths().add_blind([path.clone()]);
        }
        match kind {
            RawKind::Lost(_) => {}
            RawKind::MovedFrom(cookie) => match verdict {
                Verdict::Keep => {
                    pending.moved_from(cookie, path, is_dir);
                }
                Verdict::Repository => {
                    pending.repository.insert(path.as_str().to_owned());
                }
                Verdict::Ignore => {}
            },
            RawKind::MovedTo(cookie) => {
                match (pending.take_moved_from(cookie), verdict) {
                    (Some(away), Verdict::Keep) => {
                        let from = away.path.clone();
                        if is_dir {
                            self.project.changed_paths().moved(&from, &path);
                        }
                        self.reload_rules_for(&from);
                        let moved: Vec<RelPath> = self
                            .unwatched
                            .iter()
                            .filter_map(|root| root.rebase(&from, &path))
                            .collect();
                        if !moved.is_empty() {
                            self.forget_unwatched(&from);
                            self.unwatched.extend(moved);
                        }
                        pending.renamed(away, path, is_dir);
                    }
                    (Some(away), other) => {
                        // Moved somewhere ignored: gone, as far as the
                        // project is concerned.
                        let from = away.path.clone();
                        self.reload_rules_for(&from);
                        pending.moved_out(away);
                        if is_dir && let Some(watches) = self.watches() {
                            watches.remove_tree(&path);
                        }
                        self.forget_unwatched(&from);
                        if other == Verdict::Repository {
                            pending.repository.insert(path.as_str().to_owned());
                        }
                    }
                    (None, Verdict::Keep) => {
                        pending.moved_in(path.as_str().to_owned(), is_dir);
                        if is_dir {
                            self.adopt_dir(path, Some(pending)).await;
                        }
                    }
                    (None, Verdict::Repository) => {
                        if is_dir {
                            self.adopt_dir(path.clone(), None).await;
                        }
                        pending.repository.insert(path.as_str().to_owned());
                    }
                    (None, Verdict::Ignore) => {}
                }
            }
            RawKind::Created | RawKind::Modified | RawKind::Deleted => match verdict {
                Verdict::Ignore => {}
                Verdict::Repository => {
                    if is_dir && kind == RawKind::Created {
                        // A new .git (git init) or refs folder: watch what
                        // in it matters (HEAD, index, refs).
                        self.adopt_dir(path.clone(), None).await;
                    }
                    pending.repository.insert(path.as_str().to_owned());
                }
                Verdict::Keep => match kind {
                    RawKind::Created => {
                        pending.add(ChangeKind::Created, path.as_str().to_owned(), is_dir);
                        if is_dir {
                            self.adopt_dir(path, Some(pending)).await;
                        }
                    }
                    RawKind::Modified => {
                        if !is_dir {
                            pending.add(ChangeKind::Modified, path.as_str().to_owned(), false);
                        }
                    }
                    _ => {
                        pending.add(ChangeKind::Deleted, path.as_str().to_owned(), is_dir);
                        if is_dir {
                            self.forget_unwatched(&path);
                        }
                    }
                },
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        config::FilesSettings,
        feed::{Cursor, Delivery},
    };

    fn coalescer(project: &Arc<OpenProject>, watches: Option<Arc<dyn FolderWatches>>) -> Coalescer {
        Coalescer {
            project: project.clone(),
            watches,
            rules: IgnoreRules::new(&[]),
            settle: Duration::from_millis(10),
            unwatched: BTreeSet::new(),
            unwatched_count: 0,
            limit: None,
            unavailable: None,
            fingerprint: None,
            rescans: 0,
            refreshed_at: None,
        }
    }

    async fn next_item(
        subscription: &mut crate::feed::Subscription<ChangeItem>,
        wanted: impl Fn(&ChangeItem) -> bool,
    ) -> Option<ChangeItem> {
        while let Some(delivery) =
            tokio::time::timeout(Duration::from_secs(30), subscription.next())
                .await
                .ok()
                .flatten()
        {
            if let Delivery::Event(record) = delivery
                && wanted(&record.payload)
            {
                return Some(record.payload.clone());
            }
        }
        None
    }

    #[tokio::test]
    async fn lost_events_mean_rescan_needed_a_fresh_index_and_a_count() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("a.txt"), "a")?;
        let root = std::fs::canonicalize(dir.path())?;
        // A watcher fed by the test: a real one would race it.
        let (project, refresh) =
            OpenProject::open_for_test(&root).map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut coalescer = coalescer(&project, None);
        let mut subscription = project.changes().subscribe(Cursor::default(), Vec::new());
        let (sender, receiver) = mpsc::channel(4);
        let run = tokio::spawn(async move { coalescer.run(Some(receiver), refresh).await });
        sender
            .send(vec![RawChange::lost("the kernel's event queue overflowed")])
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let item = next_item(&mut subscription, |item| {
            matches!(item, ChangeItem::RescanNeeded(_))
        })
        .await;
        assert_eq!(
            item,
            Some(ChangeItem::RescanNeeded(
                "the kernel's event queue overflowed".to_owned()
            ))
        );
        // The rescan rebuilt the index and is counted in the status.
        let deadline = Instant::now() + Duration::from_secs(30);
        while project.watch_status().rescans == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(project.watch_status().rescans, 1);
        assert!(project.index().find("a.txt", 1).matches.len() == 1);
        project.shut();
        let _ = run.await;
        Ok(())
    }

    #[tokio::test]
    async fn a_project_at_the_limit_is_degraded_and_says_how_to_raise_it() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        for folder in ["a/deep", "b/deep", "c/deep"] {
            std::fs::create_dir_all(dir.path().join(folder))?;
            std::fs::write(dir.path().join(folder).join("f.txt"), "x")?;
        }
        let root = std::fs::canonicalize(dir.path())?;
        // The root and a, b, c: the deep folders are left unwatched.
        let budget = Arc::new(WatchBudget::new(4));
        let project = OpenProject::open("p", &root, &FilesSettings::default(), 1, &budget, None)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut subscription = project.changes().subscribe(Cursor::default(), Vec::new());
        let item = next_item(&mut subscription, |item| {
            matches!(item, ChangeItem::RescanNeeded(_))
        })
        .await;
        let Some(ChangeItem::RescanNeeded(detail)) = item else {
            panic!("no degraded notice: {item:?}");
        };
        assert!(detail.contains("files.max_watches = 4"), "{detail}");
        let status = project.watch_status();
        assert_eq!(status.phase, WatchPhase::Degraded);
        assert_eq!(status.watched_folders, 4);
        assert_eq!(status.unwatched_folders, 3);
        assert_eq!(status.detail, detail);
        // Everything is indexed all the same, and a file added where
        // nothing watches is found once FindFiles lists it again.
        let found = project
            .find_files("f.txt", 10)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        assert_eq!(found.matches.len(), 3);
        std::fs::write(root.join("a/deep/new.txt"), "x")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = project
                .find_files("new.txt", 10)
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if found.matches.iter().any(|m| m.path == "a/deep/new.txt") {
                break;
            }
            assert!(Instant::now() < deadline, "the new file was never found");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Once watches are free again, a relisting watches everything.
        project.shut();
        drop(project);
        let roomy = OpenProject::open(
            "q",
            &root,
            &FilesSettings::default(),
            1,
            &Arc::new(WatchBudget::new(0)),
            None,
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while roomy.watch_status().phase == WatchPhase::Indexing && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(roomy.watch_status().phase, WatchPhase::Live);
        assert_eq!(roomy.watch_status().watched_folders, 7);
        roomy.shut();
        Ok(())
    }
}
