//! `omnipanel files find`, `files grep` (printed like ripgrep, with
//! context and colours on a terminal) and `files watch` (a live change
//! feed): searching and following a project's files.

use std::io::IsTerminal;

use clap::Args;
use omnipanel_proto::v1::{
    self as pb, FindFilesRequest, SearchTextRequest, WatchRequest, watch_response::Item,
};
use tokio::signal::unix::Signal;

use super::{Scope, count};
use crate::{
    Failure,
    output::{emit, errln, stdout_color, style},
};

/// `omnipanel files grep`
#[derive(Debug, Args)]
pub struct GrepArgs {
    /// What to look for (literal text unless --regex).
    pub pattern: String,
    /// Treat the pattern as a regular expression.
    #[arg(short = 'e', long)]
    pub regex: bool,
    /// Ignore case (default: smart case, insensitive unless the pattern
    /// has an upper-case letter).
    #[arg(short = 'i', long, overrides_with = "case_sensitive")]
    pub ignore_case: bool,
    /// Match case exactly.
    #[arg(short = 's', long, overrides_with = "ignore_case")]
    pub case_sensitive: bool,
    /// Match whole words only.
    #[arg(short = 'w', long)]
    pub word_regexp: bool,
    /// Only files matching this glob, e.g. '*.rs' (repeatable).
    #[arg(short = 'g', long = "glob", value_name = "GLOB")]
    pub globs: Vec<String>,
    /// Skip files matching this glob (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Lines of context before and after each match (at most 20).
    #[arg(short = 'C', long = "context", value_name = "N")]
    pub context: Option<u32>,
    /// Lines of context after each match (overrides -C).
    #[arg(short = 'A', long = "after-context", value_name = "N")]
    pub after: Option<u32>,
    /// Lines of context before each match (overrides -C).
    #[arg(short = 'B', long = "before-context", value_name = "N")]
    pub before: Option<u32>,
    /// Stop after this many matching lines in all (default 1000).
    #[arg(short = 'm', long = "max-count", value_name = "MAX")]
    pub max: Option<u64>,
    /// Search hidden files too.
    #[arg(long)]
    pub hidden: bool,
    /// Search files ignored by .gitignore too.
    #[arg(long)]
    pub no_ignore: bool,
}

/// `text` with the characters at `positions` (char indices) in bold.
fn bold_positions(text: &str, positions: &[u32]) -> String {
    let mut out = String::with_capacity(text.len() + positions.len() * 8);
    let mut bold = false;
    for (index, ch) in text.chars().enumerate() {
        let hit = u32::try_from(index).is_ok_and(|i| positions.binary_search(&i).is_ok());
        if hit != bold {
            out.push_str(if hit { style::BOLD } else { style::RESET });
            bold = hit;
        }
        out.push(ch);
    }
    if bold {
        out.push_str(style::RESET);
    }
    out
}

pub(super) async fn find(scope: &Scope, query: String, limit: u32) -> Result<(), Failure> {
    let response = scope
        .client
        .call(scope.client.files().find_files(FindFilesRequest {
            project: scope.id.clone(),
            query: query.clone(),
            limit,
        }))
        .await?;
    if scope.out.is_json() {
        return scope.out.json(&response);
    }
    let color = stdout_color();
    let mut text = String::new();
    for found in &response.matches {
        if color {
            let mut positions = found.positions.clone();
            positions.sort_unstable();
            text.push_str(&bold_positions(&found.path, &positions));
        } else {
            text.push_str(&found.path);
        }
        text.push('\n');
    }
    emit(&text)?;
    if !response.index_complete {
        errln!(
            "omnipanel: the file index is still being built ({} so far); results may be incomplete",
            count(response.total_files, "file")
        );
    } else if response.matches.is_empty() {
        errln!(
            "omnipanel: no file name matches {query:?} ({} indexed)",
            count(response.total_files, "file")
        );
    }
    Ok(())
}

/// `text` with the byte `ranges` highlighted; a range that does not fall
/// on character boundaries is left plain rather than cut mid-character.
fn highlight(text: &str, ranges: &[pb::MatchRange]) -> String {
    let mut ranges: Vec<(usize, usize)> = ranges
        .iter()
        .map(|r| (r.start as usize, r.end as usize))
        .collect();
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len() + ranges.len() * 12);
    let mut done = 0;
    for (start, end) in ranges {
        if start < done || end <= start {
            continue;
        }
        let (Some(before), Some(hit)) = (text.get(done..start), text.get(start..end)) else {
            continue;
        };
        out.push_str(before);
        out.push_str(style::MATCH);
        out.push_str(hit);
        out.push_str(style::RESET);
        done = end;
    }
    out.push_str(text.get(done..).unwrap_or_default());
    out
}

/// Prints search results the way ripgrep does without a heading:
/// `path:line:text` for matches, `path-line-text` for context, `--`
/// between groups of lines that do not follow each other.
struct GrepPrinter {
    color: bool,
    /// Whether context was asked for (only then are groups separated).
    context: bool,
    /// The file and line printed last.
    last: Option<(String, u64)>,
}

impl GrepPrinter {
    fn line(
        &mut self,
        out: &mut String,
        path: &str,
        number: u64,
        text: &str,
        ranges: Option<&[pb::MatchRange]>,
    ) {
        if let Some((last_path, last_line)) = &self.last {
            let same_file = last_path == path;
            // Context of neighbouring matches overlaps; print each line once.
            if same_file && number <= *last_line {
                return;
            }
            if self.context && !(same_file && number == last_line + 1) {
                out.push_str("--\n");
            }
        }
        let text = text.trim_end_matches(['\n', '\r']);
        let separator = if ranges.is_some() { ':' } else { '-' };
        if self.color {
            out.push_str(&format!(
                "{}{path}{}{separator}{}{number}{}{separator}",
                style::PATH,
                style::RESET,
                style::LINE,
                style::RESET
            ));
            match ranges {
                Some(ranges) => out.push_str(&highlight(text, ranges)),
                None => out.push_str(text),
            }
        } else {
            out.push_str(&format!("{path}{separator}{number}{separator}{text}"));
        }
        out.push('\n');
        self.last = Some((path.to_owned(), number));
    }

    fn print(&mut self, matches: &[pb::TextMatch]) -> Result<(), Failure> {
        let mut out = String::new();
        for found in matches {
            for context in &found.before {
                self.line(
                    &mut out,
                    &found.path,
                    context.line_number,
                    &context.text,
                    None,
                );
            }
            self.line(
                &mut out,
                &found.path,
                found.line_number,
                &found.text,
                Some(&found.ranges),
            );
            for context in &found.after {
                self.line(
                    &mut out,
                    &found.path,
                    context.line_number,
                    &context.text,
                    None,
                );
            }
        }
        emit(&out)
    }
}

pub(super) async fn grep(scope: &Scope, args: GrepArgs) -> Result<(), Failure> {
    let case = if args.ignore_case {
        pb::CaseMode::Insensitive
    } else if args.case_sensitive {
        pb::CaseMode::Sensitive
    } else {
        pb::CaseMode::Smart
    };
    let before = args.before.or(args.context).unwrap_or(0);
    let after = args.after.or(args.context).unwrap_or(0);
    let request = SearchTextRequest {
        project: scope.id.clone(),
        pattern: args.pattern,
        regex: args.regex,
        case_mode: case.into(),
        whole_word: args.word_regexp,
        include_globs: args.globs,
        exclude_globs: args.excludes,
        before_context: before,
        after_context: after,
        max_results: args.max.unwrap_or(0),
        include_hidden: args.hidden,
        include_ignored: args.no_ignore,
    };
    let started = scope.client.files().search_text(request).await;
    let mut stream = scope.client.stream(started)?;
    let mut printer = GrepPrinter {
        color: stdout_color(),
        context: before > 0 || after > 0,
        last: None,
    };
    let mut printed = 0u64;
    let mut summary = None;
    while let Some(message) = stream.message().await? {
        printed += message.matches.len() as u64;
        if scope.out.is_json() {
            scope.out.json(&message)?;
        } else {
            printer.print(&message.matches)?;
        }
        if message.summary.is_some() {
            summary = message.summary;
        }
    }
    let matches = match &summary {
        Some(summary) => {
            if !scope.out.is_json() {
                let mut line = format!(
                    "{} in {} ({} searched)",
                    count(summary.matches, "match"),
                    count(summary.files_matched, "file"),
                    summary.files_searched
                );
                if summary.truncated {
                    line.push_str("; stopped at the limit (-m raises it)");
                }
                errln!("{line}");
            }
            summary.matches
        }
        // The agent ends a search without a summary only when it stops.
        None => {
            return Err(Failure::Other(
                "the search ended before it finished (the agent is stopping?)".to_owned(),
            ));
        }
    };
    if matches == 0 && printed == 0 {
        return Err(Failure::Exit(1));
    }
    Ok(())
}

/// One line per change: "created src/", "renamed a -> b", ...
fn describe_change(change: &pb::FileChange) -> String {
    let slash = if change.is_dir { "/" } else { "" };
    let path = format!("{}{slash}", change.path);
    match pb::ChangeKind::try_from(change.kind).unwrap_or(pb::ChangeKind::Unspecified) {
        pb::ChangeKind::Created => format!("created {path}"),
        pb::ChangeKind::Modified => format!("modified {path}"),
        pb::ChangeKind::Deleted => format!("deleted {path}"),
        pb::ChangeKind::Renamed => format!("renamed {}{slash} -> {path}", change.from_path),
        pb::ChangeKind::Unspecified => format!("changed {path}"),
    }
}

pub(super) async fn watch(
    scope: &Scope,
    after: Option<u64>,
    mut interrupt: Signal,
) -> Result<(), Failure> {
    let request = WatchRequest {
        project: scope.id.clone(),
        after_sequence: after,
        // The cursor was typed by a person, not stored with an instance:
        // 0 lets the agent take it as its own.
        instance_id: 0,
    };
    let mut files = scope.client.files();
    let started = tokio::select! {
        started = files.watch(request) => started,
        _ = interrupt.recv() => return Ok(()),
    };
    let mut stream = scope.client.stream(started)?;
    loop {
        let message = tokio::select! {
            message = stream.message() => message?,
            _ = interrupt.recv() => return Ok(()),
        };
        let Some(message) = message else {
            errln!("omnipanel: the watch ended (the project was closed or the agent is stopping)");
            return Ok(());
        };
        if scope.out.is_json() {
            scope.out.json(&message)?;
            continue;
        }
        let mut text = String::new();
        match message.item {
            Some(Item::Batch(batch)) => {
                for change in &batch.changes {
                    text.push_str(&describe_change(change));
                    text.push('\n');
                }
            }
            Some(Item::RepositoryChanged(changed)) => {
                text = format!("repository changed ({})\n", changed.paths.join(", "));
            }
            Some(Item::RescanNeeded(rescan)) => {
                text = format!("rescan needed: {}\n", rescan.reason);
            }
            // Lost changes mean the same to a reader as a rescan.
            Some(Item::Gap(gap)) => {
                text = format!("rescan needed: changes were missed ({})\n", gap.reason);
            }
            Some(Item::CaughtUp(caught_up)) if std::io::stderr().is_terminal() => {
                errln!(
                    "omnipanel: watching {} (live after #{}); Ctrl-C stops",
                    scope.root.display(),
                    caught_up.last_sequence
                );
            }
            Some(Item::CaughtUp(_)) | None => {}
        }
        emit(&text)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_stay_on_char_boundaries() {
        let range = |start, end| pb::MatchRange { start, end };
        let plain = highlight("needle in hay", &[range(0, 6)]);
        assert_eq!(
            plain,
            format!("{}needle{} in hay", style::MATCH, style::RESET)
        );
        // "é" is two bytes; a range cutting it is skipped.
        assert_eq!(highlight("é", &[range(1, 2)]), "é");
        assert_eq!(highlight("abc", &[range(5, 9)]), "abc");
    }

    #[test]
    fn grep_output_merges_overlapping_context() -> Result<(), Failure> {
        let mut printer = GrepPrinter {
            color: false,
            context: true,
            last: None,
        };
        let mut out = String::new();
        printer.line(&mut out, "a", 1, "one", None);
        printer.line(&mut out, "a", 2, "two", Some(&[]));
        printer.line(&mut out, "a", 2, "two", None);
        printer.line(&mut out, "a", 5, "five", Some(&[]));
        printer.line(&mut out, "b", 6, "six", Some(&[]));
        assert_eq!(out, "a-1-one\na:2:two\n--\na:5:five\n--\nb:6:six\n");
        Ok(())
    }

    #[test]
    fn changes_in_words() {
        let change = |kind: pb::ChangeKind, path: &str, from: &str, is_dir| pb::FileChange {
            kind: kind.into(),
            path: path.to_owned(),
            from_path: from.to_owned(),
            is_dir,
        };
        assert_eq!(
            describe_change(&change(pb::ChangeKind::Created, "src", "", true)),
            "created src/"
        );
        assert_eq!(
            describe_change(&change(pb::ChangeKind::Renamed, "b.txt", "a.txt", false)),
            "renamed a.txt -> b.txt"
        );
    }
}
