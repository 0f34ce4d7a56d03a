//! Anthropic's Messages API (`POST {base}/v1/messages`): each line's OpenAI chat body goes
//! through the shared translation (`fastrouter_batch_core::translate`) and the reply comes
//! back as a `chat.completion`. A body the translation refuses is answered 400 here, naming
//! the parameter, without calling Anthropic.

use std::time::Duration;

use serde_json::Value;

use fastrouter_batch_core::translate::{self, Refusal, SamplingTable};

use super::{http, upstream_root, Attempt, LineRequest};
use crate::config::Upstream;

pub const API_VERSION: &str = "2023-06-01";

/// The answer to a line the translation refused: OpenAI's 400 `invalid_request_error`.
pub fn refused(refusals: &[Refusal]) -> Attempt {
    Attempt::Reply { status: 400, body: translate::refusal_error(refusals), request_id: None, retry_after: None }
}

pub async fn attempt(
    client: &reqwest::Client,
    up: &Upstream,
    timeout: Duration,
    req: &LineRequest,
    sampling: &SamplingTable,
) -> Attempt {
    let request = match translate::to_anthropic(&req.body, sampling) {
        Ok(r) => Value::Object(r),
        Err(refusals) => return refused(&refusals),
    };
    let url = format!("{}/v1/messages", upstream_root(&up.base_url));
    let mut builder = client.post(url).header("anthropic-version", API_VERSION);
    if let Some(key) = &up.api_key {
        builder = builder.header("x-api-key", key.expose());
    }
    match http::post_json(builder, &request, timeout).await {
        Ok(r) => {
            let model = req.body.get("model").and_then(Value::as_str).unwrap_or_default();
            let body = if (200..300).contains(&r.status) {
                if r.body.get("content").and_then(Value::as_array).is_none() {
                    return http::invalid_reply(format!(
                        "Anthropic answered {} without a message: {}",
                        r.status, r.body
                    ));
                }
                translate::chat_completion(&r.body, model, crate::ids::now_secs())
            } else {
                translate::openai_error(&r.body, r.status)
            };
            Attempt::Reply { status: r.status, body, request_id: r.request_id, retry_after: r.retry_after }
        }
        Err(a) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals_answer_400_with_param() {
        let body = json!({"model": "anthropic/claude-4.5-sonnet", "max_tokens": 5, "n": 3,
            "messages": [{"role": "user", "content": "hi"}]});
        let refusals = translate::refusals(body.as_object().unwrap(), &SamplingTable::default());
        let Attempt::Reply { status, body, .. } = refused(&refusals) else { panic!("a reply") };
        assert_eq!(status, 400);
        assert_eq!(body["error"]["param"], "n");
        assert_eq!(body["error"]["code"], "unsupported_parameter");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
}
