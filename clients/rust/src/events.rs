//! A WatchEvents subscription that survives the agent going away: it keeps
//! the last sequence and instance it saw and, after a reconnect, asks the
//! agent to resume from there, so a client sees every event once or is told
//! (by a gap) to re-read its state.

use std::time::Duration;

use omnipanel_proto::v1::{
    Event, EventGap, WatchEventsRequest, WatchEventsResponse, watch_events_response::Item,
};
use tonic::Streaming;

use crate::{Client, ClientError, Credential, Target};

/// What a subscription yields.
#[derive(Debug, Clone)]
pub enum SubscriptionItem {
    /// An event, in sequence order (boxed: events are far larger than the
    /// other items).
    Event(Box<Event>),
    /// Events were lost; re-read whatever state you mirror.
    Gap(EventGap),
    /// Replay is over; what follows is live.
    CaughtUp,
    /// The connection broke; the subscription is reconnecting.
    Disconnected(String),
    /// Connected (again) to the agent.
    Connected,
}

/// A resumable event subscription.
#[derive(Debug)]
pub struct EventSubscription {
    target: Target,
    credential: Credential,
    topics: Vec<String>,
    cursor: Option<u64>,
    instance_id: u64,
    stream: Option<Streaming<WatchEventsResponse>>,
    backoff: Duration,
    reconnect: bool,
}

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

impl EventSubscription {
    /// Subscribe to `topics` (empty: all). `after_sequence` replays from a
    /// cursor; `None` starts with live events only.
    pub fn new(target: Target, topics: Vec<String>, after_sequence: Option<u64>) -> Self {
        Self {
            target,
            credential: Credential::FromEnv,
            topics,
            cursor: after_sequence,
            instance_id: 0,
            stream: None,
            backoff: MIN_BACKOFF,
            reconnect: true,
        }
    }

    /// Present `credential` rather than what the environment gives.
    pub fn with_credential(mut self, credential: Credential) -> Self {
        self.credential = credential;
        self
    }

    /// Whether to reconnect after the connection breaks (default true). When
    /// false, [`next`](Self::next) returns the error instead.
    #[must_use]
    pub fn reconnecting(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// The last sequence received, to persist and resume from later.
    pub fn cursor(&self) -> Option<(u64, u64)> {
        self.cursor.map(|seq| (self.instance_id, seq))
    }

    /// The next item. Only returns an error when reconnecting is off, or
    /// for errors a retry cannot fix (access denied, version mismatch).
    pub async fn next(&mut self) -> Result<SubscriptionItem, ClientError> {
        loop {
            let Some(stream) = self.stream.as_mut() else {
                match self.open().await {
                    Ok(()) => return Ok(SubscriptionItem::Connected),
                    Err(err) if self.should_retry(&err) => {
                        tokio::time::sleep(self.backoff).await;
                        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                    Err(err) => return Err(err),
                }
            };
            match stream.message().await {
                Ok(Some(WatchEventsResponse { item: Some(item) })) => {
                    return Ok(self.record(item));
                }
                Ok(Some(WatchEventsResponse { item: None })) => {}
                Ok(None) => {
                    self.stream = None;
                    let message = "the agent closed the event stream".to_owned();
                    if !self.reconnect {
                        return Err(ClientError::AgentNotRunning {
                            target: self.target.to_string(),
                        });
                    }
                    return Ok(SubscriptionItem::Disconnected(message));
                }
                Err(status) => {
                    self.stream = None;
                    let err = ClientError::from_status(status, &self.target.to_string());
                    if !self.should_retry(&err) {
                        return Err(err);
                    }
                    return Ok(SubscriptionItem::Disconnected(err.to_string()));
                }
            }
        }
    }

    fn should_retry(&self, err: &ClientError) -> bool {
        self.reconnect && matches!(err, ClientError::AgentNotRunning { .. })
    }

    async fn open(&mut self) -> Result<(), ClientError> {
        let client = Client::connect_as(self.target.clone(), self.credential.clone()).await?;
        let request = WatchEventsRequest {
            after_sequence: self.cursor,
            instance_id: self.instance_id,
            topics: self.topics.clone(),
        };
        let stream = client
            .agent()
            .watch_events(request)
            .await
            .map_err(|status| client.error(status))?
            .into_inner();
        self.stream = Some(stream);
        self.backoff = MIN_BACKOFF;
        Ok(())
    }

    fn record(&mut self, item: Item) -> SubscriptionItem {
        match item {
            Item::Event(event) => {
                self.cursor = Some(event.sequence);
                self.instance_id = event.instance_id;
                SubscriptionItem::Event(Box::new(event))
            }
            Item::Gap(gap) => {
                // Resume after the event just before the one the agent will
                // send next, under the agent's current identity.
                self.cursor = Some(gap.resume_sequence.saturating_sub(1));
                self.instance_id = gap.instance_id;
                SubscriptionItem::Gap(gap)
            }
            Item::CaughtUp(caught_up) => {
                // Everything up to last_sequence that matches our topics has
                // been delivered. With a topic filter the last event we saw
                // can be far behind that; resuming from it after a
                // reconnect would ask for events the agent may no longer
                // hold and report a gap that lost nothing we want.
                // A cursor from another instance (a restart) means nothing.
                let seen = self
                    .cursor
                    .filter(|_| self.instance_id == caught_up.instance_id);
                self.cursor = Some(seen.map_or(caught_up.last_sequence, |seen| {
                    seen.max(caught_up.last_sequence)
                }));
                self.instance_id = caught_up.instance_id;
                SubscriptionItem::CaughtUp
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use omnipanel_proto::v1::CaughtUp;

    use super::*;

    fn event(sequence: u64, instance_id: u64) -> Item {
        Item::Event(Event {
            sequence,
            instance_id,
            ..Default::default()
        })
    }

    fn caught_up(last_sequence: u64, instance_id: u64) -> Item {
        Item::CaughtUp(CaughtUp {
            last_sequence,
            instance_id,
        })
    }

    fn subscription(after: Option<u64>) -> EventSubscription {
        EventSubscription::new(
            Target::Unix("/nowhere.sock".into()),
            vec!["agent".to_owned()],
            after,
        )
    }

    #[test]
    fn caught_up_moves_a_filtered_cursor_past_other_topics() {
        let mut sub = subscription(Some(0));
        // The one "agent" event was #3; the agent went on to #40 with
        // events of other topics.
        sub.record(event(3, 7));
        assert_eq!(sub.cursor(), Some((7, 3)));
        sub.record(caught_up(40, 7));
        // A reconnect now resumes after #40, not after #3 (which the ring
        // may have dropped, giving a spurious gap).
        assert_eq!(sub.cursor(), Some((7, 40)));
        sub.record(event(41, 7));
        assert_eq!(sub.cursor(), Some((7, 41)));
    }

    #[test]
    fn caught_up_never_moves_the_cursor_back() {
        let mut sub = subscription(Some(0));
        sub.record(event(12, 7));
        sub.record(caught_up(10, 7));
        assert_eq!(sub.cursor(), Some((7, 12)));
    }

    #[test]
    fn caught_up_from_a_restarted_agent_adopts_its_sequence() {
        let mut sub = subscription(Some(0));
        sub.record(event(500, 7));
        // A new instance numbers from 1 again.
        sub.record(caught_up(2, 8));
        assert_eq!(sub.cursor(), Some((8, 2)));
        // Live-only subscriptions get their first cursor here.
        let mut live = subscription(None);
        assert_eq!(live.cursor(), None);
        live.record(caught_up(9, 8));
        assert_eq!(live.cursor(), Some((8, 9)));
    }
}
