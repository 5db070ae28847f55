//! `omnipanel.v1.FileService`: a thin adapter over the [`Files`] facade
//! (conversions in `convert.rs`) that streams reads, search results and
//! change batches. A search whose client goes away is cancelled; a read
//! stops at the next chunk.

pub mod convert;

use std::sync::Arc;

use omnipanel_proto::v1 as pb;
use pb::file_service_server::FileService;
use tonic::{Request, Response, Status, metadata::MetadataMap};

use crate::rpc::{
    convert::{FromProto, IntoProto, TryFromProto},
    guard::{Guard, file_act},
    status::{IntoStatus, OrStatus},
    streaming::{ResponseStream, spawn_stream},
};
use convert::FeedDelivery;
use omnipanel_core::{
    access::ConfirmKind,
    feed::Cursor,
    files::{
        Files,
        batch::BatchOp,
        grep::TextQuery,
        ops::{EntryKind, ListOptions, OverwritePolicy, WriteOptions},
    },
    tokens::Caller,
};

/// Largest WriteFile / ApplyBatch request accepted.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024 + 64 * 1024;

/// The FileService implementation.
#[derive(Debug, Clone)]
pub struct FileApi {
    files: Arc<Files>,
    guard: Guard,
    shutdown: tokio_util::sync::CancellationToken,
}

impl FileApi {
    /// Serve `files`; streams end on `shutdown`.
    pub fn new(
        files: Arc<Files>,
        guard: Guard,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            files,
            guard,
            shutdown,
        }
    }

    /// Whether `path` in `project` is a folder (false when it is not there).
    async fn is_folder(&self, project: &str, path: &str) -> bool {
        matches!(self.files.stat(project, path).await, Ok(entry) if entry.kind == EntryKind::Directory)
    }

    /// The most serious act among a batch's steps (permanent deletion, then
    /// deleting a folder, then overwriting), and every destructive step as
    /// the target a confirmation binds to.
    async fn batch_act(
        &self,
        project: &str,
        steps: &[BatchOp],
    ) -> (Option<(ConfirmKind, String)>, String) {
        let mut acts = Vec::new();
        for step in steps {
            let act = match step {
                BatchOp::Delete { path, permanent } => {
                    self.deletion(project, path, *permanent).await
                }
                BatchOp::Move {
                    from,
                    to,
                    overwrite: true,
                } if self.exists(project, to).await => {
                    Some((ConfirmKind::Overwrite, format!("move {from} over {to}")))
                }
                BatchOp::Copy {
                    from,
                    to,
                    policy: OverwritePolicy::Replace,
                } if self.exists(project, to).await => {
                    Some((ConfirmKind::Overwrite, format!("copy {from} over {to}")))
                }
                _ => None,
            };
            acts.extend(act);
        }
        let target = acts
            .iter()
            .map(|(_, summary)| summary.clone())
            .collect::<Vec<_>>()
            .join("; ");
        let most_serious = acts.iter().map(|(kind, _)| *kind).min();
        let summary = match acts.len() {
            0 | 1 => acts
                .first()
                .map(|(_, summary)| summary.clone())
                .unwrap_or_default(),
            n => format!("a batch of {} steps: {target}", n),
        };
        (
            most_serious.map(|kind| (kind, summary)),
            format!("batch={target}"),
        )
    }

    /// Whether something is at `path` in `project`.
    async fn exists(&self, project: &str, path: &str) -> bool {
        self.files.stat(project, path).await.is_ok()
    }

    /// The act a deletion amounts to, if it needs confirming.
    async fn deletion(
        &self,
        project: &str,
        path: &str,
        permanent: bool,
    ) -> Option<(ConfirmKind, String)> {
        let folder = self.is_folder(project, path).await;
        let what = if folder { "the folder" } else { "" };
        if permanent {
            Some((
                ConfirmKind::DeletePermanently,
                format!("delete {what} {path} for good"),
            ))
        } else if folder {
            Some((
                ConfirmKind::DeleteFolder,
                format!("delete the folder {path} (to the trash)"),
            ))
        } else {
            None
        }
    }

    /// Ask the user before a client other than the owner does `kind` to
    /// `target` in `project`.
    async fn confirm(
        &self,
        metadata: &MetadataMap,
        caller: &Caller,
        project: &str,
        act: Option<(ConfirmKind, String)>,
        target: String,
        method: &str,
    ) -> Result<(), Status> {
        let Some((kind, summary)) = act else {
            return Ok(());
        };
        let root = self.guard.root(caller, project).await?;
        self.guard.confirm(
            metadata,
            caller,
            file_act(kind, method, root, target, summary.replace("  ", " ")),
        )
    }
}

#[tonic::async_trait]
impl FileService for FileApi {
    async fn list_directory(
        &self,
        request: Request<pb::ListDirectoryRequest>,
    ) -> Result<Response<pb::ListDirectoryResponse>, Status> {
        self.guard
            .project(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        let options = ListOptions::from_proto(&request);
        let entries = self
            .files
            .list(&request.project, &request.path, options)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListDirectoryResponse {
            entries: entries.into_proto(),
        }))
    }

    async fn stat(
        &self,
        request: Request<pb::StatRequest>,
    ) -> Result<Response<pb::StatResponse>, Status> {
        self.guard
            .project(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        let entry = self
            .files
            .stat(&request.project, &request.path)
            .await
            .or_status()?;
        Ok(Response::new(pb::StatResponse {
            info: Some(entry.into_proto()),
        }))
    }

    type ReadFileStream = ResponseStream<pb::ReadFileResponse>;

    async fn read_file(
        &self,
        request: Request<pb::ReadFileRequest>,
    ) -> Result<Response<Self::ReadFileStream>, Status> {
        self.guard
            .project(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        let mut reader = self
            .files
            .read(
                &request.project,
                &request.path,
                request.offset,
                request.length,
            )
            .await
            .or_status()?;
        let first = pb::ReadFileResponse {
            info: Some(reader.entry.clone().into_proto()),
            binary: reader.binary,
            offset: reader.offset,
            data: Vec::new(),
        };
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            if tx.send(Ok(first)).await.is_err() {
                return;
            }
            while let Some(chunk) = reader.next_chunk().await {
                let message = chunk
                    .map(|(offset, data)| pb::ReadFileResponse {
                        info: None,
                        binary: false,
                        offset,
                        data,
                    })
                    .map_err(IntoStatus::into_status);
                if tx.send(message).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(stream))
    }

    async fn write_file(
        &self,
        request: Request<pb::WriteFileRequest>,
    ) -> Result<Response<pb::WriteFileResponse>, Status> {
        self.guard
            .project(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        let options = WriteOptions::from_proto(&request);
        let entry = self
            .files
            .write(&request.project, &request.path, request.content, options)
            .await
            .or_status()?;
        Ok(Response::new(pb::WriteFileResponse {
            info: Some(entry.into_proto()),
        }))
    }

    async fn create_directory(
        &self,
        request: Request<pb::CreateDirectoryRequest>,
    ) -> Result<Response<pb::CreateDirectoryResponse>, Status> {
        self.guard
            .project(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        let entry = self
            .files
            .create_directory(&request.project, &request.path)
            .await
            .or_status()?;
        Ok(Response::new(pb::CreateDirectoryResponse {
            info: Some(entry.into_proto()),
        }))
    }

    async fn r#move(
        &self,
        request: Request<pb::MoveRequest>,
    ) -> Result<Response<pb::MoveResponse>, Status> {
        let caller = self
            .guard
            .project(&request, &request.get_ref().project)
            .await?;
        let ask = request.get_ref();
        if !caller.is_owner() && ask.overwrite && self.exists(&ask.project, &ask.to).await {
            let act = Some((
                ConfirmKind::Overwrite,
                format!("move {} over {}", ask.from, ask.to),
            ));
            let target = format!("from={} to={}", ask.from, ask.to);
            self.confirm(
                request.metadata(),
                &caller,
                &ask.project,
                act,
                target,
                "FileService/Move",
            )
            .await?;
        }
        let request = request.into_inner();
        let entry = self
            .files
            .move_path(
                &request.project,
                &request.from,
                &request.to,
                request.overwrite,
            )
            .await
            .or_status()?;
        Ok(Response::new(pb::MoveResponse {
            info: Some(entry.into_proto()),
        }))
    }

    async fn copy(
        &self,
        request: Request<pb::CopyRequest>,
    ) -> Result<Response<pb::CopyResponse>, Status> {
        let caller = self
            .guard
            .project(&request, &request.get_ref().project)
            .await?;
        let ask = request.get_ref();
        if !caller.is_owner()
            && OverwritePolicy::from_proto(ask.overwrite()) == OverwritePolicy::Replace
            && self.exists(&ask.project, &ask.to).await
        {
            let act = Some((
                ConfirmKind::Overwrite,
                format!("copy {} over {}", ask.from, ask.to),
            ));
            let target = format!("from={} to={}", ask.from, ask.to);
            self.confirm(
                request.metadata(),
                &caller,
                &ask.project,
                act,
                target,
                "FileService/Copy",
            )
            .await?;
        }
        let request = request.into_inner();
        let policy = OverwritePolicy::from_proto(request.overwrite());
        let stats = self
            .files
            .copy(&request.project, &request.from, &request.to, policy)
            .await
            .or_status()?;
        Ok(Response::new(stats.into_proto()))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let caller = self
            .guard
            .project(&request, &request.get_ref().project)
            .await?;
        let ask = request.get_ref();
        if !caller.is_owner() {
            let act = self.deletion(&ask.project, &ask.path, ask.permanent).await;
            let target = format!("path={} permanent={}", ask.path, ask.permanent);
            self.confirm(
                request.metadata(),
                &caller,
                &ask.project,
                act,
                target,
                "FileService/Delete",
            )
            .await?;
        }
        let request = request.into_inner();
        self.files
            .delete(
                &request.project,
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
        let caller = self
            .guard
            .project(&request, &request.get_ref().project)
            .await?;
        let (metadata, _, request) = request.into_parts();
        let project = request.project;
        let steps = Vec::<BatchOp>::try_from_proto(request.operations).or_status()?;
        if !caller.is_owner() {
            let (act, target) = self.batch_act(&project, &steps).await;
            self.confirm(
                &metadata,
                &caller,
                &project,
                act,
                target,
                "FileService/ApplyBatch",
            )
            .await?;
        }
        let result = self.files.apply_batch(&project, steps).await.or_status()?;
        Ok(Response::new(result.into_proto()))
    }

    async fn find_files(
        &self,
        request: Request<pb::FindFilesRequest>,
    ) -> Result<Response<pb::FindFilesResponse>, Status> {
        self.guard
            .project(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        let result = self
            .files
            .find(&request.project, &request.query, request.limit)
            .await
            .or_status()?;
        Ok(Response::new(result.into_proto()))
    }

    type SearchTextStream = ResponseStream<pb::SearchTextResponse>;

    async fn search_text(
        &self,
        request: Request<pb::SearchTextRequest>,
    ) -> Result<Response<Self::SearchTextStream>, Status> {
        self.guard
            .project(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        let project = request.project.clone();
        let query = TextQuery::from_proto(request);
        // A bad pattern or glob is refused here, before the stream starts.
        let mut search = self.files.search_text(&project, query).await.or_status()?;
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            // Returning early drops the search, which stops its walker.
            while let Some(matches) = search.next_matches().await {
                let message = pb::SearchTextResponse {
                    matches: matches.into_proto(),
                    summary: None,
                };
                if tx.send(Ok(message)).await.is_err() {
                    return;
                }
            }
            let _ = tx
                .send(match search.finish().await {
                    Ok(outcome) => Ok(pb::SearchTextResponse {
                        matches: Vec::new(),
                        summary: Some(outcome.into_proto()),
                    }),
                    Err(err) => Err(err.into_status()),
                })
                .await;
        });
        Ok(Response::new(stream))
    }

    type WatchStream = ResponseStream<pb::WatchResponse>;

    async fn watch(
        &self,
        request: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.guard
            .project(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        let mut feed = self
            .files
            .changes(&request.project, Cursor::from_proto(&request))
            .await
            .or_status()?;
        let stream = spawn_stream(self.shutdown.clone(), move |tx| async move {
            while let Some(delivery) = feed.next().await {
                let item = FeedDelivery {
                    instance_id: feed.instance_id,
                    delivery,
                }
                .into_proto();
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
