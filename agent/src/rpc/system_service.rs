//! `omnipanel.v1.SystemService`: validates requests, calls the system
//! facade and converts readings, thresholds and alerts to their proto
//! messages. Metric streams follow one subscription to the shared sampler;
//! alert watches follow the event bus's "alerts" topic.

use crate::rpc::status::{IntoStatus, OrStatus};
use std::{collections::HashSet, sync::Arc, time::Duration};

use omnipanel_proto::v1 as pb;
use pb::system_service_server::SystemService;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::events::{AgentEvent, EventBus};
use crate::rpc::streaming::{ResponseStream, spawn_stream};
use omnipanel_core::{
    error::Error,
    events::{Cursor, Delivery},
    system::{
        SystemEvent, SystemMonitor,
        alerts::ThresholdChange,
        metrics::{GpuReading, ProcessEntry, ProcessOrder, ProcessStats, Sample},
        sampler::SamplerStats,
        thresholds::{self, Alert, Comparison, Threshold, ThresholdInput},
    },
};

/// The SystemService implementation.
#[derive(Debug, Clone)]
pub struct SystemApi {
    system: Arc<SystemMonitor>,
    bus: Arc<EventBus>,
    shutdown: CancellationToken,
}

impl SystemApi {
    /// Serve `system`; alert watches follow `bus`; streams end on
    /// `shutdown`.
    pub fn new(
        system: Arc<SystemMonitor>,
        bus: Arc<EventBus>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            system,
            bus,
            shutdown,
        }
    }
}

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

fn process_to_proto(stats: &ProcessStats) -> pb::ProcessMetrics {
    pb::ProcessMetrics {
        pid: stats.pid,
        name: stats.name.clone(),
        cpu_percent: stats.cpu_percent,
        rss_bytes: stats.rss,
        vram_bytes: stats.vram,
        process_count: stats.process_count,
    }
}

fn gpu_to_proto(reading: &GpuReading) -> pb::GpuMetrics {
    match reading {
        GpuReading::NotRead => pb::GpuMetrics {
            status: pb::GpuStatus::Unspecified.into(),
            ..pb::GpuMetrics::default()
        },
        GpuReading::Absent(why) => pb::GpuMetrics {
            status: pb::GpuStatus::Absent.into(),
            detail: why.clone(),
            ..pb::GpuMetrics::default()
        },
        GpuReading::Error(why) => pb::GpuMetrics {
            status: pb::GpuStatus::Error.into(),
            detail: why.clone(),
            ..pb::GpuMetrics::default()
        },
        GpuReading::Present {
            driver_version,
            gpus,
        } => pb::GpuMetrics {
            status: pb::GpuStatus::Present.into(),
            detail: String::new(),
            driver_version: driver_version.clone(),
            gpus: gpus
                .iter()
                .map(|gpu| pb::Gpu {
                    index: gpu.index,
                    name: gpu.name.clone(),
                    uuid: gpu.uuid.clone(),
                    utilization_percent: gpu.utilization_percent,
                    memory_used_bytes: gpu.memory_used,
                    memory_total_bytes: gpu.memory_total,
                    temperature_celsius: gpu.temperature_celsius,
                    power_watts: gpu.power_watts,
                    processes: gpu
                        .processes
                        .iter()
                        .map(|p| pb::GpuProcess {
                            pid: p.pid,
                            name: p.name.clone(),
                            memory_bytes: p.memory,
                        })
                        .collect(),
                })
                .collect(),
        },
    }
}

/// A reading as a proto snapshot; `stats` describes the sampler now.
pub fn snapshot_to_proto(sample: &Sample, stats: SamplerStats) -> pb::Snapshot {
    pb::Snapshot {
        time_unix_ms: sample.time_ms,
        cpu: Some(pb::CpuMetrics {
            usage_percent: sample.cpu.usage_percent,
            core_usage_percent: sample.cpu.per_core.clone(),
            logical_cores: u32::try_from(sample.cpu.per_core.len()).unwrap_or(u32::MAX),
            physical_cores: sample.cpu.physical_cores,
            brand: sample.cpu.brand.clone(),
        }),
        load: Some(pb::LoadAverage {
            one: sample.load.one,
            five: sample.load.five,
            fifteen: sample.load.fifteen,
        }),
        memory: Some(pb::MemoryMetrics {
            total_bytes: sample.memory.total,
            used_bytes: sample.memory.used,
            available_bytes: sample.memory.available,
            swap_total_bytes: sample.memory.swap_total,
            swap_used_bytes: sample.memory.swap_used,
        }),
        disks: sample
            .disks
            .iter()
            .map(|d| pb::DiskMetrics {
                mount_point: d.mount_point.clone(),
                file_system: d.file_system.clone(),
                device: d.device.clone(),
                total_bytes: d.total,
                used_bytes: d.used(),
                available_bytes: d.available,
                read_only: d.read_only,
                removable: d.removable,
            })
            .collect(),
        networks: sample
            .networks
            .iter()
            .map(|n| pb::NetworkMetrics {
                interface: n.interface.clone(),
                rx_bytes_per_second: n.rx_per_second,
                tx_bytes_per_second: n.tx_per_second,
                rx_total_bytes: n.rx_total,
                tx_total_bytes: n.tx_total,
            })
            .collect(),
        agent: sample.agent.as_ref().map(process_to_proto),
        ollama: sample.ollama.as_ref().map(process_to_proto),
        gpu: Some(gpu_to_proto(&sample.gpu)),
        sampler: Some(pb::SamplerStats {
            // The reading's own number identifies it; the rest is now.
            runs: sample.run,
            subscribers: stats.subscribers,
            interval_ms: stats.period.map_or(0, millis),
            alerts_active: stats.alerts_active,
        }),
        uptime_seconds: sample.uptime_seconds,
        hostname: sample.hostname.clone(),
    }
}

fn comparison_to_proto(comparison: Comparison) -> pb::Comparison {
    match comparison {
        Comparison::Above => pb::Comparison::Above,
        Comparison::Below => pb::Comparison::Below,
    }
}

fn comparison_from_proto(value: i32) -> Option<Comparison> {
    match pb::Comparison::try_from(value) {
        Ok(pb::Comparison::Above) => Some(Comparison::Above),
        Ok(pb::Comparison::Below) => Some(Comparison::Below),
        _ => None,
    }
}

fn threshold_to_proto(threshold: &Threshold) -> pb::Threshold {
    pb::Threshold {
        metric: threshold.metric.name().to_owned(),
        comparison: comparison_to_proto(threshold.comparison).into(),
        value: threshold.value,
        hold_ms: i64::try_from(threshold.hold.as_millis()).unwrap_or(i64::MAX),
        clear_value: Some(threshold.clear),
    }
}

/// An alert as its proto message.
pub fn alert_to_proto(alert: &Alert) -> pb::Alert {
    let cleared = alert.cleared.as_ref();
    pb::Alert {
        id: alert.id,
        metric: alert.key.metric.name().to_owned(),
        comparison: comparison_to_proto(alert.key.comparison).into(),
        subject: alert.key.subject.clone(),
        threshold_value: alert.threshold_value,
        clear_value: alert.clear_value,
        hold_ms: i64::try_from(alert.hold.as_millis()).unwrap_or(i64::MAX),
        state: if cleared.is_some() {
            pb::AlertState::Cleared
        } else {
            pb::AlertState::Active
        }
        .into(),
        value: alert.value,
        peak_value: alert.peak,
        raised_unix_ms: alert.raised_ms,
        cleared_unix_ms: cleared.map_or(0, |c| c.at_ms),
        cleared_value: cleared.map_or(0.0, |c| c.value),
        clear_reason: cleared.map(|c| c.reason.clone()).unwrap_or_default(),
        message: alert.message(),
    }
}

fn entry_to_proto(entry: ProcessEntry) -> pb::ProcessInfo {
    pb::ProcessInfo {
        pid: entry.pid,
        parent_pid: entry.parent_pid,
        name: entry.name,
        command: entry.command,
        cpu_percent: entry.cpu_percent,
        rss_bytes: entry.rss,
        virtual_bytes: entry.virtual_bytes,
        uid: entry.uid,
        start_time_unix_ms: entry.start_time_ms,
        status: entry.status,
    }
}

fn watch_item(change: pb::AlertChange, alert: &Alert) -> pb::WatchAlertsResponse {
    pb::WatchAlertsResponse {
        change: change.into(),
        alert: Some(alert_to_proto(alert)),
    }
}

#[tonic::async_trait]
impl SystemService for SystemApi {
    async fn get_snapshot(
        &self,
        _request: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::GetSnapshotResponse>, Status> {
        let (sample, stats) = self.system.snapshot().await.or_status()?;
        Ok(Response::new(pb::GetSnapshotResponse {
            snapshot: Some(snapshot_to_proto(&sample, stats)),
        }))
    }

    type StreamMetricsStream = ResponseStream<pb::StreamMetricsResponse>;

    async fn stream_metrics(
        &self,
        request: Request<pb::StreamMetricsRequest>,
    ) -> Result<Response<Self::StreamMetricsStream>, Status> {
        let interval = Duration::from_millis(u64::from(request.into_inner().interval_ms));
        let mut subscription = self.system.subscribe(interval);
        let system = self.system.clone();
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            while let Some(sample) = subscription.next().await {
                let message = pb::StreamMetricsResponse {
                    snapshot: Some(snapshot_to_proto(&sample, system.stats())),
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn list_processes(
        &self,
        request: Request<pb::ListProcessesRequest>,
    ) -> Result<Response<pb::ListProcessesResponse>, Status> {
        let request = request.into_inner();
        let order = match pb::ProcessSort::try_from(request.sort) {
            Ok(pb::ProcessSort::Unspecified | pb::ProcessSort::Cpu) => ProcessOrder::Cpu,
            Ok(pb::ProcessSort::Memory) => ProcessOrder::Memory,
            Err(_) => {
                return Err(Error::invalid_argument(
                    "sort",
                    "choose PROCESS_SORT_CPU or PROCESS_SORT_MEMORY",
                )
                .into_status());
            }
        };
        let listing = self
            .system
            .processes(order, request.limit)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListProcessesResponse {
            processes: listing.processes.into_iter().map(entry_to_proto).collect(),
            total_processes: listing.total,
            time_unix_ms: listing.time_ms,
        }))
    }

    async fn get_thresholds(
        &self,
        _request: Request<pb::GetThresholdsRequest>,
    ) -> Result<Response<pb::GetThresholdsResponse>, Status> {
        let view = self.system.alerting().await;
        Ok(Response::new(pb::GetThresholdsResponse {
            thresholds: view.set.thresholds.iter().map(threshold_to_proto).collect(),
            version: view.set.version,
            defaults: view.set.defaults,
            alerts_enabled: view.enabled,
            alert_interval_ms: millis(view.interval),
            metrics: thresholds::METRICS
                .iter()
                .map(|spec| pb::MetricInfo {
                    name: spec.name.to_owned(),
                    description: spec.description.to_owned(),
                    unit: spec.unit.to_owned(),
                    per_subject: spec.per_subject,
                })
                .collect(),
        }))
    }

    async fn set_thresholds(
        &self,
        request: Request<pb::SetThresholdsRequest>,
    ) -> Result<Response<pb::SetThresholdsResponse>, Status> {
        let request = request.into_inner();
        let change = if request.reset_to_defaults {
            if !request.thresholds.is_empty() {
                return Err(Error::invalid_argument(
                    "thresholds",
                    "leave it empty when reset_to_defaults is set",
                )
                .into_status());
            }
            ThresholdChange::Defaults
        } else {
            ThresholdChange::Replace(
                request
                    .thresholds
                    .into_iter()
                    .map(|t| ThresholdInput {
                        metric: t.metric,
                        comparison: comparison_from_proto(t.comparison),
                        value: t.value,
                        hold_ms: t.hold_ms,
                        clear: t.clear_value,
                    })
                    .collect(),
            )
        };
        let set = self
            .system
            .set_thresholds(change, request.expected_version)
            .await
            .or_status()?;
        Ok(Response::new(pb::SetThresholdsResponse {
            thresholds: set.thresholds.iter().map(threshold_to_proto).collect(),
            version: set.version,
            defaults: set.defaults,
        }))
    }

    async fn list_alerts(
        &self,
        request: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let request = request.into_inner();
        let page = self
            .system
            .list_alerts(request.limit, request.before_id, request.active_only)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListAlertsResponse {
            alerts: page.alerts.iter().map(alert_to_proto).collect(),
            next_before_id: page.next_before_id,
        }))
    }

    type WatchAlertsStream = ResponseStream<pb::WatchAlertsResponse>;

    async fn watch_alerts(
        &self,
        _request: Request<pb::WatchAlertsRequest>,
    ) -> Result<Response<Self::WatchAlertsStream>, Status> {
        // Subscribe before reading the active alerts, so nothing raised in
        // between is missed; an alert seen in both is sent once.
        let mut events = self
            .bus
            .subscribe(Cursor::default(), vec!["alerts".to_owned()]);
        let active = self.system.active_alerts().await;
        let system = self.system.clone();
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            let mut sent_active: HashSet<i64> = HashSet::new();
            for alert in &active {
                sent_active.insert(alert.id);
                if tx
                    .send(Ok(watch_item(pb::AlertChange::Active, alert)))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            while let Some(delivery) = events.next().await {
                let items = match delivery {
                    Delivery::Event(event) => match &event.payload {
                        AgentEvent::System(SystemEvent::AlertRaised(alert))
                            if !sent_active.contains(&alert.id) =>
                        {
                            vec![watch_item(pb::AlertChange::Raised, alert)]
                        }
                        AgentEvent::System(SystemEvent::AlertCleared(alert)) => {
                            vec![watch_item(pb::AlertChange::Cleared, alert)]
                        }
                        _ => Vec::new(),
                    },
                    // Events were lost: resend what is active now.
                    Delivery::Gap { .. } => system
                        .active_alerts()
                        .await
                        .iter()
                        .map(|alert| watch_item(pb::AlertChange::Active, alert))
                        .collect(),
                    Delivery::CaughtUp { .. } => Vec::new(),
                };
                for item in items {
                    if tx.send(Ok(item)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(stream))
    }
}
