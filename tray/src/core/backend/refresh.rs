//! Reads that mirror the agent's state: each list re-read as a whole
//! (on connect, after a gap, after an event or a command that changed it),
//! the metrics stream or snapshot, a followed log, and the activity log
//! read and followed while the Audit tab is shown.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use omnipanel_client::{
    Client,
    proto::v1::{
        GetAutostartRequest, GetServerStatusRequest, GetSnapshotRequest, GetThresholdsRequest,
        GetUpdateStatusRequest, ListAccessRequestsRequest, ListAlertsRequest, ListAuditRequest,
        ListClientsRequest, ListConfirmationsRequest, ListCrashReportsRequest, ListModelsRequest,
        ListProjectsRequest, ListProvidersRequest, ListPullsRequest, ListRunningModelsRequest,
        StreamMetricsRequest, TailLogsRequest, WatchAuditRequest,
    },
};

use super::{AuditFilter, Metrics, Sink, notice};
use crate::core::state::{AvailableUpdate, Update};

/// How many Ollama state events the session has applied. A status read
/// while one arrived may be older than it (on a loaded machine the reply
/// to a read started during `Starting` came after the `Running` event, and
/// the panel showed "starting" for good), so such a read is dropped: the
/// event is at least as new, and every later change comes as an event of
/// its own (the session subscribes before it reads).
#[derive(Clone, Debug, Default)]
pub(super) struct ServerEvents(Arc<AtomicU64>);

impl ServerEvents {
    /// An Ollama state event was applied.
    pub(super) fn applied(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    fn count(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

pub(super) async fn refresh_all(client: Client, sink: Sink, server_events: ServerEvents) {
    let events_before = server_events.count();
    let server = client
        .models()
        .get_server_status(GetServerStatusRequest {})
        .await;
    if let Ok(Some(status)) = server.map(|r| r.into_inner().status)
        && server_events.count() == events_before
    {
        sink(Update::Server(status));
    }
    refresh_models(client.clone(), sink.clone()).await;
    refresh_providers(client.clone(), sink.clone()).await;
    if let Ok(pulls) = client.models().list_pulls(ListPullsRequest {}).await {
        sink(Update::Pulls(pulls.into_inner().pulls));
    }
    refresh_projects(client.clone(), sink.clone()).await;
    refresh_alerts(client.clone(), sink.clone()).await;
    refresh_thresholds(client.clone(), sink.clone()).await;
    refresh_autostart(client.clone(), sink.clone()).await;
    refresh_access(client.clone(), sink.clone()).await;
    refresh_update(client, sink).await;
}

/// Re-read the access requests and confirmations waiting for the user, and
/// the admitted clients. Only the owner may list them: a tray that is not
/// the owner (an older agent, a TCP target with a token) shows none and
/// says why once in the log.
pub(super) async fn refresh_access(client: Client, sink: Sink) {
    match client
        .agent()
        .list_access_requests(ListAccessRequestsRequest {})
        .await
    {
        Ok(r) => sink(Update::AccessRequests(r.into_inner().requests)),
        Err(status) => tracing::info!("listing access requests: {}", client.error(status)),
    }
    match client
        .agent()
        .list_confirmations(ListConfirmationsRequest {})
        .await
    {
        Ok(r) => sink(Update::Confirmations(r.into_inner().confirmations)),
        Err(status) => tracing::info!("listing confirmations: {}", client.error(status)),
    }
    refresh_clients(client, sink).await;
}

pub(super) async fn refresh_clients(client: Client, sink: Sink) {
    match client.agent().list_clients(ListClientsRequest {}).await {
        Ok(r) => sink(Update::Clients(r.into_inner().clients)),
        Err(status) => tracing::info!("listing clients: {}", client.error(status)),
    }
}

/// How many entries the Audit tab reads when it opens or its filter changes.
const AUDIT_PAGE: u32 = 200;

/// Show the activity log matching `filter` and follow it until aborted.
/// The watch starts first so nothing between the page and the watch is
/// lost (an entry in both is kept once by the reducer).
pub(super) async fn follow_audit(client: Client, filter: AuditFilter, sink: Sink) {
    let filter = filter.trimmed();
    let unavailable = |status: tonic::Status| {
        let why = if status.code() == tonic::Code::Unimplemented {
            "this agent does not keep an activity log (update it to see who did what)".to_owned()
        } else {
            client.error(status).to_string()
        };
        sink(Update::AuditUnavailable(why));
    };
    let watch = client
        .agent()
        .watch_audit(WatchAuditRequest {
            client: filter.client.clone(),
            method: filter.method.clone(),
            project: String::new(),
            outcome: filter.outcome.clone(),
        })
        .await;
    let page = client
        .agent()
        .list_audit(ListAuditRequest {
            client: filter.client.clone(),
            method: filter.method.clone(),
            outcome: filter.outcome.clone(),
            page_size: AUDIT_PAGE,
            ..Default::default()
        })
        .await;
    match page {
        Ok(page) => sink(Update::Audit {
            entries: page.into_inner().entries,
            reset: true,
        }),
        Err(status) => return unavailable(status),
    }
    let mut stream = match watch {
        Ok(stream) => stream.into_inner(),
        Err(status) => {
            // The page is shown; only following is lost.
            tracing::info!("following the activity log: {}", client.error(status));
            return;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(response)) => {
                if let Some(entry) = response.entry {
                    sink(Update::Audit {
                        entries: vec![entry],
                        reset: false,
                    });
                }
            }
            Ok(None) => return,
            Err(status) => {
                tracing::info!("the activity log stream ended: {}", client.error(status));
                return;
            }
        }
    }
}

pub(super) async fn refresh_update(client: Client, sink: Sink) {
    // An agent without UpdateService (or that cannot tell) hides the item.
    let available = client
        .updates()
        .get_update_status(GetUpdateStatusRequest {})
        .await
        .ok()
        .map(tonic::Response::into_inner)
        .filter(|status| status.update_available)
        .and_then(|status| {
            let package_update = status.package_managed.map(|p| p.update_command);
            status.latest.map(|release| AvailableUpdate {
                version: release.version,
                package_update,
            })
        });
    sink(Update::UpdateAvailable(available));
}

pub(super) async fn refresh_models(client: Client, sink: Sink) {
    // Both fail while Ollama is down: show nothing rather than stale rows.
    let models = client
        .models()
        .list_models(ListModelsRequest::default())
        .await
        .map(|r| r.into_inner().models)
        .unwrap_or_default();
    sink(Update::Models(models));
    let running = client
        .models()
        .list_running_models(ListRunningModelsRequest::default())
        .await
        .map(|r| r.into_inner().models)
        .unwrap_or_default();
    sink(Update::Running(running));
}

/// Re-read the providers with their health (on connect, and when one is
/// added or removed; their health changes arrive as events).
pub(super) async fn refresh_providers(client: Client, sink: Sink) {
    match client
        .models()
        .list_providers(ListProvidersRequest {})
        .await
    {
        Ok(r) => sink(Update::Providers(r.into_inner().providers)),
        Err(status) => tracing::info!("listing providers: {}", client.error(status)),
    }
}

pub(super) async fn refresh_projects(client: Client, sink: Sink) {
    match client
        .projects()
        .list_projects(ListProjectsRequest {})
        .await
    {
        Ok(r) => sink(Update::Projects(r.into_inner().projects)),
        Err(status) => tracing::warn!("listing projects: {}", client.error(status)),
    }
}

pub(super) async fn refresh_alerts(client: Client, sink: Sink) {
    let mut system = client.system();
    let active = system
        .list_alerts(ListAlertsRequest {
            limit: 100,
            before_id: 0,
            active_only: true,
        })
        .await;
    let history = system
        .list_alerts(ListAlertsRequest {
            limit: 50,
            before_id: 0,
            active_only: false,
        })
        .await;
    match (active, history) {
        (Ok(active), Ok(history)) => sink(Update::Alerts {
            active: active.into_inner().alerts,
            history: history.into_inner().alerts,
        }),
        (Err(status), _) | (_, Err(status)) => {
            tracing::warn!("listing alerts: {}", client.error(status));
        }
    }
}

pub(super) async fn refresh_thresholds(client: Client, sink: Sink) {
    match client
        .system()
        .get_thresholds(GetThresholdsRequest {})
        .await
    {
        Ok(r) => sink(Update::Thresholds(r.into_inner())),
        Err(status) => tracing::warn!("reading thresholds: {}", client.error(status)),
    }
}

pub(super) async fn refresh_autostart(client: Client, sink: Sink) {
    // An agent that cannot manage autostart here answers with an error:
    // the menu then hides the checkbox.
    let autostart = client
        .agent()
        .get_autostart(GetAutostartRequest {})
        .await
        .ok()
        .map(tonic::Response::into_inner);
    sink(Update::Autostart(autostart));
}

pub(super) async fn metrics(client: Client, wanted: Metrics, sink: Sink) {
    let interval = match wanted {
        Metrics::Live(interval) => interval,
        Metrics::WithAlerts => {
            let thresholds = client
                .system()
                .get_thresholds(GetThresholdsRequest {})
                .await
                .map(tonic::Response::into_inner);
            match thresholds {
                Ok(t) if t.alerts_enabled && t.alert_interval_ms > 0 => {
                    Duration::from_millis(u64::from(t.alert_interval_ms))
                }
                _ => {
                    if let Ok(Some(snapshot)) = client
                        .system()
                        .get_snapshot(GetSnapshotRequest {})
                        .await
                        .map(|r| r.into_inner().snapshot)
                    {
                        sink(Update::Metrics(Box::new(snapshot)));
                    }
                    return;
                }
            }
        }
    };
    let request = StreamMetricsRequest {
        interval_ms: u32::try_from(interval.as_millis()).unwrap_or(u32::MAX),
    };
    let mut stream = match client.system().stream_metrics(request).await {
        Ok(s) => s.into_inner(),
        Err(status) => {
            tracing::warn!("metrics stream: {}", client.error(status));
            return;
        }
    };
    while let Ok(Some(response)) = stream.message().await {
        if let Some(snapshot) = response.snapshot {
            sink(Update::Metrics(Box::new(snapshot)));
        }
    }
}

/// Read the crash reports of every process (while the Logs tab shows).
pub(super) async fn refresh_crashes(client: Client, sink: Sink) {
    match client
        .agent()
        .list_crash_reports(ListCrashReportsRequest {})
        .await
    {
        Ok(response) => sink(Update::CrashReports(response.into_inner().reports)),
        Err(status) => notice(&sink, "crashes", Err(client.error(status).to_string())),
    }
}

pub(super) async fn tail_logs(client: Client, source: String, sink: Sink) {
    let request = TailLogsRequest {
        source: source.clone(),
        lines: 300,
        follow: true,
    };
    let mut stream = match client.agent().tail_logs(request).await {
        Ok(s) => s.into_inner(),
        Err(status) => {
            notice(&sink, "logs", Err(client.error(status).to_string()));
            return;
        }
    };
    let mut reset = true;
    loop {
        match stream.message().await {
            Ok(Some(response)) => {
                sink(Update::Logs {
                    source: source.clone(),
                    lines: response.lines,
                    reset,
                });
                reset = false;
            }
            Ok(None) => return,
            Err(status) => {
                notice(&sink, "logs", Err(client.error(status).to_string()));
                return;
            }
        }
    }
}
