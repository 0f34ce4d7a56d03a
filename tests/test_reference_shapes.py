"""The hosted service's own answer shapes (issue 10, B): against a loopback server that
answers exactly what FastRouter's API reference documents (`refserver.RefServer`: `file_id`
and `batch_id` without `id`, `errors` as a bare list, 402 for missing credits), the whole
flow works: upload, trigger, wait, download, results, `run`, list, sync and async, and the
CLI in a child process.

Everything talks to 127.0.0.1; every wait and child process is bounded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

import fastrouter_batch as fb
from engine_helpers import chat_line, cli_env, run_cli, to_jsonl
from refserver import RefServer

TIMEOUT = 30.0
LINES = [chat_line(f"request-{i}") for i in range(1, 4)]


@pytest.fixture
def ref():
    with RefServer() as server:
        yield server


@pytest.fixture
def batch_file(tmp_path) -> Path:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(to_jsonl(LINES))
    return path


def client_for(ref: RefServer) -> fb.Client:
    return fb.Client(api_key=ref.api_key, base_url=ref.url, max_retries=0, timeout=10)


def test_the_server_answers_only_the_documented_ids(ref, batch_file):
    """The premise: this server never sends `id` on files and batches."""
    import httpx

    with open(batch_file, "rb") as f:
        up = httpx.post(
            f"{ref.url}/v1/files",
            headers={"Authorization": f"Bearer {ref.api_key}"},
            files={"file": ("batch.jsonl", f)},
            data={"purpose": "batch"},
        ).json()
    assert "id" not in up and up["file_id"].startswith("file-") and up["num_rows"] == 3
    made = httpx.post(
        f"{ref.url}/v1/batches",
        headers={"Authorization": f"Bearer {ref.api_key}"},
        json={"input_file_id": up["file_id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"},
    ).json()
    assert "id" not in made and made["batch_id"].startswith("fr_batch-")


def test_upload_trigger_wait_download_sync(ref, batch_file, tmp_path):
    client = client_for(ref)
    f = client.files.create(batch_file)
    assert f.id == f.file_id and f.id.startswith("file-") and f.num_rows == 3
    b = client.batches.create(input_file_id=f.id)
    assert b.id == b.batch_id and b.id.startswith("fr_batch-") and b.status == "validating"
    assert client.batches.retrieve(b.id).id == b.id
    done = client.batches.wait(b.id, poll_interval=0.01, progress=False)
    assert done.status == "completed" and done.id == b.id
    out = client.files.download(done.output_file_id, tmp_path / "out.jsonl")
    assert [json.loads(x)["custom_id"] for x in out.read_text().splitlines()] == ["request-1", "request-2", "request-3"]
    assert client.files.content(done.output_file_id).text == out.read_text()
    results = client.batches.results(b.id)
    assert [r.text for r in results] == [f"answer to request-{i}" for i in range(1, 4)]
    listed = client.batches.list()
    assert [x.id for x in listed.data] == [b.id] and listed.last_id == b.id
    assert [x.id for x in listed] == [b.id]
    # Objects built by hand read the same way.
    assert fb.Batch({"batch_id": "fr_batch-x"}).id == "fr_batch-x"
    assert fb.FileObject({"id": "file-y"}).file_id == "file-y"


def test_run_end_to_end_sync(ref, batch_file, tmp_path):
    client = client_for(ref)
    results = client.run(batch_file, manifest=tmp_path / "run.json", poll_interval=0.01, progress=False)
    assert [r.custom_id for r in results] == ["request-1", "request-2", "request-3"] and all(r.ok for r in results)
    manifest = json.loads((tmp_path / "run.json").read_text())
    assert [p["batch_id"] for p in manifest["parts"]] == [b.id for b in client.batches.list()]
    assert client.resume(tmp_path / "run.json", poll_interval=0.01, progress=False).summary()["succeeded"] == 3


def test_whole_flow_async(ref, batch_file):
    async def flow() -> None:
        client = fb.AsyncClient(api_key=ref.api_key, base_url=ref.url, max_retries=0, timeout=10)
        f = await client.files.create(batch_file)
        assert f.id == f.file_id and f.id.startswith("file-")
        b = await client.batches.create(input_file_id=f.id)
        assert b.id == b.batch_id and b.id.startswith("fr_batch-")
        done = await client.batches.wait(b.id, poll_interval=0.01, progress=False)
        assert done.status == "completed"
        content = await client.files.content(done.output_file_id)
        assert len(list(content.iter_lines())) == 3
        assert [r.ok for r in await client.batches.results(done)] == [True] * 3
        page = await client.batches.list()
        assert [x.id for x in page.data] == [b.id]
        assert [x.id async for x in client.batches.list()] == [b.id]
        results = await client.run(batch_file, poll_interval=0.01, progress=False)
        assert [r.text for r in results] == [f"answer to request-{i}" for i in range(1, 4)]

    asyncio.run(asyncio.wait_for(flow(), TIMEOUT))


def test_errors_as_a_bare_list_become_batch_errors(ref, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(to_jsonl([chat_line("request-1", content="FAIL_VALIDATION")]))
    client = client_for(ref)
    b = client.batches.create(input_file_id=client.files.create(bad).id)
    done = client.batches.wait(b.id, poll_interval=0.01, progress=False)
    assert done.status == "failed"
    assert isinstance(done.errors, fb.BatchErrors)
    assert done.errors.object == "list"
    assert [(e.code, e.line, e.message) for e in done.errors] == [("invalid_request", 1, "FAIL_VALIDATION found")]
    assert done.to_dict()["errors"] == {"object": "list", "data": [e.to_dict() for e in done.errors]}
    # The same object as the documented shape gives.
    documented = fb.Batch({"id": "b", "errors": {"object": "list", "data": [done.errors.data[0].to_dict()]}})
    assert documented.errors == done.errors
    with pytest.raises(fb.FastRouterError, match="failed: line 1: FAIL_VALIDATION found"):
        client.batches.results(b.id)


def test_402_is_insufficient_credits(batch_file):
    with RefServer(insufficient_credits=True) as ref:
        client = client_for(ref)
        f = client.files.create(batch_file)
        with pytest.raises(fb.InsufficientCreditsError) as e:
            client.batches.create(input_file_id=f.id)
        assert isinstance(e.value, fb.APIStatusError) and e.value.status_code == 402
        assert "Insufficient credits" in str(e.value)
        assert fb.InsufficientCreditsError.__module__ == "fastrouter_batch._core"

        async def make() -> None:
            client = fb.AsyncClient(api_key=ref.api_key, base_url=ref.url, max_retries=0)
            await client.batches.create(input_file_id=f.id)

        with pytest.raises(fb.InsufficientCreditsError):
            asyncio.run(make())
        r = cli("submit", str(batch_file), ref=ref)
        assert r.returncode == 2, r
        assert "Error code: 402" in r.stderr and "Insufficient credits" in r.stderr, r.stderr


def cli(*args: str, ref: RefServer, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = cli_env(FASTROUTER_API_KEY=ref.api_key, FASTROUTER_BASE_URL=ref.url)
    return run_cli(*args, env=env, cwd=cwd, timeout=TIMEOUT)


def test_cli_whole_flow(ref, batch_file, tmp_path):
    r = cli("submit", str(batch_file), "--json", ref=ref)
    assert r.returncode == 0, r.stderr
    submitted = json.loads(r.stdout)
    batch_id = submitted["id"]
    assert batch_id == submitted["batch_id"] and batch_id.startswith("fr_batch-")
    assert f"submitted {batch_id} (file file-" in r.stderr
    r = cli("wait", batch_id, "--no-progress", ref=ref)
    assert r.returncode == 0 and r.stdout.startswith(f"{batch_id}  completed"), r
    r = cli("status", batch_id, ref=ref)
    assert r.returncode == 0 and batch_id in r.stdout, r
    out = tmp_path / "dl" / "out.jsonl"
    r = cli("download", batch_id, "-o", str(out), ref=ref)
    assert r.returncode == 0 and len(out.read_text().splitlines()) == 3, r
    r = cli("results", batch_id, ref=ref)
    assert r.returncode == 0 and [json.loads(x)["ok"] for x in r.stdout.splitlines()] == [True] * 3, r
    r = cli("list", ref=ref)
    assert r.returncode == 0 and batch_id in r.stdout, r
    r = cli("run", str(batch_file), "-o", str(tmp_path / "run.jsonl"), "--no-progress", ref=ref)
    assert r.returncode == 0 and "3/3 requests succeeded" in r.stderr, r
    r = cli("submit", str(batch_file), "--wait", "--no-progress", ref=ref)
    assert r.returncode == 0 and "completed" in r.stdout, r
