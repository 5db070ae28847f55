//! The update check: fetch the channel's manifest (through the release
//! list when `manifest_url` answers with one, see `feed.rs`) and its
//! detached signature, verify both before acting on anything in it, refuse
//! a version below the floor, tell whether it offers a newer version
//! (announced once per version on the bus), and run it at start and every
//! `[update] check_interval` while enabled and a signing key is known. A
//! refused manifest changes nothing but the last error.

use std::{sync::Arc, time::Duration};

use super::{CheckOutcome, Updater, feed, handover, lock, log_key_choice, manifest};
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
            let mut told_key = None;
            loop {
                let current = changes.borrow_and_update().clone();
                let settings = current.update.clone();
                // Without a key no download could be verified: checking
                // would only contact the server for nothing.
                let choice = Self::key_choice(&current).ok();
                let can_verify = choice.is_some();
                if let Some(choice) = choice
                    && told_key.as_ref() != Some(&choice)
                {
                    log_key_choice(&choice);
                    told_key = Some(choice);
                }
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

    /// GET `url` (at most [`MAX_MANIFEST_BYTES`]): the status and body.
    async fn fetch_small(&self, url: &str) -> Result<(reqwest::StatusCode, Vec<u8>)> {
        let client = self.client_for(url).await?;
        let unavailable = |err: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Unavailable,
                format!("cannot fetch the update manifest {url}: {err}"),
            )
            .with_reason(Reason::UpdateServerUnavailable)
        };
        let mut response = client
            .get(url)
            // GitHub's API answers nothing without one.
            .header(
                reqwest::header::USER_AGENT,
                format!("omnipanel-agent/{}", version::current()),
            )
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|err| unavailable(&err))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| unavailable(&err))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_MANIFEST_BYTES {
                return Err(Error::failed_precondition(format!(
                    "{url} is larger than the {} KiB a manifest may have",
                    MAX_MANIFEST_BYTES / 1024
                ))
                .with_reason(Reason::UpdateManifestInvalid));
            }
        }
        Ok((status, body))
    }

    /// [`Self::fetch_small`], failing unless the server answered 2xx.
    async fn fetch_ok(&self, url: &str) -> Result<Vec<u8>> {
        let (status, body) = self.fetch_small(url).await?;
        if !status.is_success() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("cannot fetch the update manifest {url}: the server answered {status}"),
            )
            .with_reason(Reason::UpdateServerUnavailable));
        }
        Ok(body)
    }

    async fn fetch_manifest(&self) -> Result<CheckOutcome> {
        let settings = self.settings.current();
        // No key, no check: nothing fetched could be trusted.
        let public_key = Self::public_key(&settings)?;
        let channel = settings.update.channel.clone();
        let mut url = Self::manifest_url(&settings);
        let mut body = self.fetch_ok(&url).await?;
        if feed::is_feed(&body) {
            url = feed::pick_manifest(&body, &url, &channel)?;
            body = self.fetch_ok(&url).await?;
        }
        let signature_url = format!("{url}.minisig");
        let (status, signature) = self.fetch_small(&signature_url).await?;
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(Error::failed_precondition(format!(
                "the update manifest at {url} has no signature ({signature_url} answered {status}); it was ignored and nothing changed"
            ))
            .with_reason(Reason::UpdateManifestUnsigned));
        }
        if !status.is_success() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("cannot fetch the update manifest's signature {signature_url}: the server answered {status}"),
            )
            .with_reason(Reason::UpdateServerUnavailable));
        }
        let signature = String::from_utf8_lossy(&signature);
        let platform = manifest::platform_key();
        let latest = manifest::verify(
            &body,
            &signature,
            &url,
            &manifest::Expected {
                public_key: &public_key,
                channel: &channel,
                platform: &platform,
            },
        )?;
        self.check_floor(&latest.version).await?;
        let current = version::current();
        Ok(CheckOutcome {
            current_version: current.to_owned(),
            channel,
            update_available: manifest::is_newer(&latest.version, current),
            latest,
            checked_ms: now_ms(),
            package: self.package.clone(),
        })
    }
}

/// The most a manifest, its signature or a release list may weigh.
const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
