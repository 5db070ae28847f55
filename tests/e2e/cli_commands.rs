//! The CLI's file, Git and project commands run as a user runs them, each
//! checked by what it did (the files on disk, the repository as the `git`
//! command sees it) and by what it printed, in text and with `--json`:
//! `files mkdir/cp/mv/rm/stat/ls/cat/write`, `git status/add/reset/diff/
//! commit/log/branches/switch/push/fetch/pull` against a bare repository
//! on disk, `projects create/show/close/ls`, `models` against the fake
//! Ollama, `alerts thresholds`, `sys` and `sys top`, `settings`, `events`,
//! `files grep/find` with their options and `files watch`.

use std::{path::Path, process::Command};

use omnipanel_tests::{Sandbox, TestResult, stderr, stdout};

/// Run the CLI, which must succeed; its stdout.
fn ok(sandbox: &Sandbox, args: &[&str]) -> TestResult<String> {
    let output = sandbox.cli(args)?;
    if !output.status.success() {
        return Err(format!("omnipanel {args:?} failed: {}", stderr(&output)).into());
    }
    Ok(stdout(&output))
}

/// Run the CLI, which must fail; its stderr.
fn refused(sandbox: &Sandbox, args: &[&str]) -> TestResult<String> {
    let output = sandbox.cli(args)?;
    if output.status.success() {
        return Err(format!("omnipanel {args:?} succeeded: {}", stdout(&output)).into());
    }
    Ok(stderr(&output))
}

/// The `git` command in `dir`, which must succeed; its stdout.
fn git(dir: &Path, args: &[&str]) -> TestResult<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()?;
    if !output.status.success() {
        return Err(format!("git {args:?} failed: {}", stderr(&output)).into());
    }
    Ok(stdout(&output))
}

/// `omnipanel events` (the history, then exit) in text and as JSON lines:
/// every event described on one line, every JSON line an event.
fn events_listed(sandbox: &Sandbox) -> TestResult<String> {
    // An event still on its way (the watcher's report of the last git
    // command) can land between the two listings: list both again until
    // they agree.
    let mut tries = 0;
    let (text, json) = loop {
        let text = ok(sandbox, &["events"])?;
        let json = ok(sandbox, &["--json", "events"])?;
        tries += 1;
        if text.lines().count() == json.lines().count() || tries == 20 {
            break (text, json);
        }
    };
    assert_eq!(text.lines().count(), json.lines().count(), "{text}\n{json}");
    for line in json.lines() {
        let event: serde_json::Value = serde_json::from_str(line)?;
        assert!(
            event["sequence"].is_string() || event["sequence"].is_number(),
            "{line}"
        );
    }
    Ok(text)
}

#[tokio::test]
async fn file_commands_change_the_tree_and_say_what_they_did() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let root = sandbox.project_dir("tree");
    std::fs::create_dir_all(&root)?;
    std::fs::write(root.join("a.txt"), "0123456789")?;
    std::fs::write(root.join(".hidden"), "dot")?;
    let at = std::fs::canonicalize(&root)?.display().to_string();
    ok(&sandbox, &["projects", "open", &at])?;
    let files = |args: &[&str]| {
        let mut all = vec!["files", "--project", at.as_str()];
        all.extend_from_slice(args);
        ok(&sandbox, &all)
    };

    assert!(files(&["mkdir", "docs/deep"])?.contains("created folder docs/deep/"));
    assert!(root.join("docs/deep").is_dir());

    let copied = files(&["cp", "a.txt", "docs/a.txt"])?;
    assert!(
        copied.contains("copied a.txt to docs/a.txt: 1 file"),
        "{copied}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("docs/a.txt"))?,
        "0123456789"
    );
    // Copying onto what is there fails by default, skips when asked.
    let mut again = vec![
        "files",
        "--project",
        at.as_str(),
        "cp",
        "a.txt",
        "docs/a.txt",
    ];
    assert!(!refused(&sandbox, &again)?.is_empty());
    again.extend_from_slice(&["--overwrite", "skip"]);
    assert!(ok(&sandbox, &again)?.contains("1 skipped (already there)"));

    let moved = files(&["mv", "docs/a.txt", "docs/b.txt"])?;
    assert!(moved.contains("moved docs/a.txt -> docs/b.txt"), "{moved}");
    assert!(!root.join("docs/a.txt").exists() && root.join("docs/b.txt").exists());

    // A slice of a file, and a folder (not a file) to cat is refused.
    assert_eq!(
        files(&["cat", "a.txt", "--offset", "2", "--length", "3"])?,
        "234"
    );
    assert!(!refused(&sandbox, &["files", "--project", &at, "cat", "docs"])?.is_empty());

    let stat = files(&["stat", "a.txt"])?;
    for expected in [
        "path       a.txt",
        "kind       file",
        "10 bytes",
        "hidden     no",
    ] {
        assert!(stat.contains(expected), "{expected:?} not in:\n{stat}");
    }
    let root_stat = files(&["stat", ""])?;
    assert!(root_stat.contains("(project root)") && root_stat.contains("folder"));
    let json: serde_json::Value = serde_json::from_str(&ok(
        &sandbox,
        &["--json", "files", "--project", &at, "stat", "a.txt"],
    )?)?;
    let version = json["info"]["version"]
        .as_str()
        .ok_or("no version in stat --json")?
        .to_owned();

    // Hidden names only with --all; sorted by size, and --reverse turns
    // that order around.
    assert!(!files(&["ls"])?.contains(".hidden"));
    let by_size = files(&["ls", "--all", "--sort", "size"])?;
    assert!(
        by_size.contains(".hidden") && by_size.contains("docs/"),
        "{by_size}"
    );
    let reversed = files(&["ls", "--all", "--sort", "size", "--reverse"])?;
    assert_ne!(
        by_size.find("a.txt") < by_size.find(".hidden"),
        reversed.find("a.txt") < reversed.find(".hidden"),
        "--reverse kept the order:\n{by_size}\n{reversed}"
    );
    // `ls FILE` shows the file, as ls does.
    assert!(files(&["ls", "a.txt"])?.contains("a.txt"));
    let listed: serde_json::Value = serde_json::from_str(&ok(
        &sandbox,
        &["--json", "files", "--project", &at, "ls", "docs"],
    )?)?;
    assert_eq!(listed["entries"].as_array().map(Vec::len), Some(2));

    // A write at the version read goes through; a stale one is refused.
    let write = |extra: &[&str], text: &str| {
        let mut args = vec!["files", "--project", at.as_str(), "write", "a.txt"];
        args.extend_from_slice(extra);
        sandbox.cli_with_input(&args, text)
    };
    let written = write(&["--expected-version", &version], "new text")?;
    assert!(written.status.success(), "{}", stderr(&written));
    assert_eq!(std::fs::read_to_string(root.join("a.txt"))?, "new text");
    let stale = write(&["--expected-version", &version], "lost update")?;
    assert!(!stale.status.success());
    assert_eq!(std::fs::read_to_string(root.join("a.txt"))?, "new text");
    let exists = write(&["--create-only"], "again")?;
    assert!(!exists.status.success());

    // rm: to the trash, a full folder only with -r, for good with --permanent.
    assert!(files(&["rm", "docs/b.txt"])?.contains("moved docs/b.txt to the trash"));
    assert!(!root.join("docs/b.txt").exists());
    assert!(
        !refused(
            &sandbox,
            &["files", "--project", &at, "rm", "--permanent", "docs"]
        )?
        .is_empty()
    );
    assert!(
        root.join("docs/deep").is_dir(),
        "a refused rm removed the folder"
    );
    assert!(files(&["rm", "--permanent", "--recursive", "docs"])?.contains("deleted docs"));
    assert!(!root.join("docs").exists());
    Ok(())
}

#[tokio::test]
async fn git_commands_stage_commit_branch_and_sync_with_a_remote() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let root = sandbox.project_dir("repo");
    let remote = sandbox.root().join("remote.git");
    std::fs::create_dir_all(&root)?;
    git(
        sandbox.root(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            &remote.display().to_string(),
        ],
    )?;
    git(&root, &["init", "-q", "-b", "main"])?;
    git(&root, &["config", "user.name", "Test"])?;
    git(&root, &["config", "user.email", "test@example.com"])?;
    std::fs::write(root.join("readme.md"), "first\n")?;
    git(&root, &["add", "-A"])?;
    git(&root, &["commit", "-q", "-m", "first"])?;
    git(
        &root,
        &["remote", "add", "origin", &remote.display().to_string()],
    )?;
    let at = std::fs::canonicalize(&root)?.display().to_string();
    ok(&sandbox, &["projects", "open", &at])?;
    let cli = |args: &[&str]| {
        let mut all = vec!["git", "--project", at.as_str()];
        all.extend_from_slice(args);
        ok(&sandbox, &all)
    };

    std::fs::write(root.join("readme.md"), "first\nsecond\n")?;
    std::fs::write(root.join("new.txt"), "new\n")?;
    let status = cli(&["status"])?;
    assert!(status.contains("main"), "{status}");
    assert!(
        status.contains("readme.md") && status.contains("new.txt"),
        "{status}"
    );
    let diff = cli(&["diff"])?;
    assert!(diff.contains("+second"), "{diff}");
    assert!(cli(&["diff", "--stat"])?.contains("readme.md"));

    cli(&["add", "--all"])?;
    assert!(git(&root, &["diff", "--cached", "--name-only"])?.contains("new.txt"));
    cli(&["reset", "new.txt"])?;
    assert!(!git(&root, &["diff", "--cached", "--name-only"])?.contains("new.txt"));
    cli(&["add", "new.txt"])?;
    let staged = cli(&["diff", "--staged"])?;
    assert!(
        staged.contains("+new") && staged.contains("+second"),
        "{staged}"
    );
    assert!(cli(&["diff", "--head", "--", "readme.md"])?.contains("+second"));

    let committed = cli(&["commit", "-m", "second"])?;
    assert!(!committed.trim().is_empty());
    assert!(git(&root, &["log", "--format=%s"])?.starts_with("second\nfirst"));
    let log = cli(&["log", "-n", "5"])?;
    assert!(log.contains("second") && log.contains("first"), "{log}");
    assert!(cli(&["log", "--path", "new.txt"])?.contains("second"));
    assert!(cli(&["diff", "HEAD~1", "HEAD"])?.contains("+new"));
    let json: serde_json::Value = serde_json::from_str(&ok(
        &sandbox,
        &["--json", "git", "--project", &at, "status"],
    )?)?;
    assert!(json.is_object(), "{json}");

    // Branches: made, switched to, listed, deleted.
    cli(&["branches", "--create", "topic"])?;
    assert!(cli(&["branches"])?.contains("topic"));
    cli(&["switch", "topic"])?;
    assert_eq!(git(&root, &["branch", "--show-current"])?.trim(), "topic");
    cli(&["switch", "-c", "other", "--from", "main"])?;
    assert_eq!(git(&root, &["branch", "--show-current"])?.trim(), "other");
    cli(&["switch", "main"])?;
    cli(&["branches", "--delete", "other"])?;
    assert!(!git(&root, &["branch"])?.contains("other"));

    // Push with an upstream, then a change made elsewhere comes back with
    // fetch and pull.
    cli(&["push", "--set-upstream", "origin", "main"])?;
    assert_eq!(
        git(&remote, &["rev-parse", "main"])?,
        git(&root, &["rev-parse", "HEAD"])?
    );
    let other = sandbox.root().join("other-clone");
    git(
        sandbox.root(),
        &[
            "clone",
            "-q",
            &remote.display().to_string(),
            &other.display().to_string(),
        ],
    )?;
    std::fs::write(other.join("from-elsewhere.txt"), "hello\n")?;
    git(&other, &["add", "-A"])?;
    git(&other, &["commit", "-q", "-m", "elsewhere"])?;
    git(&other, &["push", "-q", "origin", "main"])?;
    cli(&["fetch"])?;
    assert!(cli(&["status"])?.contains("main"));
    cli(&["pull"])?;
    assert_eq!(
        std::fs::read_to_string(root.join("from-elsewhere.txt"))?,
        "hello\n"
    );
    assert!(cli(&["log", "-n", "1"])?.contains("elsewhere"));
    // The project and its repository's changes are on the event bus.
    let events = events_listed(&sandbox)?;
    assert!(events.contains("repo"), "{events}");
    Ok(())
}

#[tokio::test]
async fn project_commands_create_show_close_and_list() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let path = sandbox.project_dir("made");
    let at = path.display().to_string();
    let created = ok(&sandbox, &["projects", "create", &at])?;
    assert!(created.contains("made"), "{created}");
    assert!(path.is_dir());
    let shown = ok(&sandbox, &["projects", "show", &at])?;
    assert!(shown.contains(&at), "{shown}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&sandbox, &["--json", "projects", "ls"])?)?;
    assert!(json.to_string().contains("made"), "{json}");
    ok(&sandbox, &["projects", "close", &at])?;
    let listed = ok(&sandbox, &["projects", "ls"])?;
    assert!(
        listed.contains("made"),
        "a closed project stays in the list:\n{listed}"
    );
    // Not empty: create refuses a folder with something in it.
    let full = sandbox.project_dir("full");
    std::fs::create_dir_all(&full)?;
    std::fs::write(full.join("x"), "x")?;
    assert!(
        !refused(
            &sandbox,
            &["projects", "create", &full.display().to_string()]
        )?
        .is_empty()
    );
    Ok(())
}

#[tokio::test]
async fn model_commands_against_the_fake_ollama() -> TestResult {
    let setup = crate::ollama::setup(&[], "").await?;
    crate::ollama::wait_status(
        &setup.client,
        "RUNNING",
        crate::ollama::is(omnipanel_client::proto::v1::ServerState::Running),
    )
    .await?;
    let sandbox = &setup.sandbox;
    assert!(ok(sandbox, &["models", "pull", "test-small"])?.contains("pulled test-small"));
    assert!(ok(sandbox, &["models", "ls"])?.contains("test-small:latest"));
    let shown = ok(sandbox, &["models", "show", "test-small"])?;
    assert!(shown.contains("test-small"), "{shown}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(sandbox, &["--json", "models", "show", "test-small"])?)?;
    assert!(json.is_object(), "{json}");

    ok(
        sandbox,
        &["models", "load", "test-small", "--keep-alive", "10m"],
    )?;
    assert!(ok(sandbox, &["models", "ps"])?.contains("test-small"));
    ok(sandbox, &["models", "unload", "test-small"])?;

    ok(sandbox, &["models", "default", "test-small"])?;
    assert!(ok(sandbox, &["models", "default"])?.contains("test-small"));
    ok(sandbox, &["models", "default", "--clear"])?;
    assert!(!ok(sandbox, &["models", "default"])?.contains("test-small"));

    let fit = ok(sandbox, &["models", "fit", "test-small"])?;
    assert!(fit.contains("test-small"), "{fit}");
    let pulls = ok(sandbox, &["models", "pulls"])?;
    assert!(
        pulls.contains("test-small"),
        "the finished pull is listed:\n{pulls}"
    );
    assert!(ok(sandbox, &["models", "providers"])?.contains("ollama"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(sandbox, &["--json", "models", "pulls"])?)?;
    assert!(json.is_object(), "{json}");

    ok(sandbox, &["models", "rm", "test-small"])?;
    assert!(!ok(sandbox, &["models", "ls"])?.contains("test-small"));

    // What happened is on the event bus, described line by line.
    let events = events_listed(sandbox)?;
    assert!(events.contains("test-small"), "{events}");
    Ok(())
}

/// A file larger than the agent reads at once (`files.max_read_mb`) is
/// printed whole, read in parts; a symlink is shown as one; `ls` orders by
/// modification time; `--json` works for ls, cp, mv and write.
#[tokio::test]
async fn files_cat_reads_a_large_file_in_parts_and_symlinks_are_shown() -> TestResult {
    let sandbox = Sandbox::new()?;
    sandbox.write_config("[files]\nmax_read_mb = 1\n")?;
    let _agent = sandbox.start_agent().await?;
    let root = sandbox.project_dir("big");
    std::fs::create_dir_all(&root)?;
    // 2.5 MB of text that shows where each part starts.
    let big: String = (0..250_000).map(|n| format!("{n:09}\n")).collect();
    std::fs::write(root.join("big.txt"), &big)?;
    std::fs::write(root.join("old.txt"), "old")?;
    std::os::unix::fs::symlink("big.txt", root.join("link"))?;
    let at = std::fs::canonicalize(&root)?.display().to_string();
    ok(&sandbox, &["projects", "open", &at])?;
    let files = |args: &[&str]| {
        let mut all = vec!["files", "--project", at.as_str()];
        all.extend_from_slice(args);
        ok(&sandbox, &all)
    };

    let printed = files(&["cat", "big.txt"])?;
    assert_eq!(printed.len(), big.len());
    assert!(printed == big, "the parts were not put together in order");

    let stat = files(&["stat", "link"])?;
    assert!(
        stat.contains("symlink") && stat.contains("big.txt"),
        "{stat}"
    );
    let listed = files(&["ls"])?;
    assert!(listed.contains("link -> big.txt"), "{listed}");
    std::fs::write(root.join("new.txt"), "new")?;
    let by_time = files(&["ls", "--sort", "modified"])?;
    let at_line = |name: &str| {
        by_time
            .lines()
            .position(|l| l.contains(name))
            .ok_or_else(|| format!("{name} is not listed:\n{by_time}"))
    };
    assert!(
        at_line("new.txt")? < at_line("old.txt")?,
        "newest first:\n{by_time}"
    );

    let json = |args: &[&str]| -> TestResult<serde_json::Value> {
        let mut all = vec!["--json", "files", "--project", at.as_str()];
        all.extend_from_slice(args);
        Ok(serde_json::from_str(&ok(&sandbox, &all)?)?)
    };
    assert!(json(&["ls"])?["entries"].is_array());
    assert!(json(&["cp", "old.txt", "copy.txt", "--overwrite", "replace"])?.is_object());
    assert!(json(&["mv", "copy.txt", "moved.txt"])?.is_object());
    assert_eq!(std::fs::read_to_string(root.join("moved.txt"))?, "old");
    Ok(())
}

/// The model commands with `--json` print one object a script can read,
/// with what the text says; a project's preferred model is set and
/// cleared through `models default --project`.
#[tokio::test]
async fn model_commands_print_json_and_set_a_projects_model() -> TestResult {
    let setup = crate::ollama::setup(&[], "").await?;
    crate::ollama::wait_status(
        &setup.client,
        "RUNNING",
        crate::ollama::is(omnipanel_client::proto::v1::ServerState::Running),
    )
    .await?;
    let sandbox = &setup.sandbox;
    let json = |args: &[&str]| -> TestResult<serde_json::Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        Ok(serde_json::from_str(&ok(sandbox, &all)?)?)
    };
    assert!(ok(sandbox, &["models", "pulls"])?.contains("no pulls"));
    ok(sandbox, &["models", "pull", "test-small"])?;

    let loaded = ok(sandbox, &["models", "load", "test-small"])?;
    assert!(loaded.starts_with("loaded test-small"), "{loaded}");
    let ps = json(&["models", "ps"])?;
    assert!(ps.to_string().contains("test-small"), "{ps}");
    assert!(json(&["models", "unload", "test-small"])?.is_object());
    assert!(json(&["models", "load", "test-small"])?.is_object());
    let fit = json(&["models", "fit", "test-small"])?;
    assert!(fit.get("modelBytes").is_some(), "{fit}");
    let is_small = |value: &serde_json::Value| {
        value["model"]
            .as_str()
            .is_some_and(|m| m.starts_with("test-small"))
    };
    let set = json(&["models", "default", "test-small"])?;
    assert!(is_small(&set), "{set}");
    let shown = json(&["models", "default"])?;
    assert!(is_small(&shown), "{shown}");

    let folder = sandbox.project_dir("modelled");
    std::fs::create_dir_all(&folder)?;
    let at = std::fs::canonicalize(&folder)?.display().to_string();
    ok(sandbox, &["projects", "open", &at])?;
    let uses = ok(
        sandbox,
        &["models", "default", "test-small", "--project", &at],
    )?;
    assert_eq!(uses.trim(), "modelled uses test-small");
    let project = json(&["models", "default", "--clear", "--project", &at])?;
    assert_eq!(
        project["preferredModel"].as_str().unwrap_or_default(),
        "",
        "{project}"
    );
    assert!(project.is_object(), "{project}");
    let cleared = ok(sandbox, &["models", "default", "--project", &at])?;
    assert!(
        cleared.contains("modelled has no preferred model: it uses the default model"),
        "{cleared}"
    );

    let removed = json(&["models", "rm", "test-small"])?;
    assert!(removed.is_object(), "{removed}");
    assert!(!ok(sandbox, &["models", "ls"])?.contains("test-small"));
    Ok(())
}

#[tokio::test]
async fn alert_threshold_commands_edit_the_set_and_sys_reports_the_machine() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let set = ok(
        &sandbox,
        &[
            "alerts",
            "thresholds",
            "set",
            "memory.used_percent",
            "above",
            "97",
            "--for",
            "30s",
        ],
    )?;
    assert!(set.contains("memory.used_percent"), "{set}");
    let shown = ok(&sandbox, &["alerts", "thresholds"])?;
    assert!(
        shown.contains("memory.used_percent") && shown.contains("97"),
        "{shown}"
    );
    // A clear level on the wrong side of the limit is refused.
    assert!(
        !refused(
            &sandbox,
            &[
                "alerts",
                "thresholds",
                "set",
                "cpu.usage_percent",
                "above",
                "90",
                "--clear-above",
                "95"
            ]
        )?
        .is_empty()
    );
    ok(
        &sandbox,
        &["alerts", "thresholds", "rm", "memory.used_percent"],
    )?;
    assert!(!ok(&sandbox, &["alerts", "thresholds"])?.contains("97"));
    assert!(ok(&sandbox, &["alerts", "thresholds", "reset"])?.contains("built-in thresholds"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&sandbox, &["--json", "alerts", "thresholds"])?)?;
    assert!(json.is_object(), "{json}");
    ok(&sandbox, &["alerts", "ls"])?;

    let sys = ok(&sandbox, &["sys"])?;
    assert!(sys.contains("CPU") || sys.contains("cpu"), "{sys}");
    assert!(!ok(&sandbox, &["sys", "ps"])?.trim().is_empty());
    let json: serde_json::Value = serde_json::from_str(&ok(&sandbox, &["--json", "sys"])?)?;
    assert!(json.is_object(), "{json}");
    // `sys top` piped: whole frames, as many as --count asks for.
    let top = ok(
        &sandbox,
        &[
            "sys",
            "top",
            "--interval",
            "100ms",
            "--count",
            "2",
            "--sort",
            "memory",
            "-n",
            "3",
        ],
    )?;
    assert_eq!(top.matches("omnipanel sys top").count(), 2, "{top}");
    let frame = ok(
        &sandbox,
        &[
            "--json",
            "sys",
            "top",
            "--interval",
            "100ms",
            "--count",
            "1",
        ],
    )?;
    assert!(frame.trim_start().starts_with('{'), "{frame}");

    let settings = ok(&sandbox, &["settings", "get"])?;
    assert!(settings.contains("log.filter"), "{settings}");
    ok(&sandbox, &["settings", "set", "events.history", "128"])?;
    ok(&sandbox, &["settings", "reset", "events.history"])?;
    let events = events_listed(&sandbox)?;
    assert!(
        events.contains("events.history"),
        "the settings change is listed:\n{events}"
    );
    Ok(())
}

#[tokio::test]
async fn search_commands_take_their_options_and_watch_stops_on_ctrl_c() -> TestResult {
    let sandbox = Sandbox::new()?;
    let _agent = sandbox.start_agent().await?;
    let root = sandbox.project_dir("search");
    std::fs::create_dir_all(root.join("src"))?;
    std::fs::write(
        root.join("src/lib.rs"),
        "// before\nfn Needle() {}\n// after\nlet needles = 2;\n",
    )?;
    std::fs::write(root.join("notes.md"), "a needle in notes\n")?;
    let at = std::fs::canonicalize(&root)?.display().to_string();
    ok(&sandbox, &["projects", "open", &at])?;
    let files = |args: &[&str]| {
        let mut all = vec!["files", "--project", at.as_str()];
        all.extend_from_slice(args);
        sandbox.cli(&all)
    };

    // Case, words, globs, context, a limit and regexes.
    let output = files(&["grep", "-i", "-w", "needle"])?;
    let text = stdout(&output);
    assert!(
        text.contains("src/lib.rs:2:") && text.contains("notes.md:1:"),
        "{text}"
    );
    assert!(
        !text.contains("needles"),
        "-w matched a longer word:\n{text}"
    );
    assert!(
        stderr(&output).contains("2 matches in 2 files"),
        "{}",
        stderr(&output)
    );
    let text = stdout(&files(&["grep", "-i", "needle", "-g", "*.rs", "-C", "1"])?);
    assert!(
        text.contains("before") && text.contains("after"),
        "context lines:\n{text}"
    );
    assert!(
        !text.contains("notes.md"),
        "-g *.rs searched notes.md:\n{text}"
    );
    let text = stdout(&files(&["grep", "needle", "--exclude", "*.md"])?);
    assert!(
        text.contains("needles") && !text.contains("notes.md"),
        "{text}"
    );
    let output = files(&["grep", "-i", "needle", "-m", "1"])?;
    assert!(
        stderr(&output).contains("stopped at the limit"),
        "{}",
        stderr(&output)
    );
    let text = stdout(&files(&["grep", "-e", "fn [A-Z][a-z]+\\(", "-A", "1"])?);
    assert!(text.contains("Needle") && text.contains("after"), "{text}");
    let json = sandbox.cli(&["--json", "files", "--project", &at, "grep", "needle"])?;
    assert!(
        stdout(&json)
            .lines()
            .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok())
    );
    let nothing = files(&["grep", "no such text anywhere"])?;
    assert_eq!(
        nothing.status.code(),
        Some(1),
        "grep exits 1 when nothing matched"
    );

    let found: serde_json::Value = serde_json::from_str(&stdout(&sandbox.cli(&[
        "--json",
        "files",
        "--project",
        &at,
        "find",
        "lib",
    ])?))?;
    assert!(found.to_string().contains("src/lib.rs"), "{found}");
    let none = files(&["find", "zzzqqq"])?;
    assert!(
        stderr(&none).contains("no file name matches"),
        "{}",
        stderr(&none)
    );

    // watch prints changes as they happen; Ctrl-C ends it cleanly. When
    // its stream is open is not visible from here: new files are made
    // until one is reported.
    let mut watch = sandbox.cli_follow(&["files", "--project", &at, "watch"])?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let maker = {
        let stop = stop.clone();
        let root = root.clone();
        std::thread::spawn(move || {
            let mut made = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && made < 300 {
                made += 1;
                let _ = std::fs::write(root.join(format!("new-{made}.txt")), "x");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        })
    };
    let seen = watch.line_matching("a created file", |l| l.contains("created new-"));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = maker.join();
    seen?;
    let pid = rustix::process::Pid::from_raw(i32::try_from(watch.pid())?).ok_or("no pid")?;
    rustix::process::kill_process(pid, rustix::process::Signal::INT)?;
    omnipanel_tests::eventually("files watch to end on Ctrl-C", || !watch.is_running()).await?;
    Ok(())
}
