"""Native mode (`LocalServer(provider="upstream", upstream_mode="native")`): a batch's lines go
through each provider's own batch API (here `FakeUpstream`'s OpenAI Files + Batches and
Anthropic Message Batches, real HTTP on 127.0.0.1) and come back merged, every custom_id
exactly once, whatever fails upstream: lines, whole upstream batches, create replies, 429s,
cancel and expiry.

The fake's counters prove what was sent upstream (creates per provider, no realtime calls).
Crash safety with real processes lives in tests/test_native_crash.py.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest

import fastrouter_batch as fb
from engine_helpers import CHAT, EMBEDDINGS, Api, chat_line, embedding_line, to_jsonl, wait_until
from fastrouter_batch import Client

KEY = "sk-v1-native-test"
WAIT = 60.0  # seconds: the bound on every wait in this file
POLL = 0.02  # the engine's longest wait between polls


@pytest.fixture
def fake():
    with fb.FakeUpstream() as up:
        yield up


def native(fake: Any, **options: Any) -> fb.LocalServer:
    opts: dict[str, Any] = {
        "provider": "upstream",
        "upstream_mode": "native",
        "api_key": KEY,
        "openai_base_url": fake.url,
        "openai_api_key": "sk-fake-openai",
        "anthropic_base_url": fake.url,
        "anthropic_api_key": "sk-fake-anthropic",
        "poll_interval": POLL,
        "upstream_timeout": 10.0,
    }
    opts.update(options)
    return fb.LocalServer(**opts)


def mixed_lines() -> list[dict[str, Any]]:
    """Two OpenAI models and Anthropic, interleaved; `*-bad` lines fail upstream (the fake's
    marker). (Anthropic's custom_id rule is checked at validation, so no surrogate is needed
    here; tests in engine/tests/native_plan.rs cover them.)"""
    lines: list[dict[str, Any]] = []
    for i in range(6):
        lines.append(chat_line(f"nano-{i}", "openai", model="openai/gpt-4.1-nano", content=f"nano question {i}"))
        if i < 4:
            lines.append(chat_line(f"mini-{i}", "openai", model="openai/gpt-4.1-mini", content=f"mini question {i}"))
        if i < 5:
            lines.append(chat_line(f"claude-{i}", "anthropic", content=f"claude question {i}"))
    lines.append(chat_line("nano-bad", "openai", model="openai/gpt-4.1-nano", content="please [fake:error] now"))
    lines.append(chat_line("claude-bad", "anthropic", content="please [fake:error] now"))
    return lines


def by_id(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    counts = Counter(line["custom_id"] for line in lines)
    assert max(counts.values(), default=1) == 1, [c for c, n in counts.items() if n > 1]
    return {line["custom_id"]: line for line in lines}


def run_raw(api: Api, lines: list[dict[str, Any]], endpoint: str = CHAT) -> tuple[dict, list, list]:
    f = api.upload(to_jsonl(lines))
    b = api.create_batch(f["id"], endpoint)
    b = api.wait(b["id"], timeout=WAIT)
    return b, api.lines(b.get("output_file_id")), api.lines(b.get("error_file_id"))


def test_a_mixed_file_runs_one_upstream_batch_per_group_and_merges_exactly_once(fake):
    lines = mixed_lines()
    with native(fake) as server:
        client = Client(KEY, server.url, timeout=10, max_retries=0)
        results = client.run(lines, timeout=WAIT, progress=False)
        with Api(server.url, KEY) as api:
            batches = api.ok(api.http.get("/v1/batches"))["data"]
    c = fake.counters()
    # gpt-4.1-nano, gpt-4.1-mini: one OpenAI batch each; every Anthropic line in one batch.
    assert c["openai_batch_creates"] == 2, c
    assert c["anthropic_batch_creates"] == 1, c
    assert c["chat_calls"] == c["messages_calls"] == c["embedding_calls"] == 0, c
    # Hygiene: both uploaded input files deleted once their batches ended.
    assert c["file_uploads"] == 2 and c["file_deletes"] == 2, c

    assert sorted(results.custom_ids) == sorted(line["custom_id"] for line in lines)
    assert results.missing == []
    for line in lines:
        r = results[line["custom_id"]]
        question = line["body"]["messages"][-1]["content"]
        if line["custom_id"].endswith("-bad"):
            assert r.ok is False and r.status_code == 400, r
            continue
        assert r.ok is True, r
        assert r.body["object"] == "chat.completion"
        assert question in r.text, (r.text, question)
        model = line["body"]["model"].split("/", 1)[1]
        assert model in r.model or "claude" in r.model, r.model
        assert r.usage["prompt_tokens"] > 0

    # The batch's usage is summed from the results; the dashboard data lists the upstream batches.
    (b,) = batches
    assert b["status"] == "completed"
    assert b["request_counts"] == {"total": len(lines), "completed": len(lines) - 2, "failed": 2}
    assert b["usage"]["input_tokens"] > 0 and b["usage"]["output_tokens"] > 0
    assert b["usage"]["total_tokens"] == b["usage"]["input_tokens"] + b["usage"]["output_tokens"]
    ups = b["upstream_batches"]
    assert sorted(u["provider"] for u in ups) == ["anthropic", "openai", "openai"]
    assert all(u["id"] and u["state"] == "merged" for u in ups), ups
    assert sum(u["request_counts"]["total"] for u in ups) == len(lines)


def test_many_chunks_with_429_storms_and_hidden_files(fake):
    fake.configure(rate_limit_creates=4, rate_limit_polls=6, retry_after=0.05, hidden_file_reads=1)
    lines = [chat_line(f"o-{i}", "openai", content=f"q {i}") for i in range(10)]
    lines += [chat_line(f"a-{i}", "anthropic", content=f"q {i}") for i in range(7)]
    lines += [embedding_line(f"e-{i}", f"text {i}") for i in range(3)]
    with native(fake, native_chunk_size=3) as server, Api(server.url, KEY) as api:
        chat, out, err = run_raw(api, lines[:17])
        emb, emb_out, emb_err = run_raw(api, lines[17:], EMBEDDINGS)
    assert chat["status"] == "completed" and emb["status"] == "completed"
    assert err == [] and emb_err == []
    assert set(by_id(out)) == {line["custom_id"] for line in lines[:17]}
    assert set(by_id(emb_out)) == {line["custom_id"] for line in lines[17:]}
    c = fake.counters()
    # ceil(10/3) + ceil(3/3) OpenAI chunks, ceil(7/3) Anthropic: one upstream batch each.
    assert c["openai_batch_creates"] == 5, c
    assert c["anthropic_batch_creates"] == 3, c
    assert c["rate_limited"] >= 10, c


def test_a_dropped_create_reply_makes_exactly_one_upstream_batch(fake):
    fake.configure(drop_create_replies=2)
    lines = [chat_line(f"o-{i}", "openai") for i in range(4)] + [chat_line(f"a-{i}", "anthropic") for i in range(4)]
    with native(fake) as server, Api(server.url, KEY) as api:
        b, out, err = run_raw(api, lines)
    c = fake.counters()
    assert c["dropped_replies"] == 2, c
    assert c["openai_batch_creates"] == 1 and c["anthropic_batch_creates"] == 1, c
    assert b["status"] == "completed" and err == []
    assert set(by_id(out)) == {line["custom_id"] for line in lines}


def test_a_held_create_times_out_and_is_adopted_not_repeated(fake):
    fake.configure(hold_creates=True, faults_for="anthropic")
    lines = [chat_line(f"a-{i}", "anthropic") for i in range(3)]
    with native(fake, upstream_timeout=1.0) as server, Api(server.url, KEY) as api:
        b = api.create_batch(api.upload(to_jsonl(lines))["id"])
        wait_until(lambda: fake.counters()["anthropic_batch_creates"] == 1, WAIT, what="the held create")
        time.sleep(1.5)  # past the engine's timeout: the reply is lost to it
        fake.configure(hold_creates=False)
        b = api.wait(b["id"], timeout=WAIT)
        out = api.lines(b["output_file_id"])
    assert fake.counters()["anthropic_batch_creates"] == 1
    assert b["status"] == "completed"
    assert set(by_id(out)) == {line["custom_id"] for line in lines}


def test_an_upstream_batch_failed_at_validation_puts_its_lines_in_the_error_file(fake):
    fake.configure(enqueued_token_limit=1)
    lines = [chat_line(f"o-{i}", "openai") for i in range(3)] + [chat_line(f"a-{i}", "anthropic") for i in range(2)]
    with native(fake) as server, Api(server.url, KEY) as api:
        b, out, err = run_raw(api, lines)
    assert b["status"] == "completed"
    assert set(by_id(out)) == {"a-0", "a-1"}
    errors = by_id(err)
    assert set(errors) == {"o-0", "o-1", "o-2"}
    for e in errors.values():
        assert e["response"] is None
        assert e["error"]["code"] == "token_limit_exceeded", e
        assert e["error"]["message"]
    assert b["request_counts"] == {"total": 5, "completed": 2, "failed": 3}


def _stalled_batch(api: Api, fake: Any, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Creates a batch and waits until its upstream batches are stalled half done."""
    b = api.create_batch(api.upload(to_jsonl(lines))["id"])

    def submitted() -> bool:
        ups = api.batch(b["id"]).get("upstream_batches") or []
        return len(ups) == 2 and all(u["state"] == "submitted" for u in ups)

    wait_until(submitted, WAIT, what="both upstream batches submitted")
    wait_until(lambda: api.batch(b["id"])["request_counts"]["completed"] >= 2, WAIT, what="live OpenAI counts")
    return api.batch(b["id"])


def test_cancel_cancels_every_upstream_batch_and_keeps_partial_results(fake):
    fake.configure(stall=True, progress_steps=2)
    lines = [chat_line(f"o-{i}", "openai") for i in range(6)] + [chat_line(f"a-{i}", "anthropic") for i in range(6)]
    with native(fake) as server, Api(server.url, KEY) as api:
        b = _stalled_batch(api, fake, lines)
        assert b["status"] == "in_progress"
        api.cancel(b["id"])
        b = api.wait(b["id"], timeout=WAIT)
        out, err = api.lines(b.get("output_file_id")), api.lines(b.get("error_file_id"))
    c = fake.counters()
    assert c["openai_cancels"] == 1 and c["anthropic_cancels"] == 1, c
    assert b["status"] == "cancelled"
    merged = by_id(out + err)
    assert set(merged) == {line["custom_id"] for line in lines}
    # The half that ran upstream is kept; the rest is reported as cancelled.
    assert len(out) >= 2, out
    assert all(e["error"]["code"] == "batch_cancelled" for e in err), err
    assert b["request_counts"]["completed"] == len(out)


def test_our_expiry_cancels_upstream_and_keeps_partial_results(fake):
    fake.configure(stall=True, progress_steps=2)
    lines = [chat_line(f"o-{i}", "openai") for i in range(4)] + [chat_line(f"a-{i}", "anthropic") for i in range(4)]
    with native(fake, completion_window=3.0) as server, Api(server.url, KEY) as api:
        b = _stalled_batch(api, fake, lines)
        b = api.wait(b["id"], timeout=WAIT)
        out, err = api.lines(b.get("output_file_id")), api.lines(b.get("error_file_id"))
    assert b["status"] == "expired"
    c = fake.counters()
    assert c["openai_cancels"] == 1 and c["anthropic_cancels"] == 1, c
    assert set(by_id(out + err)) == {line["custom_id"] for line in lines}
    assert len(out) >= 2
    assert all(e["error"]["code"] == "batch_expired" for e in err), err


def test_upstream_expiry_reports_the_lines_that_did_not_run(fake):
    fake.configure(stall=True, progress_steps=2)
    lines = [chat_line(f"o-{i}", "openai") for i in range(4)] + [chat_line(f"a-{i}", "anthropic") for i in range(4)]
    with native(fake) as server, Api(server.url, KEY) as api:
        b = _stalled_batch(api, fake, lines)
        fake.expire_all()
        b = api.wait(b["id"], timeout=WAIT)
        out, err = api.lines(b.get("output_file_id")), api.lines(b.get("error_file_id"))
    assert b["status"] == "completed"
    assert set(by_id(out + err)) == {line["custom_id"] for line in lines}
    assert len(out) >= 2 and err
    assert all(e["error"]["code"] == "batch_expired" for e in err), err


def test_realtime_mode_still_calls_per_line(fake):
    lines = [chat_line("o", "openai"), chat_line("a", "anthropic")]
    with native(fake, upstream_mode="realtime") as server, Api(server.url, KEY) as api:
        b, out, _ = run_raw(api, lines)
    c = fake.counters()
    assert c["openai_batch_creates"] == c["anthropic_batch_creates"] == 0
    assert c["chat_calls"] == 1 and c["messages_calls"] == 1
    assert b["status"] == "completed" and len(out) == 2
    assert "upstream_batches" not in b


def test_bad_native_options_are_refused():
    with pytest.raises(ValueError, match="upstream_mode"):
        fb.LocalServer(provider="upstream", upstream_mode="cheap")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval"):
        fb.LocalServer(provider="upstream", poll_interval=0)
    with pytest.raises(ValueError, match="native_chunk_size"):
        fb.LocalServer(provider="upstream", native_chunk_size=0)
