//! The agent's event bus, knowing no domain: a [`Feed`] (sequence numbers,
//! replay, gaps) of whatever event type the server puts on it, and the
//! [`Publish`] handle through which a domain publishes its own event type.
//!
//! Each domain defines its events next to its code (`ollama::OllamaEvent`,
//! `projects::ProjectEvent`, ...) and says which topic each belongs to; it
//! is given a [`Publisher`] of exactly that type, so it depends on nothing
//! but its own events. The server defines the union of all of them (with a
//! `From` per domain) as the bus's payload, and converts that union to the
//! API. Sequence numbers are the bus's: events of all domains share one
//! order, one replay ring and one cursor.

use std::{fmt, sync::Arc};

pub use crate::feed::{Cursor, Topic};
use crate::feed::{Feed, Record};

/// An event bus carrying `E`, the union of every domain's events.
pub type EventBus<E> = Feed<E>;
/// A published event.
pub type Event<E> = Record<E>;
/// What a bus subscriber receives.
pub type Delivery<E> = crate::feed::Delivery<E>;
/// A bus subscription.
pub type Subscription<E> = crate::feed::Subscription<E>;

/// Somewhere a domain publishes its events of type `E`: the bus, whatever
/// union it carries. Publishing never waits for subscribers.
pub trait Publish<E>: Send + Sync + fmt::Debug {
    /// Publish an event; returns its sequence number on the bus.
    fn publish(&self, event: E) -> u64;
    /// The run of the agent the bus belongs to (cursors name it).
    fn instance_id(&self) -> u64;
}

/// What a domain holds to publish its events: `Arc<EventBus<U>>` turns into
/// it wherever `E: Into<U>` (pass `bus.clone()`).
pub type Publisher<E> = Arc<dyn Publish<E>>;

impl<E, U> Publish<E> for Feed<U>
where
    E: Into<U>,
    U: Topic + fmt::Debug + Send + Sync + 'static,
{
    fn publish(&self, event: E) -> u64 {
        Feed::publish(self, event)
    }

    fn instance_id(&self) -> u64 {
        Feed::instance_id(self)
    }
}

/// A publisher for tests that keeps what it is given, in order.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct Recorder<E>(std::sync::Mutex<Vec<E>>);

#[cfg(test)]
impl<E> Default for Recorder<E> {
    fn default() -> Self {
        Self(std::sync::Mutex::new(Vec::new()))
    }
}

#[cfg(test)]
impl<E: Clone> Recorder<E> {
    /// What was published so far.
    pub(crate) fn events(&self) -> Vec<E> {
        crate::sync::lock(&self.0).clone()
    }
}

#[cfg(test)]
impl<E: fmt::Debug + Send> Publish<E> for Recorder<E> {
    fn publish(&self, event: E) -> u64 {
        crate::sync::lock(&self.0).push(event);
        0
    }

    fn instance_id(&self) -> u64 {
        1
    }
}

/// Every event published on `bus` so far, oldest first: what tests of a
/// domain read to check what it announced.
#[cfg(test)]
pub(crate) async fn published<E: Topic + Clone + Send + Sync + 'static>(
    bus: &Arc<EventBus<E>>,
) -> Vec<E> {
    let mut subscription = bus.subscribe(
        Cursor {
            after_sequence: Some(0),
            instance_id: 0,
        },
        Vec::new(),
    );
    let mut events = Vec::new();
    while let Some(delivery) = subscription.next().await {
        match delivery {
            Delivery::Event(event) => events.push(event.payload.clone()),
            Delivery::CaughtUp { .. } => break,
            Delivery::Gap { .. } => {}
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two domains' events and the union a server would define.
    #[derive(Debug, Clone, PartialEq)]
    enum Lights {
        On,
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Doors {
        Opened(String),
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Union {
        Lights(Lights),
        Doors(Doors),
    }

    impl From<Lights> for Union {
        fn from(event: Lights) -> Self {
            Self::Lights(event)
        }
    }

    impl From<Doors> for Union {
        fn from(event: Doors) -> Self {
            Self::Doors(event)
        }
    }

    impl Topic for Union {
        fn topic(&self) -> &str {
            match self {
                Self::Lights(_) => "lights",
                Self::Doors(_) => "doors",
            }
        }
    }

    /// A domain that only knows its own events.
    struct LightSwitch {
        bus: Publisher<Lights>,
    }

    impl LightSwitch {
        fn flip(&self) -> u64 {
            self.bus.publish(Lights::On)
        }
    }

    async fn next_event(sub: &mut Subscription<Union>) -> Option<Arc<Event<Union>>> {
        loop {
            match sub.next().await? {
                Delivery::Event(event) => return Some(event),
                Delivery::Gap { .. } | Delivery::CaughtUp { .. } => {}
            }
        }
    }

    #[tokio::test]
    async fn domains_publish_their_own_events_in_one_sequence() {
        let bus = Arc::new(EventBus::<Union>::new(42, 16));
        let switch = LightSwitch { bus: bus.clone() };
        let doors: Publisher<Doors> = bus.clone();
        assert_eq!(doors.instance_id(), 42);

        assert_eq!(switch.flip(), 1);
        assert_eq!(doors.publish(Doors::Opened("front".into())), 2);
        // The server publishes its own events on the bus directly.
        assert_eq!(bus.publish(Lights::On), 3);
        assert_eq!(bus.last_sequence(), 3);

        let mut all = bus.subscribe(
            Cursor {
                after_sequence: Some(0),
                instance_id: 42,
            },
            vec![],
        );
        let mut got = Vec::new();
        for _ in 0..3 {
            let event = next_event(&mut all).await;
            got.extend(event.map(|e| (e.sequence, e.payload.clone())));
        }
        assert_eq!(
            got,
            vec![
                (1, Union::Lights(Lights::On)),
                (2, Union::Doors(Doors::Opened("front".into()))),
                (3, Union::Lights(Lights::On)),
            ]
        );
    }

    #[tokio::test]
    async fn topics_come_from_the_union() {
        let bus = Arc::new(EventBus::<Union>::new(1, 16));
        let lights: Publisher<Lights> = bus.clone();
        let doors: Publisher<Doors> = bus.clone();
        let mut only_doors = bus.subscribe(Cursor::default(), vec!["doors".into()]);
        lights.publish(Lights::On);
        doors.publish(Doors::Opened("back".into()));
        let event = next_event(&mut only_doors).await;
        assert_eq!(
            event.map(|e| (e.sequence, e.payload.topic().to_owned())),
            Some((2, "doors".to_owned()))
        );
    }
}
