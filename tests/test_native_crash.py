"""Native mode survives SIGKILL at each step of an upstream batch's life.

The engine runs as `python -m fastrouter_batch serve --provider upstream` (a child process on
127.0.0.1 with a data directory) against an in-process `FakeUpstream`. The test-only hook
`FASTROUTER_BATCH_NATIVE_PAUSE_AT=<point>` makes it announce and stop at a named point; the
test SIGKILLs it there, starts it again on the same data directory (without the hook) and
checks the end: exactly one upstream batch per chunk (the fake's counters), every line once.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import fastrouter_batch as fb
from engine_helpers import Api, Serve, chat_line, serve_native, to_jsonl, wait_until

KEY = "sk-v1-native-crash"
WAIT = 60.0


@pytest.fixture
def fake():
    with fb.FakeUpstream() as up:
        yield up


def lines_for(first: str) -> list[dict[str, Any]]:
    """8 OpenAI and 6 Anthropic lines (2 chunks each at 4 a chunk), `first`'s line first."""
    openai = [chat_line(f"o-{i}", "openai", content=f"openai question {i}") for i in range(8)]
    anthropic = [chat_line(f"a-{i}", "anthropic", content=f"anthropic question {i}") for i in range(6)]
    a, b = (openai, anthropic) if first == "openai" else (anthropic, openai)
    out = []
    for i in range(8):
        out += a[i : i + 1] + b[i : i + 1]
    return out


def serve(tmp_path: Path, fake: Any, n: int, pause: str | None = None) -> Serve:
    return serve_native(tmp_path, fake, KEY, n, pause)


@pytest.mark.parametrize(
    ("point", "first"),
    [
        ("after_plan", "openai"),
        ("after_upload", "openai"),
        ("after_create", "openai"),
        ("after_create", "anthropic"),
        ("polling", "openai"),
        ("mid_merge", "openai"),
        ("mid_merge", "anthropic"),
    ],
)
def test_sigkill_then_restart_runs_each_chunk_upstream_exactly_once(tmp_path, fake, point, first):
    lines = lines_for(first)
    killed = serve(tmp_path, fake, 0, pause=point)
    try:
        with Api(killed.url, KEY) as api:
            batch = api.create_batch(api.upload(to_jsonl(lines))["id"])
        wait_until(lambda: f"native pause at {point}" in killed.stderr(), WAIT, what=f"the pause at {point}")
        killed.sigkill()
    finally:
        killed.kill()
    before = fake.counters()
    # The kill landed where it was meant to (so the end below proves the recovery).
    made = before["openai_batch_creates"] + before["anthropic_batch_creates"]
    if point == "after_plan":
        assert before["file_uploads"] == 0 and made == 0, before
    elif point == "after_upload":
        assert before["file_uploads"] == 1 and made == 0, before
    elif point == "after_create":
        # Created upstream, never recorded here: the restart must find it, not create again.
        assert before[f"{first}_batch_creates"] == 1 and made == 1, before
    else:
        assert made >= 1, before

    again = serve(tmp_path, fake, 1)
    try:
        assert again.info is not None and again.info["resumed"] == 1, again.stderr()
        with Api(again.url, KEY) as api:
            b = api.wait(batch["id"], timeout=WAIT)
            out, err = api.lines(b.get("output_file_id")), api.lines(b.get("error_file_id"))
    finally:
        again.stop()
    c = fake.counters()
    # 8 OpenAI lines in 2 chunks, 6 Anthropic lines in 2: one upstream batch each, whatever
    # had happened before the kill.
    assert c["openai_batch_creates"] == 2, (point, before, c)
    assert c["anthropic_batch_creates"] == 2, (point, before, c)
    assert c["file_uploads"] == 2, c
    assert c["chat_calls"] == c["messages_calls"] == 0
    assert b["status"] == "completed", b
    assert err == [], err
    counts = Counter(line["custom_id"] for line in out)
    assert counts == Counter(line["custom_id"] for line in lines), counts
    questions = {line["custom_id"]: line["body"]["messages"][-1]["content"] for line in lines}
    for line in out:
        assert line["response"]["status_code"] == 200
        assert questions[line["custom_id"]] in line["response"]["body"]["choices"][0]["message"]["content"]
    assert b["request_counts"] == {"total": len(lines), "completed": len(lines), "failed": 0}
