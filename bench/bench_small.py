"""Validation speed on small inputs: fastrouter_batch.validate(bytes) against the pydantic
baseline at 1, 10, 100 and 1,000 lines, same run, same bytes.

    python bench/bench_small.py [--sizes 1,10,100,1000] [--rounds 7]

Small inputs are what a notebook or a web handler validates one request at a time, so the
fixed cost matters more than the throughput. Each size is timed as the best of --rounds
rounds, a round being enough calls to last ~0.2 s (per-call time = round time / calls).
Prints both per-call times and the ratio (pydantic / fastrouter: above 1 means fastrouter
is faster). Targets: ≤ 20 µs for one line, and a ratio ≥ 1 at every size. Also checks
both validators find the same (line, code) pairs on a broken copy of each input.

Exits 1 if a target or a check fails, 2 if fastrouter_batch is not installed.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import baseline_pydantic  # noqa: E402
import gen_batch  # noqa: E402

ONE_LINE_TARGET_US = 20.0


def per_call(fn, data: bytes, rounds: int) -> float:
    """Best seconds per call of fn(data) over `rounds` rounds of ~0.2 s each."""
    calls = 1
    while True:  # calibrate: enough calls for a round to last ~0.2 s
        t = time.perf_counter()
        for _ in range(calls):
            fn(data)
        if time.perf_counter() - t > 0.2:
            break
        calls *= 2
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(calls):
            fn(data)
        best = min(best, (time.perf_counter() - t) / calls)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,10,100,1000", help="line counts (default 1,10,100,1000)")
    ap.add_argument("--rounds", type=int, default=7, help="timed rounds per size, best kept (default 7)")
    args = ap.parse_args(argv)
    try:
        import fastrouter_batch as fb
    except ImportError:
        print("fastrouter_batch is not installed (make build)", file=sys.stderr)
        return 2

    def ours(data: bytes):
        return fb.validate(data)

    def pydantic(data: bytes):
        return baseline_pydantic.validate_stream(io.BytesIO(data))

    failed = False
    print(f"{'lines':>6} {'bytes':>9} {'fastrouter':>12} {'pydantic':>12} {'ratio':>7}")
    for n in (int(s) for s in args.sizes.split(",")):
        lines = list(gen_batch.iter_lines(n))
        data = "".join(lines).encode()
        # Same findings first: a clean input (no issue either side) and a broken one.
        broken = data.replace(b'"role": "user"', b'"role": "usr"', 1).replace(b'"method": "POST"', b'"method": 7', 1)
        for d in (data, broken):
            got = {(i.line, i.code) for i in fb.validate(d).issues}
            want = {(line, code) for line, code, _ in pydantic(d)["errors"]}
            if got != want:
                print(f"  {n} lines: findings differ: fastrouter {sorted(got)} vs pydantic {sorted(want)}")
                failed = True
        t_ours = per_call(ours, data, args.rounds)
        t_base = per_call(pydantic, data, args.rounds)
        ratio = t_base / t_ours
        print(f"{n:>6} {len(data):>9} {t_ours * 1e6:>9.1f} µs {t_base * 1e6:>9.1f} µs {ratio:>6.2f}x")
        if ratio < 1:
            print(f"  {n} lines: slower than pydantic")
            failed = True
        if n == 1 and t_ours * 1e6 > ONE_LINE_TARGET_US:
            print(f"  one line: {t_ours * 1e6:.1f} µs, over the {ONE_LINE_TARGET_US:.0f} µs target")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
