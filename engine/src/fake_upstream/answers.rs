//! One request's answer, the same whether it came realtime or as a batch line: the
//! simulator's reply, Anthropic's refusals (`messages_rules`), or the failure a test asked
//! for with the marker `[fake:error]` (400) or `[fake:error:NNN]` (status NNN) anywhere in
//! the request body.

use serde_json::{json, Map, Value};

use super::messages_rules;
use super::wire::anthropic_error_type;
use crate::providers::simulated::{answer, anthropic_message, chat_answer, openai_chat, openai_embeddings, Ask};

pub const FAIL_MARKER: &str = "[fake:error";

/// The status the body's failure marker asks for, if it carries one.
pub fn marked_failure(body: &Map<String, Value>) -> Option<u16> {
    let text = serde_json::to_string(body).unwrap_or_default();
    let rest = &text[text.find(FAIL_MARKER)? + FAIL_MARKER.len()..];
    let status = rest
        .strip_prefix(':')
        .and_then(|r| r.split_once(']'))
        .and_then(|(digits, _)| digits.parse::<u16>().ok())
        .filter(|s| (400..=599).contains(s));
    Some(status.unwrap_or(400))
}

fn marker_message(status: u16) -> String {
    format!("Simulated failure: the request carries the {FAIL_MARKER}] marker (status {status}).")
}

/// An OpenAI answer: the HTTP status and body a realtime call would get.
pub fn openai(url: &str, body: &Map<String, Value>, embedding_dims: usize) -> (u16, Value) {
    if let Some(status) = marked_failure(body) {
        let kind = match status {
            429 => "rate_limit_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        };
        let error = json!({"message": marker_message(status), "type": kind, "param": null, "code": "simulated_error"});
        return (status, json!({ "error": error }));
    }
    if url == "/v1/embeddings" {
        (200, openai_embeddings(body, embedding_dims))
    } else {
        (200, openai_chat(&chat_answer(body), crate::ids::now_secs()))
    }
}

/// What Anthropic refuses in a batch request on top of what `/v1/messages` refuses.
fn batch_rules(params: &Map<String, Value>) -> Result<(), String> {
    if params.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err("stream: streaming is not supported for batch requests".into());
    }
    if params.contains_key("speed") {
        return Err("speed: fast mode is not supported for batch requests".into());
    }
    Ok(())
}

/// An Anthropic answer: the message, or the HTTP status and error envelope.
pub fn anthropic(params: &Map<String, Value>, in_batch: bool) -> Result<Value, (u16, Value)> {
    let refused = |status: u16, message: String| {
        let kind = anthropic_error_type(status);
        (status, json!({"type": "error", "error": {"type": kind, "message": message}}))
    };
    let rules = messages_rules::check(&Value::Object(params.clone())).and_then(|()| {
        if in_batch {
            batch_rules(params)
        } else {
            Ok(())
        }
    });
    if let Err(message) = rules {
        return Err(refused(400, message));
    }
    if let Some(status) = marked_failure(params) {
        return Err(refused(status, marker_message(status)));
    }
    Ok(anthropic_message(&answer(&Ask::from_anthropic(params))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_marker_picks_the_status() {
        let m = |text: &str| marked_failure(&map(json!({"messages": [{"role": "user", "content": text}]})));
        assert_eq!(m("hello"), None);
        assert_eq!(m("please [fake:error] now"), Some(400));
        assert_eq!(m("[fake:error:503]"), Some(503));
        assert_eq!(m("[fake:error:200]"), Some(400));
        assert_eq!(m("[fake:error:x]"), Some(400));
    }
}
