//! The restart after an install or rollback, run by the old agent process
//! once it has stopped serving and released its socket and both instance
//! locks: the probe shares the data folder, and its per-user lock.
//!
//! After an install, the old process (still running the old code, which is
//! known to work) first backs up state.db next to the rollback binaries
//! (the new agent may migrate it; see `statedb.rs`; no backup, no new
//! agent), then starts the new agent on a private probe socket and waits
//! up to [`HEALTH_DEADLINE`](super::HEALTH_DEADLINE) for it to answer
//! GetInfo with the expected version. If it does, the probe is stopped and
//! the old process `exec`s the new agent for real: the pid stays the same,
//! so a service manager (systemd's main pid) or a parent that waits on the
//! agent sees one continuous process. If it does not, the old binaries are
//! put back, and state.db too when the probe migrated it, and the old agent
//! is exec'd instead; it reports the automatic rollback from the marker at
//! start. After a rollback the user asked for, the backup that rollback
//! handed over is put back the same way before the old agent is exec'd.
//! Only an exec failure returns.
//!
//! Asking the probe for its version is a gRPC call, which this crate does
//! not make: the server crate hands in a [`VersionProbe`].

use std::{
    ffi::OsString,
    future::Future,
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    time::{Duration, Instant},
};

use omnipanel_paths::AgentPaths;

use crate::{
    platform,
    updates::{HEALTH_DEADLINE, Marker, RestartPlan, UpdateDirs, artifact, statedb},
};

/// Asks an agent on a socket which version it is.
pub trait VersionProbe {
    /// The version the agent at `socket` answers with; `Ok(None)` while
    /// nothing answers there yet; `Err` when something answered wrongly.
    fn version(&self, socket: &Path) -> impl Future<Output = Result<Option<String>, String>>;
}

/// Set for the probe instance: it leaves the marker alone, does not check
/// for updates and does not start Ollama.
pub const PROBE_ENV: &str = "OMNIPANEL_UPDATE_PROBE";

/// How long a probe gets to stop after SIGTERM before it is killed.
const PROBE_STOP: Duration = Duration::from_secs(15);

/// Carry out `plan`. Returns only when the final exec failed.
pub fn perform(plan: RestartPlan, paths: &AgentPaths, version: &impl VersionProbe) -> ExitCode {
    let exe = match plan {
        RestartPlan::Exec { exe, dirs } => {
            restore_handed_over_state(&dirs, paths);
            exe
        }
        RestartPlan::Probe {
            exe,
            to_version,
            dirs,
        } => {
            probe_or_roll_back(&exe, &to_version, &dirs, paths, version);
            exe
        }
    };
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let err = platform::process::exec(Command::new(&exe).args(&args));
    eprintln!(
        "omnipanel-agent: cannot restart as {}: {err}; start the agent again by hand",
        exe.display()
    );
    ExitCode::FAILURE
}

fn probe_or_roll_back(
    exe: &Path,
    to_version: &str,
    dirs: &UpdateDirs,
    paths: &AgentPaths,
    version: &impl VersionProbe,
) {
    let marker_path = dirs.marker();
    let state_db = paths.state_db();
    let outcome = match statedb::back_up(&state_db, &dirs.state_backup()) {
        Ok(_) => probe(exe, to_version, paths, version),
        Err(err) => Err(format!(
            "state.db could not be backed up before the new version's first start ({err})"
        )),
    };
    let mut marker = Marker::read(&marker_path).unwrap_or(Marker {
        state: String::new(),
        from_version: crate::version::current().to_owned(),
        to_version: to_version.to_owned(),
        reason: String::new(),
        state_restored: false,
        time_ms: crate::store::now_ms(),
    });
    match outcome {
        Ok(()) => {
            marker.state = "confirmed".to_owned();
        }
        Err(reason) => {
            eprintln!("omnipanel-agent: the update to {to_version} failed: {reason}; rolling back");
            let restored = artifact::install_dir_of(exe)
                .and_then(|dir| artifact::restore_rollback(&dirs.rollback(), &dir));
            if let Err(err) = restored {
                eprintln!("omnipanel-agent: the rollback failed too: {err}");
            }
            match statedb::restore_if_migrated(&dirs.state_backup(), &state_db) {
                Ok(restored) => marker.state_restored = restored,
                Err(err) => eprintln!(
                    "omnipanel-agent: cannot put back state.db from before the update: {err}"
                ),
            }
            marker.state = "rolled_back".to_owned();
            marker.reason = reason;
        }
    }
    if let Err(err) = marker.write(&marker_path) {
        eprintln!("omnipanel-agent: {err}");
    }
}

/// After a requested rollback: put back the state.db backup it handed over
/// when the agent rolled back from had migrated the database, and note
/// that in the marker for the restarted agent to report.
fn restore_handed_over_state(dirs: &UpdateDirs, paths: &AgentPaths) {
    let backup = dirs.state_to_restore();
    match statedb::restore_if_migrated(&backup, &paths.state_db()) {
        Ok(true) => {
            if let Some(mut marker) = Marker::read(&dirs.marker()) {
                marker.state_restored = true;
                if let Err(err) = marker.write(&dirs.marker()) {
                    eprintln!("omnipanel-agent: {err}");
                }
            }
        }
        Ok(false) => {}
        Err(err) => {
            eprintln!("omnipanel-agent: cannot put back state.db from before the update: {err}");
        }
    }
    artifact::remove_file_if_present(&backup);
}

/// Start the new agent on a probe socket and wait for it to answer as
/// `to_version`; always stops it again.
fn probe(
    exe: &Path,
    to_version: &str,
    paths: &AgentPaths,
    version: &impl VersionProbe,
) -> Result<(), String> {
    let socket = probe_socket(&paths.socket);
    let _ = std::fs::remove_file(&socket);
    let mut child = Command::new(exe)
        .arg("run")
        .arg("--quiet")
        .arg("--socket")
        .arg(&socket)
        .arg("--config")
        .arg(&paths.config_file)
        .env(PROBE_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|err| format!("the new agent could not be started: {err}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| format!("cannot start a runtime for the health check: {err}"))?;
    let result = runtime.block_on(wait_healthy(&mut child, &socket, to_version, version));
    stop(&mut child);
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(with_suffix(&socket, ".lock"));
    result
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The probe's socket: next to the real one, so it passes the same folder
/// checks, but never dialled by clients.
pub fn probe_socket(socket: &Path) -> PathBuf {
    socket.with_file_name("update-probe.sock")
}

async fn wait_healthy(
    child: &mut Child,
    socket: &Path,
    to_version: &str,
    probe: &impl VersionProbe,
) -> Result<(), String> {
    let deadline = Instant::now() + HEALTH_DEADLINE;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the new agent exited ({status}) before answering"));
        }
        match probe.version(socket).await? {
            Some(version) if version == to_version => return Ok(()),
            Some(version) => {
                return Err(format!(
                    "the new agent answered as version {version}, not {to_version}"
                ));
            }
            None if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None => {
                return Err(format!(
                    "the new agent did not answer within {} s",
                    HEALTH_DEADLINE.as_secs()
                ));
            }
        }
    }
}

fn stop(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    platform::process::terminate(child.id());
    let deadline = Instant::now() + PROBE_STOP;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}
