//! Self-update: check a release manifest (at start and every
//! `[update] check_interval` while `[update] enabled`), download the
//! artifact for this platform with progress (a watch channel for streams,
//! the event bus topic "updates") and HTTP Range resumption into
//! `$XDG_DATA_HOME/omnipanel/updates/staging`, verify size, SHA-256 and the
//! minisign signature (any mismatch deletes the download and changes
//! nothing), and install: keep the current binaries as the rollback copy,
//! swap the new ones in atomically, and restart through [`handover`], which
//! backs up state.db, probes the new agent and rolls back (binaries and,
//! when the new agent migrated it, state.db) by itself when it does not
//! answer. The history lives in state.db (`update_history`).
//!
//! Trust: the manifest is signed as well as the artifact (see
//! [`manifest::verify`]), with the key built into release builds; a
//! `[update] public_key` counts only in builds without one
//! ([`choose_key`]). Nothing below the highest version ever installed is
//! installed (the floor, kept in state.db's `meta`), except by an explicit
//! rollback.
//!
//! The restart cannot happen inside the running agent: the RPC layer asks
//! for shutdown after [`Updater::install`] or [`Updater::rollback`]
//! returned, and `daemon::run` performs the recorded [`RestartPlan`] once
//! the socket and the single-instance locks are released (the probe uses
//! the same data folder, so it could not start before).
//!
//! This file is the facade: [`Updater`] with its start-up, status, the
//! HTTP clients and signing key the stages share, and the types they
//! share. The stages each have a file: `scheduler.rs` (the check and its
//! periodic run), `download.rs` (resumable, with progress), `install.rs`
//! (install, rollback, and reporting what the previous agent's install
//! left) and `history.rs` (the `update_history` rows); `manifest.rs`,
//! `feed.rs` (finding a channel's manifest in a GitHub release list),
//! `artifact.rs`, `statedb.rs` (the state.db backup) and `handover.rs` are
//! the pieces they are built on; `packaging.rs` tells an install a package
//! manager owns (the .deb), which is updated by it, never by the agent.
//! `tests.rs` tests the facade as a whole against a loopback HTTP server.

pub mod artifact;
mod download;
mod events;
pub mod feed;
pub mod handover;
mod history;
mod install;
pub mod manifest;
pub mod packaging;
mod scheduler;
pub mod statedb;
#[cfg(test)]
mod tests;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::reason::Reason;
use crate::{
    config::{Settings, SettingsStore},
    error::{Error, Result},
    events::Publisher,
    http::{self, HttpOptions, Tls},
    ollama::Ollama,
    store::Store,
    sync::lock,
    version,
};
pub use events::UpdateEvent;
pub use manifest::Release;
pub use packaging::PackageInstall;

/// The minisign public key release manifests and artifacts are signed with
/// (the base64 line of the .pub file), built in from
/// `OMNIPANEL_UPDATE_PUBLIC_KEY` at compile time: the release workflow sets
/// it from the repository's MINISIGN_PUBLIC_KEY secret and signs with the
/// secret half. Builds without it (development, tests, distribution
/// packages, self-hosters' own builds) have no key: updates then need
/// `[update] public_key` and are refused without it, and no automatic
/// check runs. With it, `[update] public_key` is ignored (see
/// [`choose_key`]).
pub const BUILTIN_PUBLIC_KEY: &str = match option_env!("OMNIPANEL_UPDATE_PUBLIC_KEY") {
    Some(key) => key,
    None => "",
};

/// Where the key that verifies updates came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    /// Built into this binary at compile time.
    BuiltIn,
    /// `[update] public_key`, in a build without a built-in key.
    Config,
}

/// The key updates are verified with, and whether a configured key was
/// passed over for the built-in one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateKey {
    /// The minisign public key (base64).
    pub key: String,
    /// Where it came from.
    pub source: KeySource,
    /// `[update] public_key` is set but ignored (a built-in key exists).
    pub config_ignored: bool,
}

/// Choose the update key. A built-in key always wins: config.toml can be
/// written by anything that runs as the user (and over the API with an
/// admin token), so it must not be able to replace the key official
/// releases are checked with. `[update] public_key` adds a self-hoster's
/// key only to a build that has none.
pub fn choose_key(builtin: &str, configured: Option<&str>) -> Result<UpdateKey> {
    let configured = configured.map(str::trim).filter(|key| !key.is_empty());
    let builtin = builtin.trim();
    match (builtin.is_empty(), configured) {
        (false, configured) => Ok(UpdateKey {
            key: builtin.to_owned(),
            source: KeySource::BuiltIn,
            config_ignored: configured.is_some(),
        }),
        (true, Some(key)) => Ok(UpdateKey {
            key: key.to_owned(),
            source: KeySource::Config,
            config_ignored: false,
        }),
        (true, None) => Err(Error::failed_precondition(
            "this build has no update signing key, so no update can be verified; set [update] public_key (or install updates with your package manager)",
        )
        .with_reason(Reason::UpdateNoKey)),
    }
}

/// Log which key verifies updates (once per change, by the scheduler).
fn log_key_choice(choice: &UpdateKey) {
    match (choice.source, choice.config_ignored) {
        (KeySource::BuiltIn, true) => tracing::warn!(
            "[update] public_key is ignored: this build has a built-in update key, and only that key is trusted"
        ),
        (KeySource::BuiltIn, false) => {}
        (KeySource::Config, _) => tracing::info!(
            key = %choice.key,
            "updates are verified with the key from [update] public_key (this build has no built-in key)"
        ),
    }
}

/// How long the new agent has to answer after an install before it is
/// rolled back. Generous: a first start may migrate state.db.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(60);

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
    /// Set when a package manager installed this agent: it, not the agent,
    /// installs `latest`.
    pub package: Option<PackageInstall>,
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
    /// Set when a package manager installed this agent (see
    /// [`packaging`]).
    pub package: Option<PackageInstall>,
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
    /// Exec `exe` (after a rollback the user asked for), first putting
    /// back the state.db backup the rollback handed over, if the new
    /// agent migrated the database.
    Exec {
        /// The agent executable.
        exe: PathBuf,
        /// Folder of the updates (marker, state.db backup).
        dirs: UpdateDirs,
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
    /// state.db as it was before the new agent first started, kept with
    /// the binaries it belongs to.
    pub fn state_backup(&self) -> PathBuf {
        self.rollback().join("state.db")
    }
    /// The backup a requested rollback hands to the restart.
    pub fn state_to_restore(&self) -> PathBuf {
        self.root.join("state-to-restore.db")
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
    /// state.db was put back as it was before the update (the new agent
    /// had migrated it to a schema the old one cannot open).
    #[serde(default)]
    pub state_restored: bool,
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
    bus: Publisher<UpdateEvent>,
    ollama: Arc<Ollama>,
    dirs: UpdateDirs,
    agent_exe: PathBuf,
    /// Found once at start: a package install does not change while the
    /// agent runs (an upgrade by apt restarts it).
    package: Option<PackageInstall>,
    http: tokio::sync::OnceCell<(reqwest::Client, reqwest::Client)>,
    state: Mutex<State>,
    progress: watch::Sender<Progress>,
    downloading: AtomicBool,
    restart: Mutex<Option<RestartPlan>>,
    /// Held while an install or rollback touches the binaries, so two at
    /// once cannot interleave their swaps.
    swapping: tokio::sync::Mutex<()>,
    shutdown: CancellationToken,
}

impl Updater {
    /// Set up, report what an earlier install left (the marker), and start
    /// the periodic check. The check and a running download stop on
    /// [`Updater::shutdown`] or when `shutdown` (the agent's) fires.
    pub async fn start(
        settings: Arc<SettingsStore>,
        store: Store,
        bus: Publisher<UpdateEvent>,
        ollama: Arc<Ollama>,
        data_dir: &Path,
        agent_exe: PathBuf,
        shutdown: &CancellationToken,
    ) -> Result<Arc<Self>> {
        let (progress, _) = watch::channel(Progress::default());
        let exe = agent_exe.clone();
        let package = tokio::task::spawn_blocking(move || packaging::detect(&exe)).await?;
        if let Some(package) = &package {
            tracing::info!(
                evidence = %package.evidence.display(),
                "this agent was {}; it checks for updates but does not install them itself",
                package.advice()
            );
        }
        let updater = Arc::new(Self {
            settings,
            store,
            bus,
            ollama,
            dirs: UpdateDirs::new(data_dir),
            agent_exe,
            package,
            http: tokio::sync::OnceCell::new(),
            state: Mutex::new(State::default()),
            progress,
            downloading: AtomicBool::new(false),
            restart: Mutex::new(None),
            swapping: tokio::sync::Mutex::new(()),
            shutdown: shutdown.child_token(),
        });
        updater.report_marker().await;
        if std::env::var_os(handover::PROBE_ENV).is_none() {
            // A probe may still be rolled back: it is not "installed" yet.
            updater.raise_floor(version::current()).await;
        }
        updater.spawn_periodic_check();
        Ok(updater)
    }

    /// Stop the periodic check and a running download (which resumes on
    /// the next start). Idempotent.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Set when a package manager installed this agent.
    pub fn package(&self) -> Option<&PackageInstall> {
        self.package.as_ref()
    }

    /// Refuse `what` (e.g. "install updates") on an install a package
    /// manager owns: replacing its files would fight that manager.
    fn refuse_if_packaged(&self, what: &str) -> Result<()> {
        match &self.package {
            Some(package) => Err(package.refusal(what)),
            None => Ok(()),
        }
    }

    /// The restart an install or rollback asked for, taken once.
    pub fn take_restart_plan(&self) -> Option<RestartPlan> {
        lock(&self.restart).take()
    }

    async fn clients(&self) -> Result<&(reqwest::Client, reqwest::Client)> {
        self.http
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(|| {
                    let options = HttpOptions {
                        connect_timeout: Duration::from_secs(10),
                        // A stalled server fails the download (resumable)
                        // rather than hanging it.
                        read_timeout: Some(Duration::from_secs(60)),
                        max_idle_per_host: None,
                        tls: Tls::Off,
                        follow_redirects: true,
                    };
                    let plain = http::client(&options)?;
                    let tls = http::client(&options.with_tls(Tls::SystemRoots))?;
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

    fn key_choice(settings: &Settings) -> Result<UpdateKey> {
        choose_key(BUILTIN_PUBLIC_KEY, settings.update.public_key.as_deref())
    }

    fn public_key(settings: &Settings) -> Result<String> {
        Self::key_choice(settings).map(|choice| choice.key)
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
            package: self.package.clone(),
        })
    }
}
