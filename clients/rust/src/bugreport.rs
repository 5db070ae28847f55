//! What a bug report holds, collected the one way every client does it:
//! `omnipanel bugreport` packs it into an archive, and the panel's "Copy
//! bug report" puts it on the clipboard as text. A summary (the reporting
//! client's and the agent's versions, the model server's state, the OS),
//! the settings with secrets masked, the end of every log, and the newest
//! crash reports of every process. The agent may be the thing that is
//! broken: its answers are used when it gives them, else the default
//! locations are read directly. It only reads.

use std::{
    fmt::Write as _,
    io::{self, Read, Seek, SeekFrom},
    path::{Path, PathBuf},
};

use omnipanel_proto::v1::GetServerStatusRequest;

use crate::Client;

/// Most of a log file (or crash report) that goes into a report.
pub const LOG_TAIL_BYTES: u64 = 1024 * 1024;
/// Crash reports included, newest first.
pub const MAX_CRASH_REPORTS: usize = 10;

/// One collected report: named files, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BugReport {
    /// `(name, contents)`, e.g. `("logs/agent.log", ..)`.
    pub files: Vec<(String, Vec<u8>)>,
}

impl BugReport {
    /// The names of the files, in order.
    pub fn names(&self) -> Vec<String> {
        self.files.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Every file as text, one after the other under a `==> name <==`
    /// line (as `tail` heads them), for the clipboard or an issue's text.
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (name, data) in &self.files {
            let body = String::from_utf8_lossy(data);
            // Writing to a String cannot fail.
            let _ = writeln!(text, "==> {name} <==\n{}\n", body.trim_end());
        }
        text
    }
}

/// Collect a report. `reporter` names the client that asks, e.g. "CLI" or
/// "panel"; `client` is the agent when it answers. The file reads run on
/// the blocking pool.
pub async fn collect(client: Option<&Client>, reporter: &str) -> io::Result<BugReport> {
    let mut summary = format!("omnipanel ({reporter}) {}\n", env!("CARGO_PKG_VERSION"));
    let (config, log_dir, crash_dir) = match client {
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
                .get_server_status(GetServerStatusRequest {})
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
    tokio::task::spawn_blocking(move || read_files(summary, &config, &log_dir, &crash_dir))
        .await
        .map_err(io::Error::other)
}

fn read_files(mut summary: String, config: &Path, log_dir: &Path, crash_dir: &Path) -> BugReport {
    for file in ["/etc/os-release", "/proc/version"] {
        if let Ok(text) = std::fs::read_to_string(file) {
            summary.push_str(&format!("--- {file}\n{}\n", text.trim()));
        }
    }
    let mut report = BugReport::default();
    report
        .files
        .push(("summary.txt".to_owned(), summary.into_bytes()));
    let config_text = match std::fs::read_to_string(config) {
        Ok(text) => redact_config(&text),
        Err(err) => format!("# {}: {err}\n", config.display()),
    };
    report
        .files
        .push(("config.toml".to_owned(), config_text.into_bytes()));
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
                report.files.push((format!("logs/{name}"), data));
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(crash_dir) {
        let mut reports: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        reports.sort_by_key(|r| std::cmp::Reverse(r.0));
        for (_, crash) in reports.into_iter().take(MAX_CRASH_REPORTS) {
            if let (Ok(data), Some(name)) = (
                tail_of(&crash, LOG_TAIL_BYTES),
                crash.file_name().and_then(|n| n.to_str()),
            ) {
                report.files.push((format!("crashes/{name}"), data));
            }
        }
    }
    report
}

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

fn tail_of(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        file.seek(SeekFrom::Start(len - max))?;
    }
    let mut data = Vec::new();
    file.take(max).read_to_end(&mut data)?;
    Ok(data)
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

    #[test]
    fn reads_the_folders_and_masks_the_settings() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("config.toml");
        std::fs::write(&config, "[git]\ntoken = \"ghp_secret\"\n")?;
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs)?;
        std::fs::write(logs.join("agent.log"), "started\n")?;
        std::fs::write(logs.join("notes.txt"), "not a log\n")?;
        let crashes = dir.path().join("crashes");
        std::fs::create_dir(&crashes)?;
        std::fs::write(crashes.join("crash-1-2.txt"), "process: panel\n")?;
        let report = read_files("summary\n".to_owned(), &config, &logs, &crashes);
        assert_eq!(
            report.names(),
            vec![
                "summary.txt",
                "config.toml",
                "logs/agent.log",
                "crashes/crash-1-2.txt"
            ]
        );
        let text = report.to_text();
        assert!(!text.contains("ghp_secret"), "{text}");
        assert!(
            text.contains("==> crashes/crash-1-2.txt <==\nprocess: panel"),
            "{text}"
        );
        Ok(())
    }
}
