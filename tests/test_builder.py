"""BatchBuilder: build -> write -> validate -> read back equal; providers; exact round trips
of values; iteration. (Refusals: test_builder_errors.py; BatchRequest: test_batch_request.py.)"""

from __future__ import annotations

import json

import pytest

import fastrouter_batch as fb

SYSTEM = {"role": "system", "content": "You are terse."}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {
        "name": "answer",
        "strict": True,
        "schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
    },
}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def chat_requests() -> list[fb.BatchRequest]:
    """What the chat builder below must hold, built independently as BatchRequests."""
    return [
        fb.BatchRequest.chat(
            "c1", "anthropic/claude-4.5-sonnet", [SYSTEM, user("13 + 25?")], max_tokens=100, temperature=0.2
        ),
        fb.BatchRequest.chat(
            "c2",
            "openai/gpt-4.1-nano",
            [user("next: 2, 4, 6?")],
            max_tokens=50,
            response_format=RESPONSE_FORMAT,
            stop=["\n"],
            seed=7,
        ),
        fb.BatchRequest.chat("c3", "openai/gpt-4.1", [user("via add()")], max_tokens=5),
        fb.BatchRequest.chat("c4", "openai/gpt-4.1", [user("via a dict")], max_tokens=5),
    ]


def build_chat() -> fb.BatchBuilder:
    b = fb.BatchBuilder()
    b.add_chat("c1", "anthropic/claude-4.5-sonnet", [SYSTEM, user("13 + 25?")], max_tokens=100, temperature=0.2)
    b.add_chat(
        "c2",
        "openai/gpt-4.1-nano",
        [user("next: 2, 4, 6?")],
        max_tokens=50,
        response_format=RESPONSE_FORMAT,
        stop=["\n"],
        seed=7,
    )
    b.add(fb.BatchRequest.chat("c3", "openai/gpt-4.1", [user("via add()")], max_tokens=5))
    b.add(
        {
            "custom_id": "c4",
            "provider": "openai",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "openai/gpt-4.1", "messages": [user("via a dict")], "max_tokens": 5},
        }
    )
    return b


def embedding_requests() -> list[fb.BatchRequest]:
    return [
        fb.BatchRequest.embedding("e1", "openai/text-embedding-3-small", "one text"),
        fb.BatchRequest.embedding("e2", "openai/text-embedding-3-small", ["a", "b", "c"], dimensions=256),
        fb.BatchRequest.embedding("e3", "openai/text-embedding-3-large", ["x"]),
    ]


def build_embeddings() -> fb.BatchBuilder:
    b = fb.BatchBuilder()
    b.add_embedding("e1", "openai/text-embedding-3-small", "one text")
    b.extend(
        [
            fb.BatchRequest.embedding("e2", "openai/text-embedding-3-small", ["a", "b", "c"], dimensions=256),
            {
                "custom_id": "e3",
                "provider": "openai",
                "method": "POST",
                "url": "/v1/embeddings",
                "body": {"model": "openai/text-embedding-3-large", "input": ["x"]},
            },
        ]
    )
    return b


@pytest.mark.parametrize(
    ("build", "expected", "url"),
    [
        (build_chat, chat_requests, "/v1/chat/completions"),
        (build_embeddings, embedding_requests, "/v1/embeddings"),
    ],
    ids=["chat", "embeddings"],
)
def test_build_write_validate_read_back_equal(tmp_path, build, expected, url):
    builder, want = build(), expected()
    path = tmp_path / "batch.jsonl"
    builder.write(path)
    data = path.read_bytes()
    report = fb.validate(path)
    assert report.ok, report.issues
    assert (report.num_requests, report.url) == (len(want), url)
    assert data == builder.to_bytes()
    assert data.decode().splitlines() == list(builder)
    assert len(builder) == len(want)
    got = list(fb.read_requests(path))
    assert got == want
    assert [type(r) for r in got] == [fb.BatchRequest] * len(want)
    assert [r.to_dict() for r in got] == [json.loads(line) for line in data.splitlines()]
    assert [r.to_dict() for r in want] == [json.loads(line) for line in data.splitlines()]


def test_lines_are_compact_json_with_fields_in_contract_order():
    line = next(iter(build_chat()))
    assert line.startswith(
        '{"custom_id":"c1","provider":"anthropic","method":"POST","url":"/v1/chat/completions",'
        '"body":{"model":"anthropic/claude-4.5-sonnet","messages":['
    )
    assert line.endswith('"max_tokens":100,"temperature":0.2}}')
    assert list(json.loads(line)) == ["custom_id", "provider", "method", "url", "body"]


# --- providers ------------------------------------------------------------------------


def test_provider_is_inferred_from_the_model_prefix():
    assert fb.BatchRequest.chat("x", "anthropic/claude-4.5-sonnet", [user("hi")]).provider == "anthropic"
    assert fb.BatchRequest.embedding("x", "openai/text-embedding-3-small", "t").provider == "openai"
    assert fb.BatchRequest("x", {"model": "anthropic/claude", "messages": []}).provider == "anthropic"
    b = fb.BatchBuilder()
    b.add_chat("x", "anthropic/claude-4.5-sonnet", [user("hi")], max_tokens=1)
    assert json.loads(next(iter(b)))["provider"] == "anthropic"


def test_explicit_provider_wins():
    r = fb.BatchRequest.chat("x", "anthropic/claude-4.5-sonnet", [user("hi")], provider="openai")
    assert r.provider == "openai"
    assert fb.BatchRequest.chat("x", "gpt-4.1", [user("hi")], provider="openai").provider == "openai"
    b = fb.BatchBuilder()
    b.add_chat("x", "gpt-4.1", [user("hi")], provider="openai")
    assert json.loads(next(iter(b)))["provider"] == "openai"


def test_a_model_without_prefix_or_provider_raises_value_error_naming_it():
    with pytest.raises(ValueError, match=r'"gpt-4\.1"'):
        fb.BatchRequest.chat("x", "gpt-4.1", [user("hi")])
    b = fb.BatchBuilder()
    with pytest.raises(ValueError, match='"text-embedding-3-small"'):
        b.add_embedding("x", "text-embedding-3-small", "t")
    with pytest.raises(ValueError, match='no string "model"'):
        fb.BatchRequest("x", {"messages": []})
    assert len(b) == 0 and b.to_bytes() == b""


# --- values round-trip exactly ---------------------------------------------------------

UNICODE = (
    "emoji 😀🇫🇷, CJK 中文日本語, accents é, newline \n tab \t cr \r, controls \x00\x01\x1f\x7f, "
    'quote " backslash \\ slash / line-sep \u2028, bom \ufeff'
)


def test_unicode_round_trips_exactly(tmp_path):
    b = fb.BatchBuilder()
    b.add_chat("u1", "openai/gpt-4.1", [user(UNICODE)], metadata={"键": UNICODE})
    b.add_chat("ü-🙂", "openai/gpt-4.1", [user("x")])
    path = tmp_path / "u.jsonl"
    b.write(path)
    lines = path.read_bytes().split(b"\n")
    assert len(lines) == 3 and lines[2] == b""  # control characters were escaped
    assert json.loads(lines[0])["body"]["messages"][0]["content"] == UNICODE
    got = list(fb.read_requests(path))
    assert got[0].body["messages"][0]["content"] == UNICODE
    assert got[0].body["metadata"] == {"键": UNICODE}
    assert got[1].custom_id == "ü-🙂"
    assert got == [
        fb.BatchRequest.chat("u1", "openai/gpt-4.1", [user(UNICODE)], metadata={"键": UNICODE}),
        fb.BatchRequest.chat("ü-🙂", "openai/gpt-4.1", [user("x")]),
    ]


BIG_INTS = [2**70, 2**70 + 1, -(2**70) - 1, 2**64 - 1, -(2**63), 2**63 - 1]


def test_big_ints_are_written_exactly():
    b = fb.BatchBuilder()
    b.add_chat("n", "openai/gpt-4.1", [user("x")], numbers=BIG_INTS)
    assert json.loads(next(iter(b)))["body"]["numbers"] == BIG_INTS
    assert b'"numbers":[1180591620717411303424,1180591620717411303425,-1180591620717411303425,' in b.to_bytes()


def test_big_ints_round_trip_through_read_requests(tmp_path):
    b = fb.BatchBuilder()
    b.add_chat("n", "openai/gpt-4.1", [user("x")], numbers=BIG_INTS)
    path = tmp_path / "n.jsonl"
    b.write(path)
    (got,) = fb.read_requests(path)
    numbers = got.body["numbers"]
    assert [type(n) for n in numbers] == [int] * len(BIG_INTS)
    assert numbers == BIG_INTS


def test_floats_bools_and_none_round_trip(tmp_path):
    values = [0.1, 1.0, -0.0, 1e300, 5e-324, 123456789.125, True, False, None, 0, -1]
    b = fb.BatchBuilder()
    b.add_chat("f", "openai/gpt-4.1", [user("x")], values=values)
    assert json.loads(next(iter(b)))["body"]["values"] == values
    path = tmp_path / "f.jsonl"
    b.write(path)
    got = next(fb.read_requests(path)).body["values"]
    assert got == values
    assert [type(v) for v in got] == [type(v) for v in values]


def test_builder_validate_reports_like_validate_of_its_bytes():
    b = fb.BatchBuilder()
    b.add_chat("same", "openai/gpt-4.1", [user("1")])
    b.add_chat("same", "openai/gpt-4.1", [user("2")])
    # A raw dict is written as given (add_chat would add the default max_tokens).
    b.add(
        {
            "custom_id": "anth",
            "provider": "anthropic",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "anthropic/claude-4.5-sonnet", "messages": [user("no max_tokens")]},
        }
    )
    b.add_embedding("emb", "openai/text-embedding-3-small", "t")
    mine = b.validate()
    theirs = fb.validate(b.to_bytes())
    assert mine.to_dict() == theirs.to_dict()
    assert sorted(mine.issue_counts) == ["duplicate_custom_id", "missing_max_tokens", "url_mismatch"]
    # providers= adds to the built-in set: naming one of them restricts nothing.
    assert b.validate(providers=["openai"]).to_dict() == mine.to_dict()
    b.add_chat("gem", "gemini/flash", [user("hi")])
    assert b.validate().issue_counts["unknown_provider"] == 1
    assert "unknown_provider" not in b.validate(providers=["gemini"]).issue_counts
    assert b.validate(limits=fb.Limits(max_requests=1)).issue_counts["too_many_requests"] == 1


def started() -> fb.BatchBuilder:
    b = fb.BatchBuilder()
    b.add_chat("first", "openai/gpt-4.1", [user("ok")])
    return b


# --- iteration, len, repr -----------------------------------------------------------------


def test_iteration_is_a_snapshot():
    b = started()
    b.add_chat("second", "openai/gpt-4.1", [user("2")])
    seen = []
    for line in b:
        seen.append(json.loads(line)["custom_id"])
        b.add_chat(f"added-{len(seen)}", "openai/gpt-4.1", [user("x")])
    assert seen == ["first", "second"]
    assert len(b) == 4
    assert [json.loads(x)["custom_id"] for x in b] == ["first", "second", "added-1", "added-2"]


def test_empty_builder():
    b = fb.BatchBuilder()
    assert (len(b), list(b), b.to_bytes()) == (0, [], b"")
    assert repr(b) == "BatchBuilder(0 requests, 0 bytes)"
    assert b.validate().ok


def test_builder_repr_counts_requests_and_bytes():
    b = started()
    assert repr(b) == f"BatchBuilder(1 requests, {len(b.to_bytes())} bytes)"
