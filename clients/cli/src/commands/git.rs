//! `omnipanel git ...`: Git on an open project through the agent's
//! GitService, printed much like git itself prints it (status in sections,
//! one-line log, unified diffs coloured on a terminal) and as JSON with
//! `--json`. Fetch, pull and push show the transfer as a progress line on
//! a terminal. The project is chosen like `omnipanel files` chooses it, and
//! paths typed from the current directory are made project-relative.

use std::{io::IsTerminal, path::PathBuf};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use omnipanel_client::Client;
use omnipanel_proto::v1::{
    self as pb, CheckoutRequest, CommitRequest, CreateBranchRequest, DeleteBranchRequest,
    FetchRequest, GetDiffRequest, GetLogRequest, GetStatusRequest, ListBranchesRequest,
    PullRequest, PushRequest, StageRequest, UnstageRequest,
};
use tonic::Streaming;

use crate::{
    Failure,
    agent_commands::short_id,
    cli::{GitArgs, GitCommand},
    file_commands::{choose_project, project_path},
    model_commands::rpc,
    render::{emit_line, emit_lines, human_size, paint, print_json, relative_time, stdout_color},
};

/// The project a git command works on.
struct Repo {
    client: Client,
    id: String,
    root: PathBuf,
    json: bool,
}

impl Repo {
    fn paths(&self, args: &[String]) -> Result<Vec<String>, Failure> {
        args.iter().map(|a| project_path(&self.root, a)).collect()
    }

    fn rpc<T>(&self, result: Result<tonic::Response<T>, tonic::Status>) -> Result<T, Failure> {
        rpc(&self.client, result)
    }
}

/// `omnipanel git ...`
pub async fn git(args: GitArgs, json: bool) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    let project = choose_project(&client, args.project.as_deref()).await?;
    let repo = Repo {
        client,
        id: project.id,
        root: PathBuf::from(project.path),
        json,
    };
    let mut git = repo.client.git();
    let project = repo.id.clone();
    match args.command {
        GitCommand::Status => {
            let status = repo
                .rpc(git.get_status(GetStatusRequest { project }).await)?
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
                .rpc(
                    git.create_branch(CreateBranchRequest {
                        project,
                        name,
                        start_point: from.unwrap_or_default(),
                        checkout: false,
                    })
                    .await,
                )?
                .branch
                .unwrap_or_default();
            let _ = all;
            if json {
                return print_json(&branch);
            }
            emit_line(&format!(
                "created branch {} at {} {}",
                branch.name,
                short_id(&branch.commit),
                branch.summary
            ))
        }
        GitCommand::Branches {
            delete: Some(name),
            force,
            ..
        } => {
            let response = repo.rpc(
                git.delete_branch(DeleteBranchRequest {
                    project,
                    name: name.clone(),
                    force,
                })
                .await,
            )?;
            if json {
                return print_json(&response);
            }
            emit_line(&format!(
                "deleted branch {name} (was {})",
                short_id(&response.commit)
            ))
        }
        GitCommand::Branches { all, .. } => {
            let branches = repo
                .rpc(
                    git.list_branches(ListBranchesRequest {
                        project,
                        include_remote: all,
                    })
                    .await,
                )?
                .branches;
            if json {
                return print_json(&branches);
            }
            show_branches(&branches)
        }
        GitCommand::Switch {
            target,
            create,
            from,
        } => {
            if create {
                repo.rpc(
                    git.create_branch(CreateBranchRequest {
                        project: project.clone(),
                        name: target.clone(),
                        start_point: from.unwrap_or_default(),
                        checkout: true,
                    })
                    .await,
                )?;
                let status = repo
                    .rpc(git.get_status(GetStatusRequest { project }).await)?
                    .status
                    .unwrap_or_default();
                if json {
                    return print_json(&status);
                }
                return emit_line(&format!("switched to a new branch {}", status.branch));
            }
            let status = repo
                .rpc(git.checkout(CheckoutRequest { project, target }).await)?
                .status
                .unwrap_or_default();
            if json {
                return print_json(&status);
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
            let response = repo.rpc(
                git.get_log(GetLogRequest {
                    project,
                    start: start.unwrap_or_default(),
                    limit,
                    page_token: page.unwrap_or_default(),
                    path,
                })
                .await,
            )?;
            if json {
                return print_json(&response);
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
            let response = repo.rpc(
                git.get_diff(GetDiffRequest {
                    project,
                    target: target.into(),
                    from,
                    to,
                    paths: repo.paths(&paths)?,
                    context_lines: context,
                    max_bytes,
                })
                .await,
            )?;
            if json {
                return print_json(&response);
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
            let status = repo.rpc(response.await)?.status.unwrap_or_default();
            show_status(&repo, &status)
        }
        GitCommand::Reset { paths, all } => {
            let paths = repo.paths(&paths)?;
            let response = git.unstage(UnstageRequest {
                project,
                paths,
                all,
            });
            let status = repo.rpc(response.await)?.status.unwrap_or_default();
            show_status(&repo, &status)
        }
        GitCommand::Commit { message, amend } => {
            let commit = repo
                .rpc(
                    git.commit(CommitRequest {
                        project,
                        message,
                        amend,
                    })
                    .await,
                )?
                .commit
                .unwrap_or_default();
            if json {
                return print_json(&commit);
            }
            emit_line(&format!("[{}] {}", commit.short_id, commit.summary))
        }
        GitCommand::Fetch { remote } => {
            let stream = repo.rpc(
                git.fetch(FetchRequest {
                    project,
                    remote: remote.unwrap_or_default(),
                })
                .await,
            )?;
            let last = follow(&repo, stream, |m: &pb::FetchResponse| {
                (m.progress.clone(), m.done)
            })
            .await?;
            if json {
                return print_json(&last);
            }
            show_refs(&last.updated, "already up to date")
        }
        GitCommand::Pull { remote, merge } => {
            let mode = if merge {
                pb::PullMode::Merge
            } else {
                pb::PullMode::FastForwardOnly
            };
            let stream = repo.rpc(
                git.pull(PullRequest {
                    project,
                    remote: remote.unwrap_or_default(),
                    mode: mode.into(),
                })
                .await,
            )?;
            let last = follow(&repo, stream, |m: &pb::PullResponse| {
                (m.progress.clone(), m.done)
            })
            .await?;
            if json {
                return print_json(&last);
            }
            show_pull(&last)
        }
        GitCommand::Push {
            remote,
            branch,
            set_upstream,
            force,
        } => {
            let stream = repo.rpc(
                git.push(PushRequest {
                    project,
                    remote: remote.unwrap_or_default(),
                    branch: branch.unwrap_or_default(),
                    set_upstream,
                    force,
                })
                .await,
            )?;
            let last = follow(&repo, stream, |m: &pb::PushResponse| {
                (m.progress.clone(), m.done)
            })
            .await?;
            if json {
                return print_json(&last);
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
    mut stream: Streaming<M>,
    parts: impl Fn(&M) -> (Option<pb::TransferProgress>, bool),
) -> Result<M, Failure> {
    let bar = (!repo.json && std::io::stderr().is_terminal()).then(|| {
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
        let message = stream
            .message()
            .await
            .map_err(|status| Failure::Client(repo.client.error(status)))?;
        let Some(message) = message else {
            break;
        };
        let (progress, done) = parts(&message);
        if let (Some(bar), Some(p)) = (&bar, progress) {
            bar.set_message(progress_text(&p));
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

fn progress_text(p: &pb::TransferProgress) -> String {
    if !p.message.is_empty() {
        return p.message.trim().to_owned();
    }
    if p.objects_total == 0 {
        return "connecting…".to_owned();
    }
    format!(
        "objects {}/{} ({})",
        p.objects_done,
        p.objects_total,
        human_size(p.bytes)
    )
}

fn change_word(change: i32) -> &'static str {
    match pb::ChangeType::try_from(change) {
        Ok(pb::ChangeType::Added) => "new file",
        Ok(pb::ChangeType::Modified) => "modified",
        Ok(pb::ChangeType::Deleted) => "deleted",
        Ok(pb::ChangeType::Renamed) => "renamed",
        Ok(pb::ChangeType::TypeChanged) => "typechange",
        Ok(pb::ChangeType::Untracked) => "untracked",
        Ok(pb::ChangeType::Conflicted) => "both modified",
        _ => "changed",
    }
}

fn operation_word(operation: i32) -> Option<&'static str> {
    match pb::RepoOperation::try_from(operation) {
        Ok(pb::RepoOperation::Merge) => Some("merge"),
        Ok(pb::RepoOperation::Rebase) => Some("rebase"),
        Ok(pb::RepoOperation::CherryPick) => Some("cherry-pick"),
        Ok(pb::RepoOperation::Revert) => Some("revert"),
        Ok(pb::RepoOperation::Bisect) => Some("bisect"),
        Ok(pb::RepoOperation::ApplyMailbox) => Some("am"),
        _ => None,
    }
}

/// "main at 1a2b3c4d Fix the thing", "detached at …", "main (no commits yet)".
fn head_line(status: &pb::RepoStatus) -> String {
    if status.empty {
        return format!("{} (no commits yet)", status.branch);
    }
    let at = format!("{} {}", short_id(&status.head), status.head_summary);
    if status.detached {
        format!("detached HEAD at {at}")
    } else {
        format!("{} at {at}", status.branch)
    }
}

fn show_status(repo: &Repo, status: &pb::RepoStatus) -> Result<(), Failure> {
    if repo.json {
        return print_json(status);
    }
    let color = stdout_color();
    let mut out = vec![format!("On {}", head_line(status))];
    if let Some(up) = &status.upstream {
        let relation = match (up.ahead, up.behind) {
            (0, 0) => "up to date".to_owned(),
            (a, 0) => format!("ahead by {a}"),
            (0, b) => format!("behind by {b}"),
            (a, b) => format!("diverged: {a} ahead, {b} behind"),
        };
        out.push(format!("Upstream {}: {relation}", up.name));
    }
    if let Some(op) = operation_word(status.operation) {
        out.push(format!(
            "A {op} is in progress: resolve, `omnipanel git add`, then commit"
        ));
    }
    if status.stash_count > 0 {
        out.push(format!("{} stash entries", status.stash_count));
    }
    let mut section = |title: &str, entries: &[pb::StatusEntry], colour: &str| {
        if entries.is_empty() {
            return;
        }
        out.push(String::new());
        out.push(format!("{title}:"));
        for e in entries {
            let path = if e.old_path.is_empty() {
                e.path.clone()
            } else {
                format!("{} -> {}", e.old_path, e.path)
            };
            let line = format!("  {:<12} {path}", format!("{}:", change_word(e.change)));
            out.push(paint(&line, colour, color));
        }
    };
    section("Conflicts", &status.conflicted, "31");
    section("Staged", &status.staged, "32");
    section("Not staged", &status.unstaged, "31");
    section("Untracked", &status.untracked, "31");
    if status.staged.is_empty()
        && status.unstaged.is_empty()
        && status.untracked.is_empty()
        && status.conflicted.is_empty()
    {
        out.push("nothing to commit, working tree clean".to_owned());
    }
    emit_lines(&out)
}

fn show_branches(branches: &[pb::Branch]) -> Result<(), Failure> {
    let color = stdout_color();
    let mut out = Vec::new();
    for b in branches {
        let mark = if b.current { "*" } else { " " };
        let name = if b.remote {
            paint(&b.name, "31", color)
        } else if b.current {
            paint(&b.name, "32", color)
        } else {
            b.name.clone()
        };
        let mut tracking = String::new();
        if !b.upstream.is_empty() {
            tracking = format!(" [{}", b.upstream);
            if b.ahead > 0 {
                tracking.push_str(&format!(": ahead {}", b.ahead));
            }
            if b.behind > 0 {
                tracking.push_str(&format!(
                    "{} behind {}",
                    if b.ahead > 0 { "," } else { ":" },
                    b.behind
                ));
            }
            tracking.push(']');
        }
        out.push(format!(
            "{mark} {name} {} {}{tracking} ({})",
            short_id(&b.commit),
            b.summary,
            relative_time(b.commit_time_unix_ms)
        ));
    }
    if out.is_empty() {
        out.push("no branches yet (make a first commit)".to_owned());
    }
    emit_lines(&out)
}

fn show_log(response: &pb::GetLogResponse) -> Result<(), Failure> {
    let color = stdout_color();
    let mut out = Vec::new();
    for c in &response.commits {
        let author = c.author.clone().unwrap_or_default();
        out.push(format!(
            "{} {} ({}, {})",
            paint(&c.short_id, "33", color),
            c.summary,
            author.name,
            relative_time(author.time_unix_ms)
        ));
    }
    if !response.next_page_token.is_empty() {
        out.push(format!(
            "… more: omnipanel git log --page {}",
            response.next_page_token
        ));
    }
    if out.is_empty() {
        out.push("no commits".to_owned());
    }
    emit_lines(&out)
}

fn show_diff(response: &pb::GetDiffResponse, stat: bool) -> Result<(), Failure> {
    let color = stdout_color();
    let mut out = Vec::new();
    if stat {
        for f in &response.files {
            let path = if f.new_path.is_empty() {
                &f.old_path
            } else {
                &f.new_path
            };
            let counts = if f.binary {
                "binary".to_owned()
            } else {
                format!("+{} -{}", f.additions, f.deletions)
            };
            out.push(format!(" {path} | {counts}"));
        }
    } else {
        for line in response.patch.lines() {
            let colour = if line.starts_with("+++") || line.starts_with("---") {
                "1"
            } else if line.starts_with('+') {
                "32"
            } else if line.starts_with('-') {
                "31"
            } else if line.starts_with("@@") {
                "36"
            } else {
                ""
            };
            out.push(if colour.is_empty() {
                line.to_owned()
            } else {
                paint(line, colour, color)
            });
        }
    }
    if stat || response.files_changed > 0 {
        out.push(format!(
            " {} files changed, {} insertions(+), {} deletions(-){}",
            response.files_changed,
            response.insertions,
            response.deletions,
            if response.truncated {
                " (patch truncated: raise --max-bytes or narrow the paths)"
            } else {
                ""
            }
        ));
    }
    if out.is_empty() {
        return Ok(());
    }
    emit_lines(&out)
}

fn show_refs(updated: &[pb::RefUpdate], nothing: &str) -> Result<(), Failure> {
    if updated.is_empty() {
        return emit_line(nothing);
    }
    let lines: Vec<String> = updated
        .iter()
        .map(|r| {
            if !r.error.is_empty() {
                format!(" ! {} rejected: {}", r.name, r.error)
            } else if r.old_id.is_empty() || r.old_id.chars().all(|c| c == '0') {
                format!(" * {} (new) {}", r.name, short_id(&r.new_id))
            } else {
                format!(
                    "   {} {}..{}",
                    r.name,
                    short_id(&r.old_id),
                    short_id(&r.new_id)
                )
            }
        })
        .collect();
    emit_lines(&lines)
}

fn show_pull(last: &pb::PullResponse) -> Result<(), Failure> {
    match pb::PullOutcome::try_from(last.outcome) {
        Ok(pb::PullOutcome::UpToDate) => emit_line("already up to date"),
        Ok(pb::PullOutcome::FastForwarded) => {
            emit_line(&format!("fast-forwarded to {}", short_id(&last.head)))
        }
        Ok(pb::PullOutcome::Merged) => {
            emit_line(&format!("merged; HEAD is {}", short_id(&last.head)))
        }
        Ok(pb::PullOutcome::Conflicts) => Err(Failure::Other(format!(
            "the merge stopped with conflicts in: {}\nresolve them, `omnipanel git add` the files, then `omnipanel git commit`",
            last.conflicts.join(", ")
        ))),
        _ => emit_line("pull finished"),
    }
}
