//! Decoding one result line (the contract's section 4):
//! `{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}` becomes a
//! [`Line`]: the custom_id, whether the request succeeded, the status code, the assistant's
//! text (chat), the model, the token usage, and the error's code and message. Only those few
//! fields are decoded; every other byte of the line is checked against the JSON grammar and
//! skipped by the zero-copy scanner (`json_scan`).

use std::borrow::Cow;

use crate::json_scan::{Kind, Scan, Scanner, SyntaxError};

/// Token counts of a body's `usage` (OpenAI's names; Anthropic's `input_tokens` /
/// `output_tokens` are read as prompt / completion). `total` is prompt + completion when
/// the body does not give it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

/// Why a request failed, as the line tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo<'a> {
    pub code: Option<Cow<'a, str>>,
    pub message: Option<Cow<'a, str>>,
}

/// One line, decoded, borrowing from it where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub custom_id: Cow<'a, str>,
    /// A response with a 2xx status and no error.
    pub ok: bool,
    pub status_code: Option<u16>,
    /// The assistant's text: `choices[0].message.content` (a string, or the `text` of its
    /// parts joined), else `choices[0].text`, else an Anthropic-shaped `content[].text`.
    pub text: Option<Cow<'a, str>>,
    pub model: Option<Cow<'a, str>>,
    pub usage: Option<Usage>,
    /// Set exactly when `ok` is false.
    pub error: Option<ErrorInfo<'a>>,
}

#[allow(clippy::boxed_local)] // the scanner's errors come boxed
fn syntax(e: Box<SyntaxError>) -> String {
    format!("invalid JSON at byte {}: {}", e.offset + 1, e.what)
}

/// Decodes one line (without its newline). `ids_only` reads just the custom_id (for
/// request files, whose order gives the results' order); the rest is still checked.
pub fn parse_line(line: &str, ids_only: bool) -> Result<Line<'_>, String> {
    let mut sc = Scanner::new(line);
    let kind = sc.peek().map_err(syntax)?;
    if kind != Kind::Object {
        // Say "not JSON" for `not json` (whose first letter looks like `null`), and what
        // the value is only when it is one.
        sc.skip().map_err(syntax)?;
        sc.finish().map_err(syntax)?;
        return Err(format!("expected a JSON object, found {}", kind.name()));
    }
    let mut custom_id = None;
    let mut id_kind = None;
    let mut response = Response::default();
    let mut line_error: Option<ErrorFields> = None;
    let mut result_keys = false;
    sc.object(|s, key| {
        if key.is("custom_id") {
            let k = s.peek()?;
            if k == Kind::String {
                custom_id = Some(s.string()?.decode());
            } else {
                id_kind = Some(k);
                s.skip()?;
            }
        } else if ids_only {
            s.skip()?;
        } else if key.is("response") {
            result_keys = true;
            if s.peek()? == Kind::Object {
                response.present = true;
                read_response(s, &mut response)?;
            } else {
                s.skip()?;
            }
        } else if key.is("error") {
            result_keys = true;
            match s.peek()? {
                Kind::Object => {
                    let mut e = ErrorFields::default();
                    read_error(s, &mut e)?;
                    line_error = Some(e);
                }
                Kind::String => {
                    line_error = Some(ErrorFields { message: Some(s.string()?.decode()), ..Default::default() });
                }
                _ => {
                    s.skip()?;
                }
            }
        } else {
            s.skip()?;
        }
        Ok(())
    })
    .map_err(syntax)?;
    sc.finish().map_err(syntax)?;
    let custom_id = match (custom_id, id_kind) {
        (Some(id), _) => id,
        (None, Some(k)) => return Err(format!("custom_id must be a string, not {}", k.name())),
        (None, None) => return Err("no custom_id".into()),
    };
    if ids_only {
        return Ok(Line { custom_id, ok: false, status_code: None, text: None, model: None, usage: None, error: None });
    }
    if !result_keys {
        return Err(
            "not a result line: it has neither \"response\" nor \"error\" (is this the batch's input file?)".into()
        );
    }
    let body = response.body;
    let ok = line_error.is_none()
        && response.present
        && match response.status {
            Some(s) => (200..300).contains(&s),
            None => body.error.is_none(),
        };
    let error = if ok {
        None
    } else if let Some(e) = line_error {
        Some(ErrorInfo { code: e.code.or(e.kind), message: e.message })
    } else if response.present {
        let e = body.error.unwrap_or_default();
        let message = e.message.or(body.message).or_else(|| {
            Some(Cow::Owned(match response.status {
                Some(s) => format!("the request failed with status {s}"),
                None => "the request failed".to_owned(),
            }))
        });
        Some(ErrorInfo { code: e.code.or(e.kind), message })
    } else {
        Some(ErrorInfo { code: None, message: Some(Cow::Borrowed("the line has neither a response nor an error")) })
    };
    Ok(Line {
        custom_id,
        ok,
        status_code: response.status,
        text: body.message_text.or(body.choice_text).or(body.content_text),
        model: body.model,
        usage: body.usage,
        error,
    })
}

#[derive(Default)]
struct Response<'a> {
    present: bool,
    status: Option<u16>,
    body: Body<'a>,
}

#[derive(Default)]
struct Body<'a> {
    model: Option<Cow<'a, str>>,
    message_text: Option<Cow<'a, str>>,
    choice_text: Option<Cow<'a, str>>,
    content_text: Option<Cow<'a, str>>,
    usage: Option<Usage>,
    error: Option<ErrorFields<'a>>,
    /// A body that is just a string (some gateways answer errors that way).
    message: Option<Cow<'a, str>>,
}

#[derive(Default)]
struct ErrorFields<'a> {
    code: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    message: Option<Cow<'a, str>>,
}

fn read_response<'a>(s: &mut Scanner<'a>, r: &mut Response<'a>) -> Scan<()> {
    s.object(|s, key| {
        if key.is("status_code") {
            r.status = number(s)?.filter(|n| (100..1000).contains(n)).map(|n| n as u16);
        } else if key.is("body") {
            match s.peek()? {
                Kind::Object => read_body(s, &mut r.body)?,
                Kind::String => r.body.message = Some(s.string()?.decode()),
                _ => {
                    s.skip()?;
                }
            }
        } else {
            s.skip()?;
        }
        Ok(())
    })
}

fn read_body<'a>(s: &mut Scanner<'a>, b: &mut Body<'a>) -> Scan<()> {
    s.object(|s, key| {
        let kind = s.peek()?;
        if key.is("choices") && kind == Kind::Array {
            s.array(|s, i| if i == 0 && s.peek()? == Kind::Object { read_choice(s, b) } else { s.skip().map(drop) })?;
        } else if key.is("model") && kind == Kind::String {
            b.model = Some(s.string()?.decode());
        } else if key.is("usage") && kind == Kind::Object {
            b.usage = Some(read_usage(s)?);
        } else if key.is("content") && kind == Kind::Array {
            b.content_text = None;
            read_parts(s, &mut b.content_text)?;
        } else if key.is("error") && kind == Kind::Object {
            let mut e = ErrorFields::default();
            read_error(s, &mut e)?;
            b.error = Some(e);
        } else if key.is("error") && kind == Kind::String {
            b.error = Some(ErrorFields { message: Some(s.string()?.decode()), ..Default::default() });
        } else {
            s.skip()?;
        }
        Ok(())
    })
}

fn read_choice<'a>(s: &mut Scanner<'a>, b: &mut Body<'a>) -> Scan<()> {
    s.object(|s, key| {
        let kind = s.peek()?;
        if key.is("message") && kind == Kind::Object {
            s.object(|s, key| {
                if key.is("content") {
                    match s.peek()? {
                        Kind::String => b.message_text = Some(s.string()?.decode()),
                        Kind::Array => {
                            b.message_text = None;
                            read_parts(s, &mut b.message_text)?;
                        }
                        _ => {
                            s.skip()?;
                        }
                    }
                } else {
                    s.skip()?;
                }
                Ok(())
            })?;
        } else if key.is("text") && kind == Kind::String {
            b.choice_text = Some(s.string()?.decode());
        } else {
            s.skip()?;
        }
        Ok(())
    })
}

/// Content parts: the `text` of each part (a bare string part counts as text), joined.
fn read_parts<'a>(s: &mut Scanner<'a>, out: &mut Option<Cow<'a, str>>) -> Scan<()> {
    s.array(|s, _| {
        match s.peek()? {
            Kind::Object => s.object(|s, key| {
                if key.is("text") && s.peek()? == Kind::String {
                    append(out, s.string()?.decode());
                } else {
                    s.skip()?;
                }
                Ok(())
            })?,
            Kind::String => append(out, s.string()?.decode()),
            _ => {
                s.skip()?;
            }
        }
        Ok(())
    })
}

fn append<'a>(acc: &mut Option<Cow<'a, str>>, piece: Cow<'a, str>) {
    match acc {
        None => *acc = Some(piece),
        Some(text) => text.to_mut().push_str(&piece),
    }
}

fn read_usage(s: &mut Scanner<'_>) -> Scan<Usage> {
    let (mut prompt, mut completion, mut total) = (None, None, None);
    s.object(|s, key| {
        if key.is("prompt_tokens") || key.is("input_tokens") {
            prompt = number(s)?;
        } else if key.is("completion_tokens") || key.is("output_tokens") {
            completion = number(s)?;
        } else if key.is("total_tokens") {
            total = number(s)?;
        } else {
            s.skip()?;
        }
        Ok(())
    })?;
    let (p, c) = (prompt.unwrap_or(0), completion.unwrap_or(0));
    Ok(Usage { prompt_tokens: p, completion_tokens: c, total_tokens: total.unwrap_or(p.saturating_add(c)) })
}

fn read_error<'a>(s: &mut Scanner<'a>, e: &mut ErrorFields<'a>) -> Scan<()> {
    s.object(|s, key| {
        let kind = s.peek()?;
        if key.is("code") && kind == Kind::String {
            e.code = Some(s.string()?.decode());
        } else if key.is("code") && kind == Kind::Number {
            e.code = Some(Cow::Borrowed(s.number()?));
        } else if key.is("message") && kind == Kind::String {
            e.message = Some(s.string()?.decode());
        } else if key.is("type") && kind == Kind::String {
            e.kind = Some(s.string()?.decode());
        } else {
            s.skip()?;
        }
        Ok(())
    })
}

/// A non-negative whole number (`12` or `12.0`); anything else reads as None (and is skipped).
fn number(s: &mut Scanner<'_>) -> Scan<Option<u64>> {
    if s.peek()? != Kind::Number {
        s.skip()?;
        return Ok(None);
    }
    let text = s.number()?;
    Ok(text.parse::<u64>().ok().or_else(|| {
        text.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0 && v.fract() == 0.0).map(|v| v as u64)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::tests::ok_line;

    #[test]
    fn reads_a_chat_line() {
        let text = ok_line("request-1", r#""Hello\n\"world\" \u00e9""#);
        let l = parse_line(&text, false).unwrap();
        assert_eq!(l.custom_id, "request-1");
        assert!(l.ok);
        assert_eq!(l.status_code, Some(200));
        assert_eq!(l.text.as_deref(), Some("Hello\n\"world\" é"));
        assert_eq!(l.model.as_deref(), Some("gpt-4.1-nano"));
        assert_eq!(l.usage, Some(Usage { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 }));
        assert_eq!(l.error, None);
    }

    #[test]
    fn content_parts_are_joined_and_null_content_has_no_text() {
        let parts = ok_line(
            "a",
            r#"[{"type":"text","text":"one "},{"type":"image_url","image_url":{"url":"x"}},{"type":"text","text":"two"}]"#,
        );
        assert_eq!(parse_line(&parts, false).unwrap().text.as_deref(), Some("one two"));
        let null = ok_line("a", "null");
        let l = parse_line(&null, false).unwrap();
        assert_eq!(l.text, None);
        assert!(l.ok);
        let empty = ok_line("a", r#""""#);
        assert_eq!(parse_line(&empty, false).unwrap().text.as_deref(), Some(""));
    }

    #[test]
    fn anthropic_shaped_and_legacy_bodies() {
        let a = r#"{"custom_id":"c","response":{"status_code":200,"body":{"type":"message","model":"claude","content":[{"type":"text","text":"Hi"},{"type":"text","text":" there"}],"usage":{"input_tokens":3,"output_tokens":4}}}}"#;
        let l = parse_line(a, false).unwrap();
        assert_eq!(l.text.as_deref(), Some("Hi there"));
        assert_eq!(l.usage, Some(Usage { prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 }));
        let legacy = r#"{"custom_id":"c","response":{"status_code":200,"body":{"choices":[{"text":"old style"}]}}}"#;
        assert_eq!(parse_line(legacy, false).unwrap().text.as_deref(), Some("old style"));
    }

    #[test]
    fn embeddings_have_usage_and_no_text() {
        let e = r#"{"custom_id":"e","response":{"status_code":200,"body":{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,-2e-3]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":4,"total_tokens":4}}},"error":null}"#;
        let l = parse_line(e, false).unwrap();
        assert!(l.ok);
        assert_eq!(l.text, None);
        assert_eq!(l.model.as_deref(), Some("text-embedding-3-small"));
        assert_eq!(l.usage, Some(Usage { prompt_tokens: 4, completion_tokens: 0, total_tokens: 4 }));
    }

    #[test]
    fn failures_carry_code_and_message() {
        let rejected = r#"{"custom_id":"r","response":{"status_code":429,"body":{"error":{"message":"Slow down","type":"rate_limit_error","code":"rate_limited"}}},"error":null}"#;
        let l = parse_line(rejected, false).unwrap();
        assert!(!l.ok);
        assert_eq!(l.status_code, Some(429));
        assert_eq!(l.error, Some(ErrorInfo { code: Some("rate_limited".into()), message: Some("Slow down".into()) }));

        let typed = r#"{"custom_id":"r","response":{"status_code":400,"body":{"error":{"message":"bad","type":"invalid_request_error","code":null}}}}"#;
        assert_eq!(parse_line(typed, false).unwrap().error.unwrap().code.as_deref(), Some("invalid_request_error"));

        let bare = r#"{"custom_id":"r","response":{"status_code":502,"body":"Bad gateway"}}"#;
        assert_eq!(parse_line(bare, false).unwrap().error.unwrap().message.as_deref(), Some("Bad gateway"));

        let nobody = r#"{"custom_id":"r","response":{"status_code":500,"body":null}}"#;
        let e = parse_line(nobody, false).unwrap().error.unwrap();
        assert_eq!((e.code, e.message.as_deref()), (None, Some("the request failed with status 500")));

        let never =
            r#"{"id":"x","custom_id":"n","response":null,"error":{"code":"batch_cancelled","message":"not run"}}"#;
        let l = parse_line(never, false).unwrap();
        assert!(!l.ok);
        assert_eq!(l.status_code, None);
        assert_eq!(l.error, Some(ErrorInfo { code: Some("batch_cancelled".into()), message: Some("not run".into()) }));

        let numeric = r#"{"custom_id":"n","response":null,"error":{"code":1234,"message":"m"}}"#;
        assert_eq!(parse_line(numeric, false).unwrap().error.unwrap().code.as_deref(), Some("1234"));

        let both_null = r#"{"custom_id":"n","response":null,"error":null}"#;
        assert!(!parse_line(both_null, false).unwrap().ok);
        // A request line (the batch's input file read by mistake) is not a result.
        let request = r#"{"custom_id":"n","method":"POST","url":"/v1/chat/completions","body":{}}"#;
        assert!(parse_line(request, false).unwrap_err().contains("is this the batch's input file?"));
    }

    #[test]
    fn bad_lines_say_why() {
        assert!(parse_line("[1]", false).unwrap_err().contains("expected a JSON object"));
        assert!(parse_line("null", false).unwrap_err().contains("expected a JSON object, found null"));
        assert!(
            parse_line("not json", false).unwrap_err().contains("invalid JSON"),
            "{}",
            parse_line("not json", false).unwrap_err()
        );
        assert!(parse_line(r#"{"custom_id":1}"#, false).unwrap_err().contains("custom_id must be a string"));
        assert_eq!(parse_line(r#"{"response":null}"#, false).unwrap_err(), "no custom_id");
        let truncated = &ok_line("a", r#""x""#)[..60];
        assert!(
            parse_line(truncated, false).unwrap_err().contains("truncated"),
            "{}",
            parse_line(truncated, false).unwrap_err()
        );
        assert!(parse_line(r#"{"custom_id":"a"} x"#, false).unwrap_err().contains("after the JSON value"));
    }

    #[test]
    fn ids_only_skips_the_rest() {
        let req = r#"{"custom_id":"request-9","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}"#;
        assert_eq!(parse_line(req, true).unwrap().custom_id, "request-9");
    }
}
