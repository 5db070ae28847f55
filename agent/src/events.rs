//! The event bus: every event gets the next sequence number, is kept in a
//! bounded ring buffer for replay, and is broadcast live. A subscriber
//! resumes from a cursor (replay, then live), and is told about a gap when
//! its cursor is older than the ring, belongs to an earlier run of the agent,
//! or when it read too slowly and fell off the live channel. Publishing
//! never waits for subscribers.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::broadcast;

use crate::{
    ollama::{
        pulls::PullProgress,
        supervisor::{ServerState, ServerStatus},
    },
    store::now_ms,
    system::thresholds::Alert,
};

/// Live channel depth per subscriber before it lags and recovers from the
/// ring (or gets a gap).
const LIVE_CAPACITY: usize = 256;

/// What happened. Each variant has a topic used for filtering. (Not `Eq`:
/// alerts carry measured values.)
#[derive(Debug, Clone, PartialEq)]
pub enum EventPayload {
    /// The agent serves requests.
    AgentStarted {
        /// Agent version.
        version: String,
        /// Agent pid.
        pid: u32,
    },
    /// The agent is shutting down.
    AgentStopping {
        /// Why.
        reason: String,
    },
    /// Settings changed through the API.
    SettingsChanged {
        /// Changed keys.
        keys: Vec<String>,
        /// Whether some change needs a restart.
        restart_required: bool,
    },
    /// state.db was corrupt and replaced.
    StateRecovered {
        /// Where the bad file went.
        moved_to: String,
        /// What SQLite said.
        reason: String,
    },
    /// A crash report from an earlier run was found.
    CrashReported {
        /// Report file.
        path: String,
        /// Panic message.
        message: String,
    },
    /// An access token was created or revoked.
    TokensChanged {
        /// Token id.
        token_id: String,
        /// Revoked (true) or created (false).
        revoked: bool,
    },
    /// The local Ollama server changed state.
    OllamaStateChanged {
        /// New status.
        status: ServerStatus,
        /// Previous state.
        previous: ServerState,
    },
    /// A pull progressed or ended.
    PullProgress(PullProgress),
    /// A model was pulled, deleted, loaded or unloaded.
    ModelsChanged {
        /// Provider.
        provider: String,
        /// Model.
        model: String,
        /// "pulled", "deleted", "loaded", "unloaded".
        change: String,
    },
    /// The default model changed.
    DefaultModelChanged {
        /// New default ("" when cleared).
        model: String,
    },
    /// A provider was added or removed.
    ProvidersChanged {
        /// Provider name.
        name: String,
        /// Removed (true) or added (false).
        removed: bool,
    },
    /// A threshold was crossed.
    AlertRaised(Alert),
    /// An alert cleared.
    AlertCleared(Alert),
    /// The alert thresholds changed.
    ThresholdsChanged {
        /// New version.
        version: u64,
        /// How many thresholds.
        count: u32,
        /// Whether the built-in defaults are in use.
        defaults: bool,
    },
}

impl EventPayload {
    /// The topic clients filter on.
    pub fn topic(&self) -> &'static str {
        match self {
            Self::AgentStarted { .. }
            | Self::AgentStopping { .. }
            | Self::StateRecovered { .. }
            | Self::CrashReported { .. } => "agent",
            Self::SettingsChanged { .. } => "settings",
            Self::TokensChanged { .. } => "tokens",
            Self::OllamaStateChanged { .. } => "ollama",
            Self::PullProgress(_)
            | Self::ModelsChanged { .. }
            | Self::DefaultModelChanged { .. } => "models",
            Self::ProvidersChanged { .. } => "providers",
            Self::AlertRaised(_) | Self::AlertCleared(_) | Self::ThresholdsChanged { .. } => {
                "alerts"
            }
        }
    }
}

/// A published event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Position on the bus.
    pub sequence: u64,
    /// Run of the agent that published it.
    pub instance_id: u64,
    /// Publication time, ms since the Unix epoch.
    pub time_ms: i64,
    /// What happened.
    pub payload: EventPayload,
}

/// Where a subscriber wants to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    /// Replay events after this sequence; `None` for live events only.
    pub after_sequence: Option<u64>,
    /// The run the cursor belongs to; 0 when unknown.
    pub instance_id: u64,
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// An event.
    Event(Arc<Event>),
    /// Events between `after_sequence` and `resume_sequence` are lost.
    Gap {
        /// The subscriber's position before the gap.
        after_sequence: u64,
        /// Sequence of the next event to be delivered.
        resume_sequence: u64,
        /// Why.
        reason: &'static str,
    },
    /// Replay finished; `last_sequence` was the newest event at that point.
    CaughtUp {
        /// Newest sequence at subscription time.
        last_sequence: u64,
    },
}

#[derive(Debug)]
struct Ring {
    events: VecDeque<Arc<Event>>,
    capacity: usize,
    next_sequence: u64,
}

impl Ring {
    fn last_sequence(&self) -> u64 {
        self.next_sequence - 1
    }

    fn oldest_sequence(&self) -> u64 {
        self.events
            .front()
            .map_or(self.next_sequence, |event| event.sequence)
    }

    /// Deliveries that bring a subscriber at `after` up to date.
    fn catch_up(&self, after: u64, reason_if_lost: &'static str) -> VecDeque<Delivery> {
        let mut out = VecDeque::new();
        let oldest = self.oldest_sequence();
        if after + 1 < oldest {
            out.push_back(Delivery::Gap {
                after_sequence: after,
                resume_sequence: oldest,
                reason: reason_if_lost,
            });
        }
        out.extend(
            self.events
                .iter()
                .filter(|event| event.sequence > after)
                .cloned()
                .map(Delivery::Event),
        );
        out
    }
}

/// The bus. Share it as `Arc<EventBus>`.
#[derive(Debug)]
pub struct EventBus {
    ring: Mutex<Ring>,
    live: broadcast::Sender<Arc<Event>>,
    instance_id: u64,
}

impl EventBus {
    /// A bus keeping `capacity` events for replay.
    pub fn new(instance_id: u64, capacity: usize) -> Self {
        let (live, _) = broadcast::channel(LIVE_CAPACITY);
        Self {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.min(1024)),
                capacity: capacity.max(1),
                next_sequence: 1,
            }),
            live,
            instance_id,
        }
    }

    /// This run's identity.
    pub fn instance_id(&self) -> u64 {
        self.instance_id
    }

    fn ring(&self) -> MutexGuard<'_, Ring> {
        // The ring is consistent after every statement, so a poisoned lock
        // (a panic elsewhere while holding it) is safe to keep using.
        self.ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publish an event; returns its sequence number. Never blocks on
    /// subscribers.
    pub fn publish(&self, payload: EventPayload) -> u64 {
        let mut ring = self.ring();
        let sequence = ring.next_sequence;
        ring.next_sequence += 1;
        let event = Arc::new(Event {
            sequence,
            instance_id: self.instance_id,
            time_ms: now_ms(),
            payload,
        });
        if ring.events.len() == ring.capacity {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        // No receivers is fine: nobody is listening.
        let _ = self.live.send(event);
        sequence
    }

    /// The newest sequence number (0 before the first event).
    pub fn last_sequence(&self) -> u64 {
        self.ring().last_sequence()
    }

    /// Subscribe from `cursor`, receiving only `topics` (all when empty).
    pub fn subscribe(self: &Arc<Self>, cursor: Cursor, topics: Vec<String>) -> Subscription {
        // Taking the live receiver under the ring lock means no event can
        // fall between the replayed snapshot and the live stream.
        let ring = self.ring();
        let live = self.live.subscribe();
        let last = ring.last_sequence();
        let mut pending = match cursor.after_sequence {
            None => VecDeque::new(),
            Some(after) => {
                let foreign = cursor.instance_id != 0 && cursor.instance_id != self.instance_id;
                if foreign || after > last {
                    let mut out = VecDeque::from([Delivery::Gap {
                        after_sequence: after,
                        resume_sequence: ring.oldest_sequence(),
                        reason: "the agent restarted since this cursor was taken",
                    }]);
                    out.extend(
                        ring.catch_up(0, "")
                            .into_iter()
                            .filter(|d| matches!(d, Delivery::Event(_))),
                    );
                    out
                } else {
                    ring.catch_up(after, "the cursor is older than the events the agent keeps")
                }
            }
        };
        pending.push_back(Delivery::CaughtUp {
            last_sequence: last,
        });
        drop(ring);
        Subscription {
            bus: self.clone(),
            pending,
            live,
            delivered_up_to: last,
            topics,
        }
    }
}

/// One subscriber's view of the bus.
#[derive(Debug)]
pub struct Subscription {
    bus: Arc<EventBus>,
    pending: VecDeque<Delivery>,
    live: broadcast::Receiver<Arc<Event>>,
    delivered_up_to: u64,
    topics: Vec<String>,
}

impl Subscription {
    fn wants(&self, event: &Event) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|t| t == event.payload.topic())
    }

    /// The next delivery; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Delivery> {
        loop {
            if let Some(delivery) = self.pending.pop_front() {
                if let Delivery::Event(event) = &delivery
                    && !self.wants(event)
                {
                    continue;
                }
                return Some(delivery);
            }
            match self.live.recv().await {
                Ok(event) => {
                    // Replay may already have delivered it after a lag.
                    if event.sequence <= self.delivered_up_to {
                        continue;
                    }
                    self.delivered_up_to = event.sequence;
                    if self.wants(&event) {
                        return Some(Delivery::Event(event));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let ring = self.bus.ring();
                    let recovered = ring.catch_up(
                        self.delivered_up_to,
                        "this subscriber read too slowly and events were dropped",
                    );
                    self.delivered_up_to = ring.last_sequence();
                    drop(ring);
                    self.pending.extend(recovered);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopping(n: usize) -> EventPayload {
        EventPayload::AgentStopping {
            reason: n.to_string(),
        }
    }

    fn sequences(deliveries: &[Delivery]) -> Vec<u64> {
        deliveries
            .iter()
            .filter_map(|d| match d {
                Delivery::Event(e) => Some(e.sequence),
                _ => None,
            })
            .collect()
    }

    async fn drain(sub: &mut Subscription, n: usize) -> Vec<Delivery> {
        let mut out = Vec::new();
        for _ in 0..n {
            match sub.next().await {
                Some(d) => out.push(d),
                None => break,
            }
        }
        out
    }

    #[tokio::test]
    async fn replays_after_cursor_then_follows_live() {
        let bus = Arc::new(EventBus::new(7, 16));
        for i in 0..5 {
            bus.publish(stopping(i));
        }
        let mut sub = bus.subscribe(
            Cursor {
                after_sequence: Some(2),
                instance_id: 7,
            },
            vec![],
        );
        let replay = drain(&mut sub, 4).await;
        assert_eq!(sequences(&replay), vec![3, 4, 5]);
        assert_eq!(replay[3], Delivery::CaughtUp { last_sequence: 5 });
        bus.publish(stopping(5));
        let live = drain(&mut sub, 1).await;
        assert_eq!(sequences(&live), vec![6]);
    }

    #[tokio::test]
    async fn too_old_cursor_gets_a_gap() {
        let bus = Arc::new(EventBus::new(7, 4));
        for i in 0..10 {
            bus.publish(stopping(i));
        }
        let mut sub = bus.subscribe(
            Cursor {
                after_sequence: Some(1),
                instance_id: 7,
            },
            vec![],
        );
        let got = drain(&mut sub, 6).await;
        assert!(matches!(
            got[0],
            Delivery::Gap {
                after_sequence: 1,
                resume_sequence: 7,
                ..
            }
        ));
        assert_eq!(sequences(&got), vec![7, 8, 9, 10]);
    }

    #[tokio::test]
    async fn cursor_from_another_run_gets_a_gap() {
        let bus = Arc::new(EventBus::new(7, 16));
        bus.publish(stopping(0));
        let mut sub = bus.subscribe(
            Cursor {
                after_sequence: Some(40),
                instance_id: 3,
            },
            vec![],
        );
        let got = drain(&mut sub, 3).await;
        assert!(matches!(got[0], Delivery::Gap { .. }));
        assert_eq!(sequences(&got), vec![1]);
    }

    #[tokio::test]
    async fn slow_subscriber_never_blocks_and_recovers_or_gaps() {
        let bus = Arc::new(EventBus::new(1, 100_000));
        let mut slow = bus.subscribe(Cursor::default(), vec![]);
        // Far more than the live channel holds; publishing must not wait.
        for i in 0..(LIVE_CAPACITY * 4) {
            bus.publish(stopping(i));
        }
        let got = drain(&mut slow, LIVE_CAPACITY * 4 + 1).await;
        // The ring is big enough, so the lag is healed without a gap.
        assert!(!got.iter().any(|d| matches!(d, Delivery::Gap { .. })));
        let expected: Vec<u64> = (1..=(LIVE_CAPACITY as u64 * 4)).collect();
        assert_eq!(sequences(&got), expected);

        let small = Arc::new(EventBus::new(1, 8));
        let mut slow = small.subscribe(Cursor::default(), vec![]);
        for i in 0..(LIVE_CAPACITY * 2) {
            small.publish(stopping(i));
        }
        let got = drain(&mut slow, 10).await;
        assert!(
            got.iter().any(|d| matches!(d, Delivery::Gap { .. })),
            "{got:?}"
        );
    }

    #[tokio::test]
    async fn topics_filter_events_but_not_markers() {
        let bus = Arc::new(EventBus::new(1, 16));
        bus.publish(stopping(0));
        bus.publish(EventPayload::SettingsChanged {
            keys: vec!["log.filter".into()],
            restart_required: false,
        });
        let mut sub = bus.subscribe(
            Cursor {
                after_sequence: Some(0),
                instance_id: 0,
            },
            vec!["settings".into()],
        );
        let got = drain(&mut sub, 2).await;
        assert_eq!(sequences(&got), vec![2]);
        assert!(matches!(got[1], Delivery::CaughtUp { .. }));
    }
}
