//! The files facade at its boundary, on real folders: writes and reads,
//! moves, copies and deletes with their overwrite rules, batches that undo
//! themselves, the sandbox refusing paths that leave the project, search
//! and the change feed.

use std::{path::Path, sync::Arc, time::Duration};

use crate::{
    config::FilesSettings,
    error::{ErrorKind, Result},
    events::EventBus,
    feed::{Cursor, Delivery},
    files::{
        Files,
        batch::{BatchOp, StepStatus},
        grep::TextQuery,
        ops::{EntryKind, ListOptions, OverwritePolicy, WriteOptions},
        watch::ChangeItem,
    },
    projects::ProjectEvent,
    projects::Projects,
    reason::Reason,
    store::Store,
};

/// A project folder opened in a fresh registry, with the files facade.
struct Fixture {
    _state: tempfile::TempDir,
    folder: tempfile::TempDir,
    projects: Arc<Projects>,
    files: Arc<Files>,
    id: String,
}

impl Fixture {
    async fn new() -> Self {
        let state = tempfile::tempdir().unwrap();
        let folder = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&state.path().join("state.db")).unwrap();
        let bus = Arc::new(EventBus::<ProjectEvent>::new(1, 64));
        let projects = Projects::start(
            store,
            bus,
            FilesSettings::default(),
            crate::projects::ProjectBoundaries::from_env(&["~".into()]),
            Vec::new(),
        )
        .await
        .unwrap();
        let view = projects
            .open_project(&folder.path().display().to_string(), "")
            .await
            .unwrap();
        let files = Files::start(projects.clone()).await.unwrap();
        Self {
            _state: state,
            folder,
            projects,
            files,
            id: view.record.id,
        }
    }

    fn root(&self) -> &Path {
        self.folder.path()
    }

    async fn write(&self, path: &str, content: &str) -> Result<crate::files::ops::FileEntry> {
        self.files
            .write(
                &self.id,
                path,
                content.as_bytes().to_vec(),
                WriteOptions {
                    create_parents: true,
                    ..WriteOptions::default()
                },
            )
            .await
    }

    async fn read(&self, path: &str) -> Result<String> {
        let mut reader = self.files.read(&self.id, path, 0, 0).await?;
        let mut bytes = Vec::new();
        while let Some(chunk) = reader.next_chunk().await {
            let (offset, data) = chunk?;
            assert_eq!(offset, bytes.len() as u64);
            bytes.extend(data);
        }
        Ok(String::from_utf8(bytes).unwrap())
    }

    async fn shutdown(self) {
        self.files.shutdown().await;
        self.projects.shutdown().await;
    }
}

#[tokio::test]
async fn written_files_read_back_list_and_stat() {
    let f = Fixture::new().await;
    let written = f.write("src/main.rs", "fn main() {}\n").await.unwrap();
    assert_eq!(written.path, "src/main.rs");
    assert_eq!(written.kind, EntryKind::File);
    assert_eq!(f.read("src/main.rs").await.unwrap(), "fn main() {}\n");
    assert_eq!(
        std::fs::read_to_string(f.root().join("src/main.rs")).unwrap(),
        "fn main() {}\n"
    );

    let stat = f.files.stat(&f.id, "src/main.rs").await.unwrap();
    assert_eq!(stat.size, 13);
    assert_eq!(stat.version, written.version);
    let listed = f
        .files
        .list(&f.id, "src", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(
        listed.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["main.rs"]
    );

    // A ranged read starts where asked.
    let mut reader = f.files.read(&f.id, "src/main.rs", 3, 4).await.unwrap();
    assert_eq!(reader.offset, 3);
    assert!(!reader.binary);
    let (offset, data) = reader.next_chunk().await.unwrap().unwrap();
    assert_eq!((offset, data.as_slice()), (3, &b"main"[..]));
    assert!(reader.next_chunk().await.is_none());
    f.shutdown().await;
}

#[tokio::test]
async fn writes_check_create_only_and_the_expected_version() {
    let f = Fixture::new().await;
    let first = f.write("a.txt", "one").await.unwrap();
    let err = f
        .files
        .write(
            &f.id,
            "a.txt",
            b"two".to_vec(),
            WriteOptions {
                create_only: true,
                ..WriteOptions::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");

    let stale = WriteOptions {
        expected_version: Some("not-the-version".to_owned()),
        ..WriteOptions::default()
    };
    let err = f
        .files
        .write(&f.id, "a.txt", b"two".to_vec(), stale)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Aborted, "{err}");
    assert_eq!(err.reason().map(Reason::as_str), Some("VERSION_CONFLICT"));

    let current = WriteOptions {
        expected_version: Some(first.version),
        ..WriteOptions::default()
    };
    f.files
        .write(&f.id, "a.txt", b"two".to_vec(), current)
        .await
        .unwrap();
    assert_eq!(f.read("a.txt").await.unwrap(), "two");

    // Without create_parents a missing folder is an error, not a surprise
    // folder.
    let err = f
        .files
        .write(
            &f.id,
            "no/such/dir.txt",
            b"x".to_vec(),
            WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(!f.root().join("no").exists());
    f.shutdown().await;
}

#[tokio::test]
async fn moves_replace_only_when_asked() {
    let f = Fixture::new().await;
    f.write("a.txt", "a").await.unwrap();
    f.write("b.txt", "b").await.unwrap();
    let err = f
        .files
        .move_path(&f.id, "a.txt", "b.txt", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(f.read("b.txt").await.unwrap(), "b");

    let moved = f
        .files
        .move_path(&f.id, "a.txt", "b.txt", true)
        .await
        .unwrap();
    assert_eq!(moved.path, "b.txt");
    assert_eq!(f.read("b.txt").await.unwrap(), "a");
    assert!(!f.root().join("a.txt").exists());

    f.shutdown().await;
}

#[tokio::test]
async fn copies_follow_the_overwrite_policy() {
    let f = Fixture::new().await;
    f.write("src/a.txt", "new a").await.unwrap();
    f.write("src/b.txt", "new b").await.unwrap();
    f.write("dst/a.txt", "old a").await.unwrap();

    let err = f
        .files
        .copy(&f.id, "src", "dst", OverwritePolicy::Fail)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(f.read("dst/a.txt").await.unwrap(), "old a");

    let skipped = f
        .files
        .copy(&f.id, "src", "dst", OverwritePolicy::Skip)
        .await
        .unwrap();
    assert_eq!((skipped.files, skipped.skipped), (1, 1));
    assert_eq!(f.read("dst/a.txt").await.unwrap(), "old a");
    assert_eq!(f.read("dst/b.txt").await.unwrap(), "new b");

    let replaced = f
        .files
        .copy(&f.id, "src", "dst", OverwritePolicy::Replace)
        .await
        .unwrap();
    assert_eq!((replaced.files, replaced.skipped), (2, 0));
    assert_eq!(replaced.bytes, 10);
    assert_eq!(f.read("dst/a.txt").await.unwrap(), "new a");
    f.shutdown().await;
}

#[tokio::test]
async fn deletes_refuse_the_root_and_full_folders_without_recursive() {
    let f = Fixture::new().await;
    f.write("dir/inner.txt", "x").await.unwrap();
    let err = f.files.delete(&f.id, "", true, true).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_eq!(err.field(), Some("path"));

    let err = f.files.delete(&f.id, "dir", true, false).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(f.root().join("dir/inner.txt").exists());

    f.files.delete(&f.id, "dir", true, true).await.unwrap();
    assert!(!f.root().join("dir").exists());

    let err = f
        .files
        .delete(&f.id, "gone", true, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    f.files.create_directory(&f.id, "made/deep").await.unwrap();
    assert!(f.root().join("made/deep").is_dir());
    f.shutdown().await;
}

#[tokio::test]
async fn a_batch_applies_every_step() {
    let f = Fixture::new().await;
    let result = f
        .files
        .apply_batch(
            &f.id,
            vec![
                BatchOp::CreateDirectory {
                    path: "d".to_owned(),
                },
                BatchOp::Write {
                    path: "d/a.txt".to_owned(),
                    content: b"a".to_vec(),
                    expected_version: None,
                    create_only: true,
                },
                BatchOp::Copy {
                    from: "d/a.txt".to_owned(),
                    to: "d/b.txt".to_owned(),
                    policy: OverwritePolicy::Fail,
                },
                BatchOp::Move {
                    from: "d/a.txt".to_owned(),
                    to: "c.txt".to_owned(),
                    overwrite: false,
                },
            ],
        )
        .await
        .unwrap();
    assert!(result.success);
    assert!(result.steps.iter().all(|s| s.status == StepStatus::Applied));
    assert_eq!(f.read("c.txt").await.unwrap(), "a");
    assert_eq!(f.read("d/b.txt").await.unwrap(), "a");
    assert!(!f.root().join("d/a.txt").exists());
    f.shutdown().await;
}

#[tokio::test]
async fn a_failed_batch_undoes_the_steps_before_and_skips_the_rest() {
    let f = Fixture::new().await;
    f.write("keep.txt", "original").await.unwrap();
    f.write("taken.txt", "taken").await.unwrap();
    let result = f
        .files
        .apply_batch(
            &f.id,
            vec![
                BatchOp::Write {
                    path: "keep.txt".to_owned(),
                    content: b"changed".to_vec(),
                    expected_version: None,
                    create_only: false,
                },
                BatchOp::Write {
                    path: "fresh.txt".to_owned(),
                    content: b"new".to_vec(),
                    expected_version: None,
                    create_only: false,
                },
                BatchOp::Write {
                    path: "taken.txt".to_owned(),
                    content: b"x".to_vec(),
                    expected_version: None,
                    create_only: true,
                },
                BatchOp::Delete {
                    path: "keep.txt".to_owned(),
                    permanent: true,
                },
            ],
        )
        .await
        .unwrap();
    assert!(!result.success);
    let statuses: Vec<_> = result.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            StepStatus::Undone,
            StepStatus::Undone,
            StepStatus::Failed,
            StepStatus::NotRun
        ]
    );
    assert!(
        result.steps[2]
            .error
            .as_deref()
            .unwrap()
            .contains("taken.txt")
    );
    assert!(result.steps[0].error.is_none());
    assert_eq!(f.read("keep.txt").await.unwrap(), "original");
    assert_eq!(f.read("taken.txt").await.unwrap(), "taken");
    assert!(!f.root().join("fresh.txt").exists());
    f.shutdown().await;
}

#[tokio::test]
async fn a_batch_with_a_path_outside_the_project_changes_nothing() {
    let f = Fixture::new().await;
    let outcome = f
        .files
        .apply_batch(
            &f.id,
            vec![
                BatchOp::Write {
                    path: "inside.txt".to_owned(),
                    content: b"x".to_vec(),
                    expected_version: None,
                    create_only: false,
                },
                BatchOp::Write {
                    path: "../outside.txt".to_owned(),
                    content: b"x".to_vec(),
                    expected_version: None,
                    create_only: false,
                },
            ],
        )
        .await;
    match outcome {
        Err(err) => assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}"),
        Ok(result) => assert!(!result.success),
    }
    assert!(!f.root().join("inside.txt").exists());
    assert!(!f.root().parent().unwrap().join("outside.txt").exists());
    f.shutdown().await;
}

#[tokio::test]
async fn paths_that_leave_the_project_are_refused() {
    let f = Fixture::new().await;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let outside_file = outside.path().join("secret.txt").display().to_string();

    for raw in ["../secret.txt", "a/../../secret.txt", outside_file.as_str()] {
        let err = f.files.stat(&f.id, raw).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{raw}: {err}");
        assert_eq!(
            err.reason().map(Reason::as_str),
            Some("OUTSIDE_PROJECT"),
            "{raw}"
        );
        let err = f.write(raw, "x").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{raw}: {err}");
    }
    // An absolute path inside the project is accepted.
    let inside = f.root().join("in.txt").display().to_string();
    f.write(&inside, "ok").await.unwrap();
    assert_eq!(f.read("in.txt").await.unwrap(), "ok");

    // A symlink inside the project that points out of it is not followed.
    std::os::unix::fs::symlink(outside.path(), f.root().join("escape")).unwrap();
    let err = f.read("escape/secret.txt").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    let err = f
        .files
        .write(
            &f.id,
            "escape/planted.txt",
            b"x".to_vec(),
            WriteOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    // Asked to create the parents, it finds the link where a folder should
    // be and refuses too, as leading outside, naming the link.
    let err = f.write("escape/planted.txt", "x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    assert!(err.message().contains("escape is a symlink"), "{err}");
    assert!(!outside.path().join("planted.txt").exists());
    let err = f
        .files
        .copy(
            &f.id,
            "escape/secret.txt",
            "copied.txt",
            OverwritePolicy::Fail,
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
    // The link itself can be described: it is an entry of the project.
    let link = f.files.stat(&f.id, "escape").await.unwrap();
    assert_eq!(link.kind, EntryKind::Symlink);
    f.shutdown().await;
}

#[tokio::test]
async fn unknown_and_closed_projects_are_named_errors() {
    let f = Fixture::new().await;
    let err = f.files.stat("nope", "a").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(err.reason().map(Reason::as_str), Some("PROJECT_NOT_FOUND"));
    f.projects.close(&f.id).await.unwrap();
    let err = f.files.stat(&f.id, "a").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition);
    assert_eq!(err.reason().map(Reason::as_str), Some("PROJECT_CLOSED"));
    f.shutdown().await;
}

#[tokio::test]
async fn text_search_streams_matches_then_its_summary() {
    let f = Fixture::new().await;
    f.write("a.txt", "needle one\nhay\n").await.unwrap();
    f.write("b/c.txt", "hay\nneedle two\n").await.unwrap();
    f.write("d.txt", "nothing here\n").await.unwrap();
    let mut search = f
        .files
        .search_text(
            &f.id,
            TextQuery {
                pattern: "needle".to_owned(),
                ..TextQuery::default()
            },
        )
        .await
        .unwrap();
    let mut found = Vec::new();
    while let Some(matches) = search.next_matches().await {
        found.extend(matches.into_iter().map(|m| (m.path, m.line_number)));
    }
    found.sort();
    assert_eq!(found, [("a.txt".to_owned(), 1), ("b/c.txt".to_owned(), 2)]);
    let outcome = search.finish().await.unwrap();
    assert_eq!(outcome.summary.matches, 2);
    assert_eq!(outcome.summary.files_matched, 2);
    assert!(!outcome.summary.truncated);

    let err = f
        .files
        .search_text(
            &f.id,
            TextQuery {
                pattern: "(unclosed".to_owned(),
                regex: true,
                ..TextQuery::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    f.shutdown().await;
}

#[tokio::test]
async fn a_dropped_search_stops() {
    let f = Fixture::new().await;
    for i in 0..50 {
        f.write(&format!("f{i}.txt"), "match\n").await.unwrap();
    }
    let search = f
        .files
        .search_text(
            &f.id,
            TextQuery {
                pattern: "match".to_owned(),
                ..TextQuery::default()
            },
        )
        .await
        .unwrap();
    drop(search);
    f.shutdown().await;
}

#[tokio::test]
async fn fuzzy_find_limits_its_matches() {
    let f = Fixture::new().await;
    let err = f.files.find(&f.id, "x", 1001).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.field(), Some("limit"));
    f.write("src/needle.rs", "").await.unwrap();
    // The watcher indexes the new file shortly.
    let mut found = Vec::new();
    for _ in 0..100 {
        found = f.files.find(&f.id, "needle", 0).await.unwrap().matches;
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found[0].path, "src/needle.rs");
    f.shutdown().await;
}

#[tokio::test]
async fn the_change_feed_reports_writes_and_ends_when_the_project_closes() {
    let f = Fixture::new().await;
    let mut feed = f.files.changes(&f.id, Cursor::default()).await.unwrap();
    // Let the watcher's first walk finish so the write is a live change.
    tokio::time::sleep(Duration::from_millis(300)).await;
    f.write("new.txt", "x").await.unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match feed.next().await {
                Some(Delivery::Event(record)) => {
                    if let ChangeItem::Batch(changes) = &record.payload
                        && changes.iter().any(|c| c.path == "new.txt")
                    {
                        return true;
                    }
                }
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await
    .unwrap();
    assert!(seen);
    f.projects.close(&f.id).await.unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while feed.next().await.is_some() {}
    })
    .await;
    assert!(end.is_ok(), "the feed did not end with the project");
    f.shutdown().await;
}

#[tokio::test]
async fn a_file_where_a_folder_should_be_is_named() {
    let f = Fixture::new().await;
    f.write("notes.txt", "x").await.unwrap();
    let err = f.write("notes.txt/inner/a.txt", "y").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FailedPrecondition, "{err}");
    assert!(err.message().contains("notes.txt is a file"), "{err}");
    assert_eq!(f.read("notes.txt").await.unwrap(), "x");
    f.shutdown().await;
}

#[tokio::test]
async fn nothing_inside_a_git_folder_is_changed_but_it_can_be_read() {
    let f = Fixture::new().await;
    std::fs::create_dir_all(f.root().join(".git/hooks")).unwrap();
    std::fs::write(f.root().join(".git/config"), "[core]\n").unwrap();
    std::fs::create_dir_all(f.root().join("vendor/lib/.git")).unwrap();
    f.write("src/a.txt", "a").await.unwrap();
    std::os::unix::fs::symlink(".git", f.root().join("sneaky")).unwrap();
    let refused = |result: Result<()>, what: &str| {
        let err = result.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{what}: {err}");
        assert_eq!(err.reason(), Some(Reason::InsideGitFolder), "{what}: {err}");
        assert!(err.to_string().contains("GitService"), "{what}: {err}");
    };
    let files = &f.files;
    let id = f.id.as_str();
    refused(
        f.write(".git/config", "[core]\n\tfsmonitor = evil\n")
            .await
            .map(drop),
        "write config",
    );
    refused(
        f.write(".git/hooks/pre-commit", "evil").await.map(drop),
        "write hook",
    );
    refused(f.write(".GIT/config", "x").await.map(drop), "case variant");
    refused(
        f.write("vendor/lib/.git/config", "x").await.map(drop),
        "nested repository",
    );
    refused(
        f.write("sub/.git", "gitdir: /elsewhere\n").await.map(drop),
        "a .git link file",
    );
    refused(
        f.write("sneaky/config", "x").await.map(drop),
        "through a symlink",
    );
    refused(
        files.create_directory(id, ".git/hooks2").await.map(drop),
        "create folder",
    );
    refused(
        files
            .move_path(id, "src/a.txt", ".git/hooks/post-checkout", false)
            .await
            .map(drop),
        "move into",
    );
    refused(
        files
            .move_path(id, ".git/config", "src/config", false)
            .await
            .map(drop),
        "move out of",
    );
    refused(
        files.move_path(id, "src", ".git", true).await.map(drop),
        "move onto",
    );
    refused(
        files
            .copy(
                id,
                "src/a.txt",
                ".git/hooks/pre-push",
                OverwritePolicy::Replace,
            )
            .await
            .map(drop),
        "copy into",
    );
    refused(
        files.delete(id, ".git/config", true, false).await,
        "delete inside",
    );
    refused(
        files.delete(id, ".git", true, true).await,
        "delete the folder",
    );
    let batch = files
        .apply_batch(
            id,
            vec![
                BatchOp::Write {
                    path: "src/ok.txt".into(),
                    content: b"ok".to_vec(),
                    expected_version: None,
                    create_only: false,
                },
                BatchOp::Write {
                    path: ".git/hooks/pre-commit".into(),
                    content: b"evil".to_vec(),
                    expected_version: None,
                    create_only: false,
                },
            ],
        )
        .await;
    refused(batch.map(drop), "batch");
    assert!(
        !f.root().join("src/ok.txt").exists(),
        "the batch changed something"
    );
    // A symlink copied in by an earlier step is followed at apply time.
    let batch = files
        .apply_batch(
            id,
            vec![
                BatchOp::Copy {
                    from: "sneaky".into(),
                    to: "alias".into(),
                    policy: OverwritePolicy::Fail,
                },
                BatchOp::Write {
                    path: "alias/hooks/pre-commit".into(),
                    content: b"evil".to_vec(),
                    expected_version: None,
                    create_only: false,
                },
            ],
        )
        .await
        .unwrap();
    assert!(!batch.success, "{batch:?}");
    assert!(!f.root().join(".git/hooks/pre-commit").exists());
    assert_eq!(
        std::fs::read_to_string(f.root().join(".git/config")).unwrap(),
        "[core]\n"
    );
    // Reads, and copies out of it, still work.
    assert_eq!(f.read(".git/config").await.unwrap(), "[core]\n");
    files
        .copy(id, ".git/config", "src/config.copy", OverwritePolicy::Fail)
        .await
        .unwrap();
    // Names that only start like it are ordinary.
    f.write(".github/workflows/ci.yml", "on: push\n")
        .await
        .unwrap();
    f.write("src/.gitignore", "target\n").await.unwrap();
    f.shutdown().await;
}

/// Steps that replace what is there (a move with overwrite, copies with
/// REPLACE and SKIP) set the old target aside; when a later step fails,
/// every replaced target is put back as it was and every new one removed.
#[tokio::test]
async fn a_failed_batch_puts_back_what_overwriting_steps_replaced() {
    let f = Fixture::new().await;
    f.write("a.txt", "moved").await.unwrap();
    f.write("b.txt", "old b").await.unwrap();
    f.write("src/one.txt", "new one").await.unwrap();
    f.write("replaced/one.txt", "old one").await.unwrap();
    f.write("skipped/one.txt", "kept one").await.unwrap();
    let stale = f.write("stale.txt", "v1").await.unwrap().version;
    f.write("stale.txt", "v2 by someone else").await.unwrap();
    let result = f
        .files
        .apply_batch(
            &f.id,
            vec![
                BatchOp::Move {
                    from: "a.txt".to_owned(),
                    to: "b.txt".to_owned(),
                    overwrite: true,
                },
                BatchOp::Copy {
                    from: "src".to_owned(),
                    to: "replaced".to_owned(),
                    policy: OverwritePolicy::Replace,
                },
                BatchOp::Copy {
                    from: "src".to_owned(),
                    to: "skipped".to_owned(),
                    policy: OverwritePolicy::Skip,
                },
                BatchOp::Write {
                    path: "stale.txt".to_owned(),
                    content: b"mine".to_vec(),
                    expected_version: Some(stale.clone()),
                    create_only: false,
                },
            ],
        )
        .await
        .unwrap();
    assert!(!result.success);
    let statuses: Vec<_> = result.steps.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        [
            StepStatus::Undone,
            StepStatus::Undone,
            StepStatus::Undone,
            StepStatus::Failed
        ]
    );
    let why = result.steps[3].error.as_deref().unwrap_or_default();
    assert!(
        why.contains(&format!("stale.txt changed since version {stale}")),
        "{why}"
    );
    assert_eq!(f.read("a.txt").await.unwrap(), "moved");
    assert_eq!(f.read("b.txt").await.unwrap(), "old b");
    assert_eq!(f.read("replaced/one.txt").await.unwrap(), "old one");
    assert_eq!(f.read("skipped/one.txt").await.unwrap(), "kept one");
    assert_eq!(f.read("stale.txt").await.unwrap(), "v2 by someone else");
    f.shutdown().await;
}

/// Each way a step can refuse an existing or vanished target, as the
/// failing step of a batch: the message says what to pass instead, and the
/// step before it is undone.
#[tokio::test]
async fn a_batch_step_refusing_its_target_says_why_and_undoes_the_rest() {
    let f = Fixture::new().await;
    f.write("a.txt", "a").await.unwrap();
    f.write("taken.txt", "taken").await.unwrap();
    let gone = f.write("gone.txt", "soon gone").await.unwrap().version;
    std::fs::remove_file(f.root().join("gone.txt")).unwrap();
    for (step, says) in [
        (
            BatchOp::Move {
                from: "a.txt".to_owned(),
                to: "taken.txt".to_owned(),
                overwrite: false,
            },
            "taken.txt already exists; pass overwrite to replace it",
        ),
        (
            BatchOp::Copy {
                from: "a.txt".to_owned(),
                to: "taken.txt".to_owned(),
                policy: OverwritePolicy::Fail,
            },
            "taken.txt already exists; choose overwrite REPLACE or SKIP",
        ),
        (
            BatchOp::Write {
                path: "gone.txt".to_owned(),
                content: b"x".to_vec(),
                expected_version: Some(gone.clone()),
                create_only: false,
            },
            "gone.txt was deleted since version",
        ),
    ] {
        let result = f
            .files
            .apply_batch(
                &f.id,
                vec![
                    BatchOp::Write {
                        path: "new/made.txt".to_owned(),
                        content: b"made".to_vec(),
                        expected_version: None,
                        create_only: true,
                    },
                    step,
                ],
            )
            .await
            .unwrap();
        let statuses: Vec<_> = result.steps.iter().map(|s| s.status).collect();
        assert_eq!(statuses, [StepStatus::Undone, StepStatus::Failed], "{says}");
        let why = result.steps[1].error.as_deref().unwrap_or_default();
        assert!(why.contains(says), "{why}");
        assert!(
            !f.root().join("new").exists(),
            "{says}: the folder the first step made is removed too"
        );
        assert_eq!(f.read("taken.txt").await.unwrap(), "taken");
        assert_eq!(f.read("a.txt").await.unwrap(), "a");
    }
    f.shutdown().await;
}

/// Steps that could never work are refused before anything runs, naming
/// the operation's field.
#[tokio::test]
async fn a_batch_refuses_the_project_root_and_a_move_into_itself() {
    let f = Fixture::new().await;
    f.write("d/inner.txt", "x").await.unwrap();
    let refused = |ops: Vec<BatchOp>| {
        let files = f.files.clone();
        let id = f.id.clone();
        async move { files.apply_batch(&id, ops).await.err() }
    };
    let err = refused(vec![BatchOp::Write {
        path: String::new(),
        content: b"x".to_vec(),
        expected_version: None,
        create_only: false,
    }])
    .await
    .expect("writing the root is refused");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("not the project root"), "{err}");
    let err = refused(vec![BatchOp::Move {
        from: "d".to_owned(),
        to: "d/e".to_owned(),
        overwrite: false,
    }])
    .await
    .expect("moving a folder into itself is refused");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert!(err.to_string().contains("cannot move d to d/e"), "{err}");
    assert_eq!(f.read("d/inner.txt").await.unwrap(), "x");
    f.shutdown().await;
}
