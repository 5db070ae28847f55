//! The changes of one batch while it settles, merged per path: a file
//! created then modified is "created", created then deleted is nothing,
//! deleted then created is "modified"; the two halves of a rename are
//! paired by their cookie, and a half whose partner never came is a
//! delete (moved out of the project).

use std::collections::{BTreeSet, HashMap};

use crate::files::{
    sandbox::RelPath,
    watch::{ChangeKind, FileChange},
};

/// Pending changes of one batch.
#[derive(Debug, Default)]
pub struct Pending {
    order: Vec<String>,
    changes: HashMap<String, FileChange>,
    /// Renames with both halves seen, in order.
    pub renames: Vec<FileChange>,
    /// `.git` paths that changed.
    pub repository: BTreeSet<String>,
    /// First halves of renames, by cookie: (old path, is a folder).
    pub rename_from: HashMap<u64, (RelPath, bool)>,
}

impl Pending {
    /// Nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
            && self.renames.is_empty()
            && self.repository.is_empty()
            && self.rename_from.is_empty()
    }

    /// Merge one change into the batch.
    pub fn add(&mut self, kind: ChangeKind, path: String, is_dir: bool) {
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

    /// The batch's changes in order and its `.git` paths; leaves it empty.
    pub fn take(&mut self) -> (Vec<FileChange>, Vec<String>) {
        for (_, (path, is_dir)) in std::mem::take(&mut self.rename_from) {
            self.add(ChangeKind::Deleted, path.as_str().to_owned(), is_dir);
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let gone = RelPath::from_inside(std::path::Path::new("gone")).unwrap();
        pending.rename_from.insert(7, (gone, false));
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
