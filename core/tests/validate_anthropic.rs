//! The validator reports, before upload, what the Anthropic translation would refuse: the
//! same refusals, by line and path, with stable codes.

use fastrouter_batch_core::translate::{Sampling, SamplingTable};
use fastrouter_batch_core::validate::{validate_bytes, Options};
use serde_json::{json, Value};

fn line(provider: &str, body: Value) -> String {
    json!({"custom_id": "c1", "provider": provider, "method": "POST", "url": "/v1/chat/completions", "body": body})
        .to_string()
}

fn anthropic(extra: Value) -> String {
    let mut body = json!({"model": "anthropic/claude-4.5-sonnet", "max_tokens": 10, "messages": [{"role": "user", "content": "hello there"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    line("anthropic", body)
}

fn issues_with(text: &str, opts: &Options) -> Vec<(String, &'static str)> {
    validate_bytes(text.as_bytes(), opts)
        .issues
        .into_iter()
        .map(|i| (i.path.unwrap_or_default(), i.code.as_str()))
        .collect()
}

fn issues(text: &str) -> Vec<(String, &'static str)> {
    issues_with(text, &Options::default())
}

fn one(path: &str, code: &'static str) -> Vec<(String, &'static str)> {
    vec![(path.to_owned(), code)]
}

#[test]
fn temperature_range_is_anthropics_and_reported_once() {
    assert_eq!(issues(&anthropic(json!({"temperature": 1.5}))), one("body.temperature", "invalid_value"));
    assert_eq!(issues(&anthropic(json!({"temperature": 2.5}))), one("body.temperature", "invalid_value"));
    assert!(issues(&anthropic(json!({"temperature": 0.7}))).is_empty());
    let openai = line(
        "openai",
        json!({"model": "openai/gpt-4.1", "temperature": 1.5, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(issues(&openai).is_empty());
}

#[test]
fn sampling_follows_the_model_table() {
    assert_eq!(
        issues(&anthropic(json!({"temperature": 0.2, "top_p": 0.9}))),
        one("body.top_p", "unsupported_parameter")
    );
    let new_model = json!({"model": "anthropic/claude-opus-4-7", "temperature": 0.2});
    assert_eq!(issues(&anthropic(new_model.clone())), one("body.temperature", "unsupported_parameter"));
    let message = &validate_bytes(anthropic(new_model.clone()).as_bytes(), &Options::default()).issues[0].message;
    assert!(message.contains("claude-opus-4-7") && message.contains("anthropic_sampling"), "{message}");
    let opts = Options {
        sampling: SamplingTable::with_entries([("claude-opus-4-7*", Sampling::Either)]),
        ..Options::default()
    };
    assert!(issues_with(&anthropic(new_model), &opts).is_empty());
    assert!(issues(&anthropic(
        json!({"model": "anthropic/claude-3-haiku", "temperature": 0.2, "top_p": 0.9, "top_k": 4})
    ))
    .is_empty());
}

#[test]
fn max_completion_tokens_stands_in_for_max_tokens() {
    let body = json!({"model": "anthropic/claude-4.5-sonnet", "max_completion_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    assert!(issues(&line("anthropic", body)).is_empty());
    let body = json!({"model": "anthropic/claude-4.5-sonnet", "max_tokens": null, "max_completion_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}]});
    assert!(issues(&line("anthropic", body)).is_empty(), "null is not given");
    let body = json!({"model": "anthropic/claude-4.5-sonnet", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(issues(&line("anthropic", body)), one("body.max_tokens", "missing_max_tokens"));
}

#[test]
fn refused_parameters_and_content_are_named() {
    assert_eq!(issues(&anthropic(json!({"n": 2}))), one("body.n", "unsupported_parameter"));
    assert!(issues(&anthropic(json!({"n": 1, "seed": 4, "stream": false}))).is_empty());
    assert_eq!(
        issues(&anthropic(json!({"response_format": {"type": "json_object"}}))),
        one("body.response_format", "unsupported_parameter")
    );
    assert_eq!(
        issues(&anthropic(json!({"logprobs": true, "top_logprobs": 2}))),
        vec![
            ("body.logprobs".to_owned(), "unsupported_parameter"),
            ("body.top_logprobs".to_owned(), "unsupported_parameter")
        ]
    );
    let audio = json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}]});
    assert_eq!(issues(&anthropic(audio)), one("body.messages[0].content[0]", "unsupported_content"));
    let blank = json!({"messages": [{"role": "user", "content": "  "}]});
    assert_eq!(issues(&anthropic(blank)), one("body.messages[0].content", "invalid_value"));
}

#[test]
fn tool_shapes_on_both_providers() {
    let tools = json!([{"type": "function", "function": {"name": "bad name", "parameters": {}}}]);
    assert_eq!(issues(&anthropic(json!({"tools": tools}))), one("body.tools[0].function.name", "invalid_value"));
    let openai = line(
        "openai",
        json!({"model": "openai/gpt-4.1", "tools": tools, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(issues(&openai), one("body.tools[0].function.name", "invalid_value"));
    let params = json!([{"type": "function", "function": {"name": "f", "parameters": []}}]);
    let openai = line(
        "openai",
        json!({"model": "openai/gpt-4.1", "tools": params, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert_eq!(issues(&openai), one("body.tools[0].function.parameters", "invalid_type"));
    // Custom tools are OpenAI's own: fine there, refused for Anthropic.
    let custom = json!([{"type": "custom", "custom": {"name": "c"}}]);
    let openai = line(
        "openai",
        json!({"model": "openai/gpt-4.1", "tools": custom, "messages": [{"role": "user", "content": "x"}]}),
    );
    assert!(issues(&openai).is_empty());
    assert_eq!(issues(&anthropic(json!({"tools": custom}))), one("body.tools[0]", "unsupported_parameter"));
}

/// Plain lines skip the full translation (for speed); they must get exactly what it says.
/// Adding `seed` (dropped, so it changes nothing) forces the full path on the same line.
#[test]
fn plain_lines_get_what_the_full_translation_says() {
    let models =
        ["anthropic/claude-4.5-sonnet", "anthropic/claude-3-haiku", "anthropic/claude-opus-4-7", "anthropic/claude-9"];
    let samplings = [
        json!({}),
        json!({"temperature": 0.3}),
        json!({"temperature": 1}),
        json!({"temperature": 1.4}),
        json!({"temperature": 3}),
        json!({"top_p": 0.5, "temperature": 0.5}),
        json!({"top_p": 1, "temperature": 0.5}),
        json!({"top_k": 5}),
        json!({"top_k": 5, "top_p": 0.2, "stop": ["x"]}),
    ];
    let conversations = [
        json!([{"role": "user", "content": "What is the capital of France?"}]),
        json!([{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello world"}]),
        json!([{"role": "user", "content": "question one"}, {"role": "assistant", "content": "answer one"}, {"role": "user", "content": "two"}]),
    ];
    let mut checked = 0;
    for model in models {
        for sampling in &samplings {
            for messages in &conversations {
                let mut body = json!({"model": model, "max_tokens": 20, "messages": messages});
                for (k, v) in sampling.as_object().unwrap() {
                    body[k] = v.clone();
                }
                let plain = issues(&line("anthropic", body.clone()));
                body["seed"] = json!(1);
                let full = issues(&line("anthropic", body.clone()));
                assert_eq!(plain, full, "{body}");
                checked += usize::from(!plain.is_empty());
            }
        }
    }
    assert!(checked > 20, "the cases must include refused ones ({checked})");
}

#[test]
fn a_model_of_another_provider_is_reported_alone() {
    let body = json!({"model": "openai/gpt-4.1", "max_tokens": 5, "temperature": 0.5, "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(issues(&line("anthropic", body)), one("body.model", "provider_model_mismatch"));
}
