//! What the paths need from the OS, `cfg`-gated in this one place: the
//! user's numeric id, which names the fallback runtime folder
//! (`/tmp/omnipanel-$UID`) and which the agent checks its socket folder's
//! owner against. The XDG layout itself is plain environment reading and
//! the same on every OS.

/// The current user's numeric id.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

/// The current user's numeric id: there is none off Unix (Windows has
/// SIDs), so 0, which only names the fallback runtime folder there.
#[cfg(not(unix))]
pub fn current_uid() -> u32 {
    0
}
