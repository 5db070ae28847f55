//! The `omnipanel-agent` program's own commands, run as a user runs them:
//! `check-config` on a valid and an invalid config.toml, `paths`, and
//! `service install/status/uninstall` against a fake `systemctl` on PATH
//! (a script that records how it was called and answers like systemd),
//! with the hints a user gets when the service manager cannot be reached
//! or systemd is missing.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Output, Stdio},
};

use omnipanel_tests::{Sandbox, TestResult, binary, run_to_end, stderr, stdout};

/// Run `omnipanel-agent ARGS` to its end in the sandbox, with `path` as
/// PATH when given.
fn agent(sandbox: &Sandbox, args: &[&str], path: Option<&str>) -> TestResult<Output> {
    let mut command = sandbox.command(&binary("omnipanel-agent"));
    command.args(args).stdin(Stdio::null());
    if let Some(path) = path {
        command.env("PATH", path);
    }
    run_to_end(&mut command)
}

#[tokio::test]
async fn check_config_prints_the_settings_or_locates_the_error() -> TestResult {
    let sandbox = Sandbox::new()?;
    sandbox.write_config("[log]\nmax_files = 3\n")?;
    let checked = agent(&sandbox, &["check-config"], None)?;
    assert!(checked.status.success(), "{}", stderr(&checked));
    let text = stdout(&checked);
    assert!(text.contains("log.max_files = 3"), "{text}");
    assert!(
        text.contains(&sandbox.config_file().display().to_string()),
        "{text}"
    );

    sandbox.write_config("[log]\nmax_files = 0\n")?;
    let refused = agent(&sandbox, &["check-config"], None)?;
    assert_eq!(refused.status.code(), Some(78), "EX_CONFIG");
    let why = stderr(&refused);
    assert!(
        why.contains("invalid configuration") && why.contains("log.max_files"),
        "{why}"
    );
    Ok(())
}

#[tokio::test]
async fn paths_prints_where_the_agent_keeps_its_files() -> TestResult {
    let sandbox = Sandbox::new()?;
    let printed = agent(&sandbox, &["paths"], None)?;
    assert!(printed.status.success(), "{}", stderr(&printed));
    let text = stdout(&printed);
    for (label, path) in [
        ("socket", sandbox.socket()),
        ("config", sandbox.config_file()),
        ("state", sandbox.data_dir().join("state.db")),
        ("crashes", sandbox.crash_dir()),
    ] {
        assert!(
            text.contains(&format!("{label:<8} {}", path.display())),
            "{label}: {text}"
        );
    }
    Ok(())
}

/// A `systemctl` that appends its arguments to `calls.log` next to it and
/// answers `is-enabled`/`is-active`; with `fail` set, every call but
/// `--version` fails with that message on stderr.
fn fake_systemctl(dir: &Path, fail: Option<&str>) -> TestResult<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let log = dir.join("calls.log");
    let failing = match fail {
        Some(message) => {
            format!("case \"$*\" in *--version*) ;; *) echo '{message}' >&2; exit 1 ;; esac\n")
        }
        None => String::new(),
    };
    let script = format!(
        "#!/bin/sh\necho \"$*\" >> '{}'\n{failing}case \"$*\" in\n  *is-enabled*) echo enabled ;;\n  *is-active*) echo active ;;\n  *--version*) echo 'systemd 252 (fake)' ;;\nesac\nexit 0\n",
        log.display()
    );
    let path = dir.join("systemctl");
    std::fs::write(&path, script)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(log)
}

/// PATH with `dir` first, then the usual folders (for `sh`).
fn path_with(dir: &Path) -> String {
    format!("{}:/usr/bin:/bin", dir.display())
}

#[tokio::test]
async fn service_install_status_and_uninstall_drive_systemctl() -> TestResult {
    let sandbox = Sandbox::new()?;
    let bin = sandbox.root().join("fake-bin");
    let log = fake_systemctl(&bin, None)?;
    let path = path_with(&bin);
    let unit = sandbox
        .root()
        .join("config/systemd/user/omnipanel-agent.service");

    let installed = agent(&sandbox, &["service", "install"], Some(&path))?;
    assert!(installed.status.success(), "{}", stderr(&installed));
    let text = unit_text(&unit)?;
    assert!(
        text.contains(&binary("omnipanel-agent").display().to_string()),
        "the unit starts this agent:\n{text}"
    );
    let said = stdout(&installed);
    assert!(
        said.contains(&format!("wrote {}", unit.display())),
        "{said}"
    );
    // Again: the unit is up to date, so the service is started, not
    // restarted.
    let again = agent(&sandbox, &["service", "install"], Some(&path))?;
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("already up to date"),
        "{}",
        stdout(&again)
    );

    let status = agent(&sandbox, &["service", "status"], Some(&path))?;
    assert!(status.status.success(), "{}", stderr(&status));
    let status = stdout(&status);
    assert!(status.contains("(installed)"), "{status}");
    assert!(status.contains("enabled  enabled"), "{status}");
    assert!(status.contains("active   active"), "{status}");

    let removed = agent(&sandbox, &["service", "uninstall"], Some(&path))?;
    assert!(removed.status.success(), "{}", stderr(&removed));
    assert!(!unit.exists(), "the unit file is removed");
    let nothing = agent(&sandbox, &["service", "uninstall"], Some(&path))?;
    assert!(nothing.status.success(), "{}", stderr(&nothing));
    assert!(
        stdout(&nothing).contains("nothing to remove"),
        "{}",
        stdout(&nothing)
    );

    let calls = std::fs::read_to_string(&log)?;
    for call in [
        "--user daemon-reload",
        "--user enable omnipanel-agent.service",
        "--user restart omnipanel-agent.service",
        "--user start omnipanel-agent.service",
        "--user is-enabled omnipanel-agent.service",
        "--user is-active omnipanel-agent.service",
        "--user disable --now omnipanel-agent.service",
    ] {
        assert!(
            calls.lines().any(|line| line == call),
            "{call:?} in:\n{calls}"
        );
    }
    Ok(())
}

fn unit_text(unit: &Path) -> TestResult<String> {
    std::fs::read_to_string(unit).map_err(|err| format!("{}: {err}", unit.display()).into())
}

#[tokio::test]
async fn service_install_says_what_to_do_when_systemd_cannot_help() -> TestResult {
    let sandbox = Sandbox::new()?;
    // No user service manager (a headless login without lingering).
    let bin = sandbox.root().join("fake-bin");
    fake_systemctl(&bin, Some("Failed to connect to bus: No medium found"))?;
    let failed = agent(&sandbox, &["service", "install"], Some(&path_with(&bin)))?;
    assert!(!failed.status.success());
    let why = stderr(&failed);
    assert!(
        why.contains("`systemctl --user daemon-reload` failed: Failed to connect to bus")
            && why.contains("loginctl enable-linger"),
        "{why}"
    );

    // No systemd at all.
    let empty = sandbox.root().join("empty-bin");
    std::fs::create_dir_all(&empty)?;
    let missing = agent(
        &sandbox,
        &["service", "status"],
        Some(&empty.display().to_string()),
    )?;
    assert!(!missing.status.success());
    let why = stderr(&missing);
    assert!(why.contains("systemctl was not found"), "{why}");

    // A system unit for a user who does not exist.
    let nobody = agent(
        &sandbox,
        &[
            "service",
            "status",
            "--system",
            "--user-name",
            "no-such-user-here",
        ],
        Some(&path_with(&bin)),
    )?;
    assert!(!nobody.status.success());
    let why = stderr(&nobody);
    assert!(why.contains("no user named \"no-such-user-here\""), "{why}");
    Ok(())
}

/// One executable, two programs (agent/src/program.rs): a link named
/// `omnipanel` to the agent's executable runs the CLI, as the packages
/// install it; and the executable links no GUI library, so the agent
/// starts on a headless server without GTK or X.
#[tokio::test]
async fn the_agents_executable_is_the_cli_by_name_and_links_no_gui() -> TestResult {
    let sandbox = Sandbox::new()?;
    let dir = tempfile::tempdir()?;
    let link = dir.path().join("omnipanel");
    std::os::unix::fs::symlink(binary("omnipanel-agent"), &link)?;
    let version = run_to_end(sandbox.command(&link).arg("--version"))?;
    assert_eq!(
        stdout(&version).trim(),
        format!("omnipanel {}", env!("CARGO_PKG_VERSION"))
    );
    // The CLI's answer when no agent runs: exit 3, not an agent starting.
    let status = run_to_end(sandbox.command(&link).arg("status").stdin(Stdio::null()))?;
    assert_eq!(status.status.code(), Some(3), "{}", stderr(&status));

    let readelf = std::process::Command::new("readelf")
        .arg("--dynamic")
        .arg(binary("omnipanel-agent"))
        .output()?;
    assert!(readelf.status.success(), "readelf failed");
    let needed = String::from_utf8_lossy(&readelf.stdout);
    for gui in [
        "libgtk",
        "libgdk",
        "libX11",
        "libxcb",
        "libwayland",
        "libEGL",
        "libGL",
    ] {
        assert!(!needed.contains(gui), "the agent links {gui}:\n{needed}");
    }
    Ok(())
}
