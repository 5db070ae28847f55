//! A non-Rust client: Python grpcio discovers the agent's services through
//! reflection, checks health and calls GetInfo from reflected descriptors
//! alone, over the real socket. `scripts/test` provides the Python packages
//! (tests/python/requirements.txt) and points OMNIPANEL_TEST_PYTHON at them.
//! Reflection's descriptors are released once no reflection call has come
//! for a while, and built again by the next call.

use omnipanel_tests::{Sandbox, TestResult, eventually, stderr, stdout};

/// The Python with grpcio, or an error saying how to get one.
fn python() -> TestResult<String> {
    let python = std::env::var("OMNIPANEL_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import grpc, grpc_reflection, grpc_health"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        return Err(format!(
            "{python} lacks grpcio: run scripts/test, or `pip install -r tests/python/requirements.txt` and set OMNIPANEL_TEST_PYTHON"
        )
        .into());
    }
    Ok(python)
}

/// Run check_agent.py (both reflection versions, health, GetInfo) against
/// the sandbox's agent; its report.
fn check_agent(python: &str, sandbox: &Sandbox) -> TestResult<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/check_agent.py");
    let output = std::process::Command::new(python)
        .arg(script)
        .arg(sandbox.socket())
        .output()?;
    assert!(output.status.success(), "{}", stderr(&output));
    Ok(serde_json::from_str(&stdout(&output))?)
}

#[tokio::test]
async fn python_grpcio_lists_services_checks_health_and_calls_get_info() -> TestResult {
    let python = python()?;
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let report = check_agent(&python, &sandbox)?;
    let services = report["services"].as_array().ok_or("no services")?;
    for expected in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
        "omnipanel.v1.AgentService",
        "omnipanel.v1.SystemService",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} missing: {services:?}"
        );
    }
    assert_eq!(report["services_v1"], report["services"]);
    assert_eq!(report["health"]["(server)"], "SERVING");
    assert_eq!(report["health"]["omnipanel.v1.AgentService"], "SERVING");
    assert_eq!(report["pid"], agent.pid());
    assert_eq!(report["protocol_version"], 1);
    assert_eq!(report["version_header"], env!("CARGO_PKG_VERSION"));
    Ok(())
}

#[tokio::test]
async fn reflection_is_released_when_idle_and_built_again_by_the_next_call() -> TestResult {
    let python = python()?;
    let sandbox = Sandbox::new()?;
    let _agent = sandbox
        .start_agent_with(&[("OMNIPANEL_TEST_LAZY_IDLE_MS".to_owned(), "300".to_owned())])
        .await?;
    let log = sandbox.agent_log();
    let released = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("released a lazily built service")
            .count()
    };
    assert_eq!(released(), 0, "released before any reflection call");
    // Both versions (check_agent.py asks v1alpha and v1) are released...
    let report = check_agent(&python, &sandbox)?;
    assert_eq!(report["services_v1"], report["services"]);
    eventually("both reflection services released", || released() == 2).await?;
    // ...and answer in full when asked again, then are released again.
    let again = check_agent(&python, &sandbox)?;
    assert_eq!(again["services"], report["services"]);
    assert_eq!(again["services_v1"], report["services"]);
    eventually("both released a second time", || released() == 4).await?;
    Ok(())
}
