//! The request model of a batch file: the five fields of a line, the endpoints and providers.

use serde::{Deserialize, Serialize};

/// The chat endpoint every provider serves.
pub const CHAT_URL: &str = "/v1/chat/completions";
/// The embeddings endpoint (OpenAI-compatible providers only).
pub const EMBEDDINGS_URL: &str = "/v1/embeddings";
/// The only method the Batch API accepts on a line.
pub const METHOD_POST: &str = "POST";

/// The endpoints a batch line may target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    ChatCompletions,
    Embeddings,
}

impl Endpoint {
    pub fn from_url(url: &str) -> Option<Self> {
        match url {
            CHAT_URL => Some(Self::ChatCompletions),
            EMBEDDINGS_URL => Some(Self::Embeddings),
            _ => None,
        }
    }

    pub fn url(self) -> &'static str {
        match self {
            Self::ChatCompletions => CHAT_URL,
            Self::Embeddings => EMBEDDINGS_URL,
        }
    }
}

/// Providers known out of the box. The set is open: a caller may allow more by name
/// (FastRouter's docs mention `gemini` on one page).
pub const DEFAULT_PROVIDERS: &[&str] = &["openai", "anthropic"];

/// Providers that cannot serve `/v1/embeddings`.
pub fn provider_serves(provider: &str, endpoint: Endpoint) -> bool {
    !(provider == "anthropic" && endpoint == Endpoint::Embeddings)
}

/// Providers whose batch API needs `max_tokens` on every chat request.
pub fn provider_requires_max_tokens(provider: &str) -> bool {
    provider == "anthropic"
}

/// The `max_tokens` every chat request built by the package for such a provider gets when
/// neither `max_tokens` nor `max_completion_tokens` is given (one default, everywhere:
/// `BatchRequest.chat`, `add_chat`, `from_records` / `from_dataframe`, `run(df)`).
pub const DEFAULT_MAX_TOKENS: u64 = 1024;

/// Providers that restrict custom ids to `^[a-zA-Z0-9_-]{1,64}$`.
pub fn provider_restricts_custom_id(provider: &str) -> bool {
    provider == "anthropic"
}

/// Message roles accepted in a chat request (OpenAI's set; Anthropic's translation moves
/// `system`/`developer` to the top-level system prompt).
pub const ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

/// Anthropic's custom-id rule, `^[a-zA-Z0-9_-]{1,64}$`, without a regex engine.
pub fn is_strict_custom_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The provider named by a `provider/model` model name, if it has a prefix.
pub fn provider_of_model(model: &str) -> Option<&str> {
    match model.split_once('/') {
        Some((prefix, rest)) if !prefix.is_empty() && !rest.is_empty() => Some(prefix),
        _ => None,
    }
}

/// One line of a batch file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRequest {
    pub custom_id: String,
    pub provider: String,
    pub method: String,
    pub url: String,
    pub body: serde_json::Value,
}

/// A request that cannot even be built (as opposed to one that fails validation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelError {
    /// The model has no `provider/` prefix and no provider was given.
    ProviderNotInferable { model: String },
}

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ProviderNotInferable { model } => write!(
                f,
                "cannot infer the provider of model {model:?}: name it 'provider/model' \
                 (e.g. 'openai/gpt-4.1-nano') or pass provider="
            ),
        }
    }
}

impl std::error::Error for ModelError {}

/// The provider to write on a line: the explicit one, else the model's prefix.
pub fn resolve_provider(model: &str, provider: Option<&str>) -> Result<String, ModelError> {
    match provider {
        Some(p) => Ok(p.to_owned()),
        None => provider_of_model(model)
            .map(str::to_owned)
            .ok_or_else(|| ModelError::ProviderNotInferable { model: model.to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_custom_id() {
        assert!(is_strict_custom_id("request-1_A"));
        assert!(!is_strict_custom_id(""));
        assert!(!is_strict_custom_id("has space"));
        assert!(!is_strict_custom_id(&"a".repeat(65)));
        assert!(is_strict_custom_id(&"a".repeat(64)));
    }

    #[test]
    fn provider_inference() {
        assert_eq!(provider_of_model("anthropic/claude-4.5-sonnet"), Some("anthropic"));
        assert_eq!(provider_of_model("gpt-4"), None);
        assert_eq!(provider_of_model("/x"), None);
        assert_eq!(resolve_provider("gpt-4", Some("openai")).unwrap(), "openai");
        assert!(resolve_provider("gpt-4", None).is_err());
    }

    #[test]
    fn chat_request_round_trips() {
        let r = BatchRequest {
            custom_id: "a".into(),
            provider: "openai".into(),
            method: METHOD_POST.into(),
            url: CHAT_URL.into(),
            body: serde_json::json!({"model": "openai/gpt-4.1", "messages": []}),
        };
        let s = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<BatchRequest>(&s).unwrap(), r);
    }
}
