//! `omnipanel.v1.ProjectService`: the project list and workspace state,
//! converted to and from the projects domain module.

use crate::rpc::status::OrStatus;
use std::sync::Arc;

use omnipanel_proto::v1 as pb;
use pb::project_service_server::ProjectService;
use tonic::{Request, Response, Status};

use omnipanel_core::{
    files::watch::{WatchPhase, WatchStatus},
    projects::{ProjectView, ProjectWatch, Projects, TemplateFile},
};

/// The ProjectService implementation.
#[derive(Debug, Clone)]
pub struct ProjectApi {
    projects: Arc<Projects>,
}

impl ProjectApi {
    /// Serve `projects`.
    pub fn new(projects: Arc<Projects>) -> Self {
        Self { projects }
    }
}

/// Proto message of a project.
pub fn project_to_proto(view: ProjectView) -> pb::Project {
    pb::Project {
        id: view.record.id,
        name: view.record.name,
        path: view.record.path.display().to_string(),
        open: view.record.open,
        created_unix_ms: view.record.created_ms,
        last_opened_unix_ms: view.record.last_opened_ms,
        exists: view.exists,
        git: view.git.map(|git| pb::GitSummary {
            branch: git.branch.unwrap_or_default(),
            detached: git.detached,
            dirty: git.dirty,
        }),
        watch: view.watch.map(
            |ProjectWatch {
                 status,
                 indexed_files,
             }| watch_to_proto(&status, indexed_files),
        ),
    }
}

/// Proto message of a project's watch state.
pub fn watch_to_proto(status: &WatchStatus, indexed_files: u64) -> pb::ProjectWatch {
    pb::ProjectWatch {
        state: match status.phase {
            WatchPhase::Indexing => pb::WatchState::Indexing,
            WatchPhase::Live => pb::WatchState::Live,
            WatchPhase::Degraded => pb::WatchState::Degraded,
            WatchPhase::Unavailable => pb::WatchState::Unavailable,
        }
        .into(),
        watched_folders: status.watched_folders,
        unwatched_folders: status.unwatched_folders,
        indexed_files,
        rescans: status.rescans,
        detail: status.detail.clone(),
    }
}

#[tonic::async_trait]
impl ProjectService for ProjectApi {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::CreateProjectResponse>, Status> {
        let request = request.into_inner();
        let files = request
            .files
            .into_iter()
            .map(|f| TemplateFile {
                path: f.path,
                content: f.content,
            })
            .collect();
        let view = self
            .projects
            .create(&request.path, &request.name, request.git_init, files)
            .await
            .or_status()?;
        Ok(Response::new(pb::CreateProjectResponse {
            project: Some(project_to_proto(view)),
        }))
    }

    async fn open_project(
        &self,
        request: Request<pb::OpenProjectRequest>,
    ) -> Result<Response<pb::OpenProjectResponse>, Status> {
        let request = request.into_inner();
        let view = self
            .projects
            .open_project(&request.path, &request.name)
            .await
            .or_status()?;
        Ok(Response::new(pb::OpenProjectResponse {
            project: Some(project_to_proto(view)),
        }))
    }

    async fn close_project(
        &self,
        request: Request<pb::CloseProjectRequest>,
    ) -> Result<Response<pb::CloseProjectResponse>, Status> {
        let view = self
            .projects
            .close(&request.into_inner().project)
            .await
            .or_status()?;
        Ok(Response::new(pb::CloseProjectResponse {
            project: Some(project_to_proto(view)),
        }))
    }

    async fn list_projects(
        &self,
        _request: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let views = self.projects.list().await.or_status()?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: views.into_iter().map(project_to_proto).collect(),
        }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        let view = self
            .projects
            .get(&request.into_inner().project)
            .await
            .or_status()?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(project_to_proto(view)),
        }))
    }

    async fn forget_project(
        &self,
        request: Request<pb::ForgetProjectRequest>,
    ) -> Result<Response<pb::ForgetProjectResponse>, Status> {
        let record = self
            .projects
            .forget(&request.into_inner().project)
            .await
            .or_status()?;
        Ok(Response::new(pb::ForgetProjectResponse {
            project: Some(project_to_proto(ProjectView {
                record,
                exists: true,
                git: None,
                watch: None,
            })),
        }))
    }

    async fn get_workspace_state(
        &self,
        request: Request<pb::GetWorkspaceStateRequest>,
    ) -> Result<Response<pb::GetWorkspaceStateResponse>, Status> {
        let request = request.into_inner();
        let state = self
            .projects
            .workspace_state(&request.project, &request.client_key)
            .await
            .or_status()?;
        Ok(Response::new(match state {
            Some(state) => pb::GetWorkspaceStateResponse {
                data: state.data,
                version: state.version,
                updated_unix_ms: state.updated_ms,
            },
            None => pb::GetWorkspaceStateResponse::default(),
        }))
    }

    async fn save_workspace_state(
        &self,
        request: Request<pb::SaveWorkspaceStateRequest>,
    ) -> Result<Response<pb::SaveWorkspaceStateResponse>, Status> {
        let request = request.into_inner();
        let version = self
            .projects
            .save_workspace_state(
                &request.project,
                &request.client_key,
                request.data,
                request.expected_version,
            )
            .await
            .or_status()?;
        Ok(Response::new(pb::SaveWorkspaceStateResponse { version }))
    }
}
