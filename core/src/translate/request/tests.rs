use serde_json::{json, Value};

use super::*;
use crate::translate::params::PARAMS;

fn body(v: Value) -> Map<String, Value> {
    v.as_object().expect("an object").clone()
}

fn ok(v: Value) -> Value {
    match to_anthropic(&body(v), &SamplingTable::default()) {
        Ok(m) => Value::Object(m),
        Err(r) => panic!("refused: {r:?}"),
    }
}

/// (path, code) of each refusal.
fn refused(v: Value) -> Vec<(String, &'static str)> {
    refusals(&body(v), &SamplingTable::default()).into_iter().map(|r| (r.path, r.code.as_str())).collect()
}

fn with(extra: Value) -> Value {
    let mut b = json!({"model": "anthropic/claude-4.5-sonnet", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

const WEATHER: &str = r#"{"type": "function", "function": {"name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#;

fn weather() -> Value {
    serde_json::from_str(WEATHER).unwrap()
}

#[test]
fn plain_chat_keeps_strings_and_moves_system_and_developer() {
    let out = ok(json!({
        "model": "anthropic/claude-4.5-sonnet", "max_completion_tokens": 50, "stop": "END", "user": "u-1",
        "seed": 3, "metadata": {"k": "v"}, "n": 1, "stream": false, "temperature": null,
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Bonjour"}, {"role": "user", "content": "Bye"}]}));
    assert_eq!(
        out,
        json!({
        "model": "claude-4.5-sonnet", "max_tokens": 50, "system": "Be terse.\n\nAnswer in French.",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Bonjour"}, {"role": "user", "content": "Bye"}],
        "stop_sequences": ["END"], "metadata": {"user_id": "u-1"}})
    );
}

#[test]
fn images_become_image_blocks() {
    let out = ok(with(json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "high"}}]}]})));
    assert_eq!(
        out["messages"][0]["content"],
        json!([
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}])
    );
}

#[test]
fn tools_and_each_tool_choice() {
    let tools = json!([weather(), {"type": "function", "function": {"name": "noop"}}]);
    let out = ok(with(json!({"tools": tools})));
    assert_eq!(
        out["tools"],
        json!([
        {"name": "get_weather", "description": "Weather in a city",
         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
        {"name": "noop", "input_schema": {"properties": {}, "type": "object"}}])
    );
    assert!(out.get("tool_choice").is_none());
    for (choice, want) in [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (json!("required"), json!({"type": "any"})),
        (json!({"type": "function", "function": {"name": "noop"}}), json!({"type": "tool", "name": "noop"})),
    ] {
        assert_eq!(ok(with(json!({"tools": tools, "tool_choice": choice})))["tool_choice"], want);
    }
    let serial = ok(with(json!({"tools": tools, "parallel_tool_calls": false})));
    assert_eq!(serial["tool_choice"], json!({"type": "auto", "disable_parallel_tool_use": true}));
    let named = ok(with(json!({"tools": tools, "parallel_tool_calls": false, "tool_choice": "required"})));
    assert_eq!(named["tool_choice"], json!({"type": "any", "disable_parallel_tool_use": true}));
    let strict = ok(with(
        json!({"tools": [{"type": "function", "function": {"name": "s", "strict": true, "parameters": {"type": "object", "properties": {}, "additionalProperties": false}}}]}),
    ));
    assert_eq!(strict["tools"][0]["strict"], true);
    // Without tools, auto and none ask for nothing; the others make no sense.
    assert!(ok(with(json!({"tool_choice": "none", "parallel_tool_calls": false}))).get("tool_choice").is_none());
    assert_eq!(refused(with(json!({"tool_choice": "required"}))), [("body.tool_choice".into(), "invalid_value")]);
}

#[test]
fn tool_shapes_are_checked() {
    assert_eq!(
        refused(with(json!({"tools": [{"type": "function", "function": {"name": "has space"}}]}))),
        [("body.tools[0].function.name".into(), "invalid_value")]
    );
    assert_eq!(
        refused(with(json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}))),
        [("body.tools[0].function.parameters".into(), "invalid_type")]
    );
    assert_eq!(
        refused(with(
            json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}]})
        )),
        [("body.tools[0].function.parameters.type".into(), "invalid_value")]
    );
    assert_eq!(
        refused(with(json!({"tools": [weather(), weather()]}))),
        [("body.tools[1].function.name".into(), "invalid_value")]
    );
    assert_eq!(
        refused(with(json!({"tools": [{"type": "custom", "custom": {"name": "c"}}]}))),
        [("body.tools[0]".into(), "unsupported_parameter")]
    );
    assert_eq!(
        refused(with(
            json!({"tools": [weather()], "tool_choice": {"type": "function", "function": {"name": "other"}}})
        )),
        [("body.tool_choice.function.name".into(), "invalid_value")]
    );
    assert_eq!(
        refused(with(json!({"tools": [weather()], "tool_choice": {"type": "allowed_tools", "allowed_tools": {}}}))),
        [("body.tool_choice".into(), "unsupported_parameter")]
    );
}

fn round_trip() -> Value {
    with(json!({"tools": [weather()], "messages": [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
        {"role": "user", "content": "Which is warmer?"}]}))
}

#[test]
fn a_tool_round_trip_becomes_tool_use_and_merged_tool_results() {
    let out = ok(round_trip());
    assert_eq!(
        out["messages"],
        json!([
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
            {"type": "text", "text": "Which is warmer?"}]}])
    );
    // Text beside tool calls is kept, first.
    let mut b = round_trip();
    b["messages"][1]["content"] = json!("Let me look.");
    assert_eq!(ok(b)["messages"][1]["content"][0], json!({"type": "text", "text": "Let me look."}));
}

#[test]
fn broken_round_trips_are_refused() {
    let mut b = round_trip();
    b["messages"][3]["tool_call_id"] = json!("call_9");
    assert_eq!(
        refused(b),
        [
            ("body.messages[3].tool_call_id".into(), "invalid_value"),
            ("body.messages[1].tool_calls[1]".into(), "invalid_value")
        ]
    );
    let mut b = round_trip();
    b["messages"][1]["tool_calls"][0]["function"]["arguments"] = json!("{not json");
    assert_eq!(refused(b)[0], ("body.messages[1].tool_calls[0].function.arguments".into(), "invalid_value"));
    let mut b = round_trip();
    b["messages"][1]["tool_calls"][0]["id"] = json!("call 1");
    b["messages"][2]["tool_call_id"] = json!("call 1");
    assert_eq!(refused(b), [("body.messages[1].tool_calls[0].id".into(), "invalid_value")]);
}

#[test]
fn structured_output() {
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"], "additionalProperties": false});
    let out = ok(with(
        json!({"response_format": {"type": "json_schema", "json_schema": {"name": "a", "strict": true, "schema": schema}}}),
    ));
    assert_eq!(out["output_config"], json!({"format": {"type": "json_schema", "schema": schema}}));
    assert!(ok(with(json!({"response_format": {"type": "text"}}))).get("output_config").is_none());
    assert_eq!(
        refused(with(json!({"response_format": {"type": "json_object"}}))),
        [("body.response_format".into(), "unsupported_parameter")]
    );
}

#[test]
fn documents_and_refused_content() {
    let out = ok(with(json!({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "r.pdf"}},
        {"type": "text", "text": "Summarise"}]}]})));
    assert_eq!(out["messages"][0]["content"][0]["type"], "document");
    assert_eq!(
        refused(with(
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}]})
        )),
        [("body.messages[0].content[0]".into(), "unsupported_content")]
    );
    assert_eq!(
        refused(with(json!({"messages": [{"role": "user", "name": "ann", "content": "hi"}]}))),
        [("body.messages[0].name".into(), "unsupported_parameter")]
    );
    assert_eq!(
        refused(with(json!({"messages": [{"role": "user", "content": ""}]}))),
        [("body.messages[0].content".into(), "invalid_value")]
    );
    assert_eq!(
        refused(with(json!({"messages": [{"role": "system", "content": "only"}]}))),
        [("body.messages".into(), "empty_messages")]
    );
    assert_eq!(
        refused(with(json!({"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b "}]}))),
        [("body.messages[1].content".into(), "invalid_value")]
    );
    // A final assistant message is a prefill.
    let prefill = ok(with(
        json!({"messages": [{"role": "user", "content": "JSON please"}, {"role": "assistant", "content": "{"}]}),
    ));
    assert_eq!(prefill["messages"][1], json!({"role": "assistant", "content": "{"}));
}

#[test]
fn every_refused_parameter_is_refused_and_every_dropped_one_left_out() {
    let sample = |name: &str| match name {
        "n" => json!(2),
        "stream" | "logprobs" => json!(true),
        "logit_bias" => json!({"50256": -100}),
        "modalities" => json!(["text", "audio"]),
        "top_logprobs" => json!(3),
        "functions" => json!([{"name": "f"}]),
        _ => json!("x"),
    };
    for p in PARAMS {
        let mut b = with(json!({}));
        match p.fate {
            Fate::Refused => {
                b[p.name] = sample(p.name);
                assert_eq!(refused(b), [(format!("body.{}", p.name), "unsupported_parameter")], "{}", p.name);
            }
            Fate::Dropped => {
                b[p.name] = json!(1);
                let out = ok(b);
                assert!(out.get(p.name).is_none(), "{} was sent", p.name);
            }
            Fate::Translated => {}
        }
    }
    for (name, nothing) in [
        ("n", json!(1)),
        ("stream", json!(false)),
        ("logprobs", json!(false)),
        ("logit_bias", json!({})),
        ("modalities", json!(["text"])),
    ] {
        let mut b = with(json!({}));
        b[name] = nothing;
        assert!(ok(b).get(name).is_none(), "{name}");
    }
    assert_eq!(
        refused(with(json!({"thinking": {"type": "enabled"}}))),
        [("body.thinking".into(), "unsupported_parameter")]
    );
}

#[test]
fn sampling_follows_the_model_table() {
    assert_eq!(ok(with(json!({"temperature": 0.2})))["temperature"], json!(0.2));
    assert_eq!(
        refused(with(json!({"temperature": 0.2, "top_p": 0.9}))),
        [("body.top_p".into(), "unsupported_parameter")]
    );
    assert_eq!(refused(with(json!({"temperature": 1.5}))), [("body.temperature".into(), "invalid_value")]);
    let old = ok(with(json!({"model": "anthropic/claude-3-5-haiku", "temperature": 0.2, "top_p": 0.9, "top_k": 5})));
    assert_eq!(
        (old["temperature"].clone(), old["top_p"].clone(), old["top_k"].clone()),
        (json!(0.2), json!(0.9), json!(5))
    );
    assert_eq!(
        refused(with(json!({"model": "anthropic/claude-opus-4-7", "temperature": 0.2}))),
        [("body.temperature".into(), "unsupported_parameter")]
    );
    let default_t = ok(with(json!({"model": "anthropic/claude-opus-4-7", "temperature": 1})));
    assert!(default_t.get("temperature").is_none());
    let mine = SamplingTable::with_entries([("claude-opus-4-7", crate::translate::Sampling::Either)]);
    let b = body(with(json!({"model": "anthropic/claude-opus-4-7", "temperature": 0.3})));
    assert_eq!(to_anthropic(&b, &mine).unwrap()["temperature"], json!(0.3));
}

#[test]
fn max_tokens_user_and_service_tier() {
    assert_eq!(
        refused(json!({"model": "anthropic/c", "messages": [{"role": "user", "content": "x"}]})),
        [("body.max_tokens".into(), "missing_max_tokens")]
    );
    assert_eq!(
        refused(with(json!({"max_completion_tokens": 20}))),
        [("body.max_completion_tokens".into(), "invalid_value")]
    );
    assert_eq!(ok(with(json!({"max_completion_tokens": 10})))["max_tokens"], 10);
    assert_eq!(ok(with(json!({"safety_identifier": "h1", "user": "h1"})))["metadata"], json!({"user_id": "h1"}));
    assert_eq!(
        refused(with(json!({"safety_identifier": "h1", "user": "h2"}))),
        [("body.user".into(), "invalid_value")]
    );
    assert_eq!(ok(with(json!({"service_tier": "default"})))["service_tier"], "standard_only");
    assert!(ok(with(json!({"service_tier": "auto"}))).get("service_tier").is_none());
    assert_eq!(refused(with(json!({"service_tier": "flex"}))), [("body.service_tier".into(), "unsupported_parameter")]);
}
