//! Ollama hurt under the agent, with the fake Ollama
//! (tests/doubles/ollama) as the managed server: stopped with SIGSTOP (a
//! hang no switch simulates: the process exists and its port accepts
//! connections, nothing answers), killed with SIGKILL in the middle of a
//! pull and of a chat, and left without disk space in the middle of a pull
//! (its models folder a full tmpfs: the fake, like Ollama, fails the pull
//! when it cannot write).

use std::time::{Duration, Instant};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{AgentProcess, PATIENCE, Sandbox, TestResult, eventually, process_exists};
use rustix::process::{Pid, Signal, kill_process};
use tonic::Code;

use crate::{
    faults::{Mount, Outcome, check, is_root},
    report::Report,
};

pub async fn run(only: Option<&str>, report: &mut Report) {
    check(
        report,
        only,
        "disk full during a pull",
        "the pull stops (FAILED, not retried in a loop) with Ollama's message naming the full disk; once space is freed a new pull resumes from the bytes already there and SUCCEEDS",
        disk_full_pull,
    )
    .await;
    check(
        report,
        only,
        "Ollama SIGSTOPped",
        "the hang is detected by the health check, the stopped process killed and a new server started (RUNNING, another pid)",
        sigstop,
    )
    .await;
    check(
        report,
        only,
        "Ollama killed (SIGKILL) during a pull",
        "the pull goes RETRYING, Ollama is restarted, the pull resumes from its saved bytes (not from 0) and SUCCEEDS",
        killed_during_pull,
    )
    .await;
    check(
        report,
        only,
        "Ollama killed (SIGKILL) during a chat",
        "the chat stream ends with UNAVAILABLE; Ollama is restarted and the next chat answers",
        killed_during_chat,
    )
    .await;
}

struct Managed {
    sandbox: Sandbox,
    _agent: AgentProcess,
    client: Client,
}

/// An agent managing the fake Ollama with `switches` in its environment.
async fn managed(switches: &[(&str, &str)]) -> TestResult<Managed> {
    managed_in(Sandbox::new()?, switches).await
}

async fn managed_in(sandbox: Sandbox, switches: &[(&str, &str)]) -> TestResult<Managed> {
    let (agent, _port) = sandbox
        .start_agent_with_fake_ollama(switches, "health_failures = 3\n")
        .await?;
    let client = agent.client().await?;
    Ok(Managed {
        sandbox,
        _agent: agent,
        client,
    })
}

/// Pull `model` to its end: the states it went through, the bytes it
/// started from, and its last progress.
async fn pull(client: &Client, model: &str) -> TestResult<(Vec<i32>, u64, pb::PullProgress)> {
    let mut stream = client
        .models()
        .pull_model(pb::PullModelRequest {
            model: model.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let (mut states, mut first, mut last) = (Vec::new(), None, None);
    while let Some(message) = tokio::time::timeout(PATIENCE, stream.message()).await?? {
        let progress = message.progress.ok_or("a pull message without progress")?;
        if states.last() != Some(&progress.state) {
            states.push(progress.state);
        }
        if progress.total_bytes > 0 {
            // The first message that knows the model's size: where the
            // download starts from.
            first.get_or_insert(progress.completed_bytes);
        }
        last = Some(progress);
    }
    Ok((states, first.unwrap_or(0), last.ok_or("no progress")?))
}

fn state_names(states: &[i32]) -> String {
    states
        .iter()
        .map(|s| {
            pb::PullState::try_from(*s)
                .map(|s| s.as_str_name())
                .unwrap_or("?")
        })
        .collect::<Vec<_>>()
        .join(" → ")
}

async fn disk_full_pull() -> Outcome {
    if !is_root() {
        return Ok(("not run: mounting a tmpfs needs root".to_owned(), false));
    }
    let sandbox = Sandbox::new()?;
    let models = sandbox.ollama_models();
    let mount = Mount::tmpfs(&models, "2m")?;
    // 64 MB/s: tinyllama's ~640 MB take about 10 s, time for the disk to
    // fill under it.
    let managed = managed_in(sandbox, &[("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "64000000")]).await?;
    running_other_than(&managed.client, 0).await?;
    let filler = managed.sandbox.ollama_models().join("filler.bin");
    let puller = {
        let client = managed.client.clone();
        tokio::spawn(async move { pull(&client, "tinyllama").await })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&filler)?;
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
    }
    let (states, _, stopped) = puller.await??;
    std::fs::remove_file(&filler)?;
    let (_, resumed_from, again) = pull(&managed.client, "tinyllama").await?;
    drop(mount);
    let failed = stopped.state == i32::from(pb::PullState::Failed);
    let says_why = stopped.error.to_lowercase().contains("space");
    Ok((
        format!(
            "states {}; error \"{}\" at {:.0} MB; after freeing space the next pull started at {:.0} MB and ended {}",
            state_names(&states),
            stopped.error,
            stopped.completed_bytes as f64 / 1e6,
            resumed_from as f64 / 1e6,
            pb::PullState::try_from(again.state)
                .map(|s| s.as_str_name())
                .unwrap_or("?")
        ),
        failed
            && says_why
            && resumed_from > 0
            && again.state == i32::from(pb::PullState::Succeeded),
    ))
}

async fn status(client: &Client) -> TestResult<pb::ServerStatus> {
    Ok(client
        .models()
        .get_server_status(pb::GetServerStatusRequest {})
        .await?
        .into_inner()
        .status
        .ok_or("no server status")?)
}

async fn running_other_than(client: &Client, old_pid: u32) -> TestResult<pb::ServerStatus> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = status(client).await?;
        if now.state == i32::from(pb::ServerState::Running) && now.pid != old_pid {
            return Ok(now);
        }
        if Instant::now() > deadline {
            return Err(format!("no running server other than pid {old_pid}: {now:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn signal(pid: u32, signal: Signal) -> TestResult {
    let pid = Pid::from_raw(i32::try_from(pid)?).ok_or("pid 0")?;
    kill_process(pid, signal)?;
    Ok(())
}

async fn sigstop() -> Outcome {
    let managed = managed(&[]).await?;
    let first = running_other_than(&managed.client, 0).await?;
    signal(first.pid, Signal::STOP)?;
    let stopped = Instant::now();
    let again = running_other_than(&managed.client, first.pid).await;
    let took = stopped.elapsed().as_secs_f64();
    let old_gone = eventually("the stopped server to be killed", || {
        !process_exists(first.pid)
    })
    .await
    .is_ok();
    if process_exists(first.pid) {
        // Do not leave a stopped process behind whatever happened.
        let _ = signal(first.pid, Signal::KILL);
    }
    Ok(match again {
        Ok(now) => (
            format!(
                "restarted after {took:.1} s (pid {} → {}, restarts {}, last error {:?}); stopped process gone: {old_gone}",
                first.pid, now.pid, now.restart_count, now.last_error
            ),
            old_gone,
        ),
        Err(err) => (format!("not restarted: {err}"), false),
    })
}

async fn killed_during_pull() -> Outcome {
    // tinyllama is ~640 MB: about 6 s at 100 MB/s.
    let managed = managed(&[("FAKE_OLLAMA_PULL_BYTES_PER_SEC", "100000000")]).await?;
    let first = running_other_than(&managed.client, 0).await?;
    let mut stream = managed
        .client
        .models()
        .pull_model(pb::PullModelRequest {
            model: "tinyllama".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut killed_at = 0;
    let mut states = Vec::new();
    let mut resumed_from = None;
    let mut last = None;
    let deadline = Instant::now() + PATIENCE * 2;
    while let Some(message) = tokio::time::timeout(PATIENCE, stream.message()).await?? {
        let progress = message.progress.ok_or("a pull message without progress")?;
        if states.last() != Some(&progress.state) {
            states.push(progress.state);
        }
        if killed_at == 0 && progress.completed_bytes > 200_000_000 {
            killed_at = progress.completed_bytes;
            signal(first.pid, Signal::KILL)?;
        }
        if killed_at > 0
            && resumed_from.is_none()
            && progress.attempt >= 2
            && progress.state == i32::from(pb::PullState::Running)
            && progress.completed_bytes > 0
        {
            resumed_from = Some(progress.completed_bytes);
        }
        last = Some(progress);
        if Instant::now() > deadline {
            break;
        }
    }
    let last = last.ok_or("no progress")?;
    let resumed = resumed_from.unwrap_or(0);
    Ok((
        format!(
            "killed at {:.0} MB; states {}; resumed from {:.0} MB on attempt {}; ended {} ({})",
            killed_at as f64 / 1e6,
            state_names(&states),
            resumed as f64 / 1e6,
            last.attempt,
            pb::PullState::try_from(last.state)
                .map(|s| s.as_str_name())
                .unwrap_or("?"),
            if last.error.is_empty() {
                "no error"
            } else {
                &last.error
            }
        ),
        killed_at > 0
            && states.contains(&i32::from(pb::PullState::Retrying))
            && last.state == i32::from(pb::PullState::Succeeded)
            && resumed > 0,
    ))
}

async fn chat(
    client: &Client,
    model: &str,
) -> Result<tonic::Streaming<pb::ChatResponse>, tonic::Status> {
    Ok(client
        .models()
        .chat(pb::ChatRequest {
            model: model.to_owned(),
            messages: vec![pb::ChatMessage {
                role: "user".to_owned(),
                content: omnipanel_tests::measure::word_prompt(200),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await?
        .into_inner())
}

async fn killed_during_chat() -> Outcome {
    let managed = managed(&[("FAKE_OLLAMA_TOKEN_DELAY_MS", "50")]).await?;
    let first = running_other_than(&managed.client, 0).await?;
    let mut pull = managed
        .client
        .models()
        .pull_model(pb::PullModelRequest {
            model: "test-small".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    while tokio::time::timeout(PATIENCE, pull.message())
        .await??
        .is_some()
    {}
    let mut reply = chat(&managed.client, "test-small").await?;
    let mut tokens = 0;
    let ended = loop {
        match tokio::time::timeout(PATIENCE, reply.message()).await? {
            Ok(Some(_)) => {
                tokens += 1;
                if tokens == 3 {
                    signal(first.pid, Signal::KILL)?;
                }
            }
            Ok(None) => break None,
            Err(status) => break Some(status),
        }
    };
    let restarted = running_other_than(&managed.client, first.pid).await;
    let mut next_ok = false;
    if restarted.is_ok() {
        let mut again = chat(&managed.client, "test-small").await?;
        let mut got = 0;
        while let Ok(Some(_)) = tokio::time::timeout(PATIENCE, again.message()).await? {
            got += 1;
        }
        next_ok = got > 0;
    }
    let (code, message) = match &ended {
        Some(status) => (format!("{:?}", status.code()), status.message().to_owned()),
        None => ("the stream ended normally".to_owned(), String::new()),
    };
    Ok((
        format!(
            "after {tokens} messages the chat ended {code} \"{message}\"; Ollama restarted: {}; next chat answered: {next_ok}",
            restarted.is_ok()
        ),
        matches!(&ended, Some(s) if s.code() == Code::Unavailable) && next_ok,
    ))
}
