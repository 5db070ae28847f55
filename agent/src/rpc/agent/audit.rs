//! AgentService's conversions for the activity log: a listing request into
//! a filter and a page, a watch request into a filter, and entries and
//! pages into their messages.

use omnipanel_proto::v1 as pb;

use crate::rpc::convert::{FromProto, IntoProto, TryFromProto};
use omnipanel_core::{
    audit::{Entry, Filter, Listing, parse_page_token},
    error::Error,
};

/// What ListAudit asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Which entries.
    pub filter: Filter,
    /// How many (0: the default).
    pub size: u32,
    /// Only entries older than this id (from the page token).
    pub before_id: Option<i64>,
}

impl TryFromProto<pb::ListAuditRequest> for AuditQuery {
    fn try_from_proto(request: pb::ListAuditRequest) -> Result<Self, Error> {
        if request.since_unix_ms < 0 {
            return Err(Error::invalid_argument(
                "since_unix_ms",
                "must be a time after 1970 (or 0 for all)",
            ));
        }
        Ok(Self {
            before_id: parse_page_token(&request.page_token)?,
            size: request.page_size,
            filter: Filter {
                client: request.client.trim().to_owned(),
                method: request.method.trim().to_owned(),
                project: request.project.trim().to_owned(),
                since_ms: request.since_unix_ms,
                outcome: request.outcome.trim().to_owned(),
            },
        })
    }
}

impl FromProto<pb::WatchAuditRequest> for Filter {
    fn from_proto(request: pb::WatchAuditRequest) -> Self {
        Self {
            client: request.client.trim().to_owned(),
            method: request.method.trim().to_owned(),
            project: request.project.trim().to_owned(),
            since_ms: 0,
            outcome: request.outcome.trim().to_owned(),
        }
    }
}

impl IntoProto<pb::AuditEntry> for Entry {
    fn into_proto(self) -> pb::AuditEntry {
        pb::AuditEntry {
            id: self.id,
            time_unix_ms: self.time_ms,
            client_id: self.client_id,
            client_name: self.client_name,
            peer_pid: self.peer_pid,
            peer_executable: self.peer_executable,
            peer_parents: self.peer_parents,
            peer_address: self.peer_address,
            method: self.method,
            target: self.target,
            outcome: self.outcome,
            count: self.count,
            project: self.project,
        }
    }
}

impl IntoProto<pb::ListAuditResponse> for Listing {
    fn into_proto(self) -> pb::ListAuditResponse {
        pb::ListAuditResponse {
            entries: self.entries.into_proto(),
            next_page_token: self
                .next_before_id
                .map(|id| id.to_string())
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_request_becomes_a_filter_and_a_page() {
        let query = AuditQuery::try_from_proto(pb::ListAuditRequest {
            client: " vscode ".into(),
            method: "Delete".into(),
            project: "/p".into(),
            since_unix_ms: 5,
            outcome: "ok".into(),
            page_size: 10,
            page_token: "42".into(),
        })
        .expect("valid");
        assert_eq!(query.filter.client, "vscode");
        assert_eq!(query.filter.since_ms, 5);
        assert_eq!((query.size, query.before_id), (10, Some(42)));
    }

    #[test]
    fn a_bad_page_token_or_time_names_its_field() {
        let bad = AuditQuery::try_from_proto(pb::ListAuditRequest {
            page_token: "next".into(),
            ..Default::default()
        })
        .expect_err("not a token");
        assert_eq!(bad.field(), Some("page_token"));
        let bad = AuditQuery::try_from_proto(pb::ListAuditRequest {
            since_unix_ms: -1,
            ..Default::default()
        })
        .expect_err("negative");
        assert_eq!(bad.field(), Some("since_unix_ms"));
    }

    #[test]
    fn entries_and_pages_convert() {
        let listing = Listing {
            entries: vec![Entry {
                id: 7,
                time_ms: 1_000,
                client_id: "t1".into(),
                client_name: "vscode".into(),
                peer_pid: 42,
                peer_executable: "/usr/bin/code".into(),
                peer_parents: vec!["/usr/bin/bash".into()],
                method: "FileService/ReadFile".into(),
                target: "project=/p".into(),
                project: "/p".into(),
                outcome: "ok".into(),
                count: 3,
                peer_address: "10.0.0.2:5000".into(),
            }],
            next_before_id: Some(7),
        };
        let response: pb::ListAuditResponse = listing.into_proto();
        assert_eq!(response.next_page_token, "7");
        let entry = &response.entries[0];
        assert_eq!((entry.count, entry.peer_pid), (3, 42));
        assert_eq!(entry.peer_parents, ["/usr/bin/bash"]);
        assert_eq!(entry.peer_address, "10.0.0.2:5000");
        let last: pb::ListAuditResponse = Listing::default().into_proto();
        assert_eq!(last.next_page_token, "");
        let filter = Filter::from_proto(pb::WatchAuditRequest {
            outcome: "NOT_ADMITTED".into(),
            ..Default::default()
        });
        assert_eq!(filter.outcome, "NOT_ADMITTED");
    }
}
