//! `omnipanel conversations ...`: the chat conversations the agent keeps
//! per project (the same ones the panel and VS Code show): list a
//! project's, show one with its messages, remove one. `omnipanel chat
//! --conversation ID|new` continues or starts one. `--json` prints the
//! agent's responses as they are.

use clap::Subcommand;
use omnipanel_client::{Client, display};
use omnipanel_proto::v1::{
    self as pb, DeleteConversationRequest, GetConversationRequest, ListConversationsRequest,
};

use crate::{
    Failure,
    output::{Output, outln},
    project_ref,
};

/// `omnipanel conversations ...`
#[derive(Debug, Subcommand)]
pub enum ConversationsCommand {
    /// List a project's conversations, most recently updated first.
    #[command(visible_alias = "ls")]
    List {
        /// The project (PATH or id); default: the open project containing
        /// the current directory.
        #[arg(long)]
        project: Option<String>,
        /// Show at most this many.
        #[arg(long)]
        limit: Option<u32>,
    },
    /// Show a conversation with its messages.
    Show {
        /// Conversation id (see `omnipanel conversations list`).
        id: String,
    },
    /// Delete a conversation and its messages.
    #[command(visible_alias = "delete")]
    Rm {
        /// Conversation id.
        id: String,
    },
}

/// `omnipanel conversations ...`
pub async fn conversations(command: ConversationsCommand, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    match command {
        ConversationsCommand::List { project, limit } => {
            let project = project_ref::choose_project(&client, project.as_deref()).await?;
            let response = client
                .call(
                    client
                        .projects()
                        .list_conversations(ListConversationsRequest {
                            project: project.id.clone(),
                            limit: limit.unwrap_or(0),
                        }),
                )
                .await?;
            out.show(&response, |response| list(out, &project, response))
        }
        ConversationsCommand::Show { id } => {
            let response = client
                .call(
                    client
                        .projects()
                        .get_conversation(GetConversationRequest { id }),
                )
                .await?;
            out.show(&response, |response| {
                show(&response.conversation.clone().unwrap_or_default())
            })
        }
        ConversationsCommand::Rm { id } => {
            let response = client
                .call(
                    client
                        .projects()
                        .delete_conversation(DeleteConversationRequest { id: id.clone() }),
                )
                .await?;
            out.show(&response, |_| {
                outln!("deleted conversation {id}")?;
                Ok(())
            })
        }
    }
}

/// A conversation's title as listed: "(untitled)" before its first
/// message names it.
fn title(conversation: &pb::Conversation) -> String {
    if conversation.title.is_empty() {
        "(untitled)".to_owned()
    } else {
        conversation.title.clone()
    }
}

/// A reply's model as the CLI names models: `provider/model`, or the model
/// alone on the local server.
fn model(model: &str, provider: &str) -> String {
    if provider.is_empty() || provider == "local" {
        display::or_dash(model).to_owned()
    } else {
        format!("{provider}/{model}")
    }
}

fn list(
    out: Output,
    project: &pb::Project,
    response: &pb::ListConversationsResponse,
) -> Result<(), Failure> {
    if response.conversations.is_empty() {
        outln!(
            "no conversations in {} yet; start one with `omnipanel chat --conversation new`",
            project.name
        )?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = response
        .conversations
        .iter()
        .map(|c| {
            vec![
                title(c),
                model(&c.model, &c.provider),
                c.message_count.to_string(),
                display::relative_time(c.updated_unix_ms),
                c.id.clone(),
            ]
        })
        .collect();
    out.table(&["TITLE", "MODEL", "MESSAGES", "UPDATED", "ID"], &rows)
}

fn show(conversation: &pb::Conversation) -> Result<(), Failure> {
    outln!("{}", title(conversation))?;
    outln!("  id        {}", conversation.id)?;
    outln!("  project   {}", conversation.project_id)?;
    outln!(
        "  model     {}",
        model(&conversation.model, &conversation.provider)
    )?;
    outln!("  messages  {}", conversation.message_count)?;
    outln!(
        "  updated   {}",
        display::relative_time(conversation.updated_unix_ms)
    )?;
    for message in &conversation.messages {
        outln!()?;
        let mut heading = format!(
            "{} · {}",
            message.role,
            display::relative_time(message.created_unix_ms)
        );
        if message.role == "assistant" {
            heading.push_str(&format!(" · {}", model(&message.model, &message.provider)));
        }
        if message.stopped {
            heading.push_str(" · stopped");
        }
        // The reply's speed, worded as the panel shows it under the reply.
        if let Some(stats) = message.stats.as_ref().filter(|_| !message.stopped) {
            let line = display::generation_stats(stats);
            if !line.is_empty() {
                heading.push_str(&format!(" · {line}"));
            }
        }
        outln!("{heading}")?;
        for line in message.content.lines() {
            outln!("  {line}")?;
        }
    }
    Ok(())
}
