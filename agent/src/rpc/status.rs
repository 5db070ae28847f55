//! The one mapping from domain errors to gRPC statuses. Every status the
//! agent makes carries a `google.rpc.ErrorInfo` (domain `omnipanel.v1`, a
//! stable reason) and, for invalid arguments, a `BadRequest` naming the
//! field, so clients can act on errors without parsing messages.

use std::collections::HashMap;

use omnipanel_proto::ERROR_DOMAIN;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use omnipanel_core::error::{Error, ErrorKind};
use omnipanel_core::reason::Reason;

fn code_and_reason(kind: ErrorKind) -> (Code, Reason) {
    match kind {
        ErrorKind::NotFound => (Code::NotFound, Reason::NotFound),
        ErrorKind::InvalidArgument => (Code::InvalidArgument, Reason::InvalidArgument),
        ErrorKind::PermissionDenied => (Code::PermissionDenied, Reason::PermissionDenied),
        ErrorKind::Unauthenticated => (Code::Unauthenticated, Reason::Unauthenticated),
        ErrorKind::FailedPrecondition => (Code::FailedPrecondition, Reason::FailedPrecondition),
        ErrorKind::Aborted => (Code::Aborted, Reason::Aborted),
        ErrorKind::AlreadyExists => (Code::AlreadyExists, Reason::AlreadyExists),
        ErrorKind::Unavailable => (Code::Unavailable, Reason::Unavailable),
        ErrorKind::ResourceExhausted => (Code::ResourceExhausted, Reason::ResourceExhausted),
        ErrorKind::Unimplemented => (Code::Unimplemented, Reason::Unimplemented),
        ErrorKind::Internal => (Code::Internal, Reason::Internal),
        ErrorKind::DeadlineExceeded => (Code::DeadlineExceeded, Reason::DeadlineExceeded),
    }
}

/// Turn a domain error into the status sent to the client.
pub fn to_status(err: Error) -> Status {
    let (code, default_reason) = code_and_reason(err.kind());
    if code == Code::Internal {
        tracing::error!(error = %err, "internal error answered to a client");
    }
    let mut details = ErrorDetails::new();
    details.set_error_info(
        err.reason().unwrap_or(default_reason).as_str(),
        ERROR_DOMAIN,
        err.metadata().iter().cloned().collect::<HashMap<_, _>>(),
    );
    if let Some(field) = err.field() {
        details.add_bad_request_violation(field, err.message());
    }
    // A provider's Retry-After (PROVIDER_RATE_LIMITED) as google.rpc.RetryInfo,
    // which clients' retry logic reads, besides the ErrorInfo metadata.
    if let Some(seconds) = err
        .metadata()
        .iter()
        .find(|(key, _)| key == "retry_after_seconds")
        .and_then(|(_, value)| value.parse::<u64>().ok())
    {
        details.set_retry_info(Some(std::time::Duration::from_secs(seconds)));
    }
    Status::with_error_details(code, err.message(), details)
}

/// A domain result as a gRPC result, through [`to_status`]:
/// `projects.get(id).await.or_status()?`. (The error types live in other
/// crates, so a `From` between them cannot be written here.)
pub trait OrStatus<T> {
    /// The result with its error mapped to a `Status`.
    fn or_status(self) -> Result<T, Status>;
}

impl<T> OrStatus<T> for Result<T, Error> {
    fn or_status(self) -> Result<T, Status> {
        self.map_err(to_status)
    }
}

/// A domain error as a `Status`, through [`to_status`], where a value
/// (not a `?`) is needed: `tx.send(Err(err.into_status()))`.
pub trait IntoStatus {
    /// The error as a `Status`.
    fn into_status(self) -> Status;
}

impl IntoStatus for Error {
    fn into_status(self) -> Status {
        to_status(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carries_code_reason_and_field() {
        let status = to_status(Error::invalid_argument("lines", "at most 10000"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "lines: at most 10000");
        let details = status.get_error_details();
        let info = details.error_info().cloned();
        assert_eq!(info.map(|i| i.domain), Some(ERROR_DOMAIN.to_owned()));
        let violations = details
            .bad_request()
            .map(|b| b.field_violations.clone())
            .unwrap_or_default();
        assert_eq!(violations[0].field, "lines");
    }

    #[test]
    fn a_retry_after_becomes_retry_info() {
        let status = to_status(
            Error::new(ErrorKind::ResourceExhausted, "slow down")
                .with_reason(Reason::ProviderRateLimited)
                .with_metadata("retry_after_seconds", "7"),
        );
        assert_eq!(status.code(), Code::ResourceExhausted);
        let delay = status
            .get_details_retry_info()
            .and_then(|info| info.retry_delay);
        assert_eq!(delay, Some(std::time::Duration::from_secs(7)));
        assert!(
            to_status(Error::internal("x"))
                .get_details_retry_info()
                .is_none()
        );
    }

    #[test]
    fn custom_reason_wins() {
        let status = to_status(
            Error::failed_precondition("no ollama").with_reason(Reason::OllamaNotInstalled),
        );
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(
            status.get_details_error_info().map(|i| i.reason),
            Some("OLLAMA_NOT_INSTALLED".to_owned())
        );
    }
}
