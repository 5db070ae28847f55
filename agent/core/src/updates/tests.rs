//! The updates facade tested at its boundary, without the agent or a
//! socket: an [`Updater`] started on a temporary data folder and state.db,
//! talking to a tiny HTTP/1.1 server on loopback that serves a manifest and
//! an artifact (with byte ranges) or holds a request open. Manifests are
//! signed with a key generated per run, as the release tooling signs them.
//! Covers the check and what the scheduler does with it, manifests that are
//! refused (tampered, another key, replayed, another channel) with nothing
//! changed, downloads that are refused or resumed, shutdown during a
//! download, install and rollback refusals, a rollback on a temporary
//! install folder, what a previous agent's marker reports, the floor,
//! history, which key is trusted, and an install a package manager owns
//! (checked, never replaced).

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::{
    BUILTIN_PUBLIC_KEY, DownloadState, KeySource, Marker, Progress, RestartPlan, UpdateDirs,
    Updater, artifact, choose_key, manifest,
};
use crate::{
    config::{OllamaSettings, Settings, SettingsStore, UpdateSettings},
    events::EventBus,
    logs::LogHub,
    ollama::{Ollama, fit::VramSource},
    reason::Reason,
    store::Store,
    updates::UpdateEvent,
    version,
};

/// What the test server does for a path.
#[derive(Clone)]
enum Route {
    /// Answer with these bytes (206 from an offset for `Range: bytes=N-`).
    Body(Vec<u8>),
    /// Answer with all of these bytes whatever the Range header says, as
    /// servers without range support do.
    BodyIgnoringRange(Vec<u8>),
    /// Read the request and never answer.
    Hang,
}

/// A request as the server saw it: its path and its Range header.
type Seen = (String, Option<String>);

/// A loopback HTTP/1.1 server: one thread per connection, `Connection:
/// close`, and every request's path and Range header recorded.
struct TestServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    /// Serve `routes`; each manifest (a `.json` body) also gets its
    /// signature, made with [`signer`], at its path + `.minisig`, unless
    /// `routes` has one there already (tests of bad signatures).
    fn start(mut routes: HashMap<String, Route>) -> Self {
        let manifests: Vec<(String, Vec<u8>)> = routes
            .iter()
            .filter_map(|(path, route)| match route {
                Route::Body(body) if path.ends_with(".json") => Some((path.clone(), body.clone())),
                _ => None,
            })
            .collect();
        for (path, body) in manifests {
            routes
                .entry(format!("{path}.minisig"))
                .or_insert_with(|| Route::Body(signer().sign_manifest(&body).into_bytes()));
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let routes = routes.clone();
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut request_line = String::new();
                    reader.read_line(&mut request_line).unwrap();
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or_default()
                        .to_owned();
                    let mut range = None;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("range")
                        {
                            range = Some(value.trim().to_owned());
                        }
                    }
                    log.lock().unwrap().push((path.clone(), range.clone()));
                    let (status, body) = match routes.get(&path) {
                        None => ("404 Not Found", Vec::new()),
                        Some(Route::Hang) => {
                            std::thread::sleep(Duration::from_secs(120));
                            return;
                        }
                        Some(Route::Body(body)) => {
                            let from = range
                                .as_deref()
                                .and_then(|r| r.strip_prefix("bytes="))
                                .and_then(|r| r.strip_suffix('-'))
                                .and_then(|n| n.parse::<usize>().ok());
                            match from {
                                Some(from) => ("206 Partial Content", body[from..].to_vec()),
                                None => ("200 OK", body.clone()),
                            }
                        }
                        Some(Route::BodyIgnoringRange(body)) => ("200 OK", body.clone()),
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                });
            }
        });
        Self { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A minisign key pair generated for a test run (nothing secret is
/// committed), signing like the release tooling does.
struct Signer {
    keypair: minisign::KeyPair,
}

impl Signer {
    fn generate() -> Self {
        Self {
            keypair: minisign::KeyPair::generate_unencrypted_keypair().unwrap(),
        }
    }

    fn public(&self) -> String {
        self.keypair.pk.to_base64()
    }

    fn sign(&self, data: &[u8], trusted_comment: &str) -> String {
        minisign::sign(
            Some(&self.keypair.pk),
            &self.keypair.sk,
            std::io::Cursor::new(data),
            Some(trusted_comment),
            None,
        )
        .unwrap()
        .into_string()
    }

    /// The detached signature of a manifest, its trusted comment read
    /// from the manifest itself.
    fn sign_manifest(&self, body: &[u8]) -> String {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        let platforms = value["platforms"]
            .as_object()
            .map(|p| p.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        let comment = manifest::trusted_comment(
            value["version"].as_str().unwrap_or_default(),
            value["channel"].as_str().unwrap_or_default(),
            platforms,
        );
        self.sign(body, &comment)
    }
}

/// The key this run's manifests are signed with.
fn signer() -> &'static Signer {
    static SIGNER: std::sync::OnceLock<Signer> = std::sync::OnceLock::new();
    SIGNER.get_or_init(Signer::generate)
}

fn test_key() -> String {
    signer().public()
}

/// An artifact signature that decodes but was made by no key the tests
/// trust: enough to reach every check of a download before the
/// signature's own.
fn test_signature() -> String {
    let mut sig = b"ED".to_vec();
    sig.extend([1u8; 8]);
    sig.extend([0u8; 64]);
    format!(
        "untrusted comment: test\n{}\ntrusted comment: test\n{}\n",
        STANDARD.encode(sig),
        STANDARD.encode([0u8; 64])
    )
}

/// A stable-channel manifest offering `version` of `artifact`, announcing
/// `size` bytes.
fn manifest_for(version: &str, artifact: &[u8], size: usize) -> Vec<u8> {
    manifest_on("stable", version, artifact, size)
}

/// A manifest for `channel`.
fn manifest_on(channel: &str, version: &str, artifact: &[u8], size: usize) -> Vec<u8> {
    let sha256: String = Sha256::digest(artifact)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    serde_json::json!({
        "version": version,
        "channel": channel,
        "notes": "test release",
        "platforms": {
            manifest::platform_key(): {
                "url": "artifact.tar.gz",
                "size": size,
                "sha256": sha256,
                "signature": test_signature(),
            }
        }
    })
    .to_string()
    .into_bytes()
}

/// A version newer than the one under test, whatever it is.
const NEWER: &str = "999.0.0";

/// An updater's surroundings: a data folder, state.db, the bus, settings,
/// an Ollama that is never started, and an install folder with an agent.
struct Harness {
    _temp: tempfile::TempDir,
    data_dir: PathBuf,
    store: Store,
    bus: Arc<EventBus<UpdateEvent>>,
    settings: Arc<SettingsStore>,
    ollama: Arc<Ollama>,
    exe: PathBuf,
    shutdown: CancellationToken,
}

impl Harness {
    async fn new(update: UpdateSettings) -> Self {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().to_owned();
        let data_dir = root.join("data");
        let (store, _) = Store::open(&data_dir.join("state.db")).unwrap();
        let bus = Arc::new(EventBus::new(7, 256));
        let settings = Settings {
            update,
            ollama: OllamaSettings {
                // Nothing listens on port 1: the check for loaded models
                // finds no server, and nothing is started.
                host: Some("127.0.0.1:1".to_owned()),
                autostart: false,
                ..OllamaSettings::default()
            },
            ..Settings::default()
        };
        let log_dir = root.join("logs");
        std::fs::create_dir_all(&log_dir).unwrap();
        let ollama = Ollama::start(
            &settings.ollama,
            store.clone(),
            crate::secrets::Secrets::at(root.join("secrets.json")),
            Arc::new(EventBus::<crate::ollama::OllamaEvent>::new(7, 256)),
            &LogHub::default(),
            &log_dir,
            (&settings.log).into(),
            VramSource::new(|| None),
        )
        .await
        .unwrap();
        let settings = Arc::new(SettingsStore::new(root.join("config.toml"), settings));
        let bin = root.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let exe = bin.join(artifact::AGENT_BINARY);
        std::fs::write(&exe, b"installed agent").unwrap();
        Self {
            _temp: temp,
            data_dir,
            store,
            bus,
            settings,
            ollama,
            exe,
            shutdown: CancellationToken::new(),
        }
    }

    async fn start(&self) -> Arc<Updater> {
        Updater::start(
            self.settings.clone(),
            self.store.clone(),
            self.bus.clone(),
            self.ollama.clone(),
            &self.data_dir,
            self.exe.clone(),
            &self.shutdown,
        )
        .await
        .unwrap()
    }

    fn dirs(&self) -> UpdateDirs {
        UpdateDirs::new(&self.data_dir)
    }

    /// Every event published so far, oldest first.
    async fn published(&self) -> Vec<UpdateEvent> {
        crate::events::published(&self.bus).await
    }
}

/// Manual checks only, against `manifest_url`; `public_key` set.
fn manual(manifest_url: String) -> UpdateSettings {
    UpdateSettings {
        manifest_url,
        enabled: false,
        public_key: Some(test_key()),
        ..UpdateSettings::default()
    }
}

async fn final_progress(updater: &Arc<Updater>) -> Progress {
    let mut progress = updater.download();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let current = progress.borrow_and_update().clone();
            if current.is_final() {
                return current;
            }
            progress.changed().await.unwrap();
        }
    })
    .await
    .expect("the download ends")
}

#[tokio::test]
async fn a_fresh_updater_reports_settings_and_nothing_else() {
    let harness = Harness::new(manual("http://127.0.0.1:1/{channel}.json".to_owned())).await;
    let updater = harness.start().await;
    let status = updater.status().await.unwrap();
    assert_eq!(status.current_version, version::current());
    assert_eq!(status.channel, "stable");
    assert!(!status.automatic_checks);
    assert_eq!(status.last_check, None);
    assert_eq!(status.download, Progress::default());
    assert_eq!(
        (
            status.ready_version,
            status.rollback_version,
            status.last_error
        ),
        (None, None, None)
    );
    assert!(status.history.is_empty());
    assert_eq!(updater.take_restart_plan(), None);
}

#[tokio::test]
async fn a_check_that_cannot_reach_the_server_is_remembered() {
    let harness = Harness::new(manual("http://127.0.0.1:1/m-{channel}.json".to_owned())).await;
    let updater = harness.start().await;
    let err = updater.check().await.unwrap_err();
    assert_eq!(
        err.reason().map(Reason::as_str),
        Some("UPDATE_SERVER_UNAVAILABLE")
    );
    assert!(
        err.message().contains("http://127.0.0.1:1/m-stable.json"),
        "the channel is filled in: {err}"
    );
    let status = updater.status().await.unwrap();
    assert_eq!(status.last_error, Some(err.to_string()));
    assert_eq!(status.last_check, None);
}

#[tokio::test]
async fn a_newer_release_is_announced_once_per_version() {
    let server = TestServer::start(HashMap::from([(
        "/stable.json".to_owned(),
        Route::Body(manifest_for(NEWER, b"abcd", 4)),
    )]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    let updater = harness.start().await;
    let outcome = updater.check().await.unwrap();
    assert!(outcome.update_available);
    assert_eq!(outcome.latest.version, NEWER);
    assert_eq!(outcome.latest.url, server.url("/artifact.tar.gz"));
    assert_eq!(outcome.channel, "stable");
    let again = updater.check().await.unwrap();
    assert_eq!(again.latest, outcome.latest);
    let announced: Vec<_> = harness
        .published()
        .await
        .into_iter()
        .filter(|e| matches!(e, UpdateEvent::UpdateAvailable { .. }))
        .collect();
    assert_eq!(announced.len(), 1, "{announced:?}");
    let status = updater.status().await.unwrap();
    assert_eq!(status.last_check, Some(again), "the latest check");
}

#[tokio::test]
async fn the_running_version_is_not_downloaded_again() {
    let server = TestServer::start(HashMap::from([(
        "/stable.json".to_owned(),
        Route::Body(manifest_for(version::current(), b"abcd", 4)),
    )]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    let updater = harness.start().await;
    let last = final_progress(&updater).await;
    assert_eq!(last.state, DownloadState::Failed);
    assert_eq!(
        last.error
            .and_then(|e| e.reason().map(|r| r.as_str().to_owned())),
        Some("UPDATE_NOT_AVAILABLE".to_owned())
    );
    assert!(
        !server
            .requests()
            .iter()
            .any(|(p, _)| p == "/artifact.tar.gz"),
        "nothing was fetched"
    );
}

#[tokio::test]
async fn a_download_of_the_wrong_size_is_deleted_and_recorded() {
    let artifact = b"0123456789".to_vec();
    let server = TestServer::start(HashMap::from([
        (
            "/stable.json".to_owned(),
            // The manifest promises fewer bytes than the server sends.
            Route::Body(manifest_for(NEWER, &artifact, 4)),
        ),
        ("/artifact.tar.gz".to_owned(), Route::Body(artifact)),
    ]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    let updater = harness.start().await;
    let last = final_progress(&updater).await;
    assert_eq!(last.state, DownloadState::Failed);
    assert_eq!(
        last.error
            .as_ref()
            .and_then(|e| e.reason())
            .map(Reason::as_str),
        Some("UPDATE_VERIFICATION_FAILED")
    );
    let staging = harness.dirs().staging();
    let left: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .filter_map(|e| e.ok())
        .collect();
    assert!(left.is_empty(), "the download was deleted: {left:?}");
    let status = updater.status().await.unwrap();
    assert_eq!(status.ready_version, None);
    assert!(status.last_error.is_some());
    let row = &status.history[0];
    assert_eq!(
        (
            row.action.as_str(),
            row.to_version.as_str(),
            row.outcome.as_str()
        ),
        ("download", NEWER, "refused")
    );
    assert!(row.message.contains("larger than the 4 bytes"), "{row:?}");
}

/// The artifact the interrupted-download tests serve.
const ARTIFACT: &[u8] = b"0123456789";

/// A download of [`ARTIFACT`] after an earlier one stopped at byte 4,
/// from a server that answers the artifact with `route`. Returns the
/// server (for its requests), the harness (for its events), the `.part`
/// file and the download's final progress.
async fn download_after_an_interruption(route: Route) -> (TestServer, Harness, PathBuf, Progress) {
    let server = TestServer::start(HashMap::from([
        (
            "/stable.json".to_owned(),
            Route::Body(manifest_for(NEWER, ARTIFACT, ARTIFACT.len())),
        ),
        ("/artifact.tar.gz".to_owned(), route),
    ]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    let staging = harness.dirs().staging();
    std::fs::create_dir_all(&staging).unwrap();
    let part = staging.join(format!(
        "omnipanel-{NEWER}-{}.artifact.part",
        manifest::platform_key()
    ));
    std::fs::write(&part, &ARTIFACT[..4]).unwrap();
    let updater = harness.start().await;
    let last = final_progress(&updater).await;
    assert!(
        server
            .requests()
            .contains(&("/artifact.tar.gz".to_owned(), Some("bytes=4-".to_owned()))),
        "the download asked for the rest: {:?}",
        server.requests()
    );
    (server, harness, part, last)
}

#[tokio::test]
async fn an_interrupted_download_resumes_and_is_then_verified() {
    let (_server, harness, part, last) =
        download_after_an_interruption(Route::Body(ARTIFACT.to_vec())).await;
    assert!(last.resumed);
    // All bytes arrived; the test signature cannot be valid, so
    // verification refuses the file and deletes it.
    assert_eq!(last.state, DownloadState::Failed);
    assert_eq!(last.received, ARTIFACT.len() as u64);
    assert_eq!(
        last.error
            .as_ref()
            .and_then(|e| e.reason())
            .map(Reason::as_str),
        Some("UPDATE_VERIFICATION_FAILED")
    );
    assert!(!part.exists());
    let published = harness.published().await;
    assert!(
        published.iter().any(|e| matches!(
            e,
            UpdateEvent::UpdateProgress(p) if p.state == DownloadState::Verifying
        )),
        "progress reached the bus"
    );
}

#[tokio::test]
async fn a_server_that_ignores_the_range_restarts_the_download_and_says_so() {
    let (_server, _harness, _part, last) =
        download_after_an_interruption(Route::BodyIgnoringRange(ARTIFACT.to_vec())).await;
    // The whole file came again from byte 0 and was not appended to the
    // four bytes already there: not a resumed download.
    assert!(!last.resumed, "{last:?}");
    assert_eq!(last.received, ARTIFACT.len() as u64);
    assert_eq!(last.state, DownloadState::Failed);
    assert!(
        !last
            .error
            .as_ref()
            .is_some_and(|e| e.message().contains("larger than")),
        "{last:?}"
    );
}

#[tokio::test]
async fn shutdown_stops_a_running_download_so_it_resumes_later() {
    let server = TestServer::start(HashMap::from([
        (
            "/stable.json".to_owned(),
            Route::Body(manifest_for(NEWER, b"abcd", 4)),
        ),
        ("/artifact.tar.gz".to_owned(), Route::Hang),
    ]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    let updater = harness.start().await;
    let mut progress = updater.download();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !server
            .requests()
            .iter()
            .any(|(p, _)| p == "/artifact.tar.gz")
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    updater.shutdown().await;
    updater.shutdown().await;
    let last = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let current = progress.borrow_and_update().clone();
            if current.is_final() {
                return current;
            }
            progress.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(last.state, DownloadState::Failed);
    assert_eq!(
        last.error.map(|e| e.message().to_owned()),
        Some("the agent is stopping; the download will resume next time".to_owned())
    );
    assert!(
        !harness.shutdown.is_cancelled(),
        "the agent's own token is untouched"
    );
}

#[tokio::test]
async fn install_needs_a_download() {
    let harness = Harness::new(manual("http://127.0.0.1:1/{channel}.json".to_owned())).await;
    let updater = harness.start().await;
    let err = updater.install(true).await.unwrap_err();
    assert_eq!(
        err.reason().map(Reason::as_str),
        Some("UPDATE_NOT_DOWNLOADED")
    );
    assert_eq!(updater.take_restart_plan(), None);
}

#[tokio::test]
async fn rollback_needs_a_kept_version() {
    let harness = Harness::new(manual("http://127.0.0.1:1/{channel}.json".to_owned())).await;
    let updater = harness.start().await;
    let err = updater.rollback().await.unwrap_err();
    assert_eq!(err.reason().map(Reason::as_str), Some("UPDATE_NO_ROLLBACK"));
    assert_eq!(updater.take_restart_plan(), None);
    assert!(!harness.dirs().marker().exists());
}

#[tokio::test]
async fn rollback_restores_the_kept_binaries_and_plans_a_restart() {
    let harness = Harness::new(manual("http://127.0.0.1:1/{channel}.json".to_owned())).await;
    let install_dir = artifact::install_dir_of(&harness.exe).unwrap();
    let dirs = harness.dirs();
    std::fs::write(&harness.exe, b"old agent").unwrap();
    artifact::save_rollback(&install_dir, &dirs.rollback(), "0.0.9").unwrap();
    std::fs::write(&harness.exe, b"new agent").unwrap();
    let updater = harness.start().await;
    assert_eq!(
        updater.status().await.unwrap().rollback_version,
        Some("0.0.9".to_owned())
    );
    let (from, to) = updater.rollback().await.unwrap();
    assert_eq!((from.as_str(), to.as_str()), (version::current(), "0.0.9"));
    assert_eq!(std::fs::read(&harness.exe).unwrap(), b"old agent");
    assert!(!dirs.rollback().exists(), "the copy is used up");
    let marker = Marker::read(&dirs.marker()).unwrap();
    assert_eq!(
        (marker.state.as_str(), marker.to_version.as_str()),
        ("rollback", "0.0.9")
    );
    let err = updater.rollback().await.unwrap_err();
    assert_eq!(err.message(), "an install or rollback is already under way");
    assert_eq!(
        updater.take_restart_plan(),
        Some(RestartPlan::Exec {
            exe: harness.exe.clone(),
            dirs: harness.dirs(),
        })
    );
    assert_eq!(updater.take_restart_plan(), None, "taken once");
}

#[tokio::test]
async fn two_rollbacks_at_once_swap_the_binaries_once() {
    let harness = Harness::new(manual("http://127.0.0.1:1/{channel}.json".to_owned())).await;
    let install_dir = artifact::install_dir_of(&harness.exe).unwrap();
    let dirs = harness.dirs();
    std::fs::write(&harness.exe, b"old agent").unwrap();
    artifact::save_rollback(&install_dir, &dirs.rollback(), "0.0.9").unwrap();
    std::fs::write(&harness.exe, b"new agent").unwrap();
    let updater = harness.start().await;
    // Both are polled before either finishes its blocking swap: the
    // second must be refused by the first's hold, not find a half-done
    // swap.
    let (first, second) = tokio::join!(updater.rollback(), updater.rollback());
    let refused: Vec<_> = [&first, &second]
        .iter()
        .filter_map(|outcome| outcome.as_ref().err())
        .collect();
    assert_eq!(refused.len(), 1, "{first:?} {second:?}");
    assert_eq!(
        refused[0].message(),
        "an install or rollback is already under way"
    );
    assert_eq!(std::fs::read(&harness.exe).unwrap(), b"old agent");
}

#[tokio::test]
async fn a_package_install_checks_but_never_downloads_installs_or_rolls_back() {
    let artifact = b"0123456789".to_vec();
    let server = TestServer::start(HashMap::from([
        (
            "/stable.json".to_owned(),
            Route::Body(manifest_for(NEWER, &artifact, artifact.len())),
        ),
        ("/artifact.tar.gz".to_owned(), Route::Body(artifact)),
    ]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    // The .deb's marker beside the install folder (`PREFIX/bin` is where
    // the harness's agent lives), and a kept version a rollback would use.
    let prefix = harness.exe.parent().and_then(Path::parent).unwrap();
    let marker = prefix.join(super::packaging::MARKER);
    std::fs::create_dir_all(marker.parent().unwrap()).unwrap();
    std::fs::write(&marker, "format=deb\npackage=omnipanel\n").unwrap();
    let install_dir = artifact::install_dir_of(&harness.exe).unwrap();
    artifact::save_rollback(&install_dir, &harness.dirs().rollback(), "0.0.9").unwrap();
    let updater = harness.start().await;

    let package = updater.package().cloned().expect("found the marker");
    assert_eq!(package.update_command, super::packaging::APT_UPDATE);
    let outcome = updater.check().await.unwrap();
    assert!(outcome.update_available, "{outcome:?}");
    assert_eq!(outcome.package.as_ref(), Some(&package));
    assert_eq!(updater.status().await.unwrap().package, Some(package));

    let last = final_progress(&updater).await;
    assert_eq!(last.state, DownloadState::Failed);
    let refused = last.error.unwrap();
    assert_eq!(refused.reason(), Some(Reason::UpdatePackageManaged));
    assert!(
        refused
            .message()
            .contains("sudo apt update && sudo apt upgrade omnipanel"),
        "{}",
        refused.message()
    );
    assert!(
        !server
            .requests()
            .iter()
            .any(|(p, _)| p == "/artifact.tar.gz"),
        "nothing was downloaded"
    );
    for err in [
        updater.install(true).await.unwrap_err(),
        updater.rollback().await.unwrap_err(),
    ] {
        assert_eq!(err.reason(), Some(Reason::UpdatePackageManaged), "{err}");
        assert_eq!(err.kind(), crate::error::ErrorKind::FailedPrecondition);
    }
    assert_eq!(std::fs::read(&harness.exe).unwrap(), b"installed agent");
    assert_eq!(updater.take_restart_plan(), None);
    assert!(!harness.dirs().marker().exists());
}

fn write_marker(path: &Path, state: &str, reason: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    Marker {
        state: state.to_owned(),
        from_version: "0.0.1".to_owned(),
        to_version: "0.0.2".to_owned(),
        reason: reason.to_owned(),
        state_restored: false,
        time_ms: 1,
    }
    .write(path)
    .unwrap();
}

#[tokio::test]
async fn start_reports_an_automatic_rollback_left_by_the_previous_agent() {
    let harness = Harness::new(manual("http://127.0.0.1:1/{channel}.json".to_owned())).await;
    write_marker(&harness.dirs().marker(), "rolled_back", "no answer in 60 s");
    let updater = harness.start().await;
    assert!(!harness.dirs().marker().exists(), "reported once");
    let status = updater.status().await.unwrap();
    assert_eq!(
        status.last_error.as_deref(),
        Some("version 0.0.2 was rolled back: no answer in 60 s")
    );
    let row = &status.history[0];
    assert_eq!(
        (
            row.action.as_str(),
            row.from_version.as_str(),
            row.to_version.as_str(),
            row.outcome.as_str(),
            row.message.as_str()
        ),
        (
            "install",
            "0.0.1",
            "0.0.2",
            "rolled_back",
            "no answer in 60 s"
        )
    );
    assert!(harness.published().await.iter().any(|e| matches!(
        e,
        UpdateEvent::UpdateRolledBack {
            automatic: true,
            ..
        }
    )));
}

#[tokio::test]
async fn start_reports_a_finished_install_and_a_requested_rollback() {
    let harness = Harness::new(manual("http://127.0.0.1:1/{channel}.json".to_owned())).await;
    write_marker(&harness.dirs().marker(), "installing", "");
    let updater = harness.start().await;
    let row = updater.history().await.unwrap().remove(0);
    assert_eq!(
        (
            row.action.as_str(),
            row.to_version.as_str(),
            row.outcome.as_str()
        ),
        ("install", version::current(), "ok")
    );
    drop(updater);
    write_marker(&harness.dirs().marker(), "rollback", "requested");
    let updater = harness.start().await;
    let history = updater.history().await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        (history[0].action.as_str(), history[0].outcome.as_str()),
        ("rollback", "ok")
    );
    let published = harness.published().await;
    assert!(
        published
            .iter()
            .any(|e| matches!(e, UpdateEvent::UpdateInstalled { .. }))
    );
    assert!(published.iter().any(|e| matches!(
        e,
        UpdateEvent::UpdateRolledBack {
            automatic: false,
            ..
        }
    )));
}

#[tokio::test]
async fn history_lists_the_newest_twenty_first() {
    let harness = Harness::new(manual("http://127.0.0.1:1/{channel}.json".to_owned())).await;
    let updater = harness.start().await;
    for n in 0..25 {
        updater
            .record("download", &format!("0.0.{n}"), "ok", "")
            .await;
    }
    let history = updater.history().await.unwrap();
    assert_eq!(history.len(), 20);
    assert_eq!(history[0].to_version, "0.0.24");
    assert_eq!(history[19].to_version, "0.0.5");
    assert!(history.iter().all(|h| h.from_version == version::current()));
}

/// Waits a little for requests that should not come.
async fn quiet_period() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn the_scheduler_checks_at_start_when_enabled_with_a_key() {
    let server = TestServer::start(HashMap::from([(
        "/stable.json".to_owned(),
        Route::Body(manifest_for(NEWER, b"abcd", 4)),
    )]));
    let harness = Harness::new(UpdateSettings {
        enabled: true,
        ..manual(server.url("/{channel}.json"))
    })
    .await;
    let updater = harness.start().await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while updater.status().await.unwrap().last_check.is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the first check runs at start");
    assert_eq!(
        server.requests().len(),
        2,
        "one check (the manifest and its signature), the next one a day later"
    );
    updater.shutdown().await;
}

#[tokio::test]
async fn the_scheduler_stays_quiet_when_disabled_or_without_a_key() {
    let server = TestServer::start(HashMap::from([(
        "/stable.json".to_owned(),
        Route::Body(manifest_for(NEWER, b"abcd", 4)),
    )]));
    let disabled = Harness::new(manual(server.url("/{channel}.json"))).await;
    let _disabled = disabled.start().await;
    let keyless = Harness::new(UpdateSettings {
        enabled: true,
        public_key: None,
        ..manual(server.url("/{channel}.json"))
    })
    .await;
    let _keyless = keyless.start().await;
    quiet_period().await;
    if BUILTIN_PUBLIC_KEY.is_empty() {
        assert!(server.requests().is_empty(), "{:?}", server.requests());
    }
}

/// The floor as stored in state.db.
async fn stored_floor(harness: &Harness) -> Option<String> {
    harness
        .store
        .meta("update.highest_installed")
        .await
        .unwrap()
}

/// Check, download and install against a manifest that must be refused
/// with `reason`, and show that nothing changed: no check recorded, no
/// artifact fetched or staged, no history, the floor and the installed
/// binary untouched, no marker and no restart.
async fn refused_with_nothing_changed(server: &TestServer, harness: &Harness, reason: &str) {
    let updater = harness.start().await;
    let floor = stored_floor(harness).await;
    let err = updater.check().await.unwrap_err();
    assert_eq!(err.reason().map(Reason::as_str), Some(reason), "{err}");
    let last = final_progress(&updater).await;
    assert_eq!(last.state, DownloadState::Failed);
    assert_eq!(
        last.error
            .as_ref()
            .and_then(|e| e.reason())
            .map(Reason::as_str),
        Some(reason),
        "{last:?}"
    );
    let install = updater.install(true).await.unwrap_err();
    assert_eq!(
        install.reason().map(Reason::as_str),
        Some("UPDATE_NOT_DOWNLOADED")
    );
    let status = updater.status().await.unwrap();
    assert_eq!(status.last_check, None);
    assert_eq!(status.ready_version, None);
    assert!(status.history.is_empty(), "{:?}", status.history);
    assert!(
        status.last_error.is_some_and(|e| e.contains(err.message())),
        "the refusal is reported"
    );
    assert_eq!(stored_floor(harness).await, floor);
    assert_eq!(std::fs::read(&harness.exe).unwrap(), b"installed agent");
    assert!(!harness.dirs().staging().exists());
    assert!(!harness.dirs().marker().exists());
    assert_eq!(updater.take_restart_plan(), None);
    assert!(
        !server
            .requests()
            .iter()
            .any(|(p, _)| p == "/artifact.tar.gz"),
        "nothing was fetched: {:?}",
        server.requests()
    );
}

#[tokio::test]
async fn a_tampered_manifest_under_a_valid_signature_is_refused() {
    let signed = manifest_for(NEWER, b"abcd", 4);
    let tampered = String::from_utf8(signed.clone())
        .unwrap()
        .replace("artifact.tar.gz", "http://127.0.0.1:1/evil.tar.gz")
        .into_bytes();
    assert_ne!(signed, tampered);
    let server = TestServer::start(HashMap::from([
        ("/stable.json".to_owned(), Route::Body(tampered)),
        (
            "/stable.json.minisig".to_owned(),
            Route::Body(signer().sign_manifest(&signed).into_bytes()),
        ),
    ]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    refused_with_nothing_changed(&server, &harness, "UPDATE_MANIFEST_UNSIGNED").await;
}

#[tokio::test]
async fn a_manifest_signed_with_another_key_is_refused() {
    let body = manifest_for(NEWER, b"abcd", 4);
    let server = TestServer::start(HashMap::from([
        ("/stable.json".to_owned(), Route::Body(body.clone())),
        (
            "/stable.json.minisig".to_owned(),
            Route::Body(Signer::generate().sign_manifest(&body).into_bytes()),
        ),
    ]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    refused_with_nothing_changed(&server, &harness, "UPDATE_MANIFEST_UNSIGNED").await;
}

#[tokio::test]
async fn a_manifest_without_a_signature_or_whose_comment_disagrees_is_refused() {
    let body = manifest_for(NEWER, b"abcd", 4);
    // Not named .json: the test server signs nothing, /stable.minisig is
    // a 404, as for a manifest published the old way.
    let missing = TestServer::start(HashMap::from([(
        "/stable".to_owned(),
        Route::Body(body.clone()),
    )]));
    let harness = Harness::new(manual(missing.url("/{channel}"))).await;
    refused_with_nothing_changed(&missing, &harness, "UPDATE_MANIFEST_UNSIGNED").await;
    let empty = TestServer::start(HashMap::from([
        ("/stable.json".to_owned(), Route::Body(body.clone())),
        ("/stable.json.minisig".to_owned(), Route::Body(Vec::new())),
    ]));
    let harness = Harness::new(manual(empty.url("/{channel}.json"))).await;
    refused_with_nothing_changed(&empty, &harness, "UPDATE_MANIFEST_UNSIGNED").await;
    // Signed by the right key, but the signed comment names another
    // version than the body (a signature lifted from another manifest).
    let comment = manifest::trusted_comment("998.0.0", "stable", [manifest::platform_key()]);
    let lifted = TestServer::start(HashMap::from([
        ("/stable.json".to_owned(), Route::Body(body.clone())),
        (
            "/stable.json.minisig".to_owned(),
            Route::Body(signer().sign(&body, &comment).into_bytes()),
        ),
    ]));
    let harness = Harness::new(manual(lifted.url("/{channel}.json"))).await;
    refused_with_nothing_changed(&lifted, &harness, "UPDATE_MANIFEST_UNSIGNED").await;
}

#[tokio::test]
async fn a_replayed_older_manifest_is_refused() {
    // Validly signed, newer than the running version, but older than a
    // version installed before (the user rolled back from it since).
    let server = TestServer::start(HashMap::from([(
        "/stable.json".to_owned(),
        Route::Body(manifest_for(NEWER, b"abcd", 4)),
    )]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    harness
        .store
        .set_meta("update.highest_installed", "999.5.0".to_owned())
        .await
        .unwrap();
    refused_with_nothing_changed(&server, &harness, "UPDATE_DOWNGRADE_REFUSED").await;
}

#[tokio::test]
async fn a_requested_rollback_keeps_the_version_rolled_back_from_as_the_floor() {
    let server = TestServer::start(HashMap::from([(
        "/stable.json".to_owned(),
        Route::Body(manifest_for(NEWER, b"abcd", 4)),
    )]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    let updater = harness.start().await;
    assert_eq!(
        stored_floor(&harness).await.as_deref(),
        Some(version::current())
    );
    assert!(updater.check().await.unwrap().update_available);
    drop(updater);
    // The user ran 999.5.0 and rolled back from it (state.db may even
    // have been put back to before it recorded that).
    std::fs::create_dir_all(harness.dirs().root).unwrap();
    Marker {
        state: "rollback".to_owned(),
        from_version: "999.5.0".to_owned(),
        to_version: version::current().to_owned(),
        reason: "requested".to_owned(),
        state_restored: true,
        time_ms: 1,
    }
    .write(&harness.dirs().marker())
    .unwrap();
    let updater = harness.start().await;
    assert_eq!(stored_floor(&harness).await.as_deref(), Some("999.5.0"));
    let history = updater.history().await.unwrap();
    assert!(
        history[0].message.contains("state.db was put back"),
        "{history:?}"
    );
    let err = updater.check().await.unwrap_err();
    assert_eq!(err.reason(), Some(Reason::UpdateDowngradeRefused), "{err}");
    assert!(err.message().contains("999.5.0"), "{err}");
}

#[tokio::test]
async fn a_beta_manifest_on_the_stable_channel_is_refused() {
    // A correctly signed beta manifest, served where stable users look.
    let server = TestServer::start(HashMap::from([(
        "/stable.json".to_owned(),
        Route::Body(manifest_on("beta", "999.0.0-beta.1", b"abcd", 4)),
    )]));
    let harness = Harness::new(manual(server.url("/{channel}.json"))).await;
    refused_with_nothing_changed(&server, &harness, "UPDATE_WRONG_CHANNEL").await;
    // Labelled stable, but a pre-release version.
    let labelled = TestServer::start(HashMap::from([(
        "/stable.json".to_owned(),
        Route::Body(manifest_on("stable", "999.0.0-beta.1", b"abcd", 4)),
    )]));
    let harness = Harness::new(manual(labelled.url("/{channel}.json"))).await;
    refused_with_nothing_changed(&labelled, &harness, "UPDATE_WRONG_CHANNEL").await;
}

#[tokio::test]
async fn the_beta_channel_takes_a_beta_found_through_the_release_list() {
    let server = TestServer::start(HashMap::from([(
        "/d/v999.0.0-beta.1/manifest-beta.json".to_owned(),
        Route::Body(manifest_on("beta", "999.0.0-beta.1", b"abcd", 4)),
    )]));
    let feed = serde_json::json!([
        {"tag_name": "v999.0.0-beta.1", "prerelease": true, "assets": [
            {"name": "manifest-beta.json",
             "browser_download_url": server.url("/d/v999.0.0-beta.1/manifest-beta.json")}]},
        {"tag_name": "v998.0.0", "prerelease": false, "assets": [
            {"name": "manifest-stable.json",
             "browser_download_url": server.url("/d/v998.0.0/manifest-stable.json")}]}
    ]);
    let list = TestServer::start(HashMap::from([(
        "/releases".to_owned(),
        Route::Body(feed.to_string().into_bytes()),
    )]));
    let harness = Harness::new(UpdateSettings {
        channel: "beta".to_owned(),
        ..manual(list.url("/releases"))
    })
    .await;
    let updater = harness.start().await;
    let outcome = updater.check().await.unwrap();
    assert!(outcome.update_available);
    assert_eq!(outcome.latest.version, "999.0.0-beta.1");
    assert_eq!(
        outcome.latest.url,
        server.url("/d/v999.0.0-beta.1/artifact.tar.gz")
    );
}

#[test]
fn a_built_in_key_wins_over_the_configured_one() {
    let both = choose_key("BUILTIN", Some("CONFIGURED")).unwrap();
    assert_eq!(
        (both.key.as_str(), both.source, both.config_ignored),
        ("BUILTIN", KeySource::BuiltIn, true)
    );
    let builtin = choose_key("BUILTIN", Some("  ")).unwrap();
    assert!(!builtin.config_ignored);
    let configured = choose_key("", Some(" CONFIGURED ")).unwrap();
    assert_eq!(
        (configured.key.as_str(), configured.source),
        ("CONFIGURED", KeySource::Config)
    );
    let none = choose_key("", None).unwrap_err();
    assert_eq!(none.reason(), Some(Reason::UpdateNoKey));
}
