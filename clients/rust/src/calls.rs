//! The typed call layer: a call made through one of [`Client`]'s service
//! stubs comes back as its generated message, or as a [`ClientError`]
//! already classified, and a server stream as a [`MessageStream`] of
//! generated messages. Clients (the CLI) use these and never name tonic's
//! `Response`, `Status` or `Streaming`.

use std::future::Future;

use crate::{Client, ClientError};

/// What a generated stub's method returns when awaited.
pub type Answer<T> = Result<tonic::Response<T>, tonic::Status>;

impl Client {
    /// Await a unary call made through one of this client's stubs:
    /// `client.call(client.models().list_models(request)).await?`.
    pub async fn call<T>(&self, call: impl Future<Output = Answer<T>>) -> Result<T, ClientError> {
        self.answer(call.await)
    }

    /// Await a server-streaming call: the stream of its messages.
    pub async fn call_stream<M>(
        &self,
        call: impl Future<Output = Answer<tonic::Streaming<M>>>,
    ) -> Result<MessageStream<M>, ClientError> {
        self.stream(call.await)
    }

    /// A unary call's message, or its classified error, once awaited
    /// elsewhere (raced against Ctrl-C in a `select!`, say).
    pub fn answer<T>(&self, answer: Answer<T>) -> Result<T, ClientError> {
        answer
            .map(tonic::Response::into_inner)
            .map_err(|status| self.error(status))
    }

    /// A server stream, or its classified error, once awaited elsewhere.
    pub fn stream<M>(
        &self,
        answer: Answer<tonic::Streaming<M>>,
    ) -> Result<MessageStream<M>, ClientError> {
        self.answer(answer).map(|inner| MessageStream {
            inner,
            target: self.target().to_string(),
        })
    }
}

/// The messages of a server-streaming call, with failures classified like
/// unary calls'. Dropping it cancels the call.
#[derive(Debug)]
pub struct MessageStream<M> {
    inner: tonic::Streaming<M>,
    target: String,
}

impl<M> MessageStream<M> {
    /// The next message; `None` when the agent ended the stream.
    /// Cancel-safe, so it may be raced in a `select!`.
    pub async fn message(&mut self) -> Result<Option<M>, ClientError> {
        self.inner
            .message()
            .await
            .map_err(|status| ClientError::from_status(status, &self.target))
    }
}
