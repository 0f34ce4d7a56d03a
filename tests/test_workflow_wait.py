"""``batches.wait``: the terminal batch it returns, ``timeout`` (``WaitTimeout``, the batch
goes on), the polling schedule (quick first, then backing off), the tqdm progress bar
(counts, never 100 % before the batch has finished), the asyncio version, and Ctrl-C.

Everything talks to 127.0.0.1; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import os
import signal
import threading
import time

import pytest

import fastrouter_batch as fb
from engine_helpers import chat_line, to_jsonl
from fastrouter_batch import AsyncClient, Client, LocalServer, _wait
from fastrouter_batch.types import Batch

KEY = "sk-v1-workflow-wait"
WAIT = 30.0
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def lines_data(n: int, prefix: str = "req") -> bytes:
    return to_jsonl(chat_line(f"{prefix}-{i}", "anthropic" if i % 2 else "openai") for i in range(n))


@pytest.fixture
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def slow():
    """40 requests take about 1 s here (50 ms each, one at a time per provider, and the
    lines alternate between two providers)."""
    with LocalServer(api_key=KEY, latency=0.05, concurrency=1) as s:
        yield s


def client_for(server: LocalServer) -> Client:
    return Client(KEY, server.url, timeout=10, max_retries=0)


def start(client: Client, n: int) -> fb.Batch:
    f = client.files.create(lines_data(n))
    return client.batches.create(input_file_id=f.id)


# --- what wait returns -------------------------------------------------------------------


def test_wait_returns_the_completed_batch(server):
    client = client_for(server)
    b = start(client, 4)
    done = client.batches.wait(b.id, progress=False, timeout=WAIT)
    assert isinstance(done, fb.Batch)
    assert done.id == b.id
    assert done.status == "completed"
    assert done.is_terminal
    assert done.output_file_id
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (4, 4, 0)
    assert done == client.batches.retrieve(b.id)


def test_wait_returns_a_failed_batch_without_raising(server):
    client = client_for(server)
    f = client.files.create(b"{not json\n")
    b = client.batches.create(input_file_id=f.id)
    done = client.batches.wait(b.id, progress=False, timeout=WAIT)
    assert done.status == "failed"
    assert done.errors is not None and len(done.errors) >= 1


def test_wait_returns_a_cancelled_batch(slow):
    client = client_for(slow)
    b = start(client, 40)
    client.batches.cancel(b.id)
    done = client.batches.wait(b.id, progress=False, timeout=WAIT)
    assert done.status == "cancelled"
    assert done.request_counts.completed < 40


def test_wait_on_an_already_finished_batch_polls_once(server):
    client = client_for(server)
    b = client.batches.wait(start(client, 2).id, progress=False, timeout=WAIT)
    calls = []
    original = client.batches.retrieve
    client.batches.retrieve = lambda i: calls.append(i) or original(i)  # type: ignore[method-assign]
    t = time.monotonic()
    assert client.batches.wait(b.id, progress=False, timeout=WAIT).status == "completed"
    assert time.monotonic() - t < 0.5
    assert calls == [b.id]


def test_wait_on_an_unknown_batch(server):
    with pytest.raises(fb.NotFoundError):
        client_for(server).batches.wait("fr_batch-doesnotexist", progress=False, timeout=5)


# --- timeout -----------------------------------------------------------------------------


def test_timeout_raises_wait_timeout_quickly_and_the_batch_goes_on(slow):
    client = client_for(slow)
    b = start(client, 40)
    t = time.monotonic()
    with pytest.raises(fb.WaitTimeout) as info:
        client.batches.wait(b.id, timeout=0.3, progress=False)
    elapsed = time.monotonic() - t
    assert 0.3 <= elapsed < 0.8, elapsed
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, fb.FastRouterError)
    assert b.id in str(info.value)

    assert client.batches.retrieve(b.id).status not in TERMINAL
    done = client.batches.wait(b.id, progress=False, timeout=WAIT)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (40, 40, 0)


def test_timeout_with_a_long_poll_interval_is_still_on_time(slow):
    client = client_for(slow)
    b = start(client, 40)
    t = time.monotonic()
    with pytest.raises(fb.WaitTimeout):
        client.batches.wait(b.id, timeout=0.3, poll_interval=10, progress=False)
    assert time.monotonic() - t < 0.8


# --- polling schedule --------------------------------------------------------------------


def test_a_small_batch_is_waited_for_in_well_under_a_second(server):
    client = client_for(server)
    b = start(client, 4)
    t = time.monotonic()
    done = client.batches.wait(b.id, progress=False, timeout=WAIT)
    assert done.status == "completed"
    assert time.monotonic() - t < 1.0


def recording_retrieve(client: Client) -> list[float]:
    """Replaces client.batches.retrieve with one recording when each poll was made."""
    times: list[float] = []
    original = client.batches.retrieve

    def retrieve(batch_id: str) -> Batch:
        times.append(time.monotonic())
        return original(batch_id)

    client.batches.retrieve = retrieve  # type: ignore[method-assign]
    return times


def test_polling_starts_quick_and_backs_off(slow):
    client = client_for(slow)
    b = start(client, 40)  # about 1 s
    times = recording_retrieve(client)
    t = time.monotonic()
    done = client.batches.wait(b.id, progress=False, timeout=WAIT)
    took = time.monotonic() - t
    assert done.status == "completed"
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert gaps, times
    # Quick at first: a tiny batch is not kept waiting for seconds.
    assert gaps[0] < 0.2, gaps
    # Backing off: each gap longer than the last (allowing for jitter of the call itself).
    for earlier, later in itertools.pairwise(gaps):
        assert later > earlier * 1.2, gaps
    # Far fewer polls than a fixed 50 ms schedule would make.
    assert len(times) <= 12, (len(times), took)
    # And the end is noticed without a long delay (the last gap is well under the 30 s cap).
    assert took < 3.0, took


def test_poll_interval_fixes_the_schedule(slow):
    client = client_for(slow)
    b = start(client, 30)  # about 0.75 s
    times = recording_retrieve(client)
    done = client.batches.wait(b.id, poll_interval=0.2, progress=False, timeout=WAIT)
    assert done.status == "completed"
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) >= 3
    assert all(0.18 <= g < 0.4 for g in gaps), gaps


def test_backoff_schedule_is_capped():
    delays = [_wait.FIRST_POLL]
    for _ in range(40):
        delays.append(_wait._next_delay(delays[-1], None))
    assert delays[0] <= 0.1
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) == _wait.MAX_POLL == 30.0
    assert _wait._next_delay(5.0, 0.7) == 0.7


# --- progress bar ------------------------------------------------------------------------


def fake_batch(status: str, total: int | None, completed: int = 0, failed: int = 0, id: str = "fr_batch-x") -> Batch:
    data: dict = {"id": id, "object": "batch", "status": status}
    if total is not None:
        data["request_counts"] = {"total": total, "completed": completed, "failed": failed}
    return Batch(data)


class Terminal(io.StringIO):
    """A stream that says it is a terminal, so the progress draws tqdm's live bar on it (real
    terminals: test_progress_output.py, through a pseudo-terminal)."""

    def isatty(self) -> bool:
        return True

    def take(self) -> str:
        out = self.getvalue()
        self.seek(0)
        self.truncate()
        return out


def test_progress_never_reaches_100_percent_before_the_batch_is_terminal():
    term = Terminal()
    p = _wait.Progress(True, "batch", stream=term)
    p.update([fake_batch("validating", None)])
    p.update([fake_batch("in_progress", 4, 2)])
    assert p._bar.n == 2 and p._bar.total == 4
    p.update([fake_batch("finalizing", 4, 4)])
    assert p._bar.n == 3  # finalizing is not done
    assert p._bar.total == 4
    p.update([fake_batch("finalizing", 4, 2, 2)])
    assert p._bar.n == 3
    err = term.take()
    assert "failed=2" in err
    assert "status=finalizing" in err
    assert "100%" not in err
    assert "4/4" not in err
    p.update([fake_batch("completed", 4, 2, 2)])
    p.close()
    assert p._bar.n == 4
    err = term.take()
    assert "100%" in err
    assert "4/4" in err
    assert "status=completed" in err
    # Four requests done within microseconds have no meaningful rate: none is shown.
    assert "/s" not in err and "/min" not in err


def test_progress_over_several_batches():
    term = Terminal()
    p = _wait.Progress(True, "2 batches", stream=term)
    p.update([fake_batch("completed", 2, 2, id="a"), fake_batch("finalizing", 3, 2, 1, id="b")])
    assert (p._bar.n, p._bar.total) == (4, 5)
    p.update([fake_batch("completed", 2, 2, id="a"), fake_batch("cancelled", 3, 1, id="b")])
    assert (p._bar.n, p._bar.total) == (3, 5)  # cancelled is terminal: what ran is what there is
    p.close()
    err = term.take()
    assert "2 batches" in err
    assert "status=cancelled,completed" in err


def test_progress_disabled_makes_no_bar(capsys):
    for stream in (Terminal(), None):
        p = _wait.Progress(False, "batch", stream=stream)
        p.update([fake_batch("completed", 4, 4)])
        p.close()
        assert p._bar is None
        assert stream is None or stream.getvalue() == ""
    assert capsys.readouterr().err == ""


def test_the_rate_counts_wall_time_and_only_the_requests_done_while_waiting(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(_wait.time, "monotonic", lambda: now[0])
    term = Terminal()
    p = _wait.Progress(True, "batch", stream=term)
    p.update([fake_batch("in_progress", 1000, 400)])  # 400 were done before this wait began
    now[0] += 0.5
    p.update([fake_batch("in_progress", 1000, 900)])
    assert "req/s" not in term.take()  # under MIN_RATE_SECONDS: not yet meaningful
    now[0] += 1.5
    p.update([fake_batch("in_progress", 1000, 600 + 400)])
    # 600 requests over 2 s of waiting; not 1000 (the 400 done before), nor tqdm's jumps.
    assert "300 req/s" in term.take()
    now[0] += 1_000
    p.update([fake_batch("completed", 1000, 1000)])
    p.close()
    assert "0.599 req/s" in term.take()


def test_a_slow_rate_is_given_per_minute(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(_wait.time, "monotonic", lambda: now[0])
    term = Terminal()
    p = _wait.Progress(True, "batch", stream=term)
    p.update([fake_batch("in_progress", 10, 0)])
    now[0] += 60.0
    p.update([fake_batch("in_progress", 10, 3)])
    assert "3 req/min" in term.take()
    p.close()


def test_wait_on_a_non_terminal_prints_one_final_line(capsys):
    """stderr captured (not a terminal, not a notebook): no bar frames, one line at the end.
    The same through real pipes and a real terminal: test_progress_output.py."""
    with LocalServer(api_key=KEY, latency=0.02, concurrency=1) as s:
        client = client_for(s)
        b = start(client, 12)
        capsys.readouterr()
        done = client.batches.wait(b.id, progress=True, timeout=WAIT)
    assert done.status == "completed"
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "\r" not in captured.err
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("batch: 12/12 requests [")
    assert "failed=0 status=completed" in lines[0]


def test_wait_without_progress_writes_nothing(server, capsys):
    client = client_for(server)
    b = start(client, 3)
    capsys.readouterr()
    client.batches.wait(b.id, progress=False, timeout=WAIT)
    assert capsys.readouterr().err == ""


# --- asyncio -----------------------------------------------------------------------------


def test_async_wait(slow):
    async def main() -> tuple[fb.Batch, float]:
        client = AsyncClient(KEY, slow.url, timeout=10, max_retries=0)
        f = await client.files.create(lines_data(10))
        b = await client.batches.create(input_file_id=f.id)
        ticks = 0

        async def ticker() -> None:  # the loop stays free while waiting
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        try:
            t = time.monotonic()
            with pytest.raises(fb.WaitTimeout):
                await client.batches.wait(b.id, timeout=0.1, progress=False)
            assert time.monotonic() - t < 0.6
            done = await client.batches.wait(b.id, progress=False, timeout=WAIT)
        finally:
            task.cancel()
        return done, ticks

    done, ticks = asyncio.run(asyncio.wait_for(main(), WAIT))
    assert done.status == "completed"
    assert done.request_counts.completed == 10
    assert ticks >= 10


# --- Ctrl-C ------------------------------------------------------------------------------


@pytest.mark.parametrize("poll_interval", [None, 5.0])
def test_ctrl_c_stops_waiting_not_the_batch(slow, sigint_default, poll_interval):
    assert threading.current_thread() is threading.main_thread()
    client = client_for(slow)
    b = start(client, 40)
    fired: list[float] = []

    def interrupt() -> None:
        fired.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.3, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            client.batches.wait(b.id, poll_interval=poll_interval, progress=False, timeout=WAIT)
        stopped = time.monotonic()
    finally:
        timer.cancel()
        timer.join(5)
    assert fired, "the timer never fired"
    assert stopped - fired[0] < 0.5, stopped - fired[0]

    assert client.batches.retrieve(b.id).status not in TERMINAL  # the batch goes on
    done = client.batches.wait(b.id, progress=False, timeout=WAIT)
    assert done.status == "completed"
    assert done.request_counts.completed == 40


def test_ctrl_c_during_run_logs_the_batches_that_keep_running(slow, sigint_default, caplog):
    """Without a manifest the run's temporary folder goes: the warning is the only place
    left that names the batches still running on the service."""
    assert threading.current_thread() is threading.main_thread()
    caplog.set_level(logging.WARNING, logger="fastrouter_batch")
    client = client_for(slow)
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            client.run(
                [chat_line(f"req-{i}", "anthropic" if i % 2 else "openai") for i in range(40)],
                limits=fb.Limits(max_requests=20),
                progress=False,
                timeout=WAIT,
            )
    finally:
        timer.cancel()
        timer.join(5)
    batches = list(client.batches.list(limit=10))
    assert len(batches) == 2
    warnings = [r for r in caplog.records if r.name == "fastrouter_batch" and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    for b in batches:
        assert b.id in message
        assert b.status not in TERMINAL  # the batches go on
    assert "interrupted" in message and "manifest=" in message
    for b in batches:
        assert client.batches.wait(b.id, progress=False, timeout=WAIT).status == "completed"
