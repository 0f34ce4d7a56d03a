"""Streaming a file's lines: `async for` over AsyncClient.files.iter_lines against the sync
`for` loop (the baseline), same file, same run, on the embedded engine.

    python bench/bench_iter_lines.py [--lines 40000] [--repeat 3]

Uploads a ~87 MB file of --lines request lines, then times (best of --repeat) reading all of
its lines both ways, checks both got every line in order, and prints the ratio (target:
async within 1.5x of sync; each awaited step used to cost a trip through the event loop).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import fastrouter_batch as fb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    pad = "x" * 2000
    lines = [
        f'{{"custom_id":"r{i}","provider":"openai","method":"POST","url":"/v1/chat/completions",'
        f'"body":{{"model":"openai/gpt-4.1-nano","messages":[{{"role":"user","content":"{pad}"}}]}}}}'
        for i in range(args.lines)
    ]
    data = ("\n".join(lines) + "\n").encode()
    with fb.LocalServer(limits=fb.Limits(max_bytes=len(data) + 1)) as server:
        client = fb.Client(server.api_key, server.url)
        file_id = client.files.create(data).id

        def sync_read() -> list[str]:
            return list(client.files.iter_lines(file_id))

        async def async_read() -> list[str]:
            ac = fb.AsyncClient(server.api_key, server.url)
            return [line async for line in ac.files.iter_lines(file_id)]

        def best(fn) -> tuple[float, list[str]]:
            t_best, got = float("inf"), []
            for _ in range(args.repeat):
                t = time.perf_counter()
                got = fn()
                t_best = min(t_best, time.perf_counter() - t)
            return t_best, got

        t_sync, got_sync = best(sync_read)
        t_async, got_async = best(lambda: asyncio.run(async_read()))
    ok = got_sync == lines and got_async == lines
    print(f"file              : {len(data) / 1e6:.0f} MB, {args.lines:,} lines")
    print(f"sync  for         : {t_sync:.3f} s ({args.lines / t_sync:,.0f} lines/s)")
    print(f"async for         : {t_async:.3f} s ({args.lines / t_async:,.0f} lines/s)")
    print(f"async / sync      : {t_async / t_sync:.2f}x (target <= 1.5x)")
    print(f"check             : {'OK: every line, in order, both ways' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
