//! `omnipanel.v1.FileService`: a thin adapter over the [`Files`] facade
//! (conversions in `convert.rs`) that streams reads, search results and
//! change batches. A search whose client goes away is cancelled; a read
//! stops at the next chunk.

pub mod convert;

use std::sync::Arc;

use omnipanel_proto::v1 as pb;
use pb::file_service_server::FileService;
use tonic::{Request, Response, Status};

use crate::rpc::{
    convert::{FromProto, IntoProto, TryFromProto},
    status::{IntoStatus, OrStatus},
    streaming::{ResponseStream, spawn_stream},
};
use convert::FeedDelivery;
use omnipanel_core::{
    feed::Cursor,
    files::{
        Files,
        batch::BatchOp,
        grep::TextQuery,
        ops::{ListOptions, OverwritePolicy, WriteOptions},
    },
};

/// Largest WriteFile / ApplyBatch request accepted.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024 + 64 * 1024;

/// The FileService implementation.
#[derive(Debug, Clone)]
pub struct FileApi {
    files: Arc<Files>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl FileApi {
    /// Serve `files`; streams end on `shutdown`.
    pub fn new(files: Arc<Files>, shutdown: tokio_util::sync::CancellationToken) -> Self {
        Self { files, shutdown }
    }
}

#[tonic::async_trait]
impl FileService for FileApi {
    async fn list_directory(
        &self,
        request: Request<pb::ListDirectoryRequest>,
    ) -> Result<Response<pb::ListDirectoryResponse>, Status> {
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
        let request = request.into_inner();
        let steps = Vec::<BatchOp>::try_from_proto(request.operations).or_status()?;
        let result = self
            .files
            .apply_batch(&request.project, steps)
            .await
            .or_status()?;
        Ok(Response::new(result.into_proto()))
    }

    async fn find_files(
        &self,
        request: Request<pb::FindFilesRequest>,
    ) -> Result<Response<pb::FindFilesResponse>, Status> {
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
