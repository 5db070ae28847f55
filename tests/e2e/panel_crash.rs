//! Crash reports of the tray and the panel: a panic in either program
//! writes a report into the agent's crash folder, and the agent's
//! ListCrashReports (and `omnipanel crashes`) lists it with the process
//! that crashed, beside the agent's own; the panel's Logs tab lists them
//! and copies a bug report.

use omnipanel_client::proto::v1 as pb;
use omnipanel_tests::{Sandbox, TestResult, binary, stderr, stdout};
use omnipanel_tray::panel::panel_ui::Tab;

use crate::panel::{Live, click, live, shows, wait_for};

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
    let mut agent = sandbox.start_agent().await?;
    crash(&sandbox, "omnipanel-panel")?;
    crash(&sandbox, "omnipanel-tray")?;
    // Their reports are not the agent's: its next start is not a
    // "previous run crashed".
    agent.stop().await?;
    let agent = sandbox.start_agent().await?;
    assert!(!agent.client().await?.info().previous_run_crashed);
    let log = std::fs::read_to_string(sandbox.agent_log())?;
    assert!(!log.contains("the previous run crashed"), "{log}");
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

#[test]
fn the_logs_tab_lists_a_panel_crash_and_copies_a_bug_report() -> TestResult {
    let Live {
        setup,
        mut harness,
        runtime: _runtime,
    } = live(Tab::Overview)?;
    crash(&setup.sandbox, "omnipanel-panel")?;
    // The tab reads the reports when it comes into view.
    click(&mut harness, "Logs");
    let message = "crash test requested with `omnipanel-panel --crash-test`";
    wait_for(
        &mut harness,
        "the panel's crash report in the Logs tab",
        |h| shows(h, message),
    )?;
    let reports = harness
        .state()
        .state
        .crash_reports
        .clone()
        .ok_or("no crash reports read")?;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].process, "panel");
    assert!(shows(&harness, "panel"), "the process column is missing");

    click(&mut harness, "Copy bug report");
    wait_for(&mut harness, "the bug report to be copied", |h| {
        h.state()
            .state
            .notice("bugreport")
            .is_some_and(|n| n.message.starts_with("Bug report copied ("))
    })?;
    let state = &harness.state().state;
    assert_eq!(state.bug_reports_made, 1);
    // What `omnipanel bugreport` collects: the summary, the settings, the
    // logs and the crash report just listed.
    let text = &state.bug_report;
    for needle in [
        "==> summary.txt <==\nomnipanel (panel) ",
        "==> config.toml <==",
        "==> logs/agent.log <==",
        "==> crashes/crash-",
        "process: panel",
        message,
    ] {
        assert!(
            text.contains(needle),
            "missing {needle:?} in the bug report"
        );
    }
    Ok(())
}
