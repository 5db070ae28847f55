//! `omnipanel.v1.SystemService`: the thin handler over the system facade
//! (conversions of readings, thresholds and alerts in `convert.rs`). Metric streams follow one subscription to the shared sampler;
//! alert watches follow the event bus's "alerts" topic.

mod convert;

use crate::rpc::status::OrStatus;
use std::{collections::HashSet, sync::Arc, time::Duration};

use omnipanel_proto::v1 as pb;
use pb::system_service_server::SystemService;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::events::{AgentEvent, EventBus};
use crate::rpc::{
    access,
    convert::{IntoProto, TryFromProto},
    streaming::{ResponseStream, spawn_stream},
};
use omnipanel_core::{
    events::{Cursor, Delivery},
    system::{SystemEvent, SystemMonitor, alerts::ThresholdChange, metrics::ProcessOrder},
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

#[tonic::async_trait]
impl SystemService for SystemApi {
    async fn get_snapshot(
        &self,
        _request: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::GetSnapshotResponse>, Status> {
        let (sample, stats) = self.system.snapshot().await.or_status()?;
        Ok(Response::new(pb::GetSnapshotResponse {
            snapshot: Some((&*sample, stats).into_proto()),
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
                    snapshot: Some((&*sample, system.stats()).into_proto()),
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
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let order = ProcessOrder::try_from_proto(request.sort).or_status()?;
        let listing = self
            .system
            .processes(&caller, order, request.limit)
            .await
            .or_status()?;
        Ok(Response::new(listing.into_proto()))
    }

    async fn get_thresholds(
        &self,
        _request: Request<pb::GetThresholdsRequest>,
    ) -> Result<Response<pb::GetThresholdsResponse>, Status> {
        let view = self.system.alerting().await;
        Ok(Response::new(view.into_proto()))
    }

    async fn set_thresholds(
        &self,
        request: Request<pb::SetThresholdsRequest>,
    ) -> Result<Response<pb::SetThresholdsResponse>, Status> {
        let (change, expected_version) =
            <(ThresholdChange, u64)>::try_from_proto(request.into_inner()).or_status()?;
        let set = self
            .system
            .set_thresholds(change, expected_version)
            .await
            .or_status()?;
        Ok(Response::new(set.into_proto()))
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
        Ok(Response::new(page.into_proto()))
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
                    .send(Ok((pb::AlertChange::Active, alert).into_proto()))
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
                            vec![(pb::AlertChange::Raised, alert).into_proto()]
                        }
                        AgentEvent::System(SystemEvent::AlertCleared(alert)) => {
                            vec![(pb::AlertChange::Cleared, alert).into_proto()]
                        }
                        _ => Vec::new(),
                    },
                    // Events were lost: resend what is active now.
                    Delivery::Gap { .. } => system
                        .active_alerts()
                        .await
                        .iter()
                        .map(|alert| (pb::AlertChange::Active, alert).into_proto())
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
