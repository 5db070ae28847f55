//! Conversions between GitService messages and the git domain: status,
//! branches, commits, history pages, diffs, transfer progress and results.

use omnipanel_proto::v1 as pb;

use crate::rpc::convert::{FromProto, IntoProto};
use omnipanel_core::git::{
    LogPage, LogQuery, PullResult, PushSpec,
    diff::{DiffQuery, DiffResult, DiffTarget, FileDiff, HunkInfo, Line},
    remote::{Progress, PullMode, PullOutcome, RefChange},
    repo::{BranchInfo, Change, CommitInfo, Entry, Operation, Person, RepoStatus},
};

impl IntoProto<pb::ChangeType> for Change {
    fn into_proto(self) -> pb::ChangeType {
        match self {
            Self::Added => pb::ChangeType::Added,
            Self::Modified => pb::ChangeType::Modified,
            Self::Deleted => pb::ChangeType::Deleted,
            Self::Renamed => pb::ChangeType::Renamed,
            Self::TypeChanged => pb::ChangeType::TypeChanged,
            Self::Untracked => pb::ChangeType::Untracked,
            Self::Conflicted => pb::ChangeType::Conflicted,
        }
    }
}

impl IntoProto<pb::StatusEntry> for Entry {
    fn into_proto(self) -> pb::StatusEntry {
        pb::StatusEntry {
            path: self.path,
            old_path: self.old_path.unwrap_or_default(),
            change: self.change.into_proto().into(),
        }
    }
}

impl IntoProto<pb::RepoOperation> for Operation {
    fn into_proto(self) -> pb::RepoOperation {
        match self {
            Self::None => pb::RepoOperation::Unspecified,
            Self::Merge => pb::RepoOperation::Merge,
            Self::Rebase => pb::RepoOperation::Rebase,
            Self::CherryPick => pb::RepoOperation::CherryPick,
            Self::Revert => pb::RepoOperation::Revert,
            Self::Bisect => pb::RepoOperation::Bisect,
            Self::ApplyMailbox => pb::RepoOperation::ApplyMailbox,
        }
    }
}

impl IntoProto<pb::RepoStatus> for RepoStatus {
    fn into_proto(self) -> pb::RepoStatus {
        pb::RepoStatus {
            branch: self.branch.unwrap_or_default(),
            detached: self.detached,
            empty: self.empty,
            head: self.head.unwrap_or_default(),
            head_summary: self.head_summary,
            upstream: self.upstream.map(|(name, ahead, behind)| pb::Upstream {
                name,
                ahead,
                behind,
            }),
            staged: self.staged.into_proto(),
            unstaged: self.unstaged.into_proto(),
            untracked: self.untracked.into_proto(),
            conflicted: self.conflicted.into_proto(),
            stash_count: self.stash_count,
            operation: self.operation.into_proto().into(),
        }
    }
}

impl IntoProto<pb::Branch> for BranchInfo {
    fn into_proto(self) -> pb::Branch {
        pb::Branch {
            name: self.name,
            remote: self.remote,
            current: self.current,
            upstream: self.upstream.unwrap_or_default(),
            ahead: self.ahead,
            behind: self.behind,
            commit: self.commit,
            summary: self.summary,
            commit_time_unix_ms: self.time_ms,
        }
    }
}

impl IntoProto<pb::Signature> for Person {
    fn into_proto(self) -> pb::Signature {
        pb::Signature {
            name: self.name,
            email: self.email,
            time_unix_ms: self.time_ms,
        }
    }
}

impl IntoProto<pb::Commit> for CommitInfo {
    fn into_proto(self) -> pb::Commit {
        pb::Commit {
            id: self.id,
            short_id: self.short_id,
            summary: self.summary,
            message: self.message,
            author: Some(self.author.into_proto()),
            committer: Some(self.committer.into_proto()),
            parents: self.parents,
        }
    }
}

impl FromProto<pb::GetLogRequest> for LogQuery {
    fn from_proto(proto: pb::GetLogRequest) -> Self {
        Self {
            start: proto.start,
            limit: proto.limit,
            page_token: proto.page_token,
            path: proto.path,
        }
    }
}

impl IntoProto<pb::GetLogResponse> for LogPage {
    fn into_proto(self) -> pb::GetLogResponse {
        pb::GetLogResponse {
            commits: self.commits.into_proto(),
            next_page_token: self.next_page_token,
        }
    }
}

/// Unset and unknown targets compare the worktree with the index (what
/// `git diff` shows).
impl FromProto<pb::GetDiffRequest> for DiffQuery {
    fn from_proto(proto: pb::GetDiffRequest) -> Self {
        let target = match proto.target() {
            pb::DiffTarget::IndexToHead => DiffTarget::IndexToHead,
            pb::DiffTarget::WorktreeToHead => DiffTarget::WorktreeToHead,
            pb::DiffTarget::Commits => DiffTarget::Commits {
                from: proto.from,
                to: proto.to,
            },
            pb::DiffTarget::Unspecified | pb::DiffTarget::WorktreeToIndex => {
                DiffTarget::WorktreeToIndex
            }
        };
        Self {
            target,
            paths: proto.paths,
            context_lines: proto.context_lines,
            max_bytes: proto.max_bytes,
        }
    }
}

impl IntoProto<pb::DiffLine> for Line {
    fn into_proto(self) -> pb::DiffLine {
        pb::DiffLine {
            origin: self.origin.to_string(),
            content: self.content,
            old_line: self.old_line,
            new_line: self.new_line,
        }
    }
}

impl IntoProto<pb::Hunk> for HunkInfo {
    fn into_proto(self) -> pb::Hunk {
        pb::Hunk {
            header: self.header,
            old_start: self.old_start,
            old_lines: self.old_lines,
            new_start: self.new_start,
            new_lines: self.new_lines,
            lines: self.lines.into_proto(),
        }
    }
}

impl IntoProto<pb::FileDiff> for FileDiff {
    fn into_proto(self) -> pb::FileDiff {
        pb::FileDiff {
            old_path: self.old_path,
            new_path: self.new_path,
            change: self.change.into_proto().into(),
            binary: self.binary,
            additions: self.additions,
            deletions: self.deletions,
            hunks: self.hunks.into_proto(),
        }
    }
}

impl IntoProto<pb::GetDiffResponse> for DiffResult {
    fn into_proto(self) -> pb::GetDiffResponse {
        pb::GetDiffResponse {
            files: self.files.into_proto(),
            patch: self.patch,
            truncated: self.truncated,
            files_changed: self.files_changed,
            insertions: self.insertions,
            deletions: self.deletions,
        }
    }
}

impl IntoProto<pb::TransferProgress> for Progress {
    fn into_proto(self) -> pb::TransferProgress {
        pb::TransferProgress {
            objects_done: self.objects_done,
            objects_total: self.objects_total,
            objects_indexed: self.objects_indexed,
            bytes: self.bytes,
            message: self.message,
        }
    }
}

impl IntoProto<pb::RefUpdate> for RefChange {
    fn into_proto(self) -> pb::RefUpdate {
        pb::RefUpdate {
            name: self.name,
            old_id: self.old_id,
            new_id: self.new_id,
            error: self.error.unwrap_or_default(),
        }
    }
}

/// Unset and unknown modes only fast-forward, the mode that never makes
/// a commit the user did not ask for.
impl FromProto<pb::PullMode> for PullMode {
    fn from_proto(proto: pb::PullMode) -> Self {
        match proto {
            pb::PullMode::Merge => Self::Merge,
            pb::PullMode::Unspecified | pb::PullMode::FastForwardOnly => Self::FastForwardOnly,
        }
    }
}

/// The final message of a pull stream.
impl IntoProto<pb::PullResponse> for PullResult {
    fn into_proto(self) -> pb::PullResponse {
        let (outcome, conflicts) = match self.outcome {
            PullOutcome::UpToDate => (pb::PullOutcome::UpToDate, Vec::new()),
            PullOutcome::FastForwarded => (pb::PullOutcome::FastForwarded, Vec::new()),
            PullOutcome::Merged => (pb::PullOutcome::Merged, Vec::new()),
            PullOutcome::Conflicts(paths) => (pb::PullOutcome::Conflicts, paths),
        };
        pb::PullResponse {
            progress: None,
            outcome: outcome.into(),
            conflicts,
            head: self.head,
            done: true,
        }
    }
}

impl FromProto<pb::PushRequest> for PushSpec {
    fn from_proto(proto: pb::PushRequest) -> Self {
        Self {
            remote: proto.remote,
            branch: proto.branch,
            set_upstream: proto.set_upstream,
            force: proto.force,
        }
    }
}
