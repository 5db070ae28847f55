//! Conversions between ProjectService messages and the projects domain:
//! projects with their git and watch state, template files, workspace
//! state, chat conversations.

use omnipanel_proto::v1 as pb;

use crate::rpc::convert::{FromProto, IntoProto};
use omnipanel_core::{
    conversations::{Conversation, StoredMessage},
    files::watch::{WatchPhase, WatchStatus},
    projects::{
        GitSummary, ProjectRecord, ProjectView, ProjectWatch, TemplateFile, WorkspaceState,
    },
};

impl IntoProto<pb::Project> for ProjectView {
    fn into_proto(self) -> pb::Project {
        pb::Project {
            id: self.record.id,
            name: self.record.name,
            path: self.record.path.display().to_string(),
            open: self.record.open,
            created_unix_ms: self.record.created_ms,
            last_opened_unix_ms: self.record.last_opened_ms,
            exists: self.exists,
            git: self.git.into_proto(),
            watch: self.watch.into_proto(),
            preferred_model: self.record.preferred_model,
            preferred_provider: self.record.preferred_provider,
        }
    }
}

/// A forgotten project: only its record is left, and it is reported as
/// existing because forgetting never touches the folder.
impl IntoProto<pb::Project> for ProjectRecord {
    fn into_proto(self) -> pb::Project {
        ProjectView {
            record: self,
            exists: true,
            git: None,
            watch: None,
        }
        .into_proto()
    }
}

impl IntoProto<pb::GitSummary> for GitSummary {
    fn into_proto(self) -> pb::GitSummary {
        pb::GitSummary {
            branch: self.branch.unwrap_or_default(),
            detached: self.detached,
            dirty: self.dirty,
        }
    }
}

impl IntoProto<pb::ProjectWatch> for ProjectWatch {
    fn into_proto(self) -> pb::ProjectWatch {
        watch_to_proto(&self.status, self.indexed_files)
    }
}

/// Proto message of a project's watch state (also sent in events, which
/// carry no index count).
pub fn watch_to_proto(status: &WatchStatus, indexed_files: u64) -> pb::ProjectWatch {
    pb::ProjectWatch {
        state: status.phase.into_proto().into(),
        watched_folders: status.watched_folders,
        unwatched_folders: status.unwatched_folders,
        indexed_files,
        rescans: status.rescans,
        detail: status.detail.clone(),
    }
}

impl IntoProto<pb::WatchState> for WatchPhase {
    fn into_proto(self) -> pb::WatchState {
        match self {
            Self::Indexing => pb::WatchState::Indexing,
            Self::Live => pb::WatchState::Live,
            Self::Degraded => pb::WatchState::Degraded,
            Self::Unavailable => pb::WatchState::Unavailable,
        }
    }
}

impl FromProto<pb::TemplateFile> for TemplateFile {
    fn from_proto(proto: pb::TemplateFile) -> Self {
        Self {
            path: proto.path,
            content: proto.content,
        }
    }
}

impl IntoProto<pb::GetWorkspaceStateResponse> for WorkspaceState {
    fn into_proto(self) -> pb::GetWorkspaceStateResponse {
        pb::GetWorkspaceStateResponse {
            data: self.data,
            version: self.version,
            updated_unix_ms: self.updated_ms,
        }
    }
}

impl IntoProto<pb::Conversation> for Conversation {
    fn into_proto(self) -> pb::Conversation {
        pb::Conversation {
            id: self.id,
            project_id: self.project_id,
            title: self.title,
            model: self.model,
            provider: self.provider,
            created_unix_ms: self.created_ms,
            updated_unix_ms: self.updated_ms,
            message_count: self.message_count,
            messages: self.messages.into_proto(),
        }
    }
}

impl IntoProto<pb::ConversationMessage> for StoredMessage {
    fn into_proto(self) -> pb::ConversationMessage {
        pb::ConversationMessage {
            role: self.role,
            content: self.content,
            created_unix_ms: self.created_ms,
            model: self.model,
            provider: self.provider,
            stats: self.stats.into_proto(),
            stopped: self.stopped,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn record() -> ProjectRecord {
        ProjectRecord {
            id: "a1b2c3".to_owned(),
            name: "demo".to_owned(),
            path: PathBuf::from("/home/me/demo"),
            open: true,
            created_ms: 10,
            last_opened_ms: 20,
            preferred_model: "qwen2.5-7b".to_owned(),
            preferred_provider: "lmstudio".to_owned(),
        }
    }

    #[test]
    fn a_project_carries_its_preferred_model() {
        let wire: pb::Project = record().into_proto();
        assert_eq!(
            (
                wire.preferred_model.as_str(),
                wire.preferred_provider.as_str()
            ),
            ("qwen2.5-7b", "lmstudio")
        );
    }

    fn status(phase: WatchPhase) -> WatchStatus {
        WatchStatus {
            phase,
            watched_folders: 3,
            unwatched_folders: 4,
            rescans: 5,
            detail: "raise fs.inotify.max_user_watches".to_owned(),
        }
    }

    #[test]
    fn a_project_view_keeps_every_field() {
        let view = ProjectView {
            record: record(),
            exists: false,
            git: Some(GitSummary {
                branch: Some("main".to_owned()),
                detached: false,
                dirty: true,
            }),
            watch: Some(ProjectWatch {
                status: status(WatchPhase::Degraded),
                indexed_files: 42,
            }),
        };
        let proto: pb::Project = view.into_proto();
        assert_eq!(proto.id, "a1b2c3");
        assert_eq!(proto.name, "demo");
        assert_eq!(proto.path, "/home/me/demo");
        assert!(proto.open);
        assert_eq!(proto.created_unix_ms, 10);
        assert_eq!(proto.last_opened_unix_ms, 20);
        assert!(!proto.exists);
        assert_eq!(
            proto.git,
            Some(pb::GitSummary {
                branch: "main".to_owned(),
                detached: false,
                dirty: true,
            })
        );
        let watch = proto.watch.unwrap();
        assert_eq!(watch.state(), pb::WatchState::Degraded);
        assert_eq!(watch.indexed_files, 42);
        assert_eq!(watch.watched_folders, 3);
        assert_eq!(watch.unwatched_folders, 4);
        assert_eq!(watch.rescans, 5);
        assert_eq!(watch.detail, "raise fs.inotify.max_user_watches");
    }

    #[test]
    fn a_forgotten_project_exists_without_git_or_watch() {
        let proto: pb::Project = record().into_proto();
        assert_eq!(proto.id, "a1b2c3");
        assert!(proto.exists);
        assert!(proto.git.is_none());
        assert!(proto.watch.is_none());
    }

    #[test]
    fn a_detached_head_has_no_branch_name() {
        let proto: pb::GitSummary = GitSummary {
            branch: None,
            detached: true,
            dirty: false,
        }
        .into_proto();
        assert_eq!(proto.branch, "");
        assert!(proto.detached);
    }

    #[test]
    fn every_watch_phase_has_its_state() {
        for (phase, state) in [
            (WatchPhase::Indexing, pb::WatchState::Indexing),
            (WatchPhase::Live, pb::WatchState::Live),
            (WatchPhase::Degraded, pb::WatchState::Degraded),
            (WatchPhase::Unavailable, pb::WatchState::Unavailable),
        ] {
            let proto: pb::WatchState = phase.into_proto();
            assert_eq!(proto, state);
            let watch: pb::ProjectWatch = ProjectWatch {
                status: status(phase),
                indexed_files: 0,
            }
            .into_proto();
            assert_eq!(watch.state(), state);
        }
        assert_eq!(
            watch_to_proto(&status(WatchPhase::Live), 9).indexed_files,
            9
        );
    }

    #[test]
    fn a_template_file_keeps_path_and_content() {
        let file = TemplateFile::from_proto(pb::TemplateFile {
            path: "src/main.rs".to_owned(),
            content: b"fn main() {}".to_vec(),
        });
        assert_eq!(file.path, "src/main.rs");
        assert_eq!(file.content, b"fn main() {}");
    }

    #[test]
    fn workspace_state_keeps_data_version_and_time() {
        let proto: pb::GetWorkspaceStateResponse = WorkspaceState {
            data: vec![1, 2],
            version: 7,
            updated_ms: 99,
        }
        .into_proto();
        assert_eq!(proto.data, vec![1, 2]);
        assert_eq!(proto.version, 7);
        assert_eq!(proto.updated_unix_ms, 99);
    }
}
