//! Client admission from the command line, end to end: `omnipanel clients
//! request` (no credential at all) waits while the owner's `clients
//! pending` shows it with its code and the real program asking, `clients
//! approve --scopes read` narrows it and the token printed works with just
//! that scope; `clients ls` lists the client and `clients revoke` ends it.
//! A denied request exits 4 with the denial, an unanswered one 5; and a CLI
//! that cannot read the owner credential is told why and how to get access.

use std::{
    path::PathBuf,
    process::{Child, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use omnipanel_tests::{PATIENCE, Sandbox, TestResult, binary, eventually, stderr, stdout};

/// A `clients request` running in the background, its output in files (a
/// pipe nobody reads could fill and stall it). Killed when dropped.
struct Asking {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// How a `clients request` ended.
struct Answered {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Asking {
    fn start(sandbox: &Sandbox, args: &[&str]) -> TestResult<Self> {
        let name = format!("request-{}", args.join("-").replace(['/', ' '], "_"));
        let stdout = sandbox.root().join(format!("{name}.out"));
        let stderr = sandbox.root().join(format!("{name}.err"));
        let child = sandbox
            .command(&binary("omnipanel"))
            .args(["clients", "request"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout)?)
            .stderr(std::fs::File::create(&stderr)?)
            .spawn()?;
        Ok(Self {
            child,
            stdout,
            stderr,
        })
    }

    /// Wait (bounded by [`PATIENCE`]) for it to end.
    async fn finish(mut self) -> TestResult<Answered> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Answered {
                    status,
                    stdout: std::fs::read_to_string(&self.stdout)?,
                    stderr: std::fs::read_to_string(&self.stderr)?,
                });
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "`clients request` still waits after {} s; stderr:\n{}",
                    PATIENCE.as_secs(),
                    std::fs::read_to_string(&self.stderr).unwrap_or_default()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Asking {
    fn drop(&mut self) {
        omnipanel_tests::stop_child(&mut self.child);
    }
}

/// The pending request made by the client named `name`, once the owner's
/// `clients pending --json` lists it.
async fn pending_request(sandbox: &Sandbox, name: &str) -> TestResult<serde_json::Value> {
    let mut found = None;
    eventually(&format!("a pending request from {name:?}"), || {
        let Ok(output) = sandbox.cli(&["--json", "clients", "pending"]) else {
            return false;
        };
        let listed: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap_or_default();
        found = listed["requests"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|request| request["clientName"] == name)
            .cloned();
        found.is_some()
    })
    .await?;
    found.ok_or_else(|| "no request".into())
}

fn text(value: &serde_json::Value) -> TestResult<String> {
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("not a string: {value}").into())
}

#[tokio::test]
async fn a_request_approved_narrower_gets_a_token_that_works_until_revoked() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let asking = Asking::start(
        &sandbox,
        &[
            "--name",
            "nightly backup",
            "--scopes",
            "read,infer",
            "--reason",
            "copy the projects",
            "--for",
            "1h",
        ],
    )?;
    let request = pending_request(&sandbox, "nightly backup").await?;
    let id = text(&request["id"])?;
    let code = text(&request["code"])?;

    // What the owner sees: the code, the self-declared name marked as such,
    // and the program really asking (this very CLI binary).
    let shown = sandbox.cli(&["clients", "pending"])?;
    assert!(shown.status.success(), "{}", stderr(&shown));
    let shown = stdout(&shown);
    assert!(
        shown.contains(&format!("request {id}   code {code}")),
        "{shown}"
    );
    assert!(
        shown.contains("\"nightly backup\" (self-declared)"),
        "{shown}"
    );
    assert!(shown.contains("asks for  read, infer, 1 hour"), "{shown}");
    let program = binary("omnipanel").display().to_string();
    assert!(
        shown
            .lines()
            .any(|line| line.starts_with("  program") && line.contains(&program)),
        "the asking program {program} is not shown:\n{shown}"
    );
    assert!(
        shown.contains(&format!("omnipanel clients approve {id}")),
        "{shown}"
    );

    let approved = sandbox.cli(&["clients", "approve", &id, "--scopes", "read"])?;
    assert!(approved.status.success(), "{}", stderr(&approved));
    assert!(
        stdout(&approved).contains(&format!("approved request {id}")),
        "{}",
        stdout(&approved)
    );

    let answered = asking.finish().await?;
    assert_eq!(answered.status.code(), Some(0), "{}", answered.stderr);
    assert!(
        answered.stderr.contains(&format!(
            "Approve with: omnipanel clients approve {id} (code {code})"
        )),
        "{}",
        answered.stderr
    );
    // The token alone on stdout, for `TOKEN=$(omnipanel clients request ...)`.
    let token = answered.stdout.trim().to_owned();
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "{:?}",
        answered.stdout
    );

    // The token is that client: read, not infer (narrowed), not the owner.
    let env = [("OMNIPANEL_TOKEN", token.as_str())];
    let status = sandbox.cli_with_env(&["--json", "status"], &env)?;
    assert!(status.status.success(), "{}", stderr(&status));
    let info: serde_json::Value = serde_json::from_str(&stdout(&status))?;
    let scopes = info["callerScopes"].to_string();
    assert!(scopes.contains("SCOPE_READ"), "{info}");
    assert!(!scopes.contains("SCOPE_INFER"), "{info}");
    assert_ne!(info["callerIsOwner"], true, "{info}");
    let status = sandbox.cli_with_env(&["status"], &env)?;
    assert!(
        stdout(&status).contains("(a client, not the owner)"),
        "{}",
        stdout(&status)
    );
    let logs = sandbox.cli_with_env(&["logs", "-n", "1"], &env)?;
    assert!(logs.status.success(), "read works: {}", stderr(&logs));

    // The owner lists it, then revokes it by name; the token stops working.
    let listed = sandbox.cli(&["clients", "ls"])?;
    assert!(listed.status.success(), "{}", stderr(&listed));
    let row = stdout(&listed)
        .lines()
        .find(|line| line.contains("nightly backup"))
        .map(str::to_owned)
        .ok_or_else(|| format!("not listed:\n{}", stdout(&listed)))?;
    assert!(
        row.contains("read") && !row.contains("infer") && row.contains("in "),
        "{row}"
    );
    let listed = sandbox.cli(&["--json", "clients", "ls"])?;
    let listed: serde_json::Value = serde_json::from_str(&stdout(&listed))?;
    let client_id = listed["clients"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|client| {
            client["name"]
                .as_str()
                .is_some_and(|name| name.contains("nightly backup"))
        })
        .map(|client| text(&client["id"]))
        .ok_or_else(|| format!("not listed: {listed}"))??;
    let revoked = sandbox.cli(&["clients", "revoke", &client_id])?;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(
        stdout(&revoked).contains("revoked client \"nightly backup"),
        "{}",
        stdout(&revoked)
    );
    let refused = sandbox.cli_with_env(&["logs", "-n", "1"], &env)?;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let listed = sandbox.cli(&["--json", "clients", "ls"])?;
    assert!(
        !stdout(&listed).contains("nightly backup"),
        "{}",
        stdout(&listed)
    );
    Ok(())
}

#[tokio::test]
async fn a_denied_request_exits_4_with_the_denial() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let asking = Asking::start(&sandbox, &["--json", "--name", "nosy", "--scopes", "write"])?;
    let request = pending_request(&sandbox, "nosy").await?;
    let id = text(&request["id"])?;

    let denied = sandbox.cli(&["clients", "deny", &id])?;
    assert!(denied.status.success(), "{}", stderr(&denied));
    assert!(
        stdout(&denied).contains(&format!("denied access request {id} from \"nosy\"")),
        "{}",
        stdout(&denied)
    );

    let answered = asking.finish().await?;
    assert_eq!(answered.status.code(), Some(4), "{}", answered.stderr);
    assert!(
        answered
            .stderr
            .contains(&format!("omnipanel: the user denied access request {id}")),
        "{}",
        answered.stderr
    );
    // --json: the final state, and no token.
    let last: serde_json::Value = serde_json::from_str(answered.stdout.trim())?;
    assert_eq!(
        last["request"]["state"], "ACCESS_REQUEST_STATE_DENIED",
        "{last}"
    );
    assert!(last.get("token").is_none_or(|token| token == ""), "{last}");
    let pending = sandbox.cli(&["clients", "pending"])?;
    assert!(
        stdout(&pending).contains("no access requests are waiting"),
        "{}",
        stdout(&pending)
    );
    Ok(())
}

#[tokio::test]
async fn an_unanswered_request_exits_5() -> TestResult {
    let sandbox = Sandbox::new()?;
    // The shortest wait the agent allows; the test waits for the answer, not
    // for a time.
    sandbox.write_config("[access]\nrequest_timeout = \"10s\"\n")?;
    let _agent = sandbox.start_agent().await?;
    let answered = Asking::start(&sandbox, &["--name", "patient", "--scopes", "read"])?
        .finish()
        .await?;
    assert_eq!(answered.status.code(), Some(5), "{}", answered.stderr);
    assert!(
        answered.stderr.contains("expired: nobody answered in time"),
        "{}",
        answered.stderr
    );
    assert!(answered.stdout.is_empty(), "{}", answered.stdout);
    Ok(())
}

#[tokio::test]
async fn a_cli_without_the_owner_credential_is_told_how_to_get_access() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    // The agent holds the credential in memory; moved away, this CLI cannot
    // present it (as root, a file mode would not stop it reading).
    let credential = sandbox.data_dir().join("owner-credential");
    let aside = sandbox.root().join("owner-credential.aside");
    std::fs::rename(&credential, &aside)?;

    let refused = sandbox.cli(&["logs", "-n", "1"])?;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let said = stderr(&refused);
    assert!(
        said.contains(&format!(
            "this client is not the owner: the owner credential at {} does not exist",
            credential.display()
        )),
        "{said}"
    );
    assert!(said.contains("`omnipanel clients request`"), "{said}");
    assert!(said.contains("OMNIPANEL_TOKEN"), "{said}");
    let status = sandbox.cli(&["status"])?;
    assert!(status.status.success(), "{}", stderr(&status));
    assert!(
        stdout(&status).contains("status only: not admitted"),
        "{}",
        stdout(&status)
    );

    std::fs::rename(&aside, &credential)?;
    let status = sandbox.cli(&["status"])?;
    assert!(
        stdout(&status).contains("the owner (read, infer, write, admin)"),
        "{}",
        stdout(&status)
    );
    Ok(())
}
