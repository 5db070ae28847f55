//! The update check: fetch the channel's manifest, tell whether it offers
//! a newer version (announced once per version on the bus), and run it at
//! start and every `[update] check_interval` while enabled and a signing
//! key is known.

use std::{sync::Arc, time::Duration};

use super::{CheckOutcome, Updater, handover, lock, manifest};
use crate::reason::Reason;
use crate::{
    config::Settings,
    error::{Error, ErrorKind, Result},
    store::now_ms,
    updates::UpdateEvent,
    version,
};

impl Updater {
    /// Check at start, then every `check_interval`, while enabled and a
    /// signing key is known. Otherwise nothing runs but a wait for the
    /// settings to change.
    pub(super) fn spawn_periodic_check(self: &Arc<Self>) {
        if std::env::var_os(handover::PROBE_ENV).is_some() {
            // A probe lives for seconds; it must not contact the server.
            return;
        }
        let updater = Arc::downgrade(self);
        let mut changes = self.settings.subscribe();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut next: Option<tokio::time::Instant> = None;
            let mut first = true;
            let mut told_no_key = false;
            loop {
                let current = changes.borrow_and_update().clone();
                let settings = current.update.clone();
                // Without a key no download could be verified: checking
                // would only contact the server for nothing.
                let can_verify = Self::public_key(&current).is_ok();
                if settings.enabled && !can_verify && !told_no_key {
                    told_no_key = true;
                    tracing::info!(
                        "automatic update checks are off: this build has no update signing key and [update] public_key is not set"
                    );
                }
                if settings.enabled && can_verify {
                    let due = match next {
                        Some(due) if !first => due,
                        _ => tokio::time::Instant::now(),
                    };
                    first = false;
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        changed = changes.changed() => {
                            if changed.is_err() { return; }
                            continue;
                        }
                        () = tokio::time::sleep_until(due) => {}
                    }
                    let Some(updater) = updater.upgrade() else {
                        return;
                    };
                    if let Err(err) = updater.check().await {
                        tracing::info!(error = %err, "automatic update check failed");
                    }
                    next = Some(tokio::time::Instant::now() + settings.check_interval);
                } else {
                    first = true;
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        changed = changes.changed() => {
                            if changed.is_err() { return; }
                        }
                    }
                }
            }
        });
    }

    fn manifest_url(settings: &Settings) -> String {
        settings
            .update
            .manifest_url
            .replace("{channel}", &settings.update.channel)
    }

    /// Fetch the manifest now.
    pub async fn check(&self) -> Result<CheckOutcome> {
        let result = self.fetch_manifest().await;
        match &result {
            Ok(outcome) => {
                let mut state = lock(&self.state);
                let announce = outcome.update_available
                    && state
                        .last_check
                        .as_ref()
                        .is_none_or(|last| last.latest.version != outcome.latest.version);
                state.last_check = Some(outcome.clone());
                drop(state);
                if announce {
                    tracing::info!(version = %outcome.latest.version, "an update is available");
                    self.bus.publish(UpdateEvent::UpdateAvailable {
                        version: outcome.latest.version.clone(),
                        current_version: outcome.current_version.clone(),
                        notes: outcome.latest.notes.clone(),
                    });
                }
            }
            Err(err) => lock(&self.state).last_error = Some(err.to_string()),
        }
        result
    }

    async fn fetch_manifest(&self) -> Result<CheckOutcome> {
        let settings = self.settings.current();
        let url = Self::manifest_url(&settings);
        let client = self.client_for(&url).await?;
        let unavailable = |err: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot fetch the update manifest {url}: {err}"),
            )
            .with_reason(Reason::UpdateServerUnavailable)
        };
        let response = client
            .get(&url)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|err| unavailable(&err))?;
        if !response.status().is_success() {
            return Err(unavailable(&format!(
                "the server answered {}",
                response.status()
            )));
        }
        let text = response.text().await.map_err(|err| unavailable(&err))?;
        let latest = manifest::parse(&text, &url, &manifest::platform_key())?;
        let current = version::current();
        Ok(CheckOutcome {
            current_version: current.to_owned(),
            channel: settings.update.channel.clone(),
            update_available: manifest::is_newer(&latest.version, current),
            latest,
            checked_ms: now_ms(),
        })
    }
}
