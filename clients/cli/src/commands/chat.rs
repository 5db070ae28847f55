//! `omnipanel chat`: a line-by-line conversation with a model through the
//! agent's Chat stream. The whole conversation is sent with every message,
//! or, with `--conversation ID|new`, only the new message: the agent keeps
//! that conversation (the one the panel and VS Code show), sends its
//! history to the model and stores each exchange. Replies are printed as they stream in,
//! and Ctrl-C stops a reply without ending the session. When stdin is not
//! a terminal every line is a message and EOF ends the chat, so scripts and
//! tests can drive it. The model may be `provider/model`; with none named,
//! the agent uses the project's preferred model (the project containing
//! the current directory, or `--project`), else the default model.

use std::io::IsTerminal;

use clap::Args;
use omnipanel_client::Client;
use omnipanel_proto::v1::{
    ChatMessage, ChatRequest, CreateConversationRequest, GetConversationRequest,
};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    signal::unix::{Signal, SignalKind, signal},
};

use crate::{
    Failure,
    args::ProviderArg,
    output::{Output, emit, errln, out, outln},
    project_ref,
};

/// `omnipanel chat`
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Model to chat with, `provider/model` for another provider's
    /// (default: the project's preferred model, else the default model, see
    /// `omnipanel models default`).
    pub model: Option<String>,
    #[command(flatten)]
    pub provider: ProviderArg,
    /// System prompt that starts the conversation.
    #[arg(long)]
    pub system: Option<String>,
    /// The project (PATH or id) whose preferred model to use when no model
    /// is named; default: the open project containing the current
    /// directory, if any.
    #[arg(long)]
    pub project: Option<String>,
    /// Continue a conversation the agent keeps (its id, see `omnipanel
    /// conversations list`), or `new` to start one in the project
    /// (`--project`, else the one containing the current directory).
    /// Only the new messages are sent; the agent adds the history.
    #[arg(long, value_name = "ID|new")]
    pub conversation: Option<String>,
}

const HELP: &str = "\
/clear   forget the conversation so far (with --conversation: start a new one)
/bye     quit (so does Ctrl-D)
/help    show this help
Ctrl-C stops a reply; at the prompt it quits.";

/// The settings of one chat session.
struct Session {
    client: Client,
    model: String,
    provider: String,
    /// The project id sent with each message ("" for none).
    project: String,
    system: Option<String>,
    interactive: bool,
    out: Output,
}

/// A conversation kept by the agent, as a chat session continues it.
struct Kept {
    /// Its id.
    id: String,
    /// Its project, where `/clear` starts the next one.
    project: String,
    /// Whether it has no messages yet (the system prompt goes first).
    empty: bool,
}

impl Session {
    /// The conversation as it starts (and restarts after /clear).
    fn fresh_history(&self) -> Vec<ChatMessage> {
        self.system
            .iter()
            .map(|system| message("system", system))
            .collect()
    }
}

fn message(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.to_owned(),
        content: content.to_owned(),
        ..Default::default()
    }
}

/// How a reply ended.
enum Reply {
    /// The model finished; its whole text.
    Done(String),
    /// Ctrl-C stopped it; the text received until then.
    Stopped(String),
}

/// `omnipanel chat [MODEL]`
pub async fn chat(args: ChatArgs, out: Output) -> Result<(), Failure> {
    // Before connecting, so an early Ctrl-C is ours to handle rather than
    // the default "kill the process".
    let mut interrupt = signal(SignalKind::interrupt())
        .map_err(|err| Failure::Other(format!("cannot watch for Ctrl-C: {err}")))?;
    let client = Client::connect_from_env().await?;
    // A project named is required to exist; the one around the current
    // directory is only a preference, so its absence is no error.
    let project = match args.project.as_deref() {
        Some(arg) => project_ref::choose_project(&client, Some(arg)).await?.id,
        None => project_ref::choose_project(&client, None)
            .await
            .map(|project| project.id)
            .unwrap_or_default(),
    };
    let session = Session {
        client,
        model: args.model.unwrap_or_default(),
        provider: args.provider.name(),
        project,
        system: args.system,
        interactive: std::io::stdin().is_terminal(),
        out,
    };
    let mut kept = match args.conversation.as_deref() {
        None => None,
        Some("new") => {
            if session.project.is_empty() {
                // Named, so the user sees why rather than a bare NOT_FOUND.
                project_ref::choose_project(&session.client, None).await?;
            }
            Some(start_conversation(&session, &session.project.clone()).await?)
        }
        Some(id) => {
            let conversation = session
                .client
                .call(
                    session
                        .client
                        .projects()
                        .get_conversation(GetConversationRequest { id: id.to_owned() }),
                )
                .await?
                .conversation
                .unwrap_or_default();
            Some(Kept {
                id: conversation.id,
                project: conversation.project_id,
                empty: conversation.message_count == 0,
            })
        }
    };
    if session.interactive {
        let model = if session.model.is_empty() {
            "the default model"
        } else {
            &session.model
        };
        outln!("Chatting with {model}. /help lists commands, /bye quits.")?;
    }
    // tokio's stdin, so that waiting for a line can be raced with Ctrl-C.
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut history = session.fresh_history();
    loop {
        if session.interactive {
            out!(">>> ")?;
        }
        let line = tokio::select! {
            line = lines.next_line() => line
                .map_err(|err| Failure::Other(format!("cannot read stdin: {err}")))?,
            _ = interrupt.recv() => None,
        };
        let Some(line) = line else {
            // EOF or Ctrl-C at the prompt; end the prompt's line.
            if session.interactive {
                outln!()?;
            }
            return Ok(());
        };
        let text = line.trim();
        match text {
            "" => continue,
            "/bye" => return Ok(()),
            "/clear" => {
                history = session.fresh_history();
                if let Some(current) = &kept {
                    let project = current.project.clone();
                    kept = Some(start_conversation(&session, &project).await?);
                } else if session.interactive {
                    outln!("(conversation cleared)")?;
                }
                continue;
            }
            "/help" | "/?" => {
                outln!("{HELP}")?;
                continue;
            }
            command if command.starts_with('/') => {
                errln!("omnipanel: unknown command {command}; /help lists them");
                continue;
            }
            _ => {}
        }
        if let Some(current) = kept.as_mut() {
            // The agent holds the history: send only what is new.
            let mut new = Vec::new();
            if current.empty {
                new.extend(session.system.iter().map(|s| message("system", s)));
            }
            new.push(message("user", text));
            match reply(&session, &new, &current.id, &mut interrupt).await {
                Ok(_) => current.empty = false,
                Err(err) => {
                    if !session.interactive || matches!(err, Failure::OutputClosed) {
                        return Err(err);
                    }
                    errln!("omnipanel: {err}");
                }
            }
            continue;
        }
        history.push(message("user", text));
        match reply(&session, &history, "", &mut interrupt).await {
            Ok(Reply::Done(content) | Reply::Stopped(content)) if !content.is_empty() => {
                // A stopped reply stays too: it is what the user saw, and
                // the model should know what it already said.
                history.push(message("assistant", &content));
            }
            Ok(_) => {
                // Nothing came back: forget the question so two user turns
                // never follow each other.
                history.pop();
            }
            Err(err) => {
                history.pop();
                // A closed stdout ends even an interactive chat: its
                // replies would go nowhere.
                if !session.interactive || matches!(err, Failure::OutputClosed) {
                    return Err(err);
                }
                errln!("omnipanel: {err}");
            }
        }
    }
}

/// Start a conversation the agent keeps in `project`, and say which (on
/// stderr when stdin is not a terminal, so stdout stays the replies).
async fn start_conversation(session: &Session, project: &str) -> Result<Kept, Failure> {
    let conversation = session
        .client
        .call(
            session
                .client
                .projects()
                .create_conversation(CreateConversationRequest {
                    project: project.to_owned(),
                    title: String::new(),
                    model: session.model.clone(),
                }),
        )
        .await?
        .conversation
        .unwrap_or_default();
    let note = format!(
        "(new conversation {}; continue it with `omnipanel chat --conversation {}`)",
        conversation.id, conversation.id
    );
    if session.interactive && !session.out.is_json() {
        outln!("{note}")?;
    } else {
        errln!("{note}");
    }
    Ok(Kept {
        id: conversation.id,
        project: conversation.project_id,
        empty: true,
    })
}

/// Send the conversation (or, in a kept one, the new messages) and print
/// the reply as it streams in.
async fn reply(
    session: &Session,
    history: &[ChatMessage],
    conversation_id: &str,
    interrupt: &mut Signal,
) -> Result<Reply, Failure> {
    let request = ChatRequest {
        model: session.model.clone(),
        provider: session.provider.clone(),
        // A conversation's own project applies; a `--project` given too
        // would only be checked again.
        project: if conversation_id.is_empty() {
            session.project.clone()
        } else {
            String::new()
        },
        messages: history.to_vec(),
        conversation_id: conversation_id.to_owned(),
        ..Default::default()
    };
    let mut models = session.client.models();
    let started = tokio::select! {
        started = models.chat(request) => started,
        _ = interrupt.recv() => return Ok(Reply::Stopped(String::new())),
    };
    let mut stream = session.client.stream(started)?;
    let mut content = String::new();
    let end_line = |content: &str| {
        if !session.out.is_json() && !content.is_empty() && !content.ends_with('\n') {
            outln!()
        } else {
            Ok(())
        }
    };
    loop {
        let piece = tokio::select! {
            piece = stream.message() => piece,
            // Dropping the stream on return cancels the call, which makes
            // the agent stop Ollama generating.
            _ = interrupt.recv() => {
                end_line(&content)?;
                return Ok(Reply::Stopped(content));
            }
        };
        let piece = match piece {
            Ok(Some(piece)) => piece,
            // The agent ends the stream after the last piece; an end
            // without `done` (agent shutting down) keeps what came.
            Ok(None) => break,
            Err(err) => {
                end_line(&content)?;
                return Err(Failure::Client(err));
            }
        };
        if session.out.is_json() {
            session.out.json(&piece)?;
        } else {
            emit(&piece.content)?;
        }
        content.push_str(&piece.content);
        if piece.done {
            break;
        }
    }
    end_line(&content)?;
    if session.interactive && !session.out.is_json() {
        // A blank line between a reply and the next prompt, as Ollama does.
        outln!()?;
    }
    Ok(Reply::Done(content))
}
