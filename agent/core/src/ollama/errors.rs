//! What a failed call to Ollama means to a client: Ollama's and the
//! transport's failures turned into domain errors (UNAVAILABLE naming the
//! local server's state, NOT_FOUND for a missing model, ...), by the same
//! rules whether the call failed before its reply or in the middle of a
//! stream.

use super::{
    Ollama,
    address::OllamaAddress,
    api::ApiError,
    endpoints::Endpoint,
    supervisor::{ServerState, ServerStatus},
};
use crate::error::{Error, ErrorKind};
use crate::openai::client::OpenAiError;
use crate::reason::Reason;

impl Ollama {
    /// [`server_down`] for this facade's local server.
    pub(super) fn server_down(&self, status: &ServerStatus) -> Error {
        server_down(&self.address, status)
    }

    /// [`api_error`] with the local server's status as it is now; the
    /// provider's health learns of it.
    pub(super) fn api_error(&self, endpoint: &Endpoint, err: ApiError) -> Error {
        if !endpoint.local {
            self.health.failed_ollama(&endpoint.subject(), &err);
        }
        api_error(&self.address, &self.supervisor.status(), endpoint, err)
    }

    /// An OpenAI provider's failure as a domain error naming it; the
    /// provider's health learns of it.
    pub(super) fn openai_error(&self, endpoint: &Endpoint, err: OpenAiError) -> Error {
        self.health.failed_openai(&endpoint.subject(), &err);
        err.into_error(&endpoint.name)
    }

    /// A request to `endpoint` was answered: it is up.
    pub(super) fn record_success(&self, endpoint: &Endpoint) {
        if !endpoint.local {
            self.health.succeeded(&endpoint.subject());
        }
    }
}

/// UNAVAILABLE naming the local server's state, with what to do about it.
fn server_down(address: &OllamaAddress, status: &ServerStatus) -> Error {
    let hint = match status.state {
        // The reason of NOT_INSTALLED usually says how to install already.
        ServerState::Stopped => "; start it with `omnipanel ollama start`".to_owned(),
        _ => String::new(),
    };
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "the Ollama server at {address} is not available (state {}: {}){hint}",
            status.state.name(),
            status.reason
        ),
    )
    .with_reason(Reason::OllamaDown)
}

/// Whether an Ollama error message says the model does not exist. Ollama
/// answers that with HTTP 404 before a reply starts, but the same words
/// can come as the error line of a stream (HTTP 200), and they mean the
/// same to a client.
fn is_missing_model(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    message.contains("model") && message.contains("not found")
}

/// Turn a failed call to `endpoint` into a domain error. `server` is the
/// local server's status at the time of the failure.
pub(super) fn api_error(
    address: &OllamaAddress,
    server: &ServerStatus,
    endpoint: &Endpoint,
    err: ApiError,
) -> Error {
    match err {
        ApiError::Unreachable(why) | ApiError::Interrupted(why) => {
            if !endpoint.local {
                return Error::new(
                    ErrorKind::Unavailable,
                    format!(
                        "provider {} at {} did not answer: {why}",
                        endpoint.name, endpoint.url
                    ),
                )
                .with_reason(Reason::ProviderDown);
            }
            if !server.state.is_up() {
                return server_down(address, server);
            }
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the Ollama server at {address} did not answer: {why} (state {}: {})",
                    server.state.name(),
                    server.reason
                ),
            )
            .with_reason(Reason::OllamaDown)
        }
        ApiError::Ollama {
            status: 404,
            message,
        } => Error::not_found(message).with_reason(Reason::ModelNotFound),
        ApiError::Ollama {
            status: 200,
            message,
        } if is_missing_model(&message) => {
            Error::not_found(message).with_reason(Reason::ModelNotFound)
        }
        ApiError::Ollama {
            status: 400,
            message,
        } => Error::invalid_argument("request", message),
        ApiError::Ollama {
            status: 503,
            message,
        } => Error::new(ErrorKind::Unavailable, message).with_reason(Reason::OllamaBusy),
        ApiError::Ollama { message, .. } => {
            Error::failed_precondition(message).with_reason(Reason::OllamaError)
        }
        ApiError::Unexpected(why) => Error::internal(format!(
            "{} answered in an unexpected way: {why}",
            endpoint.url
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        error::Result,
        ollama::{api::OllamaApi, endpoints::Backend, http::HttpClients, providers::LOCAL},
    };

    fn server(state: ServerState, reason: &str) -> ServerStatus {
        ServerStatus {
            state,
            version: None,
            pid: None,
            address: "127.0.0.1:11434".into(),
            ready_since_ms: None,
            restart_count: 0,
            last_error: None,
            binary: None,
            next_attempt_ms: None,
            reason: reason.into(),
        }
    }

    #[test]
    fn failures_in_a_reply_map_like_any_other_call() -> Result<()> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let address = OllamaAddress::parse("127.0.0.1:11434");
        let http = HttpClients::new()?;
        let local = Endpoint {
            name: LOCAL.into(),
            url: address.base_url(),
            backend: Backend::Ollama(OllamaApi::new(
                http.plain.clone(),
                &address.base_url(),
                None,
            )),
            local: true,
        };
        let running = server(ServerState::Running, "the server answers");
        let line = |message: &str| ApiError::Ollama {
            status: 200,
            message: message.into(),
        };

        // An error line keeps Ollama's words; a missing model is NOT_FOUND
        // whether Ollama says so before (404) or during (200) the reply.
        let died = api_error(
            &address,
            &running,
            &local,
            line("model runner has unexpectedly stopped"),
        );
        assert_eq!(died.kind(), ErrorKind::FailedPrecondition);
        assert_eq!(died.message(), "model runner has unexpectedly stopped");
        assert_eq!(died.reason(), Some(Reason::OllamaError));
        for missing in [
            "model 'x' not found",
            "model \"x\" not found, try pulling it first",
        ] {
            let err = api_error(&address, &running, &local, line(missing));
            assert_eq!(
                (err.kind(), err.message(), err.reason()),
                (ErrorKind::NotFound, missing, Some(Reason::ModelNotFound))
            );
        }

        // A broken connection is UNAVAILABLE naming the server's state.
        let broke = ApiError::Interrupted("connection reset".into());
        let err = api_error(&address, &running, &local, broke.clone());
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(
            err.message().contains("connection reset") && err.message().contains("RUNNING"),
            "{err}"
        );
        let crashed = server(
            ServerState::Crashed,
            "ollama exited with status 1 unexpectedly",
        );
        let err = api_error(&address, &crashed, &local, broke.clone());
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(
            err.message().contains("CRASHED") && err.message().contains("status 1"),
            "{err}"
        );
        let remote = Endpoint {
            name: "gpu-box".into(),
            url: "http://10.0.0.2:11434".into(),
            backend: Backend::Ollama(OllamaApi::new(
                http.plain.clone(),
                "http://10.0.0.2:11434",
                None,
            )),
            local: false,
        };
        let err = api_error(&address, &crashed, &remote, broke);
        assert_eq!(err.reason(), Some(Reason::ProviderDown));
        assert!(err.message().contains("gpu-box"), "{err}");
        Ok(())
    }
}
