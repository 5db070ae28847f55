//! Provider health: each stored provider's state (UNKNOWN until something
//! is known, then UP or DOWN with the last error and when it was
//! established), updated by every request's outcome and by probes. A
//! change is published as [`OllamaEvent::ProviderStateChanged`] (topic
//! "models"). The local server's health is its supervisor's and is not
//! kept here.
//!
//! Nothing here runs on its own: probes are made by the facade when
//! ListProviders is asked (see `endpoints`), and every request's outcome
//! is recorded, so an idle agent makes no request and runs no timer. (The
//! event bus does not tell a domain whether anyone listens, so there is
//! no periodic probe "while someone watches".)

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use super::{api::ApiError, events::OllamaEvent, providers::ProviderKind};
use crate::{events::Publisher, openai::client::OpenAiError, store::now_ms};

/// How long a DOWN state makes requests fail fast without trying.
pub const FAIL_FAST: Duration = Duration::from_secs(10);

/// A provider's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProviderState {
    /// Not known yet.
    #[default]
    Unknown,
    /// It answered the last probe or request.
    Up,
    /// It failed the last probe or request.
    Down,
}

/// What is known of one provider.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthRecord {
    /// State.
    pub state: ProviderState,
    /// Why it is DOWN.
    pub last_error: String,
    /// When the state was established, ms since the epoch (0: never).
    pub checked_ms: i64,
    /// The same, for ages (the wall clock may step).
    pub checked_at: Option<Instant>,
}

impl HealthRecord {
    /// Whether the state is older than `age` (or was never established).
    pub fn older_than(&self, age: Duration) -> bool {
        self.checked_at.is_none_or(|at| at.elapsed() >= age)
    }
}

/// What an event needs to describe the provider besides its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Name.
    pub name: String,
    /// URL.
    pub url: String,
    /// Kind.
    pub kind: ProviderKind,
}

/// The health of every stored provider.
#[derive(Debug, Clone)]
pub struct Health {
    records: Arc<Mutex<HashMap<String, HealthRecord>>>,
    bus: Publisher<OllamaEvent>,
}

impl Health {
    /// Empty: every provider UNKNOWN.
    pub fn new(bus: Publisher<OllamaEvent>) -> Self {
        Self {
            records: Arc::new(Mutex::new(HashMap::new())),
            bus,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HealthRecord>> {
        crate::sync::lock(&self.records)
    }

    /// What is known of `name`.
    pub fn get(&self, name: &str) -> HealthRecord {
        self.lock().get(name).cloned().unwrap_or_default()
    }

    /// Forget `name` (it was removed).
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Why a request to `name` should fail at once: it is DOWN and that
    /// was established less than [`FAIL_FAST`] ago.
    pub fn down_recently(&self, name: &str) -> Option<String> {
        let record = self.get(name);
        (record.state == ProviderState::Down && !record.older_than(FAIL_FAST))
            .then_some(record.last_error)
    }

    /// Record a state; publishes the change when it is one.
    pub fn set(&self, subject: &Subject, state: ProviderState, error: String) {
        let record = HealthRecord {
            state,
            last_error: if state == ProviderState::Down {
                error
            } else {
                String::new()
            },
            checked_ms: now_ms(),
            checked_at: Some(Instant::now()),
        };
        let previous = self
            .lock()
            .insert(subject.name.clone(), record.clone())
            .unwrap_or_default()
            .state;
        if previous != state {
            tracing::info!(provider = %subject.name, state = ?state, "provider state changed");
            self.bus.publish(OllamaEvent::ProviderStateChanged {
                subject: subject.clone(),
                health: record,
                previous,
            });
        }
    }

    /// A request to the provider succeeded.
    pub(super) fn succeeded(&self, subject: &Subject) {
        self.set(subject, ProviderState::Up, String::new());
    }

    /// A request to an Ollama provider failed: DOWN when nothing
    /// answered, UP when the server answered with an error.
    pub(super) fn failed_ollama(&self, subject: &Subject, err: &ApiError) {
        match err {
            ApiError::Unreachable(why) => self.set(subject, ProviderState::Down, why.clone()),
            ApiError::Ollama { .. } => self.succeeded(subject),
            ApiError::Unexpected(_) | ApiError::Interrupted(_) => {}
        }
    }

    /// A request to an OpenAI provider failed: DOWN when nothing
    /// answered (or a 5xx), UP when it answered a refusal.
    pub(super) fn failed_openai(&self, subject: &Subject, err: &OpenAiError) {
        match err {
            OpenAiError::Dns(_) | OpenAiError::Tls(_) | OpenAiError::Unreachable(_) => {
                self.set(subject, ProviderState::Down, err.to_string());
            }
            OpenAiError::Unauthorized(_)
            | OpenAiError::RateLimited { .. }
            | OpenAiError::Rejected { .. } => self.succeeded(subject),
            OpenAiError::ServerError { .. }
            | OpenAiError::InStream { .. }
            | OpenAiError::WrongApi(_)
            | OpenAiError::Interrupted(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Recorder;

    #[test]
    fn a_change_is_published_once_and_down_fails_fast() {
        let bus = Arc::new(Recorder::<OllamaEvent>::default());
        let health = Health::new(bus.clone());
        let subject = Subject {
            name: "lm".into(),
            url: "http://x/v1".into(),
            kind: ProviderKind::OpenAi,
        };
        assert_eq!(health.get("lm").state, ProviderState::Unknown);
        health.failed_openai(&subject, &OpenAiError::Unreachable("refused".into()));
        health.failed_openai(&subject, &OpenAiError::Unreachable("refused".into()));
        assert!(
            health
                .down_recently("lm")
                .is_some_and(|why| why.contains("refused"))
        );
        health.succeeded(&subject);
        assert_eq!(health.down_recently("lm"), None);
        let seen: Vec<_> = bus
            .events()
            .into_iter()
            .filter_map(|event| match event {
                OllamaEvent::ProviderStateChanged {
                    health, previous, ..
                } => Some((previous, health.state)),
                _ => None,
            })
            .collect();
        assert_eq!(
            seen,
            [
                (ProviderState::Unknown, ProviderState::Down),
                (ProviderState::Down, ProviderState::Up)
            ]
        );
    }
}
