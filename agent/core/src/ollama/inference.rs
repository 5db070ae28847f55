//! Chat, generate and embed for every provider kind: the provider-neutral
//! request API ([`Target`] names provider, model and project; [`Resolved`]
//! is where it goes), checking a request's parameters (roles, options,
//! keep_alive, format) before anything is sent, and translating them for
//! the provider's API (Ollama's, or OpenAI's: options mapped, format as
//! response_format, Ollama-only parameters refused). The replies stream as
//! [`ReplyStream`] (`reply.rs`).

use std::time::Instant;

use super::{
    Ollama,
    endpoints::{Backend, Endpoint},
    names::ModelName,
    providers::{LOCAL, ProviderKind, ProviderRecord},
    reply::{FailureContext, ReplyStream, Source},
};
use crate::{
    error::{Error, Result},
    model_route::{self, Catalog, Route},
    reason::Reason,
};

/// A chat turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Role.
    pub role: String,
    /// Text.
    pub content: String,
    /// Base64 images.
    pub images: Vec<String>,
}

/// Parameters shared by chat and generate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerationOptions {
    /// Model options as JSON text.
    pub options_json: String,
    /// keep_alive.
    pub keep_alive: String,
    /// "", "json" or a JSON schema.
    pub format: String,
}

/// A generate request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateParams {
    /// Prompt.
    pub prompt: String,
    /// System prompt.
    pub system: String,
    /// Context to continue.
    pub context: Vec<i64>,
    /// Skip the template.
    pub raw: bool,
}

/// Check a keep_alive value the way Ollama parses it: a number of seconds
/// or a Go duration ("10m", "1h30m", "-1" for forever). Returns the JSON
/// value to send.
pub fn keep_alive_value(raw: &str) -> Result<Option<serde_json::Value>> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if let Ok(seconds) = raw.parse::<i64>() {
        return Ok(Some(serde_json::Value::from(seconds)));
    }
    let body = raw.strip_prefix('-').unwrap_or(raw);
    let mut rest = body;
    let mut any = false;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            break;
        }
        let after = &rest[digits..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| after.starts_with(*u))
            .max_by_key(|u| u.len());
        let Some(unit) = unit else { break };
        rest = &after[unit.len()..];
        any = true;
    }
    if !any || !rest.is_empty() {
        return Err(Error::invalid_argument(
            "keep_alive",
            format!(
                "{raw:?} is not a duration; use seconds or e.g. \"10m\", \"1h\", \"-1\" (forever)"
            ),
        ));
    }
    Ok(Some(serde_json::Value::from(raw)))
}

fn parse_json_object(field: &str, text: &str) -> Result<Option<serde_json::Value>> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value @ serde_json::Value::Object(_)) => Ok(Some(value)),
        Ok(_) => Err(Error::invalid_argument(field, "must be a JSON object")),
        Err(err) => Err(Error::invalid_argument(
            field,
            format!("is not valid JSON: {err}"),
        )),
    }
}

fn format_value(format: &str) -> Result<Option<serde_json::Value>> {
    match format.trim() {
        "" => Ok(None),
        "json" => Ok(Some(serde_json::Value::from("json"))),
        schema => parse_json_object("format", schema)
            .map_err(|_| Error::invalid_argument("format", "use \"json\" or a JSON schema object")),
    }
}

fn apply_options(body: &mut serde_json::Value, options: &GenerationOptions) -> Result<()> {
    if let Some(value) = parse_json_object("options_json", &options.options_json)? {
        body["options"] = value;
    }
    if let Some(value) = keep_alive_value(&options.keep_alive)? {
        body["keep_alive"] = value;
    }
    if let Some(value) = format_value(&options.format)? {
        body["format"] = value;
    }
    Ok(())
}

/// What a request names. Empty fields are resolved: the provider from the
/// model (a first path segment that is a provider's name, else the first
/// provider that has the model, "local" first), the model from the
/// project's preference, else the default model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Provider name; "" resolves from the model.
    pub provider: String,
    /// Model; "" means the project's preference, else the default model.
    pub model: String,
    /// Project (ID or path) the request is for; "" for none.
    pub project: String,
}

/// Where a request goes, as [`Ollama::resolve`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Provider name ("local" for the supervised server).
    pub provider: String,
    /// Model, as that provider names it (Ollama names with their tag).
    pub model: String,
    /// The API the provider speaks.
    pub kind: ProviderKind,
}

/// Parameters of an embedding request besides the texts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbedOptions {
    /// Cut inputs longer than the context instead of failing (Ollama).
    pub truncate: Option<bool>,
    /// keep_alive (Ollama only; ignored by OpenAI servers).
    pub keep_alive: String,
}

/// Embedding vectors, one per input, in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Embeddings {
    /// The model that embedded.
    pub model: String,
    /// The provider that embedded.
    pub provider: String,
    /// The vectors.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens of the inputs (0 when the provider does not say).
    pub prompt_tokens: u64,
    /// Time the request took, ns.
    pub total_duration_ns: u64,
}

fn check_messages(messages: &[ChatMessage]) -> Result<()> {
    if messages.is_empty() {
        return Err(Error::invalid_argument(
            "messages",
            "a chat needs at least one message",
        ));
    }
    for (index, message) in messages.iter().enumerate() {
        if !matches!(
            message.role.as_str(),
            "system" | "user" | "assistant" | "tool"
        ) {
            return Err(Error::invalid_argument(
                format!("messages[{index}].role"),
                format!(
                    "{:?} is not one of system, user, assistant, tool",
                    message.role
                ),
            ));
        }
    }
    Ok(())
}

/// The options of an OpenAI request from Ollama-style options: the ones
/// both APIs have are mapped (num_predict is max_tokens), the others are
/// left out; keep_alive is checked and ignored; format becomes
/// response_format.
fn openai_options(body: &mut serde_json::Value, options: &GenerationOptions) -> Result<()> {
    if let Some(serde_json::Value::Object(map)) =
        parse_json_object("options_json", &options.options_json)?
    {
        for (from, to) in [
            ("temperature", "temperature"),
            ("top_p", "top_p"),
            ("num_predict", "max_tokens"),
            ("stop", "stop"),
            ("seed", "seed"),
            ("presence_penalty", "presence_penalty"),
            ("frequency_penalty", "frequency_penalty"),
        ] {
            if let Some(value) = map.get(from) {
                body[to] = value.clone();
            }
        }
    }
    keep_alive_value(&options.keep_alive)?;
    match format_value(&options.format)? {
        None => {}
        Some(serde_json::Value::String(_)) => {
            body["response_format"] = serde_json::json!({ "type": "json_object" });
        }
        Some(schema) => {
            body["response_format"] = serde_json::json!({
                "type": "json_schema",
                "json_schema": { "name": "response", "schema": schema }
            });
        }
    }
    Ok(())
}

fn openai_messages(messages: Vec<ChatMessage>) -> Vec<serde_json::Value> {
    messages
        .into_iter()
        .map(|m| {
            if m.images.is_empty() {
                return serde_json::json!({ "role": m.role, "content": m.content });
            }
            let mut parts = vec![serde_json::json!({ "type": "text", "text": m.content })];
            parts.extend(m.images.iter().map(|image| {
                serde_json::json!({
                    "type": "image_url",
                    "image_url": { "url": format!("data:image/png;base64,{image}") }
                })
            }));
            serde_json::json!({ "role": m.role, "content": parts })
        })
        .collect()
}

fn openai_body(model: &str) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "stream": true,
        "stream_options": { "include_usage": true },
    })
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// How long the local server's model list answers "it is here" without
/// asking again.
const LOCAL_CATALOG_FRESH: std::time::Duration = std::time::Duration::from_secs(5);

impl Ollama {
    /// What a failure of a stream is mapped with.
    fn failure_context(&self, endpoint: Endpoint) -> FailureContext {
        FailureContext {
            _local: endpoint.local.then(|| self.local_streams.enter()),
            endpoint,
            address: self.address.clone(),
            server: self.supervisor.watch(),
            health: self.health.clone(),
        }
    }

    /// Which provider and model a request goes to, as [`Target`] says.
    /// The gateway checks a token's allowed models against this.
    pub async fn resolve(&self, target: &Target) -> Result<Resolved> {
        let (mut provider, mut model) = (target.provider.clone(), target.model.clone());
        if model.is_empty() && !target.project.is_empty() {
            let (preferred_provider, preferred_model) =
                self.project_preference(&target.project).await?;
            if !preferred_model.is_empty() {
                model = preferred_model;
                if provider.is_empty() {
                    provider = preferred_provider;
                }
            }
        }
        if model.is_empty() {
            model = self.default_model().await?;
        }
        if model.is_empty() {
            return Err(Error::invalid_argument(
                "model",
                "no model given and no default model set; set one with `omnipanel models default NAME`",
            ));
        }
        let records = self.provider_records().await?;
        if provider.is_empty() {
            let mut names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
            names.push(LOCAL);
            match model_route::route(&model, &names) {
                Route::Provider {
                    provider: named,
                    model: rest,
                } => {
                    provider = named;
                    model = rest;
                }
                Route::Anywhere(_) => provider = self.find_provider(&model, &records).await?,
            }
        }
        let kind = if provider == LOCAL {
            ProviderKind::Ollama
        } else {
            records
                .iter()
                .find(|r| r.name == provider)
                .map(|r| r.kind)
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "no provider named {provider:?}; see `omnipanel models providers`"
                    ))
                })?
        };
        let model = match kind {
            ProviderKind::Ollama => ModelName::parse("model", &model)?.display(),
            ProviderKind::OpenAi => model,
        };
        Ok(Resolved {
            provider,
            model,
            kind,
        })
    }

    /// The provider that has `model`: the local server first, then the
    /// stored providers in list order (those known to be down skipped).
    /// Without stored providers it is the local server, asked nothing.
    /// Whether the local server has `model` (Ollama's tag rules). A list
    /// younger than [`LOCAL_CATALOG_FRESH`] answers "yes" without asking;
    /// a "no" is always checked against a fresh list, so a model pulled
    /// outside OmniPanel is found at once. A listed model deleted outside
    /// OmniPanel is at worst sent to the local server for a few seconds,
    /// which answers that it does not have it.
    async fn local_has(&self, model: &str) -> bool {
        let has = |names: &[String]| {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            model_route::find(
                model,
                &[Catalog {
                    provider: LOCAL,
                    ollama: true,
                    models: names,
                }],
            )
            .is_some()
        };
        if let Some((when, names)) = &*crate::sync::lock(&self.local_catalog)
            && when.elapsed() < LOCAL_CATALOG_FRESH
            && has(names)
        {
            return true;
        }
        let Ok(models) = self.list_models(LOCAL).await else {
            return false;
        };
        let names: Vec<String> = models.into_iter().map(|m| m.name).collect();
        let found = has(&names);
        *crate::sync::lock(&self.local_catalog) = Some((Instant::now(), names));
        found
    }

    async fn find_provider(&self, model: &str, records: &[ProviderRecord]) -> Result<String> {
        if records.is_empty() {
            return Ok(LOCAL.to_owned());
        }
        let mut asked = Vec::new();
        if self.supervisor.status().state.is_up() {
            asked.push(LOCAL.to_owned());
            if self.local_has(model).await {
                return Ok(LOCAL.to_owned());
            }
        }
        for record in records {
            if self.health.down_recently(&record.name).is_some() {
                continue;
            }
            asked.push(record.name.clone());
            let Ok(models) = self.list_models(&record.name).await else {
                continue;
            };
            let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
            let catalog = Catalog {
                provider: &record.name,
                ollama: record.kind == ProviderKind::Ollama,
                models: names,
            };
            if model_route::find(model, &[catalog]).is_some() {
                return Ok(record.name.clone());
            }
        }
        Err(Error::not_found(format!(
            "no provider has a model named {model:?} (asked: {}); name the provider as PROVIDER/{model}, or pull it",
            if asked.is_empty() { "none is up".to_owned() } else { asked.join(", ") }
        ))
        .with_reason(Reason::ModelNotFound))
    }

    /// Start a chat stream.
    pub async fn chat(
        &self,
        target: &Target,
        messages: Vec<ChatMessage>,
        options: GenerationOptions,
    ) -> Result<ReplyStream> {
        check_messages(&messages)?;
        // Bad options are INVALID_ARGUMENT whatever the provider is.
        apply_options(&mut serde_json::json!({}), &options)?;
        let resolved = self.resolve(target).await?;
        let endpoint = self.endpoint(&resolved.provider).await?;
        let started = Instant::now();
        let source = match &endpoint.backend {
            Backend::Ollama(api) => {
                let messages: Vec<serde_json::Value> = messages
                    .into_iter()
                    .map(|m| {
                        let mut value = serde_json::json!({ "role": m.role, "content": m.content });
                        if !m.images.is_empty() {
                            value["images"] = serde_json::Value::from(m.images);
                        }
                        value
                    })
                    .collect();
                let mut body = serde_json::json!({
                    "model": resolved.model, "messages": messages, "stream": true
                });
                apply_options(&mut body, &options)?;
                let lines = api
                    .chat(&body)
                    .await
                    .map_err(|err| self.api_error(&endpoint, err))?;
                Source::OllamaChat(lines)
            }
            Backend::OpenAi(api) => {
                let mut body = openai_body(&resolved.model);
                body["messages"] = serde_json::Value::from(openai_messages(messages));
                openai_options(&mut body, &options)?;
                let stream = api
                    .stream(true, &body)
                    .await
                    .map_err(|err| self.openai_error(&endpoint, err))?;
                Source::OpenAi(stream)
            }
        };
        self.record_success(&endpoint);
        Ok(ReplyStream::new(
            source,
            resolved.model,
            started,
            self.failure_context(endpoint),
        ))
    }

    /// Start a generate stream.
    pub async fn generate(
        &self,
        target: &Target,
        params: GenerateParams,
        options: GenerationOptions,
    ) -> Result<ReplyStream> {
        apply_options(&mut serde_json::json!({}), &options)?;
        let resolved = self.resolve(target).await?;
        let endpoint = self.endpoint(&resolved.provider).await?;
        let started = Instant::now();
        let source = match &endpoint.backend {
            Backend::Ollama(api) => {
                let mut body = serde_json::json!({
                    "model": resolved.model, "prompt": params.prompt, "stream": true
                });
                if !params.system.is_empty() {
                    body["system"] = serde_json::Value::from(params.system);
                }
                if !params.context.is_empty() {
                    body["context"] = serde_json::Value::from(params.context);
                }
                if params.raw {
                    body["raw"] = serde_json::Value::from(true);
                }
                apply_options(&mut body, &options)?;
                let lines = api
                    .generate(&body)
                    .await
                    .map_err(|err| self.api_error(&endpoint, err))?;
                Source::OllamaGenerate(lines)
            }
            Backend::OpenAi(api) => {
                if params.raw {
                    return Err(Error::invalid_argument(
                        "raw",
                        format!(
                            "provider {} is an openai provider; raw prompts are an Ollama feature",
                            endpoint.name
                        ),
                    ));
                }
                if !params.context.is_empty() {
                    return Err(Error::invalid_argument(
                        "context",
                        format!(
                            "provider {} is an openai provider; continuing from a context is an Ollama feature",
                            endpoint.name
                        ),
                    ));
                }
                // /completions has no system prompt: it leads the prompt.
                let prompt = if params.system.is_empty() {
                    params.prompt
                } else {
                    format!("{}\n\n{}", params.system, params.prompt)
                };
                let mut body = openai_body(&resolved.model);
                body["prompt"] = serde_json::Value::from(prompt);
                openai_options(&mut body, &options)?;
                let stream = api
                    .stream(false, &body)
                    .await
                    .map_err(|err| self.openai_error(&endpoint, err))?;
                Source::OpenAi(stream)
            }
        };
        self.record_success(&endpoint);
        Ok(ReplyStream::new(
            source,
            resolved.model,
            started,
            self.failure_context(endpoint),
        ))
    }

    /// Embed texts, one vector per input.
    pub async fn embed(
        &self,
        target: &Target,
        input: Vec<String>,
        options: EmbedOptions,
    ) -> Result<Embeddings> {
        if input.is_empty() {
            return Err(Error::invalid_argument(
                "input",
                "give at least one text to embed",
            ));
        }
        let keep_alive = keep_alive_value(&options.keep_alive)?;
        let resolved = self.resolve(target).await?;
        let endpoint = self.endpoint(&resolved.provider).await?;
        let started = Instant::now();
        let (model, vectors, prompt_tokens) = match &endpoint.backend {
            Backend::Ollama(api) => {
                let mut body = serde_json::json!({ "model": resolved.model, "input": input });
                if let Some(truncate) = options.truncate {
                    body["truncate"] = serde_json::Value::from(truncate);
                }
                if let Some(keep_alive) = keep_alive {
                    body["keep_alive"] = keep_alive;
                }
                let answer = api
                    .embed(&body)
                    .await
                    .map_err(|err| self.api_error(&endpoint, err))?;
                (answer.model, answer.embeddings, answer.prompt_eval_count)
            }
            Backend::OpenAi(api) => {
                let answer = api
                    .embed(&resolved.model, &input)
                    .await
                    .map_err(|err| self.openai_error(&endpoint, err))?;
                (answer.model, answer.vectors, answer.prompt_tokens)
            }
        };
        self.record_success(&endpoint);
        if vectors.len() != input.len() {
            return Err(Error::internal(format!(
                "provider {} returned {} vectors for {} inputs",
                endpoint.name,
                vectors.len(),
                input.len()
            )));
        }
        Ok(Embeddings {
            model: if model.is_empty() {
                resolved.model
            } else {
                model
            },
            provider: endpoint.name.clone(),
            vectors,
            prompt_tokens,
            total_duration_ns: elapsed_ns(started),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_accepts_what_ollama_accepts() {
        for ok in ["", "0", "300", "-1", "10m", "1h30m", "1.5h", "500ms", "-1m"] {
            assert!(keep_alive_value(ok).is_ok(), "{ok}");
        }
        for bad in ["ten", "10 minutes", "5x", "m", "1h-"] {
            assert!(keep_alive_value(bad).is_err(), "{bad}");
        }
        assert_eq!(
            keep_alive_value("0").ok().flatten(),
            Some(serde_json::Value::from(0))
        );
    }

    #[test]
    fn options_must_be_json_objects() {
        let mut body = serde_json::json!({});
        let bad = GenerationOptions {
            options_json: "[1]".into(),
            ..Default::default()
        };
        assert_eq!(
            apply_options(&mut body, &bad).unwrap_err().field(),
            Some("options_json")
        );
        let good = GenerationOptions {
            options_json: "{\"temperature\":0.1}".into(),
            format: "json".into(),
            keep_alive: "5m".into(),
        };
        assert!(apply_options(&mut body, &good).is_ok());
        assert_eq!(body["options"]["temperature"], 0.1);
        assert_eq!(body["format"], "json");
    }

    #[test]
    fn a_chat_needs_messages_with_known_roles() {
        let message = |role: &str| ChatMessage {
            role: role.into(),
            content: "hi".into(),
            images: Vec::new(),
        };
        let err = check_messages(&[]).unwrap_err();
        assert_eq!(err.field(), Some("messages"));
        assert!(err.to_string().contains("at least one message"), "{err}");
        let err = check_messages(&[message("user"), message("robot")]).unwrap_err();
        assert_eq!(err.field(), Some("messages[1].role"));
        assert!(
            err.to_string()
                .contains("\"robot\" is not one of system, user, assistant, tool"),
            "{err}"
        );
        assert!(check_messages(&["system", "user", "assistant", "tool"].map(message)).is_ok());
    }

    #[test]
    fn format_is_json_or_a_schema_object() {
        assert_eq!(format_value(" ").ok(), Some(None));
        assert_eq!(
            format_value("json").ok().flatten(),
            Some(serde_json::Value::from("json"))
        );
        for bad in ["yaml", "[1]", "{not json"] {
            let err = format_value(bad).unwrap_err();
            assert_eq!(err.field(), Some("format"), "{bad}");
            assert!(
                err.to_string().contains("a JSON schema object"),
                "{bad}: {err}"
            );
        }
        let err = parse_json_object("options_json", "{oops").unwrap_err();
        assert!(err.to_string().contains("is not valid JSON"), "{err}");
    }

    /// Ollama-style options become their OpenAI names; what OpenAI has no
    /// name for is left out; format becomes response_format.
    #[test]
    fn openai_requests_get_the_options_and_format_openai_knows() {
        let mut body = openai_body("qwen");
        openai_options(
            &mut body,
            &GenerationOptions {
                options_json:
                    r#"{"temperature":0.2,"num_predict":64,"num_ctx":4096,"stop":["\n"]}"#.into(),
                keep_alive: "5m".into(),
                format: "json".into(),
            },
        )
        .unwrap();
        assert_eq!(body["model"], "qwen");
        assert_eq!(body["temperature"], 0.2);
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["stop"][0], "\n");
        assert!(body.get("num_ctx").is_none(), "{body}");
        assert!(body.get("keep_alive").is_none(), "{body}");
        assert_eq!(body["response_format"]["type"], "json_object");

        let mut body = openai_body("qwen");
        openai_options(
            &mut body,
            &GenerationOptions {
                format: r#"{"type":"object"}"#.into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(
            body["response_format"]["json_schema"]["schema"]["type"],
            "object"
        );
        // keep_alive is ignored by OpenAI servers, but still checked.
        let bad = GenerationOptions {
            keep_alive: "ten".into(),
            ..Default::default()
        };
        assert!(openai_options(&mut openai_body("qwen"), &bad).is_err());
    }

    #[test]
    fn openai_messages_carry_images_as_data_urls() {
        let messages = openai_messages(vec![
            ChatMessage {
                role: "system".into(),
                content: "be brief".into(),
                images: Vec::new(),
            },
            ChatMessage {
                role: "user".into(),
                content: "what is this?".into(),
                images: vec!["iVBORw0KGgo=".into()],
            },
        ]);
        assert_eq!(
            messages[0],
            serde_json::json!({ "role": "system", "content": "be brief" })
        );
        assert_eq!(messages[1]["content"][0]["text"], "what is this?");
        assert_eq!(
            messages[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,iVBORw0KGgo="
        );
    }
}
