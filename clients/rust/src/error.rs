//! Client-side errors, classified into what a person can do about them:
//! start the agent, fix permissions or the token, fix the address or TLS
//! setup, upgrade one side, or read the agent's own message.

use std::{fmt, io};

use omnipanel_proto::{CONFIRMATION_ID_KEY, ERROR_DOMAIN};
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
        /// The agent's `ErrorInfo` reason (e.g. `NOT_ADMITTED`), when it
        /// gave one.
        reason: Option<String>,
    },
    /// Something answered, but the connection could not be set up: TLS
    /// failed (an `https` address for a plain listener, an untrusted
    /// certificate), HTTP/2 failed, or the connection timed out. Retrying
    /// will not help; the address or TLS setup needs fixing.
    #[error("cannot talk to the agent at {target}: {message}")]
    Transport {
        /// Where we connected.
        target: String,
        /// What failed, with a hint where one applies.
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
                reason: error_info(&status).map(|info| info.reason),
            },
            // A git remote that refused its login (GIT_AUTH) is the
            // remote's business: the agent's token has nothing to do with
            // it, so no hint about OMNIPANEL_TOKEN.
            Code::Unauthenticated if !is_remote_login(&status) => Self::Unauthenticated {
                target: target.to_owned(),
                message: status.message().to_owned(),
            },
            Code::Unavailable if is_transport_failure(&status) => Self::AgentNotRunning {
                target: target.to_owned(),
            },
            // A status with a source was made by our own transport (the
            // agent's arrive as bytes): e.g. plain HTTP/2 sent to a TLS
            // listener, which the other side hangs up on.
            _ => match std::error::Error::source(&status) {
                Some(cause) if is_transport_failure(&status) => Self::Transport {
                    target: target.to_owned(),
                    message: with_tcp_hint(describe_chain(cause), target),
                },
                _ => Self::Rpc(status),
            },
        }
    }

    /// Classify a failure to establish the connection. Only "nothing is
    /// there" (no socket file, connection refused) means the agent is not
    /// running; a TLS or HTTP/2 failure means something answered, and
    /// telling the user to start the agent would send them the wrong way.
    pub fn from_transport(err: &tonic::transport::Error, target: &str) -> Self {
        Self::from_connect_error(err, target)
    }

    fn from_connect_error(err: &(dyn std::error::Error + 'static), target: &str) -> Self {
        match find_io_error(err).map(io::Error::kind) {
            Some(io::ErrorKind::PermissionDenied) => Self::AccessDenied {
                target: target.to_owned(),
                message: format!(
                    "{}; the socket belongs to another user or its permissions were changed",
                    describe_chain(err)
                ),
                reason: None,
            },
            Some(io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused) => {
                Self::AgentNotRunning {
                    target: target.to_owned(),
                }
            }
            _ => Self::Transport {
                target: target.to_owned(),
                message: with_tcp_hint(describe_chain(err), target),
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

    /// Whether the agent refused because a limit was reached (a read
    /// larger than `files.max_read_mb`, too many pulls): the caller may
    /// retry in smaller parts.
    pub fn is_limit_reached(&self) -> bool {
        self.code() == Code::ResourceExhausted
    }

    /// Whether the agent refused because what the call was based on changed
    /// meanwhile (a stale `expected_version`): read again and retry.
    pub fn is_conflict(&self) -> bool {
        self.code() == Code::Aborted
    }

    /// The agent's `ErrorInfo` reason ("NOT_ADMITTED",
    /// "CONFIRMATION_REQUIRED"), when the agent answered with one.
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::AccessDenied { reason, .. } => reason.clone(),
            Self::Rpc(status) => error_info(status).map(|info| info.reason),
            _ => None,
        }
    }

    /// For CONFIRMATION_REQUIRED (and CONFIRMATION_PENDING): the id of the
    /// confirmation the user must allow, to send back as metadata
    /// `omnipanel-confirmation` on the retry.
    pub fn confirmation_id(&self) -> Option<String> {
        let info = error_info(self.status()?)?;
        info.metadata.get(CONFIRMATION_ID_KEY).cloned()
    }

    /// The gRPC code this error corresponds to.
    pub fn code(&self) -> Code {
        match self {
            Self::AgentNotRunning { .. } | Self::Transport { .. } => Code::Unavailable,
            Self::AccessDenied { .. } => Code::PermissionDenied,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::VersionMismatch { .. } | Self::Config(_) => Code::FailedPrecondition,
            Self::Rpc(status) => status.code(),
        }
    }
}

/// The agent's ErrorInfo on a status, when it is the agent's.
fn error_info(status: &tonic::Status) -> Option<tonic_types::ErrorInfo> {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
}

/// Whether an UNAUTHENTICATED is a git remote refusing its login, not the
/// agent refusing this client.
fn is_remote_login(status: &tonic::Status) -> bool {
    error_info(status).is_some_and(|info| info.reason == "GIT_AUTH")
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

/// For TCP targets, the usual causes of a failed TLS or HTTP/2 setup.
fn with_tcp_hint(mut message: String, target: &str) -> String {
    if target.starts_with("https://") || target.starts_with("http://") {
        message.push_str(
            "; check that the address's http/https matches the agent's [server] TLS setting, and that OMNIPANEL_CA_CERT names the CA of its certificate",
        );
    }
    message
}

/// An error and its sources, "outer: inner: innermost", skipping a source
/// whose text its wrapper already repeats.
fn describe_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut current = err.source();
    while let Some(e) = current {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = e.source();
    }
    text
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
        Code::Unauthenticated => "not authenticated",
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic_types::{ErrorDetails, StatusExt};

    use super::*;
    use crate::{Client, Target};

    const TARGET: &str = "/run/user/1000/omnipanel/agent.sock";

    /// A status the way the agent makes them: with its ErrorInfo.
    fn from_agent(code: Code, message: &str) -> tonic::Status {
        tonic::Status::with_error_details(
            code,
            message,
            ErrorDetails::with_error_info("SOME_REASON", ERROR_DOMAIN, HashMap::new()),
        )
    }

    #[test]
    fn unavailable_without_the_agents_error_info_means_the_agent_is_gone() {
        let err = ClientError::from_status(tonic::Status::unavailable("connection reset"), TARGET);
        assert!(
            matches!(&err, ClientError::AgentNotRunning { target } if target == TARGET),
            "{err:?}"
        );
        assert!(err.to_string().contains("start it with `omnipanel-agent`"));
        assert_eq!(err.code(), Code::Unavailable);
        // Another server's ErrorInfo is not the agent's word either.
        let foreign = tonic::Status::with_error_details(
            Code::Unavailable,
            "proxy says no",
            ErrorDetails::with_error_info("UPSTREAM", "example.com", HashMap::new()),
        );
        assert!(matches!(
            ClientError::from_status(foreign, TARGET),
            ClientError::AgentNotRunning { .. }
        ));
    }

    #[test]
    fn unavailable_from_the_agent_is_its_own_message() {
        let err = ClientError::from_status(
            from_agent(Code::Unavailable, "Ollama is not running"),
            TARGET,
        );
        let ClientError::Rpc(status) = &err else {
            panic!("expected the agent's error, got {err:?}");
        };
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(err.to_string(), "unavailable: Ollama is not running");
        assert!(err.status().is_some());
    }

    #[test]
    fn other_agent_errors_keep_their_code_and_message() {
        let err = ClientError::from_status(from_agent(Code::NotFound, "no such project"), TARGET);
        assert_eq!(err.code(), Code::NotFound);
        assert_eq!(err.to_string(), "not found: no such project");
        assert!(!err.is_conflict() && !err.is_limit_reached());
        let stale = ClientError::from_status(from_agent(Code::Aborted, "changed"), TARGET);
        assert!(stale.is_conflict());
        let big = ClientError::from_status(from_agent(Code::ResourceExhausted, "big"), TARGET);
        assert!(big.is_limit_reached());
        let bare = ClientError::from_status(tonic::Status::internal(""), TARGET);
        assert_eq!(
            bare.to_string(),
            "internal error in the agent: (no details)"
        );
    }

    #[test]
    fn a_status_made_by_our_own_transport_is_a_transport_error() {
        // What tonic returns when plain HTTP/2 meets a TLS listener.
        let mut status = tonic::Status::unknown("transport error");
        status.set_source(std::sync::Arc::new(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "stream closed because of a broken pipe",
        )));
        let err = ClientError::from_status(status, "http://127.0.0.1:7457");
        let ClientError::Transport { message, .. } = &err else {
            panic!("expected a transport error, got {err:?}");
        };
        assert!(
            message.contains("broken pipe") && message.contains("http/https"),
            "{message}"
        );
        assert!(!err.to_string().contains("not running"), "{err}");
    }

    #[test]
    fn permission_denied_is_access_denied_with_or_without_error_info() {
        for status in [
            from_agent(
                Code::PermissionDenied,
                "connections from uid 65534 are refused",
            ),
            tonic::Status::permission_denied("connections from uid 65534 are refused"),
        ] {
            let err = ClientError::from_status(status, TARGET);
            let ClientError::AccessDenied {
                target, message, ..
            } = &err
            else {
                panic!("expected access denied, got {err:?}");
            };
            assert_eq!(target, TARGET);
            assert!(message.contains("uid 65534"), "{message}");
            assert_eq!(err.code(), Code::PermissionDenied);
            assert!(err.status().is_none());
        }
    }

    #[test]
    fn unauthenticated_points_at_the_token() {
        let err = ClientError::from_status(
            from_agent(
                Code::Unauthenticated,
                "the token is not valid or was revoked",
            ),
            "http://127.0.0.1:7457",
        );
        assert!(
            matches!(&err, ClientError::Unauthenticated { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("revoked") && text.contains("OMNIPANEL_TOKEN"),
            "{text}"
        );
        assert_eq!(err.code(), Code::Unauthenticated);
    }

    #[test]
    fn a_git_remote_refusing_its_login_does_not_point_at_the_agents_token() {
        let status = tonic::Status::with_error_details(
            Code::Unauthenticated,
            "fetching from origin: authentication failed (ssh to example.com was refused)",
            ErrorDetails::with_error_info("GIT_AUTH", ERROR_DOMAIN, HashMap::new()),
        );
        let err = ClientError::from_status(status, TARGET);
        assert!(matches!(&err, ClientError::Rpc(_)), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with("not authenticated: fetching from origin")
                && !text.contains("OMNIPANEL_TOKEN")
                && !text.contains(TARGET),
            "{text}"
        );
        assert_eq!(err.code(), Code::Unauthenticated);
    }

    #[test]
    fn version_mismatch_names_both_protocols() {
        let err = ClientError::VersionMismatch {
            agent_version: "9.0.0".into(),
            agent_protocol: 999,
            client_protocol: 1,
        };
        let text = err.to_string();
        assert!(
            text.contains("9.0.0") && text.contains("protocol 999") && text.contains("speaks 1"),
            "{text}"
        );
        assert_eq!(err.code(), Code::FailedPrecondition);
    }

    #[test]
    fn only_a_missing_or_refusing_socket_means_not_running() {
        let classify = |kind: io::ErrorKind| {
            ClientError::from_connect_error(&io::Error::new(kind, "x"), TARGET)
        };
        for kind in [io::ErrorKind::NotFound, io::ErrorKind::ConnectionRefused] {
            assert!(
                matches!(classify(kind), ClientError::AgentNotRunning { .. }),
                "{kind:?}"
            );
        }
        assert!(matches!(
            classify(io::ErrorKind::PermissionDenied),
            ClientError::AccessDenied { .. }
        ));
        for kind in [
            io::ErrorKind::InvalidData,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::TimedOut,
        ] {
            let err = classify(kind);
            assert!(matches!(err, ClientError::Transport { .. }), "{kind:?}");
            assert!(!err.to_string().contains("not running"), "{err}");
        }
    }

    #[tokio::test]
    async fn a_missing_or_dead_socket_is_not_running() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("missing.sock");
        let err = Client::connect(Target::Unix(missing))
            .await
            .err()
            .ok_or("connected to nothing")?;
        assert!(matches!(err, ClientError::AgentNotRunning { .. }), "{err}");
        // A socket file left by a crash: the connection is refused.
        let dead = dir.path().join("dead.sock");
        drop(std::os::unix::net::UnixListener::bind(&dead)?);
        let err = Client::connect(Target::Unix(dead))
            .await
            .err()
            .ok_or("connected to a dead socket")?;
        assert!(matches!(err, ClientError::AgentNotRunning { .. }), "{err}");
        Ok(())
    }

    #[tokio::test]
    async fn a_failed_tls_handshake_is_not_reported_as_not_running()
    -> Result<(), Box<dyn std::error::Error>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A plain-text server where the client expects TLS.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Ok((mut stream, _)) = listener.accept().await {
                let mut hello = [0u8; 512];
                let _ = stream.read(&mut hello).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                    .await;
            }
        });
        let err = Client::connect(Target::tcp(&format!("https://{address}"), None, None))
            .await
            .err()
            .ok_or("a TLS handshake with a plain-text server succeeded")?;
        server.abort();
        let ClientError::Transport { target, message } = &err else {
            panic!("expected a transport error, got {err:?}");
        };
        assert_eq!(target, &format!("https://{address}"));
        assert!(message.contains("http/https"), "{message}");
        assert!(!err.to_string().contains("not running"), "{err}");
        Ok(())
    }
}
