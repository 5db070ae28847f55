//! Conversion of domain events and deliveries into their proto messages.

use omnipanel_proto::v1 as pb;
use pb::event::Payload;

use crate::rpc::{convert::IntoProto, projects::convert::watch_to_proto};
use omnipanel_core::{
    events::{Delivery, Event, EventPayload},
    feed::Topic,
};

/// A domain event as a proto `Event`.
pub fn event_to_proto(event: &Event) -> pb::Event {
    let payload = match &event.payload {
        EventPayload::AgentStarted { version, pid } => Payload::AgentStarted(pb::AgentStarted {
            version: version.clone(),
            pid: *pid,
        }),
        EventPayload::AgentStopping { reason } => Payload::AgentStopping(pb::AgentStopping {
            reason: reason.clone(),
        }),
        EventPayload::SettingsChanged {
            keys,
            restart_required,
        } => Payload::SettingsChanged(pb::SettingsChanged {
            keys: keys.clone(),
            restart_required: *restart_required,
        }),
        EventPayload::StateRecovered { moved_to, reason } => {
            Payload::StateRecovered(pb::StateRecovered {
                moved_to: moved_to.clone(),
                reason: reason.clone(),
            })
        }
        EventPayload::CrashReported { path, message } => {
            Payload::CrashReported(pb::CrashReported {
                path: path.clone(),
                message: message.clone(),
            })
        }
        EventPayload::TokensChanged { token_id, revoked } => {
            Payload::TokensChanged(pb::TokensChanged {
                token_id: token_id.clone(),
                revoked: *revoked,
            })
        }
        EventPayload::OllamaStateChanged { status, previous } => {
            Payload::OllamaStateChanged(pb::OllamaStateChanged {
                status: Some((status, "").into_proto()),
                previous: IntoProto::<pb::ServerState>::into_proto(*previous).into(),
            })
        }
        EventPayload::PullProgress(progress) => Payload::PullProgress(progress.into_proto()),
        EventPayload::ModelsChanged {
            provider,
            model,
            change,
        } => Payload::ModelsChanged(pb::ModelsChanged {
            provider: provider.clone(),
            model: model.clone(),
            change: change.clone(),
        }),
        EventPayload::DefaultModelChanged { model } => {
            Payload::DefaultModelChanged(pb::DefaultModelChanged {
                model: model.clone(),
            })
        }
        EventPayload::ProjectChanged {
            project_id,
            path,
            change,
        } => Payload::ProjectChanged(pb::ProjectChanged {
            project_id: project_id.clone(),
            path: path.clone(),
            change: change.clone(),
        }),
        EventPayload::ProjectWatchChanged {
            project_id,
            path,
            status,
        } => Payload::ProjectWatchChanged(pb::ProjectWatchChanged {
            project_id: project_id.clone(),
            path: path.clone(),
            // The event marks a change of state; counts are read with
            // GetProject.
            watch: Some(watch_to_proto(status, 0)),
        }),
        EventPayload::RepositoryChanged {
            project_id,
            branch,
            detached,
            dirty,
            head,
        } => Payload::RepositoryChanged(pb::RepositoryChangedEvent {
            project_id: project_id.clone(),
            branch: branch.clone(),
            detached: *detached,
            dirty: *dirty,
            head: head.clone(),
        }),
        EventPayload::ProvidersChanged { name, removed } => {
            Payload::ProvidersChanged(pb::ProvidersChanged {
                name: name.clone(),
                removed: *removed,
            })
        }
        EventPayload::AlertRaised(alert) => Payload::AlertRaised(pb::AlertRaised {
            alert: Some(alert.into_proto()),
        }),
        EventPayload::AlertCleared(alert) => Payload::AlertCleared(pb::AlertCleared {
            alert: Some(alert.into_proto()),
        }),
        EventPayload::ThresholdsChanged {
            version,
            count,
            defaults,
        } => Payload::ThresholdsChanged(pb::ThresholdsChanged {
            version: *version,
            count: *count,
            defaults: *defaults,
        }),
        EventPayload::UpdateAvailable {
            version,
            current_version,
            notes,
        } => Payload::UpdateAvailable(pb::UpdateAvailable {
            version: version.clone(),
            current_version: current_version.clone(),
            notes: notes.clone(),
        }),
        EventPayload::UpdateProgress(progress) => Payload::UpdateProgress(progress.into_proto()),
        EventPayload::UpdateInstalled {
            from_version,
            to_version,
        } => Payload::UpdateInstalled(pb::UpdateInstalled {
            from_version: from_version.clone(),
            to_version: to_version.clone(),
        }),
        EventPayload::UpdateRolledBack {
            from_version,
            to_version,
            reason,
            automatic,
        } => Payload::UpdateRolledBack(pb::UpdateRolledBack {
            from_version: from_version.clone(),
            to_version: to_version.clone(),
            reason: reason.clone(),
            automatic: *automatic,
        }),
    };
    pb::Event {
        sequence: event.sequence,
        instance_id: event.instance_id,
        time_unix_ms: event.time_ms,
        topic: event.payload.topic().to_owned(),
        payload: Some(payload),
    }
}

/// A delivery as a WatchEvents response item.
pub fn delivery_to_proto(delivery: &Delivery, instance_id: u64) -> pb::WatchEventsResponse {
    use pb::watch_events_response::Item;
    let item = match delivery {
        Delivery::Event(event) => Item::Event(event_to_proto(event)),
        Delivery::Gap {
            after_sequence,
            resume_sequence,
            reason,
        } => Item::Gap(pb::EventGap {
            after_sequence: *after_sequence,
            resume_sequence: *resume_sequence,
            reason: (*reason).to_owned(),
            instance_id,
        }),
        Delivery::CaughtUp { last_sequence } => Item::CaughtUp(pb::CaughtUp {
            last_sequence: *last_sequence,
            instance_id,
        }),
    };
    pb::WatchEventsResponse { item: Some(item) }
}
