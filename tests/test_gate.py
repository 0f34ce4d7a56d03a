"""The gate around blocking calls: the GIL is released while validating, Ctrl-C interrupts
a long validation, and a sync call works inside a running asyncio loop.
"""

from __future__ import annotations

import asyncio
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import fastrouter_batch as fb
from batchlines import OK_ANTHROPIC, OK_OPENAI, jsonl, triples

LINE = (
    '{"custom_id":"id-BBBBBB-%04d","provider":"openai","method":"POST","url":"/v1/chat/completions",'
    '"body":{"model":"openai/gpt-4.1","messages":[{"role":"user","content":"%s"}],"max_tokens":100}}\n'
)
NO_LIMITS = fb.Limits(max_requests=10**9, max_bytes=10**12)


def hundred_megabytes() -> tuple[bytes, int]:
    template = "".join(LINE % (j, "some words " * 20) for j in range(1000)).encode()
    blocks = [template.replace(b"BBBBBB", b"%06d" % b) for b in range(100_000_000 // len(template) + 1)]
    return b"".join(blocks), 1000 * len(blocks)


def count_while(flag: dict, stop: dict) -> int:
    """The pure-Python loop whose progress is measured: counts while flag["on"] holds."""
    n = 0
    while not stop["done"]:
        if flag["on"]:
            n += 1
    return n


def test_the_gil_is_released_while_validating():
    data, lines = hundred_megabytes()
    assert len(data) >= 100_000_000

    # Baseline: how fast the loop runs when nothing else wants the GIL.
    flag, stop = {"on": True}, {"done": False}
    timer = threading.Timer(0.3, lambda: stop.update(done=True))
    t0 = time.perf_counter()
    timer.start()
    baseline_rate = count_while(flag, stop) / (time.perf_counter() - t0)

    inside, stop, result = {"on": False}, {"done": False}, {"seconds": 0.0, "reports": [], "error": None}

    def worker():
        try:
            for _ in range(4):
                inside["on"] = True
                t = time.perf_counter()
                result["reports"].append(fb.validate(data, limits=NO_LIMITS))
                result["seconds"] += time.perf_counter() - t
                inside["on"] = False
        except BaseException as e:
            result["error"] = e
        finally:
            inside["on"] = False
            stop["done"] = True

    thread = threading.Thread(target=worker)
    thread.start()
    counted = count_while(inside, stop)
    thread.join(timeout=60)
    assert result["error"] is None
    assert [(r.ok, r.num_requests) for r in result["reports"]] == [(True, lines)] * 4
    # Were the GIL held during validate(), the loop could only run in the one switch
    # interval (5 ms) around each of the 4 calls: ~2% of the baseline over >1 s of calls.
    expected_if_free = baseline_rate * result["seconds"]
    assert counted > 100_000
    assert counted > 0.15 * expected_if_free, (counted, expected_if_free, result["seconds"])


CHILD = textwrap.dedent(
    """
    import time
    import fastrouter_batch as fb
    # One 300 MB line: a single worker scans it for ~2-4 s, so an interrupt that waited for
    # the call to end would come far later than the 2 s allowed.
    head = (b'{"custom_id":"a","provider":"openai","method":"POST","url":"/v1/chat/completions",'
            b'"body":{"model":"openai/gpt-4.1","messages":[{"role":"user","content":"hi"}],"x":[')
    data = head + b"1," * 150_000_000 + b"1]}}\\n"
    limits = fb.Limits(max_line_bytes=10**10, max_bytes=10**12)
    print("ready", flush=True)
    while True:
        t = time.monotonic()
        r = fb.validate(data, limits=limits)
        print("call done", r.ok, round(time.monotonic() - t, 2), flush=True)
    """
)


def test_ctrl_c_interrupts_a_long_validation_within_two_seconds(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the child did not start"
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        sent = time.monotonic()
        try:
            returncode = proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            raise AssertionError("SIGINT did not stop validate() within 2 s") from None
        waited = time.monotonic() - sent
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
    assert waited < 2
    # The traceback ends in the validate() call: it was interrupted, not the loop around it.
    frames = [x.strip() for x in err.decode().splitlines() if x.strip() and set(x.strip()) != {"^"}]
    assert frames[-2:] == ["r = fb.validate(data, limits=limits)", "KeyboardInterrupt"], err
    assert returncode == -signal.SIGINT  # Python's exit for an unhandled KeyboardInterrupt
    assert b"call done" not in out  # the first call was interrupted, not finished


def test_sync_validate_inside_a_running_asyncio_loop(tmp_path):
    path = tmp_path / "b.jsonl"
    path.write_bytes(jsonl(OK_OPENAI, "[1]"))

    async def main():
        assert asyncio.get_running_loop().is_running()
        from_bytes = fb.validate(jsonl(OK_OPENAI, OK_ANTHROPIC))
        await asyncio.sleep(0)
        return from_bytes, fb.validate(path)

    from_bytes, from_path = asyncio.run(main())
    assert from_bytes.ok and from_bytes.num_requests == 2
    assert triples(from_path) == [(2, "not_an_object", None)]


def test_concurrent_validations_from_threads_get_their_own_reports():
    inputs = [jsonl(OK_OPENAI, *(["[1]"] * n)) for n in range(8)]
    results: dict[int, list] = {}

    def run(n: int):
        results[n] = [triples(fb.validate(inputs[n])) for _ in range(20)]

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for n in range(8):
        assert results[n] == [[(line, "not_an_object", None) for line in range(2, n + 2)]] * 20
