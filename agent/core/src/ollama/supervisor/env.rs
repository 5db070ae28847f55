//! The environment a managed `ollama serve` is started with, from the
//! `[ollama]` settings users tune (models folder, keep-alive, parallel
//! requests, loaded models, context length, flash attention). Only what is
//! set is passed: an unset key leaves the variable out, so the server
//! keeps its own default (or the value the agent inherited). Comparing two
//! of these tells whether a settings change concerns the server at all.

use std::{ffi::OsString, path::PathBuf};

use crate::config::OllamaSettings;

/// The settings a started server is given as `OLLAMA_*` variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerEnv {
    /// OLLAMA_MODELS.
    pub models_dir: Option<PathBuf>,
    /// OLLAMA_KEEP_ALIVE, already validated by the settings.
    pub keep_alive: Option<String>,
    /// OLLAMA_NUM_PARALLEL.
    pub num_parallel: Option<u32>,
    /// OLLAMA_MAX_LOADED_MODELS.
    pub max_loaded_models: Option<u32>,
    /// OLLAMA_CONTEXT_LENGTH.
    pub context_length: Option<u32>,
    /// OLLAMA_FLASH_ATTENTION, as 1 or 0.
    pub flash_attention: Option<bool>,
}

impl ServerEnv {
    /// The server's part of `[ollama]`.
    pub fn from_settings(settings: &OllamaSettings) -> Self {
        Self {
            models_dir: settings.models_dir.clone(),
            keep_alive: settings
                .keep_alive
                .as_deref()
                .map(str::trim)
                .map(str::to_owned),
            num_parallel: settings.num_parallel,
            max_loaded_models: settings.max_loaded_models,
            context_length: settings.context_length,
            flash_attention: settings.flash_attention,
        }
    }

    /// The variables to set, in a stable order; unset settings are absent.
    pub fn vars(&self) -> Vec<(&'static str, OsString)> {
        let number = |n: Option<u32>| n.map(|n| OsString::from(n.to_string()));
        [
            ("OLLAMA_MODELS", self.models_dir.clone().map(OsString::from)),
            (
                "OLLAMA_KEEP_ALIVE",
                self.keep_alive.clone().map(OsString::from),
            ),
            ("OLLAMA_NUM_PARALLEL", number(self.num_parallel)),
            ("OLLAMA_MAX_LOADED_MODELS", number(self.max_loaded_models)),
            ("OLLAMA_CONTEXT_LENGTH", number(self.context_length)),
            (
                "OLLAMA_FLASH_ATTENTION",
                self.flash_attention
                    .map(|on| OsString::from(if on { "1" } else { "0" })),
            ),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_settings_pass_nothing() {
        let env = ServerEnv::from_settings(&OllamaSettings::default());
        assert_eq!(env, ServerEnv::default());
        assert!(env.vars().is_empty());
    }

    #[test]
    fn every_set_setting_becomes_its_variable() {
        let settings = OllamaSettings {
            models_dir: Some("/models".into()),
            keep_alive: Some(" -1 ".into()),
            num_parallel: Some(4),
            max_loaded_models: Some(2),
            context_length: Some(8192),
            flash_attention: Some(false),
            ..OllamaSettings::default()
        };
        let vars = ServerEnv::from_settings(&settings).vars();
        let text: Vec<(&str, &str)> = vars
            .iter()
            .map(|(name, value)| (*name, value.to_str().unwrap_or("?")))
            .collect();
        assert_eq!(
            text,
            [
                ("OLLAMA_MODELS", "/models"),
                ("OLLAMA_KEEP_ALIVE", "-1"),
                ("OLLAMA_NUM_PARALLEL", "4"),
                ("OLLAMA_MAX_LOADED_MODELS", "2"),
                ("OLLAMA_CONTEXT_LENGTH", "8192"),
                ("OLLAMA_FLASH_ATTENTION", "0"),
            ]
        );
        let on = OllamaSettings {
            flash_attention: Some(true),
            ..OllamaSettings::default()
        };
        assert_eq!(
            ServerEnv::from_settings(&on).vars(),
            [("OLLAMA_FLASH_ATTENTION", OsString::from("1"))]
        );
    }

    #[test]
    fn settings_outside_the_server_do_not_change_its_env() {
        let before = OllamaSettings::default();
        let after = OllamaSettings {
            health_failures: 7,
            autostart: false,
            ..OllamaSettings::default()
        };
        assert_eq!(
            ServerEnv::from_settings(&before),
            ServerEnv::from_settings(&after)
        );
    }
}
