//! The payloads of an OpenAI-compatible stream: `chat.completion.chunk`
//! and `text_completion` objects, the `[DONE]` sentinel, the final usage
//! chunk (`stream_options.include_usage`), and an error sent in the middle
//! of a stream (`{"error": {...}}`, which LM Studio, vLLM and OpenAI send
//! when generation fails after the status line went out). Fields servers
//! leave out or set to null read as empty; unknown fields are ignored, as
//! these servers add their own.

use serde::Deserialize;

/// What one event of the stream says.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text of the reply (possibly empty: a role-only first chunk), the
    /// finish reason once the model stopped, and token counts when the
    /// server sent them.
    Delta {
        /// The text.
        content: String,
        /// Why generation stopped ("stop", "length"), on the last chunk.
        finish_reason: Option<String>,
        /// Token counts, on the usage chunk (or the last one).
        usage: Option<Usage>,
    },
    /// `[DONE]`: the stream is complete.
    Done,
}

/// Token counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Tokens generated.
    #[serde(default)]
    pub completion_tokens: u64,
}

/// Why an event is not a piece of the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// The server reported an error in the stream.
    Server {
        /// Its message.
        message: String,
        /// Its code or type, when given (e.g. "model_not_found").
        code: String,
    },
    /// Not an OpenAI stream payload at all (a wrong API, or a proxy's
    /// page): the start of it.
    NotOpenAi(String),
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Server { message, code } if code.is_empty() => f.write_str(message),
            Self::Server { message, code } => write!(f, "{message} ({code})"),
            Self::NotOpenAi(start) => {
                write!(f, "the server's stream is not the OpenAI API's: {start}")
            }
        }
    }
}

#[derive(Deserialize)]
struct Payload {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<Delta>,
    /// Text completions carry `text` instead of a delta.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

/// Read one event's data.
pub fn piece(data: &str) -> Result<Piece, ChunkError> {
    let trimmed = data.trim();
    if trimmed == "[DONE]" {
        return Ok(Piece::Done);
    }
    let payload: Payload =
        serde_json::from_str(trimmed).map_err(|_| ChunkError::NotOpenAi(start_of(trimmed)))?;
    if let Some(error) = payload.error {
        let code = match error.code {
            Some(serde_json::Value::String(code)) => code,
            Some(serde_json::Value::Number(code)) => code.to_string(),
            _ => error.kind.unwrap_or_default(),
        };
        return Err(ChunkError::Server {
            message: error
                .message
                .unwrap_or_else(|| "the server reported an error without a message".to_owned()),
            code,
        });
    }
    let Some(choices) = payload.choices else {
        return Err(ChunkError::NotOpenAi(start_of(trimmed)));
    };
    let mut content = String::new();
    let mut finish_reason = None;
    // Only the first choice is asked for (n = 1); a server sending more is
    // read as if it sent one.
    if let Some(choice) = choices.into_iter().next() {
        if let Some(text) = choice.delta.and_then(|delta| delta.content) {
            content.push_str(&text);
        }
        if let Some(text) = choice.text {
            content.push_str(&text);
        }
        finish_reason = choice.finish_reason.filter(|reason| !reason.is_empty());
    }
    Ok(Piece::Delta {
        content,
        finish_reason,
        usage: payload.usage,
    })
}

fn start_of(text: &str) -> String {
    let mut start: String = text.chars().take(80).collect();
    if start.len() < text.len() {
        start.push('…');
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(content: &str, finish: Option<&str>, usage: Option<Usage>) -> Piece {
        Piece::Delta {
            content: content.to_owned(),
            finish_reason: finish.map(str::to_owned),
            usage,
        }
    }

    #[test]
    fn chat_chunks_as_openai_and_its_imitators_send_them() {
        let role_only = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#;
        assert_eq!(piece(role_only), Ok(delta("", None, None)));
        let text = r#"{"choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}]}"#;
        assert_eq!(piece(text), Ok(delta(" world", None, None)));
        let last = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#;
        assert_eq!(piece(last), Ok(delta("", Some("length"), None)));
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#;
        assert_eq!(
            piece(usage),
            Ok(delta(
                "",
                None,
                Some(Usage {
                    prompt_tokens: 9,
                    completion_tokens: 12
                })
            ))
        );
        assert_eq!(piece(" [DONE] "), Ok(Piece::Done));
    }

    #[test]
    fn text_completion_chunks_carry_text() {
        let chunk = r#"{"object":"text_completion","choices":[{"text":"Hi","index":0,"finish_reason":null}]}"#;
        assert_eq!(piece(chunk), Ok(delta("Hi", None, None)));
    }

    #[test]
    fn an_error_in_the_stream_keeps_its_message_and_code() {
        let error =
            r#"{"error":{"message":"CUDA out of memory","type":"server_error","code":null}}"#;
        assert_eq!(
            piece(error),
            Err(ChunkError::Server {
                message: "CUDA out of memory".to_owned(),
                code: "server_error".to_owned()
            })
        );
        let coded = r#"{"error":{"message":"no such model","code":"model_not_found"}}"#;
        assert_eq!(
            piece(coded).map_err(|err| err.to_string()),
            Err("no such model (model_not_found)".to_owned())
        );
    }

    #[test]
    fn what_is_not_openai_says_so_briefly() {
        let html = format!("<html>{}</html>", "x".repeat(200));
        match piece(&html) {
            Err(ChunkError::NotOpenAi(start)) => assert!(start.len() < 100, "{start}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            piece("{\"done\":true}"),
            Err(ChunkError::NotOpenAi(_))
        ));
    }
}
