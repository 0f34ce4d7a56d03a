"""Tools, tool round trips and structured output end to end, on both providers.

A realtime batch through the local engine, driven by the stock `openai` client, answered
either by the simulated provider or by `LocalServer(provider="upstream")` against
`FakeUpstream` over HTTP (where Anthropic lines cross the wire in Anthropic's format and the
fake refuses what Anthropic would). Results are read with `read_results`; every body must
parse as `openai`'s `ChatCompletion`, tool arguments and JSON answers must fit their schemas,
and the same requests must get the same answers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import openai
import pytest

import fastrouter_batch as fb
from engine_helpers import ROOT, chat_line, to_jsonl
from sdk_types import parse_chat_completion

MODELS = {"openai": "openai/gpt-4.1-nano", "anthropic": "anthropic/claude-4.5-sonnet"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "unit", "days"],
            "additionalProperties": False,
        },
    },
}
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_population",
        "parameters": {"type": "object", "properties": {"country": {"type": "string"}}, "required": ["country"]},
    },
}
ANSWER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "population": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "capital": {"type": "boolean"},
    },
    "required": ["city", "population", "tags", "capital"],
    "additionalProperties": False,
}
ASK = [{"role": "user", "content": "Use get_weather: what is the weather in Paris this week?"}]


def fits(value: Any, schema: dict[str, Any]) -> bool:
    """The JSON-schema subset these tests use."""
    if "enum" in schema and value not in schema["enum"]:
        return False
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return (
            isinstance(value, dict)
            and set(schema.get("required", [])) <= set(value)
            and (schema.get("additionalProperties", True) or set(value) <= set(props))
            and all(fits(v, props[k]) for k, v in value.items() if k in props)
        )
    if kind == "array":
        return (
            isinstance(value, list)
            and len(value) >= schema.get("minItems", 0)
            and all(fits(v, schema["items"]) for v in value)
        )
    if kind == "integer":
        return (
            isinstance(value, int)
            and not isinstance(value, bool)
            and schema.get("minimum", value) <= value <= schema.get("maximum", value)
        )
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    return True


@pytest.fixture(params=["simulated", "upstream"])
def server(request):
    if request.param == "simulated":
        with fb.LocalServer() as s:
            yield s
        return
    with (
        fb.FakeUpstream() as up,
        fb.LocalServer(
            provider="upstream",
            upstream_mode="realtime",
            openai_base_url=up.url,
            openai_api_key="sk-fake-openai",
            anthropic_base_url=up.url,
            anthropic_api_key="sk-fake-anthropic",
            retry_delay=0.01,
        ) as s,
    ):
        yield s


def run(server: fb.LocalServer, lines: list[dict[str, Any]]) -> fb.BatchResults:
    """One batch with the stock openai client; every line must succeed."""
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=server.api_key)
    f = client.files.create(file=("batch.jsonl", to_jsonl(lines)), purpose="batch")
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 30
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        assert time.monotonic() < deadline, batch
        time.sleep(0.02)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch.errors
    assert batch.error_file_id is None, client.files.content(batch.error_file_id).text
    results = fb.read_results(
        client.files.content(batch.output_file_id).content, inputs=[x["custom_id"] for x in lines]
    )
    assert [r.custom_id for r in results] == [x["custom_id"] for x in lines]
    return results


def line(custom_id: str, provider: str, messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    return chat_line(custom_id, provider, MODELS[provider], messages=messages, max_tokens=400, **params)


def first_round(provider: str) -> list[dict[str, Any]]:
    p = provider
    return [
        line(f"{p}-auto", p, ASK, tools=[LOOKUP, WEATHER]),
        line(f"{p}-required", p, [{"role": "user", "content": "Anything."}], tools=[WEATHER], tool_choice="required"),
        line(
            f"{p}-named",
            p,
            ASK,
            tools=[WEATHER, LOOKUP],
            tool_choice={"type": "function", "function": {"name": "lookup_population"}},
            parallel_tool_calls=False,
        ),
        line(f"{p}-none", p, ASK, tools=[WEATHER], tool_choice="none"),
        line(
            f"{p}-json",
            p,
            [{"role": "user", "content": "Describe Paris."}],
            response_format={"type": "json_schema", "json_schema": {"name": "city", "strict": True, "schema": ANSWER}},
        ),
    ]


def test_tool_calls_and_structured_output_on_both_providers(server):
    lines = [x for p in MODELS for x in first_round(p)]
    results = run(server, lines)
    for p in MODELS:
        for suffix, tool, schema in [
            ("auto", "get_weather", WEATHER),
            ("required", "get_weather", WEATHER),
            ("named", "lookup_population", LOOKUP),
        ]:
            r = results[f"{p}-{suffix}"]
            c = parse_chat_completion(r.body)
            assert c.choices[0].finish_reason == "tool_calls", (p, suffix)
            assert r.text is None and c.choices[0].message.content is None
            (call,) = r.tool_calls
            assert call["type"] == "function" and call["function"]["name"] == tool, (p, suffix, call)
            assert call["id"].startswith("call_" if p == "openai" else "toolu_")
            arguments = json.loads(call["function"]["arguments"])
            assert fits(arguments, schema["function"]["parameters"]), (p, suffix, arguments)
        none = results[f"{p}-none"]
        assert none.tool_calls is None and none.text and none.text.startswith("Simulated answer")
        assert parse_chat_completion(none.body).choices[0].finish_reason == "stop"
        answer = json.loads(results[f"{p}-json"].text)
        assert fits(answer, ANSWER), answer
    # The same requests get the same answers.
    again = run(server, lines)
    assert [r.tool_calls for r in again] == [r.tool_calls for r in results]
    assert [r.text for r in again] == [r.text for r in results]


def test_a_full_tool_round_trip_on_both_providers(server):
    calls = run(server, [line(f"{p}", p, ASK, tools=[WEATHER], tool_choice="required") for p in MODELS])
    follow_ups = []
    for r in calls:
        (call,) = r.tool_calls
        city = json.loads(call["function"]["arguments"])["city"]
        assistant = r.body["choices"][0]["message"]
        messages = [
            *ASK,
            assistant,
            {"role": "tool", "tool_call_id": call["id"], "content": f"21C and dry in {city}"},
            {"role": "user", "content": "And should I take an umbrella?"},
        ]
        follow_ups.append(line(r.custom_id, r.custom_id, messages, tools=[WEATHER]))
        # Without the question: the answer comes straight after the tool result.
        follow_ups.append(line(f"{r.custom_id}-direct", r.custom_id, messages[:-1], tools=[WEATHER]))
    answers = run(server, follow_ups)
    for p in MODELS:
        direct = answers[f"{p}-direct"]
        assert direct.tool_calls is None
        assert "21C and dry in" in direct.text, direct.text
        assert parse_chat_completion(direct.body).choices[0].finish_reason == "stop"
        # A new question after the results is a new turn: with auto, the simulator calls again.
        asked = parse_chat_completion(answers[p].body)
        assert asked.choices[0].finish_reason == "tool_calls", answers[p].body


def test_the_readme_function_calling_example_runs(capsys):
    readme = (ROOT / "README.md").read_text()
    code = readme.split("### Tools, structured output and Anthropic lines")[1].split("```python")[1].split("```")[0]
    exec(compile(code, str(Path(ROOT / "README.md")), "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert [p.split()[0] for p in printed] == ["gpt", "claude"]
    assert all("18°C and sunny in" in p for p in printed), printed


def test_simulated_error_bodies_follow_openais_error_schema():
    """OpenAI's error object requires `param` (null when no parameter is at fault)."""
    with fb.LocalServer(fault_rate=1.0, max_retries=0) as s:
        client = openai.OpenAI(base_url=s.url + "/v1", api_key=s.api_key)
        lines = [chat_line("o", "openai"), chat_line("a", "anthropic")]
        f = client.files.create(file=("batch.jsonl", to_jsonl(lines)), purpose="batch")
        batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        deadline = time.monotonic() + 30
        while batch.status != "completed":
            assert time.monotonic() < deadline, batch
            time.sleep(0.02)
            batch = client.batches.retrieve(batch.id)
        errors = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
    assert len(errors) == 2
    for e in errors:
        error = e["response"]["body"]["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["param"] is None, error
