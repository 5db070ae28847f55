//! Client admission: who the owner is (the owner credential, `owner.rs`),
//! access requests the user approves or denies (`requests.rs`), and the
//! confirmation a client other than the owner needs before a destructive
//! act (`confirm.rs`). Grants themselves are tokens (`crate::tokens`).

pub mod confirm;
pub mod events;
pub mod owner;
pub mod requests;

use std::{path::Path, sync::Arc};

use crate::{
    config::{SettingsStore, SocketClients},
    error::Result,
    events::Publisher,
    tokens::{TokenInfo, Tokens},
};

pub use self::{
    confirm::{Act, Confirmation, ConfirmationState, Confirmations},
    events::AccessEvent,
    owner::OwnerCredential,
    requests::{
        AccessAsk, AccessRequest, Approval, Expiry, Peer, RequestState, RequestUpdate,
        RequestWatch, Requests,
    },
};

/// Client admission: the owner credential, the grants (tokens), pending
/// access requests and confirmations.
#[derive(Debug)]
pub struct Access {
    owner: OwnerCredential,
    tokens: Tokens,
    socket_clients: SocketClients,
    requests: Requests,
    confirmations: Confirmations,
    bus: Publisher<AccessEvent>,
}

impl Access {
    /// Load (or make) the owner credential at `credential`, and serve
    /// requests and confirmations with the timeout `settings` name.
    pub async fn start(
        credential: &Path,
        tokens: Tokens,
        settings: Arc<SettingsStore>,
        bus: Publisher<AccessEvent>,
    ) -> Result<Arc<Self>> {
        let path = credential.to_owned();
        let owner =
            tokio::task::spawn_blocking(move || OwnerCredential::load_or_create(&path)).await??;
        let socket_clients = settings.current().access.socket_clients;
        Ok(Arc::new(Self {
            owner,
            requests: Requests::new(tokens.clone(), settings.clone(), bus.clone()),
            confirmations: Confirmations::new(settings, bus.clone()),
            bus,
            tokens,
            socket_clients,
        }))
    }

    /// Stop: pending requests end as expired.
    pub async fn shutdown(&self) {
        self.requests.shutdown();
    }

    /// The owner credential.
    pub fn owner(&self) -> &OwnerCredential {
        &self.owner
    }

    /// The grants.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Who an uncredentialed socket client is (read at start).
    pub fn socket_clients(&self) -> SocketClients {
        self.socket_clients
    }

    /// Pending access requests.
    pub fn requests(&self) -> &Requests {
        &self.requests
    }

    /// Confirmations of destructive acts.
    pub fn confirmations(&self) -> &Confirmations {
        &self.confirmations
    }

    /// Ask the user to admit a client calling from `origin`; its
    /// process chain is read from the kernel, not taken from the client.
    pub async fn request(&self, ask: AccessAsk, origin: Origin) -> Result<RequestWatch> {
        // Reading the peer's processes and resolving the project folders
        // are disk work: off the executor.
        let requests = self.requests.clone();
        tokio::task::spawn_blocking(move || requests.submit(ask, origin.peer())).await?
    }

    /// End a client's grant: its token is refused from now on, its streams
    /// end, and what the user allowed it for a while is forgotten.
    pub async fn revoke(&self, id_or_name: &str) -> Result<TokenInfo> {
        let info = self.tokens.revoke(id_or_name).await?;
        self.confirmations.forget_client(&info.id);
        tracing::info!(id = %info.id, name = %info.name, "client revoked");
        self.bus.publish(AccessEvent::ClientsChanged {
            client_id: info.id.clone(),
            client_name: client_name(&info),
            revoked: true,
        });
        Ok(info)
    }

    /// The admitted clients (expired grants are dropped, and announced).
    pub async fn clients(&self) -> Result<Vec<TokenInfo>> {
        for info in self.tokens.expire().await? {
            self.confirmations.forget_client(&info.id);
            self.bus.publish(AccessEvent::ClientsChanged {
                client_id: info.id.clone(),
                client_name: client_name(&info),
                revoked: true,
            });
        }
        self.tokens.list().await
    }
}

/// The name a client is shown by: the one it gave itself, else its token's.
pub fn client_name(info: &TokenInfo) -> String {
    if info.terms.client_name.is_empty() {
        info.name.clone()
    } else {
        info.terms.client_name.clone()
    }
}

/// Where a call came from, as the transport saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The local socket; the peer's pid when the kernel gave one.
    Socket(Option<u32>),
    /// TCP, from this address.
    Tcp(String),
}

impl Origin {
    /// What is known about the peer (reads `/proc`: blocking).
    pub fn peer(self) -> Peer {
        match self {
            Self::Socket(pid) => Peer {
                transport: "socket".to_owned(),
                processes: pid
                    .map(crate::platform::peer_process::chain)
                    .unwrap_or_default(),
                address: String::new(),
            },
            Self::Tcp(address) => Peer {
                transport: "tcp".to_owned(),
                processes: Vec::new(),
                address,
            },
        }
    }
}

/// A kind of destructive act that a client other than the owner may do
/// only once the user confirms it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConfirmKind {
    /// Delete for good, not to the trash.
    DeletePermanently,
    /// Delete a folder.
    DeleteFolder,
    /// Replace an existing entry (Move, Copy, a batch step).
    Overwrite,
    /// Delete a model.
    DeleteModel,
    /// Delete an unmerged branch.
    ForceDeleteBranch,
    /// Push to a remote.
    Push,
    /// Push with force: always asked.
    ForcePush,
    /// Install an update.
    InstallUpdate,
    /// Remove a model provider.
    RemoveProvider,
}

impl ConfirmKind {
    /// Every kind.
    pub const ALL: [ConfirmKind; 9] = [
        Self::DeletePermanently,
        Self::DeleteFolder,
        Self::Overwrite,
        Self::DeleteModel,
        Self::ForceDeleteBranch,
        Self::Push,
        Self::ForcePush,
        Self::InstallUpdate,
        Self::RemoveProvider,
    ];

    /// Its stable name ("delete-model").
    pub fn name(self) -> &'static str {
        match self {
            Self::DeletePermanently => "delete-permanently",
            Self::DeleteFolder => "delete-folder",
            Self::Overwrite => "overwrite",
            Self::DeleteModel => "delete-model",
            Self::ForceDeleteBranch => "force-delete-branch",
            Self::Push => "push",
            Self::ForcePush => "force-push",
            Self::InstallUpdate => "install-update",
            Self::RemoveProvider => "remove-provider",
        }
    }

    /// From its stable name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.name() == name.trim())
    }

    /// Whether the user may allow it in advance; force push is asked every
    /// time.
    pub fn can_be_allowed_in_advance(self) -> bool {
        self != Self::ForcePush
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in ConfirmKind::ALL {
            assert_eq!(ConfirmKind::parse(kind.name()), Some(kind));
        }
        assert_eq!(ConfirmKind::parse("rm -rf"), None);
        assert!(!ConfirmKind::ForcePush.can_be_allowed_in_advance());
    }
}
