"""Building speed: fastrouter_batch.BatchBuilder against a json.dumps loop, same run, same inputs.

    python bench/bench_build.py [--lines 1000000]

The per-line inputs (custom_id, model, messages, max_tokens/temperature) come from
bench/gen_batch.py and are made before any timing, so both sides only build and write.
Each side is timed best of --repeat (wall clock). The outputs must agree: same line
count, and the first and last lines equal as parsed JSON (byte layout may differ, e.g.
spacing or escaping of non-ASCII text). Only the ratio is meaningful across machines.

Exits 1 if the outputs disagree, 2 if fastrouter_batch is not installed.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_batch  # noqa: E402

CHAT_URL = "/v1/chat/completions"


def build_baseline(inputs, path: str) -> None:
    """What a user writes today: a dict per request, json.dumps, one line at a time."""
    with open(path, "w", encoding="utf-8") as f:
        for custom_id, model, messages, options in inputs:
            d = {
                "custom_id": custom_id,
                "provider": model.split("/", 1)[0],
                "method": "POST",
                "url": CHAT_URL,
                "body": {"model": model, "messages": messages, **options},
            }
            f.write(json.dumps(d) + "\n")


def build_fastrouter(inputs, path: str) -> None:
    import fastrouter_batch

    b = fastrouter_batch.BatchBuilder()
    add = b.add_chat
    # options holds max_tokens and temperature only when the request has them, so the
    # builder gets exactly the keywords a user would pass (the provider comes from the model).
    for custom_id, model, messages, options in inputs:
        add(custom_id, model, messages, **options)
    # A million lines is 20 batches' worth: over the per-batch limits on purpose. The
    # json.dumps baseline does not validate either, so neither side does here.
    b.write(path, validate=False)


def best_of(repeat: int, fn, *args) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()  # start each run from the same heap state
        t = time.perf_counter()
        fn(*args)
        best = min(best, time.perf_counter() - t)
    return best


def count_lines(path: str) -> int:
    """Lines as JSONL counts them: a last line without its newline still counts."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def first_and_last(path: str) -> tuple[bytes, bytes]:
    with open(path, "rb") as f:
        first = f.readline()
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - (1 << 20)))  # lines are far shorter than 1 MiB
        last = f.read().rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    return first, last


def check(base: str, fast: str, lines: int) -> bool:
    ok = True
    n_base, n_fast = count_lines(base), count_lines(fast)
    if not n_base == n_fast == lines:
        ok = False
        print(f"  MISMATCH: line counts: json.dumps loop {n_base}, fastrouter {n_fast}, expected {lines}")
    for which, a, b in zip(("first", "last"), first_and_last(base), first_and_last(fast), strict=True):
        try:
            da, db = json.loads(a), json.loads(b)
        except ValueError as e:
            ok = False
            print(
                f"  MISMATCH: {which} line is not JSON ({e}):\n    json.dumps: {a[:200]!r}\n    fastrouter: {b[:200]!r}"
            )
            continue
        if da != db:
            ok = False
            print(
                f"  MISMATCH: {which} lines differ as JSON:\n    json.dumps: {a[:300]!r}\n    fastrouter: {b[:300]!r}"
            )
    if ok:
        print(f"  OK: {lines:,} lines each; first and last lines equal as JSON")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark fastrouter_batch.BatchBuilder against a json.dumps loop.")
    ap.add_argument("--lines", type=int, default=1_000_000, help="requests to build (default 1000000)")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per side; the best counts (default 3)")
    ap.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    args = ap.parse_args(argv)

    try:
        import fastrouter_batch  # noqa: F401
    except ImportError as e:
        print(f"fastrouter_batch is not importable ({e}); build it first (maturin develop --release).")
        return 2

    t = time.perf_counter()
    inputs = list(gen_batch.iter_chat_inputs(args.lines, args.seed))
    print(f"inputs: {args.lines:,} chat requests prepared in {time.perf_counter() - t:.1f}s (not timed)")

    with tempfile.TemporaryDirectory(prefix="bench_build_") as work:
        base, fast = os.path.join(work, "json_dumps.jsonl"), os.path.join(work, "fastrouter.jsonl")
        t_base = best_of(args.repeat, build_baseline, inputs, base)
        t_fast = best_of(args.repeat, build_fastrouter, inputs, fast)
        for name, secs, path in (("json.dumps loop:  ", t_base, base), ("fastrouter_batch: ", t_fast, fast)):
            print(
                f"{name} {secs:7.3f} s  {args.lines / secs:12,.0f} lines/s  "
                f"{os.path.getsize(path) / 1e6:7.1f} MB  (best of {args.repeat})"
            )
        print(f"speedup vs json.dumps loop: {t_base / t_fast:.1f}x")
        print("checks:")
        ok = check(base, fast, args.lines)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
