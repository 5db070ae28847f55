//! `omnipanel mcp`: a Model Context Protocol server on stdin and stdout,
//! so AI coding agents (Claude Code, Codex, Continue, Cursor…) reach one
//! project's files, its Git repository, the user's local models and the
//! machine's state through the OmniPanel agent. The server is a client
//! of its own, never the owner: it asks the user for access (the
//! admission flow) and destructive tools wait for the user's
//! confirmation, so the user approves what an AI agent does. Only
//! protocol messages go to stdout; what the user should read goes to
//! stderr, which MCP hosts keep in their logs.

mod grant;
mod render;
mod tools;

use std::time::Duration;

use clap::Args;
use omnipanel_client::Target;
use omnipanel_proto::v1::{Expiry, Scope};
use rmcp::ServiceExt;

use crate::{
    Failure,
    args::{parse_expiry, parse_scope},
    project_ref::{absolute, path_text},
};

/// `omnipanel mcp`
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The project the tools work on (default: the current directory).
    #[arg(long, value_name = "DIR")]
    pub project: Option<String>,
    /// The name the user sees in the access request (default: "MCP
    /// server for <project folder name>").
    #[arg(long)]
    pub name: Option<String>,
    /// Scopes to ask for, comma-separated: read (files, Git status and
    /// diffs), write (change files, commit), infer (chat with models).
    /// Tools needing a scope not asked for are not offered.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_scope,
        default_value = "read,write,infer"
    )]
    pub scopes: Vec<Scope>,
    /// How long access is wanted: once (this run of the agent), 1h, 1d or
    /// always (the user may give less).
    #[arg(long = "for", value_parser = parse_expiry, value_name = "once|1h|1d|always")]
    pub expiry: Option<Expiry>,
    /// How long a tool call waits for the user to approve access or to
    /// confirm an act before it answers that it is still waiting.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub wait: Duration,
    /// Print the tools that would be offered, one per line, and exit.
    #[arg(long)]
    pub list_tools: bool,
}

/// Serve MCP on stdin/stdout until the host closes stdin.
pub async fn mcp(args: McpArgs) -> Result<(), Failure> {
    let folder = absolute(args.project.as_deref().unwrap_or("."))?;
    let folder = tokio::fs::canonicalize(&folder).await.map_err(|err| {
        Failure::Other(format!(
            "cannot use {} as the project: {err}",
            folder.display()
        ))
    })?;
    if !folder.is_dir() {
        return Err(Failure::Other(format!(
            "{} is not a folder; pass the project folder with --project",
            folder.display()
        )));
    }
    let project = path_text(&folder)?;
    let name = match args.name {
        Some(name) if name.trim().is_empty() => {
            return Err(Failure::Other(
                "--name is empty; give the name the user should see".to_owned(),
            ));
        }
        Some(name) => name,
        None => format!(
            "MCP server for {}",
            folder
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| project.clone())
        ),
    };
    let grant = grant::Grant::new(
        grant::Wanted {
            name,
            scopes: args.scopes.clone(),
            project: project.clone(),
            expiry: args.expiry.unwrap_or(Expiry::Unspecified),
        },
        Target::from_env(),
        grant::TokenCache::in_data_folder(),
    );
    let tools = tools::Tools::new(grant.clone(), project, args.wait, &args.scopes);
    if args.list_tools {
        for name in tools.tool_names() {
            crate::output::outln!("{name}")?;
        }
        return Ok(());
    }
    // Ask now, so the request is waiting in the tray by the time the AI
    // agent calls its first tool.
    grant.start();
    let running = tools
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|err| Failure::Other(format!("the MCP session did not start: {err}")))?;
    running
        .waiting()
        .await
        .map_err(|err| Failure::Other(format!("the MCP server failed: {err}")))?;
    Ok(())
}
