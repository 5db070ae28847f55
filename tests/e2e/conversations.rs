//! Chat conversations kept by the agent, end to end against the fake
//! Ollama: create one, chat twice (the second request carries the first
//! exchange to the model), read it back with the replies' stats, a client
//! that leaves mid-reply leaves a stopped reply behind, delete; a client
//! admitted to another project finds nothing of it and sees none of its
//! events; and the CLI round trip.

use omnipanel_client::{Client, Credential, proto::v1 as pb};
use omnipanel_tests::{PATIENCE, TestResult, projects::open_project, stderr, stdout};
use tonic::Code;

use crate::{
    admission::admitted_to,
    ollama::{Setup, is, pull_to_end, setup, wait_status},
};

const MODEL: &str = "test-small";
/// The model as the provider names it in its replies.
const ANSWERED: &str = "test-small:latest";

fn user(text: &str) -> pb::ChatMessage {
    pb::ChatMessage {
        role: "user".into(),
        content: text.into(),
        images: vec![],
    }
}

/// A running agent with the model pulled and project `app` open; the
/// project's id.
async fn ready(switches: &[(&str, &str)]) -> TestResult<(Setup, String)> {
    let setup = setup(switches, "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    pull_to_end(&setup.client, MODEL).await?;
    let app = setup.sandbox.project_dir("app");
    std::fs::create_dir_all(&app)?;
    let project = open_project(&setup.client, &app).await?;
    Ok((setup, project))
}

async fn create(client: &Client, project: &str) -> TestResult<pb::Conversation> {
    client
        .call(
            client
                .projects()
                .create_conversation(pb::CreateConversationRequest {
                    project: project.into(),
                    title: String::new(),
                    model: MODEL.into(),
                }),
        )
        .await?
        .conversation
        .ok_or_else(|| "no conversation".into())
}

async fn get(client: &Client, id: &str) -> Result<pb::Conversation, omnipanel_client::ClientError> {
    Ok(client
        .call(
            client
                .projects()
                .get_conversation(pb::GetConversationRequest { id: id.into() }),
        )
        .await?
        .conversation
        .unwrap_or_default())
}

/// Chat in conversation `id` (no model named: the conversation's) to the
/// end; the text and the last piece.
async fn chat(client: &Client, id: &str, text: &str) -> TestResult<(String, pb::ChatResponse)> {
    let mut stream = client
        .models()
        .chat(pb::ChatRequest {
            messages: vec![user(text)],
            conversation_id: id.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut reply = String::new();
    let mut last = None;
    while let Some(piece) = tokio::time::timeout(PATIENCE, stream.message()).await?? {
        reply.push_str(&piece.content);
        last = Some(piece);
    }
    let last = last.ok_or("no reply")?;
    assert!(last.done, "{last:?}");
    Ok((reply, last))
}

/// The conversation events published so far that `client` may see.
async fn conversation_events(client: &Client) -> TestResult<Vec<pb::ConversationChanged>> {
    let mut events = client
        .agent()
        .watch_events(pb::WatchEventsRequest {
            after_sequence: Some(0),
            topics: vec!["conversations".into()],
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut seen = Vec::new();
    while let Some(message) = tokio::time::timeout(PATIENCE, events.message()).await?? {
        match message.item {
            Some(pb::watch_events_response::Item::Event(pb::Event {
                payload: Some(pb::event::Payload::ConversationChanged(changed)),
                ..
            })) => seen.push(changed),
            Some(pb::watch_events_response::Item::CaughtUp(_)) => break,
            _ => {}
        }
    }
    Ok(seen)
}

#[tokio::test]
async fn a_conversation_keeps_both_exchanges_and_only_its_project_sees_it() -> TestResult {
    let (setup, project) = ready(&[]).await?;
    let owner = &setup.client;
    let conversation = create(owner, &project).await?;
    assert_eq!(conversation.model, MODEL);
    assert_eq!(conversation.message_count, 0);

    let (first, _) = chat(owner, &conversation.id, "Why is the sky blue?").await?;
    assert!(first.contains("You said: Why is the sky blue?"), "{first}");
    let (_, second) = chat(owner, &conversation.id, "And at sunset?").await?;
    // The model was sent the first exchange too: a fresh chat with only
    // the second question reads fewer prompt tokens.
    let mut alone = owner
        .models()
        .chat(pb::ChatRequest {
            model: MODEL.into(),
            messages: vec![user("And at sunset?")],
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut alone_stats = None;
    while let Some(piece) = tokio::time::timeout(PATIENCE, alone.message()).await?? {
        alone_stats = piece.stats.or(alone_stats);
    }
    let prompt = |stats: Option<pb::GenerationStats>| stats.map_or(0, |s| s.prompt_eval_count);
    assert!(
        prompt(second.stats) > prompt(alone_stats) + 5,
        "history not sent: {:?} vs {:?}",
        second.stats,
        alone_stats
    );

    let got = get(owner, &conversation.id).await?;
    assert_eq!(got.title, "Why is the sky blue?");
    assert_eq!(got.message_count, 4);
    let roles: Vec<&str> = got.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(got.messages[1].content, first);
    for reply in [&got.messages[1], &got.messages[3]] {
        assert!(!reply.stopped);
        assert_eq!(reply.model, ANSWERED);
        assert_eq!(reply.provider, "local");
        assert!(reply.stats.is_some_and(|s| s.eval_count > 0), "{reply:?}");
    }
    assert_eq!(
        (got.model.as_str(), got.provider.as_str()),
        (ANSWERED, "local")
    );
    let listed = owner
        .call(
            owner
                .projects()
                .list_conversations(pb::ListConversationsRequest {
                    project: project.clone(),
                    limit: 0,
                }),
        )
        .await?
        .conversations;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].message_count, 4);
    assert!(listed[0].messages.is_empty());

    // A client admitted to another project: the id is as unknown as a
    // made-up one, and it sees none of the conversation's events.
    let other = setup.sandbox.project_dir("other");
    std::fs::create_dir_all(&other)?;
    open_project(owner, &other).await?;
    let token = admitted_to(
        &setup.sandbox,
        &[pb::Scope::Read, pb::Scope::Write, pb::Scope::Infer],
        &[&other],
    )
    .await?;
    let stranger = Client::connect_as(setup.sandbox.target(), Credential::Bearer(token)).await?;
    for id in [conversation.id.as_str(), "0123456789ab"] {
        let err = get(&stranger, id).await.err().ok_or("a stranger read it")?;
        assert_eq!(
            err.reason().as_deref(),
            Some("CONVERSATION_NOT_FOUND"),
            "{err}"
        );
        let err = stranger
            .call(
                stranger
                    .projects()
                    .delete_conversation(pb::DeleteConversationRequest { id: id.into() }),
            )
            .await
            .err()
            .ok_or("a stranger deleted it")?;
        assert_eq!(
            err.reason().as_deref(),
            Some("CONVERSATION_NOT_FOUND"),
            "{err}"
        );
    }
    let refused = stranger
        .models()
        .chat(pb::ChatRequest {
            messages: vec![user("let me in")],
            conversation_id: conversation.id.clone(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("a stranger chatted in it")?;
    assert_eq!(refused.code(), Code::NotFound);
    let owner_saw = conversation_events(owner).await?;
    assert!(
        owner_saw
            .iter()
            .any(|e| e.conversation_id == conversation.id && e.change == "created"),
        "{owner_saw:?}"
    );
    let stranger_saw = conversation_events(&stranger).await?;
    assert!(stranger_saw.is_empty(), "{stranger_saw:?}");
    assert_eq!(get(owner, &conversation.id).await?.message_count, 4);

    owner
        .call(
            owner
                .projects()
                .delete_conversation(pb::DeleteConversationRequest {
                    id: conversation.id.clone(),
                }),
        )
        .await?;
    let err = get(owner, &conversation.id)
        .await
        .err()
        .ok_or("still there")?;
    assert_eq!(err.reason().as_deref(), Some("CONVERSATION_NOT_FOUND"));
    let owner_saw = conversation_events(owner).await?;
    assert!(
        owner_saw.iter().any(|e| e.change == "deleted"),
        "{owner_saw:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_client_leaving_mid_reply_leaves_a_stopped_reply() -> TestResult {
    let (setup, project) = ready(&[("FAKE_OLLAMA_TOKEN_DELAY_MS", "200")]).await?;
    let owner = &setup.client;
    let conversation = create(owner, &project).await?;
    let mut stream = owner
        .models()
        .chat(pb::ChatRequest {
            messages: vec![user("Tell me a long story")],
            conversation_id: conversation.id.clone(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut arrived = String::new();
    while arrived.len() < 12 {
        let piece = tokio::time::timeout(PATIENCE, stream.message())
            .await??
            .ok_or("the reply ended early")?;
        assert!(!piece.done);
        arrived.push_str(&piece.content);
    }
    drop(stream);
    // The agent stores what arrived once it sees the client gone.
    let deadline = std::time::Instant::now() + PATIENCE;
    let reply = loop {
        let got = get(owner, &conversation.id).await?;
        if let Some(reply) = got.messages.iter().find(|m| m.role == "assistant") {
            break reply.clone();
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("no stopped reply was stored: {got:?}").into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(reply.stopped, "{reply:?}");
    assert!(reply.stats.is_none());
    assert!(
        reply.content.starts_with(&arrived),
        "{:?} does not start with {arrived:?}",
        reply.content
    );
    let got = get(owner, &conversation.id).await?;
    assert_eq!(got.message_count, 2);
    assert_eq!(got.messages[0].content, "Tell me a long story");
    Ok(())
}

#[tokio::test]
async fn the_cli_lists_shows_continues_and_removes_conversations() -> TestResult {
    let (setup, project) = ready(&[]).await?;
    let sandbox = &setup.sandbox;
    let app = sandbox.project_dir("app").display().to_string();
    let run = |args: &[&str]| -> TestResult<String> {
        let output = sandbox.cli(args)?;
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        Ok(stdout(&output))
    };
    let chat = |args: &[&str], input: &str| -> TestResult<String> {
        let output = sandbox.cli_with_input(args, input)?;
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        Ok(stdout(&output))
    };
    let said = chat(
        &["chat", MODEL, "--project", &app, "--conversation", "new"],
        "Hello there\n",
    )?;
    assert!(said.contains("You said: Hello there"), "{said}");
    let listed = owner_conversations(&setup, &project).await?;
    assert_eq!(listed.len(), 1);
    let id = listed[0].id.clone();
    let said = chat(&["chat", "--conversation", &id], "And again\n")?;
    assert!(said.contains("You said: And again"), "{said}");
    let table = run(&["conversations", "list", "--project", &app])?;
    assert!(table.contains("Hello there"), "{table}");
    assert!(table.contains(MODEL), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("Hello there") && l.split_whitespace().any(|w| w == "4")),
        "{table}"
    );
    let shown = run(&["conversations", "show", &id])?;
    assert!(shown.contains("And again"), "{shown}");
    assert!(shown.contains("assistant"), "{shown}");
    // Each reply's speed, as the panel words it.
    assert!(shown.contains("tokens/s"), "{shown}");
    let json: serde_json::Value = serde_json::from_str(&run(&[
        "conversations",
        "list",
        "--project",
        &app,
        "--json",
    ])?)?;
    assert_eq!(json["conversations"][0]["id"], id.as_str(), "{json}");
    assert_eq!(json["conversations"][0]["messageCount"], 4, "{json}");
    run(&["conversations", "rm", &id])?;
    assert!(owner_conversations(&setup, &project).await?.is_empty());
    let missing = sandbox.cli(&["conversations", "show", &id])?;
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no conversation"),
        "{}",
        stderr(&missing)
    );
    Ok(())
}

async fn owner_conversations(setup: &Setup, project: &str) -> TestResult<Vec<pb::Conversation>> {
    Ok(setup
        .client
        .call(
            setup
                .client
                .projects()
                .list_conversations(pb::ListConversationsRequest {
                    project: project.into(),
                    limit: 0,
                }),
        )
        .await?
        .conversations)
}
