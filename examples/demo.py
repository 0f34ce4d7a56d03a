"""The main job, end to end on the embedded local engine: build the product page's four
requests, validate them (and show what a deliberately broken copy gets), start the engine,
upload, trigger, wait with progress, download and print custom_id -> answer.

Run with `make demo`. Point it at the hosted service instead with
`FASTROUTER_API_KEY=... python examples/demo.py --hosted`.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import fastrouter_batch as fb

HERE = Path(__file__).parent
QUESTION_SUM = "Hello world! what is 13 + 25"
QUESTION_SERIES = "Hello world! what comes next in series 2 ,4, 6, 8, 10, "


def build_sample() -> fb.BatchBuilder:
    """The seed's sample batch: Anthropic and OpenAI models mixed in one file."""
    b = fb.BatchBuilder()
    b.add_chat("request-1", "anthropic/claude-4.5-sonnet", [{"role": "user", "content": QUESTION_SUM}], max_tokens=1000)
    b.add_chat(
        "request-2", "anthropic/claude-4.5-sonnet", [{"role": "user", "content": QUESTION_SERIES}], max_tokens=1000
    )
    b.add_chat(
        "request-3",
        "openai/gpt-4.1-nano",
        [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": QUESTION_SUM}],
        max_tokens=1000,
    )
    b.add_chat(
        "request-4",
        "openai/gpt-4.1",
        [
            {"role": "system", "content": "You are an unhelpful assistant."},
            {"role": "user", "content": QUESTION_SERIES},
        ],
        max_tokens=1000,
    )
    return b


def break_copy(lines: list[str]) -> bytes:
    """The same batch with the mistakes people make, one or more per line."""
    rows = [json.loads(line) for line in lines]
    del rows[0]["body"]["max_tokens"]  # Anthropic needs max_tokens
    rows[1]["custom_id"] = "request 2!"  # Anthropic's id rule
    rows[2]["custom_id"] = "request-4"  # duplicate id (line 4 has it too)
    rows[2]["body"]["messages"][0]["role"] = "narrator"  # not a role
    rows[3]["body"]["model"] = "anthropic/claude-4.5-sonnet"  # provider says openai
    out = [json.dumps(r) for r in rows]
    out.insert(2, '{"custom_id": "request-5", "provider": "openai", ')  # truncated JSON
    return ("\n".join(out) + "\n").encode()


def run_batch(client: fb.Client, builder: fb.BatchBuilder) -> int:
    """Upload, trigger, wait, download: the four operations, then the answers."""
    f = client.files.create(builder)
    print(f"   uploaded {f.id}: {f.num_rows} requests, {f.bytes} bytes")
    batch = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", metadata={"source": "make demo"})
    print(f"   triggered {batch.id} ({batch.status})")
    batch = client.batches.wait(batch.id)
    counts = batch.request_counts
    print(f"   {batch.status}: {counts.completed if counts else 0} completed, {counts.failed if counts else 0} failed")
    results = client.batches.results(batch)
    width = max(len(r.custom_id) for r in results)
    print()
    for r in results:
        answer = r.text if r.ok else f"[{(r.error or {}).get('code') or r.status_code}]"
        print(f"   {r.custom_id:<{width}}  {r.model or '':<28} {answer}")
    return 0 if batch.status == "completed" and all(r.ok for r in results) else 1


def main() -> int:
    builder = build_sample()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sample.jsonl"
        builder.write(path)  # validates first; raises on any problem
        report = fb.validate(path)
        print(f"== built {path.name}: {report!r}")
        print(f"   providers {report.providers}, models {report.models}")
        same = path.read_bytes().splitlines() == (HERE / "sample.jsonl").read_bytes().splitlines()
        seed = fb.validate(HERE / "sample.jsonl")
        print(f"   the product page's sample.jsonl: {seed!r}")
        if not same:
            ours = [json.loads(x) for x in path.read_bytes().splitlines()]
            theirs = [json.loads(x) for x in (HERE / "sample.jsonl").read_bytes().splitlines()]
            print(f"   same requests as the product page's sample: {ours == theirs}")

        broken = break_copy(list(builder))
        print("\n== a deliberately broken copy:")
        bad = fb.validate(broken)
        print(bad)
        try:
            bad.raise_for_errors()
        except fb.BatchValidationError as e:
            print(f"\n   raise_for_errors() -> {type(e).__name__} with {e.report.total_issues} problems")
    if not report.ok or bad.ok:
        return 1

    if "--hosted" in sys.argv:
        print("\n== running the batch on the hosted service")
        return run_batch(fb.Client(), builder)
    print("\n== running the batch on the embedded local engine (simulated provider)")
    with fb.LocalServer(latency=0.02) as server:
        print(f"   engine at {server.url}, data in {server.data_dir}")
        return run_batch(fb.Client(api_key=server.api_key, base_url=server.url), builder)


if __name__ == "__main__":
    sys.exit(main())
