//! The stable reason codes clients branch on: one enum, rendered as the
//! upper-snake-case strings sent in `google.rpc.ErrorInfo.reason`. Each
//! variant says what it means and what a client should do; the same list
//! is the "Error reasons" table of `docs/api.md` (written by hand in
//! `proto/tests/error_reasons.md`, which the API reference generator
//! includes), and a test here fails when the two disagree. The strings are
//! part of the API: never change one, only add.

use std::fmt;

/// Why a request failed, for clients to branch on. Errors built without a
/// reason get the default of their kind (the first group of variants).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The named thing does not exist (the default reason of a not-found
    /// error).
    ///
    /// What a client should do: check the name or id; list what exists and pick
    /// from it.
    NotFound,
    /// The request is malformed; the status's `BadRequest` names the field (the
    /// default reason of an invalid-argument error).
    ///
    /// What a client should do: fix the named field; retrying unchanged fails
    /// again.
    InvalidArgument,
    /// The caller may not do this (the default reason of a permission error).
    ///
    /// What a client should do: do not retry; ask for the access or act as the
    /// agent's owner.
    PermissionDenied,
    /// The caller is not authenticated (the default reason of an authentication
    /// error).
    ///
    /// What a client should do: supply valid credentials, then retry.
    Unauthenticated,
    /// The agent's state does not allow the operation (the default reason of a
    /// failed precondition).
    ///
    /// What a client should do: read the message, change the state it names,
    /// then retry.
    FailedPrecondition,
    /// A concurrent change won (the default reason of an aborted operation).
    ///
    /// What a client should do: read the current state again and retry.
    Aborted,
    /// The thing to create already exists.
    ///
    /// What a client should do: use the existing one, or pick another name.
    AlreadyExists,
    /// A dependency is down (the default reason of an unavailable error).
    ///
    /// What a client should do: retry later, with backoff.
    Unavailable,
    /// A limit was hit.
    ///
    /// What a client should do: ask for less, or retry after what holds the
    /// resource is done.
    ResourceExhausted,
    /// Not available in this build or on this platform.
    ///
    /// What a client should do: do not retry; hide the feature.
    Unimplemented,
    /// A bug or an unexpected failure of the OS; the agent logged it.
    ///
    /// What a client should do: show the message; report it with `omnipanel
    /// bugreport` if it repeats.
    Internal,
    /// The socket caller runs as another user than the agent's owner.
    ///
    /// What a client should do: connect to your own agent (your own socket), or
    /// use a token on the TCP listener.
    ForeignUid,
    /// The agent could not tell which user is calling on the socket.
    ///
    /// What a client should do: connect over the agent's Unix socket directly,
    /// not through a proxy.
    NoPeerCredentials,
    /// The TCP listener needs a bearer token and none was sent.
    ///
    /// What a client should do: send `authorization: Bearer <token>` (a token
    /// from `omnipanel token create`).
    TokenMissing,
    /// The bearer token is not known or was revoked.
    ///
    /// What a client should do: get a new token from `omnipanel token create`.
    TokenInvalid,
    /// The token's scope does not allow this method.
    ///
    /// What a client should do: use a token with the scope the message names.
    ScopeTooLow,
    /// The method or setting is only for the agent's owner on its local socket, never a token.
    ///
    /// What a client should do: run it as the user the agent belongs to, on the local socket.
    OwnerOnly,
    /// The client was never admitted: it has the status scope only.
    ///
    /// What a client should do: call AgentService.RequestAccess and show the user its code, or present a token the user made.
    NotAdmitted,
    /// The user denied the access request, or it expired unanswered.
    ///
    /// What a client should do: tell the user; ask again only when the user asks you to.
    AccessDenied,
    /// A destructive act needs the user's confirmation; nothing was changed. The ErrorInfo metadata `confirmation_id` names it.
    ///
    /// What a client should do: tell the user to answer in the tray, panel or `omnipanel confirmations allow ID`, then retry the same call with metadata `omnipanel-confirmation: ID`.
    ConfirmationRequired,
    /// The confirmation presented has not been answered yet.
    ///
    /// What a client should do: wait (watch for the `confirmation_changed` event if you may read events) and retry.
    ConfirmationPending,
    /// The user denied this act, or its confirmation expired or was for another act.
    ///
    /// What a client should do: do not retry; tell the user.
    ConfirmationDenied,
    /// This peer has too many access requests pending or made too many in the last minute.
    ///
    /// What a client should do: wait for the pending ones to be answered, then ask again.
    TooManyRequests,
    /// The token may only use the models listed when it was created, and this is not one of them.
    ///
    /// What a client should do: use one of the token's allowed models, or ask the owner for a token that allows this one.
    ModelNotAllowed,
    /// The folder is, contains or sits inside a place no project may touch (the agent's own folders, credentials, keyrings, or /).
    ///
    /// What a client should do: pick a folder that holds only the project; the message names the protected place.
    ProjectDenied,
    /// A token may only open projects under the folders in `[access] project_roots`.
    ///
    /// What a client should do: ask the owner to open it, or to add a folder that holds it to `access.project_roots`.
    OutsideProjectRoots,
    /// The project is not among those this client was granted.
    ///
    /// What a client should do: use a granted project, or ask for this one with a new RequestAccess naming it.
    ProjectNotGranted,
    /// The agent's socket folder belongs to another user (at agent start).
    ///
    /// What a client should do: remove the folder or point `OMNIPANEL_SOCKET`
    /// elsewhere.
    SocketDirNotOwned,
    /// Another process serves on the agent's socket (at agent start).
    ///
    /// What a client should do: use the running agent, or stop it first.
    SocketInUse,
    /// `omnipanel-agent service` needs systemd and this system has none.
    ///
    /// What a client should do: start the agent from the init system or login
    /// session instead, or use `omnipanel autostart on`.
    SystemdMissing,
    /// The agent's state database (state.db) failed.
    ///
    /// What a client should do: retry; if it repeats, report it with `omnipanel
    /// bugreport`.
    StateDb,
    /// config.toml does not parse or validate as it stands, so no change was
    /// applied.
    ///
    /// What a client should do: fix config.toml (the message says where), then
    /// retry.
    ConfigInvalid,
    /// config.toml could not be written.
    ///
    /// What a client should do: check the file's permissions and free disk
    /// space, then retry.
    ConfigWrite,
    /// The agent's secrets file (provider API keys) cannot be read or written; nothing was changed.
    ///
    /// What a client should do: fix or move aside the file the message names, then retry.
    SecretsInvalid,
    /// No project has this id, name or path.
    ///
    /// What a client should do: open the project first (`OpenProject`), or list
    /// projects to pick one.
    ProjectNotFound,
    /// The project is known but closed, so its files are not served.
    ///
    /// What a client should do: open the project again, then retry.
    ProjectClosed,
    /// No conversation has this id, or it belongs to a project the caller is not granted.
    ///
    /// What a client should do: list the project's conversations (`ListConversations`) and pick one, or create one.
    ConversationNotFound,
    /// The file or workspace state changed since the version the request
    /// expected.
    ///
    /// What a client should do: read it again and reapply the change with the
    /// new version.
    VersionConflict,
    /// The path leaves the project (absolute elsewhere, or through `..`).
    ///
    /// What a client should do: use a path relative to the project root that
    /// stays inside it.
    OutsideProject,
    /// The path leads outside the project through a symlink, or the file system
    /// refused access.
    ///
    /// What a client should do: do not retry as is; use a path inside the
    /// project, or fix the file's permissions.
    OutsideProjectOrDenied,
    /// The file could not be moved to the trash.
    ///
    /// What a client should do: delete it permanently instead, if the user
    /// agrees.
    TrashFailed,
    /// No Ollama binary was found, so the local server cannot start.
    ///
    /// What a client should do: offer to install Ollama, or set `[ollama]
    /// binary`.
    OllamaNotInstalled,
    /// The Ollama server was started outside OmniPanel, so the agent will not
    /// stop or restart it.
    ///
    /// What a client should do: stop or restart it where it was started.
    OllamaExternal,
    /// The local Ollama server is not running or did not answer.
    ///
    /// What a client should do: start it (`StartServer`), or wait for it to
    /// come up, then retry.
    OllamaDown,
    /// Ollama answered 503: it is overloaded or still loading.
    ///
    /// What a client should do: retry later, with backoff.
    OllamaBusy,
    /// Ollama refused the request with its own error (the message is Ollama's).
    ///
    /// What a client should do: show the message; retrying unchanged usually
    /// fails again.
    OllamaError,
    /// A remote model provider did not answer.
    ///
    /// What a client should do: check the provider's address and network, then
    /// retry.
    ProviderDown,
    /// The address given for a new provider does not answer (connection
    /// refused or timed out); nothing was saved.
    ///
    /// What a client should do: fix the address (or start the server there),
    /// then add it again.
    ProviderUnreachable,
    /// The provider's host name does not resolve; nothing was saved or sent.
    ///
    /// What a client should do: check the host name in the provider's URL (and the machine's DNS), then retry.
    ProviderDnsFailed,
    /// The TLS handshake with the provider failed (untrusted or expired certificate, or plain HTTP on an https URL).
    ///
    /// What a client should do: check the URL's scheme and the server's certificate, then retry.
    ProviderTlsFailed,
    /// The provider refused the API key (HTTP 401 or 403).
    ///
    /// What a client should do: give the provider a valid API key (RemoveProvider, then AddProvider with the new key).
    ProviderUnauthorized,
    /// The provider answers, but not with the API of its kind (e.g. an HTML page, or an Ollama server added as openai).
    ///
    /// What a client should do: check the base URL (OpenAI-compatible servers usually end in /v1) and the provider kind.
    ProviderWrongApi,
    /// The provider answered HTTP 429: too many requests; the RetryInfo detail says when to retry when it said so.
    ///
    /// What a client should do: wait for the time in RetryInfo (or a few seconds), then retry.
    ProviderRateLimited,
    /// The provider name collides with a model namespace (e.g. hf.co, or the first segment of an installed model), so model strings would be ambiguous.
    ///
    /// What a client should do: pick another provider name.
    ProviderNameReserved,
    /// The operation (pull, delete, load, unload, running models) exists only on Ollama providers, and this provider is of another kind.
    ///
    /// What a client should do: run it on an Ollama provider, or manage models with the provider's own tools.
    OllamaOnly,
    /// The model is not installed on the provider.
    ///
    /// What a client should do: pull it first (`PullModel`), or pick an
    /// installed model.
    ModelNotFound,
    /// The model registry does not know this model name.
    ///
    /// What a client should do: check the spelling and tag of the model name.
    ModelNotInRegistry,
    /// The project folder is not the root of a Git repository (the agent never
    /// uses a repository above a project's folder).
    ///
    /// What a client should do: run `git init` there, open the repository's root
    /// folder as the project, or hide the Git features for this project.
    NotARepository,
    /// The remote refused the credentials.
    ///
    /// What a client should do: fix ssh-agent, the git credential helper or
    /// `[git] token`, then retry.
    GitAuth,
    /// The remote could not be reached.
    ///
    /// What a client should do: check the network and the remote's address,
    /// then retry.
    GitNetwork,
    /// Conflicts are unresolved (a merge left them, or the operation would make
    /// them).
    ///
    /// What a client should do: resolve the conflicts and stage the files, then
    /// retry.
    GitConflict,
    /// Another git process holds a lock on the repository.
    ///
    /// What a client should do: wait and retry; remove a stale `.lock` file if
    /// none is running.
    GitLocked,
    /// Git does not know the user's name and email, so it cannot commit.
    ///
    /// What a client should do: set `user.name` and `user.email` in git config,
    /// then retry.
    GitIdentityMissing,
    /// Nothing is staged, so a commit would be empty.
    ///
    /// What a client should do: stage changes first.
    NothingToCommit,
    /// Switching branches would overwrite local changes (the message lists the
    /// files).
    ///
    /// What a client should do: commit or stash the changes, then switch again.
    CheckoutConflict,
    /// The branch to delete is not fully merged into HEAD.
    ///
    /// What a client should do: delete it with force if the user is sure.
    BranchNotMerged,
    /// A fast-forward-only pull found diverged branches.
    ///
    /// What a client should do: pull in merge mode, or rebase by hand.
    NotFastForward,
    /// The remote rejected the push (usually: it has commits the local branch
    /// lacks).
    ///
    /// What a client should do: pull first, or push with force if the user is
    /// sure.
    PushRejected,
    /// The alert thresholds changed since the version the request expected.
    ///
    /// What a client should do: read the thresholds again and retry.
    ThresholdsChanged,
    /// This build has no update signing key, so no update can be verified.
    ///
    /// What a client should do: set `[update] public_key`, or update with the
    /// package manager.
    UpdateNoKey,
    /// The update manifest could not be fetched.
    ///
    /// What a client should do: retry later; check the network and `[update]
    /// manifest_url`.
    UpdateServerUnavailable,
    /// The update manifest is not valid.
    ///
    /// What a client should do: do not retry; report it to whoever publishes
    /// the updates.
    UpdateManifestInvalid,
    /// The manifest offers no build for this platform.
    ///
    /// What a client should do: do not retry; update with the package manager
    /// or wait for a release for this platform.
    UpdateNoArtifact,
    /// The running version is already the newest on the channel.
    ///
    /// What a client should do: nothing to do.
    UpdateNotAvailable,
    /// The download broke off; what arrived is kept.
    ///
    /// What a client should do: run the download again; it resumes.
    UpdateDownloadInterrupted,
    /// The downloaded update failed its size, hash or signature check and was
    /// discarded.
    ///
    /// What a client should do: do not install; download again, and report it
    /// if it repeats.
    UpdateVerificationFailed,
    /// The verified update archive is unreadable or lacks the agent program;
    /// nothing was installed.
    ///
    /// What a client should do: do not retry; report it to whoever publishes
    /// the updates.
    UpdateArtifactInvalid,
    /// The agent cannot replace its own programs (e.g. installed by a package).
    ///
    /// What a client should do: update with the package manager.
    UpdateNotWritable,
    /// Install was asked for before any update was downloaded.
    ///
    /// What a client should do: download the update first.
    UpdateNotDownloaded,
    /// A model pull runs or a model is loaded, so the install waits.
    ///
    /// What a client should do: retry when it is done, or force the install.
    UpdateDeferred,
    /// No earlier version was kept, so there is nothing to roll back to.
    ///
    /// What a client should do: do not retry; reinstall the wanted version by
    /// hand.
    UpdateNoRollback,
    /// The operation ran past its time limit: the server's bound for the
    /// method (`server.request_timeout` for most calls), the client's own
    /// deadline when shorter, or a text search's `files.search_timeout`.
    /// The default reason of a deadline error; what was already sent stands.
    ///
    /// What a client should do: narrow the request (a more specific pattern
    /// or folder) or retry with a longer deadline; the agent may still finish
    /// work it had started.
    DeadlineExceeded,
    /// The project's repository reaches outside the project (a `.git` file
    /// pointing elsewhere, as in a linked worktree or submodule, or
    /// `core.worktree`), so the agent does not use it.
    ///
    /// What a client should do: do not retry; open the repository's main folder
    /// as the project.
    RepositoryOutsideProject,
    /// The path is inside a `.git` folder, which FileService never changes.
    ///
    /// What a client should do: do not retry; make Git changes through
    /// GitService.
    InsideGitFolder,
    /// The update manifest's signature is missing, was not made with the
    /// update key, or does not match the manifest or its signed comment;
    /// nothing was changed.
    ///
    /// What a client should do: do not install; report it to whoever publishes
    /// the updates (the manifest may have been tampered with).
    UpdateManifestUnsigned,
    /// The manifest offers a version lower than the highest one installed
    /// before (a replayed old manifest); nothing was changed.
    ///
    /// What a client should do: do not retry; only `omnipanel update rollback`
    /// goes back to an earlier version.
    UpdateDowngradeRefused,
    /// The manifest is for another channel, or offers a pre-release on the
    /// stable channel; nothing was changed.
    ///
    /// What a client should do: do not retry; check `[update] channel` and
    /// `[update] manifest_url`.
    UpdateWrongChannel,
    /// The call was refused because the connection, the caller or the TCP
    /// listener as a whole already holds as many open calls and streams as
    /// the agent allows; the message says which.
    ///
    /// What a client should do: close streams it no longer reads, then
    /// retry; do not retry in a tight loop.
    TooManyStreams,
    /// A request (or an answer) is larger than the service accepts in one
    /// message; the message names the size and the limit.
    ///
    /// What a client should do: send less in one call (split a write, a
    /// batch or a chat's images); do not retry unchanged.
    MessageTooLarge,
    /// This agent was installed by a package manager (e.g. from the .deb),
    /// which owns its programs, so it does not download or install updates
    /// itself; the message names the command that updates it.
    ///
    /// What a client should do: do not retry; update with the package manager
    /// (for the .deb: `sudo apt update && sudo apt upgrade omnipanel`).
    UpdatePackageManaged,
}

impl Reason {
    /// Every reason, in the order of the documentation table.
    pub const ALL: &[Reason] = &[
        Self::NotFound,
        Self::InvalidArgument,
        Self::PermissionDenied,
        Self::Unauthenticated,
        Self::FailedPrecondition,
        Self::Aborted,
        Self::AlreadyExists,
        Self::Unavailable,
        Self::ResourceExhausted,
        Self::Unimplemented,
        Self::Internal,
        Self::ForeignUid,
        Self::NoPeerCredentials,
        Self::TokenMissing,
        Self::TokenInvalid,
        Self::ScopeTooLow,
        Self::OwnerOnly,
        Self::NotAdmitted,
        Self::AccessDenied,
        Self::ConfirmationRequired,
        Self::ConfirmationPending,
        Self::ConfirmationDenied,
        Self::TooManyRequests,
        Self::ModelNotAllowed,
        Self::ProjectDenied,
        Self::OutsideProjectRoots,
        Self::ProjectNotGranted,
        Self::SocketDirNotOwned,
        Self::SocketInUse,
        Self::SystemdMissing,
        Self::StateDb,
        Self::ConfigInvalid,
        Self::ConfigWrite,
        Self::SecretsInvalid,
        Self::ProjectNotFound,
        Self::ProjectClosed,
        Self::ConversationNotFound,
        Self::VersionConflict,
        Self::OutsideProject,
        Self::OutsideProjectOrDenied,
        Self::TrashFailed,
        Self::OllamaNotInstalled,
        Self::OllamaExternal,
        Self::OllamaDown,
        Self::OllamaBusy,
        Self::OllamaError,
        Self::ProviderDown,
        Self::ProviderUnreachable,
        Self::ProviderDnsFailed,
        Self::ProviderTlsFailed,
        Self::ProviderUnauthorized,
        Self::ProviderWrongApi,
        Self::ProviderRateLimited,
        Self::ProviderNameReserved,
        Self::OllamaOnly,
        Self::ModelNotFound,
        Self::ModelNotInRegistry,
        Self::NotARepository,
        Self::GitAuth,
        Self::GitNetwork,
        Self::GitConflict,
        Self::GitLocked,
        Self::GitIdentityMissing,
        Self::NothingToCommit,
        Self::CheckoutConflict,
        Self::BranchNotMerged,
        Self::NotFastForward,
        Self::PushRejected,
        Self::ThresholdsChanged,
        Self::UpdateNoKey,
        Self::UpdateServerUnavailable,
        Self::UpdateManifestInvalid,
        Self::UpdateNoArtifact,
        Self::UpdateNotAvailable,
        Self::UpdateDownloadInterrupted,
        Self::UpdateVerificationFailed,
        Self::UpdateArtifactInvalid,
        Self::UpdateNotWritable,
        Self::UpdateNotDownloaded,
        Self::UpdateDeferred,
        Self::UpdateNoRollback,
        Self::DeadlineExceeded,
        Self::RepositoryOutsideProject,
        Self::InsideGitFolder,
        Self::UpdateManifestUnsigned,
        Self::UpdateDowngradeRefused,
        Self::UpdateWrongChannel,
        Self::TooManyStreams,
        Self::MessageTooLarge,
        Self::UpdatePackageManaged,
    ];

    /// The string sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotFound => "NOT_FOUND",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::Unavailable => "UNAVAILABLE",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Internal => "INTERNAL",
            Self::ForeignUid => "FOREIGN_UID",
            Self::NoPeerCredentials => "NO_PEER_CREDENTIALS",
            Self::TokenMissing => "TOKEN_MISSING",
            Self::TokenInvalid => "TOKEN_INVALID",
            Self::ScopeTooLow => "SCOPE_TOO_LOW",
            Self::OwnerOnly => "OWNER_ONLY",
            Self::NotAdmitted => "NOT_ADMITTED",
            Self::AccessDenied => "ACCESS_DENIED",
            Self::ConfirmationRequired => "CONFIRMATION_REQUIRED",
            Self::ConfirmationPending => "CONFIRMATION_PENDING",
            Self::ConfirmationDenied => "CONFIRMATION_DENIED",
            Self::TooManyRequests => "TOO_MANY_REQUESTS",
            Self::ModelNotAllowed => "MODEL_NOT_ALLOWED",
            Self::ProjectDenied => "PROJECT_DENIED",
            Self::OutsideProjectRoots => "OUTSIDE_PROJECT_ROOTS",
            Self::ProjectNotGranted => "PROJECT_NOT_GRANTED",
            Self::SocketDirNotOwned => "SOCKET_DIR_NOT_OWNED",
            Self::SocketInUse => "SOCKET_IN_USE",
            Self::SystemdMissing => "SYSTEMD_MISSING",
            Self::StateDb => "STATE_DB",
            Self::ConfigInvalid => "CONFIG_INVALID",
            Self::ConfigWrite => "CONFIG_WRITE",
            Self::SecretsInvalid => "SECRETS_INVALID",
            Self::ProjectNotFound => "PROJECT_NOT_FOUND",
            Self::ProjectClosed => "PROJECT_CLOSED",
            Self::ConversationNotFound => "CONVERSATION_NOT_FOUND",
            Self::VersionConflict => "VERSION_CONFLICT",
            Self::OutsideProject => "OUTSIDE_PROJECT",
            Self::OutsideProjectOrDenied => "OUTSIDE_PROJECT_OR_DENIED",
            Self::TrashFailed => "TRASH_FAILED",
            Self::OllamaNotInstalled => "OLLAMA_NOT_INSTALLED",
            Self::OllamaExternal => "OLLAMA_EXTERNAL",
            Self::OllamaDown => "OLLAMA_DOWN",
            Self::OllamaBusy => "OLLAMA_BUSY",
            Self::OllamaError => "OLLAMA_ERROR",
            Self::ProviderDown => "PROVIDER_DOWN",
            Self::ProviderUnreachable => "PROVIDER_UNREACHABLE",
            Self::ProviderDnsFailed => "PROVIDER_DNS_FAILED",
            Self::ProviderTlsFailed => "PROVIDER_TLS_FAILED",
            Self::ProviderUnauthorized => "PROVIDER_UNAUTHORIZED",
            Self::ProviderWrongApi => "PROVIDER_WRONG_API",
            Self::ProviderRateLimited => "PROVIDER_RATE_LIMITED",
            Self::ProviderNameReserved => "PROVIDER_NAME_RESERVED",
            Self::OllamaOnly => "OLLAMA_ONLY",
            Self::ModelNotFound => "MODEL_NOT_FOUND",
            Self::ModelNotInRegistry => "MODEL_NOT_IN_REGISTRY",
            Self::NotARepository => "NOT_A_REPOSITORY",
            Self::GitAuth => "GIT_AUTH",
            Self::GitNetwork => "GIT_NETWORK",
            Self::GitConflict => "GIT_CONFLICT",
            Self::GitLocked => "GIT_LOCKED",
            Self::GitIdentityMissing => "GIT_IDENTITY_MISSING",
            Self::NothingToCommit => "NOTHING_TO_COMMIT",
            Self::CheckoutConflict => "CHECKOUT_CONFLICT",
            Self::BranchNotMerged => "BRANCH_NOT_MERGED",
            Self::NotFastForward => "NOT_FAST_FORWARD",
            Self::PushRejected => "PUSH_REJECTED",
            Self::ThresholdsChanged => "THRESHOLDS_CHANGED",
            Self::UpdateNoKey => "UPDATE_NO_KEY",
            Self::UpdateServerUnavailable => "UPDATE_SERVER_UNAVAILABLE",
            Self::UpdateManifestInvalid => "UPDATE_MANIFEST_INVALID",
            Self::UpdateNoArtifact => "UPDATE_NO_ARTIFACT",
            Self::UpdateNotAvailable => "UPDATE_NOT_AVAILABLE",
            Self::UpdateDownloadInterrupted => "UPDATE_DOWNLOAD_INTERRUPTED",
            Self::UpdateVerificationFailed => "UPDATE_VERIFICATION_FAILED",
            Self::UpdateArtifactInvalid => "UPDATE_ARTIFACT_INVALID",
            Self::UpdateNotWritable => "UPDATE_NOT_WRITABLE",
            Self::UpdateNotDownloaded => "UPDATE_NOT_DOWNLOADED",
            Self::UpdateDeferred => "UPDATE_DEFERRED",
            Self::UpdateNoRollback => "UPDATE_NO_ROLLBACK",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::RepositoryOutsideProject => "REPOSITORY_OUTSIDE_PROJECT",
            Self::InsideGitFolder => "INSIDE_GIT_FOLDER",
            Self::UpdateManifestUnsigned => "UPDATE_MANIFEST_UNSIGNED",
            Self::UpdateDowngradeRefused => "UPDATE_DOWNGRADE_REFUSED",
            Self::UpdateWrongChannel => "UPDATE_WRONG_CHANNEL",
            Self::TooManyStreams => "TOO_MANY_STREAMS",
            Self::MessageTooLarge => "MESSAGE_TOO_LARGE",
            Self::UpdatePackageManaged => "UPDATE_PACKAGE_MANAGED",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The reasons in the "Error reasons" table of `docs/api.md`.
    fn documented() -> BTreeSet<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let table = text
            .split_once("## Error reasons")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        table
            .lines()
            .skip_while(|line| !line.starts_with("| Reason"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .filter_map(|line| line.split('`').nth(1))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn docs_api_md_lists_exactly_the_reasons() {
        let ours: BTreeSet<String> = Reason::ALL.iter().map(|r| r.as_str().to_owned()).collect();
        assert_eq!(
            ours.len(),
            Reason::ALL.len(),
            "a reason string is used twice"
        );
        let documented = documented();
        let undocumented: Vec<_> = ours.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&ours).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "the reasons in proto/tests/error_reasons.md (docs/api.md) and in reason.rs differ: \
             missing from the docs {undocumented:?}, missing from the enum {unknown:?}"
        );
    }

    #[test]
    fn strings_are_upper_snake_case() {
        for reason in Reason::ALL {
            let s = reason.as_str();
            assert!(
                s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                "{s}"
            );
            assert_eq!(reason.to_string(), s);
        }
    }
}
