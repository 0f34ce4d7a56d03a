"""The blocking HTTP client (`fastrouter_batch.Client`) against the local engine: every
operation, every upload input kind, the full flow, pagination, the error tree, the key
never leaking, settings from the environment, and behaviour under asyncio, fork and Ctrl-C.

Everything talks to 127.0.0.1 and every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pathlib
import signal
import socket
import sys
import threading
import time
from collections import Counter

import pytest

import fastrouter_batch as fb
from engine_helpers import chat_line, embedding_line, to_jsonl
from fastrouter_batch import Client, Limits, LocalServer

KEY = "sk-secret-canary-123"
WRONG_KEY = "sk-wrong-canary-456"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


# --- fixtures and helpers ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def client(server) -> Client:
    return Client(KEY, server.url, timeout=10, max_retries=0)


def lines_data(n: int, prefix: str = "req") -> bytes:
    """`n` valid chat lines, alternating openai and anthropic, ids `{prefix}-{i}`."""
    return to_jsonl(chat_line(f"{prefix}-{i}", "anthropic" if i % 2 else "openai") for i in range(n))


def wait_terminal(client: Client, batch_id: str, timeout: float = 20.0) -> fb.Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in TERMINAL:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} still {batch.status} after {timeout}s")
        time.sleep(0.02)


class SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers. Records when each accepted
    connection is closed by the peer."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = threading.Event()
        self.peer_closed = threading.Event()
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            self.accepted.set()
            threading.Thread(target=self._watch, args=(conn,), daemon=True).start()

    def _watch(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                self.peer_closed.set()
                return
            if not data:
                self.peer_closed.set()
                return

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        for c in self._conns:
            try:
                c.close()
            except OSError:
                pass
        self._thread.join(timeout=2)

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def assert_no_key(text: str, *keys: str) -> None:
    for k in keys or (KEY,):
        assert k not in text, f"API key leaked into: {text!r}"


# --- construction, settings ----------------------------------------------------------------


def test_settings_and_repr(server):
    c = Client(KEY, server.url + "/v1/", timeout=12.5, max_retries=4)
    assert c.base_url == server.url  # trailing /v1/ normalised away
    assert c.timeout == 12.5
    assert c.max_retries == 4
    assert_no_key(repr(c))
    assert_no_key(repr(c._api))
    assert_no_key(str(vars(c)))
    assert "Client" in repr(c) and server.url in repr(c)


def test_env_fallbacks(server, monkeypatch):
    monkeypatch.setenv("FASTROUTER_API_KEY", KEY)
    monkeypatch.setenv("FASTROUTER_BASE_URL", server.url)
    c = Client()
    assert c.base_url == server.url
    assert c.files.create(b'{"x":1}\n').bytes == 8
    # explicit arguments win over the environment
    monkeypatch.setenv("FASTROUTER_API_KEY", WRONG_KEY)
    with pytest.raises(fb.AuthenticationError):
        Client(max_retries=0).files.list().first_page()
    assert Client(KEY, max_retries=0).files.list().first_page() is not None
    monkeypatch.setenv("FASTROUTER_BASE_URL", "http://127.0.0.1:1")
    assert Client(KEY, server.url).base_url == server.url


def test_hosted_base_url_by_default(monkeypatch):
    monkeypatch.delenv("FASTROUTER_BASE_URL", raising=False)
    monkeypatch.setenv("FASTROUTER_API_KEY", KEY)
    assert Client().base_url == "https://api.fastrouter.ai"
    assert fb.AsyncClient().base_url == "https://api.fastrouter.ai"


def test_missing_key_raises_at_construction(monkeypatch):
    monkeypatch.delenv("FASTROUTER_API_KEY", raising=False)
    with pytest.raises(fb.FastRouterError, match="FASTROUTER_API_KEY"):
        Client(base_url="http://127.0.0.1:1")
    with pytest.raises(fb.FastRouterError):
        fb.AsyncClient(base_url="http://127.0.0.1:1")
    monkeypatch.setenv("FASTROUTER_API_KEY", "")
    with pytest.raises(fb.FastRouterError):
        Client(base_url="http://127.0.0.1:1")


def test_with_options_returns_a_copy(server):
    c = Client(KEY, server.url, timeout=30, max_retries=3)
    d = c.with_options(timeout=2.5, max_retries=0)
    assert isinstance(d, Client) and d is not c
    assert (d.timeout, d.max_retries, d.base_url) == (2.5, 0, server.url)
    assert (c.timeout, c.max_retries) == (30, 3)  # the original is unchanged
    e = c.with_options(max_retries=1)
    assert (e.timeout, e.max_retries) == (30, 1)
    f = c.with_options(timeout=7)
    assert (f.timeout, f.max_retries) == (7, 3)
    # the copy works and speaks to the same server with the same key
    fid = d.files.create(b'{"x":1}\n').id
    assert c.files.retrieve(fid).id == fid
    assert_no_key(repr(d))
    with pytest.raises(ValueError):
        c.with_options(timeout=0)


# --- files.create: every input kind ---------------------------------------------------------


def _input_kinds(tmp_path: pathlib.Path, data: bytes):
    path = tmp_path / "in put.jsonl"
    path.write_bytes(data)
    builder = fb.BatchBuilder()
    for line in data.splitlines():
        builder.add(json.loads(line))
    return {
        "str path": (lambda: str(path), "in put.jsonl"),
        "pathlib": (lambda: path, "in put.jsonl"),
        "bytes": (lambda: data, None),
        "bytearray": (lambda: bytearray(data), None),
        "memoryview": (lambda: memoryview(data), None),
        "binary file": (lambda: open(path, "rb"), "in put.jsonl"),
        "BytesIO": (lambda: io.BytesIO(data), None),
        "builder": (lambda: builder, None),
    }


KINDS = ["str path", "pathlib", "bytes", "bytearray", "memoryview", "binary file", "BytesIO", "builder"]


@pytest.mark.parametrize("kind", KINDS)
def test_files_create_input_kinds(client, tmp_path, kind):
    data = lines_data(5, prefix=kind.replace(" ", "_"))
    make, filename = _input_kinds(tmp_path, data)[kind]
    src = make()
    try:
        f = client.files.create(src)
    finally:
        if hasattr(src, "close"):
            src.close()
    assert isinstance(f, fb.FileObject)
    assert f.id and f.purpose == "batch"
    assert f.num_rows == 5
    if filename:
        assert f.filename == filename
    got = client.files.content(f.id).content
    if kind == "builder":
        assert [json.loads(x) for x in got.splitlines()] == [json.loads(x) for x in data.splitlines()]
    else:
        assert got == data
    assert f.bytes == len(got)


def test_files_create_file_object_not_at_start(client, tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"HEADER\n" + lines_data(2))
    with open(path, "rb") as fh:
        fh.readline()
        f = client.files.create(fh)
    assert client.files.content(f.id).content == lines_data(2)  # what is left to read, not the whole file


def test_files_create_bad_inputs(client, tmp_path):
    with pytest.raises(TypeError):
        client.files.create(io.StringIO('{"x":1}\n'))
    with pytest.raises(TypeError):
        client.files.create(12345)  # type: ignore[arg-type]
    with pytest.raises(fb.BadRequestError) as ei:
        client.files.create(b'{"x":1}\n', purpose="fine-tune")
    assert ei.value.status_code == 400 and ei.value.param == "purpose"


def test_files_create_missing_path_is_file_not_found(client, tmp_path):
    """A missing input path is Python's FileNotFoundError naming the file once (errno 2,
    .filename set), like open() would raise."""
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(OSError) as ei:
        client.files.create(missing)
    err = ei.value
    assert type(err) is FileNotFoundError, f"got {type(err).__name__}: {err}"
    assert err.errno == 2 and err.filename == str(missing)
    assert str(err).count(str(missing)) == 1, str(err)


def test_download_into_missing_directory_is_file_not_found(client, tmp_path):
    f = client.files.create(b'{"d":1}\n')
    with pytest.raises(OSError) as ei:
        client.files.download(f.id, tmp_path / "no-such-dir" / "out.jsonl")
    assert type(ei.value) is FileNotFoundError, f"got {type(ei.value).__name__}: {ei.value}"
    assert ei.value.errno == 2


def test_download_onto_a_directory_leaves_no_temp_file(client, tmp_path):
    """When the final move into place fails, the temporary `.NAME.part-*` file is removed."""
    f = client.files.create(b'{"d":2}\n')
    target = tmp_path / "adir"
    target.mkdir()
    with pytest.raises(OSError):
        client.files.download(f.id, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"], "a temporary download file was left behind"
    assert list(target.iterdir()) == []


def test_upload_streams_large_path(client, tmp_path):
    path = tmp_path / "big.jsonl"
    line = json.dumps(chat_line("x")).encode() + b"\n"
    with open(path, "wb") as fh:
        for _ in range(40):
            fh.write(line * 1000)
    f = client.files.create(path)
    assert f.bytes == path.stat().st_size
    out = client.files.download(f.id, tmp_path / "back.jsonl")
    assert out.read_bytes() == path.read_bytes()


# --- the full flow -----------------------------------------------------------------------


def test_full_flow(client, tmp_path):
    reqs = [chat_line(f"flow-{i}", "anthropic" if i % 3 == 0 else "openai") for i in range(30)]
    data = to_jsonl(reqs)
    f = client.files.create(data)
    assert client.files.retrieve(f.id) == f

    b = client.batches.create(input_file_id=f.id, metadata={"job": "flow", "n": "30"})
    assert isinstance(b, fb.Batch)
    assert b.input_file_id == f.id and b.endpoint == "/v1/chat/completions" and b.completion_window == "24h"
    assert b.metadata == {"job": "flow", "n": "30"}
    assert b.status in {"validating", "in_progress", "finalizing", "completed"}

    done = wait_terminal(client, b.id)
    assert done.status == "completed" and done.is_terminal
    rc = done.request_counts
    assert isinstance(rc, fb.RequestCounts) and (rc.total, rc.completed, rc.failed) == (30, 30, 0)
    assert done.completed_at is not None and done.output_file_id

    content = client.files.content(done.output_file_id).content
    rows = [json.loads(x) for x in content.splitlines()]
    assert Counter(r["custom_id"] for r in rows) == Counter(f"flow-{i}" for i in range(30))
    assert all(r["response"]["status_code"] == 200 for r in rows)

    dest = tmp_path / "sub" / "out.jsonl"
    dest.parent.mkdir()
    assert client.files.download(done.output_file_id, dest) == dest
    assert dest.read_bytes() == content
    assert [p.name for p in dest.parent.iterdir()] == ["out.jsonl"]  # no temp file left
    # str paths too, and overwriting an existing file
    assert client.files.download(done.output_file_id, str(dest)) == dest
    assert dest.read_bytes() == content

    lines = list(client.files.iter_lines(done.output_file_id))
    assert lines == content.decode().splitlines()
    assert len(lines) == 30

    # the same batch in the batch list, and the files in the file list
    assert done.id in {x.id for x in client.batches.list()}
    assert {f.id, done.output_file_id} <= {x.id for x in client.files.list()}
    out_files = {x.id for x in client.files.list(purpose="batch_output")}
    assert done.output_file_id in out_files and f.id not in out_files


def test_embeddings_flow_and_iter_lines_crlf_and_no_final_newline(client):
    data = to_jsonl(embedding_line(f"e-{i}", f"text {i}") for i in range(4))
    f = client.files.create(data)
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/embeddings")
    done = wait_terminal(client, b.id)
    assert done.status == "completed"
    rows = [json.loads(x) for x in client.files.iter_lines(done.output_file_id)]
    assert sorted(r["custom_id"] for r in rows) == [f"e-{i}" for i in range(4)]
    # iter_lines strips \r\n and yields a last line without newline
    g = client.files.create(b'{"a":1}\r\n{"b":2}\n{"c":3}', purpose="batch")
    assert list(client.files.iter_lines(g.id)) == ['{"a":1}', '{"b":2}', '{"c":3}']


def test_iter_lines_throughput(client):
    """Iterating lines costs about what reading them does: 10,000 short lines (1.3 MB)
    well within 1.5 s (files.content + splitlines takes milliseconds). The loop stops at
    its deadline so a slow iterator fails fast instead of stalling the suite."""
    data = b"".join(b'{"n":%d,"pad":"%s"}\n' % (i, b"x" * 100) for i in range(10_000))
    f = client.files.create(data)
    t = time.monotonic()
    n = 0
    for _ in client.files.iter_lines(f.id):
        n += 1
        if time.monotonic() - t > 1.5:
            break
    elapsed = time.monotonic() - t
    assert n == 10_000, f"only {n} of 10,000 lines in {elapsed:.2f}s ({elapsed / n * 1e6:.0f} us per line)"


def test_failed_validation_has_batch_errors(client):
    f = client.files.create(b"this is not json\n" + lines_data(1))
    b = client.batches.create(input_file_id=f.id)
    done = wait_terminal(client, b.id)
    assert done.status == "failed"
    assert isinstance(done.errors, fb.BatchErrors)
    assert len(done.errors) >= 1
    first = next(iter(done.errors))
    assert isinstance(first, fb.BatchError)
    assert first.line == 1 and first.code
    assert done.output_file_id is None


def test_cancel_running_batch():
    with LocalServer(api_key=KEY, latency=0.2, concurrency=1) as slow:
        c = Client(KEY, slow.url, timeout=10, max_retries=0)
        f = c.files.create(lines_data(50))
        b = c.batches.create(input_file_id=f.id)
        cancelled = c.batches.cancel(b.id)
        assert cancelled.id == b.id
        assert cancelled.status in {"cancelling", "cancelled"}
        done = wait_terminal(c, b.id)
        assert done.status == "cancelled"
        assert done.cancelled_at is not None


def test_files_delete(client):
    f = client.files.create(b'{"x":1}\n')
    d = client.files.delete(f.id)
    assert isinstance(d, fb.FileDeleted)
    assert (d.id, d.deleted) == (f.id, True)
    with pytest.raises(fb.NotFoundError):
        client.files.retrieve(f.id)
    with pytest.raises(fb.NotFoundError):
        client.files.delete(f.id)


def test_batches_create_idempotency_key(client):
    f = client.files.create(lines_data(1))
    a = client.batches.create(input_file_id=f.id, idempotency_key="idem-test-1")
    b = client.batches.create(input_file_id=f.id, idempotency_key="idem-test-1")
    c = client.batches.create(input_file_id=f.id)
    d = client.batches.create(input_file_id=f.id)
    assert a.id == b.id
    assert len({a.id, c.id, d.id}) == 3  # a fresh key per call without one


# --- pagination ---------------------------------------------------------------------------


def test_pagination_over_several_pages():
    key = "sk-paging-only"
    with LocalServer(api_key=key) as s:
        c = Client(key, s.url, timeout=10, max_retries=0)
        ids = [c.files.create(f'{{"n":{i}}}\n'.encode()).id for i in range(7)]
        pager = c.files.list(limit=3)
        page = pager.first_page()
        assert isinstance(page, fb.CursorPage)
        assert len(page) == 3 and page.has_more
        assert page.first_id == page.data[0].id and page.last_id == page.data[-1].id
        assert all(isinstance(x, fb.FileObject) for x in page)
        pages = list(pager.iter_pages())
        assert [len(p) for p in pages] == [3, 3, 1]
        assert [p.has_more for p in pages] == [True, True, False]
        listed = [x.id for x in pager]
        assert sorted(listed) == sorted(ids) and len(set(listed)) == 7
        # after= starts after that id
        rest = [x.id for x in c.files.list(limit=3, after=listed[2])]
        assert rest == listed[3:]
        assert c.files.list(limit=100).first_page().has_more is False
        assert len(c.files.list(purpose="batch", limit=2).first_page()) == 2
        assert list(c.files.list(purpose="batch_output")) == []

        bids = [c.batches.create(input_file_id=ids[0]).id for _ in range(5)]
        bpages = list(c.batches.list(limit=2).iter_pages())
        assert [len(p) for p in bpages] == [2, 2, 1]
        listed_b = [x.id for x in c.batches.list(limit=2)]
        assert sorted(listed_b) == sorted(bids)
        assert all(isinstance(x, fb.Batch) for x in c.batches.list(limit=2))
        with pytest.raises(fb.BadRequestError) as ei:
            c.batches.list(limit=1000).first_page()
        assert ei.value.param == "limit"


# --- errors ---------------------------------------------------------------------------------


def _check_status_error(err: fb.APIStatusError, cls: type, status: int, code: str) -> None:
    assert type(err) is cls
    assert isinstance(err, fb.APIStatusError) and isinstance(err, fb.APIError) and isinstance(err, fb.FastRouterError)
    assert err.status_code == status
    assert err.code == code
    assert err.request_id and err.request_id.startswith("req_")
    assert err.type
    assert isinstance(err.message, str) and err.message
    assert isinstance(err.body, dict) and err.body["error"]["code"] == code
    assert str(status) in str(err) and err.request_id in str(err)
    assert_no_key(str(err), KEY, WRONG_KEY)
    assert_no_key(repr(err), KEY, WRONG_KEY)
    assert_no_key(repr(err.args), KEY, WRONG_KEY)
    assert_no_key(json.dumps(err.body), KEY, WRONG_KEY)


def test_error_tree():
    assert issubclass(fb.APIError, fb.FastRouterError)
    assert issubclass(fb.APIStatusError, fb.APIError)
    for cls in (
        fb.BadRequestError,
        fb.AuthenticationError,
        fb.PermissionDeniedError,
        fb.NotFoundError,
        fb.ConflictError,
        fb.RequestTooLargeError,
        fb.UnprocessableEntityError,
        fb.RateLimitError,
        fb.InternalServerError,
    ):
        assert issubclass(cls, fb.APIStatusError)
    assert issubclass(fb.APIConnectionError, fb.APIError)
    assert issubclass(fb.APITimeoutError, fb.APIConnectionError)
    assert not issubclass(fb.APIConnectionError, fb.APIStatusError)


def test_401_wrong_key(server):
    c = Client(WRONG_KEY, server.url, max_retries=2)
    t = time.monotonic()
    with pytest.raises(fb.AuthenticationError) as ei:
        c.files.list().first_page()
    assert time.monotonic() - t < 1.0  # 401 is not retried
    _check_status_error(ei.value, fb.AuthenticationError, 401, "invalid_api_key")
    with pytest.raises(fb.AuthenticationError) as ei:
        c.files.create(lines_data(3))
    _check_status_error(ei.value, fb.AuthenticationError, 401, "invalid_api_key")


def test_404s(client, tmp_path):
    for call in (
        lambda: client.files.retrieve("file-nope"),
        lambda: client.batches.retrieve("fr_batch-nope"),
        lambda: client.batches.cancel("fr_batch-nope"),
        lambda: client.files.content("file-nope"),
        lambda: client.files.delete("file-nope"),
    ):
        with pytest.raises(fb.NotFoundError) as ei:
            call()
        _check_status_error(ei.value, fb.NotFoundError, 404, "not_found")
    dest = tmp_path / "never.jsonl"
    with pytest.raises(fb.NotFoundError):
        client.files.download("file-nope", dest)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temp file
    with pytest.raises(fb.NotFoundError):
        list(client.files.iter_lines("file-nope"))
    with pytest.raises(fb.NotFoundError) as ei:
        client.batches.create(input_file_id="file-nope")
    assert ei.value.param == "input_file_id"


def test_409_cancel_completed(client):
    f = client.files.create(lines_data(2))
    b = wait_terminal(client, client.batches.create(input_file_id=f.id).id)
    assert b.status == "completed"
    with pytest.raises(fb.ConflictError) as ei:
        client.batches.cancel(b.id)
    _check_status_error(ei.value, fb.ConflictError, 409, "batch_not_cancellable")


def test_400_completion_window(client):
    f = client.files.create(lines_data(1))
    with pytest.raises(fb.BadRequestError) as ei:
        client.batches.create(input_file_id=f.id, completion_window="1h")
    _check_status_error(ei.value, fb.BadRequestError, 400, "invalid_completion_window")
    assert ei.value.param == "completion_window"
    with pytest.raises(fb.BadRequestError) as ei:
        client.batches.create(input_file_id=f.id, endpoint="/v1/completions")
    assert ei.value.code == "invalid_endpoint"
    with pytest.raises(fb.BadRequestError) as ei:
        client.batches.create(input_file_id=f.id, metadata={f"k{i}": "v" for i in range(17)})
    assert ei.value.code == "invalid_metadata"


@pytest.fixture(scope="module")
def small_server():
    with LocalServer(api_key=KEY, limits=Limits(max_bytes=64_000)) as s:
        yield s


@pytest.mark.parametrize("over", [1_000, 30_000_000], ids=["just-over", "far-over"])
@pytest.mark.parametrize("as_path", [False, True], ids=["bytes", "path"])
def test_413_upload_over_limit(small_server, tmp_path, over, as_path):
    """An upload over the engine's byte limit is a RequestTooLargeError, not a connection
    error: also when the file is much larger than the limit, so the engine answers (and
    closes) long before the client has sent it all. Tried 10 times: the failure mode (the
    413 lost to a reset while the client is still sending) is a race."""
    data = (b'{"pad":"' + b"x" * 90 + b'"}\n') * ((64_000 + over) // 100 + 1)
    src = data
    if as_path:
        src = tmp_path / "big.jsonl"
        src.write_bytes(data)
    c = Client(KEY, small_server.url, timeout=20, max_retries=0)
    outcomes = []
    for _ in range(10):
        try:
            c.files.create(src)
        except fb.APIError as e:
            outcomes.append(e)
    assert len(outcomes) == 10
    wrong = [f"{type(e).__name__}: {e}" for e in outcomes if type(e) is not fb.RequestTooLargeError]
    assert not wrong, f"{len(wrong)} of 10 uploads did not get the 413: {wrong[0]}"
    _check_status_error(outcomes[0], fb.RequestTooLargeError, 413, "file_too_large")
    assert outcomes[0].param == "file"


def test_connection_error_without_key(tmp_path):
    # a closed port: connection refused
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    c = Client(KEY, f"http://127.0.0.1:{port}", timeout=5, max_retries=0)
    with pytest.raises(fb.APIConnectionError) as ei:
        c.files.retrieve("file-x")
    err = ei.value
    assert type(err) is fb.APIConnectionError
    assert err.status_code is None and err.request_id is None and err.message
    assert_no_key(str(err))
    assert_no_key(repr(err))


def test_timeout_error(tmp_path):
    with SilentServer() as silent:
        c = Client(KEY, silent.url, timeout=0.3, max_retries=0)
        t = time.monotonic()
        with pytest.raises(fb.APITimeoutError) as ei:
            c.batches.retrieve("fr_batch-x")
        assert time.monotonic() - t < 2.0
        assert isinstance(ei.value, fb.APIConnectionError)
        assert_no_key(str(ei.value))
        assert_no_key(repr(ei.value))


def test_bad_base_url():
    with pytest.raises(ValueError):
        Client(KEY, "ftp://127.0.0.1:1")


# --- objects --------------------------------------------------------------------------------


def test_objects_tolerant_and_readable():
    f = fb.FileObject({"id": "file-1", "bytes": 3, "brand_new": {"x": 1}})
    assert f.id == "file-1" and f.bytes == 3
    assert f.filename is None and f.num_rows is None
    assert f.model_extra == {"brand_new": {"x": 1}}
    # FastRouter's `file_id` ("same as" id) is filled in from `id`.
    assert f.to_dict() == {"id": "file-1", "bytes": 3, "brand_new": {"x": 1}, "file_id": "file-1"}
    assert repr(f) == "FileObject(id='file-1', bytes=3)"

    b = fb.Batch(
        {
            "id": "fr_batch-1",
            "status": "failed",
            "future": True,
            "errors": {
                "object": "list",
                "data": [{"code": "invalid_json", "line": 2, "message": "bad", "param": None}],
            },
            "request_counts": {"total": 3, "completed": 1, "failed": 2, "skipped": 0},
        }
    )
    assert b.is_terminal
    assert b.output_file_id is None
    assert b.model_extra == {"future": True}
    assert isinstance(b.errors, fb.BatchErrors) and len(b.errors) == 1
    e = b.errors.data[0]
    assert isinstance(e, fb.BatchError) and (e.code, e.line, e.message) == ("invalid_json", 2, "bad")
    assert isinstance(b.request_counts, fb.RequestCounts) and b.request_counts.failed == 2
    assert b.request_counts.model_extra == {"skipped": 0}
    assert b.to_dict()["errors"]["data"][0]["line"] == 2
    r = repr(b)
    assert r == "Batch(id='fr_batch-1', status='failed', completed=1, failed=2, total=3, errors=1)"
    assert fb.Batch({"id": "x", "status": "validating"}).request_counts is None
    assert fb.FileDeleted({"id": "f", "deleted": True}).deleted is True


# --- the key never leaks ----------------------------------------------------------------


def test_key_never_logged_at_debug(server, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="fastrouter_batch")
    c = Client(KEY, server.url, timeout=10, max_retries=1)
    f = c.files.create(lines_data(3))
    b = wait_terminal(c, c.batches.create(input_file_id=f.id).id)
    c.files.download(b.output_file_id, tmp_path / "o.jsonl")
    list(c.files.iter_lines(b.output_file_id))
    with pytest.raises(fb.ConflictError):
        c.batches.cancel(b.id)  # final (x-should-retry: false): not retried
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(fb.APIConnectionError):
        Client(KEY, f"http://127.0.0.1:{port}", max_retries=1).files.list()  # retried once: logs a warning
    with pytest.raises(fb.AuthenticationError):
        Client(KEY + "-not", server.url, max_retries=0).files.list().first_page()
    assert caplog.records, "expected the client to log something (upload, retry)"
    assert any("retrying" in r.getMessage() for r in caplog.records)
    for r in caplog.records:
        assert_no_key(r.getMessage())
        assert_no_key(repr(r.args))
    assert_no_key(caplog.text)


# --- runtime environments: asyncio, fork, Ctrl-C -----------------------------------------------


def test_sync_client_inside_running_event_loop(server):
    async def main() -> tuple[str, int, str, list[str]]:
        c = Client(KEY, server.url, timeout=10, max_retries=0)
        f = c.files.create(lines_data(2))
        b = c.batches.create(input_file_id=f.id)
        await asyncio.sleep(0)
        n = len(c.files.list().first_page())
        lines = list(c.files.iter_lines(f.id))
        return c.files.retrieve(f.id).id, n, b.id, lines

    fid, n, bid, lines = asyncio.run(asyncio.wait_for(main(), 20))
    assert fid and bid and n >= 1 and len(lines) == 2


def test_fork_child_uses_parents_client(server):
    c = Client(KEY, server.url, timeout=5, max_retries=0)
    fid = c.files.create(b'{"fork":1}\n').id  # the parent's pool and runtime are live
    pid = os.fork()
    if pid == 0:  # the child: one request, then leave without running anything of pytest's
        code = 1
        try:
            code = 0 if c.files.retrieve(fid).id == fid and c.files.content(fid).content == b'{"fork":1}\n' else 1
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung using the parent's client")
        time.sleep(0.02)
    assert os.waitstatus_to_exitcode(status) == 0
    assert c.files.retrieve(fid).id == fid  # the parent's client still works


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_interrupts_a_blocking_call():
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with SilentServer() as silent:
        c = Client(KEY, silent.url, timeout=8, max_retries=0)
        sent: list[float] = []

        def fire() -> None:
            silent.accepted.wait(3)
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

        timer = threading.Thread(target=fire, daemon=True)
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                c.batches.retrieve("fr_batch-x")
            raised = time.monotonic()
        finally:
            timer.join(5)
        assert sent, "the server never saw a connection"
        assert raised - sent[0] < 0.5, f"interrupted after {raised - sent[0]:.2f}s"
        # the request was dropped: its connection gets closed
        assert silent.peer_closed.wait(2), "the interrupted request's connection was left open"
    # and the client still works afterwards
    with LocalServer(api_key=KEY) as s:
        assert Client(KEY, s.url, max_retries=0).files.list().first_page() is not None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_interrupts_iter_lines_wait():
    with SilentServer() as silent:
        c = Client(KEY, silent.url, timeout=8, max_retries=0)
        it = c.files.iter_lines("file-x")
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        t = time.monotonic()
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                next(it)
        finally:
            timer.cancel()
        assert time.monotonic() - t < 0.8
