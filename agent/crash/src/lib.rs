//! Crash reports of every OmniPanel process: a panic hook that writes one
//! file per panic (process, version, OS, thread, message, location,
//! backtrace) to the crashes folder, and the parser that lists them for
//! `ListCrashReports`. The agent, the tray and the panel all install this
//! hook into the one crashes folder, so the agent lists the reports of all
//! three; the crate is std only because the tray and the panel must stay
//! light and do not depend on the agent's domain crate.

use std::{
    backtrace::Backtrace,
    fmt::Write as _,
    fs,
    io::{self, Write as _},
    panic::PanicHookInfo,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

const FILE_PREFIX: &str = "crash-";
const FILE_SUFFIX: &str = ".txt";

/// The process name of the agent's reports.
pub const AGENT: &str = "agent";
/// The process name of the tray's reports.
pub const TRAY: &str = "tray";
/// The process name of the panel's reports.
pub const PANEL: &str = "panel";

/// One parsed crash report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashReport {
    /// The report file.
    pub path: PathBuf,
    /// Which process crashed: [`AGENT`], [`TRAY`] or [`PANEL`].
    pub process: String,
    /// When it happened, ms since the Unix epoch.
    pub time_ms: i64,
    /// Version of the program that crashed.
    pub version: String,
    /// Panic message.
    pub message: String,
    /// Thread name.
    pub thread: String,
    /// `file:line:column`.
    pub location: String,
}

/// Install the hook for `process` (one of [`AGENT`], [`TRAY`], [`PANEL`])
/// at `version`. It writes the report, then runs the previous hook (so the
/// panic still reaches stderr).
pub fn install_hook(crash_dir: PathBuf, process: &'static str, version: &'static str) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let written = write_report(&crash_dir, process, version, info);
        previous(info);
        match written {
            Ok(path) => eprintln!("omnipanel: crash report written to {}", path.display()),
            Err(err) => eprintln!(
                "omnipanel: could not write a crash report to {}: {err}",
                crash_dir.display()
            ),
        }
    }));
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

fn panic_message(info: &PanicHookInfo<'_>) -> String {
    if let Some(s) = info.payload().downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "(panic payload is not text)".to_owned()
    }
}

fn write_report(
    crash_dir: &Path,
    process: &str,
    version: &str,
    info: &PanicHookInfo<'_>,
) -> io::Result<PathBuf> {
    fs::create_dir_all(crash_dir)?;
    let time_ms = now_ms();
    let pid = std::process::id();
    let thread = std::thread::current();
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_default();
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(text, "OmniPanel crash report");
    let _ = writeln!(text, "process: {process}");
    let _ = writeln!(text, "time_ms: {time_ms}");
    let _ = writeln!(text, "version: {version}");
    let _ = writeln!(
        text,
        "os: {} {}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let _ = writeln!(text, "pid: {pid}");
    let _ = writeln!(text, "thread: {}", thread.name().unwrap_or("<unnamed>"));
    let _ = writeln!(text, "location: {location}");
    // The message can span lines; keep it last among the headers, one line.
    let _ = writeln!(
        text,
        "message: {}",
        panic_message(info).replace('\n', " | ")
    );
    let _ = writeln!(text, "\nbacktrace:\n{}", Backtrace::force_capture());
    // The pid keeps two processes crashing in the same millisecond apart.
    let path = crash_dir.join(format!("{FILE_PREFIX}{time_ms}-{pid}{FILE_SUFFIX}"));
    let mut file = fs::File::create(&path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(path)
}

/// Parse the header of a report file. Reports written before the process
/// was recorded were all the agent's.
pub fn parse_report(path: &Path, text: &str) -> CrashReport {
    let mut report = CrashReport {
        path: path.to_owned(),
        process: AGENT.to_owned(),
        time_ms: 0,
        version: String::new(),
        message: String::new(),
        thread: String::new(),
        location: String::new(),
    };
    for line in text.lines().take_while(|line| !line.is_empty()) {
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        match key {
            "process" => report.process = value.to_owned(),
            "time_ms" => report.time_ms = value.parse().unwrap_or_default(),
            "version" => report.version = value.to_owned(),
            "message" => report.message = value.to_owned(),
            "thread" => report.thread = value.to_owned(),
            "location" => report.location = value.to_owned(),
            _ => {}
        }
    }
    report
}

/// Every report in `crash_dir`, newest first. Blocking.
pub fn list_reports(crash_dir: &Path) -> io::Result<Vec<CrashReport>> {
    let entries = match fs::read_dir(crash_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut reports = Vec::new();
    for entry in entries {
        let path = entry?.path();
        let is_report = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|name| name.starts_with(FILE_PREFIX) && name.ends_with(FILE_SUFFIX));
        if !is_report {
            continue;
        }
        // A report that vanished or is unreadable is skipped, not fatal.
        if let Ok(text) = fs::read_to_string(&path) {
            reports.push(parse_report(&path, &text));
        }
    }
    reports.sort_by(|a, b| b.time_ms.cmp(&a.time_ms).then_with(|| b.path.cmp(&a.path)));
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers_and_sorts_newest_first() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        for (t, process, msg) in [(10, "", "old"), (30, "panel", "new"), (20, "tray", "mid")] {
            let process = if process.is_empty() {
                String::new()
            } else {
                format!("process: {process}\n")
            };
            fs::write(
                dir.path().join(format!("crash-{t}-1.txt")),
                format!(
                    "OmniPanel crash report\n{process}time_ms: {t}\nversion: 9.9.9\nthread: main\nlocation: a.rs:1:2\nmessage: {msg}\n\nbacktrace:\nmessage: not a header\n"
                ),
            )?;
        }
        fs::write(dir.path().join("unrelated.txt"), "x")?;
        let reports = list_reports(dir.path())?;
        let seen: Vec<(&str, &str)> = reports
            .iter()
            .map(|r| (r.process.as_str(), r.message.as_str()))
            .collect();
        // A report without a process line is an older agent's.
        assert_eq!(
            seen,
            vec![("panel", "new"), ("tray", "mid"), ("agent", "old")]
        );
        assert_eq!(reports[0].version, "9.9.9");
        assert_eq!(reports[0].location, "a.rs:1:2");
        Ok(())
    }

    #[test]
    fn missing_folder_means_no_reports() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(list_reports(&dir.path().join("nope"))?.is_empty());
        Ok(())
    }
}
