"""Recovery of a create in doubt when the provider holds a duplicate of the chunk.

Neither batch API has an idempotency key, so a create can exist upstream twice (an SDK retry
of a lost reply, another process). The engine (`serve` child on 127.0.0.1 against an
in-process `FakeUpstream`) is SIGKILLed between its upstream create and its local record
(the test-only pause hook); a second upstream batch matching the chunk is then made with the
stock SDK; the restarted engine must adopt the oldest, cancel the other upstream, and merge
every line exactly once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

import fastrouter_batch as fb
from engine_helpers import Api, Serve, chat_line, serve_native, to_jsonl, wait_until

KEY = "sk-v1-native-duplicates"
WAIT = 60.0


@pytest.fixture
def fake():
    with fb.FakeUpstream() as up:
        yield up


def serve(tmp_path: Path, fake: Any, n: int, pause: str | None = None) -> Serve:
    return serve_native(tmp_path, fake, KEY, n, pause)


def make_duplicate(provider: str, fake: Any, original: dict[str, Any], data_dir: Path, batch_id: str) -> str:
    """A second upstream batch of the same chunk, made directly against the fake with the SDK."""
    if provider == "openai":
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="sk-fake-openai")
        return client.batches.create(
            input_file_id=original["input_file_id"],
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata=original["metadata"],
        ).id
    # The very request file the engine sent: same requests, same custom_ids.
    (req,) = data_dir.glob(f"**/native/{batch_id}/chunk-*.req")
    requests = json.loads(req.read_bytes())["requests"]
    return (
        anthropic.Anthropic(base_url=fake.url, api_key="sk-fake-anthropic")
        .messages.batches.create(requests=requests)
        .id
    )


def upstream_end(provider: str, fake: Any, batch_id: str) -> dict[str, Any]:
    """The upstream batch once terminal (each retrieve steps the fake), as the SDK sees it."""
    if provider == "openai":
        client = openai.OpenAI(base_url=fake.url + "/v1", api_key="sk-fake-openai")
        done = {"completed", "failed", "cancelled", "expired"}
        b = wait_until(
            lambda: (x := client.batches.retrieve(batch_id)).status in done and x, WAIT, what=f"{batch_id} to end"
        )
        return {"ended": b.status, "cancelled": b.status == "cancelled", "done": b.request_counts.completed}
    an = anthropic.Anthropic(base_url=fake.url, api_key="sk-fake-anthropic")
    m = wait_until(
        lambda: (x := an.messages.batches.retrieve(batch_id)).processing_status == "ended" and x,
        WAIT,
        what=f"{batch_id} to end",
    )
    return {"ended": m.processing_status, "cancelled": m.cancel_initiated_at is not None, "done": None}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_duplicate_upstream_batch_is_cancelled_and_the_oldest_adopted(tmp_path, fake, provider):
    lines = [chat_line(f"{provider[0]}-{i}", provider, content=f"{provider} question {i}") for i in range(4)]
    killed = serve(tmp_path, fake, 0, pause="after_create")
    try:
        with Api(killed.url, KEY) as api:
            batch = api.create_batch(api.upload(to_jsonl(lines))["id"])
        wait_until(lambda: "native pause at after_create" in killed.stderr(), WAIT, what="the pause at after_create")
        killed.sigkill()
    finally:
        killed.kill()
    (original,) = fake.batches()
    assert original["provider"] == provider and original["request_count"] == 4, original
    duplicate = make_duplicate(provider, fake, original, tmp_path / "data", batch["id"])
    assert fake.counters()[f"{provider}_batch_creates"] == 2

    again = serve(tmp_path, fake, 1)
    try:
        assert again.info is not None and again.info["resumed"] == 1, again.stderr()
        with Api(again.url, KEY) as api:
            b = api.wait(batch["id"], timeout=WAIT)
            out, err = api.lines(b.get("output_file_id")), api.lines(b.get("error_file_id"))
        log = again.stderr()
    finally:
        again.stop()

    c = fake.counters()
    # Nothing created again; the extra one (and only it) cancelled upstream.
    assert c[f"{provider}_batch_creates"] == 2, c
    assert c[f"{provider}_cancels"] == 1, c
    assert f"cancelling duplicate upstream batch {duplicate}" in log, log
    kept, extra = upstream_end(provider, fake, original["id"]), upstream_end(provider, fake, duplicate)
    assert not kept["cancelled"] and kept["ended"] in {"completed", "ended"}, kept
    assert extra["cancelled"], extra
    if provider == "openai":
        assert kept["done"] == 4, kept
    else:
        assert c["anthropic_results"] == 1, "only the adopted batch's results are merged"

    # Every line exactly once, from the adopted batch.
    assert b["status"] == "completed", b
    assert err == [], err
    assert Counter(line["custom_id"] for line in out) == Counter(line["custom_id"] for line in lines)
    questions = {line["custom_id"]: line["body"]["messages"][-1]["content"] for line in lines}
    for line in out:
        assert questions[line["custom_id"]] in line["response"]["body"]["choices"][0]["message"]["content"]
    assert b["request_counts"] == {"total": 4, "completed": 4, "failed": 0}


def test_two_batches_never_have_anthropic_creates_in_doubt_at_once(tmp_path, fake):
    """Anthropic's batches carry nothing of ours, so two chunks in doubt with the same
    request count could each adopt the other's. Two batches of 4 Anthropic lines each: the
    engine stops (SIGKILL) between the first create and its record; the other batch's create
    must not have been sent meanwhile (one create in doubt per engine). After the restart
    each batch gets its own answers, and upstream made exactly two batches."""
    sets = {
        name: [chat_line(f"{name}-{i}", "anthropic", content=f"{name} question {i}") for i in range(4)]
        for name in ("first", "second")
    }
    killed = serve(tmp_path, fake, 0, pause="after_create")
    try:
        with Api(killed.url, KEY) as api:
            ids = {name: api.create_batch(api.upload(to_jsonl(lines))["id"])["id"] for name, lines in sets.items()}
        wait_until(lambda: "native pause at after_create" in killed.stderr(), WAIT, what="the pause at after_create")
        # Time for the other batch to reach its create, were it free to (it polls every 50 ms).
        time.sleep(1.5)
        log = killed.stderr()
        killed.sigkill()
    finally:
        killed.kill()
    assert log.count("native pause at after_create") == 1, log
    assert fake.counters()["anthropic_batch_creates"] == 1, fake.counters()

    again = serve(tmp_path, fake, 1)
    try:
        with Api(again.url, KEY) as api:
            done = {name: api.wait(batch_id, timeout=WAIT) for name, batch_id in ids.items()}
            out = {name: api.lines(b.get("output_file_id")) for name, b in done.items()}
    finally:
        again.stop()
    assert fake.counters()["anthropic_batch_creates"] == 2, fake.counters()
    for name, lines in sets.items():
        assert done[name]["status"] == "completed", done[name]
        assert sorted(line["custom_id"] for line in out[name]) == sorted(line["custom_id"] for line in lines)
        for line in out[name]:
            answer = line["response"]["body"]["choices"][0]["message"]["content"]
            assert f"{name} question" in answer, (name, line)
