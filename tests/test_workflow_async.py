"""``AsyncClient.run`` / ``resume`` / ``retry_failed`` are truly async: cancelling the
awaiting task (``asyncio.wait_for``, ``task.cancel()``, Ctrl-C under ``asyncio.run``) stops
at once and ``asyncio.run`` returns at once, while the batches keep running on the engine;
many concurrent runs neither queue on nor starve the event loop's default executor.

Everything talks to 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time

import pytest

import fastrouter_batch as fb
from conftest import leftovers
from engine_helpers import chat_line
from fastrouter_batch import AsyncClient, Client, LocalServer

KEY = "sk-v1-workflow-async"
WAIT = 30.0
TERMINAL = {"completed", "failed", "expired", "cancelled"}


def requests(n: int, prefix: str = "req") -> list[dict]:
    return [chat_line(f"{prefix}-{i:04d}", "anthropic" if i % 2 else "openai") for i in range(n)]


@pytest.fixture
def slow():
    """40 requests take about 4 s here (0.2 s each, one at a time per provider)."""
    with LocalServer(api_key=KEY, latency=0.2, concurrency=1) as s:
        yield s


def engine_batches(server: LocalServer) -> list[fb.Batch]:
    return list(Client(KEY, server.url, timeout=10, max_retries=0).batches.list(limit=100))


def assert_goes_on_and_completes(server: LocalServer, n: int) -> None:
    """The run's one batch was not cancelled: it is still running, then completes."""
    client = Client(KEY, server.url, timeout=10, max_retries=0)
    (batch,) = engine_batches(server)
    assert batch.status not in TERMINAL, batch.status
    done = client.batches.wait(batch.id, progress=False, timeout=WAIT)
    assert done.status == "completed"
    assert (done.request_counts.total, done.request_counts.completed) == (n, n)


def logged_ids(caplog) -> str:
    return " ".join(
        r.getMessage() for r in caplog.records if r.name == "fastrouter_batch" and r.levelno == logging.WARNING
    )


# --- cancellation --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["wait_for", "task.cancel"])
def test_cancelling_run_returns_at_once_and_the_batch_goes_on(slow, temp, caplog, how):
    caplog.set_level(logging.WARNING, logger="fastrouter_batch")

    async def main() -> float:
        ac = AsyncClient(KEY, slow.url, timeout=10, max_retries=0)
        if how == "wait_for":
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(ac.run(requests(40), progress=False, timeout=WAIT), 0.5)
        else:
            task = asyncio.create_task(ac.run(requests(40), progress=False, timeout=WAIT))
            await asyncio.sleep(0.5)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        return time.monotonic()

    t = time.monotonic()
    cancelled = asyncio.run(asyncio.wait_for(main(), WAIT))
    ended = time.monotonic()
    # asyncio.run does not wait for the batch (about 4 s) at shutdown.
    assert ended - cancelled < 1.0, ended - cancelled
    assert ended - t < 2.0, ended - t
    assert not [th for th in threading.enumerate() if th.name.startswith("fastrouter-batch-")]

    (batch,) = engine_batches(slow)
    assert batch.id in logged_ids(caplog)  # the run's batch is named: it keeps running
    assert "manifest=" in logged_ids(caplog)
    assert leftovers(temp) == []  # no manifest: nothing to resume, nothing kept
    assert_goes_on_and_completes(slow, 40)


def test_ctrl_c_under_asyncio_run_stops_at_once_and_the_batch_goes_on(slow, sigint_default, tmp_path, caplog):
    assert threading.current_thread() is threading.main_thread()
    caplog.set_level(logging.WARNING, logger="fastrouter_batch")
    manifest = tmp_path / "run.json"
    fired: list[float] = []

    def interrupt() -> None:
        fired.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    async def main() -> None:
        ac = AsyncClient(KEY, slow.url, timeout=10, max_retries=0)
        await ac.run(requests(40), manifest=manifest, progress=False, timeout=WAIT)

    timer = threading.Timer(0.5, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            asyncio.run(main())
        stopped = time.monotonic()
    finally:
        timer.cancel()
        timer.join(5)
    assert fired, "the timer never fired"
    assert stopped - fired[0] < 0.5, stopped - fired[0]

    (batch,) = engine_batches(slow)
    assert batch.id in logged_ids(caplog)
    assert str(manifest) in logged_ids(caplog)  # with a manifest: how to resume
    # The batch goes on, and the manifest picks the run up without a second batch.
    results = Client(KEY, slow.url, timeout=10, max_retries=0).resume(manifest, progress=False, timeout=WAIT)
    assert results.custom_ids == [r["custom_id"] for r in requests(40)]
    assert all(r.ok for r in results)
    assert [b.id for b in engine_batches(slow)] == [batch.id]


def test_cancelled_while_preparing_leaves_no_folder_and_submits_nothing(temp):
    with LocalServer(api_key=KEY) as server:
        big = requests(20_000)

        async def main() -> None:
            ac = AsyncClient(KEY, server.url, timeout=10, max_retries=0)
            task = asyncio.create_task(ac.run(big, progress=False, timeout=WAIT))
            await asyncio.sleep(0)  # started: validating and splitting in its thread
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(asyncio.wait_for(main(), WAIT))
        # The preparing thread finishes on its own, then drops its work folder.
        deadline = time.monotonic() + WAIT
        while leftovers(temp) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert leftovers(temp) == []
        assert engine_batches(server) == []


# --- concurrency -------------------------------------------------------------------------


def test_concurrent_runs_take_the_time_of_one_and_leave_the_default_executor_free():
    async def main(server: LocalServer) -> tuple[float, float, list[float], list[fb.BatchResults]]:
        ac = AsyncClient(KEY, server.url, timeout=10, max_retries=0)
        t = time.monotonic()
        await ac.run(requests(2, "one"), progress=False, timeout=WAIT)
        one = time.monotonic() - t

        t = time.monotonic()
        tasks = [asyncio.create_task(ac.run(requests(2, f"r{k}"), progress=False, timeout=WAIT)) for k in range(20)]
        probes: list[float] = []
        await asyncio.sleep(0.2)
        for _ in range(3):  # other to_thread work of the app is not held up meanwhile
            p = time.monotonic()
            await asyncio.to_thread(time.sleep, 0)
            probes.append(time.monotonic() - p)
            await asyncio.sleep(0.1)
        results = await asyncio.gather(*tasks)
        return one, time.monotonic() - t, probes, results

    with LocalServer(api_key=KEY, latency=1.0) as server:
        one, twenty, probes, results = asyncio.run(asyncio.wait_for(main(server), WAIT))
    assert 1.0 <= one < 3.0, one
    # The default executor here has min(32, cores + 4) threads: queued on it, 20 runs
    # would take several times one.
    assert twenty < one + 1.0, (one, twenty)
    assert max(probes) < 0.5, probes
    for k, r in enumerate(results):
        assert r.custom_ids == [f"r{k}-0000", f"r{k}-0001"]
        assert all(x.ok for x in r)


# --- timeout, resume -----------------------------------------------------------------------


def test_async_timeout_names_the_runs_batches(slow, temp):
    async def main() -> fb.WaitTimeout:
        ac = AsyncClient(KEY, slow.url, timeout=10, max_retries=0)
        with pytest.raises(fb.WaitTimeout) as info:
            await ac.run(requests(40), limits=fb.Limits(max_requests=20), progress=False, timeout=0.3)
        return info.value

    t = time.monotonic()
    error = asyncio.run(asyncio.wait_for(main(), WAIT))
    assert time.monotonic() - t < 1.5
    recorded = {b.id for b in engine_batches(slow)}
    assert len(error.batch_ids) == 2 and set(error.batch_ids) == recorded
    for batch_id in error.batch_ids:
        assert batch_id in str(error)
    assert "manifest=" in str(error)
    assert leftovers(temp) == []
    client = Client(KEY, slow.url, timeout=10, max_retries=0)
    for batch_id in error.batch_ids:
        assert client.batches.wait(batch_id, progress=False, timeout=WAIT).status == "completed"


def test_async_resume_after_cancel_submits_nothing_twice(slow, tmp_path):
    manifest = tmp_path / "run.json"

    async def main() -> fb.BatchResults:
        ac = AsyncClient(KEY, slow.url, timeout=10, max_retries=0)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ac.run(requests(10), manifest=manifest, progress=False, timeout=WAIT), 0.3)
        return await ac.resume(manifest, progress=False, timeout=WAIT)

    results = asyncio.run(asyncio.wait_for(main(), WAIT))
    assert results.custom_ids == [r["custom_id"] for r in requests(10)]
    assert all(r.ok for r in results)
    assert len(engine_batches(slow)) == 1
