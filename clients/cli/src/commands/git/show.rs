//! How `omnipanel git` prints results for people, much like git itself:
//! status in sections, branches, a one-line log, unified diffs (coloured
//! on a terminal), ref updates and pull outcomes.

use omnipanel_client::display;
use omnipanel_proto::v1 as pb;

use super::Repo;
use crate::{
    Failure,
    output::{emit_line, emit_lines, paint, stdout_color},
};

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
pub(super) fn head_line(status: &pb::RepoStatus) -> String {
    if status.empty {
        return format!("{} (no commits yet)", status.branch);
    }
    let at = format!(
        "{} {}",
        display::short_id(&status.head),
        status.head_summary
    );
    if status.detached {
        format!("detached HEAD at {at}")
    } else {
        format!("{} at {at}", status.branch)
    }
}

pub(super) fn show_status(repo: &Repo, status: &pb::RepoStatus) -> Result<(), Failure> {
    if repo.out.is_json() {
        return repo.out.json(status);
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
            let line = format!(
                "  {:<12} {path}",
                format!("{}:", display::change_label(e.change))
            );
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

pub(super) fn show_branches(branches: &[pb::Branch]) -> Result<(), Failure> {
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
            display::short_id(&b.commit),
            b.summary,
            display::relative_time(b.commit_time_unix_ms)
        ));
    }
    if out.is_empty() {
        out.push("no branches yet (make a first commit)".to_owned());
    }
    emit_lines(&out)
}

pub(super) fn show_log(response: &pb::GetLogResponse) -> Result<(), Failure> {
    let color = stdout_color();
    let mut out = Vec::new();
    for c in &response.commits {
        let author = c.author.clone().unwrap_or_default();
        out.push(format!(
            "{} {} ({}, {})",
            paint(&c.short_id, "33", color),
            c.summary,
            author.name,
            display::relative_time(author.time_unix_ms)
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

pub(super) fn show_diff(response: &pb::GetDiffResponse, stat: bool) -> Result<(), Failure> {
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

pub(super) fn show_refs(updated: &[pb::RefUpdate], nothing: &str) -> Result<(), Failure> {
    if updated.is_empty() {
        return emit_line(nothing);
    }
    let lines: Vec<String> = updated
        .iter()
        .map(|r| {
            if !r.error.is_empty() {
                format!(" ! {} rejected: {}", r.name, r.error)
            } else if r.old_id.is_empty() || r.old_id.chars().all(|c| c == '0') {
                format!(" * {} (new) {}", r.name, display::short_id(&r.new_id))
            } else {
                format!(
                    "   {} {}..{}",
                    r.name,
                    display::short_id(&r.old_id),
                    display::short_id(&r.new_id)
                )
            }
        })
        .collect();
    emit_lines(&lines)
}

pub(super) fn show_pull(last: &pb::PullResponse) -> Result<(), Failure> {
    match pb::PullOutcome::try_from(last.outcome) {
        Ok(pb::PullOutcome::UpToDate) => emit_line("already up to date"),
        Ok(pb::PullOutcome::FastForwarded) => emit_line(&format!(
            "fast-forwarded to {}",
            display::short_id(&last.head)
        )),
        Ok(pb::PullOutcome::Merged) => emit_line(&format!(
            "merged; HEAD is {}",
            display::short_id(&last.head)
        )),
        Ok(pb::PullOutcome::Conflicts) => Err(Failure::Other(format!(
            "the merge stopped with conflicts in: {}\nresolve them, `omnipanel git add` the files, then `omnipanel git commit`",
            last.conflicts.join(", ")
        ))),
        _ => emit_line("pull finished"),
    }
}
