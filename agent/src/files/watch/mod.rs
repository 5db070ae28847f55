//! Live changes of a project: one inotify-backed watcher per project,
//! watching each folder that is not ignored (so node_modules and target
//! cost no watches), coalescing raw events into batches after a settle time,
//! publishing them on the project's change feed (sequence numbers, replay
//! for watchers that reconnect) and keeping the file index current. Changes
//! to .git's HEAD, index and refs are reported as "repository changed". A
//! kernel queue overflow, a full event channel or a folder that cannot be
//! watched produce "rescan needed" (and a fresh index), never silence.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use notify::{
    EventKind, RecursiveMode, Watcher,
    event::{CreateKind, ModifyKind, RemoveKind, RenameMode},
};
use tokio::sync::mpsc;

use crate::{
    feed::Topic,
    files::{
        OpenProject,
        ignore_rules::{IgnoreRules, Verdict},
        sandbox::RelPath,
    },
};

/// Raw events buffered between the OS watcher thread and the coalescer
/// before the overflow path (rescan) is taken.
const RAW_CAPACITY: usize = 8192;

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
    /// Events were lost; re-read what you mirror.
    RescanNeeded(String),
}

impl Topic for ChangeItem {
    fn topic(&self) -> &str {
        "files"
    }
}

type RawEvent = notify::Result<notify::Event>;

/// Start watching `project` and building its index.
pub fn start(project: &Arc<OpenProject>) {
    let (sender, receiver) = mpsc::channel::<RawEvent>(RAW_CAPACITY);
    let overflowed = Arc::new(AtomicBool::new(false));
    let flag = overflowed.clone();
    let watcher = notify::recommended_watcher(move |event: RawEvent| {
        // The OS thread must never block; a full channel means we lost
        // events and must say so.
        if let Err(mpsc::error::TrySendError::Full(_)) = sender.try_send(event) {
            flag.store(true, Ordering::Release);
        }
    });
    let watcher = match watcher {
        Ok(watcher) => Some(watcher),
        Err(err) => {
            tracing::warn!(project = %project.root().display(), error = %err, "cannot watch the project");
            project.changes().publish(ChangeItem::RescanNeeded(format!(
                "the project cannot be watched ({err}); changes are not reported live"
            )));
            None
        }
    };
    let mut coalescer = Coalescer {
        project: project.clone(),
        watcher: watcher.map(|w| Arc::new(Mutex::new(w))),
        watched: HashSet::new(),
        rules: IgnoreRules::new(&project.settings().always_ignored),
        overflowed,
        settle: project.settings().watch_settle,
    };
    tokio::spawn(async move {
        coalescer.rescan_blocking_free().await;
        coalescer.run(receiver).await;
    });
}

struct Coalescer {
    project: Arc<OpenProject>,
    watcher: Option<Arc<Mutex<notify::RecommendedWatcher>>>,
    watched: HashSet<PathBuf>,
    rules: IgnoreRules,
    overflowed: Arc<AtomicBool>,
    settle: Duration,
}

/// The result of walking (part of) the tree.
struct WalkResult {
    files: BTreeSet<String>,
    dirs: Vec<RelPath>,
    gitignores: Vec<RelPath>,
}

/// Watches added during a walk, and folders that could not be watched.
#[derive(Debug, Default)]
struct WatchOutcome {
    added: Vec<PathBuf>,
    failures: Vec<String>,
}

/// Walk `start` (a folder inside `root`), skipping ignored folders;
/// blocking. With a watcher, each folder is watched *before* it is listed,
/// so nothing created while the walk runs can fall between the two.
fn walk(
    root: &Path,
    start: &RelPath,
    rules: &IgnoreRules,
    watcher: Option<&Mutex<notify::RecommendedWatcher>>,
    already: &HashSet<PathBuf>,
    outcome: &mut WatchOutcome,
) -> WalkResult {
    let mut result = WalkResult {
        files: BTreeSet::new(),
        dirs: Vec::new(),
        gitignores: Vec::new(),
    };
    let mut pending = vec![start.clone()];
    while let Some(dir) = pending.pop() {
        let absolute = root.join(dir.as_path());
        if let Some(watcher) = watcher
            && !already.contains(&absolute)
        {
            let mut watcher = watcher
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match watcher.watch(&absolute, RecursiveMode::NonRecursive) {
                Ok(()) => outcome.added.push(absolute.clone()),
                Err(err) => outcome.failures.push(format!("{dir}: {err}")),
            }
        }
        let Ok(entries) = std::fs::read_dir(&absolute) else {
            continue;
        };
        result.dirs.push(dir.clone());
        let mut children = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            children.push((name, file_type));
        }
        if children
            .iter()
            .any(|(n, t)| n == ".gitignore" && t.is_file())
        {
            result.gitignores.push(dir.clone());
        }
        for (name, file_type) in children {
            let path = dir.join(&name);
            let is_dir = file_type.is_dir();
            match rules.verdict(&path, is_dir) {
                Verdict::Ignore => continue,
                Verdict::Repository => {
                    if is_dir {
                        pending.push(path);
                    }
                    continue;
                }
                Verdict::Keep => {}
            }
            if is_dir {
                pending.push(path);
            } else {
                result.files.insert(path.as_str().to_owned());
            }
        }
        if dir.is_root() && root.join(".git").is_dir() {
            // .git itself is "ignored" but its HEAD/index/refs are watched.
            pending.push(RelPath::root().join(".git"));
        }
    }
    result
}

/// Pending changes of one batch, merged per path.
#[derive(Debug, Default)]
struct Pending {
    order: Vec<String>,
    changes: HashMap<String, FileChange>,
    renames: Vec<FileChange>,
    repository: BTreeSet<String>,
    rename_from: HashMap<usize, (String, bool)>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.renames.is_empty()
            && self.repository.is_empty()
            && self.rename_from.is_empty()
    }

    fn add(&mut self, kind: ChangeKind, path: String, is_dir: bool) {
        use ChangeKind::{Created, Deleted, Modified};
        match self.changes.get(&path).map(|c| c.kind) {
            None => {
                self.order.push(path.clone());
                self.changes.insert(
                    path.clone(),
                    FileChange {
                        kind,
                        path,
                        from: None,
                        is_dir,
                    },
                );
            }
            Some(existing) => {
                let merged = match (existing, kind) {
                    (Created, Modified) => Some(Created),
                    (Created, Deleted) => None,
                    (Deleted, Created) => Some(Modified),
                    (_, Deleted) => Some(Deleted),
                    (existing, _) => Some(existing),
                };
                match merged {
                    Some(kind) => {
                        if let Some(change) = self.changes.get_mut(&path) {
                            change.kind = kind;
                            change.is_dir |= is_dir;
                        }
                    }
                    None => {
                        self.changes.remove(&path);
                        self.order.retain(|p| p != &path);
                    }
                }
            }
        }
    }

    fn take(&mut self) -> (Vec<FileChange>, Vec<String>) {
        // A rename whose other half never came: moved out of or into the
        // watched tree, which is a delete or a create.
        for (_, (path, is_dir)) in std::mem::take(&mut self.rename_from) {
            self.add(ChangeKind::Deleted, path, is_dir);
        }
        let mut batch: Vec<FileChange> = std::mem::take(&mut self.renames);
        for path in std::mem::take(&mut self.order) {
            if let Some(change) = self.changes.remove(&path) {
                batch.push(change);
            }
        }
        self.changes.clear();
        (
            batch,
            std::mem::take(&mut self.repository).into_iter().collect(),
        )
    }
}

impl Coalescer {
    fn relative(&self, path: &Path) -> Option<RelPath> {
        path.strip_prefix(self.project.root())
            .ok()
            .and_then(RelPath::from_inside)
    }

    /// Walk from `start` on the blocking pool, watching as it goes.
    async fn walk_and_watch(
        &mut self,
        start: RelPath,
        rules: IgnoreRules,
    ) -> Option<(WalkResult, IgnoreRules, Vec<String>)> {
        let root = self.project.root().to_owned();
        let watcher = self.watcher.clone();
        let already = self.watched.clone();
        let (walked, rules, outcome) = tokio::task::spawn_blocking(move || {
            let mut outcome = WatchOutcome::default();
            let walked = walk(
                &root,
                &start,
                &rules,
                watcher.as_deref(),
                &already,
                &mut outcome,
            );
            (walked, rules, outcome)
        })
        .await
        .ok()?;
        self.watched.extend(outcome.added);
        Some((walked, rules, outcome.failures))
    }

    /// Walk the whole project, rebuild the index and (re)add watches.
    async fn rescan_blocking_free(&mut self) {
        let root = self.project.root().to_owned();
        let always = self.project.settings().always_ignored.clone();
        // The .gitignore files must be known before the walk that applies
        // them: a cheap first pass finds them (no watches), the second walks
        // with them and watches.
        let first_pass = tokio::task::spawn_blocking(move || {
            let mut rules = IgnoreRules::new(&always);
            let mut unused = WatchOutcome::default();
            let first = walk(
                &root,
                &RelPath::root(),
                &rules,
                None,
                &HashSet::new(),
                &mut unused,
            );
            for dir in &first.gitignores {
                rules.load(&root, dir);
            }
            rules
        })
        .await;
        let Ok(rules) = first_pass else { return };
        let Some((walked, rules, failures)) = self.walk_and_watch(RelPath::root(), rules).await
        else {
            return;
        };
        self.rules = rules;
        self.project.index().replace(walked.files);
        if !failures.is_empty() {
            let reason = format!(
                "{} folder(s) cannot be watched (first: {}); raise fs.inotify.max_user_watches",
                failures.len(),
                failures[0]
            );
            tracing::warn!(project = %self.project.root().display(), %reason, "incomplete watch");
            self.project
                .changes()
                .publish(ChangeItem::RescanNeeded(reason));
        }
    }

    async fn run(&mut self, mut receiver: mpsc::Receiver<RawEvent>) {
        let stop = self.project.stopped();
        let mut pending = Pending::default();
        let mut first_at: Option<Instant> = None;
        let mut last_at = Instant::now();
        // Never hold a batch longer than this, even while events keep coming.
        let max_latency = (self.settle * 10).max(Duration::from_millis(500));
        loop {
            let deadline = match first_at {
                Some(first) => Some((last_at + self.settle).min(first + max_latency)),
                None => None,
            };
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = receiver.recv() => match event {
                    Some(event) => Some(event),
                    None => return,
                },
                () = async {
                    match deadline {
                        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                        None => std::future::pending().await,
                    }
                } => None,
            };
            match event {
                Some(event) => {
                    self.absorb(event, &mut pending).await;
                    last_at = Instant::now();
                    first_at.get_or_insert(last_at);
                }
                None => {
                    self.flush(&mut pending);
                    first_at = None;
                }
            }
            if self.overflowed.swap(false, Ordering::AcqRel) {
                pending = Pending::default();
                first_at = None;
                // Drain what is queued: it is part of the lost stretch.
                while receiver.try_recv().is_ok() {}
                self.rescan("too many changes at once; some were not seen")
                    .await;
            }
        }
    }

    async fn rescan(&mut self, reason: &str) {
        tracing::info!(project = %self.project.root().display(), reason, "rescan needed");
        self.project
            .changes()
            .publish(ChangeItem::RescanNeeded(reason.to_owned()));
        self.rescan_blocking_free().await;
    }

    fn flush(&mut self, pending: &mut Pending) {
        if pending.is_empty() {
            return;
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
        if !repository.is_empty() {
            self.project
                .changes()
                .publish(ChangeItem::RepositoryChanged(repository));
        }
    }

    /// A new folder: watch it and report what is already inside (it may
    /// have been filled before the watch was added).
    async fn adopt_dir(&mut self, dir: RelPath, pending: &mut Pending) {
        let rules = IgnoreRules::new(&self.project.settings().always_ignored);
        let Some((walked, _, failures)) = self.walk_and_watch(dir.clone(), rules).await else {
            return;
        };
        for sub in walked.dirs.iter().filter(|d| **d != dir) {
            pending.add(ChangeKind::Created, sub.as_str().to_owned(), true);
        }
        for file in walked.files {
            let path = RelPath::from_inside(Path::new(&file)).unwrap_or_else(RelPath::root);
            if self.rules.verdict(&path, false) == Verdict::Keep {
                pending.add(ChangeKind::Created, file, false);
            }
        }
        if !failures.is_empty() {
            self.project
                .changes()
                .publish(ChangeItem::RescanNeeded(format!(
                    "a new folder cannot be watched ({})",
                    failures[0]
                )));
        }
    }

    async fn absorb(&mut self, event: RawEvent, pending: &mut Pending) {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                self.rescan(&format!("the watcher reported an error: {err}"))
                    .await;
                return;
            }
        };
        if event.need_rescan() {
            self.rescan("the kernel's event queue overflowed").await;
            return;
        }
        let is_dir_hint = matches!(
            event.kind,
            EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder)
        );
        let paths: Vec<RelPath> = event
            .paths
            .iter()
            .filter_map(|p| self.relative(p))
            .collect();
        if let (EventKind::Modify(ModifyKind::Name(RenameMode::Both)), [from, to]) =
            (event.kind, paths.as_slice())
        {
            if let Some(tracker) = event.attrs.tracker() {
                pending.rename_from.remove(&tracker);
            }
            let is_dir = self.project.root().join(to.as_path()).is_dir();
            let keep_from = self.rules.verdict(from, is_dir) == Verdict::Keep;
            let keep_to = self.rules.verdict(to, is_dir) == Verdict::Keep;
            match (keep_from, keep_to) {
                (true, true) => pending.renames.push(FileChange {
                    kind: ChangeKind::Renamed,
                    path: to.as_str().to_owned(),
                    from: Some(from.as_str().to_owned()),
                    is_dir,
                }),
                (true, false) => pending.add(ChangeKind::Deleted, from.as_str().to_owned(), is_dir),
                (false, true) => pending.add(ChangeKind::Created, to.as_str().to_owned(), is_dir),
                (false, false) => {}
            }
            if is_dir && keep_to {
                self.adopt_dir(to.clone(), &mut Pending::default()).await;
            }
            return;
        }
        for path in paths {
            let absolute = self.project.root().join(path.as_path());
            let is_dir = is_dir_hint || absolute.is_dir();
            match self.rules.verdict(&path, is_dir) {
                Verdict::Ignore => continue,
                Verdict::Repository => {
                    if is_dir && matches!(event.kind, EventKind::Create(_)) {
                        // A new .git (git init) or refs folder: watch what
                        // in it matters (HEAD, index, refs).
                        let rules = IgnoreRules::new(&self.project.settings().always_ignored);
                        let _ = self.walk_and_watch(path.clone(), rules).await;
                    }
                    pending.repository.insert(path.as_str().to_owned());
                    continue;
                }
                Verdict::Keep => {}
            }
            if path.name() == ".gitignore" {
                self.rules.load(self.project.root(), &path.parent());
            }
            match event.kind {
                EventKind::Create(_) => {
                    pending.add(ChangeKind::Created, path.as_str().to_owned(), is_dir);
                    if is_dir {
                        self.adopt_dir(path.clone(), pending).await;
                    }
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                    match event.attrs.tracker() {
                        Some(tracker) => {
                            pending
                                .rename_from
                                .insert(tracker, (path.as_str().to_owned(), is_dir));
                        }
                        None => pending.add(ChangeKind::Deleted, path.as_str().to_owned(), is_dir),
                    }
                }
                EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
                    let paired = event
                        .attrs
                        .tracker()
                        .is_some_and(|t| pending.rename_from.contains_key(&t));
                    // A paired To is reported by the Both event that follows.
                    if !paired {
                        pending.add(ChangeKind::Created, path.as_str().to_owned(), is_dir);
                        if is_dir {
                            self.adopt_dir(path.clone(), pending).await;
                        }
                    }
                }
                EventKind::Modify(ModifyKind::Name(_)) => {}
                EventKind::Modify(_) => {
                    if !is_dir {
                        pending.add(ChangeKind::Modified, path.as_str().to_owned(), false);
                    }
                }
                EventKind::Remove(_) => {
                    pending.add(ChangeKind::Deleted, path.as_str().to_owned(), is_dir);
                    let absolute = self.project.root().join(path.as_path());
                    self.watched.remove(&absolute);
                }
                EventKind::Access(_) | EventKind::Any | EventKind::Other => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{config::FilesSettings, feed::Cursor};

    #[tokio::test]
    async fn kernel_overflow_and_full_channel_mean_rescan_needed() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("a.txt"), "a")?;
        let root = std::fs::canonicalize(dir.path())?;
        let project = OpenProject::open("p", &root, &FilesSettings::default(), 1)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let mut coalescer = Coalescer {
            project: project.clone(),
            watcher: None,
            watched: HashSet::new(),
            rules: IgnoreRules::new(&[]),
            overflowed: Arc::new(AtomicBool::new(false)),
            settle: Duration::from_millis(10),
        };
        let feed = project.changes().clone();
        let mut subscription = feed.subscribe(Cursor::default(), Vec::new());
        // What inotify's IN_Q_OVERFLOW becomes in notify.
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        coalescer
            .absorb(Ok(overflow), &mut Pending::default())
            .await;
        let mut saw = false;
        while let Some(delivery) =
            tokio::time::timeout(Duration::from_secs(30), subscription.next())
                .await
                .ok()
                .flatten()
        {
            if let crate::feed::Delivery::Event(record) = delivery
                && matches!(record.payload, ChangeItem::RescanNeeded(_))
            {
                saw = true;
                break;
            }
        }
        assert!(saw, "no rescan-needed item after an overflow");
        // The index was rebuilt by the rescan.
        assert_eq!(project.index().len(), 1);
        project.shut();
        Ok(())
    }

    #[test]
    fn coalescing_rules() {
        let mut pending = Pending::default();
        pending.add(ChangeKind::Created, "a".into(), false);
        pending.add(ChangeKind::Modified, "a".into(), false);
        pending.add(ChangeKind::Created, "b".into(), false);
        pending.add(ChangeKind::Deleted, "b".into(), false);
        pending.add(ChangeKind::Modified, "c".into(), false);
        pending.add(ChangeKind::Deleted, "c".into(), false);
        pending.add(ChangeKind::Deleted, "d".into(), false);
        pending.add(ChangeKind::Created, "d".into(), false);
        pending.rename_from.insert(7, ("gone".into(), false));
        let (batch, _) = pending.take();
        let summary: Vec<(ChangeKind, &str)> =
            batch.iter().map(|c| (c.kind, c.path.as_str())).collect();
        assert_eq!(
            summary,
            vec![
                (ChangeKind::Created, "a"),
                (ChangeKind::Deleted, "c"),
                (ChangeKind::Modified, "d"),
                (ChangeKind::Deleted, "gone"),
            ]
        );
        assert!(pending.is_empty());
    }
}
