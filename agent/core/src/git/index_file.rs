//! What `.git/index` means (each entry's path, mode, object id and flags),
//! read straight from the file for the watcher's repository fingerprint
//! (`files/watch/repository.rs`), which runs at every rewrite of the
//! index (a `git status` in a terminal rewrites it to refresh timestamps).
//! libgit2 would first verify the whole file's SHA-1 and build a map of
//! its paths, which a fingerprint needs neither of: about 0.9 s of CPU at
//! a million entries, where streaming the entries here takes a tenth.
//!
//! The format is git's (`Documentation/gitformat-index.txt`): versions 2
//! to 4, SHA-1 object ids. Anything else (a SHA-256 repository, a split
//! or sparse index, whose extensions a reader must understand, a file cut
//! short) is `None`, and the caller then counts every change as one.

use std::{
    fs::File,
    hash::Hasher,
    io::{BufRead, BufReader, ErrorKind, Read},
    ops::Range,
    path::Path,
};

/// What every index file starts with.
const SIGNATURE: &[u8; 4] = b"DIRC";
/// A SHA-1 object id; also the checksum that ends the file.
const ID_LEN: usize = 20;
/// An entry's fixed part: change and modification times (8 bytes each),
/// device, inode, mode, user, group and size (4 each), the object id and
/// 16 bits of flags.
const FIXED_LEN: usize = 40 + ID_LEN + 2;
/// Where the mode is in the fixed part.
const MODE: Range<usize> = 24..28;
/// Where the object id and the flags are in the fixed part.
const ID_AND_FLAGS: Range<usize> = 40..FIXED_LEN;
/// The flag saying 16 more bits of flags follow (version 3 and later).
const EXTENDED: u16 = 0x4000;

/// Feed what the index file at `path` means to `hasher`: per entry its
/// mode, object id, flags (stage, assume-unchanged, skip-worktree,
/// intent-to-add) and path, but none of the timestamps, sizes and inode
/// numbers git refreshes. A missing file is an empty index; `None` when
/// the file is not an index this reader knows.
pub fn hash_meaning(path: &Path, hasher: &mut impl Hasher) -> Option<()> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            hasher.write_u32(0);
            return Some(());
        }
        Err(_) => return None,
    };
    let len = file.metadata().ok()?.len();
    hash_meaning_of(file, len, hasher)
}

/// [`hash_meaning`] of an index file's `len` bytes read from `file`.
pub fn hash_meaning_of(file: impl Read, len: u64, hasher: &mut impl Hasher) -> Option<()> {
    let mut reader = Counted {
        inner: BufReader::with_capacity(1 << 18, file),
        read: 0,
    };
    let mut header = [0u8; 12];
    reader.read_exact(&mut header)?;
    let version = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if &header[..4] != SIGNATURE || !(2..=4).contains(&version) {
        return None;
    }
    let count = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    hasher.write_u32(count);
    let mut path = Vec::new();
    for _ in 0..count {
        let mut fixed = [0u8; FIXED_LEN];
        reader.read_exact(&mut fixed)?;
        hasher.write(&fixed[MODE]);
        hasher.write(&fixed[ID_AND_FLAGS]);
        let mut fixed_len = FIXED_LEN;
        if u16::from_be_bytes([fixed[FIXED_LEN - 2], fixed[FIXED_LEN - 1]]) & EXTENDED != 0 {
            if version < 3 {
                return None;
            }
            let mut extended = [0u8; 2];
            reader.read_exact(&mut extended)?;
            hasher.write(&extended);
            fixed_len += 2;
        }
        if version == 4 {
            // The path is the previous one less some bytes at its end, plus
            // a new end; no padding.
            let strip = usize::try_from(reader.varint()?).ok()?;
            path.truncate(path.len().checked_sub(strip)?);
            reader.read_until_nul(&mut path)?;
        } else {
            path.clear();
            reader.read_until_nul(&mut path)?;
            // One to eight NULs end the entry at a multiple of eight bytes
            // from its start; the first was read with the path.
            let entry_len = (fixed_len + path.len() + 8) & !7;
            reader.skip((entry_len - fixed_len - path.len() - 1) as u64)?;
        }
        hasher.write(&path);
        // Ends the path, so that no two lists of paths feed the same bytes.
        hasher.write_u8(0);
    }
    // Extensions (cached trees, the untracked cache...) are derived or
    // private; one whose name does not start with a capital is one a
    // reader must understand (a split or sparse index).
    while reader.read + (ID_LEN as u64) < len {
        let mut head = [0u8; 8];
        reader.read_exact(&mut head)?;
        if !head[0].is_ascii_uppercase() {
            return None;
        }
        reader.skip(u64::from(u32::from_be_bytes([
            head[4], head[5], head[6], head[7],
        ])))?;
    }
    (reader.read + ID_LEN as u64 == len).then_some(())
}

/// A buffered reader that counts what it consumed; every read is `None`
/// at the end of the file.
struct Counted<R> {
    inner: BufReader<R>,
    read: u64,
}

impl<R: Read> Counted<R> {
    fn read_exact(&mut self, buf: &mut [u8]) -> Option<()> {
        self.inner.read_exact(buf).ok()?;
        self.read += buf.len() as u64;
        Some(())
    }

    /// Append up to the next NUL to `out`, consuming the NUL too.
    fn read_until_nul(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let n = self.inner.read_until(0, out).ok()?;
        self.read += n as u64;
        (out.pop() == Some(0)).then_some(())
    }

    fn skip(&mut self, n: u64) -> Option<()> {
        let skipped = std::io::copy(&mut (&mut self.inner).take(n), &mut std::io::sink()).ok()?;
        self.read += skipped;
        (skipped == n).then_some(())
    }

    /// git's variable-length integer (`varint.c`): seven bits a byte, most
    /// significant first, each continued byte adding one.
    fn varint(&mut self) -> Option<u64> {
        let mut byte = [0u8; 1];
        self.read_exact(&mut byte)?;
        let mut value = u64::from(byte[0] & 0x7f);
        while byte[0] & 0x80 != 0 {
            self.read_exact(&mut byte)?;
            value = value
                .checked_add(1)?
                .checked_mul(128)?
                .checked_add(u64::from(byte[0] & 0x7f))?;
        }
        Some(value)
    }
}

#[cfg(test)]
mod tests;
