//! Conversions between FileService messages and the files domain: entries,
//! list and write options, overwrite policies, batches and their step
//! results, fuzzy and text search, and the change feed's deliveries.

use omnipanel_proto::v1 as pb;

use crate::rpc::convert::{FromProto, IntoProto, TryFromProto};
use omnipanel_core::{
    error::Error,
    feed::{Cursor, Delivery},
    files::{
        SearchOutcome,
        batch::{BatchOp, BatchResult, StepStatus},
        find::{FileMatch, FindResult},
        grep::{CaseMode, ContextLine, TextMatch, TextQuery},
        ops::{
            CopyStats, EntryKind, FileEntry, ListOptions, OverwritePolicy, SortBy, WriteOptions,
        },
        watch::{ChangeItem, ChangeKind, FileChange},
    },
};

impl IntoProto<pb::FileInfo> for FileEntry {
    fn into_proto(self) -> pb::FileInfo {
        pb::FileInfo {
            path: self.path,
            name: self.name,
            kind: self.kind.into_proto().into(),
            size: self.size,
            modified_unix_ms: self.modified_ms,
            mode: self.mode,
            version: self.version,
            hidden: self.hidden,
            ignored: self.ignored,
            symlink_target: self.symlink_target.unwrap_or_default(),
        }
    }
}

impl IntoProto<pb::FileKind> for EntryKind {
    fn into_proto(self) -> pb::FileKind {
        match self {
            Self::File => pb::FileKind::File,
            Self::Directory => pb::FileKind::Directory,
            Self::Symlink => pb::FileKind::Symlink,
            Self::Other => pb::FileKind::Other,
        }
    }
}

/// Unset and unknown values fail on an existing target, the safe choice.
impl FromProto<pb::OverwritePolicy> for OverwritePolicy {
    fn from_proto(proto: pb::OverwritePolicy) -> Self {
        match proto {
            pb::OverwritePolicy::Replace => Self::Replace,
            pb::OverwritePolicy::Skip => Self::Skip,
            pb::OverwritePolicy::Unspecified | pb::OverwritePolicy::Fail => Self::Fail,
        }
    }
}

impl FromProto<pb::SortBy> for SortBy {
    fn from_proto(proto: pb::SortBy) -> Self {
        match proto {
            pb::SortBy::Modified => Self::Modified,
            pb::SortBy::Size => Self::Size,
            pb::SortBy::Unspecified | pb::SortBy::Name => Self::Name,
        }
    }
}

impl FromProto<&pb::ListDirectoryRequest> for ListOptions {
    fn from_proto(proto: &pb::ListDirectoryRequest) -> Self {
        Self {
            include_hidden: proto.include_hidden,
            include_ignored: proto.include_ignored,
            sort: SortBy::from_proto(proto.sort()),
            descending: proto.descending,
        }
    }
}

/// An empty expected version means "whatever is there".
fn expected_version(version: String) -> Option<String> {
    (!version.is_empty()).then_some(version)
}

impl FromProto<&pb::WriteFileRequest> for WriteOptions {
    fn from_proto(proto: &pb::WriteFileRequest) -> Self {
        Self {
            create_parents: proto.create_parents,
            create_only: proto.create_only,
            expected_version: expected_version(proto.expected_version.clone()),
        }
    }
}

/// The steps of a batch; a step with no operation is refused, naming its
/// index (`operations[i]`).
impl TryFromProto<Vec<pb::BatchOperation>> for Vec<BatchOp> {
    fn try_from_proto(proto: Vec<pb::BatchOperation>) -> Result<Self, Error> {
        use pb::batch_operation::Operation;
        proto
            .into_iter()
            .enumerate()
            .map(|(index, op)| {
                Ok(match op.operation {
                    Some(Operation::Write(w)) => BatchOp::Write {
                        path: w.path,
                        content: w.content,
                        expected_version: expected_version(w.expected_version),
                        create_only: w.create_only,
                    },
                    Some(Operation::CreateDirectory(d)) => {
                        BatchOp::CreateDirectory { path: d.path }
                    }
                    Some(Operation::Move(m)) => BatchOp::Move {
                        from: m.from,
                        to: m.to,
                        overwrite: m.overwrite,
                    },
                    Some(Operation::Copy(c)) => BatchOp::Copy {
                        policy: OverwritePolicy::from_proto(c.overwrite()),
                        from: c.from,
                        to: c.to,
                    },
                    Some(Operation::Delete(d)) => BatchOp::Delete {
                        path: d.path,
                        permanent: d.permanent,
                    },
                    None => {
                        return Err(Error::invalid_argument(
                            format!("operations[{index}]"),
                            "the step names no operation",
                        ));
                    }
                })
            })
            .collect()
    }
}

impl IntoProto<pb::StepStatus> for StepStatus {
    fn into_proto(self) -> pb::StepStatus {
        match self {
            Self::Applied => pb::StepStatus::Applied,
            Self::Failed => pb::StepStatus::Failed,
            Self::Undone => pb::StepStatus::Undone,
            Self::NotRun => pb::StepStatus::NotRun,
            Self::UndoFailed => pb::StepStatus::UndoFailed,
        }
    }
}

impl IntoProto<pb::ApplyBatchResponse> for BatchResult {
    fn into_proto(self) -> pb::ApplyBatchResponse {
        pb::ApplyBatchResponse {
            success: self.success,
            results: self
                .steps
                .into_iter()
                .enumerate()
                .map(|(index, step)| pb::StepResult {
                    index: u32::try_from(index).unwrap_or(u32::MAX),
                    status: step.status.into_proto().into(),
                    error: step.error.unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl IntoProto<pb::CopyResponse> for CopyStats {
    fn into_proto(self) -> pb::CopyResponse {
        pb::CopyResponse {
            files: self.files,
            skipped: self.skipped,
            bytes: self.bytes,
        }
    }
}

impl IntoProto<pb::FileMatch> for FileMatch {
    fn into_proto(self) -> pb::FileMatch {
        pb::FileMatch {
            path: self.path,
            score: self.score,
            positions: self.positions,
        }
    }
}

impl IntoProto<pb::FindFilesResponse> for FindResult {
    fn into_proto(self) -> pb::FindFilesResponse {
        pb::FindFilesResponse {
            matches: self.matches.into_proto(),
            total_files: self.total_files,
            index_complete: self.complete,
        }
    }
}

/// Unset and unknown values are smart case.
impl FromProto<pb::CaseMode> for CaseMode {
    fn from_proto(proto: pb::CaseMode) -> Self {
        match proto {
            pb::CaseMode::Sensitive => Self::Sensitive,
            pb::CaseMode::Insensitive => Self::Insensitive,
            pb::CaseMode::Unspecified | pb::CaseMode::Smart => Self::Smart,
        }
    }
}

impl FromProto<pb::SearchTextRequest> for TextQuery {
    fn from_proto(proto: pb::SearchTextRequest) -> Self {
        Self {
            case: CaseMode::from_proto(proto.case_mode()),
            pattern: proto.pattern,
            regex: proto.regex,
            whole_word: proto.whole_word,
            include: proto.include_globs,
            exclude: proto.exclude_globs,
            before: proto.before_context as usize,
            after: proto.after_context as usize,
            max_results: proto.max_results,
            include_hidden: proto.include_hidden,
            include_ignored: proto.include_ignored,
        }
    }
}

impl IntoProto<pb::ContextLine> for ContextLine {
    fn into_proto(self) -> pb::ContextLine {
        pb::ContextLine {
            line_number: self.line_number,
            text: self.text,
        }
    }
}

impl IntoProto<pb::TextMatch> for TextMatch {
    fn into_proto(self) -> pb::TextMatch {
        pb::TextMatch {
            path: self.path,
            line_number: self.line_number,
            text: self.text,
            ranges: self
                .ranges
                .into_iter()
                .map(|(start, end)| pb::MatchRange { start, end })
                .collect(),
            before: self.before.into_proto(),
            after: self.after.into_proto(),
        }
    }
}

impl IntoProto<pb::SearchSummary> for SearchOutcome {
    fn into_proto(self) -> pb::SearchSummary {
        pb::SearchSummary {
            files_searched: self.summary.files_searched,
            files_matched: self.summary.files_matched,
            matches: self.summary.matches,
            truncated: self.summary.truncated,
            elapsed_ms: u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

impl FromProto<&pb::WatchRequest> for Cursor {
    fn from_proto(proto: &pb::WatchRequest) -> Self {
        Self {
            after_sequence: proto.after_sequence,
            instance_id: proto.instance_id,
        }
    }
}

impl IntoProto<pb::ChangeKind> for ChangeKind {
    fn into_proto(self) -> pb::ChangeKind {
        match self {
            Self::Created => pb::ChangeKind::Created,
            Self::Modified => pb::ChangeKind::Modified,
            Self::Deleted => pb::ChangeKind::Deleted,
            Self::Renamed => pb::ChangeKind::Renamed,
        }
    }
}

impl IntoProto<pb::FileChange> for &FileChange {
    fn into_proto(self) -> pb::FileChange {
        pb::FileChange {
            kind: self.kind.into_proto().into(),
            path: self.path.clone(),
            from_path: self.from.clone().unwrap_or_default(),
            is_dir: self.is_dir,
        }
    }
}

/// A delivery of a project's change feed, with the run its sequences
/// belong to (gaps and catch-up markers carry it).
#[derive(Debug)]
pub struct FeedDelivery {
    /// The feed's run.
    pub instance_id: u64,
    /// What the subscription delivered.
    pub delivery: Delivery<ChangeItem>,
}

impl IntoProto<pb::watch_response::Item> for FeedDelivery {
    fn into_proto(self) -> pb::watch_response::Item {
        use pb::watch_response::Item;
        let instance_id = self.instance_id;
        match self.delivery {
            Delivery::Event(record) => {
                let sequence = record.sequence;
                match &record.payload {
                    ChangeItem::Batch(changes) => Item::Batch(pb::ChangeBatch {
                        sequence,
                        changes: changes.iter().map(IntoProto::into_proto).collect(),
                    }),
                    ChangeItem::RepositoryChanged(paths) => {
                        Item::RepositoryChanged(pb::RepositoryChanged {
                            sequence,
                            paths: paths.clone(),
                        })
                    }
                    ChangeItem::RescanNeeded(reason) => Item::RescanNeeded(pb::RescanNeeded {
                        sequence,
                        reason: reason.clone(),
                    }),
                }
            }
            Delivery::Gap {
                after_sequence,
                resume_sequence,
                reason,
            } => Item::Gap(pb::EventGap {
                after_sequence,
                resume_sequence,
                reason: reason.to_owned(),
                instance_id,
            }),
            Delivery::CaughtUp { last_sequence } => Item::CaughtUp(pb::CaughtUp {
                last_sequence,
                instance_id,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use omnipanel_core::{
        error::ErrorKind,
        feed::Record,
        files::{batch::StepResult, grep::SearchSummary},
    };

    use super::*;

    fn entry(kind: EntryKind) -> FileEntry {
        FileEntry {
            path: "src/lib.rs".to_owned(),
            name: "lib.rs".to_owned(),
            kind,
            size: 12,
            modified_ms: 34,
            mode: 0o644,
            version: "v1".to_owned(),
            hidden: false,
            ignored: true,
            symlink_target: None,
        }
    }

    #[test]
    fn a_file_entry_keeps_every_field() {
        let proto: pb::FileInfo = FileEntry {
            symlink_target: Some("../elsewhere".to_owned()),
            ..entry(EntryKind::Symlink)
        }
        .into_proto();
        assert_eq!(proto.path, "src/lib.rs");
        assert_eq!(proto.name, "lib.rs");
        assert_eq!(proto.kind(), pb::FileKind::Symlink);
        assert_eq!(proto.size, 12);
        assert_eq!(proto.modified_unix_ms, 34);
        assert_eq!(proto.mode, 0o644);
        assert_eq!(proto.version, "v1");
        assert!(!proto.hidden);
        assert!(proto.ignored);
        assert_eq!(proto.symlink_target, "../elsewhere");
        let plain: pb::FileInfo = entry(EntryKind::File).into_proto();
        assert_eq!(plain.symlink_target, "");
    }

    #[test]
    fn every_entry_kind_has_its_file_kind() {
        for (kind, proto) in [
            (EntryKind::File, pb::FileKind::File),
            (EntryKind::Directory, pb::FileKind::Directory),
            (EntryKind::Symlink, pb::FileKind::Symlink),
            (EntryKind::Other, pb::FileKind::Other),
        ] {
            assert_eq!(IntoProto::<pb::FileKind>::into_proto(kind), proto);
        }
    }

    #[test]
    fn overwrite_policy_defaults_to_fail() {
        for (proto, policy) in [
            (pb::OverwritePolicy::Unspecified, OverwritePolicy::Fail),
            (pb::OverwritePolicy::Fail, OverwritePolicy::Fail),
            (pb::OverwritePolicy::Replace, OverwritePolicy::Replace),
            (pb::OverwritePolicy::Skip, OverwritePolicy::Skip),
        ] {
            assert_eq!(OverwritePolicy::from_proto(proto), policy);
        }
        // An unknown number on the wire reads as unset.
        let copy = pb::CopyRequest {
            overwrite: 99,
            ..Default::default()
        };
        assert_eq!(
            OverwritePolicy::from_proto(copy.overwrite()),
            OverwritePolicy::Fail
        );
    }

    #[test]
    fn sort_defaults_to_name() {
        for (proto, sort) in [
            (pb::SortBy::Unspecified, SortBy::Name),
            (pb::SortBy::Name, SortBy::Name),
            (pb::SortBy::Modified, SortBy::Modified),
            (pb::SortBy::Size, SortBy::Size),
        ] {
            assert_eq!(SortBy::from_proto(proto), sort);
        }
    }

    #[test]
    fn list_options_come_from_the_request() {
        let options = ListOptions::from_proto(&pb::ListDirectoryRequest {
            include_hidden: true,
            include_ignored: false,
            sort: pb::SortBy::Size.into(),
            descending: true,
            ..Default::default()
        });
        assert_eq!(
            options,
            ListOptions {
                include_hidden: true,
                include_ignored: false,
                sort: SortBy::Size,
                descending: true,
            }
        );
    }

    #[test]
    fn an_empty_expected_version_is_no_check() {
        let request = pb::WriteFileRequest {
            create_parents: true,
            create_only: false,
            ..Default::default()
        };
        let options = WriteOptions::from_proto(&request);
        assert!(options.create_parents);
        assert!(!options.create_only);
        assert_eq!(options.expected_version, None);
        let options = WriteOptions::from_proto(&pb::WriteFileRequest {
            expected_version: "abc".to_owned(),
            create_only: true,
            ..Default::default()
        });
        assert_eq!(options.expected_version.as_deref(), Some("abc"));
        assert!(options.create_only);
    }

    fn op(operation: pb::batch_operation::Operation) -> pb::BatchOperation {
        pb::BatchOperation {
            operation: Some(operation),
        }
    }

    #[test]
    fn every_batch_operation_becomes_its_step() {
        use pb::batch_operation::Operation;
        let steps = Vec::<BatchOp>::try_from_proto(vec![
            op(Operation::Write(pb::BatchWrite {
                path: "a".to_owned(),
                content: b"x".to_vec(),
                expected_version: String::new(),
                create_only: true,
            })),
            op(Operation::CreateDirectory(pb::BatchCreateDirectory {
                path: "d".to_owned(),
            })),
            op(Operation::Move(pb::BatchMove {
                from: "a".to_owned(),
                to: "b".to_owned(),
                overwrite: true,
            })),
            op(Operation::Copy(pb::BatchCopy {
                from: "b".to_owned(),
                to: "c".to_owned(),
                overwrite: pb::OverwritePolicy::Skip.into(),
            })),
            op(Operation::Delete(pb::BatchDelete {
                path: "c".to_owned(),
                permanent: true,
            })),
        ])
        .unwrap();
        assert_eq!(
            steps,
            vec![
                BatchOp::Write {
                    path: "a".to_owned(),
                    content: b"x".to_vec(),
                    expected_version: None,
                    create_only: true,
                },
                BatchOp::CreateDirectory {
                    path: "d".to_owned()
                },
                BatchOp::Move {
                    from: "a".to_owned(),
                    to: "b".to_owned(),
                    overwrite: true,
                },
                BatchOp::Copy {
                    from: "b".to_owned(),
                    to: "c".to_owned(),
                    policy: OverwritePolicy::Skip,
                },
                BatchOp::Delete {
                    path: "c".to_owned(),
                    permanent: true,
                },
            ]
        );
    }

    #[test]
    fn a_step_without_an_operation_is_refused_by_index() {
        use pb::batch_operation::Operation;
        let err = Vec::<BatchOp>::try_from_proto(vec![
            op(Operation::CreateDirectory(pb::BatchCreateDirectory {
                path: "d".to_owned(),
            })),
            pb::BatchOperation { operation: None },
        ])
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(err.field(), Some("operations[1]"));
        assert!(err.message().contains("names no operation"), "{err}");
    }

    #[test]
    fn batch_results_are_numbered_with_their_status() {
        let proto: pb::ApplyBatchResponse = BatchResult {
            success: false,
            steps: vec![
                StepResult {
                    status: StepStatus::Undone,
                    error: None,
                },
                StepResult {
                    status: StepStatus::Failed,
                    error: Some("exists".to_owned()),
                },
                StepResult {
                    status: StepStatus::NotRun,
                    error: None,
                },
            ],
        }
        .into_proto();
        assert!(!proto.success);
        let summary: Vec<_> = proto
            .results
            .iter()
            .map(|r| (r.index, r.status(), r.error.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (0, pb::StepStatus::Undone, ""),
                (1, pb::StepStatus::Failed, "exists"),
                (2, pb::StepStatus::NotRun, ""),
            ]
        );
    }

    #[test]
    fn every_step_status_has_its_proto() {
        for (status, proto) in [
            (StepStatus::Applied, pb::StepStatus::Applied),
            (StepStatus::Failed, pb::StepStatus::Failed),
            (StepStatus::Undone, pb::StepStatus::Undone),
            (StepStatus::NotRun, pb::StepStatus::NotRun),
            (StepStatus::UndoFailed, pb::StepStatus::UndoFailed),
        ] {
            assert_eq!(IntoProto::<pb::StepStatus>::into_proto(status), proto);
        }
    }

    #[test]
    fn copy_stats_keep_their_counts() {
        let proto: pb::CopyResponse = CopyStats {
            files: 1,
            skipped: 2,
            bytes: 3,
        }
        .into_proto();
        assert_eq!((proto.files, proto.skipped, proto.bytes), (1, 2, 3));
    }

    #[test]
    fn find_results_keep_matches_and_index_state() {
        let proto: pb::FindFilesResponse = FindResult {
            matches: vec![FileMatch {
                path: "src/main.rs".to_owned(),
                score: 77,
                positions: vec![4, 5],
            }],
            total_files: 10,
            complete: false,
        }
        .into_proto();
        assert_eq!(
            proto.matches,
            vec![pb::FileMatch {
                path: "src/main.rs".to_owned(),
                score: 77,
                positions: vec![4, 5],
            }]
        );
        assert_eq!(proto.total_files, 10);
        assert!(!proto.index_complete);
    }

    #[test]
    fn case_mode_defaults_to_smart() {
        for (proto, mode) in [
            (pb::CaseMode::Unspecified, CaseMode::Smart),
            (pb::CaseMode::Smart, CaseMode::Smart),
            (pb::CaseMode::Sensitive, CaseMode::Sensitive),
            (pb::CaseMode::Insensitive, CaseMode::Insensitive),
        ] {
            assert_eq!(CaseMode::from_proto(proto), mode);
        }
    }

    #[test]
    fn a_text_query_comes_from_the_request() {
        let query = TextQuery::from_proto(pb::SearchTextRequest {
            project: "p".to_owned(),
            pattern: "fn main".to_owned(),
            regex: true,
            case_mode: pb::CaseMode::Insensitive.into(),
            whole_word: true,
            include_globs: vec!["*.rs".to_owned()],
            exclude_globs: vec!["target/**".to_owned()],
            before_context: 2,
            after_context: 3,
            max_results: 40,
            include_hidden: true,
            include_ignored: true,
        });
        assert_eq!(
            query,
            TextQuery {
                pattern: "fn main".to_owned(),
                regex: true,
                case: CaseMode::Insensitive,
                whole_word: true,
                include: vec!["*.rs".to_owned()],
                exclude: vec!["target/**".to_owned()],
                before: 2,
                after: 3,
                max_results: 40,
                include_hidden: true,
                include_ignored: true,
            }
        );
    }

    #[test]
    fn a_text_match_keeps_ranges_and_context() {
        let line = |n: u64, text: &str| ContextLine {
            line_number: n,
            text: text.to_owned(),
        };
        let proto: pb::TextMatch = TextMatch {
            path: "a.rs".to_owned(),
            line_number: 5,
            text: "fn main() {}".to_owned(),
            ranges: vec![(0, 2), (3, 7)],
            before: vec![line(4, "// before")],
            after: vec![line(6, "// after")],
        }
        .into_proto();
        assert_eq!(proto.path, "a.rs");
        assert_eq!(proto.line_number, 5);
        assert_eq!(proto.text, "fn main() {}");
        assert_eq!(
            proto.ranges,
            vec![
                pb::MatchRange { start: 0, end: 2 },
                pb::MatchRange { start: 3, end: 7 }
            ]
        );
        assert_eq!(
            proto.before,
            vec![pb::ContextLine {
                line_number: 4,
                text: "// before".to_owned()
            }]
        );
        assert_eq!(proto.after[0].line_number, 6);
    }

    #[test]
    fn a_search_summary_has_its_counts_and_time() {
        let proto: pb::SearchSummary = SearchOutcome {
            summary: SearchSummary {
                files_searched: 9,
                files_matched: 2,
                matches: 3,
                truncated: true,
                cancelled: false,
                skipped: 0,
            },
            elapsed: Duration::from_millis(1234),
        }
        .into_proto();
        assert_eq!(proto.files_searched, 9);
        assert_eq!(proto.files_matched, 2);
        assert_eq!(proto.matches, 3);
        assert!(proto.truncated);
        assert_eq!(proto.elapsed_ms, 1234);
    }

    #[test]
    fn a_watch_cursor_comes_from_the_request() {
        let cursor = Cursor::from_proto(&pb::WatchRequest {
            project: "p".to_owned(),
            after_sequence: Some(12),
            instance_id: 34,
        });
        assert_eq!(cursor.after_sequence, Some(12));
        assert_eq!(cursor.instance_id, 34);
        let live = Cursor::from_proto(&pb::WatchRequest::default());
        assert_eq!(live.after_sequence, None);
    }

    #[test]
    fn every_change_kind_has_its_proto() {
        for (kind, proto) in [
            (ChangeKind::Created, pb::ChangeKind::Created),
            (ChangeKind::Modified, pb::ChangeKind::Modified),
            (ChangeKind::Deleted, pb::ChangeKind::Deleted),
            (ChangeKind::Renamed, pb::ChangeKind::Renamed),
        ] {
            assert_eq!(IntoProto::<pb::ChangeKind>::into_proto(kind), proto);
        }
    }

    #[test]
    fn a_file_change_keeps_its_old_path() {
        let proto: pb::FileChange = (&FileChange {
            kind: ChangeKind::Renamed,
            path: "new".to_owned(),
            from: Some("old".to_owned()),
            is_dir: true,
        })
            .into_proto();
        assert_eq!(proto.kind(), pb::ChangeKind::Renamed);
        assert_eq!(proto.path, "new");
        assert_eq!(proto.from_path, "old");
        assert!(proto.is_dir);
    }

    fn event(payload: ChangeItem) -> FeedDelivery {
        FeedDelivery {
            instance_id: 5,
            delivery: Delivery::Event(Arc::new(Record {
                sequence: 8,
                instance_id: 5,
                time_ms: 0,
                payload,
            })),
        }
    }

    #[test]
    fn feed_deliveries_become_watch_items() {
        use pb::watch_response::Item;
        let batch = event(ChangeItem::Batch(vec![FileChange {
            kind: ChangeKind::Created,
            path: "a".to_owned(),
            from: None,
            is_dir: false,
        }]))
        .into_proto();
        let Item::Batch(batch) = batch else {
            panic!("not a batch: {batch:?}")
        };
        assert_eq!(batch.sequence, 8);
        assert_eq!(batch.changes.len(), 1);
        assert_eq!(batch.changes[0].from_path, "");

        let repo = event(ChangeItem::RepositoryChanged(vec![".git/HEAD".to_owned()])).into_proto();
        assert_eq!(
            repo,
            Item::RepositoryChanged(pb::RepositoryChanged {
                sequence: 8,
                paths: vec![".git/HEAD".to_owned()],
            })
        );
        let rescan = event(ChangeItem::RescanNeeded("overflow".to_owned())).into_proto();
        assert_eq!(
            rescan,
            Item::RescanNeeded(pb::RescanNeeded {
                sequence: 8,
                reason: "overflow".to_owned(),
            })
        );
        let gap = FeedDelivery {
            instance_id: 5,
            delivery: Delivery::Gap {
                after_sequence: 1,
                resume_sequence: 4,
                reason: "lagged",
            },
        }
        .into_proto();
        assert_eq!(
            gap,
            Item::Gap(pb::EventGap {
                after_sequence: 1,
                resume_sequence: 4,
                reason: "lagged".to_owned(),
                instance_id: 5,
            })
        );
        let caught_up = FeedDelivery {
            instance_id: 5,
            delivery: Delivery::CaughtUp { last_sequence: 9 },
        }
        .into_proto();
        assert_eq!(
            caught_up,
            Item::CaughtUp(pb::CaughtUp {
                last_sequence: 9,
                instance_id: 5,
            })
        );
    }
}
