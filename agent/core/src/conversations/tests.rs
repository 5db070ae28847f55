//! The conversation store at its boundary, without a socket: create, list,
//! continue (history, appended messages, the reply complete or stopped,
//! also when the recorder is dropped), delete, the limits, forgetting the
//! project, and a client granted another project finding nothing.

use std::{sync::Arc, time::Duration};

use super::*;
use crate::{
    config::FilesSettings,
    events::{EventBus, Recorder},
    projects::{ProjectBoundaries, ProjectEvent},
    tokens::{Scope, Scopes, TokenGrant},
};

struct Fixture {
    _state: tempfile::TempDir,
    folder: tempfile::TempDir,
    store: Store,
    projects: Arc<Projects>,
    events: Arc<Recorder<ConversationEvent>>,
    conversations: Arc<Conversations>,
}

impl Fixture {
    async fn new() -> Self {
        let state = tempfile::tempdir().unwrap();
        let folder = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(&state.path().join("state.db")).unwrap();
        let root = std::fs::canonicalize(folder.path()).unwrap();
        let projects = Projects::start(
            store.clone(),
            Arc::new(EventBus::<ProjectEvent>::new(1, 64)),
            FilesSettings::default(),
            ProjectBoundaries::new(
                &[state.path().to_owned()],
                &root.join("home"),
                &root.join("data"),
                &[root.display().to_string()],
            ),
            Vec::new(),
        )
        .await
        .unwrap();
        let events = Arc::new(Recorder::default());
        let conversations = Conversations::new(store.clone(), events.clone(), projects.clone());
        Self {
            _state: state,
            folder,
            store,
            projects,
            events,
            conversations,
        }
    }

    /// Open a project in a new folder `name`; its id.
    async fn project(&self, name: &str) -> String {
        let path = self.folder.path().join(name);
        std::fs::create_dir_all(&path).unwrap();
        self.projects
            .open_project(&path.display().to_string(), name)
            .await
            .unwrap()
            .record
            .id
    }

    /// A client granted only the project folder `name`.
    fn client_of(&self, name: &str) -> Caller {
        let mut grant = TokenGrant::new("t", Scopes::of([Scope::Write, Scope::Infer]));
        grant.projects = vec![std::fs::canonicalize(self.folder.path().join(name)).unwrap()];
        Caller::Token(grant)
    }

    fn changes(&self) -> Vec<String> {
        self.events
            .events()
            .into_iter()
            .map(|ConversationEvent::ConversationChanged { change, .. }| change)
            .collect()
    }
}

fn user(text: &str) -> ChatMessage {
    ChatMessage {
        role: "user".into(),
        content: text.into(),
        images: Vec::new(),
    }
}

fn stats() -> GenerationStats {
    GenerationStats {
        total_duration_ns: 5_000,
        eval_count: 7,
        eval_duration_ns: 3_000,
        time_to_first_token_ns: 1_000,
        ..GenerationStats::default()
    }
}

#[tokio::test]
async fn a_conversation_keeps_both_turns_with_the_replies_stats_and_the_latest_model() {
    let f = Fixture::new().await;
    let project = f.project("app").await;
    let owner = Caller::Owner;
    let created = f
        .conversations
        .create(&owner, &project, "", "llama3.2:1b")
        .await
        .unwrap();
    assert_eq!(created.title, "");
    assert_eq!(created.model, "llama3.2:1b");

    let turn = f
        .conversations
        .turn(
            &owner,
            &created.id,
            vec![user("  \nWhy is the sky blue?\nThanks")],
        )
        .await
        .unwrap();
    assert_eq!(turn.history().len(), 1);
    let mut reply = turn.start("local", "llama3.2:1b").await.unwrap();
    reply.push("Rayleigh ");
    reply.push("scattering.");
    reply.finish(Some(stats())).await.unwrap();

    let turn = f
        .conversations
        .turn(&owner, &created.id, vec![user("And at sunset?")])
        .await
        .unwrap();
    let history: Vec<_> = turn.history().into_iter().map(|m| m.content).collect();
    assert_eq!(
        history,
        [
            "  \nWhy is the sky blue?\nThanks",
            "Rayleigh scattering.",
            "And at sunset?"
        ]
    );
    let mut reply = turn.start("work", "qwen3:8b").await.unwrap();
    reply.push("Red.");
    reply.finish(Some(stats())).await.unwrap();

    let got = f.conversations.get(&owner, &created.id).await.unwrap();
    assert_eq!(got.title, "Why is the sky blue?");
    assert_eq!(
        (got.model.as_str(), got.provider.as_str()),
        ("qwen3:8b", "work")
    );
    assert_eq!(got.message_count, 4);
    let roles: Vec<_> = got.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(got.messages[1].stats, Some(stats()));
    assert_eq!(got.messages[1].provider, "local");
    assert!(!got.messages[3].stopped);
    assert_eq!(got.messages[0].stats, None);

    let listed = f.conversations.list(&owner, &project, 0).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].message_count, 4);
    assert!(listed[0].messages.is_empty());
    assert_eq!(
        f.changes(),
        ["created", "updated", "updated", "updated", "updated"]
    );
}

#[tokio::test]
async fn a_reply_dropped_half_way_is_stored_as_stopped_with_what_arrived() {
    let f = Fixture::new().await;
    let project = f.project("app").await;
    let owner = Caller::Owner;
    let created = f
        .conversations
        .create(&owner, &project, "Stops", "")
        .await
        .unwrap();
    let mut reply = f
        .conversations
        .turn(&owner, &created.id, vec![user("Count to ten")])
        .await
        .unwrap()
        .start("local", "m")
        .await
        .unwrap();
    reply.push("one two");
    drop(reply);
    // The drop hands the write to a task: wait until it ran.
    let mut got = f.conversations.get(&owner, &created.id).await.unwrap();
    for _ in 0..500 {
        if got.message_count == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        got = f.conversations.get(&owner, &created.id).await.unwrap();
    }
    assert_eq!(got.message_count, 2, "the stopped reply was not stored");
    assert_eq!(got.messages[1].content, "one two");
    assert!(got.messages[1].stopped);
    assert_eq!(got.messages[1].stats, None);
    assert_eq!(got.title, "Stops");

    // An error half-way stops it the same way.
    let mut reply = f
        .conversations
        .turn(&owner, &created.id, vec![user("Again")])
        .await
        .unwrap()
        .start("local", "m")
        .await
        .unwrap();
    reply.push("one");
    reply.stop().await.unwrap();
    let got = f.conversations.get(&owner, &created.id).await.unwrap();
    assert_eq!(got.message_count, 4);
    assert!(got.messages[3].stopped);
}

#[tokio::test]
async fn a_client_granted_another_project_finds_nothing_of_this_one() {
    let f = Fixture::new().await;
    let project = f.project("app").await;
    f.project("other").await;
    let created = f
        .conversations
        .create(&Caller::Owner, &project, "Secret", "")
        .await
        .unwrap();
    let stranger = f.client_of("other");
    for err in [
        f.conversations
            .get(&stranger, &created.id)
            .await
            .unwrap_err(),
        f.conversations
            .delete(&stranger, &created.id)
            .await
            .unwrap_err(),
        f.conversations
            .turn(&stranger, &created.id, vec![user("hi")])
            .await
            .unwrap_err(),
        f.conversations
            .get(&stranger, "0123456789ab")
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        assert_eq!(err.reason(), Some(Reason::ConversationNotFound));
        assert!(err.message().starts_with("no conversation"), "{err}");
    }
    assert!(f.conversations.list(&stranger, &project, 0).await.is_err());
    assert!(
        f.conversations
            .create(&stranger, &project, "", "")
            .await
            .is_err()
    );
    // Its own project works.
    let client = f.client_of("app");
    let mine = f.conversations.get(&client, &created.id).await.unwrap();
    assert_eq!(mine.title, "Secret");
    f.conversations.delete(&client, &created.id).await.unwrap();
    assert!(f.conversations.get(&client, &created.id).await.is_err());
}

#[tokio::test]
async fn oversized_messages_are_refused_and_titles_are_cut() {
    let f = Fixture::new().await;
    let project = f.project("app").await;
    let created = f
        .conversations
        .create(&Caller::Owner, &project, &"t".repeat(200), "")
        .await
        .unwrap();
    assert_eq!(created.title.chars().count(), MAX_TITLE_CHARS);
    assert!(created.title.ends_with('…'));
    let err = f
        .conversations
        .turn(
            &Caller::Owner,
            &created.id,
            vec![user(&"x".repeat(MAX_MESSAGE_BYTES + 1))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ResourceExhausted);
    assert!(err.message().contains("1 MiB"), "{err}");
    assert_eq!(clean_title("\n\n  hello\tworld \nrest"), "helloworld");
    let err = f
        .conversations
        .create(&Caller::Owner, &project, "", "bad\nmodel")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

#[tokio::test]
async fn forgetting_the_project_deletes_its_conversations() {
    let f = Fixture::new().await;
    let project = f.project("app").await;
    let created = f
        .conversations
        .create(&Caller::Owner, &project, "", "")
        .await
        .unwrap();
    f.conversations
        .turn(&Caller::Owner, &created.id, vec![user("hi")])
        .await
        .unwrap()
        .start("local", "m")
        .await
        .unwrap()
        .finish(None)
        .await
        .unwrap();
    f.projects.forget(&project).await.unwrap();
    let left: (i64, i64) = f
        .store
        .read(|c| {
            Ok((
                c.query_row("SELECT COUNT(*) FROM conversations", [], |r| r.get(0))?,
                c.query_row("SELECT COUNT(*) FROM conversation_messages", [], |r| {
                    r.get(0)
                })?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(left, (0, 0));
    assert!(
        f.conversations
            .get(&Caller::Owner, &created.id)
            .await
            .is_err()
    );
}
