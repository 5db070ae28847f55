//! `omnipanel mcp` end to end, driven by the official MCP Python SDK from
//! PyPI (tests/python/mcp_client.py) the way an AI coding agent drives it:
//! the server asks for its own grant and a tool says what the user must do
//! until the user approves; then files, Git, models and the machine's
//! status work inside the project and nowhere else; a destructive tool
//! waits for the user's confirmation and honours a refusal; a restarted
//! server reuses its token without asking again; and a server asking for
//! fewer scopes offers fewer tools.

use omnipanel_client::proto::v1::{self as pb, model_service_client::ModelServiceClient};
use omnipanel_tests::{TestResult, binary, stderr, stdout};

use crate::{
    git::{commit_file, git, init_repo, set_identity},
    ollama::{is, pull_to_end, setup, wait_status},
};

/// The Python interpreter with the MCP SDK (scripts/test provides it).
fn python() -> String {
    std::env::var("OMNIPANEL_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

#[tokio::test]
async fn an_ai_agent_works_in_the_project_through_mcp_under_a_grant_the_user_approves() -> TestResult
{
    let python = python();
    let probe = std::process::Command::new(&python)
        .args(["-c", "import mcp, anyio"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        return Err(format!(
            "{python} lacks the MCP SDK: run scripts/test, or `pip install -r tests/python/requirements.txt` and set OMNIPANEL_TEST_PYTHON"
        )
        .into());
    }
    let setup = setup(&[], "").await?;
    let sandbox = &setup.sandbox;
    wait_status(
        &setup.client,
        "Ollama running",
        is(pb::ServerState::Running),
    )
    .await?;
    pull_to_end(&setup.client, "test-small").await?;
    ModelServiceClient::with_interceptor(setup.client.channel(), setup.client.interceptor())
        .set_default_model(pb::SetDefaultModelRequest {
            model: "test-small".into(),
        })
        .await?;

    set_identity(sandbox)?;
    let dir = init_repo(sandbox, "mcp-project")?;
    commit_file(
        sandbox,
        &dir,
        "README.md",
        "# Demo\nthe needle is here\n",
        "First",
    )?;
    for folder in ["doomed", "kept"] {
        std::fs::create_dir_all(dir.join(folder))?;
        std::fs::write(dir.join(folder).join("file.txt"), folder)?;
    }
    git(sandbox, &dir, &["add", "-A"])?;
    git(sandbox, &dir, &["commit", "-q", "-m", "Folders"])?;
    let outside = dir.parent().ok_or("no parent")?.join("outside.txt");
    std::fs::write(&outside, "not for the AI agent")?;

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/mcp_client.py");
    let output = sandbox
        .command(std::path::Path::new(&python))
        .arg(script)
        .arg(binary("omnipanel"))
        .arg(&dir)
        .output()?;
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    let report: serde_json::Value = serde_json::from_str(stdout(&output).trim())?;
    let text = |step: &str| report[step]["text"].as_str().unwrap_or_default().to_owned();
    let ok = |step: &str| {
        assert_eq!(report[step]["error"], false, "{step}: {}", report[step]);
        text(step)
    };

    let tools: Vec<&str> = report["tools"]
        .as_array()
        .ok_or("no tools")?
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    for tool in [
        "chat",
        "delete_path",
        "find_files",
        "git_commit",
        "git_diff",
        "git_status",
        "list_directory",
        "list_models",
        "read_file",
        "search_text",
        "system_status",
        "write_file",
    ] {
        assert!(tools.contains(&tool), "{tool} missing from {tools:?}");
    }
    let read_only = report["read_only"].to_string();
    assert!(read_only.contains("read_file") && !read_only.contains("write_file"));

    // Before the user answers, the tool says what to do, and the request
    // names this project only.
    assert_eq!(report["before_approval"]["error"], true);
    assert!(
        text("before_approval").contains("omnipanel clients approve"),
        "{}",
        text("before_approval")
    );
    assert_eq!(report["request"]["name"], "MCP server for mcp-project");
    assert!(
        report["request"]["projects"]
            .to_string()
            .contains("mcp-project"),
        "{}",
        report["request"]
    );

    assert!(
        ok("git_status").contains("On main"),
        "{}",
        text("git_status")
    );
    let listing = ok("list_directory");
    assert!(
        listing.contains("doomed/") && listing.contains("README.md"),
        "{listing}"
    );
    assert_eq!(ok("read_file"), "# Demo\nthe needle is here\n");
    assert!(ok("find_files").contains("README.md"));
    assert!(ok("search_text").contains("README.md:2: the needle is here"));
    assert!(ok("write_file").contains("notes/new.txt"));
    assert_eq!(
        std::fs::read_to_string(dir.join("notes/new.txt"))?,
        "written by MCP\n"
    );
    assert!(ok("git_commit").contains("Add notes from MCP"));
    assert_eq!(
        git(sandbox, &dir, &["log", "-1", "--format=%s"])?,
        "Add notes from MCP"
    );
    assert!(ok("list_models").contains("test-small"));
    assert!(!ok("chat").is_empty());
    assert!(
        ok("system_status").contains("Ollama"),
        "{}",
        text("system_status")
    );

    // Outside the project: refused by the agent's sandbox, nothing read.
    assert_eq!(report["escape"]["error"], true);
    assert!(!text("escape").contains("not for the AI agent"));

    // Destructive acts wait for the user: allowed goes through, denied
    // changes nothing and says so.
    ok("delete_allowed");
    assert!(!dir.join("doomed").exists());
    assert_eq!(report["delete_denied"]["error"], true);
    assert!(
        text("delete_denied").contains("did not allow"),
        "{}",
        text("delete_denied")
    );
    assert!(dir.join("kept/file.txt").exists());

    // A restarted server reuses its token; nothing new is asked.
    assert!(ok("second_git_status").contains("On main"));
    assert_eq!(report["pending_after_second"], serde_json::json!([]));

    let reader: Vec<&str> = report["read_only_tools"]
        .as_array()
        .ok_or("no read-only tools")?
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert!(reader.contains(&"read_file") && !reader.contains(&"write_file"));
    assert!(!reader.contains(&"chat"), "{reader:?}");
    Ok(())
}
