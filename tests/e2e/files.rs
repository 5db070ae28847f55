//! Projects and files end to end: the sandbox against a corpus of hostile
//! paths (traversal, absolute paths, symlink escapes including one swapped
//! in during reads, encodings, devices), atomic writes that survive the
//! agent being killed mid-write, version conflicts, batches that undo
//! themselves, fuzzy and text search, live watching with ignores, and state
//! that survives a restart.

use std::{
    collections::HashSet,
    os::unix::fs::{PermissionsExt, symlink},
    path::{Path, PathBuf},
    time::Duration,
};

use omnipanel_client::{Authed, Client, proto::v1 as pb};
use omnipanel_proto::v1::{
    file_service_client::FileServiceClient, project_service_client::ProjectServiceClient,
};
use omnipanel_tests::{
    PATIENCE, Sandbox, TestResult,
    projects::{wait_for_index, watch_from_now},
};
use tonic::Code;

fn files(client: &Client) -> FileServiceClient<Authed> {
    client.files()
}

fn projects(client: &Client) -> ProjectServiceClient<Authed> {
    client.projects()
}

/// A project folder with a few files, opened in the agent.
async fn project(sandbox: &Sandbox, client: &Client, name: &str) -> TestResult<(String, PathBuf)> {
    let root = sandbox.project_dir(name);
    std::fs::create_dir_all(root.join("src/nested"))?;
    std::fs::write(root.join("README.md"), "# hello\n")?;
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    println!(\"needle\");\n}\n",
    )?;
    std::fs::write(root.join("src/nested/lib.rs"), "pub fn needle() {}\n")?;
    let project = projects(client)
        .open_project(pb::OpenProjectRequest {
            path: root.display().to_string(),
            name: String::new(),
        })
        .await?
        .into_inner()
        .project
        .ok_or("no project")?;
    Ok((project.id, std::fs::canonicalize(root)?))
}

async fn read_all(client: &Client, project: &str, path: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut stream = files(client)
        .read_file(pb::ReadFileRequest {
            project: project.into(),
            path: path.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await? {
        data.extend_from_slice(&chunk.data);
    }
    Ok(data)
}

async fn write(
    client: &Client,
    project: &str,
    path: &str,
    content: &[u8],
    expected: &str,
) -> Result<pb::FileInfo, tonic::Status> {
    Ok(files(client)
        .write_file(pb::WriteFileRequest {
            project: project.into(),
            path: path.into(),
            content: content.to_vec(),
            expected_version: expected.into(),
            create_only: false,
            create_parents: true,
        })
        .await?
        .into_inner()
        .info
        .unwrap_or_default())
}

#[tokio::test]
async fn a_corpus_of_hostile_paths_is_refused() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    // Things outside the project that must stay out of reach.
    let outside = sandbox.root().join("outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("secret.txt"), "TOP SECRET")?;
    let sibling = PathBuf::from(format!("{}-evil", root.display()));
    std::fs::create_dir_all(&sibling)?;
    std::fs::write(sibling.join("x"), "TOP SECRET")?;
    symlink("/etc", root.join("link_abs"))?;
    symlink("../outside", root.join("link_out"))?;
    symlink("../outside/secret.txt", root.join("secret_link"))?;
    symlink("/dev/null", root.join("devnull"))?;
    symlink("src/../../outside", root.join("sneaky"))?;
    std::fs::create_dir_all(root.join("chain"))?;
    symlink("../link_out", root.join("chain/hop"))?;
    rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )?;

    let long_name = "n".repeat(300);
    let long_path = "d/".repeat(2100);
    let abs_outside = outside.join("secret.txt").display().to_string();
    let abs_sibling = sibling.join("x").display().to_string();
    let reads: Vec<String> = vec![
        "..".into(),
        "../".into(),
        "../outside/secret.txt".into(),
        "src/../../outside/secret.txt".into(),
        "./../outside/secret.txt".into(),
        "src/nested/../../../outside/secret.txt".into(),
        "a/b/../../..".into(),
        "/etc/passwd".into(),
        "/".into(),
        "/proc/self/environ".into(),
        abs_outside.clone(),
        abs_sibling.clone(),
        "a\0b".into(),
        "\0".into(),
        "src/main.rs\0.txt".into(),
        "C:\\Windows\\system32\\config".into(),
        "c:/secret".into(),
        "\\\\server\\share\\x".into(),
        "//server/share/x".into(),
        "..\\..\\outside\\secret.txt".into(),
        long_name.clone(),
        long_path.clone(),
        "link_abs/passwd".into(),
        "link_abs/hostname".into(),
        "link_out/secret.txt".into(),
        "secret_link".into(),
        "sneaky/secret.txt".into(),
        "chain/hop/secret.txt".into(),
        "devnull".into(),
        "fifo".into(),
        "%2e%2e/outside/secret.txt".into(),
        "\u{2024}\u{2024}/outside/secret.txt".into(),
        "..;/outside/secret.txt".into(),
        "src".into(),
    ];
    for path in &reads {
        match read_all(&client, &id, path).await {
            Ok(data) => panic!(
                "read of {path:?} succeeded: {:?}",
                String::from_utf8_lossy(&data)
            ),
            Err(status) => {
                assert!(
                    !status.message().contains("TOP SECRET"),
                    "{path:?}: {status:?}"
                );
                assert_ne!(status.code(), Code::Internal, "{path:?}: {status:?}");
            }
        }
    }
    let mut refused = reads.len();

    // Mutations through the same tricks.
    let mut api = files(&client);
    for path in [
        "link_abs/owned",
        "link_out/new.txt",
        "../escape.txt",
        "/tmp/escape.txt",
        "sneaky/x",
        "chain/hop/y",
    ] {
        let result = api
            .write_file(pb::WriteFileRequest {
                project: id.clone(),
                path: path.into(),
                content: b"x".to_vec(),
                create_parents: true,
                ..Default::default()
            })
            .await;
        assert!(result.is_err(), "write to {path:?} succeeded");
        refused += 1;
    }
    for path in ["link_out/dir", "../dir", "link_abs/dir"] {
        let result = api
            .create_directory(pb::CreateDirectoryRequest {
                project: id.clone(),
                path: path.into(),
            })
            .await;
        assert!(result.is_err(), "mkdir {path:?} succeeded");
        refused += 1;
    }
    for (from, to) in [
        ("README.md", "../README.md"),
        ("README.md", "link_out/README.md"),
        ("link_out/secret.txt", "stolen.txt"),
    ] {
        let result = api
            .r#move(pb::MoveRequest {
                project: id.clone(),
                from: from.into(),
                to: to.into(),
                overwrite: false,
            })
            .await;
        assert!(result.is_err(), "move {from:?} -> {to:?} succeeded");
        refused += 1;
        let result = api
            .copy(pb::CopyRequest {
                project: id.clone(),
                from: from.into(),
                to: to.into(),
                overwrite: 0,
            })
            .await;
        assert!(result.is_err(), "copy {from:?} -> {to:?} succeeded");
        refused += 1;
    }
    for path in ["link_out/secret.txt", "../outside", "", "link_abs/passwd"] {
        let result = api
            .delete(pb::DeleteRequest {
                project: id.clone(),
                path: path.into(),
                permanent: true,
                recursive: true,
            })
            .await;
        assert!(result.is_err(), "delete {path:?} succeeded");
        refused += 1;
    }
    for path in ["link_abs", "link_out", "..", "/etc"] {
        let result = api
            .list_directory(pb::ListDirectoryRequest {
                project: id.clone(),
                path: path.into(),
                ..Default::default()
            })
            .await;
        assert!(result.is_err(), "list {path:?} succeeded");
        refused += 1;
    }
    assert!(refused >= 40, "only {refused} hostile paths tried");

    // Nothing outside changed, and the secret never leaked.
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt"))?,
        "TOP SECRET"
    );
    assert!(!outside.join("new.txt").exists() && !Path::new("/tmp/escape.txt").exists());
    assert!(!sandbox.home().join("escape.txt").exists());
    // Search and the file index do not follow symlinks out either.
    let found = api
        .find_files(pb::FindFilesRequest {
            project: id.clone(),
            query: "secret".into(),
            limit: 50,
        })
        .await?
        .into_inner();
    assert!(
        found.matches.iter().all(|m| !m.path.contains("secret.txt")),
        "{found:?}"
    );
    let mut search = api
        .search_text(pb::SearchTextRequest {
            project: id.clone(),
            pattern: "TOP SECRET".into(),
            include_hidden: true,
            include_ignored: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    while let Some(message) = search.message().await? {
        assert!(message.matches.is_empty(), "{message:?}");
    }
    Ok(())
}

#[tokio::test]
async fn a_symlink_swapped_in_during_reads_never_leaks() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    let outside = sandbox.root().join("outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("data.txt"), "TOP SECRET")?;
    std::fs::create_dir_all(root.join("box"))?;
    std::fs::write(root.join("box/data.txt"), "inside")?;
    // Swap box/ between the real folder and a symlink to outside, as fast
    // as possible, while reading box/data.txt.
    let swapper_root = root.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_flag = stop.clone();
    let swapper = std::thread::spawn(move || {
        let real = swapper_root.join("box.real");
        let link = swapper_root.join("box.link");
        let _ = symlink(&outside, &link);
        while !stop_flag.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::rename(swapper_root.join("box"), &real);
            let _ = std::fs::rename(&link, swapper_root.join("box"));
            let _ = std::fs::rename(swapper_root.join("box"), &link);
            let _ = std::fs::rename(&real, swapper_root.join("box"));
        }
    });
    let (mut inside_reads, mut refused) = (0, 0);
    for _ in 0..3000 {
        match read_all(&client, &id, "box/data.txt").await {
            Ok(data) => {
                assert_eq!(
                    data, b"inside",
                    "read outside the project through a swapped symlink"
                );
                inside_reads += 1;
            }
            // The symlink was there: the sandbox refused it.
            Err(status) if status.code() == Code::PermissionDenied => refused += 1,
            // Between two renames box/ is missing.
            Err(status) => assert_eq!(status.code(), Code::NotFound, "{status:?}"),
        }
        if inside_reads >= 20 && refused >= 20 {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = swapper.join();
    assert!(inside_reads > 0, "never managed to read the real file");
    assert!(
        refused > 0,
        "no read met the symlink, so the test proved nothing"
    );
    Ok(())
}

#[tokio::test]
async fn a_delete_to_the_trash_during_a_symlink_swap_never_takes_a_file_from_outside() -> TestResult
{
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    let outside = sandbox.root().join("outside");
    std::fs::create_dir_all(&outside)?;
    std::fs::write(outside.join("victim.txt"), "CANARY")?;
    std::fs::create_dir_all(root.join("box"))?;
    // Swap box/ between the real folder (refilled with victim.txt) and a
    // symlink to outside/, which holds a victim.txt of its own.
    let swapper_root = root.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_flag = stop.clone();
    let swapper = std::thread::spawn(move || {
        let (here, real, link) = (
            swapper_root.join("box"),
            swapper_root.join("box.real"),
            swapper_root.join("box.link"),
        );
        let _ = symlink(&outside, &link);
        while !stop_flag.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = std::fs::write(here.join("victim.txt"), "inside");
            let _ = std::fs::rename(&here, &real);
            let _ = std::fs::rename(&link, &here);
            let _ = std::fs::rename(&here, &link);
            let _ = std::fs::rename(&real, &here);
        }
    });
    let (mut trashed, mut refused) = (0, 0);
    for _ in 0..1500 {
        let result = files(&client)
            .delete(pb::DeleteRequest {
                project: id.clone(),
                path: "box/victim.txt".into(),
                permanent: false,
                recursive: false,
            })
            .await;
        match result {
            Ok(_) => trashed += 1,
            Err(status) if status.code() == Code::PermissionDenied => refused += 1,
            Err(_) => {}
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = swapper.join();
    assert_eq!(
        std::fs::read_to_string(sandbox.root().join("outside/victim.txt")).unwrap_or_default(),
        "CANARY",
        "the file outside the project was moved"
    );
    let trash = sandbox.root().join("data/Trash/files");
    for entry in std::fs::read_dir(&trash)? {
        let text = std::fs::read_to_string(entry?.path()).unwrap_or_default();
        assert_ne!(text, "CANARY", "the trash holds the file from outside");
    }
    assert!(
        refused > 0,
        "no delete met the symlink: the test proves nothing"
    );
    assert!(trashed > 0, "no delete ever reached the trash");
    Ok(())
}

#[tokio::test]
async fn a_catastrophic_search_is_bounded_and_the_agent_stays_responsive() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    // 16 MiB of `a`s, the classic trap for backtracking engines.
    let line = format!("{}\n", "a".repeat(4095));
    std::fs::write(root.join("aaaa.txt"), line.repeat(4096))?;
    let search = |pattern: &str| {
        let mut api = files(&client);
        let request = pb::SearchTextRequest {
            project: id.clone(),
            pattern: pattern.into(),
            regex: true,
            ..Default::default()
        };
        async move {
            let mut stream = api.search_text(request).await?.into_inner();
            let mut summary = None;
            while let Some(message) = stream.message().await? {
                summary = message.summary.or(summary);
            }
            Ok::<_, tonic::Status>(summary)
        }
    };
    // A pattern that compiles to too much is refused at once, naming the
    // limit; so is an over-long one.
    let err = search("a{1000}{1000}")
        .await
        .expect_err("a huge pattern ran");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("MiB limit"), "{err:?}");
    let err = search(&"x".repeat(5000))
        .await
        .expect_err("a 5000-byte pattern ran");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("4096"), "{err:?}");
    // Several heavy searches at once, and meanwhile the agent answers.
    let answers = async {
        let mut answered = 0;
        for _ in 0..5 {
            tokio::time::timeout(
                Duration::from_secs(30),
                client.agent().get_info(pb::GetInfoRequest {}),
            )
            .await
            .map_err(|_| "GetInfo did not answer while searches ran")??;
            answered += 1;
        }
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(answered)
    };
    let (first, second, third, fourth, answered) = tokio::time::timeout(PATIENCE, async {
        tokio::join!(
            search("(a*)*b"),
            search("(a|aa)*c"),
            search("(a*)*b"),
            search("(a|a?)+d"),
            answers
        )
    })
    .await
    .map_err(|_| "the searches did not return")?;
    let results = [first, second, third, fourth];
    assert_eq!(answered?, 5);
    for result in results {
        // Either done (the file of `a`s matches none of them) or stopped
        // at the deadline.
        match result {
            Ok(summary) => assert!(summary.ok_or("no summary")?.files_searched > 0),
            Err(status) => assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn writes_are_atomic_even_when_the_agent_is_killed_mid_write() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    let size = 8 * 1024 * 1024;
    let contents: Vec<Vec<u8>> = (0..3u8).map(|i| vec![b'a' + i; size]).collect();
    write(&client, &id, "big.bin", &contents[0], "").await?;
    for round in 0..12u64 {
        let client = agent.client().await?;
        let next = contents[(round % 2 + 1) as usize].clone();
        let id2 = id.clone();
        let writer = tokio::spawn(async move {
            let _ = write(&client, &id2, "big.bin", &next, "").await;
        });
        // Kill at varying moments: before, during and after the write.
        tokio::time::sleep(Duration::from_millis(round * 7 % 60)).await;
        agent.kill().await?;
        let _ = writer.await;
        let on_disk = std::fs::read(root.join("big.bin"))?;
        assert!(
            contents.contains(&on_disk),
            "round {round}: the file is a mix ({} bytes, first {:?}, last {:?})",
            on_disk.len(),
            on_disk.first(),
            on_disk.last()
        );
        agent = sandbox.start_agent().await?;
    }
    Ok(())
}

#[tokio::test]
async fn versions_refuse_lost_updates_and_create_only_never_replaces() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    let first = write(&client, &id, "notes.txt", b"one", "").await?;
    let second = write(&client, &id, "notes.txt", b"two", &first.version).await?;
    assert_ne!(first.version, second.version);
    // Someone else (an editor) changes the file behind our back.
    std::fs::write(root.join("notes.txt"), "three, by hand")?;
    let err = write(&client, &id, "notes.txt", b"four", &second.version)
        .await
        .err()
        .ok_or("a stale version was accepted")?;
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(
        std::fs::read_to_string(root.join("notes.txt"))?,
        "three, by hand"
    );
    let err = files(&client)
        .write_file(pb::WriteFileRequest {
            project: id.clone(),
            path: "notes.txt".into(),
            content: b"new".to_vec(),
            create_only: true,
            ..Default::default()
        })
        .await
        .err()
        .ok_or("create_only replaced a file")?;
    assert_eq!(err.code(), Code::AlreadyExists);
    // Permissions survive a rewrite.
    std::fs::set_permissions(
        root.join("notes.txt"),
        std::fs::Permissions::from_mode(0o640),
    )?;
    write(&client, &id, "notes.txt", b"five", "").await?;
    assert_eq!(
        std::fs::metadata(root.join("notes.txt"))?
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    // Ranged reads and binary detection.
    write(&client, &id, "blob.bin", &[1, 2, 0, 3, 4, 5], "").await?;
    let mut stream = files(&client)
        .read_file(pb::ReadFileRequest {
            project: id.clone(),
            path: "blob.bin".into(),
            offset: 2,
            length: 3,
        })
        .await?
        .into_inner();
    let head = stream.message().await?.ok_or("no first message")?;
    assert!(head.binary);
    let mut data = head.data;
    while let Some(chunk) = stream.message().await? {
        data.extend(chunk.data);
    }
    assert_eq!(data, vec![0, 3, 4]);
    Ok(())
}

#[tokio::test]
async fn a_failing_batch_undoes_what_it_did() -> TestResult {
    use pb::batch_operation::Operation;
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    std::fs::write(root.join("keep.txt"), "original")?;
    std::fs::write(root.join("gone.txt"), "deleted then restored")?;
    let snapshot = |root: &Path| -> TestResult<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        for entry in walk(root)? {
            let data = std::fs::read(&entry).unwrap_or_default();
            out.push((entry.strip_prefix(root)?.display().to_string(), data));
        }
        out.sort();
        Ok(out)
    };
    let before = snapshot(&root)?;
    let op = |operation: Operation| pb::BatchOperation {
        operation: Some(operation),
    };
    let response = files(&client)
        .apply_batch(pb::ApplyBatchRequest {
            project: id.clone(),
            operations: vec![
                op(Operation::Write(pb::BatchWrite {
                    path: "keep.txt".into(),
                    content: b"changed".to_vec(),
                    ..Default::default()
                })),
                op(Operation::CreateDirectory(pb::BatchCreateDirectory {
                    path: "new/dir".into(),
                })),
                op(Operation::Write(pb::BatchWrite {
                    path: "new/dir/file.txt".into(),
                    content: b"fresh".to_vec(),
                    ..Default::default()
                })),
                op(Operation::Move(pb::BatchMove {
                    from: "README.md".into(),
                    to: "new/README.md".into(),
                    overwrite: false,
                })),
                op(Operation::Delete(pb::BatchDelete {
                    path: "gone.txt".into(),
                    permanent: true,
                })),
                op(Operation::Copy(pb::BatchCopy {
                    from: "src".into(),
                    to: "src-copy".into(),
                    overwrite: 0,
                })),
                // Fails when applied: the file exists.
                op(Operation::Write(pb::BatchWrite {
                    path: "src/main.rs".into(),
                    content: b"nope".to_vec(),
                    create_only: true,
                    ..Default::default()
                })),
                op(Operation::Write(pb::BatchWrite {
                    path: "never.txt".into(),
                    content: b"never".to_vec(),
                    ..Default::default()
                })),
            ],
        })
        .await?
        .into_inner();
    assert!(!response.success);
    let statuses: Vec<i32> = response.results.iter().map(|r| r.status).collect();
    let undone = i32::from(pb::StepStatus::Undone);
    assert_eq!(
        statuses,
        vec![
            undone,
            undone,
            undone,
            undone,
            undone,
            undone,
            i32::from(pb::StepStatus::Failed),
            i32::from(pb::StepStatus::NotRun)
        ],
        "{response:?}"
    );
    assert!(
        response.results[6].error.contains("already exists"),
        "{response:?}"
    );
    assert_eq!(snapshot(&root)?, before, "the batch left changes behind");

    // A batch that is invalid up front changes nothing either.
    let err = files(&client)
        .apply_batch(pb::ApplyBatchRequest {
            project: id.clone(),
            operations: vec![
                op(Operation::Write(pb::BatchWrite {
                    path: "a.txt".into(),
                    content: b"a".to_vec(),
                    ..Default::default()
                })),
                op(Operation::Move(pb::BatchMove {
                    from: "../outside".into(),
                    to: "x".into(),
                    overwrite: false,
                })),
            ],
        })
        .await
        .err()
        .ok_or("an invalid batch was applied")?;
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(!root.join("a.txt").exists());

    // And a good batch applies whole.
    let ok = files(&client)
        .apply_batch(pb::ApplyBatchRequest {
            project: id.clone(),
            operations: vec![
                op(Operation::Write(pb::BatchWrite {
                    path: "keep.txt".into(),
                    content: b"changed".to_vec(),
                    ..Default::default()
                })),
                op(Operation::Move(pb::BatchMove {
                    from: "README.md".into(),
                    to: "docs/README.md".into(),
                    overwrite: false,
                })),
            ],
        })
        .await;
    // docs/ does not exist: moving into a missing folder fails and undoes.
    let ok = ok?.into_inner();
    assert!(!ok.success);
    assert_eq!(std::fs::read_to_string(root.join("keep.txt"))?, "original");
    let ok = files(&client)
        .apply_batch(pb::ApplyBatchRequest {
            project: id.clone(),
            operations: vec![
                op(Operation::CreateDirectory(pb::BatchCreateDirectory {
                    path: "docs".into(),
                })),
                op(Operation::Move(pb::BatchMove {
                    from: "README.md".into(),
                    to: "docs/README.md".into(),
                    overwrite: false,
                })),
                op(Operation::Delete(pb::BatchDelete {
                    path: "gone.txt".into(),
                    permanent: true,
                })),
            ],
        })
        .await?
        .into_inner();
    assert!(ok.success, "{ok:?}");
    assert!(root.join("docs/README.md").exists() && !root.join("gone.txt").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&root)?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".omnipanel"))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");
    Ok(())
}

fn walk(root: &Path) -> TestResult<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            out.push(path.clone());
            if kind.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(out)
}

#[tokio::test]
async fn fuzzy_find_and_text_search() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    std::fs::write(root.join(".gitignore"), "*.log\n")?;
    std::fs::write(root.join("debug.log"), "needle in a log\n")?;
    std::fs::create_dir_all(root.join("node_modules/pkg"))?;
    std::fs::write(
        root.join("node_modules/pkg/index.js"),
        "needle in node_modules\n",
    )?;
    let mut api = files(&client);
    // The index is built in the background; wait for it to see the files.
    let deadline = std::time::Instant::now() + PATIENCE;
    let found = loop {
        let found = api
            .find_files(pb::FindFilesRequest {
                project: id.clone(),
                query: "smain".into(),
                limit: 10,
            })
            .await?
            .into_inner();
        if found.index_complete && !found.matches.is_empty() {
            break found;
        }
        assert!(std::time::Instant::now() < deadline, "index never ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(found.matches[0].path, "src/main.rs", "{found:?}");
    let all = api
        .find_files(pb::FindFilesRequest {
            project: id.clone(),
            query: "index".into(),
            limit: 10,
        })
        .await?
        .into_inner();
    assert!(
        all.matches
            .iter()
            .all(|m| !m.path.starts_with("node_modules")),
        "{all:?}"
    );

    let mut stream = api
        .search_text(pb::SearchTextRequest {
            project: id.clone(),
            pattern: "needle".into(),
            before_context: 1,
            after_context: 1,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut matches = Vec::new();
    let mut summary = None;
    while let Some(message) = stream.message().await? {
        matches.extend(message.matches);
        if message.summary.is_some() {
            summary = message.summary;
        }
    }
    let paths: HashSet<&str> = matches.iter().map(|m| m.path.as_str()).collect();
    assert_eq!(
        paths,
        HashSet::from(["src/main.rs", "src/nested/lib.rs"]),
        "{matches:?}"
    );
    let main = matches
        .iter()
        .find(|m| m.path == "src/main.rs")
        .ok_or("no main.rs match")?;
    assert_eq!(main.line_number, 2);
    assert_eq!(main.before.len(), 1);
    assert_eq!(main.after.len(), 1);
    assert_eq!(main.ranges[0].end - main.ranges[0].start, 6);
    let summary = summary.ok_or("no summary")?;
    assert_eq!(summary.matches, 2);

    // Regex, case, globs and limits.
    let mut stream = api
        .search_text(pb::SearchTextRequest {
            project: id.clone(),
            pattern: r"fn\s+NEEDLE".into(),
            regex: true,
            case_mode: pb::CaseMode::Insensitive.into(),
            include_globs: vec!["*.rs".into()],
            include_ignored: true,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut count = 0;
    while let Some(message) = stream.message().await? {
        count += message.matches.len();
    }
    assert_eq!(count, 1);
    let bad = api
        .search_text(pb::SearchTextRequest {
            project: id.clone(),
            pattern: "(unclosed".into(),
            regex: true,
            ..Default::default()
        })
        .await
        .err()
        .ok_or("a bad regex was accepted")?;
    assert_eq!(bad.code(), Code::InvalidArgument);
    Ok(())
}

/// Collect watch items until `done` says enough.
async fn watch_until(
    stream: &mut tonic::Streaming<pb::WatchResponse>,
    done: impl Fn(&[pb::FileChange]) -> bool,
) -> TestResult<(Vec<pb::FileChange>, Vec<pb::watch_response::Item>)> {
    let mut changes = Vec::new();
    let mut items = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while !done(&changes) {
            let Some(message) = stream.message().await? else {
                break;
            };
            if let Some(item) = message.item {
                if let pb::watch_response::Item::Batch(batch) = &item {
                    changes.extend(batch.changes.clone());
                }
                items.push(item);
            }
        }
        Ok::<_, tonic::Status>(())
    })
    .await
    .map_err(|_| format!("timed out; changes so far: {changes:?}"))??;
    Ok((changes, items))
}

fn has(changes: &[pb::FileChange], kind: pb::ChangeKind, path: &str) -> bool {
    changes
        .iter()
        .any(|c| c.kind == i32::from(kind) && c.path == path)
}

#[tokio::test]
async fn watch_reports_nested_changes_and_respects_ignores() -> TestResult {
    let sandbox = Sandbox::new()?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    let mut stream = watch_from_now(&client, &id).await?;
    // The watches are in place once the first walk has indexed the project.
    wait_for_index(&client, &id).await?;
    // A .gitignore that arrives while watching applies from its own change
    // on (the watcher loads it before it reports it).
    std::fs::write(root.join(".gitignore"), "*.log\n")?;
    std::fs::create_dir_all(root.join("node_modules"))?;
    watch_until(&mut stream, |c| {
        has(c, pb::ChangeKind::Created, ".gitignore")
    })
    .await?;

    std::fs::create_dir_all(root.join("a/b/c"))?;
    std::fs::write(root.join("a/b/c/deep.txt"), "1")?;
    std::fs::write(root.join("ignored.log"), "x")?;
    std::fs::write(root.join("node_modules/dep.js"), "x")?;
    let (changes, _) = watch_until(&mut stream, |c| {
        has(c, pb::ChangeKind::Created, "a/b/c/deep.txt")
    })
    .await?;
    assert!(
        changes
            .iter()
            .all(|c| c.path != "ignored.log" && !c.path.starts_with("node_modules")),
        "{changes:?}"
    );

    std::fs::write(root.join("a/b/c/deep.txt"), "2")?;
    watch_until(&mut stream, |c| {
        has(c, pb::ChangeKind::Modified, "a/b/c/deep.txt")
    })
    .await?;

    std::fs::rename(root.join("a/b/c/deep.txt"), root.join("a/renamed.txt"))?;
    let (changes, _) = watch_until(&mut stream, |c| {
        has(c, pb::ChangeKind::Renamed, "a/renamed.txt")
    })
    .await?;
    let rename = changes
        .iter()
        .find(|c| c.kind == i32::from(pb::ChangeKind::Renamed))
        .ok_or("no rename")?;
    assert_eq!(rename.from_path, "a/b/c/deep.txt");

    std::fs::remove_file(root.join("a/renamed.txt"))?;
    watch_until(&mut stream, |c| {
        has(c, pb::ChangeKind::Deleted, "a/renamed.txt")
    })
    .await?;

    // A whole folder moved in with content, and a folder deleted.
    let staging = sandbox.root().join("staging");
    std::fs::create_dir_all(staging.join("inner"))?;
    std::fs::write(staging.join("inner/f.txt"), "x")?;
    std::fs::rename(&staging, root.join("moved-in"))?;
    watch_until(&mut stream, |c| has(c, pb::ChangeKind::Created, "moved-in")).await?;
    std::fs::remove_dir_all(root.join("a"))?;
    watch_until(&mut stream, |c| has(c, pb::ChangeKind::Deleted, "a")).await?;

    // Git metadata changes are reported separately. The watcher adopts the
    // new .git folder when it sees it created; until then a write to HEAD
    // goes unseen, so HEAD is written again until a change is reported.
    std::fs::create_dir_all(root.join(".git/refs/heads"))?;
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut saw_repo = false;
    while !saw_repo && std::time::Instant::now() < deadline {
        std::fs::write(root.join(".git/HEAD"), "ref: refs/heads/main\n")?;
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(Some(message)) = stream.message().await {
                if let Some(pb::watch_response::Item::RepositoryChanged(change)) = message.item
                    && change.paths.iter().any(|p| p == ".git/HEAD")
                {
                    saw_repo = true;
                    break;
                }
            }
        })
        .await;
    }
    assert!(saw_repo, "no repository change reported");

    // A watcher that reconnects with its cursor gets what it missed.
    let mut replay = files(&client)
        .watch(pb::WatchRequest {
            project: id.clone(),
            after_sequence: Some(0),
            instance_id: 0,
        })
        .await?
        .into_inner();
    let mut replayed = Vec::new();
    while let Some(message) = replay.message().await? {
        match message.item {
            Some(pb::watch_response::Item::CaughtUp(_)) => break,
            Some(pb::watch_response::Item::Batch(batch)) => replayed.extend(batch.changes),
            _ => {}
        }
    }
    assert!(
        has(&replayed, pb::ChangeKind::Created, "a/b/c/deep.txt"),
        "{replayed:?}"
    );
    Ok(())
}

#[tokio::test]
async fn projects_and_workspace_state_survive_a_restart() -> TestResult {
    let sandbox = Sandbox::new()?;
    let mut agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let (id, root) = project(&sandbox, &client, "proj").await?;
    let mut api = projects(&client);
    let created = api
        .create_project(pb::CreateProjectRequest {
            path: sandbox.root().join("fresh").display().to_string(),
            name: "Fresh".into(),
            git_init: true,
            files: vec![pb::TemplateFile {
                path: "src/app.py".into(),
                content: b"print('hi')\n".to_vec(),
            }],
        })
        .await?
        .into_inner()
        .project
        .ok_or("no project")?;
    assert_eq!(created.name, "Fresh");
    assert!(created.git.as_ref().is_some_and(|g| g.dirty), "{created:?}");
    assert!(sandbox.root().join("fresh/.git").is_dir());
    let err = api
        .create_project(pb::CreateProjectRequest {
            path: root.display().to_string(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("created over a non-empty folder")?;
    assert_eq!(err.code(), Code::AlreadyExists);

    let saved = api
        .save_workspace_state(pb::SaveWorkspaceStateRequest {
            project: id.clone(),
            client_key: "vscode".into(),
            data: b"{\"open\":[\"README.md\"]}".to_vec(),
            expected_version: Some(0),
        })
        .await?
        .into_inner();
    assert_eq!(saved.version, 1);
    let conflict = api
        .save_workspace_state(pb::SaveWorkspaceStateRequest {
            project: id.clone(),
            client_key: "vscode".into(),
            data: b"{}".to_vec(),
            expected_version: Some(0),
        })
        .await
        .err()
        .ok_or("a stale workspace save was accepted")?;
    assert_eq!(conflict.code(), Code::Aborted);
    api.close_project(pb::CloseProjectRequest {
        project: created.id.clone(),
    })
    .await?;
    let closed = files(&client)
        .stat(pb::StatRequest {
            project: created.id.clone(),
            path: "src/app.py".into(),
        })
        .await
        .err()
        .ok_or("a closed project served files")?;
    assert_eq!(closed.code(), Code::FailedPrecondition);

    agent.stop().await?;
    let agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let mut api = projects(&client);
    let listed = api
        .list_projects(pb::ListProjectsRequest {})
        .await?
        .into_inner()
        .projects;
    assert_eq!(listed.len(), 2, "{listed:?}");
    // Most recently used first.
    assert_eq!(listed[0].id, created.id);
    let proj = listed.iter().find(|p| p.id == id).ok_or("project lost")?;
    assert!(proj.open && proj.exists);
    assert!(!listed[0].open);
    let state = api
        .get_workspace_state(pb::GetWorkspaceStateRequest {
            project: root.display().to_string(),
            client_key: "vscode".into(),
        })
        .await?
        .into_inner();
    assert_eq!(state.version, 1);
    assert_eq!(state.data, b"{\"open\":[\"README.md\"]}");
    // Files of the reopened project work after the restart.
    assert_eq!(read_all(&client, &id, "README.md").await?, b"# hello\n");
    // Forgetting never touches files.
    api.forget_project(pb::ForgetProjectRequest {
        project: id.clone(),
    })
    .await?;
    assert!(root.join("README.md").exists());
    let gone = api
        .get_project(pb::GetProjectRequest {
            project: id.clone(),
        })
        .await
        .err()
        .ok_or("a forgotten project is still there")?;
    assert_eq!(gone.code(), Code::NotFound);
    Ok(())
}

#[tokio::test]
async fn the_cli_opens_a_project_and_works_in_its_files() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let root = sandbox.root().join("cli-project");
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    // needle here\n}\n",
    )?;
    let at = std::fs::canonicalize(&root)?.display().to_string();
    let run = |args: &[&str]| -> TestResult<String> {
        let output = sandbox.cli(args)?;
        if !output.status.success() {
            return Err(format!(
                "omnipanel {args:?} failed: {}",
                omnipanel_tests::stderr(&output)
            )
            .into());
        }
        Ok(omnipanel_tests::stdout(&output))
    };

    assert!(run(&["projects", "open", &at])?.contains("cli-project"));
    assert!(run(&["projects", "ls"])?.contains(&at));
    assert!(run(&["files", "--project", &at, "ls", "src"])?.contains("main.rs"));
    assert!(run(&["files", "--project", &at, "cat", "src/main.rs"])?.contains("needle here"));
    let output = sandbox.cli_with_input(
        &[
            "files",
            "--project",
            &at,
            "write",
            "--parents",
            "notes/todo.txt",
        ],
        "written through the agent\n",
    )?;
    assert!(
        output.status.success(),
        "{}",
        omnipanel_tests::stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(root.join("notes/todo.txt"))?,
        "written through the agent\n"
    );
    assert!(run(&["files", "--project", &at, "grep", "needle"])?.contains("src/main.rs"));
    // The fuzzy index follows the watcher: the new file shows up once the
    // change has settled.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let found = run(&["files", "--project", &at, "find", "todo"])?;
        if found.contains("notes/todo.txt") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not found: {found}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Outside the project: refused, nothing written.
    let output =
        sandbox.cli_with_input(&["files", "--project", &at, "write", "../escape.txt"], "no")?;
    assert!(!output.status.success());
    assert!(!sandbox.root().join("escape.txt").exists());

    assert!(run(&["projects", "forget", &at]).is_ok());
    assert!(
        root.join("src/main.rs").exists(),
        "forget must not touch files"
    );
    Ok(())
}
