//! Text search in a project, on ripgrep's crates: the `ignore` walker
//! (parallel, .gitignore-aware, include/exclude globs), `grep-regex` for
//! literal or regex patterns with case options, and `grep-searcher` with
//! context lines and binary-file skipping. Files are opened through the
//! project's capability handle, so a symlink swapped in during the search
//! cannot lead outside. Matches are handed out per file as they are found,
//! and the search stops as soon as the client cancels or enough matches
//! were found.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use grep_matcher::Matcher;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{
    BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch,
};
use ignore::{WalkBuilder, WalkState, overrides::OverrideBuilder};

use crate::{
    error::{Error, ErrorKind, Result},
    files::{OpenProject, sandbox::RelPath},
};

/// Case handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CaseMode {
    /// Insensitive unless the pattern has an upper-case letter.
    #[default]
    Smart,
    /// Exact case.
    Sensitive,
    /// Ignore case.
    Insensitive,
}

/// A text search.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextQuery {
    /// What to look for.
    pub pattern: String,
    /// Treat the pattern as a regular expression (else literal).
    pub regex: bool,
    /// Case handling.
    pub case: CaseMode,
    /// Match whole words only.
    pub whole_word: bool,
    /// Only files matching one of these globs.
    pub include: Vec<String>,
    /// Skip files matching these globs.
    pub exclude: Vec<String>,
    /// Lines of context before each match.
    pub before: usize,
    /// Lines of context after each match.
    pub after: usize,
    /// Stop after this many matching lines.
    pub max_results: u64,
    /// Search hidden files.
    pub include_hidden: bool,
    /// Search ignored files.
    pub include_ignored: bool,
}

/// Most context lines either side.
pub const MAX_CONTEXT: usize = 20;
/// Most matching lines one search returns.
pub const MAX_RESULTS: u64 = 100_000;

/// A context line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextLine {
    /// 1-based line number.
    pub line_number: u64,
    /// Text without the line ending.
    pub text: String,
}

/// A matching line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMatch {
    /// File, relative to the root.
    pub path: String,
    /// 1-based line number.
    pub line_number: u64,
    /// The line without its ending.
    pub text: String,
    /// Byte ranges of the matches within `text`.
    pub ranges: Vec<(u32, u32)>,
    /// Lines before.
    pub before: Vec<ContextLine>,
    /// Lines after.
    pub after: Vec<ContextLine>,
}

/// Totals at the end of a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchSummary {
    /// Files searched.
    pub files_searched: u64,
    /// Files with at least one match.
    pub files_matched: u64,
    /// Matching lines found.
    pub matches: u64,
    /// Stopped at `max_results`.
    pub truncated: bool,
    /// Stopped because the client went away.
    pub cancelled: bool,
}

fn build_matcher(query: &TextQuery) -> Result<RegexMatcher> {
    if query.pattern.is_empty() {
        return Err(Error::invalid_argument(
            "pattern",
            "the search pattern is empty",
        ));
    }
    let mut builder = RegexMatcherBuilder::new();
    builder
        .fixed_strings(!query.regex)
        .word(query.whole_word)
        .line_terminator(Some(b'\n'));
    match query.case {
        CaseMode::Smart => {
            builder.case_smart(true);
        }
        CaseMode::Insensitive => {
            builder.case_insensitive(true);
        }
        CaseMode::Sensitive => {}
    }
    builder.build(&query.pattern).map_err(|err| {
        Error::invalid_argument("pattern", format!("not a valid regular expression: {err}"))
    })
}

fn trim_line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// Collects one file's matches with their context.
struct FileSink<'a> {
    path: &'a str,
    matcher: &'a RegexMatcher,
    matches: Vec<TextMatch>,
    before: Vec<ContextLine>,
    found: &'a AtomicU64,
    limit: u64,
    stop: &'a AtomicBool,
}

impl Sink for FileSink<'_> {
    type Error = io::Error;

    fn matched(
        &mut self,
        _searcher: &Searcher,
        mat: &SinkMatch<'_>,
    ) -> std::result::Result<bool, io::Error> {
        if self.stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let first = mat.line_number().unwrap_or(0);
        for (offset, line) in mat.lines().enumerate() {
            if self.found.fetch_add(1, Ordering::Relaxed) >= self.limit {
                self.stop.store(true, Ordering::Relaxed);
                return Ok(false);
            }
            let text = trim_line(line);
            let mut ranges = Vec::new();
            let _ = self.matcher.find_iter(text.as_bytes(), |m| {
                ranges.push((
                    u32::try_from(m.start()).unwrap_or(u32::MAX),
                    u32::try_from(m.end()).unwrap_or(u32::MAX),
                ));
                true
            });
            self.matches.push(TextMatch {
                path: self.path.to_owned(),
                line_number: first + offset as u64,
                text,
                ranges,
                before: std::mem::take(&mut self.before),
                after: Vec::new(),
            });
        }
        Ok(true)
    }

    fn context(
        &mut self,
        _searcher: &Searcher,
        context: &SinkContext<'_>,
    ) -> std::result::Result<bool, io::Error> {
        let line = ContextLine {
            line_number: context.line_number().unwrap_or(0),
            text: trim_line(context.bytes()),
        };
        match context.kind() {
            SinkContextKind::Before => self.before.push(line),
            SinkContextKind::After => {
                if let Some(last) = self.matches.last_mut() {
                    last.after.push(line);
                }
            }
            SinkContextKind::Other => {}
        }
        Ok(true)
    }

    fn context_break(&mut self, _searcher: &Searcher) -> std::result::Result<bool, io::Error> {
        self.before.clear();
        Ok(true)
    }
}

/// Check a query without searching (pattern, globs, limits), so a bad one
/// is refused before any result is streamed.
pub fn validate(project: &OpenProject, query: &TextQuery) -> Result<()> {
    prepare(project, query).map(|_| ())
}

fn prepare(
    project: &OpenProject,
    query: &TextQuery,
) -> Result<(RegexMatcher, ignore::overrides::Override, u64)> {
    let matcher = build_matcher(query)?;
    if query.before > MAX_CONTEXT || query.after > MAX_CONTEXT {
        return Err(Error::invalid_argument(
            "context_lines",
            format!("at most {MAX_CONTEXT} lines of context either side"),
        ));
    }
    let limit = match query.max_results {
        0 => 1000,
        n if n > MAX_RESULTS => {
            return Err(Error::new(
                ErrorKind::ResourceExhausted,
                format!("max_results may be at most {MAX_RESULTS}"),
            ));
        }
        n => n,
    };
    let root = project.root().to_owned();
    let mut overrides = OverrideBuilder::new(&root);
    for glob in &query.include {
        overrides
            .add(glob)
            .map_err(|err| Error::invalid_argument("include_globs", format!("{glob:?}: {err}")))?;
    }
    for glob in &query.exclude {
        overrides
            .add(&format!("!{glob}"))
            .map_err(|err| Error::invalid_argument("exclude_globs", format!("{glob:?}: {err}")))?;
    }
    let overrides = overrides
        .build()
        .map_err(|err| Error::invalid_argument("include_globs", err.to_string()))?;
    Ok((matcher, overrides, limit))
}

/// Run a search on the calling (blocking) thread and its walker threads.
/// `emit` gets each file's matches and returns false to stop; `cancel`
/// stops everything from outside.
pub fn search(
    project: &OpenProject,
    query: &TextQuery,
    cancel: Arc<AtomicBool>,
    emit: impl Fn(Vec<TextMatch>) -> bool + Send + Sync,
) -> Result<SearchSummary> {
    let (matcher, overrides, limit) = prepare(project, query)?;
    let root = project.root().to_owned();
    let always: Vec<String> = project.settings().always_ignored.clone();
    let include_ignored = query.include_ignored;
    let mut walker = WalkBuilder::new(&root);
    walker
        .hidden(!query.include_hidden)
        .ignore(!query.include_ignored)
        .git_ignore(!query.include_ignored)
        .git_exclude(!query.include_ignored)
        .git_global(false)
        .parents(false)
        .require_git(false)
        .follow_links(false)
        .overrides(overrides)
        .threads(std::thread::available_parallelism().map_or(2, usize::from))
        .filter_entry(move |entry| {
            let name = entry.file_name().to_str().unwrap_or_default();
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            !(is_dir && (name == ".git" || (!include_ignored && always.iter().any(|a| a == name))))
        });
    let found = AtomicU64::new(0);
    let files_searched = AtomicU64::new(0);
    let files_matched = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let mut searcher_builder = SearcherBuilder::new();
    searcher_builder
        .line_number(true)
        .before_context(query.before)
        .after_context(query.after)
        .binary_detection(BinaryDetection::quit(0));
    let dir = project.dir();
    walker.build_parallel().run(|| {
        let mut searcher = searcher_builder.build();
        let matcher = &matcher;
        let root = &root;
        let (found, files_searched, files_matched, stop, cancel) =
            (&found, &files_searched, &files_matched, &stop, &cancel);
        let emit = &emit;
        Box::new(move |entry| {
            if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                return WalkState::Quit;
            }
            let Ok(entry) = entry else {
                return WalkState::Continue;
            };
            if !entry.file_type().is_some_and(|t| t.is_file()) {
                return WalkState::Continue;
            }
            let Some(relative) = entry
                .path()
                .strip_prefix(root)
                .ok()
                .and_then(RelPath::from_inside)
            else {
                return WalkState::Continue;
            };
            let Ok(file) = dir.open(relative.as_path()) else {
                return WalkState::Continue;
            };
            files_searched.fetch_add(1, Ordering::Relaxed);
            let mut sink = FileSink {
                path: relative.as_str(),
                matcher,
                matches: Vec::new(),
                before: Vec::new(),
                found,
                limit,
                stop,
            };
            let _ = searcher.search_file(matcher, &file.into_std(), &mut sink);
            if !sink.matches.is_empty() {
                files_matched.fetch_add(1, Ordering::Relaxed);
                if !emit(sink.matches) {
                    cancel.store(true, Ordering::Relaxed);
                    return WalkState::Quit;
                }
            }
            WalkState::Continue
        })
    });
    let matches = found.load(Ordering::Relaxed).min(limit);
    Ok(SearchSummary {
        files_searched: files_searched.load(Ordering::Relaxed),
        files_matched: files_matched.load(Ordering::Relaxed),
        matches,
        truncated: stop.load(Ordering::Relaxed),
        cancelled: cancel.load(Ordering::Relaxed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_options_are_validated() {
        let mut query = TextQuery {
            pattern: "(unclosed".into(),
            regex: true,
            ..Default::default()
        };
        assert_eq!(build_matcher(&query).unwrap_err().field(), Some("pattern"));
        query.regex = false;
        assert!(
            build_matcher(&query).is_ok(),
            "literal parentheses are fine"
        );
        query.pattern.clear();
        assert!(build_matcher(&query).is_err());
    }

    #[test]
    fn lines_lose_their_endings() {
        assert_eq!(trim_line(b"abc\r\n"), "abc");
        assert_eq!(trim_line(b"abc"), "abc");
    }
}
