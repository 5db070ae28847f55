//! Cost curves (`cargo bench -p omnipanel-tests --bench curves`, or
//! `scripts/bench`): how the agent's cost grows with the size of a
//! project. For each size (10 000, 100 000 and 1 000 000 files; set
//! OMNIPANEL_CURVE_SIZES, e.g. `2000,20000`, for a quick look) a fresh
//! agent in its own sandbox and a generated tree of source-like files in
//! folders of 100, three levels deep (`trees::project_tree`), measured in
//! the same run:
//!
//! - open → indexed: OpenProject until FindFiles reports the whole tree in
//!   a complete index (the first walk, which also sets the watches), median
//!   of 3 opens with the project closed in between; a close that does not
//!   give its inotify watches back ends the reopening, and the table says
//!   so;
//! - FindFiles p50 and p90 over 300 queries (the mix of the files
//!   benchmark);
//! - SearchText for one fixed string (in one file in 100) against
//!   `rg --no-require-git --fixed-strings --line-number` on the same tree,
//!   median of 5 each;
//! - Watch set-up: from the Watch call to its stream's CaughtUp, median of
//!   5 (the kernel watches are set by the walk, so that is all a Watch
//!   call adds), and the inotify watches the agent holds
//!   (`/proc/PID/fdinfo`);
//! - the agent's RSS with no project open and with the project indexed
//!   (after one query has built the finder's packed copy, which every
//!   query needs), and from them the memory per indexed file;
//! - the same tree then committed as a Git repository with some changes on
//!   top (`trees::commit_tree`) and opened again: GetStatus cold (the first
//!   call after opening) and warm (one file saved before each, median of
//!   5), against `git status --porcelain=v2 --branch` (median of 5, after
//!   one that refreshes git's index).
//!
//! Prints a Markdown table, one row per size, then the growth from the
//! second-largest size to the largest against the targets (memory and walk
//! at most 11× for 10× the files, queries at most 4×; reported as met or
//! not, never asserted), and draws the curves, log–log, to
//! docs/cost-curves.svg (OMNIPANEL_CURVE_SVG names another file, relative
//! to the workspace). Progress goes to stderr. Needs `git` and `rg`
//! (scripts/bench installs them; without `rg` its columns stay empty) and
//! disk for the largest tree: 1 000 000 small files take about 5 GB, and
//! each tree is removed before the next size starts.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use omnipanel_client::{Client, proto::v1 as pb};
use omnipanel_tests::{
    Sandbox, TestResult,
    measure::{inotify_watches, machine, median, percentile, rss_mb},
    projects::{close_project, open_project, wait_for_files, watch_from_now, watch_state},
    trees::{NEEDLE, commit_tree, git_in, project_tree, tree_file},
};

const DEFAULT_SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
/// Opens of each tree, when closing gives everything back.
const OPENS: usize = 3;
/// Runs of SearchText, rg, Watch, warm GetStatus and git status.
const RUNS: usize = 5;
/// Rounds of [`QUERIES`]: 300 FindFiles in all.
const FIND_ROUNDS: usize = 25;
/// The files benchmark's query mix.
const QUERIES: [&str; 12] = omnipanel_tests::trees::FIND_QUERIES;
/// The growth allowed for 10× the files: memory and the walk about
/// linear, queries well under.
const LINEAR_TARGET: f64 = 11.0;
const QUERY_TARGET: f64 = 4.0;

/// One figure of a row, for the growth table and the plot.
type Figure = fn(&Row) -> f64;

/// One size's figures; times in milliseconds, memory in MB.
struct Row {
    files: usize,
    folders: usize,
    open_ms: f64,
    opens: usize,
    find_p50: f64,
    find_p90: f64,
    search_ms: f64,
    rg_ms: f64,
    watch_ready_ms: f64,
    inotify: Option<usize>,
    status_cold: f64,
    status_warm: f64,
    git_status: f64,
    rss_base: f64,
    rss_project: f64,
    /// What the table's notes say about this size.
    notes: Vec<String>,
}

impl Row {
    /// What the indexed project adds to the agent's RSS.
    fn index_mb(&self) -> f64 {
        self.rss_project - self.rss_base
    }

    fn bytes_per_file(&self) -> f64 {
        self.index_mb() * 1024.0 * 1024.0 / self.files as f64
    }
}

fn main() -> TestResult {
    let sizes = sizes()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for &files in &sizes {
        let row = runtime.block_on(measure(files))?;
        rows.push(row);
    }
    let machine = machine();
    print!("{}", table(&rows, &machine));
    let path = svg_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, svg(&rows, &machine))?;
    eprintln!("curves: plot written to {}", path.display());
    Ok(())
}

/// The sizes to measure, smallest first.
fn sizes() -> TestResult<Vec<usize>> {
    let Ok(text) = std::env::var("OMNIPANEL_CURVE_SIZES") else {
        return Ok(DEFAULT_SIZES.to_vec());
    };
    let mut sizes = Vec::new();
    for part in text.split(',') {
        let digits: String = part
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '_')
            .collect();
        match digits.parse::<usize>() {
            Ok(files) if files > 0 => sizes.push(files),
            _ => {
                return Err(format!(
                    "OMNIPANEL_CURVE_SIZES: {part:?} is not a number of files (e.g. 2000,20000)"
                )
                .into());
            }
        }
    }
    sizes.sort_unstable();
    sizes.dedup();
    Ok(sizes)
}

fn svg_path() -> PathBuf {
    // Cargo runs a bench in its package's folder; the workspace is above.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf();
    match std::env::var_os("OMNIPANEL_CURVE_SVG") {
        Some(path) => workspace.join(path),
        None => workspace.join("docs/cost-curves.svg"),
    }
}

fn say(files: usize, what: &str) {
    eprintln!("curves [{} files]: {what}", count(files));
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// How long a walk or a status of `files` files may take before the run
/// is called hung: far more than a debug build needs.
fn patience(files: usize) -> Duration {
    Duration::from_secs((files as u64 / 500).max(120))
}

async fn measure(files: usize) -> TestResult<Row> {
    let sandbox = Sandbox::new()?;
    // Alerts off: with them the agent reads the machine every 5 s, which is
    // no cost of a project. A search of the largest tree by a debug build
    // may take longer than the default 30 s.
    sandbox.write_config("[system]\nalerts = false\n\n[files]\nsearch_timeout = \"10m\"\n")?;
    let home = sandbox.home();
    std::fs::write(
        home.join(".gitconfig"),
        "[user]\n\tname = Bench\n\temail = bench@example.com\n",
    )?;
    let root = sandbox.project_dir("tree");
    say(files, "generating the tree");
    let started = Instant::now();
    let folders = project_tree(&root, files)?;
    say(
        files,
        &format!(
            "{} folders generated in {:.1} s",
            count(folders),
            started.elapsed().as_secs_f64()
        ),
    );
    let root = std::fs::canonicalize(&root)?;

    let mut agent = sandbox.start_agent().await?;
    let client = agent.client().await?;
    let pid = agent.pid();
    // Start-up work (state.db, the first log lines) settles first, so the
    // baseline is the agent at rest.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_base = rss_mb(pid);
    let watches_before = inotify_watches(pid).unwrap_or(0);
    let mut notes = Vec::new();

    let Opened {
        id,
        times: mut opens,
        rss_project,
        note,
    } = open_repeatedly(&client, pid, &root, files, watches_before).await?;
    notes.extend(note);
    let inotify = inotify_watches(pid).map(|n| n.saturating_sub(watches_before));
    let watch = watch_state(&client, &id).await?;
    if watch.state() != pb::WatchState::Live {
        notes.push(format!("watch state {:?}: {}", watch.state(), watch.detail));
    }

    say(files, "FindFiles");
    let (find_p50, find_p90) = find_percentiles(&client, &id).await?;
    say(files, "SearchText and rg");
    let search = search_against_rg(&client, &id, &root).await?;
    say(files, &format!("{} matching lines", count(search.lines)));
    notes.extend(search.note);
    say(files, "Watch");
    let mut ready = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let stream = watch_from_now(&client, &id).await?;
        ready.push(ms(started));
        drop(stream);
    }
    close_project(&client, &id).await?;

    say(files, "committing the tree as a Git repository");
    let started = Instant::now();
    commit_tree(&home, &root, files)?;
    say(
        files,
        &format!("committed in {:.1} s", started.elapsed().as_secs_f64()),
    );
    let status = statuses(&client, &home, &root, files).await?;

    agent.stop().await?;
    say(files, "removing the tree");
    std::fs::remove_dir_all(&root)?;
    Ok(Row {
        files,
        folders,
        opens: opens.len(),
        open_ms: median(&mut opens),
        find_p50,
        find_p90,
        search_ms: search.ours,
        rg_ms: search.rg,
        watch_ready_ms: median(&mut ready),
        inotify,
        status_cold: status.cold,
        status_warm: status.warm,
        git_status: status.git,
        rss_base,
        rss_project,
        notes,
    })
}

/// The project open after [`open_repeatedly`], and what its opens cost.
struct Opened {
    id: String,
    times: Vec<f64>,
    rss_project: f64,
    note: Option<String>,
}

/// Open the tree and wait for its index, [`OPENS`] times, closing it in
/// between; the RSS is read after the first.
async fn open_repeatedly(
    client: &Client,
    pid: u32,
    root: &Path,
    files: usize,
    watches_before: usize,
) -> TestResult<Opened> {
    let (mut id, took) = open_indexed(client, root, files).await?;
    say(files, &format!("opened, indexed in {took:.0} ms"));
    let mut times = vec![took];
    find(client, &id, "file").await?;
    let rss_project = rss_mb(pid);
    let mut note = None;
    while times.len() < OPENS {
        close_project(client, &id).await?;
        if let Some(left) = watches_left(pid, watches_before).await {
            note = Some(format!(
                "closing left {left} inotify watches behind, so open → indexed is from {} open(s)",
                times.len()
            ));
            id = open_indexed(client, root, files).await?.0;
            break;
        }
        let (again, took) = open_indexed(client, root, files).await?;
        say(files, &format!("opened again, indexed in {took:.0} ms"));
        id = again;
        times.push(took);
    }
    Ok(Opened {
        id,
        times,
        rss_project,
        note,
    })
}

/// Open the tree and wait until its index holds every file; the project
/// and the time taken.
async fn open_indexed(client: &Client, root: &Path, files: usize) -> TestResult<(String, f64)> {
    let started = Instant::now();
    let id = open_project(client, root).await?;
    wait_for_files(client, &id, files as u64, patience(files)).await?;
    Ok((id, ms(started)))
}

/// After a close, how many inotify watches beyond `before` the agent
/// still holds once it had 10 s to let them go; `None` when none.
async fn watches_left(pid: u32, before: usize) -> Option<usize> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let held = inotify_watches(pid)?;
        if held <= before {
            return None;
        }
        if Instant::now() > deadline {
            return Some(held - before);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn find(client: &Client, id: &str, query: &str) -> TestResult {
    client
        .files()
        .find_files(pb::FindFilesRequest {
            project: id.to_owned(),
            query: query.to_owned(),
            limit: 50,
        })
        .await?;
    Ok(())
}

async fn find_percentiles(client: &Client, id: &str) -> TestResult<(f64, f64)> {
    let mut times = Vec::with_capacity(FIND_ROUNDS * QUERIES.len());
    for _ in 0..FIND_ROUNDS {
        for query in QUERIES {
            let started = Instant::now();
            find(client, id, query).await?;
            times.push(ms(started));
        }
    }
    Ok((percentile(&mut times, 0.5), percentile(&mut times, 0.9)))
}

/// Medians of SearchText and rg (NaN without rg), and what differed.
struct Search {
    ours: f64,
    rg: f64,
    /// Matching lines SearchText found.
    lines: usize,
    note: Option<String>,
}

async fn search_against_rg(client: &Client, id: &str, root: &Path) -> TestResult<Search> {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let (mut our_lines, mut their_lines) = (0, None);
    for _ in 0..RUNS {
        let started = Instant::now();
        our_lines = search_text(client, id).await?;
        ours.push(ms(started));
        if let Some((took, lines)) = rg(root)? {
            theirs.push(took);
            their_lines = Some(lines);
        }
    }
    let note = match their_lines {
        None => Some("`rg` not found: no baseline for SearchText".to_owned()),
        Some(lines) if lines != our_lines => Some(format!(
            "SearchText found {our_lines} matching lines, rg {lines}"
        )),
        Some(_) => None,
    };
    Ok(Search {
        ours: median(&mut ours),
        rg: median(&mut theirs),
        lines: our_lines,
        note,
    })
}

/// One SearchText for [`NEEDLE`], read to its end; the matching lines.
async fn search_text(client: &Client, id: &str) -> TestResult<usize> {
    let mut stream = client
        .files()
        .search_text(pb::SearchTextRequest {
            project: id.to_owned(),
            pattern: NEEDLE.to_owned(),
            case_mode: pb::CaseMode::Sensitive.into(),
            max_results: 100_000,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut lines = 0;
    while let Some(message) = stream.message().await? {
        lines += message.matches.len();
    }
    Ok(lines)
}

/// `rg` for [`NEEDLE`] in `dir`: its time (process start included, as a
/// user pays it) and matching lines; `None` when rg is not installed.
fn rg(dir: &Path) -> TestResult<Option<(f64, usize)>> {
    let started = Instant::now();
    let output = match Command::new("rg")
        .args([
            "--no-require-git",
            "--fixed-strings",
            "--line-number",
            NEEDLE,
        ])
        .arg(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let took = ms(started);
    // 1 is "no match"; above it, rg failed.
    if output.status.code().is_none_or(|code| code > 1) {
        return Err(format!("rg failed: {}", output.status).into());
    }
    let lines = output.stdout.iter().filter(|&&b| b == b'\n').count();
    Ok(Some((took, lines)))
}

/// GetStatus cold and warm, and `git status`, in milliseconds.
struct Statuses {
    cold: f64,
    warm: f64,
    git: f64,
}

async fn statuses(client: &Client, home: &Path, root: &Path, files: usize) -> TestResult<Statuses> {
    say(files, "opening the repository");
    let (id, took) = open_indexed(client, root, files).await?;
    say(
        files,
        &format!(
            "repository open and indexed in {:.1} s; GetStatus",
            took / 1000.0
        ),
    );
    let cold = get_status(client, &id).await?;
    let mut warm = Vec::new();
    for round in 0..RUNS {
        // A file saved since the last status, as while editing (the Git
        // benchmark's warm case).
        std::fs::write(
            root.join(tree_file(1)),
            format!("// saved in round {round}\n"),
        )?;
        warm.push(get_status(client, &id).await?);
    }
    // git's after the agent's: git may rewrite the index, which would make
    // the agent's next status a full one.
    let args = ["status", "--porcelain=v2", "--branch"];
    git_in(home, root, &args)?;
    let mut git = Vec::new();
    for _ in 0..RUNS {
        git.push(git_in(home, root, &args)?.as_secs_f64() * 1000.0);
    }
    close_project(client, &id).await?;
    Ok(Statuses {
        cold,
        warm: median(&mut warm),
        git: median(&mut git),
    })
}

/// One GetStatus round trip, in milliseconds.
async fn get_status(client: &Client, id: &str) -> TestResult<f64> {
    let started = Instant::now();
    client
        .git()
        .get_status(pb::GetStatusRequest {
            project: id.to_owned(),
        })
        .await?
        .into_inner()
        .status
        .ok_or("GetStatus answered no status")?;
    Ok(ms(started))
}

/// `n` with thin groups of three digits, as the docs write sizes.
fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// A time or size with the decimals its magnitude deserves; "—" for
/// nothing measured.
fn num(value: f64) -> String {
    match value {
        v if !v.is_finite() => "—".to_owned(),
        // RSS can shrink between two reads: a tiny project may "cost" less
        // than nothing.
        v if v < 0.0 => format!("−{}", num(-v)),
        v if v.abs() < 10.0 => format!("{v:.2}"),
        v if v.abs() < 100.0 => format!("{v:.1}"),
        v => count(v.round() as usize),
    }
}

fn ratio(ours: f64, theirs: f64) -> String {
    let r = ours / theirs;
    if r.is_finite() {
        format!("{r:.2}×")
    } else {
        "—".to_owned()
    }
}

fn table(rows: &[Row], machine: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Cost curves ({machine})\n");
    let _ = writeln!(
        out,
        "(each size: a fresh agent, a generated tree in folders of 100; times in ms, medians; FindFiles over {} queries; GetStatus on the same tree committed, with 100 changed and 10 untracked files)\n",
        FIND_ROUNDS * QUERIES.len()
    );
    let _ = writeln!(
        out,
        "| files | folders | open → indexed | FindFiles p50 | FindFiles p90 | SearchText | rg | SearchText / rg | Watch → ready | inotify watches | GetStatus cold | GetStatus warm | git status | cold / git | warm / git | RSS, no project (MB) | RSS, indexed (MB) | bytes per file |"
    );
    let _ = writeln!(out, "|{}", "---|".repeat(18));
    for row in rows {
        let opens = if row.opens == OPENS {
            String::new()
        } else {
            format!(" ({} open)", row.opens)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {}{opens} | {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} | **{}** | **{}** | {} | {} | **{}** |",
            count(row.files),
            count(row.folders),
            num(row.open_ms),
            num(row.find_p50),
            num(row.find_p90),
            num(row.search_ms),
            num(row.rg_ms),
            ratio(row.search_ms, row.rg_ms),
            num(row.watch_ready_ms),
            row.inotify.map_or("—".to_owned(), count),
            num(row.status_cold),
            num(row.status_warm),
            num(row.git_status),
            ratio(row.status_cold, row.git_status),
            ratio(row.status_warm, row.git_status),
            num(row.rss_base),
            num(row.rss_project),
            num(row.bytes_per_file()),
        );
    }
    let notes: Vec<String> = rows
        .iter()
        .flat_map(|row| {
            row.notes
                .iter()
                .map(move |note| format!("- {} files: {note}", count(row.files)))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\n{}", notes.join("\n"));
    }
    out.push('\n');
    out.push_str(&growth(rows));
    out
}

/// The growth from the second-largest size to the largest, against the
/// targets scaled to the sizes' ratio.
fn growth(rows: &[Row]) -> String {
    let [.., small, large] = rows else {
        return "(one size only: no growth to report)\n".to_owned();
    };
    let k = large.files as f64 / small.files as f64;
    // The targets are for 10× the files: memory and walk 1.1 × linear,
    // queries 4× (k^log10(4) for another k).
    let linear = LINEAR_TARGET / 10.0 * k;
    let query = k.powf(QUERY_TARGET.log10());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### Growth from {} to {} files ({k:.1}× the files)\n",
        count(small.files),
        count(large.files)
    );
    let _ = writeln!(
        out,
        "| figure | {} files | {} files | growth | target | |",
        count(small.files),
        count(large.files)
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    let figures: [(&str, Figure, f64, &str); 5] = [
        (
            "memory (RSS indexed − no project)",
            Row::index_mb,
            linear,
            "MB",
        ),
        ("open → indexed", |r| r.open_ms, linear, "ms"),
        ("FindFiles p50", |r| r.find_p50, query, "ms"),
        ("SearchText", |r| r.search_ms, query, "ms"),
        ("GetStatus warm", |r| r.status_warm, query, "ms"),
    ];
    for (name, figure, target, unit) in figures {
        let times = figure(large) / figure(small);
        let verdict = if !times.is_finite() {
            "—"
        } else if times <= target {
            "met"
        } else {
            "not met"
        };
        let _ = writeln!(
            out,
            "| {name} | {} {unit} | {} {unit} | **{}** | ≤ {target:.1}× | {verdict} |",
            num(figure(small)),
            num(figure(large)),
            if times.is_finite() {
                format!("{times:.2}×")
            } else {
                "—".to_owned()
            },
        );
    }
    if (k - 10.0).abs() > 1e-9 {
        let _ = writeln!(
            out,
            "\n(targets for 10× the files are 11× and 4×; for {k:.1}× they are scaled to 1.1·k and k^0.6)"
        );
    }
    out
}

// The plot: hand-written SVG, two log–log panels sharing the files axis.

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 500.0;

/// One line of the plot: (files, value) points, the unmeasured left out.
struct Curve {
    name: &'static str,
    colour: &'static str,
    dashed: bool,
    marker: usize,
    points: Vec<(f64, f64)>,
}

fn curve(
    rows: &[Row],
    name: &'static str,
    colour: &'static str,
    dashed: bool,
    marker: usize,
    figure: Figure,
) -> Curve {
    Curve {
        name,
        colour,
        dashed,
        marker,
        points: rows
            .iter()
            .map(|row| (row.files as f64, figure(row)))
            .filter(|&(_, v)| v.is_finite() && v > 0.0)
            .collect(),
    }
}

/// Whole decades `lo..=hi` covering the values (at least one).
#[derive(Clone, Copy)]
struct LogAxis {
    lo: i32,
    hi: i32,
}

impl LogAxis {
    fn covering(values: impl Iterator<Item = f64>) -> Self {
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && *v > 0.0) {
            min = min.min(v);
            max = max.max(v);
        }
        if !min.is_finite() {
            return Self { lo: 0, hi: 1 };
        }
        let lo = min.log10().floor() as i32;
        let hi = (max.log10().ceil() as i32).max(lo + 1);
        Self { lo, hi }
    }

    /// Where `v` falls, 0.0 at the lowest decade to 1.0 at the highest.
    fn fraction(self, v: f64) -> f64 {
        (v.log10() - f64::from(self.lo)) / f64::from(self.hi - self.lo)
    }
}

/// A plotting area in pixels with its two axes.
struct Panel {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    x: LogAxis,
    y: LogAxis,
}

impl Panel {
    fn px(&self, x: f64) -> f64 {
        self.left + self.x.fraction(x) * self.width
    }

    fn py(&self, y: f64) -> f64 {
        self.top + self.height - self.y.fraction(y) * self.height
    }

    /// Frame, grid, tick labels and the y title.
    fn axes(&self, out: &mut String, y_label: fn(i32) -> String, y_title: &str) {
        let (right, bottom) = (self.left + self.width, self.top + self.height);
        for e in self.x.lo..=self.x.hi {
            let decade = 10f64.powi(e);
            if e < self.x.hi {
                for m in 2..10 {
                    let x = self.px(decade * f64::from(m));
                    let _ = writeln!(
                        out,
                        r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#eeeeee"/>"##,
                        self.top
                    );
                }
            }
            let x = self.px(decade);
            let _ = writeln!(
                out,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#cccccc"/>"##,
                self.top
            );
            let _ = writeln!(
                out,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                bottom + 16.0,
                files_label(e)
            );
        }
        for e in self.y.lo..=self.y.hi {
            let decade = 10f64.powi(e);
            if e < self.y.hi {
                for m in 2..10 {
                    let y = self.py(decade * f64::from(m));
                    let _ = writeln!(
                        out,
                        r##"<line x1="{:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#eeeeee"/>"##,
                        self.left
                    );
                }
            }
            let y = self.py(decade);
            let _ = writeln!(
                out,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#cccccc"/>"##,
                self.left
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                self.left - 6.0,
                y + 4.0,
                y_label(e)
            );
        }
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#444444"/>"##,
            self.left, self.top, self.width, self.height
        );
        let (tx, ty) = (self.left - 66.0, self.top + self.height / 2.0);
        let _ = writeln!(
            out,
            r#"<text x="{tx:.1}" y="{ty:.1}" transform="rotate(-90 {tx:.1} {ty:.1})" text-anchor="middle" font-weight="bold">{y_title}</text>"#
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">files in the project</text>"#,
            self.left + self.width / 2.0,
            bottom + 34.0
        );
    }

    fn draw(&self, out: &mut String, curve: &Curve) {
        let points: Vec<String> = curve
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        let dash = if curve.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            points.join(" "),
            curve.colour
        );
        for &(x, y) in &curve.points {
            out.push_str(&marker(curve.marker, self.px(x), self.py(y), curve.colour));
        }
    }
}

/// A marker of shape `shape` centred on (x, y).
fn marker(shape: usize, x: f64, y: f64, colour: &str) -> String {
    let r = 4.5;
    match shape % 5 {
        0 => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="{colour}"/>"#),
        1 => format!(
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/>"#,
            x - r,
            y - r,
            2.0 * r,
            2.0 * r
        ),
        2 => format!(
            r#"<path d="M{x:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1} Z" fill="{colour}"/>"#,
            y - r - 1.0,
            x + r + 1.0,
            y + r,
            x - r - 1.0,
            y + r
        ),
        3 => format!(
            r#"<path d="M{x:.1},{:.1} L{:.1},{y:.1} L{x:.1},{:.1} L{:.1},{y:.1} Z" fill="{colour}"/>"#,
            y - r - 1.0,
            x + r + 1.0,
            y + r + 1.0,
            x - r - 1.0
        ),
        _ => format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{r}" fill="white" stroke="{colour}" stroke-width="2"/>"#
        ),
    }
}

fn legend(out: &mut String, x: f64, y: f64, curve: &Curve) {
    let dash = if curve.dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let _ = writeln!(
        out,
        r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2"{dash}/>"#,
        x + 28.0,
        curve.colour
    );
    out.push_str(&marker(curve.marker, x + 14.0, y, curve.colour));
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
        x + 36.0,
        y + 4.0,
        escape(curve.name)
    );
}

/// 10^e files as the axis says it: 1k, 10k, 1M.
fn files_label(e: i32) -> String {
    match e {
        6.. => format!("{}M", 10u64.pow((e - 6).unsigned_abs())),
        3.. => format!("{}k", 10u64.pow((e - 3).unsigned_abs())),
        0.. => 10u64.pow(e.unsigned_abs()).to_string(),
        _ => decimal(e),
    }
}

/// 10^e milliseconds: 0.1 ms, 10 ms, 1 s, 100 s.
fn time_label(e: i32) -> String {
    match e {
        3.. => format!("{} s", count(10usize.pow((e - 3).unsigned_abs()))),
        0.. => format!("{} ms", 10u64.pow(e.unsigned_abs())),
        _ => format!("{} ms", decimal(e)),
    }
}

/// 10^e MB.
fn memory_label(e: i32) -> String {
    match e {
        0.. => format!("{} MB", count(10usize.pow(e.unsigned_abs()))),
        _ => format!("{} MB", decimal(e)),
    }
}

/// 10^e for a negative e, written out (0.01), without float noise.
fn decimal(e: i32) -> String {
    format!("0.{}1", "0".repeat(e.unsigned_abs() as usize - 1))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn svg(rows: &[Row], machine: &str) -> String {
    let times = [
        curve(
            rows,
            "index walk (open → indexed)",
            "#1f77b4",
            false,
            0,
            |r| r.open_ms,
        ),
        curve(rows, "FindFiles p50", "#ff7f0e", false, 1, |r| r.find_p50),
        curve(rows, "SearchText", "#2ca02c", false, 2, |r| r.search_ms),
        curve(rows, "rg (baseline)", "#2ca02c", true, 4, |r| r.rg_ms),
        curve(rows, "GetStatus warm", "#d62728", false, 3, |r| {
            r.status_warm
        }),
        curve(rows, "git status (baseline)", "#d62728", true, 4, |r| {
            r.git_status
        }),
    ];
    let memory = [
        curve(rows, "RSS, project indexed", "#9467bd", false, 0, |r| {
            r.rss_project
        }),
        curve(
            rows,
            "RSS − no project (index)",
            "#8c564b",
            false,
            1,
            |r| r.index_mb(),
        ),
    ];
    let x = LogAxis::covering(rows.iter().map(|r| r.files as f64));
    let span = |curves: &[Curve]| {
        LogAxis::covering(curves.iter().flat_map(|c| c.points.iter().map(|&(_, v)| v)))
    };
    let time_panel = Panel {
        left: 80.0,
        top: 60.0,
        width: 400.0,
        height: 300.0,
        x,
        y: span(&times),
    };
    let memory_panel = Panel {
        left: 600.0,
        top: 60.0,
        width: 170.0,
        height: 300.0,
        x,
        y: span(&memory),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12" fill="#222222">"##
    );
    let _ = writeln!(
        out,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="16" font-weight="bold">OmniPanel agent: cost by project size (log–log)</text>"#,
        WIDTH / 2.0
    );
    let _ = writeln!(
        out,
        r##"<text x="{}" y="42" text-anchor="middle" fill="#666666">{}</text>"##,
        WIDTH / 2.0,
        escape(machine)
    );
    time_panel.axes(&mut out, time_label, "time");
    memory_panel.axes(&mut out, memory_label, "memory");
    for curve in &times {
        time_panel.draw(&mut out, curve);
    }
    for curve in &memory {
        memory_panel.draw(&mut out, curve);
    }
    for (i, curve) in times.iter().enumerate() {
        let column = (i % 2) as f64;
        let line = (i / 2) as f64;
        legend(&mut out, 80.0 + column * 230.0, 425.0 + line * 20.0, curve);
    }
    for (i, curve) in memory.iter().enumerate() {
        legend(&mut out, 560.0, 425.0 + i as f64 * 20.0, curve);
    }
    let _ = writeln!(
        out,
        r##"<text x="{}" y="492" text-anchor="middle" font-size="11" fill="#666666">each point one size; medians (FindFiles: p50); a fresh agent per size</text>"##,
        WIDTH / 2.0
    );
    out.push_str("</svg>\n");
    out
}
