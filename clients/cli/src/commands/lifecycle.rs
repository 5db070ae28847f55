//! Commands about OmniPanel's installation: `autostart` (start at login),
//! `update` (check, download with a progress bar, install, roll back,
//! status) and `bugreport` (one archive to attach to an issue).

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use omnipanel_client::{Client, ClientError, Target, bugreport, display};
use omnipanel_proto::v1::{self as pb, DownloadState};

use crate::{
    Failure,
    output::{Output, errln, outln},
};

/// `omnipanel autostart ...`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutostartAction {
    /// Register OmniPanel to start at login.
    On,
    /// Remove the registration.
    Off,
    /// Show whether it is registered (read from the real file).
    Status,
}

/// `omnipanel update ...`
#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Ask the update server whether a newer version exists.
    Check,
    /// Download and verify the newest version (resumes an interrupted
    /// download).
    Download,
    /// Install the downloaded version and restart the agent.
    Install {
        /// Install even while a model pull runs or a model is loaded.
        #[arg(long)]
        force: bool,
    },
    /// Go back to the version the last install replaced.
    Rollback,
    /// Show versions, the download, and the update history.
    Status,
}

/// `omnipanel autostart on|off|status`
pub async fn autostart(action: AutostartAction, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let (enabled, location, program) = match action {
        AutostartAction::Status => {
            let r = client
                .call(client.agent().get_autostart(pb::GetAutostartRequest {}))
                .await?;
            if out.is_json() {
                return out.json(&r);
            }
            (r.enabled, r.location, r.program)
        }
        AutostartAction::On | AutostartAction::Off => {
            let r = client
                .call(client.agent().set_autostart(pb::SetAutostartRequest {
                    enabled: action == AutostartAction::On,
                }))
                .await?;
            if out.is_json() {
                return out.json(&r);
            }
            (r.enabled, r.location, r.program)
        }
    };
    if enabled {
        outln!("start at login: on ({program})")?;
    } else {
        outln!("start at login: off")?;
    }
    outln!("  entry  {location}")?;
    Ok(())
}

/// `omnipanel update ...`
pub async fn update(command: UpdateCommand, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    match command {
        UpdateCommand::Check => {
            let r = client
                .call(
                    client
                        .updates()
                        .check_for_update(pb::CheckForUpdateRequest {}),
                )
                .await?;
            if out.is_json() {
                return out.json(&r);
            }
            let latest = r.latest.unwrap_or_default();
            if let Some(package) = r.package_managed.as_ref().filter(|_| r.update_available) {
                // The agent will not download it: say who updates it.
                outln!(
                    "OmniPanel {} is available (running {}, channel {}); this copy was {}",
                    latest.version,
                    r.current_version,
                    r.channel,
                    package.advice
                )?;
                if !latest.notes.is_empty() {
                    outln!("\n{}", latest.notes.trim())?;
                }
            } else if r.update_available {
                outln!(
                    "OmniPanel {} is available (running {}, channel {}); `omnipanel update download` fetches it",
                    latest.version,
                    r.current_version,
                    r.channel
                )?;
                if !latest.notes.is_empty() {
                    outln!("\n{}", latest.notes.trim())?;
                }
            } else {
                outln!(
                    "OmniPanel {} is up to date (channel {} offers {})",
                    r.current_version,
                    r.channel,
                    latest.version
                )?;
                if let Some(package) = &r.package_managed {
                    outln!("this copy was {}", package.advice)?;
                }
            }
            Ok(())
        }
        UpdateCommand::Download => download(&client, out).await,
        UpdateCommand::Install { force } => {
            let r = client
                .call(
                    client
                        .updates()
                        .install_update(pb::InstallUpdateRequest { force }),
                )
                .await?;
            if !out.is_json() {
                outln!(
                    "installing {} (replacing {}); the agent restarts…",
                    r.to_version,
                    r.from_version
                )?;
            }
            let target = client.target().clone();
            drop(client);
            let running = wait_for_restart(&target).await?;
            let status = running
                .call(
                    running
                        .updates()
                        .get_update_status(pb::GetUpdateStatusRequest {}),
                )
                .await?;
            let installed = running.info().version == r.to_version;
            if out.is_json() {
                return out.json(&serde_json::json!({
                    "fromVersion": r.from_version,
                    "toVersion": r.to_version,
                    "runningVersion": running.info().version,
                    "installed": installed,
                    "error": status.last_error,
                }));
            }
            if installed {
                outln!("OmniPanel {} is running", r.to_version)?;
                Ok(())
            } else {
                Err(Failure::Other(format!(
                    "the update to {} failed and was rolled back; {} is running again ({})",
                    r.to_version,
                    running.info().version,
                    status.last_error
                )))
            }
        }
        UpdateCommand::Rollback => {
            let r = client
                .call(client.updates().rollback(pb::RollbackRequest {}))
                .await?;
            let target = client.target().clone();
            drop(client);
            let running = wait_for_restart(&target).await?;
            if out.is_json() {
                return out.json(&serde_json::json!({
                    "fromVersion": r.from_version,
                    "toVersion": r.to_version,
                    "runningVersion": running.info().version,
                }));
            }
            outln!(
                "rolled back from {} to {}; {} is running",
                r.from_version,
                r.to_version,
                running.info().version
            )?;
            Ok(())
        }
        UpdateCommand::Status => {
            let r = client
                .call(
                    client
                        .updates()
                        .get_update_status(pb::GetUpdateStatusRequest {}),
                )
                .await?;
            if out.is_json() {
                return out.json(&r);
            }
            print_status(&r)?;
            Ok(())
        }
    }
}

fn print_status(r: &pb::GetUpdateStatusResponse) -> Result<(), Failure> {
    outln!("running    {} (channel {})", r.current_version, r.channel)?;
    outln!(
        "checks     {}",
        if r.automatic_checks {
            "automatic"
        } else {
            "manual only"
        }
    )?;
    if let Some(package) = &r.package_managed {
        outln!("packaged   {}", package.advice)?;
    }
    if r.last_check_unix_ms > 0 {
        let latest = r.latest.clone().unwrap_or_default();
        outln!(
            "last check {}: {} {}",
            display::timestamp(r.last_check_unix_ms),
            latest.version,
            if r.update_available {
                "(newer)"
            } else {
                "(not newer)"
            }
        )?;
    }
    if !r.ready_version.is_empty() {
        outln!(
            "ready      {} (install with `omnipanel update install`)",
            r.ready_version
        )?;
    }
    if !r.rollback_version.is_empty() {
        outln!(
            "rollback   {} (`omnipanel update rollback`)",
            r.rollback_version
        )?;
    }
    if !r.last_error.is_empty() {
        outln!("last error {}", r.last_error)?;
    }
    if !r.history.is_empty() {
        outln!("history")?;
        for entry in &r.history {
            let message = if entry.message.is_empty() {
                String::new()
            } else {
                format!(": {}", entry.message)
            };
            outln!(
                "  {}  {} {} -> {} {}{message}",
                display::timestamp(entry.time_unix_ms),
                entry.action,
                entry.from_version,
                entry.to_version,
                entry.outcome
            )?;
        }
    }
    Ok(())
}

async fn download(client: &Client, out: Output) -> Result<(), Failure> {
    let mut stream = client
        .call_stream(
            client
                .updates()
                .download_update(pb::DownloadUpdateRequest {}),
        )
        .await?;
    let bar = (!out.is_json() && std::io::stdout().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout());
        // The template is a constant; the default style is a fine fallback.
        if let Ok(style) =
            ProgressStyle::with_template("[{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    });
    let mut last_state = None;
    loop {
        let message = match stream.message().await {
            Ok(Some(message)) => message,
            Ok(None) => break,
            Err(err) => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                return Err(err.into());
            }
        };
        let progress = message.progress.unwrap_or_default();
        if out.is_json() {
            out.json(&progress)?;
            continue;
        }
        let state = progress.state();
        match &bar {
            Some(bar) => {
                bar.set_length(progress.total_bytes);
                bar.set_position(progress.received_bytes);
                bar.set_message(format!("{} {}", progress.version, state_word(state)));
            }
            None if last_state != Some(state) => {
                outln!(
                    "{} {}: {} of {}",
                    progress.version,
                    state_word(state),
                    display::bytes(progress.received_bytes),
                    display::bytes(progress.total_bytes)
                )?;
            }
            None => {}
        }
        last_state = Some(state);
        if state == DownloadState::Ready {
            if let Some(bar) = &bar {
                bar.finish();
            }
            outln!(
                "OmniPanel {} is downloaded and verified; install it with `omnipanel update install`",
                progress.version
            )?;
        }
    }
    Ok(())
}

fn state_word(state: DownloadState) -> &'static str {
    match state {
        DownloadState::Downloading => "downloading",
        DownloadState::Verifying => "verifying",
        DownloadState::Ready => "ready",
        DownloadState::Failed => "failed",
        DownloadState::Unspecified => "",
    }
}

/// Wait for the agent to go away and answer again (it restarts as the
/// same process, so this waits for a fresh GetInfo).
async fn wait_for_restart(target: &Target) -> Result<Client, Failure> {
    // A fresh start takes milliseconds; the new agent may get up to a
    // minute to answer before the old one rolls back, then starts again.
    for _ in 0..1800 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match Client::connect(target.clone()).await {
            Ok(client) => return Ok(client),
            Err(ClientError::AgentNotRunning { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Err(Failure::Other(
        "the agent did not come back within 3 minutes; see `omnipanel-agent` in your service manager or its log"
            .to_owned(),
    ))
}

/// `omnipanel bugreport`: what `omnipanel_client::bugreport` collects (the
/// same the panel's "Copy bug report" copies), packed into an archive.
pub async fn bugreport(output: Option<PathBuf>, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await.ok();
    let report = bugreport::collect(client.as_ref(), "CLI")
        .await
        .map_err(|err| Failure::Other(format!("the report could not be collected: {err}")))?;
    let dir = match output {
        Some(dir) => dir,
        None => std::env::current_dir()
            .map_err(|err| Failure::Other(format!("cannot tell the current folder: {err}")))?,
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let path = dir.join(format!("omnipanel-bugreport-{stamp}.tar.gz"));
    let archive_path = path.clone();
    let included = report.names();
    tokio::task::spawn_blocking(move || write_archive(&archive_path, &report))
        .await
        .map_err(|err| Failure::Other(format!("the report could not be written: {err}")))?
        .map_err(|err| Failure::Other(format!("cannot write {}: {err}", path.display())))?;
    if out.is_json() {
        return out.json(&serde_json::json!({
            "path": path.display().to_string(),
            "files": included,
        }));
    }
    outln!("{}", path.display())?;
    errln!(
        "omnipanel: wrote {} files; secrets in the settings were masked, but look through it before attaching it to a public issue",
        included.len()
    );
    Ok(())
}

fn write_archive(path: &Path, report: &bugreport::BugReport) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    let mtime = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    for (name, data) in &report.files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(mtime);
        header.set_cksum();
        builder.append_data(
            &mut header,
            format!("omnipanel-bugreport/{name}"),
            data.as_slice(),
        )?;
    }
    builder.into_inner()?.finish()?.sync_all()?;
    Ok(())
}
