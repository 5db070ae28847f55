//! `omnipanel.v1.ProjectService`: the project list, workspace state and
//! chat conversations, a thin adapter over the [`Projects`] and
//! [`Conversations`] facades (conversions in `convert.rs`).

pub mod convert;

use std::sync::Arc;

use omnipanel_proto::v1 as pb;
use pb::project_service_server::ProjectService;
use tonic::{Request, Response, Status};

use crate::rpc::{
    access,
    convert::{FromProto, IntoProto},
    status::{OrStatus, to_status},
};
use omnipanel_core::{
    conversations::Conversations,
    ollama::Ollama,
    projects::{Projects, TemplateFile},
};

/// The ProjectService implementation.
#[derive(Debug, Clone)]
pub struct ProjectApi {
    projects: Arc<Projects>,
    /// For checking that a preferred provider exists.
    ollama: Arc<Ollama>,
    /// The projects' chat conversations (they check the grant themselves).
    conversations: Arc<Conversations>,
}

impl ProjectApi {
    /// Serve `projects` and their `conversations`.
    pub fn new(
        projects: Arc<Projects>,
        ollama: Arc<Ollama>,
        conversations: Arc<Conversations>,
    ) -> Self {
        Self {
            projects,
            ollama,
            conversations,
        }
    }

    /// Go on only if the caller may use project `reference` (its grant and
    /// the project roots), whoever opened it.
    async fn authorized<T>(&self, request: &Request<T>, reference: &str) -> Result<(), Status> {
        let caller = access::caller(request)?;
        self.projects
            .authorize(&caller, reference)
            .await
            .or_status()
    }
}

#[tonic::async_trait]
impl ProjectService for ProjectApi {
    async fn create_project(
        &self,
        request: Request<pb::CreateProjectRequest>,
    ) -> Result<Response<pb::CreateProjectResponse>, Status> {
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let files = request
            .files
            .into_iter()
            .map(TemplateFile::from_proto)
            .collect();
        let view = self
            .projects
            .create_for(
                &caller,
                &request.path,
                &request.name,
                request.git_init,
                files,
            )
            .await
            .or_status()?;
        Ok(Response::new(pb::CreateProjectResponse {
            project: Some(view.into_proto()),
        }))
    }

    async fn open_project(
        &self,
        request: Request<pb::OpenProjectRequest>,
    ) -> Result<Response<pb::OpenProjectResponse>, Status> {
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let view = self
            .projects
            .open_project_for(&caller, &request.path, &request.name)
            .await
            .or_status()?;
        Ok(Response::new(pb::OpenProjectResponse {
            project: Some(view.into_proto()),
        }))
    }

    async fn close_project(
        &self,
        request: Request<pb::CloseProjectRequest>,
    ) -> Result<Response<pb::CloseProjectResponse>, Status> {
        self.authorized(&request, &request.get_ref().project)
            .await?;
        let view = self
            .projects
            .close(&request.into_inner().project)
            .await
            .or_status()?;
        Ok(Response::new(pb::CloseProjectResponse {
            project: Some(view.into_proto()),
        }))
    }

    async fn list_projects(
        &self,
        request: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        let caller = access::caller(&request)?;
        let views = self.projects.list_for(&caller).await.or_status()?;
        Ok(Response::new(pb::ListProjectsResponse {
            projects: views.into_proto(),
        }))
    }

    async fn get_project(
        &self,
        request: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        self.authorized(&request, &request.get_ref().project)
            .await?;
        let view = self
            .projects
            .get(&request.into_inner().project)
            .await
            .or_status()?;
        Ok(Response::new(pb::GetProjectResponse {
            project: Some(view.into_proto()),
        }))
    }

    async fn forget_project(
        &self,
        request: Request<pb::ForgetProjectRequest>,
    ) -> Result<Response<pb::ForgetProjectResponse>, Status> {
        self.authorized(&request, &request.get_ref().project)
            .await?;
        let record = self
            .projects
            .forget(&request.into_inner().project)
            .await
            .or_status()?;
        Ok(Response::new(pb::ForgetProjectResponse {
            project: Some(record.into_proto()),
        }))
    }

    async fn get_workspace_state(
        &self,
        request: Request<pb::GetWorkspaceStateRequest>,
    ) -> Result<Response<pb::GetWorkspaceStateResponse>, Status> {
        self.authorized(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        let state = self
            .projects
            .workspace_state(&request.project, &request.client_key)
            .await
            .or_status()?;
        Ok(Response::new(
            state.map(IntoProto::into_proto).unwrap_or_default(),
        ))
    }

    async fn save_workspace_state(
        &self,
        request: Request<pb::SaveWorkspaceStateRequest>,
    ) -> Result<Response<pb::SaveWorkspaceStateResponse>, Status> {
        self.authorized(&request, &request.get_ref().project)
            .await?;
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

    async fn set_project_model(
        &self,
        request: Request<pb::SetProjectModelRequest>,
    ) -> Result<Response<pb::SetProjectModelResponse>, Status> {
        self.authorized(&request, &request.get_ref().project)
            .await?;
        let request = request.into_inner();
        if !request.provider.is_empty() {
            // The named provider must exist: NOT_FOUND otherwise.
            let known = self.ollama.list_provider_names().await.or_status()?;
            if !known.contains(&request.provider) {
                return Err(to_status(omnipanel_core::error::Error::not_found(format!(
                    "no provider named {:?}; see `omnipanel models providers`",
                    request.provider
                ))));
            }
        }
        let view = self
            .projects
            .set_preferred_model(&request.project, &request.model, &request.provider)
            .await
            .or_status()?;
        Ok(Response::new(pb::SetProjectModelResponse {
            project: Some(view.into_proto()),
        }))
    }

    async fn create_conversation(
        &self,
        request: Request<pb::CreateConversationRequest>,
    ) -> Result<Response<pb::CreateConversationResponse>, Status> {
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let conversation = self
            .conversations
            .create(&caller, &request.project, &request.title, &request.model)
            .await
            .or_status()?;
        Ok(Response::new(pb::CreateConversationResponse {
            conversation: Some(conversation.into_proto()),
        }))
    }

    async fn list_conversations(
        &self,
        request: Request<pb::ListConversationsRequest>,
    ) -> Result<Response<pb::ListConversationsResponse>, Status> {
        let caller = access::caller(&request)?;
        let request = request.into_inner();
        let conversations = self
            .conversations
            .list(&caller, &request.project, request.limit)
            .await
            .or_status()?;
        Ok(Response::new(pb::ListConversationsResponse {
            conversations: conversations.into_proto(),
        }))
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<Response<pb::GetConversationResponse>, Status> {
        let caller = access::caller(&request)?;
        let conversation = self
            .conversations
            .get(&caller, &request.into_inner().id)
            .await
            .or_status()?;
        Ok(Response::new(pb::GetConversationResponse {
            conversation: Some(conversation.into_proto()),
        }))
    }

    async fn delete_conversation(
        &self,
        request: Request<pb::DeleteConversationRequest>,
    ) -> Result<Response<pb::DeleteConversationResponse>, Status> {
        let caller = access::caller(&request)?;
        self.conversations
            .delete(&caller, &request.into_inner().id)
            .await
            .or_status()?;
        Ok(Response::new(pb::DeleteConversationResponse {}))
    }
}
