//! The contract's rules for one line, walked with the zero-allocation scanner.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::issue::{quote, Code, Issue};
use crate::json_scan::{Kind, RawStr, Scan, Scanner};
use crate::model::{self, Endpoint};
use crate::translate::sampling::{self, Asked};
use crate::translate::{self, Refusal, Refusals, SamplingTable};

/// What a line says, for the file-level checks (unique ids, one url, counts).
#[derive(Debug, Default)]
pub struct LineFacts<'a> {
    pub custom_id: Option<Cow<'a, str>>,
    pub provider: Option<Cow<'a, str>>,
    pub model: Option<Cow<'a, str>>,
    pub url: Option<Cow<'a, str>>,
}

/// A field as found on the line.
#[derive(Default)]
enum Field<T> {
    #[default]
    Missing,
    Wrong(Kind),
    Got(T),
}

/// A string field: read if it is a string, otherwise skipped and its kind remembered.
fn string_field<'a>(s: &mut Scanner<'a>) -> Scan<Field<RawStr<'a>>> {
    match s.peek()? {
        Kind::String => Ok(Field::Got(s.string()?)),
        _ => Ok(Field::Wrong(s.skip()?)),
    }
}

#[derive(Default)]
struct Body<'a> {
    model: Field<RawStr<'a>>,
    messages: Field<usize>,
    max_tokens: Field<&'a str>,
    /// A positive `max_completion_tokens` (Anthropic lines take it for `max_tokens`).
    max_completion_tokens: bool,
    input: Field<bool>, // Got(is_empty)
    /// The sampling parameters, for Anthropic's model table.
    asked: Asked,
    /// More than plain chat (string messages, sampling, stop): an Anthropic line then goes
    /// through the whole translator; plain ones need only the sampling rules.
    deep: bool,
    /// Has `tools`, whose shapes are checked on every provider's lines.
    tools: bool,
}

/// What the messages of a body say about the translation (see `Body::deep`).
#[derive(Default)]
struct Conversation {
    deep: bool,
    /// user and assistant messages
    turns: usize,
    last_is_assistant: bool,
}

/// Collects issues for one line.
struct Sink<'o> {
    line: u64,
    out: &'o mut Vec<Issue>,
}

impl Sink<'_> {
    fn push(&mut self, path: impl Into<Option<String>>, code: Code, message: String) {
        self.out.push(Issue { line: self.line, path: path.into(), code, message });
    }

    fn missing(&mut self, path: &str, what: &str) {
        self.push(path.to_owned(), Code::MissingField, format!("{path} is required ({what})"));
    }

    fn wrong(&mut self, path: String, expected: &str, got: Kind) {
        let message = format!("must be {expected}, not {}", got.name());
        self.push(path, Code::InvalidType, message);
    }

    /// Whether this line already has an issue at `path`, inside it or around it (so a
    /// translation refusal does not repeat what the generic rules said).
    fn has_issue_near(&self, path: &str) -> bool {
        let within = |a: &str, b: &str| a.strip_prefix(b).is_some_and(|r| r.is_empty() || r.starts_with(['.', '[']));
        self.out
            .iter()
            .rev()
            .take_while(|i| i.line == self.line)
            .filter_map(|i| i.path.as_deref())
            .any(|p| within(p, path) || within(path, p))
    }
}

/// Checks one non-blank, UTF-8 line. Problems go to `out`; the facts the file-level checks
/// need are returned.
pub fn check_line<'a>(
    line: &'a str,
    line_no: u64,
    providers: &[String],
    sampling: &SamplingTable,
    out: &mut Vec<Issue>,
) -> LineFacts<'a> {
    let mut sink = Sink { line: line_no, out };
    let mut facts = LineFacts::default();
    if let Err(e) = walk_line(line, &mut sink, &mut facts, providers, sampling) {
        // Issues found before the syntax error are kept only if the line is JSON; a
        // broken line gets exactly one issue, naming the column.
        let first = sink.out.iter().rposition(|i| i.line != line_no).map_or(0, |p| p + 1);
        sink.out.truncate(first);
        sink.push(None, Code::InvalidJson, format!("not valid JSON: {} (column {})", e.what, e.offset + 1));
        return LineFacts::default();
    }
    facts
}

fn walk_line<'a>(
    line: &'a str,
    sink: &mut Sink<'_>,
    facts: &mut LineFacts<'a>,
    providers: &[String],
    sampling: &SamplingTable,
) -> Scan<()> {
    let mut s = Scanner::new(line);
    let kind = s.peek()?;
    if kind != Kind::Object {
        s.skip()?;
        s.finish()?;
        sink.push(None, Code::NotAnObject, format!("a line must be a JSON object, not {}", kind.name()));
        return Ok(());
    }
    let (mut custom_id, mut provider, mut method, mut url) =
        (Field::Missing, Field::Missing, Field::Missing, Field::Missing);
    let mut body: Field<Body<'a>> = Field::Missing;
    s.object(|s, key| {
        if key.is("custom_id") {
            custom_id = string_field(s)?;
        } else if key.is("provider") {
            provider = string_field(s)?;
        } else if key.is("method") {
            method = string_field(s)?;
        } else if key.is("url") {
            url = string_field(s)?;
        } else if key.is("body") {
            body = if s.peek()? == Kind::Object { Field::Got(walk_body(s, sink)?) } else { Field::Wrong(s.skip()?) };
        } else {
            s.skip()?;
        }
        Ok(())
    })?;
    s.finish()?;

    let custom_id = text_field(sink, custom_id, "custom_id", "a string unique in the file");
    let provider = match openai_format_model(&provider, &body) {
        Some(m) => {
            // An OpenAI-format line: say how to make it one of ours, not only what is missing.
            let p = if m.starts_with("claude") { "anthropic" } else { "openai" };
            sink.push(
                "provider".to_owned(),
                Code::MissingField,
                format!(
                    "provider is required: this is an OpenAI-format line (model {} has no provider prefix); \
                     add \"provider\": \"{p}\" and write the model as {}, or convert the whole file \
                     with `fastrouter-batch convert FILE --provider {p} -o OUT`",
                    quote(&m),
                    quote(&format!("{p}/{m}"))
                ),
            );
            None
        }
        None => text_field(sink, provider, "provider", "\"openai\" or \"anthropic\""),
    };
    let method = text_field(sink, method, "method", "\"POST\"");
    let url = text_field(sink, url, "url", "\"/v1/chat/completions\" or \"/v1/embeddings\"");

    if let Some(id) = &custom_id {
        if id.is_empty() {
            sink.push("custom_id".to_owned(), Code::CustomIdFormat, "must not be empty".into());
        } else if let Some(p) = provider.as_deref().filter(|p| model::provider_restricts_custom_id(p)) {
            if !model::is_strict_custom_id(id) {
                sink.push(
                    "custom_id".to_owned(),
                    Code::CustomIdFormat,
                    format!("{} does not match ^[a-zA-Z0-9_-]{{1,64}}$, which {p} requires", quote(id)),
                );
            }
        }
    }
    let known_provider = provider.as_deref().filter(|p| providers.iter().any(|k| k == p));
    if let (Some(p), None) = (&provider, known_provider) {
        sink.push(
            "provider".to_owned(),
            Code::UnknownProvider,
            format!("{} is not a supported provider (expected one of {})", quote(p), providers.join(", ")),
        );
    }
    if let Some(m) = &method {
        if m != model::METHOD_POST {
            sink.push("method".to_owned(), Code::MethodNotPost, format!("must be \"POST\", not {}", quote(m)));
        }
    }
    let endpoint = url.as_deref().and_then(Endpoint::from_url);
    if let (Some(u), None) = (&url, endpoint) {
        sink.push(
            "url".to_owned(),
            Code::UnsupportedUrl,
            format!("{} is not a batch endpoint (expected \"/v1/chat/completions\" or \"/v1/embeddings\")", quote(u)),
        );
    }
    if let (Some(p), Some(e)) = (known_provider, endpoint) {
        if !model::provider_serves(p, e) {
            sink.push("url".to_owned(), Code::UnsupportedEndpoint, format!("{p} does not serve {}", e.url()));
        }
    }

    match body {
        Field::Missing => sink.missing("body", "the endpoint's request: model and messages or input"),
        Field::Wrong(k) => sink.wrong("body".into(), "an object", k),
        Field::Got(b) => {
            let model = text_field(sink, b.model, "body.model", "a model named provider/model");
            // A model of another provider (reported here) makes the provider's rules moot.
            let mut model_fits = true;
            if let (Some(m), Some(p)) = (&model, &provider) {
                let prefix = model::provider_of_model(m);
                model_fits = prefix == Some(p.as_ref());
                match prefix {
                    Some(prefix) if prefix == p.as_ref() => {}
                    Some(prefix) => sink.push(
                        "body.model".to_owned(),
                        Code::ProviderModelMismatch,
                        format!("model {} belongs to {prefix:?} but the line's provider is {p:?}", quote(m)),
                    ),
                    None => sink.push(
                        "body.model".to_owned(),
                        Code::ProviderModelMismatch,
                        format!("model {} has no provider prefix; write it as \"{p}/{m}\"", quote(m)),
                    ),
                }
            }
            let (deep, tools, asked) = (b.deep, b.tools, b.asked);
            let max_tokens = match (b.max_tokens, b.max_completion_tokens) {
                // max_completion_tokens stands in for a missing max_tokens.
                (Field::Missing, true) => Field::Got("1"),
                (m, _) => m,
            };
            check_body_fields(sink, endpoint, known_provider, b.messages, max_tokens, b.input);
            if endpoint == Some(Endpoint::ChatCompletions) && model_fits {
                let line = Translation { line, deep, tools, asked, model: model.as_deref() };
                translation_checks(sink, known_provider, &line, sampling);
            }
            facts.model = model;
        }
    }
    facts.custom_id = custom_id;
    facts.provider = provider;
    facts.url = url;
    Ok(())
}

/// The model of a line without `provider` whose model has no `provider/` prefix: a line in
/// OpenAI's own batch format.
fn openai_format_model<'a>(provider: &Field<RawStr<'a>>, body: &Field<Body<'a>>) -> Option<Cow<'a, str>> {
    match (provider, body) {
        (Field::Missing, Field::Got(Body { model: Field::Got(m), .. })) => {
            let m = m.decode();
            (!m.is_empty() && !m.contains('/')).then_some(m)
        }
        _ => None,
    }
}

/// Reports a missing or mistyped string field, returning its text when it is a string.
fn text_field<'a>(sink: &mut Sink<'_>, f: Field<RawStr<'a>>, path: &str, what: &str) -> Option<Cow<'a, str>> {
    match f {
        Field::Missing => {
            sink.missing(path, what);
            None
        }
        Field::Wrong(k) => {
            sink.wrong(path.to_owned(), "a string", k);
            None
        }
        Field::Got(s) => Some(s.decode()),
    }
}

fn check_body_fields(
    sink: &mut Sink<'_>,
    endpoint: Option<Endpoint>,
    provider: Option<&str>,
    messages: Field<usize>,
    max_tokens: Field<&str>,
    input: Field<bool>,
) {
    match endpoint {
        Some(Endpoint::ChatCompletions) => match messages {
            Field::Missing => sink.missing("body.messages", "a non-empty list of messages"),
            Field::Wrong(k) => sink.wrong("body.messages".into(), "a list of messages", k),
            Field::Got(0) => {
                sink.push("body.messages".to_owned(), Code::EmptyMessages, "must hold at least one message".into())
            }
            Field::Got(_) => {}
        },
        Some(Endpoint::Embeddings) => match input {
            Field::Missing => sink.missing("body.input", "the text or list of texts to embed"),
            Field::Wrong(k) => sink.wrong("body.input".into(), "a string or a list", k),
            Field::Got(true) => sink.push("body.input".to_owned(), Code::EmptyInput, "must not be empty".into()),
            Field::Got(false) => {}
        },
        None => {}
    }
    match max_tokens {
        Field::Missing => {
            if endpoint == Some(Endpoint::ChatCompletions) && provider.is_some_and(model::provider_requires_max_tokens)
            {
                sink.push(
                    "body.max_tokens".to_owned(),
                    Code::MissingMaxTokens,
                    format!("{} requires max_tokens on every chat request", provider.unwrap_or_default()),
                );
            }
        }
        Field::Wrong(k) => sink.wrong("body.max_tokens".into(), "a positive integer", k),
        Field::Got(n) => {
            if !n.parse::<u64>().is_ok_and(|v| v > 0) {
                sink.push(
                    "body.max_tokens".to_owned(),
                    Code::InvalidValue,
                    format!("must be a positive integer, not {n}"),
                );
            }
        }
    }
}

/// A chat line as the translation checks see it.
struct Translation<'l> {
    line: &'l str,
    deep: bool,
    tools: bool,
    asked: Asked,
    model: Option<&'l str>,
}

/// What the Anthropic translation would refuse (the same refusals, from the same code),
/// and the tools' shapes on other providers' lines. Plain Anthropic lines need only the
/// sampling rules; the others are parsed whole (they are few) and translated.
#[inline]
fn translation_checks(sink: &mut Sink<'_>, provider: Option<&str>, t: &Translation<'_>, table: &SamplingTable) {
    let anthropic = provider == Some("anthropic");
    if (anthropic && t.deep) || (!anthropic && t.tools) {
        full_translation_checks(sink, anthropic, t.line, table);
    } else if let (true, Some(model)) = (anthropic, t.model) {
        // Most lines ask for no sampling parameter: nothing to look up.
        if t.asked != Asked::default() {
            sampling_checks(sink, model, t.asked, table);
        }
    }
}

#[inline(never)]
fn sampling_checks(sink: &mut Sink<'_>, model: &str, asked: Asked, table: &SamplingTable) {
    let mut out = Refusals::default();
    sampling::resolve(table, model, asked, &mut out);
    push_refusals(sink, out.into_vec());
}

/// The line parsed whole and translated (or its tools checked): rare, so kept out of line.
#[cold]
#[inline(never)]
fn full_translation_checks(sink: &mut Sink<'_>, anthropic: bool, line: &str, table: &SamplingTable) {
    // The line is valid JSON (the scanner has walked it whole).
    let Ok(Value::Object(mut line)) = serde_json::from_str::<Value>(line) else { return };
    let Some(Value::Object(body)) = line.remove("body") else { return };
    let refusals = if anthropic { translate::refusals(&body, table) } else { openai_tool_refusals(&body) };
    push_refusals(sink, refusals);
}

fn push_refusals(sink: &mut Sink<'_>, refusals: Vec<Refusal>) {
    for r in refusals {
        if !sink.has_issue_near(&r.path) {
            sink.push(r.path, r.code, r.message);
        }
    }
}

fn openai_tool_refusals(body: &Map<String, Value>) -> Vec<Refusal> {
    let mut out = Refusals::default();
    if let Some(tools) = body.get("tools").filter(|t| !t.is_null()) {
        translate::check_tools(tools, &mut out, &mut Vec::new());
    }
    out.into_vec()
}

fn walk_body<'a>(s: &mut Scanner<'a>, sink: &mut Sink<'_>) -> Scan<Body<'a>> {
    let mut body = Body::default();
    s.object(|s, key| {
        if key.is("model") {
            body.model = string_field(s)?;
        } else if key.is("messages") {
            body.messages = match s.peek()? {
                Kind::Array => {
                    let mut n = 0;
                    let mut conv = Conversation::default();
                    s.array(|s, i| {
                        n = i + 1;
                        walk_message(s, sink, i, &mut conv)
                    })?;
                    body.deep |= conv.deep || conv.turns == 0 || conv.last_is_assistant;
                    Field::Got(n)
                }
                _ => {
                    body.deep = true;
                    Field::Wrong(s.skip()?)
                }
            };
        } else if key.is("max_tokens") {
            body.max_tokens = match s.peek()? {
                Kind::Number => Field::Got(s.number()?),
                // null is "not given", as for every parameter.
                Kind::Null => s.literal_null().map(|()| Field::Missing)?,
                _ => Field::Wrong(s.skip()?),
            };
        } else if key.is("input") {
            body.input = match s.peek()? {
                Kind::String => Field::Got(s.string()?.is_empty()),
                Kind::Array => {
                    let mut n = 0;
                    s.array(|s, i| {
                        n = i + 1;
                        s.skip().map(drop)
                    })?;
                    Field::Got(n == 0)
                }
                _ => Field::Wrong(s.skip()?),
            };
        } else if let Some(param) = Param::of(&key) {
            let value = check_param(s, sink, param)?;
            // Sampling and stop are plain; the rest makes an Anthropic line `deep`.
            match param {
                Param::Number("temperature", ..) => body.asked.temperature = value,
                Param::Number("top_p", ..) => body.asked.top_p = value,
                Param::Count("top_k") => body.asked.top_k = value,
                Param::Stop => {}
                Param::Count("max_completion_tokens") => {
                    body.max_completion_tokens = value.is_some();
                    body.deep = true;
                }
                _ => body.deep = true,
            }
        } else {
            body.tools |= key.is("tools");
            body.deep = true;
            s.skip()?;
        }
        Ok(())
    })?;
    Ok(body)
}

/// The sampling parameters both providers take, checked so a typo'd value fails here, by
/// line and field, not at the provider after upload. `null` means "the default" for each.
#[derive(Clone, Copy)]
enum Param {
    /// A number within bounds.
    Number(&'static str, f64, f64),
    /// An integer of at least 1.
    Count(&'static str),
    /// Any integer.
    Integer(&'static str),
    /// A string or a list of strings.
    Stop,
}

impl Param {
    #[inline]
    fn of(key: &RawStr<'_>) -> Option<Self> {
        Some(if key.is("temperature") {
            Param::Number("temperature", 0.0, 2.0)
        } else if key.is("top_p") {
            Param::Number("top_p", 0.0, 1.0)
        } else if key.is("presence_penalty") {
            Param::Number("presence_penalty", -2.0, 2.0)
        } else if key.is("frequency_penalty") {
            Param::Number("frequency_penalty", -2.0, 2.0)
        } else if key.is("n") {
            Param::Count("n")
        } else if key.is("max_completion_tokens") {
            Param::Count("max_completion_tokens")
        } else if key.is("top_k") {
            Param::Count("top_k")
        } else if key.is("seed") {
            Param::Integer("seed")
        } else if key.is("stop") {
            Param::Stop
        } else {
            return None;
        })
    }
}

/// Checks a parameter's value; returns it when it is a number of the right kind.
fn check_param(s: &mut Scanner<'_>, sink: &mut Sink<'_>, param: Param) -> Scan<Option<f64>> {
    let kind = s.peek()?;
    if kind == Kind::Null {
        return s.literal_null().map(|()| None);
    }
    let mut value = None;
    match param {
        Param::Number(name, lo, hi) => {
            if kind != Kind::Number {
                return s.skip().map(|k| sink.wrong(format!("body.{name}"), "a number", k)).map(|()| None);
            }
            let text = s.number()?;
            value = text.parse::<f64>().ok();
            if !value.is_some_and(|v| (lo..=hi).contains(&v)) {
                sink.push(
                    format!("body.{name}"),
                    Code::InvalidValue,
                    format!("must be between {lo} and {hi}, not {text}"),
                );
            }
        }
        Param::Count(name) | Param::Integer(name) => {
            let (expected, ok): (&str, fn(&str) -> bool) = match param {
                Param::Count(_) => ("a positive integer", |t| t.parse::<u64>().is_ok_and(|v| v > 0)),
                _ => ("an integer", |t| t.parse::<i64>().is_ok()),
            };
            if kind != Kind::Number {
                return s.skip().map(|k| sink.wrong(format!("body.{name}"), expected, k)).map(|()| None);
            }
            let text = s.number()?;
            if ok(text) {
                value = text.parse::<f64>().ok();
            } else {
                sink.push(format!("body.{name}"), Code::InvalidValue, format!("must be {expected}, not {text}"));
            }
        }
        Param::Stop => match kind {
            Kind::String => {
                s.string()?;
            }
            Kind::Array => s.array(|s, i| {
                let k = s.skip()?;
                if k != Kind::String {
                    sink.wrong(format!("body.stop[{i}]"), "a string", k);
                }
                Ok(())
            })?,
            _ => {
                let k = s.skip()?;
                sink.wrong("body.stop".into(), "a string or a list of strings", k);
            }
        },
    }
    Ok(value)
}

fn walk_message(s: &mut Scanner<'_>, sink: &mut Sink<'_>, i: usize, conv: &mut Conversation) -> Scan<()> {
    let kind = s.peek()?;
    if kind != Kind::Object {
        s.skip()?;
        sink.wrong(format!("body.messages[{i}]"), "an object with role and content", kind);
        conv.deep = true;
        return Ok(());
    }
    let mut role: Field<RawStr<'_>> = Field::Missing;
    let mut content: Field<()> = Field::Missing;
    s.object(|s, key| {
        if key.is("role") {
            role = string_field(s)?;
        } else if key.is("content") {
            content = match s.peek()? {
                Kind::String => {
                    // Anthropic rejects blank text: such a line is translated in full.
                    conv.deep |= s.string()?.maybe_blank();
                    Field::Got(())
                }
                Kind::Null => {
                    s.skip()?;
                    conv.deep = true;
                    Field::Wrong(Kind::Null)
                }
                Kind::Array => {
                    s.array(|s, j| walk_part(s, sink, i, j))?;
                    conv.deep = true;
                    Field::Got(())
                }
                _ => Field::Wrong(s.skip()?),
            };
        } else {
            s.skip()?;
            conv.deep = true;
        }
        Ok(())
    })?;
    let role_path = || format!("body.messages[{i}].role");
    let role = match role {
        Field::Missing => {
            sink.missing(&role_path(), "one of system, developer, user, assistant, tool");
            None
        }
        Field::Wrong(k) => {
            sink.wrong(role_path(), "a string", k);
            None
        }
        Field::Got(r) => {
            let r = r.decode();
            if !model::ROLES.contains(&r.as_ref()) {
                sink.push(
                    role_path(),
                    Code::InvalidRole,
                    format!("{} is not a role (expected one of {})", quote(&r), model::ROLES.join(", ")),
                );
            }
            Some(r)
        }
    };
    match role.as_deref() {
        Some("system" | "developer") => {}
        Some("user" | "assistant") => conv.turns += 1,
        _ => conv.deep = true,
    }
    conv.last_is_assistant = role.as_deref() == Some("assistant");
    if matches!(content, Field::Missing) {
        conv.deep = true;
    }
    // An assistant turn that only calls tools may have no content.
    let assistant = role.as_deref() == Some("assistant");
    let content_path = || format!("body.messages[{i}].content");
    match content {
        Field::Missing if !assistant => sink.missing(&content_path(), "a string or a list of content parts"),
        Field::Wrong(Kind::Null) if assistant => {}
        Field::Wrong(k) => sink.wrong(content_path(), "a string or a list of content parts", k),
        _ => {}
    }
    Ok(())
}

fn walk_part(s: &mut Scanner<'_>, sink: &mut Sink<'_>, i: usize, j: usize) -> Scan<()> {
    let path = || format!("body.messages[{i}].content[{j}]");
    let kind = s.peek()?;
    if kind != Kind::Object {
        s.skip()?;
        sink.wrong(path(), "a content part object with a type", kind);
        return Ok(());
    }
    let mut ty: Field<()> = Field::Missing;
    s.object(|s, key| {
        if key.is("type") {
            ty = match string_field(s)? {
                Field::Got(_) => Field::Got(()),
                Field::Wrong(k) => Field::Wrong(k),
                Field::Missing => Field::Missing,
            };
        } else {
            s.skip()?;
        }
        Ok(())
    })?;
    match ty {
        Field::Missing => sink.missing(&format!("{}.type", path()), "the part's type, e.g. \"text\""),
        Field::Wrong(k) => sink.wrong(format!("{}.type", path()), "a string", k),
        Field::Got(()) => {}
    }
    Ok(())
}
