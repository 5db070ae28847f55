//! Projects: the folders a user works in. A registry in state.db (most
//! recently used first, surviving restarts) and, for each open project, a
//! live handle (the sandboxed root, its file watcher and file index) that
//! the file operations run through. Workspace state is an opaque blob per
//! (project, client key) with a version, so two editors never silently
//! overwrite each other's state. Forgetting a project never touches files.

mod boundaries;
mod events;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use rusqlite::OptionalExtension;

use crate::reason::Reason;
use crate::{
    config::FilesSettings,
    error::{Error, ErrorKind, Result},
    events::Publisher,
    files::{
        OpenProject, sandbox,
        watch::{WatchPhase, WatchStatus, limit::WatchBudget},
    },
    store::{Store, now_ms},
    tokens::Caller,
};
pub use boundaries::ProjectBoundaries;
pub use events::ProjectEvent;

/// A stored project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    /// Stable identifier.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Canonical absolute root.
    pub path: PathBuf,
    /// Whether it is open (its files can be used).
    pub open: bool,
    /// Creation time of the record, ms since the epoch.
    pub created_ms: i64,
    /// Last time it was opened, ms since the epoch.
    pub last_opened_ms: i64,
    /// The model it prefers ("" for the default model).
    pub preferred_model: String,
    /// The provider of that model ("" to resolve it from the name).
    pub preferred_provider: String,
}

/// A repository's headline state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSummary {
    /// Current branch; `None` when HEAD is detached or unborn.
    pub branch: Option<String>,
    /// HEAD is detached.
    pub detached: bool,
    /// There are uncommitted changes (untracked files count).
    pub dirty: bool,
}

/// A project as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectView {
    /// The record.
    pub record: ProjectRecord,
    /// Whether the folder still exists.
    pub exists: bool,
    /// Git state when the folder is a repository.
    pub git: Option<GitSummary>,
    /// How its files are followed, while it is open.
    pub watch: Option<ProjectWatch>,
}

/// How an open project's files are followed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectWatch {
    /// The watcher's state.
    pub status: WatchStatus,
    /// Files in the fuzzy-find index.
    pub indexed_files: u64,
}

/// Workspace state of one client for one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceState {
    /// The client's blob.
    pub data: Vec<u8>,
    /// Version, increased on every save.
    pub version: u64,
    /// Last save, ms since the epoch.
    pub updated_ms: i64,
}

/// A file to create with a new project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFile {
    /// Path inside the project.
    pub path: String,
    /// Contents.
    pub content: Vec<u8>,
}

/// Told when projects open and close (the git module follows their
/// repositories this way).
pub trait ProjectObserver: Send + Sync + std::fmt::Debug {
    /// A project's files are now in use.
    fn opened(&self, project: &Arc<OpenProject>);
    /// A project was closed or forgotten.
    fn closed(&self, project_id: &str);
    /// Whether an open project's repository has uncommitted or untracked
    /// changes, when this observer can tell without walking the whole
    /// work tree (the Git service answers from its warm status); `None`
    /// leaves it to a full status. Blocking.
    fn dirty(&self, _project: &Arc<OpenProject>) -> Option<bool> {
        None
    }
}

/// Most bytes of workspace state per client.
pub const MAX_WORKSPACE_STATE: usize = 4 * 1024 * 1024;

/// The project registry and the open projects.
#[derive(Debug)]
pub struct Projects {
    store: Store,
    bus: Publisher<ProjectEvent>,
    settings: FilesSettings,
    /// Where projects may be.
    boundaries: ProjectBoundaries,
    /// The watches every open project draws from (`files.max_watches`).
    budget: Arc<WatchBudget>,
    instance_id: u64,
    open: Mutex<HashMap<String, Arc<OpenProject>>>,
    observers: Vec<Arc<dyn ProjectObserver>>,
}

pub(crate) fn random_id() -> Result<String> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes)
        .map_err(|err| Error::internal(format!("no randomness from the OS: {err}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn row_to_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<ProjectRecord> {
    Ok(ProjectRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        path: PathBuf::from(row.get::<_, String>(2)?),
        open: row.get::<_, i64>(3)? != 0,
        created_ms: row.get(4)?,
        last_opened_ms: row.get(5)?,
        preferred_model: row.get(6)?,
        preferred_provider: row.get(7)?,
    })
}

const COLUMNS: &str =
    "id, name, path, open, created_ms, last_opened_ms, preferred_model, preferred_provider";

/// Git state of `path`, if it is the root of a repository the agent uses
/// (see `git::open`: never one above it or reaching outside it), with
/// `dirty` when already known, else from a full status. Blocking.
pub fn git_summary(path: &Path, dirty: Option<bool>) -> Option<GitSummary> {
    let repo = crate::git::open_project_repository(path).ok()?;
    let detached = repo.head_detached().unwrap_or(false);
    let branch = match repo.head() {
        Ok(head) if head.is_branch() => head.shorthand().ok().map(str::to_owned),
        Ok(_) => None,
        // An unborn branch (new repository): HEAD names it symbolically.
        Err(_) => repo.find_reference("HEAD").ok().and_then(|r| {
            r.symbolic_target()
                .ok()
                .flatten()
                .map(|t| t.trim_start_matches("refs/heads/").to_owned())
        }),
    };
    let dirty = dirty.unwrap_or_else(|| {
        let mut options = git2::StatusOptions::new();
        options.include_untracked(true).exclude_submodules(true);
        repo.statuses(Some(&mut options))
            .map(|s| !s.is_empty())
            .unwrap_or(false)
    });
    Some(GitSummary {
        branch,
        detached,
        dirty,
    })
}

impl Projects {
    /// Load the registry and reopen the projects that were open.
    pub async fn start(
        store: Store,
        bus: Publisher<ProjectEvent>,
        settings: FilesSettings,
        boundaries: ProjectBoundaries,
        observers: Vec<Arc<dyn ProjectObserver>>,
    ) -> Result<Arc<Self>> {
        let projects = Arc::new(Self {
            instance_id: bus.instance_id(),
            store,
            bus,
            budget: Arc::new(WatchBudget::new(settings.max_watches)),
            settings,
            boundaries,
            open: Mutex::new(HashMap::new()),
            observers,
        });
        for record in projects.records().await? {
            // A project opened before the deny-list existed (or grew) stays
            // listed but is not reopened.
            if record.open
                && let Err(err) = projects
                    .boundaries
                    .check(&record.path, &Caller::Owner)
                    .and_then(|()| projects.activate(&record))
            {
                tracing::warn!(project = %record.path.display(), error = %err, "cannot reopen project");
            }
        }
        Ok(projects)
    }

    fn open_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<OpenProject>>> {
        crate::sync::lock(&self.open)
    }

    fn activate(&self, record: &ProjectRecord) -> Result<Arc<OpenProject>> {
        if let Some(handle) = self.open_map().get(&record.id) {
            return Ok(handle.clone());
        }
        // Beside state.db, in the agent's data folder (`batch_journal.rs`
        // says why not in the project).
        let journals = (self.store.path() != Path::new(":memory:"))
            .then(|| self.store.path().parent().map(|dir| dir.join("batches")))
            .flatten();
        let handle = OpenProject::open(
            &record.id,
            &record.path,
            &self.settings,
            self.instance_id,
            &self.budget,
            journals.as_deref(),
        )?;
        self.open_map().insert(record.id.clone(), handle.clone());
        for observer in &self.observers {
            observer.opened(&handle);
        }
        self.announce_watch_changes(&handle);
        Ok(handle)
    }

    /// Publish an event when a project stops being watched in full (a
    /// watch limit) and when it is again; the watcher's other changes
    /// (counts, indexing) are read with GetProject.
    fn announce_watch_changes(&self, project: &Arc<OpenProject>) {
        let mut status = project.subscribe_watch_status();
        let stop = project.stopped();
        let bus = self.bus.clone();
        let project_id = project.id().to_owned();
        let path = project.root().display().to_string();
        tokio::spawn(async move {
            let mut announced = WatchPhase::Live;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    changed = status.changed() => if changed.is_err() { return },
                }
                let now = status.borrow_and_update().clone();
                let phase = match now.phase {
                    WatchPhase::Indexing => continue,
                    phase => phase,
                };
                if phase != announced {
                    announced = phase;
                    bus.publish(ProjectEvent::ProjectWatchChanged {
                        project_id: project_id.clone(),
                        path: path.clone(),
                        status: now,
                    });
                }
            }
        });
    }

    async fn records(&self) -> Result<Vec<ProjectRecord>> {
        self.store
            .read(|c| {
                let mut statement = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM projects ORDER BY last_opened_ms DESC, name"
                ))?;
                let rows = statement
                    .query_map([], row_to_record)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
    }

    /// Find a project by id or (absolute) path.
    pub async fn find(&self, reference: &str) -> Result<ProjectRecord> {
        if reference.is_empty() {
            return Err(Error::invalid_argument(
                "project",
                "name the project by id or path",
            ));
        }
        let key = reference.to_owned();
        let found = self
            .store
            .read(move |c| {
                // On the store's blocking pool: resolving the path is disk I/O.
                let canonical = std::fs::canonicalize(&key)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| key.trim_end_matches('/').to_owned());
                Ok(c.query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM projects WHERE id = ?1 OR path = ?2 OR path = ?1"
                    ),
                    [&key, &canonical],
                    row_to_record,
                )
                .optional()?)
            })
            .await?;
        found.ok_or_else(|| {
            Error::not_found(format!(
                "no project {reference:?}; open it first with `omnipanel projects open PATH`"
            ))
            .with_reason(Reason::ProjectNotFound)
        })
    }

    /// The live handle of an open project, for file operations.
    pub async fn handle(&self, reference: &str) -> Result<Arc<OpenProject>> {
        let record = self.find(reference).await?;
        if !record.open {
            return Err(Error::failed_precondition(format!(
                "project {} ({}) is closed; open it again to use its files",
                record.name,
                record.path.display()
            ))
            .with_reason(Reason::ProjectClosed));
        }
        match self.open_map().get(&record.id) {
            Some(handle) => Ok(handle.clone()),
            None => self.activate(&record),
        }
    }

    async fn view(&self, record: ProjectRecord) -> Result<ProjectView> {
        let path = record.path.clone();
        // An open project's changes are known to the Git service's warm
        // status; a full status per listing cost every client that lists
        // projects (the CLI finding its project, the panel) a walk of each
        // work tree: 0.6 s at 100 000 files, 6 s at a million.
        let open = self.open_map().get(&record.id).cloned();
        let observers = self.observers.clone();
        let (exists, git) = tokio::task::spawn_blocking(move || {
            let exists = path.is_dir();
            let dirty = open
                .as_ref()
                .and_then(|project| observers.iter().find_map(|o| o.dirty(project)));
            (exists, exists.then(|| git_summary(&path, dirty)).flatten())
        })
        .await?;
        let watch = self.open_map().get(&record.id).map(|project| ProjectWatch {
            status: project.watch_status(),
            indexed_files: project.index().len() as u64,
        });
        Ok(ProjectView {
            record,
            exists,
            git,
            watch,
        })
    }

    fn publish(&self, record: &ProjectRecord, change: &str) {
        self.bus.publish(ProjectEvent::ProjectChanged {
            project_id: record.id.clone(),
            path: record.path.display().to_string(),
            change: change.to_owned(),
        });
    }

    /// Register (or re-open) an existing folder and open it, as the owner
    /// (the deny-list applies; the project roots do not).
    pub async fn open_project(&self, path: &str, name: &str) -> Result<ProjectView> {
        self.open_project_for(&Caller::Owner, path, name).await
    }

    /// Register (or re-open) an existing folder and open it for `caller`:
    /// the deny-list binds everyone, the project roots every caller but the
    /// owner.
    pub async fn open_project_for(
        &self,
        caller: &Caller,
        path: &str,
        name: &str,
    ) -> Result<ProjectView> {
        let root = sandbox::canonical_root(path)?;
        self.boundaries.check(&root, caller)?;
        let root_text = root.display().to_string();
        let default_name = root
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("project")
            .to_owned();
        let name = if name.trim().is_empty() {
            default_name
        } else {
            name.trim().to_owned()
        };
        let new_id = random_id()?;
        let now = now_ms();
        let record = self
            .store
            .write(move |tx| {
                let existing: Option<ProjectRecord> = tx
                    .query_row(
                        &format!("SELECT {COLUMNS} FROM projects WHERE path = ?1"),
                        [&root_text],
                        row_to_record,
                    )
                    .optional()?;
                match existing {
                    Some(mut record) => {
                        tx.execute(
                            "UPDATE projects SET open = 1, last_opened_ms = ?2 WHERE id = ?1",
                            (&record.id, now),
                        )?;
                        record.open = true;
                        record.last_opened_ms = now;
                        Ok(record)
                    }
                    None => {
                        tx.execute(
                            "INSERT INTO projects (id, name, path, open, created_ms, last_opened_ms) VALUES (?1, ?2, ?3, 1, ?4, ?4)",
                            (&new_id, &name, &root_text, now),
                        )?;
                        Ok(ProjectRecord {
                            id: new_id,
                            name,
                            path: PathBuf::from(root_text),
                            open: true,
                            created_ms: now,
                            last_opened_ms: now,
                            preferred_model: String::new(),
                            preferred_provider: String::new(),
                        })
                    }
                }
            })
            .await?;
        self.activate(&record)?;
        tracing::info!(project = %record.path.display(), id = %record.id, "project opened");
        self.publish(&record, "opened");
        self.view(record).await
    }

    /// Create a new folder (with optional files and `git init`) and open it,
    /// as the owner.
    pub async fn create(
        &self,
        path: &str,
        name: &str,
        git_init: bool,
        files: Vec<TemplateFile>,
    ) -> Result<ProjectView> {
        self.create_for(&Caller::Owner, path, name, git_init, files)
            .await
    }

    /// Create a new folder (with optional files and `git init`) and open it
    /// for `caller`. The boundaries are checked before anything is created.
    pub async fn create_for(
        &self,
        caller: &Caller,
        path: &str,
        name: &str,
        git_init: bool,
        files: Vec<TemplateFile>,
    ) -> Result<ProjectView> {
        if path.is_empty() || !Path::new(path).is_absolute() {
            return Err(Error::invalid_argument(
                "path",
                "an absolute path for the new folder is required",
            ));
        }
        let target = PathBuf::from(path);
        let prepared = target.clone();
        let boundaries = self.boundaries.clone();
        let creator = caller.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            boundaries.check(&boundaries::prospective_canonical(&prepared)?, &creator)?;
            match std::fs::read_dir(&prepared) {
                Ok(mut entries) => {
                    if entries.next().is_some() {
                        return Err(Error::new(
                            ErrorKind::AlreadyExists,
                            format!("{} already exists and is not empty; use OpenProject for an existing folder", prepared.display()),
                        ));
                    }
                    Ok(())
                }
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(&prepared)
                    .map_err(|err| Error::failed_precondition(format!("cannot create {}: {err}", prepared.display()))),
                Err(err) => Err(Error::failed_precondition(format!("cannot use {}: {err}", prepared.display()))),
            }
        })
        .await??;
        let view = self.open_project_for(caller, path, name).await?;
        let handle = self.handle(&view.record.id).await?;
        for (index, file) in files.into_iter().enumerate() {
            crate::files::ops::write_file(
                &handle,
                &format!("files[{index}].path"),
                &file.path,
                file.content,
                crate::files::ops::WriteOptions {
                    create_parents: true,
                    create_only: true,
                    expected_version: None,
                },
            )
            .await?;
        }
        if git_init {
            let root = view.record.path.clone();
            tokio::task::spawn_blocking(move || git2::Repository::init(&root).map(|_| ()))
                .await?
                .map_err(|err| Error::failed_precondition(format!("git init failed: {err}")))?;
        }
        self.publish(&view.record, "created");
        self.view(view.record).await
    }

    /// Set (or clear, with an empty `model`) the model a project prefers.
    /// The model is not checked against a provider (it may be pulled
    /// later); the provider, when named, is checked by the caller, which
    /// knows the providers. Publishes ProjectChanged "model".
    pub async fn set_preferred_model(
        &self,
        reference: &str,
        model: &str,
        provider: &str,
    ) -> Result<ProjectView> {
        let mut record = self.find(reference).await?;
        if model.is_empty() && !provider.is_empty() {
            return Err(Error::invalid_argument(
                "provider",
                "a provider needs a model; give the model too, or neither to clear the preference",
            ));
        }
        if model.chars().any(char::is_control) || model.len() > 512 {
            return Err(Error::invalid_argument(
                "model",
                "is not a model name (at most 512 characters, no control characters)",
            ));
        }
        let (id, new_model, new_provider) =
            (record.id.clone(), model.to_owned(), provider.to_owned());
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE projects SET preferred_model = ?2, preferred_provider = ?3 WHERE id = ?1",
                    (&id, &new_model, &new_provider),
                )?;
                Ok(())
            })
            .await?;
        record.preferred_model = model.to_owned();
        record.preferred_provider = provider.to_owned();
        tracing::info!(project = %record.path.display(), model, provider, "project model preference changed");
        self.publish(&record, "model");
        self.view(record).await
    }

    /// Close a project: its files can no longer be used until it is opened
    /// again; it stays in the list.
    pub async fn close(&self, reference: &str) -> Result<ProjectView> {
        let mut record = self.find(reference).await?;
        let id = record.id.clone();
        self.store
            .write(move |tx| {
                tx.execute("UPDATE projects SET open = 0 WHERE id = ?1", [&id])?;
                Ok(())
            })
            .await?;
        record.open = false;
        if let Some(handle) = self.open_map().remove(&record.id) {
            handle.shut();
        }
        for observer in &self.observers {
            observer.closed(&record.id);
        }
        self.publish(&record, "closed");
        self.view(record).await
    }

    /// Every project, most recently opened first.
    pub async fn list(&self) -> Result<Vec<ProjectView>> {
        self.list_for(&Caller::Owner).await
    }

    /// The projects `caller` may use, most recently opened first: all of
    /// them for the owner; for a client, those inside the project roots and
    /// its grant.
    pub async fn list_for(&self, caller: &Caller) -> Result<Vec<ProjectView>> {
        let mut out = Vec::new();
        for record in self.records().await? {
            if self.boundaries.check(&record.path, caller).is_ok() {
                out.push(self.view(record).await?);
            }
        }
        Ok(out)
    }

    /// Whether `caller` may use the project `reference` names: always for
    /// the owner (the deny-list was checked when it was opened); for a
    /// client, when the project is inside the project roots and its grant,
    /// whoever opened it.
    pub async fn authorize(&self, caller: &Caller, reference: &str) -> Result<()> {
        if caller.is_owner() {
            return Ok(());
        }
        let record = self.find(reference).await?;
        self.boundaries.check(&record.path, caller)
    }

    /// Whether `caller` may see what happens in the project with `id`
    /// (whose folder `path` is, when known: a forgotten project can no
    /// longer be looked up).
    pub async fn visible_to(&self, caller: &Caller, id: &str, path: Option<&Path>) -> bool {
        if caller.is_owner() {
            return true;
        }
        match path {
            Some(path) => self.boundaries.check(path, caller).is_ok(),
            None => self.authorize(caller, id).await.is_ok(),
        }
    }

    /// The root of the project `reference` names, when `caller` may use it.
    pub async fn root_for(&self, caller: &Caller, reference: &str) -> Result<PathBuf> {
        let record = self.find(reference).await?;
        if !caller.is_owner() {
            self.boundaries.check(&record.path, caller)?;
        }
        Ok(record.path)
    }

    /// One project.
    pub async fn get(&self, reference: &str) -> Result<ProjectView> {
        let record = self.find(reference).await?;
        self.view(record).await
    }

    /// Remove a project from the list (files are untouched).
    pub async fn forget(&self, reference: &str) -> Result<ProjectRecord> {
        let record = self.find(reference).await?;
        let id = record.id.clone();
        self.store
            .write(move |tx| {
                tx.execute("DELETE FROM workspace_state WHERE project_id = ?1", [&id])?;
                // Its chat conversations go with it (see `conversations`).
                tx.execute(
                    "DELETE FROM conversation_messages WHERE conversation_id IN (SELECT id FROM conversations WHERE project_id = ?1)",
                    [&id],
                )?;
                tx.execute("DELETE FROM conversations WHERE project_id = ?1", [&id])?;
                tx.execute("DELETE FROM projects WHERE id = ?1", [&id])?;
                Ok(())
            })
            .await?;
        if let Some(handle) = self.open_map().remove(&record.id) {
            handle.shut();
        }
        for observer in &self.observers {
            observer.closed(&record.id);
        }
        self.publish(&record, "forgotten");
        Ok(record)
    }

    fn check_client_key(client_key: &str) -> Result<()> {
        if client_key.is_empty()
            || client_key.len() > 200
            || client_key.chars().any(char::is_control)
        {
            return Err(Error::invalid_argument(
                "client_key",
                "1 to 200 printable characters, e.g. \"vscode\"",
            ));
        }
        Ok(())
    }

    /// A client's workspace state, if saved.
    pub async fn workspace_state(
        &self,
        reference: &str,
        client_key: &str,
    ) -> Result<Option<WorkspaceState>> {
        Self::check_client_key(client_key)?;
        let record = self.find(reference).await?;
        let key = client_key.to_owned();
        self.store
            .read(move |c| {
                Ok(c.query_row(
                    "SELECT data, version, updated_ms FROM workspace_state WHERE project_id = ?1 AND client_key = ?2",
                    (&record.id, &key),
                    |row| {
                        Ok(WorkspaceState {
                            data: row.get(0)?,
                            version: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                            updated_ms: row.get(2)?,
                        })
                    },
                )
                .optional()?)
            })
            .await
    }

    /// Save a client's workspace state. With `expected_version`, the save
    /// is refused (ABORTED) when someone saved in between; 0 means "no
    /// state saved yet".
    pub async fn save_workspace_state(
        &self,
        reference: &str,
        client_key: &str,
        data: Vec<u8>,
        expected_version: Option<u64>,
    ) -> Result<u64> {
        Self::check_client_key(client_key)?;
        if data.len() > MAX_WORKSPACE_STATE {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "workspace state is {} bytes; at most {MAX_WORKSPACE_STATE} are kept",
                    data.len()
                ),
            ));
        }
        let record = self.find(reference).await?;
        let key = client_key.to_owned();
        self.store
            .write(move |tx| {
                let current: i64 = tx
                    .query_row(
                        "SELECT version FROM workspace_state WHERE project_id = ?1 AND client_key = ?2",
                        (&record.id, &key),
                        |row| row.get(0),
                    )
                    .optional()?
                    .unwrap_or(0);
                let current = u64::try_from(current).unwrap_or(0);
                if let Some(expected) = expected_version
                    && expected != current
                {
                    return Err(Error::new(
                        ErrorKind::Aborted,
                        format!("workspace state of {key:?} is at version {current}, not {expected}: another save won; reload and retry"),
                    )
                    .with_reason(Reason::VersionConflict));
                }
                let next = current + 1;
                tx.execute(
                    "INSERT INTO workspace_state (project_id, client_key, data, version, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(project_id, client_key) DO UPDATE SET data = excluded.data, version = excluded.version, updated_ms = excluded.updated_ms",
                    (&record.id, &key, &data, i64::try_from(next).unwrap_or(i64::MAX), now_ms()),
                )?;
                Ok(next)
            })
            .await
    }

    /// Stop all watchers (agent shutdown); a second call finds none.
    pub async fn shutdown(&self) {
        for (_, handle) in self.open_map().drain() {
            handle.shut();
        }
    }
}

#[cfg(test)]
mod tests;
