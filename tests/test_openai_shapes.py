"""Same name, same shape as openai-python (issue 10, C11), and its `x-should-retry` rule
(C7): `files.content` answers like `HttpxBinaryResponseContent`, `batches.list()` like
`SyncCursorPage`, objects have `model_dump()`; OpenAI-format batch files are refused with a
fix, and `convert` / `BatchBuilder.from_openai_file` apply it. Conflicts the server calls
final are not retried.

Checked against the stock `openai` package where it has the name; real HTTP over loopback
to the local engine (through `FaultProxy` where attempts are counted).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import httpx
import openai
import pytest
from openai._legacy_response import HttpxBinaryResponseContent

import fastrouter_batch as fb
from engine_helpers import chat_line, cli_env, run_cli, to_jsonl
from fastrouter_batch import Client, LocalServer
from faultproxy import FaultProxy, Respond

KEY = "sk-v1-openai-shapes"
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def client(server) -> Client:
    return Client(KEY, server.url, timeout=10, max_retries=0)


def finished(client: Client, n: int = 3) -> fb.Batch:
    f = client.files.create(to_jsonl(chat_line(f"r-{i}") for i in range(n)))
    return client.batches.wait(client.batches.create(input_file_id=f.id).id, progress=False, timeout=TIMEOUT)


# --- C7: x-should-retry ------------------------------------------------------------------


def test_cancelling_a_finished_batch_is_not_retried(server):
    done = finished(Client(KEY, server.url, max_retries=0))
    with FaultProxy(server.url) as proxy:
        c = Client(KEY, proxy.url, max_retries=2)
        t = time.monotonic()
        with pytest.raises(fb.ConflictError):
            c.batches.cancel(done.id)
        assert proxy.count("POST", f"/v1/batches/{done.id}/cancel") == 1
        assert time.monotonic() - t < 1.0


def test_the_engine_marks_final_answers(server):
    headers = {"Authorization": f"Bearer {KEY}"}
    done = finished(Client(KEY, server.url, max_retries=0))
    conflict = httpx.post(f"{server.url}/v1/batches/{done.id}/cancel", headers=headers)
    assert conflict.status_code == 409 and conflict.headers["x-should-retry"] == "false"
    missing = httpx.get(f"{server.url}/v1/batches/batch_nope", headers=headers)
    assert missing.status_code == 404 and missing.headers["x-should-retry"] == "false"
    ok = httpx.get(f"{server.url}/v1/batches/{done.id}", headers=headers)
    assert "x-should-retry" not in ok.headers
    # openai-python reads the same header: one attempt for it too.
    with FaultProxy(server.url) as proxy:
        oc = openai.OpenAI(api_key=KEY, base_url=proxy.url + "/v1", max_retries=2)
        with pytest.raises(openai.ConflictError):
            oc.batches.cancel(done.id)
        assert proxy.count("POST", f"/v1/batches/{done.id}/cancel") == 1


def test_the_header_overrides_the_status_rules(server):
    with FaultProxy(server.url) as proxy:
        c = Client(KEY, proxy.url, max_retries=2)
        proxy.add(Respond(400, headers={"x-should-retry": "true"}), method="GET", path="/v1/batches/b_true", times=5)
        with pytest.raises(fb.BadRequestError):
            c.batches.retrieve("b_true")
        assert proxy.count("GET", "/v1/batches/b_true") == 3
        proxy.add(Respond(503, headers={"x-should-retry": "false"}), method="GET", path="/v1/batches/b_false", times=5)
        with pytest.raises(fb.InternalServerError):
            c.batches.retrieve("b_false")
        assert proxy.count("GET", "/v1/batches/b_false") == 1
        proxy.add(Respond(503), method="GET", path="/v1/batches/b_none", times=5)
        with pytest.raises(fb.InternalServerError):
            c.batches.retrieve("b_none")
        assert proxy.count("GET", "/v1/batches/b_none") == 3


# --- C11: files.content ------------------------------------------------------------------


def test_file_content_has_openai_shape(client, tmp_path):
    data = b'{"a": 1}\n{"b": "\xc3\xa9"}\r\n{"c": 3}\n'
    f = client.files.create(data)
    content = client.files.content(f.id)
    assert isinstance(content, fb.FileContent)
    assert content.content == content.read() == data
    assert content.text == data.decode()
    assert list(content.iter_lines()) == ['{"a": 1}', '{"b": "é"}', '{"c": 3}']
    assert b"".join(content.iter_bytes(5)) == data and all(len(c) <= 5 for c in content.iter_bytes(5))
    assert "".join(content.iter_text(4)) == data.decode()
    content.write_to_file(tmp_path / "copy.jsonl")
    assert (tmp_path / "copy.jsonl").read_bytes() == data
    one = client.files.content(client.files.create(b'{"x": [1, 2]}\n').id)
    assert one.json() == {"x": [1, 2]}
    # Every public name of openai's HttpxBinaryResponseContent but its httpx response.
    theirs = {n for n in dir(HttpxBinaryResponseContent) if not n.startswith("_")} - {"response"}
    assert theirs <= set(dir(content)), theirs - set(dir(content))


def test_file_content_async(server):
    async def main() -> None:
        c = fb.AsyncClient(KEY, server.url, max_retries=0)
        f = await c.files.create(b'{"a":1}\n{"b":2}\n')
        content = await c.files.content(f.id)
        assert content.text == '{"a":1}\n{"b":2}\n'
        assert [x async for x in content.aiter_lines()] == ['{"a":1}', '{"b":2}']
        assert await content.aread() == content.content

    asyncio.run(asyncio.wait_for(main(), TIMEOUT))


# --- C11: batches.list -------------------------------------------------------------------


def test_batches_list_is_a_first_page_that_walks_every_page(server):
    with LocalServer(api_key=KEY) as fresh:
        c = Client(KEY, fresh.url, max_retries=0)
        f = c.files.create(to_jsonl([chat_line("r")]))
        made = [c.batches.create(input_file_id=f.id).id for _ in range(5)]
        page = c.batches.list(limit=2)
        assert isinstance(page, fb.SyncCursorPage) and isinstance(page, fb.CursorPage)
        assert [b.id for b in page.data] == made[::-1][:2]
        assert page.has_more is True and page.has_next_page()
        assert (page.first_id, page.last_id) == (made[4], made[3])
        assert [b.id for b in page] == made[::-1]  # every item of every page
        assert [len(p.data) for p in page.iter_pages()] == [2, 2, 1]
        assert [b.id for b in page.get_next_page().data] == made[::-1][2:4]
        # openai's own client sees the same pages.
        theirs = openai.OpenAI(api_key=KEY, base_url=fresh.url + "/v1").batches.list(limit=2)
        assert [b.id for b in theirs.data] == [b.id for b in page.data] and theirs.has_more == page.has_more
        assert [b.id for b in theirs] == [b.id for b in page]

        async def main() -> None:
            ac = fb.AsyncClient(KEY, fresh.url, max_retries=0)
            first = await ac.batches.list(limit=2)
            assert isinstance(first, fb.AsyncCursorPage)
            assert (first.first_id, first.last_id, first.has_more) == (made[4], made[3], True)
            assert [b.id async for b in first] == made[::-1]
            assert [b.id async for b in ac.batches.list(limit=2)] == made[::-1]

        asyncio.run(asyncio.wait_for(main(), TIMEOUT))


# --- C11: model_dump ---------------------------------------------------------------------


def test_objects_have_model_dump(client):
    done = finished(client, 2)
    dumped = done.model_dump()
    assert dumped["id"] == done.id and dumped["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    assert "in_progress_at" in dumped and dumped["cancelled_at"] is None  # every declared field
    assert json.loads(done.model_dump_json()) == dumped
    assert done.model_dump(exclude_none=True).get("cancelled_at", "absent") == "absent"
    assert done.model_dump(include={"id", "status"}) == {"id": done.id, "status": "completed"}
    assert set(done.model_dump(exclude_unset=True)) == set(done.to_dict())
    # The same values as openai's Batch gives for every field both know.
    theirs = openai.types.Batch.model_validate(done.to_dict()).model_dump()
    common = set(theirs) & set(dumped)
    assert {"id", "status", "request_counts", "output_file_id", "created_at"} <= common
    assert {k: dumped[k] for k in common} == {k: theirs[k] for k in common}
    f = client.files.retrieve(done.output_file_id)
    assert f.model_dump()["id"] == f.id and f.to_dict()["id"] == f.id


# --- C11: OpenAI-format files ------------------------------------------------------------

OPENAI_LINES = [
    {
        "custom_id": f"q-{i}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Hi {i}"}]},
    }
    for i in range(3)
]


def test_openai_format_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "openai.jsonl"
    path.write_bytes(to_jsonl(OPENAI_LINES))
    report = fb.validate(path)
    assert not report.ok and report.total_issues == 3
    issue = report.issues[0]
    assert (issue.code, issue.path) == ("missing_field", "provider")
    assert "OpenAI-format" in issue.message and '"openai/gpt-4o-mini"' in issue.message
    assert "fastrouter-batch convert FILE --provider openai -o OUT" in issue.message


def cli(*args: str) -> subprocess.CompletedProcess:
    return run_cli(*args, env=cli_env(), timeout=TIMEOUT)


def test_convert_and_from_openai_file(tmp_path, client):
    path = tmp_path / "openai.jsonl"
    mixed = [*OPENAI_LINES, chat_line("already-ours")]
    path.write_bytes(to_jsonl(mixed))
    out = tmp_path / "conv" / "ours.jsonl"
    r = cli("convert", str(path), "--provider", "openai", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "4 requests written to" in r.stderr
    converted = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["provider"] for x in converted] == ["openai"] * 4
    assert [x["body"]["model"] for x in converted] == ["openai/gpt-4o-mini"] * 3 + ["openai/gpt-4.1-nano"]
    assert converted[3] == mixed[3]  # a line in our format is kept as it was
    assert fb.validate(out).ok
    r = cli("validate", str(out))
    assert r.returncode == 0, r.stderr
    # To stdout without -o.
    r = cli("convert", str(path))
    assert [json.loads(x) for x in r.stdout.splitlines()] == converted
    # The builder does the same.
    builder = fb.BatchBuilder.from_openai_file(path, provider="openai")
    assert isinstance(builder, fb.BatchBuilder) and len(builder) == 4
    assert [json.loads(x) for x in builder.to_bytes().splitlines()] == converted
    results = client.run(builder, progress=False, poll_interval=0.01)
    assert all(r.ok for r in results)
    # A line that is not JSON is named.
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(to_jsonl(OPENAI_LINES[:1]) + b"{nope\n")
    r = cli("convert", str(bad), "-o", str(tmp_path / "x.jsonl"))
    assert r.returncode == 2 and f"{bad}, line 2: not valid JSON" in r.stderr, r.stderr
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(ValueError, match="provider"):
        fb.BatchBuilder.from_openai_file(path, provider="")
