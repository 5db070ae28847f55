//! The Chat tab's mirror: the selected project's conversations (kept by the agent), the one being shown, and the reply streaming into it. Folded in by [`ChatState::apply`]; drawn by the panel's chat view.
//!
//! The agent stores every exchange of a conversation; the panel shows the
//! stored messages and, on top, the exchange in flight (the question and
//! the reply as it streams) until the stored conversation holds both. An
//! agent that keeps no conversations (older than the store) still chats:
//! the exchange is then kept here and the history sent with each question.

use omnipanel_client::proto::v1::{
    Conversation, ConversationChanged, ConversationMessage, GenerationStats, Model,
};

/// A model to chat with: its provider ("" or "local": the local Ollama)
/// and name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelChoice {
    /// Provider name; empty means the local server.
    pub provider: String,
    /// Model name, e.g. "llama3.2:1b".
    pub name: String,
}

impl ModelChoice {
    /// The choice of `model` as listed by the agent.
    pub fn of(model: &Model) -> Self {
        Self {
            provider: model.provider.clone(),
            name: model.name.clone(),
        }
    }

    /// Whether it is served by the local Ollama (the one the panel can
    /// start and pull into).
    pub fn is_local(&self) -> bool {
        self.provider.is_empty() || self.provider == "local"
    }

    /// How a person reads it: the name on the local server, else
    /// `provider/name` (the model string the CLI takes).
    pub fn label(&self) -> String {
        if self.is_local() {
            self.name.clone()
        } else {
            format!("{}/{}", self.provider, self.name)
        }
    }
}

/// One question to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    /// The project (id) it is asked for.
    pub project: String,
    /// The conversation to continue; `None` starts a new one.
    pub conversation: Option<String>,
    /// The model.
    pub model: ModelChoice,
    /// The user's message.
    pub text: String,
    /// The messages so far as (role, content), sent only when the agent
    /// keeps no conversations.
    pub history: Vec<(String, String)>,
}

/// What the panel asks the backend to do on the chat side.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatCommand {
    /// Read a project's conversations and every provider's models (when
    /// the tab shows, the project changes, or the agent says they changed).
    List(String),
    /// Show a conversation with its messages.
    Open(String),
    /// Start an empty conversation for a project and show it.
    New {
        /// The project's id.
        project: String,
        /// The model it is meant for.
        model: String,
    },
    /// Delete a conversation (of the project, which is listed again).
    Delete {
        /// The conversation's id.
        id: String,
        /// Its project's id.
        project: String,
    },
    /// Ask, streaming the reply in.
    Send(Ask),
    /// Stop the reply streaming in (the backend aborts the task holding
    /// the stream, which cancels the call).
    Stop,
    /// Make a model the project's preferred one.
    UseForProject {
        /// The project's id.
        project: String,
        /// The model.
        model: ModelChoice,
    },
}

impl ChatCommand {
    /// The key its outcome (a notice) is filed under.
    pub fn key(&self) -> String {
        match self {
            Self::List(_) | Self::Open(_) | Self::New { .. } | Self::Delete { .. } => {
                "chat:conversations".to_owned()
            }
            Self::Send(_) | Self::Stop => "chat".to_owned(),
            Self::UseForProject { .. } => "chat:model".to_owned(),
        }
    }
}

/// What fixes a failed reply, offered as a button next to the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatFix {
    /// Ollama is not running: start it.
    StartOllama,
    /// The model is not installed: pull it.
    Pull(String),
}

/// Why a reply failed, for a person, and what fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatError {
    /// The agent's message.
    pub message: String,
    /// The action that fixes it, when there is one.
    pub fix: Option<ChatFix>,
}

/// One change to [`ChatState`].
#[derive(Debug, Clone)]
pub enum ChatUpdate {
    /// A project's conversations, most recently updated first.
    Listed {
        /// The project's id.
        project: String,
        /// Its conversations (without messages).
        conversations: Vec<Conversation>,
    },
    /// The agent keeps no conversations (it answered UNIMPLEMENTED).
    NoConversations,
    /// Every provider's models (those that answer).
    Models(Vec<Model>),
    /// A conversation, with its messages, to show.
    Opened(Conversation),
    /// A conversation was deleted.
    Deleted(String),
    /// The agent says a conversation was created, added to or deleted.
    Changed(ConversationChanged),
    /// A question was asked; the reply starts streaming.
    Started {
        /// The project (id) it is asked for.
        project: String,
        /// The question.
        question: String,
        /// The conversation it goes to (`None`: kept by the panel).
        conversation: Option<String>,
        /// The model asked.
        model: String,
    },
    /// Text added to the reply.
    Piece(String),
    /// The reply ended.
    Done {
        /// The model that answered.
        model: String,
        /// Its timings (absent when it was cut short).
        stats: Option<GenerationStats>,
        /// Whether it ended early (the user stopped it).
        stopped: bool,
    },
    /// The reply failed.
    Failed(ChatError),
}

/// The exchange in flight, or just ended and not yet stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exchange {
    /// The user's question.
    pub question: String,
    /// The reply so far.
    pub reply: String,
    /// The model asked (then the one that answered).
    pub model: String,
    /// How many messages were shown when it was asked: the stored
    /// conversation holds the question once it has more.
    pub base: usize,
    /// Whether it goes to a conversation the agent keeps.
    pub stored: bool,
    /// Whether the reply has ended.
    pub done: bool,
    /// Whether it ended early.
    pub stopped: bool,
    /// The reply's timings, once done.
    pub stats: Option<GenerationStats>,
    /// Why it failed.
    pub error: Option<ChatError>,
}

/// The mirrored state.
#[derive(Debug, Clone, Default)]
pub struct ChatState {
    /// The project whose conversations are listed (its id).
    pub project: Option<String>,
    /// Its conversations, most recently updated first.
    pub conversations: Vec<Conversation>,
    /// Whether the agent keeps conversations (until it says it does not).
    pub unsupported: bool,
    /// Every provider's models, as last read.
    pub models: Vec<Model>,
    /// The conversation shown (without its messages; they are below).
    pub shown: Option<Conversation>,
    /// The shown conversation's messages (or those kept by the panel).
    pub messages: Vec<ConversationMessage>,
    /// The project (id) the shown messages and the exchange belong to.
    pub shown_project: Option<String>,
    /// The exchange in flight.
    pub exchange: Option<Exchange>,
    /// Bumped when the agent changed the listed project's conversations:
    /// the tab reads them again when it next shows.
    pub revision: u64,
}

impl ChatState {
    /// Whether a reply is streaming (Send is disabled, Stop offered).
    pub fn streaming(&self) -> bool {
        self.exchange.as_ref().is_some_and(|e| !e.done)
    }

    /// Whether the question of the exchange shows on its own (the stored
    /// conversation does not hold it yet).
    pub fn shows_question(&self, exchange: &Exchange) -> bool {
        !exchange.stored || self.messages.len() <= exchange.base
    }

    /// Fold one update in.
    pub fn apply(&mut self, update: ChatUpdate) {
        match update {
            ChatUpdate::Listed {
                project,
                conversations,
            } => {
                // Listing another project than the one shown: what was
                // shown belongs to the old one. (The list and a first
                // question race: what was asked in this project stays.)
                if self
                    .shown_project
                    .as_ref()
                    .is_some_and(|shown| *shown != project)
                {
                    self.shown_project = None;
                    self.shown = None;
                    self.messages.clear();
                    if !self.streaming() {
                        self.exchange = None;
                    }
                }
                // Reads run side by side: a list read before one already
                // shown (conversations only grow; deletions are applied
                // as they happen) is stale.
                let same = self.project.as_deref() == Some(project.as_str());
                if same && newest(&conversations) < newest(&self.conversations) {
                    return;
                }
                self.project = Some(project);
                self.conversations = conversations;
            }
            ChatUpdate::NoConversations => self.unsupported = true,
            ChatUpdate::Models(models) => self.models = models,
            ChatUpdate::Opened(mut conversation) => {
                let other = self.shown.as_ref().map(|c| &c.id) != Some(&conversation.id);
                // An older read of the shown conversation (two reads after
                // two changes may answer in either order): keep the newer.
                if !other && conversation.messages.len() < self.messages.len() {
                    return;
                }
                if other && !self.streaming() {
                    self.exchange = None;
                }
                self.messages = std::mem::take(&mut conversation.messages);
                self.shown_project = Some(conversation.project_id.clone());
                self.shown = Some(conversation);
                self.settle();
            }
            ChatUpdate::Deleted(id) => {
                self.conversations.retain(|c| c.id != id);
                if self.shown.as_ref().is_some_and(|c| c.id == id) {
                    self.shown = None;
                    self.messages.clear();
                    self.exchange = None;
                }
            }
            ChatUpdate::Changed(change) => {
                if change.change == "deleted" {
                    self.conversations
                        .retain(|c| c.id != change.conversation_id);
                }
                if change.change == "deleted"
                    && self
                        .shown
                        .as_ref()
                        .is_some_and(|c| c.id == change.conversation_id)
                {
                    self.shown = None;
                    self.messages.clear();
                }
                // Read again when the change is the listed project's, or
                // when no list has come yet: the first list may still be on
                // its way, read before this change (on a loaded machine it
                // came after the question and its reply were stored, and the
                // shown conversation was never read again).
                if self.project.is_none()
                    || self.project.as_deref() == Some(change.project_id.as_str())
                {
                    self.revision = self.revision.wrapping_add(1);
                }
            }
            ChatUpdate::Started {
                project,
                question,
                conversation,
                model,
            } => {
                self.shown_project = Some(project);
                self.exchange = Some(Exchange {
                    question,
                    model,
                    base: self.messages.len(),
                    stored: conversation.is_some(),
                    ..Exchange::default()
                });
            }
            ChatUpdate::Piece(text) => {
                if let Some(exchange) = self.exchange.as_mut() {
                    exchange.reply.push_str(&text);
                }
            }
            ChatUpdate::Done {
                model,
                stats,
                stopped,
            } => {
                if let Some(exchange) = self.exchange.as_mut().filter(|e| !e.done) {
                    exchange.done = true;
                    exchange.stopped = stopped;
                    exchange.stats = stats;
                    if !model.is_empty() {
                        exchange.model = model;
                    }
                }
                self.keep_locally();
                self.settle();
            }
            ChatUpdate::Failed(error) => {
                if let Some(exchange) = self.exchange.as_mut() {
                    exchange.done = true;
                    exchange.error = Some(error);
                } else {
                    self.exchange = Some(Exchange {
                        done: true,
                        error: Some(error),
                        base: self.messages.len(),
                        ..Exchange::default()
                    });
                }
            }
        }
    }

    /// Without a store, a finished exchange joins the messages kept here.
    fn keep_locally(&mut self) {
        let Some(exchange) = self.exchange.as_ref().filter(|e| !e.stored && e.done) else {
            return;
        };
        if exchange.error.is_some() {
            return;
        }
        self.messages.push(ConversationMessage {
            role: "user".to_owned(),
            content: exchange.question.clone(),
            ..Default::default()
        });
        self.messages.push(ConversationMessage {
            role: "assistant".to_owned(),
            content: exchange.reply.clone(),
            model: exchange.model.clone(),
            stats: exchange.stats,
            stopped: exchange.stopped,
            ..Default::default()
        });
        self.exchange = None;
    }

    /// A finished exchange the stored conversation now holds (question and
    /// reply) is shown from there: drop it here.
    fn settle(&mut self) {
        if self.exchange.as_ref().is_some_and(|e| {
            e.stored && e.done && e.error.is_none() && self.messages.len() >= e.base + 2
        }) {
            self.exchange = None;
        }
    }
}

/// When the most recently updated of `conversations` was updated (0: none).
fn newest(conversations: &[Conversation]) -> i64 {
    conversations
        .iter()
        .map(|c| c.updated_unix_ms.max(c.created_unix_ms))
        .max()
        .unwrap_or(0)
}

/// A piece of a message as drawn: prose, or a fenced code block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Text outside code fences.
    Text(String),
    /// A fenced block: its language tag (may be empty) and its code.
    Code {
        /// The tag after the opening fence, e.g. "rust".
        language: String,
        /// The code, without the fences.
        code: String,
    },
}

/// Split a message at its ``` fences. An unclosed fence (a reply still
/// streaming) runs to the end.
pub fn segments(text: &str) -> Vec<Segment> {
    let mut out = Vec::new();
    let mut prose = String::new();
    let mut code: Option<(String, String)> = None;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        let fence = bare.trim_start().strip_prefix("```");
        match (&mut code, fence) {
            (None, Some(tag)) => {
                if !prose.trim().is_empty() {
                    out.push(Segment::Text(prose.trim_end().to_owned()));
                }
                prose.clear();
                code = Some((tag.trim().to_owned(), String::new()));
            }
            (Some(_), Some(rest)) if rest.trim().is_empty() => {
                if let Some((language, body)) = code.take() {
                    out.push(Segment::Code {
                        language,
                        code: body.trim_end_matches('\n').to_owned(),
                    });
                }
            }
            (Some((_, body)), _) => body.push_str(line),
            (None, None) => prose.push_str(line),
        }
    }
    if let Some((language, body)) = code {
        out.push(Segment::Code {
            language,
            code: body.trim_end_matches('\n').to_owned(),
        });
    } else if !prose.trim().is_empty() {
        out.push(Segment::Text(prose.trim_end().to_owned()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(state: &mut ChatState, stored: bool) {
        state.apply(ChatUpdate::Started {
            project: "p1".into(),
            question: "hi".into(),
            conversation: stored.then(|| "c1".to_owned()),
            model: "m".into(),
        });
    }

    fn message(role: &str, content: &str) -> ConversationMessage {
        ConversationMessage {
            role: role.into(),
            content: content.into(),
            ..Default::default()
        }
    }

    #[test]
    fn fences_split_prose_from_code_and_an_open_fence_runs_to_the_end() {
        let text = "Try this:\n```rust\nfn main() {}\n```\nThen run it.\n```sh\ncargo r";
        assert_eq!(
            segments(text),
            vec![
                Segment::Text("Try this:".into()),
                Segment::Code {
                    language: "rust".into(),
                    code: "fn main() {}".into()
                },
                Segment::Text("Then run it.".into()),
                Segment::Code {
                    language: "sh".into(),
                    code: "cargo r".into()
                },
            ]
        );
        assert_eq!(segments("plain"), vec![Segment::Text("plain".into())]);
        assert!(segments("").is_empty());
    }

    #[test]
    fn a_stored_exchange_shows_until_the_conversation_holds_it() {
        let mut state = ChatState::default();
        started(&mut state, true);
        assert!(state.streaming());
        state.apply(ChatUpdate::Piece("Hel".into()));
        state.apply(ChatUpdate::Piece("lo".into()));
        assert_eq!(
            state.exchange.as_ref().map(|e| e.reply.as_str()),
            Some("Hello")
        );
        // The question stored before the reply ends: shown once, from the
        // conversation.
        state.apply(ChatUpdate::Opened(Conversation {
            id: "c1".into(),
            messages: vec![message("user", "hi")],
            ..Default::default()
        }));
        let exchange = state.exchange.clone().unwrap_or_default();
        assert!(!state.shows_question(&exchange));
        state.apply(ChatUpdate::Done {
            model: "m".into(),
            stats: None,
            stopped: false,
        });
        assert!(!state.streaming());
        assert!(state.exchange.is_some(), "dropped before it was stored");
        state.apply(ChatUpdate::Opened(Conversation {
            id: "c1".into(),
            messages: vec![message("user", "hi"), message("assistant", "Hello")],
            ..Default::default()
        }));
        assert!(state.exchange.is_none());
        assert_eq!(state.messages.len(), 2);
    }

    #[test]
    fn without_a_store_the_panel_keeps_the_exchange() {
        let mut state = ChatState::default();
        started(&mut state, false);
        state.apply(ChatUpdate::Piece("Hello".into()));
        state.apply(ChatUpdate::Done {
            model: "m".into(),
            stats: Some(GenerationStats::default()),
            stopped: false,
        });
        assert!(state.exchange.is_none());
        let kept: Vec<_> = state
            .messages
            .iter()
            .map(|m| (m.role.as_str(), m.content.as_str()))
            .collect();
        assert_eq!(kept, [("user", "hi"), ("assistant", "Hello")]);
    }

    #[test]
    fn a_failure_stays_with_its_fix_and_ends_the_stream() {
        let mut state = ChatState::default();
        started(&mut state, true);
        state.apply(ChatUpdate::Failed(ChatError {
            message: "Ollama is not running".into(),
            fix: Some(ChatFix::StartOllama),
        }));
        assert!(!state.streaming());
        let error = state.exchange.as_ref().and_then(|e| e.error.clone());
        assert_eq!(error.and_then(|e| e.fix), Some(ChatFix::StartOllama));
    }

    #[test]
    fn a_change_before_the_first_list_asks_for_a_reread() {
        // A question started a conversation while the first list is still
        // on its way (it may predate the change): its updates are read
        // again.
        let mut state = ChatState::default();
        state.apply(ChatUpdate::Opened(Conversation {
            id: "c1".into(),
            project_id: "p1".into(),
            ..Default::default()
        }));
        for change in ["created", "updated"] {
            let before = state.revision;
            state.apply(ChatUpdate::Changed(ConversationChanged {
                conversation_id: "c1".into(),
                project_id: "p1".into(),
                change: change.into(),
            }));
            assert_ne!(state.revision, before, "{change} before any list");
        }
    }

    #[test]
    fn changes_to_the_listed_project_ask_for_a_reread_and_a_deletion_hides() {
        let mut state = ChatState::default();
        state.apply(ChatUpdate::Listed {
            project: "p1".into(),
            conversations: vec![Conversation {
                id: "c1".into(),
                ..Default::default()
            }],
        });
        state.apply(ChatUpdate::Opened(Conversation {
            id: "c1".into(),
            project_id: "p1".into(),
            messages: vec![message("user", "hi")],
            ..Default::default()
        }));
        let before = state.revision;
        state.apply(ChatUpdate::Changed(ConversationChanged {
            conversation_id: "other".into(),
            project_id: "p2".into(),
            change: "created".into(),
        }));
        assert_eq!(state.revision, before, "another project's change");
        state.apply(ChatUpdate::Changed(ConversationChanged {
            conversation_id: "c1".into(),
            project_id: "p1".into(),
            change: "deleted".into(),
        }));
        assert_ne!(state.revision, before);
        assert!(state.shown.is_none());
        assert!(state.messages.is_empty());
        // Listing another project forgets what was shown.
        state.apply(ChatUpdate::Opened(Conversation {
            id: "c2".into(),
            project_id: "p1".into(),
            ..Default::default()
        }));
        state.apply(ChatUpdate::Listed {
            project: "p2".into(),
            conversations: Vec::new(),
        });
        assert!(state.shown.is_none());
    }

    #[test]
    fn reads_answering_out_of_order_keep_the_newer() {
        let mut state = ChatState::default();
        let conversation = |n: usize, updated: i64| Conversation {
            id: "c1".into(),
            project_id: "p1".into(),
            updated_unix_ms: updated,
            messages: vec![message("user", "hi"); n],
            ..Default::default()
        };
        state.apply(ChatUpdate::Opened(conversation(2, 20)));
        state.apply(ChatUpdate::Opened(conversation(1, 10)));
        assert_eq!(state.messages.len(), 2);
        let listed = |updated: &[i64]| ChatUpdate::Listed {
            project: "p1".into(),
            conversations: updated
                .iter()
                .map(|u| Conversation {
                    id: format!("c{u}"),
                    updated_unix_ms: *u,
                    ..Default::default()
                })
                .collect(),
        };
        state.apply(listed(&[30, 10]));
        state.apply(listed(&[10]));
        assert_eq!(
            state.conversations.len(),
            2,
            "a stale list replaced a newer one"
        );
        // A deletion is applied as it is told, and the next list holds.
        state.apply(ChatUpdate::Changed(ConversationChanged {
            conversation_id: "c30".into(),
            project_id: "p1".into(),
            change: "deleted".into(),
        }));
        state.apply(listed(&[10]));
        assert_eq!(state.conversations.len(), 1);
    }

    #[test]
    fn a_first_list_does_not_wipe_what_was_just_asked() {
        // The tab lists the project and the user asks at once: the answers
        // may come in either order.
        let mut state = ChatState::default();
        started(&mut state, false);
        state.apply(ChatUpdate::Piece("Hello".into()));
        state.apply(ChatUpdate::Done {
            model: "m".into(),
            stats: None,
            stopped: false,
        });
        state.apply(ChatUpdate::Listed {
            project: "p1".into(),
            conversations: Vec::new(),
        });
        assert_eq!(state.messages.len(), 2);
    }

    #[test]
    fn model_choices_read_as_the_cli_writes_them() {
        let local = ModelChoice {
            provider: "local".into(),
            name: "llama3.2:1b".into(),
        };
        assert!(local.is_local());
        assert_eq!(local.label(), "llama3.2:1b");
        let remote = ModelChoice {
            provider: "gpu-box".into(),
            name: "qwen".into(),
        };
        assert!(!remote.is_local());
        assert_eq!(remote.label(), "gpu-box/qwen");
    }
}
