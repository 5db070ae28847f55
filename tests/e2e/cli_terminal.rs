//! The CLI on a terminal, as a person runs it: on a pseudo-terminal
//! (util-linux `script`), `models pull` draws its progress bar, `chat`
//! prompts and takes its commands, and `sys top` takes the screen, answers
//! keys and gives the screen back. And the GPUs as `sys`, `sys top`,
//! `models fit` and the gateway's `/metrics` show them, read by the agent
//! through NVML from a fake NVIDIA driver (`tests/doubles/nvml/fake_nvml.c`,
//! built here with `cc`).

use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use omnipanel_client::proto::v1 as pb;
use omnipanel_tests::{PATIENCE, Sandbox, TestResult, binary, free_port, stderr, stdout};

use crate::ollama::{is, setup, wait_status};

/// A CLI command running on a pseudo-terminal, and what it has drawn.
struct OnTerminal {
    child: Child,
    keys: ChildStdin,
    screen: mpsc::Receiver<Vec<u8>>,
    drawn: String,
}

impl OnTerminal {
    fn start(sandbox: &Sandbox, args: &[&str]) -> TestResult<Self> {
        let line = std::iter::once(binary("omnipanel").display().to_string())
            .chain(args.iter().map(|arg| (*arg).to_owned()))
            .map(|word| format!("'{}'", word.replace('\'', r"'\''")))
            .collect::<Vec<_>>()
            .join(" ");
        // -q: no banner; -e: the command's exit status; -f: pass on what is
        // drawn at once; the typescript file is not wanted.
        let mut child = sandbox
            .command(Path::new("script"))
            .args(["-qefc", &line, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let keys = child.stdin.take().ok_or("no stdin")?;
        let mut output = child.stdout.take().ok_or("no stdout")?;
        let (drawn, screen) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = output.read(&mut buffer) {
                if drawn.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            keys,
            screen,
            drawn: String::new(),
        })
    }

    /// Wait (bounded) until `text` has been drawn after byte `from`.
    fn wait_for(&mut self, text: &str, from: usize) -> TestResult {
        let deadline = Instant::now() + PATIENCE;
        while !self.drawn.get(from..).unwrap_or_default().contains(text) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.screen.recv_timeout(left) {
                Ok(bytes) => self.drawn.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => {
                    return Err(format!("{text:?} was never drawn:\n{}", self.drawn).into());
                }
            }
        }
        Ok(())
    }

    /// Type `line` at a prompt; wait (bounded) for `answer`, then the next
    /// prompt.
    fn say(&mut self, line: &str, answer: &str) -> TestResult {
        let mark = self.drawn.len();
        self.type_key(&format!("{line}\n"))?;
        self.wait_for(answer, mark)?;
        self.wait_for(">>> ", mark)
    }

    fn type_key(&mut self, key: &str) -> TestResult {
        self.keys.write_all(key.as_bytes())?;
        self.keys.flush()?;
        Ok(())
    }

    /// Wait (bounded) for the command to end: its status and all it drew.
    fn finish(&mut self) -> TestResult<(ExitStatus, String)> {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                return Err(format!("still running:\n{}", self.drawn).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The reader ends when `script`, the only holder of the pipe, has
        // exited.
        while let Ok(bytes) = self.screen.recv_timeout(PATIENCE) {
            self.drawn.push_str(&String::from_utf8_lossy(&bytes));
        }
        Ok((status, self.drawn.clone()))
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn a_pull_draws_a_progress_bar_and_chat_prompts_on_a_terminal() -> TestResult {
    // test-small is a few kB: a few seconds at this rate.
    let setup = setup(&[("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "3000")], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let mut pull = OnTerminal::start(&setup.sandbox, &["models", "pull", "test-small"])?;
    // The bar's fields: the agent's speed and its ETA.
    pull.wait_for("/s", 0)?;
    pull.wait_for("ETA", 0)?;
    let (status, drawn) = pull.finish()?;
    assert!(status.success(), "{status}:\n{drawn}");
    assert!(drawn.contains("pulled test-small"), "{drawn}");
    assert!(drawn.contains('['), "no bar was drawn:\n{drawn}");

    // Chat on the terminal: a prompt, the commands, a reply.
    let mut chat = OnTerminal::start(&setup.sandbox, &["chat", "test-small"])?;
    chat.wait_for(
        "Chatting with test-small. /help lists commands, /bye quits.",
        0,
    )?;
    chat.wait_for(">>> ", 0)?;
    chat.say("/help", "/clear   forget the conversation so far")?;
    chat.say("/what", "unknown command /what; /help lists them")?;
    chat.say("hello", "\n")?;
    chat.say("/clear", "(conversation cleared)")?;
    chat.type_key("/bye\n")?;
    let (status, drawn) = chat.finish()?;
    assert!(status.success(), "{status}:\n{drawn}");
    Ok(())
}

/// The fake driver library, built with the C compiler into `dir`.
fn fake_nvml(dir: &Path) -> TestResult<PathBuf> {
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/doubles/nvml/fake_nvml.c");
    let library = dir.join("libfake-nvml.so");
    let built = std::process::Command::new(std::env::var_os("CC").unwrap_or_else(|| "cc".into()))
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(source)
        .output()?;
    if !built.status.success() {
        return Err(format!("the fake NVML did not build: {}", stderr(&built)).into());
    }
    Ok(library)
}

/// With GPUs (the fake driver's two), `sys` lists them with what uses
/// them, `models fit` weighs a model against their free memory, and `sys
/// top` draws a bar for each.
#[tokio::test]
async fn sys_and_fit_show_the_gpus_and_top_answers_keys_on_a_terminal() -> TestResult {
    let driver = tempfile::tempdir()?;
    let library = fake_nvml(driver.path())?.display().to_string();
    let gateway = free_port()?;
    let setup = setup(
        &[("OMNIPANEL_NVML_LIBRARY", &library)],
        &format!("\n[gateway]\nlisten = \"127.0.0.1:{gateway}\"\n"),
    )
    .await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let sandbox = &setup.sandbox;

    // The gateway's /metrics has a sample per GPU.
    let token = setup
        .client
        .agent()
        .create_token(pb::CreateTokenRequest {
            name: "scraper".into(),
            scopes: vec![pb::Scope::Infer.into()],
            ..Default::default()
        })
        .await?
        .into_inner()
        .token;
    let metrics = omnipanel_tests::reqwest_builder()
        .build()?
        .get(format!("http://127.0.0.1:{gateway}/metrics"))
        .bearer_auth(&token)
        .send()
        .await?
        .text()
        .await?;
    for sample in [
        "omnipanel_gpu_memory_used_bytes{gpu=\"0\",name=\"Fake GPU 9000\"} 6442450944",
        "omnipanel_gpu_memory_total_bytes{gpu=\"1\",name=\"Fake GPU 100\"} 8589934592",
        "omnipanel_gpu_utilization_ratio{gpu=\"0\",name=\"Fake GPU 9000\"} 0.37",
    ] {
        assert!(
            metrics.contains(sample),
            "{sample:?} is missing:\n{metrics}"
        );
    }

    let sys = sandbox.cli(&["sys"])?;
    assert!(sys.status.success(), "{}", stderr(&sys));
    let text = stdout(&sys);
    for shown in [
        "GPU 0  Fake GPU 9000  VRAM",
        "(25 %), busy 37 %, 55 °C, 123 W",
        "GPU 1  Fake GPU 100  VRAM",
        "pid 4242",
        "pid 4343",
    ] {
        assert!(text.contains(shown), "{shown:?} is not shown:\n{text}");
    }
    let json: serde_json::Value = serde_json::from_str(&stdout(&sandbox.cli(&["--json", "sys"])?))?;
    assert_eq!(
        json["snapshot"]["gpu"]["gpus"][0]["name"], "Fake GPU 9000",
        "{json}"
    );

    let fit = sandbox.cli(&["models", "fit", "llama3.2:1b"])?;
    assert!(fit.status.success(), "{}", stderr(&fit));
    let fit = stdout(&fit);
    assert!(fit.contains("llama3.2:1b: fits in GPU memory"), "{fit}");
    assert!(
        fit.contains("GPU memory   ") && fit.contains(" free of "),
        "{fit}"
    );
    let big = stdout(&sandbox.cli(&["models", "fit", "llama3.1:70b"])?);
    // What else it says depends on this machine's free RAM and disk; the
    // fake GPU's 19 GB cannot hold it either way.
    assert!(
        big.contains("runs on the CPU only (too large for free GPU memory)")
            || big.contains("too large: fits neither in GPU memory nor in RAM")
            || big.contains("not enough free disk to download it"),
        "{big}"
    );
    assert!(big.contains("GPU memory   19 GB free of 26 GB"), "{big}");

    let mut top = OnTerminal::start(sandbox, &["sys", "top", "--interval", "250ms"])?;
    top.wait_for("GPU0 [", 0)?;
    top.wait_for("(by CPU)", 0)?;
    let mark = top.drawn.len();
    top.type_key("m")?;
    top.wait_for("(by memory)", mark)?;
    let mark = top.drawn.len();
    top.type_key("c")?;
    top.wait_for("(by CPU)", mark)?;
    top.type_key("q")?;
    let (status, drawn) = top.finish()?;
    assert!(status.success(), "{status}:\n{drawn}");
    // It took the alternate screen and gave it back, cursor shown again.
    assert!(drawn.contains("\x1b[?1049h"), "{drawn}");
    assert!(drawn.contains("\x1b[?25h\x1b[?1049l"), "{drawn}");
    Ok(())
}
