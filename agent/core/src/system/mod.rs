//! The machine: metrics, GPUs and threshold alerts. [`SystemMonitor`] is
//! the facade SystemService calls. It owns the one shared sampler
//! (`sampler`), which reads the machine through `probe` (sysinfo, statvfs,
//! `/proc`, and NVML in `gpu`) only while someone listens; the alert
//! evaluator (`alerts`, with the pure rules in `thresholds`) follows every
//! reading and, while alerts are on and thresholds exist, keeps the sampler
//! running at the alert interval (`[system] alert_interval`, 5 s by
//! default). `[system] alerts = false` turns that off, and an agent nobody
//! streams from then reads nothing at all.

pub mod alerts;
mod events;
pub mod fixed;
pub mod gpu;
pub mod metrics;
pub mod probe;
pub mod processes;
pub mod sampler;
pub mod thresholds;

use std::{sync::Arc, time::Duration};

use tokio::sync::{Mutex, watch};
use tokio_util::sync::CancellationToken;

use crate::{
    config::SystemSettings,
    error::{Error, Result},
    events::Publisher,
    ollama::supervisor::{ServerState, ServerStatus},
    store::Store,
    system::{
        alerts::{AlertPage, Alerts, ThresholdChange, ThresholdSet},
        gpu::Nvidia,
        metrics::{ProcessListing, ProcessOrder, Sample},
        probe::{MachineProbe, OllamaHint, SampleSource},
        sampler::{MetricsSubscription, Sampler, SamplerStats, Unsupported},
        thresholds::Alert,
    },
    tokens::Caller,
};
pub use events::SystemEvent;

/// Processes listed when the caller does not say how many.
pub const DEFAULT_PROCESS_LIMIT: u32 = 10;

/// Stream interval when the caller does not say.
pub const DEFAULT_STREAM_INTERVAL: Duration = Duration::from_secs(1);

/// The thresholds and how alerting is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertingView {
    /// Thresholds in effect.
    pub set: ThresholdSet,
    /// `[system] alerts`.
    pub enabled: bool,
    /// `[system] alert_interval`.
    pub interval: Duration,
}

/// The system facade.
#[derive(Debug)]
pub struct SystemMonitor {
    sampler: Arc<Sampler>,
    alerts: Arc<Alerts>,
    settings: Mutex<SystemSettings>,
    shutdown: CancellationToken,
}

impl SystemMonitor {
    /// Open alerting (thresholds and history from `store`) and prepare the
    /// sampler; it starts reading only when asked to.
    pub async fn start(
        settings: &SystemSettings,
        store: Store,
        bus: Publisher<SystemEvent>,
    ) -> Result<Arc<Self>> {
        let probe = if fixed::wanted() {
            tracing::warn!(
                "{}=1: reporting a fixed, made-up machine (tests only)",
                fixed::ENV
            );
            Ok(None)
        } else {
            MachineProbe::new(Box::new(Nvidia::from_env())).map(Some)
        };
        let source: Box<dyn SampleSource> = match probe {
            Ok(None) => Box::new(fixed::Fixed::new()),
            Ok(Some(probe)) => Box::new(probe),
            Err(err) => {
                tracing::warn!(error = %err, "system metrics are not available here");
                Box::new(Unsupported(format!(
                    "system metrics are not available on this platform: {err}"
                )))
            }
        };
        let shutdown = CancellationToken::new();
        let sampler = Arc::new(Sampler::new(source, shutdown.clone()));
        let alerts = Alerts::open(store, bus, settings.alerts, settings.alert_interval).await?;
        let monitor = Arc::new(Self {
            sampler,
            alerts,
            settings: Mutex::new(settings.clone()),
            shutdown,
        });
        monitor.spawn_alert_evaluator();
        monitor.update_alert_demand().await;
        Ok(monitor)
    }

    /// Feed every reading to the alert engine. Waits on the readings
    /// channel, so it costs nothing while nothing is read.
    fn spawn_alert_evaluator(&self) {
        let mut readings = self.sampler.readings();
        let alerts = self.alerts.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    changed = readings.changed() => if changed.is_err() { return },
                }
                let sample = readings
                    .borrow_and_update()
                    .as_ref()
                    .map(|(_, s)| s.clone());
                if let Some(sample) = sample
                    && let Err(err) = alerts.observe(&sample).await
                {
                    tracing::warn!(error = %err, "alert evaluation failed");
                }
            }
        });
    }

    /// Alerts keep the sampler running only while enabled with thresholds.
    async fn update_alert_demand(&self) {
        let interval = self.settings.lock().await.alert_interval;
        let wanted = self.alerts.wants_readings().await.then_some(interval);
        self.sampler.set_alert_interval(wanted);
    }

    /// Stop the sampler and the alert evaluator for good. Idempotent.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Learn the Ollama server's process from its supervisor.
    pub fn follow_ollama(&self, status: watch::Receiver<ServerStatus>) {
        self.sampler.set_ollama_hints(move || {
            let status = status.borrow();
            OllamaHint {
                pid: status.pid,
                external: status.state == ServerState::External,
            }
        });
    }

    /// Apply changed `[system]` settings.
    pub async fn apply_settings(&self, settings: &SystemSettings) -> Result<()> {
        {
            let mut current = self.settings.lock().await;
            if *current == *settings {
                return Ok(());
            }
            *current = settings.clone();
        }
        self.alerts
            .set_enabled(settings.alerts, settings.alert_interval)
            .await?;
        self.update_alert_demand().await;
        Ok(())
    }

    /// A current reading and the sampler's state.
    pub async fn snapshot(&self) -> Result<(Arc<Sample>, SamplerStats)> {
        let sample = self.sampler.snapshot().await?;
        Ok((sample, self.sampler.stats()))
    }

    /// Readings every `interval` (0: the default; raised to the minimum).
    pub fn subscribe(&self, interval: Duration) -> MetricsSubscription {
        let interval = if interval.is_zero() {
            DEFAULT_STREAM_INTERVAL
        } else {
            interval
        };
        self.sampler.subscribe(interval)
    }

    /// The sampler's state.
    pub fn stats(&self) -> SamplerStats {
        self.sampler.stats()
    }

    /// The top `limit` processes (0: the default).
    /// The top processes for `caller`: a token sees the command lines only
    /// of the agent user's own processes (another user's may carry secrets
    /// passed as arguments); the owner sees what `ps` shows them.
    pub async fn processes(
        &self,
        caller: &Caller,
        order: ProcessOrder,
        limit: u32,
    ) -> Result<ProcessListing> {
        let limit = match limit {
            0 => DEFAULT_PROCESS_LIMIT,
            n if n as usize > processes::MAX_LIMIT => {
                return Err(Error::invalid_argument(
                    "limit",
                    format!("at most {} processes, {n} were asked", processes::MAX_LIMIT),
                ));
            }
            n => n,
        };
        let mut listing = self.sampler.processes(order, limit as usize).await?;
        if !caller.is_owner() {
            listing.hide_foreign_command_lines(omnipanel_paths::current_uid());
        }
        Ok(listing)
    }

    /// The thresholds and alert settings.
    pub async fn alerting(&self) -> AlertingView {
        let settings = self.settings.lock().await.clone();
        AlertingView {
            set: self.alerts.thresholds().await,
            enabled: settings.alerts,
            interval: settings.alert_interval,
        }
    }

    /// Change the thresholds; the next alert reading is taken at once so
    /// the new set is judged without waiting a whole interval.
    pub async fn set_thresholds(
        &self,
        change: ThresholdChange,
        expected_version: u64,
    ) -> Result<ThresholdSet> {
        let set = self.alerts.set_thresholds(change, expected_version).await?;
        self.update_alert_demand().await;
        self.sampler.hurry_alerts();
        Ok(set)
    }

    /// A page of alert history.
    pub async fn list_alerts(
        &self,
        limit: u32,
        before_id: i64,
        active_only: bool,
    ) -> Result<AlertPage> {
        self.alerts.list(limit, before_id, active_only).await
    }

    /// The active alerts.
    pub async fn active_alerts(&self) -> Vec<Alert> {
        self.alerts.active().await
    }

    /// Free and total memory of the GPU with the most free memory, for the
    /// Ollama fit check. Blocks (run it off the executor).
    pub fn gpu_memory_blocking(&self) -> Option<(u64, u64)> {
        self.sampler.gpu_memory_blocking()
    }
}
