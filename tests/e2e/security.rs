//! The security boundaries end to end, through a real agent and its TCP
//! listener: every mutating RPC refuses a read token (the list comes from
//! the proto's own access annotations), tokens stay inside the project
//! roots and nobody opens a protected folder, revoking a token ends the
//! streams opened with it, a health Watch needs a token over TCP, and a
//! token sees no other user's command lines.

use std::time::Duration;

use omnipanel_client::{Client, Target, proto::v1 as pb};
use omnipanel_proto::{FILE_DESCRIPTOR_SET, access::method_policies};
use omnipanel_tests::{PATIENCE, Sandbox, TestResult};

use crate::agent_core::{agent_with_tcp, create_token as token};
use tonic::{Code, metadata::MetadataValue};

/// A plain channel to `address`, with no token attached.
async fn bare_channel(address: &str) -> TestResult<tonic::transport::Channel> {
    Ok(
        tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
            .connect()
            .await?,
    )
}

/// Call `path` with an empty request message and `token`, whatever the RPC.
/// An empty message is a valid encoding of every request type, and the
/// access layer answers before any handler parses it.
async fn call_empty(
    channel: tonic::transport::Channel,
    path: &str,
    token: &str,
) -> Result<(), tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?;
    let mut request = tonic::Request::new(pb::ShutdownRequest {});
    let bearer: MetadataValue<_> = format!("Bearer {token}")
        .parse()
        .map_err(|_| tonic::Status::internal("bad token text"))?;
    request.metadata_mut().insert("authorization", bearer);
    request.set_timeout(PATIENCE);
    let path = path
        .parse()
        .map_err(|_| tonic::Status::internal("bad path"))?;
    let codec = tonic_prost::ProstCodec::<pb::ShutdownRequest, pb::ShutdownResponse>::default();
    grpc.unary(request, path, codec).await.map(|_| ())
}

#[tokio::test]
async fn a_read_token_is_refused_every_mutating_rpc() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (agent, address) = agent_with_tcp(&sandbox).await?;
    let local = agent.client().await?;
    let read = token(&local, "reader", pb::Scope::Read).await?;
    let channel = bare_channel(&address).await?;
    let mutating: Vec<String> = method_policies(FILE_DESCRIPTOR_SET)?
        .into_iter()
        .filter(|method| {
            method.policy.as_ref().is_none_or(|policy| {
                !matches!(
                    policy.scope(),
                    pb::Scope::Read | pb::Scope::Status | pb::Scope::Infer
                )
            })
        })
        .map(|method| method.path)
        .collect();
    assert!(
        mutating.len() > 30,
        "only {} mutating RPCs found",
        mutating.len()
    );
    for path in &mutating {
        let result = call_empty(channel.clone(), path, &read).await;
        let Err(status) = result else {
            return Err(format!("{path} accepted a read token").into());
        };
        assert_eq!(status.code(), Code::PermissionDenied, "{path}: {status:?}");
        assert!(
            status.message().contains("scope"),
            "{path}: {}",
            status.message()
        );
    }
    // The agent is still up, and a read call with the same token works.
    let reader = Client::connect(Target::tcp(&address, Some(read), None)).await?;
    reader.agent().get_info(pb::GetInfoRequest {}).await?;
    Ok(())
}

#[tokio::test]
async fn tokens_stay_inside_the_project_roots_and_nobody_opens_a_protected_folder() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (agent, address) = agent_with_tcp(&sandbox).await?;
    let owner = agent.client().await?;
    let write = token(&owner, "writer", pb::Scope::Write).await?;
    let writer = Client::connect(Target::tcp(&address, Some(write), None)).await?;

    let home = sandbox.root().join("home");
    let inside = home.join("code/app");
    let outside = sandbox.root().join("srv/models");
    std::fs::create_dir_all(&inside)?;
    std::fs::create_dir_all(&outside)?;
    std::fs::create_dir_all(home.join(".ssh"))?;
    std::fs::write(home.join(".ssh/id_ed25519"), "secret")?;
    let open = |client: &Client, path: &std::path::Path| {
        let mut projects = client.projects();
        let path = path.display().to_string();
        async move {
            projects
                .open_project(pb::OpenProjectRequest {
                    path,
                    name: String::new(),
                })
                .await
        }
    };
    let reason = |status: &tonic::Status| -> String {
        tonic_types::StatusExt::get_details_error_info(status)
            .map(|info| info.reason)
            .unwrap_or_default()
    };

    // Inside the roots: fine for a token.
    open(&writer, &inside).await?;
    // Outside the roots: the token is refused, naming the rule; the owner
    // may open it (GPU boxes keep code in /srv, /data, /mnt).
    let Err(refused) = open(&writer, &outside).await else {
        return Err("a token opened a project outside the project roots".into());
    };
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert_eq!(reason(&refused), "OUTSIDE_PROJECT_ROOTS", "{refused:?}");
    assert!(
        refused.message().contains("access.project_roots"),
        "{refused:?}"
    );
    open(&owner, &outside).await?;
    // A token cannot create one outside either, and nothing is created.
    let created = writer
        .projects()
        .create_project(pb::CreateProjectRequest {
            path: sandbox.root().join("srv/new").display().to_string(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        created.err().map(|status| status.code()),
        Some(Code::PermissionDenied)
    );
    assert!(!sandbox.root().join("srv/new").exists());

    // The deny-list binds the owner too: the home (it holds ~/.ssh), ~/.ssh,
    // a symlink to it, the agent's own config folder, and /.
    let link = inside.join("keys");
    std::os::unix::fs::symlink(home.join(".ssh"), &link)?;
    for denied in [
        home.clone(),
        home.join(".ssh"),
        link,
        sandbox.root().join("config"),
        std::path::PathBuf::from("/"),
    ] {
        let Err(status) = open(&owner, &denied).await else {
            return Err(format!("the owner opened {}", denied.display()).into());
        };
        assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
        assert_eq!(reason(&status), "PROJECT_DENIED", "{status:?}");
    }

    // A token may not widen its own reach through the settings.
    let admin = token(&owner, "admin", pb::Scope::Admin).await?;
    let admin = Client::connect(Target::tcp(&address, Some(admin), None)).await?;
    let changed = admin
        .agent()
        .update_settings(pb::UpdateSettingsRequest {
            changes: vec![pb::SettingChange {
                key: "access.project_roots".into(),
                value: "[\"/\"]".into(),
                reset: false,
            }],
        })
        .await;
    let Err(status) = changed else {
        return Err("an admin token changed access.project_roots".into());
    };
    assert_eq!(reason(&status), "OWNER_ONLY", "{status:?}");
    Ok(())
}

#[tokio::test]
async fn revoking_a_token_ends_the_streams_opened_with_it() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (agent, address) = agent_with_tcp(&sandbox).await?;
    let owner = agent.client().await?;
    let read = token(&owner, "watcher", pb::Scope::Read).await?;
    let watcher = Client::connect(Target::tcp(&address, Some(read), None)).await?;
    let mut events = watcher
        .agent()
        .watch_events(pb::WatchEventsRequest::default())
        .await?
        .into_inner();
    owner
        .agent()
        .revoke_token(pb::RevokeTokenRequest {
            id: "watcher".into(),
        })
        .await?;
    // Events keep flowing (the revocation itself is one); the stream must
    // end with UNAUTHENTICATED rather than carry on.
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match events.message().await {
                Ok(Some(_)) => {}
                Ok(None) => return Err(tonic::Status::ok("ended without a status")),
                Err(status) => return Err(status),
            }
        }
    })
    .await
    .map_err(|_| "the stream outlived its token")?;
    let Err::<(), _>(status) = ended else {
        return Err("unreachable".into());
    };
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
    Ok(())
}

#[tokio::test]
async fn a_health_watch_over_tcp_needs_a_token_but_a_check_does_not() -> TestResult {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let sandbox = Sandbox::new()?;
    let (agent, address) = agent_with_tcp(&sandbox).await?;
    let owner = agent.client().await?;
    let mut health = HealthClient::new(bare_channel(&address).await?);
    health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await?;
    let watched = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    // Without a token a client has status only; watching health holds a
    // stream open and needs read.
    assert_eq!(
        watched.err().map(|status| status.code()),
        Some(Code::PermissionDenied)
    );
    let read = token(&owner, "probe", pb::Scope::Read).await?;
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {read}").parse()?);
    let mut stream = health.watch(request).await?.into_inner();
    let first = tokio::time::timeout(Duration::from_secs(60), stream.message()).await??;
    assert!(first.is_some(), "the watch with a token says nothing");
    Ok(())
}

#[tokio::test]
async fn a_token_sees_only_its_users_command_lines() -> TestResult {
    let sandbox = Sandbox::new()?;
    let (agent, address) = agent_with_tcp(&sandbox).await?;
    let owner = agent.client().await?;
    let read = token(&owner, "ps", pb::Scope::Read).await?;
    let reader = Client::connect(Target::tcp(&address, Some(read), None)).await?;
    let own_uid = rustix::process::getuid().as_raw();
    let listing = reader
        .system()
        .list_processes(pb::ListProcessesRequest {
            sort: 0,
            limit: 1000,
        })
        .await?
        .into_inner();
    let mut own_with_command = 0;
    for process in &listing.processes {
        if process.uid == Some(own_uid) {
            own_with_command += usize::from(!process.command.is_empty());
        } else {
            assert!(
                process.command.is_empty(),
                "a token saw another user's command line: {process:?}"
            );
        }
    }
    assert!(
        own_with_command > 0,
        "the user's own command lines are shown"
    );
    Ok(())
}
