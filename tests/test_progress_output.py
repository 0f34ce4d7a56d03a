"""What a wait prints, seen from outside: real processes whose stderr is a pipe (CI logs,
``2> file``), or a real pseudo-terminal. Piped, a wait prints one final line and no bar
frames; in a terminal the live bar is drawn. Neither shows a rate that means nothing (4 lines
finished within microseconds once read as 284,359 req/s)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import time

import pytest

TIMEOUT = 60.0

# A LocalServer, one batch of N lines (latency and concurrency from argv), waited for with the
# progress display of `how`: batches.wait, run, or AsyncClient's wait.
SCRIPT = r"""
import asyncio, sys
import fastrouter_batch as fb

how, n, latency = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
rows = [{"id": f"q{i}", "question": f"What is {i} + {i}?"} for i in range(n)]
builder = fb.BatchBuilder.from_records(rows, prompt="{question}", model="openai/gpt-4.1-nano", custom_id="id")
with fb.LocalServer(latency=latency, concurrency=1) as server:
    client = fb.Client(api_key=server.api_key, base_url=server.url)
    if how == "run":
        results = client.run(builder)
        print("done", len(results))
    elif how == "async":
        async def main():
            aclient = fb.AsyncClient(api_key=server.api_key, base_url=server.url)
            f = await aclient.files.create(builder)
            b = await aclient.batches.create(input_file_id=f.id)
            return await aclient.batches.wait(b.id)
        print("done", asyncio.run(main()).request_counts.completed)
    else:
        f = client.files.create(builder)
        b = client.batches.create(input_file_id=f.id)
        print("done", client.batches.wait(b.id).request_counts.completed)
"""


def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTROUTER_")}
    env.pop("COLUMNS", None)
    return env


def piped(how: str, n: int, latency: float) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, how, str(n), str(latency)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("how", ["wait", "run", "async"])
def test_piped_a_wait_prints_one_final_line(how):
    r = piped(how, 4, 0.0)
    assert r.stdout == "done 4\n"
    assert "\r" not in r.stderr, repr(r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert re.fullmatch(r"batch: 4/4 requests \[\d+\.\d s, failed=0 status=completed\]", lines[0]), lines[0]
    # No rate for four lines done in milliseconds, and no tqdm warning.
    assert "/s" not in r.stderr and "IProgress" not in r.stderr


def test_piped_a_longer_wait_gives_its_rate_over_wall_time():
    n = 30
    start = time.monotonic()
    r = piped("wait", n, 0.05)  # one request at a time, 50 ms each: 1.5 s or more
    elapsed = time.monotonic() - start
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    m = re.fullmatch(rf"batch: {n}/{n} requests \[(\d+\.\d) s, failed=0 status=completed (\S+) req/s\]", lines[0])
    assert m, lines[0]
    waited, rate = float(m.group(1)), float(m.group(2))
    assert 1.0 <= waited <= elapsed
    # At most one request per 50 ms could finish: the rate says so (it is not tqdm's jumps).
    assert 0.5 <= rate <= 20.0 + 1e-9, rate
    assert rate == pytest.approx(n / waited, rel=0.2)


def test_no_progress_prints_nothing_piped():
    code = SCRIPT.replace("client.batches.wait(b.id)", "client.batches.wait(b.id, progress=False)")
    r = subprocess.run(
        [sys.executable, "-c", code, "wait", "4", "0"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=child_env(),
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr
    assert (r.stdout, r.stderr) == ("done 4\n", "")


def in_terminal(how: str, n: int, latency: float) -> tuple[str, str]:
    """Runs the script with stderr on a pseudo-terminal (stdout a pipe); returns both."""
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, how, str(n), str(latency)],
        stdout=subprocess.PIPE,
        stderr=slave,
        stdin=subprocess.DEVNULL,
        env=child_env(),
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        out, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    assert proc.returncode == 0
    return out.decode(), b"".join(chunks).decode(errors="replace")


def test_in_a_terminal_the_live_bar_is_drawn_without_a_meaningless_rate():
    out, err = in_terminal("wait", 4, 0.0)
    assert out == "done 4\n"
    frames = [f.strip() for f in re.split(r"[\r\n]+", err) if f.strip()]
    assert frames, repr(err)
    assert "\r" in err  # tqdm redraws its line
    assert "100%" in frames[-1] and "4/4" in frames[-1] and "status=completed" in frames[-1]
    assert "/s" not in err and "it/s" not in err


def test_in_a_terminal_a_longer_wait_shows_a_plausible_rate():
    out, err = in_terminal("wait", 30, 0.05)
    assert out == "done 30\n"
    rates = [float(x) for x in re.findall(r"(\S+) req/s", err)]
    assert rates, repr(err)
    assert all(0.5 <= r <= 20.0 + 1e-9 for r in rates), rates
