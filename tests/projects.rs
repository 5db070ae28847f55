//! Projects through the API, as the tests and benchmarks use them: open a
//! folder, wait until its first walk has indexed it, read its watch state,
//! follow its changes from now on, and close it.

use std::{path::Path, time::Duration};

use omnipanel_client::{Client, proto::v1 as pb};
use tonic::Streaming;

use crate::{PATIENCE, TestResult};

/// Open `path` as a project; its id.
pub async fn open_project(client: &Client, path: &Path) -> TestResult<String> {
    let project = client
        .projects()
        .open_project(pb::OpenProjectRequest {
            path: path.display().to_string(),
            name: String::new(),
        })
        .await?
        .into_inner()
        .project
        .ok_or("OpenProject answered no project")?;
    Ok(project.id)
}

/// Wait (bounded by [`PATIENCE`]) until the project's first walk has
/// finished (FindFiles says its index is complete); the files indexed.
pub async fn wait_for_index(client: &Client, id: &str) -> TestResult<u64> {
    wait_for_index_within(client, id, PATIENCE).await
}

/// [`wait_for_index`] with its own patience, for trees far larger than a
/// test's (the soak's 100 000 files, the cargo registry's sources).
pub async fn wait_for_index_within(
    client: &Client,
    id: &str,
    patience: Duration,
) -> TestResult<u64> {
    wait_until_indexed(client, id, 0, patience, Duration::from_millis(20)).await
}

/// Ask FindFiles every `poll` until the index is complete with at least
/// `files` files, or `patience` has passed; the files indexed.
async fn wait_until_indexed(
    client: &Client,
    id: &str,
    files: u64,
    patience: Duration,
    poll: Duration,
) -> TestResult<u64> {
    let deadline = std::time::Instant::now() + patience;
    loop {
        let found = client
            .files()
            .find_files(pb::FindFilesRequest {
                project: id.to_owned(),
                query: String::new(),
                limit: 1,
            })
            .await?
            .into_inner();
        if found.index_complete && found.total_files >= files {
            return Ok(found.total_files);
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "the index of project {id} was never complete with {files} files or more (it has {})",
                found.total_files
            )
            .into());
        }
        tokio::time::sleep(poll).await;
    }
}

/// Wait (bounded by `patience`) until the project's index is complete and
/// holds at least `files` files (a reopened project's first answers may
/// still come from before its walk); the files indexed. Polls every 5 ms
/// rather than [`wait_for_index`]'s 20: the benchmarks time this wait.
pub async fn wait_for_files(
    client: &Client,
    id: &str,
    files: u64,
    patience: Duration,
) -> TestResult<u64> {
    wait_until_indexed(client, id, files, patience, Duration::from_millis(5)).await
}

/// Close the project (it stays in the list).
pub async fn close_project(client: &Client, id: &str) -> TestResult {
    client
        .projects()
        .close_project(pb::CloseProjectRequest {
            project: id.to_owned(),
        })
        .await?;
    Ok(())
}

/// How an open project's files are watched (GetProject's `watch`).
pub async fn watch_state(client: &Client, id: &str) -> TestResult<pb::ProjectWatch> {
    Ok(client
        .projects()
        .get_project(pb::GetProjectRequest {
            project: id.to_owned(),
        })
        .await?
        .into_inner()
        .project
        .and_then(|project| project.watch)
        .ok_or("an open project has a watch state")?)
}

/// Follow the project's changes from now on (the stream's replay is done).
pub async fn watch_from_now(client: &Client, id: &str) -> TestResult<Streaming<pb::WatchResponse>> {
    let mut stream = client
        .files()
        .watch(pb::WatchRequest {
            project: id.to_owned(),
            after_sequence: None,
            instance_id: 0,
        })
        .await?
        .into_inner();
    match stream.message().await?.and_then(|m| m.item) {
        Some(pb::watch_response::Item::CaughtUp(_)) => Ok(stream),
        other => Err(format!("a new Watch stream starts with CaughtUp, not {other:?}").into()),
    }
}
