//! An Anthropic `message` as an OpenAI `chat.completion`, and Anthropic errors as OpenAI
//! error bodies.

use serde_json::{json, Value};

use super::Refusal;

/// OpenAI's `finish_reason` for each `stop_reason` Anthropic documents.
pub fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        // end_turn, stop_sequence, pause_turn (a server-tool turn paused: what came so far
        // is the answer), and anything newer.
        _ => "stop",
    }
}

/// The `chat.completion` for Anthropic's `message`: text blocks joined into `content` (null
/// when there is none), `tool_use` blocks as `tool_calls`, thinking left out, usage with
/// cache reads and writes counted in `prompt_tokens` (reads also as `cached_tokens`).
pub fn chat_completion(message: &Value, requested_model: &str, created: i64) -> Value {
    let blocks = message.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = b.get("text").and_then(Value::as_str).unwrap_or_default();
                text.get_or_insert_with(String::new).push_str(t);
            }
            Some("tool_use") => tool_calls.push(json!({
                "id": b.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": b.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": b.get("input").map_or_else(|| "{}".to_owned(), Value::to_string),
                },
            })),
            // thinking, redacted_thinking and server-tool blocks are not the answer.
            _ => {}
        }
    }
    let mut msg = json!({"role": "assistant", "content": text, "refusal": null});
    if !tool_calls.is_empty() {
        msg["tool_calls"] = Value::Array(tool_calls);
    }
    let n = |k: &str| message.pointer(&format!("/usage/{k}")).and_then(Value::as_u64);
    let (cache_read, cache_write) = (n("cache_read_input_tokens"), n("cache_creation_input_tokens"));
    let prompt = n("input_tokens").unwrap_or(0) + cache_read.unwrap_or(0) + cache_write.unwrap_or(0);
    let completion = n("output_tokens").unwrap_or(0);
    let mut usage =
        json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    if cache_read.is_some() || cache_write.is_some() {
        usage["prompt_tokens_details"] = json!({"cached_tokens": cache_read.unwrap_or(0)});
    }
    json!({
        "id": message.get("id").cloned().unwrap_or(Value::Null),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model").and_then(Value::as_str).unwrap_or(requested_model),
        "choices": [{
            "index": 0,
            "message": msg,
            "logprobs": null,
            "finish_reason": finish_reason(message.get("stop_reason").and_then(Value::as_str)),
        }],
        "usage": usage,
    })
}

/// Anthropic's `{"type": "error", "error": {"type", "message"}}` as OpenAI's error body.
pub fn openai_error(reply: &Value, status: u16) -> Value {
    let kind = reply.pointer("/error/type").and_then(Value::as_str).unwrap_or("upstream_error");
    let message = reply
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map_or_else(|| format!("Anthropic answered {status}"), str::to_owned);
    json!({"error": {"message": message, "type": kind, "param": null, "code": kind}})
}

/// The 400 body of a line the translation refused: the first refusal's parameter and code,
/// every refusal in the message.
pub fn refusal_error(refusals: &[Refusal]) -> Value {
    let message = refusals.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    let first = refusals.first();
    json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": first.map(Refusal::param),
        "code": first.map(|r| r.code.as_str()),
    }})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_tools_thinking_and_usage() {
        let m = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "Let me "},
                        {"type": "text", "text": "check."}, {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20}});
        let c = chat_completion(&m, "anthropic/claude-x", 7);
        let msg = &c["choices"][0]["message"];
        assert_eq!(msg["content"], "Let me check.");
        assert_eq!(
            msg["tool_calls"],
            json!([{"id": "toolu_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}])
        );
        assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            c["usage"],
            json!({"prompt_tokens": 130, "completion_tokens": 5, "total_tokens": 135, "prompt_tokens_details": {"cached_tokens": 100}})
        );
        let only_tool =
            json!({"content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}], "stop_reason": "tool_use"});
        assert_eq!(chat_completion(&only_tool, "m", 0)["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(chat_completion(&only_tool, "m", 0)["model"], "m");
    }

    #[test]
    fn every_stop_reason() {
        for (stop, finish) in [
            ("end_turn", "stop"),
            ("max_tokens", "length"),
            ("stop_sequence", "stop"),
            ("tool_use", "tool_calls"),
            ("pause_turn", "stop"),
            ("refusal", "content_filter"),
            ("model_context_window_exceeded", "length"),
        ] {
            assert_eq!(finish_reason(Some(stop)), finish, "{stop}");
        }
        assert_eq!(finish_reason(None), "stop");
    }

    #[test]
    fn errors_carry_param() {
        let e = openai_error(&json!({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}), 529);
        assert_eq!(
            e,
            json!({"error": {"message": "busy", "type": "overloaded_error", "param": null, "code": "overloaded_error"}})
        );
        let r = refusal_error(&[Refusal::new(
            "body.messages[1].content[0]",
            crate::validate::Code::UnsupportedContent,
            "no audio",
        )]);
        assert_eq!(r["error"]["param"], "messages[1].content[0]");
        assert_eq!(r["error"]["code"], "unsupported_content");
    }
}
