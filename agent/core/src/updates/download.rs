//! The download: one at a time (later callers join it), into the staging
//! folder with HTTP Range resumption of an interrupted `.part` file,
//! progress on a watch channel and (throttled) on the bus, then size, hash
//! and signature verification before the artifact is ready to install.

use std::{
    path::Path,
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use tokio::{io::AsyncWriteExt, sync::watch};

use super::{DownloadState, Progress, Release, Updater, artifact, lock, manifest};
use crate::reason::Reason;
use crate::{
    error::{Error, ErrorKind, Result},
    updates::UpdateEvent,
    version,
};

/// Least time between two progress events on the bus.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

impl Updater {
    /// Start downloading the newest release (or join the running
    /// download); the receiver follows it to Ready or Failed.
    pub fn download(self: &Arc<Self>) -> watch::Receiver<Progress> {
        let receiver = self.progress.subscribe();
        if self.downloading.swap(true, Ordering::SeqCst) {
            return receiver;
        }
        self.progress.send_replace(Progress {
            state: DownloadState::Downloading,
            ..Progress::default()
        });
        let updater = self.clone();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let result = tokio::select! {
                result = updater.run_download() => result,
                () = shutdown.cancelled() => Err(Error::new(
                    ErrorKind::Unavailable,
                    "the agent is stopping; the download will resume next time",
                )),
            };
            let mut last = updater.progress.borrow().clone();
            match result {
                Ok(release) => {
                    last.state = DownloadState::Ready;
                    last.version = release.version;
                    last.received = last.total;
                    last.error = None;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "update download failed");
                    lock(&updater.state).last_error = Some(err.to_string());
                    last.state = DownloadState::Failed;
                    last.error = Some(err);
                }
            }
            updater
                .bus
                .publish(UpdateEvent::UpdateProgress(last.clone()));
            updater.downloading.store(false, Ordering::SeqCst);
            updater.progress.send_replace(last);
        });
        receiver
    }

    fn publish_progress(&self, progress: Progress, last_event: &mut Option<Instant>) {
        let due = last_event.is_none_or(|at| at.elapsed() >= PROGRESS_EVERY);
        if due {
            *last_event = Some(Instant::now());
            self.bus
                .publish(UpdateEvent::UpdateProgress(progress.clone()));
        }
        self.progress.send_replace(progress);
    }

    async fn run_download(&self) -> Result<Release> {
        self.refuse_if_packaged("download updates")?;
        let last_check = lock(&self.state).last_check.clone();
        let channel = self.settings.current().update.channel.clone();
        let release = match last_check {
            // A check of another channel (the setting changed since) does
            // not count.
            Some(outcome) if outcome.channel == channel => outcome,
            _ => self.check().await?,
        };
        let current = version::current();
        if !release.update_available {
            return Err(Error::failed_precondition(format!(
                "OmniPanel {current} is up to date (the {} channel offers {})",
                release.channel, release.latest.version
            ))
            .with_reason(Reason::UpdateNotAvailable));
        }
        let release = release.latest;
        self.check_floor(&release.version).await?;
        let settings = self.settings.current();
        let public_key = Self::public_key(&settings)?;
        let ready = lock(&self.state).ready.clone();
        if let Some((ready, path)) = ready
            && ready == release
            && path.is_file()
        {
            return Ok(release);
        }
        let staging = self.dirs.staging();
        tokio::fs::create_dir_all(&staging).await.map_err(|err| {
            Error::internal(format!("cannot create {}: {err}", staging.display()))
        })?;
        let name = format!(
            "omnipanel-{}-{}.artifact",
            release.version,
            manifest::platform_key()
        );
        let part = staging.join(format!("{name}.part"));
        let done = staging.join(&name);
        let mut received = tokio::fs::metadata(&part).await.map_or(0, |m| m.len());
        if received > release.size {
            artifact::remove_file_if_present(&part);
            received = 0;
        }
        let mut progress = Progress {
            version: release.version.clone(),
            state: DownloadState::Downloading,
            received,
            total: release.size,
            error: None,
            resumed: received > 0,
        };
        let mut last_event = None;
        self.publish_progress(progress.clone(), &mut last_event);
        if received < release.size {
            self.fetch_artifact(&release, &part, received, &mut progress, &mut last_event)
                .await?;
        }
        progress.state = DownloadState::Verifying;
        self.publish_progress(progress.clone(), &mut None);
        let verify_release = release.clone();
        let verify_part = part.clone();
        let verified = tokio::task::spawn_blocking(move || {
            artifact::verify(&verify_part, &verify_release, &public_key)
        })
        .await?;
        if let Err(err) = verified {
            artifact::remove_file_if_present(&part);
            self.record("download", &release.version, "refused", err.message())
                .await;
            return Err(err);
        }
        tokio::fs::rename(&part, &done).await.map_err(|err| {
            Error::internal(format!(
                "cannot move the download to {}: {err}",
                done.display()
            ))
        })?;
        self.record(
            "download",
            &release.version,
            "ok",
            if progress.resumed {
                "resumed an interrupted download"
            } else {
                ""
            },
        )
        .await;
        lock(&self.state).ready = Some((release.clone(), done));
        Ok(release)
    }

    async fn fetch_artifact(
        &self,
        release: &Release,
        part: &Path,
        mut received: u64,
        progress: &mut Progress,
        last_event: &mut Option<Instant>,
    ) -> Result<()> {
        let client = self.client_for(&release.url).await?;
        let mut request = client.get(&release.url);
        if received > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={received}-"));
        }
        let interrupted = |received: u64, err: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Unavailable,
                format!(
                    "the download of version {} stopped at {received} of {} bytes ({err}); run the download again to resume it",
                    release.version, release.size
                ),
            )
            .with_reason(Reason::UpdateDownloadInterrupted)
        };
        let mut response = request
            .send()
            .await
            .map_err(|err| interrupted(received, &err))?;
        let status = response.status();
        let append = if status == reqwest::StatusCode::PARTIAL_CONTENT && received > 0 {
            true
        } else if status.is_success() {
            // The server ignored the range: start over.
            received = 0;
            progress.resumed = false;
            false
        } else {
            return Err(interrupted(
                received,
                &format!("the server answered {status} for {}", release.url),
            ));
        };
        progress.received = received;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(part)
            .await
            .map_err(|err| Error::internal(format!("cannot write {}: {err}", part.display())))?;
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => break,
                Err(err) => {
                    // Keep what arrived: the next download resumes there.
                    let _ = file.flush().await;
                    return Err(interrupted(received, &err));
                }
            };
            received += chunk.len() as u64;
            if received > release.size {
                drop(file);
                artifact::remove_file_if_present(part);
                let message = format!(
                    "the download of version {} is larger than the {} bytes the manifest says; it was deleted",
                    release.version, release.size
                );
                self.record("download", &release.version, "refused", &message)
                    .await;
                return Err(Error::failed_precondition(message)
                    .with_reason(Reason::UpdateVerificationFailed));
            }
            file.write_all(&chunk).await.map_err(|err| {
                Error::internal(format!("cannot write {}: {err}", part.display()))
            })?;
            progress.received = received;
            self.publish_progress(progress.clone(), last_event);
        }
        file.sync_all()
            .await
            .map_err(|err| Error::internal(format!("cannot write {}: {err}", part.display())))?;
        Ok(())
    }
}
