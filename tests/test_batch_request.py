"""BatchRequest on its own (fields, JSON and dict round trips, equality, repr, errors) and
read_requests() on a file with a bad line."""

from __future__ import annotations

import json

import pytest

import fastrouter_batch as fb

SYSTEM = {"role": "system", "content": "You are terse."}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def a_request() -> fb.BatchRequest:
    return fb.BatchRequest.chat(
        "r1", "openai/gpt-4.1", [SYSTEM, user("hi")], max_tokens=9, response_format=RESPONSE_FORMAT
    )


def test_batch_request_fields():
    r = a_request()
    assert (r.custom_id, r.provider, r.method, r.url, r.model) == (
        "r1",
        "openai",
        "POST",
        "/v1/chat/completions",
        "openai/gpt-4.1",
    )
    assert r.body == {
        "model": "openai/gpt-4.1",
        "messages": [SYSTEM, user("hi")],
        "max_tokens": 9,
        "response_format": RESPONSE_FORMAT,
    }
    e = fb.BatchRequest.embedding("e", "openai/text-embedding-3-small", ["a"])
    assert (e.url, e.body) == ("/v1/embeddings", {"model": "openai/text-embedding-3-small", "input": ["a"]})
    custom = fb.BatchRequest("k", {"model": "openai/x", "input": "t"}, method="GET", url="/v1/embeddings")
    assert (custom.provider, custom.method, custom.url) == ("openai", "GET", "/v1/embeddings")
    assert fb.BatchRequest("k", {"messages": []}, provider="openai").model is None


def test_batch_request_json_and_dict_round_trips():
    r = a_request()
    assert fb.BatchRequest.from_json(r.to_json()) == r
    assert fb.BatchRequest.from_json(r.to_json().encode()) == r
    assert fb.BatchRequest.from_dict(r.to_dict()) == r
    assert json.loads(r.to_json()) == r.to_dict()
    assert r.to_dict() == {
        "custom_id": "r1",
        "provider": "openai",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": r.body,
    }
    minimal = fb.BatchRequest.from_dict({"custom_id": "m", "body": {"model": "anthropic/c", "messages": []}})
    assert (minimal.provider, minimal.method, minimal.url) == ("anthropic", "POST", "/v1/chat/completions")


def test_batch_request_equality():
    r = a_request()
    assert r == a_request()
    assert r != fb.BatchRequest.chat(
        "r2", "openai/gpt-4.1", [SYSTEM, user("hi")], max_tokens=9, response_format=RESPONSE_FORMAT
    )
    assert r != fb.BatchRequest.chat(
        "r1", "openai/gpt-4.1", [SYSTEM, user("hi")], max_tokens=10, response_format=RESPONSE_FORMAT
    )
    assert r != fb.BatchRequest.chat(
        "r1",
        "openai/gpt-4.1",
        [SYSTEM, user("hi")],
        max_tokens=9,
        response_format=RESPONSE_FORMAT,
        provider="anthropic",
    )
    assert r != r.to_dict()
    assert r != r.to_json()


def test_batch_request_repr():
    assert repr(a_request()) == (
        'BatchRequest(custom_id="r1", provider="openai", url="/v1/chat/completions", model="openai/gpt-4.1")'
    )


def test_from_json_without_provider_raises_value_error():
    line = (
        '{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"openai/gpt-4.1","messages":[]}}'
    )
    with pytest.raises(ValueError, match="provider"):
        fb.BatchRequest.from_json(line)


@pytest.mark.parametrize(
    "line",
    ["not json", "[1]", '{"custom_id":"a"}', '{"custom_id":"a","provider":"p","method":"POST","url":"u","body":[1]}'],
)
def test_from_json_of_a_non_request_raises_value_error(line):
    with pytest.raises(ValueError, match="not a batch request line"):
        fb.BatchRequest.from_json(line)


def test_read_requests_names_the_bad_line(tmp_path):
    path = tmp_path / "b.jsonl"
    good = a_request().to_json()
    path.write_bytes(("\ufeff" + good + "\r\n\n" + '{"custom_id":"x"}' + "\n" + good + "\n").encode())
    it = fb.read_requests(path)
    assert next(it) == a_request()
    with pytest.raises(ValueError) as info:
        next(it)
    assert str(info.value).startswith(f"{path}, line 3: not a batch request line")
