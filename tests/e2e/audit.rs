//! The activity log end to end: a real agent records the owner's changes
//! with their target and outcome, a refused call of a client that was
//! never admitted with its reason and its process, a token client's file
//! reads as one counted row; the rows survive a restart, and `omnipanel
//! audit` lists them (`--json`) and follows new ones (`--follow`).

use std::{path::Path, time::Instant};

use omnipanel_client::{Client, Credential, proto::v1 as pb};
use omnipanel_tests::{PATIENCE, Sandbox, TestResult, projects::open_project, stdout};
use tonic::Code;

use crate::agent_core::create_token;

/// The log's entries (newest first) once `done` holds for them, polling
/// ListAudit: rows are written off the request path, shortly after the
/// call.
async fn entries_when(
    client: &Client,
    what: &str,
    done: impl Fn(&[pb::AuditEntry]) -> bool,
) -> TestResult<Vec<pb::AuditEntry>> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let entries = client
            .agent()
            .list_audit(pb::ListAuditRequest {
                page_size: 1000,
                ..Default::default()
            })
            .await?
            .into_inner()
            .entries;
        if done(&entries) {
            return Ok(entries);
        }
        if Instant::now() > deadline {
            return Err(format!("the activity log never showed {what}: {entries:#?}").into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn write_file(client: &Client, project: &str, path: &str) -> Result<(), tonic::Status> {
    client
        .files()
        .write_file(pb::WriteFileRequest {
            project: project.into(),
            path: path.into(),
            content: b"the text itself is never logged".to_vec(),
            create_parents: true,
            ..Default::default()
        })
        .await?;
    Ok(())
}

async fn read_file(client: &Client, project: &str, path: &str) -> Result<(), tonic::Status> {
    let mut stream = client
        .files()
        .read_file(pb::ReadFileRequest {
            project: project.into(),
            path: path.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    while stream.message().await?.is_some() {}
    Ok(())
}

fn project(sandbox: &Sandbox) -> TestResult<std::path::PathBuf> {
    let root = sandbox.project_dir("logged");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("notes.txt"), "private notes\n")?;
    Ok(std::fs::canonicalize(root)?)
}

fn folder(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test]
async fn the_log_records_changes_refusals_and_counted_reads_and_survives_a_restart() -> TestResult {
    let sandbox = Sandbox::new()?;
    let root = project(&sandbox)?;
    let mut agent = sandbox.start_agent().await?;
    let owner = agent.client().await?;
    let id = open_project(&owner, &root).await?;

    // The owner's change: who, what, on what, and the outcome.
    write_file(&owner, &id, "new.txt").await?;
    // The owner's reads are not logged (only other clients' are).
    read_file(&owner, &id, "notes.txt").await?;

    // A client that was never admitted is refused, and that is logged.
    let stranger = Client::connect_as(sandbox.target(), Credential::Nothing).await?;
    let refused = write_file(&stranger, &id, "intruder.txt")
        .await
        .expect_err("a client never admitted may not write");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");

    // A token's reads are counted, not listed one by one.
    let secret = create_token(&owner, "reader", pb::Scope::Read).await?;
    let reader = Client::connect_as(sandbox.target(), Credential::Bearer(secret)).await?;
    for _ in 0..3 {
        read_file(&reader, &id, "notes.txt").await?;
    }

    let is_read = |e: &&pb::AuditEntry| e.method == "FileService/ReadFile";
    let entries = entries_when(&owner, "the refusal and three reads", |entries| {
        entries.iter().any(|e| e.outcome == "NOT_ADMITTED")
            && entries.iter().filter(is_read).map(|e| e.count).sum::<u32>() == 3
    })
    .await?;

    let written = entries
        .iter()
        .find(|e| e.method == "FileService/WriteFile" && e.client_id == "owner")
        .ok_or("the owner's write is not in the log")?;
    assert_eq!(written.outcome, "ok");
    assert_eq!(written.project, folder(&root));
    assert_eq!(
        written.target,
        format!("project={} path=new.txt", folder(&root))
    );
    assert!(written.peer_pid > 0, "{written:?}");

    let refusal = entries
        .iter()
        .find(|e| e.outcome == "NOT_ADMITTED")
        .ok_or("no refusal")?;
    assert_eq!(refusal.method, "FileService/WriteFile");
    assert_eq!(refusal.client_id, "anonymous");
    // The caller is this test process, read from the kernel.
    assert_eq!(refusal.peer_pid, std::process::id());
    assert!(!refusal.peer_executable.is_empty(), "{refusal:?}");

    let reads: Vec<&pb::AuditEntry> = entries.iter().filter(is_read).collect();
    assert!(
        reads.iter().all(|e| e.client_name == "reader"),
        "only the token's reads, not the owner's: {reads:#?}"
    );
    // Three reads in at most two rows (two only when a minute turned
    // between them).
    assert!(reads.len() <= 2, "{reads:#?}");
    assert!(
        reads
            .iter()
            .all(|e| e.target == format!("project={}", folder(&root)))
    );
    assert!(
        !entries.iter().any(|e| e.target.contains("never logged")),
        "contents never reach the log"
    );

    // `omnipanel audit --json`: one entry per line.
    let listed = sandbox.cli(&["audit", "--json"])?;
    assert!(listed.status.success(), "{listed:?}");
    let lines: Vec<serde_json::Value> = stdout(&listed)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(
        lines
            .iter()
            .any(|e| e["method"] == "FileService/WriteFile" && e["outcome"] == "NOT_ADMITTED"),
        "{lines:#?}"
    );
    let only_refusals = sandbox.cli(&["audit", "--json", "--outcome", "not_admitted"])?;
    assert_eq!(
        stdout(&only_refusals).lines().count(),
        1,
        "{only_refusals:?}"
    );

    // The rows are in state.db: a restarted agent still lists them.
    let before: Vec<i64> = entries.iter().map(|e| e.id).collect();
    agent.stop().await?;
    let agent = sandbox.start_agent().await?;
    let owner = agent.client().await?;
    let after = entries_when(&owner, "the rows of the previous run", |entries| {
        before.iter().all(|id| entries.iter().any(|e| e.id == *id))
    })
    .await?;
    assert!(after.iter().any(|e| e.outcome == "NOT_ADMITTED"));
    Ok(())
}

#[tokio::test]
async fn audit_follow_prints_new_entries() -> TestResult {
    let sandbox = Sandbox::new()?;
    let root = project(&sandbox)?;
    let agent = sandbox.start_agent().await?;
    let owner = agent.client().await?;
    let id = open_project(&owner, &root).await?;

    let follow = sandbox.cli_follow(&["audit", "--follow"])?;
    // The header comes after the subscription is open.
    follow.line_matching("the table's header", |l| l.starts_with("TIME"))?;
    write_file(&owner, &id, "followed.txt").await?;
    let line = follow.line_matching("the new entry", |l| l.contains("FileService/WriteFile"))?;
    assert!(line.contains("path=followed.txt"), "{line}");
    assert!(line.contains("ok"), "{line}");
    Ok(())
}

#[tokio::test]
async fn only_the_owner_reads_the_log_and_bad_pages_are_named() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let owner = agent.client().await?;
    let secret = create_token(&owner, "admin", pb::Scope::Admin).await?;
    let admin = Client::connect_as(sandbox.target(), Credential::Bearer(secret)).await?;
    let refused = admin
        .agent()
        .list_audit(pb::ListAuditRequest::default())
        .await
        .expect_err("owner only");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let bad = owner
        .agent()
        .list_audit(pb::ListAuditRequest {
            page_token: "tomorrow".into(),
            ..Default::default()
        })
        .await
        .expect_err("not a page token");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert!(bad.message().contains("page_token"), "{}", bad.message());
    Ok(())
}
