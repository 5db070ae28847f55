//! The panel's Chat tab driven as a person drives it, against a real agent
//! and the Ollama double: ask a question in an open project and see the
//! streamed answer (and the agent keep the conversation); stop a slow
//! reply (the agent keeps it, marked stopped); with Ollama stopped, see
//! the error with "Start Ollama" and start it from there.

use egui_kittest::kittest::Queryable;
use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{PATIENCE, TestResult, projects::open_project};
use omnipanel_tray::panel::panel_ui::Tab;

use crate::{
    ollama::{is, pull_to_end, wait_status},
    panel::{Live, LiveHarness, click, live, live_with, type_into, wait_for},
};

/// The model the double serves once pulled.
const MODEL: &str = "llama3.2:1b";
/// What the double appends to every reply.
const CANNED: &str = "This reply comes from fake-ollama.";

/// Pull [`MODEL`] and open project "demo" in the agent; wait until the
/// panel mirrors both. The project's id.
fn model_and_project(live: &mut Live) -> TestResult<String> {
    let dir = live.setup.sandbox.project_dir("demo");
    std::fs::create_dir_all(&dir)?;
    let id = live.runtime.block_on(async {
        let client = live.setup.agent.client().await?;
        let pulled = pull_to_end(&client, MODEL).await?;
        if pulled.state() != pb::PullState::Succeeded {
            return Err(format!("the pull ended {pulled:?}").into());
        }
        open_project(&client, &dir).await
    })?;
    wait_for(
        &mut live.harness,
        "the project and the model in the panel",
        |h| {
            let state = &h.state().state;
            state.projects.iter().any(|p| p.id == id)
                && state.models.iter().any(|m| m.name == MODEL)
        },
    )?;
    Ok(id)
}

fn ask(harness: &mut LiveHarness, question: &str) {
    type_into(harness, "Message:", question);
    click(harness, "Send");
}

async fn conversations(client: &Client, project: &str) -> TestResult<Vec<pb::Conversation>> {
    Ok(client
        .projects()
        .list_conversations(pb::ListConversationsRequest {
            project: project.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .conversations)
}

#[test]
fn a_question_streams_its_answer_and_the_agent_keeps_the_conversation() -> TestResult {
    let mut live = live(Tab::Chat)?;
    let project = model_and_project(&mut live)?;
    let Live {
        setup,
        mut harness,
        runtime,
    } = live;
    ask(&mut harness, "hello from the panel");
    wait_for(&mut harness, "the streamed answer", |h| {
        h.query_by_label_contains("You said: hello from the panel")
            .is_some()
            && h.query_by_label_contains(CANNED).is_some()
    })?;
    // The reply's statistics line, once it ended.
    wait_for(&mut harness, "the reply's speed", |h| {
        h.query_by_label_contains("tokens/s").is_some()
    })?;
    // The agent kept the question and the answer (it stores the reply as
    // it ends: wait for it, bounded).
    let kept = runtime.block_on(async {
        let client = setup.agent.client().await?;
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let kept = conversations(&client, &project).await?;
            if kept.len() == 1 && kept[0].message_count == 2 {
                return TestResult::Ok(kept);
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("the agent's conversations: {kept:?}").into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })?;
    // The panel lists it, and shows it from the agent's copy.
    wait_for(&mut harness, "the conversation in the panel's list", |h| {
        let chat = &h.state().state.chat;
        chat.conversations.iter().any(|c| c.id == kept[0].id)
            && chat.shown.as_ref().is_some_and(|c| c.id == kept[0].id)
            && chat.messages.len() == 2
    })?;
    Ok(())
}

#[test]
fn with_ollama_stopped_the_error_offers_to_start_it() -> TestResult {
    let mut live = live(Tab::Chat)?;
    model_and_project(&mut live)?;
    let Live {
        setup,
        mut harness,
        runtime,
    } = live;
    runtime.block_on(async {
        let client = setup.agent.client().await?;
        client
            .models()
            .stop_server(pb::StopServerRequest {})
            .await?;
        TestResult::Ok(())
    })?;
    wait_for(&mut harness, "the panel to see Ollama stopped", |h| {
        h.state()
            .state
            .server
            .as_ref()
            .is_some_and(|s| s.state() == pb::ServerState::Stopped)
    })?;
    ask(&mut harness, "are you there?");
    wait_for(&mut harness, "the error's fix", |h| {
        h.query_by_label("Start Ollama").is_some()
    })?;
    click(&mut harness, "Start Ollama");
    runtime.block_on(async {
        let client = setup.agent.client().await?;
        wait_status(&client, "RUNNING", is(pb::ServerState::Running)).await?;
        TestResult::Ok(())
    })?;
    Ok(())
}

#[test]
fn stop_ends_a_streaming_reply_and_the_agent_keeps_it_as_stopped() -> TestResult {
    // Slow tokens: the reply streams long enough to be stopped.
    let mut live = live_with(Tab::Chat, &[("FAKE_OLLAMA_TOKEN_DELAY_MS", "500")])?;
    let project = model_and_project(&mut live)?;
    let Live {
        setup,
        mut harness,
        runtime,
    } = live;
    ask(&mut harness, "tell me a long story");
    wait_for(&mut harness, "the reply to start streaming", |h| {
        let chat = &h.state().state.chat;
        chat.streaming() && chat.exchange.as_ref().is_some_and(|e| !e.reply.is_empty())
    })?;
    assert!(
        harness.query_by_label("Stop").is_some(),
        "no Stop while streaming"
    );
    click(&mut harness, "Stop");
    wait_for(&mut harness, "the reply to end", |h| {
        !h.state().state.chat.streaming()
    })?;
    // The agent stored what had arrived, marked stopped.
    let stored = runtime.block_on(async {
        let client = setup.agent.client().await?;
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let kept = conversations(&client, &project).await?;
            if let Some(c) = kept.first().filter(|c| c.message_count == 2) {
                let whole = client
                    .projects()
                    .get_conversation(pb::GetConversationRequest { id: c.id.clone() })
                    .await?
                    .into_inner()
                    .conversation
                    .ok_or("no conversation")?;
                return TestResult::Ok(whole.messages);
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("the agent's conversations: {kept:?}").into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })?;
    let reply = stored.last().ok_or("no messages")?;
    assert!(
        reply.stopped,
        "the stored reply is not marked stopped: {reply:?}"
    );
    assert!(
        !reply.content.contains(CANNED),
        "the whole reply arrived before Stop: {reply:?}"
    );
    // The panel shows it from the agent's copy, marked stopped.
    // Exactly once: the reply in flight gives way to the stored one (for a
    // frame both may be on their way; never both for good).
    wait_for(&mut harness, "the stopped reply in the panel, once", |h| {
        h.state().state.chat.messages.len() == 2 && h.query_all_by_label("stopped").count() == 1
    })?;
    Ok(())
}
