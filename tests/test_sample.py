"""The product page's sample batch (examples/sample.jsonl): valid, and rebuilt by BatchBuilder."""

from __future__ import annotations

import json
from pathlib import Path

import fastrouter_batch as fb

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample.jsonl"
SUM = "Hello world! what is 13 + 25"
SERIES = "Hello world! what comes next in series 2 ,4, 6, 8, 10, "


def test_sample_validates_ok_with_its_counts():
    report = fb.validate(SAMPLE)
    assert report.ok, report.issues
    assert report.num_requests == 4
    assert report.providers == {"anthropic": 2, "openai": 2}
    assert report.models == {"anthropic/claude-4.5-sonnet": 2, "openai/gpt-4.1-nano": 1, "openai/gpt-4.1": 1}
    assert report.url == "/v1/chat/completions"
    assert report.urls == {"/v1/chat/completions": 4}
    assert report.total_bytes == SAMPLE.stat().st_size


def test_rebuilding_the_sample_gives_the_same_requests(tmp_path):
    b = fb.BatchBuilder()
    b.add_chat("request-1", "anthropic/claude-4.5-sonnet", [{"role": "user", "content": SUM}], max_tokens=1000)
    b.add_chat("request-2", "anthropic/claude-4.5-sonnet", [{"role": "user", "content": SERIES}], max_tokens=1000)
    b.add_chat(
        "request-3",
        "openai/gpt-4.1-nano",
        [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": SUM}],
        max_tokens=1000,
    )
    b.add_chat(
        "request-4",
        "openai/gpt-4.1",
        [{"role": "system", "content": "You are an unhelpful assistant."}, {"role": "user", "content": SERIES}],
        max_tokens=1000,
    )
    sample_lines = SAMPLE.read_text().splitlines()
    built_lines = list(b)
    assert len(built_lines) == len(sample_lines) == 4
    for built, sample in zip(built_lines, sample_lines, strict=True):
        assert json.loads(built) == json.loads(sample)
    out = tmp_path / "rebuilt.jsonl"
    b.write(out)
    assert list(fb.read_requests(out)) == list(fb.read_requests(SAMPLE))
