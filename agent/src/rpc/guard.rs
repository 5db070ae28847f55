//! The checks a handler makes beyond its method's declared scope, in one
//! place: that the project a request names is one the caller may use (the
//! project roots, and the projects its grant names, whoever opened the
//! project), and that a destructive act by a client other than the owner
//! was confirmed by the user (the retry carries the confirmation's id in
//! the `omnipanel-confirmation` metadata).

use std::{path::PathBuf, sync::Arc};

use omnipanel_core::{
    access::{Access, Act, ConfirmKind},
    projects::Projects,
    tokens::Caller,
};
use omnipanel_proto::CONFIRMATION_HEADER;
use tonic::{Request, Status, metadata::MetadataMap};

use crate::{
    context::AgentContext,
    rpc::{access, status::OrStatus},
};

/// Project and confirmation checks, shared by the services that need them.
#[derive(Debug, Clone)]
pub struct Guard {
    projects: Arc<Projects>,
    access: Arc<Access>,
}

impl Guard {
    /// Guard with the context's projects and admission.
    pub fn new(ctx: &AgentContext) -> Self {
        Self {
            projects: ctx.projects.clone(),
            access: ctx.access.clone(),
        }
    }

    /// The caller, once it is known that it may use project `reference`.
    pub async fn project<T>(
        &self,
        request: &Request<T>,
        reference: &str,
    ) -> Result<Caller, Status> {
        let caller = access::caller(request)?;
        self.projects
            .authorize(&caller, reference)
            .await
            .or_status()?;
        Ok(caller)
    }

    /// The root of project `reference` (which `caller` may use), for the
    /// descriptions of acts.
    pub async fn root(&self, caller: &Caller, reference: &str) -> Result<PathBuf, Status> {
        self.projects.root_for(caller, reference).await.or_status()
    }

    /// Go on only if `caller` may do `act` now: the owner always may; a
    /// client when the user allowed it (see `access::Confirmations::check`).
    pub fn confirm(&self, metadata: &MetadataMap, caller: &Caller, act: Act) -> Result<(), Status> {
        let presented = metadata
            .get(CONFIRMATION_HEADER)
            .and_then(|value| value.to_str().ok());
        self.access
            .confirmations()
            .check(caller, act, presented)
            .or_status()
    }
}

/// An act on a project's files, described for the user.
pub fn file_act(
    kind: ConfirmKind,
    method: &str,
    root: PathBuf,
    target: String,
    summary: String,
) -> Act {
    Act {
        kind,
        target: format!("project={} {target}", root.display()),
        summary: format!("{summary} in {}", root.display()),
        method: method.to_owned(),
        project: Some(root),
    }
}
