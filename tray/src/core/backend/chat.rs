//! The backend side of [`ChatCommand`]s: the agent calls they make, each
//! reporting through the [`Sink`] as [`crate::core::workspace::chat::ChatUpdate`]s.
//! A reply streams in pieces; the session aborts the task holding the
//! stream on [`ChatCommand::Stop`] (dropping the stream cancels the call,
//! and the agent stores what had arrived). Errors carry the action that
//! fixes them, told by the agent's reason, not its wording.

use omnipanel_client::{
    Client, ClientError,
    proto::v1::{
        ChatMessage, ChatRequest, CreateConversationRequest, DeleteConversationRequest,
        GetConversationRequest, ListConversationsRequest, ListModelsRequest,
        SetProjectModelRequest,
    },
};
use tonic::Code;

use super::{Sink, refresh::refresh_projects};
use crate::core::{
    state::Update,
    workspace::chat::{Ask, ChatCommand, ChatError, ChatFix, ChatUpdate, ModelChoice},
};

/// Run one command; `Ok` carries the line a person reads (may be empty).
pub(super) async fn run(
    client: &Client,
    command: ChatCommand,
    sink: &Sink,
) -> Result<String, String> {
    let update = |u: ChatUpdate| sink(Update::Chat(u));
    let err = |status: tonic::Status| client.error(status).to_string();
    match command {
        ChatCommand::List(project) => {
            list(client, project, sink).await?;
            Ok(String::new())
        }
        ChatCommand::Open(id) => {
            let conversation = client
                .projects()
                .get_conversation(GetConversationRequest { id })
                .await
                .map_err(err)?
                .into_inner()
                .conversation;
            if let Some(conversation) = conversation {
                update(ChatUpdate::Opened(conversation));
            }
            Ok(String::new())
        }
        ChatCommand::New { project, model } => {
            let conversation = client
                .projects()
                .create_conversation(CreateConversationRequest {
                    project: project.clone(),
                    title: String::new(),
                    model,
                })
                .await
                .map_err(err)?
                .into_inner()
                .conversation;
            if let Some(conversation) = conversation {
                update(ChatUpdate::Opened(conversation));
            }
            list(client, project, sink).await?;
            Ok("new conversation".to_owned())
        }
        ChatCommand::Delete { id, project } => {
            client
                .projects()
                .delete_conversation(DeleteConversationRequest { id: id.clone() })
                .await
                .map_err(err)?;
            update(ChatUpdate::Deleted(id));
            list(client, project, sink).await?;
            Ok("conversation deleted".to_owned())
        }
        ChatCommand::Send(ask) => send(client, ask, sink).await,
        // The session has aborted the reply's task; say so.
        ChatCommand::Stop => {
            update(ChatUpdate::Done {
                model: String::new(),
                stats: None,
                stopped: true,
            });
            Ok("reply stopped".to_owned())
        }
        ChatCommand::UseForProject { project, model } => {
            client
                .projects()
                .set_project_model(SetProjectModelRequest {
                    project,
                    model: model.name.clone(),
                    provider: model.provider.clone(),
                })
                .await
                .map_err(err)?;
            refresh_projects(client.clone(), sink.clone()).await;
            Ok(format!("{} is this project's model", model.label()))
        }
    }
}

/// Read a project's conversations and every provider's models.
async fn list(client: &Client, project: String, sink: &Sink) -> Result<(), String> {
    // Models of every provider that answers; one that is down is left out
    // (the Models tab says why).
    if let Ok(models) = client
        .models()
        .list_models(ListModelsRequest {
            provider: String::new(),
            all_providers: true,
        })
        .await
    {
        sink(Update::Chat(ChatUpdate::Models(models.into_inner().models)));
    }
    match client
        .projects()
        .list_conversations(ListConversationsRequest {
            project: project.clone(),
            ..Default::default()
        })
        .await
    {
        Ok(r) => {
            sink(Update::Chat(ChatUpdate::Listed {
                project,
                conversations: r.into_inner().conversations,
            }));
            Ok(())
        }
        Err(status) if status.code() == Code::Unimplemented => {
            sink(Update::Chat(ChatUpdate::NoConversations));
            sink(Update::Chat(ChatUpdate::Listed {
                project,
                conversations: Vec::new(),
            }));
            Ok(())
        }
        Err(status) => Err(client.error(status).to_string()),
    }
}

/// Ask, in the conversation named or a new one, and stream the reply.
async fn send(client: &Client, ask: Ask, sink: &Sink) -> Result<String, String> {
    let update = |u: ChatUpdate| sink(Update::Chat(u));
    let mut conversation = ask.conversation.clone();
    if conversation.is_none() {
        let created = client
            .projects()
            .create_conversation(CreateConversationRequest {
                project: ask.project.clone(),
                title: String::new(),
                model: ask.model.label(),
            })
            .await;
        match created {
            Ok(r) => {
                if let Some(c) = r.into_inner().conversation {
                    conversation = Some(c.id.clone());
                    update(ChatUpdate::Opened(c));
                }
            }
            // An agent without the store: the panel keeps the history.
            Err(status) if status.code() == Code::Unimplemented => {
                update(ChatUpdate::NoConversations);
            }
            Err(status) => {
                let error = client.error(status);
                update(ChatUpdate::Started {
                    project: ask.project.clone(),
                    question: ask.text.clone(),
                    conversation: None,
                    model: ask.model.label(),
                });
                return Err(fail(sink, &error, &ask.model));
            }
        }
    }
    update(ChatUpdate::Started {
        project: ask.project.clone(),
        question: ask.text.clone(),
        conversation: conversation.clone(),
        model: ask.model.label(),
    });
    // With a conversation the agent prepends what it stored.
    let mut messages: Vec<ChatMessage> = if conversation.is_some() {
        Vec::new()
    } else {
        ask.history
            .iter()
            .map(|(role, content)| ChatMessage {
                role: role.clone(),
                content: content.clone(),
                images: Vec::new(),
            })
            .collect()
    };
    messages.push(ChatMessage {
        role: "user".to_owned(),
        content: ask.text.clone(),
        images: Vec::new(),
    });
    let request = ChatRequest {
        model: ask.model.name.clone(),
        provider: ask.model.provider.clone(),
        messages,
        project: ask.project.clone(),
        conversation_id: conversation.unwrap_or_default(),
        ..Default::default()
    };
    let mut stream = match client.models().chat(request).await {
        Ok(r) => r.into_inner(),
        Err(status) => return Err(fail(sink, &client.error(status), &ask.model)),
    };
    loop {
        match stream.message().await {
            Ok(Some(piece)) => {
                if !piece.content.is_empty() {
                    update(ChatUpdate::Piece(piece.content));
                }
                if piece.done {
                    update(ChatUpdate::Done {
                        model: piece.model,
                        stats: piece.stats,
                        stopped: false,
                    });
                    return Ok(String::new());
                }
            }
            // A stream that ends without its last piece: what came stays.
            Ok(None) => {
                update(ChatUpdate::Done {
                    model: String::new(),
                    stats: None,
                    stopped: true,
                });
                return Ok(String::new());
            }
            Err(status) => return Err(fail(sink, &client.error(status), &ask.model)),
        }
    }
}

/// Report a failed reply with its fix; the notice's text.
fn fail(sink: &Sink, error: &ClientError, model: &ModelChoice) -> String {
    let message = error.to_string();
    sink(Update::Chat(ChatUpdate::Failed(ChatError {
        message: message.clone(),
        fix: fix_for(error.code(), error.reason().as_deref(), model),
    })));
    message
}

/// What fixes an error, from its code and the agent's reason: a local
/// Ollama that is down is started, a local model that is missing pulled.
/// A remote provider is only used, never started or pulled into.
fn fix_for(code: Code, reason: Option<&str>, model: &ModelChoice) -> Option<ChatFix> {
    if !model.is_local() {
        return None;
    }
    match (code, reason) {
        (_, Some("OLLAMA_DOWN")) | (Code::Unavailable, Some("UNAVAILABLE") | None) => {
            Some(ChatFix::StartOllama)
        }
        (_, Some("MODEL_NOT_FOUND")) | (Code::NotFound, None) if !model.name.is_empty() => {
            Some(ChatFix::Pull(model.name.clone()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_picks_the_fix() {
        let local = ModelChoice {
            provider: String::new(),
            name: "llama3.2:1b".into(),
        };
        assert_eq!(
            fix_for(Code::Unavailable, Some("OLLAMA_DOWN"), &local),
            Some(ChatFix::StartOllama)
        );
        assert_eq!(
            fix_for(Code::NotFound, Some("MODEL_NOT_FOUND"), &local),
            Some(ChatFix::Pull("llama3.2:1b".into()))
        );
        // Another reason with the same code is not the model's absence.
        assert_eq!(
            fix_for(Code::NotFound, Some("PROJECT_NOT_FOUND"), &local),
            None
        );
        assert_eq!(
            fix_for(Code::InvalidArgument, Some("INVALID_ARGUMENT"), &local),
            None
        );
        let remote = ModelChoice {
            provider: "gpu-box".into(),
            name: "qwen".into(),
        };
        assert_eq!(
            fix_for(Code::Unavailable, Some("OLLAMA_DOWN"), &remote),
            None
        );
    }
}
