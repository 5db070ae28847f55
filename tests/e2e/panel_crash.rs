//! Crash reports of the tray and the panel: a panic in either program
//! writes a report into the agent's crash folder, and the agent's
//! ListCrashReports (and `omnipanel crashes`) lists it with the process
//! that crashed, beside the agent's own.

use omnipanel_client::proto::v1 as pb;
use omnipanel_tests::{Sandbox, TestResult, binary, stderr, stdout};

/// Run `program --crash-test` in the sandbox; it must fail.
fn crash(sandbox: &Sandbox, program: &str) -> TestResult {
    let output = sandbox
        .command(&binary(program))
        .arg("--crash-test")
        // No display: the panic comes before any window or tray is made.
        .env_remove("DISPLAY")
        .output()?;
    assert!(!output.status.success(), "{program} did not fail");
    assert!(
        stderr(&output).contains("crash report written to"),
        "{}",
        stderr(&output)
    );
    Ok(())
}

#[tokio::test]
async fn a_panic_in_the_panel_or_the_tray_is_listed_with_its_process() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    crash(&sandbox, "omnipanel-panel")?;
    crash(&sandbox, "omnipanel-tray")?;
    let reports = agent
        .client()
        .await?
        .agent()
        .list_crash_reports(pb::ListCrashReportsRequest {})
        .await?
        .into_inner()
        .reports;
    let mut processes: Vec<&str> = reports.iter().map(|r| r.process.as_str()).collect();
    processes.sort_unstable();
    assert_eq!(processes, vec!["panel", "tray"], "{reports:?}");
    for report in &reports {
        let program = format!("omnipanel-{}", report.process);
        assert!(report.message.contains(&program), "{report:?}");
        assert_eq!(report.version, env!("CARGO_PKG_VERSION"), "{report:?}");
        assert_eq!(report.thread, "main", "{report:?}");
    }

    let listed = sandbox.cli(&["crashes"])?;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    for needle in [
        "panel  ",
        "tray   ",
        "omnipanel-panel --crash-test",
        "omnipanel-tray --crash-test",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    Ok(())
}
