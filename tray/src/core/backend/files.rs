//! The backend side of [`FilesCommand`]s: the agent calls they make, each
//! reporting through the [`Sink`] as [`FilesUpdate`]s. One-shot commands
//! (a folder, FindFiles, the preview, opening the editor, copying dropped
//! files in) run in [`run`]; the two streams that must be stoppable (the
//! project's `Watch`, and SearchText) are kept by [`Streams`], which the
//! session owns so that they end with it and a stop reaches them.

use std::path::{Path, PathBuf};

use omnipanel_client::{
    Client,
    proto::v1::{
        ChangeBatch, CopyRequest, FindFilesRequest, ListDirectoryRequest, OverwritePolicy,
        ReadFileRequest, SearchTextRequest, SortBy, WatchRequest, WriteFileRequest,
        watch_response::Item,
    },
};
use tokio::task::JoinHandle;

use super::{Sink, notice};
use crate::core::{
    launch,
    state::Update,
    workspace::files::{FilesCommand, FilesUpdate, Listing, PREVIEW_LIMIT, Preview, parent_dir},
};

/// The most matches a FindFiles answer lists.
const FIND_LIMIT: u32 = 50;
/// The most matching lines one text search shows.
const SEARCH_LIMIT: u64 = 1000;
/// The largest file WriteFile takes in one call.
const WRITE_LIMIT: u64 = 64 << 20;

/// Run one command; `Ok` carries the line a person reads (may be empty).
pub(super) async fn run(
    client: &Client,
    command: FilesCommand,
    sink: &Sink,
) -> Result<String, String> {
    match command {
        FilesCommand::List { project, dir } => {
            let entries = list(client, &project, &dir).await;
            let result = entries
                .as_ref()
                .map(|_| String::new())
                .map_err(Clone::clone);
            sink(Update::Files(FilesUpdate::Listing {
                project,
                dir,
                entries,
                refresh: false,
            }));
            result
        }
        FilesCommand::Find {
            project,
            query,
            tag,
        } => {
            let answer = client
                .files()
                .find_files(FindFilesRequest {
                    project: project.clone(),
                    query,
                    limit: FIND_LIMIT,
                })
                .await
                .map(|r| r.into_inner().matches)
                .map_err(|status| client.error(status).to_string());
            let result = answer.as_ref().map(|_| String::new()).map_err(Clone::clone);
            sink(Update::Files(FilesUpdate::Found {
                project,
                tag,
                matches: answer,
            }));
            result
        }
        FilesCommand::Preview {
            project,
            path,
            highlight,
        } => {
            let (text, truncated) = match read_text(client, &project, &path).await {
                Ok((text, truncated)) => (Ok(text), truncated),
                Err(err) => (Err(err), false),
            };
            let result = text.as_ref().map(|_| String::new()).map_err(Clone::clone);
            sink(Update::Files(FilesUpdate::Preview {
                project,
                preview: Preview {
                    path,
                    text,
                    truncated,
                    highlight,
                },
            }));
            result
        }
        FilesCommand::OpenInEditor { path, line } => {
            // Starting a program forks and execs: off the executor.
            let shown = path.display().to_string();
            tokio::task::spawn_blocking(move || launch::open_in_editor(&path, line))
                .await
                .map_err(|err| format!("cannot start the editor: {err}"))??;
            Ok(format!("opened {shown} in your editor"))
        }
        FilesCommand::CopyIn {
            project,
            root,
            dir,
            sources,
        } => copy_in(client, &project, &root, &dir, &sources, sink).await,
        // Streams are kept by `Streams`; nothing to do here.
        FilesCommand::Watch(_) | FilesCommand::Search { .. } | FilesCommand::StopSearch => {
            Ok(String::new())
        }
    }
}

/// One folder's entries: hidden files shown, ignored ones left out (the
/// tree honours .gitignore), folders first.
async fn list(client: &Client, project: &str, dir: &str) -> Listing {
    client
        .files()
        .list_directory(ListDirectoryRequest {
            project: project.to_owned(),
            path: dir.to_owned(),
            include_hidden: true,
            include_ignored: false,
            sort: SortBy::Name.into(),
            descending: false,
        })
        .await
        .map(|r| r.into_inner().entries)
        .map_err(|status| client.error(status).to_string())
}

/// The first [`PREVIEW_LIMIT`] bytes of a file as text, and whether there
/// was more.
async fn read_text(client: &Client, project: &str, path: &str) -> Result<(String, bool), String> {
    let err = |status: tonic::Status| client.error(status).to_string();
    let mut stream = client
        .files()
        .read_file(ReadFileRequest {
            project: project.to_owned(),
            path: path.to_owned(),
            offset: 0,
            length: PREVIEW_LIMIT,
        })
        .await
        .map_err(err)?
        .into_inner();
    let mut data = Vec::new();
    let mut size = 0;
    while let Some(chunk) = stream.message().await.map_err(err)? {
        if chunk.binary {
            return Err(format!("{path} is a binary file: open it in your editor"));
        }
        if let Some(info) = &chunk.info {
            size = info.size;
        }
        data.extend_from_slice(&chunk.data);
    }
    let truncated = size > data.len() as u64;
    Ok((String::from_utf8_lossy(&data).into_owned(), truncated))
}

/// Copy dropped files into `dir`: through Copy when a file is inside the
/// project already, else read here and written with WriteFile. A name that
/// exists is refused, never overwritten.
async fn copy_in(
    client: &Client,
    project: &str,
    root: &Path,
    dir: &str,
    sources: &[PathBuf],
    sink: &Sink,
) -> Result<String, String> {
    let root = tokio::fs::canonicalize(root)
        .await
        .unwrap_or_else(|_| root.to_path_buf());
    let place = if dir.is_empty() {
        "the project's root".to_owned()
    } else {
        dir.to_owned()
    };
    let mut copied = Vec::new();
    let mut errors = Vec::new();
    for source in sources {
        let Some(name) = source.file_name().and_then(|n| n.to_str()) else {
            errors.push(format!("{}: not a file name", source.display()));
            continue;
        };
        let target = if dir.is_empty() {
            name.to_owned()
        } else {
            format!("{dir}/{name}")
        };
        match copy_one(client, project, &root, source, &target).await {
            Ok(()) => copied.push(name.to_owned()),
            Err(Refusal::Exists) => {
                errors.push(format!("{name} already exists in {place}; not overwritten"));
            }
            Err(Refusal::Other(err)) => errors.push(format!("{name}: {err}")),
        }
    }
    // Watch says the same; reading again keeps the tree right without it.
    let entries = list(client, project, dir).await;
    sink(Update::Files(FilesUpdate::Listing {
        project: project.to_owned(),
        dir: dir.to_owned(),
        entries,
        refresh: true,
    }));
    if errors.is_empty() {
        Ok(format!("copied {} into {place}", copied.join(", ")))
    } else {
        Err(errors.join("; "))
    }
}

/// Why one dropped file was not copied.
enum Refusal {
    /// The target name is taken.
    Exists,
    /// Anything else, as a person reads it.
    Other(String),
}

async fn copy_one(
    client: &Client,
    project: &str,
    root: &Path,
    source: &Path,
    target: &str,
) -> Result<(), Refusal> {
    let refusal = |status: tonic::Status| {
        if status.code() == tonic::Code::AlreadyExists {
            Refusal::Exists
        } else {
            Refusal::Other(client.error(status).to_string())
        }
    };
    let local = |err: std::io::Error| Refusal::Other(err.to_string());
    let source = tokio::fs::canonicalize(source).await.map_err(local)?;
    if let Ok(inside) = source.strip_prefix(root) {
        client
            .files()
            .copy(CopyRequest {
                project: project.to_owned(),
                from: inside.to_string_lossy().into_owned(),
                to: target.to_owned(),
                overwrite: OverwritePolicy::Fail.into(),
            })
            .await
            .map_err(refusal)?;
        return Ok(());
    }
    let meta = tokio::fs::metadata(&source).await.map_err(local)?;
    if !meta.is_file() {
        return Err(Refusal::Other(
            "only files can be dropped from outside the project".to_owned(),
        ));
    }
    if meta.len() > WRITE_LIMIT {
        return Err(Refusal::Other(
            "larger than 64 MiB: copy it with your file manager".to_owned(),
        ));
    }
    let content = tokio::fs::read(&source).await.map_err(local)?;
    client
        .files()
        .write_file(WriteFileRequest {
            project: project.to_owned(),
            path: target.to_owned(),
            content,
            expected_version: String::new(),
            create_only: true,
            create_parents: false,
        })
        .await
        .map_err(refusal)?;
    Ok(())
}

/// The stoppable streams: the project watched and the running text search.
/// Dropping it (the session ending) stops both; the project watched is
/// remembered so the next session resumes it.
#[derive(Default)]
pub(super) struct Streams {
    watching: Option<String>,
    watch: Option<JoinHandle<()>>,
    search: Option<(JoinHandle<()>, String, u64)>,
}

impl Streams {
    /// Whether `command` is one of the streams kept here.
    pub(super) fn handles(command: &FilesCommand) -> bool {
        matches!(
            command,
            FilesCommand::Watch(_) | FilesCommand::Search { .. } | FilesCommand::StopSearch
        )
    }

    /// Start, replace or stop a stream.
    pub(super) fn run(&mut self, client: &Client, command: FilesCommand, sink: &Sink) {
        match command {
            FilesCommand::Watch(project) => {
                self.watching = project;
                self.resume(client, sink);
            }
            FilesCommand::Search {
                project,
                pattern,
                tag,
            } => {
                self.stop_search(sink);
                let task = tokio::spawn(search(
                    client.clone(),
                    project.clone(),
                    pattern,
                    tag,
                    sink.clone(),
                ));
                self.search = Some((task, project, tag));
            }
            FilesCommand::StopSearch => {
                self.stop_search(sink);
                notice(sink, "files:search", Ok("search stopped".to_owned()));
            }
            _ => {}
        }
    }

    /// (Re)open the watch of the project wanted, on this connection.
    pub(super) fn resume(&mut self, client: &Client, sink: &Sink) {
        if let Some(task) = self.watch.take() {
            task.abort();
        }
        self.watch = self
            .watching
            .clone()
            .map(|project| tokio::spawn(watch(client.clone(), project, sink.clone())));
    }

    /// Remember what is wanted without a connection (it opens on the next).
    pub(super) fn want(&mut self, command: &FilesCommand) {
        if let FilesCommand::Watch(project) = command {
            self.watching.clone_from(project);
        }
    }

    /// Stop both streams (the connection ended); the watch wanted stays.
    pub(super) fn pause(&mut self) {
        if let Some(task) = self.watch.take() {
            task.abort();
        }
        if let Some((task, _, _)) = self.search.take() {
            task.abort();
        }
    }

    fn stop_search(&mut self, sink: &Sink) {
        if let Some((task, project, tag)) = self.search.take()
            && !task.is_finished()
        {
            task.abort();
            sink(Update::Files(FilesUpdate::SearchDone {
                project,
                tag,
                outcome: Err("stopped".to_owned()),
            }));
        }
    }
}

impl Drop for Streams {
    fn drop(&mut self) {
        self.pause();
    }
}

/// Stream a text search's matches as they come; end with the summary.
async fn search(client: Client, project: String, pattern: String, tag: u64, sink: Sink) {
    let done = |outcome| {
        sink(Update::Files(FilesUpdate::SearchDone {
            project: project.clone(),
            tag,
            outcome,
        }));
    };
    let request = SearchTextRequest {
        project: project.clone(),
        pattern,
        max_results: SEARCH_LIMIT,
        ..Default::default()
    };
    let mut stream = match client.files().search_text(request).await {
        Ok(s) => s.into_inner(),
        Err(status) => {
            let err = client.error(status).to_string();
            done(Err(err.clone()));
            notice(&sink, "files:search", Err(err));
            return;
        }
    };
    loop {
        match stream.message().await {
            Ok(Some(response)) => {
                if !response.matches.is_empty() {
                    sink(Update::Files(FilesUpdate::SearchMatches {
                        project: project.clone(),
                        tag,
                        matches: response.matches,
                    }));
                }
                if let Some(summary) = response.summary {
                    done(Ok(summary));
                    notice(&sink, "files:search", Ok(String::new()));
                    return;
                }
            }
            Ok(None) => {
                done(Ok(Default::default()));
                notice(&sink, "files:search", Ok(String::new()));
                return;
            }
            Err(status) => {
                let err = client.error(status).to_string();
                done(Err(err.clone()));
                notice(&sink, "files:search", Err(err));
                return;
            }
        }
    }
}

/// Follow a project's changes, re-reading the folders they touch.
async fn watch(client: Client, project: String, sink: Sink) {
    let request = WatchRequest {
        project: project.clone(),
        after_sequence: None,
        instance_id: 0,
    };
    let mut stream = match client.files().watch(request).await {
        Ok(s) => s.into_inner(),
        Err(status) => {
            notice(&sink, "files:tree", Err(client.error(status).to_string()));
            return;
        }
    };
    // Subscribed: now re-read what the tree shows, so nothing changed while
    // nobody watched (another tab, a lost connection) stays out of date.
    sink(Update::Files(FilesUpdate::Rescan {
        project: project.clone(),
    }));
    loop {
        match stream.message().await {
            Ok(Some(response)) => match response.item {
                Some(Item::Batch(batch)) => refresh(&client, &project, &batch, &sink).await,
                Some(Item::RescanNeeded(_) | Item::Gap(_)) => {
                    sink(Update::Files(FilesUpdate::Rescan {
                        project: project.clone(),
                    }));
                }
                Some(Item::RepositoryChanged(_) | Item::CaughtUp(_)) | None => {}
            },
            Ok(None) => return,
            Err(status) => {
                notice(&sink, "files:tree", Err(client.error(status).to_string()));
                return;
            }
        }
    }
}

/// Re-read each folder a batch of changes touched (the state keeps only
/// those it shows).
async fn refresh(client: &Client, project: &str, batch: &ChangeBatch, sink: &Sink) {
    let mut dirs: Vec<&str> = batch
        .changes
        .iter()
        .flat_map(|c| {
            let from = (!c.from_path.is_empty()).then(|| parent_dir(&c.from_path));
            std::iter::once(parent_dir(&c.path)).chain(from)
        })
        .collect();
    dirs.sort_unstable();
    dirs.dedup();
    for dir in dirs {
        let entries = list(client, project, dir).await;
        sink(Update::Files(FilesUpdate::Listing {
            project: project.to_owned(),
            dir: dir.to_owned(),
            entries,
            refresh: true,
        }));
    }
}
