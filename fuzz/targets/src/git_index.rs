//! Target `git_index`: the watcher's reader of `.git/index`
//! (`omnipanel_core::git::index_file`), which reads a file any project's
//! `.git` folder can hold. The input is the index file's bytes; the seeds
//! are indexes git wrote in versions 2, 3 (skip-worktree) and 4
//! (prefix-compressed paths), with and without extensions.
//!
//! Invariants, beyond "no panic":
//! - the same bytes read in one go and one byte at a time give the same
//!   answer (the buffered reader's boundaries do not matter);
//! - an accepted file starts with git's signature and a version of 2 to 4.

use std::{
    hash::{DefaultHasher, Hasher},
    io::Read,
};

use omnipanel_core::git::index_file::hash_meaning_of;

/// A reader that hands out at most one byte per call.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((byte, rest)), Some(slot)) => {
                *slot = *byte;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

fn meaning(reader: impl Read, len: usize) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    hash_meaning_of(reader, len as u64, &mut hasher).map(|()| hasher.finish())
}

pub fn run(data: &[u8]) {
    let whole = meaning(data, data.len());
    assert_eq!(
        whole,
        meaning(Trickle(data), data.len()),
        "the answer depends on how the bytes arrive"
    );
    if whole.is_some() {
        assert!(data.starts_with(b"DIRC"), "accepted without the signature");
        assert!(
            matches!(data.get(4..8), Some([0, 0, 0, 2..=4])),
            "accepted another version"
        );
    }
}
