//! Anthropic's Messages API (`POST {base}/v1/messages`), translated both ways so every
//! line still reads as an OpenAI `chat.completion`:
//! system messages move to the top-level `system`, `stop` becomes `stop_sequences`,
//! and the reply's `content[].text`, `stop_reason` and usage map back.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::simulated::content_text;
use super::{error_body, http, upstream_model, upstream_root, Attempt, LineRequest};
use crate::config::Upstream;

pub const API_VERSION: &str = "2023-06-01";

/// OpenAI content parts as Anthropic content blocks (text and images).
fn content_blocks(content: &Value) -> Value {
    let Value::Array(parts) = content else { return content.clone() };
    let blocks = parts
        .iter()
        .map(|p| match p.get("type").and_then(Value::as_str) {
            Some("image_url") => {
                let url = p.pointer("/image_url/url").and_then(Value::as_str).unwrap_or_default();
                match url.strip_prefix("data:").and_then(|r| r.split_once(";base64,")) {
                    Some((media_type, data)) => {
                        json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
                    }
                    None => json!({"type": "image", "source": {"type": "url", "url": url}}),
                }
            }
            _ => p.clone(),
        })
        .collect();
    Value::Array(blocks)
}

/// The chat body as a Messages API request.
pub fn request_body(req: &LineRequest) -> Value {
    let body = &req.body;
    let mut out = Map::new();
    if let Some(Value::String(model)) = body.get("model") {
        out.insert("model".into(), Value::String(upstream_model(model, &req.provider).to_owned()));
    }
    let max_tokens = body.get("max_tokens").or_else(|| body.get("max_completion_tokens"));
    out.insert("max_tokens".into(), max_tokens.cloned().unwrap_or(json!(1024)));
    let mut system = Vec::new();
    let mut messages = Vec::new();
    for m in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("user");
        let content = m.get("content").cloned().unwrap_or(Value::Null);
        match role {
            "system" | "developer" => system.push(content_text(&content)),
            "assistant" => messages.push(json!({"role": "assistant", "content": content_blocks(&content)})),
            // Tool results and anything else reach Anthropic as user turns.
            _ => messages.push(json!({"role": "user", "content": content_blocks(&content)})),
        }
    }
    if !system.is_empty() {
        out.insert("system".into(), Value::String(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(messages));
    match body.get("stop") {
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) => {
            out.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        _ => {}
    }
    for key in ["temperature", "top_p", "top_k", "metadata"] {
        if let Some(v) = body.get(key) {
            out.insert(key.into(), v.clone());
        }
    }
    Value::Object(out)
}

fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// A Messages API reply as a `chat.completion`.
pub fn chat_completion(reply: &Value, requested_model: &str, created: i64) -> Value {
    let text: String = reply
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    let input = reply.pointer("/usage/input_tokens").and_then(Value::as_u64).unwrap_or(0);
    let output = reply.pointer("/usage/output_tokens").and_then(Value::as_u64).unwrap_or(0);
    json!({
        "id": reply.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": created,
        "model": reply.get("model").and_then(Value::as_str).unwrap_or(requested_model),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": finish_reason(reply.get("stop_reason").and_then(Value::as_str)),
        }],
        "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
    })
}

/// Anthropic's `{"type": "error", "error": {"type", "message"}}` as an OpenAI error body.
pub fn openai_error(reply: &Value, status: u16) -> Value {
    let kind = reply.pointer("/error/type").and_then(Value::as_str).unwrap_or("upstream_error");
    let message = reply
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map_or_else(|| format!("Anthropic answered {status}"), str::to_owned);
    error_body(&message, kind, Value::String(kind.to_owned()))
}

pub async fn attempt(client: &reqwest::Client, up: &Upstream, timeout: Duration, req: &LineRequest) -> Attempt {
    let url = format!("{}/v1/messages", upstream_root(&up.base_url));
    let mut builder = client.post(url).header("anthropic-version", API_VERSION);
    if let Some(key) = &up.api_key {
        builder = builder.header("x-api-key", key.expose());
    }
    match http::post_json(builder, &request_body(req), timeout).await {
        Ok(r) => {
            let model = req.body.get("model").and_then(Value::as_str).unwrap_or_default();
            let body = if (200..300).contains(&r.status) {
                if r.body.get("content").and_then(Value::as_array).is_none() {
                    return http::invalid_reply(format!(
                        "Anthropic answered {} without a message: {}",
                        r.status, r.body
                    ));
                }
                chat_completion(&r.body, model, crate::ids::now_secs())
            } else {
                openai_error(&r.body, r.status)
            };
            Attempt::Reply { status: r.status, body, request_id: r.request_id, retry_after: r.retry_after }
        }
        Err(a) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(body: Value) -> LineRequest {
        LineRequest {
            custom_id: "a".into(),
            provider: "anthropic".into(),
            url: "/v1/chat/completions".into(),
            body: body.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn request_translation() {
        let req = line(json!({
            "model": "anthropic/claude-4.5-sonnet", "max_tokens": 50, "temperature": 0.2, "stop": "END",
            "messages": [
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": [{"type": "text", "text": "Hi"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Bye"}]}));
        let out = request_body(&req);
        assert_eq!(out["model"], "claude-4.5-sonnet");
        assert_eq!(out["system"], "Be terse.");
        assert_eq!(out["max_tokens"], 50);
        assert_eq!(out["stop_sequences"], json!(["END"]));
        assert_eq!(out["temperature"], json!(0.2));
        let msgs = out["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(
            msgs[0]["content"][1]["source"],
            json!({"type": "base64", "media_type": "image/png", "data": "AAAA"})
        );
        assert_eq!(msgs[1], json!({"role": "assistant", "content": "Hello"}));
        assert!(out.get("stop").is_none());
    }

    #[test]
    fn reply_translation() {
        let reply = json!({"id": "msg_1", "type": "message", "model": "claude-4.5-sonnet",
            "content": [{"type": "text", "text": "Par"}, {"type": "text", "text": "is"}],
            "stop_reason": "max_tokens", "usage": {"input_tokens": 10, "output_tokens": 2}});
        let c = chat_completion(&reply, "anthropic/claude-4.5-sonnet", 7);
        assert_eq!(c["choices"][0]["message"]["content"], "Paris");
        assert_eq!(c["choices"][0]["finish_reason"], "length");
        assert_eq!(c["usage"], json!({"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}));
        assert_eq!(c["object"], "chat.completion");
        let e = openai_error(&json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}), 529);
        assert_eq!(e, json!({"error": {"message": "busy", "type": "overloaded_error", "code": "overloaded_error"}}));
    }
}
