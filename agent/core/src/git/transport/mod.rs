//! The network side of fetch, pull and push, done by OmniPanel instead of
//! by libgit2's own https (OpenSSL) and ssh (libssh2): libgit2 keeps the
//! git protocol, and hands the bytes to these "smart subtransports".
//! `http.rs` speaks smart HTTP over the agent's one HTTP stack (reqwest,
//! rustls, the system's trust store); `ssh.rs` runs the user's own `ssh`,
//! so `~/.ssh/config`, ssh-agent and known_hosts work as they do for git.
//! Both are registered once per process (libgit2's transport table is
//! global); what a transfer may use (`git.token` and its hosts,
//! `git.timeout`) travels to them through [`during`], set on the thread
//! that runs the transfer, because libgit2 creates the transport deep
//! inside its fetch or push on that same thread.

mod http;
mod ssh;

use std::{
    cell::RefCell,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use git2::{ErrorClass, ErrorCode, transport::Transport};

use crate::git::credentials::Token;

/// What a transfer's network side may use.
#[derive(Debug, Clone)]
pub struct Network {
    /// `git.token` and the hosts it may be sent to.
    pub token: Option<Token>,
    /// `git.timeout`: connecting, and a remote that stops answering.
    pub timeout: Duration,
    /// The agent's runtime, which the HTTP requests run on (the transfer
    /// itself runs on its blocking pool).
    pub runtime: tokio::runtime::Handle,
    /// Set when the transfer is cancelled.
    pub cancelled: Arc<AtomicBool>,
}

thread_local! {
    static CURRENT: RefCell<Option<Network>> = const { RefCell::new(None) };
}

/// Run `transfer` (a libgit2 fetch or push, on this thread) with `network`
/// available to the transports it creates.
pub fn during<T>(network: &Network, transfer: impl FnOnce() -> T) -> T {
    /// Clears the thread's network when the transfer ends, even by panic:
    /// blocking-pool threads are reused.
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            CURRENT.with(|current| current.replace(None));
        }
    }
    CURRENT.with(|current| current.replace(Some(network.clone())));
    let _clear = Clear;
    transfer()
}

/// The network of the transfer running on this thread.
fn current() -> Result<Network, git2::Error> {
    CURRENT
        .with(|current| current.borrow().clone())
        .ok_or_else(|| {
            git2::Error::new(
                ErrorCode::GenericError,
                ErrorClass::Net,
                "the network is used only by OmniPanel's fetch, pull and push",
            )
        })
}

/// Put these transports in libgit2's table for http(s) and every ssh
/// scheme (scp-like `host:path` remotes are looked up as `ssh://`).
///
/// # Safety
///
/// libgit2 requires that no other thread creates a transport meanwhile:
/// call it once, before any repository operation.
#[allow(unsafe_code)] // git2 exposes transport registration only as an unsafe function.
pub unsafe fn register() -> Result<(), git2::Error> {
    for scheme in ["https", "http"] {
        // SAFETY: the caller guarantees no transport is being created.
        unsafe {
            git2::transport::register(scheme, |remote| {
                Transport::smart(remote, true, http::HttpSubtransport::new(current()?)?)
            })?;
        }
    }
    for scheme in ["ssh", "ssh+git", "git+ssh"] {
        // SAFETY: as above.
        unsafe {
            git2::transport::register(scheme, |remote| {
                Transport::smart(remote, false, ssh::SshSubtransport::new(current()?))
            })?;
        }
    }
    Ok(())
}

/// A network error libgit2 passes on with its code and message.
fn net_error(code: ErrorCode, message: impl AsRef<str>) -> git2::Error {
    git2::Error::new(code, ErrorClass::Net, message.as_ref())
}

/// A refusal that is the configuration's to fix, not the network's
/// (mapped to FAILED_PRECONDITION).
fn refused(message: impl AsRef<str>) -> git2::Error {
    git2::Error::new(
        ErrorCode::GenericError,
        ErrorClass::Invalid,
        message.as_ref(),
    )
}

/// Part of a server's answer, handed on to libgit2 in the sizes it reads.
#[derive(Default)]
struct Unread {
    bytes: Vec<u8>,
    read: usize,
}

impl From<Vec<u8>> for Unread {
    fn from(bytes: Vec<u8>) -> Self {
        Self { bytes, read: 0 }
    }
}

impl Unread {
    /// Whether all of it was handed on.
    fn is_empty(&self) -> bool {
        self.read == self.bytes.len()
    }

    /// Copy what fits into `buf`; how much that was.
    fn read_into(&mut self, buf: &mut [u8]) -> usize {
        let n = buf.len().min(self.bytes.len() - self.read);
        buf[..n].copy_from_slice(&self.bytes[self.read..self.read + n]);
        self.read += n;
        n
    }
}
