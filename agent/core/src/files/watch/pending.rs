//! The changes of one batch while it settles, merged per path: a file
//! created then modified is "created", created then deleted is nothing,
//! deleted then created is "modified"; the two halves of a rename are
//! paired by their cookie, and a half whose partner never came is a
//! delete (moved out of the project).
//!
//! The batch keeps the order things happened in, and a client applies it
//! in that order, so a rename is one step among the others: a file saved
//! by writing a temporary file and renaming it over the original is
//! "`a.tmp` created, `a.tmp` renamed to `a`", never the reverse. A rename
//! also ends the merging of what came before for both of its paths: a
//! change to the old name after it is a new file there, a change to the
//! new name is a change to what was moved (`mv a backup; touch a` keeps
//! both steps). The fuzz target `watch_coalescing` checks that applying a
//! batch to a copy of the tree before it always gives the tree after it.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::files::{
    sandbox::RelPath,
    watch::{ChangeKind, FileChange},
};

/// Pending changes of one batch.
#[derive(Debug, Default)]
pub struct Pending {
    /// Changes in the order they happened; `None` where one was merged
    /// away or a rename's first half is still waiting for its partner.
    entries: Vec<Option<FileChange>>,
    /// For each path, the entry its next change merges into.
    latest: HashMap<String, usize>,
    /// `.git` paths that changed.
    pub repository: BTreeSet<String>,
    /// First halves of renames, by cookie.
    moved_from: HashMap<u64, MovedAway>,
    /// Entries "created" by a move into the project, which may have
    /// replaced a file that was there: deleting them again is a delete.
    replacing: HashSet<usize>,
}

/// The first half of a rename: the path that left, and the place in the
/// batch where it left.
#[derive(Debug)]
pub struct MovedAway {
    /// The old path.
    pub path: RelPath,
    /// Whether it is a folder.
    pub is_dir: bool,
    slot: usize,
}

impl Pending {
    /// Nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.iter().all(Option::is_none)
            && self.repository.is_empty()
            && self.moved_from.is_empty()
    }

    /// Merge one change into the batch.
    pub fn add(&mut self, kind: ChangeKind, path: String, is_dir: bool) {
        use ChangeKind::{Created, Deleted, Modified};
        let Some(&index) = self.latest.get(&path) else {
            self.push(kind, path, is_dir);
            return;
        };
        let Some(change) = self.entries.get_mut(index).and_then(Option::as_mut) else {
            self.latest.remove(&path);
            self.push(kind, path, is_dir);
            return;
        };
        let merged = match (change.kind, kind) {
            (Created, Modified) => Some(Created),
            (Created, Deleted) if self.replacing.contains(&index) => Some(Deleted),
            (Created, Deleted) => None,
            (Deleted, Created) => Some(Modified),
            (_, Deleted) => Some(Deleted),
            (existing, _) => Some(existing),
        };
        match merged {
            Some(kind) => {
                change.kind = kind;
                change.is_dir |= is_dir;
            }
            None => {
                self.entries[index] = None;
                self.latest.remove(&path);
            }
        }
    }

    /// `path` was moved in from outside the project (a rename whose first
    /// half was not reported): created, or replacing what was there.
    pub fn moved_in(&mut self, path: String, is_dir: bool) {
        if self.latest.contains_key(&path) {
            self.add(ChangeKind::Created, path, is_dir);
        } else {
            self.replacing.insert(self.entries.len());
            self.push(ChangeKind::Created, path, is_dir);
        }
    }

    fn push(&mut self, kind: ChangeKind, path: String, is_dir: bool) {
        self.latest.insert(path.clone(), self.entries.len());
        self.entries.push(Some(FileChange {
            kind,
            path,
            from: None,
            is_dir,
        }));
    }

    /// What comes after this for `path` or anything inside it is not
    /// merged into what came before.
    fn end_merging(&mut self, path: &RelPath) {
        self.latest.retain(|other, _| {
            !(other == path.as_str()
                || path.is_root()
                || (other.starts_with(path.as_str())
                    && other.as_bytes().get(path.as_str().len()) == Some(&b'/')))
        });
    }

    /// The first half of a rename (`path` left); the batch keeps its place
    /// until the second half comes or the batch ends.
    pub fn moved_from(&mut self, cookie: u64, path: RelPath, is_dir: bool) {
        self.end_merging(&path);
        let slot = self.entries.len();
        self.entries.push(None);
        let away = MovedAway { path, is_dir, slot };
        if let Some(earlier) = self.moved_from.insert(cookie, away) {
            // A cookie used twice: the earlier half will never be paired.
            self.moved_out(earlier);
        }
    }

    /// The first half of the rename with this cookie, when it came.
    pub fn take_moved_from(&mut self, cookie: u64) -> Option<MovedAway> {
        self.moved_from.remove(&cookie)
    }

    /// The paths of first halves still waiting for their partner.
    pub fn moved_away(&self) -> impl Iterator<Item = (&RelPath, bool)> {
        self.moved_from
            .values()
            .map(|away| (&away.path, away.is_dir))
    }

    /// Both halves came: `away` is now `to`, at the place where it left.
    pub fn renamed(&mut self, away: MovedAway, to: RelPath, is_dir: bool) {
        self.end_merging(&to);
        self.entries[away.slot] = Some(FileChange {
            kind: ChangeKind::Renamed,
            path: to.as_str().to_owned(),
            from: Some(away.path.as_str().to_owned()),
            is_dir,
        });
    }

    /// `away` left the project (or went where nothing is reported): it is
    /// deleted, at the place where it left.
    pub fn moved_out(&mut self, away: MovedAway) {
        self.entries[away.slot] = Some(FileChange {
            kind: ChangeKind::Deleted,
            path: away.path.as_str().to_owned(),
            from: None,
            is_dir: away.is_dir,
        });
    }

    /// The batch's changes in order and its `.git` paths; leaves it empty.
    pub fn take(&mut self) -> (Vec<FileChange>, Vec<String>) {
        let unpaired: Vec<MovedAway> = self.moved_from.drain().map(|(_, away)| away).collect();
        for away in unpaired {
            self.moved_out(away);
        }
        self.latest.clear();
        self.replacing.clear();
        let batch = std::mem::take(&mut self.entries)
            .into_iter()
            .flatten()
            .collect();
        (
            batch,
            std::mem::take(&mut self.repository).into_iter().collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(path: &str) -> RelPath {
        RelPath::from_inside(std::path::Path::new(path)).unwrap()
    }

    fn summary(batch: &[FileChange]) -> Vec<(ChangeKind, &str, Option<&str>)> {
        batch
            .iter()
            .map(|c| (c.kind, c.path.as_str(), c.from.as_deref()))
            .collect()
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
        pending.moved_from(7, rel("gone"), false);
        let (batch, _) = pending.take();
        assert_eq!(
            summary(&batch),
            vec![
                (ChangeKind::Created, "a", None),
                (ChangeKind::Deleted, "c", None),
                (ChangeKind::Modified, "d", None),
                (ChangeKind::Deleted, "gone", None),
            ]
        );
        assert!(pending.is_empty());
    }

    /// Found by the fuzz target `watch_coalescing`: renames were put first
    /// in the batch, so an editor's save (write `a.tmp`, rename it to `a`)
    /// read "`a.tmp` renamed to `a`, then `a.tmp` created": the index kept
    /// a file that was gone and missed the one saved.
    #[test]
    fn a_save_through_a_temporary_file_reads_in_order() {
        let mut pending = Pending::default();
        pending.add(ChangeKind::Created, "a.tmp".into(), false);
        pending.add(ChangeKind::Modified, "a.tmp".into(), false);
        pending.moved_from(1, rel("a.tmp"), false);
        let away = pending.take_moved_from(1).unwrap();
        pending.renamed(away, rel("a"), false);
        let (batch, _) = pending.take();
        assert_eq!(
            summary(&batch),
            vec![
                (ChangeKind::Created, "a.tmp", None),
                (ChangeKind::Renamed, "a", Some("a.tmp")),
            ]
        );
    }

    /// Found by the fuzz target `watch_coalescing`: a file moved out of
    /// the project (an editor's backup folder elsewhere) and written anew
    /// under its name merged "created" with the late "deleted" into
    /// nothing, so the new contents were never reported.
    #[test]
    fn a_file_moved_out_and_written_again_is_reported() {
        let mut pending = Pending::default();
        pending.moved_from(3, rel("a"), false);
        pending.add(ChangeKind::Created, "a".into(), false);
        pending.add(ChangeKind::Modified, "a".into(), false);
        let (batch, _) = pending.take();
        assert_eq!(
            summary(&batch),
            vec![
                (ChangeKind::Deleted, "a", None),
                (ChangeKind::Created, "a", None),
            ]
        );
    }

    /// Found by the fuzz target `watch_coalescing`: a file moved in over
    /// an existing one and then deleted merged into nothing, so clients
    /// kept a file that was gone.
    #[test]
    fn a_file_moved_in_over_another_then_deleted_is_deleted() {
        let mut pending = Pending::default();
        pending.moved_in("a".into(), false);
        pending.add(ChangeKind::Deleted, "a".into(), false);
        pending.add(ChangeKind::Created, "b".into(), false);
        pending.moved_in("b".into(), false);
        pending.add(ChangeKind::Deleted, "b".into(), false);
        let (batch, _) = pending.take();
        assert_eq!(summary(&batch), vec![(ChangeKind::Deleted, "a", None)]);
    }

    #[test]
    fn a_change_after_a_rename_does_not_merge_into_one_before_it() {
        let mut pending = Pending::default();
        pending.add(ChangeKind::Modified, "b".into(), false);
        pending.moved_from(5, rel("a"), false);
        let away = pending.take_moved_from(5).unwrap();
        pending.renamed(away, rel("b"), false);
        pending.add(ChangeKind::Deleted, "b".into(), false);
        let (batch, _) = pending.take();
        assert_eq!(
            summary(&batch),
            vec![
                (ChangeKind::Modified, "b", None),
                (ChangeKind::Renamed, "b", Some("a")),
                (ChangeKind::Deleted, "b", None),
            ]
        );
    }
}
