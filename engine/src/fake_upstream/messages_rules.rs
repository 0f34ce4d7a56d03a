//! What the fake's `/v1/messages` refuses, as Anthropic documents it: a request the real
//! API would answer 400 gets 400 here too, so tests catch a bad translation.

use serde_json::Value;

use fastrouter_batch_core::translate::{Sampling, SamplingTable};

/// `Err(message)` for a request Anthropic would reject.
pub fn check(body: &Value) -> Result<(), String> {
    let model = body.get("model").and_then(Value::as_str).ok_or("model: Field required")?;
    if body.get("max_tokens").and_then(Value::as_u64).is_none_or(|n| n == 0) {
        return Err("max_tokens: Field required (an integer of at least 1)".into());
    }
    let messages = body.get("messages").and_then(Value::as_array).ok_or("messages: Field required")?;
    if messages.is_empty() {
        return Err("messages: at least one message is required".into());
    }
    let mut open_tool_uses: Vec<&str> = vec![];
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if role != "user" && role != "assistant" {
            return Err(format!("messages.{i}.role: Input should be 'user' or 'assistant'"));
        }
        let blocks: Vec<&Value> = match m.get("content") {
            Some(Value::String(s)) if s.trim().is_empty() && i + 1 < messages.len() => return Err(
                "messages: all messages must have non-empty content except for the optional final assistant message"
                    .into(),
            ),
            Some(Value::String(_)) => vec![],
            Some(Value::Array(b)) if b.is_empty() && i + 1 < messages.len() => return Err(
                "messages: all messages must have non-empty content except for the optional final assistant message"
                    .into(),
            ),
            Some(Value::Array(b)) => b.iter().collect(),
            _ => return Err(format!("messages.{i}.content: Field required")),
        };
        let results: Vec<&str> =
            blocks.iter().filter(|b| b["type"] == "tool_result").filter_map(|b| b["tool_use_id"].as_str()).collect();
        if role == "user" {
            for id in &results {
                if !open_tool_uses.contains(id) {
                    return Err(format!("messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: {id}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."));
                }
            }
        }
        if let Some(missing) = open_tool_uses.iter().find(|id| !results.contains(id)) {
            return Err(format!(
                "messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: {missing}"
            ));
        }
        open_tool_uses = if role == "assistant" {
            blocks.iter().filter(|b| b["type"] == "tool_use").filter_map(|b| b["id"].as_str()).collect()
        } else {
            vec![]
        };
        for b in &blocks {
            if b["type"] == "text" && b["text"].as_str().is_none_or(|t| t.trim().is_empty()) {
                return Err(format!("messages.{i}: text content blocks must contain non-whitespace text"));
            }
        }
    }
    if let Some(id) = open_tool_uses.first() {
        return Err(format!("`tool_use` ids were found without `tool_result` blocks immediately after: {id}"));
    }
    let has = |k: &str| body.get(k).is_some_and(|v| !v.is_null());
    match SamplingTable::default().lookup(model).0 {
        Sampling::Both => {}
        Sampling::Either if has("temperature") && has("top_p") => {
            return Err("`temperature` and `top_p` cannot both be specified for this model. Please use only one.".into())
        }
        Sampling::Either => {}
        Sampling::None => {
            if let Some(k) = ["temperature", "top_p", "top_k"].into_iter().find(|k| has(k)) {
                return Err(format!("`{k}` is deprecated for this model."));
            }
        }
    }
    let tools: Vec<&str> =
        body.get("tools").and_then(Value::as_array).into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    for (i, t) in body.get("tools").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if t.pointer("/input_schema/type") != Some(&Value::from("object")) {
            return Err(format!("tools.{i}.input_schema.type: Input should be 'object'"));
        }
    }
    if let Some(name) = body.pointer("/tool_choice/name").and_then(Value::as_str) {
        if !tools.contains(&name) {
            return Err(format!("tool_choice: tool {name:?} not found in tools"));
        }
    }
    if let Some(format) = body.pointer("/output_config/format") {
        if format["type"] != "json_schema" || !format["schema"].is_object() {
            return Err("output_config.format: expected {\"type\": \"json_schema\", \"schema\": {...}}".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(messages: Value) -> Value {
        json!({"model": "claude-3-haiku", "max_tokens": 5, "messages": messages})
    }

    #[test]
    fn tool_results_must_answer_the_previous_tool_uses() {
        let call =
            json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]});
        let user = json!({"role": "user", "content": "hi"});
        let result = |id: &str| json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": id, "content": "ok"}]});
        assert!(check(&req(json!([user, call, result("t1")]))).is_ok());
        assert!(check(&req(json!([user, call, result("t2")]))).unwrap_err().contains("tool_use_id"));
        assert!(check(&req(json!([user, call, user]))).unwrap_err().contains("without `tool_result`"));
        assert!(check(&req(json!([user, call]))).is_err());
        assert!(check(&req(json!([{"role": "system", "content": "x"}]))).is_err());
        assert!(check(&json!({"model": "claude-3-haiku", "messages": [user]})).unwrap_err().contains("max_tokens"));
    }

    #[test]
    fn sampling_as_anthropic_answers_it() {
        let both = json!({"model": "claude-sonnet-4-5", "max_tokens": 5, "temperature": 0.5, "top_p": 0.5, "messages": [{"role": "user", "content": "x"}]});
        assert!(check(&both).is_err());
        let newer = json!({"model": "claude-opus-4-7", "max_tokens": 5, "temperature": 0.5, "messages": [{"role": "user", "content": "x"}]});
        assert!(check(&newer).unwrap_err().contains("temperature"));
    }
}
