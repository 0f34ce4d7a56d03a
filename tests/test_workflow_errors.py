"""The workflow's and the client's behaviour when things go wrong: ``retry_failed`` retries
the run that made its results (not the client's latest), temporary folders never outlive a
failed call nor the results that need them, and wrong arguments give errors that say which
argument and what was expected — before anything is sent.

Everything talks to 127.0.0.1; waits are bounded (``timeout=`` on every run).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import time
import types

import pytest

import fastrouter_batch as fb
from conftest import leftovers
from engine_helpers import EMBEDDINGS, chat_line, to_jsonl
from fastrouter_batch import Client, LocalServer

KEY = "sk-v1-workflow-errors"
WAIT = 30.0
#: Nothing listens here: a call that sent a request would fail with APIConnectionError.
CLOSED = "http://127.0.0.1:1"


@pytest.fixture
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def flaky():
    with LocalServer(api_key=KEY, fault_rate=0.4, max_retries=0) as s:
        yield s


def lines(n: int, prefix: str = "req") -> list[dict]:
    return [chat_line(f"{prefix}-{i:04d}", "anthropic" if i % 2 else "openai") for i in range(n)]


def run(client: Client, requests, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("timeout", WAIT)
    return client.run(requests, **kw)


def batch_ids(client: Client) -> set[str]:
    return {b.id for b in client.batches.list(limit=100)}


def with_failures(client: Client, requests) -> fb.BatchResults:
    results = run(client, requests)
    failed = results.failed.custom_ids
    assert 0 < len(failed) < len(results), results.summary()  # P(not so) ~ 0.6**40 + 0.4**40
    return results


# --- retry_failed: the run that made the results --------------------------------------------


def test_retry_failed_retries_its_own_run_not_the_latest(flaky, tmp_path):
    client = Client(KEY, flaky.url, timeout=10, max_retries=0)
    first = with_failures(client, lines(40, "a"))
    failed = first.failed.custom_ids
    src_b = tmp_path / "b.jsonl"
    src_b.write_bytes(to_jsonl(lines(40, "b")))
    second = run(client, src_b)  # the client's latest run is now another one
    del second
    gc.collect()  # ... and its temporary files are gone with its results

    before = batch_ids(client)
    retried = client.retry_failed(first, progress=False, timeout=WAIT)
    assert retried.custom_ids == failed
    (new,) = batch_ids(client) - before
    assert client.batches.retrieve(new).request_counts.total == len(failed)

    # The retry did not become "the last inputs": the first results still retry their own
    # requests, and the retry's results theirs.
    again = client.retry_failed(first, progress=False, timeout=WAIT)
    assert again.custom_ids == failed
    still = retried.failed.custom_ids
    third = client.retry_failed(retried, progress=False, timeout=WAIT)
    assert third.custom_ids == still
    assert set(still) <= set(failed)


def test_retry_failed_from_another_client_uses_the_results_own_requests(flaky):
    a = Client(KEY, flaky.url, timeout=10, max_retries=0)
    b = Client(KEY, flaky.url, timeout=10, max_retries=0)
    first = with_failures(a, lines(40, "x"))
    run(b, lines(5, "other"))
    assert b.retry_failed(first, progress=False, timeout=WAIT).custom_ids == first.failed.custom_ids


def test_retry_failed_of_results_without_known_requests_names_inputs(flaky, tmp_path):
    client = Client(KEY, flaky.url, timeout=10, max_retries=0)
    src = tmp_path / "in.jsonl"
    src.write_bytes(to_jsonl(lines(40)))
    (batch,) = run(client, src, wait=False)
    batch = client.batches.wait(batch.id, timeout=WAIT, progress=False)
    results = client.batches.results(batch)
    assert 0 < len(results.failed) < 40
    with pytest.raises(ValueError, match=r"inputs="):
        client.retry_failed(results, progress=False, timeout=WAIT)
    with pytest.raises(TypeError, match="BatchResults"):
        client.retry_failed([1, 2], progress=False)
    # With the requests it works.
    retried = client.retry_failed(results, inputs=src, progress=False, timeout=WAIT)
    assert retried.custom_ids == results.failed.custom_ids


@pytest.mark.parametrize("kind", ["dicts", "requests", "bytes"])
def test_retry_failed_takes_a_list_of_requests(flaky, kind):
    client = Client(KEY, flaky.url, timeout=10, max_retries=0)
    requests = lines(40)
    results = fb.read_results(*_files_of(client, with_failures(client, requests)))
    failed = results.failed.custom_ids
    if kind == "dicts":
        inputs = requests
    elif kind == "requests":
        inputs = [fb.BatchRequest.from_dict(r) for r in requests]
    else:
        inputs = to_jsonl(requests)
    retried = client.retry_failed(results, inputs=inputs, progress=False, timeout=WAIT)
    assert sorted(retried.custom_ids) == sorted(failed)


def _files_of(client: Client, results: fb.BatchResults) -> list[bytes]:
    """The output and error files of the one batch behind ``results``, as bytes (results
    with no requests attached)."""
    (batch,) = list(client.batches.list(limit=100))
    return [client.files.content(f).content for f in (batch.output_file_id, batch.error_file_id) if f]


def test_retry_failed_rejects_inputs_it_cannot_use(flaky):
    client = Client(KEY, flaky.url, timeout=10, max_retries=0)
    requests = lines(40)
    results = with_failures(client, requests)
    before = batch_ids(client)
    with pytest.raises(TypeError, match=r"got a dict \(did you mean \[request\]\?\)"):
        client.retry_failed(results, inputs=requests[0], progress=False)
    with pytest.raises(TypeError, match=r"list of requests.*got a list holding an int"):
        client.retry_failed(results, inputs=[1, 2], progress=False)
    with pytest.raises(TypeError, match="got an int"):
        client.retry_failed(results, inputs=5, progress=False)
    with pytest.raises(ValueError, match="not in the inputs given"):
        client.retry_failed(results, inputs=requests[:1], progress=False)
    assert batch_ids(client) == before


# --- temporary folders ------------------------------------------------------------------


def test_failed_runs_leave_no_temporary_folder(server, temp, tmp_path):
    client = Client(KEY, server.url, timeout=10, max_retries=0)
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(to_jsonl(lines(3)) + b"{not json\n")
    with pytest.raises(FileNotFoundError):
        run(client, tmp_path / "nope.jsonl")
    with pytest.raises(fb.BatchValidationError):
        run(client, bad)
    with pytest.raises(fb.BatchValidationError):
        run(client, [*lines(2), lines(1)[0]])  # a duplicate id
    with pytest.raises(ValueError, match="no requests"):
        run(client, [])
    with pytest.raises(ValueError, match="endpoint"):
        run(client, lines(2), endpoint=EMBEDDINGS)
    with pytest.raises(TypeError):
        run(client, lines(1)[0])
    assert leftovers(temp) == []
    assert batch_ids(client) == set()


def test_a_failed_submit_or_wait_leaves_no_temporary_folder(temp):
    with LocalServer(api_key=KEY, latency=2.0) as slow:
        client = Client(KEY, slow.url, timeout=10, max_retries=0)
        with pytest.raises(fb.WaitTimeout):
            run(client, lines(2), timeout=0.2)
        assert leftovers(temp) == []
    dead = Client(KEY, CLOSED, timeout=2, max_retries=0)
    with pytest.raises(fb.APIConnectionError):
        run(dead, lines(2))
    assert leftovers(temp) == []


def test_run_folders_live_as_long_as_the_results(server, temp):
    client = Client(KEY, server.url, timeout=10, max_retries=0)
    results = run(client, lines(3))
    assert [n.startswith("fastrouter-batch-run-") for n in leftovers(temp)] == [True]
    del results
    assert leftovers(temp) == []
    # Nothing to own the folder without waiting, and no manifest to resume from.
    batches = run(client, lines(3, "w"), wait=False)
    assert len(batches) == 1
    assert leftovers(temp) == []


def test_manifest_run_that_fails_validation_leaves_no_parts_folder(server, tmp_path):
    client = Client(KEY, server.url, timeout=10, max_retries=0)
    manifest = tmp_path / "run.json"
    with pytest.raises(fb.BatchValidationError):
        run(client, [*lines(2), lines(1)[0]], manifest=manifest)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_retry_failed_leaves_no_temporary_folder(flaky, temp, tmp_path):
    client = Client(KEY, flaky.url, timeout=10, max_retries=0)
    requests = lines(40)
    results = with_failures(client, requests)
    owned = leftovers(temp)
    assert len(owned) == 1  # the run's own folder, while its results live

    other = tmp_path / "other.jsonl"
    other.write_bytes(to_jsonl(lines(3, "other")))
    with pytest.raises(ValueError, match="not in the inputs given"):
        client.retry_failed(results, inputs=other, progress=False, timeout=WAIT)
    assert leftovers(temp) == owned

    builder = fb.BatchBuilder()
    builder.extend(requests)
    retried = client.retry_failed(results, inputs=builder, progress=False, timeout=WAIT)
    assert retried.custom_ids == results.failed.custom_ids
    assert len(leftovers(temp)) == 2  # the two runs' folders, no retry folder
    assert not [n for n in leftovers(temp) if n.startswith("fastrouter-batch-retry-")]
    del results, retried
    assert leftovers(temp) == []


# --- what run() takes ---------------------------------------------------------------------


def test_run_argument_errors_are_clear(server, temp):
    client = Client(KEY, server.url, timeout=10, max_retries=0)
    with pytest.raises(ValueError) as info:
        run(client, [])
    assert str(info.value) == "run(): no requests to run (the input is empty)"
    with pytest.raises(ValueError, match="no requests"):
        run(client, fb.BatchBuilder())
    accepts = "run() takes a path, a BatchBuilder or an iterable of requests"
    with pytest.raises(TypeError) as info:
        run(client, lines(1)[0])
    assert str(info.value) == f"{accepts}; got a dict (did you mean [request]?)"
    with pytest.raises(TypeError, match=r"got a BatchRequest \(did you mean \[request\]\?\)"):
        run(client, fb.BatchRequest.from_dict(lines(1)[0]))
    with pytest.raises(TypeError, match=r"iterable of requests; got an int$"):
        run(client, 5)
    with pytest.raises(TypeError, match=r"iterable of requests; got a bytes$"):
        run(client, to_jsonl(lines(1)))
    with pytest.raises(IsADirectoryError):
        run(client, temp)
    assert leftovers(temp) == []
    assert batch_ids(client) == set()


# --- client arguments, checked before anything is sent -----------------------------------


def test_client_settings_name_the_wrong_argument():
    with pytest.raises(TypeError, match="api_key must be a str, got int"):
        Client(123, CLOSED)
    with pytest.raises(TypeError, match="base_url must be a str, got int"):
        Client("k", 123)
    with pytest.raises(ValueError, match=r"^max_retries must be >= 0$"):
        Client("k", CLOSED, max_retries=-1)
    with pytest.raises(ValueError, match=r"^max_retries must be >= 0$"):
        fb.AsyncClient("k", CLOSED, max_retries=-1)
    with pytest.raises(ValueError, match=r"^max_retries must be >= 0$"):
        Client("k", CLOSED).with_options(max_retries=-1)
    with pytest.raises(TypeError, match="max_retries must be an int"):
        Client("k", CLOSED, max_retries=1.5)
    with pytest.raises(TypeError, match="timeout must be a number of seconds, got str"):
        Client("k", CLOSED, timeout="10")
    with pytest.raises(TypeError, match="timeout must be a number of seconds, got str"):
        Client("k", CLOSED).with_options(timeout="10")
    assert Client("k", CLOSED, max_retries=0).max_retries == 0
    assert Client("k", CLOSED, timeout=3).with_options(max_retries=4).max_retries == 4


def test_list_limit_is_checked_before_sending(server):
    client = Client(KEY, server.url, timeout=10, max_retries=0)
    # What the service answers for a limit out of its range ...
    with pytest.raises(fb.BadRequestError) as info:
        client.batches.list(limit=101).first_page()
    server_says = info.value.message
    assert server_says.startswith("limit must be between 1 and 100")
    # ... is what the client says for a limit below 1, without asking.
    dead = Client(KEY, CLOSED, timeout=2, max_retries=0)
    for limit in (0, -1):
        with pytest.raises(ValueError) as info:
            dead.batches.list(limit=limit)
        assert str(info.value) == f"limit must be between 1 and 100, got {limit}."
    with pytest.raises(ValueError, match="limit must be at least 1, got -5"):
        dead.files.list(limit=-5)
    with pytest.raises(TypeError, match="limit must be an int, got str"):
        dead.batches.list(limit="10")
    with pytest.raises(ValueError, match="between 1 and 100, got -1"):
        fb.AsyncClient(KEY, CLOSED).batches.list(limit=-1)
    assert len(client.batches.list(limit=100).first_page()) == 0


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda c: c.files.retrieve(None), "file_id"),
        (lambda c: c.files.delete(5), "file_id"),
        (lambda c: c.files.content(b"file-1"), "file_id"),
        (lambda c: c.files.download(None, "x.jsonl"), "file_id"),
        (lambda c: c.files.iter_lines(7), "file_id"),
        (lambda c: c.batches.retrieve(None), "batch_id"),
        (lambda c: c.batches.cancel(3), "batch_id"),
        (lambda c: c.batches.wait(None, progress=False), "batch_id"),
        (lambda c: c.batches.results(5), "batch_or_id"),
        (lambda c: c.batches.results(None), "batch_or_id"),
        (lambda c: c.batches.create(input_file_id=None), "input_file_id"),
    ],
)
def test_ids_that_are_not_strings_are_type_errors_before_sending(call, name):
    client = Client(KEY, CLOSED, timeout=2, max_retries=0)
    with pytest.raises(TypeError, match=name):
        call(client)


def test_async_ids_that_are_not_strings_are_type_errors():
    client = fb.AsyncClient(KEY, CLOSED, timeout=2, max_retries=0)

    async def main():
        with pytest.raises(TypeError, match="file_id must be a str, got NoneType"):
            await client.files.retrieve(None)
        with pytest.raises(TypeError, match="batch_or_id"):
            await client.batches.results(5)
        with pytest.raises(ValueError, match="batch_id must not be empty"):
            await client.batches.retrieve("")

    asyncio.run(main())


def test_results_takes_an_object_with_an_id(server):
    client = Client(KEY, server.url, timeout=10, max_retries=0)
    (batch,) = run(client, lines(2), wait=False)
    client.batches.wait(batch.id, timeout=WAIT, progress=False)
    results = client.batches.results(types.SimpleNamespace(id=batch.id))  # e.g. openai's Batch
    assert results.custom_ids == ["req-0000", "req-0001"]
    with pytest.raises(ValueError, match="file_id must not be empty"):
        client.files.retrieve("")


# --- uploads of a directory ---------------------------------------------------------------


def test_uploading_a_directory_is_an_immediate_is_a_directory_error(tmp_path):
    client = Client(KEY, CLOSED, timeout=5, max_retries=5)
    for directory in (tmp_path, str(tmp_path)):
        start = time.monotonic()
        with pytest.raises(IsADirectoryError) as info:
            client.files.create(directory)
        assert time.monotonic() - start < 1.0  # no request, no retries
        assert info.value.errno == errno.EISDIR
        assert info.value.filename == str(tmp_path)

    async def main():
        with pytest.raises(IsADirectoryError):
            await fb.AsyncClient(KEY, CLOSED, max_retries=5).files.create(tmp_path)

    asyncio.run(main())
