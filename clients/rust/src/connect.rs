//! Finding and dialling the agent: the target (socket or TCP address with a
//! token), the credential presented (a client's token, or on the socket the
//! owner credential when this user can read it), the channel with the
//! `localhost` authority, the bearer interceptor, and the protocol-version
//! handshake.

use std::{fmt, io, path::PathBuf, time::Duration};

use hyper_util::rt::TokioIo;
use omnipanel_proto::{
    CONFIRMATION_HEADER, PROTOCOL_VERSION,
    v1::{
        GetInfoRequest, GetInfoResponse, agent_service_client::AgentServiceClient,
        file_service_client::FileServiceClient, git_service_client::GitServiceClient,
        model_service_client::ModelServiceClient, project_service_client::ProjectServiceClient,
        system_service_client::SystemServiceClient, update_service_client::UpdateServiceClient,
    },
};
use tonic::{
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint},
};
use tower::service_fn;

use crate::{
    error::ClientError,
    location::{self, ADDR_ENV, CA_CERT_ENV, CONFIRMATION_ENV, TOKEN_ENV},
    transport,
};

/// Where the agent is.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// The local socket (the normal case).
    Unix(PathBuf),
    /// A TCP listener, with a bearer token.
    Tcp {
        /// `http://host:port` or `https://host:port`.
        url: String,
        /// Bearer token sent with every call.
        token: Option<String>,
        /// PEM file with the CA for `https` URLs; system roots otherwise.
        ca_cert: Option<PathBuf>,
    },
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the token.
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "{}", path.display()),
            Self::Tcp { url, .. } => f.write_str(url),
        }
    }
}

impl Target {
    /// The target named by the environment: `OMNIPANEL_ADDR` (+
    /// `OMNIPANEL_TOKEN`, `OMNIPANEL_CA_CERT`) when set, else the socket
    /// (`OMNIPANEL_SOCKET` or the default path).
    pub fn from_env() -> Self {
        match std::env::var(ADDR_ENV) {
            Ok(addr) if !addr.trim().is_empty() => Self::tcp(
                &addr,
                std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty()),
                std::env::var_os(CA_CERT_ENV).map(PathBuf::from),
            ),
            _ => Self::Unix(location::socket_path()),
        }
    }

    /// A TCP target; `addr` may omit the scheme (`http://` is assumed).
    pub fn tcp(addr: &str, token: Option<String>, ca_cert: Option<PathBuf>) -> Self {
        let addr = addr.trim();
        let url = if addr.contains("://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        Self::Tcp {
            url,
            token,
            ca_cert,
        }
    }
}

/// What a client presents to the agent.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credential {
    /// What the environment gives: over TCP the target's token; on the
    /// socket `OMNIPANEL_TOKEN` when set, else the owner credential in the
    /// agent's data folder when this user can read it (our own CLI, tray and
    /// panel are the owner this way), else nothing.
    #[default]
    FromEnv,
    /// This token (or owner credential).
    Bearer(String),
    /// Nothing: a client never admitted, with status only until it asks.
    Nothing,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print a secret.
        f.write_str(match self {
            Self::FromEnv => "FromEnv",
            Self::Bearer(_) => "Bearer(<redacted>)",
            Self::Nothing => "Nothing",
        })
    }
}

impl Credential {
    /// The secret to present before the agent has been asked anything:
    /// an explicit one, or the environment's token.
    fn explicit(&self, target: &Target) -> Option<String> {
        match self {
            Self::Bearer(secret) => Some(secret.clone()),
            Self::Nothing => None,
            Self::FromEnv => match target {
                Target::Tcp { token, .. } => token.clone(),
                Target::Unix(_) => std::env::var(TOKEN_ENV)
                    .ok()
                    .filter(|t| !t.trim().is_empty()),
            },
        }
    }
}

/// The owner credential of the agent whose data folder is `data_dir`, when
/// this user can read it.
fn owner_credential(data_dir: &str) -> Option<String> {
    if data_dir.is_empty() {
        return None;
    }
    let path = std::path::Path::new(data_dir).join(omnipanel_paths::OWNER_CREDENTIAL_FILE);
    std::fs::read_to_string(path)
        .ok()
        .map(|text| text.trim().to_owned())
        .filter(|secret| !secret.is_empty())
}

fn auth_for(secret: Option<&str>) -> Result<AuthInterceptor, ClientError> {
    let confirmation = match std::env::var(CONFIRMATION_ENV) {
        Ok(id) if !id.trim().is_empty() => Some(id.trim().parse().map_err(|_| {
            ClientError::Config(format!(
                "{CONFIRMATION_ENV} contains characters that cannot be sent in a header"
            ))
        })?),
        _ => None,
    };
    let Some(secret) = secret else {
        return Ok(AuthInterceptor {
            header: None,
            confirmation,
        });
    };
    let header = format!("Bearer {secret}").parse().map_err(|_| {
        ClientError::Config(format!(
            "{TOKEN_ENV} contains characters that cannot be sent in a header"
        ))
    })?;
    Ok(AuthInterceptor {
        header: Some(header),
        confirmation,
    })
}

/// Adds `authorization: Bearer <token>` to every call when a token is set,
/// and `omnipanel-confirmation` when `OMNIPANEL_CONFIRMATION` names a
/// confirmation the user allowed (it is bound to one act, so sending it with
/// other calls changes nothing).
#[derive(Clone, Default)]
pub struct AuthInterceptor {
    header: Option<MetadataValue<Ascii>>,
    confirmation: Option<MetadataValue<Ascii>>,
}

impl fmt::Debug for AuthInterceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthInterceptor")
            .field("token", &self.header.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = &self.header {
            req.metadata_mut().insert("authorization", header.clone());
        }
        if let Some(confirmation) = &self.confirmation {
            req.metadata_mut()
                .insert(CONFIRMATION_HEADER, confirmation.clone());
        }
        Ok(req)
    }
}

/// A connected client. Cheap to clone; all clones share one HTTP/2
/// connection.
#[derive(Clone, Debug)]
pub struct Client {
    channel: Channel,
    auth: AuthInterceptor,
    target: Target,
    info: GetInfoResponse,
    credential: Credential,
}

/// A stub of any service, with the bearer token attached.
pub type Authed = InterceptedService<Channel, AuthInterceptor>;

impl Client {
    /// Connect to the target named by the environment.
    pub async fn connect_from_env() -> Result<Self, ClientError> {
        Self::connect(Target::from_env()).await
    }

    /// Connect to `target`, call `GetInfo` and check the protocol version.
    pub async fn connect(target: Target) -> Result<Self, ClientError> {
        Self::connect_as(target, Credential::FromEnv).await
    }

    /// Connect and call `GetInfo` without checking the protocol version
    /// (for tools that only want to report what is running).
    pub async fn connect_unchecked(target: Target) -> Result<Self, ClientError> {
        Self::connect_unchecked_as(target, Credential::FromEnv).await
    }

    /// Connect presenting `credential`, and check the protocol version.
    pub async fn connect_as(target: Target, credential: Credential) -> Result<Self, ClientError> {
        let client = Self::connect_unchecked_as(target, credential).await?;
        if client.info.protocol_version != PROTOCOL_VERSION {
            return Err(ClientError::VersionMismatch {
                agent_version: client.info.version.clone(),
                agent_protocol: client.info.protocol_version,
                client_protocol: PROTOCOL_VERSION,
            });
        }
        Ok(client)
    }

    /// Connect presenting `credential`, without checking the protocol
    /// version.
    pub async fn connect_unchecked_as(
        target: Target,
        credential: Credential,
    ) -> Result<Self, ClientError> {
        let label = target.to_string();
        let channel = open_channel(&target).await?;
        let explicit = credential.explicit(&target);
        let mut auth = auth_for(explicit.as_deref())?;
        let get_info = |auth: AuthInterceptor| {
            let mut stub = AgentServiceClient::with_interceptor(channel.clone(), auth);
            let label = label.clone();
            async move {
                stub.get_info(GetInfoRequest {})
                    .await
                    .map_err(|status| ClientError::from_status(status, &label))
                    .map(tonic::Response::into_inner)
            }
        };
        let mut info = get_info(auth.clone()).await?;
        // On the socket with nothing given: the owner credential of this
        // very agent, found through the data folder it reports, when this
        // user may read it (a sandbox given only the socket may not).
        if explicit.is_none()
            && credential == Credential::FromEnv
            && matches!(target, Target::Unix(_))
            && let Some(secret) = owner_credential(&info.data_dir)
        {
            auth = auth_for(Some(&secret))?;
            info = get_info(auth.clone()).await?;
        }
        Ok(Self {
            channel,
            auth,
            target,
            info,
            credential,
        })
    }

    /// The same connection presenting the token `secret` from now on
    /// (a client that was just admitted: no second connection, no second
    /// GetInfo).
    pub fn with_token(&self, secret: &str) -> Result<Self, ClientError> {
        let mut auth = auth_for(Some(secret))?;
        auth.confirmation = self.auth.confirmation.clone();
        Ok(Self {
            auth,
            credential: Credential::Bearer(secret.to_owned()),
            ..self.clone()
        })
    }

    /// The same connection sending `omnipanel-confirmation: ID` with its
    /// calls: the retry of a destructive act the user was asked to
    /// confirm. The id is bound to one act, so other calls made through
    /// the returned client are unaffected by it.
    pub fn confirming(&self, confirmation_id: &str) -> Result<Self, ClientError> {
        let value = confirmation_id.trim().parse().map_err(|_| {
            ClientError::Config(format!(
                "the confirmation id {confirmation_id:?} contains characters that cannot be sent in a header"
            ))
        })?;
        let mut client = self.clone();
        client.auth.confirmation = Some(value);
        Ok(client)
    }

    /// What this client presents (to open another connection like it).
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// What the agent said about itself when we connected.
    pub fn info(&self) -> &GetInfoResponse {
        &self.info
    }

    /// Where we are connected.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The raw channel, for services this crate has no helper for.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The bearer-token interceptor to wrap other service stubs with.
    pub fn interceptor(&self) -> AuthInterceptor {
        self.auth.clone()
    }

    /// An `AgentService` stub.
    pub fn agent(&self) -> AgentServiceClient<Authed> {
        AgentServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// A `ModelService` stub.
    pub fn models(&self) -> ModelServiceClient<Authed> {
        ModelServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// A `ProjectService` stub.
    pub fn projects(&self) -> ProjectServiceClient<Authed> {
        ProjectServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// A `FileService` stub (large writes allowed, like the agent).
    pub fn files(&self) -> FileServiceClient<Authed> {
        FileServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(64 * 1024 * 1024 + 64 * 1024)
            .max_encoding_message_size(64 * 1024 * 1024 + 64 * 1024)
    }

    /// A `GitService` stub. Diffs can be large (up to the request's
    /// `max_bytes`), hence the raised decoding limit.
    pub fn git(&self) -> GitServiceClient<Authed> {
        GitServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
            .max_decoding_message_size(64 * 1024 * 1024)
    }

    /// A `SystemService` stub.
    pub fn system(&self) -> SystemServiceClient<Authed> {
        SystemServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// An `UpdateService` stub.
    pub fn updates(&self) -> UpdateServiceClient<Authed> {
        UpdateServiceClient::with_interceptor(self.channel.clone(), self.auth.clone())
    }

    /// Classify a status returned by a call made through this client.
    pub fn error(&self, status: tonic::Status) -> ClientError {
        ClientError::from_status(status, &self.target.to_string())
    }
}

async fn open_channel(target: &Target) -> Result<Channel, ClientError> {
    let label = target.to_string();
    match target {
        Target::Unix(path) => {
            let path = path.clone();
            // The HTTP/2 layer rejects a socket path as `:authority`, so the
            // URI is a placeholder naming `localhost`; the connector ignores it.
            let endpoint =
                Endpoint::from_static("http://localhost").connect_timeout(Duration::from_secs(5));
            endpoint
                .connect_with_connector(service_fn(move |_| {
                    let path = path.clone();
                    async move {
                        let stream = transport::dial(&path).await?;
                        Ok::<_, io::Error>(TokioIo::new(stream))
                    }
                }))
                .await
                .map_err(|err| ClientError::from_transport(&err, &label))
        }
        Target::Tcp { url, ca_cert, .. } => {
            let mut endpoint = Endpoint::from_shared(url.clone())
                .map_err(|err| ClientError::Config(format!("bad agent address {url:?}: {err}")))?
                .connect_timeout(Duration::from_secs(5));
            if url.starts_with("https://") {
                let mut tls = ClientTlsConfig::new().with_native_roots();
                if let Some(ca) = ca_cert {
                    let pem = std::fs::read(ca).map_err(|err| {
                        ClientError::Config(format!(
                            "cannot read {CA_CERT_ENV} file {}: {err}",
                            ca.display()
                        ))
                    })?;
                    tls = tls.ca_certificate(Certificate::from_pem(pem));
                }
                endpoint = endpoint
                    .tls_config(tls)
                    .map_err(|err| ClientError::Config(format!("TLS setup failed: {err}")))?;
            }
            endpoint
                .connect()
                .await
                .map_err(|err| ClientError::from_transport(&err, &label))
        }
    }
}
