//! The tools `omnipanel mcp` offers an AI agent, each one call (or a few)
//! to the agent on the server's one project: files (list, read, find,
//! search, write, delete), Git (status, diff, commit), models (list,
//! chat) and the machine's status. Paths are relative to the project; the
//! agent's own sandbox refuses anything outside it. A tool's failure is a
//! tool result marked as an error whose text says what happened and what
//! the user can do, so the AI agent can tell them; destructive acts wait
//! (a bounded time) for the user's confirmation.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use omnipanel_client::{Client, ClientError};
use omnipanel_proto::v1 as pb;
use rmcp::{
    ErrorData, ServerHandler,
    handler::server::{router::tool::ToolRouter, wrapper::Parameters},
    model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig},
    tool, tool_handler, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::Mutex;

use super::{
    grant::{Grant, is_token_refused},
    render,
};
use crate::output::errln;

/// Most bytes `read_file` returns in one call (the AI agent pages with
/// `offset`): a whole large file would fill a model's context.
const READ_LIMIT: u64 = 256 * 1024;

/// The MCP server: its grant, its project, and the confirmations it is
/// waiting for.
#[derive(Clone)]
pub struct Tools {
    grant: Arc<Grant>,
    project: String,
    wait: Duration,
    project_ready: Arc<AtomicBool>,
    /// Confirmation ids by act, so an AI agent calling a tool again after
    /// "still waiting" retries the same confirmation instead of asking
    /// the user a second time.
    confirmations: Arc<Mutex<HashMap<String, String>>>,
    tool_router: ToolRouter<Self>,
}

/// `list_directory`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ListDirectoryArgs {
    /// Folder relative to the project root; empty or "." for the root.
    #[serde(default)]
    pub path: String,
}

/// `read_file`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReadFileArgs {
    /// File relative to the project root.
    pub path: String,
    /// Byte to start at (for reading a large file in parts).
    #[serde(default)]
    pub offset: u64,
}

/// `find_files`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct FindFilesArgs {
    /// Fuzzy query on paths, e.g. "agmain" finds agent/src/main.rs.
    pub query: String,
    /// Most matches (default 50).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `search_text`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SearchTextArgs {
    /// Text to look for (a regular expression when `regex` is true).
    pub pattern: String,
    /// Treat the pattern as a regular expression.
    #[serde(default)]
    pub regex: bool,
    /// Match letter case exactly (default: smart case).
    #[serde(default)]
    pub case_sensitive: bool,
    /// Only files matching these globs, e.g. ["*.rs"].
    #[serde(default)]
    pub include_globs: Vec<String>,
    /// Most matching lines (default 200).
    #[serde(default)]
    pub max_results: Option<u64>,
}

/// `write_file`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WriteFileArgs {
    /// File relative to the project root; missing folders are made.
    pub path: String,
    /// The whole new content (UTF-8 text).
    pub content: String,
    /// Fail instead of replacing a file that exists.
    #[serde(default)]
    pub create_only: bool,
}

/// `delete_path`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct DeletePathArgs {
    /// File or folder relative to the project root. It goes to the trash.
    pub path: String,
    /// Delete a folder with its contents (the user is asked to confirm).
    #[serde(default)]
    pub recursive: bool,
}

/// `git_diff`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitDiffArgs {
    /// Show what is staged (index against HEAD) instead of the unstaged
    /// changes (work tree against the index).
    #[serde(default)]
    pub staged: bool,
    /// Only these paths (relative to the project root).
    #[serde(default)]
    pub paths: Vec<String>,
}

/// `git_commit`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct GitCommitArgs {
    /// The commit message.
    pub message: String,
    /// Stage these paths first (relative to the project root).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Stage every change first (like `git add -A`).
    #[serde(default)]
    pub all: bool,
}

/// `chat`
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChatArgs {
    /// The message for the model.
    pub prompt: String,
    /// Model name (default: the user's default model); "provider/model"
    /// is not needed for local models.
    #[serde(default)]
    pub model: Option<String>,
    /// A system prompt.
    #[serde(default)]
    pub system: Option<String>,
}

/// A tool's outcome before it becomes a tool result.
type Outcome = Result<String, String>;

fn result(outcome: Outcome) -> Result<CallToolResult, ErrorData> {
    Ok(match outcome {
        Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
        Err(text) => CallToolResult::error(vec![ContentBlock::text(text)]),
    })
}

#[tool_router]
impl Tools {
    /// The server for `project` (absolute), holding `grant`; tools needing
    /// a scope outside `scopes` are not offered.
    pub fn new(grant: Arc<Grant>, project: String, wait: Duration, scopes: &[pb::Scope]) -> Self {
        let mut tool_router = Self::tool_router();
        for (name, needs) in TOOL_SCOPES {
            if !scopes.iter().any(|scope| covers(*scope, *needs)) {
                tool_router.remove_route(name);
            }
        }
        Self {
            grant,
            project,
            wait,
            project_ready: Arc::new(AtomicBool::new(false)),
            confirmations: Arc::new(Mutex::new(HashMap::new())),
            tool_router,
        }
    }

    /// The names of the tools offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.tool_router
            .list_all()
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect()
    }

    #[tool(
        description = "List a folder of the project: sub-folders first (ending in /), then files with their sizes.",
        annotations(read_only_hint = true)
    )]
    async fn list_directory(
        &self,
        Parameters(args): Parameters<ListDirectoryArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.project.clone();
        result(
            self.with_project(|client| async move {
                let response = client
                    .call(client.files().list_directory(pb::ListDirectoryRequest {
                        project,
                        path: relative(&args.path),
                        ..Default::default()
                    }))
                    .await?;
                Ok(render::directory(&response.entries))
            })
            .await,
        )
    }

    #[tool(
        description = "Read a text file of the project (up to 256 KiB per call; pass offset to read further).",
        annotations(read_only_hint = true)
    )]
    async fn read_file(
        &self,
        Parameters(args): Parameters<ReadFileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.project.clone();
        result(
            self.with_project(|client| async move {
                let mut stream = client
                    .call_stream(client.files().read_file(pb::ReadFileRequest {
                        project,
                        path: relative(&args.path),
                        offset: args.offset,
                        length: READ_LIMIT,
                    }))
                    .await?;
                // The file comes in chunks; the first carries its info.
                let mut whole = pb::ReadFileResponse::default();
                let mut first = true;
                while let Some(chunk) = stream.message().await? {
                    if first {
                        whole.info = chunk.info;
                        whole.binary = chunk.binary;
                        whole.offset = chunk.offset;
                        first = false;
                    }
                    whole.data.extend_from_slice(&chunk.data);
                }
                Ok(render::file_part(&args.path, &whole))
            })
            .await,
        )
    }

    #[tool(
        description = "Find files of the project by a fuzzy query on their paths (respects .gitignore). Best matches first.",
        annotations(read_only_hint = true)
    )]
    async fn find_files(
        &self,
        Parameters(args): Parameters<FindFilesArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.project.clone();
        result(
            self.with_project(|client| async move {
                let response = client
                    .call(client.files().find_files(pb::FindFilesRequest {
                        project,
                        query: args.query,
                        limit: args.limit.unwrap_or(50),
                    }))
                    .await?;
                Ok(render::found_files(&response))
            })
            .await,
        )
    }

    #[tool(
        description = "Search the text of the project's files (like ripgrep; respects .gitignore). Returns path:line: text for each matching line.",
        annotations(read_only_hint = true)
    )]
    async fn search_text(
        &self,
        Parameters(args): Parameters<SearchTextArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.project.clone();
        result(
            self.with_project(|client| async move {
                let case_mode = if args.case_sensitive {
                    pb::CaseMode::Sensitive
                } else {
                    pb::CaseMode::Smart
                };
                let max = args.max_results.unwrap_or(200);
                let mut stream = client
                    .call_stream(client.files().search_text(pb::SearchTextRequest {
                        project,
                        pattern: args.pattern,
                        regex: args.regex,
                        case_mode: case_mode.into(),
                        include_globs: args.include_globs,
                        max_results: max,
                        ..Default::default()
                    }))
                    .await?;
                let mut matches = Vec::new();
                while let Some(batch) = stream.message().await? {
                    matches.extend(batch.matches);
                }
                Ok(render::text_matches(&matches, max))
            })
            .await,
        )
    }

    #[tool(
        description = "Write a text file of the project (creates or replaces it; missing folders are made).",
        annotations(destructive_hint = true)
    )]
    async fn write_file(
        &self,
        Parameters(args): Parameters<WriteFileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.project.clone();
        let key = format!("write_file {}", args.path);
        result(
            self.with_project(|client| {
                self.confirmed(key, client, move |client| {
                    let request = pb::WriteFileRequest {
                        project: project.clone(),
                        path: relative(&args.path),
                        content: args.content.clone().into_bytes(),
                        create_only: args.create_only,
                        create_parents: true,
                        ..Default::default()
                    };
                    async move {
                        let response = client.call(client.files().write_file(request)).await?;
                        let info = response.info.unwrap_or_default();
                        Ok(format!("wrote {} ({} bytes)", info.path, info.size))
                    }
                })
            })
            .await,
        )
    }

    #[tool(
        description = "Move a file or folder of the project to the trash. Deleting a folder asks the user to confirm first.",
        annotations(destructive_hint = true)
    )]
    async fn delete_path(
        &self,
        Parameters(args): Parameters<DeletePathArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.project.clone();
        let key = format!("delete_path {} {}", args.path, args.recursive);
        result(
            self.with_project(|client| {
                self.confirmed(key, client, move |client| {
                    let request = pb::DeleteRequest {
                        project: project.clone(),
                        path: relative(&args.path),
                        permanent: false,
                        recursive: args.recursive,
                    };
                    let path = args.path.clone();
                    async move {
                        client.call(client.files().delete(request)).await?;
                        Ok(format!("moved {path} to the trash"))
                    }
                })
            })
            .await,
        )
    }

    #[tool(
        description = "Git status of the project: branch, upstream, staged, unstaged, untracked and conflicted files.",
        annotations(read_only_hint = true)
    )]
    async fn git_status(&self) -> Result<CallToolResult, ErrorData> {
        let project = self.project.clone();
        result(
            self.with_project(|client| async move {
                let response = client
                    .call(client.git().get_status(pb::GetStatusRequest { project }))
                    .await?;
                Ok(render::git_status(&response.status.unwrap_or_default()))
            })
            .await,
        )
    }

    #[tool(
        description = "Git diff of the project as a unified patch: unstaged changes, or staged ones with staged=true.",
        annotations(read_only_hint = true)
    )]
    async fn git_diff(
        &self,
        Parameters(args): Parameters<GitDiffArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.project.clone();
        result(
            self.with_project(|client| async move {
                let target = if args.staged {
                    pb::DiffTarget::IndexToHead
                } else {
                    pb::DiffTarget::WorktreeToIndex
                };
                let response = client
                    .call(client.git().get_diff(pb::GetDiffRequest {
                        project,
                        target: target.into(),
                        paths: args.paths.iter().map(|path| relative(path)).collect(),
                        ..Default::default()
                    }))
                    .await?;
                Ok(render::diff(&response))
            })
            .await,
        )
    }

    #[tool(
        description = "Commit in the project's Git repository, staging the given paths (or every change with all=true) first.",
        annotations(destructive_hint = false)
    )]
    async fn git_commit(
        &self,
        Parameters(args): Parameters<GitCommitArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let project = self.project.clone();
        result(
            self.with_project(|client| async move {
                if args.message.trim().is_empty() {
                    return Err(Failed::Said(
                        "the commit message is empty; give one".to_owned(),
                    ));
                }
                if args.all || !args.paths.is_empty() {
                    client
                        .call(client.git().stage(pb::StageRequest {
                            project: project.clone(),
                            paths: args.paths.iter().map(|path| relative(path)).collect(),
                            all: args.all,
                        }))
                        .await?;
                }
                let response = client
                    .call(client.git().commit(pb::CommitRequest {
                        project,
                        message: args.message,
                        amend: false,
                    }))
                    .await?;
                let commit = response.commit.unwrap_or_default();
                Ok(format!("committed {} {}", commit.short_id, commit.summary))
            })
            .await,
        )
    }

    #[tool(
        description = "List the models the user's model servers have (name, size, provider; the default model is marked).",
        annotations(read_only_hint = true)
    )]
    async fn list_models(&self) -> Result<CallToolResult, ErrorData> {
        result(
            self.with_client(|client| async move {
                let response = client
                    .call(
                        client
                            .models()
                            .list_models(pb::ListModelsRequest::default()),
                    )
                    .await?;
                Ok(render::models(&response.models))
            })
            .await,
        )
    }

    #[tool(
        description = "Ask one of the user's local models (default: the user's default model) and return its whole answer.",
        annotations(read_only_hint = true)
    )]
    async fn chat(
        &self,
        Parameters(args): Parameters<ChatArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        result(
            self.with_client(|client| async move {
                let mut messages = Vec::new();
                if let Some(system) = args.system.filter(|text| !text.is_empty()) {
                    messages.push(message("system", system));
                }
                messages.push(message("user", args.prompt));
                let mut stream = client
                    .call_stream(client.models().chat(pb::ChatRequest {
                        model: args.model.unwrap_or_default(),
                        messages,
                        ..Default::default()
                    }))
                    .await?;
                let mut answer = String::new();
                while let Some(piece) = stream.message().await? {
                    answer.push_str(&piece.content);
                    if piece.done {
                        break;
                    }
                }
                Ok(answer)
            })
            .await,
        )
    }

    #[tool(
        description = "The machine's and OmniPanel's state: the Ollama server, the default model, CPU, memory, GPUs and active alerts.",
        annotations(read_only_hint = true)
    )]
    async fn system_status(&self) -> Result<CallToolResult, ErrorData> {
        result(
            self.with_client(|client| async move {
                let server = client
                    .call(
                        client
                            .models()
                            .get_server_status(pb::GetServerStatusRequest {}),
                    )
                    .await?
                    .status
                    .unwrap_or_default();
                let snapshot = client
                    .call(client.system().get_snapshot(pb::GetSnapshotRequest {}))
                    .await?
                    .snapshot
                    .unwrap_or_default();
                let alerts = client
                    .call(client.system().list_alerts(pb::ListAlertsRequest {
                        active_only: true,
                        ..Default::default()
                    }))
                    .await?
                    .alerts;
                Ok(render::system(client.info(), &server, &snapshot, &alerts))
            })
            .await,
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("omnipanel", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Tools on the project at {} through the user's OmniPanel agent: its files, its Git \
                 repository, the user's local models and the machine's state. Paths are relative \
                 to the project root. The user approves this server's access once, and confirms \
                 destructive acts; when a tool says it is waiting for the user, tell the user what \
                 it says and call the tool again.",
                self.project
            ))
    }
}

/// Why a tool did not get its answer.
enum Failed {
    /// The agent's error.
    Agent(ClientError),
    /// Our own words (bad arguments, waiting for the user).
    Said(String),
}

impl From<ClientError> for Failed {
    fn from(err: ClientError) -> Self {
        Self::Agent(err)
    }
}

impl Tools {
    /// Run `act` with the grant's client; errors in words for the AI
    /// agent, and a refused token forgotten so the next call asks again.
    async fn with_client<F, Fut>(&self, act: F) -> Outcome
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<String, Failed>>,
    {
        let client = self.grant.client(self.wait).await?;
        match act(client).await {
            Ok(text) => Ok(text),
            Err(Failed::Said(text)) => Err(text),
            Err(Failed::Agent(err)) if is_token_refused(&err) => {
                self.project_ready.store(false, Ordering::Relaxed);
                self.grant.forget(&err.to_string()).await;
                Err(format!(
                    "{err}. OmniPanel access was revoked or expired; call the tool again to ask the user for access again"
                ))
            }
            Err(Failed::Agent(err)) => Err(err.to_string()),
        }
    }

    /// [`Self::with_client`], once the project is open in the agent (it
    /// is opened on first use when the grant allows).
    async fn with_project<F, Fut>(&self, act: F) -> Outcome
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<String, Failed>>,
    {
        let project = self.project.clone();
        let ready = Arc::clone(&self.project_ready);
        self.with_client(|client| async move {
            if !ready.load(Ordering::Relaxed) {
                open_project(&client, &project).await?;
                ready.store(true, Ordering::Relaxed);
            }
            act(client).await
        })
        .await
    }

    /// Run a possibly destructive act: when the agent asks for the user's
    /// confirmation, retry with it until the user answers (at most
    /// `wait`; a later call with the same key goes on waiting for the
    /// same confirmation).
    async fn confirmed<F, Fut>(&self, key: String, client: Client, act: F) -> Result<String, Failed>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<String, Failed>>,
    {
        let known = self.confirmations.lock().await.get(&key).cloned();
        let mut current = match &known {
            Some(id) => client.confirming(id)?,
            None => client.clone(),
        };
        let mut confirmation = known;
        let deadline = tokio::time::Instant::now() + self.wait;
        let mut pause = Duration::from_millis(200);
        loop {
            let err = match act(current.clone()).await {
                Ok(text) => {
                    self.confirmations.lock().await.remove(&key);
                    return Ok(text);
                }
                Err(Failed::Agent(err)) => err,
                Err(said) => return Err(said),
            };
            match err.reason().as_deref() {
                Some("CONFIRMATION_REQUIRED") => {
                    let Some(id) = err.confirmation_id() else {
                        return Err(Failed::Agent(err));
                    };
                    errln!(
                        "omnipanel mcp: {key}: waiting for the user's confirmation {id} \
                         (omnipanel confirmations allow {id})"
                    );
                    self.confirmations
                        .lock()
                        .await
                        .insert(key.clone(), id.clone());
                    current = client.confirming(&id)?;
                    confirmation = Some(id);
                }
                Some("CONFIRMATION_PENDING") => {
                    if tokio::time::Instant::now() + pause > deadline {
                        let id = confirmation.unwrap_or_default();
                        return Err(Failed::Said(format!(
                            "This act needs the user's confirmation and the user has not answered yet \
                             (confirmation {id}). Ask the user to allow it in the OmniPanel tray or \
                             panel, or to run `omnipanel confirmations allow {id}`; then call this tool \
                             again with the same arguments."
                        )));
                    }
                    // The agent tells a client nothing when the user
                    // answers (that event is the owner's), so the retry is
                    // the way to learn it; it only runs while a tool call
                    // waits, and slows down.
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Some("CONFIRMATION_DENIED") => {
                    self.confirmations.lock().await.remove(&key);
                    return Err(Failed::Said(format!(
                        "The user did not allow this act ({}). Do not retry it unless the user asks.",
                        err
                    )));
                }
                _ => return Err(Failed::Agent(err)),
            }
        }
    }
}

/// Make sure the agent serves `project`: known and open, or opened now
/// (which needs the write scope; with read only, the user is told how).
async fn open_project(client: &Client, project: &str) -> Result<(), Failed> {
    let known = client
        .call(client.projects().get_project(pb::GetProjectRequest {
            project: project.to_owned(),
        }))
        .await;
    match known {
        Ok(response) if response.project.as_ref().is_some_and(|p| p.open) => return Ok(()),
        Ok(_) => {}
        Err(err)
            if matches!(
                err.reason().as_deref(),
                Some("PROJECT_NOT_FOUND" | "PROJECT_CLOSED")
            ) => {}
        Err(err) => return Err(Failed::Agent(err)),
    }
    match client
        .call(client.projects().open_project(pb::OpenProjectRequest {
            path: project.to_owned(),
            name: String::new(),
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(err @ ClientError::AccessDenied { .. }) => Err(Failed::Said(format!(
            "{project} is not open in OmniPanel and this server may not open it ({err}); ask the user \
             to run `omnipanel projects open {project}`"
        ))),
        Err(err) => Err(Failed::Agent(err)),
    }
}

fn message(role: &str, content: String) -> pb::ChatMessage {
    pb::ChatMessage {
        role: role.to_owned(),
        content,
        ..Default::default()
    }
}

/// A path as the agent takes it: relative to the project root, "" for
/// the root itself.
fn relative(path: &str) -> String {
    let trimmed = path.trim();
    if trimmed == "." || trimmed == "./" {
        String::new()
    } else {
        trimmed.trim_start_matches("./").to_owned()
    }
}

/// Which scope each tool needs (a tool is offered only when the server
/// asks for a scope that covers it).
const TOOL_SCOPES: &[(&str, pb::Scope)] = &[
    ("list_directory", pb::Scope::Read),
    ("read_file", pb::Scope::Read),
    ("find_files", pb::Scope::Read),
    ("search_text", pb::Scope::Read),
    ("git_status", pb::Scope::Read),
    ("git_diff", pb::Scope::Read),
    ("write_file", pb::Scope::Write),
    ("delete_path", pb::Scope::Write),
    ("git_commit", pb::Scope::Write),
    ("list_models", pb::Scope::Status),
    ("chat", pb::Scope::Infer),
    ("system_status", pb::Scope::Status),
];

/// Whether holding `held` gives `needed`: status is everyone's, write
/// includes read, admin includes all (as the agent's scopes do).
fn covers(held: pb::Scope, needed: pb::Scope) -> bool {
    held == needed
        || needed == pb::Scope::Status
        || held == pb::Scope::Admin
        || (held == pb::Scope::Write && needed == pb::Scope::Read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_taken_relative_to_the_project_root() {
        assert_eq!(relative("."), "");
        assert_eq!(relative(" ./src/main.rs "), "src/main.rs");
        assert_eq!(relative("src"), "src");
        assert_eq!(relative(""), "");
    }

    #[test]
    fn scopes_cover_what_the_agent_says_they_do() {
        use pb::Scope::*;
        assert!(covers(Write, Read));
        assert!(covers(Admin, Infer));
        assert!(covers(Read, Status));
        assert!(!covers(Read, Write));
        assert!(!covers(Infer, Read));
        assert!(!covers(Write, Infer));
    }

    #[test]
    fn every_tool_has_a_scope() {
        let names: Vec<String> = Tools::tool_router()
            .list_all()
            .into_iter()
            .map(|tool| tool.name.to_string())
            .collect();
        let mut listed: Vec<&str> = TOOL_SCOPES.iter().map(|(name, _)| *name).collect();
        let mut names: Vec<&str> = names.iter().map(String::as_str).collect();
        listed.sort_unstable();
        names.sort_unstable();
        assert_eq!(listed, names);
    }
}
