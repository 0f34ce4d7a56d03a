"""The command line's workflow subcommands (submit, status, wait, download, results, cancel,
list, run, validate) against a local engine, each as `python -m fastrouter_batch` in a child
process with the key and URL in the environment, and the exit codes scripts rely on:
0 ok; 1 failed lines, a failed batch or a server that failed; 2 usage, validation or a
request the server refused (4xx).

Everything talks to 127.0.0.1; every child process has a timeout.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import fastrouter_batch as fb
from engine_helpers import SAMPLE, Serve, chat_line, cli_env, run_cli, to_jsonl
from fastrouter_batch import Client, Limits, LocalServer

KEY = "sk-v1-cli-workflow"
TIMEOUT = 30.0


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    server: LocalServer | None = None,
    cwd: Path | None = None,
    timeout: float = TIMEOUT,
) -> subprocess.CompletedProcess:
    """`python -m fastrouter_batch ARGS` with this environment less any FASTROUTER_* setting,
    plus `env`; with `server`, its URL and key come from the environment."""
    child = cli_env()
    if server is not None:
        child["FASTROUTER_API_KEY"] = KEY
        child["FASTROUTER_BASE_URL"] = server.url
    child.update(env or {})
    return run_cli(*args, env=child, cwd=cwd, timeout=timeout)


def explain(r: subprocess.CompletedProcess) -> str:
    return f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"


@pytest.fixture
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def failing():
    """Every request fails (no retries): the batch completes with only an error file."""
    with LocalServer(api_key=KEY, fault_rate=1.0, max_retries=0) as s:
        yield s


@pytest.fixture
def slow():
    with LocalServer(api_key=KEY, latency=0.05, concurrency=1) as s:
        yield s


def client_for(server: LocalServer) -> Client:
    return Client(KEY, server.url, timeout=10, max_retries=0)


def requests_file(tmp_path: Path, n: int = 5, name: str = "in.jsonl", prefix: str = "req") -> Path:
    path = tmp_path / name
    path.write_bytes(to_jsonl(chat_line(f"{prefix}-{i}", "anthropic" if i % 2 else "openai") for i in range(n)))
    return path


def finished_batch(server: LocalServer, tmp_path: Path, n: int = 5) -> fb.Batch:
    client = client_for(server)
    f = client.files.create(requests_file(tmp_path, n, name=f"done-{n}.jsonl"))
    b = client.batches.create(input_file_id=f.id)
    return client.batches.wait(b.id, progress=False, timeout=TIMEOUT)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- submit ------------------------------------------------------------------------------


def test_submit_wait_on_a_good_file_exits_0(server, tmp_path):
    src = requests_file(tmp_path, 5)
    r = cli(
        "submit",
        str(src),
        "--wait",
        "--no-progress",
        "--json",
        "--metadata",
        "job=nightly",
        "--metadata",
        "owner=a=b",
        server=server,
    )
    assert r.returncode == 0, explain(r)
    batch = json.loads(r.stdout)
    assert batch["status"] == "completed"
    assert batch["request_counts"] == {"total": 5, "completed": 5, "failed": 0}
    assert batch["metadata"] == {"job": "nightly", "owner": "a=b"}
    assert batch["id"] in r.stderr  # "submitted ..." goes to stderr


def test_submit_without_wait_prints_the_id(server, tmp_path):
    r = cli("submit", str(requests_file(tmp_path, 3)), server=server)
    assert r.returncode == 0, explain(r)
    batch_id = r.stdout.strip()
    assert batch_id.startswith("fr_batch-")
    assert client_for(server).batches.retrieve(batch_id).id == batch_id


def test_submit_with_flags_instead_of_env(server, tmp_path):
    r = cli(
        "submit", str(requests_file(tmp_path, 2)), "--wait", "--no-progress", "--api-key", KEY, "--base-url", server.url
    )
    assert r.returncode == 0, explain(r)
    assert " completed " in r.stdout and "2/2 completed" in r.stdout


def test_submit_wait_with_failed_lines_exits_1(failing, tmp_path):
    r = cli("submit", str(requests_file(tmp_path, 3)), "--wait", "--no-progress", "--json", server=failing)
    assert r.returncode == 1, explain(r)
    batch = json.loads(r.stdout)
    assert batch["status"] == "completed"
    assert batch["request_counts"]["failed"] == 3


def test_submit_wait_shows_progress_on_stderr(server, tmp_path):
    r = cli("submit", str(requests_file(tmp_path, 4)), "--wait", server=server)
    assert r.returncode == 0, explain(r)
    assert "4/4" not in r.stdout.replace("4/4 completed", "")
    # stderr is a pipe: one line when the wait ends, no bar frames, no meaningless rate.
    progress = [line for line in r.stderr.splitlines() if "4/4" in line]
    assert len(progress) == 1 and progress[0].startswith("batch: 4/4 requests ["), r.stderr
    assert "\r" not in r.stderr and "/s" not in r.stderr


def test_submit_with_a_wrong_key_exits_2(server, tmp_path):
    r = cli(
        "submit",
        str(requests_file(tmp_path, 2)),
        "--api-key",
        "sk-wrong",
        "--base-url",
        server.url,
        "--max-retries",
        "0",
    )
    assert r.returncode == 2, explain(r)
    assert "401" in r.stderr or "auth" in r.stderr.lower()
    assert "sk-wrong" not in r.stderr and "Traceback" not in r.stderr


def test_no_api_key_anywhere_is_a_usage_error_naming_both_ways(server, tmp_path):
    """No --api-key and no FASTROUTER_API_KEY (or an empty one): exit 2, nothing uploaded."""
    src = str(requests_file(tmp_path, 2))
    for args, env in (
        (("status", "fr_batch-x"), None),
        (("submit", src), None),
        (("run", src), None),
        (("list",), {"FASTROUTER_API_KEY": ""}),
    ):
        r = cli(*args, "--base-url", server.url, "--no-progress", env=env)
        assert r.returncode == 2, (args, explain(r))
        assert "--api-key" in r.stderr and "FASTROUTER_API_KEY" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    client = client_for(server)
    assert list(client.files.list()) == [] and list(client.batches.list()) == []


# --- status, wait, list ------------------------------------------------------------------


def test_status(server, tmp_path):
    b = finished_batch(server, tmp_path)
    r = cli("status", b.id, server=server)
    assert r.returncode == 0, explain(r)
    assert b.id in r.stdout and "completed" in r.stdout and "5/5 completed" in r.stdout
    r = cli("status", b.id, "--json", server=server)
    assert r.returncode == 0, explain(r)
    assert json.loads(r.stdout) == b.to_dict()


def test_status_of_an_unknown_id_exits_2(server):
    r = cli("status", "fr_batch-doesnotexist", server=server)
    assert r.returncode == 2, explain(r)
    assert "404" in r.stderr or "not found" in r.stderr.lower()
    assert "Traceback" not in r.stderr


def test_a_server_that_is_down_exits_1(tmp_path):
    url = closed_port_url()
    for args in (("status", "fr_batch-x"), ("list",), ("submit", str(requests_file(tmp_path, 1)))):
        t = time.monotonic()
        r = cli(*args, "--base-url", url, "--api-key", KEY, "--max-retries", "0")
        assert r.returncode == 1, (args, explain(r))
        assert "Traceback" not in r.stderr
        assert KEY not in r.stderr
        assert time.monotonic() - t < 10


def test_wait(slow, tmp_path):
    client = client_for(slow)
    b = client.batches.create(input_file_id=client.files.create(requests_file(tmp_path, 20)).id)
    r = cli("wait", b.id, "--no-progress", "--json", server=slow)
    assert r.returncode == 0, explain(r)
    assert json.loads(r.stdout)["status"] == "completed"


def test_wait_timeout_exits_1_and_the_batch_goes_on(slow, tmp_path):
    client = client_for(slow)
    b = client.batches.create(input_file_id=client.files.create(requests_file(tmp_path, 40)).id)
    r = cli("wait", b.id, "--timeout", "0.2", "--no-progress", server=slow)
    assert r.returncode == 1, explain(r)
    assert b.id in r.stderr and "Traceback" not in r.stderr
    assert client.batches.wait(b.id, progress=False, timeout=TIMEOUT).status == "completed"


def test_wait_on_a_batch_with_failures_exits_1(failing, tmp_path):
    b = finished_batch(failing, tmp_path, 2)
    r = cli("wait", b.id, "--no-progress", server=failing)
    assert r.returncode == 1, explain(r)


def test_list_json_is_valid_json(server, tmp_path):
    made = {finished_batch(server, tmp_path, n).id for n in (1, 2, 3)}
    r = cli("list", "--json", server=server)
    assert r.returncode == 0, explain(r)
    listed = json.loads(r.stdout)
    assert isinstance(listed, list)
    assert {b["id"] for b in listed} == made
    assert all(b["status"] == "completed" for b in listed)
    r = cli("list", "--json", "--limit", "2", server=server)
    assert r.returncode == 0, explain(r)
    assert len(json.loads(r.stdout)) == 2
    r = cli("list", server=server)
    assert r.returncode == 0, explain(r)
    assert len(r.stdout.strip().splitlines()) == 3


def test_list_of_an_empty_engine(server):
    r = cli("list", "--json", server=server)
    assert r.returncode == 0, explain(r)
    assert json.loads(r.stdout) == []


# --- download, results -------------------------------------------------------------------


def test_download_writes_the_output_file(server, tmp_path):
    b = finished_batch(server, tmp_path, 4)
    out = tmp_path / "out.jsonl"
    r = cli("download", b.id, "-o", str(out), server=server)
    assert r.returncode == 0, explain(r)
    assert out.read_bytes() == client_for(server).files.content(b.output_file_id).content
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(x["custom_id"] for x in lines) == [f"req-{i}" for i in range(4)]
    assert not (tmp_path / "out.errors.jsonl").exists()


def test_download_default_name(server, tmp_path):
    b = finished_batch(server, tmp_path, 2)
    r = cli("download", b.id, "--json", server=server, cwd=tmp_path)
    assert r.returncode == 0, explain(r)
    assert (tmp_path / f"{b.id}.output.jsonl").is_file()
    assert json.loads(r.stdout)["batch"] == b.id


def test_download_of_a_batch_with_failures_writes_the_errors_sibling(failing, tmp_path):
    b = finished_batch(failing, tmp_path, 3)
    assert b.output_file_id is None and b.error_file_id
    out = tmp_path / "res.jsonl"
    r = cli("download", b.id, "-o", str(out), server=failing)
    assert r.returncode == 1, explain(r)
    errors = tmp_path / "res.errors.jsonl"
    assert errors.is_file(), explain(r)
    assert errors.read_bytes() == client_for(failing).files.content(b.error_file_id).content
    assert len(errors.read_text().splitlines()) == 3


def test_download_of_an_unfinished_batch_exits_1(slow, tmp_path):
    client = client_for(slow)
    b = client.batches.create(input_file_id=client.files.create(requests_file(tmp_path, 40)).id)
    out = tmp_path / "out.jsonl"
    r = cli("download", b.id, "-o", str(out), server=slow)
    assert r.returncode == 1, explain(r)
    assert not out.exists()


def test_results_jsonl_of_a_good_batch_exits_0(server, tmp_path):
    b = finished_batch(server, tmp_path, 4)
    r = cli("results", b.id, server=server)
    assert r.returncode == 0, explain(r)
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["custom_id"] for x in rows] != [] and len(rows) == 4
    assert sorted(x["custom_id"] for x in rows) == [f"req-{i}" for i in range(4)]
    assert all(x["ok"] is True and x["status_code"] == 200 and x["text"] and x["error"] is None for x in rows)


def test_results_with_failures_exit_1_and_csv_has_a_row_per_request(failing, tmp_path):
    b = finished_batch(failing, tmp_path, 5)
    r = cli("results", b.id, server=failing)
    assert r.returncode == 1, explain(r)
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 5
    assert all(x["ok"] is False and x["error"] for x in rows)

    out = tmp_path / "res.csv"
    r = cli("results", b.id, "--format", "csv", "-o", str(out), server=failing)
    assert r.returncode == 1, explain(r)
    table = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert table[0][:3] == ["custom_id", "ok", "status_code"]
    assert len(table) == 1 + 5
    assert sorted(row[0] for row in table[1:]) == [f"req-{i}" for i in range(5)]
    assert all(row[1] == "False" for row in table[1:])

    r = cli("results", b.id, "--format", "csv", server=failing)
    assert r.returncode == 1, explain(r)
    assert len(list(csv.reader(io.StringIO(r.stdout, newline="")))) == 1 + 5


def test_results_of_an_unknown_batch_exits_2(server):
    r = cli("results", "fr_batch-nope", server=server)
    assert r.returncode == 2, explain(r)


# --- cancel ------------------------------------------------------------------------------


def test_cancel_of_a_running_batch(slow, tmp_path):
    client = client_for(slow)
    b = client.batches.create(input_file_id=client.files.create(requests_file(tmp_path, 40)).id)
    r = cli("cancel", b.id, "--json", server=slow)
    assert r.returncode == 0, explain(r)
    assert json.loads(r.stdout)["status"] in {"cancelling", "cancelled"}
    assert client.batches.wait(b.id, progress=False, timeout=TIMEOUT).status == "cancelled"


def test_cancel_of_a_completed_batch_exits_2(server, tmp_path):
    b = finished_batch(server, tmp_path, 2)
    r = cli("cancel", b.id, server=server)
    assert r.returncode == 2, explain(r)
    assert "409" in r.stderr
    assert "Traceback" not in r.stderr


# --- run ---------------------------------------------------------------------------------


def test_run_writes_one_json_line_per_request_in_input_order(server, tmp_path):
    src = requests_file(tmp_path, 7)
    out = tmp_path / "results.jsonl"
    r = cli("run", str(src), "-o", str(out), "--no-progress", server=server)
    assert r.returncode == 0, explain(r)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["custom_id"] for x in rows] == [f"req-{i}" for i in range(7)]
    assert all(x["ok"] is True and x["status_code"] == 200 and x["text"] for x in rows)
    assert "7/7" in r.stderr


def test_run_to_stdout_as_csv(server, tmp_path):
    r = cli("run", str(requests_file(tmp_path, 3)), "--format", "csv", "--no-progress", server=server)
    assert r.returncode == 0, explain(r)
    table = list(csv.reader(io.StringIO(r.stdout, newline="")))
    assert [row[0] for row in table] == ["custom_id", "req-0", "req-1", "req-2"]


def test_run_with_failures_exits_1(failing, tmp_path):
    out = tmp_path / "results.jsonl"
    r = cli("run", str(requests_file(tmp_path, 3)), "-o", str(out), "--no-progress", server=failing)
    assert r.returncode == 1, explain(r)
    assert len(out.read_text().splitlines()) == 3


def test_run_of_an_invalid_file_exits_2_and_uploads_nothing(server, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(requests_file(tmp_path, 2).read_bytes() + b"{not json\n")
    r = cli("run", str(bad), "--no-progress", server=server)
    assert r.returncode == 2, explain(r)
    assert "line 3" in r.stderr
    client = client_for(server)
    assert list(client.files.list()) == [] and list(client.batches.list()) == []


def test_run_without_file_or_resume_exits_2(server):
    r = cli("run", server=server)
    assert r.returncode == 2, explain(r)


def test_run_manifest_then_resume(server, tmp_path):
    src = requests_file(tmp_path, 9)
    manifest = tmp_path / "run.json"
    # A run that "crashed" after submitting its three parts.
    submitted = client_for(server).run(
        src, wait=False, manifest=manifest, limits=Limits(max_requests=4), progress=False
    )
    assert len(submitted) == 3
    out = tmp_path / "results.jsonl"
    r = cli("run", "--resume", str(manifest), "-o", str(out), "--no-progress", server=server)
    assert r.returncode == 0, explain(r)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["custom_id"] for x in rows] == [f"req-{i}" for i in range(9)]
    assert all(x["ok"] for x in rows)
    assert sorted(b.id for b in client_for(server).batches.list()) == sorted(b.id for b in submitted)


def test_run_with_manifest_records_it(server, tmp_path):
    src = requests_file(tmp_path, 4)
    manifest = tmp_path / "run.json"
    r = cli("run", str(src), "--manifest", str(manifest), "--no-progress", server=server)
    assert r.returncode == 0, explain(r)
    data = json.loads(manifest.read_text())
    assert [p["lines"] for p in data["parts"]] == [4]
    assert data["parts"][0]["batch_id"]
    # Resuming a finished run submits nothing more.
    r = cli("run", "--resume", str(manifest), "--no-progress", server=server)
    assert r.returncode == 0, explain(r)
    assert len(r.stdout.splitlines()) == 4
    assert len(list(client_for(server).batches.list())) == 1


def test_run_resume_of_a_file_that_is_not_a_manifest_exits_2(server, tmp_path):
    r = cli("run", "--resume", str(requests_file(tmp_path, 2)), "--no-progress", server=server)
    assert r.returncode == 2, explain(r)
    assert "not a fastrouter-batch manifest" in r.stderr
    assert "Traceback" not in r.stderr


# --- validate, usage ---------------------------------------------------------------------


def test_validate_a_good_file_exits_0(tmp_path):
    r = cli("validate", str(requests_file(tmp_path, 3)))
    assert r.returncode == 0, explain(r)


def test_validate_an_invalid_file_exits_2(tmp_path):
    """The documented code for a validation error (cli.py's docstring, the README) is 2."""
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(requests_file(tmp_path, 2).read_bytes() + b"{not json\n")
    r = cli("validate", str(bad))
    assert r.returncode == 2, explain(r)
    assert "line 3" in r.stderr or "invalid_json" in r.stderr


def test_usage_errors_exit_2():
    assert cli().returncode == 2
    assert cli("frobnicate").returncode == 2
    assert cli("results", "x", "--format", "xml").returncode == 2
    assert cli("status").returncode == 2


# --- against `serve` ---------------------------------------------------------------------


def test_submit_and_results_against_serve(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTROUTER_")}
    s = Serve(["--api-key", KEY], tmp_path / "serve.stderr", env=env)
    try:
        assert s.info is not None, s.stderr()
        child = {"FASTROUTER_API_KEY": KEY, "FASTROUTER_BASE_URL": s.url}
        r = cli("submit", str(SAMPLE), "--wait", "--no-progress", "--json", env=child)
        assert r.returncode == 0, explain(r)
        batch_id = json.loads(r.stdout)["id"]
        r = cli("results", batch_id, env=child)
        assert r.returncode == 0, explain(r)
        assert len(r.stdout.splitlines()) == 4
    finally:
        if s.alive():
            s.signal(signal.SIGTERM)
            try:
                s.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        s.kill()
