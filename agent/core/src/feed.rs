//! A sequenced feed with replay: every record gets the next sequence
//! number, is kept in a bounded ring buffer, and is broadcast live. A
//! subscriber resumes from a cursor (replay, then live), and is told about a
//! gap when its cursor is older than the ring, belongs to an earlier run of
//! the agent, or when it read too slowly and fell off the live channel.
//! Publishing never waits for subscribers. The agent's event bus is one
//! feed; each open project's file changes are another. A feed also counts
//! the live subscriptions that receive a topic, so work done only for
//! listeners (probing providers for the tray) can sleep while nobody is
//! subscribed.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::{broadcast, watch};

use crate::store::now_ms;

/// Live channel depth per subscriber before it lags and recovers from the
/// ring (or gets a gap).
const LIVE_CAPACITY: usize = 256;

/// Payloads carried by a feed say which topic they belong to, so
/// subscribers can filter.
pub trait Topic {
    /// The topic.
    fn topic(&self) -> &str;
}

/// A published record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<P> {
    /// Position on the feed.
    pub sequence: u64,
    /// Run of the agent that published it.
    pub instance_id: u64,
    /// Publication time, ms since the Unix epoch.
    pub time_ms: i64,
    /// What happened.
    pub payload: P,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery<P> {
    /// A record.
    Event(Arc<Record<P>>),
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
struct Ring<P> {
    events: VecDeque<Arc<Record<P>>>,
    capacity: usize,
    next_sequence: u64,
}

impl<P> Ring<P> {
    fn last_sequence(&self) -> u64 {
        self.next_sequence - 1
    }

    fn oldest_sequence(&self) -> u64 {
        self.events
            .front()
            .map_or(self.next_sequence, |event| event.sequence)
    }

    /// Deliveries that bring a subscriber at `after` up to date.
    fn catch_up(&self, after: u64, reason_if_lost: &'static str) -> VecDeque<Delivery<P>> {
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

/// A feed. Share it as `Arc<Feed<P>>`.
#[derive(Debug)]
pub struct Feed<P> {
    ring: Mutex<Ring<P>>,
    live: broadcast::Sender<Arc<Record<P>>>,
    instance_id: u64,
    /// Per counted topic, the number of live subscriptions receiving it.
    listeners: Mutex<Vec<(String, watch::Sender<usize>)>>,
}

impl<P: Topic + Send + Sync + 'static> Feed<P> {
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
            listeners: Mutex::new(Vec::new()),
        }
    }

    /// The number of live subscriptions that receive `topic` (those asking
    /// for it and those asking for everything), kept current as they come
    /// and go. Subscriptions made before the first call for a topic are not
    /// counted, so ask before serving subscribers.
    pub fn listeners(&self, topic: &str) -> watch::Receiver<usize> {
        let mut listeners = crate::sync::lock(&self.listeners);
        if let Some((_, count)) = listeners.iter().find(|(t, _)| t == topic) {
            return count.subscribe();
        }
        let (count, receiver) = watch::channel(0);
        listeners.push((topic.to_owned(), count));
        receiver
    }

    /// This run's identity.
    pub fn instance_id(&self) -> u64 {
        self.instance_id
    }

    fn ring(&self) -> MutexGuard<'_, Ring<P>> {
        // The ring is consistent after every statement, so a poisoned lock
        // (a panic elsewhere while holding it) is safe to keep using.
        crate::sync::lock(&self.ring)
    }

    /// Publish an event (anything that converts into the feed's payload,
    /// such as one domain's events on the bus of all of them); returns its
    /// sequence number. Never blocks on subscribers.
    pub fn publish(&self, payload: impl Into<P>) -> u64 {
        let payload = payload.into();
        let mut ring = self.ring();
        let sequence = ring.next_sequence;
        ring.next_sequence += 1;
        let event = Arc::new(Record {
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
    pub fn subscribe(self: &Arc<Self>, cursor: Cursor, topics: Vec<String>) -> Subscription<P> {
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
        let counted: Vec<watch::Sender<usize>> = crate::sync::lock(&self.listeners)
            .iter()
            .filter(|(topic, _)| topics.is_empty() || topics.contains(topic))
            .map(|(_, count)| count.clone())
            .collect();
        for count in &counted {
            count.send_modify(|n| *n += 1);
        }
        Subscription {
            bus: self.clone(),
            pending,
            live,
            delivered_up_to: last,
            topics,
            _listening: CountedListener(counted),
        }
    }
}

/// One subscriber's view of a feed.
#[derive(Debug)]
pub struct Subscription<P> {
    bus: Arc<Feed<P>>,
    pending: VecDeque<Delivery<P>>,
    live: broadcast::Receiver<Arc<Record<P>>>,
    delivered_up_to: u64,
    topics: Vec<String>,
    /// Held for its `Drop`, which gives the listener counts back.
    _listening: CountedListener,
}

/// The listener counts a subscription added itself to, given back when it
/// ends.
#[derive(Debug)]
struct CountedListener(Vec<watch::Sender<usize>>);

impl Drop for CountedListener {
    fn drop(&mut self) {
        for count in &self.0 {
            count.send_modify(|n| *n = n.saturating_sub(1));
        }
    }
}

impl<P: Topic + Send + Sync + 'static> Subscription<P> {
    fn wants(&self, event: &Record<P>) -> bool {
        self.topics.is_empty() || self.topics.iter().any(|t| t == event.payload.topic())
    }

    /// The next delivery; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Delivery<P>> {
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

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Payload {
        Stopping(String),
        Settings,
    }

    impl Topic for Payload {
        fn topic(&self) -> &str {
            match self {
                Self::Stopping(_) => "agent",
                Self::Settings => "settings",
            }
        }
    }

    type EventBus = Feed<Payload>;

    #[test]
    fn listeners_count_the_subscriptions_receiving_a_topic() {
        let bus = Arc::new(EventBus::new(1, 8));
        let settings = bus.listeners("settings");
        assert_eq!(*settings.borrow(), 0);
        let agent_only = bus.subscribe(Cursor::default(), vec!["agent".into()]);
        assert_eq!(*settings.borrow(), 0, "a subscription to another topic");
        let everything = bus.subscribe(Cursor::default(), Vec::new());
        let settings_only = bus.subscribe(Cursor::default(), vec!["settings".into()]);
        assert_eq!(*settings.borrow(), 2);
        assert_eq!(*bus.listeners("settings").borrow(), 2, "asking again");
        drop(everything);
        assert_eq!(*settings.borrow(), 1);
        drop(settings_only);
        drop(agent_only);
        assert_eq!(*settings.borrow(), 0);
    }

    fn stopping(n: usize) -> Payload {
        Payload::Stopping(n.to_string())
    }

    fn sequences(deliveries: &[Delivery<Payload>]) -> Vec<u64> {
        deliveries
            .iter()
            .filter_map(|d| match d {
                Delivery::Event(e) => Some(e.sequence),
                _ => None,
            })
            .collect()
    }

    async fn drain(sub: &mut Subscription<Payload>, n: usize) -> Vec<Delivery<Payload>> {
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
        bus.publish(Payload::Settings);
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
