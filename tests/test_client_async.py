"""`fastrouter_batch.AsyncClient` against the local engine: the full flow, async
pagination and `async for` over lines, errors mapped to the same classes as the blocking
client, and asyncio cancellation dropping the request.

Each test runs its coroutine with `asyncio.run(asyncio.wait_for(..., deadline))`.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import Counter

import pytest

import fastrouter_batch as fb
from engine_helpers import chat_line, to_jsonl
from fastrouter_batch import AsyncClient, Limits, LocalServer
from test_client import KEY, WRONG_KEY, SilentServer, _check_status_error, assert_no_key, lines_data

TERMINAL = {"completed", "failed", "expired", "cancelled"}


def run(coro, timeout: float = 30.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def aclient(server) -> AsyncClient:
    return AsyncClient(KEY, server.url, timeout=10, max_retries=0)


async def await_terminal(client: AsyncClient, batch_id: str, timeout: float = 20.0) -> fb.Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = await client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} still {batch.status} after {timeout}s")
        await asyncio.sleep(0.02)


def test_async_settings(server):
    c = AsyncClient(KEY, server.url, timeout=3, max_retries=5)
    assert (c.base_url, c.timeout, c.max_retries) == (server.url, 3, 5)
    d = c.with_options(timeout=1.5, max_retries=0)
    assert isinstance(d, AsyncClient) and d is not c
    assert (d.timeout, d.max_retries) == (1.5, 0)
    assert (c.timeout, c.max_retries) == (3, 5)
    assert_no_key(repr(c))
    assert_no_key(repr(d))


def test_async_full_flow(aclient, tmp_path):
    async def main():
        async with aclient as c:
            reqs = [chat_line(f"aflow-{i}", "anthropic" if i % 2 else "openai") for i in range(20)]
            path = tmp_path / "in.jsonl"
            path.write_bytes(to_jsonl(reqs))
            f = await c.files.create(path)
            assert f.num_rows == 20 and f.filename == "in.jsonl"
            assert (await c.files.retrieve(f.id)) == f
            b = await c.batches.create(input_file_id=f.id, metadata={"k": "v"})
            assert b.metadata == {"k": "v"} and b.input_file_id == f.id
            done = await await_terminal(c, b.id)
            assert done.status == "completed"
            assert done.request_counts.completed == 20

            read = await c.files.content(done.output_file_id)
            rows = [json.loads(x) async for x in read.aiter_lines()]
            content = read.content
            assert Counter(r["custom_id"] for r in rows) == Counter(f"aflow-{i}" for i in range(20))

            dest = tmp_path / "out.jsonl"
            assert await c.files.download(done.output_file_id, dest) == dest
            assert dest.read_bytes() == content

            lines = [line async for line in c.files.iter_lines(done.output_file_id)]
            assert lines == content.decode().splitlines()

            first = await c.batches.list()  # awaiting a pager gives its first page
            assert isinstance(first, fb.CursorPage)
            assert done.id in {x.id for x in first.data}
            assert done.id in {x.id async for x in c.batches.list()}
            deleted = await c.files.delete(f.id)
            assert deleted.deleted is True
            with pytest.raises(fb.NotFoundError):
                await c.files.retrieve(f.id)

    run(main())


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "BytesIO", "binary file", "builder"])
def test_async_upload_kinds(aclient, tmp_path, kind):
    data = lines_data(3, prefix="ak")
    path = tmp_path / "k.jsonl"
    path.write_bytes(data)
    builder = fb.BatchBuilder()
    builder.extend(json.loads(x) for x in data.splitlines())
    src = {
        "bytes": lambda: data,
        "bytearray": lambda: bytearray(data),
        "memoryview": lambda: memoryview(data),
        "BytesIO": lambda: io.BytesIO(data),
        "binary file": lambda: open(path, "rb"),
        "builder": lambda: builder,
    }[kind]()

    async def main():
        try:
            f = await aclient.files.create(src)
        finally:
            if hasattr(src, "close"):
                src.close()
        got = (await aclient.files.content(f.id)).content
        assert [json.loads(x) for x in got.splitlines()] == [json.loads(x) for x in data.splitlines()]
        assert f.num_rows == 3

    run(main())


def test_async_pagination():
    key = "sk-async-paging"
    with LocalServer(api_key=key) as s:

        async def main():
            c = AsyncClient(key, s.url, timeout=10, max_retries=0)
            ids = await asyncio.gather(*(c.files.create(f'{{"n":{i}}}\n'.encode()) for i in range(8)))
            ids = [f.id for f in ids]
            pager = c.files.list(limit=3)
            page = await pager.first_page()
            assert len(page) == 3 and page.has_more
            pages = [p async for p in pager.iter_pages()]
            assert [len(p) for p in pages] == [3, 3, 2]
            listed = [x.id async for x in c.files.list(limit=3)]
            assert sorted(listed) == sorted(ids) and len(set(listed)) == 8
            assert [x.id async for x in c.files.list(limit=3, after=listed[4])] == listed[5:]
            assert (await c.files.list(purpose="batch_output")).data == []

            batches = await asyncio.gather(*(c.batches.create(input_file_id=ids[0]) for _ in range(5)))
            assert len({b.id for b in batches}) == 5  # one key per call: five batches
            got = [b.id async for b in c.batches.list(limit=2)]
            assert sorted(got) == sorted(b.id for b in batches)

        run(main())


def test_async_concurrent_calls(aclient):
    async def main():
        f = await aclient.files.create(b'{"x":1}\n')
        t = time.monotonic()
        got = await asyncio.gather(*(aclient.files.retrieve(f.id) for _ in range(50)))
        assert all(g.id == f.id for g in got)
        assert time.monotonic() - t < 5

    run(main())


def test_async_client_across_event_loops(aclient):
    f = run(aclient.files.create(b'{"loop":1}\n'))
    assert run(aclient.files.retrieve(f.id)).id == f.id
    assert run(aclient.files.content(f.id)).content == b'{"loop":1}\n'


def test_async_errors_map_to_the_same_classes(server, aclient, tmp_path):
    async def main():
        bad = AsyncClient(WRONG_KEY, server.url, max_retries=0)
        with pytest.raises(fb.AuthenticationError) as ei:
            await bad.files.list()
        _check_status_error(ei.value, fb.AuthenticationError, 401, "invalid_api_key")
        with pytest.raises(fb.AuthenticationError):
            await bad.files.create(b'{"x":1}\n')

        for coro in (
            aclient.files.retrieve("file-nope"),
            aclient.batches.retrieve("fr_batch-nope"),
            aclient.files.content("file-nope"),
            aclient.batches.cancel("fr_batch-nope"),
            aclient.files.delete("file-nope"),
        ):
            with pytest.raises(fb.NotFoundError) as ei:
                await coro
            _check_status_error(ei.value, fb.NotFoundError, 404, "not_found")
        with pytest.raises(fb.NotFoundError):
            await aclient.files.download("file-nope", tmp_path / "x.jsonl")
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(fb.NotFoundError):
            async for _ in aclient.files.iter_lines("file-nope"):
                pass

        f = await aclient.files.create(lines_data(2))
        with pytest.raises(fb.BadRequestError) as ei:
            await aclient.batches.create(input_file_id=f.id, completion_window="1h")
        _check_status_error(ei.value, fb.BadRequestError, 400, "invalid_completion_window")

        done = await await_terminal(aclient, (await aclient.batches.create(input_file_id=f.id)).id)
        with pytest.raises(fb.ConflictError) as ei:
            await aclient.batches.cancel(done.id)
        _check_status_error(ei.value, fb.ConflictError, 409, "batch_not_cancellable")

    run(main())


def test_async_413():
    with LocalServer(api_key=KEY, limits=Limits(max_bytes=10_000)) as s:

        async def main():
            c = AsyncClient(KEY, s.url, max_retries=0)
            with pytest.raises(fb.RequestTooLargeError) as ei:
                await c.files.create(b'{"x":1}\n' * 2000)
            _check_status_error(ei.value, fb.RequestTooLargeError, 413, "file_too_large")

        run(main())


def test_async_timeout_error():
    with SilentServer() as silent:

        async def main():
            c = AsyncClient(KEY, silent.url, timeout=0.3, max_retries=0)
            t = time.monotonic()
            with pytest.raises(fb.APITimeoutError):
                await c.files.retrieve("file-x")
            assert time.monotonic() - t < 2

        run(main())


def test_async_cancellation_drops_the_request(server):
    """`asyncio.wait_for(call, 0.3)` against a server that never answers raises
    TimeoutError promptly, the request's connection is closed (the Rust future was
    dropped), and the loop goes on working."""
    with SilentServer() as silent:

        async def main():
            c = AsyncClient(KEY, silent.url, timeout=20, max_retries=0)
            t = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.batches.retrieve("fr_batch-x"), 0.3)
            assert time.monotonic() - t < 0.8
            # the dropped future closes its connection
            deadline = time.monotonic() + 3
            while not silent.peer_closed.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert silent.peer_closed.is_set(), "the cancelled request's connection was left open"

            # a cancelled task, too
            task = asyncio.ensure_future(c.files.content("file-x"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # an async line stream, too
            it = c.files.iter_lines("file-x")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(it.__anext__(), 0.3)

            # the loop is still usable, for timers and for real calls
            await asyncio.sleep(0.01)
            good = AsyncClient(KEY, server.url, timeout=10, max_retries=0)
            f = await good.files.create(b'{"after":"cancel"}\n')
            assert (await good.files.content(f.id)).text == '{"after":"cancel"}\n'

        run(main(), timeout=15)
