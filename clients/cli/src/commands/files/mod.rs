//! `omnipanel files ...`: the files of an open project through the agent's
//! FileService: list, read, write, create folders, move, copy, delete,
//! stat, fuzzy find, content search printed like ripgrep, and a live
//! change feed. Which project is used and how the paths typed relate to it
//! is decided here, once, before any call: the agent only knows
//! project-relative paths, and runs in another directory than the CLI.
//! Searching and watching are in `search`.

mod search;

use std::{io::IsTerminal, path::PathBuf};

use clap::{Args, Subcommand, ValueEnum};
use omnipanel_client::{Client, display};
use omnipanel_proto::v1::{
    self as pb, CopyRequest, CreateDirectoryRequest, DeleteRequest, ListDirectoryRequest,
    MoveRequest, ReadFileRequest, StatRequest, WriteFileRequest,
};
use tokio::{
    io::AsyncReadExt,
    signal::unix::{SignalKind, signal},
};

use crate::{
    Failure,
    output::{Output, emit_bytes, errln, outln},
    project_ref::{choose_project, project_path},
};

/// `omnipanel files ...`
#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Project id or path (default: the open project containing the
    /// current directory).
    #[arg(long, global = true)]
    pub project: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: FilesCommand,
}

/// Orders for `omnipanel files ls`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SortArg {
    /// Folders first, then by name.
    Name,
    /// Newest first.
    Modified,
    /// Largest first.
    Size,
}

/// What `omnipanel files cp` does with existing targets.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverwriteArg {
    /// Replace existing files; folders are merged.
    Replace,
    /// Keep existing files.
    Skip,
}

/// `omnipanel files ...`. Paths are relative to the project root; one
/// that is absolute or starts with ./ or ../ is taken from the current
/// directory instead.
#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// List a folder (default: the project root).
    #[command(visible_alias = "list")]
    Ls {
        /// The folder.
        path: Option<String>,
        /// Include names starting with a dot.
        #[arg(short = 'a', long)]
        all: bool,
        /// Include entries ignored by .gitignore.
        #[arg(long)]
        ignored: bool,
        /// Order of the entries.
        #[arg(long, value_enum, default_value = "name")]
        sort: SortArg,
        /// Reverse the order.
        #[arg(short = 'r', long)]
        reverse: bool,
    },
    /// Print a file's contents (raw bytes).
    Cat {
        /// The file.
        path: String,
        /// First byte to print.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Bytes to print (default: to the end).
        #[arg(long)]
        length: Option<u64>,
        /// Print a binary file to a terminal anyway.
        #[arg(long)]
        force: bool,
    },
    /// Replace a file with what stdin holds, atomically; prints the new
    /// version.
    Write {
        /// The file.
        path: String,
        /// Refuse unless the file is at this version (from `files stat` or
        /// an earlier write): no lost updates.
        #[arg(long, conflicts_with = "create_only")]
        expected_version: Option<String>,
        /// Refuse if the file exists.
        #[arg(long)]
        create_only: bool,
        /// Create missing parent folders.
        #[arg(long)]
        parents: bool,
    },
    /// Create a folder and its parents.
    Mkdir {
        /// The folder.
        path: String,
    },
    /// Rename or move a file or folder.
    Mv {
        /// Source.
        from: String,
        /// Target.
        to: String,
        /// Replace an existing target.
        #[arg(long)]
        overwrite: bool,
    },
    /// Copy a file or folder (recursively).
    Cp {
        /// Source.
        from: String,
        /// Target.
        to: String,
        /// What to do with existing targets (default: fail).
        #[arg(long, value_enum)]
        overwrite: Option<OverwriteArg>,
    },
    /// Move a file or folder to the trash (or delete it for good).
    Rm {
        /// The path.
        path: String,
        /// Delete for good instead of moving to the trash.
        #[arg(long)]
        permanent: bool,
        /// Delete a folder that is not empty, with its contents.
        #[arg(short = 'r', long)]
        recursive: bool,
    },
    /// Describe a file or folder (a symlink itself, not its target).
    Stat {
        /// The path.
        path: String,
    },
    /// Find files by fuzzy name, e.g. `agmain` for agent/src/main.rs; best
    /// first.
    Find {
        /// The query; empty lists files.
        query: String,
        /// Most matches to print (at most 1000).
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: u32,
    },
    /// Search file contents, printing `path:line:text` like ripgrep. Exits
    /// with 1 when nothing matched.
    Grep(search::GrepArgs),
    /// Print changes to the project's files as they happen (Ctrl-C stops).
    Watch {
        /// First replay the changes after this sequence number.
        #[arg(long)]
        after: Option<u64>,
    },
}

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
    out: Output,
}

impl Scope {
    /// The project-relative path for a path typed on the command line.
    fn path(&self, arg: &str) -> Result<String, Failure> {
        project_path(&self.root, arg)
    }
}

/// `omnipanel files ...`
pub async fn files(args: FilesArgs, out: Output) -> Result<(), Failure> {
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
        out,
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
            let response = scope
                .client
                .call(
                    scope
                        .client
                        .files()
                        .create_directory(CreateDirectoryRequest {
                            project: scope.id.clone(),
                            path,
                        }),
                )
                .await?;
            if out.is_json() {
                return out.json(&response);
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
            let response = scope
                .client
                .call(scope.client.files().r#move(MoveRequest {
                    project: scope.id.clone(),
                    from: from.clone(),
                    to,
                    overwrite,
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
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
            let response = scope
                .client
                .call(scope.client.files().copy(CopyRequest {
                    project: scope.id.clone(),
                    from: from.clone(),
                    to: to.clone(),
                    overwrite: policy.into(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            let mut line = format!(
                "copied {from} to {to}: {} ({})",
                count(response.files, "file"),
                display::bytes(response.bytes)
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
            if out.is_json() {
                return out.json(&pb::StatResponse { info: Some(info) });
            }
            print_info(&info)?;
            Ok(())
        }
        FilesCommand::Find { query, limit } => search::find(&scope, query, limit).await,
        FilesCommand::Grep(args) => search::grep(&scope, args).await,
        FilesCommand::Watch { after } => match interrupt {
            Some(interrupt) => search::watch(&scope, after, interrupt).await,
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
        display::bytes(info.size)
    };
    vec![
        mode_string(kind(info), info.mode),
        size,
        display::relative_time(info.modified_unix_ms),
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
    let response = match scope.client.answer(listed) {
        Ok(response) => response,
        Err(err) => {
            // `ls FILE` shows the file, as ls does; the agent only lists
            // folders. Anything else keeps the agent's own error.
            match stat(scope, &path).await {
                Ok(info) if kind(&info) != pb::FileKind::Directory => {
                    if scope.out.is_json() {
                        return scope.out.json(&pb::ListDirectoryResponse {
                            entries: vec![info],
                        });
                    }
                    scope.out.table(&LIST_HEADER, &[row(&info)])?;
                    return Ok(());
                }
                _ => return Err(err.into()),
            }
        }
    };
    if scope.out.is_json() {
        return scope.out.json(&response);
    }
    // An empty folder prints nothing, as ls does.
    if response.entries.is_empty() {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = response.entries.iter().map(row).collect();
    scope.out.table(&LIST_HEADER, &rows)?;
    Ok(())
}

async fn stat(scope: &Scope, path: &str) -> Result<pb::FileInfo, Failure> {
    let response = scope
        .client
        .call(scope.client.files().stat(StatRequest {
            project: scope.id.clone(),
            path: path.to_owned(),
        }))
        .await?;
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
        display::bytes(info.size),
        count(info.size, "byte")
    )?;
    outln!(
        "  modified   {} ({})",
        display::timestamp(info.modified_unix_ms),
        display::relative_time(info.modified_unix_ms)
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
    let mut stream = scope.client.stream(started)?;
    let mut read = 0u64;
    let mut version = String::new();
    while let Some(message) = stream.message().await? {
        if let Some(info) = &message.info {
            version.clone_from(&info.version);
            // Binary bytes on a terminal garble it and can change its
            // settings; a pipe or a file is what was meant.
            if message.binary && !scope.out.is_json() && !force && std::io::stdout().is_terminal() {
                return Err(Failure::Other(format!(
                    "{path} looks like a binary file; pipe it (`omnipanel files cat {path} > FILE` or `| xxd`) or pass --force to print it here"
                )));
            }
        }
        read += message.data.len() as u64;
        if scope.out.is_json() {
            scope.out.json(&message)?;
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
        Err(Failure::Client(err)) if err.is_limit_reached() => {
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
            display::bytes(MAX_WRITE_BYTES as u64)
        )));
    }
    let response = scope
        .client
        .call(scope.client.files().write_file(WriteFileRequest {
            project: scope.id.clone(),
            path,
            content,
            expected_version: expected_version.unwrap_or_default(),
            create_only,
            create_parents: parents,
        }))
        .await?;
    if scope.out.is_json() {
        return scope.out.json(&response);
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
            let listing = scope
                .client
                .call(scope.client.files().list_directory(ListDirectoryRequest {
                    project: scope.id.clone(),
                    path: path.clone(),
                    include_hidden: true,
                    include_ignored: true,
                    ..Default::default()
                }))
                .await?;
            if !listing.entries.is_empty() {
                return Err(Failure::Other(format!(
                    "{path} is a folder that is not empty; pass -r to delete it with its contents"
                )));
            }
        }
    }
    let response = scope
        .client
        .call(scope.client.files().delete(DeleteRequest {
            project: scope.id.clone(),
            path: path.clone(),
            permanent,
            recursive,
        }))
        .await?;
    if scope.out.is_json() {
        return scope.out.json(&response);
    }
    if permanent {
        outln!("deleted {path}")?;
    } else {
        outln!("moved {path} to the trash")?;
    }
    Ok(())
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
}
