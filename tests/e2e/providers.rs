//! Providers of both kinds end to end: the agent supervising `fake-ollama`
//! and talking to `fake-openai` (an OpenAI-compatible server) run as real
//! processes. AddProvider's checks and what they report, keys kept out of
//! state.db and every answer, listing and resolving models across
//! providers, chat/generate/embed on either kind with the same stats and
//! error mapping, Ollama-only operations refused, a provider going down,
//! and a project's preferred model.

use std::time::Duration;

use omnipanel_client::{Client, EventSubscription, SubscriptionItem, proto::v1 as pb};
use omnipanel_tests::{FakeOpenAi, PATIENCE, TestResult};
use pb::event::Payload;
use serde_json::json;
use tonic::Code;
use tonic_types::StatusExt;

use crate::ollama::{Setup, is, pull_to_end, setup, wait_status};

/// The API key fake-openai wants; a marker to look for in files.
const KEY: &str = "sk-test-KEYMARKER-1234";
/// The value of an extra header; a secret like the key.
const HEADER_VALUE: &str = "team-HEADERMARKER";

fn reason(status: &tonic::Status) -> String {
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

fn openai(name: &str, url: &str, key: &str) -> pb::AddProviderRequest {
    pb::AddProviderRequest {
        name: name.into(),
        url: url.into(),
        token: key.into(),
        kind: pb::ProviderKind::Openai.into(),
        headers: [("X-Team".to_owned(), HEADER_VALUE.to_owned())].into(),
        timeout_seconds: 30,
    }
}

/// An agent with the fake Ollama up and `test-small` pulled, and a
/// fake-openai wanting [`KEY`], added as provider "lmstudio".
async fn with_lmstudio() -> TestResult<(Setup, FakeOpenAi)> {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    pull_to_end(&setup.client, "test-small").await?;
    let fake = FakeOpenAi::start(&[("FAKE_OPENAI_API_KEY", KEY)]).await?;
    setup
        .client
        .models()
        .add_provider(openai("lmstudio", &fake.url(), KEY))
        .await?;
    Ok((setup, fake))
}

/// A whole streamed chat: the text, the last piece.
async fn chat(
    client: &Client,
    request: pb::ChatRequest,
) -> Result<(String, pb::ChatResponse), tonic::Status> {
    let mut stream = client.models().chat(request).await?.into_inner();
    let mut text = String::new();
    let mut last = None;
    while let Some(piece) = stream.message().await? {
        text.push_str(&piece.content);
        last = Some(piece);
    }
    Ok((
        text,
        last.ok_or_else(|| tonic::Status::internal("empty stream"))?,
    ))
}

fn say(text: &str) -> Vec<pb::ChatMessage> {
    vec![pb::ChatMessage {
        role: "user".into(),
        content: text.into(),
        images: Vec::new(),
    }]
}

#[tokio::test]
async fn add_provider_checks_the_server_and_says_what_failed() -> TestResult {
    let setup = setup(&[], "").await?;
    wait_status(&setup.client, "RUNNING", is(pb::ServerState::Running)).await?;
    let fake = FakeOpenAi::start(&[("FAKE_OPENAI_API_KEY", KEY)]).await?;
    let mut api = setup.client.models();
    let client = setup.client.clone();
    let refused = |request| {
        let client = client.clone();
        async move {
            client
                .models()
                .add_provider(request)
                .await
                .err()
                .ok_or("an AddProvider that should fail succeeded")
        }
    };

    let wrong_key = refused(openai("lm", &fake.url(), "sk-wrong")).await?;
    assert_eq!(wrong_key.code(), Code::FailedPrecondition, "{wrong_key:?}");
    assert_eq!(reason(&wrong_key), "PROVIDER_UNAUTHORIZED");
    assert!(wrong_key.message().contains(&fake.url()), "{wrong_key:?}");

    let closed = format!("http://127.0.0.1:{}/v1", omnipanel_tests::free_port()?);
    let nobody = refused(openai("lm", &closed, KEY)).await?;
    assert_eq!(nobody.code(), Code::Unavailable);
    assert_eq!(reason(&nobody), "PROVIDER_UNREACHABLE", "{nobody:?}");

    fake.switch(json!({ "wrong_shape": true }))?;
    let html = refused(openai("lm", &fake.url(), KEY)).await?;
    assert_eq!(reason(&html), "PROVIDER_WRONG_API", "{html:?}");
    fake.switch(json!({ "wrong_shape": false }))?;

    // An Ollama added as openai, and an OpenAI server added as ollama.
    let ollama_url = format!("http://127.0.0.1:{}/v1", setup.port);
    let as_openai = refused(openai("lm", &ollama_url, "")).await?;
    assert_eq!(reason(&as_openai), "PROVIDER_WRONG_API", "{as_openai:?}");
    let as_ollama = refused(pb::AddProviderRequest {
        kind: pb::ProviderKind::Ollama.into(),
        ..openai("lm", &format!("http://127.0.0.1:{}", fake.port()), KEY)
    })
    .await?;
    assert_eq!(reason(&as_ollama), "PROVIDER_WRONG_API", "{as_ollama:?}");

    let reserved = refused(openai("library", &fake.url(), KEY)).await?;
    assert_eq!(reserved.code(), Code::InvalidArgument);
    assert_eq!(reason(&reserved), "PROVIDER_NAME_RESERVED");

    // Nothing failed was saved.
    let providers = api
        .list_providers(pb::ListProvidersRequest {})
        .await?
        .into_inner()
        .providers;
    assert_eq!(providers.len(), 1, "{providers:?}");

    api.add_provider(openai("lm", &fake.url(), KEY)).await?;
    // "org" is now the first segment of one of lm's models (org/model-7b).
    let collides = refused(openai("org", &fake.url(), KEY)).await?;
    assert_eq!(reason(&collides), "PROVIDER_NAME_RESERVED", "{collides:?}");
    assert!(collides.message().contains("org/model-7b"), "{collides:?}");
    Ok(())
}

#[tokio::test]
async fn openai_providers_chat_generate_and_embed_like_ollama() -> TestResult {
    let (mut setup, fake) = with_lmstudio().await?;
    let client = setup.client.clone();
    let mut api = client.models();

    // Listed with kind, state and header names; never the key.
    let listed = api.list_providers(pb::ListProvidersRequest {}).await?;
    let debug = format!("{listed:?}");
    assert!(!debug.contains("KEYMARKER") && !debug.contains("HEADERMARKER"));
    let providers = listed.into_inner().providers;
    let lm = providers
        .iter()
        .find(|p| p.name == "lmstudio")
        .ok_or("lmstudio not listed")?;
    assert_eq!(lm.kind, i32::from(pb::ProviderKind::Openai));
    assert_eq!(lm.state, i32::from(pb::ProviderState::Up));
    assert_eq!(lm.header_names, vec!["X-Team".to_owned()]);
    assert!(lm.has_token && lm.timeout_seconds == 30 && lm.checked_unix_ms > 0);

    // Every provider's models, local first.
    let all = api
        .list_models(pb::ListModelsRequest {
            all_providers: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .models;
    let names: Vec<(&str, &str)> = all
        .iter()
        .map(|m| (m.provider.as_str(), m.name.as_str()))
        .collect();
    assert_eq!(
        names.first(),
        Some(&("local", "test-small:latest")),
        "{names:?}"
    );
    assert!(
        names.contains(&("lmstudio", "qwen2.5-7b-instruct")),
        "{names:?}"
    );
    assert!(all.iter().all(|m| m.provider_kind
        == i32::from(if m.provider == "local" {
            pb::ProviderKind::Ollama
        } else {
            pb::ProviderKind::Openai
        })));

    // Chat by the provider field, by "provider/model", and by a bare name
    // only lmstudio has; the usage becomes the stats.
    for (provider, model) in [
        ("lmstudio", "qwen2.5-7b-instruct"),
        ("", "lmstudio/qwen2.5-7b-instruct"),
        ("", "org/model-7b"),
    ] {
        let (text, last) = chat(
            &client,
            pb::ChatRequest {
                model: model.into(),
                provider: provider.into(),
                messages: say("Hello there"),
                ..Default::default()
            },
        )
        .await?;
        assert!(text.contains("canned answer from fake-openai"), "{text}");
        assert_eq!(last.provider, "lmstudio");
        assert!(last.done && last.done_reason == "stop", "{last:?}");
        let stats = last.stats.ok_or("no stats")?;
        assert!(
            stats.prompt_eval_count > 0 && stats.eval_count > 0,
            "{stats:?}"
        );
        assert!(stats.time_to_first_token_ns > 0 && stats.total_duration_ns > 0);
    }
    // The key and the header went to the server.
    let stats = fake.stats()?;
    let headers = &stats["last_request"]["headers"];
    assert_eq!(headers["authorization"], format!("Bearer {KEY}"));
    assert_eq!(headers["x-team"], HEADER_VALUE);
    // Local models still resolve locally, TTFT measured there too.
    let (_, last) = chat(
        &client,
        pb::ChatRequest {
            model: "test-small".into(),
            messages: say("hi"),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(last.provider, "local");
    assert!(last.stats.is_some_and(|s| s.time_to_first_token_ns > 0));

    // Generate, and what only Ollama has refused clearly.
    let mut stream = api
        .generate(pb::GenerateRequest {
            model: "lmstudio/qwen2.5-7b-instruct".into(),
            prompt: "Complete this".into(),
            options_json: "{\"num_predict\": 3}".into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut text = String::new();
    let mut last = None;
    while let Some(piece) = stream.message().await? {
        text.push_str(&piece.response);
        last = Some(piece);
    }
    let last = last.ok_or("no generate pieces")?;
    assert_eq!(last.done_reason, "length", "num_predict became max_tokens");
    assert_eq!(last.stats.map(|s| s.eval_count), Some(3));
    assert!(!text.is_empty());
    let raw = api
        .generate(pb::GenerateRequest {
            model: "lmstudio/qwen2.5-7b-instruct".into(),
            prompt: "x".into(),
            raw: true,
            ..Default::default()
        })
        .await
        .err()
        .ok_or("raw accepted")?;
    assert_eq!(raw.code(), Code::InvalidArgument);
    let pull = api
        .pull_model(pb::PullModelRequest {
            model: "qwen2.5-7b-instruct".into(),
            provider: "lmstudio".into(),
            insecure: false,
        })
        .await
        .err()
        .ok_or("pull on openai accepted")?;
    assert_eq!(
        (pull.code(), reason(&pull).as_str()),
        (Code::FailedPrecondition, "OLLAMA_ONLY")
    );
    assert!(pull.message().contains("lmstudio") && pull.message().contains("openai"));

    // Embeddings on both kinds.
    let embedded = api
        .embed(pb::EmbedRequest {
            model: "lmstudio/text-embedding-nomic-embed-text-v1.5".into(),
            input: vec!["one".into(), "two".into()],
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(embedded.provider, "lmstudio");
    assert_eq!(embedded.embeddings.len(), 2);
    assert_eq!(embedded.embeddings[0].values.len(), 16);
    assert!(embedded.prompt_tokens > 0);
    let local = api
        .embed(pb::EmbedRequest {
            model: "test-small".into(),
            input: vec!["one".into()],
            ..Default::default()
        })
        .await?
        .into_inner();
    assert_eq!(
        (local.provider.as_str(), local.embeddings.len()),
        ("local", 1)
    );
    assert!(!local.embeddings[0].values.is_empty());
    let none = api
        .embed(pb::EmbedRequest {
            model: "test-small".into(),
            ..Default::default()
        })
        .await
        .err()
        .ok_or("an empty input was embedded")?;
    assert_eq!(none.code(), Code::InvalidArgument);

    // Failures: in the middle of a stream, and a rate limit.
    fake.switch(json!({ "stream_error_after_chunks": 2 }))?;
    let broken = chat(
        &client,
        pb::ChatRequest {
            model: "lmstudio/qwen2.5-7b-instruct".into(),
            messages: say("Hello there"),
            ..Default::default()
        },
    )
    .await
    .err()
    .ok_or("a broken stream ended well")?;
    assert_eq!(broken.code(), Code::Unavailable, "{broken:?}");
    assert!(broken.message().contains("lmstudio"), "{broken:?}");
    fake.switch(
        json!({ "stream_error_after_chunks": null, "rate_limit_next": 1, "retry_after_secs": 7 }),
    )?;
    let limited = chat(
        &client,
        pb::ChatRequest {
            model: "lmstudio/qwen2.5-7b-instruct".into(),
            messages: say("Hello"),
            ..Default::default()
        },
    )
    .await
    .err()
    .ok_or("the rate limit was not reported")?;
    assert_eq!(limited.code(), Code::ResourceExhausted);
    assert_eq!(reason(&limited), "PROVIDER_RATE_LIMITED");
    assert_eq!(
        limited
            .get_details_retry_info()
            .and_then(|info| info.retry_delay),
        Some(Duration::from_secs(7))
    );

    // The key and the header value are in the 0600 secrets file only.
    let data = setup.sandbox.data_dir();
    let secrets = data.join("secrets.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&secrets)?.permissions());
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(&secrets)?.contains(KEY));
    for entry in std::fs::read_dir(&data)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.as_deref().is_some_and(|n| n.starts_with("state.db")) {
            let bytes = std::fs::read(&path)?;
            for secret in [KEY, HEADER_VALUE] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "{secret} is in {}",
                    path.display()
                );
            }
        }
    }

    // A bug report (logs, redacted settings, crash reports) carries neither
    // the secrets file nor a secret.
    let reports = setup.sandbox.root().join("reports");
    std::fs::create_dir_all(&reports)?;
    let output = setup
        .sandbox
        .cli(&["bugreport", "--output", reports.to_str().ok_or("utf-8")?])?;
    assert!(output.status.success(), "{output:?}");
    let archive_path = std::path::PathBuf::from(omnipanel_tests::stdout(&output).trim());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(
        &archive_path,
    )?));
    let mut names = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.display().to_string();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut bytes)?;
        for secret in [KEY, HEADER_VALUE] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in the bug report's {name}"
            );
        }
        names.push(name);
    }
    assert!(
        names.iter().any(|n| n.ends_with("logs/agent.log")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.contains("secrets")), "{names:?}");

    // A restart keeps the provider and its key.
    setup.agent.stop().await?;
    let agent = setup
        .sandbox
        .start_agent_with(&setup.sandbox.fake_env())
        .await?;
    let client = agent.client().await?;
    wait_status(&client, "RUNNING", is(pb::ServerState::Running)).await?;
    let (text, _) = chat(
        &client,
        pb::ChatRequest {
            model: "lmstudio/qwen2.5-7b-instruct".into(),
            messages: say("again"),
            ..Default::default()
        },
    )
    .await?;
    assert!(text.contains("canned answer"), "{text}");
    Ok(())
}

#[tokio::test]
async fn a_provider_that_goes_down_fails_fast_and_says_so() -> TestResult {
    let (setup, mut fake) = with_lmstudio().await?;
    let client = setup.client.clone();
    let mut events = EventSubscription::new(setup.sandbox.target(), vec!["models".into()], Some(0));
    fake.stop()?;
    let request = pb::ChatRequest {
        model: "lmstudio/qwen2.5-7b-instruct".into(),
        messages: say("Hello"),
        ..Default::default()
    };
    let first = chat(&client, request.clone())
        .await
        .err()
        .ok_or("chat with a stopped server")?;
    assert_eq!(first.code(), Code::Unavailable, "{first:?}");
    assert!(first.message().contains("lmstudio"), "{first:?}");
    let fast = chat(&client, request)
        .await
        .err()
        .ok_or("chat with a down provider")?;
    assert_eq!(
        (fast.code(), reason(&fast).as_str()),
        (Code::Unavailable, "PROVIDER_DOWN")
    );
    assert!(fast.message().contains("lmstudio"), "{fast:?}");

    // The change was published, and ListProviders shows it.
    let changed = tokio::time::timeout(PATIENCE, async {
        loop {
            if let SubscriptionItem::Event(event) = events.next().await?
                && let Some(Payload::ProviderStateChanged(change)) = event.payload
                && change
                    .provider
                    .as_ref()
                    .is_some_and(|p| p.name == "lmstudio")
                && change.previous == i32::from(pb::ProviderState::Up)
            {
                return Ok::<_, omnipanel_client::ClientError>(change);
            }
        }
    })
    .await??;
    let provider = changed.provider.ok_or("no provider")?;
    assert_eq!(provider.state, i32::from(pb::ProviderState::Down));
    assert!(!provider.last_error.is_empty());
    let listed = client
        .models()
        .list_providers(pb::ListProvidersRequest {})
        .await?
        .into_inner()
        .providers;
    let lm = listed
        .iter()
        .find(|p| p.name == "lmstudio")
        .ok_or("not listed")?;
    assert_eq!(lm.state, i32::from(pb::ProviderState::Down), "{lm:?}");
    Ok(())
}

/// A token limited to some models may infer only with those over gRPC too,
/// whichever way the request names the model.
#[tokio::test]
async fn a_token_limited_to_a_model_infers_only_with_it() -> TestResult {
    let (setup, _fake) = with_lmstudio().await?;
    let token = setup
        .client
        .agent()
        .create_token(pb::CreateTokenRequest {
            name: "one model".into(),
            scopes: vec![pb::Scope::Infer.into()],
            allowed_models: vec!["lmstudio/qwen2.5-7b-instruct".into()],
            ..Default::default()
        })
        .await?
        .into_inner()
        .token;
    let limited = Client::connect_as(
        setup.sandbox.target(),
        omnipanel_client::Credential::Bearer(token),
    )
    .await?;
    let (text, _) = chat(
        &limited,
        pb::ChatRequest {
            model: "qwen2.5-7b-instruct".into(),
            provider: "lmstudio".into(),
            messages: say("Hello"),
            ..Default::default()
        },
    )
    .await?;
    assert!(text.contains("Hello"), "{text}");
    for (provider, model) in [
        ("", "test-small"),
        ("local", "test-small"),
        ("", "lmstudio/org/model-7b"),
    ] {
        let refused = chat(
            &limited,
            pb::ChatRequest {
                model: model.into(),
                provider: provider.into(),
                messages: say("Hello"),
                ..Default::default()
            },
        )
        .await
        .err()
        .ok_or("a model the token does not allow")?;
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (Code::PermissionDenied, "MODEL_NOT_ALLOWED"),
            "{model}: {refused:?}"
        );
    }
    let refused = limited
        .models()
        .embed(pb::EmbedRequest {
            model: "test-small".into(),
            input: vec!["text".into()],
            ..Default::default()
        })
        .await
        .err()
        .ok_or("an embedding with a model the token does not allow")?;
    assert_eq!(reason(&refused), "MODEL_NOT_ALLOWED", "{refused:?}");
    Ok(())
}

/// While someone follows the "models" topic, providers are probed every
/// 30 s, so a provider that goes down is reported without any request to it.
#[tokio::test]
async fn a_watched_provider_is_probed_without_requests() -> TestResult {
    let (setup, mut fake) = with_lmstudio().await?;
    let mut events = EventSubscription::new(setup.sandbox.target(), vec!["models".into()], None);
    // Live from here: the subscription now counts as a listener.
    tokio::time::timeout(PATIENCE, async {
        while !matches!(events.next().await?, SubscriptionItem::CaughtUp) {}
        Ok::<_, omnipanel_client::ClientError>(())
    })
    .await??;
    fake.stop()?;
    let changed = tokio::time::timeout(PATIENCE, async {
        loop {
            if let SubscriptionItem::Event(event) = events.next().await?
                && let Some(Payload::ProviderStateChanged(change)) = event.payload
                && change.provider.as_ref().is_some_and(|p| {
                    p.name == "lmstudio" && p.state == i32::from(pb::ProviderState::Down)
                })
            {
                return Ok::<_, omnipanel_client::ClientError>(change);
            }
        }
    })
    .await??;
    let provider = changed.provider.ok_or("no provider")?;
    assert!(!provider.last_error.is_empty(), "{provider:?}");
    Ok(())
}

#[tokio::test]
async fn a_provider_that_never_answers_times_out_at_its_timeout() -> TestResult {
    let (setup, fake) = with_lmstudio().await?;
    let mut api = setup.client.models();
    api.add_provider(pb::AddProviderRequest {
        timeout_seconds: 1,
        ..openai("quick", &fake.url(), KEY)
    })
    .await?;
    fake.switch(json!({ "hang": true }))?;
    let hung = chat(
        &setup.client,
        pb::ChatRequest {
            model: "quick/qwen2.5-7b-instruct".into(),
            messages: say("Hello"),
            ..Default::default()
        },
    )
    .await
    .err()
    .ok_or("a hung server answered")?;
    assert_eq!(hung.code(), Code::Unavailable, "{hung:?}");
    assert!(
        hung.message().contains("quick") && hung.message().contains("1 s"),
        "{hung:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_project_prefers_its_model() -> TestResult {
    let (setup, _fake) = with_lmstudio().await?;
    let client = setup.client.clone();
    let dir = setup.sandbox.project_dir("app");
    std::fs::create_dir_all(&dir)?;
    let id = omnipanel_tests::projects::open_project(&client, &dir).await?;
    let mut projects = client.projects();
    let unknown = projects
        .set_project_model(pb::SetProjectModelRequest {
            project: id.clone(),
            model: "qwen2.5-7b-instruct".into(),
            provider: "nope".into(),
        })
        .await
        .err()
        .ok_or("an unknown provider was accepted")?;
    assert_eq!(unknown.code(), Code::NotFound);
    let project = projects
        .set_project_model(pb::SetProjectModelRequest {
            project: id.clone(),
            model: "qwen2.5-7b-instruct".into(),
            provider: "lmstudio".into(),
        })
        .await?
        .into_inner()
        .project
        .ok_or("no project")?;
    assert_eq!(
        (
            project.preferred_model.as_str(),
            project.preferred_provider.as_str()
        ),
        ("qwen2.5-7b-instruct", "lmstudio")
    );
    // Chat with no model uses it when the request names the project (by
    // path here); without a project it is the default model (none set).
    let (_, last) = chat(
        &client,
        pb::ChatRequest {
            project: dir.display().to_string(),
            messages: say("Hello"),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        (last.provider.as_str(), last.model.as_str()),
        ("lmstudio", "qwen2.5-7b-instruct")
    );
    let no_default = chat(
        &client,
        pb::ChatRequest {
            messages: say("Hello"),
            ..Default::default()
        },
    )
    .await
    .err()
    .ok_or("a chat without model, project or default")?;
    assert_eq!(no_default.code(), Code::InvalidArgument);
    // A default model may be another provider's.
    let mut api = client.models();
    let set = api
        .set_default_model(pb::SetDefaultModelRequest {
            model: "lmstudio/org/model-7b".into(),
        })
        .await?
        .into_inner();
    assert_eq!(set.model, "lmstudio/org/model-7b");
    let (_, last) = chat(
        &client,
        pb::ChatRequest {
            messages: say("Hello"),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        (last.provider.as_str(), last.model.as_str()),
        ("lmstudio", "org/model-7b")
    );
    let all = api
        .list_models(pb::ListModelsRequest {
            all_providers: true,
            ..Default::default()
        })
        .await?
        .into_inner()
        .models;
    let defaults: Vec<&str> = all
        .iter()
        .filter(|m| m.is_default)
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(defaults, vec!["org/model-7b"]);
    // The change was published as ProjectChanged "model".
    let mut events =
        EventSubscription::new(setup.sandbox.target(), vec!["projects".into()], Some(0));
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let SubscriptionItem::Event(event) = events.next().await?
                && let Some(Payload::ProjectChanged(change)) = event.payload
                && change.change == "model"
                && change.project_id == id
            {
                return Ok::<_, omnipanel_client::ClientError>(());
            }
        }
    })
    .await??;
    Ok(())
}
