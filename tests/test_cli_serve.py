"""The command line: `serve` (the JSON line it prints, the key it accepts or makes, how it
stops, how it refuses bad settings) and `validate`'s exit codes. Each runs
`python -m fastrouter_batch` in a child process, with deadlines on every wait.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from engine_helpers import SAMPLE, Api, Serve, chat_line, run_cli, to_jsonl


def cli(*args: str, timeout: float = 30, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return run_cli(*args, env=env, timeout=timeout)


@pytest.fixture
def serves(tmp_path):
    """Starts `serve` processes. After the test each still running is stopped (SIGINT,
    then SIGKILL), and a temporary data directory one of them made and left is removed."""
    started: list[Serve] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Serve:
        s = Serve(list(args), tmp_path / f"serve-{len(started)}.stderr", env=env)
        started.append(s)
        return s

    try:
        yield start
    finally:
        for s in started:
            try:
                if s.alive():
                    s.signal(signal.SIGINT)
                    s.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            finally:
                s.kill()
            made = Path(s.info["data_dir"]) if s.info else None
            if made and made.name.startswith("fastrouter-batch-engine-") and tmp_path not in made.parents:
                shutil.rmtree(made, ignore_errors=True)


def get(url: str, key: str, path: str = "/v1/batches") -> httpx.Response:
    return httpx.get(url + path, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_serve_prints_one_json_line_and_serves_with_the_given_key(serves, tmp_path):
    data_dir = tmp_path / "state"
    s = serves("--port", "0", "--data-dir", str(data_dir), "--api-key", "sk-v1-given")
    assert set(s.info) == {"url", "dashboard", "data_dir", "resumed"}
    assert s.info["dashboard"] == s.info["url"] + "/"
    assert s.info["data_dir"] == str(data_dir)
    assert s.info["resumed"] == 0
    assert s.info["url"].startswith("http://127.0.0.1:")
    assert int(s.info["url"].rsplit(":", 1)[1]) > 0
    r = get(s.url, "sk-v1-given")
    assert r.status_code == 200
    assert r.json() == {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False}
    assert get(s.url, "sk-v1-other").status_code == 401
    assert (data_dir / "engine.sqlite3").is_file()
    assert len(s.stdout_lines) == 1
    assert "serving on " + s.url in s.stderr()
    assert "dashboard: " + s.url + "/" in s.stderr()


def test_serve_metrics_need_a_key_unless_public(serves):
    s = serves("--api-key", "key-a")
    assert httpx.get(s.url + "/metrics", timeout=10).status_code == 401
    assert get(s.url, "key-a", "/metrics").status_code == 200
    public = serves("--api-key", "key-a", "--metrics-public")
    r = httpx.get(public.url + "/metrics", timeout=10)
    assert r.status_code == 200
    assert 'fastrouter_engine_batches{status="completed"} 0' in r.text
    assert httpx.get(public.url + "/v1/batches", timeout=10).status_code == 401


def test_serve_accepts_several_keys(serves):
    s = serves("--api-key", "key-a", "--api-key", "key-b")
    assert get(s.url, "key-a").status_code == 200
    assert get(s.url, "key-b").status_code == 200
    assert get(s.url, "key-c").status_code == 401


def test_serve_without_a_key_prints_the_one_it_made(serves):
    s = serves()
    assert set(s.info) == {"url", "dashboard", "data_dir", "resumed", "api_key"}
    key = s.info["api_key"]
    assert isinstance(key, str) and len(key) >= 20
    assert get(s.url, key).status_code == 200
    assert get(s.url, key + "x").status_code == 401
    assert httpx.get(s.url + "/v1/batches", timeout=10).status_code == 401


def test_serve_takes_the_key_from_the_environment(serves):
    env = {**os.environ, "FASTROUTER_LOCAL_API_KEY": "sk-from-env"}
    s = serves(env=env)
    assert "api_key" not in s.info
    assert get(s.url, "sk-from-env").status_code == 200


def test_serve_runs_a_batch_with_the_simulated_provider(serves):
    s = serves("--api-key", "K", "--latency", "0.01", "--concurrency", "4")
    with Api(s.url, "K") as api:
        b, out, err = api.run(SAMPLE.read_bytes())
    assert b["status"] == "completed"
    assert sorted(x["custom_id"] for x in out) == ["request-1", "request-2", "request-3", "request-4"]
    assert err == []


def test_max_requests_and_completion_window_options(serves):
    s = serves("--api-key", "K", "--max-requests", "2", "--completion-window", "120")
    with Api(s.url, "K") as api:
        f = api.upload(SAMPLE.read_bytes())
        b = api.create_batch(f["id"])
        assert b["expires_at"] - b["created_at"] == 120
        b = api.wait(b["id"], timeout=20)
    assert b["status"] == "failed"
    assert [(e["line"], e["code"]) for e in b["errors"]["data"]] == [(3, "too_many_requests")]


def test_sigint_stops_with_exit_code_0_and_removes_the_temporary_data_dir(serves):
    s = serves("--api-key", "K")
    data_dir = Path(s.info["data_dir"])
    assert data_dir.is_dir()
    assert get(s.url, "K").status_code == 200
    start = time.monotonic()
    s.signal(signal.SIGINT)
    assert s.wait(timeout=10) == 0, s.stderr()
    assert time.monotonic() - start < 5
    assert not data_dir.exists()
    with pytest.raises(httpx.ConnectError):
        get(s.url, "K")
    assert "Traceback" not in s.stderr()


def test_sigint_mid_batch_then_restart_resumes_it(serves, tmp_path):
    data_dir = tmp_path / "state"
    args = ("--api-key", "K", "--data-dir", str(data_dir), "--latency", "0.01", "--concurrency", "4")
    s = serves(*args)
    lines = [chat_line(f"i-{n}") for n in range(600)]
    with Api(s.url, "K") as api:
        f = api.upload(to_jsonl(lines))
        bid = api.create_batch(f["id"])["id"]
        api.wait(bid, ["in_progress"], timeout=10)
    s.signal(signal.SIGINT)
    assert s.wait(timeout=10) == 0, s.stderr()
    assert data_dir.is_dir()  # a given data directory is kept

    s2 = serves(*args)
    assert s2.info["resumed"] == 1
    with Api(s2.url, "K") as api:
        b = api.wait(bid, timeout=30)
        out = api.lines(b["output_file_id"])
    assert b["status"] == "completed"
    assert b["request_counts"] == {"total": 600, "completed": 600, "failed": 0}
    assert sorted(x["custom_id"] for x in out) == sorted(x["custom_id"] for x in lines)


def test_sigterm_ends_the_server_within_seconds(serves):
    s = serves("--api-key", "K")
    s.signal(signal.SIGTERM)
    s.wait(timeout=5)
    with pytest.raises(httpx.ConnectError):
        get(s.url, "K")


def test_sigterm_stops_as_cleanly_as_sigint(serves):
    """A process manager (docker stop, systemd, Kubernetes) stops servers with SIGTERM:
    `serve` should shut down the same way as on Ctrl-C: exit code 0, the engine's own stop
    (open requests finished, results flushed), its temporary data directory removed."""
    s = serves("--api-key", "K")
    data_dir = Path(s.info["data_dir"])
    s.signal(signal.SIGTERM)
    code = s.wait(timeout=10)
    leaked = data_dir.exists()  # (the fixture removes it)
    assert (code, leaked) == (0, False), f"exit code {code}, temporary data dir left behind: {leaked}"


def test_bad_data_dir_exits_2_with_a_message(tmp_path):
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    for bad in (a_file, a_file / "sub"):
        r = cli("serve", "--data-dir", str(bad), "--api-key", "K", timeout=20)
        assert r.returncode == 2, r
        assert r.stdout == ""
        assert r.stderr.startswith("fastrouter-batch serve: cannot open the data directory"), r.stderr
        assert str(bad) in r.stderr
        assert "Traceback" not in r.stderr


def test_port_in_use_exits_2(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = cli("serve", "--port", str(port), "--api-key", "K", "--data-dir", str(tmp_path / "d"), timeout=20)
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [["--fault-rate", "2"], ["--latency", "-1"], ["--concurrency", "0"], ["--api-key", "has space"]],
)
def test_bad_settings_exit_2(args, tmp_path):
    r = cli("serve", "--data-dir", str(tmp_path / "d"), *args, timeout=20)
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert r.stderr.startswith("fastrouter-batch serve: "), r.stderr
    assert "Traceback" not in r.stderr


def test_unknown_provider_is_a_usage_error():
    r = cli("serve", "--provider", "gemini", timeout=20)
    assert r.returncode == 2
    assert "invalid choice" in r.stderr


# --- validate ---------------------------------------------------------------------------


def test_validate_the_sample_exits_0():
    r = cli("validate", str(SAMPLE))
    assert r.returncode == 0, r
    assert r.stdout.strip()
    r = cli("validate", str(SAMPLE), "--json")
    assert r.returncode == 0
    report = json.loads(r.stdout)
    assert report["ok"] is True
    assert report["num_requests"] == 4


def test_validate_a_broken_file_exits_2(tmp_path):
    """A validation error is exit code 2 (the CLI's documented contract)."""
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(SAMPLE.read_bytes() + b"{not json\n")
    r = cli("validate", str(broken))
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert "invalid_json" in r.stderr or "line 5" in r.stderr, r.stderr
    r = cli("validate", str(broken), "--json")
    assert r.returncode == 2
    report = json.loads(r.stdout)
    assert report["ok"] is False
    assert [(i["line"], i["code"]) for i in report["issues"]] == [(5, "invalid_json")]


def test_validate_max_requests(tmp_path):
    r = cli("validate", str(SAMPLE), "--max-requests", "3", "--json")
    assert r.returncode == 2
    report = json.loads(r.stdout)
    assert report["ok"] is False
    assert [(i["line"], i["code"]) for i in report["issues"]] == [(4, "too_many_requests")]


def test_validate_a_missing_file_exits_2(tmp_path):
    missing = tmp_path / "missing.jsonl"
    r = cli("validate", str(missing))
    assert r.returncode == 2, r
    assert r.stdout == ""
    assert r.stderr.startswith("fastrouter-batch validate: ")
    assert str(missing) in r.stderr
    assert "Traceback" not in r.stderr
