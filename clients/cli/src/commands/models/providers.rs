//! `omnipanel providers ...` (also `models providers` and `models provider
//! ...`, the older names): the model servers the agent knows, of either
//! kind (Ollama, or any OpenAI-compatible server such as LM Studio,
//! llama.cpp, vLLM), with their health; adding one with its API key read
//! from stdin or an environment variable (never from a flag, which shell
//! history would keep), extra headers and a timeout; removing one.

use std::{collections::HashMap, io::Read, time::Duration};

use clap::{Subcommand, ValueEnum};
use omnipanel_client::{Client, display};
use omnipanel_proto::v1::{
    AddProviderRequest, ListProvidersRequest, ProviderKind, RemoveProviderRequest,
};

use crate::{
    Failure,
    output::{Output, outln},
};

/// `omnipanel providers ...`
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// List the providers with their kind, health, URL, header names and
    /// whether an API key is stored.
    #[command(visible_alias = "ls")]
    List,
    /// Add a model server; the agent checks that it answers before it
    /// saves it, and says what failed (DNS, TLS, API key, wrong API).
    Add {
        /// Unique name, used as `NAME/model` in model strings: letters,
        /// digits, '-' and '_'.
        name: String,
        /// Base URL, e.g. http://gpu-box:11434 (ollama) or
        /// http://127.0.0.1:1234/v1 (openai).
        url: String,
        /// The API it speaks.
        #[arg(long, value_enum, default_value_t = KindArg::Ollama)]
        kind: KindArg,
        /// Read the API key from stdin (the first line).
        #[arg(long, conflicts_with_all = ["api_key_env", "token"])]
        api_key_stdin: bool,
        /// Read the API key from this environment variable.
        #[arg(long, value_name = "VAR", conflicts_with = "token")]
        api_key_env: Option<String>,
        /// An extra header sent with every request, NAME=VALUE
        /// (repeatable).
        #[arg(long = "header", value_name = "NAME=VALUE", value_parser = parse_header)]
        headers: Vec<(String, String)>,
        /// How long one request may take, e.g. 30s or 2m (default: the
        /// agent's).
        #[arg(long, value_parser = parse_timeout)]
        timeout: Option<u32>,
        /// The key on the command line, where shell history keeps it: kept
        /// for scripts written before --api-key-stdin.
        #[arg(long, hide = true)]
        token: Option<String>,
    },
    /// Forget a provider ("local" cannot be removed).
    #[command(visible_alias = "rm")]
    Remove {
        /// Provider name.
        name: String,
    },
}

/// A provider kind as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KindArg {
    /// An Ollama server.
    Ollama,
    /// A server speaking the OpenAI chat completions API.
    Openai,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("{text:?} is not NAME=VALUE")),
    }
}

fn parse_timeout(text: &str) -> Result<u32, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|err| format!("{text:?} is not a duration ({err}); write e.g. 30s or 2m"))?;
    if duration < Duration::from_secs(1) {
        return Err("the timeout must be at least 1s".to_owned());
    }
    u32::try_from(duration.as_secs()).map_err(|_| "the timeout is too long".to_owned())
}

/// The API key from where the user said to read it, if anywhere.
fn api_key(stdin: bool, env: Option<&str>, token: Option<String>) -> Result<String, Failure> {
    if stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| Failure::Other(format!("cannot read the API key from stdin: {err}")))?;
        let key = text.lines().next().unwrap_or_default().trim().to_owned();
        if key.is_empty() {
            return Err(Failure::Other(
                "--api-key-stdin: stdin held no key (pipe it in, e.g. `pass show lmstudio | omnipanel providers add ...`)".to_owned(),
            ));
        }
        return Ok(key);
    }
    if let Some(var) = env {
        return match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Ok(key.trim().to_owned()),
            _ => Err(Failure::Other(format!(
                "--api-key-env: the environment variable {var} is not set (or empty)"
            ))),
        };
    }
    Ok(token.unwrap_or_default())
}

/// `omnipanel providers ...`
pub async fn providers(command: ProviderCommand, out: Output) -> Result<(), Failure> {
    let client = Client::connect_from_env().await?;
    run(&client, command, out).await
}

/// A provider command on a connected client.
pub async fn run(client: &Client, command: ProviderCommand, out: Output) -> Result<(), Failure> {
    let mut models = client.models();
    match command {
        ProviderCommand::List => list(client, &out).await?,
        ProviderCommand::Add {
            name,
            url,
            kind,
            api_key_stdin,
            api_key_env,
            headers,
            timeout,
            token,
        } => {
            let token = api_key(api_key_stdin, api_key_env.as_deref(), token)?;
            let kind = match kind {
                KindArg::Ollama => ProviderKind::Ollama,
                KindArg::Openai => ProviderKind::Openai,
            };
            let response = client
                .call(models.add_provider(AddProviderRequest {
                    name,
                    url,
                    token,
                    kind: i32::from(kind),
                    headers: headers.into_iter().collect::<HashMap<_, _>>(),
                    timeout_seconds: timeout.unwrap_or_default(),
                }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            let provider = response.provider.unwrap_or_default();
            let version = if provider.version.is_empty() {
                String::new()
            } else {
                format!(", version {}", provider.version)
            };
            outln!(
                "added provider {} ({}) at {}{version}: its models are `{}/MODEL`",
                provider.name,
                display::provider_kind_name(provider.kind),
                provider.url,
                provider.name
            )?;
        }
        ProviderCommand::Remove { name } => {
            let response = client
                .call(models.remove_provider(RemoveProviderRequest { name: name.clone() }))
                .await?;
            if out.is_json() {
                return out.json(&response);
            }
            outln!("removed provider {name}")?;
        }
    }
    Ok(())
}

/// The providers as a table.
pub async fn list(client: &Client, out: &Output) -> Result<(), Failure> {
    let response = client
        .call(client.models().list_providers(ListProvidersRequest {}))
        .await?;
    if out.is_json() {
        return out.json(&response);
    }
    let rows: Vec<Vec<String>> = response
        .providers
        .iter()
        .map(|provider| {
            let kind = if provider.local {
                "ollama (local)".to_owned()
            } else {
                display::provider_kind_name(provider.kind).to_owned()
            };
            vec![
                provider.name.clone(),
                kind,
                display::provider_state_line(provider),
                provider.url.clone(),
                display::or_dash(&provider.header_names.join(",")).to_owned(),
                if provider.has_token { "yes" } else { "no" }.to_owned(),
                display::or_dash(&provider.version).to_owned(),
            ]
        })
        .collect();
    out.table(
        &["NAME", "KIND", "STATE", "URL", "HEADERS", "KEY", "VERSION"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_timeouts_are_parsed_with_clear_errors() {
        assert_eq!(
            parse_header("X-Org=a=b"),
            Ok(("X-Org".to_owned(), "a=b".to_owned()))
        );
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("=v").is_err());
        assert_eq!(parse_timeout("2m"), Ok(120));
        assert!(parse_timeout("fast").is_err());
        assert!(parse_timeout("10ms").is_err());
    }
}
