//! Chat conversations the agent keeps per project, in state.db: the
//! agent's own history (shared by every client granted the project: the
//! panel, the VS Code chat view, the CLI), not a client's workspace blob.
//!
//! Every call names the caller and goes on only if it is granted the
//! conversation's project; a conversation of a project it is not granted
//! answers exactly like an unknown id, so ids of other projects cannot be
//! probed. A chat that continues a conversation goes through a [`Turn`]:
//! the stored messages are read first, the request's new messages are
//! appended once the provider accepted the request (so a refused request,
//! e.g. a missing model, leaves no unanswered message behind), and the
//! reply through a [`ReplyRecorder`], which stores what arrived even when
//! the stream is dropped half-way (the client went away, the agent shuts
//! down): its `Drop` hands the write to a task.

mod events;

use std::sync::Arc;

use rusqlite::OptionalExtension;

use crate::{
    error::{Error, ErrorKind, Result},
    events::Publisher,
    ollama::{ChatMessage, GenerationStats},
    projects::{Projects, random_id},
    reason::Reason,
    store::{Store, now_ms},
    tokens::Caller,
};
pub use events::ConversationEvent;

/// Most bytes of one message a client may add.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Most bytes of a stored reply; a longer one is cut there (and marked
/// stopped).
pub const MAX_REPLY_BYTES: usize = 8 * 1024 * 1024;
/// Most characters of a title; longer ones are cut.
pub const MAX_TITLE_CHARS: usize = 80;
/// Most bytes of a model name given at creation.
const MAX_MODEL_BYTES: usize = 300;

/// A conversation as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Stable identifier.
    pub id: String,
    /// The project's id.
    pub project_id: String,
    /// Title ("" until given or taken from the first user message).
    pub title: String,
    /// The model of the latest reply, or the one asked for at creation.
    pub model: String,
    /// The provider of the latest reply; "" before the first.
    pub provider: String,
    /// Creation, ms since the epoch.
    pub created_ms: i64,
    /// Last message added, ms since the epoch.
    pub updated_ms: i64,
    /// How many messages it holds.
    pub message_count: u32,
    /// Its messages, oldest first (only [`Conversations::get`] fills them).
    pub messages: Vec<StoredMessage>,
}

/// One stored message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredMessage {
    /// "system", "user", "assistant" (or "tool").
    pub role: String,
    /// Text.
    pub content: String,
    /// When it was added, ms since the epoch.
    pub created_ms: i64,
    /// For a reply: the model that wrote it.
    pub model: String,
    /// For a reply: the provider that served it.
    pub provider: String,
    /// For a complete reply: its timings and token counts.
    pub stats: Option<GenerationStats>,
    /// For a reply: it ended early; `content` is what had arrived.
    pub stopped: bool,
}

/// The conversation store.
#[derive(Debug)]
pub struct Conversations {
    store: Store,
    bus: Publisher<ConversationEvent>,
    projects: Arc<Projects>,
}

/// A conversation being continued by one chat request: the history to
/// send, and (through [`Turn::start`]) where the request and reply go.
#[derive(Debug)]
pub struct Turn {
    conversation: Conversation,
    new: Vec<ChatMessage>,
    store: Store,
    bus: Publisher<ConversationEvent>,
}

/// Stores a reply as it streams: [`push`](Self::push) each piece, then
/// [`finish`](Self::finish) (complete) or [`stop`](Self::stop) (ended
/// early). Dropped without either, it stores what arrived as stopped, in
/// a task of its own (a stream's task is dropped when its client goes
/// away, before any `.await` after it could run).
#[derive(Debug)]
pub struct ReplyRecorder {
    pending: Option<PendingReply>,
}

#[derive(Debug)]
struct PendingReply {
    store: Store,
    bus: Publisher<ConversationEvent>,
    conversation_id: String,
    project_id: String,
    provider: String,
    model: String,
    text: String,
    truncated: bool,
}

const COLUMNS: &str = "c.id, c.project_id, c.title, c.model, c.provider, c.created_ms, c.updated_ms, \
     (SELECT COUNT(*) FROM conversation_messages m WHERE m.conversation_id = c.id)";

fn row_to_conversation(row: &rusqlite::Row<'_>) -> rusqlite::Result<Conversation> {
    Ok(Conversation {
        id: row.get(0)?,
        project_id: row.get(1)?,
        title: row.get(2)?,
        model: row.get(3)?,
        provider: row.get(4)?,
        created_ms: row.get(5)?,
        updated_ms: row.get(6)?,
        message_count: u32::try_from(row.get::<_, i64>(7)?).unwrap_or(u32::MAX),
        messages: Vec::new(),
    })
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!(
        "no conversation {id:?}; list a project's conversations with `omnipanel conversations list`"
    ))
    .with_reason(Reason::ConversationNotFound)
}

/// A title as kept: the first line, trimmed, at most [`MAX_TITLE_CHARS`]
/// characters (the last one "…" when cut).
pub fn clean_title(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .unwrap_or_default();
    let line: String = line.chars().filter(|c| !c.is_control()).collect();
    if line.chars().count() <= MAX_TITLE_CHARS {
        return line;
    }
    let mut cut: String = line.chars().take(MAX_TITLE_CHARS - 1).collect();
    cut.truncate(cut.trim_end().len());
    cut.push('…');
    cut
}

fn check_new_messages(messages: &[ChatMessage]) -> Result<()> {
    for (index, message) in messages.iter().enumerate() {
        if message.content.len() > MAX_MESSAGE_BYTES {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!(
                    "messages[{index}] is {} bytes; a conversation keeps messages of at most {MAX_MESSAGE_BYTES} bytes (1 MiB)",
                    message.content.len()
                ),
            ));
        }
    }
    Ok(())
}

fn stats_to_json(stats: &GenerationStats) -> String {
    serde_json::json!({
        "total_duration_ns": stats.total_duration_ns,
        "load_duration_ns": stats.load_duration_ns,
        "prompt_eval_count": stats.prompt_eval_count,
        "prompt_eval_duration_ns": stats.prompt_eval_duration_ns,
        "eval_count": stats.eval_count,
        "eval_duration_ns": stats.eval_duration_ns,
        "time_to_first_token_ns": stats.time_to_first_token_ns,
    })
    .to_string()
}

fn stats_from_json(text: &str) -> Option<GenerationStats> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let field = |name: &str| value.get(name).and_then(serde_json::Value::as_u64);
    Some(GenerationStats {
        total_duration_ns: field("total_duration_ns").unwrap_or(0),
        load_duration_ns: field("load_duration_ns").unwrap_or(0),
        prompt_eval_count: field("prompt_eval_count").unwrap_or(0),
        prompt_eval_duration_ns: field("prompt_eval_duration_ns").unwrap_or(0),
        eval_count: field("eval_count").unwrap_or(0),
        eval_duration_ns: field("eval_duration_ns").unwrap_or(0),
        time_to_first_token_ns: field("time_to_first_token_ns").unwrap_or(0),
    })
}

/// Append `message` to conversation `id` inside `tx` (its `seq` follows
/// the last one) and stamp the conversation as updated.
fn insert_message(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    message: &StoredMessage,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO conversation_messages
             (conversation_id, seq, role, content, created_ms, model, provider, stats, stopped)
         VALUES (?1, (SELECT COALESCE(MAX(seq), -1) + 1 FROM conversation_messages WHERE conversation_id = ?1),
                 ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        (
            id,
            &message.role,
            &message.content,
            message.created_ms,
            &message.model,
            &message.provider,
            message.stats.as_ref().map(stats_to_json),
            i64::from(message.stopped),
        ),
    )?;
    tx.execute(
        "UPDATE conversations SET updated_ms = ?2 WHERE id = ?1",
        (id, message.created_ms),
    )?;
    Ok(())
}

impl Conversations {
    /// The store over state.db; `projects` decides who may use which.
    pub fn new(
        store: Store,
        bus: Publisher<ConversationEvent>,
        projects: Arc<Projects>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            bus,
            projects,
        })
    }

    fn publish(&self, conversation: &Conversation, change: &str) {
        self.bus.publish(ConversationEvent::ConversationChanged {
            conversation_id: conversation.id.clone(),
            project_id: conversation.project_id.clone(),
            change: change.to_owned(),
        });
    }

    /// Start an empty conversation in project `project` (id or path).
    pub async fn create(
        &self,
        caller: &Caller,
        project: &str,
        title: &str,
        model: &str,
    ) -> Result<Conversation> {
        if model.len() > MAX_MODEL_BYTES || model.chars().any(char::is_control) {
            return Err(Error::invalid_argument(
                "model",
                "a model name of at most 300 printable characters, e.g. \"llama3.2:1b\"",
            ));
        }
        self.projects.authorize(caller, project).await?;
        let record = self.projects.find(project).await?;
        let now = now_ms();
        let conversation = Conversation {
            id: random_id()?,
            project_id: record.id,
            title: clean_title(title),
            model: model.to_owned(),
            created_ms: now,
            updated_ms: now,
            ..Conversation::default()
        };
        let row = conversation.clone();
        self.store
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO conversations (id, project_id, title, model, provider, created_ms, updated_ms)
                     VALUES (?1, ?2, ?3, ?4, '', ?5, ?5)",
                    (&row.id, &row.project_id, &row.title, &row.model, row.created_ms),
                )?;
                Ok(())
            })
            .await?;
        self.publish(&conversation, "created");
        Ok(conversation)
    }

    /// The conversations of project `project`, most recently updated
    /// first, without messages; at most `limit` (0: all).
    pub async fn list(
        &self,
        caller: &Caller,
        project: &str,
        limit: u32,
    ) -> Result<Vec<Conversation>> {
        self.projects.authorize(caller, project).await?;
        let record = self.projects.find(project).await?;
        let limit = if limit == 0 { -1 } else { i64::from(limit) };
        self.store
            .read(move |c| {
                let mut statement = c.prepare(&format!(
                    "SELECT {COLUMNS} FROM conversations c WHERE c.project_id = ?1
                     ORDER BY c.updated_ms DESC, c.created_ms DESC, c.id LIMIT ?2"
                ))?;
                let rows = statement
                    .query_map((&record.id, limit), row_to_conversation)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await
    }

    /// The conversation `id` (without messages) if `caller` may see it;
    /// NOT_FOUND alike for an unknown id and one of a project not granted.
    async fn find(&self, caller: &Caller, id: &str) -> Result<Conversation> {
        if id.is_empty() {
            return Err(Error::invalid_argument(
                "id",
                "name the conversation by its id (see `omnipanel conversations list`)",
            ));
        }
        let key = id.to_owned();
        let found = self
            .store
            .read(move |c| {
                Ok(c.query_row(
                    &format!("SELECT {COLUMNS} FROM conversations c WHERE c.id = ?1"),
                    [&key],
                    row_to_conversation,
                )
                .optional()?)
            })
            .await?
            .ok_or_else(|| not_found(id))?;
        if self
            .projects
            .authorize(caller, &found.project_id)
            .await
            .is_err()
        {
            return Err(not_found(id));
        }
        Ok(found)
    }

    /// One conversation with its messages.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Conversation> {
        let mut conversation = self.find(caller, id).await?;
        let key = conversation.id.clone();
        conversation.messages = self
            .store
            .read(move |c| {
                let mut statement = c.prepare(
                    "SELECT role, content, created_ms, model, provider, stats, stopped
                     FROM conversation_messages WHERE conversation_id = ?1 ORDER BY seq",
                )?;
                let rows = statement
                    .query_map([&key], |row| {
                        Ok(StoredMessage {
                            role: row.get(0)?,
                            content: row.get(1)?,
                            created_ms: row.get(2)?,
                            model: row.get(3)?,
                            provider: row.get(4)?,
                            stats: row
                                .get::<_, Option<String>>(5)?
                                .as_deref()
                                .and_then(stats_from_json),
                            stopped: row.get::<_, i64>(6)? != 0,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        conversation.message_count = u32::try_from(conversation.messages.len()).unwrap_or(u32::MAX);
        Ok(conversation)
    }

    /// Delete a conversation and its messages.
    pub async fn delete(&self, caller: &Caller, id: &str) -> Result<Conversation> {
        let conversation = self.find(caller, id).await?;
        let key = conversation.id.clone();
        self.store
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM conversation_messages WHERE conversation_id = ?1",
                    [&key],
                )?;
                tx.execute("DELETE FROM conversations WHERE id = ?1", [&key])?;
                Ok(())
            })
            .await?;
        self.publish(&conversation, "deleted");
        Ok(conversation)
    }

    /// Begin continuing conversation `id` with the request's `new`
    /// messages: checks the grant and the messages' sizes and reads the
    /// history; nothing is stored until [`Turn::start`].
    pub async fn turn(&self, caller: &Caller, id: &str, new: Vec<ChatMessage>) -> Result<Turn> {
        check_new_messages(&new)?;
        let conversation = self.get(caller, id).await?;
        Ok(Turn {
            conversation,
            new,
            store: self.store.clone(),
            bus: self.bus.clone(),
        })
    }
}

impl Turn {
    /// The conversation as it was before this request.
    pub fn conversation(&self) -> &Conversation {
        &self.conversation
    }

    /// What to send the model: the stored messages (role and text), then
    /// the request's own.
    pub fn history(&self) -> Vec<ChatMessage> {
        self.conversation
            .messages
            .iter()
            .map(|m| ChatMessage {
                role: m.role.clone(),
                content: m.content.clone(),
                images: Vec::new(),
            })
            .chain(self.new.iter().cloned())
            .collect()
    }

    /// The provider accepted the request: append its messages (images are
    /// not kept) and name the title after the first user message when it
    /// has none; the returned recorder stores the reply of `model` on
    /// `provider`.
    pub async fn start(self, provider: &str, model: &str) -> Result<ReplyRecorder> {
        let id = self.conversation.id.clone();
        let title = if self.conversation.title.is_empty() {
            self.conversation
                .messages
                .iter()
                .map(|m| (m.role.as_str(), m.content.as_str()))
                .chain(
                    self.new
                        .iter()
                        .map(|m| (m.role.as_str(), m.content.as_str())),
                )
                .find(|(role, _)| *role == "user")
                .map(|(_, content)| clean_title(content))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let now = now_ms();
        let messages: Vec<StoredMessage> = self
            .new
            .into_iter()
            .map(|m| StoredMessage {
                role: m.role,
                content: m.content,
                created_ms: now,
                ..StoredMessage::default()
            })
            .collect();
        let key = id.clone();
        let existed = self
            .store
            .write(move |tx| {
                let exists = tx
                    .query_row("SELECT 1 FROM conversations WHERE id = ?1", [&key], |_| {
                        Ok(())
                    })
                    .optional()?
                    .is_some();
                if !exists {
                    return Ok(false);
                }
                for message in &messages {
                    insert_message(tx, &key, message)?;
                }
                if !title.is_empty() {
                    tx.execute(
                        "UPDATE conversations SET title = ?2 WHERE id = ?1 AND title = ''",
                        (&key, &title),
                    )?;
                }
                Ok(true)
            })
            .await?;
        if !existed {
            // Deleted between reading the history and now.
            return Err(not_found(&id));
        }
        self.bus.publish(ConversationEvent::ConversationChanged {
            conversation_id: id.clone(),
            project_id: self.conversation.project_id.clone(),
            change: "updated".to_owned(),
        });
        Ok(ReplyRecorder {
            pending: Some(PendingReply {
                store: self.store,
                bus: self.bus,
                conversation_id: id,
                project_id: self.conversation.project_id,
                provider: provider.to_owned(),
                model: model.to_owned(),
                text: String::new(),
                truncated: false,
            }),
        })
    }
}

impl ReplyRecorder {
    /// A piece of the reply arrived.
    pub fn push(&mut self, text: &str) {
        let Some(pending) = self.pending.as_mut() else {
            return;
        };
        if pending.text.len() + text.len() <= MAX_REPLY_BYTES {
            pending.text.push_str(text);
            return;
        }
        let mut end = MAX_REPLY_BYTES.saturating_sub(pending.text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        pending.text.push_str(&text[..end]);
        pending.truncated = true;
    }

    /// The reply is complete; `stats` from its last piece.
    pub async fn finish(mut self, stats: Option<GenerationStats>) -> Result<()> {
        match self.pending.take() {
            Some(pending) => pending.save(stats, false).await,
            None => Ok(()),
        }
    }

    /// The reply ended early (an error half-way): keep what arrived.
    pub async fn stop(mut self) -> Result<()> {
        match self.pending.take() {
            Some(pending) => pending.save(None, true).await,
            None => Ok(()),
        }
    }
}

impl Drop for ReplyRecorder {
    fn drop(&mut self) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        // Dropped mid-stream: the write cannot be awaited here, and must
        // not block the executor, so a task of its own does it.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    let id = pending.conversation_id.clone();
                    if let Err(err) = pending.save(None, true).await {
                        tracing::warn!(conversation = %id, "cannot store a stopped reply: {err}");
                    }
                });
            }
            Err(_) => tracing::warn!(
                conversation = %pending.conversation_id,
                "a stopped reply is lost: no runtime to store it"
            ),
        }
    }
}

impl PendingReply {
    async fn save(self, stats: Option<GenerationStats>, stopped: bool) -> Result<()> {
        let message = StoredMessage {
            role: "assistant".to_owned(),
            content: self.text,
            created_ms: now_ms(),
            model: self.model,
            provider: self.provider,
            stats: if stopped { None } else { stats },
            stopped: stopped || self.truncated,
        };
        let key = self.conversation_id.clone();
        let stored = self
            .store
            .write(move |tx| {
                let exists = tx
                    .query_row("SELECT 1 FROM conversations WHERE id = ?1", [&key], |_| {
                        Ok(())
                    })
                    .optional()?
                    .is_some();
                if !exists {
                    // Deleted while the reply streamed: nothing to add to.
                    return Ok(false);
                }
                insert_message(tx, &key, &message)?;
                tx.execute(
                    "UPDATE conversations SET model = ?2, provider = ?3 WHERE id = ?1",
                    (&key, &message.model, &message.provider),
                )?;
                Ok(true)
            })
            .await?;
        if stored {
            self.bus.publish(ConversationEvent::ConversationChanged {
                conversation_id: self.conversation_id,
                project_id: self.project_id,
                change: "updated".to_owned(),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
