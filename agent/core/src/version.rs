//! The agent's version as it reports it (GetInfo, the response header, the
//! event bus, crash reports, update checks). It is read from a fixed-size
//! slot in the binary rather than straight from `CARGO_PKG_VERSION` so that
//! a built binary can be stamped with another version without recompiling:
//! release tooling can stamp nightly build numbers, and the end-to-end
//! update tests stamp a copy of the test build as the "new release" it
//! installs (see tests/e2e/updates.rs). An unstamped binary reports the
//! crate version.

/// Marks the slot so a stamping tool can find it; exactly one copy of it is
/// in the binary (the slot itself).
const MARKER: &[u8] = b"@@OMNIPANEL-VERSION-SLOT@@";
/// Bytes available for the version after the marker (NUL padded).
pub const SLOT_CAPACITY: usize = 40;
const SLOT_LEN: usize = MARKER.len() + SLOT_CAPACITY;

const fn build_slot() -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    let mut i = 0;
    while i < MARKER.len() {
        slot[i] = MARKER[i];
        i += 1;
    }
    let version = env!("CARGO_PKG_VERSION").as_bytes();
    let mut j = 0;
    while j < version.len() && j < SLOT_CAPACITY {
        slot[MARKER.len() + j] = version[j];
        j += 1;
    }
    slot
}

/// The slot; `#[used]` keeps it in the binary even where the optimiser
/// could fold the reads below.
#[used]
static SLOT: [u8; SLOT_LEN] = build_slot();

/// The version this binary reports, e.g. "0.1.0".
pub fn current() -> &'static str {
    // black_box: the compiler must read the bytes that are in the file, not
    // the constant it built them from, or stamping would have no effect.
    let slot: &'static [u8; SLOT_LEN] = std::hint::black_box(&SLOT);
    let value = &slot[MARKER.len()..];
    let end = value.iter().position(|b| *b == 0).unwrap_or(value.len());
    match std::str::from_utf8(&value[..end]) {
        Ok(text) if !text.is_empty() => text,
        _ => env!("CARGO_PKG_VERSION"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unstamped_binary_reports_the_crate_version() {
        assert_eq!(current(), env!("CARGO_PKG_VERSION"));
    }
}
