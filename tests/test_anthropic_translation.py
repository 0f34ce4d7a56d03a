"""OpenAI ⇄ Anthropic translation, checked on the wire against the official SDKs' types.

Anthropic lines in OpenAI's chat format run through `LocalServer(provider="upstream")` to a
recording upstream (tests/test_engine_upstream.py's `RecordingUpstream`, real HTTP on
127.0.0.1). Every request that reached `/v1/messages` must pass the `anthropic` SDK's
`MessageCreateParamsNonStreaming` (tests/sdk_types.py: pydantic's `TypeAdapter`, every
message walked, no undeclared key), and say what the line asked. Scripted Anthropic replies
(each a valid `anthropic.types.Message`) for every documented `stop_reason`, tool use,
thinking and prompt caching must come back as bodies `openai`'s `ChatCompletion` parses with
warnings as errors. Lines the translation cannot carry are refused before anything runs.
"""

from __future__ import annotations

import json
import re
from typing import Any, get_type_hints

import anthropic
import pytest

import fastrouter_batch as fb
from engine_helpers import ROOT, Api, chat_line, to_jsonl
from sdk_types import SAMPLING, check_anthropic_request, parse_chat_completion
from test_engine_upstream import RecordingUpstream, anthropic_reply, engine, reply, run

SONNET = "anthropic/claude-4.5-sonnet"


@pytest.fixture
def upstream():
    up = RecordingUpstream()
    try:
        yield up
    finally:
        up.close()


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
LOOKUP = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg=="


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def round_trip(tail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ask → two tool calls (with text) → both results → `tail`."""
    return [
        user("What is the weather in Paris and Rome?"),
        {
            "role": "assistant",
            "content": "Let me check both.",
            "tool_calls": [
                {
                    "id": "call_paris",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_rome",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Rome", "unit": "c"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_paris", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "call_rome", "content": [{"type": "text", "text": "21C, cloudy"}]},
        *tail,
    ]


# name -> (body fields besides model and max_tokens, what the request must hold). Every case
# starts with a system message naming it, which is how its request is found upstream.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "system-and-developer": (
        {
            "messages": [
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                user("Hi"),
                {"role": "assistant", "content": "Bonjour"},
                user("Bye"),
            ]
        },
        {
            "system": "Answer in French.",
            "messages": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Bonjour"},
                {"role": "user", "content": "Bye"},
            ],
        },
    ),
    "images": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare these."},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg", "detail": "low"}},
                    ],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Compare these."},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                    ],
                }
            ]
        },
    ),
    "document": (
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "file",
                            "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "report.pdf"},
                        },
                        {"type": "text", "text": "Summarise the report."},
                    ],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "title": "report.pdf",
                            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        },
                        {"type": "text", "text": "Summarise the report."},
                    ],
                }
            ]
        },
    ),
    "stop-string": ({"messages": [user("Count")], "stop": "END"}, {"stop_sequences": ["END"]}),
    "stop-list": ({"messages": [user("Count")], "stop": ["A", "B"]}, {"stop_sequences": ["A", "B"]}),
    "tools-default": (
        {"messages": [user("Weather in Paris?")], "tools": [WEATHER, LOOKUP]},
        {
            "tools": [
                {
                    "name": "get_weather",
                    "description": "The weather in a city.",
                    "input_schema": WEATHER["function"]["parameters"],
                },
                {"name": "lookup", "input_schema": {"type": "object", "properties": {}}},
            ]
        },
    ),
    "tool-choice-auto": (
        {"messages": [user("Weather?")], "tools": [WEATHER], "tool_choice": "auto"},
        {"tool_choice": {"type": "auto"}},
    ),
    "tool-choice-none": (
        {"messages": [user("Weather?")], "tools": [WEATHER], "tool_choice": "none"},
        {"tool_choice": {"type": "none"}},
    ),
    "tool-choice-required": (
        {"messages": [user("Weather?")], "tools": [WEATHER], "tool_choice": "required"},
        {"tool_choice": {"type": "any"}},
    ),
    "tool-choice-named": (
        {
            "messages": [user("Weather?")],
            "tools": [WEATHER, LOOKUP],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        },
        {"tool_choice": {"type": "tool", "name": "lookup"}},
    ),
    "no-parallel-calls": (
        {"messages": [user("Weather?")], "tools": [WEATHER], "parallel_tool_calls": False},
        {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
    ),
    "tool-round-trip": (
        {"messages": round_trip([]), "tools": [WEATHER]},
        {
            "messages": [
                {"role": "user", "content": "What is the weather in Paris and Rome?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Let me check both."},
                        {"type": "tool_use", "id": "call_paris", "name": "get_weather", "input": {"city": "Paris"}},
                        {
                            "type": "tool_use",
                            "id": "call_rome",
                            "name": "get_weather",
                            "input": {"city": "Rome", "unit": "c"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "call_paris", "content": "18C, sunny"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "call_rome",
                            "content": [{"type": "text", "text": "21C, cloudy"}],
                        },
                    ],
                },
            ]
        },
    ),
    "tool-round-trip-and-question": (
        {"messages": round_trip([user("Which is warmer?")]), "tools": [WEATHER]},
        {},
    ),
    "structured-output": (
        {
            "messages": [user("Largest city of France?")],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "city", "strict": True, "schema": SCHEMA},
            },
        },
        {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
    ),
    "user-and-nulls": (
        {
            "messages": [user("Hi")],
            "user": "user-42",
            "temperature": None,
            "tools": None,
            "seed": 7,
            "metadata": {"team": "data"},
            "presence_penalty": 0.5,
            "n": 1,
            "stream": False,
        },
        {"metadata": {"user_id": "user-42"}},
    ),
    "max-completion-tokens": (
        {"messages": [user("Hi")], "max_tokens": None, "max_completion_tokens": 33},
        {"max_tokens": 33},
    ),
    "one-sampling-parameter": ({"messages": [user("Hi")], "temperature": 0.3}, {"temperature": 0.3}),
    "claude-3-samples-freely": (
        {
            "model": "anthropic/claude-3-5-haiku",
            "messages": [user("Hi")],
            "temperature": 0.3,
            "top_p": 0.8,
            "top_k": 20,
        },
        {"model": "claude-3-5-haiku", "temperature": 0.3, "top_p": 0.8, "top_k": 20},
    ),
    "prefill": (
        {"messages": [user("JSON please"), {"role": "assistant", "content": "{"}]},
        {"messages": [{"role": "user", "content": "JSON please"}, {"role": "assistant", "content": "{"}]},
    ),
}


def case_line(name: str, fields: dict[str, Any]) -> dict[str, Any]:
    fields = dict(fields)
    messages = [{"role": "system", "content": f"case {name}"}, *fields.pop("messages")]
    line = chat_line(name, "anthropic", fields.pop("model", SONNET), messages=messages)
    line["body"].update(fields)
    return line


def test_every_translated_request_passes_the_anthropic_sdk_types(upstream):
    lines = [case_line(name, fields) for name, (fields, _) in CASES.items()]
    with engine(upstream) as server:
        b, out, err = run(server, lines)
    assert b["status"] == "completed", b
    assert err == {}, err
    sent = {r.body["system"].split("\n\n")[0].removeprefix("case "): r.body for r in upstream.requests}
    assert sorted(sent) == sorted(CASES)
    for name, (_fields, expected) in CASES.items():
        body = sent[name]
        check_anthropic_request(body)
        for key, value in expected.items():
            if key == "system":
                assert body["system"] == f"case {name}\n\n{value}", name
            else:
                assert body[key] == value, (name, key, body.get(key))
        # Only parameters with an Anthropic meaning reach Anthropic, never as null.
        assert set(body) <= {
            "model",
            "max_tokens",
            "system",
            "messages",
            "stop_sequences",
            "tools",
            "tool_choice",
            "output_config",
            "metadata",
            *SAMPLING,
        }, (name, set(body))
        assert None not in body.values(), name
        if body["model"].startswith("claude-4"):
            assert not {"temperature", "top_p"} <= set(body), "Claude 4.x answers 400 to both"
        parse_chat_completion(out[name]["response"]["body"])


def test_tool_results_and_a_question_share_one_user_turn(upstream):
    fields, _ = CASES["tool-round-trip-and-question"]
    with engine(upstream) as server:
        run(server, [case_line("q", fields)])
    (rec,) = upstream.requests
    roles = [m["role"] for m in rec.body["messages"]]
    assert roles == ["user", "assistant", "user"]
    last = rec.body["messages"][-1]["content"]
    assert [b["type"] for b in last] == ["tool_result", "tool_result", "text"]
    assert last[-1]["text"] == "Which is warmer?"


def message(stop_reason: str, content: list[dict[str, Any]], **usage: int) -> dict[str, Any]:
    reply_ = anthropic_reply("claude-sonnet-4-5-20250929", "x", stop_reason, usage=(12, 7))
    reply_["content"] = content
    reply_["stop_sequence"] = "END" if stop_reason == "stop_sequence" else None
    reply_["usage"].update(usage)
    return reply_


TEXT = [{"type": "text", "text": "The answer."}]
CALLS = [
    {"type": "text", "text": "Checking."},
    {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
    {"type": "tool_use", "id": "toolu_01B", "name": "get_weather", "input": {"city": "Rome", "unit": "c"}},
]
THINKING = [
    {"type": "thinking", "thinking": "Let me think.", "signature": "sig"},
    {"type": "redacted_thinking", "data": "xx"},
    {"type": "text", "text": "Thought it through."},
]

# tag -> (Anthropic reply, finish_reason, content, tool calls as (id, name, input))
REPLIES: dict[str, tuple[dict[str, Any], str, str | None, list[tuple[str, str, dict]]]] = {
    "r-end-turn": (message("end_turn", TEXT), "stop", "The answer.", []),
    "r-max-tokens": (message("max_tokens", TEXT), "length", "The answer.", []),
    "r-stop-sequence": (message("stop_sequence", TEXT), "stop", "The answer.", []),
    "r-tool-use": (
        message("tool_use", CALLS),
        "tool_calls",
        "Checking.",
        [("toolu_01A", "get_weather", {"city": "Paris"}), ("toolu_01B", "get_weather", {"city": "Rome", "unit": "c"})],
    ),
    "r-tool-use-only": (
        message("tool_use", CALLS[1:2]),
        "tool_calls",
        None,
        [("toolu_01A", "get_weather", {"city": "Paris"})],
    ),
    "r-pause-turn": (message("pause_turn", TEXT), "stop", "The answer.", []),
    "r-refusal": (message("refusal", [{"type": "text", "text": "I can't"}]), "content_filter", "I can't", []),
    "r-context-window": (message("model_context_window_exceeded", TEXT), "length", "The answer.", []),
    "r-thinking": (message("end_turn", THINKING), "stop", "Thought it through.", []),
    "r-cached": (
        message("end_turn", TEXT, cache_read_input_tokens=100, cache_creation_input_tokens=30),
        "stop",
        "The answer.",
        [],
    ),
}


def test_every_reply_becomes_a_chat_completion(upstream):
    for tag, (msg, *_) in REPLIES.items():
        anthropic.types.Message.model_validate(msg)  # the scripted replies are real ones
        upstream.script[tag] = [reply(200, msg)]
    lines = [chat_line(tag, "anthropic", content=tag, tools=[WEATHER]) for tag in REPLIES]
    with engine(upstream) as server:
        b, out, err = run(server, lines)
    assert b["status"] == "completed" and err == {}
    for tag, (_, finish, content, calls) in REPLIES.items():
        c = parse_chat_completion(out[tag]["response"]["body"])
        choice = c.choices[0]
        assert choice.finish_reason == finish, tag
        assert choice.message.content == content, tag
        got = [(t.id, t.function.name, json.loads(t.function.arguments)) for t in choice.message.tool_calls or []]
        assert got == calls, tag
        assert all(t.type == "function" for t in choice.message.tool_calls or [])
        assert c.model == "claude-sonnet-4-5-20250929"
    usage = parse_chat_completion(out["r-cached"]["response"]["body"]).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (142, 7, 149)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 100
    results = fb.read_results(b"".join(json.dumps(out[t]).encode() + b"\n" for t in REPLIES))
    assert (
        results["r-tool-use"].tool_calls == out["r-tool-use"]["response"]["body"]["choices"][0]["message"]["tool_calls"]
    )
    assert results["r-tool-use"].text == "Checking."
    assert results["r-end-turn"].tool_calls is None
    assert results["r-thinking"].text == "Thought it through."


# (body fields, path refused, code)
REFUSED = [
    ({"n": 3}, "body.n", "unsupported_parameter"),
    ({"response_format": {"type": "json_object"}}, "body.response_format", "unsupported_parameter"),
    ({"logprobs": True}, "body.logprobs", "unsupported_parameter"),
    ({"stream": True}, "body.stream", "unsupported_parameter"),
    ({"reasoning_effort": "high"}, "body.reasoning_effort", "unsupported_parameter"),
    ({"temperature": 1.5}, "body.temperature", "invalid_value"),
    ({"temperature": 0.5, "top_p": 0.5}, "body.top_p", "unsupported_parameter"),
    ({"model": "anthropic/claude-opus-4-7", "temperature": 0.5}, "body.temperature", "unsupported_parameter"),
    (
        {"tools": [{"type": "function", "function": {"name": "bad name"}}]},
        "body.tools[0].function.name",
        "invalid_value",
    ),
    ({"tools": [{"type": "custom", "custom": {"name": "free"}}]}, "body.tools[0]", "unsupported_parameter"),
    (
        {
            "messages": [
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}]}
            ]
        },
        "body.messages[0].content[0]",
        "unsupported_content",
    ),
    (
        {"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}]},
        "body.messages[0].content[0].file.file_id",
        "unsupported_content",
    ),
    (
        {"messages": [{"role": "user", "name": "ann", "content": "hi"}]},
        "body.messages[0].name",
        "unsupported_parameter",
    ),
    (
        {"messages": [*round_trip([])[:2], user("no tool result")], "tools": [WEATHER]},
        "body.messages[1].tool_calls[0]",
        "invalid_value",
    ),
    ({"frobnicate": True}, "body.frobnicate", "unsupported_parameter"),
]


@pytest.mark.parametrize(("fields", "path", "code"), REFUSED, ids=[r[1] for r in REFUSED])
def test_what_cannot_be_translated_is_refused_before_upload(fields, path, code):
    line = chat_line("refused-1", "anthropic", **{"model": SONNET, **fields})
    report = fb.validate(to_jsonl([line]))
    got = [(i.line, i.path, i.code) for i in report.issues]
    assert (1, path, code) in got, got
    name = path.removeprefix("body.").split(".")[0].split("[")[0]
    message = next(i.message for i in report.issues if i.path == path)
    assert name in message or path.endswith("]") or code != "unsupported_parameter", message


def test_the_engine_refuses_the_batch_naming_line_and_param(upstream):
    lines = [chat_line("fine", "anthropic"), chat_line("bad", "anthropic", n=2, logprobs=True)]
    with engine(upstream) as server, Api(server.url, server.api_key) as api:
        b, _, _ = api.run(to_jsonl(lines))
    assert b["status"] == "failed"
    errors = {(e["line"], e["param"], e["code"]) for e in b["errors"]["data"]}
    assert errors == {(2, "body.n", "unsupported_parameter"), (2, "body.logprobs", "unsupported_parameter")}
    assert upstream.requests == [], "nothing reaches Anthropic"


def test_the_model_table_is_extended_by_the_user(upstream):
    line = chat_line("new", "anthropic", model="anthropic/claude-opus-4-7", temperature=0.4)
    assert not fb.validate(to_jsonl([line])).ok
    table = {"claude-opus-4-7*": "either"}
    assert fb.validate(to_jsonl([line]), anthropic_sampling=table).ok
    with engine(upstream, anthropic_sampling=table) as server:
        b, _out, err = run(server, [line])
    assert b["status"] == "completed" and err == {}
    (rec,) = upstream.requests
    assert rec.body["temperature"] == 0.4
    with pytest.raises(ValueError, match="'both', 'either' or 'none'"):
        fb.validate(to_jsonl([line]), anthropic_sampling={"claude-x": "some"})
    with pytest.raises(TypeError, match="mapping"):
        fb.validate(to_jsonl([line]), anthropic_sampling=["claude-x"])  # type: ignore[arg-type]


def test_the_docs_table_lists_every_openai_chat_parameter():
    """docs/anthropic-translation.md's table is the translator's (a cargo test checks that);
    here: it covers every parameter of the installed `openai`'s chat-completions request."""
    from openai.types.chat import completion_create_params

    params = set(get_type_hints(completion_create_params.CompletionCreateParamsNonStreaming))
    doc = (ROOT / "docs" / "anthropic-translation.md").read_text()
    table = doc.split("## Parameters")[1].split("\n## ")[0]
    listed = set(re.findall(r"^\| `([a-z_]+)` \| (?:translated|refused|dropped) \|", table, re.M))
    assert params - listed == set(), "parameters the translation table does not list"
    assert "stream" in params and len(params) > 30


def test_the_cli_takes_the_model_table_too(tmp_path):
    from test_cli_workflow import cli

    path = tmp_path / "new-model.jsonl"
    path.write_bytes(to_jsonl([chat_line("new", "anthropic", model="anthropic/claude-opus-4-7", temperature=0.4)]))
    refused = cli("validate", str(path))
    assert refused.returncode == 2 and "unsupported_parameter" in refused.stdout + refused.stderr, refused
    assert cli("validate", str(path), "--anthropic-sampling", "claude-opus-4-7*=either").returncode == 0
    bad = cli("validate", str(path), "--anthropic-sampling", "claude-opus-4-7")
    assert bad.returncode == 2 and "PATTERN=both|either|none" in bad.stderr, bad


def test_run_and_the_cli_submit_and_run_take_the_model_table(tmp_path):
    """``client.run`` checks the requests before upload, so it takes the table too (sync,
    async, with the cache); so do ``submit`` and ``run`` on the command line. Without it the
    line is refused and nothing is uploaded."""
    import asyncio

    from test_cli_workflow import KEY, cli

    table = {"claude-opus-4-7*": "either"}
    line = chat_line("new", "anthropic", model="anthropic/claude-opus-4-7", temperature=0.4)
    path = tmp_path / "new-model.jsonl"
    path.write_bytes(to_jsonl([line]))
    with fb.LocalServer(api_key=KEY, anthropic_sampling=table) as server:
        client = fb.Client(KEY, server.url, timeout=10, max_retries=0)
        with pytest.raises(fb.BatchValidationError, match="unsupported_parameter"):
            client.run(path, progress=False)
        with pytest.raises(fb.BatchValidationError, match="unsupported_parameter"):
            client.run(path, progress=False, cache=tmp_path / "cache.sqlite3")
        assert client.files.list().data == []  # nothing uploaded
        assert client.run(path, anthropic_sampling=table, progress=False)["new"].ok
        cached = client.run(path, anthropic_sampling=table, progress=False, cache=tmp_path / "cache.sqlite3")
        assert cached["new"].ok

        async def main() -> bool:
            async with fb.AsyncClient(KEY, server.url, timeout=10, max_retries=0) as ac:
                return (await ac.run(path, anthropic_sampling=table, progress=False))["new"].ok

        assert asyncio.run(main())

        refused = cli("submit", str(path), server=server)
        assert refused.returncode == 2 and "unsupported_parameter" in refused.stderr, refused
        submitted = cli("submit", str(path), "--wait", "--anthropic-sampling", "claude-opus-4-7*=either", server=server)
        assert submitted.returncode == 0, submitted
        out = tmp_path / "out.jsonl"
        ran = cli("run", str(path), "-o", str(out), "--anthropic-sampling", "claude-opus-4-7*=either", server=server)
        assert ran.returncode == 0 and json.loads(out.read_text())["custom_id"] == "new", ran
        bad = cli("run", str(path), "--anthropic-sampling", "claude-opus-4-7", server=server)
        assert bad.returncode == 2 and "PATTERN=both|either|none" in bad.stderr, bad
