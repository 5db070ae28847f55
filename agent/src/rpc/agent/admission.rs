//! AgentService's conversions for client admission: access requests and
//! their peers, grants listed as clients, expiries, confirmations and the
//! kinds of destructive act, and the admission events.

use std::path::PathBuf;

use omnipanel_proto::v1 as pb;

use crate::rpc::convert::{IntoProto, TryFromProto};
use omnipanel_core::{
    access::{
        self, AccessAsk, AccessRequest, Approval, ConfirmKind, Confirmation, ConfirmationState,
        Expiry, Peer, RequestState,
    },
    error::Error,
    platform::peer_process::PeerProcess,
    tokens::{Scopes, TokenInfo},
};

impl IntoProto<pb::ConfirmKind> for ConfirmKind {
    fn into_proto(self) -> pb::ConfirmKind {
        match self {
            ConfirmKind::DeletePermanently => pb::ConfirmKind::DeletePermanently,
            ConfirmKind::DeleteFolder => pb::ConfirmKind::DeleteFolder,
            ConfirmKind::Overwrite => pb::ConfirmKind::Overwrite,
            ConfirmKind::DeleteModel => pb::ConfirmKind::DeleteModel,
            ConfirmKind::ForceDeleteBranch => pb::ConfirmKind::ForceDeleteBranch,
            ConfirmKind::Push => pb::ConfirmKind::Push,
            ConfirmKind::ForcePush => pb::ConfirmKind::ForcePush,
            ConfirmKind::InstallUpdate => pb::ConfirmKind::InstallUpdate,
            ConfirmKind::RemoveProvider => pb::ConfirmKind::RemoveProvider,
        }
    }
}

impl TryFromProto<i32> for ConfirmKind {
    fn try_from_proto(value: i32) -> Result<Self, Error> {
        let kind = pb::ConfirmKind::try_from(value).unwrap_or(pb::ConfirmKind::Unspecified);
        ConfirmKind::ALL
            .into_iter()
            .find(|known| known.into_proto() == kind)
            .ok_or_else(|| {
                Error::invalid_argument(
                    "allowed_without_confirmation",
                    format!("{value} is not a kind of act"),
                )
            })
    }
}

fn kinds_into_proto(kinds: &[ConfirmKind]) -> Vec<i32> {
    kinds
        .iter()
        .map(|kind| i32::from(kind.into_proto()))
        .collect()
}

impl IntoProto<pb::Expiry> for Expiry {
    fn into_proto(self) -> pb::Expiry {
        match self {
            Expiry::Unspecified => pb::Expiry::Unspecified,
            Expiry::Once => pb::Expiry::Once,
            Expiry::Hour => pb::Expiry::Hour,
            Expiry::Day => pb::Expiry::Day,
            Expiry::Always => pb::Expiry::Always,
        }
    }
}

impl TryFromProto<i32> for Expiry {
    fn try_from_proto(value: i32) -> Result<Self, Error> {
        match pb::Expiry::try_from(value) {
            Ok(pb::Expiry::Unspecified) => Ok(Expiry::Unspecified),
            Ok(pb::Expiry::Once) => Ok(Expiry::Once),
            Ok(pb::Expiry::Hour) => Ok(Expiry::Hour),
            Ok(pb::Expiry::Day) => Ok(Expiry::Day),
            Ok(pb::Expiry::Always) => Ok(Expiry::Always),
            Err(_) => Err(Error::invalid_argument(
                "expiry",
                format!("{value} is not an expiry"),
            )),
        }
    }
}

impl IntoProto<pb::PeerProcess> for PeerProcess {
    fn into_proto(self) -> pb::PeerProcess {
        pb::PeerProcess {
            pid: self.pid,
            executable: self.executable,
            command_line: self.command_line,
        }
    }
}

impl IntoProto<pb::Peer> for Peer {
    fn into_proto(self) -> pb::Peer {
        pb::Peer {
            transport: self.transport,
            processes: self.processes.into_proto(),
            address: self.address,
        }
    }
}

impl IntoProto<pb::AccessRequestState> for RequestState {
    fn into_proto(self) -> pb::AccessRequestState {
        match self {
            RequestState::Pending => pb::AccessRequestState::Pending,
            RequestState::Approved => pb::AccessRequestState::Approved,
            RequestState::Denied => pb::AccessRequestState::Denied,
            RequestState::Expired => pb::AccessRequestState::Expired,
            RequestState::Withdrawn => pb::AccessRequestState::Withdrawn,
        }
    }
}

fn paths_into_proto(paths: Vec<PathBuf>) -> Vec<String> {
    paths
        .into_iter()
        .map(|path| path.display().to_string())
        .collect()
}

impl IntoProto<pb::AccessRequest> for AccessRequest {
    fn into_proto(self) -> pb::AccessRequest {
        pb::AccessRequest {
            id: self.id,
            code: self.code,
            client_name: self.ask.client_name,
            scopes: self.ask.scopes.into_proto(),
            projects: paths_into_proto(self.ask.projects),
            reason: self.ask.reason,
            peer: Some(self.peer.into_proto()),
            state: self.state.into_proto().into(),
            created_unix_ms: self.created_ms,
            expires_unix_ms: self.expires_ms,
            expiry: self.ask.expiry.into_proto().into(),
        }
    }
}

impl TryFromProto<pb::RequestAccessRequest> for AccessAsk {
    fn try_from_proto(request: pb::RequestAccessRequest) -> Result<Self, Error> {
        Ok(AccessAsk {
            client_name: request.client_name,
            scopes: Scopes::try_from_proto(request.scopes.as_slice())?,
            projects: request.projects.into_iter().map(PathBuf::from).collect(),
            reason: request.reason,
            expiry: Expiry::try_from_proto(request.expiry)?,
        })
    }
}

impl TryFromProto<pb::ApproveAccessRequest> for Approval {
    fn try_from_proto(request: pb::ApproveAccessRequest) -> Result<Self, Error> {
        Ok(Approval {
            scopes: if request.scopes.is_empty() {
                None
            } else {
                Some(Scopes::try_from_proto(request.scopes.as_slice())?)
            },
            projects: request.projects.into_iter().map(PathBuf::from).collect(),
            expiry: Expiry::try_from_proto(request.expiry)?,
            without_confirmation: request
                .allowed_without_confirmation
                .into_iter()
                .map(ConfirmKind::try_from_proto)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A grant as a client; `open_calls` is the server's count of its calls.
impl IntoProto<pb::Client> for (TokenInfo, u32) {
    fn into_proto(self) -> pb::Client {
        let (info, open_calls) = self;
        pb::Client {
            name: access::client_name(&info),
            id: info.id,
            scopes: info.scopes.into_proto(),
            projects: paths_into_proto(info.terms.projects),
            approved_unix_ms: info.created_ms,
            expires_unix_ms: info.terms.expires_ms.unwrap_or(0),
            last_used_unix_ms: info.last_used_ms,
            allowed_without_confirmation: kinds_into_proto(&info.terms.without_confirmation),
            open_calls,
            peer: (!info.terms.peer.is_empty()).then(|| pb::Peer {
                transport: "socket".to_owned(),
                processes: info.terms.peer.into_proto(),
                address: String::new(),
            }),
            this_run_only: info.terms.this_run_only,
        }
    }
}

impl IntoProto<pb::ConfirmationState> for ConfirmationState {
    fn into_proto(self) -> pb::ConfirmationState {
        match self {
            ConfirmationState::Pending => pb::ConfirmationState::Pending,
            ConfirmationState::Allowed => pb::ConfirmationState::Allowed,
            ConfirmationState::Denied => pb::ConfirmationState::Denied,
            ConfirmationState::Expired => pb::ConfirmationState::Expired,
            ConfirmationState::Used => pb::ConfirmationState::Used,
        }
    }
}

impl IntoProto<pb::Confirmation> for Confirmation {
    fn into_proto(self) -> pb::Confirmation {
        pb::Confirmation {
            id: self.id,
            client_id: self.client_id,
            client_name: self.client_name,
            kind: self.act.kind.into_proto().into(),
            summary: self.act.summary,
            method: self.act.method,
            state: self.state.into_proto().into(),
            created_unix_ms: self.created_ms,
            expires_unix_ms: self.expires_ms,
            project: self
                .act
                .project
                .map(|path| path.display().to_string())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnipanel_core::tokens::{GrantTerms, Scope};

    #[test]
    fn every_kind_and_expiry_maps_both_ways() {
        for kind in ConfirmKind::ALL {
            let wire: pb::ConfirmKind = kind.into_proto();
            assert_eq!(ConfirmKind::try_from_proto(wire.into()).ok(), Some(kind));
        }
        assert!(ConfirmKind::try_from_proto(0).is_err());
        for expiry in [
            Expiry::Unspecified,
            Expiry::Once,
            Expiry::Hour,
            Expiry::Day,
            Expiry::Always,
        ] {
            let wire: pb::Expiry = expiry.into_proto();
            assert_eq!(Expiry::try_from_proto(wire.into()).ok(), Some(expiry));
        }
        assert_eq!(
            Expiry::try_from_proto(42).unwrap_err().field(),
            Some("expiry")
        );
    }

    #[test]
    fn an_ask_and_an_approval_come_from_their_requests() {
        let ask = AccessAsk::try_from_proto(pb::RequestAccessRequest {
            client_name: "VS Code".into(),
            scopes: vec![pb::Scope::Write.into()],
            projects: vec!["/home/me/app".into()],
            reason: "edit".into(),
            expiry: pb::Expiry::Day.into(),
        })
        .unwrap();
        assert!(ask.scopes.contains(Scope::Read), "write brings read");
        assert_eq!(ask.expiry, Expiry::Day);
        let bad = AccessAsk::try_from_proto(pb::RequestAccessRequest {
            scopes: vec![77],
            ..Default::default()
        });
        assert_eq!(bad.unwrap_err().field(), Some("scopes"));
        let approval = Approval::try_from_proto(pb::ApproveAccessRequest {
            id: "x".into(),
            scopes: vec![],
            projects: vec![],
            expiry: pb::Expiry::Unspecified.into(),
            allowed_without_confirmation: vec![pb::ConfirmKind::Push.into()],
        })
        .unwrap();
        assert_eq!(approval.scopes, None, "no scopes: what was asked");
        assert_eq!(approval.without_confirmation, vec![ConfirmKind::Push]);
    }

    #[test]
    fn a_client_names_itself_by_its_own_name() {
        let info = TokenInfo {
            id: "t1".into(),
            name: "VS Code (123-456)".into(),
            scopes: Scopes::of([Scope::Infer]),
            created_ms: 1,
            last_used_ms: 2,
            terms: GrantTerms {
                client_name: "VS Code".into(),
                expires_ms: Some(9),
                peer: vec![PeerProcess {
                    pid: 5,
                    executable: "/usr/bin/code".into(),
                    command_line: "code".into(),
                }],
                ..GrantTerms::default()
            },
        };
        let client: pb::Client = (info, 2).into_proto();
        assert_eq!(client.name, "VS Code");
        assert_eq!(client.expires_unix_ms, 9);
        assert_eq!(client.open_calls, 2);
        assert_eq!(client.peer.map(|p| p.processes.len()), Some(1));
        assert!(client.scopes.contains(&pb::Scope::Infer.into()));
    }
}
