//! The supervisor's pure side: the states a local server can be in, the
//! status record published on every change, what a change of state clears
//! in that record, and the restart schedule ([`BackoffPolicy`]). Nothing
//! here touches a process, a socket or a clock, so the schedule is tested
//! without waiting for it; the task that drives these lives in the parent
//! module.

use std::{path::PathBuf, time::Duration};

/// Supervision states (see `ServerState` in models.proto).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// No binary.
    NotInstalled,
    /// Not running.
    Stopped,
    /// Started, not answering yet.
    Starting,
    /// Started and answering.
    Running,
    /// Being stopped.
    Stopping,
    /// Exited or hung.
    Crashed,
    /// Waiting before the next attempt.
    Backoff,
    /// Started elsewhere; adopted.
    External,
}

impl ServerState {
    /// Upper-case name, as in the proto enum.
    pub fn name(self) -> &'static str {
        match self {
            Self::NotInstalled => "NOT_INSTALLED",
            Self::Stopped => "STOPPED",
            Self::Starting => "STARTING",
            Self::Running => "RUNNING",
            Self::Stopping => "STOPPING",
            Self::Crashed => "CRASHED",
            Self::Backoff => "BACKOFF",
            Self::External => "EXTERNAL",
        }
    }

    /// Whether requests can be sent to the server.
    pub fn is_up(self) -> bool {
        matches!(self, Self::Running | Self::External)
    }
}

/// What the supervisor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// State.
    pub state: ServerState,
    /// Version from /api/version.
    pub version: Option<String>,
    /// Pid of a managed server.
    pub pid: Option<u32>,
    /// host:port.
    pub address: String,
    /// When it became ready, ms since the epoch.
    pub ready_since_ms: Option<i64>,
    /// Automatic restarts so far.
    pub restart_count: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// Binary in use (or last found).
    pub binary: Option<PathBuf>,
    /// Next attempt in BACKOFF, ms since the epoch.
    pub next_attempt_ms: Option<i64>,
    /// Why the state last changed.
    pub reason: String,
}

impl ServerStatus {
    /// Enter `state` for `reason`, clearing what no longer holds in it: the
    /// next attempt outside BACKOFF, readiness and version once the server
    /// is neither up nor being stopped, the pid once no managed process is
    /// starting, running or stopping.
    pub(super) fn enter(&mut self, state: ServerState, reason: String) {
        self.state = state;
        self.reason = reason;
        if state != ServerState::Backoff {
            self.next_attempt_ms = None;
        }
        if !state.is_up() && state != ServerState::Stopping {
            self.ready_since_ms = None;
            self.version = None;
        }
        if !matches!(
            state,
            ServerState::Starting | ServerState::Running | ServerState::Stopping
        ) {
            self.pid = None;
        }
    }
}

/// The restart schedule: the first delay, doubling up to a cap, and back
/// to the first once a server has stayed healthy long enough, so a server
/// that crashes once a day is not made to wait a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// The delay after the first failure.
    pub initial: Duration,
    /// The most it grows to.
    pub max: Duration,
    /// Healthy this long before a crash: the next delay is `initial` again.
    pub healthy_reset: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
            healthy_reset: Duration::from_secs(60),
        }
    }
}

/// Where a [`BackoffPolicy`] stands: the delay before the next attempt.
/// Pure, so the schedule is tested without waiting for it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    policy: BackoffPolicy,
    next: Duration,
}

impl Backoff {
    pub(super) fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            next: policy.initial.min(policy.max),
        }
    }

    /// The delay to wait now; the next one is twice as long, up to the cap.
    pub(super) fn take(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.policy.max);
        delay
    }

    /// Start over (a start or restart asked for by a person).
    pub(super) fn reset(&mut self) {
        self.next = self.policy.initial.min(self.policy.max);
    }

    /// A managed server failed after answering for `healthy_for` (`None`:
    /// it never answered).
    pub(super) fn failed_after(&mut self, healthy_for: Option<Duration>) {
        if healthy_for.is_some_and(|healthy| healthy >= self.policy.healthy_reset) {
            self.reset();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(values: &[u64]) -> Vec<Duration> {
        values.iter().copied().map(Duration::from_secs).collect()
    }

    #[test]
    fn backoff_doubles_from_one_second_up_to_a_minute() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        let delays: Vec<Duration> = (0..9).map(|_| backoff.take()).collect();
        assert_eq!(delays, secs(&[1, 2, 4, 8, 16, 32, 60, 60, 60]));
    }

    #[test]
    fn backoff_starts_over_after_a_minute_healthy() {
        let mut backoff = Backoff::new(BackoffPolicy::default());
        for _ in 0..8 {
            backoff.take();
        }
        // Crashes during start-up or after a short run keep the cap.
        backoff.failed_after(None);
        assert_eq!(backoff.take(), Duration::from_secs(60));
        backoff.failed_after(Some(Duration::from_secs(59)));
        assert_eq!(backoff.take(), Duration::from_secs(60));
        // A minute healthy: the schedule starts over.
        backoff.failed_after(Some(Duration::from_secs(60)));
        let delays: Vec<Duration> = (0..3).map(|_| backoff.take()).collect();
        assert_eq!(delays, secs(&[1, 2, 4]));
        // So does a start asked for by a person.
        backoff.reset();
        assert_eq!(backoff.take(), Duration::from_secs(1));
    }

    #[test]
    fn backoff_follows_its_policy() {
        let policy = BackoffPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(250),
            healthy_reset: Duration::from_secs(5),
        };
        let mut backoff = Backoff::new(policy);
        let delays: Vec<Duration> = (0..4).map(|_| backoff.take()).collect();
        assert_eq!(
            delays,
            [100, 200, 250, 250].map(Duration::from_millis).to_vec()
        );
        backoff.failed_after(Some(Duration::from_secs(5)));
        assert_eq!(backoff.take(), Duration::from_millis(100));
        // A huge cap cannot overflow the doubling.
        let mut unbounded = Backoff::new(BackoffPolicy {
            max: Duration::MAX,
            ..policy
        });
        for _ in 0..200 {
            unbounded.take();
        }
        assert_eq!(unbounded.take(), Duration::MAX);
    }
}
