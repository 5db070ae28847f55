//! What the soak reads about the agent process while it runs: CPU ticks and
//! resident memory (through the harness's `measure`, as the idle benchmark
//! reads them) and open file descriptors from `/proc/PID/fd`, taken as one
//! sample, and growth between two samples.

use std::time::Instant;

use omnipanel_tests::measure::{cpu_ticks, rss_mb};
use serde_json::{Value, json};

/// The agent at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the scenario's clock started.
    pub at_s: f64,
    /// utime + stime so far, in clock ticks (1/100 s on Linux).
    pub ticks: u64,
    pub rss_mb: f64,
    pub fds: usize,
}

impl Sample {
    pub fn take(pid: u32, since: Instant) -> Self {
        Self {
            at_s: since.elapsed().as_secs_f64(),
            ticks: cpu_ticks(pid).unwrap_or(0),
            rss_mb: rss_mb(pid),
            fds: open_fds(pid),
        }
    }

    pub fn to_json(self) -> Value {
        json!({
            "at_s": (self.at_s * 10.0).round() / 10.0,
            "cpu_ticks": self.ticks,
            "rss_mb": (self.rss_mb * 10.0).round() / 10.0,
            "fds": self.fds,
        })
    }
}

/// Open file descriptors of a process (0 when it cannot be read).
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Growth of resident memory from `from` to `to`, in percent of `from`.
pub fn rss_growth_percent(from: &Sample, to: &Sample) -> f64 {
    if from.rss_mb <= 0.0 {
        return f64::INFINITY;
    }
    (to.rss_mb - from.rss_mb) / from.rss_mb * 100.0
}

/// CPU used between two samples, in percent of one core.
pub fn cpu_percent(from: &Sample, to: &Sample) -> f64 {
    let seconds = to.at_s - from.at_s;
    if seconds <= 0.0 {
        return 0.0;
    }
    // Clock ticks are 1/100 s on every Linux this runs on (USER_HZ).
    to.ticks.saturating_sub(from.ticks) as f64 / 100.0 / seconds * 100.0
}

pub fn all_to_json(samples: &[Sample]) -> Value {
    Value::Array(samples.iter().map(|s| s.to_json()).collect())
}
