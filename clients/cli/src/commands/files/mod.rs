//! `omnipanel files ...`: the files of an open project through the agent's
//! FileService: list, read, write, create folders, move, copy, delete,
//! stat, fuzzy find, content search printed like ripgrep, and a live
//! change feed. Which project is used and how the paths typed relate to it
//! is decided here, once, before any call: the agent only knows
//! project-relative paths, and runs in another directory than the CLI.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
};

use omnipanel_client::Client;
use omnipanel_proto::v1::{
    self as pb, CopyRequest, CreateDirectoryRequest, DeleteRequest, FindFilesRequest,
    GetProjectRequest, ListDirectoryRequest, ListProjectsRequest, MoveRequest, ReadFileRequest,
    SearchTextRequest, StatRequest, WatchRequest, WriteFileRequest, watch_response::Item,
};
use tokio::{
    io::AsyncReadExt,
    signal::unix::{Signal, SignalKind, signal},
};

use crate::{
    Failure,
    cli::{FilesArgs, FilesCommand, GrepArgs, OverwriteArg, SortArg},
    model_commands::rpc,
    project_commands::{absolute, current_dir, normalize, project_reference},
    render::{
        emit, emit_bytes, errln, human_size, outln, print_json, print_table, relative_time,
        stdout_color, style, timestamp,
    },
};

/// Largest write the agent accepts in one call (WriteFileRequest.content).
const MAX_WRITE_BYTES: usize = 64 * 1024 * 1024;

/// Bytes per ReadFile call when a file is larger than the agent reads at
/// once: 1 MiB is the smallest `files.max_read_mb` allows, so any agent
/// accepts it.
const READ_PART: u64 = 1024 * 1024;

/// The project the command works on and how to name paths in it.
struct Scope {
    client: Client,
    /// What requests send as `project`.
    id: String,
    /// Its canonical root, to make paths typed from the current directory
    /// project-relative.
    root: PathBuf,
    json: bool,
}

impl Scope {
    /// The project-relative path for a path typed on the command line.
    fn path(&self, arg: &str) -> Result<String, Failure> {
        project_path(&self.root, arg)
    }
}

/// Whether a typed path is meant from the current directory rather than
/// from the project root: absolute, or starting with `./` or `../`.
fn from_current_dir(arg: &str) -> bool {
    Path::new(arg).is_absolute()
        || arg == "."
        || arg == ".."
        || arg.starts_with("./")
        || arg.starts_with("../")
}

/// `abs` relative to `root`, '/'-separated ("" for the root itself), when
/// it is inside.
fn inside(root: &Path, abs: &Path) -> Result<Option<String>, Failure> {
    let Ok(rel) = abs.strip_prefix(root) else {
        return Ok(None);
    };
    let mut parts = Vec::new();
    for component in rel.components() {
        let part = component.as_os_str().to_str().ok_or_else(|| {
            Failure::Other(format!(
                "{} is not valid UTF-8, which the agent's API cannot carry",
                abs.display()
            ))
        })?;
        parts.push(part);
    }
    Ok(Some(parts.join("/")))
}

/// `abs` with its longest existing ancestor resolved (symlinks in the
/// prefix, e.g. a symlinked home folder) and the rest appended: the
/// project's root is canonical, what the user typed may not be.
fn resolve_prefix(abs: &Path) -> Option<PathBuf> {
    for ancestor in abs.ancestors() {
        if let Ok(real) = std::fs::canonicalize(ancestor) {
            let rest = abs.strip_prefix(ancestor).ok()?;
            return Some(normalize(&real.join(rest)));
        }
    }
    None
}

/// The project-relative path for `arg`: as typed, unless it is meant from
/// the current directory, in which case it must lie inside `root`.
pub fn project_path(root: &Path, arg: &str) -> Result<String, Failure> {
    if !from_current_dir(arg) {
        return Ok(arg.to_owned());
    }
    let abs = absolute(arg)?;
    if let Some(rel) = inside(root, &abs)? {
        return Ok(rel);
    }
    // Only now resolve symlinks: one inside the project pointing out must
    // not turn a path into another one (the agent refuses that anyway).
    if let Some(real) = resolve_prefix(&abs)
        && let Some(rel) = inside(root, &real)?
    {
        return Ok(rel);
    }
    Err(Failure::Other(format!(
        "{arg} ({}) is outside the project at {}",
        abs.display(),
        root.display()
    )))
}

/// The project a files command works on: the one named by `--project`, or
/// the open project whose root contains the current directory (the
/// innermost, when projects are nested).
pub async fn choose_project(client: &Client, arg: Option<&str>) -> Result<pb::Project, Failure> {
    if let Some(arg) = arg {
        let project = project_reference(arg)?;
        let response = rpc(
            client,
            client
                .projects()
                .get_project(GetProjectRequest { project })
                .await,
        )?;
        return Ok(response.project.unwrap_or_default());
    }
    let cwd = current_dir()?;
    let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    let projects = rpc(
        client,
        client
            .projects()
            .list_projects(ListProjectsRequest {})
            .await,
    )?
    .projects;
    let containing = |open: bool| {
        projects
            .iter()
            .filter(|p| p.open == open && cwd.starts_with(&p.path))
            .max_by_key(|p| p.path.len())
            .cloned()
    };
    if let Some(project) = containing(true) {
        return Ok(project);
    }
    if let Some(closed) = containing(false) {
        return Err(Failure::Other(format!(
            "the project {} ({}) containing the current directory is closed; run `omnipanel projects open {}` or pass --project",
            closed.name, closed.path, closed.path
        )));
    }
    Err(Failure::Other(format!(
        "no open project contains the current directory ({}); run `omnipanel projects open .` or pass --project",
        cwd.display()
    )))
}

/// `omnipanel files ...`
pub async fn files(args: FilesArgs, json: bool) -> Result<(), Failure> {
    // Before connecting, so an early Ctrl-C ends the watch quietly rather
    // than killing the process.
    let interrupt = match args.command {
        FilesCommand::Watch { .. } => Some(
            signal(SignalKind::interrupt())
                .map_err(|err| Failure::Other(format!("cannot watch for Ctrl-C: {err}")))?,
        ),
        _ => None,
    };
    let client = Client::connect_from_env().await?;
    let project = choose_project(&client, args.project.as_deref()).await?;
    let scope = Scope {
        client,
        id: project.id,
        root: PathBuf::from(project.path),
        json,
    };
    match args.command {
        FilesCommand::Ls {
            path,
            all,
            ignored,
            sort,
            reverse,
        } => {
            let path = match path {
                Some(path) => scope.path(&path)?,
                None => String::new(),
            };
            list(&scope, path, all, ignored, sort, reverse).await
        }
        FilesCommand::Cat {
            path,
            offset,
            length,
            force,
        } => cat(&scope, &scope.path(&path)?, offset, length, force).await,
        FilesCommand::Write {
            path,
            expected_version,
            create_only,
            parents,
        } => {
            let path = scope.path(&path)?;
            write(&scope, path, expected_version, create_only, parents).await
        }
        FilesCommand::Mkdir { path } => {
            let path = scope.path(&path)?;
            let response = rpc(
                &scope.client,
                scope
                    .client
                    .files()
                    .create_directory(CreateDirectoryRequest {
                        project: scope.id.clone(),
                        path,
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let info = response.info.unwrap_or_default();
            outln!("created folder {}/", info.path)?;
            Ok(())
        }
        FilesCommand::Mv {
            from,
            to,
            overwrite,
        } => {
            let from = scope.path(&from)?;
            let to = scope.path(&to)?;
            let response = rpc(
                &scope.client,
                scope
                    .client
                    .files()
                    .r#move(MoveRequest {
                        project: scope.id.clone(),
                        from: from.clone(),
                        to,
                        overwrite,
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let info = response.info.unwrap_or_default();
            outln!("moved {from} -> {}", info.path)?;
            Ok(())
        }
        FilesCommand::Cp {
            from,
            to,
            overwrite,
        } => {
            let from = scope.path(&from)?;
            let to = scope.path(&to)?;
            let policy = match overwrite {
                None => pb::OverwritePolicy::Fail,
                Some(OverwriteArg::Replace) => pb::OverwritePolicy::Replace,
                Some(OverwriteArg::Skip) => pb::OverwritePolicy::Skip,
            };
            let response = rpc(
                &scope.client,
                scope
                    .client
                    .files()
                    .copy(CopyRequest {
                        project: scope.id.clone(),
                        from: from.clone(),
                        to: to.clone(),
                        overwrite: policy.into(),
                    })
                    .await,
            )?;
            if json {
                return print_json(&response);
            }
            let mut line = format!(
                "copied {from} to {to}: {} ({})",
                count(response.files, "file"),
                human_size(response.bytes)
            );
            if response.skipped > 0 {
                line.push_str(&format!(", {} skipped (already there)", response.skipped));
            }
            outln!("{line}")?;
            Ok(())
        }
        FilesCommand::Rm {
            path,
            permanent,
            recursive,
        } => remove(&scope, scope.path(&path)?, permanent, recursive).await,
        FilesCommand::Stat { path } => {
            let path = scope.path(&path)?;
            let info = stat(&scope, &path).await?;
            if json {
                return print_json(&pb::StatResponse { info: Some(info) });
            }
            print_info(&info)?;
            Ok(())
        }
        FilesCommand::Find { query, limit } => find(&scope, query, limit).await,
        FilesCommand::Grep(args) => grep(&scope, args).await,
        FilesCommand::Watch { after } => match interrupt {
            Some(interrupt) => watch(&scope, after, interrupt).await,
            None => Ok(()),
        },
    }
}

/// "1 file", "3 files".
/// `n` and the noun, plural unless `n` is 1 ("match" takes "es").
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else if noun.ends_with("ch") || noun.ends_with('s') || noun.ends_with('x') {
        format!("{n} {noun}es")
    } else {
        format!("{n} {noun}s")
    }
}

fn kind(info: &pb::FileInfo) -> pb::FileKind {
    pb::FileKind::try_from(info.kind).unwrap_or(pb::FileKind::Unspecified)
}

/// `ls -l`'s mode column: the type (`d`, `l`, `-`, `?` for devices, sockets
/// and pipes) and the permission bits, with setuid, setgid and sticky shown
/// as `s`/`S` and `t`/`T` the way ls does.
fn mode_string(kind: pb::FileKind, mode: u32) -> String {
    let mut text = String::with_capacity(10);
    text.push(match kind {
        pb::FileKind::Directory => 'd',
        pb::FileKind::Symlink => 'l',
        pb::FileKind::File => '-',
        pb::FileKind::Other | pb::FileKind::Unspecified => '?',
    });
    // (read, write, execute, special bit, special letter) per class.
    let classes = [
        (0o400, 0o200, 0o100, 0o4000, 's'),
        (0o040, 0o020, 0o010, 0o2000, 's'),
        (0o004, 0o002, 0o001, 0o1000, 't'),
    ];
    for (read, write, execute, special, letter) in classes {
        text.push(if mode & read != 0 { 'r' } else { '-' });
        text.push(if mode & write != 0 { 'w' } else { '-' });
        let exec = mode & execute != 0;
        text.push(match (mode & special != 0, exec) {
            (true, true) => letter,
            (true, false) => letter.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    text
}

/// The name column: folders end with `/`, symlinks show their target.
fn display_name(info: &pb::FileInfo) -> String {
    match kind(info) {
        pb::FileKind::Directory => format!("{}/", info.name),
        pb::FileKind::Symlink => format!("{} -> {}", info.name, info.symlink_target),
        _ => info.name.clone(),
    }
}

fn row(info: &pb::FileInfo) -> Vec<String> {
    let size = if kind(info) == pb::FileKind::Directory {
        "-".to_owned()
    } else {
        human_size(info.size)
    };
    vec![
        mode_string(kind(info), info.mode),
        size,
        relative_time(info.modified_unix_ms),
        display_name(info),
    ]
}

const LIST_HEADER: [&str; 4] = ["MODE", "SIZE", "MODIFIED", "NAME"];

async fn list(
    scope: &Scope,
    path: String,
    all: bool,
    ignored: bool,
    sort: SortArg,
    reverse: bool,
) -> Result<(), Failure> {
    let sort = match sort {
        SortArg::Name => pb::SortBy::Name,
        SortArg::Modified => pb::SortBy::Modified,
        SortArg::Size => pb::SortBy::Size,
    };
    let listed = scope
        .client
        .files()
        .list_directory(ListDirectoryRequest {
            project: scope.id.clone(),
            path: path.clone(),
            include_hidden: all,
            include_ignored: ignored,
            sort: sort.into(),
            descending: reverse,
        })
        .await;
    let response = match rpc(&scope.client, listed) {
        Ok(response) => response,
        Err(err) => {
            // `ls FILE` shows the file, as ls does; the agent only lists
            // folders. Anything else keeps the agent's own error.
            match stat(scope, &path).await {
                Ok(info) if kind(&info) != pb::FileKind::Directory => {
                    if scope.json {
                        return print_json(&pb::ListDirectoryResponse {
                            entries: vec![info],
                        });
                    }
                    print_table(&LIST_HEADER, &[row(&info)])?;
                    return Ok(());
                }
                _ => return Err(err),
            }
        }
    };
    if scope.json {
        return print_json(&response);
    }
    // An empty folder prints nothing, as ls does.
    if response.entries.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = response.entries.iter().map(row).collect();
    print_table(&LIST_HEADER, &rows)?;
    Ok(())
}

async fn stat(scope: &Scope, path: &str) -> Result<pb::FileInfo, Failure> {
    let response = rpc(
        &scope.client,
        scope
            .client
            .files()
            .stat(StatRequest {
                project: scope.id.clone(),
                path: path.to_owned(),
            })
            .await,
    )?;
    Ok(response.info.unwrap_or_default())
}

fn print_info(info: &pb::FileInfo) -> Result<(), Failure> {
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    let kind_word = match kind(info) {
        pb::FileKind::File => "file",
        pb::FileKind::Directory => "folder",
        pb::FileKind::Symlink => "symlink",
        pb::FileKind::Other => "other (device, socket or pipe)",
        pb::FileKind::Unspecified => "unknown",
    };
    let path = if info.path.is_empty() {
        "(project root)"
    } else {
        &info.path
    };
    outln!("  path       {path}")?;
    outln!("  name       {}", info.name)?;
    outln!("  kind       {kind_word}")?;
    if kind(info) == pb::FileKind::Symlink {
        outln!("  target     {}", info.symlink_target)?;
    }
    outln!(
        "  size       {} ({})",
        human_size(info.size),
        count(info.size, "byte")
    )?;
    outln!(
        "  modified   {} ({})",
        timestamp(info.modified_unix_ms),
        relative_time(info.modified_unix_ms)
    )?;
    outln!(
        "  mode       {} ({:04o})",
        mode_string(kind(info), info.mode),
        info.mode
    )?;
    outln!("  version    {}", info.version)?;
    outln!("  hidden     {}", yes_no(info.hidden))?;
    outln!("  ignored    {}", yes_no(info.ignored))?;
    Ok(())
}

/// One ReadFile call; prints (or encodes) what it returns and gives back
/// the file's version, so a read in parts can tell that the file changed
/// under it.
async fn read_range(
    scope: &Scope,
    path: &str,
    offset: u64,
    length: u64,
    force: bool,
) -> Result<(u64, String), Failure> {
    let started = scope
        .client
        .files()
        .read_file(ReadFileRequest {
            project: scope.id.clone(),
            path: path.to_owned(),
            offset,
            length,
        })
        .await;
    let mut stream = rpc(&scope.client, started)?;
    let mut read = 0u64;
    let mut version = String::new();
    while let Some(message) = stream
        .message()
        .await
        .map_err(|status| Failure::Client(scope.client.error(status)))?
    {
        if let Some(info) = &message.info {
            version.clone_from(&info.version);
            // Binary bytes on a terminal garble it and can change its
            // settings; a pipe or a file is what was meant.
            if message.binary && !scope.json && !force && std::io::stdout().is_terminal() {
                return Err(Failure::Other(format!(
                    "{path} looks like a binary file; pipe it (`omnipanel files cat {path} > FILE` or `| xxd`) or pass --force to print it here"
                )));
            }
        }
        read += message.data.len() as u64;
        if scope.json {
            print_json(&message)?;
        } else {
            emit_bytes(&message.data)?;
        }
    }
    Ok((read, version))
}

async fn cat(
    scope: &Scope,
    path: &str,
    offset: u64,
    length: Option<u64>,
    force: bool,
) -> Result<(), Failure> {
    let first = read_range(scope, path, offset, length.unwrap_or(0), force).await;
    match first {
        Err(Failure::Client(err)) if err.code() == tonic::Code::ResourceExhausted => {
            // Larger than the agent reads at once (files.max_read_mb): read
            // it in parts, which the agent's message suggests.
            read_in_parts(scope, path, offset, length, force).await
        }
        other => other.map(|_| ()),
    }
}

async fn read_in_parts(
    scope: &Scope,
    path: &str,
    mut offset: u64,
    length: Option<u64>,
    force: bool,
) -> Result<(), Failure> {
    let end = match length {
        Some(length) => offset.saturating_add(length),
        None => stat(scope, path).await?.size,
    };
    let mut expected: Option<String> = None;
    while offset < end {
        let part = READ_PART.min(end - offset);
        let (read, version) = read_range(scope, path, offset, part, force).await?;
        // Parts of different versions would be a file that never existed.
        if expected.as_ref().is_some_and(|v| *v != version) {
            return Err(Failure::Other(format!(
                "{path} changed while it was being read; what was printed is incomplete"
            )));
        }
        expected = Some(version);
        if read == 0 {
            // The file shrank; there is nothing more to read.
            break;
        }
        offset += read;
    }
    Ok(())
}

async fn write(
    scope: &Scope,
    path: String,
    expected_version: Option<String>,
    create_only: bool,
    parents: bool,
) -> Result<(), Failure> {
    let mut stdin = tokio::io::stdin();
    if std::io::stdin().is_terminal() {
        errln!("omnipanel: reading the new contents of {path} from stdin; end with Ctrl-D");
    }
    let mut content = Vec::new();
    // One byte over the limit is enough to know it is too large.
    (&mut stdin)
        .take(MAX_WRITE_BYTES as u64 + 1)
        .read_to_end(&mut content)
        .await
        .map_err(|err| Failure::Other(format!("cannot read stdin: {err}")))?;
    if content.len() > MAX_WRITE_BYTES {
        return Err(Failure::Other(format!(
            "stdin holds more than {} (the most one write may carry)",
            human_size(MAX_WRITE_BYTES as u64)
        )));
    }
    let response = rpc(
        &scope.client,
        scope
            .client
            .files()
            .write_file(WriteFileRequest {
                project: scope.id.clone(),
                path,
                content,
                expected_version: expected_version.unwrap_or_default(),
                create_only,
                create_parents: parents,
            })
            .await,
    )?;
    if scope.json {
        return print_json(&response);
    }
    // Only the version, so `v=$(... | omnipanel files write f)` works.
    outln!("{}", response.info.unwrap_or_default().version)?;
    Ok(())
}

async fn remove(
    scope: &Scope,
    path: String,
    permanent: bool,
    recursive: bool,
) -> Result<(), Failure> {
    if !recursive {
        // The trash takes whole folders, so the agent only asks for
        // "recursive" on permanent deletes; like rm, the CLI wants -r for a
        // folder with contents either way.
        let info = stat(scope, &path).await?;
        if kind(&info) == pb::FileKind::Directory {
            let listing = rpc(
                &scope.client,
                scope
                    .client
                    .files()
                    .list_directory(ListDirectoryRequest {
                        project: scope.id.clone(),
                        path: path.clone(),
                        include_hidden: true,
                        include_ignored: true,
                        ..Default::default()
                    })
                    .await,
            )?;
            if !listing.entries.is_empty() {
                return Err(Failure::Other(format!(
                    "{path} is a folder that is not empty; pass -r to delete it with its contents"
                )));
            }
        }
    }
    let response = rpc(
        &scope.client,
        scope
            .client
            .files()
            .delete(DeleteRequest {
                project: scope.id.clone(),
                path: path.clone(),
                permanent,
                recursive,
            })
            .await,
    )?;
    if scope.json {
        return print_json(&response);
    }
    if permanent {
        outln!("deleted {path}")?;
    } else {
        outln!("moved {path} to the trash")?;
    }
    Ok(())
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

async fn find(scope: &Scope, query: String, limit: u32) -> Result<(), Failure> {
    let response = rpc(
        &scope.client,
        scope
            .client
            .files()
            .find_files(FindFilesRequest {
                project: scope.id.clone(),
                query: query.clone(),
                limit,
            })
            .await,
    )?;
    if scope.json {
        return print_json(&response);
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

async fn grep(scope: &Scope, args: GrepArgs) -> Result<(), Failure> {
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
    let mut stream = rpc(&scope.client, started)?;
    let mut printer = GrepPrinter {
        color: stdout_color(),
        context: before > 0 || after > 0,
        last: None,
    };
    let mut printed = 0u64;
    let mut summary = None;
    while let Some(message) = stream
        .message()
        .await
        .map_err(|status| Failure::Client(scope.client.error(status)))?
    {
        printed += message.matches.len() as u64;
        if scope.json {
            print_json(&message)?;
        } else {
            printer.print(&message.matches)?;
        }
        if message.summary.is_some() {
            summary = message.summary;
        }
    }
    let matches = match &summary {
        Some(summary) => {
            if !scope.json {
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

async fn watch(scope: &Scope, after: Option<u64>, mut interrupt: Signal) -> Result<(), Failure> {
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
    let mut stream = rpc(&scope.client, started)?;
    loop {
        let message = tokio::select! {
            message = stream.message() => message.map_err(|status| Failure::Client(scope.client.error(status)))?,
            _ = interrupt.recv() => return Ok(()),
        };
        let Some(message) = message else {
            errln!("omnipanel: the watch ended (the project was closed or the agent is stopping)");
            return Ok(());
        };
        if scope.json {
            print_json(&message)?;
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
    fn counts_read_as_english() {
        assert_eq!(count(0, "match"), "0 matches");
        assert_eq!(count(1, "match"), "1 match");
        assert_eq!(count(2, "file"), "2 files");
        assert_eq!(count(1, "byte"), "1 byte");
    }

    #[test]
    fn modes_read_like_ls() {
        assert_eq!(mode_string(pb::FileKind::File, 0o644), "-rw-r--r--");
        assert_eq!(mode_string(pb::FileKind::Directory, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(pb::FileKind::Symlink, 0o777), "lrwxrwxrwx");
        assert_eq!(mode_string(pb::FileKind::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(pb::FileKind::File, 0o4644), "-rwSr--r--");
        assert_eq!(mode_string(pb::FileKind::Other, 0o2755), "?rwxr-sr-x");
    }

    #[test]
    fn paths_from_the_project_root_or_the_current_directory() -> Result<(), Failure> {
        let cwd = current_dir()?;
        let root = normalize(&cwd.join(".."));
        let here = inside(&root, &cwd)?.unwrap_or_default();
        assert_eq!(project_path(&root, "src/main.rs")?, "src/main.rs");
        assert_eq!(project_path(&root, ".")?, here);
        assert_eq!(project_path(&root, "./a/../b")?, format!("{here}/b"));
        assert_eq!(project_path(&root, "..")?, "");
        assert!(project_path(&root, "../..").is_err());
        assert!(project_path(&root, "/").is_err());
        Ok(())
    }

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
