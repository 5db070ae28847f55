//! One gateway request's record: begun when it arrives, finished when its
//! answer has been sent (a stream's last piece) or dropped (a client that
//! went away), and then written once to the activity log and counted in
//! the metrics. It holds the caller, the method and path, the model the
//! request resolved to, tokens in and out, the duration and the status;
//! never the prompt or the reply, which it is never given.

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::Ordering},
    time::Instant,
};

use axum::http::StatusCode;
use omnipanel_core::{
    audit::{Audit, Record},
    store::now_ms,
};

use super::{
    auth::Client,
    metrics::{Metrics, Observation},
    reply::Failure,
};

/// A request being served.
#[derive(Debug)]
pub struct Activity {
    audit: Arc<Audit>,
    metrics: Arc<Metrics>,
    endpoint: String,
    time_ms: i64,
    started: Instant,
    client_id: String,
    client_name: String,
    peer: SocketAddr,
    model: String,
    tokens_in: u64,
    tokens_out: u64,
    finished: bool,
}

impl Activity {
    /// Begin the record of `endpoint` ("POST /api/chat") from `peer`.
    pub fn begin(
        audit: Arc<Audit>,
        metrics: Arc<Metrics>,
        endpoint: String,
        peer: SocketAddr,
    ) -> Self {
        metrics.in_flight.fetch_add(1, Ordering::AcqRel);
        Self {
            audit,
            metrics,
            endpoint,
            time_ms: now_ms(),
            started: Instant::now(),
            client_id: "unidentified".to_owned(),
            client_name: String::new(),
            peer,
            model: String::new(),
            tokens_in: 0,
            tokens_out: 0,
            finished: false,
        }
    }

    /// Who the caller turned out to be.
    pub fn caller(&mut self, client: &Client) {
        self.client_id = client.id().to_owned();
        self.client_name = client.name().to_owned();
    }

    /// The model the request resolved to (its public name).
    pub fn model(&mut self, model: &str) {
        model.clone_into(&mut self.model);
    }

    /// Tokens read and generated, as the provider counted them.
    pub fn tokens(&mut self, tokens_in: u64, tokens_out: u64) {
        self.tokens_in = tokens_in;
        self.tokens_out = tokens_out;
    }

    /// Finish with success.
    pub fn ok(mut self) {
        self.finish(StatusCode::OK, "ok");
    }

    /// Finish with a failure.
    pub fn failed(mut self, failure: &Failure) {
        self.finish(failure.status, &failure.outcome);
    }

    /// Finish a stream that broke off after its status was sent.
    pub fn broke_off(mut self, failure: &Failure) {
        self.finish(StatusCode::OK, &failure.outcome);
    }

    fn finish(&mut self, status: StatusCode, outcome: &str) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.metrics.in_flight.fetch_sub(1, Ordering::AcqRel);
        let duration = self.started.elapsed();
        self.metrics.observe(Observation {
            endpoint: &self.endpoint,
            model: &self.model,
            status: status.as_u16(),
            duration,
            tokens_in: self.tokens_in,
            tokens_out: self.tokens_out,
        });
        let mut target = Vec::new();
        if !self.model.is_empty() {
            target.push(("model".to_owned(), self.model.clone()));
        }
        if self.tokens_in > 0 || self.tokens_out > 0 {
            target.push(("tokens_in".to_owned(), self.tokens_in.to_string()));
            target.push(("tokens_out".to_owned(), self.tokens_out.to_string()));
        }
        target.push(("ms".to_owned(), duration.as_millis().to_string()));
        target.push(("status".to_owned(), status.as_u16().to_string()));
        self.audit.record(Record {
            time_ms: self.time_ms,
            client_id: std::mem::take(&mut self.client_id),
            client_name: std::mem::take(&mut self.client_name),
            peer_pid: None,
            peer_address: self.peer.to_string(),
            method: format!("gateway {}", self.endpoint),
            target,
            project: String::new(),
            outcome: outcome.to_owned(),
            aggregate: false,
        });
    }
}

impl Drop for Activity {
    fn drop(&mut self) {
        // The client went away before the answer was complete (a stream
        // it stopped reading, a connection it closed).
        self.finish(
            StatusCode::from_u16(499).unwrap_or(StatusCode::OK),
            "CANCELLED",
        );
    }
}
