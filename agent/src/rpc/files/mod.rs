//! `omnipanel.v1.FileService`: converts requests for the files domain
//! module and streams reads, search results and change batches. A search
//! whose client goes away is cancelled; a read stops at the next chunk.

use crate::rpc::status::{IntoStatus, OrStatus};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use omnipanel_proto::v1 as pb;
use pb::file_service_server::FileService;
use tonic::{Request, Response, Status};

use crate::rpc::streaming::{ResponseStream, spawn_stream};
use omnipanel_core::{
    error::Error,
    feed::{Cursor, Delivery},
    files::{
        batch::{self, BatchOp, StepStatus},
        grep::{self, CaseMode, TextQuery},
        ops::{self, EntryKind, FileEntry, ListOptions, OverwritePolicy, SortBy, WriteOptions},
        watch::{ChangeItem, ChangeKind},
    },
    projects::Projects,
};

/// Largest WriteFile / ApplyBatch request accepted.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024 + 64 * 1024;

/// The FileService implementation.
#[derive(Debug, Clone)]
pub struct FileApi {
    projects: Arc<Projects>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl FileApi {
    /// Serve the files of `projects`; streams end on `shutdown`.
    pub fn new(projects: Arc<Projects>, shutdown: tokio_util::sync::CancellationToken) -> Self {
        Self { projects, shutdown }
    }
}

fn info(entry: FileEntry) -> pb::FileInfo {
    pb::FileInfo {
        path: entry.path,
        name: entry.name,
        kind: match entry.kind {
            EntryKind::File => pb::FileKind::File,
            EntryKind::Directory => pb::FileKind::Directory,
            EntryKind::Symlink => pb::FileKind::Symlink,
            EntryKind::Other => pb::FileKind::Other,
        }
        .into(),
        size: entry.size,
        modified_unix_ms: entry.modified_ms,
        mode: entry.mode,
        version: entry.version,
        hidden: entry.hidden,
        ignored: entry.ignored,
        symlink_target: entry.symlink_target.unwrap_or_default(),
    }
}

fn policy(value: i32) -> OverwritePolicy {
    match pb::OverwritePolicy::try_from(value) {
        Ok(pb::OverwritePolicy::Replace) => OverwritePolicy::Replace,
        Ok(pb::OverwritePolicy::Skip) => OverwritePolicy::Skip,
        _ => OverwritePolicy::Fail,
    }
}

fn change_to_proto(sequence: u64, item: &ChangeItem) -> pb::watch_response::Item {
    use pb::watch_response::Item;
    match item {
        ChangeItem::Batch(changes) => Item::Batch(pb::ChangeBatch {
            sequence,
            changes: changes
                .iter()
                .map(|c| pb::FileChange {
                    kind: match c.kind {
                        ChangeKind::Created => pb::ChangeKind::Created,
                        ChangeKind::Modified => pb::ChangeKind::Modified,
                        ChangeKind::Deleted => pb::ChangeKind::Deleted,
                        ChangeKind::Renamed => pb::ChangeKind::Renamed,
                    }
                    .into(),
                    path: c.path.clone(),
                    from_path: c.from.clone().unwrap_or_default(),
                    is_dir: c.is_dir,
                })
                .collect(),
        }),
        ChangeItem::RepositoryChanged(paths) => Item::RepositoryChanged(pb::RepositoryChanged {
            sequence,
            paths: paths.clone(),
        }),
        ChangeItem::RescanNeeded(reason) => Item::RescanNeeded(pb::RescanNeeded {
            sequence,
            reason: reason.clone(),
        }),
    }
}

#[tonic::async_trait]
impl FileService for FileApi {
    async fn list_directory(
        &self,
        request: Request<pb::ListDirectoryRequest>,
    ) -> Result<Response<pb::ListDirectoryResponse>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let options = ListOptions {
            include_hidden: request.include_hidden,
            include_ignored: request.include_ignored,
            sort: match pb::SortBy::try_from(request.sort) {
                Ok(pb::SortBy::Modified) => SortBy::Modified,
                Ok(pb::SortBy::Size) => SortBy::Size,
                _ => SortBy::Name,
            },
            descending: request.descending,
        };
        let entries = ops::list_directory(&project, &request.path, options)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListDirectoryResponse {
            entries: entries.into_iter().map(info).collect(),
        }))
    }

    async fn stat(
        &self,
        request: Request<pb::StatRequest>,
    ) -> Result<Response<pb::StatResponse>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let entry = ops::stat(&project, &request.path).await.or_status()?;
        Ok(Response::new(pb::StatResponse {
            info: Some(info(entry)),
        }))
    }

    type ReadFileStream = ResponseStream<pb::ReadFileResponse>;

    async fn read_file(
        &self,
        request: Request<pb::ReadFileRequest>,
    ) -> Result<Response<Self::ReadFileStream>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let read = ops::open_read(&project, &request.path, request.offset, request.length)
            .await
            .or_status()?;
        let first = pb::ReadFileResponse {
            info: Some(info(read.entry.clone())),
            binary: read.binary,
            offset: read.offset,
            data: Vec::new(),
        };
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            let reader = tx.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                read.pump(|offset, data| {
                    reader
                        .blocking_send(Ok(pb::ReadFileResponse {
                            info: None,
                            binary: false,
                            offset,
                            data,
                        }))
                        .is_ok()
                })
            })
            .await;
            if let Ok(Err(err)) = outcome {
                let _ = tx
                    .send(Err(
                        Error::internal(format!("reading stopped: {err}")).into_status()
                    ))
                    .await;
            }
        });
        Ok(Response::new(stream))
    }

    async fn write_file(
        &self,
        request: Request<pb::WriteFileRequest>,
    ) -> Result<Response<pb::WriteFileResponse>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let entry = ops::write_file(
            &project,
            "path",
            &request.path,
            request.content,
            WriteOptions {
                create_parents: request.create_parents,
                create_only: request.create_only,
                expected_version: (!request.expected_version.is_empty())
                    .then_some(request.expected_version),
            },
        )
        .await
        .or_status()?;
        Ok(Response::new(pb::WriteFileResponse {
            info: Some(info(entry)),
        }))
    }

    async fn create_directory(
        &self,
        request: Request<pb::CreateDirectoryRequest>,
    ) -> Result<Response<pb::CreateDirectoryResponse>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let entry = ops::create_directory(&project, &request.path)
            .await
            .or_status()?;
        Ok(Response::new(pb::CreateDirectoryResponse {
            info: Some(info(entry)),
        }))
    }

    async fn r#move(
        &self,
        request: Request<pb::MoveRequest>,
    ) -> Result<Response<pb::MoveResponse>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let entry = ops::move_path(&project, &request.from, &request.to, request.overwrite)
            .await
            .or_status()?;
        Ok(Response::new(pb::MoveResponse {
            info: Some(info(entry)),
        }))
    }

    async fn copy(
        &self,
        request: Request<pb::CopyRequest>,
    ) -> Result<Response<pb::CopyResponse>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let stats = ops::copy_path(
            &project,
            &request.from,
            &request.to,
            policy(request.overwrite),
        )
        .await
        .or_status()?;
        Ok(Response::new(pb::CopyResponse {
            files: stats.files,
            skipped: stats.skipped,
            bytes: stats.bytes,
        }))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        ops::delete_path(
            &project,
            &request.path,
            request.permanent,
            request.recursive,
        )
        .await
        .or_status()?;
        Ok(Response::new(pb::DeleteResponse {}))
    }

    async fn apply_batch(
        &self,
        request: Request<pb::ApplyBatchRequest>,
    ) -> Result<Response<pb::ApplyBatchResponse>, Status> {
        use pb::batch_operation::Operation;
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let mut steps = Vec::with_capacity(request.operations.len());
        for (index, op) in request.operations.into_iter().enumerate() {
            let step = match op.operation {
                Some(Operation::Write(w)) => BatchOp::Write {
                    path: w.path,
                    content: w.content,
                    expected_version: (!w.expected_version.is_empty())
                        .then_some(w.expected_version),
                    create_only: w.create_only,
                },
                Some(Operation::CreateDirectory(d)) => BatchOp::CreateDirectory { path: d.path },
                Some(Operation::Move(m)) => BatchOp::Move {
                    from: m.from,
                    to: m.to,
                    overwrite: m.overwrite,
                },
                Some(Operation::Copy(c)) => BatchOp::Copy {
                    from: c.from,
                    to: c.to,
                    policy: policy(c.overwrite),
                },
                Some(Operation::Delete(d)) => BatchOp::Delete {
                    path: d.path,
                    permanent: d.permanent,
                },
                None => {
                    return Err(Error::invalid_argument(
                        format!("operations[{index}]"),
                        "the step names no operation",
                    )
                    .into_status());
                }
            };
            steps.push(step);
        }
        let result = batch::apply(&project, steps).await.or_status()?;
        Ok(Response::new(pb::ApplyBatchResponse {
            success: result.success,
            results: result
                .steps
                .into_iter()
                .enumerate()
                .map(|(index, step)| pb::StepResult {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    status: match step.status {
                        StepStatus::Applied => pb::StepStatus::Applied,
                        StepStatus::Failed => pb::StepStatus::Failed,
                        StepStatus::Undone => pb::StepStatus::Undone,
                        StepStatus::NotRun => pb::StepStatus::NotRun,
                        StepStatus::UndoFailed => pb::StepStatus::UndoFailed,
                    }
                    .into(),
                    error: step.error.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn find_files(
        &self,
        request: Request<pb::FindFilesRequest>,
    ) -> Result<Response<pb::FindFilesResponse>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let limit = match request.limit {
            0 => 50,
            n if n > 1000 => {
                return Err(
                    Error::invalid_argument("limit", "at most 1000 matches per query")
                        .into_status(),
                );
            }
            n => n as usize,
        };
        let result = project
            .find_files(&request.query, limit)
            .await
            .or_status()?;
        Ok(Response::new(pb::FindFilesResponse {
            matches: result
                .matches
                .into_iter()
                .map(|m| pb::FileMatch {
                    path: m.path,
                    score: m.score,
                    positions: m.positions,
                })
                .collect(),
            total_files: result.total_files,
            index_complete: result.complete,
        }))
    }

    type SearchTextStream = ResponseStream<pb::SearchTextResponse>;

    async fn search_text(
        &self,
        request: Request<pb::SearchTextRequest>,
    ) -> Result<Response<Self::SearchTextStream>, Status> {
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let query = TextQuery {
            pattern: request.pattern,
            regex: request.regex,
            case: match pb::CaseMode::try_from(request.case_mode) {
                Ok(pb::CaseMode::Sensitive) => CaseMode::Sensitive,
                Ok(pb::CaseMode::Insensitive) => CaseMode::Insensitive,
                _ => CaseMode::Smart,
            },
            whole_word: request.whole_word,
            include: request.include_globs,
            exclude: request.exclude_globs,
            before: request.before_context as usize,
            after: request.after_context as usize,
            max_results: request.max_results,
            include_hidden: request.include_hidden,
            include_ignored: request.include_ignored,
        };
        let (results, mut receiver) = tokio::sync::mpsc::channel::<Vec<grep::TextMatch>>(32);
        let cancel = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        // A bad pattern or glob is refused before the stream starts.
        grep::validate(&project, &query).or_status()?;
        let search_cancel = cancel.clone();
        let search = tokio::task::spawn_blocking(move || {
            grep::search(&project, &query, search_cancel, |matches| {
                results.blocking_send(matches).is_ok()
            })
        });
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            // Stop the walker as soon as the client is gone.
            let guard = CancelOnDrop(cancel.clone());
            while let Some(matches) = receiver.recv().await {
                let message = pb::SearchTextResponse {
                    matches: matches
                        .into_iter()
                        .map(|m| pb::TextMatch {
                            path: m.path,
                            line_number: m.line_number,
                            text: m.text,
                            ranges: m
                                .ranges
                                .into_iter()
                                .map(|(start, end)| pb::MatchRange { start, end })
                                .collect(),
                            before: m
                                .before
                                .into_iter()
                                .map(|l| pb::ContextLine {
                                    line_number: l.line_number,
                                    text: l.text,
                                })
                                .collect(),
                            after: m
                                .after
                                .into_iter()
                                .map(|l| pb::ContextLine {
                                    line_number: l.line_number,
                                    text: l.text,
                                })
                                .collect(),
                        })
                        .collect(),
                    summary: None,
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            let summary = match search.await {
                Ok(Ok(summary)) => summary,
                Ok(Err(err)) => {
                    let _ = tx.send(Err(err.into_status())).await;
                    return;
                }
                Err(err) => {
                    let _ = tx.send(Err(Error::from(err).into_status())).await;
                    return;
                }
            };
            let _ = tx
                .send(Ok(pb::SearchTextResponse {
                    matches: Vec::new(),
                    summary: Some(pb::SearchSummary {
                        files_searched: summary.files_searched,
                        files_matched: summary.files_matched,
                        matches: summary.matches,
                        truncated: summary.truncated,
                        elapsed_ms: u64::try_from(started.elapsed().as_millis())
                            .unwrap_or(u64::MAX),
                    }),
                }))
                .await;
            drop(guard);
        });
        Ok(Response::new(stream))
    }

    type WatchStream = ResponseStream<pb::WatchResponse>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        use pb::watch_response::Item;
        let request = request.into_inner();
        let project = self.projects.handle(&request.project).await.or_status()?;
        let feed = project.changes().clone();
        let instance_id = feed.instance_id();
        let mut subscription = feed.subscribe(
            Cursor {
                after_sequence: request.after_sequence,
                instance_id: request.instance_id,
            },
            Vec::new(),
        );
        let closed = project.stopped();
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            loop {
                let delivery = tokio::select! {
                    () = closed.cancelled() => return,
                    delivery = subscription.next() => delivery,
                };
                let Some(delivery) = delivery else { return };
                let item = match delivery {
                    Delivery::Event(record) => change_to_proto(record.sequence, &record.payload),
                    Delivery::Gap {
                        after_sequence,
                        resume_sequence,
                        reason,
                    } => Item::Gap(pb::EventGap {
                        after_sequence,
                        resume_sequence,
                        reason: reason.to_owned(),
                        instance_id,
                    }),
                    Delivery::CaughtUp { last_sequence } => Item::CaughtUp(pb::CaughtUp {
                        last_sequence,
                        instance_id,
                    }),
                };
                if tx
                    .send(Ok(pb::WatchResponse { item: Some(item) }))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// Sets the flag when dropped: the search's walker threads check it.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
