//! An OpenAI chat-completions body as an Anthropic Messages request.

use serde_json::{json, Map, Value};

use super::params::{self, Fate};
use super::sampling::{self, Asked, SamplingTable};
use super::{messages, tools, Refusal, Refusals};
use crate::validate::Code;

/// The Messages API request for `body` (an OpenAI chat body of an Anthropic line), or every
/// reason it cannot be sent faithfully. `null` parameters count as absent.
pub fn to_anthropic(body: &Map<String, Value>, table: &SamplingTable) -> Result<Map<String, Value>, Vec<Refusal>> {
    let mut out = Refusals::default();
    let request = translate(body, table, &mut out);
    if out.is_empty() {
        Ok(request)
    } else {
        Err(out.into_vec())
    }
}

/// What `to_anthropic` would refuse (nothing for a body it translates).
pub fn refusals(body: &Map<String, Value>, table: &SamplingTable) -> Vec<Refusal> {
    to_anthropic(body, table).err().unwrap_or_default()
}

/// The values of the refused parameters that ask for nothing, and so are left out.
fn asks_nothing(key: &str, v: &Value) -> bool {
    match key {
        "n" => v.as_u64() == Some(1),
        "stream" | "logprobs" => v == &Value::Bool(false),
        "logit_bias" => v.as_object().is_some_and(Map::is_empty),
        "modalities" => v == &json!(["text"]),
        _ => false,
    }
}

fn translate(body: &Map<String, Value>, table: &SamplingTable, out: &mut Refusals) -> Map<String, Value> {
    let get = |k: &str| body.get(k).filter(|v| !v.is_null());
    for (key, v) in body.iter().filter(|(_, v)| !v.is_null()) {
        let path = format!("body.{key}");
        match params::lookup(key) {
            None => out.refuse(
                path,
                Code::UnsupportedParameter,
                format!("{key} is not an OpenAI chat-completions parameter the Anthropic translation knows; remove it"),
            ),
            Some(p) if p.fate == Fate::Refused && !asks_nothing(key, v) => {
                out.refuse(path, Code::UnsupportedParameter, format!("{key} cannot go to Anthropic: {}", p.rule));
            }
            Some(_) => {}
        }
    }

    let mut req = Map::new();
    let model = match get("model") {
        Some(Value::String(m)) => m.strip_prefix("anthropic/").unwrap_or(m).to_owned(),
        Some(_) => {
            out.refuse("body.model", Code::InvalidType, "must be a string");
            String::new()
        }
        None => {
            out.refuse("body.model", Code::MissingField, "body.model is required");
            String::new()
        }
    };
    req.insert("model".into(), json!(model));
    if let Some(n) = max_tokens(body, out) {
        req.insert("max_tokens".into(), n);
    }
    let conversation = messages::translate(body.get("messages").unwrap_or(&Value::Null), out);
    if let Some(system) = conversation.system {
        req.insert("system".into(), Value::String(system));
    }
    req.insert("messages".into(), Value::Array(conversation.messages));
    match get("stop") {
        Some(Value::String(s)) => {
            req.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(a)) if a.is_empty() => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
            req.insert("stop_sequences".into(), Value::Array(a.clone()));
        }
        Some(_) => out.refuse("body.stop", Code::InvalidType, "must be a string or a list of strings"),
        None => {}
    }
    let number = |k: &str, out: &mut Refusals| match get(k) {
        Some(v) if v.is_number() => v.as_f64(),
        Some(_) => {
            out.refuse(format!("body.{k}"), Code::InvalidType, "must be a number");
            None
        }
        None => None,
    };
    let asked =
        Asked { temperature: number("temperature", out), top_p: number("top_p", out), top_k: number("top_k", out) };
    let send = sampling::resolve(table, &model, asked, out);
    for (key, v) in [("temperature", send.temperature), ("top_p", send.top_p), ("top_k", send.top_k)] {
        if let (Some(_), Some(original)) = (v, get(key)) {
            req.insert(key.into(), original.clone());
        }
    }
    let (tools, choice) = tools::translate(body, out);
    if let Some(t) = tools {
        req.insert("tools".into(), t);
    }
    if let Some(c) = choice {
        req.insert("tool_choice".into(), c);
    }
    if let Some(format) = response_format(get("response_format"), out) {
        req.insert("output_config".into(), json!({"format": format}));
    }
    if let Some(user) = user_id(get("user"), get("safety_identifier"), out) {
        req.insert("metadata".into(), json!({"user_id": user}));
    }
    match get("service_tier").map(|t| (t, t.as_str())) {
        None | Some((_, Some("auto"))) => {}
        Some((_, Some("default"))) => {
            req.insert("service_tier".into(), json!("standard_only"));
        }
        Some((t, _)) => out.refuse(
            "body.service_tier",
            Code::UnsupportedParameter,
            format!("service tier {t} has no Anthropic counterpart (auto and default do)"),
        ),
    }
    req
}

/// `max_tokens`, or `max_completion_tokens` in its place: Anthropic requires one.
fn max_tokens(body: &Map<String, Value>, out: &mut Refusals) -> Option<Value> {
    let read = |k: &str, out: &mut Refusals| match body.get(k) {
        None | Some(Value::Null) => None,
        Some(v) if v.as_u64().is_some_and(|n| n > 0) => Some(v.clone()),
        Some(v) => {
            out.refuse(format!("body.{k}"), Code::InvalidValue, format!("must be a positive integer, not {v}"));
            None
        }
    };
    match (read("max_tokens", out), read("max_completion_tokens", out)) {
        (Some(a), Some(b)) if a.as_u64() != b.as_u64() => {
            out.refuse(
                "body.max_completion_tokens",
                Code::InvalidValue,
                format!("max_tokens ({a}) and max_completion_tokens ({b}) disagree: give one"),
            );
            None
        }
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => {
            let given = |k: &str| body.get(k).is_some_and(|v| !v.is_null());
            // A value that was given and refused above is not also missing.
            if !given("max_tokens") && !given("max_completion_tokens") {
                out.refuse(
                    "body.max_tokens",
                    Code::MissingMaxTokens,
                    "anthropic requires max_tokens (or max_completion_tokens) on every chat request",
                );
            }
            None
        }
    }
}

fn response_format(rf: Option<&Value>, out: &mut Refusals) -> Option<Value> {
    let rf = rf?;
    match rf.get("type").and_then(Value::as_str) {
        Some("text") => None,
        Some("json_schema") => match rf.pointer("/json_schema/schema") {
            Some(schema @ Value::Object(_)) => Some(json!({"type": "json_schema", "schema": schema})),
            _ => {
                out.refuse(
                    "body.response_format.json_schema.schema",
                    Code::MissingField,
                    "a json_schema response format needs its schema (an object)",
                );
                None
            }
        },
        Some("json_object") => {
            out.refuse(
                "body.response_format",
                Code::UnsupportedParameter,
                "response_format json_object cannot go to Anthropic, which has no JSON mode without a schema: \
                 use {\"type\": \"json_schema\", \"json_schema\": {\"name\": ..., \"schema\": ...}}",
            );
            None
        }
        _ => {
            out.refuse(
                "body.response_format.type",
                Code::InvalidValue,
                "must be \"text\", \"json_schema\" or \"json_object\"",
            );
            None
        }
    }
}

/// `user` and `safety_identifier` both name the end user: Anthropic's `metadata.user_id`.
fn user_id<'v>(user: Option<&'v Value>, safety: Option<&'v Value>, out: &mut Refusals) -> Option<&'v Value> {
    for (k, v) in [("user", user), ("safety_identifier", safety)] {
        if v.is_some_and(|v| !v.is_string()) {
            out.refuse(format!("body.{k}"), Code::InvalidType, "must be a string");
            return None;
        }
    }
    match (user, safety) {
        (Some(u), Some(s)) if u != s => {
            out.refuse(
                "body.user",
                Code::InvalidValue,
                "user and safety_identifier differ; Anthropic takes one user id (metadata.user_id)",
            );
            None
        }
        (u, s) => s.or(u),
    }
}

#[cfg(test)]
mod tests;
