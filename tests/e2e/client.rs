//! The client library and CLI against a fake agent: a bare tonic server on
//! a Unix socket whose AgentService claims another protocol version, so the
//! version check is exercised the way a user would meet it (an old CLI
//! against a newer agent, or the other way round).

use std::{path::Path, pin::Pin};

use omnipanel_client::{
    Client, ClientError, Target,
    proto::{
        PROTOCOL_VERSION,
        v1::{self as pb, agent_service_server as server},
    },
};
use omnipanel_tests::{PATIENCE, Sandbox, TestResult, binary, stderr};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

/// The protocol version the fake claims.
const FUTURE_PROTOCOL: u32 = 999;
/// The agent version the fake claims.
const FUTURE_VERSION: &str = "99.0.0";

/// Answers GetInfo as a far-future agent; everything else is unimplemented.
struct FutureAgent;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn unimplemented<T>() -> Result<Response<T>, Status> {
    Err(Status::unimplemented("the fake agent answers GetInfo only"))
}

#[tonic::async_trait]
impl server::AgentService for FutureAgent {
    type RequestAccessStream = BoxStream<pb::RequestAccessResponse>;
    async fn request_access(
        &self,
        _: Request<pb::RequestAccessRequest>,
    ) -> Result<Response<Self::RequestAccessStream>, Status> {
        unimplemented()
    }
    async fn list_access_requests(
        &self,
        _: Request<pb::ListAccessRequestsRequest>,
    ) -> Result<Response<pb::ListAccessRequestsResponse>, Status> {
        unimplemented()
    }
    async fn approve_access(
        &self,
        _: Request<pb::ApproveAccessRequest>,
    ) -> Result<Response<pb::ApproveAccessResponse>, Status> {
        unimplemented()
    }
    async fn deny_access(
        &self,
        _: Request<pb::DenyAccessRequest>,
    ) -> Result<Response<pb::DenyAccessResponse>, Status> {
        unimplemented()
    }
    async fn list_clients(
        &self,
        _: Request<pb::ListClientsRequest>,
    ) -> Result<Response<pb::ListClientsResponse>, Status> {
        unimplemented()
    }
    async fn revoke_client(
        &self,
        _: Request<pb::RevokeClientRequest>,
    ) -> Result<Response<pb::RevokeClientResponse>, Status> {
        unimplemented()
    }
    async fn list_audit(
        &self,
        _: Request<pb::ListAuditRequest>,
    ) -> Result<Response<pb::ListAuditResponse>, Status> {
        unimplemented()
    }
    type WatchAuditStream = BoxStream<pb::WatchAuditResponse>;
    async fn watch_audit(
        &self,
        _: Request<pb::WatchAuditRequest>,
    ) -> Result<Response<Self::WatchAuditStream>, Status> {
        unimplemented()
    }
    async fn list_confirmations(
        &self,
        _: Request<pb::ListConfirmationsRequest>,
    ) -> Result<Response<pb::ListConfirmationsResponse>, Status> {
        unimplemented()
    }
    async fn answer_confirmation(
        &self,
        _: Request<pb::AnswerConfirmationRequest>,
    ) -> Result<Response<pb::AnswerConfirmationResponse>, Status> {
        unimplemented()
    }
    async fn get_info(
        &self,
        _: Request<pb::GetInfoRequest>,
    ) -> Result<Response<pb::GetInfoResponse>, Status> {
        Ok(Response::new(pb::GetInfoResponse {
            version: FUTURE_VERSION.into(),
            protocol_version: FUTURE_PROTOCOL,
            pid: std::process::id(),
            ..Default::default()
        }))
    }
    async fn shutdown(
        &self,
        _: Request<pb::ShutdownRequest>,
    ) -> Result<Response<pb::ShutdownResponse>, Status> {
        unimplemented()
    }
    async fn get_settings(
        &self,
        _: Request<pb::GetSettingsRequest>,
    ) -> Result<Response<pb::GetSettingsResponse>, Status> {
        unimplemented()
    }
    async fn update_settings(
        &self,
        _: Request<pb::UpdateSettingsRequest>,
    ) -> Result<Response<pb::UpdateSettingsResponse>, Status> {
        unimplemented()
    }
    type WatchEventsStream = BoxStream<pb::WatchEventsResponse>;
    async fn watch_events(
        &self,
        _: Request<pb::WatchEventsRequest>,
    ) -> Result<Response<Self::WatchEventsStream>, Status> {
        unimplemented()
    }
    type TailLogsStream = BoxStream<pb::TailLogsResponse>;
    async fn tail_logs(
        &self,
        _: Request<pb::TailLogsRequest>,
    ) -> Result<Response<Self::TailLogsStream>, Status> {
        unimplemented()
    }
    async fn list_crash_reports(
        &self,
        _: Request<pb::ListCrashReportsRequest>,
    ) -> Result<Response<pb::ListCrashReportsResponse>, Status> {
        unimplemented()
    }
    async fn get_autostart(
        &self,
        _: Request<pb::GetAutostartRequest>,
    ) -> Result<Response<pb::GetAutostartResponse>, Status> {
        unimplemented()
    }
    async fn set_autostart(
        &self,
        _: Request<pb::SetAutostartRequest>,
    ) -> Result<Response<pb::SetAutostartResponse>, Status> {
        unimplemented()
    }
    async fn create_token(
        &self,
        _: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::CreateTokenResponse>, Status> {
        unimplemented()
    }
    async fn list_tokens(
        &self,
        _: Request<pb::ListTokensRequest>,
    ) -> Result<Response<pb::ListTokensResponse>, Status> {
        unimplemented()
    }
    async fn revoke_token(
        &self,
        _: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        unimplemented()
    }
}

/// Serve the fake on `socket` until the returned task is aborted.
fn serve_future_agent(socket: &Path) -> TestResult<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::UnixListener::bind(socket)?;
    Ok(tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(server::AgentServiceServer::new(FutureAgent))
            .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
            .await;
    }))
}

#[tokio::test]
async fn an_agent_with_another_protocol_version_is_a_clear_mismatch() -> TestResult {
    let sandbox = Sandbox::new()?;
    let socket = sandbox.root().join("future.sock");
    let server = serve_future_agent(&socket)?;

    let err = Client::connect(Target::Unix(socket.clone()))
        .await
        .err()
        .ok_or("connected to an agent of another protocol")?;
    let ClientError::VersionMismatch {
        agent_version,
        agent_protocol,
        client_protocol,
    } = &err
    else {
        return Err(format!("expected a version mismatch, got {err:?}").into());
    };
    assert_eq!(agent_version, FUTURE_VERSION);
    assert_eq!(*agent_protocol, FUTURE_PROTOCOL);
    assert_eq!(*client_protocol, PROTOCOL_VERSION);
    // Tools that only report what runs can still connect.
    let unchecked = Client::connect_unchecked(Target::Unix(socket.clone())).await?;
    assert_eq!(unchecked.info().protocol_version, FUTURE_PROTOCOL);

    // The CLI runs off the runtime: the fake serves on it meanwhile.
    let mut command = sandbox.command(&binary("omnipanel"));
    command.arg("status").env("OMNIPANEL_SOCKET", &socket);
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await???;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let text = stderr(&output);
    assert!(
        text.contains(&format!("protocol {FUTURE_PROTOCOL}"))
            && text.contains(&format!("speaks {PROTOCOL_VERSION}"))
            && text.contains(FUTURE_VERSION),
        "{text}"
    );
    server.abort();
    Ok(())
}
