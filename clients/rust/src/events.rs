//! A WatchEvents subscription that survives the agent going away: it keeps
//! the last sequence and instance it saw and, after a reconnect, asks the
//! agent to resume from there, so a client sees every event once or is told
//! (by a gap) to re-read its state.

use std::time::Duration;

use omnipanel_proto::v1::{
    Event, EventGap, WatchEventsRequest, WatchEventsResponse, watch_events_response::Item,
};
use tonic::Streaming;

use crate::{Client, ClientError, Target};

/// What a subscription yields.
#[derive(Debug, Clone)]
pub enum SubscriptionItem {
    /// An event, in sequence order.
    Event(Event),
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
            topics,
            cursor: after_sequence,
            instance_id: 0,
            stream: None,
            backoff: MIN_BACKOFF,
            reconnect: true,
        }
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
        let client = Client::connect(self.target.clone()).await?;
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
                SubscriptionItem::Event(event)
            }
            Item::Gap(gap) => {
                // Resume after the event just before the one the agent will
                // send next, under the agent's current identity.
                self.cursor = Some(gap.resume_sequence.saturating_sub(1));
                self.instance_id = gap.instance_id;
                SubscriptionItem::Gap(gap)
            }
            Item::CaughtUp(caught_up) => {
                if self.cursor.is_none() || self.instance_id != caught_up.instance_id {
                    self.cursor = Some(caught_up.last_sequence);
                }
                self.instance_id = caught_up.instance_id;
                SubscriptionItem::CaughtUp
            }
        }
    }
}
