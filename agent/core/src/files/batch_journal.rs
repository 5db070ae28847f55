//! The write-ahead journal that makes ApplyBatch all-or-nothing across a
//! crash. Undoing a failed batch in the process (`batch.rs`) needs no
//! journal; a `kill -9` or a power cut in the middle of a batch left some
//! files replaced, others set aside in the project's staging folder, and
//! nobody to put them back. So before each change a batch records how to
//! reverse it, one JSON line synced to disk, and the line `committed` once
//! every step is applied. When the project is opened again (the agent's
//! start re-opens its projects) an unfinished journal is rolled back, a
//! committed one finished, and the journal removed.
//!
//! Journals live in the agent's data folder (`batches/`), never inside the
//! project: a journal planted in a cloned repository must not be able to
//! make the agent move or delete the user's files. Every path in one is
//! still checked against the project and used through its sandboxed
//! handle. Each reversal is idempotent and checks the disk first (a step
//! journaled but never started changes nothing), so rolling back twice or
//! after a partial undo is safe.

use std::{
    io::{BufRead, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use crate::{
    error::{Error, Result},
    files::{
        OpenProject, ops,
        sandbox::{self, RelPath, io_error},
        tree,
    },
};

/// One line of a journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Entry {
    /// The batch's staging folder (the first line).
    Staging { path: String },
    /// A file or tree the batch is about to create: removed on rollback.
    Created { path: String },
    /// A folder the batch is about to create: removed on rollback when
    /// empty.
    Folder { path: String },
    /// `original` is about to be set aside as `staged`: put back on
    /// rollback (replacing whatever took its place); on finishing, deleted
    /// or, with `trash`, put in the trash.
    Staged {
        staged: String,
        original: String,
        trash: bool,
    },
    /// `from` is about to be moved to `to`: moved back on rollback.
    Moved { from: String, to: String },
    /// Every step was applied: finish, do not roll back.
    Committed,
}

/// An open journal of one running batch.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

/// The journal file name prefix of a project: its id, made safe as a file
/// name.
fn prefix(project_id: &str) -> String {
    let id: String = project_id
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{id}.")
}

impl Journal {
    /// Start the journal of a batch of `project` whose staging folder is
    /// `staging`, in `folder`.
    pub fn create(folder: &Path, project: &OpenProject, staging: &RelPath) -> Result<Self> {
        let fail = |what: &str, err: std::io::Error| {
            Error::internal(format!(
                "cannot {what} the batch journal in {}: {err}; check that the data folder is writable",
                folder.display()
            ))
        };
        create_private_dir(folder).map_err(|e| fail("create the folder of", e))?;
        let path = folder.join(format!(
            "{}{}.journal",
            prefix(project.id()),
            staging.name()
        ));
        let file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| fail("create", e))?;
        let mut journal = Self { path, file };
        journal.record(&Entry::Staging {
            path: staging.as_str().to_owned(),
        })?;
        // The new name must survive a power cut too.
        if let Ok(dir) = std::fs::File::open(folder) {
            let _ = dir.sync_all();
        }
        Ok(journal)
    }

    /// Record `entry` durably, before the change it describes.
    pub fn record(&mut self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_string(entry)
            .map_err(|e| Error::internal(format!("cannot encode a journal entry: {e}")))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| {
                Error::internal(format!(
                    "cannot write the batch journal {}: {e}; nothing more was changed",
                    self.path.display()
                ))
            })
    }

    /// The batch is over (applied and finished, or undone in the process):
    /// forget it.
    pub fn remove(self) {
        if let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!(journal = %self.path.display(), error = %err, "cannot remove a finished batch journal");
        }
    }
}

fn create_private_dir(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
}

/// Roll back or finish every batch of `project` that a crash interrupted;
/// returns how many were found. Blocking (a listing of the journal folder,
/// and only after a crash a few renames).
pub fn recover(folder: &Path, project: &OpenProject) -> usize {
    let Ok(listing) = std::fs::read_dir(folder) else {
        return 0;
    };
    let prefix = prefix(project.id());
    let mut found = 0;
    for entry in listing.filter_map(std::result::Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) || !name.ends_with(".journal") {
            continue;
        }
        found += 1;
        let path = entry.path();
        match recover_one(&path, project) {
            Ok(outcome) => {
                tracing::warn!(project = %project.root().display(), outcome, "a batch interrupted by a crash was {outcome}");
                if let Err(err) = std::fs::remove_file(&path) {
                    tracing::warn!(journal = %path.display(), error = %err, "cannot remove a recovered batch journal");
                }
            }
            Err(err) => {
                tracing::error!(project = %project.root().display(), journal = %path.display(), error = %err, "cannot recover a batch interrupted by a crash; the journal is kept for the next start");
            }
        }
    }
    found
}

fn read_entries(path: &Path) -> Result<Vec<Entry>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::internal(format!("cannot read {}: {e}", path.display())))?;
    let mut entries = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let Ok(line) = line else { break };
        // A line cut by the crash was never acted on: its change comes
        // after the sync that did not finish.
        match serde_json::from_str(&line) {
            Ok(entry) => entries.push(entry),
            Err(_) => break,
        }
    }
    Ok(entries)
}

fn recover_one(path: &Path, project: &OpenProject) -> Result<&'static str> {
    let entries = read_entries(path)?;
    let check = |raw: &str| sandbox::check(project.root(), "journal", raw);
    let dir = project.dir();
    let exists = |p: &RelPath| dir.symlink_metadata(p.as_path()).is_ok();
    let committed = entries.contains(&Entry::Committed);
    for entry in entries.iter().rev() {
        match entry {
            Entry::Staged {
                staged,
                original,
                trash,
            } => {
                let (staged, original) = (check(staged)?, check(original)?);
                if !exists(&staged) {
                    continue;
                }
                if committed {
                    if *trash && !exists(&original) {
                        dir.rename(staged.as_path(), dir, original.as_path())
                            .map_err(|e| io_error(&original, "put back for the trash", e))?;
                        ops::delete_to_trash(project, &original)?;
                    } else {
                        ops::delete_permanently(dir, &staged, true)?;
                    }
                } else {
                    if exists(&original) {
                        ops::delete_permanently(dir, &original, true)?;
                    }
                    dir.rename(staged.as_path(), dir, original.as_path())
                        .map_err(|e| io_error(&original, "put back", e))?;
                }
            }
            _ if committed => {}
            Entry::Created { path } => {
                let path = check(path)?;
                if exists(&path) {
                    ops::delete_permanently(dir, &path, true)?;
                }
            }
            Entry::Folder { path } => {
                let path = check(path)?;
                let _ = dir.remove_dir(path.as_path());
            }
            Entry::Moved { from, to } => {
                let (from, to) = (check(from)?, check(to)?);
                if exists(&to) && !exists(&from) {
                    dir.rename(to.as_path(), dir, from.as_path())
                        .map_err(|e| io_error(&from, "move back", e))?;
                }
            }
            Entry::Staging { .. } | Entry::Committed => {}
        }
    }
    for entry in &entries {
        if let Entry::Staging { path } = entry {
            let staging = check(path)?;
            if exists(&staging) {
                tree::remove(dir, &staging).map_err(|e| io_error(&staging, "remove", e))?;
            }
        }
    }
    Ok(if committed { "finished" } else { "rolled back" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::batch::{self, BatchOp};

    fn write_journal(folder: &Path, name: &str, entries: &[Entry]) {
        std::fs::create_dir_all(folder).unwrap();
        let text: String = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        std::fs::write(folder.join(format!("test.{name}.journal")), text).unwrap();
    }

    fn staged(staged: &str, original: &str) -> Entry {
        Entry::Staged {
            staged: staged.into(),
            original: original.into(),
            trash: false,
        }
    }

    /// What a kill -9 in the middle of a batch leaves: `a.txt` replaced
    /// (the old one set aside), `new/c.txt` created in a new folder,
    /// `b.txt` set aside for a delete, and a move journaled but not made.
    fn crashed_batch(root: &Path, journals: &Path, committed: bool) {
        let staging = root.join(".omnipanel-batch-0a0b0c");
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("1"), "old a").unwrap();
        std::fs::write(root.join("a.txt"), "new a").unwrap();
        std::fs::create_dir_all(root.join("new")).unwrap();
        std::fs::write(root.join("new/c.txt"), "c").unwrap();
        std::fs::write(staging.join("2"), "old b").unwrap();
        std::fs::write(root.join("d.txt"), "d").unwrap();
        let mut entries = vec![
            Entry::Staging {
                path: ".omnipanel-batch-0a0b0c".into(),
            },
            staged(".omnipanel-batch-0a0b0c/1", "a.txt"),
            Entry::Folder { path: "new".into() },
            Entry::Created {
                path: "new/c.txt".into(),
            },
            staged(".omnipanel-batch-0a0b0c/2", "b.txt"),
            Entry::Moved {
                from: "d.txt".into(),
                to: "e.txt".into(),
            },
        ];
        if committed {
            entries.push(Entry::Committed);
        }
        // The crash cut the last line short.
        write_journal(journals, "0a0b0c", &entries);
        let path = journals.join("test.0a0b0c.journal");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"op\":\"creat");
        std::fs::write(path, text).unwrap();
    }

    fn names(root: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn an_interrupted_batch_is_rolled_back_when_the_project_opens() {
        let root = tempfile::tempdir().unwrap();
        let journals = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("keep.txt"), "untouched").unwrap();
        crashed_batch(root.path(), journals.path(), false);
        let _project = OpenProject::journaled_for_test(root.path(), journals.path()).unwrap();
        assert_eq!(names(root.path()), ["a.txt", "b.txt", "d.txt", "keep.txt"]);
        let read = |name: &str| std::fs::read_to_string(root.path().join(name)).unwrap();
        assert_eq!(read("a.txt"), "old a");
        assert_eq!(read("b.txt"), "old b");
        assert_eq!(read("d.txt"), "d");
        assert_eq!(read("keep.txt"), "untouched");
        assert!(names(journals.path()).is_empty());
    }

    #[tokio::test]
    async fn a_committed_batch_is_finished_when_the_project_opens() {
        let root = tempfile::tempdir().unwrap();
        let journals = tempfile::tempdir().unwrap();
        crashed_batch(root.path(), journals.path(), true);
        let _project = OpenProject::journaled_for_test(root.path(), journals.path()).unwrap();
        assert_eq!(names(root.path()), ["a.txt", "d.txt", "new"]);
        assert_eq!(
            std::fs::read_to_string(root.path().join("a.txt")).unwrap(),
            "new a"
        );
        assert!(names(journals.path()).is_empty());
    }

    #[tokio::test]
    async fn another_projects_journal_and_one_inside_the_project_are_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let journals = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.txt"), "mine").unwrap();
        let entries = [
            Entry::Staging {
                path: ".omnipanel-batch-1".into(),
            },
            Entry::Created {
                path: "a.txt".into(),
            },
        ];
        // Another project's, and one planted in the project itself.
        std::fs::create_dir_all(journals.path()).unwrap();
        let text: String = entries
            .iter()
            .map(|e| serde_json::to_string(e).unwrap() + "\n")
            .collect();
        std::fs::write(journals.path().join("other.1.journal"), &text).unwrap();
        std::fs::write(root.path().join("test.1.journal"), &text).unwrap();
        let _project = OpenProject::journaled_for_test(root.path(), journals.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("a.txt")).unwrap(),
            "mine"
        );
        assert_eq!(names(journals.path()), ["other.1.journal"]);
    }

    #[tokio::test]
    async fn a_finished_batch_leaves_no_journal_and_a_failed_one_neither() {
        let root = tempfile::tempdir().unwrap();
        let journals = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("a.txt"), "old").unwrap();
        let project = OpenProject::journaled_for_test(root.path(), journals.path()).unwrap();
        let write = |path: &str, create_only| BatchOp::Write {
            path: path.into(),
            content: b"new".to_vec(),
            expected_version: None,
            create_only,
        };
        let done = batch::apply(
            &project,
            vec![write("a.txt", false), write("b/c.txt", false)],
        )
        .await
        .unwrap();
        assert!(done.success);
        assert!(names(journals.path()).is_empty());
        // Refused in validation or failed and undone: either way no journal.
        let failed =
            batch::apply(&project, vec![write("d.txt", false), write("a.txt", true)]).await;
        assert!(failed.map_or(true, |result| !result.success));
        assert!(names(journals.path()).is_empty());
        assert_eq!(names(root.path()), ["a.txt", "b"]);
    }
}
