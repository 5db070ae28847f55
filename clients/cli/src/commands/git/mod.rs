//! `omnipanel git ...`: Git on an open project through the agent's
//! GitService, printed much like git itself prints it (status in sections,
//! one-line log, unified diffs coloured on a terminal) and as JSON with
//! `--json`. Fetch, pull and push show the transfer as a progress line on
//! a terminal. The project is chosen like `omnipanel files` chooses it, and
//! paths typed from the current directory are made project-relative.
//! The text is written by `show`.

mod show;

use std::{io::IsTerminal, path::PathBuf};

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use omnipanel_client::{Client, MessageStream, display};
use omnipanel_proto::v1::{
    self as pb, CheckoutRequest, CommitRequest, CreateBranchRequest, DeleteBranchRequest,
    FetchRequest, GetDiffRequest, GetLogRequest, GetStatusRequest, ListBranchesRequest,
    PullRequest, PushRequest, StageRequest, UnstageRequest,
};

use self::show::{
    head_line, show_branches, show_diff, show_log, show_pull, show_refs, show_status,
};
use crate::{
    Failure,
    output::{Output, emit_line},
    project_ref::{choose_project, project_path},
};

/// `omnipanel git`
#[derive(Debug, Args)]
pub struct GitArgs {
    /// Project id or path (default: the open project containing the
    /// current directory).
    #[arg(long, global = true)]
    pub project: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: GitCommand,
}

/// `omnipanel git ...`
#[derive(Debug, Subcommand)]
pub enum GitCommand {
    /// Branch, upstream, staged/unstaged/untracked/conflicted files.
    #[command(visible_alias = "st")]
    Status,
    /// List branches; create or delete one.
    #[command(visible_alias = "branch")]
    Branches {
        /// Include remote-tracking branches.
        #[arg(short, long)]
        all: bool,
        /// Create a branch with this name (from HEAD, or --from).
        #[arg(short, long, value_name = "NAME", conflicts_with = "delete")]
        create: Option<String>,
        /// Where the new branch starts (branch, tag or commit).
        #[arg(long, value_name = "REF", requires = "create")]
        from: Option<String>,
        /// Delete the branch with this name (refused when not merged).
        #[arg(short, long, value_name = "NAME")]
        delete: Option<String>,
        /// Delete even when not merged.
        #[arg(long, requires = "delete")]
        force: bool,
    },
    /// Switch to a branch, tag or commit (refused when it would overwrite
    /// uncommitted changes).
    Switch {
        /// Branch, tag or commit.
        target: String,
        /// Create the branch first (from HEAD, or --from).
        #[arg(short, long)]
        create: bool,
        /// Where the new branch starts.
        #[arg(long, value_name = "REF", requires = "create")]
        from: Option<String>,
    },
    /// Commits, newest first.
    Log {
        /// Where to start (default HEAD).
        start: Option<String>,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
        /// Only commits touching this path.
        #[arg(long)]
        path: Option<String>,
        /// Continue after an earlier page (the token it printed).
        #[arg(long)]
        page: Option<String>,
    },
    /// Unstaged changes (or --staged, --head, or between two commits).
    Diff {
        /// Older commit (with TO: compare two commits).
        from: Option<String>,
        /// Newer commit.
        #[arg(requires = "from")]
        to: Option<String>,
        /// Staged changes (index against HEAD).
        #[arg(long, visible_alias = "cached", conflicts_with_all = ["head", "from"])]
        staged: bool,
        /// All uncommitted changes (working tree against HEAD).
        #[arg(long, conflicts_with = "from")]
        head: bool,
        /// Per-file summary instead of the patch.
        #[arg(long)]
        stat: bool,
        /// Context lines.
        #[arg(short = 'U', long, default_value_t = 3)]
        context: u32,
        /// Largest patch to fetch, in bytes (the agent marks it truncated).
        #[arg(long, default_value_t = 4 * 1024 * 1024)]
        max_bytes: u64,
        /// Limit to these paths.
        #[arg(last = true)]
        paths: Vec<String>,
    },
    /// Stage paths (or --all).
    Add {
        /// Paths.
        #[arg(required_unless_present = "all")]
        paths: Vec<String>,
        /// Everything, new files and deletions included.
        #[arg(short = 'A', long)]
        all: bool,
    },
    /// Unstage paths (or --all); the working tree is not touched.
    Reset {
        /// Paths.
        #[arg(required_unless_present = "all")]
        paths: Vec<String>,
        /// Everything.
        #[arg(long)]
        all: bool,
    },
    /// Commit the staged changes.
    Commit {
        /// The message.
        #[arg(short, long)]
        message: String,
        /// Replace the last commit instead.
        #[arg(long)]
        amend: bool,
    },
    /// Download from a remote.
    Fetch {
        /// Remote (default: the branch's upstream remote, else origin).
        remote: Option<String>,
    },
    /// Fetch and integrate the upstream (fast-forward only unless --merge).
    Pull {
        /// Remote (default: the upstream's).
        remote: Option<String>,
        /// Merge when histories diverged; conflicts stay in the working
        /// tree and are listed.
        #[arg(long)]
        merge: bool,
    },
    /// Upload a branch.
    Push {
        /// Remote (default: the upstream's, else origin).
        remote: Option<String>,
        /// Branch (default: the current one).
        branch: Option<String>,
        /// Record the remote branch as the upstream.
        #[arg(short = 'u', long)]
        set_upstream: bool,
        /// Overwrite the remote branch even when it is not an ancestor.
        #[arg(long)]
        force: bool,
    },
}

/// The project a git command works on.
struct Repo {
    client: Client,
    id: String,
    root: PathBuf,
    out: Output,
}

impl Repo {
    fn paths(&self, args: &[String]) -> Result<Vec<String>, Failure> {
        args.iter().map(|a| project_path(&self.root, a)).collect()
    }
}

/// `omnipanel git ...`
pub async fn git(args: GitArgs, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let project = choose_project(&client, args.project.as_deref()).await?;
    let repo = Repo {
        client,
        id: project.id,
        root: PathBuf::from(project.path),
        out,
    };
    let mut git = repo.client.git();
    let project = repo.id.clone();
    match args.command {
        GitCommand::Status => {
            let status = repo
                .client
                .call(git.get_status(GetStatusRequest { project }))
                .await?
                .status
                .unwrap_or_default();
            show_status(&repo, &status)
        }
        GitCommand::Branches {
            all,
            create: Some(name),
            from,
            ..
        } => {
            let branch = repo
                .client
                .call(git.create_branch(CreateBranchRequest {
                    project,
                    name,
                    start_point: from.unwrap_or_default(),
                    checkout: false,
                }))
                .await?
                .branch
                .unwrap_or_default();
            let _ = all;
            if out.is_json() {
                return out.json(&branch);
            }
            emit_line(&format!(
                "created branch {} at {} {}",
                branch.name,
                display::short_id(&branch.commit),
                branch.summary
            ))
        }
        GitCommand::Branches {
            delete: Some(name),
            force,
            ..
        } => {
            let response = repo
                .client
                .call(git.delete_branch(DeleteBranchRequest {
                    project,
                    name: name.clone(),
                    force,
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            emit_line(&format!(
                "deleted branch {name} (was {})",
                display::short_id(&response.commit)
            ))
        }
        GitCommand::Branches { all, .. } => {
            let branches = repo
                .client
                .call(git.list_branches(ListBranchesRequest {
                    project,
                    include_remote: all,
                }))
                .await?
                .branches;
            if out.is_json() {
                return out.json(&branches);
            }
            show_branches(&branches)
        }
        GitCommand::Switch {
            target,
            create,
            from,
        } => {
            if create {
                repo.client
                    .call(git.create_branch(CreateBranchRequest {
                        project: project.clone(),
                        name: target.clone(),
                        start_point: from.unwrap_or_default(),
                        checkout: true,
                    }))
                    .await?;
                let status = repo
                    .client
                    .call(git.get_status(GetStatusRequest { project }))
                    .await?
                    .status
                    .unwrap_or_default();
                if out.is_json() {
                    return out.json(&status);
                }
                return emit_line(&format!("switched to a new branch {}", status.branch));
            }
            let status = repo
                .client
                .call(git.checkout(CheckoutRequest { project, target }))
                .await?
                .status
                .unwrap_or_default();
            if out.is_json() {
                return out.json(&status);
            }
            emit_line(&format!("now on {}", head_line(&status)))
        }
        GitCommand::Log {
            start,
            limit,
            path,
            page,
        } => {
            let path = match path {
                Some(p) => repo.paths(&[p])?.remove(0),
                None => String::new(),
            };
            let response = repo
                .client
                .call(git.get_log(GetLogRequest {
                    project,
                    start: start.unwrap_or_default(),
                    limit,
                    page_token: page.unwrap_or_default(),
                    path,
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            show_log(&response)
        }
        GitCommand::Diff {
            from,
            to,
            staged,
            head,
            stat,
            context,
            max_bytes,
            paths,
        } => {
            let target = if from.is_some() {
                pb::DiffTarget::Commits
            } else if staged {
                pb::DiffTarget::IndexToHead
            } else if head {
                pb::DiffTarget::WorktreeToHead
            } else {
                pb::DiffTarget::WorktreeToIndex
            };
            let (from, to) = match (from, to) {
                // One commit: what it changed, like `git show`.
                (Some(commit), None) => (format!("{commit}^"), commit),
                (from, to) => (from.unwrap_or_default(), to.unwrap_or_default()),
            };
            let response = repo
                .client
                .call(git.get_diff(GetDiffRequest {
                    project,
                    target: target.into(),
                    from,
                    to,
                    paths: repo.paths(&paths)?,
                    context_lines: context,
                    max_bytes,
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            show_diff(&response, stat)
        }
        GitCommand::Add { paths, all } => {
            let paths = repo.paths(&paths)?;
            let response = git.stage(StageRequest {
                project,
                paths,
                all,
            });
            let status = repo.client.call(response).await?.status.unwrap_or_default();
            show_status(&repo, &status)
        }
        GitCommand::Reset { paths, all } => {
            let paths = repo.paths(&paths)?;
            let response = git.unstage(UnstageRequest {
                project,
                paths,
                all,
            });
            let status = repo.client.call(response).await?.status.unwrap_or_default();
            show_status(&repo, &status)
        }
        GitCommand::Commit { message, amend } => {
            let commit = repo
                .client
                .call(git.commit(CommitRequest {
                    project,
                    message,
                    amend,
                }))
                .await?
                .commit
                .unwrap_or_default();
            if out.is_json() {
                return out.json(&commit);
            }
            emit_line(&format!("[{}] {}", commit.short_id, commit.summary))
        }
        GitCommand::Fetch { remote } => {
            let stream = repo
                .client
                .call_stream(git.fetch(FetchRequest {
                    project,
                    remote: remote.unwrap_or_default(),
                }))
                .await?;
            let last = follow(&repo, stream, |m: &pb::FetchResponse| {
                (m.progress.clone(), m.done)
            })
            .await?;
            if out.is_json() {
                return out.json(&last);
            }
            show_refs(&last.updated, "already up to date")
        }
        GitCommand::Pull { remote, merge } => {
            let mode = if merge {
                pb::PullMode::Merge
            } else {
                pb::PullMode::FastForwardOnly
            };
            let stream = repo
                .client
                .call_stream(git.pull(PullRequest {
                    project,
                    remote: remote.unwrap_or_default(),
                    mode: mode.into(),
                }))
                .await?;
            let last = follow(&repo, stream, |m: &pb::PullResponse| {
                (m.progress.clone(), m.done)
            })
            .await?;
            if out.is_json() {
                return out.json(&last);
            }
            show_pull(&last)
        }
        GitCommand::Push {
            remote,
            branch,
            set_upstream,
            force,
        } => {
            let stream = repo
                .client
                .call_stream(git.push(PushRequest {
                    project,
                    remote: remote.unwrap_or_default(),
                    branch: branch.unwrap_or_default(),
                    set_upstream,
                    force,
                }))
                .await?;
            let last = follow(&repo, stream, |m: &pb::PushResponse| {
                (m.progress.clone(), m.done)
            })
            .await?;
            if out.is_json() {
                return out.json(&last);
            }
            let rejected: Vec<&pb::RefUpdate> = last
                .updated
                .iter()
                .filter(|r| !r.error.is_empty())
                .collect();
            show_refs(&last.updated, "everything up to date")?;
            if rejected.is_empty() {
                Ok(())
            } else {
                Err(Failure::Other(format!(
                    "the remote rejected {}",
                    rejected
                        .iter()
                        .map(|r| format!("{} ({})", r.name, r.error))
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        }
    }
}

/// Drain a transfer stream, showing its progress on a terminal, and return
/// the last message (the result).
async fn follow<M: Default>(
    repo: &Repo,
    mut stream: MessageStream<M>,
    parts: impl Fn(&M) -> (Option<pb::TransferProgress>, bool),
) -> Result<M, Failure> {
    let bar = (!repo.out.is_json() && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        // The template is a constant; if it ever failed to parse, the
        // default style still shows the message.
        if let Ok(style) = ProgressStyle::with_template("{spinner} {wide_msg}") {
            bar.set_style(style);
        }
        bar
    });
    let mut last = M::default();
    loop {
        let message = stream.message().await?;
        let Some(message) = message else {
            break;
        };
        let (progress, done) = parts(&message);
        if let (Some(bar), Some(p)) = (&bar, progress) {
            bar.set_message(display::transfer_line(&p));
            bar.tick();
        }
        last = message;
        if done {
            break;
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(last)
}
