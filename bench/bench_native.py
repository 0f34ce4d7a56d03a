"""Native mode's own cost: planning, upload and merge of 100,000 lines through the providers'
batch APIs, beside realtime mode on the same file.

    python bench/bench_native.py [--lines 100000]

The engine runs as `python -m fastrouter_batch serve --provider upstream` (a process of its
own, so its memory is its own) against an in-process `FakeUpstream` with no upstream delay.
With `FASTROUTER_BATCH_NATIVE_TIMINGS=1` the engine logs when each native phase (plan, upload,
download, merge) of the batch starts and ends; a sampler reads the engine's RSS from
/proc/PID/status every 5 ms, so each phase gets its time and its RSS growth (peak during the
phase less the RSS when it started).

Prints both modes' wall time (upload + create + wait + download of the output), the native
phases, and checks against the targets: merge RSS growth < 64 MB and native overhead
(plan + upload + download + merge) < 2 s for the 100,000 lines. Checks every custom_id got
exactly one 200 answer in both modes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_batch import generate

try:
    import fastrouter_batch
except ImportError:  # pragma: no cover
    print("fastrouter_batch is not installed: run `make build` first", file=sys.stderr)
    sys.exit(2)

KEY = "sk-bench-native"
PHASES = ("plan", "upload", "download", "merge")


def _request(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None) -> bytes:
    req = urllib.request.Request(
        url, data=body, method=method, headers={"Authorization": f"Bearer {KEY}", **(headers or {})}
    )
    with urllib.request.urlopen(req, timeout=600) as resp:
        return resp.read()


def _upload(base: str, path: str) -> str:
    boundary = "benchboundary7f3a"
    data = Path(path).read_bytes()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.jsonl"\r\n'
        "Content-Type: application/jsonl\r\n\r\n"
    ).encode()
    body = head + data + f"\r\n--{boundary}--\r\n".encode()
    out = _request(f"{base}/v1/files", "POST", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return json.loads(out)["id"]


class RssSampler(threading.Thread):
    """(time ms, RSS MB) of a process every 5 ms until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.path = f"/proc/{pid}/status"
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                with open(self.path) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.samples.append((time.time() * 1000, int(line.split()[1]) / 1024))
                            break
            except OSError:
                return
            time.sleep(0.005)

    def growth(self, start_ms: float, end_ms: float) -> float:
        before = [r for t, r in self.samples if t <= start_ms]
        during = [r for t, r in self.samples if start_ms <= t <= end_ms + 5]
        if not during:
            return 0.0
        base = before[-1] if before else during[0]
        return max(during) - base


def run_mode(mode: str, path: str, lines: int, upstream_url: str, tmp: str) -> dict:
    env = dict(os.environ)
    env.update(
        OPENAI_BASE_URL=upstream_url,
        OPENAI_API_KEY="sk-bench",
        ANTHROPIC_BASE_URL=upstream_url,
        ANTHROPIC_API_KEY="sk-bench",
        FASTROUTER_BATCH_NATIVE_TIMINGS="1",
    )
    stderr_path = Path(tmp) / f"{mode}.stderr"
    args = [
        sys.executable,
        "-m",
        "fastrouter_batch",
        "serve",
        "--provider",
        "upstream",
        "--upstream-mode",
        mode,
        "--poll-interval",
        "0.05",
        "--api-key",
        KEY,
        "--concurrency",
        "1024",
        "--max-requests",
        str(lines),
        "--data-dir",
        str(Path(tmp) / f"data-{mode}"),
    ]
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=env)
        try:
            assert proc.stdout is not None
            info = json.loads(proc.stdout.readline())
            base = info["url"]
            sampler = RssSampler(proc.pid)
            sampler.start()
            start = time.perf_counter()
            file_id = _upload(base, path)
            body = json.dumps(
                {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
            )
            batch = json.loads(
                _request(f"{base}/v1/batches", "POST", body.encode(), {"Content-Type": "application/json"})
            )
            deadline = time.monotonic() + 600
            while batch["status"] not in ("completed", "failed", "expired", "cancelled"):
                if time.monotonic() > deadline:
                    raise SystemExit(f"{mode}: batch still {batch['status']} after 600 s: {batch['request_counts']}")
                time.sleep(0.05)
                batch = json.loads(_request(f"{base}/v1/batches/{batch['id']}"))
                if os.environ.get("BENCH_VERBOSE"):
                    print(mode, batch["status"], batch["request_counts"], file=sys.stderr)
            counts: Counter[str] = Counter()
            if batch.get("output_file_id"):
                for raw in _request(f"{base}/v1/files/{batch['output_file_id']}/content").splitlines():
                    line = json.loads(raw)
                    if line["response"]["status_code"] == 200:
                        counts[line["custom_id"]] += 1
            wall = time.perf_counter() - start
            sampler.done.set()
            sampler.join()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for line in stderr_path.read_text(errors="replace").splitlines():
        if "native timing" in line:
            phase, _batch, s, e = line.split("native timing ", 1)[1].split()
            spans[phase].append((float(s), float(e)))
    phases = {}
    for phase in PHASES:
        ss = spans.get(phase, [])
        phases[phase] = {
            "seconds": sum(e - s for s, e in ss) / 1000,
            "rss_growth_mb": max((sampler.growth(s, e) for s, e in ss), default=0.0),
            "count": len(ss),
        }
    ok = len(counts) == lines and set(counts.values()) == {1}
    return {"status": batch["status"], "wall": wall, "phases": phases, "ok": ok, "answers": len(counts)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-native-") as tmp:
        path = os.path.join(tmp, "batch.jsonl")
        size = generate(path, args.lines)
        print(f"{args.lines:,} lines, {size / 1e6:.1f} MB")
        with fastrouter_batch.FakeUpstream() as up:
            realtime = run_mode("realtime", path, args.lines, up.url, tmp)
        with fastrouter_batch.FakeUpstream() as up:
            # Batches advance on every poll and answer in two steps: upstream time stays small.
            native = run_mode("native", path, args.lines, up.url, tmp)
            creates = up.counters()
    print(f"realtime: {realtime['status']}, {realtime['wall']:.2f}s wall, {realtime['answers']:,} answers")
    print(f"native:   {native['status']}, {native['wall']:.2f}s wall, {native['answers']:,} answers")
    oa, an = creates["openai_batch_creates"], creates["anthropic_batch_creates"]
    print(f"          upstream batches: {oa} OpenAI, {an} Anthropic")
    overhead = 0.0
    for phase in PHASES:
        p = native["phases"][phase]
        overhead += p["seconds"]
        print(f"  {phase:9s} {p['seconds']:7.3f}s  RSS growth {p['rss_growth_mb']:7.1f} MB  ({p['count']} spans)")
    merge_rss = native["phases"]["merge"]["rss_growth_mb"]
    print(f"native overhead (plan + upload + download + merge): {overhead:.2f}s (target < 2 s per 100k lines)")
    print(f"merge RSS growth: {merge_rss:.1f} MB (target < 64 MB)")
    print(f"native wall / realtime wall: {native['wall'] / realtime['wall']:.2f}x")
    timed = all(native["phases"][p]["count"] > 0 for p in PHASES)
    if not timed:
        print("the engine logged no phase timings (an old build? run `make build`)")
    good = timed and native["ok"] and realtime["ok"] and merge_rss < 64 and overhead * 100_000 / args.lines < 2
    print("targets met" if good else "TARGETS MISSED")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
