//! The simulator's chat answers: a request read from either wire format (OpenAI chat or
//! Anthropic Messages) into one `Ask`, answered deterministically (prose echoing the
//! prompt, a tool call whose arguments fit the tool's schema, or JSON that fits the
//! response schema), and written back in either wire format.

use serde_json::{json, Map, Value};

use super::schema;
use super::{digest, tokens};

/// Which tool the request lets the model call.
#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    Auto,
    None,
    /// Some tool (OpenAI's `required`, Anthropic's `any`).
    Any,
    Named(String),
}

/// What the answer's text must be.
#[derive(Debug, Clone, PartialEq)]
pub enum Format {
    Text,
    Schema(Value),
    JsonObject,
}

/// A chat request, whichever wire format it came in.
#[derive(Debug, Clone)]
pub struct Ask {
    pub model: String,
    pub prompt_tokens: u64,
    /// What the answer echoes: the last user message, or the tool results that end the
    /// conversation.
    pub last_text: String,
    pub after_tool_results: bool,
    pub max_tokens: Option<u64>,
    pub stop: Vec<String>,
    /// (name, input schema) of each tool.
    pub tools: Vec<(String, Value)>,
    pub choice: Choice,
    pub format: Format,
    /// Of the whole request: the same request always gets the same answer.
    pub seed: u64,
}

/// The text of OpenAI content (a string or parts) or Anthropic content (a string or
/// blocks, tool results included).
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("tool_result") => p.get("content").map(content_text),
                _ => p.get("text").and_then(Value::as_str).map(str::to_owned),
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn stop_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => vec![],
    }
}

/// `Value::pointer` on a body's map: `ptr(body, "/a/b")`.
fn ptr<'a>(body: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let rest = path.strip_prefix('/')?;
    let (first, rest) = rest.split_once('/').map_or((rest, ""), |(f, r)| (f, r));
    let v = body.get(first)?;
    if rest.is_empty() {
        Some(v)
    } else {
        v.pointer(&format!("/{rest}"))
    }
}

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}})
}

impl Ask {
    fn base(body: &Map<String, Value>) -> Self {
        Self {
            model: body.get("model").and_then(Value::as_str).unwrap_or("unknown").to_owned(),
            prompt_tokens: 0,
            last_text: String::new(),
            after_tool_results: false,
            max_tokens: None,
            stop: vec![],
            tools: vec![],
            choice: Choice::Auto,
            format: Format::Text,
            seed: digest(&Value::Object(body.clone()).to_string()),
        }
    }

    /// Counts a message and notes it as the last one.
    fn message(&mut self, text: String, user: bool, tool_results: bool) {
        self.prompt_tokens += tokens(&text) + 3;
        if tool_results && self.after_tool_results {
            // Consecutive tool messages answer one turn together.
            self.last_text = format!("{} {text}", self.last_text);
        } else if user || tool_results {
            self.last_text = text;
        }
        self.after_tool_results = tool_results;
    }

    pub fn from_openai(body: &Map<String, Value>) -> Self {
        let mut ask = Self::base(body);
        for m in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
            let text = m.get("content").map(content_text).unwrap_or_default();
            let role = m.get("role").and_then(Value::as_str);
            ask.message(text, role == Some("user"), role == Some("tool"));
        }
        ask.max_tokens =
            ["max_tokens", "max_completion_tokens"].iter().find_map(|k| body.get(*k).and_then(Value::as_u64));
        ask.stop = stop_list(body.get("stop"));
        for t in body.get("tools").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = t.pointer("/function/name").and_then(Value::as_str) {
                let params = t.pointer("/function/parameters").cloned().unwrap_or_else(no_arguments);
                ask.tools.push((name.to_owned(), params));
            }
        }
        ask.choice = match body.get("tool_choice") {
            Some(Value::String(s)) if s == "none" => Choice::None,
            Some(Value::String(s)) if s == "required" => Choice::Any,
            Some(c @ Value::Object(_)) => c
                .pointer("/function/name")
                .and_then(Value::as_str)
                .map_or(Choice::Auto, |n| Choice::Named(n.to_owned())),
            _ => Choice::Auto,
        };
        ask.format = match ptr(body, "/response_format/type").and_then(Value::as_str) {
            Some("json_schema") => {
                Format::Schema(ptr(body, "/response_format/json_schema/schema").cloned().unwrap_or_else(|| json!({})))
            }
            Some("json_object") => Format::JsonObject,
            _ => Format::Text,
        };
        ask
    }

    pub fn from_anthropic(body: &Map<String, Value>) -> Self {
        let mut ask = Self::base(body);
        if let Some(system) = body.get("system") {
            ask.prompt_tokens += tokens(&content_text(system)) + 3;
        }
        for m in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
            let content = m.get("content").unwrap_or(&Value::Null);
            // Only tool results (no question after them): the model answers with them.
            let results = content
                .as_array()
                .is_some_and(|b| b.iter().any(|b| b["type"] == "tool_result") && b.iter().all(|b| b["type"] != "text"));
            let user = m.get("role").and_then(Value::as_str) == Some("user");
            // A fresh turn: tool results here are not a continuation of earlier ones.
            ask.after_tool_results = false;
            ask.message(content_text(content), user, user && results);
        }
        ask.max_tokens = body.get("max_tokens").and_then(Value::as_u64);
        ask.stop = stop_list(body.get("stop_sequences"));
        for t in body.get("tools").and_then(Value::as_array).into_iter().flatten() {
            if let Some(name) = t.get("name").and_then(Value::as_str) {
                ask.tools.push((name.to_owned(), t.get("input_schema").cloned().unwrap_or_else(no_arguments)));
            }
        }
        ask.choice = match ptr(body, "/tool_choice/type").and_then(Value::as_str) {
            Some("none") => Choice::None,
            Some("any") => Choice::Any,
            Some("tool") => ptr(body, "/tool_choice/name")
                .and_then(Value::as_str)
                .map_or(Choice::Any, |n| Choice::Named(n.to_owned())),
            _ => Choice::Auto,
        };
        if let Some(schema) = ptr(body, "/output_config/format/schema") {
            ask.format = Format::Schema(schema.clone());
        }
        ask
    }
}

/// What the model says.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Text(String),
    ToolCall { id: String, name: String, arguments: Value },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatAnswer {
    pub id: String,
    pub model: String,
    pub reply: Reply,
    /// Cut short by `max_tokens`.
    pub truncated: bool,
    /// The stop sequence the text stopped at.
    pub stop_sequence: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl ChatAnswer {
    pub fn text(&self) -> Option<&str> {
        match &self.reply {
            Reply::Text(t) => Some(t),
            Reply::ToolCall { .. } => None,
        }
    }
}

/// The tool to call: the named one, else the first whose name the prompt mentions, else
/// one picked by the request's digest.
fn pick_tool(ask: &Ask) -> &(String, Value) {
    if let Choice::Named(n) = &ask.choice {
        if let Some(t) = ask.tools.iter().find(|(name, _)| name == n) {
            return t;
        }
    }
    let prompt = ask.last_text.to_lowercase();
    ask.tools
        .iter()
        .find(|(name, _)| {
            prompt.contains(&name.to_lowercase()) || prompt.contains(&name.to_lowercase().replace('_', " "))
        })
        .unwrap_or(&ask.tools[(ask.seed % ask.tools.len() as u64) as usize])
}

/// The answer to `ask`. A tool is called when tools are offered and the choice allows it,
/// unless `auto` follows tool results (the model then answers with what the tools said).
pub fn answer(ask: &Ask) -> ChatAnswer {
    let mut a = ChatAnswer {
        id: format!("{:016x}", ask.seed),
        model: ask.model.clone(),
        reply: Reply::Text(String::new()),
        truncated: false,
        stop_sequence: None,
        prompt_tokens: ask.prompt_tokens,
        completion_tokens: 0,
    };
    let call = !ask.tools.is_empty()
        && match ask.choice {
            Choice::None => false,
            Choice::Auto => !ask.after_tool_results,
            Choice::Any | Choice::Named(_) => true,
        };
    if call {
        let (name, schema) = pick_tool(ask);
        let arguments = schema::example(schema, ask.seed);
        let needed = tokens(&arguments.to_string());
        match ask.max_tokens {
            // A call that does not fit is cut off: no usable call, only the length stop.
            Some(m) if needed > m => {
                a.truncated = true;
                a.completion_tokens = m;
            }
            _ => {
                a.completion_tokens = needed;
                let id = format!("{:016x}", digest(&(ask.seed, name)));
                a.reply = Reply::ToolCall { id, name: name.clone(), arguments };
            }
        }
        return a;
    }
    let text = match &ask.format {
        Format::Schema(s) => schema::example(s, ask.seed).to_string(),
        Format::JsonObject => json!({"answer": echo(&ask.last_text)}).to_string(),
        Format::Text if ask.after_tool_results => {
            format!("Simulated answer from {} using the tool results: {}", ask.model, echo(&ask.last_text))
        }
        Format::Text => format!("Simulated answer from {}: {}", ask.model, echo(&ask.last_text)),
    };
    let mut text = text;
    if let Some((at, stop)) =
        ask.stop.iter().filter(|s| !s.is_empty()).filter_map(|s| text.find(s.as_str()).map(|i| (i, s))).min()
    {
        text.truncate(at);
        a.stop_sequence = Some(stop.clone());
    }
    let (text, used, truncated) = if matches!(ask.format, Format::Text) {
        by_words(&text, ask.max_tokens)
    } else {
        by_chars(&text, ask.max_tokens)
    };
    if truncated {
        a.stop_sequence = None;
    }
    a.truncated = truncated;
    a.completion_tokens = used;
    a.reply = Reply::Text(text);
    a
}

/// The first twelve words.
fn echo(text: &str) -> String {
    text.split_whitespace().take(12).collect::<Vec<_>>().join(" ")
}

/// Prose, one word a token (easy to reason about in tests).
fn by_words(text: &str, max: Option<u64>) -> (String, u64, bool) {
    let mut words: Vec<&str> = text.split_whitespace().collect();
    match max {
        Some(m) if words.len() as u64 > m => {
            words.truncate(m as usize);
            (words.join(" "), m, true)
        }
        _ => (text.to_owned(), words.len() as u64, false),
    }
}

/// JSON, about four characters a token.
fn by_chars(text: &str, max: Option<u64>) -> (String, u64, bool) {
    match max {
        Some(m) if tokens(text) > m => (text.chars().take((m * 4) as usize).collect(), m, true),
        _ => (text.to_owned(), tokens(text), false),
    }
}

/// The answer as an OpenAI `chat.completion`.
pub fn openai_chat(a: &ChatAnswer, created: i64) -> Value {
    let mut message =
        json!({"role": "assistant", "content": a.text().filter(|t| !t.is_empty() || !a.truncated), "refusal": null});
    let finish = match &a.reply {
        Reply::ToolCall { id, name, arguments } => {
            message["tool_calls"] = json!([{"id": format!("call_{id}"), "type": "function", "function": {"name": name, "arguments": arguments.to_string()}}]);
            "tool_calls"
        }
        Reply::Text(_) if a.truncated => "length",
        Reply::Text(_) => "stop",
    };
    json!({
        "id": format!("chatcmpl-{}", a.id),
        "object": "chat.completion",
        "created": created,
        "model": a.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": a.prompt_tokens,
            "completion_tokens": a.completion_tokens,
            "total_tokens": a.prompt_tokens + a.completion_tokens,
        },
        "system_fingerprint": "fp_simulated",
    })
}

/// The answer as an Anthropic `message` (what the fake upstream's `/v1/messages` sends).
pub fn anthropic_message(a: &ChatAnswer) -> Value {
    let (content, stop_reason) = match &a.reply {
        Reply::ToolCall { id, name, arguments } => {
            (json!([{"type": "tool_use", "id": format!("toolu_{id}"), "name": name, "input": arguments}]), "tool_use")
        }
        Reply::Text(t) => {
            let content = if t.is_empty() && a.truncated { json!([]) } else { json!([{"type": "text", "text": t}]) };
            let reason = match (a.truncated, &a.stop_sequence) {
                (true, _) => "max_tokens",
                (false, Some(_)) => "stop_sequence",
                (false, None) => "end_turn",
            };
            (content, reason)
        }
    };
    json!({
        "id": format!("msg_{}", a.id),
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": a.stop_sequence,
        "usage": {
            "input_tokens": a.prompt_tokens,
            "output_tokens": a.completion_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn weather() -> Value {
        json!({"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"]}}})
    }

    #[test]
    fn tools_are_called_with_arguments_that_fit() {
        let b = body(json!({"model": "m", "tools": [{"type": "function", "function": {"name": "other"}}, weather()],
            "messages": [{"role": "user", "content": "What is the weather in Paris?"}]}));
        let a = answer(&Ask::from_openai(&b));
        let Reply::ToolCall { name, arguments, .. } = &a.reply else { panic!("{a:?}") };
        assert_eq!(name, "get_weather", "the tool the prompt names");
        assert!(arguments["city"].is_string() && ["c", "f"].contains(&arguments["unit"].as_str().unwrap()));
        let c = openai_chat(&a, 0);
        assert_eq!(c["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(c["choices"][0]["message"]["content"], Value::Null);
        let args: Value = serde_json::from_str(
            c["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].as_str().unwrap(),
        )
        .unwrap();
        assert_eq!(&args, arguments);
        let m = anthropic_message(&a);
        assert_eq!(m["stop_reason"], "tool_use");
        assert_eq!(m["content"][0]["input"], *arguments);
        assert!(m["content"][0]["id"].as_str().unwrap().starts_with("toolu_"));
        // none: no call; after tool results, auto answers in words; required calls again.
        let mut none = b.clone();
        none.insert("tool_choice".into(), json!("none"));
        assert!(answer(&Ask::from_openai(&none)).text().is_some());
    }

    #[test]
    fn a_round_trip_ends_in_text_in_both_formats() {
        let openai = body(json!({"model": "m", "tools": [weather()], "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"}]}));
        let a = answer(&Ask::from_openai(&openai));
        assert_eq!(a.text(), Some("Simulated answer from m using the tool results: 18C and sunny"));
        let mut required = openai.clone();
        required.insert("tool_choice".into(), json!("required"));
        assert!(matches!(answer(&Ask::from_openai(&required)).reply, Reply::ToolCall { .. }));
        let anthropic = body(
            json!({"model": "m", "max_tokens": 50, "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}], "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C and sunny"}]}]}),
        );
        let a = answer(&Ask::from_anthropic(&anthropic));
        assert_eq!(a.text(), Some("Simulated answer from m using the tool results: 18C and sunny"));
        assert_eq!(anthropic_message(&a)["stop_reason"], "end_turn");
    }

    #[test]
    fn structured_output_and_stop_sequences() {
        let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}, "score": {"type": "integer", "minimum": 1, "maximum": 5}}, "required": ["answer", "score"]});
        let openai = body(
            json!({"model": "m", "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
            "messages": [{"role": "user", "content": "Rate it"}]}),
        );
        let text = answer(&Ask::from_openai(&openai)).text().unwrap().to_owned();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["answer"].is_string() && (1..=5).contains(&v["score"].as_i64().unwrap()));
        let anthropic = body(
            json!({"model": "m", "max_tokens": 100, "output_config": {"format": {"type": "json_schema", "schema": schema}},
            "messages": [{"role": "user", "content": "Rate it"}]}),
        );
        let same: Value = serde_json::from_str(answer(&Ask::from_anthropic(&anthropic)).text().unwrap()).unwrap();
        assert!(same["answer"].is_string());
        let stop = body(
            json!({"model": "m", "max_tokens": 100, "stop_sequences": ["capital"], "messages": [{"role": "user", "content": "the capital of France"}]}),
        );
        let a = answer(&Ask::from_anthropic(&stop));
        assert_eq!(a.text(), Some("Simulated answer from m: the "));
        let m = anthropic_message(&a);
        assert_eq!((m["stop_reason"].as_str(), m["stop_sequence"].as_str()), (Some("stop_sequence"), Some("capital")));
    }
}
