//! The one metrics sampler. Subscribers register the interval they want;
//! a single task reads the machine at the fastest interval asked for
//! (never faster than [`MIN_INTERVAL`]) and hands each subscriber a reading
//! when that subscriber is due, so a 1 s and a 250 ms subscriber each get
//! their own rate from the same readings. Alert thresholds register a
//! standing demand at the alert interval. With no subscriber and no alert
//! demand the task ends: nothing polls when nobody listens.
//!
//! Scheduling: every subscriber has a due time. The task sleeps until the
//! earliest one, takes a reading, and delivers it to everyone due within
//! half a base period of the reading's start (so a burst of new streams
//! shares one reading), advancing each due time by its own interval.
//! Deliveries go through per-subscriber watch channels: a slow reader gets
//! the newest reading, never a backlog.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{Notify, watch},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    sync::lock,
    system::{
        metrics::{ProcessListing, ProcessOrder, Sample},
        probe::{OllamaHint, SampleSource},
    },
};

/// The fastest the machine is read.
pub const MIN_INTERVAL: Duration = Duration::from_millis(250);

/// A reading younger than this is handed out by snapshots instead of a
/// new one, while the sampler runs.
const SNAPSHOT_FRESHNESS: Duration = Duration::from_secs(1);

/// The newest reading and when it was taken.
type Latest = Option<(Instant, Arc<Sample>)>;

/// Where the Ollama server's pid comes from (set once the supervisor runs).
type OllamaHints = Box<dyn Fn() -> OllamaHint + Send + Sync>;

#[derive(Debug)]
struct Subscriber {
    interval: Duration,
    next_due: Instant,
    deliver: watch::Sender<Option<Arc<Sample>>>,
}

#[derive(Debug, Clone, Copy)]
struct Demand {
    interval: Duration,
    next_due: Instant,
}

#[derive(Debug, Default)]
struct State {
    subscribers: HashMap<u64, Subscriber>,
    next_id: u64,
    alerts: Option<Demand>,
    running: bool,
    failing: bool,
}

impl State {
    /// The fastest interval asked for; `None` when nobody asks.
    fn base_period(&self) -> Option<Duration> {
        self.subscribers
            .values()
            .map(|s| s.interval)
            .chain(self.alerts.map(|a| a.interval))
            .min()
    }

    fn next_due(&self) -> Option<Instant> {
        self.subscribers
            .values()
            .map(|s| s.next_due)
            .chain(self.alerts.map(|a| a.next_due))
            .min()
    }
}

/// Diagnostics of the sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SamplerStats {
    /// Readings taken since start.
    pub runs: u64,
    /// Open subscriptions.
    pub subscribers: u32,
    /// Current period; `None` when the task is not running.
    pub period: Option<Duration>,
    /// Whether alert thresholds keep it running.
    pub alerts_active: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Notify,
    source: Arc<Mutex<Box<dyn SampleSource>>>,
    runs: AtomicU64,
    latest: watch::Sender<Latest>,
    ollama: OnceLock<OllamaHints>,
    shutdown: CancellationToken,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, so a poisoned
        // lock (a panic elsewhere) is safe to keep using.
        lock(&self.state)
    }

    fn ensure_running(self: &Arc<Self>, state: &mut State) {
        if !state.running && state.next_due().is_some() && !self.shutdown.is_cancelled() {
            state.running = true;
            self.runtime.spawn(run(self.clone()));
        }
    }

    async fn take_sample(&self) -> Result<Arc<Sample>> {
        let hint = self.ollama.get().map(|hints| hints()).unwrap_or_default();
        let source = self.source.clone();
        let mut sample = tokio::task::spawn_blocking(move || lock(&source).sample(hint)).await??;
        sample.run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let sample = Arc::new(sample);
        self.latest
            .send_replace(Some((Instant::now(), sample.clone())));
        Ok(sample)
    }
}

/// Next due time after delivering: one interval on, or one interval from
/// now when the sampler fell behind (a slow reading, a suspended machine)
/// so it does not fire a burst to catch up.
fn advance(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next <= now { now + interval } else { next }
}

/// The sampler task: runs while anyone is due, then ends.
async fn run(shared: Arc<Shared>) {
    loop {
        let next_wake = {
            let mut state = shared.state();
            match state.next_due() {
                Some(due) if !shared.shutdown.is_cancelled() => due,
                _ => {
                    state.running = false;
                    return;
                }
            }
        };
        tokio::select! {
            () = shared.shutdown.cancelled() => continue,
            () = shared.wake.notified() => continue,
            () = tokio::time::sleep_until(next_wake) => {}
        }
        let started = Instant::now();
        let sample = shared.take_sample().await;
        let mut state = shared.state();
        let failed = match &sample {
            Ok(_) => false,
            Err(err) => {
                // Once per failing streak: a broken /proc would otherwise
                // log at every tick.
                if !state.failing {
                    tracing::warn!(error = %err, "reading the machine failed");
                }
                true
            }
        };
        state.failing = failed;
        let slack = state.base_period().unwrap_or(MIN_INTERVAL) / 2;
        let now = Instant::now();
        for subscriber in state.subscribers.values_mut() {
            if subscriber.next_due <= started + slack {
                if let Ok(sample) = &sample {
                    subscriber.deliver.send_replace(Some(sample.clone()));
                }
                subscriber.next_due = advance(subscriber.next_due, subscriber.interval, now);
            }
        }
        if let Some(alerts) = state.alerts.as_mut()
            && alerts.next_due <= started + slack
        {
            alerts.next_due = advance(alerts.next_due, alerts.interval, now);
        }
    }
}

/// The sampler. Cheap to share behind an `Arc`.
pub struct Sampler {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("stats", &self.stats())
            .finish()
    }
}

/// One subscriber's readings. Dropping it unsubscribes.
#[derive(Debug)]
pub struct MetricsSubscription {
    id: u64,
    readings: watch::Receiver<Option<Arc<Sample>>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("runs", &self.runs)
            .finish_non_exhaustive()
    }
}

impl MetricsSubscription {
    /// The next reading for this subscriber; `None` once the sampler is
    /// gone.
    pub async fn next(&mut self) -> Option<Arc<Sample>> {
        loop {
            self.readings.changed().await.ok()?;
            if let Some(sample) = self.readings.borrow_and_update().clone() {
                return Some(sample);
            }
        }
    }
}

impl Drop for MetricsSubscription {
    fn drop(&mut self) {
        self.shared.state().subscribers.remove(&self.id);
        self.shared.wake.notify_one();
    }
}

impl Sampler {
    /// A sampler reading through `source`, stopping for good on `shutdown`.
    /// Must be called inside the Tokio runtime that will run it.
    pub fn new(source: Box<dyn SampleSource>, shutdown: CancellationToken) -> Self {
        let (latest, _) = watch::channel(None);
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Notify::new(),
                source: Arc::new(Mutex::new(source)),
                runs: AtomicU64::new(0),
                latest,
                ollama: OnceLock::new(),
                shutdown,
                runtime: tokio::runtime::Handle::current(),
            }),
        }
    }

    /// Where readings learn the Ollama server's pid (set once).
    pub fn set_ollama_hints(&self, hints: impl Fn() -> OllamaHint + Send + Sync + 'static) {
        if self.shared.ollama.set(Box::new(hints)).is_err() {
            tracing::warn!("the Ollama process source was set twice; keeping the first");
        }
    }

    /// Receive a reading every `interval` (at least [`MIN_INTERVAL`]). A
    /// reading taken moments ago is handed over at once; otherwise one is
    /// taken now.
    pub fn subscribe(&self, interval: Duration) -> MetricsSubscription {
        let interval = interval.max(MIN_INTERVAL);
        let (deliver, readings) = watch::channel(None);
        let now = Instant::now();
        let next_due = match self.shared.latest.borrow().as_ref() {
            Some((taken, sample)) if now.duration_since(*taken) < MIN_INTERVAL => {
                deliver.send_replace(Some(sample.clone()));
                *taken + interval
            }
            _ => now,
        };
        let mut state = self.shared.state();
        let id = state.next_id;
        state.next_id += 1;
        state.subscribers.insert(
            id,
            Subscriber {
                interval,
                next_due,
                deliver,
            },
        );
        self.shared.ensure_running(&mut state);
        drop(state);
        self.shared.wake.notify_one();
        MetricsSubscription {
            id,
            readings,
            shared: self.shared.clone(),
        }
    }

    /// Keep reading every `interval` for alerts (`None`: alerts need no
    /// readings). The first reading is one interval away: alerts wait for a
    /// hold time longer than that anyway, and a reading taken at once would
    /// compete with the agent's own start-up, which is when this is first
    /// called. New thresholds take a reading at once ([`Self::hurry_alerts`]).
    pub fn set_alert_interval(&self, interval: Option<Duration>) {
        let interval = interval.map(|i| i.max(MIN_INTERVAL));
        let mut state = self.shared.state();
        if state.alerts.map(|a| a.interval) == interval {
            return;
        }
        state.alerts = interval.map(|interval| Demand {
            interval,
            next_due: Instant::now() + interval,
        });
        self.shared.ensure_running(&mut state);
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Take the next alert reading now (thresholds just changed).
    pub fn hurry_alerts(&self) {
        let mut state = self.shared.state();
        if let Some(alerts) = state.alerts.as_mut() {
            alerts.next_due = Instant::now();
        }
        drop(state);
        self.shared.wake.notify_one();
    }

    /// Every reading, whoever asked for it (the alert evaluator follows
    /// this).
    pub fn readings(&self) -> watch::Receiver<Latest> {
        self.shared.latest.subscribe()
    }

    /// A current reading: the sampler's newest when it is fresh, else a new
    /// one.
    pub async fn snapshot(&self) -> Result<Arc<Sample>> {
        let running = self.shared.state().running;
        if running
            && let Some((taken, sample)) = self.shared.latest.borrow().as_ref()
            && taken.elapsed() < SNAPSHOT_FRESHNESS
        {
            return Ok(sample.clone());
        }
        self.shared.take_sample().await
    }

    /// The top processes.
    pub async fn processes(&self, order: ProcessOrder, limit: usize) -> Result<ProcessListing> {
        let source = self.shared.source.clone();
        tokio::task::spawn_blocking(move || lock(&source).processes(order, limit)).await?
    }

    /// Free and total memory of the GPU with the most free memory. Blocks.
    pub fn gpu_memory_blocking(&self) -> Option<(u64, u64)> {
        lock(&self.shared.source).gpu_memory()
    }

    /// Diagnostics.
    pub fn stats(&self) -> SamplerStats {
        let state = self.shared.state();
        SamplerStats {
            runs: self.shared.runs.load(Ordering::Relaxed),
            subscribers: u32::try_from(state.subscribers.len()).unwrap_or(u32::MAX),
            period: if state.running {
                state.base_period()
            } else {
                None
            },
            alerts_active: state.alerts.is_some(),
        }
    }
}

/// A source that cannot read anything (a platform sysinfo does not
/// support): every reading fails with the reason.
#[derive(Debug)]
pub struct Unsupported(pub String);

impl SampleSource for Unsupported {
    fn sample(&mut self, _ollama: OllamaHint) -> Result<Sample> {
        Err(Error::new(
            crate::error::ErrorKind::Unimplemented,
            self.0.clone(),
        ))
    }

    fn processes(&mut self, _order: ProcessOrder, _limit: usize) -> Result<ProcessListing> {
        Err(Error::new(
            crate::error::ErrorKind::Unimplemented,
            self.0.clone(),
        ))
    }

    fn gpu_memory(&mut self) -> Option<(u64, u64)> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts readings; time comes from Tokio's (paused) clock.
    struct Fake {
        calls: Arc<AtomicUsize>,
        epoch: Instant,
    }

    impl SampleSource for Fake {
        fn sample(&mut self, _ollama: OllamaHint) -> Result<Sample> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(Sample {
                mono_ms: i64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(0),
                ..Sample::default()
            })
        }

        fn processes(&mut self, _order: ProcessOrder, _limit: usize) -> Result<ProcessListing> {
            Ok(ProcessListing::default())
        }

        fn gpu_memory(&mut self) -> Option<(u64, u64)> {
            None
        }
    }

    fn sampler() -> (Sampler, Arc<AtomicUsize>) {
        let calls = Arc::new(AtomicUsize::new(0));
        let fake = Fake {
            calls: calls.clone(),
            epoch: Instant::now(),
        };
        (
            Sampler::new(Box::new(fake), CancellationToken::new()),
            calls,
        )
    }

    /// Read from `subscription` until `until`, counting readings.
    async fn count_until(subscription: &mut MetricsSubscription, until: Instant) -> Vec<u64> {
        let mut runs = Vec::new();
        while let Ok(Some(sample)) = tokio::time::timeout_at(until, subscription.next()).await {
            runs.push(sample.run);
        }
        runs
    }

    #[tokio::test(start_paused = true)]
    async fn many_subscribers_share_one_reading_per_tick() {
        let (sampler, calls) = sampler();
        let until = Instant::now() + Duration::from_millis(9_500);
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..50 {
            let mut subscription = sampler.subscribe(Duration::from_secs(1));
            readers.spawn(async move { count_until(&mut subscription, until).await });
        }
        let mut all_runs = Vec::new();
        while let Some(Ok(runs)) = readers.join_next().await {
            assert_eq!(runs.len(), 10, "{runs:?}");
            all_runs.push(runs);
        }
        assert_eq!(all_runs.len(), 50);
        // Everyone saw the same readings, and only ten were taken.
        assert!(all_runs.windows(2).all(|w| w[0] == w[1]));
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        // The readers are gone, and so is the demand.
        assert_eq!(sampler.stats().subscribers, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn each_subscriber_gets_its_own_rate() {
        let (sampler, calls) = sampler();
        let mut slow = sampler.subscribe(Duration::from_secs(1));
        let mut fast = sampler.subscribe(Duration::from_millis(250));
        let until = Instant::now() + Duration::from_millis(9_900);
        let (slow_runs, fast_runs) =
            tokio::join!(count_until(&mut slow, until), count_until(&mut fast, until));
        assert_eq!(slow_runs.len(), 10, "{slow_runs:?}");
        assert_eq!(fast_runs.len(), 40, "{fast_runs:?}");
        // The slow subscriber's readings are among the fast one's.
        assert!(slow_runs.iter().all(|r| fast_runs.contains(r)));
        assert_eq!(calls.load(Ordering::SeqCst), 40);
    }

    #[tokio::test(start_paused = true)]
    async fn intervals_below_the_minimum_are_raised_to_it() {
        let (sampler, _) = sampler();
        let mut eager = sampler.subscribe(Duration::from_millis(10));
        let runs = count_until(&mut eager, Instant::now() + Duration::from_millis(1_900)).await;
        assert_eq!(runs.len(), 8, "{runs:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_read_without_subscribers_or_alerts() {
        let (sampler, calls) = sampler();
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        let mut subscription = sampler.subscribe(Duration::from_secs(1));
        assert!(subscription.next().await.is_some());
        drop(subscription);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(sampler.stats().period, None, "the task ended");
        let after = calls.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(calls.load(Ordering::SeqCst), after);
    }

    #[tokio::test(start_paused = true)]
    async fn alerts_alone_keep_a_slow_sampler_running() {
        let (sampler, calls) = sampler();
        let mut readings = sampler.readings();
        sampler.set_alert_interval(Some(Duration::from_secs(5)));
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            0,
            "read before the first interval"
        );
        tokio::time::sleep(Duration::from_millis(20_000)).await;
        // At 5, 10, 15 and 20 s.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(readings.has_changed().unwrap_or(false));
        assert!(readings.borrow_and_update().is_some());
        assert_eq!(sampler.stats().period, Some(Duration::from_secs(5)));
        // A subscriber speeds it up; alerts see those readings too.
        let mut subscription = sampler.subscribe(Duration::from_secs(1));
        let runs = count_until(
            &mut subscription,
            Instant::now() + Duration::from_millis(4_900),
        )
        .await;
        assert_eq!(runs.len(), 5, "{runs:?}");
        drop(subscription);
        sampler.set_alert_interval(None);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let after = calls.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(calls.load(Ordering::SeqCst), after);
    }

    #[tokio::test(start_paused = true)]
    async fn snapshots_reuse_a_fresh_reading_while_running() {
        let (sampler, calls) = sampler();
        // Not running: each snapshot reads.
        let first = sampler.snapshot().await.map(|s| s.run).unwrap_or(0);
        let second = sampler.snapshot().await.map(|s| s.run).unwrap_or(0);
        assert_eq!((first, second), (1, 2));
        // A subscriber arriving right after a reading gets that reading.
        let mut early = sampler.subscribe(Duration::from_secs(1));
        assert_eq!(early.next().await.map(|s| s.run), Some(2));
        drop(early);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut subscription = sampler.subscribe(Duration::from_millis(500));
        let latest = subscription.next().await.map(|s| s.run);
        let snapshot = sampler.snapshot().await.map(|s| s.run).ok();
        assert_eq!(snapshot, latest);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }
}
