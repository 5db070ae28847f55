//! Target `watch_coalescing`: the watcher's merging of raw changes into
//! batches (`files::watch::pending::Pending`), driven as the coalescer
//! drives it for paths that are neither ignored nor in `.git`. The input
//! is a program over a tree of six file names: the first byte says which
//! exist at the start, then each byte is one step, its low three bits the
//! act (create, modify, delete, rename, move out of the project, move in,
//! flush the batch) and the rest the path; a rename takes its target
//! from the next byte. Only acts the file system allows are played (a
//! create needs the name free, a modify an existing file), so the raw
//! changes are ones a kernel could report.
//!
//! Invariants, beyond "no panic", at every flush: the batch applied in
//! order to a client's copy of the tree (created and modified: present,
//! deleted: gone, renamed: moved) gives exactly the tree as it is now; no
//! file written since the last flush and still there is left out of the
//! batch; the batch has no more changes than raw changes came in.

use std::collections::BTreeSet;

use omnipanel_core::files::{
    sandbox::RelPath,
    watch::{ChangeKind, FileChange, pending::Pending},
};

const NAMES: [&str; 6] = ["a", "b", "c", "d/e", "d/f", "g h"];

fn rel(name: &str) -> RelPath {
    RelPath::from_inside(std::path::Path::new(name)).unwrap_or_else(RelPath::root)
}

struct Run {
    pending: Pending,
    /// The tree as it is.
    tree: BTreeSet<&'static str>,
    /// A client's copy, following the batches.
    copy: BTreeSet<String>,
    /// Files written since the last flush.
    written: BTreeSet<&'static str>,
    raw_changes: usize,
    next_cookie: u64,
}

impl Run {
    fn cookie(&mut self) -> u64 {
        self.next_cookie += 1;
        self.next_cookie
    }

    fn flush(&mut self) {
        let (batch, repository) = self.pending.take();
        assert!(repository.is_empty(), "no .git path was changed");
        assert!(
            batch.len() <= self.raw_changes,
            "{} changes from {} raw ones: {batch:?}",
            batch.len(),
            self.raw_changes
        );
        for change in &batch {
            apply(&mut self.copy, change);
        }
        let tree: BTreeSet<String> = self.tree.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(self.copy, tree, "the batch {batch:?} leaves the copy wrong");
        for name in &self.written {
            if self.tree.contains(name) {
                assert!(
                    batch
                        .iter()
                        .any(|c| c.path == *name && c.kind != ChangeKind::Deleted),
                    "{name} was written but the batch {batch:?} does not say so"
                );
            }
        }
        assert!(self.pending.is_empty(), "take left something pending");
        self.written.clear();
        self.raw_changes = 0;
    }
}

fn apply(copy: &mut BTreeSet<String>, change: &FileChange) {
    match change.kind {
        ChangeKind::Created | ChangeKind::Modified => {
            copy.insert(change.path.clone());
        }
        ChangeKind::Deleted => {
            copy.remove(&change.path);
        }
        ChangeKind::Renamed => {
            if let Some(from) = &change.from {
                copy.remove(from);
            }
            copy.insert(change.path.clone());
        }
    }
}

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&start, mut steps)) = data.split_first() else {
        return;
    };
    let tree: BTreeSet<&'static str> = NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| start & (1 << i) != 0)
        .map(|(_, name)| *name)
        .collect();
    let mut run = Run {
        pending: Pending::default(),
        copy: tree.iter().map(|s| (*s).to_owned()).collect(),
        tree,
        written: BTreeSet::new(),
        raw_changes: 0,
        next_cookie: 0,
    };
    while let Some((&step, rest)) = steps.split_first() {
        steps = rest;
        let name = NAMES[usize::from(step >> 3) % NAMES.len()];
        let exists = run.tree.contains(name);
        match step & 7 {
            0 if !exists => {
                run.pending.add(ChangeKind::Created, name.to_owned(), false);
                run.tree.insert(name);
                run.written.insert(name);
                run.raw_changes += 1;
            }
            1 if exists => {
                run.pending
                    .add(ChangeKind::Modified, name.to_owned(), false);
                run.written.insert(name);
                run.raw_changes += 1;
            }
            2 if exists => {
                run.pending.add(ChangeKind::Deleted, name.to_owned(), false);
                run.tree.remove(name);
                run.raw_changes += 1;
            }
            3 => {
                let Some((&other, rest)) = steps.split_first() else {
                    break;
                };
                steps = rest;
                let target = NAMES[usize::from(other) % NAMES.len()];
                if exists && target != name {
                    let cookie = run.cookie();
                    run.pending.moved_from(cookie, rel(name), false);
                    if let Some(away) = run.pending.take_moved_from(cookie) {
                        run.pending.renamed(away, rel(target), false);
                    }
                    run.tree.remove(name);
                    run.tree.insert(target);
                    run.written.remove(name);
                    run.written.insert(target);
                    run.raw_changes += 2;
                }
            }
            4 if exists => {
                let cookie = run.cookie();
                run.pending.moved_from(cookie, rel(name), false);
                run.tree.remove(name);
                run.raw_changes += 1;
            }
            5 => {
                // Moved in from outside: its cookie matches no first half.
                let cookie = run.cookie();
                assert!(run.pending.take_moved_from(cookie).is_none());
                run.pending.moved_in(name.to_owned(), false);
                run.tree.insert(name);
                run.written.insert(name);
                run.raw_changes += 1;
            }
            6 | 7 => run.flush(),
            _ => {}
        }
    }
    run.flush();
}
