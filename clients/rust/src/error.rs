//! Client-side errors, classified into what a person can do about them:
//! start the agent, fix permissions or the token, upgrade one side, or read
//! the agent's own message.

use std::{fmt, io};

use omnipanel_proto::ERROR_DOMAIN;
use tonic::Code;

/// A failure talking to the agent.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens where the agent should be.
    #[error(
        "the OmniPanel agent is not running (nothing answers at {target}); start it with `omnipanel-agent`"
    )]
    AgentNotRunning {
        /// Where we looked.
        target: String,
    },
    /// The agent refused us, or the socket's permissions did.
    #[error("access denied by the agent at {target}: {message}")]
    AccessDenied {
        /// Where we connected.
        target: String,
        /// Why.
        message: String,
    },
    /// No token, or a token the agent does not accept.
    #[error(
        "not authenticated at {target}: {message} (set OMNIPANEL_TOKEN to a token from `omnipanel token create`)"
    )]
    Unauthenticated {
        /// Where we connected.
        target: String,
        /// Why.
        message: String,
    },
    /// The agent speaks another protocol version.
    #[error(
        "protocol version mismatch: the agent {agent_version} speaks protocol {agent_protocol}, this client speaks {client_protocol}; install matching versions of OmniPanel"
    )]
    VersionMismatch {
        /// The agent's version string.
        agent_version: String,
        /// The agent's protocol version.
        agent_protocol: u32,
        /// Ours.
        client_protocol: u32,
    },
    /// The client is misconfigured (bad address, unreadable CA file, ...).
    #[error("{0}")]
    Config(String),
    /// The agent answered with an error.
    #[error("{}", describe_status(.0))]
    Rpc(tonic::Status),
}

impl ClientError {
    /// Classify a status returned by a call to `target`.
    pub fn from_status(status: tonic::Status, target: &str) -> Self {
        match status.code() {
            Code::PermissionDenied => Self::AccessDenied {
                target: target.to_owned(),
                message: status.message().to_owned(),
            },
            Code::Unauthenticated => Self::Unauthenticated {
                target: target.to_owned(),
                message: status.message().to_owned(),
            },
            Code::Unavailable if is_transport_failure(&status) => Self::AgentNotRunning {
                target: target.to_owned(),
            },
            _ => Self::Rpc(status),
        }
    }

    /// Classify a failure to establish the connection.
    pub fn from_transport(err: &tonic::transport::Error, target: &str) -> Self {
        match find_io_error(err) {
            Some(io) if io.kind() == io::ErrorKind::PermissionDenied => Self::AccessDenied {
                target: target.to_owned(),
                message: format!(
                    "{io}; the socket belongs to another user or its permissions were changed"
                ),
            },
            _ => Self::AgentNotRunning {
                target: target.to_owned(),
            },
        }
    }

    /// The gRPC status, when the agent answered with one.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Self::Rpc(status) => Some(status),
            _ => None,
        }
    }

    /// The gRPC code this error corresponds to.
    pub fn code(&self) -> Code {
        match self {
            Self::AgentNotRunning { .. } => Code::Unavailable,
            Self::AccessDenied { .. } => Code::PermissionDenied,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::VersionMismatch { .. } | Self::Config(_) => Code::FailedPrecondition,
            Self::Rpc(status) => status.code(),
        }
    }
}

/// The agent attaches a `google.rpc.ErrorInfo` with domain [`ERROR_DOMAIN`] to
/// every status it makes; an UNAVAILABLE without one comes from the transport
/// (the connection broke), not from the agent (e.g. "Ollama is down").
fn is_transport_failure(status: &tonic::Status) -> bool {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .is_none_or(|info| info.domain != ERROR_DOMAIN)
}

fn find_io_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a io::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        current = e.source();
    }
    None
}

fn describe_status(status: &tonic::Status) -> String {
    let code = match status.code() {
        Code::NotFound => "not found",
        Code::InvalidArgument => "invalid argument",
        Code::FailedPrecondition => "cannot do that now",
        Code::Aborted => "conflict",
        Code::AlreadyExists => "already exists",
        Code::Unavailable => "unavailable",
        Code::ResourceExhausted => "limit reached",
        Code::Unimplemented => "not implemented",
        Code::Internal => "internal error in the agent",
        Code::DeadlineExceeded => "timed out",
        Code::Cancelled => "cancelled",
        _ => "error",
    };
    struct Message<'a>(&'a str);
    impl fmt::Display for Message<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if self.0.is_empty() {
                f.write_str("(no details)")
            } else {
                f.write_str(self.0)
            }
        }
    }
    format!("{code}: {}", Message(status.message()))
}
