//! Conversion of the bus's events (the union of every domain's, defined in
//! `crate::events`) and deliveries into their proto messages.

use omnipanel_proto::v1 as pb;
use pb::event::Payload;

use crate::events::{AgentEvent, ServerEvent};
use crate::rpc::{convert::IntoProto, projects::convert::watch_to_proto};
use omnipanel_core::{access::AccessEvent, agent::AdminEvent, conversations::ConversationEvent};
use omnipanel_core::{
    events::{Delivery, Event, Topic},
    git::GitEvent,
    ollama::OllamaEvent,
    projects::ProjectEvent,
    system::SystemEvent,
    updates::UpdateEvent,
};

/// A bus event as a proto `Event`. Every match here names each variant (no
/// wildcard), so an event a domain adds fails to compile until it is given
/// its wire form.
pub fn event_to_proto(event: &Event<AgentEvent>) -> pb::Event {
    let payload = match &event.payload {
        AgentEvent::Server(event) => server_payload(event),
        AgentEvent::Admin(event) => admin_payload(event),
        AgentEvent::Access(event) => access_payload(event),
        AgentEvent::Ollama(event) => ollama_payload(event),
        AgentEvent::Projects(event) => project_payload(event),
        AgentEvent::Conversations(event) => conversation_payload(event),
        AgentEvent::Git(event) => git_payload(event),
        AgentEvent::System(event) => system_payload(event),
        AgentEvent::Updates(event) => update_payload(event),
    };
    pb::Event {
        sequence: event.sequence,
        instance_id: event.instance_id,
        time_unix_ms: event.time_ms,
        topic: event.payload.topic().to_owned(),
        payload: Some(payload),
    }
}

/// The server's own events.
fn server_payload(event: &ServerEvent) -> Payload {
    match event {
        ServerEvent::AgentStarted { version, pid } => Payload::AgentStarted(pb::AgentStarted {
            version: version.clone(),
            pid: *pid,
        }),
        ServerEvent::AgentStopping { reason } => Payload::AgentStopping(pb::AgentStopping {
            reason: reason.clone(),
        }),
        ServerEvent::StateRecovered { moved_to, reason } => {
            Payload::StateRecovered(pb::StateRecovered {
                moved_to: moved_to.clone(),
                reason: reason.clone(),
            })
        }
        ServerEvent::CrashReported { path, message } => Payload::CrashReported(pb::CrashReported {
            path: path.clone(),
            message: message.clone(),
        }),
    }
}

/// Client admission events.
fn access_payload(event: &AccessEvent) -> Payload {
    match event {
        AccessEvent::RequestChanged(request) => {
            Payload::AccessRequestChanged(pb::AccessRequestChanged {
                request: Some(request.clone().into_proto()),
            })
        }
        AccessEvent::ConfirmationChanged(confirmation) => {
            Payload::ConfirmationChanged(pb::ConfirmationChanged {
                confirmation: Some(confirmation.clone().into_proto()),
            })
        }
        AccessEvent::ClientsChanged {
            client_id,
            client_name,
            revoked,
        } => Payload::ClientsChanged(pb::ClientsChanged {
            client_id: client_id.clone(),
            client_name: client_name.clone(),
            revoked: *revoked,
        }),
    }
}

/// Settings and token events.
fn admin_payload(event: &AdminEvent) -> Payload {
    match event {
        AdminEvent::SettingsChanged {
            keys,
            restart_required,
        } => Payload::SettingsChanged(pb::SettingsChanged {
            keys: keys.clone(),
            restart_required: *restart_required,
        }),
        AdminEvent::TokensChanged { token_id, revoked } => {
            Payload::TokensChanged(pb::TokensChanged {
                token_id: token_id.clone(),
                revoked: *revoked,
            })
        }
    }
}

/// Ollama's events.
fn ollama_payload(event: &OllamaEvent) -> Payload {
    match event {
        OllamaEvent::OllamaStateChanged { status, previous } => {
            Payload::OllamaStateChanged(pb::OllamaStateChanged {
                status: Some((status, "").into_proto()),
                previous: IntoProto::<pb::ServerState>::into_proto(*previous).into(),
            })
        }
        OllamaEvent::PullProgress(progress) => Payload::PullProgress(progress.into_proto()),
        OllamaEvent::ModelsChanged {
            provider,
            model,
            change,
        } => Payload::ModelsChanged(pb::ModelsChanged {
            provider: provider.clone(),
            model: model.clone(),
            change: change.clone(),
        }),
        OllamaEvent::DefaultModelChanged { model } => {
            Payload::DefaultModelChanged(pb::DefaultModelChanged {
                model: model.clone(),
            })
        }
        OllamaEvent::ProvidersChanged { name, removed } => {
            Payload::ProvidersChanged(pb::ProvidersChanged {
                name: name.clone(),
                removed: *removed,
            })
        }
        OllamaEvent::ProviderStateChanged {
            subject,
            health,
            previous,
        } => Payload::ProviderStateChanged(pb::ProviderStateChanged {
            // What the event knows; ListProviders has the rest (never
            // the key).
            provider: Some(pb::Provider {
                name: subject.name.clone(),
                url: subject.url.clone(),
                kind: subject.kind.into_proto().into(),
                state: health.state.into_proto().into(),
                last_error: health.last_error.clone(),
                checked_unix_ms: health.checked_ms,
                ..Default::default()
            }),
            previous: previous.into_proto().into(),
        }),
    }
}

/// Project events.
fn project_payload(event: &ProjectEvent) -> Payload {
    match event {
        ProjectEvent::ProjectChanged {
            project_id,
            path,
            change,
        } => Payload::ProjectChanged(pb::ProjectChanged {
            project_id: project_id.clone(),
            path: path.clone(),
            change: change.clone(),
        }),
        ProjectEvent::ProjectWatchChanged {
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
    }
}

/// Conversation events.
fn conversation_payload(event: &ConversationEvent) -> Payload {
    match event {
        ConversationEvent::ConversationChanged {
            conversation_id,
            project_id,
            change,
        } => Payload::ConversationChanged(pb::ConversationChanged {
            conversation_id: conversation_id.clone(),
            project_id: project_id.clone(),
            change: change.clone(),
        }),
    }
}

/// Git events.
fn git_payload(event: &GitEvent) -> Payload {
    match event {
        GitEvent::RepositoryChanged {
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
    }
}

/// Alert events.
fn system_payload(event: &SystemEvent) -> Payload {
    match event {
        SystemEvent::AlertRaised(alert) => Payload::AlertRaised(pb::AlertRaised {
            alert: Some(alert.into_proto()),
        }),
        SystemEvent::AlertCleared(alert) => Payload::AlertCleared(pb::AlertCleared {
            alert: Some(alert.into_proto()),
        }),
        SystemEvent::ThresholdsChanged {
            version,
            count,
            defaults,
        } => Payload::ThresholdsChanged(pb::ThresholdsChanged {
            version: *version,
            count: *count,
            defaults: *defaults,
        }),
    }
}

/// Self-update events.
fn update_payload(event: &UpdateEvent) -> Payload {
    match event {
        UpdateEvent::UpdateAvailable {
            version,
            current_version,
            notes,
        } => Payload::UpdateAvailable(pb::UpdateAvailable {
            version: version.clone(),
            current_version: current_version.clone(),
            notes: notes.clone(),
        }),
        UpdateEvent::UpdateProgress(progress) => Payload::UpdateProgress(progress.into_proto()),
        UpdateEvent::UpdateInstalled {
            from_version,
            to_version,
        } => Payload::UpdateInstalled(pb::UpdateInstalled {
            from_version: from_version.clone(),
            to_version: to_version.clone(),
        }),
        UpdateEvent::UpdateRolledBack {
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
    }
}

/// A delivery as a WatchEvents response item.
pub fn delivery_to_proto(
    delivery: &Delivery<AgentEvent>,
    instance_id: u64,
) -> pb::WatchEventsResponse {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(payload: impl Into<AgentEvent>) -> Event<AgentEvent> {
        Event {
            sequence: 7,
            instance_id: 99,
            time_ms: 1_700_000_000_000,
            payload: payload.into(),
        }
    }

    /// The topic and payload an event goes out with.
    fn wire(payload: impl Into<AgentEvent>) -> (String, Option<Payload>) {
        let event = event_to_proto(&record(payload));
        (event.topic, event.payload)
    }

    #[test]
    fn the_record_fields_travel_with_every_event() {
        let event = event_to_proto(&record(ServerEvent::AgentStopping {
            reason: "signal".into(),
        }));
        assert_eq!(
            (event.sequence, event.instance_id, event.time_unix_ms),
            (7, 99, 1_700_000_000_000)
        );
    }

    #[test]
    fn server_events_keep_their_topics_and_fields() {
        assert_eq!(
            wire(ServerEvent::AgentStarted {
                version: "1.2.3".into(),
                pid: 42,
            }),
            (
                "agent".into(),
                Some(Payload::AgentStarted(pb::AgentStarted {
                    version: "1.2.3".into(),
                    pid: 42,
                }))
            )
        );
        assert_eq!(
            wire(AdminEvent::SettingsChanged {
                keys: vec!["ollama.host".into()],
                restart_required: true,
            }),
            (
                "settings".into(),
                Some(Payload::SettingsChanged(pb::SettingsChanged {
                    keys: vec!["ollama.host".into()],
                    restart_required: true,
                }))
            )
        );
        assert_eq!(
            wire(ServerEvent::StateRecovered {
                moved_to: "/s.bad".into(),
                reason: "corrupt".into(),
            })
            .0,
            "agent"
        );
        assert_eq!(
            wire(ServerEvent::CrashReported {
                path: "/c".into(),
                message: "boom".into(),
            })
            .0,
            "agent"
        );
        assert_eq!(
            wire(AdminEvent::TokensChanged {
                token_id: "t1".into(),
                revoked: true,
            }),
            (
                "tokens".into(),
                Some(Payload::TokensChanged(pb::TokensChanged {
                    token_id: "t1".into(),
                    revoked: true,
                }))
            )
        );
    }

    #[test]
    fn domain_events_keep_their_topics_and_fields() {
        assert_eq!(
            wire(ConversationEvent::ConversationChanged {
                conversation_id: "c1".into(),
                project_id: "p1".into(),
                change: "updated".into(),
            }),
            (
                "conversations".into(),
                Some(Payload::ConversationChanged(pb::ConversationChanged {
                    conversation_id: "c1".into(),
                    project_id: "p1".into(),
                    change: "updated".into(),
                }))
            )
        );
        assert_eq!(
            wire(OllamaEvent::ModelsChanged {
                provider: "local".into(),
                model: "llama3".into(),
                change: "pulled".into(),
            }),
            (
                "models".into(),
                Some(Payload::ModelsChanged(pb::ModelsChanged {
                    provider: "local".into(),
                    model: "llama3".into(),
                    change: "pulled".into(),
                }))
            )
        );
        assert_eq!(
            wire(OllamaEvent::DefaultModelChanged { model: "".into() }).0,
            "models"
        );
        assert_eq!(
            wire(OllamaEvent::ProvidersChanged {
                name: "gpu".into(),
                removed: false,
            }),
            (
                "providers".into(),
                Some(Payload::ProvidersChanged(pb::ProvidersChanged {
                    name: "gpu".into(),
                    removed: false,
                }))
            )
        );
        assert_eq!(
            wire(ProjectEvent::ProjectChanged {
                project_id: "p1".into(),
                path: "/src/p".into(),
                change: "opened".into(),
            }),
            (
                "projects".into(),
                Some(Payload::ProjectChanged(pb::ProjectChanged {
                    project_id: "p1".into(),
                    path: "/src/p".into(),
                    change: "opened".into(),
                }))
            )
        );
        assert_eq!(
            wire(GitEvent::RepositoryChanged {
                project_id: "p1".into(),
                branch: "main".into(),
                detached: false,
                dirty: true,
                head: "abc".into(),
            }),
            (
                "git".into(),
                Some(Payload::RepositoryChanged(pb::RepositoryChangedEvent {
                    project_id: "p1".into(),
                    branch: "main".into(),
                    detached: false,
                    dirty: true,
                    head: "abc".into(),
                }))
            )
        );
        assert_eq!(
            wire(SystemEvent::ThresholdsChanged {
                version: 3,
                count: 4,
                defaults: false,
            }),
            (
                "alerts".into(),
                Some(Payload::ThresholdsChanged(pb::ThresholdsChanged {
                    version: 3,
                    count: 4,
                    defaults: false,
                }))
            )
        );
        assert_eq!(
            wire(UpdateEvent::UpdateRolledBack {
                from_version: "2.0.0".into(),
                to_version: "1.9.0".into(),
                reason: "no answer".into(),
                automatic: true,
            }),
            (
                "updates".into(),
                Some(Payload::UpdateRolledBack(pb::UpdateRolledBack {
                    from_version: "2.0.0".into(),
                    to_version: "1.9.0".into(),
                    reason: "no answer".into(),
                    automatic: true,
                }))
            )
        );
        assert_eq!(
            wire(UpdateEvent::UpdateInstalled {
                from_version: "1.9.0".into(),
                to_version: "2.0.0".into(),
            })
            .0,
            "updates"
        );
    }

    #[test]
    fn markers_carry_the_instance() {
        use pb::watch_events_response::Item;
        let gap = delivery_to_proto(
            &Delivery::Gap {
                after_sequence: 1,
                resume_sequence: 5,
                reason: "lost",
            },
            99,
        );
        assert_eq!(
            gap.item,
            Some(Item::Gap(pb::EventGap {
                after_sequence: 1,
                resume_sequence: 5,
                reason: "lost".into(),
                instance_id: 99,
            }))
        );
        let caught_up = delivery_to_proto(&Delivery::CaughtUp { last_sequence: 5 }, 99);
        assert_eq!(
            caught_up.item,
            Some(Item::CaughtUp(pb::CaughtUp {
                last_sequence: 5,
                instance_id: 99,
            }))
        );
    }
}
