//! Model pulls that outlive the client that asked for them. One pull per
//! (provider, model) runs at a time; every caller attaches to its progress
//! channel. Ollama's per-layer lines are folded into whole-model progress
//! (bytes across all layers, speed, ETA). Transient failures (the
//! connection broke, the server restarted) are retried and Ollama resumes
//! the partial download; an error Ollama itself reports ends the pull with
//! Ollama's message. Progress also goes on the event bus, throttled.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    events::Publisher,
    ollama::OllamaEvent,
    ollama::api::{ApiError, OllamaApi, PullLine},
    store::now_ms,
};

/// Where a pull is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullState {
    /// Downloading.
    Running,
    /// Waiting to retry.
    Retrying,
    /// Installed.
    Succeeded,
    /// Failed.
    Failed,
    /// Cancelled.
    Cancelled,
}

impl PullState {
    /// Whether the pull has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// Whole-model progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    /// Model (canonical display name).
    pub model: String,
    /// Provider.
    pub provider: String,
    /// State.
    pub state: PullState,
    /// Ollama's latest status text.
    pub status: String,
    /// Bytes done, all layers.
    pub completed_bytes: u64,
    /// Bytes announced, all layers.
    pub total_bytes: u64,
    /// Recent speed.
    pub bytes_per_second: u64,
    /// Seconds left, when known.
    pub eta_seconds: Option<u64>,
    /// Current layer (12 hex digits).
    pub current_layer: String,
    /// Layers finished.
    pub layers_done: u32,
    /// Layers announced.
    pub layers_total: u32,
    /// Error text (FAILED, RETRYING).
    pub error: Option<String>,
    /// Attempt number.
    pub attempt: u32,
    /// Start time, ms since the epoch.
    pub started_ms: i64,
}

/// How often pulls retry and how long they wait for the server.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all.
    pub max_attempts: u32,
    /// First wait; doubles per attempt.
    pub first_delay: Duration,
    /// Longest wait.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

/// Events per second at most per pull on the bus (the stream itself gets
/// every update).
const EVENT_INTERVAL: Duration = Duration::from_millis(250);
/// Finished pulls remembered for ListPulls.
const FINISHED_KEPT: usize = 20;

/// Folds Ollama's per-layer lines into whole-model numbers.
#[derive(Debug, Default)]
struct LayerTally {
    /// digest → (total, completed).
    layers: BTreeMap<String, (u64, u64)>,
    speed: SpeedMeter,
}

impl LayerTally {
    fn apply(&mut self, line: &PullLine, progress: &mut PullProgress) {
        progress.status = line.status.clone();
        if let (Some(digest), Some(total)) = (&line.digest, line.total) {
            let completed = line.completed.unwrap_or(0).min(total);
            let entry = self.layers.entry(digest.clone()).or_insert((total, 0));
            entry.0 = total;
            // Ollama never goes backwards within a layer; a retry resumes.
            entry.1 = entry.1.max(completed);
            progress.current_layer = digest
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect();
        }
        progress.total_bytes = self.layers.values().map(|(t, _)| t).sum();
        progress.completed_bytes = self.layers.values().map(|(_, c)| c).sum();
        progress.layers_total = u32::try_from(self.layers.len()).unwrap_or(u32::MAX);
        progress.layers_done =
            u32::try_from(self.layers.values().filter(|(t, c)| c >= t).count()).unwrap_or(u32::MAX);
        if line.status == "success" {
            progress.completed_bytes = progress.total_bytes;
            progress.layers_done = progress.layers_total;
        }
        self.speed.record(progress.completed_bytes);
        progress.bytes_per_second = self.speed.rate();
        progress.eta_seconds = match progress.bytes_per_second {
            0 => None,
            rate => Some(
                progress
                    .total_bytes
                    .saturating_sub(progress.completed_bytes)
                    .div_ceil(rate),
            ),
        };
    }
}

/// Download speed over a sliding window of a few seconds, so the figure
/// follows the connection without jumping on every line.
#[derive(Debug, Default)]
struct SpeedMeter {
    samples: VecDeque<(Instant, u64)>,
}

const SPEED_WINDOW: Duration = Duration::from_secs(3);

impl SpeedMeter {
    fn record(&mut self, completed: u64) {
        let now = Instant::now();
        self.samples.push_back((now, completed));
        while self
            .samples
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > SPEED_WINDOW)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
    }

    fn rate(&self) -> u64 {
        let (Some((t0, b0)), Some((t1, b1))) = (self.samples.front(), self.samples.back()) else {
            return 0;
        };
        let elapsed = t1.duration_since(*t0).as_secs_f64();
        if elapsed < 0.05 {
            return 0;
        }
        (b1.saturating_sub(*b0) as f64 / elapsed) as u64
    }
}

#[derive(Debug)]
struct ActivePull {
    progress: watch::Receiver<PullProgress>,
    cancel: CancellationToken,
}

/// What a pull task needs from the rest of the agent.
pub trait PullEnvironment: Send + Sync + 'static {
    /// Wait (bounded) until the provider can take requests again after a
    /// transient failure; `Err` with a message when it will not.
    fn wait_until_up(
        &self,
        provider: &str,
    ) -> impl Future<Output = std::result::Result<(), String>> + Send;
}

/// All pulls.
#[derive(Debug)]
pub struct PullManager {
    active: Mutex<HashMap<(String, String), ActivePull>>,
    finished: Mutex<VecDeque<PullProgress>>,
    bus: Publisher<OllamaEvent>,
    policy: RetryPolicy,
}

impl PullManager {
    /// A manager publishing on `bus`.
    pub fn new(bus: Publisher<OllamaEvent>, policy: RetryPolicy) -> Arc<Self> {
        Arc::new(Self {
            active: Mutex::new(HashMap::new()),
            finished: Mutex::new(VecDeque::new()),
            bus,
            policy,
        })
    }

    fn active(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), ActivePull>> {
        crate::sync::lock(&self.active)
    }

    /// Attach to the running pull of `model` on `provider`, or start one.
    /// `key` is the model's canonical key; `model` its display name.
    pub fn start_or_attach<E: PullEnvironment>(
        self: &Arc<Self>,
        env: Arc<E>,
        api: OllamaApi,
        provider: &str,
        key: &str,
        model: &str,
        insecure: bool,
    ) -> watch::Receiver<PullProgress> {
        let id = (provider.to_owned(), key.to_owned());
        let mut active = self.active();
        if let Some(pull) = active.get(&id) {
            return pull.progress.clone();
        }
        let initial = PullProgress {
            model: model.to_owned(),
            provider: provider.to_owned(),
            state: PullState::Running,
            status: "starting".to_owned(),
            completed_bytes: 0,
            total_bytes: 0,
            bytes_per_second: 0,
            eta_seconds: None,
            current_layer: String::new(),
            layers_done: 0,
            layers_total: 0,
            error: None,
            attempt: 1,
            started_ms: now_ms(),
        };
        let (sender, receiver) = watch::channel(initial.clone());
        let cancel = CancellationToken::new();
        active.insert(
            id.clone(),
            ActivePull {
                progress: receiver.clone(),
                cancel: cancel.clone(),
            },
        );
        drop(active);
        tracing::info!(provider, model, "pull started");
        let manager = self.clone();
        let model = model.to_owned();
        tokio::spawn(async move {
            let run = PullRun {
                manager: manager.clone(),
                env,
                api,
                model,
                insecure,
                sender,
                cancel,
                progress: initial,
                tally: LayerTally::default(),
                last_event: None,
            };
            let last = run.run().await;
            manager.finish(&id, last);
        });
        receiver
    }

    fn finish(&self, id: &(String, String), last: PullProgress) {
        self.active().remove(id);
        let mut finished = crate::sync::lock(&self.finished);
        finished.retain(|p| !(p.provider == last.provider && p.model == last.model));
        finished.push_front(last);
        finished.truncate(FINISHED_KEPT);
    }

    /// Stop a running pull; returns its progress at that point.
    pub async fn cancel(&self, provider: &str, key: &str) -> Result<PullProgress> {
        let pull = {
            let active = self.active();
            active
                .get(&(provider.to_owned(), key.to_owned()))
                .map(|p| (p.cancel.clone(), p.progress.clone()))
        };
        let Some((cancel, mut progress)) = pull else {
            return Err(Error::not_found(format!(
                "no pull of {key} is running on {provider}"
            )));
        };
        cancel.cancel();
        // Wait for the task to record the cancellation.
        let settled = progress
            .wait_for(|p| p.state.is_final())
            .await
            .map(|state| state.clone());
        Ok(match settled {
            Ok(state) => state,
            Err(_) => progress.borrow().clone(),
        })
    }

    /// Running pulls first, then recently finished ones.
    pub fn list(&self) -> Vec<PullProgress> {
        let mut out: Vec<PullProgress> = self
            .active()
            .values()
            .map(|p| p.progress.borrow().clone())
            .collect();
        out.sort_by_key(|p| p.started_ms);
        out.extend(crate::sync::lock(&self.finished).iter().cloned());
        out
    }

    /// Whether any pull is running (updates defer while one is).
    pub fn any_running(&self) -> bool {
        !self.active().is_empty()
    }
}

struct PullRun<E> {
    manager: Arc<PullManager>,
    env: Arc<E>,
    api: OllamaApi,
    model: String,
    insecure: bool,
    sender: watch::Sender<PullProgress>,
    cancel: CancellationToken,
    progress: PullProgress,
    tally: LayerTally,
    last_event: Option<Instant>,
}

enum Attempt {
    Done,
    Transient(String),
    Fatal(String),
}

impl<E: PullEnvironment> PullRun<E> {
    fn publish(&mut self, force_event: bool) {
        self.sender.send_replace(self.progress.clone());
        let due = self
            .last_event
            .is_none_or(|at| at.elapsed() >= EVENT_INTERVAL);
        if force_event || due {
            self.last_event = Some(Instant::now());
            self.manager
                .bus
                .publish(OllamaEvent::PullProgress(self.progress.clone()));
        }
    }

    async fn run(mut self) -> PullProgress {
        let policy = self.manager.policy;
        let mut delay = policy.first_delay;
        self.publish(true);
        loop {
            let cancel = self.cancel.clone();
            let outcome = tokio::select! {
                () = cancel.cancelled() => None,
                outcome = self.attempt() => Some(outcome),
            };
            match outcome {
                None => {
                    self.progress.state = PullState::Cancelled;
                    self.progress.status = "cancelled".to_owned();
                    self.progress.bytes_per_second = 0;
                    self.progress.eta_seconds = None;
                    tracing::info!(model = %self.model, "pull cancelled");
                    break;
                }
                Some(Attempt::Done) => {
                    self.progress.state = PullState::Succeeded;
                    self.progress.error = None;
                    self.progress.eta_seconds = Some(0);
                    tracing::info!(model = %self.model, "pull finished");
                    self.manager.bus.publish(OllamaEvent::ModelsChanged {
                        provider: self.progress.provider.clone(),
                        model: self.progress.model.clone(),
                        change: "pulled".to_owned(),
                    });
                    break;
                }
                Some(Attempt::Fatal(message)) => {
                    self.progress.state = PullState::Failed;
                    self.progress.error = Some(message.clone());
                    tracing::warn!(model = %self.model, error = %message, "pull failed");
                    break;
                }
                Some(Attempt::Transient(why)) => {
                    if self.progress.attempt >= policy.max_attempts {
                        self.progress.state = PullState::Failed;
                        self.progress.error = Some(format!(
                            "gave up after {} attempts: {why}",
                            self.progress.attempt
                        ));
                        break;
                    }
                    tracing::warn!(model = %self.model, attempt = self.progress.attempt, error = %why, "pull interrupted; retrying");
                    self.progress.state = PullState::Retrying;
                    self.progress.error = Some(why);
                    self.progress.bytes_per_second = 0;
                    self.progress.eta_seconds = None;
                    self.publish(true);
                    let wait = async {
                        tokio::time::sleep(delay).await;
                        self.env.wait_until_up(&self.progress.provider).await
                    };
                    let waited = tokio::select! {
                        () = self.cancel.cancelled() => None,
                        result = wait => Some(result),
                    };
                    match waited {
                        None => continue,
                        Some(Err(why)) => {
                            self.progress.state = PullState::Failed;
                            self.progress.error = Some(why);
                            break;
                        }
                        Some(Ok(())) => {}
                    }
                    delay = (delay * 2).min(policy.max_delay);
                    self.progress.attempt += 1;
                    self.progress.state = PullState::Running;
                    self.progress.error = None;
                    self.publish(true);
                }
            }
        }
        self.publish(true);
        self.progress
    }

    async fn attempt(&mut self) -> Attempt {
        let mut stream = match self.api.pull(&self.model, self.insecure).await {
            Ok(stream) => stream,
            Err(ApiError::Ollama { message, .. }) => return Attempt::Fatal(message),
            Err(err) => return Attempt::Transient(err.to_string()),
        };
        loop {
            match stream.next().await {
                Some(Ok(line)) => {
                    let success = line.status == "success";
                    self.tally.apply(&line, &mut self.progress);
                    if success {
                        return Attempt::Done;
                    }
                    self.publish(false);
                }
                Some(Err(ApiError::Ollama { message, .. })) => return Attempt::Fatal(message),
                Some(Err(ApiError::Unexpected(message))) => return Attempt::Fatal(message),
                Some(Err(err)) => return Attempt::Transient(err.to_string()),
                None => {
                    return Attempt::Transient(
                        "the server ended the download without finishing it".to_owned(),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(
        status: &str,
        digest: Option<&str>,
        total: Option<u64>,
        completed: Option<u64>,
    ) -> PullLine {
        PullLine {
            status: status.to_owned(),
            digest: digest.map(str::to_owned),
            total,
            completed,
            error: None,
        }
    }

    fn blank() -> PullProgress {
        PullProgress {
            model: "m".into(),
            provider: "local".into(),
            state: PullState::Running,
            status: String::new(),
            completed_bytes: 0,
            total_bytes: 0,
            bytes_per_second: 0,
            eta_seconds: None,
            current_layer: String::new(),
            layers_done: 0,
            layers_total: 0,
            error: None,
            attempt: 1,
            started_ms: 0,
        }
    }

    #[test]
    fn folds_layers_into_whole_model_progress() {
        let mut tally = LayerTally::default();
        let mut progress = blank();
        let a = "sha256:aaaaaaaaaaaaaaaa";
        let b = "sha256:bbbbbbbbbbbbbbbb";
        tally.apply(&line("pulling manifest", None, None, None), &mut progress);
        tally.apply(
            &line("pulling aaaaaaaaaaaa", Some(a), Some(100), None),
            &mut progress,
        );
        tally.apply(
            &line("pulling bbbbbbbbbbbb", Some(b), Some(300), Some(30)),
            &mut progress,
        );
        tally.apply(
            &line("pulling aaaaaaaaaaaa", Some(a), Some(100), Some(100)),
            &mut progress,
        );
        assert_eq!(progress.total_bytes, 400);
        assert_eq!(progress.completed_bytes, 130);
        assert_eq!((progress.layers_done, progress.layers_total), (1, 2));
        assert_eq!(progress.current_layer, "aaaaaaaaaaaa");
        // A retry that reports less for a layer never moves progress back.
        tally.apply(
            &line("pulling bbbbbbbbbbbb", Some(b), Some(300), Some(10)),
            &mut progress,
        );
        assert_eq!(progress.completed_bytes, 130);
        tally.apply(&line("success", None, None, None), &mut progress);
        assert_eq!(progress.completed_bytes, 400);
        assert_eq!(progress.layers_done, 2);
    }
}
