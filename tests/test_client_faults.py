"""The client's retries and error mapping under network faults, injected by a scripted
proxy (`faultproxy.FaultProxy`) between the client and the local engine: 503s, 429s with
Retry-After, connections reset mid-upload and mid-download, stalls past the timeout, and
a lost answer to `batches.create` (the idempotency key must prevent a second batch).
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import fastrouter_batch as fb
from engine_helpers import chat_line, to_jsonl
from fastrouter_batch import AsyncClient, Client, LocalServer
from faultproxy import FaultProxy, ForwardThenRespond, ResetDownload, ResetUpload, Respond, Stall, StallDownload
from test_client import KEY, assert_no_key, wait_terminal


@pytest.fixture(scope="module")
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def proxy(server):
    with FaultProxy(server.url) as p:
        yield p


@pytest.fixture
def direct(server) -> Client:
    """A client straight to the engine (no proxy)."""
    return Client(KEY, server.url, timeout=10, max_retries=0)


def via(proxy: FaultProxy, *, retries: int, timeout: float = 10.0) -> Client:
    return Client(KEY, proxy.url, timeout=timeout, max_retries=retries)


@pytest.fixture(scope="module")
def big_output(server):
    """A completed batch's output file of a few hundred KB, and its exact bytes."""
    c = Client(KEY, server.url, timeout=10, max_retries=0)
    reqs = [chat_line(f"big-{i:05d}", "openai", content=f"Question number {i} " + "pad " * 20) for i in range(1500)]
    f = c.files.create(to_jsonl(reqs))
    b = wait_terminal(c, c.batches.create(input_file_id=f.id).id, timeout=30)
    assert b.status == "completed"
    data = c.files.content(b.output_file_id).content
    assert len(data) > 600_000
    return b.output_file_id, data


# --- 5xx ------------------------------------------------------------------------------------


def test_503s_then_success(proxy):
    proxy.add(Respond(503), method="GET", path="/v1/batches", times=2)
    t = time.monotonic()
    page = via(proxy, retries=2).batches.list().first_page()
    assert isinstance(page, fb.CursorPage)
    assert proxy.count("GET", "/v1/batches") == 3
    assert time.monotonic() - t < 3.0  # backoff is 0.25-0.5 s, then 0.5-1 s


def test_503_without_retries_is_internal_server_error(proxy):
    proxy.add(Respond(503), method="GET", times=5)
    with pytest.raises(fb.InternalServerError) as ei:
        via(proxy, retries=0).files.retrieve("file-x")
    err = ei.value
    assert err.status_code == 503 and err.code == "proxy_fault" and err.type == "server_error"
    assert err.request_id == "req_faultproxy"
    assert "injected 503" in err.message
    assert proxy.count() == 1
    assert_no_key(str(err))


def test_503s_exhaust_retries(proxy):
    proxy.add(Respond(503), method="POST", path="/v1/batches", times=10)
    with pytest.raises(fb.InternalServerError):
        via(proxy, retries=2).batches.create(input_file_id="file-x")
    assert proxy.count("POST", "/v1/batches") == 3


def test_500_with_non_json_body(proxy):
    proxy.add(Respond(502, body=b"<html>bad gateway</html>"), times=1)
    with pytest.raises(fb.InternalServerError) as ei:
        via(proxy, retries=0).files.list().first_page()
    assert ei.value.status_code == 502
    assert ei.value.body is None and ei.value.code is None
    assert "bad gateway" in ei.value.message


def test_non_retryable_status_is_not_retried(proxy):
    proxy.add(Respond(400, body={"error": {"message": "nope", "type": "invalid_request_error", "code": "x"}}), times=5)
    with pytest.raises(fb.BadRequestError):
        via(proxy, retries=3).files.list().first_page()
    assert proxy.count() == 1


# --- 429 and Retry-After ------------------------------------------------------------------


def test_429_retry_after_seconds_honoured(proxy):
    proxy.add(Respond(429, headers={"Retry-After": "1"}), method="GET", times=1)
    t = time.monotonic()
    via(proxy, retries=1).files.list().first_page()
    elapsed = time.monotonic() - t
    assert proxy.count("GET") == 2
    assert elapsed >= 0.9, f"Retry-After: 1 not honoured ({elapsed:.2f}s)"
    assert elapsed < 3.0


def test_429_retry_after_ms_honoured(proxy):
    # retry-after-ms wins over retry-after (OpenAI's convention)
    proxy.add(Respond(429, headers={"retry-after-ms": "900", "Retry-After": "30"}), method="GET", times=1)
    t = time.monotonic()
    via(proxy, retries=1).batches.list().first_page()
    elapsed = time.monotonic() - t
    assert proxy.count("GET") == 2
    assert 0.85 <= elapsed < 3.0, f"retry-after-ms: 900 gave {elapsed:.2f}s"


@pytest.mark.parametrize("op", ["content", "download"])
def test_download_429_retry_after_honoured(proxy, big_output, tmp_path, op):
    # Downloads retry whole, through their own loop: it honours the answer's wait too.
    file_id, data = big_output
    proxy.add(Respond(429, headers={"Retry-After": "1"}), method="GET", path=f"/v1/files/{file_id}/content", times=1)
    client = via(proxy, retries=1)
    t = time.monotonic()
    if op == "content":
        got = client.files.content(file_id).content
    else:
        client.files.download(file_id, tmp_path / "out.jsonl")
        got = (tmp_path / "out.jsonl").read_bytes()
    elapsed = time.monotonic() - t
    assert got == data
    assert proxy.count("GET", "/v1/files/") == 2
    assert 0.9 <= elapsed < 3.0, f"Retry-After: 1 gave {elapsed:.2f}s"


def test_429_without_retries_is_rate_limit_error(proxy):
    proxy.add(Respond(429, headers={"Retry-After": "1"}), times=3)
    with pytest.raises(fb.RateLimitError) as ei:
        via(proxy, retries=0).batches.list().first_page()
    assert ei.value.status_code == 429 and ei.value.code == "rate_limited"
    assert proxy.count() == 1


# --- resets mid-upload --------------------------------------------------------------------


def _upload_data() -> bytes:
    return to_jsonl(chat_line(f"up-{i}", content="x" * 400) for i in range(1200))  # ~600 KB


@pytest.mark.parametrize("as_path", [False, True], ids=["bytes", "path"])
def test_reset_mid_upload_is_retried(proxy, direct, tmp_path, as_path):
    data = _upload_data()
    src = data
    if as_path:
        src = tmp_path / "up.jsonl"
        src.write_bytes(data)
    proxy.add(ResetUpload(after=64 * 1024), method="POST", path="/v1/files", times=1)
    f = via(proxy, retries=1).files.create(src)
    attempts = proxy.matching("POST", "/v1/files")
    assert [a.action for a in attempts] == ["reset_upload", "forward"]
    assert attempts[0].body_len == 64 * 1024
    assert attempts[1].body_len == int(attempts[1].headers["content-length"]) > len(data)
    assert f.bytes == len(data)
    assert direct.files.content(f.id).content == data  # the retry re-sent the whole file, from the start


def test_reset_mid_upload_without_retries_is_connection_error(proxy):
    proxy.add(ResetUpload(after=64 * 1024), method="POST", path="/v1/files", times=1)
    with pytest.raises(fb.APIConnectionError) as ei:
        via(proxy, retries=0).files.create(_upload_data())
    assert type(ei.value) is fb.APIConnectionError
    assert ei.value.status_code is None
    assert_no_key(str(ei.value))


# --- resets mid-download --------------------------------------------------------------------


def test_reset_mid_download_content_is_retried(proxy, big_output):
    file_id, data = big_output
    proxy.add(ResetDownload(after=200_000), method="GET", path=f"/v1/files/{file_id}/content", times=1)
    got = via(proxy, retries=1).files.content(file_id).content
    assert len(got) == len(data) and got == data
    assert [s.action for s in proxy.matching("GET", "/v1/files/")] == ["reset_download", "forward"]


def test_reset_mid_download_to_path_is_retried(proxy, big_output, tmp_path):
    file_id, data = big_output
    proxy.add(ResetDownload(after=300_000), method="GET", path=f"/v1/files/{file_id}/content", times=2)
    dest = tmp_path / "out.jsonl"
    dest.write_bytes(b"old content that must be replaced whole")
    via(proxy, retries=2).files.download(file_id, dest)
    assert dest.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temp file left behind
    assert proxy.count("GET", "/v1/files/") == 3


def test_reset_mid_download_without_retries(proxy, big_output, tmp_path):
    file_id, _ = big_output
    proxy.add(ResetDownload(after=100_000), method="GET", times=1)
    dest = tmp_path / "out.jsonl"
    with pytest.raises(fb.APIConnectionError):
        via(proxy, retries=0).files.download(file_id, dest)
    assert list(tmp_path.iterdir()) == []  # neither a partial file nor a temp file
    proxy.add(ResetDownload(after=100_000), method="GET", times=1)
    with pytest.raises(fb.APIConnectionError):
        via(proxy, retries=0).files.content(file_id)


@pytest.mark.parametrize("cut", [150_000, 150_001, 333_333])
def test_iter_lines_resumes_after_reset(proxy, big_output, cut):
    file_id, data = big_output
    proxy.add(ResetDownload(after=cut), method="GET", path=f"/v1/files/{file_id}/content", times=1)
    lines = list(via(proxy, retries=1).files.iter_lines(file_id))
    expected = data.decode().splitlines()
    assert len(lines) == len(expected), f"{len(lines)} lines, expected {len(expected)}"
    assert lines == expected  # no line lost, none repeated, none torn
    assert proxy.count("GET", "/v1/files/") == 2


def test_iter_lines_resumes_after_two_resets(proxy, big_output):
    file_id, data = big_output
    proxy.add(ResetDownload(after=100_000), method="GET", path=f"/v1/files/{file_id}/content", times=1)
    proxy.add(ResetDownload(after=400_000), method="GET", path=f"/v1/files/{file_id}/content", times=1)
    lines = list(via(proxy, retries=2).files.iter_lines(file_id))
    assert lines == data.decode().splitlines()


def test_iter_lines_reset_without_retries_raises(proxy, big_output):
    file_id, data = big_output
    proxy.add(ResetDownload(after=100_000), method="GET", times=1)
    got = []
    with pytest.raises(fb.APIConnectionError):
        for line in via(proxy, retries=0).files.iter_lines(file_id):
            got.append(line)
    expected = data.decode().splitlines()
    assert 0 < len(got) < len(expected)
    assert got == expected[: len(got)]  # what was delivered was whole lines, in order


def test_async_iter_lines_and_content_resume_after_reset(proxy, big_output):
    file_id, data = big_output

    async def main():
        c = AsyncClient(KEY, proxy.url, timeout=10, max_retries=1)
        proxy.add(ResetDownload(after=250_000), method="GET", times=1)
        lines = [line async for line in c.files.iter_lines(file_id)]
        assert lines == data.decode().splitlines()
        proxy.add(ResetDownload(after=250_000), method="GET", times=1)
        assert (await c.files.content(file_id)).content == data
        proxy.add(Respond(503), method="GET", times=1)
        assert (await c.files.retrieve(file_id)).id == file_id

    asyncio.run(asyncio.wait_for(main(), 30))
    assert proxy.count("GET") == 6


@pytest.mark.parametrize("op", ["content", "download", "iter_lines", "retrieve"])
def test_attempts_respect_max_retries_when_every_connection_resets(proxy, big_output, tmp_path, op):
    """`max_retries=1` means at most 2 attempts, for downloads too (the mid-body retry
    must not multiply the retries of the request that opens the download)."""
    file_id, _ = big_output
    proxy.add(ResetUpload(after=0), method="GET", times=50)  # reset before any answer, every time
    c = via(proxy, retries=1)
    call = {
        "content": lambda: c.files.content(file_id),
        "download": lambda: c.files.download(file_id, tmp_path / "o.jsonl"),
        "iter_lines": lambda: list(c.files.iter_lines(file_id)),
        "retrieve": lambda: c.files.retrieve(file_id),
    }[op]
    with pytest.raises(fb.APIConnectionError):
        call()
    assert proxy.count("GET") == 2, f"{op}: {proxy.count('GET')} attempts with max_retries=1"


# --- stalls -----------------------------------------------------------------------------------


def test_stall_past_timeout_is_timeout_error(proxy):
    proxy.add(Stall(10), times=1)
    t = time.monotonic()
    with pytest.raises(fb.APITimeoutError) as ei:
        via(proxy, retries=0, timeout=0.5).batches.list().first_page()
    elapsed = time.monotonic() - t
    assert isinstance(ei.value, fb.APIConnectionError)
    assert 0.45 <= elapsed < 2.0, elapsed
    assert_no_key(str(ei.value))


def test_stall_then_retry_succeeds(proxy):
    proxy.add(Stall(10), times=1)
    t = time.monotonic()
    via(proxy, retries=1, timeout=0.5).files.list().first_page()
    assert time.monotonic() - t < 3.0
    assert proxy.count() == 2


def test_async_stall_is_timeout_error(proxy):
    async def main():
        c = AsyncClient(KEY, proxy.url, timeout=0.5, max_retries=0)
        proxy.add(Stall(10), times=1)
        with pytest.raises(fb.APITimeoutError):
            await c.batches.retrieve("fr_batch-x")

    asyncio.run(asyncio.wait_for(main(), 10))


# --- lost answers: batches.create stays idempotent ----------------------------------------------


def test_create_retried_after_lost_answer_makes_one_batch(proxy, direct):
    f = direct.files.create(to_jsonl([chat_line("idem-1")]))
    proxy.add(ForwardThenRespond(503), method="POST", path="/v1/batches", prefix=False, times=1)
    b = via(proxy, retries=2).batches.create(input_file_id=f.id)
    posts = proxy.matching("POST", "/v1/batches", prefix=False)
    assert [p.action for p in posts] == ["forward_then_respond", "forward"]
    keys = [p.headers.get("idempotency-key") for p in posts]
    assert keys[0] and keys[0] == keys[1], keys
    mine = [x for x in direct.batches.list() if x.input_file_id == f.id]
    assert len(mine) == 1, f"the engine made {len(mine)} batches for one create call"
    assert mine[0].id == b.id

    # a second call is a second batch (a new key per call)
    proxy.clear()
    via(proxy, retries=0).batches.create(input_file_id=f.id)
    assert proxy.matching("POST", "/v1/batches", prefix=False)[0].headers["idempotency-key"] != keys[0]
    assert len([x for x in direct.batches.list() if x.input_file_id == f.id]) == 2


def test_create_with_explicit_idempotency_key(proxy, direct):
    f = direct.files.create(to_jsonl([chat_line("idem-2")]))
    proxy.add(ForwardThenRespond(502), method="POST", path="/v1/batches", prefix=False, times=2)
    b = via(proxy, retries=2).batches.create(input_file_id=f.id, idempotency_key="my-key-42")
    posts = proxy.matching("POST", "/v1/batches", prefix=False)
    assert [p.headers.get("idempotency-key") for p in posts] == ["my-key-42"] * 3
    assert [x.id for x in direct.batches.list() if x.input_file_id == f.id] == [b.id]


def test_async_create_retried_after_lost_answer_makes_one_batch(proxy, direct):
    f = direct.files.create(to_jsonl([chat_line("idem-3")]))
    proxy.add(ForwardThenRespond(503), method="POST", path="/v1/batches", prefix=False, times=1)

    async def main():
        return await AsyncClient(KEY, proxy.url, timeout=10, max_retries=1).batches.create(input_file_id=f.id)

    b = asyncio.run(asyncio.wait_for(main(), 20))
    keys = [p.headers.get("idempotency-key") for p in proxy.matching("POST", "/v1/batches", prefix=False)]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]
    assert [x.id for x in direct.batches.list() if x.input_file_id == f.id] == [b.id]


def test_retry_warning_is_logged_without_key(proxy, caplog):
    proxy.add(Respond(503), method="GET", times=1)
    with caplog.at_level("DEBUG"):
        via(proxy, retries=1).files.list().first_page()
    msgs = [r.getMessage() for r in caplog.records if r.name == "fastrouter_batch"]
    assert any("retrying GET /v1/files" in m and "503" in m for m in msgs), msgs
    for m in msgs:
        assert_no_key(m)
    assert json.dumps(msgs)  # plain strings


def test_api_key_whitespace_is_trimmed_and_control_characters_refused(server):
    # A key read from a file keeps its newline: it still works.
    c = Client(KEY + "\n", server.url, timeout=10, max_retries=0)
    assert c.batches.list().first_page() is not None
    secret = "sk-inner\x07secret"
    with pytest.raises(ValueError, match="control character") as ei:
        Client(secret, server.url)
    assert "inner" not in str(ei.value) and "secret" not in str(ei.value)


def test_an_answer_whose_body_stalls_is_retried(proxy):
    # The head arrives, then the body stops: the attempt times out and is retried, like an
    # answer that never came.
    proxy.add(StallDownload(after=5, seconds=10), method="GET", path="/v1/files", times=1)
    t = time.monotonic()
    page = via(proxy, retries=1, timeout=1.0).files.list().first_page()
    assert page is not None
    assert [s.action for s in proxy.matching("GET", "/v1/files")] == ["stall_download", "forward"]
    assert time.monotonic() - t < 5


def test_a_cancelled_download_leaves_no_temporary_file(proxy, big_output, tmp_path):
    file_id, _ = big_output
    proxy.add(StallDownload(after=200_000, seconds=10), method="GET", path=f"/v1/files/{file_id}/content", times=1)

    async def main() -> None:
        ac = AsyncClient(KEY, proxy.url, timeout=30, max_retries=0)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ac.files.download(file_id, tmp_path / "out.jsonl"), 1.0)

    asyncio.run(main())
    deadline = time.monotonic() + 5
    while list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.iterdir()) == []  # neither the destination nor a .part file


def test_content_of_an_id_that_is_a_path_stays_one_segment(server):
    c = Client(KEY, server.url, timeout=10, max_retries=0)
    for bad in ("../batches", "x?y=1", "a/b"):
        with pytest.raises(fb.NotFoundError):
            c.files.content(bad)


def test_ids_that_look_like_paths_never_reach_another_endpoint(server):
    c = Client(KEY, server.url, timeout=10, max_retries=0)
    for bad in ("../batches", "x?y=1", "a/b", "%2e%2e"):
        with pytest.raises(fb.NotFoundError):
            c.files.retrieve(bad)
        with pytest.raises(fb.NotFoundError):
            c.batches.retrieve(bad)
    with pytest.raises(ValueError):
        c.files.retrieve("..")
