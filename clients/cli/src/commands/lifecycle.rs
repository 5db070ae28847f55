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
use omnipanel_client::{Client, ClientError, Target, display};
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
            if r.update_available {
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

/// Most of a log file that goes into a report.
const LOG_TAIL_BYTES: u64 = 1024 * 1024;
/// Crash reports included, newest first.
const MAX_CRASH_REPORTS: usize = 10;

/// Mask values of keys that hold secrets in a config.toml text.
pub fn redact_config(text: &str) -> String {
    const SECRET_WORDS: &[&str] = &["token", "secret", "password", "passphrase", "private"];
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with('#') || trimmed.starts_with('[') {
                return line.to_owned();
            }
            match line.split_once('=') {
                Some((key, _))
                    if SECRET_WORDS
                        .iter()
                        .any(|w| key.to_ascii_lowercase().contains(w)) =>
                {
                    format!("{}= \"<redacted>\"", key)
                }
                _ => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail_of(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        file.seek(SeekFrom::Start(len - max))?;
    }
    let mut data = Vec::new();
    file.take(max).read_to_end(&mut data)?;
    Ok(data)
}

/// `omnipanel bugreport`
pub async fn bugreport(output: Option<PathBuf>, out: Output) -> Result<(), Failure> {
    // The agent may be the thing that is broken: use what it says about
    // itself when it answers, else the default locations.
    let client = Client::connect_from_env().await.ok();
    let mut summary = String::new();
    summary.push_str(&format!("omnipanel (CLI) {}\n", env!("CARGO_PKG_VERSION")));
    let (config, log_dir, crash_dir) = match &client {
        Some(client) => {
            let info = client.info();
            summary.push_str(&format!(
                "agent {} (protocol {}), pid {}, features {}\n",
                info.version,
                info.protocol_version,
                info.pid,
                info.features.join(",")
            ));
            if info.previous_run_crashed {
                summary.push_str("the agent's previous run crashed\n");
            }
            if let Ok(status) = client
                .models()
                .get_server_status(pb::GetServerStatusRequest {})
                .await
            {
                summary.push_str(&format!("ollama: {:?}\n", status.into_inner()));
            }
            (
                PathBuf::from(&info.config_path),
                PathBuf::from(&info.log_dir),
                PathBuf::from(&info.crash_dir),
            )
        }
        None => {
            summary.push_str("agent: not running\n");
            let paths = omnipanel_paths::AgentPaths::from_env();
            (
                omnipanel_paths::config_file(),
                paths.log_dir,
                paths.crash_dir,
            )
        }
    };
    summary.push_str(&format!(
        "os: {} {}\n",
        std::env::consts::OS,
        std::env::consts::ARCH
    ));
    for file in ["/etc/os-release", "/proc/version"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            summary.push_str(&format!("--- {file}\n{}\n", text.trim()));
        }
    }
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
    let included = tokio::task::spawn_blocking(move || {
        write_archive(&archive_path, &summary, &config, &log_dir, &crash_dir)
    })
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

fn write_archive(
    path: &Path,
    summary: &str,
    config: &Path,
    log_dir: &Path,
    crash_dir: &Path,
) -> std::io::Result<Vec<String>> {
    let file = std::fs::File::create(path)?;
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    let mut included = Vec::new();
    let mut add = |name: &str, data: &[u8]| -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        );
        header.set_cksum();
        builder.append_data(&mut header, format!("omnipanel-bugreport/{name}"), data)?;
        included.push(name.to_owned());
        Ok(())
    };
    add("summary.txt", summary.as_bytes())?;
    match std::fs::read_to_string(config) {
        Ok(text) => add("config.toml", redact_config(&text).as_bytes())?,
        Err(err) => add(
            "config.toml",
            format!("# {}: {err}\n", config.display()).as_bytes(),
        )?,
    }
    if let Ok(entries) = std::fs::read_dir(log_dir) {
        let mut logs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        logs.sort();
        for log in logs {
            if let (Ok(data), Some(name)) = (
                tail_of(&log, LOG_TAIL_BYTES),
                log.file_name().and_then(|n| n.to_str()),
            ) {
                add(&format!("logs/{name}"), &data)?;
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(crash_dir) {
        let mut reports: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        reports.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (_, report) in reports.into_iter().take(MAX_CRASH_REPORTS) {
            if let (Ok(data), Some(name)) = (
                tail_of(&report, LOG_TAIL_BYTES),
                report.file_name().and_then(|n| n.to_str()),
            ) {
                add(&format!("crashes/{name}"), &data)?;
            }
        }
    }
    builder.into_inner()?.finish()?.sync_all()?;
    Ok(included)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_and_the_rest_kept() {
        let text = "[git]\ntoken = \"ghp_abc\"\ntimeout = \"30s\"\n# token = old\n[update]\npublic_key = \"RWQ\"\n";
        let redacted = redact_config(text);
        assert!(!redacted.contains("ghp_abc"));
        assert!(redacted.contains("token = \"<redacted>\""));
        assert!(redacted.contains("timeout = \"30s\""));
        assert!(redacted.contains("# token = old"));
        assert!(redacted.contains("public_key = \"RWQ\""));
    }
}
