//! The agent's domain error: a kind that says what a client can do about it,
//! a message a person can act on, and optional machine-readable details
//! (the offending field, a stable [`Reason`]). `rpc::status` is the one
//! place that turns it into a gRPC status.

use std::fmt;

pub use crate::reason::Reason;

/// What went wrong, in terms a client can act on. Mirrors the gRPC codes the
/// API promises in DESIGN.md without depending on tonic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The named thing does not exist.
    NotFound,
    /// The request is malformed; `Error::field` names the culprit.
    InvalidArgument,
    /// The caller may not do this.
    PermissionDenied,
    /// The caller is not authenticated (bad or missing token, bad remote
    /// credentials).
    Unauthenticated,
    /// The system is not in a state that allows this (e.g. Ollama missing).
    FailedPrecondition,
    /// A concurrent change won (e.g. expected version mismatch).
    Aborted,
    /// The thing already exists.
    AlreadyExists,
    /// A dependency is down (e.g. the Ollama server); retrying may help.
    Unavailable,
    /// A limit was hit.
    ResourceExhausted,
    /// Not available in this build or on this platform.
    Unimplemented,
    /// A bug or an unexpected OS failure.
    Internal,
    /// The operation ran past its time limit: the server's bound for the
    /// method, the client's own `grpc-timeout` when shorter, or a search's
    /// own deadline.
    DeadlineExceeded,
}

/// A domain error. Build it with the constructors; they take the message a
/// person reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    field: Option<String>,
    reason: Option<Reason>,
    metadata: Vec<(String, String)>,
}

/// Result alias for domain code.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of the given kind with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            reason: None,
            metadata: Vec::new(),
        }
    }

    /// `field` is invalid because of `why`.
    pub fn invalid_argument(field: impl Into<String>, why: impl fmt::Display) -> Self {
        let field = field.into();
        Self {
            kind: ErrorKind::InvalidArgument,
            message: format!("{field}: {why}"),
            field: Some(field),
            reason: None,
            metadata: Vec::new(),
        }
    }

    /// The named thing does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The system's state does not allow the operation.
    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }

    /// The caller may not do this.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }

    /// An unexpected failure; the message should still say what was being
    /// attempted.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Attach a stable reason code (sent as `google.rpc.ErrorInfo.reason`)
    /// that clients may branch on; the list is [`Reason`].
    #[must_use]
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Attach `key = value` for the client to act on (sent as `ErrorInfo`
    /// metadata), e.g. a confirmation id.
    #[must_use]
    pub fn with_metadata(mut self, key: &str, value: &str) -> Self {
        self.metadata.push((key.to_owned(), value.to_owned()));
        self
    }

    /// What [`Error::with_metadata`] attached.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.metadata
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The request field at fault, for invalid arguments.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The stable reason code, if one was attached.
    pub fn reason(&self) -> Option<Reason> {
        self.reason
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        // A state.db made read-only while the agent runs (opened read-only,
        // `Store::write` says so itself): the user's to fix, not a bug.
        if err.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) {
            return Self::failed_precondition(format!(
                "state.db cannot be written ({err}): make it and its folder writable by this \
                 user and restart the agent"
            ))
            .with_reason(Reason::StateDb);
        }
        Self::internal(format!("state database error: {err}")).with_reason(Reason::StateDb)
    }
}

impl From<tokio::task::JoinError> for Error {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::internal(format!("background task failed: {err}"))
    }
}
