//! The agent's administration of itself: [`AgentAdmin`] is the facade
//! AgentService calls for settings (config.toml through the
//! [`SettingsStore`]), access tokens, log tails and follows, start at
//! login, and crash reports. It composes the modules that do the work
//! (`config`, `tokens`, `logs`, `autostart`, `crash`), publishes what
//! changed on the event bus, and runs their blocking work (files, the
//! login-item registration) on the blocking pool itself. Building it does
//! no I/O: the agent's start-up and GetInfo stay as cheap as before.

mod events;

pub use events::AdminEvent;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use tokio::sync::broadcast;

use crate::{
    autostart::{Autostart, AutostartStatus},
    config::{self, LiveSettings, SettingChange, SettingView, SettingsStore},
    crash::{self, CrashReport},
    error::{Error, Result},
    events::Publisher,
    logs::{LineReceiver, LogHub, MAX_TAIL_LINES},
    reason::Reason,
    tokens::{Caller, GrantTerms, TokenInfo, Tokens},
};

/// The log source tailed when the caller names none.
pub const DEFAULT_LOG_SOURCE: &str = "agent";

/// Lines tailed when the caller does not say how many.
pub const DEFAULT_TAIL_LINES: usize = 100;

/// The agent-administration facade.
#[derive(Debug)]
pub struct AgentAdmin {
    settings: Arc<SettingsStore>,
    tokens: Tokens,
    logs: Arc<LogHub>,
    crash_dir: PathBuf,
    agent_exe: PathBuf,
    bus: Publisher<AdminEvent>,
    /// Parts of the agent that put a change into effect themselves.
    live: Vec<Arc<dyn LiveSettings>>,
}

/// The answer to a settings change.
#[derive(Debug, Clone)]
pub struct SettingsUpdate {
    /// The changed keys' new views.
    pub settings: Vec<SettingView>,
    /// Whether one of them takes effect only after a restart.
    pub restart_required: bool,
}

/// A log's last lines, and its new lines when following.
#[derive(Debug)]
pub struct LogTail {
    /// The source's name.
    pub source: String,
    /// The last lines, oldest first.
    pub lines: Vec<String>,
    /// What is written after them, when following.
    pub follow: Option<LogFollow>,
}

/// The lines written to a log after its tail was taken.
#[derive(Debug)]
pub struct LogFollow {
    receiver: LineReceiver,
}

impl LogFollow {
    /// The next line and what else is already waiting, at most `max`
    /// lines; `None` once the log is closed. A reader that fell behind
    /// gets a line saying how many lines it missed.
    pub async fn next_batch(&mut self, max: usize) -> Option<Vec<String>> {
        let mut lines = Vec::new();
        match self.receiver.recv().await {
            Ok(line) => lines.push(line.to_string()),
            Err(broadcast::error::RecvError::Lagged(skipped)) => lines.push(format!(
                "[omnipanel: {skipped} lines skipped because this reader fell behind]"
            )),
            Err(broadcast::error::RecvError::Closed) => return None,
        }
        while lines.len() < max {
            match self.receiver.try_recv() {
                Ok(line) => lines.push(line.to_string()),
                Err(_) => break,
            }
        }
        Some(lines)
    }
}

impl AgentAdmin {
    /// Administer the agent: `settings` (config.toml), `tokens` (already
    /// loaded from state.db), the log sources in `logs`, crash reports in
    /// `crash_dir`, start at login of the binaries next to `agent_exe`;
    /// changes are published on `bus`, after the parts in `live` have put
    /// them into effect.
    pub async fn start(
        settings: Arc<SettingsStore>,
        tokens: Tokens,
        logs: Arc<LogHub>,
        crash_dir: PathBuf,
        agent_exe: PathBuf,
        bus: Publisher<AdminEvent>,
        live: Vec<Arc<dyn LiveSettings>>,
    ) -> Result<Arc<Self>> {
        Ok(Arc::new(Self {
            settings,
            tokens,
            logs,
            crash_dir,
            agent_exe,
            bus,
            live,
        }))
    }

    /// Nothing runs in the background; here for the shape every facade
    /// has.
    pub async fn shutdown(&self) {}

    /// The tokens, for the access check of every TCP request.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Path of config.toml.
    pub fn settings_path(&self) -> &Path {
        self.settings.path()
    }

    /// The settings named by `keys` (all when empty).
    pub async fn settings(&self, caller: &Caller, keys: &[String]) -> Result<Vec<SettingView>> {
        let mut views = self.settings.describe(keys).await?;
        if !caller.is_owner() {
            for view in &mut views {
                if config::secret(view.spec.key) && !view.value.is_empty() {
                    view.value = config::HIDDEN_VALUE.to_owned();
                }
            }
        }
        Ok(views)
    }

    /// Apply `changes`, made by `caller`, to config.toml and the running
    /// agent, and announce them. Keys that could widen a token's reach or
    /// make the agent run another program are the owner's alone.
    pub async fn update_settings(
        &self,
        caller: &Caller,
        changes: Vec<SettingChange>,
    ) -> Result<SettingsUpdate> {
        if !caller.is_owner()
            && let Some(change) = changes
                .iter()
                .find(|change| config::owner_only(change.key.trim()))
        {
            return Err(Error::permission_denied(format!(
                "only the agent's owner may change `{}`; {} may not",
                change.key.trim(),
                caller.describe()
            ))
            .with_reason(Reason::OwnerOnly));
        }
        let views = self.settings.update(changes).await?;
        let keys: Vec<String> = views.iter().map(|v| v.spec.key.to_owned()).collect();
        let current = self.settings.current();
        let mut waiting = Vec::new();
        for part in &self.live {
            waiting.extend(part.apply(&current, &keys).await);
        }
        for why in &waiting {
            tracing::info!(why = %why, "a settings change waits for a restart");
        }
        let restart_required = !waiting.is_empty() || views.iter().any(|v| v.spec.restart_required);
        tracing::info!(?keys, restart_required, "settings changed");
        self.bus.publish(AdminEvent::SettingsChanged {
            keys,
            restart_required,
        });
        Ok(SettingsUpdate {
            settings: views,
            restart_required,
        })
    }

    /// The last `lines` lines (0: [`DEFAULT_TAIL_LINES`]) of the log named
    /// `source` ("": [`DEFAULT_LOG_SOURCE`]), and its new lines when
    /// `follow`.
    pub async fn tail_logs(&self, source: &str, lines: u32, follow: bool) -> Result<LogTail> {
        let name = if source.is_empty() {
            DEFAULT_LOG_SOURCE.to_owned()
        } else {
            source.to_owned()
        };
        let lines = match lines {
            0 => DEFAULT_TAIL_LINES,
            n if n as usize > MAX_TAIL_LINES => {
                return Err(Error::invalid_argument(
                    "lines",
                    format!("at most {MAX_TAIL_LINES} lines can be tailed, {n} were asked"),
                ));
            }
            n => n as usize,
        };
        let source = self.logs.get(&name)?;
        let reader = source.clone();
        let (tail, receiver) = tokio::task::spawn_blocking(move || reader.tail(lines, follow))
            .await?
            .map_err(|err| {
                Error::internal(format!("cannot read {}: {err}", source.path().display()))
            })?;
        Ok(LogTail {
            source: name,
            lines: tail,
            follow: receiver.map(|receiver| LogFollow { receiver }),
        })
    }

    /// Crash reports of earlier runs, newest first.
    pub async fn crash_reports(&self) -> Result<Vec<CrashReport>> {
        let dir = self.crash_dir.clone();
        tokio::task::spawn_blocking(move || crash::list_reports(&dir))
            .await?
            .map_err(|err| Error::internal(format!("cannot list crash reports: {err}")))
    }

    /// Whether the agent (or the tray) starts at login.
    pub async fn autostart(&self) -> Result<AutostartStatus> {
        let exe = self.agent_exe.clone();
        tokio::task::spawn_blocking(move || Autostart::from_env(&exe)?.status()).await?
    }

    /// Switch start at login on or off.
    pub async fn set_autostart(&self, enabled: bool) -> Result<AutostartStatus> {
        let exe = self.agent_exe.clone();
        let status =
            tokio::task::spawn_blocking(move || Autostart::from_env(&exe)?.set(enabled)).await??;
        tracing::info!(enabled = status.enabled, location = %status.location, "start at login changed");
        Ok(status)
    }

    /// A new token with `scopes`: its secret (shown once) and its listing.
    pub async fn create_token(&self, name: &str, terms: GrantTerms) -> Result<(String, TokenInfo)> {
        let scopes = terms.scopes;
        let (token, info) = self.tokens.create_grant(name, terms).await?;
        tracing::info!(id = %info.id, name = %info.name, scopes = %scopes.names(), "token created");
        self.bus.publish(AdminEvent::TokensChanged {
            token_id: info.id.clone(),
            revoked: false,
        });
        Ok((token, info))
    }

    /// Every token (no secrets).
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>> {
        self.tokens.list().await
    }

    /// Revoke the token with this id or name.
    pub async fn revoke_token(&self, id_or_name: &str) -> Result<TokenInfo> {
        let info = self.tokens.revoke(id_or_name).await?;
        tracing::info!(id = %info.id, name = %info.name, "token revoked");
        self.bus.publish(AdminEvent::TokensChanged {
            token_id: info.id.clone(),
            revoked: true,
        });
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::tokens::Scopes;
    use crate::{
        config::{LogSettings, Settings},
        error::ErrorKind,
        events::EventBus,
        logs::{LogSource, RotatingWriter},
        store::Store,
    };

    struct Fixture {
        _temp: tempfile::TempDir,
        root: PathBuf,
        bus: Arc<EventBus<AdminEvent>>,
        agent_log: Arc<LogSource>,
        admin: Arc<AgentAdmin>,
    }

    async fn fixture() -> Fixture {
        fixture_with(Vec::new()).await
    }

    /// A part of the agent that is always busy: every change of
    /// `ollama.num_parallel` waits for its restart.
    #[derive(Debug)]
    struct Busy;

    impl LiveSettings for Busy {
        fn apply<'a>(
            &'a self,
            settings: &'a Settings,
            keys: &'a [String],
        ) -> std::pin::Pin<Box<dyn Future<Output = Option<String>> + Send + 'a>> {
            let waits = keys.iter().any(|k| k == "ollama.num_parallel")
                && settings.ollama.num_parallel == Some(3);
            Box::pin(async move { waits.then(|| "busy".to_owned()) })
        }
    }

    async fn fixture_with(live: Vec<Arc<dyn LiveSettings>>) -> Fixture {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().to_owned();
        let bus = Arc::new(EventBus::<AdminEvent>::new(3, 64));
        let logs = Arc::new(LogHub::default());
        let agent_log = LogSource::new("agent", root.join("logs/agent.log"));
        logs.register(agent_log.clone());
        let settings = Arc::new(SettingsStore::new(
            root.join("config.toml"),
            Settings::default(),
        ));
        let tokens = Tokens::load(Store::in_memory().unwrap()).await.unwrap();
        let admin = AgentAdmin::start(
            settings,
            tokens,
            logs,
            root.join("crash"),
            root.join("bin/omnipanel-agent"),
            bus.clone(),
            live,
        )
        .await
        .unwrap();
        Fixture {
            _temp: temp,
            root,
            bus,
            agent_log,
            admin,
        }
    }

    #[tokio::test]
    async fn a_token_cannot_change_what_would_widen_its_reach() {
        let f = fixture().await;
        let admin_token = Caller::Token(crate::tokens::TokenGrant::new("t", Scopes::all()));
        for key in [
            "access.project_roots",
            "ollama.binary",
            "update.public_key",
            "server.tcp",
        ] {
            let change = SettingChange {
                key: key.to_owned(),
                value: "\"/\"".to_owned(),
                reset: false,
            };
            let err = f
                .admin
                .update_settings(&admin_token, vec![change])
                .await
                .unwrap_err();
            assert_eq!(err.reason(), Some(Reason::OwnerOnly), "{key}: {err}");
        }
        assert!(!f.root.join("config.toml").exists(), "nothing was written");
        let allowed = SettingChange {
            key: "log.filter".to_owned(),
            value: "debug".to_owned(),
            reset: false,
        };
        assert!(
            f.admin
                .update_settings(&admin_token, vec![allowed])
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_change_a_live_part_cannot_apply_yet_needs_a_restart() {
        let f = fixture_with(vec![Arc::new(Busy)]).await;
        let set = |key: &str, value: &str| SettingChange {
            key: key.to_owned(),
            value: value.to_owned(),
            reset: false,
        };
        let update = f
            .admin
            .update_settings(&Caller::Owner, vec![set("ollama.num_parallel", "3")])
            .await
            .unwrap();
        assert!(update.restart_required, "the live part said it waits");
        let other = f
            .admin
            .update_settings(&Caller::Owner, vec![set("ollama.context_length", "4096")])
            .await
            .unwrap();
        assert!(!other.restart_required, "this key applies at once");
        assert!(crate::events::published(&f.bus).await.iter().any(|e| matches!(
            e,
            AdminEvent::SettingsChanged { keys, restart_required: true } if keys == &["ollama.num_parallel"]
        )));
    }

    #[tokio::test]
    async fn a_settings_change_is_written_and_announced() {
        let f = fixture().await;
        let update = f
            .admin
            .update_settings(
                &Caller::Owner,
                vec![SettingChange {
                    key: "log.filter".to_owned(),
                    value: "debug".to_owned(),
                    reset: false,
                }],
            )
            .await
            .unwrap();
        assert!(!update.restart_required);
        assert_eq!(update.settings.len(), 1);
        assert_eq!(update.settings[0].value, "\"debug\"");
        let text = std::fs::read_to_string(f.root.join("config.toml")).unwrap();
        assert!(text.contains("debug"), "{text}");
        assert_eq!(f.admin.settings_path(), f.root.join("config.toml"));
        let views = f
            .admin
            .settings(&Caller::Owner, &["log.filter".to_owned()])
            .await
            .unwrap();
        assert!(views[0].is_set);
        assert!(crate::events::published(&f.bus).await.iter().any(|e| matches!(
            e,
            AdminEvent::SettingsChanged { keys, restart_required: false } if keys == &["log.filter"]
        )));
    }

    #[tokio::test]
    async fn a_secret_setting_is_shown_to_the_owner_only() {
        let f = fixture().await;
        f.admin
            .update_settings(
                &Caller::Owner,
                vec![SettingChange {
                    key: "git.token".into(),
                    value: "\"ghp_secret\"".into(),
                    reset: false,
                }],
            )
            .await
            .unwrap();
        let keys = ["git.token".to_owned()];
        let owner = f.admin.settings(&Caller::Owner, &keys).await.unwrap();
        assert_eq!(owner[0].value, "\"ghp_secret\"");
        let admin = Caller::Token(crate::tokens::TokenGrant::new("t", Scopes::all()));
        let client = f.admin.settings(&admin, &keys).await.unwrap();
        assert_eq!(client[0].value, config::HIDDEN_VALUE);
        assert!(client[0].is_set, "it may know that it is set");
    }

    #[tokio::test]
    async fn tokens_are_created_listed_revoked_and_announced() {
        let f = fixture().await;
        let read = Scopes::of([crate::tokens::Scope::Read]);
        let (secret, info) = f
            .admin
            .create_token(
                "ci",
                GrantTerms {
                    scopes: read,
                    ..GrantTerms::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            f.admin.tokens().verify(&secret).map(|grant| grant.scopes),
            Some(read)
        );
        // Verifying recorded the use in the background: whether that write
        // has landed when the list is read depends on the machine's load.
        let mut listed = f.admin.list_tokens().await.unwrap();
        for token in &mut listed {
            token.last_used_ms = 0;
        }
        assert_eq!(listed, vec![info.clone()]);
        f.admin.revoke_token("ci").await.unwrap();
        assert!(f.admin.list_tokens().await.unwrap().is_empty());
        let changes: Vec<bool> = crate::events::published(&f.bus)
            .await
            .into_iter()
            .filter_map(|e| match e {
                AdminEvent::TokensChanged { token_id, revoked } if token_id == info.id => {
                    Some(revoked)
                }
                _ => None,
            })
            .collect();
        assert_eq!(changes, vec![false, true]);
    }

    #[tokio::test]
    async fn a_tail_defaults_to_the_agent_log_and_follows_new_lines() {
        let f = fixture().await;
        let mut writer =
            RotatingWriter::open(f.agent_log.clone(), (&LogSettings::default()).into()).unwrap();
        writer.write_all(b"one\ntwo\nthree\n").unwrap();
        let tail = f.admin.tail_logs("", 2, true).await.unwrap();
        assert_eq!(tail.source, DEFAULT_LOG_SOURCE);
        assert_eq!(tail.lines, vec!["two".to_owned(), "three".to_owned()]);
        let mut follow = tail.follow.expect("following");
        writer.write_all(b"four\nfive\n").unwrap();
        assert_eq!(
            follow.next_batch(10).await,
            Some(vec!["four".to_owned(), "five".to_owned()])
        );
        let all = f.admin.tail_logs("agent", 0, false).await.unwrap();
        assert_eq!(all.lines.len(), 5, "0 asks for the default of 100");
        assert!(all.follow.is_none());
    }

    #[tokio::test]
    async fn a_tail_refuses_too_many_lines_and_unknown_sources() {
        let f = fixture().await;
        let too_many = u32::try_from(MAX_TAIL_LINES + 1).unwrap();
        let err = f.admin.tail_logs("", too_many, false).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        assert_eq!(err.field(), Some("lines"));
        let err = f.admin.tail_logs("nope", 1, false).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn crash_reports_are_listed_newest_first() {
        let f = fixture().await;
        assert!(f.admin.crash_reports().await.unwrap().is_empty());
        let dir = f.root.join("crash");
        std::fs::create_dir_all(&dir).unwrap();
        for (t, message) in [(10, "old"), (20, "new")] {
            std::fs::write(
                dir.join(format!("crash-{t}-1.txt")),
                format!("time_ms: {t}\nmessage: {message}\n\nbacktrace"),
            )
            .unwrap();
        }
        let reports = f.admin.crash_reports().await.unwrap();
        let messages: Vec<&str> = reports.iter().map(|r| r.message.as_str()).collect();
        assert_eq!(messages, vec!["new", "old"]);
        f.admin.shutdown().await;
        f.admin.shutdown().await;
    }
}
