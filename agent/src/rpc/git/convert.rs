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

#[cfg(test)]
mod tests {
    use super::*;

    fn person(name: &str) -> Person {
        Person {
            name: name.to_owned(),
            email: format!("{name}@example.com"),
            time_ms: 1000,
        }
    }

    fn commit() -> CommitInfo {
        CommitInfo {
            id: "abcdef0123".to_owned(),
            short_id: "abcdef0".to_owned(),
            summary: "Add things".to_owned(),
            message: "Add things\n\nBody".to_owned(),
            author: person("ann"),
            committer: person("bob"),
            parents: vec!["1234".to_owned()],
        }
    }

    fn entry(path: &str, change: Change) -> Entry {
        Entry {
            path: path.to_owned(),
            old_path: None,
            change,
        }
    }

    #[test]
    fn every_change_has_its_type() {
        for (change, proto) in [
            (Change::Added, pb::ChangeType::Added),
            (Change::Modified, pb::ChangeType::Modified),
            (Change::Deleted, pb::ChangeType::Deleted),
            (Change::Renamed, pb::ChangeType::Renamed),
            (Change::TypeChanged, pb::ChangeType::TypeChanged),
            (Change::Untracked, pb::ChangeType::Untracked),
            (Change::Conflicted, pb::ChangeType::Conflicted),
        ] {
            assert_eq!(IntoProto::<pb::ChangeType>::into_proto(change), proto);
        }
    }

    #[test]
    fn a_status_entry_keeps_its_old_path() {
        let proto: pb::StatusEntry = Entry {
            old_path: Some("before.txt".to_owned()),
            ..entry("after.txt", Change::Renamed)
        }
        .into_proto();
        assert_eq!(proto.path, "after.txt");
        assert_eq!(proto.old_path, "before.txt");
        assert_eq!(proto.change(), pb::ChangeType::Renamed);
        let plain: pb::StatusEntry = entry("a", Change::Added).into_proto();
        assert_eq!(plain.old_path, "");
    }

    #[test]
    fn every_operation_has_its_proto() {
        for (operation, proto) in [
            (Operation::None, pb::RepoOperation::Unspecified),
            (Operation::Merge, pb::RepoOperation::Merge),
            (Operation::Rebase, pb::RepoOperation::Rebase),
            (Operation::CherryPick, pb::RepoOperation::CherryPick),
            (Operation::Revert, pb::RepoOperation::Revert),
            (Operation::Bisect, pb::RepoOperation::Bisect),
            (Operation::ApplyMailbox, pb::RepoOperation::ApplyMailbox),
        ] {
            assert_eq!(IntoProto::<pb::RepoOperation>::into_proto(operation), proto);
        }
    }

    #[test]
    fn a_status_keeps_every_list_and_the_upstream() {
        let proto: pb::RepoStatus = RepoStatus {
            branch: Some("main".to_owned()),
            detached: false,
            empty: false,
            head: Some("abc".to_owned()),
            head_summary: "Last".to_owned(),
            upstream: Some(("origin/main".to_owned(), 1, 2)),
            staged: vec![entry("s", Change::Added)],
            unstaged: vec![entry("u", Change::Modified)],
            untracked: vec![entry("n", Change::Untracked)],
            conflicted: vec![entry("c", Change::Conflicted)],
            stash_count: 3,
            operation: Operation::Merge,
        }
        .into_proto();
        assert_eq!(proto.branch, "main");
        assert_eq!(proto.head, "abc");
        assert_eq!(proto.head_summary, "Last");
        assert_eq!(
            proto.upstream,
            Some(pb::Upstream {
                name: "origin/main".to_owned(),
                ahead: 1,
                behind: 2,
            })
        );
        assert_eq!(proto.staged[0].path, "s");
        assert_eq!(proto.unstaged[0].path, "u");
        assert_eq!(proto.untracked[0].path, "n");
        assert_eq!(proto.conflicted[0].path, "c");
        assert_eq!(proto.stash_count, 3);
        assert_eq!(proto.operation(), pb::RepoOperation::Merge);
    }

    #[test]
    fn an_unborn_detached_status_has_empty_names() {
        let proto: pb::RepoStatus = RepoStatus {
            branch: None,
            detached: true,
            empty: true,
            head: None,
            head_summary: String::new(),
            upstream: None,
            staged: Vec::new(),
            unstaged: Vec::new(),
            untracked: Vec::new(),
            conflicted: Vec::new(),
            stash_count: 0,
            operation: Operation::None,
        }
        .into_proto();
        assert_eq!(proto.branch, "");
        assert_eq!(proto.head, "");
        assert!(proto.detached);
        assert!(proto.empty);
        assert!(proto.upstream.is_none());
    }

    #[test]
    fn a_branch_keeps_every_field() {
        let proto: pb::Branch = BranchInfo {
            name: "feature".to_owned(),
            remote: false,
            current: true,
            upstream: Some("origin/feature".to_owned()),
            ahead: 1,
            behind: 2,
            commit: "abc".to_owned(),
            summary: "Work".to_owned(),
            time_ms: 99,
        }
        .into_proto();
        assert_eq!(
            proto,
            pb::Branch {
                name: "feature".to_owned(),
                remote: false,
                current: true,
                upstream: "origin/feature".to_owned(),
                ahead: 1,
                behind: 2,
                commit: "abc".to_owned(),
                summary: "Work".to_owned(),
                commit_time_unix_ms: 99,
            }
        );
    }

    #[test]
    fn a_commit_keeps_both_signatures() {
        let proto: pb::Commit = commit().into_proto();
        assert_eq!(proto.id, "abcdef0123");
        assert_eq!(proto.short_id, "abcdef0");
        assert_eq!(proto.summary, "Add things");
        assert_eq!(proto.message, "Add things\n\nBody");
        assert_eq!(
            proto.author,
            Some(pb::Signature {
                name: "ann".to_owned(),
                email: "ann@example.com".to_owned(),
                time_unix_ms: 1000,
            })
        );
        assert_eq!(proto.committer.unwrap().name, "bob");
        assert_eq!(proto.parents, vec!["1234".to_owned()]);
    }

    #[test]
    fn a_person_is_a_signature() {
        let proto: pb::Signature = person("eve").into_proto();
        assert_eq!(proto.email, "eve@example.com");
        assert_eq!(proto.time_unix_ms, 1000);
    }

    #[test]
    fn a_log_query_and_page() {
        let query = LogQuery::from_proto(pb::GetLogRequest {
            project: "p".to_owned(),
            start: "main".to_owned(),
            limit: 20,
            page_token: "skip:20".to_owned(),
            path: "src".to_owned(),
        });
        assert_eq!(
            query,
            LogQuery {
                start: "main".to_owned(),
                limit: 20,
                page_token: "skip:20".to_owned(),
                path: "src".to_owned(),
            }
        );
        let page: pb::GetLogResponse = LogPage {
            commits: vec![commit()],
            next_page_token: "skip:40".to_owned(),
        }
        .into_proto();
        assert_eq!(page.commits.len(), 1);
        assert_eq!(page.next_page_token, "skip:40");
    }

    #[test]
    fn diff_targets_default_to_worktree_against_index() {
        let query = |target: i32| {
            DiffQuery::from_proto(pb::GetDiffRequest {
                target,
                from: "a".to_owned(),
                to: "b".to_owned(),
                paths: vec!["x".to_owned()],
                context_lines: 5,
                max_bytes: 100,
                ..Default::default()
            })
        };
        for (target, expected) in [
            (
                pb::DiffTarget::Unspecified as i32,
                DiffTarget::WorktreeToIndex,
            ),
            (99, DiffTarget::WorktreeToIndex),
            (
                pb::DiffTarget::WorktreeToIndex as i32,
                DiffTarget::WorktreeToIndex,
            ),
            (pb::DiffTarget::IndexToHead as i32, DiffTarget::IndexToHead),
            (
                pb::DiffTarget::WorktreeToHead as i32,
                DiffTarget::WorktreeToHead,
            ),
            (
                pb::DiffTarget::Commits as i32,
                DiffTarget::Commits {
                    from: "a".to_owned(),
                    to: "b".to_owned(),
                },
            ),
        ] {
            assert_eq!(query(target).target, expected);
        }
        let full = query(pb::DiffTarget::IndexToHead as i32);
        assert_eq!(full.paths, vec!["x".to_owned()]);
        assert_eq!(full.context_lines, 5);
        assert_eq!(full.max_bytes, 100);
    }

    #[test]
    fn a_diff_keeps_files_hunks_and_lines() {
        let proto: pb::GetDiffResponse = DiffResult {
            files: vec![FileDiff {
                old_path: "a".to_owned(),
                new_path: "b".to_owned(),
                change: Change::Renamed,
                binary: false,
                additions: 1,
                deletions: 2,
                hunks: vec![HunkInfo {
                    header: "@@ -1,2 +1,1 @@".to_owned(),
                    old_start: 1,
                    old_lines: 2,
                    new_start: 1,
                    new_lines: 1,
                    lines: vec![Line {
                        origin: '+',
                        content: "new\n".to_owned(),
                        old_line: 0,
                        new_line: 1,
                    }],
                }],
            }],
            patch: "diff --git".to_owned(),
            truncated: true,
            files_changed: 1,
            insertions: 1,
            deletions: 2,
        }
        .into_proto();
        assert_eq!(proto.patch, "diff --git");
        assert!(proto.truncated);
        assert_eq!(
            (proto.files_changed, proto.insertions, proto.deletions),
            (1, 1, 2)
        );
        let file = &proto.files[0];
        assert_eq!(file.change(), pb::ChangeType::Renamed);
        assert_eq!((file.additions, file.deletions), (1, 2));
        let hunk = &file.hunks[0];
        assert_eq!(hunk.header, "@@ -1,2 +1,1 @@");
        assert_eq!(
            (
                hunk.old_start,
                hunk.old_lines,
                hunk.new_start,
                hunk.new_lines
            ),
            (1, 2, 1, 1)
        );
        assert_eq!(
            hunk.lines[0],
            pb::DiffLine {
                origin: "+".to_owned(),
                content: "new\n".to_owned(),
                old_line: 0,
                new_line: 1,
            }
        );
    }

    #[test]
    fn progress_and_ref_updates() {
        let progress: pb::TransferProgress = Progress {
            objects_done: 1,
            objects_total: 2,
            objects_indexed: 3,
            bytes: 4,
            message: "Counting".to_owned(),
        }
        .into_proto();
        assert_eq!(
            progress,
            pb::TransferProgress {
                objects_done: 1,
                objects_total: 2,
                objects_indexed: 3,
                bytes: 4,
                message: "Counting".to_owned(),
            }
        );
        let refused: pb::RefUpdate = RefChange {
            name: "refs/heads/main".to_owned(),
            old_id: "a".to_owned(),
            new_id: "b".to_owned(),
            error: Some("non-fast-forward".to_owned()),
        }
        .into_proto();
        assert_eq!(refused.error, "non-fast-forward");
        assert_eq!(refused.name, "refs/heads/main");
    }

    #[test]
    fn pull_mode_defaults_to_fast_forward_only() {
        for (proto, mode) in [
            (pb::PullMode::Unspecified, PullMode::FastForwardOnly),
            (pb::PullMode::FastForwardOnly, PullMode::FastForwardOnly),
            (pb::PullMode::Merge, PullMode::Merge),
        ] {
            assert_eq!(PullMode::from_proto(proto), mode);
        }
    }

    #[test]
    fn a_pull_result_is_the_final_message() {
        for (outcome, proto, conflicts) in [
            (PullOutcome::UpToDate, pb::PullOutcome::UpToDate, 0),
            (
                PullOutcome::FastForwarded,
                pb::PullOutcome::FastForwarded,
                0,
            ),
            (PullOutcome::Merged, pb::PullOutcome::Merged, 0),
            (
                PullOutcome::Conflicts(vec!["a".to_owned()]),
                pb::PullOutcome::Conflicts,
                1,
            ),
        ] {
            let message: pb::PullResponse = PullResult {
                outcome,
                head: "abc".to_owned(),
            }
            .into_proto();
            assert_eq!(message.outcome(), proto);
            assert_eq!(message.conflicts.len(), conflicts);
            assert_eq!(message.head, "abc");
            assert!(message.done);
            assert!(message.progress.is_none());
        }
    }

    #[test]
    fn a_push_spec_comes_from_the_request() {
        let spec = PushSpec::from_proto(pb::PushRequest {
            project: "p".to_owned(),
            remote: "origin".to_owned(),
            branch: "main".to_owned(),
            set_upstream: true,
            force: true,
        });
        assert_eq!(
            spec,
            PushSpec {
                remote: "origin".to_owned(),
                branch: "main".to_owned(),
                set_upstream: true,
                force: true,
            }
        );
    }
}
