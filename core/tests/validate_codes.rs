//! Every validation code, each from a minimal failing line, with its exact line and path.

use fastrouter_batch_core::validate::{validate_bytes, Code, Options};
use fastrouter_batch_core::Limits;

const OK_OPENAI: &str = r#"{"custom_id":"a","provider":"openai","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4.1","messages":[{"role":"user","content":"hi"}]}}"#;
const OK_ANTHROPIC: &str = r#"{"custom_id":"b","provider":"anthropic","method":"POST","url":"/v1/chat/completions","body":{"model":"anthropic/claude-4.5-sonnet","messages":[{"role":"user","content":"hi"}],"max_tokens":10}}"#;

/// Validates `text` with default options and returns (line, code, path) of every issue.
fn issues_with(text: &[u8], opts: &Options) -> Vec<(u64, &'static str, Option<String>)> {
    let r = validate_bytes(text, opts);
    r.issues.iter().map(|i| (i.line, i.code.as_str(), i.path.clone())).collect()
}

fn issues(text: &str) -> Vec<(u64, &'static str, Option<String>)> {
    issues_with(text.as_bytes(), &Options::default())
}

/// The OpenAI line with `from` replaced by `to`, as line 2 after a valid line.
fn second(from: &str, to: &str) -> String {
    assert!(OK_OPENAI.contains(from), "{from}");
    format!("{OK_ANTHROPIC}\n{}\n", OK_OPENAI.replacen(from, to, 1))
}

fn one(line: u64, code: &'static str, path: Option<&str>) -> Vec<(u64, &'static str, Option<String>)> {
    vec![(line, code, path.map(str::to_owned))]
}

#[test]
fn valid_files_have_no_issues() {
    let r = validate_bytes(format!("{OK_OPENAI}\n{OK_ANTHROPIC}\n").as_bytes(), &Options::default());
    assert!(r.is_ok(), "{:?}", r.issues);
    assert_eq!((r.num_lines, r.num_requests), (2, 2));
    assert_eq!(r.providers.get("openai"), Some(&1));
    assert_eq!(r.models.get("anthropic/claude-4.5-sonnet"), Some(&1));
    assert_eq!(r.url.as_deref(), Some("/v1/chat/completions"));
}

#[test]
fn bom_crlf_blank_lines_and_missing_final_newline_are_accepted() {
    let text = format!("\u{feff}{OK_OPENAI}\r\n\r\n   \n{OK_ANTHROPIC}");
    let r = validate_bytes(text.as_bytes(), &Options::default());
    assert!(r.is_ok(), "{:?}", r.issues);
    assert_eq!((r.num_lines, r.num_requests), (4, 2));
    assert_eq!(r.total_bytes, text.len() as u64);
}

#[test]
fn invalid_json_names_the_line() {
    assert_eq!(issues(&format!("{OK_OPENAI}\n\n{{\"custom_id\": \n")), one(3, "invalid_json", None));
}

#[test]
fn invalid_utf8() {
    let mut text = format!("{OK_OPENAI}\n").into_bytes();
    text.extend(b"{\"custom_id\":\"\xff\"}\n");
    assert_eq!(issues_with(&text, &Options::default()), one(2, "invalid_utf8", None));
}

#[test]
fn not_an_object() {
    assert_eq!(issues("[1,2]\n"), one(1, "not_an_object", None));
}

#[test]
fn missing_fields() {
    assert_eq!(issues(&second(r#""method":"POST","#, "")), one(2, "missing_field", Some("method")));
    assert_eq!(issues(&second(r#""model":"openai/gpt-4.1","#, "")), one(2, "missing_field", Some("body.model")));
    assert_eq!(
        issues(&second(r#"{"role":"user","content":"hi"}"#, r#"{"content":"hi"}"#)),
        one(2, "missing_field", Some("body.messages[0].role"))
    );
    assert_eq!(
        issues(&second(r#"{"role":"user","content":"hi"}"#, r#"{"role":"user"}"#)),
        one(2, "missing_field", Some("body.messages[0].content"))
    );
}

#[test]
fn invalid_types() {
    assert_eq!(issues(&second(r#""custom_id":"a""#, r#""custom_id":7"#)), one(2, "invalid_type", Some("custom_id")));
    assert_eq!(
        issues(&second(r#""content":"hi""#, r#""content":[{"type":"text","text":"x"},{"text":"y"}]"#)),
        one(2, "missing_field", Some("body.messages[0].content[1].type"))
    );
    assert_eq!(
        issues(&second(r#""content":"hi""#, r#""content":5"#)),
        one(2, "invalid_type", Some("body.messages[0].content"))
    );
    assert_eq!(
        issues(&second(r#""messages":["#, r#""max_tokens":"9","messages":["#)),
        one(2, "invalid_type", Some("body.max_tokens"))
    );
}

#[test]
fn invalid_value_max_tokens() {
    assert_eq!(
        issues(&second(r#""messages":["#, r#""max_tokens":0,"messages":["#)),
        one(2, "invalid_value", Some("body.max_tokens"))
    );
    assert_eq!(
        issues(&second(r#""messages":["#, r#""max_tokens":1.5,"messages":["#)),
        one(2, "invalid_value", Some("body.max_tokens"))
    );
}

#[test]
fn duplicate_custom_id_names_both_lines() {
    let text = format!("{OK_OPENAI}\n{OK_ANTHROPIC}\n{OK_OPENAI}\n");
    let r = validate_bytes(text.as_bytes(), &Options::default());
    assert_eq!(r.issues.len(), 1);
    let i = &r.issues[0];
    assert_eq!((i.line, i.code, i.path.as_deref()), (3, Code::DuplicateCustomId, Some("custom_id")));
    assert!(i.message.contains("line 1") && i.message.contains("line 3"), "{}", i.message);
}

#[test]
fn custom_id_format() {
    let bad = OK_ANTHROPIC.replace(r#""custom_id":"b""#, r#""custom_id":"has space""#);
    assert_eq!(issues(&format!("{bad}\n")), one(1, "custom_id_format", Some("custom_id")));
    let long = OK_ANTHROPIC.replace(r#""custom_id":"b""#, &format!(r#""custom_id":"{}""#, "x".repeat(65)));
    assert_eq!(issues(&format!("{long}\n")), one(1, "custom_id_format", Some("custom_id")));
    // OpenAI lines are not held to Anthropic's rule, but an empty id is always wrong.
    assert!(issues(&second(r#""custom_id":"a""#, r#""custom_id":"has space""#)).is_empty());
    assert_eq!(
        issues(&second(r#""custom_id":"a""#, r#""custom_id":"""#)),
        one(2, "custom_id_format", Some("custom_id"))
    );
}

#[test]
fn unknown_provider_and_mismatch() {
    let got = issues(&second(r#""provider":"openai""#, r#""provider":"mistral""#));
    assert_eq!(got[0], (2, "unknown_provider", Some("provider".into())));
    assert_eq!(
        issues(&second(r#""model":"openai/gpt-4.1""#, r#""model":"anthropic/claude-4.5-sonnet""#)),
        one(2, "provider_model_mismatch", Some("body.model"))
    );
    assert_eq!(
        issues(&second(r#""model":"openai/gpt-4.1""#, r#""model":"gpt-4.1""#)),
        one(2, "provider_model_mismatch", Some("body.model"))
    );
    // The provider set is open: an allowed extra provider passes.
    let mut opts = Options::default();
    opts.providers.push("gemini".into());
    let gem = OK_OPENAI.replace("openai", "gemini");
    assert!(issues_with(format!("{gem}\n").as_bytes(), &opts).is_empty());
}

#[test]
fn method_and_urls() {
    assert_eq!(issues(&second(r#""method":"POST""#, r#""method":"GET""#)), one(2, "method_not_post", Some("method")));
    assert_eq!(
        issues(&second(r#""url":"/v1/chat/completions""#, r#""url":"/v1/foo""#)),
        one(2, "unsupported_url", Some("url"))
    );
    let emb = r#"{"custom_id":"e","provider":"openai","method":"POST","url":"/v1/embeddings","body":{"model":"openai/text-embedding-3-small","input":"x"}}"#;
    assert_eq!(issues(&format!("{OK_OPENAI}\n{OK_ANTHROPIC}\n{emb}\n")), one(3, "url_mismatch", Some("url")));
    // The odd one out is reported, whichever line it is on.
    assert_eq!(issues(&format!("{emb}\n{OK_OPENAI}\n{OK_ANTHROPIC}\n")), one(1, "url_mismatch", Some("url")));
}

#[test]
fn embeddings_rules() {
    let emb = r#"{"custom_id":"e","provider":"openai","method":"POST","url":"/v1/embeddings","body":{"model":"openai/text-embedding-3-small","input":"x"}}"#;
    assert!(issues(&format!("{emb}\n")).is_empty());
    assert_eq!(
        issues(&format!("{}\n", emb.replace(r#","input":"x""#, ""))),
        one(1, "missing_field", Some("body.input"))
    );
    assert_eq!(
        issues(&format!("{}\n", emb.replace(r#""input":"x""#, r#""input":[]"#))),
        one(1, "empty_input", Some("body.input"))
    );
    let anth = r#"{"custom_id":"e","provider":"anthropic","method":"POST","url":"/v1/embeddings","body":{"model":"anthropic/x","input":"x"}}"#;
    assert_eq!(issues(&format!("{anth}\n")), one(1, "unsupported_endpoint", Some("url")));
}

#[test]
fn chat_rules() {
    assert_eq!(
        issues(&second(r#""messages":[{"role":"user","content":"hi"}]"#, r#""messages":[]"#)),
        one(2, "empty_messages", Some("body.messages"))
    );
    let three =
        r#""messages":[{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"robot","content":"x"}]"#;
    assert_eq!(
        issues(&second(r#""messages":[{"role":"user","content":"hi"}]"#, three)),
        one(2, "invalid_role", Some("body.messages[2].role"))
    );
    let missing = OK_ANTHROPIC.replace(r#","max_tokens":10"#, "");
    assert_eq!(issues(&format!("{missing}\n")), one(1, "missing_max_tokens", Some("body.max_tokens")));
    // An assistant turn may carry null content (tool calls).
    let tool = r#""messages":[{"role":"user","content":"u"},{"role":"assistant","content":null,"tool_calls":[]}]"#;
    assert!(issues(&second(r#""messages":[{"role":"user","content":"hi"}]"#, tool)).is_empty());
}

#[test]
fn limits_are_reported_once_at_the_crossing_line() {
    let opts = Options { limits: Limits { max_requests: 3, ..Limits::default() }, ..Options::default() };
    let lines: Vec<String> = (0..5).map(|i| OK_OPENAI.replace(r#""a""#, &format!("\"id{i}\""))).collect();
    let text = format!("{}\n\n{}\n{}\n{}\n{}\n", lines[0], lines[1], lines[2], lines[3], lines[4]);
    assert_eq!(issues_with(text.as_bytes(), &opts), one(5, "too_many_requests", None));

    let mut opts = Options::default();
    let len = OK_OPENAI.len() as u64 + 1;
    opts.limits = Limits { max_bytes: len * 2 + 5, ..Limits::default() };
    assert_eq!(issues_with(text.as_bytes(), &opts), one(4, "file_too_large", None));
}

#[test]
fn line_too_large_within_a_block_and_streaming() {
    for max_line in [50u64, 10_000] {
        let mut opts = Options::default();
        opts.limits.max_line_bytes = max_line;
        opts.block_size = 64;
        let big = OK_OPENAI.replace("hi", &"x".repeat(20_000));
        let text = format!("{OK_ANTHROPIC}\n{big}\n{OK_OPENAI}\n");
        let mut got = issues_with(text.as_bytes(), &opts);
        if max_line == 50 {
            // The short limit also catches the other two lines.
            assert_eq!(got.len(), 3);
            got.retain(|i| i.0 == 2);
        }
        assert_eq!(got, one(2, "line_too_large", None), "max_line {max_line}");
    }
}

#[test]
fn every_problem_on_a_line_is_reported() {
    let bad = r#"{"custom_id":"x y","provider":"anthropic","method":"GET","url":"/v1/chat/completions","body":{"model":"openai/gpt-4.1","messages":[{"role":"bot","content":1}]}}"#;
    let mut codes: Vec<_> = issues(&format!("{bad}\n")).into_iter().map(|i| i.1).collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            "custom_id_format",
            "invalid_role",
            "invalid_type",
            "method_not_post",
            "missing_max_tokens",
            "provider_model_mismatch"
        ]
    );
}

#[test]
fn hostile_inputs_give_reports() {
    let opts = Options::default();
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0u8; 10_000],
        (0..=255u8).cycle().take(100_000).collect(),
        "[".repeat(1_000_000).into_bytes(),
        format!("{{\"a\":{}}}\n", "{\"a\":".repeat(10_000)).into_bytes(),
        b"\xEF\xBB\xBF".to_vec(),
        b"\n\n\r\n".to_vec(),
    ];
    for (i, c) in cases.iter().enumerate() {
        let r = validate_bytes(c, &opts);
        assert_eq!(r.total_bytes, c.len() as u64, "case {i}");
        if i == 0 || i >= 5 {
            assert!(r.is_ok(), "case {i}: {:?}", r.issues);
            assert_eq!(r.num_requests, 0);
        } else {
            assert!(!r.is_ok(), "case {i}");
        }
    }
}

#[test]
fn issue_details_are_capped_but_all_counted() {
    let mut opts = Options::default();
    opts.limits.max_issues = 10;
    let text = "nope\n".repeat(1000);
    let r = validate_bytes(text.as_bytes(), &opts);
    assert_eq!(r.issues.len(), 10);
    assert_eq!(r.total_issues(), 1000);
    assert!(r.truncated());
    assert_eq!(r.issues[9].line, 10);
}

#[test]
fn parallel_and_sequential_agree() {
    let mut text = String::new();
    for i in 0..5000 {
        let line = match i % 7 {
            0 => "{bad json".to_string(),
            1 => OK_OPENAI.to_string(), // duplicates of "a"
            2 => OK_ANTHROPIC.replace(r#","max_tokens":10"#, ""),
            _ => OK_OPENAI.replace(r#""a""#, &format!("\"id{i}\"")),
        };
        text.push_str(&line);
        text.push('\n');
    }
    let mut seq = Options { threads: 1, block_size: 777, ..Options::default() };
    let a = validate_bytes(text.as_bytes(), &seq);
    seq.threads = 4;
    let b = validate_bytes(text.as_bytes(), &seq);
    assert_eq!(a, b);
    assert_eq!(a.issue_counts[&Code::InvalidJson], 715);
    // ids "a" (715 lines) and "b" (714 lines) repeat: 714 + 713 duplicates.
    assert_eq!(a.issue_counts[&Code::DuplicateCustomId], 1427);
}

#[test]
fn sampling_parameters() {
    let with =
        |params: &str| issues(&second(r#""model":"openai/gpt-4.1""#, &format!(r#""model":"openai/gpt-4.1",{params}"#)));
    // Good values, and null (the default) for each.
    let good = r#""temperature":0.7,"top_p":1,"presence_penalty":-2,"frequency_penalty":1.5,"n":2,"seed":-7,"max_completion_tokens":50,"stop":["END","\n"]"#;
    assert!(with(good).is_empty(), "{:?}", with(good));
    assert!(with(r#""temperature":null,"n":null,"stop":null,"seed":null"#).is_empty());
    assert!(with(r#""stop":"END""#).is_empty());
    // Wrong types and values, each by field.
    for (params, code, path) in [
        (r#""temperature":"hot""#, "invalid_type", "body.temperature"),
        (r#""temperature":2.5"#, "invalid_value", "body.temperature"),
        (r#""top_p":-0.1"#, "invalid_value", "body.top_p"),
        (r#""frequency_penalty":3"#, "invalid_value", "body.frequency_penalty"),
        (r#""n":3.5"#, "invalid_value", "body.n"),
        (r#""n":0"#, "invalid_value", "body.n"),
        (r#""max_completion_tokens":"10""#, "invalid_type", "body.max_completion_tokens"),
        (r#""seed":1.5"#, "invalid_value", "body.seed"),
        (r#""stop":5"#, "invalid_type", "body.stop"),
        (r#""stop":["a",1]"#, "invalid_type", "body.stop[1]"),
    ] {
        assert_eq!(with(params), one(2, code, Some(path)), "{params}");
    }
}

#[test]
fn openai_format_lines_say_how_to_convert() {
    // OpenAI's own batch format: no provider, a bare model name. One issue, with the fix.
    let openai_line = OK_OPENAI.replacen(r#""provider":"openai","#, "", 1).replacen("openai/gpt-4.1", "gpt-4.1", 1);
    let line = format!("{OK_ANTHROPIC}\n{openai_line}\n");
    let r = validate_bytes(line.as_bytes(), &Options::default());
    assert_eq!(r.issues.len(), 1, "{:?}", r.issues);
    let issue = &r.issues[0];
    assert_eq!((issue.line, issue.code.as_str(), issue.path.as_deref()), (2, "missing_field", Some("provider")));
    assert!(issue.message.contains("OpenAI-format"), "{}", issue.message);
    assert!(issue.message.contains(r#""openai/gpt-4.1""#), "{}", issue.message);
    assert!(issue.message.contains("fastrouter-batch convert FILE --provider openai -o OUT"), "{}", issue.message);
    // A Claude model is guessed as Anthropic's.
    let claude = line.replace("gpt-4.1", "claude-4.5-sonnet");
    let r = validate_bytes(claude.as_bytes(), &Options::default());
    assert!(r.issues.iter().any(|i| i.message.contains("--provider anthropic")), "{:?}", r.issues);
    // No provider but a prefixed model: only the plain missing field.
    let prefixed = OK_OPENAI.replacen(r#""provider":"openai","#, "", 1);
    let r = validate_bytes(prefixed.as_bytes(), &Options::default());
    assert_eq!(r.issues.len(), 1);
    assert!(!r.issues[0].message.contains("convert"), "{}", r.issues[0].message);
}
