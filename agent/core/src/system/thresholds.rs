//! Alert thresholds and the logic that raises and clears alerts, as pure
//! functions of the readings and a clock passed in (tested without a
//! machine or a timer). A threshold watches one metric; per-disk and
//! per-GPU metrics are watched for each subject separately. An alert is
//! raised once the value has stayed past the limit for the hold time, and
//! clears only when it is back past the clear value (hysteresis), so a
//! value hovering at the limit does not flap.

use std::{collections::BTreeMap, fmt, time::Duration};

use crate::{
    error::{Error, Result},
    system::metrics::{GpuReading, Sample},
};

/// A metric thresholds can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// All cores, percent.
    CpuUsage,
    /// RAM in use, percent.
    MemoryUsed,
    /// Swap in use, percent.
    SwapUsed,
    /// Free space per file system, percent.
    DiskFree,
    /// GPU memory in use per GPU, percent.
    GpuVramUsed,
    /// GPU utilisation per GPU, percent.
    GpuUtilization,
    /// GPU temperature per GPU, °C.
    GpuTemperature,
    /// 1-minute load average.
    LoadOne,
    /// Resident memory of the Ollama server and its runners, bytes.
    OllamaRss,
    /// CPU of the Ollama server and its runners, percent of one core.
    OllamaCpu,
}

/// How a metric's default clear value is derived from the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hysteresis {
    /// This many units.
    Absolute(f64),
    /// This fraction of the limit.
    Relative(f64),
}

/// Documentation and rules of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSpec {
    /// The metric.
    pub metric: Metric,
    /// Name used in thresholds and alerts.
    pub name: &'static str,
    /// What it measures.
    pub description: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// Measured per disk or per GPU.
    pub per_subject: bool,
    /// Allowed limits.
    min: f64,
    max: f64,
    hysteresis: Hysteresis,
}

const PERCENT: Hysteresis = Hysteresis::Absolute(5.0);

/// Every metric, in the order GetThresholds lists them.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        metric: Metric::CpuUsage,
        name: "cpu.usage_percent",
        description: "CPU use of all cores together",
        unit: "%",
        per_subject: false,
        min: 0.0,
        max: 100.0,
        hysteresis: PERCENT,
    },
    MetricSpec {
        metric: Metric::MemoryUsed,
        name: "memory.used_percent",
        description: "RAM in use (not available to new work)",
        unit: "%",
        per_subject: false,
        min: 0.0,
        max: 100.0,
        hysteresis: PERCENT,
    },
    MetricSpec {
        metric: Metric::SwapUsed,
        name: "swap.used_percent",
        description: "Swap in use (never raised on machines without swap)",
        unit: "%",
        per_subject: false,
        min: 0.0,
        max: 100.0,
        hysteresis: PERCENT,
    },
    MetricSpec {
        metric: Metric::DiskFree,
        name: "disk.free_percent",
        description: "Free space of each file system (read-only and removable ones are not watched)",
        unit: "%",
        per_subject: true,
        min: 0.0,
        max: 100.0,
        hysteresis: PERCENT,
    },
    MetricSpec {
        metric: Metric::GpuVramUsed,
        name: "gpu.vram_used_percent",
        description: "Memory in use on each NVIDIA GPU",
        unit: "%",
        per_subject: true,
        min: 0.0,
        max: 100.0,
        hysteresis: PERCENT,
    },
    MetricSpec {
        metric: Metric::GpuUtilization,
        name: "gpu.utilization_percent",
        description: "Busy time of each NVIDIA GPU",
        unit: "%",
        per_subject: true,
        min: 0.0,
        max: 100.0,
        hysteresis: PERCENT,
    },
    MetricSpec {
        metric: Metric::GpuTemperature,
        name: "gpu.temperature_celsius",
        description: "Core temperature of each NVIDIA GPU",
        unit: "°C",
        per_subject: true,
        min: 0.0,
        max: 150.0,
        hysteresis: Hysteresis::Absolute(5.0),
    },
    MetricSpec {
        metric: Metric::LoadOne,
        name: "load.one",
        description: "Load average over the last minute",
        unit: "",
        per_subject: false,
        min: 0.0,
        max: 1.0e6,
        hysteresis: Hysteresis::Relative(0.1),
    },
    MetricSpec {
        metric: Metric::OllamaRss,
        name: "ollama.rss_bytes",
        description: "Resident memory of the Ollama server and its model runners",
        unit: "bytes",
        per_subject: false,
        min: 0.0,
        max: 1.0e18,
        hysteresis: Hysteresis::Relative(0.05),
    },
    MetricSpec {
        metric: Metric::OllamaCpu,
        name: "ollama.cpu_percent",
        description: "CPU use of the Ollama server and its model runners, percent of one core",
        unit: "%",
        per_subject: false,
        min: 0.0,
        max: 1.0e6,
        hysteresis: Hysteresis::Relative(0.1),
    },
];

impl Metric {
    /// Its documentation.
    pub fn spec(self) -> &'static MetricSpec {
        METRICS
            .iter()
            .find(|spec| spec.metric == self)
            .unwrap_or(&METRICS[0])
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The metric called `name`.
    pub fn parse(name: &str) -> Option<Self> {
        METRICS
            .iter()
            .find(|spec| spec.name == name)
            .map(|spec| spec.metric)
    }

    /// The values of this metric in `sample`, one per subject ("" for the
    /// machine). `None` means the sample cannot tell (a GPU read failed):
    /// alerts on it then keep their state rather than clear.
    pub fn readings(self, sample: &Sample) -> Option<Vec<(String, f64)>> {
        let machine =
            |value: Option<f64>| Some(value.map(|v| (String::new(), v)).into_iter().collect());
        let per_gpu =
            |value: fn(&crate::system::metrics::GpuStats) -> Option<f64>| match &sample.gpu {
                GpuReading::Present { gpus, .. } => Some(
                    gpus.iter()
                        .filter_map(|gpu| value(gpu).map(|v| (format!("GPU {}", gpu.index), v)))
                        .collect(),
                ),
                GpuReading::Absent(_) => Some(Vec::new()),
                GpuReading::NotRead | GpuReading::Error(_) => None,
            };
        match self {
            Self::CpuUsage => machine(Some(sample.cpu.usage_percent)),
            Self::MemoryUsed => machine(sample.memory.used_percent()),
            Self::SwapUsed => machine(sample.memory.swap_percent()),
            Self::LoadOne => machine(Some(sample.load.one)),
            Self::OllamaRss => {
                // Precision loss above 2^53 bytes is irrelevant here.
                #[allow(clippy::cast_precision_loss)]
                machine(sample.ollama.as_ref().map(|o| o.rss as f64))
            }
            Self::OllamaCpu => machine(sample.ollama.as_ref().map(|o| o.cpu_percent)),
            Self::DiskFree => Some(
                sample
                    .disks
                    .iter()
                    .filter(|disk| {
                        watchable_disk(&disk.file_system, disk.read_only, disk.removable)
                    })
                    .filter_map(|disk| disk.free_percent().map(|v| (disk.mount_point.clone(), v)))
                    .collect(),
            ),
            Self::GpuVramUsed => per_gpu(|gpu| gpu.memory_used_percent()),
            Self::GpuUtilization => per_gpu(|gpu| gpu.utilization_percent),
            Self::GpuTemperature => per_gpu(|gpu| gpu.temperature_celsius),
        }
    }

    /// `value` written for people in this metric's unit.
    pub fn format(self, value: f64) -> String {
        match self.spec().unit {
            "bytes" => format!("{:.1} GB", value / 1e9),
            "" => format!("{value:.2}"),
            unit => format!("{value:.1} {unit}"),
        }
    }
}

/// Whether a file system's free space is worth an alert: read-only ones
/// (snaps, images) are always full, and removable media are the user's
/// business.
fn watchable_disk(file_system: &str, read_only: bool, removable: bool) -> bool {
    !read_only
        && !removable
        && !matches!(
            file_system,
            "squashfs" | "iso9660" | "udf" | "erofs" | "cramfs"
        )
}

/// Which side of the limit is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Comparison {
    /// Above the limit.
    Above,
    /// Below the limit.
    Below,
}

impl Comparison {
    /// "above" or "below".
    pub fn name(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
        }
    }

    /// Parse "above"/"below" (as stored in state.db).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "above" => Some(Self::Above),
            "below" => Some(Self::Below),
            _ => None,
        }
    }

    fn past(self, value: f64, limit: f64) -> bool {
        match self {
            Self::Above => value > limit,
            Self::Below => value < limit,
        }
    }

    fn back(self, value: f64, clear: f64) -> bool {
        match self {
            Self::Above => value <= clear,
            Self::Below => value >= clear,
        }
    }

    fn worse(self, a: f64, b: f64) -> f64 {
        match self {
            Self::Above => a.max(b),
            Self::Below => a.min(b),
        }
    }
}

/// A validated threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// What it watches.
    pub metric: Metric,
    /// Which side is bad.
    pub comparison: Comparison,
    /// The limit.
    pub value: f64,
    /// How long the value must stay past the limit.
    pub hold: Duration,
    /// Where a raised alert clears.
    pub clear: f64,
}

/// A threshold as a client sends it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdInput {
    /// Metric name.
    pub metric: String,
    /// Which side is bad; `None` when the client did not say.
    pub comparison: Option<Comparison>,
    /// The limit.
    pub value: f64,
    /// Hold time in ms (signed so a negative one can be refused by name).
    pub hold_ms: i64,
    /// Clear value; defaults from the metric's hysteresis.
    pub clear: Option<f64>,
}

/// Most thresholds one set may hold.
pub const MAX_THRESHOLDS: usize = 64;

/// Longest hold time accepted.
pub const MAX_HOLD: Duration = Duration::from_secs(24 * 3600);

/// The built-in thresholds: memory above 90 % for 30 s, disk free below
/// 5 %, VRAM above 95 % for 30 s, CPU above 95 % for 2 minutes.
pub fn defaults() -> Vec<Threshold> {
    let make = |metric: Metric, comparison, value, hold_secs| Threshold {
        metric,
        comparison,
        value,
        hold: Duration::from_secs(hold_secs),
        clear: default_clear(metric.spec(), comparison, value),
    };
    vec![
        make(Metric::MemoryUsed, Comparison::Above, 90.0, 30),
        make(Metric::DiskFree, Comparison::Below, 5.0, 0),
        make(Metric::GpuVramUsed, Comparison::Above, 95.0, 30),
        make(Metric::CpuUsage, Comparison::Above, 95.0, 120),
    ]
}

fn default_clear(spec: &MetricSpec, comparison: Comparison, value: f64) -> f64 {
    let band = match spec.hysteresis {
        Hysteresis::Absolute(units) => units,
        Hysteresis::Relative(fraction) => value.abs() * fraction,
    };
    let clear = match comparison {
        Comparison::Above => value - band,
        Comparison::Below => value + band,
    };
    clear.clamp(spec.min, spec.max)
}

/// Validate a whole set. Errors name the field, e.g.
/// `thresholds[2].metric`.
pub fn validate(inputs: &[ThresholdInput]) -> Result<Vec<Threshold>> {
    if inputs.len() > MAX_THRESHOLDS {
        return Err(Error::invalid_argument(
            "thresholds",
            format!(
                "at most {MAX_THRESHOLDS} thresholds, {} were given",
                inputs.len()
            ),
        ));
    }
    let mut out: Vec<Threshold> = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let field = |name: &str| format!("thresholds[{index}].{name}");
        let Some(metric) = Metric::parse(input.metric.trim()) else {
            let known: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
            return Err(Error::invalid_argument(
                field("metric"),
                format!(
                    "unknown metric {:?}; known metrics: {}",
                    input.metric,
                    known.join(", ")
                ),
            ));
        };
        let spec = metric.spec();
        let Some(comparison) = input.comparison else {
            return Err(Error::invalid_argument(
                field("comparison"),
                "choose COMPARISON_ABOVE or COMPARISON_BELOW",
            ));
        };
        if !input.value.is_finite() {
            return Err(Error::invalid_argument(
                field("value"),
                "must be a finite number",
            ));
        }
        if input.value < spec.min || input.value > spec.max {
            return Err(Error::invalid_argument(
                field("value"),
                format!(
                    "{} is outside {}..={} for {}",
                    input.value, spec.min, spec.max, spec.name
                ),
            ));
        }
        if input.hold_ms < 0 {
            return Err(Error::invalid_argument(
                field("hold_ms"),
                format!("must not be negative ({} was given)", input.hold_ms),
            ));
        }
        let hold = Duration::from_millis(input.hold_ms.unsigned_abs());
        if hold > MAX_HOLD {
            return Err(Error::invalid_argument(
                field("hold_ms"),
                "must be at most 24 hours",
            ));
        }
        let clear = match input.clear {
            None => default_clear(spec, comparison, input.value),
            Some(clear) if !clear.is_finite() => {
                return Err(Error::invalid_argument(
                    field("clear_value"),
                    "must be a finite number",
                ));
            }
            Some(clear) => {
                let wrong_side = match comparison {
                    Comparison::Above => clear > input.value,
                    Comparison::Below => clear < input.value,
                };
                if wrong_side {
                    return Err(Error::invalid_argument(
                        field("clear_value"),
                        format!(
                            "must be on the good side of the limit: at most {} for an \"above\" threshold, at least it for a \"below\" one",
                            input.value
                        ),
                    ));
                }
                clear
            }
        };
        if out
            .iter()
            .any(|t| t.metric == metric && t.comparison == comparison)
        {
            return Err(Error::invalid_argument(
                field("metric"),
                format!(
                    "a second {} threshold {}; there can be one per metric and comparison",
                    spec.name,
                    comparison.name()
                ),
            ));
        }
        out.push(Threshold {
            metric,
            comparison,
            value: input.value,
            hold,
            clear,
        });
    }
    Ok(out)
}

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AlertKey {
    /// The metric.
    pub metric: Metric,
    /// Which side was bad.
    pub comparison: Comparison,
    /// Mount point, "GPU n", or "" for the machine.
    pub subject: String,
}

/// How an alert ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Cleared {
    /// When, ms since the Unix epoch.
    pub at_ms: i64,
    /// The value then (the last value seen when the subject went away).
    pub value: f64,
    /// Why.
    pub reason: String,
}

/// One episode of a threshold crossed.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Row id in state.db; 0 until stored.
    pub id: i64,
    /// What it is about.
    pub key: AlertKey,
    /// The limit when raised.
    pub threshold_value: f64,
    /// The clear value when raised.
    pub clear_value: f64,
    /// The hold time.
    pub hold: Duration,
    /// The value that raised it.
    pub value: f64,
    /// The worst value seen while active.
    pub peak: f64,
    /// When raised, ms since the Unix epoch.
    pub raised_ms: i64,
    /// Set once it cleared.
    pub cleared: Option<Cleared>,
}

impl Alert {
    /// One sentence for people.
    pub fn message(&self) -> String {
        let metric = self.key.metric;
        let subject = if self.key.subject.is_empty() {
            String::new()
        } else {
            format!(" on {}", self.key.subject)
        };
        let held = if self.hold.is_zero() {
            String::new()
        } else {
            format!(" for {}", humantime::format_duration(self.hold))
        };
        format!(
            "{}{subject} is {}, {} {}{held}",
            metric.name(),
            metric.format(self.value),
            self.key.comparison.name(),
            metric.format(self.threshold_value),
        )
    }
}

/// A change the engine decided on.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// A new alert (id 0: the caller stores it and calls
    /// [`Engine::assign_id`]).
    Raised(Alert),
    /// An alert ended.
    Cleared(Alert),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Pending { since_ms: i64 },
    Raised { alert: Alert, last_value: f64 },
}

/// The alert state machine for every (threshold, subject).
#[derive(Debug, Clone)]
pub struct Engine {
    states: BTreeMap<AlertKey, State>,
    last_observed_ms: Option<i64>,
    max_gap_ms: i64,
}

/// Where a reading came from, for [`Engine::observe_readings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Monotonic ms (hold times are measured on it).
    pub mono_ms: i64,
    /// Wall-clock ms since the Unix epoch (stored in alerts).
    pub wall_ms: i64,
}

impl Engine {
    /// An engine with no alerts. Observations further apart than `max_gap`
    /// (the agent was not watching: alerts were off, the machine slept)
    /// restart pending hold times instead of counting the gap as held.
    pub fn new(max_gap: Duration) -> Self {
        Self {
            states: BTreeMap::new(),
            last_observed_ms: None,
            max_gap_ms: i64::try_from(max_gap.as_millis()).unwrap_or(i64::MAX),
        }
    }

    /// Evaluate a sample.
    pub fn observe(&mut self, thresholds: &[Threshold], sample: &Sample) -> Vec<Transition> {
        self.observe_readings(
            thresholds,
            |metric| metric.readings(sample),
            Clock {
                mono_ms: sample.mono_ms,
                wall_ms: sample.time_ms,
            },
        )
    }

    /// Evaluate readings given per metric (`None`: unknown in this reading).
    pub fn observe_readings(
        &mut self,
        thresholds: &[Threshold],
        readings: impl Fn(Metric) -> Option<Vec<(String, f64)>>,
        clock: Clock,
    ) -> Vec<Transition> {
        let gap = self
            .last_observed_ms
            .is_some_and(|last| clock.mono_ms.saturating_sub(last) > self.max_gap_ms);
        self.last_observed_ms = Some(clock.mono_ms);
        let mut out = self.retain(thresholds, clock.wall_ms, "threshold removed");
        for threshold in thresholds {
            let Some(values) = readings(threshold.metric) else {
                continue;
            };
            // Subjects that went away (a disk unmounted, a GPU gone).
            let gone: Vec<AlertKey> = self
                .states
                .keys()
                .filter(|key| {
                    key.metric == threshold.metric && key.comparison == threshold.comparison
                })
                .filter(|key| !values.iter().any(|(subject, _)| *subject == key.subject))
                .cloned()
                .collect();
            for key in gone {
                if let Some(State::Raised { alert, last_value }) = self.states.remove(&key) {
                    out.push(Transition::Cleared(close(
                        alert,
                        clock.wall_ms,
                        last_value,
                        "no longer measured",
                    )));
                }
            }
            for (subject, value) in values {
                let key = AlertKey {
                    metric: threshold.metric,
                    comparison: threshold.comparison,
                    subject,
                };
                if let Some(transition) = self.step(threshold, key, value, clock, gap) {
                    out.push(transition);
                }
            }
        }
        out
    }

    fn step(
        &mut self,
        threshold: &Threshold,
        key: AlertKey,
        value: f64,
        clock: Clock,
        gap: bool,
    ) -> Option<Transition> {
        let comparison = threshold.comparison;
        let hold_ms = i64::try_from(threshold.hold.as_millis()).unwrap_or(i64::MAX);
        let past = comparison.past(value, threshold.value);
        match self.states.remove(&key) {
            None | Some(State::Pending { .. }) if !past => None,
            None => self.start_or_raise(threshold, key, value, clock, clock.mono_ms, hold_ms),
            Some(State::Pending { since_ms }) => {
                let since_ms = if gap { clock.mono_ms } else { since_ms };
                self.start_or_raise(threshold, key, value, clock, since_ms, hold_ms)
            }
            Some(State::Raised { mut alert, .. }) => {
                alert.peak = comparison.worse(alert.peak, value);
                if comparison.back(value, threshold.clear) {
                    Some(Transition::Cleared(close(
                        alert,
                        clock.wall_ms,
                        value,
                        "back to normal",
                    )))
                } else {
                    self.states.insert(
                        key,
                        State::Raised {
                            alert,
                            last_value: value,
                        },
                    );
                    None
                }
            }
        }
    }

    fn start_or_raise(
        &mut self,
        threshold: &Threshold,
        key: AlertKey,
        value: f64,
        clock: Clock,
        since_ms: i64,
        hold_ms: i64,
    ) -> Option<Transition> {
        if clock.mono_ms.saturating_sub(since_ms) < hold_ms {
            self.states.insert(key, State::Pending { since_ms });
            return None;
        }
        let alert = Alert {
            id: 0,
            key: key.clone(),
            threshold_value: threshold.value,
            clear_value: threshold.clear,
            hold: threshold.hold,
            value,
            peak: value,
            raised_ms: clock.wall_ms,
            cleared: None,
        };
        self.states.insert(
            key,
            State::Raised {
                alert: alert.clone(),
                last_value: value,
            },
        );
        Some(Transition::Raised(alert))
    }

    /// Drop state of thresholds no longer in `thresholds`; their raised
    /// alerts clear with `reason`.
    pub fn retain(
        &mut self,
        thresholds: &[Threshold],
        wall_ms: i64,
        reason: &str,
    ) -> Vec<Transition> {
        let kept = |key: &AlertKey| {
            thresholds
                .iter()
                .any(|t| t.metric == key.metric && t.comparison == key.comparison)
        };
        let removed: Vec<AlertKey> = self.states.keys().filter(|k| !kept(k)).cloned().collect();
        let mut out = Vec::new();
        for key in removed {
            if let Some(State::Raised { alert, last_value }) = self.states.remove(&key) {
                out.push(Transition::Cleared(close(
                    alert, wall_ms, last_value, reason,
                )));
            }
        }
        out
    }

    /// Clear every alert (alerts were turned off) and forget pending ones.
    pub fn clear_all(&mut self, wall_ms: i64, reason: &str) -> Vec<Transition> {
        self.last_observed_ms = None;
        self.retain(&[], wall_ms, reason)
    }

    /// Take over an alert that was active when the agent last stopped.
    pub fn restore(&mut self, alert: Alert) {
        let last_value = alert.value;
        self.states
            .insert(alert.key.clone(), State::Raised { alert, last_value });
    }

    /// Record the stored id of a raised alert.
    pub fn assign_id(&mut self, key: &AlertKey, id: i64) {
        if let Some(State::Raised { alert, .. }) = self.states.get_mut(key) {
            alert.id = id;
        }
    }

    /// The active alerts.
    pub fn active(&self) -> Vec<Alert> {
        self.states
            .values()
            .filter_map(|state| match state {
                State::Raised { alert, .. } => Some(alert.clone()),
                State::Pending { .. } => None,
            })
            .collect()
    }
}

fn close(mut alert: Alert, wall_ms: i64, value: f64, reason: &str) -> Alert {
    alert.cleared = Some(Cleared {
        at_ms: wall_ms,
        value,
        reason: reason.to_owned(),
    });
    alert
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.metric.name(),
            self.comparison.name(),
            self.metric.format(self.value)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(
        metric: Metric,
        comparison: Comparison,
        value: f64,
        hold_s: u64,
        clear: f64,
    ) -> Threshold {
        Threshold {
            metric,
            comparison,
            value,
            hold: Duration::from_secs(hold_s),
            clear,
        }
    }

    fn memory_above_90() -> Vec<Threshold> {
        vec![threshold(
            Metric::MemoryUsed,
            Comparison::Above,
            90.0,
            30,
            85.0,
        )]
    }

    /// Feed `(seconds, value)` readings of memory.used_percent.
    fn feed(
        engine: &mut Engine,
        thresholds: &[Threshold],
        at_s: i64,
        value: f64,
    ) -> Vec<Transition> {
        engine.observe_readings(
            thresholds,
            |metric| (metric == Metric::MemoryUsed).then(|| vec![(String::new(), value)]),
            Clock {
                mono_ms: at_s * 1000,
                wall_ms: 1_700_000_000_000 + at_s * 1000,
            },
        )
    }

    fn raised(transitions: &[Transition]) -> usize {
        transitions
            .iter()
            .filter(|t| matches!(t, Transition::Raised(_)))
            .count()
    }

    fn cleared(transitions: &[Transition]) -> Vec<&Alert> {
        transitions
            .iter()
            .filter_map(|t| match t {
                Transition::Cleared(alert) => Some(alert),
                Transition::Raised(_) => None,
            })
            .collect()
    }

    #[test]
    fn raises_only_after_the_value_held_for_the_hold_time() {
        let thresholds = memory_above_90();
        let mut engine = Engine::new(Duration::from_secs(60));
        assert!(feed(&mut engine, &thresholds, 0, 95.0).is_empty());
        assert!(feed(&mut engine, &thresholds, 10, 96.0).is_empty());
        assert!(feed(&mut engine, &thresholds, 29, 97.0).is_empty());
        let out = feed(&mut engine, &thresholds, 30, 93.0);
        assert_eq!(raised(&out), 1, "{out:?}");
        let Transition::Raised(alert) = &out[0] else {
            panic!("{out:?}");
        };
        assert_eq!(alert.value, 93.0);
        assert_eq!(alert.raised_ms, 1_700_000_030_000);
        assert!(
            alert.message().contains("above 90.0 %"),
            "{}",
            alert.message()
        );
        assert_eq!(engine.active().len(), 1);
        // Still past the limit: no second alert.
        assert!(feed(&mut engine, &thresholds, 40, 99.0).is_empty());
    }

    #[test]
    fn a_dip_before_the_hold_time_restarts_it() {
        let thresholds = memory_above_90();
        let mut engine = Engine::new(Duration::from_secs(60));
        feed(&mut engine, &thresholds, 0, 95.0);
        feed(&mut engine, &thresholds, 20, 80.0);
        assert!(feed(&mut engine, &thresholds, 25, 95.0).is_empty());
        assert!(feed(&mut engine, &thresholds, 50, 95.0).is_empty());
        assert_eq!(raised(&feed(&mut engine, &thresholds, 55, 95.0)), 1);
    }

    #[test]
    fn hysteresis_keeps_it_raised_until_past_the_clear_value() {
        let thresholds = memory_above_90();
        let mut engine = Engine::new(Duration::from_secs(60));
        feed(&mut engine, &thresholds, 0, 95.0);
        assert_eq!(raised(&feed(&mut engine, &thresholds, 30, 98.0)), 1);
        // Below the limit but above the clear value: still raised.
        assert!(feed(&mut engine, &thresholds, 35, 88.0).is_empty());
        assert!(feed(&mut engine, &thresholds, 40, 91.0).is_empty());
        assert!(feed(&mut engine, &thresholds, 45, 86.0).is_empty());
        let out = feed(&mut engine, &thresholds, 50, 84.0);
        let done = cleared(&out);
        assert_eq!(done.len(), 1, "{out:?}");
        let end = done[0]
            .cleared
            .as_ref()
            .map(|c| (c.value, c.reason.as_str(), c.at_ms));
        assert_eq!(end, Some((84.0, "back to normal", 1_700_000_050_000)));
        assert_eq!(done[0].peak, 98.0);
        assert!(engine.active().is_empty());
        // It can be raised again, after a fresh hold time.
        assert!(feed(&mut engine, &thresholds, 60, 95.0).is_empty());
        assert_eq!(raised(&feed(&mut engine, &thresholds, 90, 95.0)), 1);
    }

    #[test]
    fn below_thresholds_and_zero_hold_raise_at_once() {
        let thresholds = vec![threshold(Metric::DiskFree, Comparison::Below, 5.0, 0, 10.0)];
        let mut engine = Engine::new(Duration::from_secs(60));
        let disks = |home: f64, root: f64| {
            move |metric: Metric| {
                (metric == Metric::DiskFree)
                    .then(|| vec![("/".to_owned(), root), ("/home".to_owned(), home)])
            }
        };
        let at = |s: i64| Clock {
            mono_ms: s * 1000,
            wall_ms: s * 1000,
        };
        let out = engine.observe_readings(&thresholds, disks(4.0, 50.0), at(0));
        assert_eq!(raised(&out), 1);
        assert_eq!(engine.active()[0].key.subject, "/home");
        assert!(
            engine
                .observe_readings(&thresholds, disks(8.0, 50.0), at(5))
                .is_empty()
        );
        let out = engine.observe_readings(&thresholds, disks(12.0, 3.0), at(10));
        assert_eq!(cleared(&out).len(), 1);
        assert_eq!(raised(&out), 1);
        assert_eq!(engine.active()[0].key.subject, "/");
        assert_eq!(engine.active()[0].peak, 3.0);
    }

    #[test]
    fn removed_thresholds_and_vanished_subjects_clear() {
        let thresholds = vec![threshold(Metric::DiskFree, Comparison::Below, 5.0, 0, 10.0)];
        let mut engine = Engine::new(Duration::from_secs(60));
        let at = Clock {
            mono_ms: 0,
            wall_ms: 0,
        };
        engine.observe_readings(
            &thresholds,
            |_| Some(vec![("/mnt/usb".to_owned(), 1.0), ("/".to_owned(), 2.0)]),
            at,
        );
        assert_eq!(engine.active().len(), 2);
        // /mnt/usb is unmounted.
        let out = engine.observe_readings(&thresholds, |_| Some(vec![("/".to_owned(), 2.0)]), at);
        let done = cleared(&out);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].key.subject, "/mnt/usb");
        assert_eq!(
            done[0].cleared.as_ref().map(|c| c.reason.as_str()),
            Some("no longer measured")
        );
        // Unknown readings (a failed GPU read) change nothing.
        assert!(
            engine
                .observe_readings(&thresholds, |_| None, at)
                .is_empty()
        );
        assert_eq!(engine.active().len(), 1);
        // The threshold goes away.
        let out = engine.retain(&[], 5, "threshold removed");
        assert_eq!(cleared(&out).len(), 1);
        assert!(engine.active().is_empty());
    }

    #[test]
    fn a_gap_in_observation_restarts_the_hold_time() {
        let thresholds = memory_above_90();
        let mut engine = Engine::new(Duration::from_secs(15));
        feed(&mut engine, &thresholds, 0, 95.0);
        // Nobody watched for 100 s: that does not count as held.
        assert!(feed(&mut engine, &thresholds, 100, 95.0).is_empty());
        assert!(feed(&mut engine, &thresholds, 110, 95.0).is_empty());
        assert!(feed(&mut engine, &thresholds, 120, 95.0).is_empty());
        assert_eq!(raised(&feed(&mut engine, &thresholds, 130, 95.0)), 1);
    }

    #[test]
    fn restored_alerts_clear_normally_and_keep_their_id() {
        let thresholds = memory_above_90();
        let mut engine = Engine::new(Duration::from_secs(60));
        let old = Alert {
            id: 41,
            key: AlertKey {
                metric: Metric::MemoryUsed,
                comparison: Comparison::Above,
                subject: String::new(),
            },
            threshold_value: 90.0,
            clear_value: 85.0,
            hold: Duration::from_secs(30),
            value: 92.0,
            peak: 97.0,
            raised_ms: 1,
            cleared: None,
        };
        engine.restore(old);
        assert!(feed(&mut engine, &thresholds, 0, 91.0).is_empty());
        let out = feed(&mut engine, &thresholds, 5, 50.0);
        assert_eq!(cleared(&out)[0].id, 41);
        assert_eq!(cleared(&out)[0].peak, 97.0);
    }

    fn input(
        metric: &str,
        comparison: Option<Comparison>,
        value: f64,
        hold_ms: i64,
    ) -> ThresholdInput {
        ThresholdInput {
            metric: metric.to_owned(),
            comparison,
            value,
            hold_ms,
            clear: None,
        }
    }

    #[test]
    fn validation_names_the_field() {
        let above = Some(Comparison::Above);
        let field = |inputs: &[ThresholdInput]| {
            validate(inputs)
                .err()
                .and_then(|e| e.field().map(str::to_owned))
        };
        assert_eq!(
            field(&[
                input("memory.used_percent", above, 90.0, 0),
                input("nope", above, 1.0, 0)
            ]),
            Some("thresholds[1].metric".to_owned())
        );
        assert_eq!(
            field(&[input("memory.used_percent", above, f64::NAN, 0)]),
            Some("thresholds[0].value".to_owned())
        );
        assert_eq!(
            field(&[input("memory.used_percent", above, 90.0, -1)]),
            Some("thresholds[0].hold_ms".to_owned())
        );
        assert_eq!(
            field(&[input("memory.used_percent", None, 90.0, 0)]),
            Some("thresholds[0].comparison".to_owned())
        );
        assert_eq!(
            field(&[input("memory.used_percent", above, 900.0, 0)]),
            Some("thresholds[0].value".to_owned())
        );
        let mut wrong_side = input("memory.used_percent", above, 90.0, 0);
        wrong_side.clear = Some(95.0);
        assert_eq!(
            field(&[wrong_side]),
            Some("thresholds[0].clear_value".to_owned())
        );
        let mut nan_clear = input("memory.used_percent", above, 90.0, 0);
        nan_clear.clear = Some(f64::INFINITY);
        assert_eq!(
            field(&[nan_clear]),
            Some("thresholds[0].clear_value".to_owned())
        );
        assert_eq!(
            field(&[
                input("memory.used_percent", above, 90.0, 0),
                input("memory.used_percent", above, 80.0, 0)
            ]),
            Some("thresholds[1].metric".to_owned())
        );
        let err = validate(&[input("bogus", above, 1.0, 0)]).unwrap_err();
        assert!(err.message().contains("memory.used_percent"), "{err}");
    }

    #[test]
    fn defaults_are_valid_and_clear_values_default_sensibly() {
        let inputs: Vec<ThresholdInput> = defaults()
            .iter()
            .map(|t| ThresholdInput {
                metric: t.metric.name().to_owned(),
                comparison: Some(t.comparison),
                value: t.value,
                hold_ms: i64::try_from(t.hold.as_millis()).unwrap_or(0),
                clear: None,
            })
            .collect();
        assert_eq!(validate(&inputs).ok(), Some(defaults()));
        let set = validate(&[
            input("disk.free_percent", Some(Comparison::Below), 5.0, 0),
            input("memory.used_percent", Some(Comparison::Above), 2.0, 0),
            input("ollama.rss_bytes", Some(Comparison::Above), 1e9, 0),
        ])
        .unwrap_or_default();
        let clears: Vec<f64> = set.iter().map(|t| t.clear).collect();
        assert_eq!(clears, vec![10.0, 0.0, 0.95e9]);
    }

    #[test]
    fn every_metric_has_a_unique_name_that_parses() {
        for spec in METRICS {
            assert_eq!(Metric::parse(spec.name), Some(spec.metric));
            assert_eq!(spec.metric.spec().name, spec.name);
        }
        assert_eq!(Comparison::parse("above"), Some(Comparison::Above));
        assert_eq!(
            Comparison::parse(Comparison::Below.name()),
            Some(Comparison::Below)
        );
    }
}
