//! Logging: `tracing` to a rotated file (rotated by size, and by age when a
//! line is written to a file older than the age limit; old files pruned by
//! count and age) and to stderr in the foreground, with a filter that settings can
//! change live. Every log (the agent's own, later Ollama's) is a
//! [`LogSource`]: a rotated file plus a live broadcast of its lines, which is
//! what `TailLogs` reads and follows without polling the file.
//!
//! The rotating writer is hand-written: tracing-appender only rotates by
//! time, and the product promises size-bounded logs.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::{self, IsTerminal, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, SystemTime},
};

use tokio::sync::broadcast;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, filter::ParseError, layer::SubscriberExt, reload,
    util::SubscriberInitExt,
};

use crate::{
    config::LogSettings,
    error::{Error, Result},
};

/// Most lines a tail request may ask for.
pub const MAX_TAIL_LINES: usize = 10_000;
/// Lines buffered per follower before it lags.
const FOLLOW_CAPACITY: usize = 1024;

/// When to rotate and what to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Rotate when the current file would exceed this size.
    pub max_bytes: u64,
    /// Rotated files kept besides the current one.
    pub max_files: u32,
    /// Rotated files older than this are deleted, and the current file is
    /// rotated at the first write after it grew this old.
    pub max_age: Duration,
}

impl From<&LogSettings> for RotationPolicy {
    fn from(settings: &LogSettings) -> Self {
        Self {
            max_bytes: settings.max_file_mb.saturating_mul(1024 * 1024),
            max_files: settings.max_files,
            max_age: Duration::from_secs(u64::from(settings.max_age_days) * 86_400),
        }
    }
}

/// Receives the lines written to a log after a tail was taken.
pub type LineReceiver = broadcast::Receiver<Arc<str>>;

/// One named log: its file and its live followers.
#[derive(Debug)]
pub struct LogSource {
    name: String,
    path: PathBuf,
    /// Held while a line is written and broadcast, and while a tail is read
    /// and a follower subscribed, so followers see every line exactly once.
    write_lock: Mutex<()>,
    live: broadcast::Sender<Arc<str>>,
}

impl LogSource {
    /// A source named `name` written to `path`.
    pub fn new(name: &str, path: PathBuf) -> Arc<Self> {
        let (live, _) = broadcast::channel(FOLLOW_CAPACITY);
        Arc::new(Self {
            name: name.to_owned(),
            path,
            write_lock: Mutex::new(()),
            live,
        })
    }

    /// The source's name, e.g. "agent".
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        crate::sync::lock(&self.write_lock)
    }

    /// The last `lines` lines (from the current and previous file), and a
    /// receiver for what is written after them when `follow`. Blocking.
    pub fn tail(
        &self,
        lines: usize,
        follow: bool,
    ) -> io::Result<(Vec<String>, Option<LineReceiver>)> {
        let _guard = self.lock();
        let mut tail = read_last_lines(&self.path, lines)?;
        if tail.len() < lines {
            let mut older = read_last_lines(&rotated_path(&self.path, 1), lines - tail.len())?;
            older.append(&mut tail);
            tail = older;
        }
        let receiver = follow.then(|| self.live.subscribe());
        Ok((tail, receiver))
    }
}

/// All log sources of the agent, by name.
#[derive(Debug, Default)]
pub struct LogHub {
    sources: Mutex<BTreeMap<String, Arc<LogSource>>>,
}

impl LogHub {
    /// Register a source (replacing one of the same name).
    pub fn register(&self, source: Arc<LogSource>) {
        crate::sync::lock(&self.sources).insert(source.name.clone(), source);
    }

    /// Look a source up by name.
    pub fn get(&self, name: &str) -> Result<Arc<LogSource>> {
        let sources = crate::sync::lock(&self.sources);
        sources.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = sources.keys().map(String::as_str).collect();
            Error::not_found(format!(
                "no log source {name:?}; known sources: {}",
                known.join(", ")
            ))
        })
    }
}

/// A size- and age-rotating log file that also broadcasts each complete
/// line to the source's followers.
#[derive(Debug)]
pub struct RotatingWriter {
    source: Arc<LogSource>,
    policy: RotationPolicy,
    file: File,
    size: u64,
    /// When the current file was started: its birth time when the file
    /// system records one, else when we opened it. Age rotation is checked
    /// against this on each write, so an idle agent runs no timer for it.
    started: SystemTime,
    partial: Vec<u8>,
}

impl RotatingWriter {
    /// Open (appending) the source's file, pruning old rotations.
    pub fn open(source: Arc<LogSource>, policy: RotationPolicy) -> io::Result<Self> {
        if let Some(dir) = source.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = open_append(&source.path)?;
        let meta = file.metadata()?;
        let now = SystemTime::now();
        // Without a birth time a restart resets the age: the file then
        // rotates max_age after this start at the latest.
        let started = meta.created().map_or(now, |born| born.min(now));
        prune(&source.path, policy);
        Ok(Self {
            source,
            policy,
            file,
            size: meta.len(),
            started,
            partial: Vec::new(),
        })
    }

    /// Whether writing `len` more bytes at `now` must go to a fresh file.
    /// An empty file never rotates: there is nothing old in it to let go.
    fn needs_rotation(&self, len: usize, now: SystemTime) -> bool {
        if self.size == 0 {
            return false;
        }
        let too_big = self.size + len as u64 > self.policy.max_bytes;
        let too_old = now
            .duration_since(self.started)
            .is_ok_and(|age| age > self.policy.max_age);
        too_big || too_old
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let path = &self.source.path;
        for index in (1..self.policy.max_files).rev() {
            let from = rotated_path(path, index);
            if from.exists() {
                fs::rename(&from, rotated_path(path, index + 1))?;
            }
        }
        fs::rename(path, rotated_path(path, 1))?;
        self.file = open_append(path)?;
        self.size = 0;
        self.started = SystemTime::now();
        prune(path, self.policy);
        Ok(())
    }

    fn broadcast_lines(&mut self, buf: &[u8]) {
        if self.source.live.receiver_count() == 0 {
            self.partial.clear();
            return;
        }
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]);
            let _ = self.source.live.send(Arc::from(text.as_ref()));
        }
    }
}

impl Write for RotatingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let source = self.source.clone();
        let _guard = source.lock();
        if self.needs_rotation(buf.len(), SystemTime::now()) {
            self.rotate()?;
        }
        self.file.write_all(buf)?;
        self.size += buf.len() as u64;
        self.broadcast_lines(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `agent.log` → `agent.log.N`.
pub fn rotated_path(path: &Path, index: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// Delete rotated files beyond the count limit or older than the age limit.
fn prune(path: &Path, policy: RotationPolicy) {
    // Not the bare wall clock: a jump forward must not delete every
    // rotated file at once (`clock.rs`).
    let now = crate::clock::retention_now();
    for index in 1..=policy.max_files.saturating_add(16) {
        let rotated = rotated_path(path, index);
        let Ok(meta) = fs::metadata(&rotated) else {
            continue;
        };
        let too_many = index > policy.max_files;
        let too_old = meta
            .modified()
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age > policy.max_age);
        if too_many || too_old {
            let _ = fs::remove_file(&rotated);
        }
    }
}

/// The last `n` lines of a file, reading backwards in chunks so a large log
/// costs only what is returned. A missing file has no lines.
pub fn read_last_lines(path: &Path, n: usize) -> io::Result<Vec<String>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    const CHUNK: u64 = 64 * 1024;
    let len = file.metadata()?.len();
    let mut start = len;
    let mut data: Vec<u8> = Vec::new();
    loop {
        // Count line ends, ignoring a final newline that ends the last line.
        let body = data.strip_suffix(b"\n").unwrap_or(&data);
        let newlines = body.iter().filter(|&&b| b == b'\n').count();
        if newlines >= n || start == 0 {
            break;
        }
        let read_from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0; usize::try_from(start - read_from).unwrap_or(0)];
        file.seek(SeekFrom::Start(read_from))?;
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&data);
        data = chunk;
        start = read_from;
    }
    let text = String::from_utf8_lossy(&data);
    let lines: Vec<&str> = text.lines().collect();
    let skip = lines.len().saturating_sub(n);
    Ok(lines[skip..]
        .iter()
        .map(|line| (*line).to_owned())
        .collect())
}

/// Handle on the installed subscriber: changes the filter live and keeps
/// the background writer alive (dropping it flushes the file).
#[derive(Debug)]
pub struct Logging {
    filter: reload::Handle<EnvFilter, Registry>,
    _worker: tracing_appender::non_blocking::WorkerGuard,
}

/// A log filter from `log.filter` (or `OMNIPANEL_LOG`). Field values in
/// span directives (`[span{field=value}]`) match as plain text, not as
/// regular expressions: tracing-subscriber compiles those into a full
/// DFA, and one filter the fuzz target `config_edit` made took 34 s to
/// build on a busy two-core machine (settings are validated on every
/// SetSettings, each candidate value once or twice).
pub fn filter(directives: &str) -> std::result::Result<EnvFilter, ParseError> {
    EnvFilter::builder().with_regex(false).parse(directives)
}

impl Logging {
    /// Replace the filter, e.g. after `log.filter` changed.
    pub fn set_filter(&self, directives: &str) -> Result<()> {
        let filter =
            filter(directives).map_err(|err| Error::invalid_argument("log.filter", err))?;
        self.filter
            .reload(filter)
            .map_err(|err| Error::internal(format!("cannot change the log filter: {err}")))
    }
}

/// Install the global subscriber: rotated file for `source`, plus stderr
/// when `to_stderr`. `OMNIPANEL_LOG` overrides the configured filter.
pub fn init(source: Arc<LogSource>, settings: &LogSettings, to_stderr: bool) -> Result<Logging> {
    let writer = RotatingWriter::open(source.clone(), settings.into()).map_err(|err| {
        Error::internal(format!(
            "cannot open the log file {}: {err}",
            source.path().display()
        ))
    })?;
    // Writes happen on a dedicated thread so logging never blocks a task.
    let (file_writer, worker) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        // The default queue holds 128 000 lines and is allocated (4 MB)
        // up front; a few thousand absorb any burst this agent logs.
        .buffered_lines_limit(4096)
        .lossy(false)
        .thread_name("omnipanel-log")
        .finish(writer);
    let directives = std::env::var("OMNIPANEL_LOG").unwrap_or_else(|_| settings.filter.clone());
    let filter = filter(&directives)
        .or_else(|_| filter("info"))
        .map_err(|err| Error::internal(format!("cannot build a log filter: {err}")))?;
    let (filter, handle) = reload::Layer::new(filter);
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(file_writer);
    let stderr_layer = to_stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(io::stderr().is_terminal())
            .with_writer(io::stderr)
            .boxed()
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(file_layer)
        .with(stderr_layer)
        .try_init()
        .map_err(|err| Error::internal(format!("cannot install the logger: {err}")))?;
    Ok(Logging {
        filter: handle,
        _worker: worker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_bytes: u64) -> RotationPolicy {
        RotationPolicy {
            max_bytes,
            max_files: 2,
            max_age: Duration::from_secs(3600),
        }
    }

    #[test]
    fn last_lines_across_chunks() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("a.log");
        let text: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        fs::write(&path, text)?;
        let last = read_last_lines(&path, 3)?;
        assert_eq!(last, vec!["line 19997", "line 19998", "line 19999"]);
        assert_eq!(read_last_lines(&path, 30_000)?.len(), 20_000);
        assert!(read_last_lines(&dir.path().join("none"), 5)?.is_empty());
        Ok(())
    }

    #[test]
    fn rotates_by_size_and_keeps_max_files() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let source = LogSource::new("t", dir.path().join("t.log"));
        let mut writer = RotatingWriter::open(source.clone(), policy(100))?;
        for i in 0..40 {
            writer.write_all(format!("entry number {i:04}\n").as_bytes())?;
        }
        writer.flush()?;
        assert!(fs::metadata(source.path())?.len() <= 100);
        assert!(rotated_path(source.path(), 1).exists());
        assert!(rotated_path(source.path(), 2).exists());
        assert!(!rotated_path(source.path(), 3).exists());
        let (tail, _) = source.tail(2, false)?;
        assert_eq!(tail, vec!["entry number 0038", "entry number 0039"]);
        Ok(())
    }

    /// Make `path` look last modified `age` ago.
    fn backdate(path: &Path, age: Duration) -> io::Result<()> {
        File::options()
            .write(true)
            .open(path)?
            .set_modified(SystemTime::now() - age)
    }

    #[test]
    fn rotated_files_older_than_max_age_are_pruned() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let source = LogSource::new("t", dir.path().join("t.log"));
        let old = rotated_path(source.path(), 1);
        let recent = rotated_path(source.path(), 2);
        fs::write(&old, "from long ago\n")?;
        fs::write(&recent, "from a minute ago\n")?;
        backdate(&old, Duration::from_secs(2 * 3600))?;
        backdate(&recent, Duration::from_secs(60))?;
        // Opening prunes: policy() keeps files for an hour.
        let _writer = RotatingWriter::open(source.clone(), policy(1 << 20))?;
        assert!(!old.exists(), "a file past max_age was kept");
        assert!(recent.exists(), "a file within max_age was deleted");
        Ok(())
    }

    #[test]
    fn a_file_older_than_max_age_is_rotated_at_the_next_write() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let source = LogSource::new("t", dir.path().join("t.log"));
        let mut writer = RotatingWriter::open(source.clone(), policy(1 << 20))?;
        writer.write_all(b"yesterday\n")?;
        // Far below the size limit: only age can rotate now.
        writer.write_all(b"still young\n")?;
        assert!(!rotated_path(source.path(), 1).exists());
        // A rotation from long ago that appeared after the writer opened
        // (so the prune at open never saw it).
        let ancient = rotated_path(source.path(), 1);
        fs::write(&ancient, "last week\n")?;
        backdate(&ancient, Duration::from_secs(7 * 86_400))?;
        // The file was started two hours ago (the policy allows one); the
        // clock is the writer's record, not a sleep.
        writer.started = SystemTime::now() - Duration::from_secs(2 * 3600);
        writer.write_all(b"today\n")?;
        writer.flush()?;
        assert_eq!(
            fs::read_to_string(rotated_path(source.path(), 1))?,
            "yesterday\nstill young\n"
        );
        assert_eq!(fs::read_to_string(source.path())?, "today\n");
        // Shifted to .2 by the rotation, then pruned for its age although
        // the count limit (2) would keep it.
        assert!(!rotated_path(source.path(), 2).exists());
        // The fresh file is young again: the next line stays with it.
        writer.write_all(b"later today\n")?;
        assert_eq!(fs::read_to_string(source.path())?, "today\nlater today\n");
        Ok(())
    }

    #[test]
    fn followers_get_each_new_line_once() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let source = LogSource::new("t", dir.path().join("t.log"));
        let mut writer = RotatingWriter::open(source.clone(), policy(1 << 20))?;
        writer.write_all(b"before\n")?;
        let (tail, receiver) = source.tail(10, true)?;
        assert_eq!(tail, vec!["before"]);
        let Some(mut receiver) = receiver else {
            panic!("follow requested but no receiver");
        };
        writer.write_all(b"after one\nafter")?;
        writer.write_all(b" two\n")?;
        assert_eq!(receiver.try_recv().ok().as_deref(), Some("after one"));
        assert_eq!(receiver.try_recv().ok().as_deref(), Some("after two"));
        assert!(receiver.try_recv().is_err());
        Ok(())
    }
}
