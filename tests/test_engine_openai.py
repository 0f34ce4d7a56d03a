"""Wire compatibility of the local engine with the stock `openai` package: every Files
and Batches call a user makes, the typed errors it raises, and the results it downloads.

Real HTTP over 127.0.0.1; the engine runs in this process (`LocalServer`), simulated
provider unless stated otherwise.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import openai
import pytest

import fastrouter_batch as fb
from engine_helpers import (
    CHAT,
    EMBEDDINGS,
    SAMPLE,
    TERMINAL,
    chat_line,
    embedding_line,
    parse_jsonl,
    to_jsonl,
)


def client(server: fb.LocalServer, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key or server.api_key, max_retries=0, timeout=30)


def wait_batch(c: openai.OpenAI, batch_id: str, statuses=TERMINAL, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        b = c.batches.retrieve(batch_id)
        if b.status in statuses:
            return b
        assert time.monotonic() < deadline, f"batch still {b.status} after {timeout}s"
        time.sleep(0.02)


def simulated_text(model: str, last_user: str) -> str:
    """The simulator's answer (see providers/simulated.rs): the model, then the first 12
    words of the last user message."""
    return f"Simulated answer from {model}: " + " ".join(last_user.split()[:12])


@pytest.fixture(scope="module")
def server():
    with fb.LocalServer(api_key=["k1", "k2"]) as s:
        yield s


@pytest.fixture
def c(server) -> openai.OpenAI:
    with client(server, "k1") as cl:
        yield cl


# --- files ------------------------------------------------------------------------------


def test_file_upload_from_a_path(c):
    f = c.files.create(file=SAMPLE, purpose="batch")
    data = SAMPLE.read_bytes()
    assert f.id.startswith("file-")
    assert f.object == "file"
    assert f.bytes == len(data)
    assert f.filename == "sample.jsonl"
    assert f.purpose == "batch"
    assert isinstance(f.created_at, int)
    extra = f.model_extra or {}
    assert extra["file_id"] == f.id
    assert extra["num_rows"] == 4


def test_file_upload_from_bytes_retrieve_list_content_delete(c):
    data = to_jsonl(chat_line(f"b-{i}") for i in range(3))
    f = c.files.create(file=("mine.jsonl", data), purpose="batch")
    assert (f.bytes, f.filename, f.purpose) == (len(data), "mine.jsonl", "batch")
    assert (f.model_extra or {})["num_rows"] == 3

    got = c.files.retrieve(f.id)
    assert got.model_dump() == f.model_dump()
    assert f.id in [x.id for x in c.files.list()]
    assert c.files.content(f.id).content == data

    deleted = c.files.delete(f.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (f.id, True, "file")
    with pytest.raises(openai.NotFoundError) as e:
        c.files.retrieve(f.id)
    assert e.value.status_code == 404
    assert e.value.body["code"] == "not_found"
    with pytest.raises(openai.NotFoundError):
        c.files.content(f.id)
    assert f.id not in [x.id for x in c.files.list()]


def test_raw_bytes_upload_gets_a_filename(c):
    f = c.files.create(file=b'{"x": 1}\n\n{"y": 2}\n', purpose="batch")
    assert f.bytes == 19
    assert f.filename  # the SDK sends "upload"
    assert (f.model_extra or {})["num_rows"] == 2


def test_upload_over_the_byte_limit_is_a_413():
    with fb.LocalServer(limits=fb.Limits(max_bytes=1000)) as s, client(s) as cl:
        ok = cl.files.create(file=("small.jsonl", b"x" * 1000), purpose="batch")
        assert ok.bytes == 1000
        for size in (1001, 3_000_000):
            with pytest.raises(openai.APIStatusError) as e:
                cl.files.create(file=("big.jsonl", b"x" * size), purpose="batch")
            assert e.value.status_code == 413
            assert e.value.body == {
                "message": "The file is larger than this engine's limit of 1000 bytes.",
                "type": "invalid_request_error",
                "code": "file_too_large",
                "param": "file",
                "status": 413,
            }
        # The refused uploads left nothing behind, and the server still answers.
        assert [f.id for f in cl.files.list()] == [ok.id]


# --- batches ----------------------------------------------------------------------------


def test_batch_on_the_sample_runs_to_completion(c):
    f = c.files.create(file=SAMPLE, purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h", metadata={"job": "sample"})
    assert b.id.startswith("fr_batch-")
    assert (b.model_extra or {})["batch_id"] == b.id
    assert b.object == "batch"
    assert b.status == "validating"
    assert (b.endpoint, b.input_file_id, b.completion_window) == (CHAT, f.id, "24h")
    assert b.metadata == {"job": "sample"}
    assert b.expires_at == b.created_at + 86400

    b = wait_batch(c, b.id)
    assert b.status == "completed"
    assert b.request_counts.model_dump() == {"total": 4, "completed": 4, "failed": 0}
    assert b.error_file_id is None
    assert b.errors is None
    assert b.created_at <= b.in_progress_at <= b.finalizing_at <= b.completed_at
    assert b.metadata == {"job": "sample"}
    assert c.batches.retrieve(b.id).model_dump() == b.model_dump()

    out_meta = c.files.retrieve(b.output_file_id)
    assert out_meta.purpose == "batch_output"
    assert out_meta.filename == f"{b.id}_output.jsonl"
    out = parse_jsonl(c.files.content(b.output_file_id).content)
    assert out_meta.bytes == len(c.files.content(b.output_file_id).content)
    requests = {r["custom_id"]: r for r in parse_jsonl(SAMPLE.read_bytes())}
    assert sorted(line["custom_id"] for line in out) == sorted(requests)
    for line in out:
        assert set(line) == {"id", "custom_id", "response", "error"}
        assert line["id"].startswith("batch_req_")
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
        assert line["response"]["request_id"]
        body = line["response"]["body"]
        req = requests[line["custom_id"]]["body"]
        assert body["object"] == "chat.completion"
        assert body["model"] == req["model"]
        assert body["choices"][0]["message"]["role"] == "assistant"
        assert body["choices"][0]["message"]["content"] == simulated_text(req["model"], req["messages"][-1]["content"])
        assert body["choices"][0]["finish_reason"] == "stop"
        u = body["usage"]
        assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] > 0
    # The batch is over: its input file may go now.
    assert c.files.delete(f.id).deleted is True


def test_idempotency_key_returns_the_same_batch(c):
    f = c.files.create(file=SAMPLE, purpose="batch")
    key = {"Idempotency-Key": f"idem-{time.time_ns()}"}
    a = c.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h", extra_headers=key)
    b = c.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h", extra_headers=key)
    assert a.id == b.id
    other = c.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
    assert other.id != a.id
    ids = [x.id for x in c.batches.list(limit=100)]
    assert ids.count(a.id) == 1
    wait_batch(c, a.id)
    wait_batch(c, other.id)


def test_idempotency_key_reused_with_another_request_is_unprocessable(c):
    f = c.files.create(file=SAMPLE, purpose="batch")
    key = {"Idempotency-Key": f"idem-{time.time_ns()}"}
    a = c.batches.create(
        input_file_id=f.id, endpoint=CHAT, completion_window="24h", extra_headers=key, metadata={"run": "1"}
    )
    with pytest.raises(openai.UnprocessableEntityError) as e:
        c.batches.create(
            input_file_id=f.id, endpoint=CHAT, completion_window="24h", extra_headers=key, metadata={"run": "2"}
        )
    assert e.value.status_code == 422
    assert e.value.code == "idempotency_key_reused"
    assert a.id in e.value.message
    again = c.batches.create(
        input_file_id=f.id, endpoint=CHAT, completion_window="24h", extra_headers=key, metadata={"run": "1"}
    )
    assert again.id == a.id
    wait_batch(c, a.id)


def test_batch_list_auto_paginates_newest_first():
    with fb.LocalServer() as s, client(s) as cl:
        f = cl.files.create(file=SAMPLE, purpose="batch")
        made = [cl.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h").id for _ in range(5)]
        first = cl.batches.list(limit=2)
        assert [b.id for b in first.data] == made[::-1][:2]
        assert first.has_more is True
        pages = list(first.iter_pages())
        assert [len(p.data) for p in pages] == [2, 2, 1]
        assert [p.has_more for p in pages] == [True, True, False]
        listed = [b.id for b in cl.batches.list(limit=2)]
        assert listed == made[::-1]
        assert [b.id for b in cl.batches.list(limit=2, after=made[2])] == made[:2][::-1]
        # Files paginate the same way (and filter by purpose).
        uploads = [f.id] + [cl.files.create(file=SAMPLE, purpose="batch").id for _ in range(2)]
        assert [x.id for x in cl.files.list(limit=1, purpose="batch")] == uploads[::-1]
        done = [wait_batch(cl, bid) for bid in made]
        outputs = [x.id for x in cl.files.list(limit=2, purpose="batch_output")]
        assert sorted(outputs) == sorted(b.output_file_id for b in done)
        assert len([x.id for x in cl.files.list(limit=3)]) == 8


def test_cancel_a_running_batch():
    with fb.LocalServer(latency=0.05, concurrency=2) as s, client(s) as cl:
        lines = [chat_line(f"slow-{i}") for i in range(200)]
        f = cl.files.create(file=("slow.jsonl", to_jsonl(lines)), purpose="batch")
        b = cl.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
        wait_batch(cl, b.id, {"in_progress"})
        with pytest.raises(openai.ConflictError) as e:
            cl.files.delete(f.id)
        assert e.value.body["code"] == "file_in_use"
        cancelling = cl.batches.cancel(b.id)
        assert cancelling.status in {"cancelling", "cancelled"}
        assert cancelling.cancelling_at is not None
        done = wait_batch(cl, b.id)
        assert done.status == "cancelled"
        assert done.cancelled_at >= done.cancelling_at
        out = parse_jsonl(cl.files.content(done.output_file_id).content) if done.output_file_id else []
        err = parse_jsonl(cl.files.content(done.error_file_id).content)
        assert len(out) < 200
        assert Counter(x["custom_id"] for x in out + err) == Counter(x["custom_id"] for x in lines)
        assert {x["error"]["code"] for x in err} == {"batch_cancelled"}
        assert all(x["response"] is None for x in err)
        assert done.request_counts.model_dump() == {"total": 200, "completed": len(out), "failed": len(err)}
        # A second cancel answers with the batch as it is.
        assert cl.batches.cancel(b.id).status == "cancelled"


# --- typed errors -----------------------------------------------------------------------


def test_wrong_key_is_an_authentication_error(server):
    with client(server, "not-a-key") as bad:
        for call in (bad.batches.list, bad.files.list, lambda: bad.batches.retrieve("fr_batch-x")):
            with pytest.raises(openai.AuthenticationError) as e:
                call()
            assert e.value.status_code == 401
            assert e.value.body["type"] == "authentication_error"
            assert e.value.body["code"] == "invalid_api_key"


def test_another_keys_batch_and_file_are_not_found(server, c):
    f = c.files.create(file=SAMPLE, purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
    with client(server, "k2") as other:
        with pytest.raises(openai.NotFoundError) as e:
            other.batches.retrieve(b.id)
        assert e.value.body == {
            "message": f"No batch with id '{b.id}'.",
            "type": "invalid_request_error",
            "code": "not_found",
            "param": None,
            "status": 404,
        }
        with pytest.raises(openai.NotFoundError):
            other.batches.cancel(b.id)
        with pytest.raises(openai.NotFoundError):
            other.files.retrieve(f.id)
        with pytest.raises(openai.NotFoundError):
            other.files.content(f.id)
        with pytest.raises(openai.NotFoundError):
            other.files.delete(f.id)
        # Another key cannot start a batch on this key's file either.
        with pytest.raises(openai.NotFoundError) as e:
            other.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
        assert e.value.body["param"] == "input_file_id"
        assert b.id not in [x.id for x in other.batches.list()]
        assert f.id not in [x.id for x in other.files.list()]
    wait_batch(c, b.id)


def test_cancelling_a_completed_batch_is_a_conflict(c):
    f = c.files.create(file=SAMPLE, purpose="batch")
    b = wait_batch(c, c.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h").id)
    assert b.status == "completed"
    with pytest.raises(openai.ConflictError) as e:
        c.batches.cancel(b.id)
    assert e.value.status_code == 409
    assert e.value.body["code"] == "batch_not_cancellable"
    assert e.value.body["message"] == f"Batch '{b.id}' cannot be cancelled: its status is 'completed'."
    assert c.batches.retrieve(b.id).status == "completed"


def test_bad_create_parameters_are_bad_requests(c):
    f = c.files.create(file=SAMPLE, purpose="batch")
    with pytest.raises(openai.BadRequestError) as e:
        c.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="1h")  # type: ignore[arg-type]
    assert e.value.status_code == 400
    assert e.value.body["code"] == "invalid_completion_window"
    assert e.value.body["param"] == "completion_window"
    with pytest.raises(openai.BadRequestError) as e:
        c.batches.create(input_file_id=f.id, endpoint="/v1/completions", completion_window="24h")  # type: ignore[arg-type]
    assert (e.value.body["code"], e.value.body["param"]) == ("invalid_endpoint", "endpoint")
    with pytest.raises(openai.BadRequestError) as e:
        c.batches.create(
            input_file_id=f.id, endpoint=CHAT, completion_window="24h", metadata={f"k{i}": "v" for i in range(17)}
        )
    assert (e.value.body["code"], e.value.body["param"]) == ("invalid_metadata", "metadata")
    with pytest.raises(openai.NotFoundError) as e:
        c.batches.create(input_file_id="file-missing", endpoint=CHAT, completion_window="24h")
    assert e.value.body["param"] == "input_file_id"
    with pytest.raises(openai.BadRequestError) as e:
        c.batches.list(limit=101)
    assert e.value.body["code"] == "invalid_limit"


def test_failed_validation_lists_line_code_and_message(c):
    bad = (
        to_jsonl(
            [
                chat_line("a", messages=[]),
                chat_line("a"),
                {
                    "custom_id": "c",
                    "provider": "anthropic",
                    "method": "POST",
                    "url": CHAT,
                    "body": {"model": "anthropic/claude-4.5-sonnet", "messages": [{"role": "user", "content": "hi"}]},
                },
            ]
        )
        + b"not json\n"
    )
    expected = [
        {"code": i.code, "line": i.line, "message": i.message, "param": i.path} for i in fb.validate(bad).issues
    ]
    assert [(e["line"], e["code"]) for e in expected] == [
        (1, "empty_messages"),
        (2, "duplicate_custom_id"),
        (3, "missing_max_tokens"),
        (4, "invalid_json"),
    ]
    f = c.files.create(file=("bad.jsonl", bad), purpose="batch")
    b = wait_batch(c, c.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h").id)
    assert b.status == "failed"
    assert b.failed_at is not None
    assert b.in_progress_at is None
    assert b.output_file_id is None and b.error_file_id is None
    assert b.errors is not None and b.errors.object == "list"
    assert [e.model_dump() for e in b.errors.data] == expected
    assert b.request_counts.model_dump() == {"total": 0, "completed": 0, "failed": 0}


def test_a_file_whose_url_differs_from_the_batch_endpoint_fails(c):
    f = c.files.create(file=SAMPLE, purpose="batch")
    b = wait_batch(c, c.batches.create(input_file_id=f.id, endpoint=EMBEDDINGS, completion_window="24h").id)
    assert b.status == "failed"
    assert [(e.code, e.line, e.param) for e in b.errors.data] == [("mismatched_endpoint", None, "endpoint")]


# --- results ----------------------------------------------------------------------------


def mixed_chat_lines(n: int) -> list[dict]:
    lines = []
    for i in range(n):
        provider = "anthropic" if i % 2 else "openai"
        model = {
            0: "openai/gpt-4.1-nano",
            1: "anthropic/claude-4.5-sonnet",
            2: "openai/gpt-4.1",
            3: "anthropic/claude-4.5-haiku",
        }[i % 4]
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"What is {i} plus {i + 1}? Explain step by step please, thanks."},
        ]
        lines.append(chat_line(f"mix-{i}", provider, model, messages=messages))
    return lines


def run_file(c: openai.OpenAI, data: bytes, endpoint: str = CHAT):
    f = c.files.create(file=("run.jsonl", data), purpose="batch")
    b = wait_batch(c, c.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h").id)
    out = parse_jsonl(c.files.content(b.output_file_id).content) if b.output_file_id else []
    err = parse_jsonl(c.files.content(b.error_file_id).content) if b.error_file_id else []
    return b, out, err


def test_mixed_providers_chat_file_answers_every_line_once_deterministically(c):
    lines = mixed_chat_lines(60)
    data = to_jsonl(lines)
    b1, out1, err1 = run_file(c, data)
    b2, out2, err2 = run_file(c, data)
    for b, out, err in ((b1, out1, err1), (b2, out2, err2)):
        assert b.status == "completed"
        assert b.request_counts.model_dump() == {"total": 60, "completed": 60, "failed": 0}
        assert err == []
        assert Counter(x["custom_id"] for x in out) == Counter(x["custom_id"] for x in lines)
    by_id = {line["custom_id"]: line["body"] for line in lines}
    first = {x["custom_id"]: x["response"]["body"] for x in out1}
    second = {x["custom_id"]: x["response"]["body"] for x in out2}
    for cid, body in first.items():
        req = by_id[cid]
        assert body["object"] == "chat.completion"
        assert body["model"] == req["model"]
        assert body["choices"][0]["message"]["content"] == simulated_text(req["model"], req["messages"][-1]["content"])
        assert body["choices"][0]["finish_reason"] == "stop"
        again = second[cid]
        # Same request, same answer (only the creation time may differ).
        assert {k: v for k, v in body.items() if k != "created"} == {k: v for k, v in again.items() if k != "created"}
    # Request ids and line ids are new each time.
    assert not {x["id"] for x in out1} & {x["id"] for x in out2}


def test_max_tokens_truncates_with_finish_reason_length(c):
    line = chat_line("short", "anthropic", content="one two three four five six", max_tokens=3)
    b, out, err = run_file(c, to_jsonl([line]))
    assert b.status == "completed" and err == []
    body = out[0]["response"]["body"]
    assert body["choices"][0]["message"]["content"] == "Simulated answer from"
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3


def test_embeddings_file(c):
    lines = [
        embedding_line("e-str", "hello world"),
        embedding_line("e-list", ["a", "b", "c"]),
        embedding_line("e-dims", "hello world", dimensions=8),
        embedding_line("e-same", "hello world"),
    ]
    b, out, err = run_file(c, to_jsonl(lines), EMBEDDINGS)
    assert b.status == "completed" and err == []
    assert b.endpoint == EMBEDDINGS
    assert Counter(x["custom_id"] for x in out) == Counter(x["custom_id"] for x in lines)
    bodies = {x["custom_id"]: x["response"]["body"] for x in out}
    for cid, body in bodies.items():
        assert body["object"] == "list"
        assert body["model"] == "openai/text-embedding-3-small"
        assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
        for i, item in enumerate(body["data"]):
            assert item["object"] == "embedding"
            assert item["index"] == i
            norm = sum(x * x for x in item["embedding"]) ** 0.5
            assert abs(norm - 1.0) < 1e-4, (cid, norm)
    assert [len(d["embedding"]) for d in bodies["e-str"]["data"]] == [64]
    assert [len(d["embedding"]) for d in bodies["e-list"]["data"]] == [64, 64, 64]
    assert [len(d["embedding"]) for d in bodies["e-dims"]["data"]] == [8]
    assert bodies["e-same"]["data"] == bodies["e-str"]["data"]
    assert bodies["e-list"]["data"][0]["embedding"] != bodies["e-list"]["data"][1]["embedding"]
    # The same input embeds the same way in another batch.
    _, again, _ = run_file(c, to_jsonl(lines[:1]), EMBEDDINGS)
    assert again[0]["response"]["body"]["data"] == bodies["e-str"]["data"]


def test_openapi_document_names_every_route(server):
    import httpx

    r = httpx.get(server.url + "/openapi.json", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert set(doc["paths"]) >= {
        "/v1/files",
        "/v1/files/{file_id}",
        "/v1/files/{file_id}/content",
        "/v1/batches",
        "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/cancel",
    }


# --- async client -----------------------------------------------------------------------


def test_async_client_full_flow(server):
    async def flow() -> None:
        async with openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="k2", max_retries=0, timeout=30) as ac:
            lines = mixed_chat_lines(8)
            f = await ac.files.create(file=("async.jsonl", to_jsonl(lines)), purpose="batch")
            assert (await ac.files.retrieve(f.id)).bytes == f.bytes
            b = await ac.batches.create(
                input_file_id=f.id, endpoint=CHAT, completion_window="24h", metadata={"client": "async"}
            )
            deadline = time.monotonic() + 30
            while b.status not in TERMINAL:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
                b = await ac.batches.retrieve(b.id)
            assert b.status == "completed"
            assert b.request_counts.model_dump() == {"total": 8, "completed": 8, "failed": 0}
            assert b.metadata == {"client": "async"}
            content = await ac.files.content(b.output_file_id)
            out = parse_jsonl(content.content)
            assert sorted(x["custom_id"] for x in out) == sorted(x["custom_id"] for x in lines)
            assert b.id in [x.id async for x in ac.batches.list(limit=1)]
            with pytest.raises(openai.ConflictError):
                await ac.batches.cancel(b.id)
            deleted = await ac.files.delete(f.id)
            assert deleted.deleted is True

    asyncio.run(flow())


def test_the_contract_error_shape_on_unknown_routes(server):
    import httpx

    r = httpx.get(server.url + "/v1/nope", headers={"Authorization": "Bearer k1"}, timeout=10)
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "Unknown request URL: GET /v1/nope.",
            "type": "invalid_request_error",
            "code": "unknown_url",
            "param": None,
            "status": 404,
        }
    }
    r = httpx.delete(server.url + "/v1/batches", headers={"Authorization": "Bearer k1"}, timeout=10)
    assert r.status_code == 405
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = httpx.post(server.url + "/v1/batches", headers={"Authorization": "Bearer k1"}, content=b"{not json", timeout=10)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"
    assert json.loads(r.text)["error"]["status"] == 400


def test_upload_with_another_purpose_or_without_a_file_is_a_bad_request(c, server):
    import httpx

    with pytest.raises(openai.BadRequestError) as e:
        c.files.create(file=("x.jsonl", b"{}\n"), purpose="fine-tune")
    assert (e.value.body["code"], e.value.body["param"]) == ("invalid_purpose", "purpose")
    r = httpx.post(
        server.url + "/v1/files",
        headers={"Authorization": "Bearer k1"},
        data={"purpose": "batch"},
        files={"other": ("x", b"1")},
        timeout=10,
    )
    assert r.status_code == 400
    assert (r.json()["error"]["code"], r.json()["error"]["param"]) == ("missing_file", "file")


def test_bom_crlf_and_blank_lines_are_read_like_the_validator_reads_them(c):
    lines = [chat_line(f"c{i}", content=f"héllo {i} ✓") for i in range(5)]
    data = (
        b"\xef\xbb\xbf"
        + b"\r\n".join(json.dumps(x, ensure_ascii=False).encode() for x in lines[:3])
        + b"\r\n\r\n   \n"
        + b"\n".join(json.dumps(x).encode() for x in lines[3:])
    )
    assert fb.validate(data).num_requests == 5
    f = c.files.create(file=("crlf.jsonl", data), purpose="batch")
    assert (f.model_extra or {})["num_rows"] == 5
    b, out, err = run_file(c, data)
    assert b.status == "completed" and err == []
    assert b.request_counts.model_dump() == {"total": 5, "completed": 5, "failed": 0}
    got = {x["custom_id"]: x["response"]["body"]["choices"][0]["message"]["content"] for x in out}
    assert got == {f"c{i}": f"Simulated answer from openai/gpt-4.1-nano: héllo {i} ✓" for i in range(5)}


def test_a_batch_past_its_completion_window_expires_keeping_partial_results():
    with fb.LocalServer(completion_window=1.0, latency=0.05, concurrency=2) as s, client(s) as cl:
        lines = [chat_line(f"x{i}") for i in range(100)]
        start = time.monotonic()
        b, out, err = run_file(cl, to_jsonl(lines))
        took = time.monotonic() - start
    assert b.status == "expired"
    assert took < 5
    assert b.expires_at == b.created_at + 1
    assert b.expired_at is not None and b.completed_at is None
    assert 0 < len(out) < 100
    assert Counter(x["custom_id"] for x in out + err) == Counter(x["custom_id"] for x in lines)
    assert all(x["response"]["status_code"] == 200 for x in out)
    assert {x["error"]["code"] for x in err} == {"batch_expired"}
    assert all(x["response"] is None for x in err)
    assert b.request_counts.model_dump() == {"total": 100, "completed": len(out), "failed": len(err)}


def test_transient_simulated_faults_are_retried_and_exhausted_ones_reported():
    with fb.LocalServer(fault_rate=0.3, max_retries=30, retry_delay=0.001) as s, client(s) as cl:
        b, out, err = run_file(cl, to_jsonl(chat_line(f"f{i}") for i in range(300)))
        assert b.status == "completed"
        assert b.request_counts.model_dump() == {"total": 300, "completed": 300, "failed": 0}
        assert len(out) == 300 and err == []
    with fb.LocalServer(fault_rate=1.0, max_retries=1, retry_delay=0.001) as s, client(s) as cl:
        b, out, err = run_file(cl, to_jsonl(chat_line(f"f{i}") for i in range(30)))
        assert b.status == "completed"
        assert b.request_counts.model_dump() == {"total": 30, "completed": 0, "failed": 30}
        assert b.output_file_id is None and out == []
        assert sorted(x["custom_id"] for x in err) == sorted(f"f{i}" for i in range(30))
        assert {x["response"]["status_code"] for x in err} <= {429, 500}
        assert all(x["error"] is None and "error" in x["response"]["body"] for x in err)


def test_cancel_while_validating_runs_nothing(c):
    f = c.files.create(file=("big.jsonl", to_jsonl(chat_line(f"v{i}") for i in range(20000))), purpose="batch")
    b = c.batches.create(input_file_id=f.id, endpoint=CHAT, completion_window="24h")
    cancelling = c.batches.cancel(b.id)
    if cancelling.status == "cancelling" and cancelling.in_progress_at is None:
        done = wait_batch(c, b.id)
        assert done.status == "cancelled"
        assert done.in_progress_at is None
        assert done.request_counts.model_dump() == {"total": 0, "completed": 0, "failed": 0}
        assert done.output_file_id is None and done.error_file_id is None
    else:  # validation won the race: an ordinary cancel of a running batch
        done = wait_batch(c, b.id)
        assert done.status == "cancelled"
        c_ = done.request_counts
        assert c_.completed + c_.failed == c_.total == 20000
