//! Alerts at run time: the thresholds in effect and the alert history,
//! both kept in state.db, and [`Alerts`], which feeds every reading to the
//! threshold engine and turns its decisions into history rows and events
//! on the bus (topic "alerts"). An alert that was active when the agent
//! stopped is taken over at the next start, so it clears normally instead
//! of being raised twice.

use std::{sync::Arc, time::Duration};

use rusqlite::{OptionalExtension, Row, params};
use tokio::sync::Mutex;

use crate::reason::Reason;
use crate::{
    error::{Error, ErrorKind, Result},
    events::Publisher,
    store::{Store, now_ms},
    system::SystemEvent,
    system::{
        metrics::Sample,
        thresholds::{
            self, Alert, AlertKey, Cleared, Comparison, Engine, Metric, Threshold, ThresholdInput,
            Transition,
        },
    },
};

/// Meta key: the thresholds' version.
const VERSION_KEY: &str = "alert_thresholds_version";
/// Meta key: "1" while a custom set (not the defaults) is stored.
const CUSTOM_KEY: &str = "alert_thresholds_custom";

/// Alerts kept in the history; older cleared ones are pruned.
const HISTORY_LIMIT: i64 = 10_000;

/// Largest page of ListAlerts.
pub const MAX_PAGE: u32 = 1000;
/// Page size when none is given.
pub const DEFAULT_PAGE: u32 = 50;

/// The thresholds in effect.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ThresholdSet {
    /// The thresholds.
    pub thresholds: Vec<Threshold>,
    /// Increases with every change.
    pub version: u64,
    /// Whether these are the built-in defaults.
    pub defaults: bool,
}

/// What SetThresholds asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum ThresholdChange {
    /// Replace the set.
    Replace(Vec<ThresholdInput>),
    /// Go back to the defaults.
    Defaults,
}

/// A page of history.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertPage {
    /// Newest first.
    pub alerts: Vec<Alert>,
    /// `before_id` of the next page; 0 when this is the last.
    pub next_before_id: i64,
}

/// Thresholds and history in state.db.
#[derive(Debug, Clone)]
pub struct AlertStore {
    store: Store,
}

fn read_meta_u64(tx: &rusqlite::Connection, key: &str) -> Result<u64> {
    let value: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn write_meta(tx: &rusqlite::Connection, key: &str, value: String) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )?;
    Ok(())
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn alert_from_row(row: &Row<'_>) -> rusqlite::Result<Option<Alert>> {
    let metric: String = row.get("metric")?;
    let comparison: String = row.get("comparison")?;
    // A row written by a newer agent with a metric this one does not know
    // is skipped rather than failing the whole listing.
    let (Some(metric), Some(comparison)) = (Metric::parse(&metric), Comparison::parse(&comparison))
    else {
        return Ok(None);
    };
    let cleared_ms: Option<i64> = row.get("cleared_ms")?;
    let cleared = match cleared_ms {
        Some(at_ms) => Some(Cleared {
            at_ms,
            value: row.get::<_, Option<f64>>("cleared_value")?.unwrap_or(0.0),
            reason: row.get("clear_reason")?,
        }),
        None => None,
    };
    Ok(Some(Alert {
        id: row.get("id")?,
        key: AlertKey {
            metric,
            comparison,
            subject: row.get("subject")?,
        },
        threshold_value: row.get("threshold_value")?,
        clear_value: row.get("clear_value")?,
        hold: Duration::from_millis(row.get::<_, i64>("hold_ms")?.max(0).unsigned_abs()),
        value: row.get("value")?,
        peak: row.get("peak_value")?,
        raised_ms: row.get("raised_ms")?,
        cleared,
    }))
}

impl AlertStore {
    /// Use `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The thresholds in effect: the stored set, or the defaults.
    pub async fn thresholds(&self) -> Result<ThresholdSet> {
        self.store.read(load_thresholds).await
    }

    /// Replace the set (or restore the defaults), refusing a stale
    /// `expected_version` (when non-zero). Validation happens first.
    pub async fn set_thresholds(
        &self,
        change: ThresholdChange,
        expected_version: u64,
    ) -> Result<ThresholdSet> {
        let replacement = match change {
            ThresholdChange::Replace(inputs) => Some(thresholds::validate(&inputs)?),
            ThresholdChange::Defaults => None,
        };
        self.store
            .write(move |tx| {
                let version = read_meta_u64(tx, VERSION_KEY)?;
                if expected_version != 0 && expected_version != version {
                    return Err(Error::new(
                        ErrorKind::Aborted,
                        format!(
                            "the thresholds changed meanwhile (version {version}, expected {expected_version}); read them again and retry"
                        ),
                    )
                    .with_reason(Reason::ThresholdsChanged));
                }
                tx.execute("DELETE FROM alert_thresholds", [])?;
                let custom = replacement.is_some();
                for (position, threshold) in replacement.iter().flatten().enumerate() {
                    tx.execute(
                        "INSERT INTO alert_thresholds
                           (position, metric, comparison, value, hold_ms, clear_value)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            i64::try_from(position).unwrap_or(i64::MAX),
                            threshold.metric.name(),
                            threshold.comparison.name(),
                            threshold.value,
                            ms(threshold.hold),
                            threshold.clear,
                        ],
                    )?;
                }
                write_meta(tx, CUSTOM_KEY, if custom { "1" } else { "0" }.to_owned())?;
                write_meta(tx, VERSION_KEY, (version + 1).to_string())?;
                load_thresholds(tx)
            })
            .await
    }

    /// Store a raised alert; returns its id. Old cleared alerts beyond the
    /// history limit are pruned in the same transaction.
    pub async fn insert(&self, alert: &Alert) -> Result<i64> {
        let alert = alert.clone();
        self.store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO alerts
                       (metric, comparison, subject, threshold_value, clear_value, hold_ms,
                        value, peak_value, raised_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        alert.key.metric.name(),
                        alert.key.comparison.name(),
                        alert.key.subject,
                        alert.threshold_value,
                        alert.clear_value,
                        ms(alert.hold),
                        alert.value,
                        alert.peak,
                        alert.raised_ms,
                    ],
                )?;
                let id = tx.last_insert_rowid();
                tx.execute(
                    "DELETE FROM alerts WHERE cleared_ms IS NOT NULL AND id <= ?1",
                    [id - HISTORY_LIMIT],
                )?;
                Ok(id)
            })
            .await
    }

    /// Record that an alert cleared.
    pub async fn close(&self, alert: &Alert) -> Result<()> {
        let Some(cleared) = alert.cleared.clone() else {
            return Ok(());
        };
        let (id, peak) = (alert.id, alert.peak);
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE alerts SET cleared_ms = ?2, cleared_value = ?3, clear_reason = ?4,
                       peak_value = ?5
                     WHERE id = ?1",
                    params![id, cleared.at_ms, cleared.value, cleared.reason, peak],
                )?;
                Ok(())
            })
            .await
    }

    /// A page of history, newest first.
    pub async fn list(&self, limit: u32, before_id: i64, active_only: bool) -> Result<AlertPage> {
        let limit = match limit {
            0 => DEFAULT_PAGE,
            n if n > MAX_PAGE => {
                return Err(Error::invalid_argument(
                    "limit",
                    format!("at most {MAX_PAGE} alerts per page, {n} were asked"),
                ));
            }
            n => n,
        };
        if before_id < 0 {
            return Err(Error::invalid_argument("before_id", "must not be negative"));
        }
        self.store
            .read(move |c| {
                let mut statement = c.prepare(
                    "SELECT * FROM alerts
                     WHERE (?1 = 0 OR id < ?1) AND (?2 = 0 OR cleared_ms IS NULL)
                     ORDER BY id DESC LIMIT ?3",
                )?;
                let rows = statement.query_map(
                    params![before_id, i64::from(active_only), i64::from(limit) + 1],
                    alert_from_row,
                )?;
                let mut alerts = Vec::new();
                let mut more = false;
                for row in rows {
                    if alerts.len() == limit as usize {
                        more = true;
                        break;
                    }
                    if let Some(alert) = row? {
                        alerts.push(alert);
                    }
                }
                let next_before_id = if more {
                    alerts.last().map_or(0, |a| a.id)
                } else {
                    0
                };
                Ok(AlertPage {
                    alerts,
                    next_before_id,
                })
            })
            .await
    }
}

fn load_thresholds(c: &rusqlite::Connection) -> Result<ThresholdSet> {
    let version = read_meta_u64(c, VERSION_KEY)?;
    let custom = read_meta_u64(c, CUSTOM_KEY)? == 1;
    if !custom {
        return Ok(ThresholdSet {
            thresholds: thresholds::defaults(),
            version,
            defaults: true,
        });
    }
    let mut statement = c.prepare(
        "SELECT metric, comparison, value, hold_ms, clear_value FROM alert_thresholds
         ORDER BY position",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, f64>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, f64>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (metric, comparison, value, hold_ms, clear) = row?;
        match (Metric::parse(&metric), Comparison::parse(&comparison)) {
            (Some(metric), Some(comparison)) => out.push(Threshold {
                metric,
                comparison,
                value,
                hold: Duration::from_millis(hold_ms.max(0).unsigned_abs()),
                clear,
            }),
            _ => tracing::warn!(metric, "ignoring a stored threshold on an unknown metric"),
        }
    }
    Ok(ThresholdSet {
        thresholds: out,
        version,
        defaults: false,
    })
}

#[derive(Debug)]
struct Inner {
    set: ThresholdSet,
    engine: Engine,
    enabled: bool,
}

/// Thresholds, the alert engine and history: what SystemService's alert
/// RPCs call, and what every reading is fed to.
#[derive(Debug)]
pub struct Alerts {
    store: AlertStore,
    bus: Publisher<SystemEvent>,
    inner: Mutex<Inner>,
}

/// How long a gap between readings may be before pending hold times
/// restart: a few alert intervals, and never less than 30 s.
fn max_gap(alert_interval: Duration) -> Duration {
    (alert_interval * 3).max(Duration::from_secs(30))
}

impl Alerts {
    /// Load thresholds and take over alerts left active by the previous
    /// run (closing those whose threshold is gone, or all when alerts are
    /// off).
    pub async fn open(
        store: Store,
        bus: Publisher<SystemEvent>,
        enabled: bool,
        alert_interval: Duration,
    ) -> Result<Arc<Self>> {
        let store = AlertStore::new(store);
        let set = store.thresholds().await?;
        let mut engine = Engine::new(max_gap(alert_interval));
        let leftover = store.list(MAX_PAGE, 0, true).await?.alerts;
        for mut alert in leftover {
            let kept = enabled
                && set
                    .thresholds
                    .iter()
                    .any(|t| t.metric == alert.key.metric && t.comparison == alert.key.comparison);
            if kept {
                engine.restore(alert);
            } else {
                let reason = if enabled {
                    "threshold removed"
                } else {
                    "alerts are turned off"
                };
                alert.cleared = Some(Cleared {
                    at_ms: now_ms(),
                    value: alert.value,
                    reason: reason.to_owned(),
                });
                store.close(&alert).await?;
            }
        }
        Ok(Arc::new(Self {
            store,
            bus,
            inner: Mutex::new(Inner {
                set,
                engine,
                enabled,
            }),
        }))
    }

    /// The thresholds in effect.
    pub async fn thresholds(&self) -> ThresholdSet {
        self.inner.lock().await.set.clone()
    }

    /// Whether alerts are enabled and some threshold needs readings.
    pub async fn wants_readings(&self) -> bool {
        let inner = self.inner.lock().await;
        inner.enabled && !inner.set.thresholds.is_empty()
    }

    /// Turn alerts on or off; turning them off clears every active alert.
    pub async fn set_enabled(&self, enabled: bool, alert_interval: Duration) -> Result<()> {
        let mut inner = self.inner.lock().await;
        let transitions = if enabled {
            Vec::new()
        } else {
            inner.engine.clear_all(now_ms(), "alerts turned off")
        };
        if enabled != inner.enabled {
            tracing::info!(enabled, "alerts switched");
        }
        inner.enabled = enabled;
        let active = inner.engine.clone();
        inner.engine = Engine::new(max_gap(alert_interval));
        for alert in active.active() {
            inner.engine.restore(alert);
        }
        self.apply(&mut inner, transitions).await
    }

    /// Change the thresholds; alerts of removed thresholds clear at once,
    /// changed ones are judged by their new values at the next reading.
    pub async fn set_thresholds(
        &self,
        change: ThresholdChange,
        expected_version: u64,
    ) -> Result<ThresholdSet> {
        let mut inner = self.inner.lock().await;
        let set = self.store.set_thresholds(change, expected_version).await?;
        let transitions = inner
            .engine
            .retain(&set.thresholds, now_ms(), "threshold removed");
        inner.set = set.clone();
        self.apply(&mut inner, transitions).await?;
        tracing::info!(
            version = set.version,
            count = set.thresholds.len(),
            defaults = set.defaults,
            "alert thresholds changed"
        );
        self.bus.publish(SystemEvent::ThresholdsChanged {
            version: set.version,
            count: u32::try_from(set.thresholds.len()).unwrap_or(u32::MAX),
            defaults: set.defaults,
        });
        Ok(set)
    }

    /// Judge a reading.
    pub async fn observe(&self, sample: &Sample) -> Result<()> {
        let mut inner = self.inner.lock().await;
        if !inner.enabled {
            return Ok(());
        }
        let thresholds = inner.set.thresholds.clone();
        let transitions = inner.engine.observe(&thresholds, sample);
        self.apply(&mut inner, transitions).await
    }

    /// The active alerts (with their current peak values).
    pub async fn active(&self) -> Vec<Alert> {
        self.inner.lock().await.engine.active()
    }

    /// A page of history; active alerts carry their current peak.
    pub async fn list(&self, limit: u32, before_id: i64, active_only: bool) -> Result<AlertPage> {
        let mut page = self.store.list(limit, before_id, active_only).await?;
        let live = self.active().await;
        for alert in page.alerts.iter_mut().filter(|a| a.cleared.is_none()) {
            if let Some(current) = live.iter().find(|l| l.id == alert.id) {
                alert.peak = current.peak;
            }
        }
        Ok(page)
    }

    async fn apply(&self, inner: &mut Inner, transitions: Vec<Transition>) -> Result<()> {
        for transition in transitions {
            match transition {
                Transition::Raised(mut alert) => {
                    alert.id = self.store.insert(&alert).await?;
                    inner.engine.assign_id(&alert.key, alert.id);
                    tracing::warn!(id = alert.id, "alert raised: {}", alert.message());
                    self.bus.publish(SystemEvent::AlertRaised(alert));
                }
                Transition::Cleared(alert) => {
                    self.store.close(&alert).await?;
                    let reason = alert
                        .cleared
                        .as_ref()
                        .map(|c| c.reason.clone())
                        .unwrap_or_default();
                    tracing::info!(id = alert.id, reason, "alert cleared: {}", alert.message());
                    self.bus.publish(SystemEvent::AlertCleared(alert));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{events::Cursor, system::metrics::MemoryStats};

    fn memory_sample(mono_ms: i64, used_percent: u64) -> Sample {
        Sample {
            time_ms: 1_700_000_000_000 + mono_ms,
            mono_ms,
            memory: MemoryStats {
                total: 100,
                used: used_percent,
                available: 100 - used_percent,
                ..MemoryStats::default()
            },
            ..Sample::default()
        }
    }

    fn memory_above(value: f64, hold_ms: i64) -> ThresholdChange {
        ThresholdChange::Replace(vec![ThresholdInput {
            metric: "memory.used_percent".into(),
            comparison: Some(Comparison::Above),
            value,
            hold_ms,
            clear: None,
        }])
    }

    #[tokio::test]
    async fn thresholds_persist_across_reopening_the_database() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let path = dir.path().join("state.db");
        let bus = Arc::new(crate::events::EventBus::<SystemEvent>::new(1, 64));
        {
            let (store, _) = Store::open(&path)?;
            let alerts = Alerts::open(store, bus.clone(), true, Duration::from_secs(5)).await?;
            let first = alerts.thresholds().await;
            assert!(first.defaults);
            assert_eq!(first.thresholds, thresholds::defaults());
            let set = alerts.set_thresholds(memory_above(80.0, 10_000), 0).await?;
            assert!(!set.defaults);
            assert_eq!(set.version, first.version + 1);
            // A stale version is refused.
            let err = alerts
                .set_thresholds(memory_above(70.0, 0), first.version.max(1) + 100)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Aborted);
        }
        let (store, _) = Store::open(&path)?;
        let alerts = Alerts::open(store, bus, true, Duration::from_secs(5)).await?;
        let set = alerts.thresholds().await;
        assert!(!set.defaults);
        assert_eq!(set.thresholds.len(), 1);
        assert_eq!(set.thresholds[0].value, 80.0);
        assert_eq!(set.thresholds[0].hold, Duration::from_secs(10));
        assert_eq!(set.thresholds[0].clear, 75.0);
        let back = alerts
            .set_thresholds(ThresholdChange::Defaults, set.version)
            .await?;
        assert!(back.defaults);
        Ok(())
    }

    #[tokio::test]
    async fn raised_and_cleared_alerts_go_to_history_and_the_bus() -> Result<()> {
        let bus = Arc::new(crate::events::EventBus::<SystemEvent>::new(1, 64));
        let mut events = bus.subscribe(Cursor::default(), vec!["alerts".into()]);
        let alerts = Alerts::open(
            Store::in_memory()?,
            bus.clone(),
            true,
            Duration::from_secs(5),
        )
        .await?;
        alerts.set_thresholds(memory_above(50.0, 0), 0).await?;
        alerts.observe(&memory_sample(0, 60)).await?;
        alerts.observe(&memory_sample(1000, 70)).await?;
        let active = alerts.list(0, 0, true).await?;
        assert_eq!(active.alerts.len(), 1);
        assert_eq!(active.alerts[0].peak, 70.0, "the live peak is reported");
        alerts.observe(&memory_sample(2000, 10)).await?;
        assert!(alerts.list(0, 0, true).await?.alerts.is_empty());
        let all = alerts.list(0, 0, false).await?;
        let cleared = all.alerts[0]
            .cleared
            .clone()
            .ok_or_else(|| Error::internal("not cleared"))?;
        assert_eq!(cleared.reason, "back to normal");
        assert_eq!(all.alerts[0].peak, 70.0);

        let mut kinds = Vec::new();
        while kinds.len() < 3 {
            match events.next().await {
                Some(crate::events::Delivery::Event(event)) => kinds.push(match &event.payload {
                    SystemEvent::ThresholdsChanged { .. } => "thresholds",
                    SystemEvent::AlertRaised(_) => "raised",
                    SystemEvent::AlertCleared(_) => "cleared",
                }),
                Some(_) => {}
                None => break,
            }
        }
        assert_eq!(kinds, vec!["thresholds", "raised", "cleared"]);
        Ok(())
    }

    #[tokio::test]
    async fn turning_alerts_off_clears_them_and_stops_judging() -> Result<()> {
        let bus = Arc::new(crate::events::EventBus::<SystemEvent>::new(1, 64));
        let alerts = Alerts::open(Store::in_memory()?, bus, true, Duration::from_secs(5)).await?;
        alerts.set_thresholds(memory_above(50.0, 0), 0).await?;
        alerts.observe(&memory_sample(0, 90)).await?;
        assert_eq!(alerts.active().await.len(), 1);
        alerts.set_enabled(false, Duration::from_secs(5)).await?;
        assert!(alerts.active().await.is_empty());
        assert!(!alerts.wants_readings().await);
        let page = alerts.list(0, 0, false).await?;
        assert_eq!(
            page.alerts[0].cleared.as_ref().map(|c| c.reason.as_str()),
            Some("alerts turned off")
        );
        alerts.observe(&memory_sample(1000, 95)).await?;
        assert!(alerts.active().await.is_empty());
        alerts.set_enabled(true, Duration::from_secs(5)).await?;
        assert!(alerts.wants_readings().await);
        alerts.observe(&memory_sample(2000, 95)).await?;
        assert_eq!(alerts.active().await.len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn history_pages_newest_first() -> Result<()> {
        let bus = Arc::new(crate::events::EventBus::<SystemEvent>::new(1, 256));
        let alerts = Alerts::open(Store::in_memory()?, bus, true, Duration::from_secs(5)).await?;
        alerts.set_thresholds(memory_above(50.0, 0), 0).await?;
        for i in 0..5 {
            alerts.observe(&memory_sample(i * 2000, 90)).await?;
            alerts.observe(&memory_sample(i * 2000 + 1000, 10)).await?;
        }
        let first = alerts.list(2, 0, false).await?;
        assert_eq!(first.alerts.len(), 2);
        assert!(first.alerts[0].id > first.alerts[1].id);
        let second = alerts.list(2, first.next_before_id, false).await?;
        let third = alerts.list(2, second.next_before_id, false).await?;
        assert_eq!(third.alerts.len(), 1);
        assert_eq!(third.next_before_id, 0);
        let ids: Vec<i64> = [first, second, third]
            .iter()
            .flat_map(|p| p.alerts.iter().map(|a| a.id))
            .collect();
        assert_eq!(ids.len(), 5);
        assert!(ids.windows(2).all(|w| w[0] > w[1]));
        assert_eq!(
            alerts.list(1001, 0, false).await.unwrap_err().field(),
            Some("limit")
        );
        Ok(())
    }

    #[tokio::test]
    async fn an_active_alert_survives_a_restart_and_removal_clears_it() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::internal(e.to_string()))?;
        let path = dir.path().join("state.db");
        let bus = Arc::new(crate::events::EventBus::<SystemEvent>::new(1, 64));
        let id = {
            let (store, _) = Store::open(&path)?;
            let alerts = Alerts::open(store, bus.clone(), true, Duration::from_secs(5)).await?;
            alerts.set_thresholds(memory_above(50.0, 0), 0).await?;
            alerts.observe(&memory_sample(0, 90)).await?;
            alerts.active().await[0].id
        };
        let (store, _) = Store::open(&path)?;
        let alerts = Alerts::open(store, bus, true, Duration::from_secs(5)).await?;
        let active = alerts.active().await;
        assert_eq!(active.len(), 1);
        assert_eq!(active[0].id, id);
        alerts
            .set_thresholds(ThresholdChange::Replace(Vec::new()), 0)
            .await?;
        assert!(alerts.active().await.is_empty());
        let page = alerts.list(0, 0, false).await?;
        assert_eq!(
            page.alerts[0].cleared.as_ref().map(|c| c.reason.as_str()),
            Some("threshold removed")
        );
        assert!(!alerts.wants_readings().await);
        Ok(())
    }
}
