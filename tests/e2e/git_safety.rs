//! What a repository's own files may not make the agent do, end to end:
//! run a credential helper named in `.git/config` (against a loopback
//! server that asks for credentials, with a helper in the user's own
//! config as the proof that helpers are asked at all), send `git.token`
//! over plain http or to a host not listed for it (the server records the
//! Authorization headers it gets), use a repository above the project or
//! one whose Git folder or work tree is elsewhere (`git worktree add`,
//! `core.worktree`), or let FileService change anything inside `.git`.

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{PATIENCE, Sandbox, TestResult};
use tonic::Code;

use crate::git::{commit_file, git, init_repo, open, set_identity};

/// The ErrorInfo reason an agent error carries.
fn reason(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// Authorization headers a test server was sent.
pub(crate) type Seen = Arc<Mutex<Vec<String>>>;

/// A "git server" on the loopback address `ip` that answers every request
/// with a 401 asking for Basic credentials, recording the Authorization
/// headers it gets in `seen`. Returns its `ip:port`.
fn credential_asking_server(ip: &str, seen: &Seen) -> TestResult<String> {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind((ip, 0))?;
    let address = listener.local_addr()?;
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let Ok(read_half) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(read_half);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if line.to_ascii_lowercase().starts_with("authorization:")
                    && let Ok(mut seen) = record.lock()
                {
                    seen.push(line.trim().to_owned());
                }
                line.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    Ok(address.to_string())
}

/// Fetch `remote` to its end; the error it ended with.
pub(crate) async fn fetch_error(
    client: &Client,
    project: &str,
    remote: &str,
) -> TestResult<tonic::Status> {
    let request = pb::FetchRequest {
        project: project.into(),
        remote: remote.into(),
    };
    let mut api = client.git();
    let run = async move {
        let mut stream = api.fetch(request).await?.into_inner();
        while stream.message().await?.is_some() {}
        Ok::<_, tonic::Status>(())
    };
    Ok(tokio::time::timeout(PATIENCE, run)
        .await?
        .err()
        .ok_or("the fetch succeeded")?)
}

/// Push the current branch to `remote`; the error it ended with.
pub(crate) async fn push_error(
    client: &Client,
    project: &str,
    remote: &str,
) -> TestResult<tonic::Status> {
    let request = pb::PushRequest {
        project: project.into(),
        remote: remote.into(),
        branch: String::new(),
        set_upstream: false,
        force: false,
    };
    let mut api = client.git();
    let run = async move {
        let mut stream = api.push(request).await?.into_inner();
        while stream.message().await?.is_some() {}
        Ok::<_, tonic::Status>(())
    };
    Ok(tokio::time::timeout(PATIENCE, run)
        .await?
        .err()
        .ok_or("the push succeeded")?)
}

/// `path` in single quotes for a shell command line (the sandbox's paths
/// hold no quote of their own).
pub(crate) fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[tokio::test]
async fn credential_helpers_run_from_the_users_config_never_from_the_repositorys() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let users_marker = sandbox.root().join("users-helper-ran");
    let gitconfig = sandbox.root().join("home/.gitconfig");
    let mut global = std::fs::read_to_string(&gitconfig)?;
    global.push_str(&format!(
        "[credential]\n\thelper = \"!f() {{ touch {}; }}; f\"\n",
        quoted(&users_marker)
    ));
    std::fs::write(&gitconfig, global)?;
    sandbox.write_config("[git]\ntimeout = \"10s\"\n")?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;

    let server = credential_asking_server("127.0.0.1", &Seen::default())?;
    let dir = init_repo(&sandbox, "helpers")?;
    commit_file(&sandbox, &dir, "a.txt", "one\n", "first")?;
    git(
        &sandbox,
        &dir,
        &[
            "remote",
            "add",
            "origin",
            &format!("http://{server}/team/repo.git"),
        ],
    )?;
    let shell_marker = sandbox.root().join("repository-shell-helper-ran");
    git(
        &sandbox,
        &dir,
        &[
            "config",
            "credential.helper",
            &format!("!f() {{ touch {}; }}; f", quoted(&shell_marker)),
        ],
    )?;
    let project = open(&client, &dir).await?;

    let err = fetch_error(&client, &project, "origin").await?;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        !shell_marker.exists(),
        "the repository's `!command` credential helper ran"
    );
    assert!(
        users_marker.exists(),
        "the user's own credential helper was not asked: the test proves nothing"
    );

    // A helper given as a program path, also only in the repository.
    let program_marker = sandbox.root().join("repository-program-helper-ran");
    let program = sandbox.root().join("helper.sh");
    std::fs::write(
        &program,
        format!("#!/bin/sh\ntouch {}\n", quoted(&program_marker)),
    )?;
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )?;
    git(
        &sandbox,
        &dir,
        &[
            "config",
            "credential.helper",
            &program.display().to_string(),
        ],
    )?;
    let err = push_error(&client, &project, "origin").await?;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = fetch_error(&client, &project, "origin").await?;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        !program_marker.exists(),
        "the repository's credential helper program ran"
    );
    assert!(!shell_marker.exists());
    Ok(())
}

#[tokio::test]
async fn the_token_is_never_sent_over_http_nor_to_unlisted_hosts() -> TestResult {
    let seen = Seen::default();
    let listed_server = credential_asking_server("127.0.0.1", &seen)?;
    // Another loopback address (Linux answers all of 127/8 on lo), so
    // another host than the listed one.
    let unlisted_server = credential_asking_server("127.0.0.2", &seen)?;
    // Listed, but plain http: refused, naming the URL. Not listed:
    // withheld.
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    sandbox.write_config(
        "[git]\ntimeout = \"10s\"\ntoken = \"s3cret-token\"\ntoken_hosts = [\"127.0.0.1\"]\n",
    )?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "tokened")?;
    commit_file(&sandbox, &dir, "a.txt", "one\n", "first")?;
    let listed = format!("http://{listed_server}/team/repo.git");
    git(&sandbox, &dir, &["remote", "add", "listed", &listed])?;
    git(
        &sandbox,
        &dir,
        &[
            "remote",
            "add",
            "unlisted",
            &format!("http://{unlisted_server}/team/repo.git"),
        ],
    )?;
    let project = open(&client, &dir).await?;
    let err = fetch_error(&client, &project, "listed").await?;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert_eq!(reason(&err), "GIT_AUTH", "{err:?}");
    assert!(
        err.message().contains("never sent over plain http") && err.message().contains(&listed),
        "{err:?}"
    );
    let err = push_error(&client, &project, "listed").await?;
    assert!(err.message().contains("plain http"), "{err:?}");
    let err = fetch_error(&client, &project, "unlisted").await?;
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(
        err.message().contains("127.0.0.2") && err.message().contains("not in git.token_hosts"),
        "{err:?}"
    );

    // A token with no hosts listed goes nowhere, and the error and the
    // start-up log say which key to set.
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    sandbox.write_config("[git]\ntimeout = \"10s\"\ntoken = \"s3cret-token\"\n")?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "no-hosts")?;
    commit_file(&sandbox, &dir, "a.txt", "one\n", "first")?;
    git(&sandbox, &dir, &["remote", "add", "origin", &listed])?;
    let project = open(&client, &dir).await?;
    let err = fetch_error(&client, &project, "origin").await?;
    assert!(
        err.message()
            .contains("add \"127.0.0.1\" to git.token_hosts"),
        "{err:?}"
    );
    let log = std::fs::read_to_string(sandbox.agent_log()).unwrap_or_default() + &agent.stderr();
    assert!(
        log.contains("git.token_hosts lists no hosts"),
        "no start-up warning: {log}"
    );

    let sent = seen.lock().map_err(|_| "poisoned")?.clone();
    assert!(sent.is_empty(), "credentials were sent: {sent:?}");
    Ok(())
}

#[tokio::test]
async fn a_repository_above_the_project_or_reaching_outside_it_is_not_used() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let status = |project: String| {
        let mut api = client.git();
        async move {
            api.get_status(pb::GetStatusRequest { project })
                .await
                .err()
                .ok_or("GetStatus succeeded")
        }
    };

    // A project in a subfolder of a repository.
    let outer = init_repo(&sandbox, "outer")?;
    commit_file(&sandbox, &outer, "a.txt", "one\n", "first")?;
    std::fs::create_dir_all(outer.join("sub"))?;
    let sub = open(&client, &outer.join("sub")).await?;
    let err = status(sub).await?;
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "NOT_A_REPOSITORY", "{err:?}");
    assert!(
        err.message()
            .contains("open the repository's root folder as the project"),
        "{err:?}"
    );

    // A linked worktree: its .git is a file pointing into outer/.git.
    let linked = sandbox.root().join("linked");
    git(
        &sandbox,
        &outer,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "side",
            &linked.display().to_string(),
        ],
    )?;
    let linked = open(&client, &linked).await?;
    let err = status(linked).await?;
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "REPOSITORY_OUTSIDE_PROJECT", "{err:?}");
    assert!(err.message().contains("Git folder"), "{err:?}");

    // core.worktree pointing at another folder.
    let elsewhere = sandbox.root().join("elsewhere");
    std::fs::create_dir_all(&elsewhere)?;
    std::fs::write(elsewhere.join("private.txt"), "private\n")?;
    let moved = init_repo(&sandbox, "moved")?;
    git(
        &sandbox,
        &moved,
        &["config", "core.worktree", &elsewhere.display().to_string()],
    )?;
    let moved = open(&client, &moved).await?;
    let err = status(moved).await?;
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert_eq!(reason(&err), "REPOSITORY_OUTSIDE_PROJECT", "{err:?}");
    assert!(err.message().contains("work tree"), "{err:?}");

    // The repository's own root works.
    let outer = open(&client, &outer).await?;
    client
        .git()
        .get_status(pb::GetStatusRequest { project: outer })
        .await?;
    Ok(())
}

#[tokio::test]
async fn file_service_reads_inside_git_but_never_changes_it() -> TestResult {
    let sandbox = Sandbox::new()?;
    set_identity(&sandbox)?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let dir = init_repo(&sandbox, "guarded")?;
    commit_file(&sandbox, &dir, "a.txt", "one\n", "first")?;
    let config_before = std::fs::read(dir.join(".git/config"))?;
    let project = open(&client, &dir).await?;
    let mut files = client.files();

    let refused = |result: Result<(), tonic::Status>, what: &str| -> TestResult {
        let err = result.err().ok_or(format!("{what}: allowed"))?;
        assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
        assert_eq!(reason(&err), "INSIDE_GIT_FOLDER", "{what}: {err:?}");
        assert!(
            err.message().contains(".git") && err.message().contains("GitService"),
            "{what}: {err:?}"
        );
        Ok(())
    };
    let write = |path: &str| pb::WriteFileRequest {
        project: project.clone(),
        path: path.into(),
        content: b"[core]\n\tfsmonitor = touch /tmp/omnipanel-pwned\n".to_vec(),
        expected_version: String::new(),
        create_only: false,
        create_parents: true,
    };
    refused(
        files.write_file(write(".git/config")).await.map(drop),
        "write .git/config",
    )?;
    refused(
        files
            .write_file(write(".git/hooks/pre-commit"))
            .await
            .map(drop),
        "write a hook",
    )?;
    refused(
        files
            .write_file(write("vendor/lib/.git/config"))
            .await
            .map(drop),
        "write a nested repository's config",
    )?;
    refused(
        files
            .create_directory(pb::CreateDirectoryRequest {
                project: project.clone(),
                path: ".git/hooks".into(),
            })
            .await
            .map(drop),
        "create a folder",
    )?;
    refused(
        files
            .r#move(pb::MoveRequest {
                project: project.clone(),
                from: "a.txt".into(),
                to: ".git/hooks/post-checkout".into(),
                overwrite: true,
            })
            .await
            .map(drop),
        "move into",
    )?;
    refused(
        files
            .r#move(pb::MoveRequest {
                project: project.clone(),
                from: ".git/config".into(),
                to: "config".into(),
                overwrite: false,
            })
            .await
            .map(drop),
        "move out of",
    )?;
    refused(
        files
            .copy(pb::CopyRequest {
                project: project.clone(),
                from: "a.txt".into(),
                to: ".git/hooks/pre-push".into(),
                overwrite: pb::OverwritePolicy::Replace.into(),
            })
            .await
            .map(drop),
        "copy into",
    )?;
    refused(
        files
            .delete(pb::DeleteRequest {
                project: project.clone(),
                path: ".git/config".into(),
                permanent: true,
                recursive: false,
            })
            .await
            .map(drop),
        "delete",
    )?;
    refused(
        files
            .apply_batch(pb::ApplyBatchRequest {
                project: project.clone(),
                operations: vec![pb::BatchOperation {
                    operation: Some(pb::batch_operation::Operation::Write(pb::BatchWrite {
                        path: ".git/hooks/pre-commit".into(),
                        content: b"#!/bin/sh\n".to_vec(),
                        expected_version: String::new(),
                        create_only: false,
                    })),
                }],
            })
            .await
            .map(drop),
        "a batch",
    )?;
    assert_eq!(std::fs::read(dir.join(".git/config"))?, config_before);
    assert!(!dir.join(".git/hooks/pre-commit").exists());
    assert!(dir.join("a.txt").exists());

    // Reading stays allowed.
    let mut stream = files
        .read_file(pb::ReadFileRequest {
            project: project.clone(),
            path: ".git/config".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut read = Vec::new();
    while let Some(chunk) = stream.message().await? {
        read.extend_from_slice(&chunk.data);
    }
    assert_eq!(read, config_before);
    Ok(())
}
