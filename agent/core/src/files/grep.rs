//! Text search in a project, on ripgrep's crates: `grep-regex` for literal
//! or regex patterns with case options, `grep-searcher` with context lines
//! and binary-file skipping, and the `ignore` crate's glob overrides. The
//! walk is our own, through the project's capability handle: every folder
//! is opened beneath the root without following a symlink, every file is
//! opened without blocking and searched only when its handle is a regular
//! file, and `.gitignore` files are read the same way (`ignore_rules.rs`),
//! so a symlink or FIFO swapped in during the search can neither lead
//! outside nor hang it. The work runs in small steps on the one search
//! pool all searches share (`pool.rs`); patterns are bounded (length,
//! compiled size, DFA cache) and so is the time (`files.search_timeout`,
//! then DEADLINE_EXCEEDED). Matches are handed out per file as they are
//! found, and the search stops as soon as the client cancels or enough
//! matches were found.

use std::{
    collections::VecDeque,
    io::{self, Read},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use cap_std::fs::Dir;
use grep_matcher::Matcher;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{
    BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch,
};
use ignore::{Match, overrides::Override, overrides::OverrideBuilder};
use tokio::sync::oneshot;

use crate::{
    error::{Error, ErrorKind, Result},
    files::{
        OpenProject,
        ignore_rules::{IgnoreRules, Verdict},
        pool::{Job, Pool, Step},
        sandbox::{self, RelPath},
    },
    sync::lock,
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
/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 4096;
/// Most memory one compiled pattern may take (regex's `size_limit`): a
/// pattern such as `a{1000}{1000}` is refused at once instead of being
/// compiled for seconds into hundreds of MiB.
const REGEX_SIZE_LIMIT: usize = 8 * 1024 * 1024;
/// Most memory the lazy DFA's cache may take per search thread (beyond
/// it the engine falls back to a slower one; it never grows past this).
const DFA_SIZE_LIMIT: usize = 16 * 1024 * 1024;

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
    /// Files and folders left out because they could not be opened as
    /// what the listing said they were (gone, swapped for a symlink, a
    /// FIFO or a device) or not read.
    pub skipped: u64,
}

fn build_matcher(query: &TextQuery) -> Result<RegexMatcher> {
    if query.pattern.is_empty() {
        return Err(Error::invalid_argument(
            "pattern",
            "the search pattern is empty",
        ));
    }
    if query.pattern.len() > MAX_PATTERN_BYTES {
        return Err(Error::invalid_argument(
            "pattern",
            format!(
                "the search pattern is {} bytes long; at most {MAX_PATTERN_BYTES} are allowed",
                query.pattern.len()
            ),
        ));
    }
    let mut builder = RegexMatcherBuilder::new();
    builder
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(DFA_SIZE_LIMIT)
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
        let text = err.to_string();
        if text.contains("size limit") {
            Error::invalid_argument(
                "pattern",
                format!(
                    "the pattern is too large once compiled (over the {} MiB limit); use fewer or smaller repetitions",
                    REGEX_SIZE_LIMIT / (1024 * 1024)
                ),
            )
        } else {
            Error::invalid_argument("pattern", format!("not a valid regular expression: {text}"))
        }
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

/// What a checked query compiles to.
struct Prepared {
    matcher: RegexMatcher,
    overrides: Override,
    limit: u64,
}

fn prepare(project: &OpenProject, query: &TextQuery) -> Result<Prepared> {
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
    // Globs are matched against paths relative to the root; the builder's
    // root is only a name.
    let mut overrides = OverrideBuilder::new(project.root());
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
    Ok(Prepared {
        matcher,
        overrides,
        limit,
    })
}

/// Start a search on the shared search pool. `emit` gets each file's
/// matches (on a pool thread) and returns false to stop; `cancel` stops
/// everything from outside; after `timeout` the search ends with
/// DEADLINE_EXCEEDED (the matches already emitted stand). The receiver
/// gets the summary, or why the search failed.
pub fn start(
    project: &OpenProject,
    query: &TextQuery,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
    emit: impl Fn(Vec<TextMatch>) -> bool + Send + Sync + 'static,
) -> Result<oneshot::Receiver<Result<SearchSummary>>> {
    start_on(Pool::shared()?, project, query, timeout, cancel, emit)
}

/// [`start`] on a given pool.
fn start_on(
    pool: &'static Pool,
    project: &OpenProject,
    query: &TextQuery,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
    emit: impl Fn(Vec<TextMatch>) -> bool + Send + Sync + 'static,
) -> Result<oneshot::Receiver<Result<SearchSummary>>> {
    let Prepared {
        matcher,
        overrides,
        limit,
    } = prepare(project, query)?;
    let root = project.dir().try_clone().map_err(|err| {
        Error::internal(format!("cannot search {}: {err}", project.root().display()))
    })?;
    let mut searcher = SearcherBuilder::new();
    searcher
        .line_number(true)
        .before_context(query.before)
        .after_context(query.after)
        .binary_detection(BinaryDetection::quit(0));
    let (done, finished) = oneshot::channel();
    let run = Arc::new(Run {
        root,
        matcher,
        overrides,
        rules: Mutex::new(IgnoreRules::new(&project.settings().always_ignored)),
        include_hidden: query.include_hidden,
        include_ignored: query.include_ignored,
        searcher,
        idle_searchers: Mutex::new(Vec::new()),
        limit,
        deadline: Instant::now() + timeout,
        timeout,
        cancel,
        emit: Box::new(emit),
        found: AtomicU64::new(0),
        files_searched: AtomicU64::new(0),
        files_matched: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        timed_out: AtomicBool::new(false),
        state: Mutex::new(RunState {
            items: VecDeque::from([Item::Folder(RelPath::root())]),
            busy: 0,
            tickets: 1,
            done: Some(done),
        }),
        max_tickets: pool.workers(),
    });
    let job: Arc<dyn Job> = run;
    pool.submit(&job, 1);
    Ok(finished)
}

/// Run a search to its end on the calling thread's behalf (it waits; the
/// work runs on the search pool). For tests and blocking callers.
pub fn search(
    project: &OpenProject,
    query: &TextQuery,
    cancel: Arc<AtomicBool>,
    emit: impl Fn(Vec<TextMatch>) -> bool + Send + Sync + 'static,
) -> Result<SearchSummary> {
    let timeout = project.settings().search_timeout;
    let finished = start(project, query, timeout, cancel, emit)?;
    finished
        .blocking_recv()
        .map_err(|_| Error::internal("the search ended without a result"))?
}

/// One piece of a search's work.
#[derive(Debug)]
enum Item {
    Folder(RelPath),
    File(RelPath),
}

/// A search in progress: what it searches with, its counters, and the
/// queue of folders and files left.
struct Run {
    root: Dir,
    matcher: RegexMatcher,
    overrides: Override,
    rules: Mutex<IgnoreRules>,
    include_hidden: bool,
    include_ignored: bool,
    searcher: SearcherBuilder,
    /// Searchers not in use. Building one allocates and zeroes its 64 KiB
    /// read buffer, which for a file of a few hundred bytes cost more than
    /// searching it: each pool thread takes one here and puts it back.
    idle_searchers: Mutex<Vec<Searcher>>,
    limit: u64,
    deadline: Instant,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
    emit: Box<dyn Fn(Vec<TextMatch>) -> bool + Send + Sync>,
    found: AtomicU64,
    files_searched: AtomicU64,
    files_matched: AtomicU64,
    skipped: AtomicU64,
    /// Enough matches were found.
    stop: AtomicBool,
    timed_out: AtomicBool,
    state: Mutex<RunState>,
    max_tickets: usize,
}

struct RunState {
    items: VecDeque<Item>,
    /// Steps running now.
    busy: usize,
    /// Tickets of this run in the pool's queue or running.
    tickets: usize,
    /// Taken when the run ends.
    done: Option<oneshot::Sender<Result<SearchSummary>>>,
}

impl Run {
    /// Whether the search should end now (checked between steps and, for
    /// a long file, between the reads of it).
    fn should_end(&self) -> bool {
        if self.stop.load(Ordering::Relaxed) || self.cancel.load(Ordering::Relaxed) {
            return true;
        }
        if self.timed_out.load(Ordering::Relaxed) {
            return true;
        }
        if Instant::now() >= self.deadline {
            self.timed_out.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }

    fn finish(&self, state: &mut RunState) {
        let Some(done) = state.done.take() else {
            return;
        };
        let result = if self.timed_out.load(Ordering::Relaxed)
            && !self.stop.load(Ordering::Relaxed)
            && !self.cancel.load(Ordering::Relaxed)
        {
            Err(Error::new(
                ErrorKind::DeadlineExceeded,
                format!(
                    "the search took longer than {} (files.search_timeout) and was stopped after {} matching lines; narrow it with a more specific pattern or include globs",
                    humantime::format_duration(self.timeout),
                    self.found.load(Ordering::Relaxed).min(self.limit)
                ),
            ))
        } else {
            Ok(self.summary())
        };
        let _ = done.send(result);
    }

    fn summary(&self) -> SearchSummary {
        SearchSummary {
            files_searched: self.files_searched.load(Ordering::Relaxed),
            files_matched: self.files_matched.load(Ordering::Relaxed),
            matches: self.found.load(Ordering::Relaxed).min(self.limit),
            truncated: self.stop.load(Ordering::Relaxed),
            cancelled: self.cancel.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
        }
    }

    /// Whether `path` is searched (a file) or walked (a folder).
    fn wanted(&self, path: &RelPath, is_dir: bool, rules: &IgnoreRules) -> bool {
        let name = path.name();
        if is_dir && name == ".git" {
            return false;
        }
        match self.overrides.matched(path.as_path(), is_dir) {
            Match::Ignore(_) => return false,
            Match::Whitelist(_) => return true,
            Match::None => {}
        }
        if !self.include_hidden && name.starts_with('.') {
            return false;
        }
        if self.include_ignored {
            return true;
        }
        rules.verdict(path, is_dir) == Verdict::Keep
    }

    /// List a folder: its subfolders and files to do next.
    fn list(&self, dir: &RelPath) -> Vec<Item> {
        // Not following a symlink, not even one swapped in for a folder
        // after its parent was listed: that is refused and counted.
        let Ok(folder) = sandbox::open_folder(&self.root, dir) else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        };
        let Ok(entries) = folder.entries() else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        };
        let mut children = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // Symlinks are neither followed nor searched.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() || kind.is_file() {
                children.push((name, kind.is_dir()));
            }
        }
        let mut rules = lock(&self.rules);
        if !self.include_ignored
            && children
                .iter()
                .any(|(name, is_dir)| name == ".gitignore" && !is_dir)
        {
            rules.load(&self.root, dir);
        }
        children
            .into_iter()
            .filter_map(|(name, is_dir)| {
                let path = dir.join(&name);
                if !self.wanted(&path, is_dir, &rules) {
                    return None;
                }
                Some(if is_dir {
                    Item::Folder(path)
                } else {
                    Item::File(path)
                })
            })
            .collect()
    }

    /// Search one file and hand out its matches.
    fn search_file(&self, path: &RelPath) {
        // Opened without blocking and checked on the handle: a FIFO or a
        // symlink out of the project swapped in is refused and counted.
        let Ok((file, _)) = sandbox::open_regular(&self.root, path, "search") else {
            self.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.files_searched.fetch_add(1, Ordering::Relaxed);
        let mut sink = FileSink {
            path: path.as_str(),
            matcher: &self.matcher,
            matches: Vec::new(),
            before: Vec::new(),
            found: &self.found,
            limit: self.limit,
            stop: &self.stop,
        };
        let reader = Interruptible {
            inner: file,
            run: self,
        };
        let mut searcher = lock(&self.idle_searchers)
            .pop()
            .unwrap_or_else(|| self.searcher.build());
        let _ = searcher.search_reader(&self.matcher, reader, &mut sink);
        lock(&self.idle_searchers).push(searcher);
        if !sink.matches.is_empty() {
            self.files_matched.fetch_add(1, Ordering::Relaxed);
            if !(self.emit)(sink.matches) {
                self.cancel.store(true, Ordering::Relaxed);
            }
        }
    }
}

impl Job for Run {
    fn step(&self) -> Step {
        let item = {
            let mut state = lock(&self.state);
            if state.done.is_none() {
                state.tickets -= 1;
                return Step::Idle;
            }
            if self.should_end() {
                state.items.clear();
            }
            match state.items.pop_front() {
                Some(item) => {
                    state.busy += 1;
                    item
                }
                None => {
                    state.tickets -= 1;
                    if state.busy == 0 {
                        self.finish(&mut state);
                    }
                    return Step::Idle;
                }
            }
        };
        let next = match &item {
            Item::Folder(dir) => self.list(dir),
            Item::File(path) => {
                self.search_file(path);
                Vec::new()
            }
        };
        let mut state = lock(&self.state);
        state.busy -= 1;
        if self.should_end() {
            state.items.clear();
        } else {
            state.items.extend(next);
        }
        if state.items.is_empty() {
            state.tickets -= 1;
            if state.busy == 0 {
                self.finish(&mut state);
            }
            return Step::Idle;
        }
        // Work for more threads at once: ask for them, up to the pool.
        let extra = (state.items.len() - 1).min(self.max_tickets.saturating_sub(state.tickets));
        state.tickets += extra;
        Step::More(extra)
    }

    fn panicked(&self, message: String) {
        let mut state = lock(&self.state);
        state.tickets = state.tickets.saturating_sub(1);
        state.busy = state.busy.saturating_sub(1);
        if let Some(done) = state.done.take() {
            let _ = done.send(Err(Error::internal(format!(
                "the search failed: {message}"
            ))));
        }
    }
}

/// A file that stops yielding bytes once its search should end (deadline,
/// cancel, enough matches), so one huge file cannot hold a pool thread
/// past the search's deadline.
struct Interruptible<'a> {
    inner: cap_std::fs::File,
    run: &'a Run,
}

impl Read for Interruptible<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        if self.run.should_end() {
            // Not `Interrupted`, which readers retry.
            return Err(io::Error::other("search ended"));
        }
        self.inner.read(buffer)
    }
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
    fn long_and_huge_patterns_are_refused_with_the_limit_named() {
        let long = TextQuery {
            pattern: "a".repeat(MAX_PATTERN_BYTES + 1),
            ..Default::default()
        };
        let err = build_matcher(&long).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert!(err.message().contains("at most 4096"), "{err}");
        for pattern in ["a{1000}{1000}", "(\\w{100}){100}", "[a-z]{5000}{50}"] {
            let huge = TextQuery {
                pattern: pattern.into(),
                regex: true,
                ..Default::default()
            };
            let err = build_matcher(&huge).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{pattern}");
            assert!(err.message().contains("MiB limit"), "{pattern}: {err}");
        }
    }

    #[test]
    fn a_search_past_its_deadline_ends_with_deadline_exceeded() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join("a.txt"), "needle\n").unwrap();
        let (project, _refresh) = OpenProject::open_for_test(&root).unwrap();
        let query = TextQuery {
            pattern: "needle".into(),
            ..Default::default()
        };
        let finished = start(&project, &query, Duration::ZERO, Arc::default(), |_| true).unwrap();
        let err = finished.blocking_recv().unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DeadlineExceeded, "{err}");
        assert!(err.message().contains("files.search_timeout"), "{err}");
        // With time to spare, the same search finds the file.
        let finished = start(
            &project,
            &query,
            Duration::from_secs(600),
            Arc::default(),
            |_| true,
        )
        .unwrap();
        assert_eq!(finished.blocking_recv().unwrap().unwrap().matches, 1);
    }

    #[test]
    fn lines_lose_their_endings() {
        assert_eq!(trim_line(b"abc\r\n"), "abc");
        assert_eq!(trim_line(b"abc"), "abc");
    }
}
