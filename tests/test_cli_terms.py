"""The command line in its own terms (issue 10, C8 and C9): the API options before the
command as after it; no key in any message, wherever it was typed; messages that name CLI
commands (`fastrouter-batch wait ID`, `--manifest PATH`), one wording for a missing file,
`-o dir/out` making `dir/`, a refused connection naming the URL, `list` showing when,
`--version`, `--help` in plain text, and the README's table of exit codes, each row run.

Every command is `python -m fastrouter_batch` in a child process, against 127.0.0.1, with
a timeout.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fastrouter_batch as fb
from engine_helpers import ROOT, cli_env, run_cli
from fastrouter_batch import Client, LocalServer
from faultproxy import FaultProxy, Respond
from test_cli_workflow import KEY, closed_port_url, explain, finished_batch, requests_file

TIMEOUT = 30.0
# Shaped like a FastRouter key, and one that is not: neither may ever be shown.
SECRET = "sk-v1-0123456789abcdefSECRET"
PLAIN_SECRET = "localsecret-Zq8WmP"


def cli(*args: str, server=None, env=None, key_env: bool = True, cwd=None) -> subprocess.CompletedProcess:
    child = cli_env()
    if server is not None:
        child["FASTROUTER_BASE_URL"] = server.url
        if key_env:
            child["FASTROUTER_API_KEY"] = KEY
    child.update(env or {})
    return run_cli(*args, env=child, cwd=cwd, timeout=TIMEOUT)


def popen(*args: str, server, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    child = {k: v for k, v in os.environ.items() if not k.startswith("FASTROUTER_")}
    child.update(FASTROUTER_API_KEY=KEY, FASTROUTER_BASE_URL=server.url)
    err = tmp_path / f"stderr-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fastrouter_batch", *args],
        stdout=subprocess.DEVNULL,
        stderr=open(err, "w"),
        stdin=subprocess.DEVNULL,
        cwd=str(ROOT),
        env=child,
    )
    return proc, err


def interrupt_when(proc: subprocess.Popen, ready, timeout: float = TIMEOUT) -> int:
    """Ctrl-C (SIGINT) to `proc` once `ready()` holds; its exit code."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"ended early with {proc.returncode}"
            assert time.monotonic() < deadline, "never got ready"
            time.sleep(0.05)
        time.sleep(0.3)  # into the wait loop
        proc.send_signal(signal.SIGINT)
        return proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def server():
    with LocalServer(api_key=KEY) as s:
        yield s


@pytest.fixture
def slow():
    """A batch of a few requests here takes tens of seconds: it stays running."""
    with LocalServer(api_key=KEY, latency=5.0, concurrency=1) as s:
        yield s


def client_for(server) -> Client:
    return Client(KEY, server.url, timeout=10, max_retries=0)


def running_batch(server, tmp_path: Path) -> fb.Batch:
    client = client_for(server)
    f = client.files.create(requests_file(tmp_path, 5, name="running.jsonl"))
    return client.batches.create(input_file_id=f.id)


# --- C8: the API options before the command; no key in any message ----------------------


def test_api_options_before_the_command(server, tmp_path):
    b = finished_batch(server, tmp_path, 2)
    r = cli("--api-key", KEY, "--base-url", server.url, "status", b.id, key_env=False)
    assert r.returncode == 0 and r.stdout.startswith(b.id), explain(r)
    r = cli(f"--api-key={KEY}", "--max-retries", "0", "--no-progress", "wait", b.id, server=server, key_env=False)
    assert r.returncode == 0, explain(r)
    # After the command wins over before it.
    r = cli("--api-key", "wrong", "status", b.id, "--api-key", KEY, server=server, key_env=False)
    assert r.returncode == 0, explain(r)
    r = cli("--api-key", KEY, "validate", str(requests_file(tmp_path)))
    assert r.returncode == 2 and "--api-key before the command go with the API commands" in r.stderr, explain(r)
    assert KEY not in r.stdout + r.stderr


@pytest.mark.parametrize("secret", [SECRET, PLAIN_SECRET])
def test_no_usage_error_quotes_a_key_wherever_it_is(server, secret):
    base = ["status", "batch_x", "--json"]
    lines = []
    for at in range(len(base) + 1):
        lines.append([*base[:at], "--api-key", secret, *base[at:]])
        lines.append([*base[:at], f"--api-key={secret}", *base[at:]])
        if secret == SECRET:  # a bare key is recognisable by its shape only
            lines.append([*base[:at], secret, *base[at:]])
    lines += [
        ["--api-key", secret, "bogus"],
        ["--api-key", secret, "status"],
        ["--api-key", secret, "--max-retries", secret, "list"],
        ["--api-key", secret, "list", "--limit", secret],
        ["--api-key", secret, "submit", "x.jsonl", "--metadata", secret],
        ["--api-key", secret, "serve", "--port", secret],
        ["--api", secret, "stauts"],
    ]
    for argv in lines:
        r = cli(*argv, server=server, key_env=False)
        assert secret not in r.stdout + r.stderr, f"{argv}: {explain(r)}"
        assert r.returncode in (1, 2), f"{argv}: {explain(r)}"
    # A key from the environment is not shown either.
    r = cli("status", secret, server=server, env={"FASTROUTER_API_KEY": secret})
    assert secret not in r.stdout + r.stderr, explain(r)


def test_redaction_leaves_ordinary_words_alone(tmp_path):
    """A (test) key of one letter is not blotted out of every word that holds it."""
    r = cli("--api-key", "k", "validate", str(tmp_path / "missing.jsonl"), env={"FASTROUTER_API_KEY": "k"})
    assert "before the command go with the API commands" in r.stderr and "***" not in r.stderr, explain(r)


def test_base_url_credentials_are_redacted(tmp_path):
    url = closed_port_url().replace("http://", f"http://user:{SECRET}@")
    for client in (Client("k", url, max_retries=0), fb.AsyncClient("k", url, max_retries=0)):
        assert SECRET not in repr(client) and "***@127.0.0.1" in repr(client)
        assert SECRET not in client.base_url
    with pytest.raises(fb.APIConnectionError) as e:
        Client("k", url, max_retries=0).batches.retrieve("batch_1")
    # The URL tried is named, without its credentials.
    assert SECRET not in str(e.value) and "@" not in str(e.value) and "/v1/batches/batch_1" in str(e.value), e.value
    with pytest.raises(ValueError) as bad:
        Client("k", f"ftp://user:{SECRET}@h", max_retries=0)
    assert SECRET not in str(bad.value)
    r = cli("--base-url", url, "--api-key", "k", "--max-retries", "0", "list")
    assert r.returncode == 1 and SECRET not in r.stdout + r.stderr, explain(r)
    assert "http://127.0.0.1" in r.stderr and "/v1/batches" in r.stderr, explain(r)


# --- C9: messages in CLI terms ----------------------------------------------------------


def test_results_of_a_running_batch_says_the_wait_command(slow, tmp_path):
    b = running_batch(slow, tmp_path)
    for command in ("results", "download"):
        r = cli(command, b.id, server=slow)
        assert r.returncode == 1, explain(r)
        assert f"`fastrouter-batch wait {b.id}`" in r.stderr and "batches.wait" not in r.stderr, explain(r)


@pytest.mark.parametrize("with_manifest", [False, True])
def test_ctrl_c_in_run_says_what_to_do_in_cli_terms(slow, tmp_path, with_manifest):
    manifest = tmp_path / "run.json"
    extra = ["--manifest", str(manifest)] if with_manifest else []
    src = requests_file(tmp_path, 4)
    proc, err = popen(
        "run", str(src), "--no-progress", "-o", str(tmp_path / "out.jsonl"), *extra, server=slow, tmp_path=tmp_path
    )
    client = client_for(slow)
    code = interrupt_when(proc, lambda: len(client.batches.list().data) > 0)
    stderr = err.read_text()
    assert code == 130, stderr
    (b,) = client.batches.list().data
    assert b.id in stderr, stderr
    assert "manifest=PATH" not in stderr and "client.resume" not in stderr and "client.batches" not in stderr, stderr
    if with_manifest:
        assert f"`fastrouter-batch run --resume {manifest}`" in stderr, stderr
    else:
        assert "--manifest PATH" in stderr and "`fastrouter-batch wait ID`" in stderr, stderr


def test_a_missing_file_reads_the_same_everywhere(server, tmp_path):
    missing = tmp_path / "missing.jsonl"
    wording = f"No such file or directory: {str(missing)!r}"
    for argv in (["validate"], ["submit"], ["run"], ["convert"]):
        r = cli(*argv, str(missing), server=server)
        assert r.returncode == 2, explain(r)
        assert r.stderr.strip() == f"fastrouter-batch {argv[0]}: {wording}", explain(r)
    client = client_for(server)
    calls = {
        "validate": lambda: fb.validate(missing),
        "read_results": lambda: fb.read_results(missing),
        "read_texts": lambda: fb.read_texts(missing),
        "read_requests": lambda: list(fb.read_requests(missing)),
        "files.create": lambda: client.files.create(missing),
        "run": lambda: client.run(missing),
        "from_openai_file": lambda: fb.BatchBuilder.from_openai_file(missing),
    }
    for name, call in calls.items():
        with pytest.raises(FileNotFoundError) as e:
            call()
        assert str(e.value) == f"[Errno 2] {wording}", f"{name}: {e.value}"
        assert e.value.filename == str(missing), name


def test_download_makes_the_output_directory(server, tmp_path):
    b = finished_batch(server, tmp_path, 2)
    out = tmp_path / "new" / "deeper" / "out.jsonl"
    r = cli("download", b.id, "-o", str(out), server=server)
    assert r.returncode == 0 and len(out.read_text().splitlines()) == 2, explain(r)
    res = tmp_path / "other" / "results.csv"
    r = cli("results", b.id, "--format", "csv", "-o", str(res), server=server)
    assert r.returncode == 0 and res.read_text().startswith("custom_id,ok"), explain(r)


def test_a_refused_connection_names_the_url(tmp_path):
    url = closed_port_url()
    r = cli("--api-key", "k", "--base-url", url, "--max-retries", "0", "status", "batch_1")
    assert r.returncode == 1, explain(r)
    assert f"{url}/v1/batches/batch_1" in r.stderr and "refused" in r.stderr.lower(), explain(r)
    with pytest.raises(fb.APIConnectionError, match=re.escape(f"{url}/v1/files")):
        Client("k", url, max_retries=0).files.list()


def test_list_shows_when_each_batch_was_created(server, tmp_path):
    b = finished_batch(server, tmp_path, 2)
    r = cli("list", server=server)
    assert r.returncode == 0, explain(r)
    (line,) = r.stdout.splitlines()
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(b.created_at))
    assert line.startswith(f"{when}  {b.id}"), line


def test_version():
    r = cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"fastrouter-batch {fb.__version__}", explain(r)


def test_help_is_plain_text():
    commands = [
        "submit",
        "status",
        "wait",
        "download",
        "results",
        "cancel",
        "list",
        "run",
        "validate",
        "serve",
        "convert",
    ]
    for argv in ([], *[[c] for c in commands]):
        r = cli(*argv, "--help")
        assert r.returncode == 0, explain(r)
        for markup in ("``", ":class:", ":func:", ".. "):
            assert markup not in r.stdout, f"{argv}: {markup!r} in\n{r.stdout}"
    assert all(c in cli("--help").stdout for c in commands)


# --- the README's exit codes, each row run ----------------------------------------------


def readme_exit_codes() -> list[tuple[int, str]]:
    text = (ROOT / "README.md").read_text()
    section = text.split("### CLI exit codes", 1)[1].split("\n#", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit():
            rows.append((int(cells[0]), cells[2]))
    return rows


def test_readme_exit_code_table_matches_the_command(server, slow, tmp_path):
    ok = requests_file(tmp_path, 2, name="ok.jsonl")
    with LocalServer(api_key=KEY, fault_rate=1.0, max_retries=0) as failing:
        failed = finished_batch(failing, tmp_path, 2)
        running = running_batch(slow, tmp_path)

        def answers_503() -> subprocess.CompletedProcess:
            with FaultProxy(server.url) as proxy:
                proxy.add(Respond(503), method="GET", path="/v1/batches/")
                return cli("--base-url", proxy.url, "--max-retries", "0", "status", "batch_1", server=server)

        def ctrl_c() -> int:
            with FaultProxy(slow.url) as proxy:  # to see the command polling
                proc, _ = popen(
                    "wait", running.id, "--no-progress", "--base-url", proxy.url, server=slow, tmp_path=tmp_path
                )
                return interrupt_when(proc, lambda: proxy.count("GET", f"/v1/batches/{running.id}") > 0)

        scenarios = {
            "`validate ok.jsonl`": lambda: cli("validate", str(ok)),
            "`results PARTLY_FAILED_BATCH`": lambda: cli("results", failed.id, server=failing),
            "`results RUNNING_BATCH`": lambda: cli("results", running.id, server=slow),
            "`status ID` (server answers 503)": answers_503,
            "`list --base-url http://127.0.0.1:1`": lambda: cli(
                "list", "--api-key", "k", "--base-url", "http://127.0.0.1:1"
            ),
            "`status` (no ID)": lambda: cli("status", server=server),
            "`validate missing.jsonl`": lambda: cli("validate", str(tmp_path / "missing.jsonl")),
            "`status NO_SUCH_BATCH`": lambda: cli("status", "batch_nope", server=server),
            "`wait RUNNING_BATCH`, then Ctrl-C": ctrl_c,
        }
        rows = readme_exit_codes()
        assert sorted(example for _, example in rows) == sorted(scenarios), "README rows and scenarios differ"
        for code, example in rows:
            got = scenarios[example]()
            got_code = got if isinstance(got, int) else got.returncode
            assert got_code == code, f"{example}: README says {code}, the command exits {got_code}" + (
                "" if isinstance(got, int) else "\n" + explain(got)
            )
