//! ApplyBatch: several file operations that succeed together or are undone
//! together. Every step is validated before anything changes; then steps
//! run in order, and whatever a step replaces or removes is first moved
//! into a staging folder inside the project (same file system, so moves are
//! cheap and atomic). If a step fails, the steps already applied are undone
//! in reverse order from the staging folder. On success, staged items are
//! deleted, or put in the OS trash for deletes that asked for it (moved back
//! first, so the trash records their real place). Each change is journaled
//! before it is made (`batch_journal.rs`), so a batch a crash interrupts is
//! rolled back when the project is opened again.

use std::{collections::HashSet, sync::Arc};

use cap_std::fs::Dir;

use crate::reason::Reason;
use crate::{
    error::{Error, Result},
    files::{
        OpenProject,
        batch_journal::{Entry, Journal},
        ops::{self, OverwritePolicy, WriteOptions},
        sandbox::{self, RelPath, io_error, version_of},
    },
};

/// One step, as requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    /// Write a file.
    Write {
        /// Path.
        path: String,
        /// Contents.
        content: Vec<u8>,
        /// Optimistic version check.
        expected_version: Option<String>,
        /// Fail if it exists.
        create_only: bool,
    },
    /// Create a folder with parents.
    CreateDirectory {
        /// Path.
        path: String,
    },
    /// Move.
    Move {
        /// Source.
        from: String,
        /// Target.
        to: String,
        /// Replace an existing target.
        overwrite: bool,
    },
    /// Copy recursively.
    Copy {
        /// Source.
        from: String,
        /// Target.
        to: String,
        /// What to do with existing targets.
        policy: OverwritePolicy,
    },
    /// Delete.
    Delete {
        /// Path.
        path: String,
        /// Skip the trash.
        permanent: bool,
    },
}

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Applied and kept.
    Applied,
    /// This step failed.
    Failed,
    /// Applied, then undone because a later step failed.
    Undone,
    /// Not run because an earlier step failed.
    NotRun,
    /// Applied, and undoing it failed: the project is partly changed.
    UndoFailed,
}

/// A step's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    /// Outcome.
    pub status: StepStatus,
    /// Error message for Failed and UndoFailed.
    pub error: Option<String>,
}

/// How to undo an applied step.
#[derive(Debug)]
enum Undo {
    /// Remove what the step created.
    Remove(RelPath),
    /// Remove folders the step created, deepest first.
    RemoveDirs(Vec<RelPath>),
    /// Move `to` back to `from`.
    MoveBack { from: RelPath, to: RelPath },
    /// Put a staged item back at its place (after removing what replaced
    /// it, if anything).
    Restore {
        staged: RelPath,
        original: RelPath,
        remove_first: bool,
    },
}

/// A staged item to finish on success.
#[derive(Debug)]
struct Staged {
    staged: RelPath,
    original: RelPath,
    to_trash: bool,
}

struct Runner<'a> {
    project: &'a OpenProject,
    staging: RelPath,
    counter: usize,
    staged: Vec<Staged>,
    /// How to reverse what is about to change, on disk (none in tests
    /// without a data folder).
    journal: Option<Journal>,
}

impl Runner<'_> {
    fn dir(&self) -> &Dir {
        self.project.dir()
    }

    /// Journal `entry` before the change it describes.
    fn record(&mut self, entry: Entry) -> Result<()> {
        match &mut self.journal {
            Some(journal) => journal.record(&entry),
            None => Ok(()),
        }
    }

    /// Journal the creation of `path` and of its missing `parents`
    /// (deepest first, as `missing_parents` lists them).
    fn record_created(&mut self, path: Option<&RelPath>, parents: &[RelPath]) -> Result<()> {
        for folder in parents.iter().rev() {
            self.record(Entry::Folder {
                path: folder.as_str().to_owned(),
            })?;
        }
        if let Some(path) = path {
            self.record(Entry::Created {
                path: path.as_str().to_owned(),
            })?;
        }
        Ok(())
    }

    /// Move `path` into the staging folder; returns its staged name.
    /// `trash`: on success it goes to the trash rather than away.
    fn stage(&mut self, path: &RelPath, trash: bool) -> Result<RelPath> {
        if self.counter == 0 {
            self.dir()
                .create_dir(self.staging.as_path())
                .map_err(|e| io_error(&self.staging, "create staging folder", e))?;
        }
        self.counter += 1;
        let staged = self.staging.join(&self.counter.to_string());
        self.record(Entry::Staged {
            staged: staged.as_str().to_owned(),
            original: path.as_str().to_owned(),
            trash,
        })?;
        self.dir()
            .rename(path.as_path(), self.dir(), staged.as_path())
            .map_err(|e| io_error(path, "set aside", e))?;
        Ok(staged)
    }

    fn exists(&self, path: &RelPath) -> bool {
        self.dir().symlink_metadata(path.as_path()).is_ok()
    }

    fn apply(&mut self, op: &Checked) -> Result<Vec<Undo>> {
        // Again here: an earlier step may have copied in a symlink that
        // leads into a `.git`.
        let changed: Vec<&RelPath> = match op {
            Checked::Write { path, .. }
            | Checked::CreateDirectory { path }
            | Checked::Delete { path, .. } => vec![path],
            Checked::Move { from, to, .. } => vec![from, to],
            Checked::Copy { to, .. } => vec![to],
        };
        for path in changed {
            sandbox::refuse_git_folder_through_links(self.dir(), "path", path)?;
        }
        match op {
            Checked::Write {
                path,
                content,
                options,
            } => {
                let mut undo = Vec::new();
                let created_dirs = self.missing_parents(path);
                if self.exists(path) {
                    // Check the version before setting the original aside.
                    if let Some(expected) = &options.expected_version {
                        let meta = self
                            .dir()
                            .symlink_metadata(path.as_path())
                            .map_err(|e| io_error(path, "stat", e))?;
                        if &version_of(&meta) != expected {
                            return Err(Error::new(
                                crate::error::ErrorKind::Aborted,
                                format!("{path} changed since version {expected}"),
                            )
                            .with_reason(Reason::VersionConflict));
                        }
                    }
                    if options.create_only {
                        return Err(Error::new(
                            crate::error::ErrorKind::AlreadyExists,
                            format!("{path} already exists (create_only)"),
                        ));
                    }
                    let staged = self.stage(path, false)?;
                    self.staged.push(Staged {
                        staged: staged.clone(),
                        original: path.clone(),
                        to_trash: false,
                    });
                    undo.push(Undo::Restore {
                        staged,
                        original: path.clone(),
                        remove_first: true,
                    });
                } else {
                    if let Some(expected) = &options.expected_version {
                        return Err(Error::new(
                            crate::error::ErrorKind::Aborted,
                            format!("{path} was deleted since version {expected}"),
                        )
                        .with_reason(Reason::VersionConflict));
                    }
                    self.record_created(Some(path), &created_dirs)?;
                    undo.push(Undo::Remove(path.clone()));
                }
                if !created_dirs.is_empty() {
                    // Undone last (undo runs backwards): the folders were
                    // made before the file, and only empty ones go.
                    undo.insert(0, Undo::RemoveDirs(created_dirs));
                }
                let options = WriteOptions {
                    expected_version: None,
                    create_only: false,
                    create_parents: true,
                };
                match ops::write_blocking(self.dir(), path, content, &options) {
                    Ok(_) => Ok(undo),
                    Err(err) => {
                        // Undo this step's own staging before reporting.
                        self.undo_all(undo);
                        Err(err)
                    }
                }
            }
            Checked::CreateDirectory { path } => {
                let mut created = self.missing_parents(path);
                if !self.exists(path) {
                    created.insert(0, path.clone());
                }
                self.record_created(None, &created)?;
                self.dir()
                    .create_dir_all(path.as_path())
                    .map_err(|e| io_error(path, "create folder", e))?;
                Ok(vec![Undo::RemoveDirs(created)])
            }
            Checked::Move {
                from,
                to,
                overwrite,
            } => {
                let mut undo = Vec::new();
                if self.exists(to) {
                    if !overwrite {
                        return Err(Error::new(
                            crate::error::ErrorKind::AlreadyExists,
                            format!("{to} already exists; pass overwrite to replace it"),
                        ));
                    }
                    let staged = self.stage(to, false)?;
                    self.staged.push(Staged {
                        staged: staged.clone(),
                        original: to.clone(),
                        to_trash: false,
                    });
                    undo.push(Undo::Restore {
                        staged,
                        original: to.clone(),
                        remove_first: false,
                    });
                }
                self.record(Entry::Moved {
                    from: from.as_str().to_owned(),
                    to: to.as_str().to_owned(),
                })?;
                ops::move_blocking(self.dir(), from, to, false)?;
                // Undone first (undo runs backwards): the moved file goes
                // back before the replaced target is put in its place.
                undo.push(Undo::MoveBack {
                    from: from.clone(),
                    to: to.clone(),
                });
                Ok(undo)
            }
            Checked::Copy { from, to, policy } => {
                let mut undo = Vec::new();
                if self.exists(to) {
                    match policy {
                        OverwritePolicy::Fail => {
                            return Err(Error::new(
                                crate::error::ErrorKind::AlreadyExists,
                                format!("{to} already exists; choose overwrite REPLACE or SKIP"),
                            ));
                        }
                        OverwritePolicy::Replace | OverwritePolicy::Skip => {
                            // Set the old target aside whole and copy into a
                            // fresh place; undo puts the old one back.
                            let staged = self.stage(to, false)?;
                            self.staged.push(Staged {
                                staged: staged.clone(),
                                original: to.clone(),
                                to_trash: false,
                            });
                            self.record_created(Some(to), &[])?;
                            if *policy == OverwritePolicy::Skip {
                                // Skip keeps existing files: start from them.
                                ops::copy_blocking(self.dir(), &staged, to, OverwritePolicy::Fail)?;
                            }
                            undo.push(Undo::Restore {
                                staged,
                                original: to.clone(),
                                remove_first: true,
                            });
                        }
                    }
                } else {
                    self.record_created(Some(to), &[])?;
                    undo.push(Undo::Remove(to.clone()));
                }
                ops::copy_blocking(self.dir(), from, to, *policy)?;
                Ok(undo)
            }
            Checked::Delete { path, permanent } => {
                let staged = self.stage(path, !permanent)?;
                self.staged.push(Staged {
                    staged: staged.clone(),
                    original: path.clone(),
                    to_trash: !permanent,
                });
                Ok(vec![Undo::Restore {
                    staged,
                    original: path.clone(),
                    remove_first: false,
                }])
            }
        }
    }

    /// Parent folders of `path` that do not exist yet, deepest first.
    fn missing_parents(&self, path: &RelPath) -> Vec<RelPath> {
        let mut missing = Vec::new();
        let mut current = path.parent();
        while !current.is_root() && !self.exists(&current) {
            missing.push(current.clone());
            current = current.parent();
        }
        missing
    }

    fn undo_one(&mut self, undo: Undo) -> Result<()> {
        match undo {
            Undo::Remove(path) => {
                if self.exists(&path) {
                    ops::delete_permanently(self.dir(), &path, true)?;
                }
                Ok(())
            }
            Undo::RemoveDirs(dirs) => {
                for dir in dirs {
                    let _ = self.dir().remove_dir(dir.as_path());
                }
                Ok(())
            }
            Undo::MoveBack { from, to } => ops::move_blocking(self.dir(), &to, &from, false),
            Undo::Restore {
                staged,
                original,
                remove_first,
            } => {
                if remove_first && self.exists(&original) {
                    ops::delete_permanently(self.dir(), &original, true)?;
                }
                self.staged.retain(|s| s.staged != staged);
                self.dir()
                    .rename(staged.as_path(), self.dir(), original.as_path())
                    .map_err(|e| io_error(&original, "put back", e))
            }
        }
    }

    fn undo_all(&mut self, undo: Vec<Undo>) -> Option<String> {
        let mut failure = None;
        for step in undo.into_iter().rev() {
            if let Err(err) = self.undo_one(step) {
                failure.get_or_insert_with(|| err.to_string());
            }
        }
        failure
    }

    /// Finish staged items after success; returns failures (trash errors).
    fn commit(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        for item in std::mem::take(&mut self.staged) {
            let result = if item.to_trash {
                self.dir()
                    .rename(item.staged.as_path(), self.dir(), item.original.as_path())
                    .map_err(|e| io_error(&item.original, "put back for the trash", e))
                    .and_then(|()| ops::delete_to_trash(self.project, &item.original))
            } else {
                ops::delete_permanently(self.dir(), &item.staged, true)
            };
            if let Err(err) = result {
                failures.push(err.to_string());
            }
        }
        if self.counter > 0 {
            let _ = crate::files::tree::remove(self.dir(), &self.staging);
        }
        failures
    }
}

/// A validated step.
#[derive(Debug)]
enum Checked {
    Write {
        path: RelPath,
        content: Vec<u8>,
        options: WriteOptions,
    },
    CreateDirectory {
        path: RelPath,
    },
    Move {
        from: RelPath,
        to: RelPath,
        overwrite: bool,
    },
    Copy {
        from: RelPath,
        to: RelPath,
        policy: OverwritePolicy,
    },
    Delete {
        path: RelPath,
        permanent: bool,
    },
}

/// The batch's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchResult {
    /// Whether every step was applied and kept.
    pub success: bool,
    /// One result per step, in order.
    pub steps: Vec<StepResult>,
}

/// Validate a batch as [`apply`] does first, without applying it: the
/// paths each step would change (sources of copies are only read).
/// Public (hidden) for the fuzz targets (`fuzz/targets`), which hold it to
/// the sandbox's rules.
#[doc(hidden)]
pub fn changed_paths(project: &OpenProject, ops: Vec<BatchOp>) -> Result<Vec<RelPath>> {
    Ok(validate(project, ops)?
        .into_iter()
        .flat_map(|step| match step {
            Checked::Write { path, .. }
            | Checked::CreateDirectory { path }
            | Checked::Delete { path, .. } => vec![path],
            Checked::Move { from, to, .. } => vec![from, to],
            Checked::Copy { to, .. } => vec![to],
        })
        .collect())
}

fn validate(project: &OpenProject, ops: Vec<BatchOp>) -> Result<Vec<Checked>> {
    if ops.is_empty() {
        return Err(Error::invalid_argument("operations", "the batch is empty"));
    }
    // Paths the batch itself creates before a later step uses them.
    let mut created: HashSet<RelPath> = HashSet::new();
    let mut checked = Vec::with_capacity(ops.len());
    let source_exists = |path: &RelPath, created: &HashSet<RelPath>, field: &str| -> Result<()> {
        if created.iter().any(|c| path.starts_with(c))
            || project.dir().symlink_metadata(path.as_path()).is_ok()
        {
            Ok(())
        } else {
            Err(Error::not_found(format!("{field}: {path} does not exist")))
        }
    };
    // A path the step changes: never inside a `.git`, also through links
    // (validation runs under the project's write lock).
    let writable = |field: &str, raw: &str| -> Result<RelPath> {
        let path = project.check_writable(field, raw)?;
        sandbox::refuse_git_folder_through_links(project.dir(), field, &path)?;
        Ok(path)
    };
    for (index, op) in ops.into_iter().enumerate() {
        let field = |name: &str| format!("operations[{index}].{name}");
        let step = match op {
            BatchOp::Write {
                path,
                content,
                expected_version,
                create_only,
            } => {
                let path = writable(&field("path"), &path)?;
                if path.is_root() {
                    return Err(Error::invalid_argument(
                        field("path"),
                        "name a file, not the project root",
                    ));
                }
                created.insert(path.clone());
                Checked::Write {
                    path,
                    content,
                    options: WriteOptions {
                        create_parents: true,
                        create_only,
                        expected_version: expected_version.filter(|v| !v.is_empty()),
                    },
                }
            }
            BatchOp::CreateDirectory { path } => {
                let path = writable(&field("path"), &path)?;
                created.insert(path.clone());
                Checked::CreateDirectory { path }
            }
            BatchOp::Move {
                from,
                to,
                overwrite,
            } => {
                let from = writable(&field("from"), &from)?;
                let to = writable(&field("to"), &to)?;
                source_exists(&from, &created, &field("from"))?;
                if from.is_root() || to.starts_with(&from) {
                    return Err(Error::invalid_argument(
                        field("to"),
                        format!("cannot move {from} to {to}"),
                    ));
                }
                created.insert(to.clone());
                Checked::Move {
                    from,
                    to,
                    overwrite,
                }
            }
            BatchOp::Copy { from, to, policy } => {
                let from = project.check(&field("from"), &from)?;
                let to = writable(&field("to"), &to)?;
                source_exists(&from, &created, &field("from"))?;
                if to.starts_with(&from) {
                    return Err(Error::invalid_argument(
                        field("to"),
                        format!("cannot copy {from} into itself"),
                    ));
                }
                created.insert(to.clone());
                Checked::Copy { from, to, policy }
            }
            BatchOp::Delete { path, permanent } => {
                let path = writable(&field("path"), &path)?;
                if path.is_root() {
                    return Err(Error::invalid_argument(
                        field("path"),
                        "the project root cannot be deleted",
                    ));
                }
                source_exists(&path, &created, &field("path"))?;
                Checked::Delete { path, permanent }
            }
        };
        checked.push(step);
    }
    Ok(checked)
}

fn staging_name() -> Result<RelPath> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|err| Error::internal(format!("no randomness: {err}")))?;
    let random: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(RelPath::root().join(&format!(".omnipanel-batch-{random}")))
}

/// Validate and apply a batch under the project's write lock.
pub async fn apply(project: &Arc<OpenProject>, ops: Vec<BatchOp>) -> Result<BatchResult> {
    let _guard = project.lock_writes().await;
    let project = project.clone();
    tokio::task::spawn_blocking(move || {
        let steps = validate(&project, ops)?;
        let staging = staging_name()?;
        let journal = match project.batch_journals() {
            Some(folder) => Some(Journal::create(folder, &project, &staging)?),
            None => None,
        };
        let mut runner = Runner {
            project: &project,
            staging,
            counter: 0,
            staged: Vec::new(),
            journal,
        };
        let mut results: Vec<StepResult> = steps
            .iter()
            .map(|_| StepResult {
                status: StepStatus::NotRun,
                error: None,
            })
            .collect();
        let mut applied: Vec<(usize, Vec<Undo>)> = Vec::new();
        let mut failed = false;
        for (index, step) in steps.iter().enumerate() {
            match runner.apply(step) {
                Ok(undo) => {
                    results[index].status = StepStatus::Applied;
                    applied.push((index, undo));
                }
                Err(err) => {
                    results[index] = StepResult {
                        status: StepStatus::Failed,
                        error: Some(err.to_string()),
                    };
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            for (index, undo) in applied.into_iter().rev() {
                results[index] = match runner.undo_all(undo) {
                    None => StepResult {
                        status: StepStatus::Undone,
                        error: None,
                    },
                    Some(err) => StepResult {
                        status: StepStatus::UndoFailed,
                        error: Some(err),
                    },
                };
            }
            if runner.counter > 0 && runner.staged.is_empty() {
                let _ = crate::files::tree::remove(project.dir(), &runner.staging);
            }
            if let Some(journal) = runner.journal.take() {
                journal.remove();
            }
            return Ok(BatchResult {
                success: false,
                steps: results,
            });
        }
        // From here on a crash finishes the batch rather than undoing it.
        runner.record(Entry::Committed)?;
        let failures = runner.commit();
        if let Some(journal) = runner.journal.take() {
            journal.remove();
        }
        if let Some(first) = failures.first() {
            tracing::warn!(error = %first, "a batch finished but some staged items could not be cleaned up");
        }
        Ok(BatchResult {
            success: true,
            steps: results,
        })
    })
    .await?
}
