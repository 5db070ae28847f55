//! Counters behind the test-only `GET /__fake/stats` endpoint (no real
//! server has it): requests per path, the last API request's method, path
//! and headers (so a test can check that the agent forwarded the key and
//! a provider's extra headers), and how streams ended (so a test can see
//! that a cancelled chat really stopped on the server side).

use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

use axum::http::HeaderMap;
use serde::Serialize;

/// How a streamed reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// Broke off with an error frame (the mid-stream error switch).
    Failed,
    /// The client went away before the end.
    Cancelled,
}

/// The last API request, as `/__fake/stats` shows it.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LastRequest {
    pub method: String,
    pub path: String,
    /// Lower-case names; repeated headers joined with `, `.
    pub headers: BTreeMap<String, String>,
}

/// The JSON body of `/__fake/stats`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Snapshot {
    /// Requests per URL path (all methods, `/__fake/*` not counted).
    pub requests: BTreeMap<String, u64>,
    pub last_request: Option<LastRequest>,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_failed: u64,
    pub streams_cancelled: u64,
}

/// All counters of one server. One mutex: nothing here is hot.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Snapshot>,
}

impl Stats {
    fn with<R>(&self, f: impl FnOnce(&mut Snapshot) -> R) -> R {
        // A panicking test thread must not take the counters with it.
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn count_request(&self, method: &str, path: &str, headers: &HeaderMap) {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            seen.entry(name.as_str().to_string())
                .and_modify(|v| {
                    v.push_str(", ");
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        self.with(|s| {
            *s.requests.entry(path.to_string()).or_default() += 1;
            s.last_request = Some(LastRequest {
                method: method.to_string(),
                path: path.to_string(),
                headers: seen,
            });
        });
    }

    pub fn stream_started(&self) {
        self.with(|s| s.streams_started += 1);
    }

    pub fn stream_ended(&self, outcome: Outcome) {
        self.with(|s| match outcome {
            Outcome::Completed => s.streams_completed += 1,
            Outcome::Failed => s.streams_failed += 1,
            Outcome::Cancelled => s.streams_cancelled += 1,
        });
    }

    pub fn snapshot(&self) -> Snapshot {
        self.with(|s| s.clone())
    }
}
