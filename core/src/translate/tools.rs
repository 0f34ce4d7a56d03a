//! Tools: OpenAI `tools[].function{name, description, parameters, strict}` as Anthropic
//! `tools[]{name, description, input_schema, strict}`, and `tool_choice` /
//! `parallel_tool_calls` as Anthropic's `tool_choice`.

use serde_json::{json, Map, Value};

use super::Refusals;
use crate::validate::Code;

/// OpenAI's rule for function names, `^[a-zA-Z0-9_-]{1,64}$` (Anthropic allows 128).
fn is_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A function tool as checked: where it is and its parts.
pub struct FunctionTool<'a> {
    pub path: String,
    pub name: &'a str,
    pub function: &'a Map<String, Value>,
}

/// Checks `tools` against OpenAI's shapes (any provider): a list of `{"type": "function",
/// "function": {name, description?, parameters?, strict?}}` or custom tools. Returns the
/// well-formed function tools; `custom` counts how many custom tools there were.
pub fn check_tools<'a>(tools: &'a Value, out: &mut Refusals, custom: &mut Vec<String>) -> Vec<FunctionTool<'a>> {
    let Some(list) = tools.as_array() else {
        out.refuse("body.tools", Code::InvalidType, "must be a list of tools");
        return vec![];
    };
    let mut found = Vec::new();
    for (i, tool) in list.iter().enumerate() {
        let path = format!("body.tools[{i}]");
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => {}
            Some("custom") => {
                custom.push(path);
                continue;
            }
            Some(other) => {
                out.refuse(
                    format!("{path}.type"),
                    Code::InvalidValue,
                    format!("must be \"function\" or \"custom\", not {other:?}"),
                );
                continue;
            }
            None => {
                out.refuse(format!("{path}.type"), Code::MissingField, "a tool needs its type (\"function\")");
                continue;
            }
        }
        let Some(function) = tool.get("function").and_then(Value::as_object) else {
            out.refuse(
                format!("{path}.function"),
                Code::MissingField,
                "a function tool needs function: {name, parameters}",
            );
            continue;
        };
        let name = match function.get("name") {
            Some(Value::String(n)) if is_tool_name(n) => n.as_str(),
            Some(Value::String(n)) => {
                out.refuse(
                    format!("{path}.function.name"),
                    Code::InvalidValue,
                    format!("{n:?} does not match ^[a-zA-Z0-9_-]{{1,64}}$"),
                );
                continue;
            }
            _ => {
                out.refuse(format!("{path}.function.name"), Code::MissingField, "a function needs its name (a string)");
                continue;
            }
        };
        let mut ok = true;
        for (key, want, is_kind) in [
            ("parameters", "a JSON schema object", Value::is_object as fn(&Value) -> bool),
            ("description", "a string", Value::is_string),
            ("strict", "a boolean", Value::is_boolean),
        ] {
            if let Some(v) = function.get(key).filter(|v| !v.is_null()) {
                if !is_kind(v) {
                    out.refuse(format!("{path}.function.{key}"), Code::InvalidType, format!("must be {want}"));
                    ok = false;
                }
            }
        }
        if ok {
            found.push(FunctionTool { path, name, function });
        }
    }
    found
}

/// One function tool in Anthropic's shape.
fn anthropic_tool(t: &FunctionTool<'_>, out: &mut Refusals) -> Value {
    let mut schema = match t.function.get("parameters") {
        Some(Value::Object(p)) => p.clone(),
        // No parameters: a function of no arguments.
        _ => Map::from_iter([("properties".to_owned(), json!({}))]),
    };
    match schema.get("type") {
        None => {
            schema.insert("type".into(), json!("object"));
        }
        Some(Value::String(t)) if t == "object" => {}
        Some(_) => out.refuse(
            format!("{}.function.parameters.type", t.path),
            Code::InvalidValue,
            "Anthropic takes tool inputs that are objects: parameters.type must be \"object\"",
        ),
    }
    let mut tool = Map::new();
    tool.insert("name".into(), json!(t.name));
    if let Some(d) = t.function.get("description").filter(|d| d.is_string()) {
        tool.insert("description".into(), d.clone());
    }
    tool.insert("input_schema".into(), Value::Object(schema));
    if let Some(s) = t.function.get("strict").filter(|s| s.is_boolean()) {
        tool.insert("strict".into(), s.clone());
    }
    Value::Object(tool)
}

/// `tools`, `tool_choice` and `parallel_tool_calls` as Anthropic's `tools` and `tool_choice`.
pub fn translate(body: &Map<String, Value>, out: &mut Refusals) -> (Option<Value>, Option<Value>) {
    let get = |k: &str| body.get(k).filter(|v| !v.is_null());
    let mut custom = Vec::new();
    let found = get("tools").map(|t| check_tools(t, out, &mut custom)).unwrap_or_default();
    for path in custom {
        out.refuse(
            path,
            Code::UnsupportedParameter,
            "custom (free-form) tools have no Anthropic counterpart: use a function tool",
        );
    }
    let mut names: Vec<&str> = Vec::new();
    let mut tools = Vec::new();
    for t in &found {
        if names.contains(&t.name) {
            out.refuse(
                format!("{}.function.name", t.path),
                Code::InvalidValue,
                format!("{:?} is used by two tools; Anthropic needs unique names", t.name),
            );
        }
        names.push(t.name);
        tools.push(anthropic_tool(t, out));
    }
    let has_tools = !found.is_empty();
    let parallel = match get("parallel_tool_calls") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            out.refuse("body.parallel_tool_calls", Code::InvalidType, "must be a boolean");
            true
        }
    };
    let mut choice = get("tool_choice").and_then(|c| tool_choice(c, &names, has_tools, out));
    if !has_tools {
        // "auto" and "none" without tools ask for nothing; the rest were refused above.
        return (None, None);
    }
    if !parallel {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = json!(true);
        }
    }
    (Some(Value::Array(tools)), choice)
}

fn tool_choice(c: &Value, names: &[&str], has_tools: bool, out: &mut Refusals) -> Option<Value> {
    let path = "body.tool_choice";
    let needs_tools = |out: &mut Refusals, what: &str| {
        if !has_tools {
            out.refuse(path, Code::InvalidValue, format!("tool_choice {what} needs tools"));
        }
    };
    match c {
        Value::String(s) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" => {
                needs_tools(out, "\"required\"");
                Some(json!({"type": "any"}))
            }
            other => {
                out.refuse(
                    path,
                    Code::InvalidValue,
                    format!("must be \"auto\", \"none\", \"required\" or a named function, not {other:?}"),
                );
                None
            }
        },
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let Some(name) = c.pointer("/function/name").and_then(Value::as_str) else {
                    out.refuse(
                        format!("{path}.function.name"),
                        Code::MissingField,
                        "a named tool_choice needs function.name",
                    );
                    return None;
                };
                needs_tools(out, "naming a function");
                if has_tools && !names.contains(&name) {
                    out.refuse(
                        format!("{path}.function.name"),
                        Code::InvalidValue,
                        format!("{name:?} is not one of the tools"),
                    );
                }
                Some(json!({"type": "tool", "name": name}))
            }
            Some(kind @ ("allowed_tools" | "custom")) => {
                out.refuse(
                    path,
                    Code::UnsupportedParameter,
                    format!("tool_choice of type {kind:?} has no Anthropic counterpart"),
                );
                None
            }
            _ => {
                out.refuse(format!("{path}.type"), Code::InvalidValue, "must be \"function\" for a named tool choice");
                None
            }
        },
        _ => {
            out.refuse(path, Code::InvalidType, "must be a string or an object");
            None
        }
    }
}
