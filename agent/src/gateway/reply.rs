//! Errors as each API writes them. Ollama answers `{"error": "..."}`;
//! OpenAI answers `{"error": {"message", "type", "param", "code"}}`; both
//! use the HTTP status to say what kind of failure it was. [`Failure`] is
//! what a handler returns, [`Dialect`] picks the shape, and
//! [`Failure::from_domain`] is the one mapping from the domain's errors to
//! HTTP statuses (the gateway's counterpart of `rpc/status.rs`).

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use omnipanel_core::{
    error::{Error, ErrorKind},
    reason::Reason,
};

/// Which API a request came in through, so its errors take that API's
/// shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `/api/...` and the gateway's own endpoints.
    Ollama,
    /// `/v1/...`.
    OpenAi,
}

/// A request that failed: the status, a message a person can act on, and
/// what the activity log records as its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
    /// The outcome recorded: an error reason (`MODEL_NOT_ALLOWED`) or the
    /// error's kind.
    pub outcome: String,
    /// Seconds the client should wait (429 and some 503s).
    pub retry_after: Option<u64>,
    /// The shape of the body.
    pub dialect: Dialect,
}

impl Failure {
    /// A failure with this status and message.
    pub fn new(status: StatusCode, outcome: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            outcome: outcome.to_owned(),
            retry_after: None,
            dialect: Dialect::Ollama,
        }
    }

    /// A 400 for a request the gateway cannot read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
    }

    /// The same failure in another API's shape.
    pub fn in_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// With a Retry-After.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The one mapping from the domain's errors to HTTP statuses.
    pub fn from_domain(err: &Error) -> Self {
        let status = match err.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::InvalidArgument | ErrorKind::FailedPrecondition => StatusCode::BAD_REQUEST,
            ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::AlreadyExists | ErrorKind::Aborted => StatusCode::CONFLICT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // A provider's own authentication failure is the gateway's
        // upstream failing, not the caller's credentials: 502, so a tool
        // does not ask its user for a new key.
        let status = match err.reason() {
            Some(Reason::ProviderUnauthorized | Reason::ProviderWrongApi) => {
                StatusCode::BAD_GATEWAY
            }
            _ => status,
        };
        let outcome = err.reason().map_or_else(
            || kind_name(err.kind()).to_owned(),
            |r| r.as_str().to_owned(),
        );
        let message = match err.field() {
            Some(field) if !err.message().contains(field) => format!("{field}: {}", err.message()),
            _ => err.message().to_owned(),
        };
        Self::new(status, &outcome, message)
    }

    /// The JSON body in this failure's dialect.
    pub fn body(&self) -> serde_json::Value {
        match self.dialect {
            Dialect::Ollama => serde_json::json!({ "error": self.message }),
            Dialect::OpenAi => {
                let (kind, code) = openai_type(self.status, &self.outcome);
                serde_json::json!({
                    "error": {
                        "message": self.message,
                        "type": kind,
                        "param": null,
                        "code": code,
                    }
                })
            }
        }
    }
}

/// OpenAI's error `type` and `code` for a status, as its own API names
/// them (clients such as the `openai` package branch on the status only).
fn openai_type(status: StatusCode, outcome: &str) -> (&'static str, Option<&'static str>) {
    match status {
        StatusCode::UNAUTHORIZED => ("invalid_request_error", Some("invalid_api_key")),
        StatusCode::FORBIDDEN if outcome == Reason::ModelNotAllowed.as_str() => {
            ("invalid_request_error", Some("model_not_allowed"))
        }
        StatusCode::FORBIDDEN => ("invalid_request_error", Some("insufficient_scope")),
        StatusCode::NOT_FOUND => ("invalid_request_error", Some("model_not_found")),
        StatusCode::TOO_MANY_REQUESTS => ("requests", Some("rate_limit_exceeded")),
        s if s.is_client_error() => ("invalid_request_error", None),
        _ => ("server_error", None),
    }
}

fn kind_name(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::NotFound => "NOT_FOUND",
        ErrorKind::InvalidArgument => "INVALID_ARGUMENT",
        ErrorKind::PermissionDenied => "PERMISSION_DENIED",
        ErrorKind::Unauthenticated => "UNAUTHENTICATED",
        ErrorKind::FailedPrecondition => "FAILED_PRECONDITION",
        ErrorKind::Aborted => "ABORTED",
        ErrorKind::AlreadyExists => "ALREADY_EXISTS",
        ErrorKind::Unavailable => "UNAVAILABLE",
        ErrorKind::ResourceExhausted => "RESOURCE_EXHAUSTED",
        ErrorKind::Unimplemented => "UNIMPLEMENTED",
        ErrorKind::Internal => "INTERNAL",
        ErrorKind::DeadlineExceeded => "DEADLINE_EXCEEDED",
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"omnipanel\""),
            );
        }
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_has_its_error_shape() {
        let failure = Failure::new(
            StatusCode::NOT_FOUND,
            "MODEL_NOT_FOUND",
            "model \"x\" not found",
        );
        assert_eq!(
            failure.body().to_string(),
            r#"{"error":"model \"x\" not found"}"#
        );
        assert_eq!(
            failure.in_dialect(Dialect::OpenAi).body().to_string(),
            r#"{"error":{"code":"model_not_found","message":"model \"x\" not found","param":null,"type":"invalid_request_error"}}"#
        );
    }

    #[test]
    fn domain_errors_map_to_statuses() {
        let not_found = Error::not_found("no such model").with_reason(Reason::ModelNotFound);
        let failure = Failure::from_domain(&not_found);
        assert_eq!(failure.status, StatusCode::NOT_FOUND);
        assert_eq!(failure.outcome, "MODEL_NOT_FOUND");
        let bad = Failure::from_domain(&Error::invalid_argument("messages", "needs one"));
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert_eq!(bad.message, "messages: needs one");
        let down = Error::new(ErrorKind::Unavailable, "Ollama is down");
        assert_eq!(
            Failure::from_domain(&down).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn unauthorized_says_bearer_and_limits_say_when() {
        let response =
            Failure::new(StatusCode::UNAUTHORIZED, "TOKEN_MISSING", "no").into_response();
        assert!(
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .is_ok_and(|v| v.starts_with("Bearer"))
        );
        let response = Failure::new(StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS", "slow")
            .retry_after(7)
            .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
