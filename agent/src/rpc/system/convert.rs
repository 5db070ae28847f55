//! SystemService's conversions between proto messages and the system
//! domain's types: readings (snapshots, GPUs, processes), thresholds and
//! alerts. The alert conversion also serves the event stream
//! (`rpc/events.rs`).

use std::time::Duration;

use omnipanel_proto::v1 as pb;

use crate::rpc::convert::{FromProto, IntoProto, TryFromProto};
use omnipanel_core::{
    error::Error,
    system::{
        AlertingView,
        alerts::{AlertPage, ThresholdChange, ThresholdSet},
        metrics::{GpuReading, ProcessEntry, ProcessListing, ProcessOrder, ProcessStats, Sample},
        sampler::SamplerStats,
        thresholds::{self, Alert, Comparison, Threshold, ThresholdInput},
    },
};

fn millis(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

fn millis_i64(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl IntoProto<pb::ProcessMetrics> for &ProcessStats {
    fn into_proto(self) -> pb::ProcessMetrics {
        pb::ProcessMetrics {
            pid: self.pid,
            name: self.name.clone(),
            cpu_percent: self.cpu_percent,
            rss_bytes: self.rss,
            vram_bytes: self.vram,
            process_count: self.process_count,
        }
    }
}

impl IntoProto<pb::GpuMetrics> for &GpuReading {
    fn into_proto(self) -> pb::GpuMetrics {
        match self {
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
}

/// A reading as a snapshot; the stats describe the sampler now.
impl IntoProto<pb::Snapshot> for (&Sample, SamplerStats) {
    fn into_proto(self) -> pb::Snapshot {
        let (sample, stats) = self;
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
            agent: sample.agent.as_ref().map(IntoProto::into_proto),
            ollama: sample.ollama.as_ref().map(IntoProto::into_proto),
            gpu: Some((&sample.gpu).into_proto()),
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
}

impl IntoProto<pb::Comparison> for Comparison {
    fn into_proto(self) -> pb::Comparison {
        match self {
            Comparison::Above => pb::Comparison::Above,
            Comparison::Below => pb::Comparison::Below,
        }
    }
}

/// A threshold's comparison as sent; an unknown one is `None`, which the
/// domain refuses with the threshold's position.
impl FromProto<i32> for Option<Comparison> {
    fn from_proto(value: i32) -> Self {
        match pb::Comparison::try_from(value) {
            Ok(pb::Comparison::Above) => Some(Comparison::Above),
            Ok(pb::Comparison::Below) => Some(Comparison::Below),
            _ => None,
        }
    }
}

impl IntoProto<pb::Threshold> for &Threshold {
    fn into_proto(self) -> pb::Threshold {
        pb::Threshold {
            metric: self.metric.name().to_owned(),
            comparison: self.comparison.into_proto().into(),
            value: self.value,
            hold_ms: millis_i64(self.hold),
            clear_value: Some(self.clear),
        }
    }
}

impl FromProto<pb::Threshold> for ThresholdInput {
    fn from_proto(threshold: pb::Threshold) -> Self {
        ThresholdInput {
            metric: threshold.metric,
            comparison: FromProto::from_proto(threshold.comparison),
            value: threshold.value,
            hold_ms: threshold.hold_ms,
            clear: threshold.clear_value,
        }
    }
}

/// The new threshold set asked for, and the version it expects to replace.
impl TryFromProto<pb::SetThresholdsRequest> for (ThresholdChange, u64) {
    fn try_from_proto(request: pb::SetThresholdsRequest) -> Result<Self, Error> {
        let change = if request.reset_to_defaults {
            if !request.thresholds.is_empty() {
                return Err(Error::invalid_argument(
                    "thresholds",
                    "leave it empty when reset_to_defaults is set",
                ));
            }
            ThresholdChange::Defaults
        } else {
            ThresholdChange::Replace(
                request
                    .thresholds
                    .into_iter()
                    .map(FromProto::from_proto)
                    .collect(),
            )
        };
        Ok((change, request.expected_version))
    }
}

impl IntoProto<pb::GetThresholdsResponse> for AlertingView {
    fn into_proto(self) -> pb::GetThresholdsResponse {
        pb::GetThresholdsResponse {
            thresholds: self
                .set
                .thresholds
                .iter()
                .map(IntoProto::into_proto)
                .collect(),
            version: self.set.version,
            defaults: self.set.defaults,
            alerts_enabled: self.enabled,
            alert_interval_ms: millis(self.interval),
            metrics: thresholds::METRICS
                .iter()
                .map(|spec| pb::MetricInfo {
                    name: spec.name.to_owned(),
                    description: spec.description.to_owned(),
                    unit: spec.unit.to_owned(),
                    per_subject: spec.per_subject,
                })
                .collect(),
        }
    }
}

impl IntoProto<pb::SetThresholdsResponse> for ThresholdSet {
    fn into_proto(self) -> pb::SetThresholdsResponse {
        pb::SetThresholdsResponse {
            thresholds: self.thresholds.iter().map(IntoProto::into_proto).collect(),
            version: self.version,
            defaults: self.defaults,
        }
    }
}

/// By reference: alerts are published and kept by the domain.
impl IntoProto<pb::Alert> for &Alert {
    fn into_proto(self) -> pb::Alert {
        let cleared = self.cleared.as_ref();
        pb::Alert {
            id: self.id,
            metric: self.key.metric.name().to_owned(),
            comparison: self.key.comparison.into_proto().into(),
            subject: self.key.subject.clone(),
            threshold_value: self.threshold_value,
            clear_value: self.clear_value,
            hold_ms: millis_i64(self.hold),
            state: if cleared.is_some() {
                pb::AlertState::Cleared
            } else {
                pb::AlertState::Active
            }
            .into(),
            value: self.value,
            peak_value: self.peak,
            raised_unix_ms: self.raised_ms,
            cleared_unix_ms: cleared.map_or(0, |c| c.at_ms),
            cleared_value: cleared.map_or(0.0, |c| c.value),
            clear_reason: cleared.map(|c| c.reason.clone()).unwrap_or_default(),
            message: self.message(),
        }
    }
}

/// One item of WatchAlerts: what happened to the alert, and the alert.
impl IntoProto<pb::WatchAlertsResponse> for (pb::AlertChange, &Alert) {
    fn into_proto(self) -> pb::WatchAlertsResponse {
        let (change, alert) = self;
        pb::WatchAlertsResponse {
            change: change.into(),
            alert: Some(alert.into_proto()),
        }
    }
}

impl IntoProto<pb::ListAlertsResponse> for AlertPage {
    fn into_proto(self) -> pb::ListAlertsResponse {
        pb::ListAlertsResponse {
            alerts: self.alerts.iter().map(IntoProto::into_proto).collect(),
            next_before_id: self.next_before_id,
        }
    }
}

/// The `sort` field of ListProcesses (a proto enum travels as `i32`).
impl TryFromProto<i32> for ProcessOrder {
    fn try_from_proto(value: i32) -> Result<Self, Error> {
        match pb::ProcessSort::try_from(value) {
            Ok(pb::ProcessSort::Unspecified | pb::ProcessSort::Cpu) => Ok(ProcessOrder::Cpu),
            Ok(pb::ProcessSort::Memory) => Ok(ProcessOrder::Memory),
            Err(_) => Err(Error::invalid_argument(
                "sort",
                "choose PROCESS_SORT_CPU or PROCESS_SORT_MEMORY",
            )),
        }
    }
}

impl IntoProto<pb::ProcessInfo> for ProcessEntry {
    fn into_proto(self) -> pb::ProcessInfo {
        pb::ProcessInfo {
            pid: self.pid,
            parent_pid: self.parent_pid,
            name: self.name,
            command: self.command,
            cpu_percent: self.cpu_percent,
            rss_bytes: self.rss,
            virtual_bytes: self.virtual_bytes,
            uid: self.uid,
            start_time_unix_ms: self.start_time_ms,
            status: self.status,
        }
    }
}

impl IntoProto<pb::ListProcessesResponse> for ProcessListing {
    fn into_proto(self) -> pb::ListProcessesResponse {
        pb::ListProcessesResponse {
            processes: self.processes.into_proto(),
            total_processes: self.total,
            time_unix_ms: self.time_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnipanel_core::{
        error::ErrorKind,
        system::{
            metrics::{GpuProcess, GpuStats},
            thresholds::{AlertKey, Cleared, Metric},
        },
    };

    fn threshold() -> Threshold {
        Threshold {
            metric: Metric::CpuUsage,
            comparison: Comparison::Above,
            value: 90.0,
            hold: Duration::from_secs(30),
            clear: 85.0,
        }
    }

    fn alert(cleared: Option<Cleared>) -> Alert {
        Alert {
            id: 7,
            key: AlertKey {
                metric: Metric::DiskFree,
                comparison: Comparison::Below,
                subject: "/".to_owned(),
            },
            threshold_value: 10.0,
            clear_value: 12.0,
            hold: Duration::from_millis(1500),
            value: 8.0,
            peak: 5.0,
            raised_ms: 100,
            cleared,
        }
    }

    fn threshold_wire(comparison: i32) -> pb::Threshold {
        pb::Threshold {
            metric: "cpu.usage_percent".to_owned(),
            comparison,
            value: 90.0,
            hold_ms: 30_000,
            clear_value: None,
        }
    }

    #[test]
    fn a_snapshot_reports_the_reading_and_the_sampler() {
        let sample = Sample {
            time_ms: 5,
            run: 3,
            hostname: "box".to_owned(),
            agent: Some(ProcessStats {
                pid: 1,
                name: "omnipanel-agent".to_owned(),
                ..ProcessStats::default()
            }),
            ..Sample::default()
        };
        let stats = SamplerStats {
            runs: 99,
            subscribers: 2,
            period: Some(Duration::from_millis(500)),
            alerts_active: true,
        };
        let wire: pb::Snapshot = (&sample, stats).into_proto();
        assert_eq!(wire.time_unix_ms, 5);
        assert_eq!(wire.hostname, "box");
        assert_eq!(
            wire.agent.map(|a| a.name),
            Some("omnipanel-agent".to_owned())
        );
        assert!(wire.ollama.is_none());
        let sampler = wire.sampler.unwrap_or_default();
        assert_eq!(sampler.runs, 3, "the reading's own number");
        assert_eq!(sampler.subscribers, 2);
        assert_eq!(sampler.interval_ms, 500);
        assert!(sampler.alerts_active);
        let idle = SamplerStats {
            period: None,
            ..stats
        };
        let wire: pb::Snapshot = (&sample, idle).into_proto();
        assert_eq!(wire.sampler.map(|s| s.interval_ms), Some(0));
    }

    #[test]
    fn process_stats_keep_their_fields() {
        let wire: pb::ProcessMetrics = (&ProcessStats {
            pid: 4,
            name: "ollama".to_owned(),
            cpu_percent: 12.5,
            rss: 10,
            vram: 20,
            process_count: 3,
        })
            .into_proto();
        assert_eq!(
            wire,
            pb::ProcessMetrics {
                pid: 4,
                name: "ollama".to_owned(),
                cpu_percent: 12.5,
                rss_bytes: 10,
                vram_bytes: 20,
                process_count: 3,
            }
        );
    }

    #[test]
    fn every_gpu_reading_has_its_status() {
        let not_read: pb::GpuMetrics = (&GpuReading::NotRead).into_proto();
        assert_eq!(not_read.status, pb::GpuStatus::Unspecified as i32);
        let absent: pb::GpuMetrics = (&GpuReading::Absent("no NVML".to_owned())).into_proto();
        assert_eq!(absent.status, pb::GpuStatus::Absent as i32);
        assert_eq!(absent.detail, "no NVML");
        let error: pb::GpuMetrics = (&GpuReading::Error("busy".to_owned())).into_proto();
        assert_eq!(error.status, pb::GpuStatus::Error as i32);
        assert_eq!(error.detail, "busy");
        let present: pb::GpuMetrics = (&GpuReading::Present {
            driver_version: "550".to_owned(),
            gpus: vec![GpuStats {
                index: 0,
                name: "RTX".to_owned(),
                memory_used: 1,
                memory_total: 2,
                processes: vec![GpuProcess {
                    pid: 9,
                    name: "ollama".to_owned(),
                    memory: Some(1),
                }],
                ..GpuStats::default()
            }],
        })
            .into_proto();
        assert_eq!(present.status, pb::GpuStatus::Present as i32);
        assert_eq!(present.driver_version, "550");
        assert_eq!(present.gpus.len(), 1);
        assert_eq!(present.gpus[0].memory_total_bytes, 2);
        assert_eq!(present.gpus[0].processes[0].pid, 9);
    }

    #[test]
    fn comparisons_map_both_ways() {
        for comparison in [Comparison::Above, Comparison::Below] {
            let wire: pb::Comparison = comparison.into_proto();
            assert_eq!(
                Option::<Comparison>::from_proto(wire.into()),
                Some(comparison)
            );
        }
        assert_eq!(Option::<Comparison>::from_proto(0), None);
        assert_eq!(Option::<Comparison>::from_proto(42), None);
    }

    #[test]
    fn a_threshold_goes_out_with_its_clear_value() {
        let wire: pb::Threshold = (&threshold()).into_proto();
        assert_eq!(
            wire,
            pb::Threshold {
                metric: "cpu.usage_percent".to_owned(),
                comparison: pb::Comparison::Above.into(),
                value: 90.0,
                hold_ms: 30_000,
                clear_value: Some(85.0),
            }
        );
    }

    #[test]
    fn a_threshold_comes_in_as_input_for_the_domain_to_check() {
        let input = ThresholdInput::from_proto(threshold_wire(pb::Comparison::Below.into()));
        assert_eq!(
            input,
            ThresholdInput {
                metric: "cpu.usage_percent".to_owned(),
                comparison: Some(Comparison::Below),
                value: 90.0,
                hold_ms: 30_000,
                clear: None,
            }
        );
    }

    #[test]
    fn set_thresholds_replaces_or_resets() -> Result<(), Error> {
        let (change, version) =
            <(ThresholdChange, u64)>::try_from_proto(pb::SetThresholdsRequest {
                thresholds: vec![threshold_wire(pb::Comparison::Above.into())],
                expected_version: 4,
                reset_to_defaults: false,
            })?;
        assert_eq!(version, 4);
        assert!(matches!(change, ThresholdChange::Replace(ref inputs) if inputs.len() == 1));
        let (change, _) = <(ThresholdChange, u64)>::try_from_proto(pb::SetThresholdsRequest {
            thresholds: Vec::new(),
            expected_version: 0,
            reset_to_defaults: true,
        })?;
        assert_eq!(change, ThresholdChange::Defaults);
        Ok(())
    }

    #[test]
    fn a_reset_with_thresholds_names_the_field() {
        let err = <(ThresholdChange, u64)>::try_from_proto(pb::SetThresholdsRequest {
            thresholds: vec![threshold_wire(pb::Comparison::Above.into())],
            expected_version: 0,
            reset_to_defaults: true,
        })
        .expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(err.field(), Some("thresholds"));
        assert_eq!(
            err.message(),
            "thresholds: leave it empty when reset_to_defaults is set"
        );
    }

    #[test]
    fn alerting_lists_every_metric() {
        let wire: pb::GetThresholdsResponse = AlertingView {
            set: ThresholdSet {
                thresholds: vec![threshold()],
                version: 3,
                defaults: false,
            },
            enabled: true,
            interval: Duration::from_secs(5),
        }
        .into_proto();
        assert_eq!(wire.thresholds.len(), 1);
        assert_eq!(wire.version, 3);
        assert!(!wire.defaults);
        assert!(wire.alerts_enabled);
        assert_eq!(wire.alert_interval_ms, 5000);
        assert_eq!(wire.metrics.len(), thresholds::METRICS.len());
        assert_eq!(wire.metrics[0].name, thresholds::METRICS[0].name);
    }

    #[test]
    fn a_threshold_set_answers_set_thresholds() {
        let wire: pb::SetThresholdsResponse = ThresholdSet {
            thresholds: vec![threshold()],
            version: 8,
            defaults: true,
        }
        .into_proto();
        assert_eq!(wire.thresholds.len(), 1);
        assert_eq!(wire.version, 8);
        assert!(wire.defaults);
    }

    #[test]
    fn an_alert_is_active_until_cleared() {
        let active: pb::Alert = (&alert(None)).into_proto();
        assert_eq!(active.state, pb::AlertState::Active as i32);
        assert_eq!(active.metric, "disk.free_percent");
        assert_eq!(active.comparison, pb::Comparison::Below as i32);
        assert_eq!(active.hold_ms, 1500);
        assert_eq!(
            (
                active.cleared_unix_ms,
                active.cleared_value,
                active.clear_reason.as_str()
            ),
            (0, 0.0, "")
        );
        assert_eq!(active.message, alert(None).message());
        let cleared: pb::Alert = (&alert(Some(Cleared {
            at_ms: 200,
            value: 15.0,
            reason: "recovered".to_owned(),
        })))
            .into_proto();
        assert_eq!(cleared.state, pb::AlertState::Cleared as i32);
        assert_eq!(
            (
                cleared.cleared_unix_ms,
                cleared.cleared_value,
                cleared.clear_reason.as_str()
            ),
            (200, 15.0, "recovered")
        );
    }

    #[test]
    fn watch_items_and_pages_carry_alerts() {
        let item: pb::WatchAlertsResponse = (pb::AlertChange::Raised, &alert(None)).into_proto();
        assert_eq!(item.change, pb::AlertChange::Raised as i32);
        assert_eq!(item.alert.map(|a| a.id), Some(7));
        let page: pb::ListAlertsResponse = AlertPage {
            alerts: vec![alert(None)],
            next_before_id: 7,
        }
        .into_proto();
        assert_eq!(page.alerts.len(), 1);
        assert_eq!(page.next_before_id, 7);
    }

    #[test]
    fn process_sort_defaults_to_cpu() -> Result<(), Error> {
        assert_eq!(
            ProcessOrder::try_from_proto(pb::ProcessSort::Unspecified.into())?,
            ProcessOrder::Cpu
        );
        assert_eq!(
            ProcessOrder::try_from_proto(pb::ProcessSort::Cpu.into())?,
            ProcessOrder::Cpu
        );
        assert_eq!(
            ProcessOrder::try_from_proto(pb::ProcessSort::Memory.into())?,
            ProcessOrder::Memory
        );
        Ok(())
    }

    #[test]
    fn an_unknown_process_sort_names_the_field() {
        let err = ProcessOrder::try_from_proto(99).expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(err.field(), Some("sort"));
        assert_eq!(
            err.message(),
            "sort: choose PROCESS_SORT_CPU or PROCESS_SORT_MEMORY"
        );
    }

    #[test]
    fn a_process_listing_keeps_its_order_and_total() {
        let wire: pb::ListProcessesResponse = ProcessListing {
            processes: vec![
                ProcessEntry {
                    pid: 2,
                    name: "b".to_owned(),
                    uid: Some(1000),
                    ..ProcessEntry::default()
                },
                ProcessEntry {
                    pid: 1,
                    name: "a".to_owned(),
                    ..ProcessEntry::default()
                },
            ],
            total: 300,
            time_ms: 9,
        }
        .into_proto();
        assert_eq!(wire.total_processes, 300);
        assert_eq!(wire.time_unix_ms, 9);
        let pids: Vec<u32> = wire.processes.iter().map(|p| p.pid).collect();
        assert_eq!(pids, vec![2, 1]);
        assert_eq!(wire.processes[0].uid, Some(1000));
    }
}
