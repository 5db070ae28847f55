//! Self-update: check a release manifest (at start and every
//! `[update] check_interval` while `[update] enabled`), download the
//! artifact for this platform with progress (a watch channel for streams,
//! the event bus topic "updates") and HTTP Range resumption into
//! `$XDG_DATA_HOME/omnipanel/updates/staging`, verify size, SHA-256 and the
//! minisign signature (any mismatch deletes the download and changes
//! nothing), and install: keep the current binaries as the rollback copy,
//! swap the new ones in atomically, and restart through [`handover`], which
//! probes the new agent and rolls back by itself when it does not answer.
//! The history lives in state.db (`update_history`).
//!
//! The restart cannot happen inside the running agent: the RPC layer asks
//! for shutdown after [`Updater::install`] or [`Updater::rollback`]
//! returned, and `daemon::run` performs the recorded [`RestartPlan`] once
//! the socket and the single-instance locks are released (the probe uses
//! the same data folder, so it could not start before).

pub mod artifact;
pub mod handover;
pub mod manifest;

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use tokio::{io::AsyncWriteExt, sync::watch};
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Settings, SettingsStore},
    error::{Error, ErrorKind, Result},
    events::{EventBus, EventPayload},
    ollama::Ollama,
    store::{Store, now_ms},
    version,
};
pub use manifest::Release;

/// The minisign public key release artifacts are signed with (the base64
/// line of the .pub file), built in from `OMNIPANEL_UPDATE_PUBLIC_KEY` at
/// compile time: the release workflow sets it from the repository's
/// MINISIGN_PUBLIC_KEY secret and signs with the secret half. Builds
/// without it (development, distribution packages) have no key: updates
/// then need `[update] public_key` and are refused without it, and no
/// automatic check runs.
pub const BUILTIN_PUBLIC_KEY: &str = match option_env!("OMNIPANEL_UPDATE_PUBLIC_KEY") {
    Some(key) => key,
    None => "",
};

/// How long the new agent has to answer after an install before it is
/// rolled back. Generous: a first start may migrate state.db.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(60);

/// Least time between two progress events on the bus.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// History entries reported by status.
const HISTORY_LIMIT: u32 = 20;

/// Where a download stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownloadState {
    /// Nothing downloaded yet.
    #[default]
    Idle,
    /// Bytes are arriving.
    Downloading,
    /// Checking size, hash and signature.
    Verifying,
    /// Verified, ready to install.
    Ready,
    /// Failed; see the error.
    Failed,
}

/// Progress of the update download.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Progress {
    /// Version being downloaded.
    pub version: String,
    /// State.
    pub state: DownloadState,
    /// Bytes received (including a resumed earlier part).
    pub received: u64,
    /// Size from the manifest.
    pub total: u64,
    /// Why it failed.
    pub error: Option<Error>,
    /// Whether an interrupted download was continued.
    pub resumed: bool,
}

impl Progress {
    /// Ready or failed.
    pub fn is_final(&self) -> bool {
        matches!(self.state, DownloadState::Ready | DownloadState::Failed)
    }
}

/// The outcome of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Running version.
    pub current_version: String,
    /// Channel checked.
    pub channel: String,
    /// Whether `latest` is newer.
    pub update_available: bool,
    /// Newest release.
    pub latest: Release,
    /// When.
    pub checked_ms: i64,
}

/// One history row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// When.
    pub time_ms: i64,
    /// "download", "install", "rollback".
    pub action: String,
    /// Version before.
    pub from_version: String,
    /// Version after or attempted.
    pub to_version: String,
    /// "ok", "refused", "failed", "rolled_back".
    pub outcome: String,
    /// Details.
    pub message: String,
}

/// Everything GetUpdateStatus reports.
#[derive(Debug, Clone)]
pub struct UpdateStatus {
    /// Running version.
    pub current_version: String,
    /// Channel.
    pub channel: String,
    /// Automatic checks on.
    pub automatic_checks: bool,
    /// Last check.
    pub last_check: Option<CheckOutcome>,
    /// The download.
    pub download: Progress,
    /// Downloaded and verified version.
    pub ready_version: Option<String>,
    /// Version a rollback restores.
    pub rollback_version: Option<String>,
    /// Last failure.
    pub last_error: Option<String>,
    /// Recent history, newest first.
    pub history: Vec<HistoryEntry>,
}

/// What `daemon::run` does after the agent stopped for an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartPlan {
    /// Start the new agent on a probe socket, wait for it to answer as
    /// `to_version`, then exec it for real; roll back and exec the old one
    /// when it does not answer.
    Probe {
        /// The agent executable (now the new binary).
        exe: PathBuf,
        /// Expected version.
        to_version: String,
        /// Folder of the updates (marker, rollback copy).
        dirs: UpdateDirs,
    },
    /// Exec `exe` (after a rollback the user asked for).
    Exec {
        /// The agent executable.
        exe: PathBuf,
    },
}

/// The updates folders under `$XDG_DATA_HOME/omnipanel/updates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateDirs {
    /// `updates/`.
    pub root: PathBuf,
}

impl UpdateDirs {
    /// Under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("updates"),
        }
    }
    /// Downloads.
    pub fn staging(&self) -> PathBuf {
        self.root.join("staging")
    }
    /// The binaries an install replaced.
    pub fn rollback(&self) -> PathBuf {
        self.root.join("rollback")
    }
    /// The install in progress (see [`Marker`]).
    pub fn marker(&self) -> PathBuf {
        self.root.join("pending.json")
    }
}

/// What an install or rollback left for the next agent to report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Marker {
    /// "installing" (binaries swapped, new agent not confirmed yet),
    /// "confirmed" (it answered), "rolled_back" (it did not; the old one is
    /// back), "rollback" (the user asked for a rollback).
    pub state: String,
    /// Version before.
    pub from_version: String,
    /// Version after.
    pub to_version: String,
    /// Why it was rolled back.
    #[serde(default)]
    pub reason: String,
    /// When the install began.
    pub time_ms: i64,
}

impl Marker {
    /// Read the marker, if any.
    pub fn read(path: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(path).ok()?;
        match serde_json::from_str(&text) {
            Ok(marker) => Some(marker),
            Err(err) => {
                tracing::warn!(path = %path.display(), error = %err, "ignoring an unreadable update marker");
                None
            }
        }
    }

    /// Write it atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|err| Error::internal(format!("cannot encode the update marker: {err}")))?;
        crate::atomic_file::write_atomically(path, &text)
            .map_err(|err| Error::internal(format!("cannot write {}: {err}", path.display())))
    }
}

#[derive(Debug, Default)]
struct State {
    last_check: Option<CheckOutcome>,
    ready: Option<(Release, PathBuf)>,
    last_error: Option<String>,
}

/// The update manager.
#[derive(Debug)]
pub struct Updater {
    settings: Arc<SettingsStore>,
    store: Store,
    bus: Arc<EventBus>,
    ollama: Arc<Ollama>,
    dirs: UpdateDirs,
    agent_exe: PathBuf,
    http: tokio::sync::OnceCell<(reqwest::Client, reqwest::Client)>,
    state: Mutex<State>,
    progress: watch::Sender<Progress>,
    downloading: AtomicBool,
    restart: Mutex<Option<RestartPlan>>,
    shutdown: CancellationToken,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data; keep using it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Updater {
    /// Set up, report what an earlier install left (the marker), and start
    /// the periodic check.
    pub async fn start(
        settings: Arc<SettingsStore>,
        store: Store,
        bus: Arc<EventBus>,
        ollama: Arc<Ollama>,
        data_dir: &Path,
        agent_exe: PathBuf,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let (progress, _) = watch::channel(Progress::default());
        let updater = Arc::new(Self {
            settings,
            store,
            bus,
            ollama,
            dirs: UpdateDirs::new(data_dir),
            agent_exe,
            http: tokio::sync::OnceCell::new(),
            state: Mutex::new(State::default()),
            progress,
            downloading: AtomicBool::new(false),
            restart: Mutex::new(None),
            shutdown,
        });
        updater.report_marker().await;
        updater.spawn_periodic_check();
        updater
    }

    /// The agent executable this agent was started from.
    pub fn agent_exe(&self) -> &Path {
        &self.agent_exe
    }

    /// The restart an install or rollback asked for, taken once.
    pub fn take_restart_plan(&self) -> Option<RestartPlan> {
        lock(&self.restart).take()
    }

    async fn record(&self, action: &str, to_version: &str, outcome: &str, message: &str) {
        self.record_from(action, version::current(), to_version, outcome, message)
            .await;
    }

    async fn record_from(
        &self,
        action: &str,
        from_version: &str,
        to_version: &str,
        outcome: &str,
        message: &str,
    ) {
        let row = (
            now_ms(),
            action.to_owned(),
            from_version.to_owned(),
            to_version.to_owned(),
            outcome.to_owned(),
            message.to_owned(),
        );
        let result = self
            .store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO update_history (time_ms, action, from_version, to_version, outcome, message)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![row.0, row.1, row.2, row.3, row.4, row.5],
                )?;
                Ok(())
            })
            .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "cannot record update history");
        }
    }

    /// Recent history, newest first.
    pub async fn history(&self) -> Result<Vec<HistoryEntry>> {
        self.store
            .read(|connection| {
                let mut statement = connection.prepare(
                    "SELECT time_ms, action, from_version, to_version, outcome, message
                     FROM update_history ORDER BY id DESC LIMIT ?1",
                )?;
                let rows = statement.query_map([HISTORY_LIMIT], |row| {
                    Ok(HistoryEntry {
                        time_ms: row.get(0)?,
                        action: row.get(1)?,
                        from_version: row.get(2)?,
                        to_version: row.get(3)?,
                        outcome: row.get(4)?,
                        message: row.get(5)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    /// Report what the previous agent's install or rollback left.
    async fn report_marker(&self) {
        let path = self.dirs.marker();
        let Some(marker) = Marker::read(&path) else {
            return;
        };
        let current = version::current();
        match marker.state.as_str() {
            // The probe instance of an install: the old agent is waiting
            // for it; it must not touch the marker.
            "installing" if std::env::var_os(handover::PROBE_ENV).is_some() => return,
            "installing" | "confirmed" => {
                tracing::info!(from = %marker.from_version, to = current, "update installed");
                self.record_from("install", &marker.from_version, current, "ok", "")
                    .await;
                self.bus.publish(EventPayload::UpdateInstalled {
                    from_version: marker.from_version.clone(),
                    to_version: current.to_owned(),
                });
            }
            "rolled_back" => {
                tracing::warn!(
                    to = %marker.to_version,
                    reason = %marker.reason,
                    "the update was rolled back automatically"
                );
                let message = format!(
                    "version {} was rolled back: {}",
                    marker.to_version, marker.reason
                );
                self.record_from(
                    "install",
                    &marker.from_version,
                    &marker.to_version,
                    "rolled_back",
                    &marker.reason,
                )
                .await;
                lock(&self.state).last_error = Some(message);
                self.bus.publish(EventPayload::UpdateRolledBack {
                    from_version: marker.to_version.clone(),
                    to_version: current.to_owned(),
                    reason: marker.reason.clone(),
                    automatic: true,
                });
            }
            "rollback" => {
                self.record_from("rollback", &marker.from_version, current, "ok", "")
                    .await;
                self.bus.publish(EventPayload::UpdateRolledBack {
                    from_version: marker.from_version.clone(),
                    to_version: current.to_owned(),
                    reason: "requested".to_owned(),
                    automatic: false,
                });
            }
            other => tracing::warn!(state = other, "unknown update marker state; ignored"),
        }
        artifact::remove_file_if_present(&path);
    }

    /// Check at start, then every `check_interval`, while enabled and a
    /// signing key is known. Otherwise nothing runs but a wait for the
    /// settings to change.
    fn spawn_periodic_check(self: &Arc<Self>) {
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

    async fn clients(&self) -> Result<&(reqwest::Client, reqwest::Client)> {
        self.http
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(|| {
                    let builder = || {
                        reqwest::Client::builder()
                            .connect_timeout(Duration::from_secs(10))
                            // A stalled server fails the download (resumable)
                            // rather than hanging it.
                            .read_timeout(Duration::from_secs(60))
                            .pool_idle_timeout(None)
                            .user_agent(format!("omnipanel/{}", version::current()))
                    };
                    let plain = builder().tls_certs_only([]).build()?;
                    let tls = builder().build()?;
                    Ok::<_, reqwest::Error>((plain, tls))
                })
                .await?
                .map_err(|err| Error::internal(format!("cannot set up HTTP: {err}")))
            })
            .await
    }

    async fn client_for(&self, url: &str) -> Result<reqwest::Client> {
        let (plain, tls) = self.clients().await?;
        Ok(if url.starts_with("https://") {
            tls.clone()
        } else {
            plain.clone()
        })
    }

    fn manifest_url(settings: &Settings) -> String {
        settings
            .update
            .manifest_url
            .replace("{channel}", &settings.update.channel)
    }

    fn public_key(settings: &Settings) -> Result<String> {
        match settings.update.public_key.as_deref().map(str::trim) {
            Some(key) if !key.is_empty() => Ok(key.to_owned()),
            _ if !BUILTIN_PUBLIC_KEY.is_empty() => Ok(BUILTIN_PUBLIC_KEY.to_owned()),
            _ => Err(Error::failed_precondition(
                "this build has no update signing key, so no update can be verified; set [update] public_key (or install updates with your package manager)",
            )
            .with_reason("UPDATE_NO_KEY")),
        }
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
                    self.bus.publish(EventPayload::UpdateAvailable {
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
            .with_reason("UPDATE_SERVER_UNAVAILABLE")
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
                .publish(EventPayload::UpdateProgress(last.clone()));
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
                .publish(EventPayload::UpdateProgress(progress.clone()));
        }
        self.progress.send_replace(progress);
    }

    async fn run_download(&self) -> Result<Release> {
        let last_check = lock(&self.state).last_check.clone();
        let release = match last_check {
            Some(outcome) => outcome,
            None => self.check().await?,
        };
        let current = version::current();
        if !release.update_available {
            return Err(Error::failed_precondition(format!(
                "OmniPanel {current} is up to date (the {} channel offers {})",
                release.channel, release.latest.version
            ))
            .with_reason("UPDATE_NOT_AVAILABLE"));
        }
        let release = release.latest;
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
        let resumed = received > 0;
        let mut progress = Progress {
            version: release.version.clone(),
            state: DownloadState::Downloading,
            received,
            total: release.size,
            error: None,
            resumed,
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
            if resumed {
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
            .with_reason("UPDATE_DOWNLOAD_INTERRUPTED")
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
                return Err(
                    Error::failed_precondition(message).with_reason("UPDATE_VERIFICATION_FAILED")
                );
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

    /// Refuse to install while Ollama is busy, unless forced.
    async fn check_idle(&self) -> Result<()> {
        if self.ollama.pull_running() {
            return Err(Error::failed_precondition(
                "a model pull is running; the update waits until it ends (or force it)",
            )
            .with_reason("UPDATE_DEFERRED"));
        }
        if let Ok(models) = self.ollama.running_models("").await
            && let Some(model) = models.first()
        {
            return Err(Error::failed_precondition(format!(
                "model {} is loaded; the update waits until it is unloaded (or force it)",
                model.name
            ))
            .with_reason("UPDATE_DEFERRED"));
        }
        Ok(())
    }

    /// Install the downloaded release: verify it again, unpack, keep the
    /// current binaries for rollback, swap, and plan the restart. Returns
    /// (from, to). The caller then shuts the agent down.
    pub async fn install(&self, force: bool) -> Result<(String, String)> {
        let ready = lock(&self.state).ready.clone();
        let (release, path) = ready.ok_or_else(|| {
            Error::failed_precondition(
                "no update is downloaded; run `omnipanel update download` first",
            )
            .with_reason("UPDATE_NOT_DOWNLOADED")
        })?;
        if !force {
            self.check_idle().await?;
        }
        if lock(&self.restart).is_some() {
            return Err(Error::failed_precondition(
                "an install or rollback is already under way",
            ));
        }
        let public_key = Self::public_key(&self.settings.current())?;
        let from = version::current().to_owned();
        let to = release.version.clone();
        let dirs = self.dirs.clone();
        let exe = self.agent_exe.clone();
        let (from_copy, to_copy) = (from.clone(), to.clone());
        let result = tokio::task::spawn_blocking(move || -> Result<()> {
            artifact::verify(&path, &release, &public_key)?;
            let unpacked = dirs.staging().join(format!("unpacked-{}", release.version));
            artifact::unpack(&path, &unpacked)?;
            let install_dir = artifact::install_dir_of(&exe)?;
            artifact::check_writable(&install_dir)?;
            artifact::save_rollback(&install_dir, &dirs.rollback(), &from_copy)?;
            Marker {
                state: "installing".to_owned(),
                from_version: from_copy.clone(),
                to_version: to_copy.clone(),
                reason: String::new(),
                time_ms: now_ms(),
            }
            .write(&dirs.marker())?;
            if let Err(err) = artifact::swap_in(&unpacked, &install_dir) {
                // Put back whatever was already swapped.
                let _ = artifact::restore_rollback(&dirs.rollback(), &install_dir);
                artifact::remove_file_if_present(&dirs.marker());
                return Err(err);
            }
            let _ = std::fs::remove_dir_all(&unpacked);
            Ok(())
        })
        .await?;
        if let Err(err) = result {
            self.record("install", &to, "failed", err.message()).await;
            lock(&self.state).last_error = Some(err.to_string());
            return Err(err);
        }
        tracing::info!(from = %from, to = %to, "update installed; restarting");
        *lock(&self.restart) = Some(RestartPlan::Probe {
            exe: self.agent_exe.clone(),
            to_version: to.clone(),
            dirs: self.dirs.clone(),
        });
        Ok((from, to))
    }

    /// Restore the binaries the last install replaced and plan the
    /// restart. Returns (from, to).
    pub async fn rollback(&self) -> Result<(String, String)> {
        if lock(&self.restart).is_some() {
            return Err(Error::failed_precondition(
                "an install or rollback is already under way",
            ));
        }
        let from = version::current().to_owned();
        let dirs = self.dirs.clone();
        let exe = self.agent_exe.clone();
        let from_copy = from.clone();
        let to = tokio::task::spawn_blocking(move || -> Result<String> {
            let install_dir = artifact::install_dir_of(&exe)?;
            artifact::check_writable(&install_dir)?;
            let to = artifact::restore_rollback(&dirs.rollback(), &install_dir)?;
            // Rolled back once: the copy is now what is installed.
            let _ = std::fs::remove_dir_all(dirs.rollback());
            Marker {
                state: "rollback".to_owned(),
                from_version: from_copy,
                to_version: to.clone(),
                reason: "requested".to_owned(),
                time_ms: now_ms(),
            }
            .write(&dirs.marker())?;
            Ok(to)
        })
        .await??;
        tracing::info!(from = %from, to = %to, "rolled back; restarting");
        *lock(&self.restart) = Some(RestartPlan::Exec {
            exe: self.agent_exe.clone(),
        });
        Ok((from, to))
    }

    /// The whole picture.
    pub async fn status(&self) -> Result<UpdateStatus> {
        let settings = self.settings.current();
        let history = self.history().await?;
        let rollback_dir = self.dirs.rollback();
        let rollback_version =
            tokio::task::spawn_blocking(move || artifact::rollback_version(&rollback_dir)).await?;
        let state = lock(&self.state);
        Ok(UpdateStatus {
            current_version: version::current().to_owned(),
            channel: settings.update.channel.clone(),
            automatic_checks: settings.update.enabled,
            last_check: state.last_check.clone(),
            download: self.progress.borrow().clone(),
            ready_version: state.ready.as_ref().map(|(r, _)| r.version.clone()),
            rollback_version,
            last_error: state.last_error.clone(),
            history,
        })
    }
}
