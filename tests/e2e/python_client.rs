//! A non-Rust client: Python grpcio discovers the agent's services through
//! reflection, checks health and calls GetInfo from reflected descriptors
//! alone, over the real socket. `scripts/test` provides the Python packages
//! (tests/python/requirements.txt) and points OMNIPANEL_TEST_PYTHON at them.

use omnipanel_tests::{Sandbox, TestResult, stderr, stdout};

#[tokio::test]
async fn python_grpcio_lists_services_checks_health_and_calls_get_info() -> TestResult {
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
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/check_agent.py");
    let output = std::process::Command::new(&python)
        .arg(script)
        .arg(sandbox.socket())
        .output()?;
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_str(&stdout(&output))?;
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
