//! The conversation: system and developer messages move to the top-level `system`;
//! assistant `tool_calls` become `tool_use` blocks; `role: "tool"` messages become user
//! turns of `tool_result` blocks; turns of the same role next to each other are merged
//! (as Anthropic itself would), so tool results and a following user message share a turn.

use serde_json::{json, Map, Value};

use super::content::{self, is_blank, Role};
use super::Refusals;
use crate::model;
use crate::validate::Code;

/// A turn's content: a plain string while it can stay one, else blocks.
enum Content {
    Text(String),
    Blocks(Vec<Value>),
}

impl Content {
    fn into_blocks(self) -> Vec<Value> {
        match self {
            Content::Text(t) => vec![json!({"type": "text", "text": t})],
            Content::Blocks(b) => b,
        }
    }

    fn into_value(self) -> Value {
        match self {
            Content::Text(t) => Value::String(t),
            Content::Blocks(b) => Value::Array(b),
        }
    }
}

struct Turn {
    role: &'static str,
    content: Content,
}

/// The system prompt (joined with blank lines) and the Anthropic messages.
pub struct Conversation {
    pub system: Option<String>,
    pub messages: Vec<Value>,
}

/// Tool calls of the last assistant turn still waiting for their results.
struct Pending {
    /// (id, path of the call) in call order.
    calls: Vec<(String, String)>,
}

impl Pending {
    /// Reports every call left unanswered, and forgets them.
    fn close(&mut self, out: &mut Refusals) {
        for (id, path) in self.calls.drain(..) {
            out.refuse(
                path,
                Code::InvalidValue,
                format!("tool call {id:?} has no tool message answering it (every tool call needs its result next)"),
            );
        }
    }
}

/// Keys each role may carry; `name` and the rest are refused so nothing vanishes.
fn allowed(role: &str, key: &str) -> bool {
    match key {
        "role" | "content" => true,
        "tool_calls" | "refusal" => role == "assistant",
        "tool_call_id" => role == "tool",
        _ => false,
    }
}

pub fn translate(messages: &Value, out: &mut Refusals) -> Conversation {
    let mut system = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    let Some(list) = messages.as_array() else {
        out.refuse("body.messages", Code::InvalidType, "must be a list of messages");
        return Conversation { system: None, messages: vec![] };
    };
    if list.is_empty() {
        out.refuse("body.messages", Code::EmptyMessages, "must hold at least one message");
    }
    let mut pending = Pending { calls: vec![] };
    let last = list.len().saturating_sub(1);
    for (i, m) in list.iter().enumerate() {
        let path = format!("body.messages[{i}]");
        let Some(m) = m.as_object() else {
            out.refuse(path, Code::InvalidType, "must be an object with role and content");
            continue;
        };
        let Some(role) = m.get("role").and_then(Value::as_str) else {
            out.refuse(format!("{path}.role"), Code::MissingField, "a message needs its role");
            continue;
        };
        for (key, v) in m {
            if !v.is_null() && !allowed(role, key) && model::ROLES.contains(&role) {
                let why = if key == "name" {
                    "Anthropic messages carry no name: put the speaker in the content".to_owned()
                } else {
                    format!("{key} on a {role} message has no Anthropic counterpart")
                };
                out.refuse(format!("{path}.{key}"), Code::UnsupportedParameter, why);
            }
        }
        let content = m.get("content").filter(|c| !c.is_null());
        let content_path = format!("{path}.content");
        if role != "tool" {
            pending.close(out);
        }
        match role {
            "system" | "developer" => match content {
                Some(c) => system.extend(content::text_only(c, &content_path, out).unwrap_or_default()),
                None => out.refuse(content_path, Code::MissingField, "a system message needs content"),
            },
            "user" => match content {
                Some(Value::String(s)) if !is_blank(s) => {
                    turns.push(Turn { role: "user", content: Content::Text(s.clone()) })
                }
                Some(c) => match content::blocks(c, Role::User, &content_path, out) {
                    // Empty because its parts were refused: that is reported already.
                    Some(b) if b.is_empty() && c.as_array().is_some_and(Vec::is_empty) => {
                        out.refuse(content_path, Code::InvalidValue, "Anthropic rejects an empty message")
                    }
                    Some(b) if !b.is_empty() => turns.push(Turn { role: "user", content: Content::Blocks(b) }),
                    _ => {}
                },
                None => out.refuse(content_path, Code::MissingField, "a user message needs content"),
            },
            "assistant" => {
                let turn = assistant(m, &path, i == last, &mut pending, out);
                turns.extend(turn);
            }
            "tool" => {
                if let Some(block) = tool_result(m, &path, &mut pending, out) {
                    turns.push(Turn { role: "user", content: Content::Blocks(vec![block]) });
                }
            }
            "function" => out.refuse(
                format!("{path}.role"),
                Code::UnsupportedParameter,
                "function messages belong to the deprecated functions API: use tools and tool messages",
            ),
            other => out.refuse(
                format!("{path}.role"),
                Code::InvalidRole,
                format!("{other:?} is not a role (expected one of {})", model::ROLES.join(", ")),
            ),
        }
    }
    pending.close(out);
    if !list.is_empty() && turns.is_empty() && out.is_empty() {
        out.refuse(
            "body.messages",
            Code::EmptyMessages,
            "Anthropic needs at least one user message besides the system ones",
        );
    }
    Conversation { system: (!system.is_empty()).then(|| system.join("\n\n")), messages: merge(turns) }
}

/// An assistant message: its text, then a `tool_use` block per tool call.
fn assistant(
    m: &Map<String, Value>,
    path: &str,
    is_last: bool,
    pending: &mut Pending,
    out: &mut Refusals,
) -> Option<Turn> {
    let content_path = format!("{path}.content");
    let mut blocks = Vec::new();
    let mut text_only = None;
    match m.get("content") {
        None | Some(Value::Null) => {}
        // Empty text beside tool calls is how OpenAI writes "no text".
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) if !is_blank(s) => text_only = Some(s.clone()),
        Some(c) => blocks.extend(content::blocks(c, Role::Assistant, &content_path, out).unwrap_or_default()),
    }
    if let Some(Value::String(r)) = m.get("refusal") {
        blocks.push(json!({"type": "text", "text": r}));
    }
    let calls = m.get("tool_calls").filter(|c| !c.is_null());
    if let Some(calls) = calls {
        let Some(calls) = calls.as_array() else {
            out.refuse(format!("{path}.tool_calls"), Code::InvalidType, "must be a list of tool calls");
            return None;
        };
        if let Some(t) = text_only.take() {
            blocks.push(json!({"type": "text", "text": t}));
        }
        for (j, call) in calls.iter().enumerate() {
            let call_path = format!("{path}.tool_calls[{j}]");
            if let Some((id, block)) = tool_use(call, &call_path, out) {
                pending.calls.push((id, call_path));
                blocks.push(block);
            }
        }
    }
    let content = match text_only {
        Some(t) if blocks.is_empty() => Content::Text(t),
        Some(t) => {
            blocks.insert(0, json!({"type": "text", "text": t}));
            Content::Blocks(blocks)
        }
        None if blocks.is_empty() => {
            // Anthropic takes an empty assistant turn only as the last one (a prefill of nothing).
            if !is_last || calls.is_some() {
                out.refuse(
                    content_path,
                    Code::InvalidValue,
                    "Anthropic rejects an assistant message with no text and no tool calls",
                );
            }
            return None;
        }
        None => Content::Blocks(blocks),
    };
    if is_last {
        // The last assistant message is a prefill: Claude continues it, and Anthropic
        // rejects one that ends in whitespace.
        let ends_blank = match &content {
            Content::Text(t) => t.ends_with(char::is_whitespace),
            Content::Blocks(b) => b
                .last()
                .and_then(|b| b.get("text"))
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(char::is_whitespace)),
        };
        if ends_blank {
            out.refuse(
                content_path,
                Code::InvalidValue,
                "the last assistant message is a prefill, which Anthropic rejects if it ends in whitespace",
            );
        }
    }
    Some(Turn { role: "assistant", content })
}

/// Anthropic's tool ids: `^[a-zA-Z0-9_-]+$`.
fn is_tool_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn tool_use(call: &Value, path: &str, out: &mut Refusals) -> Option<(String, Value)> {
    let id = call.get("id").and_then(Value::as_str);
    let name = call.pointer("/function/name").and_then(Value::as_str);
    let kind = call.get("type").and_then(Value::as_str);
    if kind.is_some_and(|k| k != "function") {
        out.refuse(
            format!("{path}.type"),
            Code::UnsupportedParameter,
            "only function tool calls have an Anthropic counterpart",
        );
        return None;
    }
    let (Some(id), Some(name)) = (id, name) else {
        out.refuse(path, Code::MissingField, "a tool call needs id and function.name");
        return None;
    };
    if !is_tool_id(id) {
        out.refuse(
            format!("{path}.id"),
            Code::InvalidValue,
            format!("Anthropic tool ids match ^[a-zA-Z0-9_-]+$, not {id:?}"),
        );
    }
    let args_path = format!("{path}.function.arguments");
    let input = match call.pointer("/function/arguments") {
        Some(Value::String(s)) if s.trim().is_empty() => Value::Object(Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                out.refuse(args_path, Code::InvalidValue, "must be a JSON object in a string (the tool's input)");
                return None;
            }
        },
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(_) => {
            out.refuse(args_path, Code::InvalidType, "must be a string holding a JSON object");
            return None;
        }
    };
    Some((id.to_owned(), json!({"type": "tool_use", "id": id, "name": name, "input": input})))
}

fn tool_result(m: &Map<String, Value>, path: &str, pending: &mut Pending, out: &mut Refusals) -> Option<Value> {
    let Some(id) = m.get("tool_call_id").and_then(Value::as_str) else {
        out.refuse(
            format!("{path}.tool_call_id"),
            Code::MissingField,
            "a tool message needs the tool_call_id it answers",
        );
        return None;
    };
    match pending.calls.iter().position(|(p, _)| p == id) {
        Some(k) => {
            pending.calls.remove(k);
        }
        None => out.refuse(
            format!("{path}.tool_call_id"),
            Code::InvalidValue,
            format!("{id:?} answers no tool call of the assistant message before it"),
        ),
    }
    let content_path = format!("{path}.content");
    let content = match m.get("content") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(c @ Value::Array(_)) => {
            let texts = content::text_only(c, &content_path, out)?;
            Value::Array(
                texts.into_iter().filter(|t| !is_blank(t)).map(|t| json!({"type": "text", "text": t})).collect(),
            )
        }
        _ => {
            out.refuse(content_path, Code::MissingField, "a tool message needs content (a string or text parts)");
            return None;
        }
    };
    Some(json!({"type": "tool_result", "tool_use_id": id, "content": content}))
}

/// Turns of the same role next to each other become one.
fn merge(turns: Vec<Turn>) -> Vec<Value> {
    let mut merged: Vec<Turn> = Vec::with_capacity(turns.len());
    for t in turns {
        match merged.last_mut() {
            Some(prev) if prev.role == t.role => {
                let mut blocks = std::mem::replace(&mut prev.content, Content::Blocks(vec![])).into_blocks();
                blocks.extend(t.content.into_blocks());
                prev.content = Content::Blocks(blocks);
            }
            _ => merged.push(t),
        }
    }
    merged.into_iter().map(|t| json!({"role": t.role, "content": t.content.into_value()})).collect()
}
