"""The fake upstream's native batch APIs driven by the stock SDKs: `openai` (files.create,
batches.create/retrieve/list/cancel, files.content) and `anthropic` (messages.batches.create/
retrieve/list/cancel/results), over HTTP on 127.0.0.1. Every answer is also parsed strictly
by the SDK's own pydantic types (`model_validate` on the raw JSON; the SDKs themselves build
their objects without validating), and each fault knob has a test here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
from anthropic.types.messages import MessageBatch, MessageBatchIndividualResponse
from openai.types import Batch, FileObject

from fastrouter_batch.testing import FakeUpstream

MODEL = "gpt-4.1-nano"
CLAUDE = "claude-sonnet-4-5"


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


def oa(fake: FakeUpstream, **kw: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.url + "/v1", api_key="sk-fake-openai", **kw)


def an(fake: FakeUpstream, **kw: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=fake.url, api_key="sk-fake-anthropic", **kw)


def chat_line(cid: str, text: str, model: str = MODEL) -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": 50}
    return {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> FileObject:
    raw = client.files.with_raw_response.create(file=("chunk.jsonl", jsonl(lines)), purpose="batch")
    return FileObject.model_validate(raw.http_response.json())


def retrieve(client: openai.OpenAI, batch_id: str) -> Batch:
    """A poll, parsed strictly by openai's `Batch`."""
    raw = client.batches.with_raw_response.retrieve(batch_id)
    return Batch.model_validate(raw.http_response.json())


def finish(client: openai.OpenAI, batch_id: str) -> Batch:
    for _ in range(50):
        b = retrieve(client, batch_id)
        if b.status in ("completed", "failed", "expired", "cancelled"):
            return b
    raise AssertionError(f"batch {batch_id} never ended")


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines() if line]


def request(cid: str, text: str, **params: Any) -> dict[str, Any]:
    base = {"model": CLAUDE, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": cid, "params": {**base, **params}}


def retrieve_mb(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    raw = client.messages.batches.with_raw_response.retrieve(batch_id)
    return MessageBatch.model_validate(raw.http_response.json())


def finish_mb(client: anthropic.Anthropic, batch_id: str) -> MessageBatch:
    for _ in range(50):
        b = retrieve_mb(client, batch_id)
        if b.processing_status == "ended":
            return b
    raise AssertionError(f"message batch {batch_id} never ended")


def test_openai_sdk_runs_a_batch_end_to_end(fake: FakeUpstream) -> None:
    client = oa(fake)
    lines = [chat_line(f"r{i}", f"question {i}") for i in range(6)]
    lines.append(chat_line("bad", "this one fails [fake:error]"))
    f = upload(client, lines)
    assert (f.purpose, f.status, f.filename) == ("batch", "processed", "chunk.jsonl")
    assert f.expires_at == f.created_at + 2_592_000
    assert client.files.retrieve(f.id).id == f.id

    created = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"fr_chunk": "c1"}
    )
    assert created.status == "validating"
    assert created.expires_at == created.created_at + 86_400
    assert created.metadata == {"fr_chunk": "c1"}
    statuses = []
    counts = []
    while True:
        b = retrieve(client, created.id)
        statuses.append(b.status)
        assert b.request_counts is not None
        counts.append(b.request_counts.completed + b.request_counts.failed)
        if b.status == "completed":
            break
        assert len(statuses) < 20
    assert statuses == ["in_progress", "in_progress", "in_progress", "finalizing", "completed"]
    assert counts[:3] == [0, 4, 7], "request_counts grow while in progress"
    assert b.request_counts is not None
    assert (b.request_counts.total, b.request_counts.completed, b.request_counts.failed) == (7, 6, 1)
    assert b.usage is not None and b.usage.input_tokens > 0
    assert b.model == MODEL

    out = lines_of(client, b.output_file_id)
    assert [o["custom_id"] for o in out] != [f"r{i}" for i in range(6)], "results come back shuffled"
    assert sorted(o["custom_id"] for o in out) == [f"r{i}" for i in range(6)]
    bodies = {line["custom_id"]: line["body"] for line in lines}
    for o in out:
        realtime = client.chat.completions.create(**bodies[o["custom_id"]])
        assert o["response"]["body"]["choices"][0]["message"]["content"] == realtime.choices[0].message.content
        assert o["error"] is None
    (err,) = lines_of(client, b.error_file_id)
    assert err["custom_id"] == "bad" and err["error"] is None
    assert err["response"]["status_code"] == 400
    assert err["response"]["body"]["error"]["type"] == "invalid_request_error"

    c = fake.counters()
    assert (c["openai_batch_creates"], c["file_uploads"], c["openai_polls"], c["file_downloads"]) == (1, 1, 5, 2)
    assert c["chat_calls"] == 6 and c["realtime_calls"] == 6
    (info,) = fake.batches()
    assert info == {
        "provider": "openai",
        "id": created.id,
        "state": "completed",
        "request_count": 7,
        "metadata": {"fr_chunk": "c1"},
        "input_file_id": f.id,
        "created_at": created.created_at,
    }
    listed = [x.id for x in client.files.list(purpose="batch_output")]
    assert sorted(listed) == sorted([b.output_file_id, b.error_file_id])
    assert [x.id for x in client.files.list(purpose="batch")] == [f.id]
    assert client.files.delete(f.id).deleted
    assert fake.counters()["file_deletes"] == 1
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)


def test_openai_sdk_sees_late_validation_failures(fake: FakeUpstream) -> None:
    client = oa(fake)
    f = upload(client, [chat_line("a", "x"), chat_line("b", "y", model="gpt-4o-mini")])
    created = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert created.status == "validating", "content errors never fail the create"
    b = retrieve(client, created.id)
    assert b.status == "failed" and b.failed_at is not None
    assert b.errors is not None and b.errors.data
    assert (b.errors.data[0].code, b.errors.data[0].line) == ("model_mismatch", 2)
    assert b.output_file_id is None and b.error_file_id is None

    with pytest.raises(openai.BadRequestError, match=r"Must be \.jsonl"):
        client.files.create(file=("data.txt", b"{}\n"), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="Cannot find file"):
        client.batches.create(input_file_id="file-nope", endpoint="/v1/chat/completions", completion_window="24h")


def test_openai_sdk_cancel_list_and_conflict(fake: FakeUpstream) -> None:
    client = oa(fake)
    f = upload(client, [chat_line(f"r{i}", f"q{i}") for i in range(4)])
    ids = [
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id
        for _ in range(3)
    ]
    retrieve(client, ids[0])
    retrieve(client, ids[0])
    cancelling = client.batches.cancel(ids[0])
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    b = finish(client, ids[0])
    assert b.status == "cancelled" and b.request_counts is not None
    assert (b.request_counts.completed, b.request_counts.failed) == (2, 0)
    assert sorted(o["custom_id"] for o in lines_of(client, b.output_file_id)) == ["r0", "r1"]
    # (The SDK retries a 409 by default: without retries, one call.)
    with pytest.raises(openai.ConflictError, match="Cannot cancel a batch with status 'cancelled'"):
        oa(fake, max_retries=0).batches.cancel(ids[0])

    first = client.batches.list(limit=2)
    assert [x.id for x in first.data] == [ids[2], ids[1]] and first.has_more
    assert [x.id for x in client.batches.list(limit=2)] == ids[::-1], "auto-paging follows `after`"
    c = fake.counters()
    assert c["openai_cancels"] == 2 and c["openai_lists"] == 3


def test_anthropic_sdk_runs_a_message_batch(fake: FakeUpstream) -> None:
    client = an(fake)
    # Held still at first: the SDK's results() retrieves the batch first, which moves it.
    fake.configure(steps_per_poll=0)
    created = client.messages.batches.create(
        requests=[
            request("ok-1", "hello"),
            request("ok_2", "again"),
            request("no-tokens", "x", max_tokens=0),
            request("busy", "[fake:error:529]"),
        ]
    )
    assert created.processing_status == "in_progress"
    assert created.request_counts.processing == 4
    assert created.results_url is None
    with pytest.raises(anthropic.AnthropicError, match="No `results_url`"):
        client.messages.batches.results(created.id)
    mid = retrieve_mb(client, created.id)
    assert (mid.processing_status, mid.request_counts.processing, mid.request_counts.succeeded) == ("in_progress", 4, 0)
    fake.configure(steps_per_poll=1)
    half = retrieve_mb(client, created.id)
    # Half the requests are answered now, but Anthropic shows nothing of it before the end.
    assert (half.processing_status, half.request_counts.processing, half.request_counts.succeeded) == (
        "in_progress",
        4,
        0,
    )
    end = finish_mb(client, created.id)
    assert end.ended_at is not None and end.results_url is not None
    assert end.results_url.startswith(fake.url), "an absolute URL pointing at the fake itself"
    rc = end.request_counts
    assert (rc.processing, rc.succeeded, rc.errored, rc.canceled, rc.expired) == (0, 2, 2, 0, 0)

    results = {r.custom_id: r for r in client.messages.batches.results(created.id)}
    for r in results.values():
        MessageBatchIndividualResponse.model_validate(r.model_dump())
    ok = results["ok-1"].result
    assert ok.type == "succeeded"
    realtime = client.messages.create(**request("x", "hello")["params"])
    assert ok.message.content == realtime.content
    bad = results["no-tokens"].result
    assert bad.type == "errored" and bad.error.error.type == "invalid_request_error"
    busy = results["busy"].result
    assert busy.type == "errored" and busy.error.error.type == "overloaded_error"

    c = fake.counters()
    assert c["anthropic_batch_creates"] == 1 and c["anthropic_results"] == 1 and c["messages_calls"] == 1
    assert client.messages.batches.delete(created.id).type == "message_batch_deleted"


def test_anthropic_sdk_refusals_cancel_and_list(fake: FakeUpstream) -> None:
    client = an(fake)
    with pytest.raises(anthropic.BadRequestError, match="at most 64 characters"):
        client.messages.batches.create(requests=[request("x" * 65, "hi")])
    with pytest.raises(anthropic.BadRequestError, match="Duplicate custom_id"):
        client.messages.batches.create(requests=[request("a", "hi"), request("a", "ho")])
    keyless = httpx.get(fake.url + "/v1/messages/batches", headers={"anthropic-version": "2023-06-01"})
    assert keyless.status_code == 401
    assert keyless.json()["error"]["type"] == "authentication_error"
    assert fake.counters()["anthropic_batch_creates"] == 0

    ids = [client.messages.batches.create(requests=[request("a", f"q{i}"), request("b", "x")]).id for i in range(3)]
    retrieve_mb(client, ids[0])
    canceling = client.messages.batches.cancel(ids[0])
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    end = finish_mb(client, ids[0])
    assert (end.request_counts.succeeded, end.request_counts.canceled) == (1, 1)
    types = {r.custom_id: r.result.type for r in client.messages.batches.results(ids[0])}
    assert types == {"a": "succeeded", "b": "canceled"}

    page = client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == [ids[2], ids[1]] and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=2)] == ids[::-1], "auto-paging follows after_id"


def test_a_dropped_create_reply_makes_the_sdk_retry_into_a_duplicate(fake: FakeUpstream) -> None:
    """The hazard the native executor must survive: no idempotency key, and the SDK retries."""
    f = upload(oa(fake), [chat_line("a", "x")])
    fake.configure(drop_create_replies=1)
    retried = oa(fake, max_retries=1).batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert [b["id"] for b in fake.batches()][-1] == retried.id
    assert fake.counters()["openai_batch_creates"] == 2, "the lost reply's batch exists too"

    fake.configure(drop_create_at=3)
    with pytest.raises(openai.APIConnectionError):
        oa(fake, max_retries=0).batches.create(
            input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"fr_chunk": "k"}
        )
    # The batch is there to adopt, by its metadata, through the list.
    (adopt,) = [b for b in oa(fake).batches.list() if b.metadata == {"fr_chunk": "k"}]
    assert adopt.input_file_id == f.id
    assert fake.counters()["dropped_replies"] == 2 and fake.knobs()["drop_create_at"] == 3

    fake.configure(drop_create_at=0, drop_create_replies=1, faults_for="openai")
    assert an(fake, max_retries=0).messages.batches.create(requests=[request("a", "x")])
    fake.configure(faults_for="anthropic")
    assert fake.knobs()["drop_create_replies"] == 1
    with pytest.raises(anthropic.APIConnectionError):
        an(fake, max_retries=0).messages.batches.create(requests=[request("a", "x")])
    assert fake.counters()["anthropic_batch_creates"] == 2


def test_held_creates_wait_for_release(fake: FakeUpstream) -> None:
    fake.configure(hold_creates=True)
    got: list[Any] = []
    worker = threading.Thread(
        target=lambda: got.append(an(fake).messages.batches.create(requests=[request("a", "x")])),
    )
    worker.start()
    deadline = time.monotonic() + 10
    while fake.counters()["held_creates"] < 1:
        assert time.monotonic() < deadline, "the create never arrived"
        time.sleep(0.01)
    (held,) = fake.batches()
    assert held["provider"] == "anthropic" and held["state"] == "in_progress"
    time.sleep(0.1)
    assert not got
    fake.configure(hold_creates=False)
    worker.join(10)
    assert got and got[0].id == held["id"]
    assert fake.counters()["held_creates"] == 0


def test_rate_limits_are_retried_by_the_sdks_after_retry_after(fake: FakeUpstream) -> None:
    client = oa(fake)
    f = upload(client, [chat_line("a", "x")])
    fake.configure(rate_limit_creates=1, rate_limit_polls=1, retry_after=0.05)
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.retrieve(b.id).status == "in_progress"
    assert fake.counters()["rate_limited"] == 2 and fake.counters()["openai_batch_creates"] == 1
    fake.configure(rate_limit_polls=1, retry_after=2.0)
    with pytest.raises(anthropic.RateLimitError) as caught:
        an(fake, max_retries=0).messages.batches.list()
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "2000"


def test_a_fresh_upload_is_not_visible_at_once(fake: FakeUpstream) -> None:
    client = oa(fake, max_retries=0)
    fake.configure(hidden_file_reads=2)
    f = upload(client, [chat_line("a", "x")])
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(f.id)
    with pytest.raises(openai.BadRequestError, match=f"Cannot find file {f.id}"):
        client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")


def test_crlf_results(fake: FakeUpstream) -> None:
    client = oa(fake)
    fake.configure(crlf=True)
    f = upload(client, [chat_line("a", "x"), chat_line("b", "y")])
    created = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    b = finish(client, created.id)
    assert b.output_file_id is not None
    raw = client.files.content(b.output_file_id).content
    assert raw.count(b"\r\n") == 2 and raw.endswith(b"\r\n")
    mb = finish_mb(an(fake), an(fake).messages.batches.create(requests=[request("a", "x")]).id)
    assert mb.results_url is not None
    body = httpx.get(mb.results_url, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}).content
    assert body.endswith(b"\r\n") and body.count(b"\n") == 1


def test_stall_and_expire_all_keep_partial_results(fake: FakeUpstream) -> None:
    client, aclient = oa(fake), an(fake)
    fake.configure(stall=True)
    f = upload(client, [chat_line(f"r{i}", f"q{i}") for i in range(4)])
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    m = aclient.messages.batches.create(requests=[request("a", "x"), request("b", "y")])
    for _ in range(10):
        stalled = retrieve(client, b.id)
        retrieve_mb(aclient, m.id)
    assert stalled.status == "in_progress" and stalled.request_counts is not None
    assert stalled.request_counts.completed == 2
    fake.expire_all()
    expired = retrieve(client, b.id)
    assert expired.status == "expired" and expired.expired_at is not None
    assert len(lines_of(client, expired.output_file_id)) == 2
    errors = lines_of(client, expired.error_file_id)
    assert {e["error"]["code"] for e in errors} == {"batch_expired"} and len(errors) == 2
    ended = retrieve_mb(aclient, m.id)
    assert (ended.processing_status, ended.request_counts.succeeded, ended.request_counts.expired) == ("ended", 1, 1)
    assert {r.result.type for r in aclient.messages.batches.results(m.id)} == {"succeeded", "expired"}


def test_speed_knobs(fake: FakeUpstream) -> None:
    client = oa(fake)
    f = upload(client, [chat_line("a", "x")])
    fake.configure(steps_per_poll=10)
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert retrieve(client, b.id).status == "completed"
    fake.configure(steps_per_poll=0, step_interval=0.01)
    b2 = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 10
    while next(x for x in fake.batches() if x["id"] == b2.id)["state"] != "completed":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    fake.configure(step_interval=0, progress_steps=4)
    f4 = upload(client, [chat_line(f"r{i}", "x") for i in range(4)])
    b3 = client.batches.create(input_file_id=f4.id, endpoint="/v1/chat/completions", completion_window="24h")
    fake.configure(steps_per_poll=1)
    seen = [retrieve(client, b3.id).request_counts for _ in range(3)]
    assert [c.completed for c in seen if c is not None] == [0, 1, 2]


def test_token_limit_size_limit_and_key_knobs(fake: FakeUpstream) -> None:
    client = oa(fake)
    fake.configure(enqueued_token_limit=10)
    f = upload(client, [chat_line(f"r{i}", "a fairly long question " * 4) for i in range(3)])
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    failed = retrieve(client, b.id)
    assert failed.status == "failed" and failed.errors is not None and failed.errors.data
    assert failed.errors.data[0].code == "token_limit_exceeded"

    fake.configure(max_request_bytes=50)
    with pytest.raises(anthropic.APIStatusError) as caught:
        an(fake, max_retries=0).messages.batches.create(requests=[request("a", "long " * 20)])
    assert caught.value.status_code == 413

    fake.configure(api_key="sk-only-this")
    assert fake.knobs()["api_key_required"] is True
    assert "sk-only-this" not in repr(fake.knobs())
    with pytest.raises(openai.AuthenticationError):
        client.batches.list()
    assert openai.OpenAI(base_url=fake.url + "/v1", api_key="sk-only-this").batches.list().data is not None
    fake.configure(api_key="")
    assert client.batches.list().data is not None


def test_knob_errors_and_state_outside_a_run() -> None:
    up = FakeUpstream()
    up.configure(crlf=True)
    assert up.knobs()["crlf"] is True
    with pytest.raises(RuntimeError, match="not running"):
        up.counters()
    with pytest.raises(ValueError, match="faults_for"):
        up.configure(faults_for="gemini")
    with pytest.raises(ValueError, match="retry_after"):
        up.configure(retry_after=-1)
    with pytest.raises(ValueError, match="progress_steps"):
        up.configure(progress_steps=0)
    with up:
        assert up.knobs()["crlf"] is True, "knobs set before start apply"
        assert up.counters()["openai_batch_creates"] == 0 and up.batches() == []


def test_expire_after_expires_batches_by_age(fake: FakeUpstream) -> None:
    client = oa(fake)
    f = upload(client, [chat_line(f"r{i}", "x") for i in range(2)])
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    fake.configure(expire_after=0.001)
    assert fake.knobs()["expire_after"] == 0.001
    time.sleep(0.01)
    expired = retrieve(client, b.id)
    assert expired.status == "expired" and expired.output_file_id is None
    assert [e["error"]["code"] for e in lines_of(client, expired.error_file_id)] == ["batch_expired"] * 2
    assert fake.batches()[0]["state"] == "expired"
    fake.configure(expire_after=0)
    assert fake.knobs()["expire_after"] == 0.0
