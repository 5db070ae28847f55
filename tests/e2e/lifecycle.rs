//! Start at login and self-update end to end. Autostart runs against a
//! temporary HOME (with spaces in it, and in the install path). Updates run
//! against the update-server double on loopback, serving a manifest and
//! artifacts signed with a key generated for the test: the agent runs from
//! a copy in a sandbox install folder (so the build's own binary is never
//! replaced), and the "new release" is a copy of the same build stamped
//! with another version (agent/src/version.rs), which is what a release
//! build differs by as far as these tests can observe. A release whose
//! agent cannot start is a shell script that exits 3. An install a package
//! manager owns is faked with the .deb's marker beside the sandbox install
//! folder.

use std::{
    os::unix::fs::PermissionsExt,
    path::PathBuf,
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{
    AgentProcess, PATIENCE, Sandbox, TestResult, binary, stderr, stdout,
    update_server::{SigningKey, UpdateServer, sha256_hex, stamp_version, tar_gz},
};
use tonic::Code;

/// The agent's platform key for this machine.
fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

/// Copy the agent into `<sandbox>/Omni Apps/bin` (a path with a space).
fn install_agent(sandbox: &Sandbox) -> TestResult<PathBuf> {
    let dir = sandbox.root().join("Omni Apps/bin");
    std::fs::create_dir_all(&dir)?;
    let exe = dir.join("omnipanel-agent");
    std::fs::copy(binary("omnipanel-agent"), &exe)?;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
    Ok(exe)
}

#[tokio::test]
async fn autostart_round_trip_with_spaces_reads_the_real_file() -> TestResult {
    let sandbox = Sandbox::new()?;
    let exe = install_agent(&sandbox)?;
    let home = sandbox.root().join("my home");
    let config_home = sandbox.root().join("my config");
    std::fs::create_dir_all(&home)?;
    let env = [
        ("HOME", home.to_str().ok_or("utf-8")?),
        ("XDG_CONFIG_HOME", config_home.to_str().ok_or("utf-8")?),
    ];
    let agent = AgentProcess::start_program(&sandbox, &exe, &env).await?;
    let client = agent.client().await?;
    let entry = config_home.join("autostart/omnipanel.desktop");

    let off = client
        .agent()
        .get_autostart(pb::GetAutostartRequest {})
        .await?
        .into_inner();
    assert!(!off.enabled);
    assert_eq!(off.location, entry.display().to_string());

    let on = client
        .agent()
        .set_autostart(pb::SetAutostartRequest { enabled: true })
        .await?
        .into_inner();
    assert!(on.enabled, "{on:?}");
    // No tray installed: the agent itself starts at login.
    assert_eq!(on.program, exe.display().to_string());
    let text = std::fs::read_to_string(&entry)?;
    let expected_exec = format!("Exec=\"{}\" run --quiet", exe.display());
    assert!(text.lines().any(|l| l == expected_exec), "{text}");
    // auto-launch's own copy under $HOME/.config was moved to the XDG place.
    assert!(!home.join(".config/autostart/omnipanel.desktop").exists());

    // Status comes from the file: a desktop's "off" switch is seen.
    std::fs::write(&entry, format!("{text}Hidden=true\n"))?;
    let hidden = client
        .agent()
        .get_autostart(pb::GetAutostartRequest {})
        .await?
        .into_inner();
    assert!(!hidden.enabled);

    // The CLI round trip, and the tray preferred once it is installed.
    std::fs::write(exe.with_file_name("omnipanel-tray"), b"#!/bin/sh\n")?;
    let on = sandbox.cli(&["autostart", "on"])?;
    assert!(on.status.success(), "{on:?}");
    assert!(stdout(&on).contains("omnipanel-tray"), "{}", stdout(&on));
    let status = sandbox.cli(&["autostart"])?;
    assert!(
        stdout(&status).contains("start at login: on"),
        "{}",
        stdout(&status)
    );
    let off = sandbox.cli(&["autostart", "off"])?;
    assert!(
        stdout(&off).contains("start at login: off"),
        "{}",
        stdout(&off)
    );
    assert!(!entry.exists());
    Ok(())
}

/// An update server with a signed release of `version` whose agent is
/// `agent_bytes`; `tamper` may alter the manifest entry.
struct Release {
    server: UpdateServer,
    key: SigningKey,
    artifact: Vec<u8>,
}

impl Release {
    fn new(version: &str, agent_bytes: &[u8]) -> TestResult<Self> {
        let server = UpdateServer::start()?;
        let key = SigningKey::generate()?;
        let artifact = tar_gz(&[("omnipanel-agent", agent_bytes)])?;
        let release = Self {
            server,
            key,
            artifact,
        };
        release.publish(version, |_| {})?;
        Ok(release)
    }

    /// Serve the artifact and a manifest, letting `tamper` edit the
    /// platform entry.
    fn publish(&self, version: &str, tamper: impl FnOnce(&mut serde_json::Value)) -> TestResult {
        let mut entry = serde_json::json!({
            "url": "files/artifact.tar.gz",
            "size": self.artifact.len(),
            "sha256": sha256_hex(&self.artifact),
            "signature": self.key.sign(&self.artifact)?,
        });
        tamper(&mut entry);
        let mut platforms = serde_json::Map::new();
        platforms.insert(platform(), entry);
        let manifest = serde_json::json!({
            "version": version,
            "channel": "stable",
            "notes": "test release",
            "platforms": platforms,
        });
        let manifest = serde_json::to_vec(&manifest)?;
        self.server.put(
            "stable.json.minisig",
            self.key.sign_manifest(&manifest)?.into_bytes(),
        );
        self.server.put("stable.json", manifest);
        self.server
            .put("files/artifact.tar.gz", self.artifact.clone());
        Ok(())
    }

    fn configure(&self, sandbox: &Sandbox, public_key: &str) -> TestResult {
        sandbox.write_config(&format!(
            "[update]\nmanifest_url = \"{}\"\npublic_key = \"{public_key}\"\nenabled = false\n",
            self.server.url("{channel}.json"),
        ))
    }
}

async fn download(client: &Client) -> Result<pb::UpdateProgress, tonic::Status> {
    let mut stream = client
        .updates()
        .download_update(pb::DownloadUpdateRequest {})
        .await?
        .into_inner();
    let mut last = pb::UpdateProgress::default();
    while let Some(message) = stream.message().await? {
        last = message.progress.unwrap_or_default();
    }
    Ok(last)
}

/// Wait until a restarted agent (not the run `previous`) answers as
/// `version` (it restarts in place).
async fn wait_for_version(
    agent: &AgentProcess,
    previous: &Client,
    version: &str,
) -> TestResult<Client> {
    let previous = previous.info().instance_id;
    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        match agent.client().await {
            Ok(client)
                if client.info().version == version && client.info().instance_id != previous =>
            {
                return Ok(client);
            }
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(client) => {
                return Err(format!(
                    "the agent answers as {}, not {version}; stderr:\n{}",
                    client.info().version,
                    agent.stderr()
                )
                .into());
            }
            Err(err) => {
                return Err(format!(
                    "the agent never came back: {err}; stderr:\n{}",
                    agent.stderr()
                )
                .into());
            }
        }
    }
}

/// The agent's update status.
async fn update_status(client: &Client) -> TestResult<pb::GetUpdateStatusResponse> {
    Ok(client
        .updates()
        .get_update_status(pb::GetUpdateStatusRequest {})
        .await?
        .into_inner())
}

/// The newest history entry of `action` (e.g. "install", "rollback").
fn history_entry<'a>(
    status: &'a pb::GetUpdateStatusResponse,
    action: &str,
) -> TestResult<&'a pb::UpdateHistoryEntry> {
    Ok(status
        .history
        .iter()
        .find(|h| h.action == action)
        .ok_or_else(|| format!("no {action} in the history: {:?}", status.history))?)
}

fn reason(status: &tonic::Status) -> Option<String> {
    use tonic_types::StatusExt;
    status.get_details_error_info().map(|info| info.reason)
}

fn staged_files(sandbox: &Sandbox) -> Vec<String> {
    std::fs::read_dir(sandbox.data_dir().join("updates/staging"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Makes agents of this version and later know one migration more (debug
/// builds only; agent/core/src/store.rs), so the stamped "new release"
/// migrates state.db past what the running agent can open.
const TEST_MIGRATION_FROM: &str = "OMNIPANEL_TEST_MIGRATION_FROM";

/// The schema version (`PRAGMA user_version`) in an SQLite file's header.
fn schema_version(path: &std::path::Path) -> TestResult<u32> {
    let bytes = std::fs::read(path)?;
    let field = bytes.get(60..64).ok_or("not an SQLite file")?;
    Ok(u32::from_be_bytes([field[0], field[1], field[2], field[3]]))
}

#[tokio::test]
async fn good_update_installs_restarts_and_rolls_back_on_request() -> TestResult {
    let sandbox = Sandbox::new()?;
    let exe = install_agent(&sandbox)?;
    let original = std::fs::read(&exe)?;
    let release = Release::new("9.1.0", &stamp_version(&original, "9.1.0")?)?;
    release.configure(&sandbox, &release.key.public_base64())?;
    // 9.1.0 migrates state.db: the rollback must put it back, or the old
    // agent refuses to start on the newer schema.
    let agent =
        AgentProcess::start_program(&sandbox, &exe, &[(TEST_MIGRATION_FROM, "9.1.0")]).await?;
    let client = agent.client().await?;
    let old_version = client.info().version.clone();

    let check = client
        .updates()
        .check_for_update(pb::CheckForUpdateRequest {})
        .await?
        .into_inner();
    assert!(check.update_available, "{check:?}");
    assert_eq!(
        check.latest.as_ref().map(|l| l.version.as_str()),
        Some("9.1.0")
    );

    let done = download(&client).await?;
    assert_eq!(done.state(), pb::DownloadState::Ready, "{done:?}");
    assert_eq!(done.received_bytes, release.artifact.len() as u64);

    // The CLI shows the same picture.
    let status = sandbox.cli(&["update", "status"])?;
    assert!(
        stdout(&status).contains("ready      9.1.0"),
        "{}",
        stdout(&status)
    );

    let installed = client
        .updates()
        .install_update(pb::InstallUpdateRequest { force: false })
        .await?
        .into_inner();
    assert_eq!(installed.to_version, "9.1.0");
    let client = wait_for_version(&agent, &client, "9.1.0").await?;
    // Same process: the agent exec'd the new binary in place.
    assert_eq!(client.info().pid, agent.pid());
    // Our own programs (the tray, the CLI) are still the owner: the owner
    // credential is a file in the data folder, not the executable's place.
    assert!(client.info().caller_is_owner, "{:?}", client.info());
    let owner_only = sandbox.cli(&["token", "list"])?;
    assert!(owner_only.status.success(), "{}", stderr(&owner_only));
    assert_ne!(std::fs::read(&exe)?, original);
    let status = update_status(&client).await?;
    assert_eq!(status.rollback_version, old_version);
    let install = history_entry(&status, "install")?;
    assert_eq!(install.outcome, "ok", "{:?}", status.history);
    let state_db = sandbox.data_dir().join("state.db");
    let backup = sandbox.data_dir().join("updates/rollback/state.db");
    let before = schema_version(&backup)?;
    assert!(
        schema_version(&state_db)? > before,
        "the new version migrated state.db"
    );

    client.updates().rollback(pb::RollbackRequest {}).await?;
    let client = wait_for_version(&agent, &client, &old_version).await?;
    assert_eq!(std::fs::read(&exe)?, original);
    assert_eq!(schema_version(&state_db)?, before);
    let status = update_status(&client).await?;
    let rollback = status.history.first().ok_or("no history")?;
    assert_eq!(rollback.action, "rollback");
    assert!(
        rollback.message.contains("state.db was put back"),
        "{rollback:?}"
    );
    Ok(())
}

#[tokio::test]
async fn the_cli_checks_downloads_installs_and_rolls_back_an_update() -> TestResult {
    let sandbox = Sandbox::new()?;
    let exe = install_agent(&sandbox)?;
    let original = std::fs::read(&exe)?;
    let release = Release::new("9.2.0", &stamp_version(&original, "9.2.0")?)?;
    release.configure(&sandbox, &release.key.public_base64())?;
    let agent = AgentProcess::start_program(&sandbox, &exe, &[]).await?;
    let client = agent.client().await?;
    let old_version = client.info().version.clone();
    let cli = |args: &[&str]| -> TestResult<String> {
        let output = sandbox.cli(args)?;
        if !output.status.success() {
            return Err(format!("omnipanel {args:?} failed: {}", stderr(&output)).into());
        }
        Ok(stdout(&output))
    };

    let check = cli(&["update", "check"])?;
    assert!(check.contains("9.2.0 is available"), "{check}");
    assert!(
        check.contains("test release"),
        "the notes are shown:\n{check}"
    );
    let json: serde_json::Value = serde_json::from_str(&cli(&["--json", "update", "check"])?)?;
    assert_eq!(json["updateAvailable"], true, "{json}");
    cli(&["update", "download"])?;
    assert!(cli(&["update", "status"])?.contains("ready      9.2.0"));
    cli(&["update", "install"])?;
    let client = wait_for_version(&agent, &client, "9.2.0").await?;
    let status = cli(&["update", "status"])?;
    assert!(
        status.contains(&old_version),
        "the rollback version is shown:\n{status}"
    );
    cli(&["update", "rollback"])?;
    wait_for_version(&agent, &client, &old_version).await?;
    assert_eq!(std::fs::read(&exe)?, original);
    Ok(())
}

#[tokio::test]
async fn update_that_migrates_and_then_fails_health_restores_state_db() -> TestResult {
    let sandbox = Sandbox::new()?;
    let exe = install_agent(&sandbox)?;
    let original = std::fs::read(&exe)?;
    // The new agent starts and migrates state.db, but answers as another
    // version than the manifest promised: the health check fails.
    let release = Release::new("9.6.0", &stamp_version(&original, "9.6.1")?)?;
    release.configure(&sandbox, &release.key.public_base64())?;
    let agent =
        AgentProcess::start_program(&sandbox, &exe, &[(TEST_MIGRATION_FROM, "9.0.0")]).await?;
    let client = agent.client().await?;
    let version = client.info().version.clone();
    let state_db = sandbox.data_dir().join("state.db");

    assert_eq!(download(&client).await?.state(), pb::DownloadState::Ready);
    client
        .updates()
        .install_update(pb::InstallUpdateRequest { force: false })
        .await?;
    // Without state.db put back, the old agent would refuse the newer
    // schema and never come back.
    let client = wait_for_version(&agent, &client, &version).await?;
    assert_eq!(std::fs::read(&exe)?, original);
    let backup = sandbox.data_dir().join("updates/rollback/state.db");
    assert_eq!(schema_version(&state_db)?, schema_version(&backup)?);
    let status = update_status(&client).await?;
    let install = history_entry(&status, "install")?;
    assert_eq!(install.outcome, "rolled_back", "{:?}", status.history);
    assert!(install.message.contains("9.6.1"), "{install:?}");
    assert!(
        install.message.contains("state.db was put back"),
        "{install:?}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_signature_wrong_hash_and_truncation_are_refused_with_nothing_changed() -> TestResult {
    let sandbox = Sandbox::new()?;
    let exe = install_agent(&sandbox)?;
    let original = std::fs::read(&exe)?;
    let release = Release::new("9.2.0", &stamp_version(&original, "9.2.0")?)?;
    // The manifest is signed with the key the agent trusts, the artifact
    // with another one.
    let other_key = SigningKey::generate()?;
    let foreign = other_key.sign(&release.artifact)?;
    release.publish("9.2.0", |entry| {
        entry["signature"] = serde_json::json!(foreign);
    })?;
    release.configure(&sandbox, &release.key.public_base64())?;
    let agent = AgentProcess::start_program(&sandbox, &exe, &[]).await?;
    let client = agent.client().await?;
    let version = client.info().version.clone();

    let refused = download(&client)
        .await
        .err()
        .ok_or("a bad signature was accepted")?;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(
        reason(&refused).as_deref(),
        Some("UPDATE_VERIFICATION_FAILED")
    );
    assert!(
        refused.message().contains("signature"),
        "{}",
        refused.message()
    );
    assert!(
        staged_files(&sandbox).is_empty(),
        "{:?}",
        staged_files(&sandbox)
    );

    // Right key, wrong hash.
    release.publish("9.2.0", |entry| {
        entry["sha256"] = serde_json::json!("0".repeat(64));
    })?;
    client
        .updates()
        .check_for_update(pb::CheckForUpdateRequest {})
        .await?;
    let refused = download(&client)
        .await
        .err()
        .ok_or("a wrong hash was accepted")?;
    assert_eq!(
        reason(&refused).as_deref(),
        Some("UPDATE_VERIFICATION_FAILED")
    );
    assert!(
        refused.message().contains("SHA-256"),
        "{}",
        refused.message()
    );
    assert!(staged_files(&sandbox).is_empty());

    // A truncated artifact: the server's file is short of the manifest size.
    release.publish("9.2.0", |_| {})?;
    let half = release.artifact[..release.artifact.len() / 2].to_vec();
    release.server.put("files/artifact.tar.gz", half);
    client
        .updates()
        .check_for_update(pb::CheckForUpdateRequest {})
        .await?;
    let refused = download(&client)
        .await
        .err()
        .ok_or("a truncated artifact was accepted")?;
    assert_eq!(
        reason(&refused).as_deref(),
        Some("UPDATE_VERIFICATION_FAILED")
    );
    assert!(staged_files(&sandbox).is_empty());

    // Nothing to install, nothing changed.
    let install = client
        .updates()
        .install_update(pb::InstallUpdateRequest { force: true })
        .await
        .err()
        .ok_or("installed without a verified download")?;
    assert_eq!(install.code(), Code::FailedPrecondition);
    assert_eq!(std::fs::read(&exe)?, original);
    assert_eq!(agent.client().await?.info().version, version);
    let status = update_status(&client).await?;
    let refusals = status
        .history
        .iter()
        .filter(|h| h.action == "download" && h.outcome == "refused")
        .count();
    assert_eq!(refusals, 3, "{:?}", status.history);
    Ok(())
}

#[tokio::test]
async fn update_whose_agent_fails_health_is_rolled_back() -> TestResult {
    let sandbox = Sandbox::new()?;
    let exe = install_agent(&sandbox)?;
    let original = std::fs::read(&exe)?;
    let release = Release::new("9.3.0", b"#!/bin/sh\necho broken release >&2\nexit 3\n")?;
    release.configure(&sandbox, &release.key.public_base64())?;
    let agent = AgentProcess::start_program(&sandbox, &exe, &[]).await?;
    let client = agent.client().await?;
    let version = client.info().version.clone();

    assert_eq!(download(&client).await?.state(), pb::DownloadState::Ready);
    client
        .updates()
        .install_update(pb::InstallUpdateRequest { force: false })
        .await?;
    // The agent goes away and comes back as the old version.
    let client = wait_for_version(&agent, &client, &version).await?;
    assert_eq!(client.info().pid, agent.pid());
    assert_eq!(std::fs::read(&exe)?, original);
    let status = update_status(&client).await?;
    let install = history_entry(&status, "install")?;
    assert_eq!(install.outcome, "rolled_back", "{:?}", status.history);
    assert!(status.last_error.contains("9.3.0"), "{}", status.last_error);
    assert!(
        status.last_error.contains("exited"),
        "{}",
        status.last_error
    );
    // The restored agent announced the rollback on its bus.
    let mut events = client
        .agent()
        .watch_events(pb::WatchEventsRequest {
            after_sequence: Some(0),
            topics: vec!["updates".to_owned()],
            ..Default::default()
        })
        .await?
        .into_inner();
    let rolled_back = tokio::time::timeout(PATIENCE, async {
        while let Some(message) = events.message().await? {
            if let Some(pb::watch_events_response::Item::Event(event)) = message.item
                && let Some(pb::event::Payload::UpdateRolledBack(rolled)) = event.payload
            {
                return Ok::<_, tonic::Status>(Some(rolled));
            }
        }
        Ok(None)
    })
    .await??
    .ok_or("no rollback event")?;
    assert!(rolled_back.automatic);
    assert_eq!(rolled_back.from_version, "9.3.0");
    Ok(())
}

#[tokio::test]
async fn interrupted_download_resumes_with_a_range_request() -> TestResult {
    let sandbox = Sandbox::new()?;
    let exe = install_agent(&sandbox)?;
    let original = std::fs::read(&exe)?;
    // Large enough that the cut lands mid-body.
    let release = Release::new("9.4.0", &stamp_version(&original, "9.4.0")?)?;
    release.configure(&sandbox, &release.key.public_base64())?;
    let cut_at = release.artifact.len() / 3;
    release.server.cut_next("files/artifact.tar.gz", cut_at);
    let agent = AgentProcess::start_program(&sandbox, &exe, &[]).await?;
    let client = agent.client().await?;

    let interrupted = download(&client)
        .await
        .err()
        .ok_or("a cut download succeeded")?;
    assert_eq!(interrupted.code(), Code::Unavailable, "{interrupted:?}");
    assert_eq!(
        reason(&interrupted).as_deref(),
        Some("UPDATE_DOWNLOAD_INTERRUPTED")
    );
    let part = staged_files(&sandbox)
        .into_iter()
        .find(|f| f.ends_with(".part"))
        .ok_or("no partial download was kept")?;
    let kept = std::fs::metadata(sandbox.data_dir().join("updates/staging").join(part))?.len();
    assert!(kept > 0 && kept <= cut_at as u64, "{kept} of {cut_at}");

    let done = download(&client).await?;
    assert_eq!(done.state(), pb::DownloadState::Ready, "{done:?}");
    assert!(done.resumed);
    let ranges: Vec<String> = release
        .server
        .seen()
        .into_iter()
        .filter(|r| r.path.ends_with("artifact.tar.gz"))
        .filter_map(|r| r.range)
        .collect();
    assert_eq!(ranges, vec![format!("bytes={kept}-")]);
    // Nothing was installed by downloading.
    assert_eq!(std::fs::read(&exe)?, original);
    Ok(())
}

#[tokio::test]
async fn a_deb_install_is_told_to_use_apt_and_never_replaces_itself() -> TestResult {
    let sandbox = Sandbox::new()?;
    let exe = install_agent(&sandbox)?;
    // What the .deb ships beside /usr/bin: PREFIX/share/omnipanel/packaged-by
    // for PREFIX/bin/omnipanel-agent (packaging/packaged-by-deb).
    let prefix = exe
        .parent()
        .and_then(std::path::Path::parent)
        .ok_or("no prefix")?;
    let marker = prefix.join("share/omnipanel/packaged-by");
    std::fs::create_dir_all(marker.parent().ok_or("no parent")?)?;
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../packaging/packaged-by-deb"),
        &marker,
    )?;
    let original = std::fs::read(&exe)?;
    let release = Release::new("9.6.0", &stamp_version(&original, "9.6.0")?)?;
    release.configure(&sandbox, &release.key.public_base64())?;
    let agent = AgentProcess::start_program(&sandbox, &exe, &[]).await?;
    let client = agent.client().await?;
    let apt = "sudo apt update && sudo apt upgrade omnipanel";

    // The check still says what is new, and who installs it.
    let check = client
        .updates()
        .check_for_update(pb::CheckForUpdateRequest {})
        .await?
        .into_inner();
    assert!(check.update_available, "{check:?}");
    let package = check.package_managed.ok_or("no package_managed")?;
    assert_eq!(
        (package.format.as_str(), package.update_command.as_str()),
        ("deb", apt)
    );
    assert!(
        package.advice.starts_with("installed from the .deb"),
        "{package:?}"
    );
    let output = sandbox.cli(&["update", "check"])?;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("9.6.0 is available") && stdout(&output).contains(apt),
        "{}",
        stdout(&output)
    );

    // Downloading, installing and rolling back are refused, saying why.
    let err = download(&client).await.err().ok_or("downloaded")?;
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err).as_deref(), Some("UPDATE_PACKAGE_MANAGED"));
    assert!(err.message().contains(apt), "{}", err.message());
    let err = client
        .updates()
        .install_update(pb::InstallUpdateRequest { force: true })
        .await
        .err()
        .ok_or("installed")?;
    assert_eq!(reason(&err).as_deref(), Some("UPDATE_PACKAGE_MANAGED"));
    let err = client
        .updates()
        .rollback(pb::RollbackRequest {})
        .await
        .err()
        .ok_or("rolled back")?;
    assert_eq!(reason(&err).as_deref(), Some("UPDATE_PACKAGE_MANAGED"));
    let output = sandbox.cli(&["update", "download"])?;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(&output).contains(apt), "{}", stderr(&output));
    assert!(
        !release
            .server
            .seen()
            .iter()
            .any(|r| r.path.contains("artifact")),
        "the artifact was fetched: {:?}",
        release.server.seen()
    );
    assert_eq!(std::fs::read(&exe)?, original, "the program was replaced");
    assert_eq!(staged_files(&sandbox), Vec::<String>::new());

    let status = update_status(&client).await?;
    assert_eq!(
        status.package_managed.map(|p| p.update_command).as_deref(),
        Some(apt)
    );
    let output = sandbox.cli(&["update", "status"])?;
    assert!(
        stdout(&output).contains("packaged   installed from the .deb"),
        "{}",
        stdout(&output)
    );
    Ok(())
}

#[tokio::test]
async fn missing_key_and_unreachable_server_are_clear_errors() -> TestResult {
    let sandbox = Sandbox::new()?;
    // A reachable server but no key: nothing could be verified, so nothing
    // is fetched, not even the manifest.
    let release = Release::new("9.5.0", b"#!/bin/sh\n")?;
    sandbox.write_config(&format!(
        "[update]\nmanifest_url = \"{}\"\nenabled = false\n",
        release.server.url("{channel}.json")
    ))?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let err = download(&client)
        .await
        .err()
        .ok_or("downloaded without a key")?;
    assert_eq!(reason(&err).as_deref(), Some("UPDATE_NO_KEY"));
    assert_eq!(release.server.seen(), vec![], "fetched without a key");
    // With a key, an unreachable server.
    let key = sandbox.cli(&[
        "settings",
        "set",
        "update.public_key",
        &release.key.public_base64(),
    ])?;
    assert!(key.status.success(), "{key:?}");
    let url = sandbox.cli(&[
        "settings",
        "set",
        "update.manifest_url",
        &format!("http://127.0.0.1:{}/m.json", omnipanel_tests::free_port()?),
    ])?;
    assert!(url.status.success(), "{url:?}");
    let err = client
        .updates()
        .check_for_update(pb::CheckForUpdateRequest {})
        .await
        .err()
        .ok_or("checked an unreachable server")?;
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let output = sandbox.cli(&["update", "check"])?;
    assert_eq!(output.status.code(), Some(1));
    Ok(())
}

#[tokio::test]
async fn bugreport_archive_has_versions_redacted_config_and_logs() -> TestResult {
    let sandbox = Sandbox::new()?;
    sandbox.write_config("[git]\ntoken = \"ghp_secret_value\"\n")?;
    let _agent = sandbox.start_agent().await?;
    let out_dir = sandbox.root().join("reports");
    std::fs::create_dir_all(&out_dir)?;
    let output = sandbox.cli(&["bugreport", "--output", out_dir.to_str().ok_or("utf-8")?])?;
    assert!(output.status.success(), "{output:?}");
    let path = PathBuf::from(stdout(&output).trim());
    assert!(path.starts_with(&out_dir), "{}", path.display());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&path)?));
    let mut names = Vec::new();
    let mut config = String::new();
    let mut summary = String::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.display().to_string();
        use std::io::Read;
        if name.ends_with("config.toml") {
            entry.read_to_string(&mut config)?;
        } else if name.ends_with("summary.txt") {
            entry.read_to_string(&mut summary)?;
        }
        names.push(name);
    }
    assert!(
        names.iter().any(|n| n.ends_with("logs/agent.log")),
        "{names:?}"
    );
    assert!(!config.contains("ghp_secret_value"), "{config}");
    assert!(config.contains("token"), "{config}");
    assert!(summary.contains("agent "), "{summary}");
    assert!(summary.contains("os: linux"), "{summary}");
    Ok(())
}

/// Run scripts/release-manifest.py with `args`; its stdout.
fn release_manifest(args: &[&str]) -> TestResult<String> {
    let python = std::env::var("OMNIPANEL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/release-manifest.py"
    );
    let output = std::process::Command::new(python)
        .arg(script)
        .args(args)
        .output()?;
    if !output.status.success() {
        return Err(format!("release-manifest.py {args:?} failed: {output:?}").into());
    }
    Ok(String::from_utf8(output.stdout)?)
}

#[tokio::test]
async fn a_manifest_from_the_release_tooling_is_accepted_and_tampering_with_it_is_not() -> TestResult
{
    let sandbox = Sandbox::new()?;
    let exe = install_agent(&sandbox)?;
    let release = Release::new("9.7.0", b"#!/bin/sh\n")?;
    // What the release workflow does: sign the artifact, write the
    // manifest with the script, sign it with the comment the script names.
    let dist = sandbox.root().join("dist");
    std::fs::create_dir_all(&dist)?;
    let artifact = dist.join(format!("omnipanel-{}.tar.gz", platform()));
    std::fs::write(&artifact, &release.artifact)?;
    let mut signature = artifact.clone().into_os_string();
    signature.push(".minisig");
    std::fs::write(&signature, release.key.sign(&release.artifact)?)?;
    let manifest = release_manifest(&[
        "--version",
        "9.7.0",
        "--channel",
        "stable",
        "--base-url",
        &release.server.url("files"),
        artifact.to_str().ok_or("utf-8")?,
    ])?;
    let manifest_path = dist.join("manifest-stable.json");
    std::fs::write(&manifest_path, &manifest)?;
    let comment = release_manifest(&["--trusted-comment", manifest_path.to_str().ok_or("utf-8")?])?;
    let signed = release
        .key
        .sign_with_comment(manifest.as_bytes(), comment.trim())?;
    release
        .server
        .put("stable.json", manifest.clone().into_bytes());
    release
        .server
        .put("stable.json.minisig", signed.into_bytes());
    release.server.put(
        &format!("files/omnipanel-{}.tar.gz", platform()),
        release.artifact.clone(),
    );
    release.configure(&sandbox, &release.key.public_base64())?;
    let agent = AgentProcess::start_program(&sandbox, &exe, &[]).await?;
    let client = agent.client().await?;
    let check = client
        .updates()
        .check_for_update(pb::CheckForUpdateRequest {})
        .await?
        .into_inner();
    assert!(check.update_available, "{check:?}");
    assert_eq!(check.latest.map(|l| l.version), Some("9.7.0".to_owned()));
    assert_eq!(download(&client).await?.state(), pb::DownloadState::Ready);

    // The same signature over a body pointing elsewhere.
    release.server.put(
        "stable.json",
        manifest.replace("/files/", "/elsewhere/").into_bytes(),
    );
    let refused = client
        .updates()
        .check_for_update(pb::CheckForUpdateRequest {})
        .await
        .err()
        .ok_or("a tampered manifest was accepted")?;
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(
        reason(&refused).as_deref(),
        Some("UPDATE_MANIFEST_UNSIGNED")
    );
    Ok(())
}
