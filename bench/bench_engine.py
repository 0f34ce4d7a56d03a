"""End-to-end throughput of the local engine against a Python asyncio + httpx fan-out.

    python bench/bench_engine.py [--lines 100000] [--latency 0.05] [--concurrency 1024]

Both sides send the same 100,000 chat requests to the same provider served over HTTP
on loopback (`FakeUpstream`: OpenAI and Anthropic wire formats, 50 ms per request):

- engine: upload the batch file to a `LocalServer(provider="upstream")`, create the
  batch, poll until it completes, download the output. Wall time covers all of it.
- fan-out: what users hand-write today: `asyncio` + `httpx.AsyncClient`, a semaphore
  bounding requests in flight, one POST per line, replies collected into a dict.

Prints requests/s for both and the ratio (targets: engine >= 10,000 req/s on a 2-core
machine, and >= 5x the fan-out). Checks both got one 200 answer per custom_id.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_batch import generate

try:
    import fastrouter_batch
except ImportError:  # pragma: no cover
    print("fastrouter_batch is not installed: run `make build` first", file=sys.stderr)
    sys.exit(2)


def _request(url: str, key: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Authorization": f"Bearer {key}", **(headers or {})}
    )
    with urllib.request.urlopen(req, timeout=600) as resp:
        return resp.read()


def _upload(base: str, key: str, path: str) -> str:
    boundary = "benchboundary7f3a"
    with open(path, "rb") as f:
        data = f.read()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.jsonl"\r\n'
            "Content-Type: application/jsonl\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    out = _request(f"{base}/v1/files", key, "POST", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return json.loads(out)["id"]


def run_engine(path: str, lines: int, upstream_url: str, concurrency: int) -> tuple[float, dict]:
    server = fastrouter_batch.LocalServer(
        provider="upstream",
        upstream_mode="realtime",
        openai_base_url=upstream_url,
        openai_api_key="sk-bench",
        anthropic_base_url=upstream_url,
        anthropic_api_key="sk-bench",
        concurrency=concurrency,
        limits=fastrouter_batch.Limits(max_requests=lines),
    )
    with server:
        base, key = server.url, server.api_key
        start = time.perf_counter()
        file_id = _upload(base, key, path)
        body = json.dumps({"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
        batch = json.loads(
            _request(f"{base}/v1/batches", key, "POST", body.encode(), {"Content-Type": "application/json"})
        )
        while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
            time.sleep(0.05)
            batch = json.loads(_request(f"{base}/v1/batches/{batch['id']}", key))
        answers = {}
        if batch.get("output_file_id"):
            for raw in _request(f"{base}/v1/files/{batch['output_file_id']}/content", key).splitlines():
                line = json.loads(raw)
                if line["response"]["status_code"] == 200:
                    answers[line["custom_id"]] = line["response"]["body"]["choices"][0]["message"]["content"]
        elapsed = time.perf_counter() - start
        if batch["status"] != "completed":
            print(f"engine batch ended {batch['status']}: {batch.get('errors')}", file=sys.stderr)
    return elapsed, answers


async def _fan_out(path: str, upstream_url: str, concurrency: int) -> dict:
    import httpx

    with open(path, "rb") as f:
        requests = [json.loads(line) for line in f if line.strip()]
    sem = asyncio.Semaphore(concurrency)
    answers: dict[str, str] = {}
    # httpx's default pool (100 connections, 20 kept alive). httpcore's pool scans every
    # connection for every request, so larger pools made this fan-out slower here, not faster.
    async with httpx.AsyncClient(base_url=upstream_url, timeout=600) as client:

        async def one(req: dict) -> None:
            async with sem:
                body = dict(req["body"], model=req["body"]["model"].split("/", 1)[1])
                for _ in range(5):
                    r = await client.post(req["url"], json=body, headers={"Authorization": "Bearer sk-bench"})
                    if r.status_code == 200:
                        answers[req["custom_id"]] = r.json()["choices"][0]["message"]["content"]
                        return
                    await asyncio.sleep(0.05)

        await asyncio.gather(*(one(r) for r in requests))
    return answers


def run_fan_out(path: str, upstream_url: str, concurrency: int) -> tuple[float, dict]:
    start = time.perf_counter()
    answers = asyncio.run(_fan_out(path, upstream_url, concurrency))
    return time.perf_counter() - start, answers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--latency", type=float, default=0.05, help="seconds per upstream request")
    ap.add_argument("--engine-only", action="store_true", help="skip the fan-out (for profiling)")
    ap.add_argument("--concurrency", type=int, default=1024, help="engine requests in flight per provider")
    ap.add_argument(
        "--fanout-concurrency",
        type=int,
        default=100,
        help="fan-out requests in flight (its best setting here: 32-300 tried)",
    )
    args = ap.parse_args(argv)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    with tempfile.TemporaryDirectory() as tmp, fastrouter_batch.FakeUpstream(latency=args.latency) as upstream:
        path = os.path.join(tmp, "batch.jsonl")
        size = generate(path, args.lines, seed=7)
        print(
            f"{args.lines:,} chat requests ({size / 1e6:.1f} MB), upstream latency {args.latency * 1000:.0f} ms, "
            f"concurrency {args.concurrency}"
        )
        engine_s, engine_answers = run_engine(path, args.lines, upstream.url, args.concurrency)
        print(f"engine : {engine_s:7.2f} s  {args.lines / engine_s:9,.0f} req/s  ({len(engine_answers):,} answers)")
        if args.engine_only:
            return 0
        fan_s, fan_answers = run_fan_out(path, upstream.url, args.fanout_concurrency)
        print(f"fan-out: {fan_s:7.2f} s  {args.lines / fan_s:9,.0f} req/s  ({len(fan_answers):,} answers)")
    ratio = fan_s / engine_s
    print(f"engine vs python fan-out: {ratio:.1f}x  (targets: >= 10,000 req/s, >= 5x)")
    ok = len(engine_answers) == len(fan_answers) == args.lines
    if not ok:
        print("CHECK FAILED: not every request got exactly one answer", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
