//! The CLI's provider and model-choice commands end to end, against the
//! real agent supervising fake-ollama and a fake-openai server that wants
//! an API key: `providers add` with the key on stdin (and the errors when
//! it is missing), `providers list`, `models list --all`, chat through
//! `name/model`, a project's preferred model (`models default --project`,
//! `projects show`, chat with no model), `embed`, `providers remove`.

use std::process::{Child, Command, Stdio};

use omnipanel_tests::{Sandbox, TestResult, binary, eventually, free_port, stderr, stdout};

use crate::ollama::{is, setup, wait_status};

const KEY: &str = "sk-fake-e2e-0123456789";

/// A fake-openai server on a free port, stopped when dropped.
struct FakeOpenAi {
    child: Child,
    port: u16,
}

impl FakeOpenAi {
    async fn start(env: &[(&str, &str)]) -> TestResult<Self> {
        let port = free_port()?;
        let mut command = Command::new(binary("fake-openai"));
        command
            .arg("serve")
            .env("FAKE_OPENAI_ADDR", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (key, value) in env {
            command.env(key, value);
        }
        let fake = Self {
            child: command.spawn()?,
            port,
        };
        eventually("fake-openai to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await?;
        Ok(fake)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        omnipanel_tests::stop_child(&mut self.child);
    }
}

/// Run the CLI, which must succeed; its stdout.
fn ok(sandbox: &Sandbox, args: &[&str]) -> TestResult<String> {
    let output = sandbox.cli(args)?;
    if !output.status.success() {
        return Err(format!(
            "`omnipanel {}` failed ({}): {}{}",
            args.join(" "),
            output.status,
            stdout(&output),
            stderr(&output)
        )
        .into());
    }
    Ok(stdout(&output))
}

#[tokio::test]
async fn an_openai_server_is_added_with_a_key_from_stdin_listed_and_used() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(
        &setup.client,
        "RUNNING",
        is(omnipanel_client::proto::v1::ServerState::Running),
    )
    .await?;
    let sandbox = &setup.sandbox;
    let openai = FakeOpenAi::start(&[("FAKE_OPENAI_API_KEY", KEY)]).await?;
    let url = openai.url();

    // Without the key the server refuses, and nothing is saved.
    let refused = sandbox.cli(&["providers", "add", "lmstudio", &url, "--kind", "openai"])?;
    assert!(!refused.status.success(), "added without its key");
    let said = stderr(&refused);
    assert!(
        said.contains("key") || said.contains("401") || said.contains("UNAUTHORIZED"),
        "the error names the key: {said}"
    );
    assert!(!ok(sandbox, &["providers", "list"])?.contains("lmstudio"));
    // An empty stdin is refused before anything is sent.
    let empty = sandbox.cli_with_input(
        &[
            "providers",
            "add",
            "lmstudio",
            &url,
            "--kind",
            "openai",
            "--api-key-stdin",
        ],
        "",
    )?;
    assert!(!empty.status.success());
    assert!(stderr(&empty).contains("stdin"), "{}", stderr(&empty));

    let added = sandbox.cli_with_input(
        &[
            "providers",
            "add",
            "lmstudio",
            &url,
            "--kind",
            "openai",
            "--api-key-stdin",
            "--header",
            "X-Team=blue",
            "--timeout",
            "20s",
        ],
        &format!("{KEY}\n"),
    )?;
    let text = stdout(&added);
    assert!(added.status.success(), "{text}{}", stderr(&added));
    assert!(text.contains("added provider lmstudio (openai)"), "{text}");

    let listed = ok(sandbox, &["providers", "list"])?;
    let row = listed
        .lines()
        .find(|line| line.starts_with("lmstudio"))
        .ok_or(format!("no lmstudio row: {listed}"))?;
    for word in ["openai", "X-Team", "yes", &url] {
        assert!(row.contains(word), "{word} in {row}");
    }
    assert!(
        !listed.contains(KEY) && !listed.contains("blue"),
        "{listed}"
    );
    // The older name lists the same.
    assert!(ok(sandbox, &["models", "providers"])?.contains("lmstudio"));

    let all = ok(sandbox, &["models", "list", "--all"])?;
    assert!(all.contains("PROVIDER"), "{all}");
    let qwen = all
        .lines()
        .find(|line| line.contains("qwen2.5-7b-instruct"))
        .ok_or(format!("no qwen row: {all}"))?;
    assert!(qwen.contains("lmstudio"), "{qwen}");

    let chat =
        sandbox.cli_with_input(&["chat", "lmstudio/qwen2.5-7b-instruct"], "hello there\n")?;
    assert!(chat.status.success(), "{}", stderr(&chat));
    assert!(
        stdout(&chat).contains("hello there This is a canned answer from fake-openai."),
        "{}",
        stdout(&chat)
    );

    // A project's preferred model: set, shown, used by a chat naming none.
    let project = sandbox.project_dir("proj");
    std::fs::create_dir_all(&project)?;
    let path = project.display().to_string();
    ok(sandbox, &["projects", "open", &path])?;
    let set = ok(
        sandbox,
        &[
            "models",
            "default",
            "lmstudio/qwen2.5-7b-instruct",
            "--project",
            &path,
        ],
    )?;
    assert!(set.contains("uses lmstudio/qwen2.5-7b-instruct"), "{set}");
    let shown = ok(sandbox, &["projects", "show", &path])?;
    assert!(
        shown.contains("model        lmstudio/qwen2.5-7b-instruct"),
        "{shown}"
    );
    let chat = sandbox.cli_with_input(&["chat", "--project", &path], "from the project\n")?;
    assert!(chat.status.success(), "{}", stderr(&chat));
    assert!(
        stdout(&chat).contains("from the project This is a canned answer from fake-openai."),
        "{}",
        stdout(&chat)
    );
    let cleared = ok(
        sandbox,
        &["models", "default", "--clear", "--project", &path],
    )?;
    assert!(cleared.contains("no preferred model"), "{cleared}");

    let embedded = ok(
        sandbox,
        &[
            "embed",
            "--model",
            "lmstudio/text-embedding-nomic-embed-text-v1.5",
            "one",
            "two",
        ],
    )?;
    assert_eq!(
        embedded
            .lines()
            .filter(|l| l.starts_with("16 dimensions"))
            .count(),
        2,
        "{embedded}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(
        sandbox,
        &[
            "--json",
            "embed",
            "--model",
            "lmstudio/text-embedding-nomic-embed-text-v1.5",
            "one",
        ],
    )?)?;
    assert_eq!(
        json["embeddings"][0]["values"].as_array().map(Vec::len),
        Some(16)
    );

    ok(sandbox, &["providers", "remove", "lmstudio"])?;
    assert!(!ok(sandbox, &["providers", "list"])?.contains("lmstudio"));
    Ok(())
}

#[tokio::test]
async fn a_key_comes_from_the_variable_named_and_a_missing_one_is_named() -> TestResult {
    let setup = setup(&[], "").await?;
    let sandbox = &setup.sandbox;
    let openai = FakeOpenAi::start(&[("FAKE_OPENAI_API_KEY", KEY)]).await?;
    let url = openai.url();
    let missing = sandbox.cli(&[
        "providers",
        "add",
        "vllm",
        &url,
        "--kind",
        "openai",
        "--api-key-env",
        "NO_SUCH_VARIABLE_HERE",
    ])?;
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("NO_SUCH_VARIABLE_HERE"),
        "{}",
        stderr(&missing)
    );
    let added = sandbox.cli_with_env(
        &[
            "providers",
            "add",
            "vllm",
            &url,
            "--kind",
            "openai",
            "--api-key-env",
            "VLLM_KEY",
        ],
        &[("VLLM_KEY", KEY)],
    )?;
    assert!(added.status.success(), "{}", stderr(&added));
    let row = ok(sandbox, &["providers", "list"])?;
    assert!(
        row.lines()
            .any(|l| l.starts_with("vllm") && l.contains("yes")),
        "{row}"
    );
    Ok(())
}
