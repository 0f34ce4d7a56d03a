"""The command line's handling of bad input and failures: `submit` validates before it
uploads, a file with no requests is an error everywhere, a failed batch says why (line,
field, code, message), a reader that closes the pipe early ends the command quietly,
`--json` means something on `results` and `run`, and `--metadata` without `=` is a usage
error. Each runs `python -m fastrouter_batch` as a child process against a LocalServer.

Everything talks to 127.0.0.1; every child process has a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import test_cli_workflow
from engine_helpers import ROOT, chat_line, embedding_line, to_jsonl
from fastrouter_batch import LocalServer
from test_cli_workflow import KEY, TIMEOUT, cli, client_for, explain, finished_batch, requests_file

# The workflow tests' engines, shared.
server = test_cli_workflow.server
failing = test_cli_workflow.failing


def nothing_uploaded(server: LocalServer) -> bool:
    client = client_for(server)
    return list(client.files.list()) == [] and list(client.batches.list()) == []


def invalid_file(tmp_path: Path) -> Path:
    """Line 2: custom_id is a number; line 3: not JSON."""
    second = chat_line("req-1")
    second["custom_id"] = 2
    path = tmp_path / "invalid.jsonl"
    path.write_bytes(to_jsonl([chat_line("req-0"), second]) + b"{not json\n")
    return path


def failed_batch(server: LocalServer, data: bytes):
    """A batch the engine failed while validating its file (uploaded past the CLI)."""
    client = client_for(server)
    b = client.batches.create(input_file_id=client.files.create(data).id)
    b = client.batches.wait(b.id, progress=False, timeout=TIMEOUT)
    assert b.status == "failed"
    return b


NUMBER_ID = "line 2, custom_id: must be a string, not a number [invalid_type]"


# --- 1. submit validates first -----------------------------------------------------------


@pytest.mark.parametrize("extra", [(), ("--wait", "--no-progress"), ("--json",)])
def test_submit_of_an_invalid_file_reports_every_problem_exits_2_and_uploads_nothing(server, tmp_path, extra):
    r = cli("submit", str(invalid_file(tmp_path)), *extra, server=server)
    assert r.returncode == 2, explain(r)
    assert r.stdout == ""
    assert NUMBER_ID in r.stderr
    assert "line 3: not valid JSON" in r.stderr and "[invalid_json]" in r.stderr
    assert "nothing uploaded" in r.stderr and "Traceback" not in r.stderr
    assert nothing_uploaded(server)


def test_submit_of_a_file_over_the_limits_points_to_run(server, tmp_path):
    src = tmp_path / "big.jsonl"
    src.write_bytes(to_jsonl(chat_line(f"r-{i}") for i in range(50_001)))
    r = cli("submit", str(src), server=server)
    assert r.returncode == 2, explain(r)
    assert "too_many_requests" in r.stderr and "fastrouter-batch run" in r.stderr
    assert nothing_uploaded(server)


def test_submit_takes_the_endpoint_from_the_file_and_refuses_a_mismatch(server, tmp_path):
    emb = tmp_path / "emb.jsonl"
    emb.write_bytes(to_jsonl([embedding_line("e-1", "hello"), embedding_line("e-2", "world")]))
    r = cli("submit", str(requests_file(tmp_path, 2)), "--endpoint", "/v1/embeddings", server=server)
    assert r.returncode == 2, explain(r)
    assert "/v1/embeddings" in r.stderr and "/v1/chat/completions" in r.stderr
    assert nothing_uploaded(server)
    r = cli("submit", str(emb), "--wait", "--no-progress", "--json", server=server)
    assert r.returncode == 0, explain(r)
    batch = json.loads(r.stdout)
    assert batch["endpoint"] == "/v1/embeddings" and batch["status"] == "completed"


# --- 2. a file with no requests ----------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\n  \n\r\n"], ids=["empty", "blank"])
def test_a_file_with_no_requests_is_an_error_for_validate_submit_and_run(server, tmp_path, content):
    src = tmp_path / "none.jsonl"
    src.write_bytes(content)
    r = cli("validate", str(src))
    assert r.returncode == 2, explain(r)
    assert f"{src} has no requests" in r.stderr and r.stdout == ""
    r = cli("validate", str(src), "--json")
    assert r.returncode == 2, explain(r)
    assert json.loads(r.stdout)["num_requests"] == 0
    assert "has no requests" in r.stderr
    r = cli("submit", str(src), "--wait", "--no-progress", server=server)
    assert r.returncode == 2, explain(r)
    assert f"{src} has no requests" in r.stderr and "Traceback" not in r.stderr
    r = cli("run", str(src), "--no-progress", server=server)
    assert r.returncode == 2, explain(r)
    assert nothing_uploaded(server)


# --- 3. why a batch failed ---------------------------------------------------------------


def test_status_and_wait_of_a_failed_batch_say_why(server, tmp_path):
    b = failed_batch(server, invalid_file(tmp_path).read_bytes())
    r = cli("status", b.id, server=server)
    assert r.returncode == 0, explain(r)
    out = r.stdout.splitlines()
    assert b.id in out[0] and "failed" in out[0]
    assert NUMBER_ID in r.stdout
    assert any(line.strip().startswith("line 3: not valid JSON") and line.endswith("[invalid_json]") for line in out)
    assert "more" not in r.stdout

    r = cli("wait", b.id, "--no-progress", server=server)
    assert r.returncode == 1, explain(r)
    assert b.id in r.stdout and NUMBER_ID not in r.stdout
    assert NUMBER_ID in r.stderr and "[invalid_json]" in r.stderr

    # --json stays pure JSON (the reasons are in it).
    r = cli("status", b.id, "--json", server=server)
    assert r.returncode == 0, explain(r)
    assert json.loads(r.stdout)["errors"]["data"][0]["param"] == "custom_id"


def test_a_failed_batch_lists_the_first_20_reasons_then_how_many_more(server, tmp_path):
    lines = [chat_line(f"r-{i}") for i in range(30)]
    for line in lines:
        line["custom_id"] = 7
    b = failed_batch(server, to_jsonl(lines))
    assert len(b.errors.data) == 30
    r = cli("status", b.id, server=server)
    assert r.returncode == 0, explain(r)
    out = r.stdout.splitlines()
    assert len(out) == 1 + 20 + 1, r.stdout
    assert out[1].strip() == "line 1, custom_id: must be a string, not a number [invalid_type]"
    assert out[20].strip().startswith("line 20, custom_id:")
    assert out[-1].strip() == "... and 10 more"


def test_a_batch_of_an_empty_file_says_so(server):
    b = failed_batch(server, b"")
    r = cli("status", b.id, server=server)
    assert r.returncode == 0, explain(r)
    assert "[empty_file]" in r.stdout and "no requests" in r.stdout


def test_run_of_an_invalid_file_names_the_field(server, tmp_path):
    r = cli("run", str(invalid_file(tmp_path)), "--no-progress", server=server)
    assert r.returncode == 2, explain(r)
    assert NUMBER_ID in r.stderr
    assert nothing_uploaded(server)


def test_validate_names_the_field(tmp_path):
    r = cli("validate", str(invalid_file(tmp_path)))
    assert r.returncode == 2, explain(r)
    assert NUMBER_ID in r.stderr and r.stdout == ""


# --- 4. a reader that stops early --------------------------------------------------------


def test_results_into_a_pipe_closed_early_exit_quietly(server, tmp_path):
    """`fastrouter-batch results ID | head -5`: no "Broken pipe", no traceback, exit 1."""
    b = finished_batch(server, tmp_path, 3000)  # ~400 KB of JSON Lines: far more than a pipe holds
    child = {k: v for k, v in os.environ.items() if not k.startswith("FASTROUTER_")}
    child.update(FASTROUTER_API_KEY=KEY, FASTROUTER_BASE_URL=server.url)
    with open(tmp_path / "stderr", "w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fastrouter_batch", "results", b.id],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            cwd=str(ROOT),
            env=child,
        )
        try:
            assert proc.stdout is not None
            head = [proc.stdout.readline() for _ in range(5)]
            proc.stdout.close()
            code = proc.wait(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        err.seek(0)
        stderr = err.read()
    assert all(json.loads(line)["ok"] for line in head)
    assert stderr == "", stderr
    assert code == 1


def test_a_shell_pipeline_into_head(server, tmp_path):
    b = finished_batch(server, tmp_path, 3000)
    child = {k: v for k, v in os.environ.items() if not k.startswith("FASTROUTER_")}
    child.update(FASTROUTER_API_KEY=KEY, FASTROUTER_BASE_URL=server.url, PY=sys.executable, BATCH=b.id)
    r = subprocess.run(
        ["bash", "-c", '"$PY" -m fastrouter_batch results "$BATCH" | head -5; echo "exit ${PIPESTATUS[0]}" >&2'],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=str(ROOT),
        env=child,
        stdin=subprocess.DEVNULL,
    )
    assert len(r.stdout.splitlines()) == 5
    assert r.stderr.strip() == "exit 1", r.stderr


# --- 6. --json on results and run --------------------------------------------------------


def test_results_json_is_json_lines(failing, tmp_path):
    b = finished_batch(failing, tmp_path, 3)
    plain = cli("results", b.id, server=failing)
    r = cli("results", b.id, "--json", server=failing)
    assert r.returncode == plain.returncode == 1, explain(r)
    assert r.stdout == plain.stdout
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert sorted(x["custom_id"] for x in rows) == ["req-0", "req-1", "req-2"]
    r = cli("results", b.id, "--json", "--format", "csv", server=failing)
    assert r.returncode == 2, explain(r)
    assert "--json" in r.stderr and "csv" in r.stderr and r.stdout == ""


def test_results_help_says_what_json_does():
    r = cli("results", "--help")
    assert r.returncode == 0
    assert "--format jsonl" in " ".join(r.stdout.split())


def test_run_json_prints_a_summary(server, tmp_path):
    out = tmp_path / "results.jsonl"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    r = cli(
        "run",
        str(requests_file(tmp_path, 5)),
        "-o",
        str(out),
        "--json",
        "--no-progress",
        server=server,
        env={"TMPDIR": str(scratch)},
    )
    assert r.returncode == 0, explain(r)
    summary = json.loads(r.stdout)
    assert summary["batches"] == [b.id for b in client_for(server).batches.list()]
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (5, 5, 0)
    assert summary["output"] == str(out) and summary["format"] == "jsonl" and summary["manifest"] is None
    assert len(out.read_text().splitlines()) == 5
    assert "succeeded" not in r.stderr  # the human line is replaced, not doubled
    assert list(scratch.iterdir()) == []  # nothing left behind


def test_run_json_with_a_manifest_and_resume(server, tmp_path):
    manifest = tmp_path / "run.json"
    out = tmp_path / "results.jsonl"
    r = cli(
        "run",
        str(requests_file(tmp_path, 4)),
        "--manifest",
        str(manifest),
        "-o",
        str(out),
        "--json",
        "--no-progress",
        server=server,
    )
    assert r.returncode == 0, explain(r)
    first = json.loads(r.stdout)
    assert first["manifest"] == str(manifest)
    assert first["batches"] == [p["batch_id"] for p in json.loads(manifest.read_text())["parts"]]
    r = cli("run", "--resume", str(manifest), "-o", str(out), "--json", "--no-progress", server=server)
    assert r.returncode == 0, explain(r)
    again = json.loads(r.stdout)
    assert again["batches"] == first["batches"] and again["total"] == 4


def test_run_json_with_failures_exits_1(failing, tmp_path):
    out = tmp_path / "results.csv"
    r = cli(
        "run",
        str(requests_file(tmp_path, 3)),
        "-o",
        str(out),
        "--format",
        "csv",
        "--json",
        "--no-progress",
        server=failing,
    )
    assert r.returncode == 1, explain(r)
    summary = json.loads(r.stdout)
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (3, 0, 3)
    assert len(summary["batches"]) == 1 and summary["format"] == "csv"


def test_run_json_without_output_is_a_usage_error(server, tmp_path):
    r = cli("run", str(requests_file(tmp_path, 2)), "--json", "--no-progress", server=server)
    assert r.returncode == 2, explain(r)
    assert "-o" in r.stderr and r.stdout == ""
    assert nothing_uploaded(server)


# --- 7. --metadata -----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["foo", "=value"])
def test_metadata_without_a_key_and_value_exits_2(server, tmp_path, bad):
    r = cli("submit", str(requests_file(tmp_path, 2)), "--metadata", "ok=1", "--metadata", bad, server=server)
    assert r.returncode == 2, explain(r)
    assert f"--metadata expects KEY=VALUE, got {bad!r}" in r.stderr
    assert "dictionary update" not in r.stderr and "Traceback" not in r.stderr
    assert nothing_uploaded(server)
