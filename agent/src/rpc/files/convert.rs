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
