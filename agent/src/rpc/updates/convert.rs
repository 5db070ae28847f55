//! UpdateService's conversions from the updates domain's types to proto
//! messages: releases, check outcomes, download progress (also for the
//! event stream, `rpc/events.rs`), history, an install a package manager
//! owns, and the whole status.

use omnipanel_proto::v1 as pb;

use crate::rpc::convert::IntoProto;
use omnipanel_core::updates::{
    CheckOutcome, DownloadState, HistoryEntry, PackageInstall, Progress, Release, UpdateStatus,
};

impl IntoProto<pb::Release> for &Release {
    fn into_proto(self) -> pb::Release {
        pb::Release {
            version: self.version.clone(),
            notes: self.notes.clone(),
            size: self.size,
            url: self.url.clone(),
            sha256: self.sha256.clone(),
        }
    }
}

impl IntoProto<pb::PackageManaged> for PackageInstall {
    fn into_proto(self) -> pb::PackageManaged {
        pb::PackageManaged {
            advice: self.advice(),
            format: self.format,
            package: self.package,
            update_command: self.update_command,
            evidence: self.evidence.display().to_string(),
        }
    }
}

impl IntoProto<pb::DownloadState> for DownloadState {
    fn into_proto(self) -> pb::DownloadState {
        match self {
            DownloadState::Idle => pb::DownloadState::Unspecified,
            DownloadState::Downloading => pb::DownloadState::Downloading,
            DownloadState::Verifying => pb::DownloadState::Verifying,
            DownloadState::Ready => pb::DownloadState::Ready,
            DownloadState::Failed => pb::DownloadState::Failed,
        }
    }
}

/// By reference: progress is watched and published, and stays with the
/// download.
impl IntoProto<pb::UpdateProgress> for &Progress {
    fn into_proto(self) -> pb::UpdateProgress {
        pb::UpdateProgress {
            version: self.version.clone(),
            state: self.state.into_proto().into(),
            received_bytes: self.received,
            total_bytes: self.total,
            error: self
                .error
                .as_ref()
                .map(|e| e.message().to_owned())
                .unwrap_or_default(),
            resumed: self.resumed,
        }
    }
}

impl IntoProto<pb::CheckForUpdateResponse> for CheckOutcome {
    fn into_proto(self) -> pb::CheckForUpdateResponse {
        pb::CheckForUpdateResponse {
            latest: Some((&self.latest).into_proto()),
            current_version: self.current_version,
            channel: self.channel,
            update_available: self.update_available,
            checked_unix_ms: self.checked_ms,
            package_managed: self.package.into_proto(),
        }
    }
}

impl IntoProto<pb::UpdateHistoryEntry> for HistoryEntry {
    fn into_proto(self) -> pb::UpdateHistoryEntry {
        pb::UpdateHistoryEntry {
            time_unix_ms: self.time_ms,
            action: self.action,
            from_version: self.from_version,
            to_version: self.to_version,
            outcome: self.outcome,
            message: self.message,
        }
    }
}

impl IntoProto<pb::GetUpdateStatusResponse> for UpdateStatus {
    fn into_proto(self) -> pb::GetUpdateStatusResponse {
        let (last_check_unix_ms, latest, update_available) = match &self.last_check {
            Some(check) => (
                check.checked_ms,
                Some((&check.latest).into_proto()),
                check.update_available,
            ),
            None => (0, None, false),
        };
        pb::GetUpdateStatusResponse {
            current_version: self.current_version,
            channel: self.channel,
            automatic_checks: self.automatic_checks,
            last_check_unix_ms,
            latest,
            update_available,
            download: Some((&self.download).into_proto()),
            ready_version: self.ready_version.unwrap_or_default(),
            rollback_version: self.rollback_version.unwrap_or_default(),
            last_error: self.last_error.unwrap_or_default(),
            history: self.history.into_proto(),
            package_managed: self.package.into_proto(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use omnipanel_core::error::Error;
    use omnipanel_core::reason::Reason;

    fn release() -> Release {
        Release {
            version: "0.2.0".to_owned(),
            notes: "faster".to_owned(),
            size: 3,
            url: "http://127.0.0.1:1/a.tar.gz".to_owned(),
            sha256: "ab".repeat(32),
            signature: "sig".to_owned(),
        }
    }

    fn check() -> CheckOutcome {
        CheckOutcome {
            current_version: "0.1.0".to_owned(),
            channel: "stable".to_owned(),
            update_available: true,
            latest: release(),
            checked_ms: 42,
            package: None,
        }
    }

    fn entry() -> HistoryEntry {
        HistoryEntry {
            time_ms: 1,
            action: "install".to_owned(),
            from_version: "0.1.0".to_owned(),
            to_version: "0.2.0".to_owned(),
            outcome: "ok".to_owned(),
            message: String::new(),
        }
    }

    fn status(last_check: Option<CheckOutcome>) -> UpdateStatus {
        UpdateStatus {
            current_version: "0.1.0".to_owned(),
            channel: "stable".to_owned(),
            automatic_checks: true,
            last_check,
            download: Progress::default(),
            ready_version: None,
            rollback_version: Some("0.0.9".to_owned()),
            last_error: Some("offline".to_owned()),
            history: vec![entry()],
            package: None,
        }
    }

    fn deb() -> PackageInstall {
        PackageInstall {
            format: "deb".to_owned(),
            package: "omnipanel".to_owned(),
            update_command: "sudo apt update && sudo apt upgrade omnipanel".to_owned(),
            evidence: "/usr/share/omnipanel/packaged-by".into(),
        }
    }

    #[test]
    fn a_release_leaves_its_signature_behind() {
        let wire: pb::Release = (&release()).into_proto();
        assert_eq!(
            wire,
            pb::Release {
                version: "0.2.0".to_owned(),
                notes: "faster".to_owned(),
                size: 3,
                url: "http://127.0.0.1:1/a.tar.gz".to_owned(),
                sha256: "ab".repeat(32),
            }
        );
    }

    #[test]
    fn every_download_state_has_its_proto_value() {
        for (state, wire) in [
            (DownloadState::Idle, pb::DownloadState::Unspecified),
            (DownloadState::Downloading, pb::DownloadState::Downloading),
            (DownloadState::Verifying, pb::DownloadState::Verifying),
            (DownloadState::Ready, pb::DownloadState::Ready),
            (DownloadState::Failed, pb::DownloadState::Failed),
        ] {
            assert_eq!(state.into_proto(), wire);
        }
    }

    #[test]
    fn progress_carries_the_error_message_only() {
        let progress = Progress {
            version: "0.2.0".to_owned(),
            state: DownloadState::Failed,
            received: 1,
            total: 3,
            error: Some(Error::internal("disk full").with_reason(Reason::Internal)),
            resumed: true,
        };
        let wire: pb::UpdateProgress = (&progress).into_proto();
        assert_eq!(
            wire,
            pb::UpdateProgress {
                version: "0.2.0".to_owned(),
                state: pb::DownloadState::Failed.into(),
                received_bytes: 1,
                total_bytes: 3,
                error: "disk full".to_owned(),
                resumed: true,
            }
        );
        let fine: pb::UpdateProgress = (&Progress::default()).into_proto();
        assert_eq!(fine.error, "");
    }

    #[test]
    fn a_check_answers_with_the_latest_release() {
        let wire: pb::CheckForUpdateResponse = check().into_proto();
        assert_eq!(wire.current_version, "0.1.0");
        assert_eq!(wire.channel, "stable");
        assert!(wire.update_available);
        assert_eq!(wire.latest.map(|r| r.version), Some("0.2.0".to_owned()));
        assert_eq!(wire.checked_unix_ms, 42);
    }

    #[test]
    fn a_history_entry_keeps_its_fields() {
        let wire: pb::UpdateHistoryEntry = entry().into_proto();
        assert_eq!(
            wire,
            pb::UpdateHistoryEntry {
                time_unix_ms: 1,
                action: "install".to_owned(),
                from_version: "0.1.0".to_owned(),
                to_version: "0.2.0".to_owned(),
                outcome: "ok".to_owned(),
                message: String::new(),
            }
        );
    }

    #[test]
    fn status_without_a_check_reports_no_release() {
        let wire: pb::GetUpdateStatusResponse = status(None).into_proto();
        assert_eq!(
            (wire.last_check_unix_ms, wire.latest, wire.update_available),
            (0, None, false)
        );
        assert_eq!(wire.ready_version, "");
        assert_eq!(wire.rollback_version, "0.0.9");
        assert_eq!(wire.last_error, "offline");
        assert_eq!(wire.history.len(), 1);
        assert_eq!(
            wire.download.map(|d| d.state),
            Some(pb::DownloadState::Unspecified as i32)
        );
        let checked: pb::GetUpdateStatusResponse = status(Some(check())).into_proto();
        assert_eq!(checked.last_check_unix_ms, 42);
        assert!(checked.update_available);
        assert_eq!(checked.latest.map(|r| r.version), Some("0.2.0".to_owned()));
    }

    #[test]
    fn a_package_install_is_told_with_its_command_in_check_and_status() {
        let wire: pb::CheckForUpdateResponse = CheckOutcome {
            package: Some(deb()),
            ..check()
        }
        .into_proto();
        assert_eq!(
            wire.package_managed,
            Some(pb::PackageManaged {
                format: "deb".to_owned(),
                package: "omnipanel".to_owned(),
                update_command: "sudo apt update && sudo apt upgrade omnipanel".to_owned(),
                evidence: "/usr/share/omnipanel/packaged-by".to_owned(),
                advice: "installed from the .deb (package omnipanel): update with `sudo apt update && sudo apt upgrade omnipanel`".to_owned(),
            })
        );
        assert_eq!(check().into_proto().package_managed, None);
        let status: pb::GetUpdateStatusResponse = UpdateStatus {
            package: Some(deb()),
            ..status(None)
        }
        .into_proto();
        assert_eq!(
            status.package_managed.map(|p| p.update_command),
            Some("sudo apt update && sudo apt upgrade omnipanel".to_owned())
        );
    }
}
