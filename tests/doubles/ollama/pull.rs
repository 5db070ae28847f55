//! The simulated download behind `POST /api/pull`: the status lines Ollama
//! streams, in its order, with byte progress that advances at a configured
//! rate instead of transferring anything.
//!
//! Progress lives per layer digest in the [`Store`], so it survives a
//! cancelled or failed pull and a restart, and a later pull resumes from it.
//! Concurrent pulls of the same model share that progress, as Ollama's
//! download manager does: for each layer, one pull at a time holds a lease
//! and advances the bytes, the others report the same numbers, and whoever
//! is still pulling takes the lease over when its holder goes away. Both
//! pulls end with `success`.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use tokio::sync::mpsc;

use crate::{
    catalog::{CatalogModel, Layer},
    clock,
    stats::{Outcome, Stats, Work},
    store::Store,
};

/// At most one progress line per layer per tick (plus each layer's last).
const TICK: Duration = Duration::from_millis(50);
/// How often a pull saves its partial progress while it runs.
const SAVE_EVERY: Duration = Duration::from_millis(250);
/// Error of a pull of a name the catalog does not have.
pub const UNKNOWN_MODEL: &str = "pull model manifest: file does not exist";
/// Error of a pull stopped by `FAKE_OLLAMA_PULL_FAIL_AT_PERCENT`.
pub const INJECTED_FAILURE: &str = "max retries exceeded: EOF";

/// Download simulation settings.
#[derive(Debug, Clone, Copy)]
pub struct PullConfig {
    pub bytes_per_sec: u64,
    /// Fail once this share of the model's bytes is downloaded.
    pub fail_at_percent: Option<f64>,
    /// Only the first pull (per process) that reaches it fails.
    pub fail_once: bool,
}

/// Ollama's `api.ProgressResponse`; empty fields are omitted like Go's
/// `omitempty` (so `completed` is absent until some bytes arrived).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Progress {
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    #[serde(skip_serializing_if = "is_zero")]
    pub completed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Progress {
    fn status(status: &str) -> Self {
        Self {
            status: status.to_string(),
            digest: String::new(),
            total: 0,
            completed: 0,
        }
    }

    fn layer(layer: &Layer, completed: u64) -> Self {
        Self {
            status: format!("pulling {}", layer.short()),
            digest: layer.digest.clone(),
            total: layer.size,
            completed,
        }
    }
}

/// One line of a pull's NDJSON stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Progress(Progress),
    /// The final line of a failed pull: `{"error": "..."}`.
    Error(String),
}

impl Line {
    pub fn to_json(&self) -> String {
        match self {
            Line::Progress(p) => serde_json::to_string(p),
            Line::Error(e) => serde_json::to_string(&ErrorLine { error: e }),
        }
        // Serialising these plain structs cannot fail; an empty object
        // would still be valid NDJSON if it somehow did.
        .unwrap_or_else(|_| "{}".to_string())
    }
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    error: &'a str,
}

/// Why a pull stopped early.
enum Stop {
    Failed(String),
    Cancelled,
}

/// Runs pulls against one store.
#[derive(Debug)]
pub struct Puller {
    store: Arc<Store>,
    stats: Arc<Stats>,
    config: PullConfig,
    /// Layer digest → id of the pull advancing it.
    leases: Mutex<HashMap<String, u64>>,
    next_id: AtomicU64,
    failed_once: AtomicBool,
}

/// Holding a layer's lease; released on drop, however the pull ends.
struct Lease<'a> {
    leases: &'a Mutex<HashMap<String, u64>>,
    digest: String,
    id: u64,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        if leases.get(&self.digest) == Some(&self.id) {
            leases.remove(&self.digest);
        }
    }
}

impl Puller {
    pub fn new(store: Arc<Store>, stats: Arc<Stats>, config: PullConfig) -> Self {
        Self {
            store,
            stats,
            config,
            leases: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            failed_once: AtomicBool::new(false),
        }
    }

    /// Pulls `model` (`None`: a name the registry does not know) under the
    /// lookup key `key`, sending every line to `out`. Returns when the pull
    /// ends, or as soon as `out` is closed (the client went away).
    pub async fn run(&self, key: &str, model: Option<&CatalogModel>, out: &mpsc::Sender<Line>) {
        let mut activity = self.stats.begin(Work::Pull);
        let result = self.pull(key, model, out).await;
        // Partial progress is saved however the pull ended, so the next one
        // resumes from here.
        self.store.persist_or_warn().await;
        match result {
            Ok(()) => {
                activity.finish(Outcome::Completed);
                let _ = out.send(Line::Progress(Progress::status("success"))).await;
            }
            Err(Stop::Failed(message)) => {
                activity.finish(Outcome::Failed);
                let _ = out.send(Line::Error(message)).await;
            }
            Err(Stop::Cancelled) => activity.finish(Outcome::Cancelled),
        }
    }

    async fn pull(
        &self,
        key: &str,
        model: Option<&CatalogModel>,
        out: &mpsc::Sender<Line>,
    ) -> Result<(), Stop> {
        send(out, Progress::status("pulling manifest")).await?;
        let Some(model) = model else {
            return Err(Stop::Failed(UNKNOWN_MODEL.to_string()));
        };
        let mut threshold = self.fail_threshold(model);
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        for layer in &model.layers {
            self.pull_layer(id, model, layer, &mut threshold, out)
                .await?;
        }
        send(out, Progress::status("verifying sha256 digest")).await?;
        send(out, Progress::status("writing manifest")).await?;
        let now = u64::try_from(clock::now_nanos()).unwrap_or(u64::MAX);
        self.store.install(key, model.name(), now);
        self.store
            .persist()
            .await
            .map_err(|err| Stop::Failed(format!("write manifest: {err}")))
    }

    /// Bytes of the model after which this pull fails, if it is to fail.
    fn fail_threshold(&self, model: &CatalogModel) -> Option<u64> {
        let percent = self.config.fail_at_percent?;
        if self.config.fail_once && self.failed_once.load(Ordering::SeqCst) {
            return None;
        }
        let total = model.total_size();
        let share = (total as f64 * percent.clamp(0.0, 100.0) / 100.0).ceil() as u64;
        Some(share.min(total))
    }

    /// Bytes of the whole model downloaded so far.
    fn model_completed(&self, model: &CatalogModel) -> u64 {
        model
            .layers
            .iter()
            .map(|l| self.store.layer_completed(&l.digest).min(l.size))
            .sum()
    }

    /// `Err(Failed)` once the injected failure point is reached. With
    /// FAIL_ONCE, whoever gets there first fails; a concurrent pull that
    /// started armed is disarmed instead and goes on.
    fn check_failure(&self, model: &CatalogModel, threshold: &mut Option<u64>) -> Result<(), Stop> {
        match *threshold {
            Some(at) if self.model_completed(model) >= at => {
                if self.config.fail_once && self.failed_once.swap(true, Ordering::SeqCst) {
                    *threshold = None;
                    return Ok(());
                }
                Err(Stop::Failed(INJECTED_FAILURE.to_string()))
            }
            _ => Ok(()),
        }
    }

    fn try_lease(&self, digest: &str, id: u64) -> Option<Lease<'_>> {
        let mut leases = self.leases.lock().unwrap_or_else(PoisonError::into_inner);
        let holder = leases.entry(digest.to_string()).or_insert(id);
        (*holder == id).then(|| Lease {
            leases: &self.leases,
            digest: digest.to_string(),
            id,
        })
    }

    async fn pull_layer(
        &self,
        id: u64,
        model: &CatalogModel,
        layer: &Layer,
        threshold: &mut Option<u64>,
        out: &mpsc::Sender<Line>,
    ) -> Result<(), Stop> {
        let total = layer.size;
        let rate = self.config.bytes_per_sec.max(1) as f64;
        let mut done = self.store.layer_completed(&layer.digest).min(total);
        send(out, Progress::layer(layer, done)).await?;
        self.check_failure(model, threshold)?;
        let mut lease = None;
        let mut last_step = Instant::now();
        let mut last_line = Instant::now();
        let mut last_save = Instant::now();
        while done < total {
            // Bytes accrue from when the lease is taken, so take it before
            // sleeping; a waiting pull retries every tick.
            if lease.is_none() {
                lease = self.try_lease(&layer.digest, id);
                last_step = Instant::now();
            }
            // Sleep a tick, or just long enough to finish a small layer.
            let needed = Duration::from_secs_f64((total - done) as f64 / rate);
            tokio::select! {
                () = tokio::time::sleep(needed.min(TICK)) => {}
                () = out.closed() => return Err(Stop::Cancelled),
            }
            let now = Instant::now();
            if lease.is_some() {
                let mut step = (now.duration_since(last_step).as_secs_f64() * rate).ceil() as u64;
                if let Some(at) = *threshold {
                    // Stop exactly at the failure point, so what is saved
                    // (and resumed later) is predictable.
                    step = step.min(at.saturating_sub(self.model_completed(model)));
                }
                done = self
                    .store
                    .add_layer_bytes(&layer.digest, step.max(1), total);
                last_step = now;
            } else {
                done = self.store.layer_completed(&layer.digest).min(total);
            }
            let failing = self.check_failure(model, threshold);
            if done >= total || failing.is_err() || now.duration_since(last_line) >= TICK {
                send(out, Progress::layer(layer, done)).await?;
                last_line = now;
            }
            failing?;
            if lease.is_some() && now.duration_since(last_save) >= SAVE_EVERY {
                self.store.persist_or_warn().await;
                last_save = now;
            }
        }
        Ok(())
    }
}

async fn send(out: &mpsc::Sender<Line>, progress: Progress) -> Result<(), Stop> {
    out.send(Line::Progress(progress))
        .await
        .map_err(|_| Stop::Cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog, names};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn puller(dir: &std::path::Path, config: PullConfig) -> std::io::Result<(Arc<Store>, Puller)> {
        let store = Arc::new(Store::open(dir)?);
        let puller = Puller::new(Arc::clone(&store), Arc::new(Stats::default()), config);
        Ok((store, puller))
    }

    fn config(bytes_per_sec: u64) -> PullConfig {
        PullConfig {
            bytes_per_sec,
            fail_at_percent: None,
            fail_once: false,
        }
    }

    /// Runs one pull of `name` to its end and returns every line.
    async fn pull_lines(puller: &Puller, name: &str) -> Vec<Line> {
        let (tx, mut rx) = mpsc::channel(16);
        let key = names::key_of(name).unwrap_or_default();
        let model = catalog::find(name);
        let collect = async {
            let mut lines = Vec::new();
            while let Some(line) = rx.recv().await {
                lines.push(line);
            }
            lines
        };
        let run = async move { puller.run(&key, model, &tx).await };
        let ((), lines) = tokio::join!(run, collect);
        lines
    }

    fn small() -> Result<&'static CatalogModel, &'static str> {
        catalog::find("test-small").ok_or("test-small missing")
    }

    fn statuses(lines: &[Line]) -> Vec<String> {
        lines
            .iter()
            .map(|l| match l {
                Line::Progress(p) => p.status.clone(),
                Line::Error(e) => format!("error: {e}"),
            })
            .collect()
    }

    /// The layer lines of one digest, as (completed, total).
    fn layer_progress(lines: &[Line], digest: &str) -> Vec<(u64, u64)> {
        lines
            .iter()
            .filter_map(|l| match l {
                Line::Progress(p) if p.digest == digest => Some((p.completed, p.total)),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn streams_ollamas_sequence() -> TestResult {
        let dir = tempfile::tempdir()?;
        // Slow enough that the 4 KiB weights take several ticks.
        let (store, puller) = puller(dir.path(), config(20_000))?;
        let model = small()?;
        let lines = pull_lines(&puller, "test-small").await;
        let statuses = statuses(&lines);
        assert_eq!(
            statuses.first().map(String::as_str),
            Some("pulling manifest")
        );
        assert_eq!(
            &statuses[statuses.len() - 3..],
            ["verifying sha256 digest", "writing manifest", "success"]
        );
        // Layers appear in manifest order, each as one contiguous run.
        let mut order: Vec<&str> = Vec::new();
        for line in &lines {
            if let Line::Progress(p) = line
                && !p.digest.is_empty()
                && order.last() != Some(&p.digest.as_str())
            {
                order.push(&p.digest);
            }
        }
        let expected: Vec<&str> = model.layers.iter().map(|l| l.digest.as_str()).collect();
        assert_eq!(order, expected);
        for layer in &model.layers {
            let progress = layer_progress(&lines, &layer.digest);
            assert!(progress.iter().all(|&(_, total)| total == layer.size));
            assert!(
                progress.windows(2).all(|w| w[0].0 <= w[1].0),
                "{progress:?}"
            );
            assert_eq!(progress.last().map(|p| p.0), Some(layer.size));
            for line in &lines {
                if let Line::Progress(p) = line
                    && p.digest == layer.digest
                {
                    assert_eq!(p.status, format!("pulling {}", &layer.digest[7..19]));
                }
            }
        }
        // The weights crossed several ticks, so progress was reported on the way.
        assert!(layer_progress(&lines, &model.layers[0].digest).len() >= 3);
        assert!(store.installed_model(model.key()).is_some());
        // A line with nothing downloaded yet omits `completed`, like Ollama.
        let first = Line::Progress(Progress::layer(&model.layers[0], 0)).to_json();
        assert!(!first.contains("completed"), "{first}");
        Ok(())
    }

    #[tokio::test]
    async fn unknown_model_fails_after_manifest() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (_, puller) = puller(dir.path(), config(1 << 30))?;
        let lines = pull_lines(&puller, "no-such-model").await;
        assert_eq!(
            lines,
            vec![
                Line::Progress(Progress::status("pulling manifest")),
                Line::Error(UNKNOWN_MODEL.to_string()),
            ]
        );
        assert_eq!(
            Line::Error(UNKNOWN_MODEL.into()).to_json(),
            r#"{"error":"pull model manifest: file does not exist"}"#
        );
        assert_eq!(puller.stats.snapshot().pulls_failed, 1);
        Ok(())
    }

    #[tokio::test]
    async fn resumes_saved_progress_after_restart() -> TestResult {
        let dir = tempfile::tempdir()?;
        let model = small()?;
        let weights = &model.layers[0];
        {
            // An earlier process got half the weights.
            let (store, _) = puller(dir.path(), config(1 << 30))?;
            store.set_layer_completed(&weights.digest, 2048);
            store.persist().await?;
        }
        let (store, puller) = puller(dir.path(), config(1 << 30))?;
        let lines = pull_lines(&puller, "test-small").await;
        let progress = layer_progress(&lines, &weights.digest);
        assert_eq!(progress.first(), Some(&(2048, weights.size)));
        assert_eq!(progress.last(), Some(&(weights.size, weights.size)));
        assert_eq!(statuses(&lines).last().map(String::as_str), Some("success"));
        assert!(store.installed_model(model.key()).is_some());
        Ok(())
    }

    #[tokio::test]
    async fn fails_at_percent_and_resumes() -> TestResult {
        let dir = tempfile::tempdir()?;
        let model = small()?;
        let at = (model.total_size() as f64 * 0.5).ceil() as u64;
        let failing = PullConfig {
            fail_at_percent: Some(50.0),
            ..config(1 << 30)
        };
        {
            let (store, puller) = puller(dir.path(), failing)?;
            let lines = pull_lines(&puller, "test-small").await;
            assert_eq!(lines.last(), Some(&Line::Error(INJECTED_FAILURE.into())));
            assert!(!statuses(&lines).contains(&"success".to_string()));
            assert_eq!(puller.model_completed(model), at);
            assert!(store.installed_model(model.key()).is_none());
            // Without FAIL_ONCE the same point fails again, right away.
            let again = pull_lines(&puller, "test-small").await;
            assert_eq!(again.last(), Some(&Line::Error(INJECTED_FAILURE.into())));
            assert_eq!(puller.stats.snapshot().pulls_failed, 2);
        }
        // A later process without the switch resumes from the saved bytes.
        let (_, puller) = puller(dir.path(), config(1 << 30))?;
        assert_eq!(puller.model_completed(model), at);
        let lines = pull_lines(&puller, "test-small").await;
        let weights = layer_progress(&lines, &model.layers[0].digest);
        assert_eq!(
            weights.first().map(|p| p.0),
            Some(at.min(model.layers[0].size))
        );
        assert_eq!(statuses(&lines).last().map(String::as_str), Some("success"));
        Ok(())
    }

    #[tokio::test]
    async fn fail_once_fails_only_the_first_pull() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (_, puller) = puller(
            dir.path(),
            PullConfig {
                fail_at_percent: Some(30.0),
                fail_once: true,
                ..config(1 << 30)
            },
        )?;
        let first = pull_lines(&puller, "test-small").await;
        assert_eq!(first.last(), Some(&Line::Error(INJECTED_FAILURE.into())));
        let second = pull_lines(&puller, "test-small").await;
        assert_eq!(
            statuses(&second).last().map(String::as_str),
            Some("success")
        );
        let stats = puller.stats.snapshot();
        assert_eq!((stats.pulls_failed, stats.pulls_completed), (1, 1));
        Ok(())
    }

    #[tokio::test]
    async fn stops_when_the_client_goes_away() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (store, puller) = puller(dir.path(), config(100_000))?;
        let puller = Arc::new(puller);
        let model = catalog::find("tinyllama").ok_or("tinyllama missing")?;
        let (tx, mut rx) = mpsc::channel(16);
        let task = tokio::spawn({
            let puller = Arc::clone(&puller);
            async move { puller.run(model.key(), Some(model), &tx).await }
        });
        // Read a few progress lines, then hang up.
        for _ in 0..4 {
            rx.recv().await.ok_or("stream ended early")?;
        }
        drop(rx);
        tokio::time::timeout(Duration::from_secs(5), task).await??;
        let stats = puller.stats.snapshot();
        assert_eq!((stats.pulls_cancelled, stats.pulls_active), (1, 0));
        let saved = store.layer_completed(&model.layers[0].digest);
        assert!(saved > 0 && saved < model.layers[0].size);
        Ok(())
    }
}
