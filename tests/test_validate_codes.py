"""Every validation code from the Python surface, each from a minimal failing line placed
after a valid line, with its exact (line, code, path). (Limits: test_validate_limits.py;
the report's API: test_validate_report.py.)

Each case runs twice (fixture `validate_as`): from a file path and from bytes in memory.
"""

from __future__ import annotations

import pytest

import fastrouter_batch as fb
from batchlines import OK_ANTHROPIC, OK_EMBED, OK_OPENAI, jsonl, replaced, triples, with_id

MSG_HI = '{"role":"user","content":"hi"}'


def second(old: str, new: str) -> bytes:
    """A valid Anthropic line, then the OpenAI line with `old` replaced by `new` (line 2)."""
    return jsonl(OK_ANTHROPIC, replaced(OK_OPENAI, old, new))


# (id, file bytes, Limits kwargs or None, expected [(line, code, path)])
CASES = [
    ("invalid_json", jsonl(OK_OPENAI, '{"custom_id": '), None, [(2, "invalid_json", None)]),
    ("invalid_json_trailing_garbage", jsonl(OK_ANTHROPIC, OK_OPENAI + " x"), None, [(2, "invalid_json", None)]),
    ("invalid_utf8", jsonl(OK_OPENAI, b'{"custom_id":"\xff"}'), None, [(2, "invalid_utf8", None)]),
    ("not_an_object", jsonl(OK_OPENAI, "[1,2]"), None, [(2, "not_an_object", None)]),
    ("not_an_object_string", jsonl(OK_OPENAI, '"a line"'), None, [(2, "not_an_object", None)]),
    ("missing_method", second('"method":"POST",', ""), None, [(2, "missing_field", "method")]),
    ("missing_custom_id", second('"custom_id":"a",', ""), None, [(2, "missing_field", "custom_id")]),
    (
        "missing_body",
        second(',"body":{"model":"openai/gpt-4.1","messages":[' + MSG_HI + "]}", ""),
        None,
        [(2, "missing_field", "body")],
    ),
    ("missing_model", second('"model":"openai/gpt-4.1",', ""), None, [(2, "missing_field", "body.model")]),
    ("missing_messages", second(',"messages":[' + MSG_HI + "]", ""), None, [(2, "missing_field", "body.messages")]),
    ("missing_role", second(MSG_HI, '{"content":"hi"}'), None, [(2, "missing_field", "body.messages[0].role")]),
    ("missing_content", second(MSG_HI, '{"role":"user"}'), None, [(2, "missing_field", "body.messages[0].content")]),
    (
        "missing_part_type",
        second('"content":"hi"', '"content":[{"type":"text","text":"x"},{"text":"y"}]'),
        None,
        [(2, "missing_field", "body.messages[0].content[1].type")],
    ),
    (
        "missing_input",
        jsonl(OK_EMBED, replaced(with_id(OK_EMBED, "e2"), ',"input":"x"', "")),
        None,
        [(2, "missing_field", "body.input")],
    ),
    ("invalid_type_custom_id", second('"custom_id":"a"', '"custom_id":7'), None, [(2, "invalid_type", "custom_id")]),
    (
        "invalid_type_provider",
        second('"provider":"openai"', '"provider":null'),
        None,
        [(2, "invalid_type", "provider")],
    ),
    ("invalid_type_body", second('"body":{', '"body":"x","b":{'), None, [(2, "invalid_type", "body")]),
    (
        "invalid_type_messages",
        second('"messages":[' + MSG_HI + "]", '"messages":{}'),
        None,
        [(2, "invalid_type", "body.messages")],
    ),
    ("invalid_type_message", second(MSG_HI, "1"), None, [(2, "invalid_type", "body.messages[0]")]),
    (
        "invalid_type_content",
        second('"content":"hi"', '"content":5'),
        None,
        [(2, "invalid_type", "body.messages[0].content")],
    ),
    (
        "invalid_type_part",
        second('"content":"hi"', '"content":["x"]'),
        None,
        [(2, "invalid_type", "body.messages[0].content[0]")],
    ),
    (
        "invalid_type_max_tokens",
        second('"messages":[', '"max_tokens":"9","messages":['),
        None,
        [(2, "invalid_type", "body.max_tokens")],
    ),
    (
        "invalid_value_max_tokens_zero",
        second('"messages":[', '"max_tokens":0,"messages":['),
        None,
        [(2, "invalid_value", "body.max_tokens")],
    ),
    (
        "invalid_value_max_tokens_fraction",
        second('"messages":[', '"max_tokens":1.5,"messages":['),
        None,
        [(2, "invalid_value", "body.max_tokens")],
    ),
    (
        "invalid_value_max_tokens_negative",
        second('"messages":[', '"max_tokens":-3,"messages":['),
        None,
        [(2, "invalid_value", "body.max_tokens")],
    ),
    (
        "custom_id_format_anthropic_space",
        jsonl(OK_OPENAI, with_id(OK_ANTHROPIC, "has space")),
        None,
        [(2, "custom_id_format", "custom_id")],
    ),
    (
        "custom_id_format_anthropic_65_chars",
        jsonl(OK_OPENAI, with_id(OK_ANTHROPIC, "x" * 65)),
        None,
        [(2, "custom_id_format", "custom_id")],
    ),
    (
        "custom_id_format_empty",
        second('"custom_id":"a"', '"custom_id":""'),
        None,
        [(2, "custom_id_format", "custom_id")],
    ),
    (
        "unknown_provider",
        second('"provider":"openai"', '"provider":"mistral"').replace(b"openai/gpt-4.1", b"mistral/large"),
        None,
        [(2, "unknown_provider", "provider")],
    ),
    (
        "provider_model_mismatch_other_prefix",
        second('"model":"openai/gpt-4.1"', '"model":"anthropic/claude-4.5-sonnet"'),
        None,
        [(2, "provider_model_mismatch", "body.model")],
    ),
    (
        "provider_model_mismatch_no_prefix",
        second('"model":"openai/gpt-4.1"', '"model":"gpt-4.1"'),
        None,
        [(2, "provider_model_mismatch", "body.model")],
    ),
    ("method_not_post", second('"method":"POST"', '"method":"GET"'), None, [(2, "method_not_post", "method")]),
    (
        "unsupported_url",
        second('"url":"/v1/chat/completions"', '"url":"/v1/foo"'),
        None,
        [(2, "unsupported_url", "url")],
    ),
    ("url_mismatch_last", jsonl(OK_OPENAI, OK_ANTHROPIC, OK_EMBED), None, [(3, "url_mismatch", "url")]),
    ("url_mismatch_first", jsonl(OK_EMBED, OK_OPENAI, OK_ANTHROPIC), None, [(1, "url_mismatch", "url")]),
    (
        "unsupported_endpoint",
        jsonl(
            OK_EMBED,
            replaced(
                replaced(with_id(OK_EMBED, "e2"), '"provider":"openai"', '"provider":"anthropic"'),
                '"openai/text-embedding-3-small"',
                '"anthropic/x"',
            ),
        ),
        None,
        [(2, "unsupported_endpoint", "url")],
    ),
    (
        "empty_messages",
        second('"messages":[' + MSG_HI + "]", '"messages":[]'),
        None,
        [(2, "empty_messages", "body.messages")],
    ),
    (
        "invalid_role",
        second(MSG_HI, '{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"robot","content":"x"}'),
        None,
        [(2, "invalid_role", "body.messages[2].role")],
    ),
    (
        "missing_max_tokens",
        jsonl(OK_OPENAI, replaced(OK_ANTHROPIC, ',"max_tokens":10', "")),
        None,
        [(2, "missing_max_tokens", "body.max_tokens")],
    ),
    (
        "empty_input_list",
        jsonl(OK_EMBED, replaced(with_id(OK_EMBED, "e2"), '"input":"x"', '"input":[]')),
        None,
        [(2, "empty_input", "body.input")],
    ),
    (
        "empty_input_string",
        jsonl(OK_EMBED, replaced(with_id(OK_EMBED, "e2"), '"input":"x"', '"input":""')),
        None,
        [(2, "empty_input", "body.input")],
    ),
    (
        "unsupported_parameter",
        jsonl(OK_OPENAI, replaced(OK_ANTHROPIC, '"max_tokens":10', '"max_tokens":10,"n":2')),
        None,
        [(2, "unsupported_parameter", "body.n")],
    ),
    (
        "unsupported_content",
        jsonl(
            OK_OPENAI,
            replaced(
                OK_ANTHROPIC,
                '"content":"hi"',
                '"content":[{"type":"input_audio","input_audio":{"data":"AA","format":"wav"}}]',
            ),
        ),
        None,
        [(2, "unsupported_content", "body.messages[0].content[0]")],
    ),
]


@pytest.mark.parametrize(("data", "limits", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_code_has_exact_line_code_and_path(validate_as, data, limits, expected):
    report = validate_as(data, limits=fb.Limits(**limits) if limits else None)
    assert triples(report) == expected
    assert report.ok is False
    assert report.issue_counts == {expected[0][1]: len(expected)}


def test_valid_lines_used_by_the_cases_are_valid(validate_as):
    for text in (jsonl(OK_OPENAI, OK_ANTHROPIC), jsonl(OK_EMBED)):
        report = validate_as(text)
        assert report.ok, report.issues
        assert report.issues == []


def test_every_code_string_is_covered():
    codes = {e[1] for c in CASES for e in c[3]}
    assert codes | {"duplicate_custom_id", "too_many_requests", "file_too_large", "line_too_large"} == {
        "invalid_json",
        "invalid_utf8",
        "not_an_object",
        "missing_field",
        "invalid_type",
        "invalid_value",
        "duplicate_custom_id",
        "custom_id_format",
        "unknown_provider",
        "provider_model_mismatch",
        "method_not_post",
        "unsupported_url",
        "url_mismatch",
        "unsupported_endpoint",
        "empty_messages",
        "invalid_role",
        "missing_max_tokens",
        "empty_input",
        "too_many_requests",
        "file_too_large",
        "line_too_large",
        "unsupported_parameter",
        "unsupported_content",
    }


def test_openai_lines_are_not_held_to_anthropics_custom_id_rule(validate_as):
    report = validate_as(second('"custom_id":"a"', '"custom_id":"has space"'))
    assert report.ok, report.issues


def test_assistant_turn_may_have_null_content(validate_as):
    tool = '{"role":"user","content":"u"},{"role":"assistant","content":null,"tool_calls":[]}'
    assert validate_as(second(MSG_HI, tool)).ok


def test_duplicate_custom_id_names_both_lines(validate_as):
    report = validate_as(jsonl(OK_OPENAI, OK_ANTHROPIC, OK_OPENAI))
    assert triples(report) == [(3, "duplicate_custom_id", "custom_id")]
    message = report.issues[0].message
    assert "line 1" in message and "line 3" in message, message
    assert '"a"' in message


def test_duplicate_custom_id_compares_decoded_ids(validate_as):
    escaped = replaced(OK_OPENAI, '"custom_id":"a"', '"custom_id":"\\u0061"')
    report = validate_as(jsonl(OK_OPENAI, OK_ANTHROPIC, escaped))
    assert triples(report) == [(3, "duplicate_custom_id", "custom_id")]


def test_every_problem_on_one_line_is_reported(validate_as):
    bad = (
        '{"custom_id":"x y","provider":"anthropic","method":"GET","url":"/v1/chat/completions",'
        '"body":{"model":"openai/gpt-4.1","messages":[{"role":"bot","content":1}]}}'
    )
    report = validate_as(jsonl(OK_OPENAI, bad))
    assert sorted(triples(report)) == [
        (2, "custom_id_format", "custom_id"),
        (2, "invalid_role", "body.messages[0].role"),
        (2, "invalid_type", "body.messages[0].content"),
        (2, "method_not_post", "method"),
        (2, "missing_max_tokens", "body.max_tokens"),
        (2, "provider_model_mismatch", "body.model"),
    ]
