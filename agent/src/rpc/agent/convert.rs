//! AgentService's conversions between proto messages and the domain types
//! of the agent's administration: scopes and tokens, settings, crash
//! reports and start at login.

use omnipanel_proto::v1 as pb;

use crate::rpc::convert::{FromProto, IntoProto, TryFromProto};
use omnipanel_core::{
    agent::SettingsUpdate,
    autostart::AutostartStatus,
    config::{SettingChange, SettingView},
    crash::CrashReport,
    error::Error,
    tokens::{Scope, Scopes, TokenInfo},
};

impl IntoProto<pb::Scope> for Scope {
    fn into_proto(self) -> pb::Scope {
        match self {
            Scope::Status => pb::Scope::Status,
            Scope::Read => pb::Scope::Read,
            Scope::Infer => pb::Scope::Infer,
            Scope::Write => pb::Scope::Write,
            Scope::Admin => pb::Scope::Admin,
        }
    }
}

/// The `scope` field of a request (a proto enum travels as `i32`).
impl TryFromProto<i32> for Scope {
    fn try_from_proto(value: i32) -> Result<Self, Error> {
        match pb::Scope::try_from(value) {
            Ok(pb::Scope::Status) => Ok(Scope::Status),
            Ok(pb::Scope::Read) => Ok(Scope::Read),
            Ok(pb::Scope::Infer) => Ok(Scope::Infer),
            Ok(pb::Scope::Write) => Ok(Scope::Write),
            Ok(pb::Scope::Admin) => Ok(Scope::Admin),
            _ => Err(Error::invalid_argument(
                "scope",
                "choose SCOPE_STATUS, SCOPE_READ, SCOPE_INFER, SCOPE_WRITE or SCOPE_ADMIN",
            )),
        }
    }
}

impl IntoProto<Vec<i32>> for Scopes {
    fn into_proto(self) -> Vec<i32> {
        self.iter()
            .map(|scope| i32::from(scope.into_proto()))
            .collect()
    }
}

/// A repeated `scopes` field.
impl TryFromProto<&[i32]> for Scopes {
    fn try_from_proto(values: &[i32]) -> Result<Self, Error> {
        let scopes = values
            .iter()
            .map(|value| {
                Scope::try_from_proto(*value).map_err(|_| {
                    Error::invalid_argument("scopes", format!("{value} is not a scope"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Scopes::of(scopes))
    }
}

impl IntoProto<pb::Setting> for SettingView {
    fn into_proto(self) -> pb::Setting {
        pb::Setting {
            key: self.spec.key.to_owned(),
            value: self.value,
            default_value: self.default_value,
            description: self.spec.description.to_owned(),
            restart_required: self.spec.restart_required,
            is_set: self.is_set,
        }
    }
}

impl FromProto<pb::SettingChange> for SettingChange {
    fn from_proto(change: pb::SettingChange) -> Self {
        SettingChange {
            key: change.key,
            value: change.value,
            reset: change.reset,
        }
    }
}

impl IntoProto<pb::UpdateSettingsResponse> for SettingsUpdate {
    fn into_proto(self) -> pb::UpdateSettingsResponse {
        pb::UpdateSettingsResponse {
            settings: self.settings.into_proto(),
            restart_required: self.restart_required,
        }
    }
}

impl IntoProto<pb::TokenInfo> for TokenInfo {
    fn into_proto(self) -> pb::TokenInfo {
        pb::TokenInfo {
            id: self.id,
            name: self.name,
            scope: self.scopes.level().into_proto().into(),
            created_unix_ms: self.created_ms,
            last_used_unix_ms: self.last_used_ms,
            scopes: self.scopes.into_proto(),
            allowed_models: self.terms.allowed_models,
            requests_per_minute: self.terms.requests_per_minute,
        }
    }
}

/// A new token: its secret and its listing.
impl IntoProto<pb::CreateTokenResponse> for (String, TokenInfo) {
    fn into_proto(self) -> pb::CreateTokenResponse {
        let (token, info) = self;
        pb::CreateTokenResponse {
            token,
            info: Some(info.into_proto()),
        }
    }
}

impl IntoProto<pb::CrashReport> for CrashReport {
    fn into_proto(self) -> pb::CrashReport {
        pb::CrashReport {
            path: self.path.display().to_string(),
            time_unix_ms: self.time_ms,
            version: self.version,
            message: self.message,
            thread: self.thread,
            location: self.location,
            process: self.process,
        }
    }
}

impl IntoProto<pb::GetAutostartResponse> for AutostartStatus {
    fn into_proto(self) -> pb::GetAutostartResponse {
        pb::GetAutostartResponse {
            enabled: self.enabled,
            location: self.location,
            program: self.program,
        }
    }
}

impl IntoProto<pb::SetAutostartResponse> for AutostartStatus {
    fn into_proto(self) -> pb::SetAutostartResponse {
        pb::SetAutostartResponse {
            enabled: self.enabled,
            location: self.location,
            program: self.program,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use omnipanel_core::{config::spec, tokens::GrantTerms};

    fn view(key: &str) -> SettingView {
        SettingView {
            spec: spec(key).expect("a known key"),
            value: "\"debug\"".to_owned(),
            default_value: "\"info\"".to_owned(),
            is_set: true,
        }
    }

    fn token() -> TokenInfo {
        TokenInfo {
            id: "t1".to_owned(),
            name: "laptop".to_owned(),
            scopes: Scopes::of([Scope::Write]),
            created_ms: 10,
            last_used_ms: 20,
            terms: GrantTerms {
                allowed_models: vec!["llama3.2".to_owned()],
                requests_per_minute: 12,
                ..Default::default()
            },
        }
    }

    fn autostart() -> AutostartStatus {
        AutostartStatus {
            enabled: true,
            location: "/home/u/.config/autostart/omnipanel.desktop".to_owned(),
            program: "/usr/bin/omnipanel-tray".to_owned(),
        }
    }

    #[test]
    fn scopes_map_both_ways() {
        for scope in Scope::ALL {
            let wire: pb::Scope = scope.into_proto();
            assert_eq!(Scope::try_from_proto(wire.into()).ok(), Some(scope));
        }
        assert_eq!(Scope::Admin.into_proto(), pb::Scope::Admin);
    }

    #[test]
    fn an_unspecified_or_unknown_scope_names_the_field() {
        for value in [pb::Scope::Unspecified as i32, 99] {
            let err = Scope::try_from_proto(value).expect_err("refused");
            assert_eq!(
                err.kind(),
                omnipanel_core::error::ErrorKind::InvalidArgument
            );
            assert_eq!(err.field(), Some("scope"));
            assert_eq!(
                err.message(),
                "scope: choose SCOPE_STATUS, SCOPE_READ, SCOPE_INFER, SCOPE_WRITE or SCOPE_ADMIN"
            );
        }
    }

    #[test]
    fn a_setting_carries_its_spec() {
        let spec = spec("log.filter").expect("a known key");
        let setting: pb::Setting = view("log.filter").into_proto();
        assert_eq!(setting.key, "log.filter");
        assert_eq!(setting.value, "\"debug\"");
        assert_eq!(setting.default_value, "\"info\"");
        assert_eq!(setting.description, spec.description);
        assert_eq!(setting.restart_required, spec.restart_required);
        assert!(setting.is_set);
    }

    #[test]
    fn a_setting_change_is_taken_as_sent() {
        let change = SettingChange::from_proto(pb::SettingChange {
            key: "log.filter".to_owned(),
            value: "debug".to_owned(),
            reset: true,
        });
        assert_eq!(
            change,
            SettingChange {
                key: "log.filter".to_owned(),
                value: "debug".to_owned(),
                reset: true,
            }
        );
    }

    #[test]
    fn a_settings_update_lists_the_changed_settings() {
        let response: pb::UpdateSettingsResponse = SettingsUpdate {
            settings: vec![view("log.filter")],
            restart_required: true,
        }
        .into_proto();
        assert!(response.restart_required);
        assert_eq!(response.settings.len(), 1);
        assert_eq!(response.settings[0].key, "log.filter");
    }

    #[test]
    fn a_token_is_listed_without_its_secret() {
        let info: pb::TokenInfo = token().into_proto();
        assert_eq!(
            info,
            pb::TokenInfo {
                id: "t1".to_owned(),
                name: "laptop".to_owned(),
                scope: pb::Scope::Write.into(),
                created_unix_ms: 10,
                last_used_unix_ms: 20,
                scopes: vec![
                    pb::Scope::Status.into(),
                    pb::Scope::Read.into(),
                    pb::Scope::Write.into()
                ],
                allowed_models: vec!["llama3.2".to_owned()],
                requests_per_minute: 12,
            }
        );
    }

    #[test]
    fn a_created_token_carries_its_secret_once() {
        let response: pb::CreateTokenResponse = ("omp_secret".to_owned(), token()).into_proto();
        assert_eq!(response.token, "omp_secret");
        assert_eq!(response.info.map(|i| i.id), Some("t1".to_owned()));
    }

    #[test]
    fn a_crash_report_keeps_every_header() {
        let report: pb::CrashReport = CrashReport {
            path: PathBuf::from("/crash/crash-1.txt"),
            process: "panel".to_owned(),
            time_ms: 5,
            version: "0.1.0".to_owned(),
            message: "boom".to_owned(),
            thread: "main".to_owned(),
            location: "src/x.rs:1:2".to_owned(),
        }
        .into_proto();
        assert_eq!(
            report,
            pb::CrashReport {
                path: "/crash/crash-1.txt".to_owned(),
                time_unix_ms: 5,
                version: "0.1.0".to_owned(),
                message: "boom".to_owned(),
                thread: "main".to_owned(),
                location: "src/x.rs:1:2".to_owned(),
                process: "panel".to_owned(),
            }
        );
    }

    #[test]
    fn autostart_status_answers_get_and_set() {
        let get: pb::GetAutostartResponse = autostart().into_proto();
        assert!(get.enabled);
        assert_eq!(get.location, autostart().location);
        assert_eq!(get.program, autostart().program);
        let set: pb::SetAutostartResponse = autostart().into_proto();
        assert!(set.enabled);
        assert_eq!(set.location, autostart().location);
        assert_eq!(set.program, autostart().program);
    }
}
