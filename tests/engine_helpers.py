"""Shared helpers for the local engine's tests: raw HTTP calls with httpx, JSONL building
and parsing, bounded polling, and a `fastrouter_batch serve` subprocess wrapper.

Everything here talks real HTTP to 127.0.0.1 and waits with deadlines only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample.jsonl"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


# --- building input files -------------------------------------------------------------


def chat_line(
    custom_id: str, provider: str = "openai", model: str | None = None, content: str | None = None, **params: Any
) -> dict[str, Any]:
    """One chat request line (a dict). Anthropic lines get `max_tokens` unless given."""
    if model is None:
        model = "openai/gpt-4.1-nano" if provider == "openai" else "anthropic/claude-4.5-sonnet"
    messages = params.pop("messages", None)
    if messages is None:
        messages = [{"role": "user", "content": content or f"Question {custom_id}?"}]
    body: dict[str, Any] = {"model": model, "messages": messages}
    if provider == "anthropic":
        body["max_tokens"] = 100
    body.update(params)
    return {"custom_id": custom_id, "provider": provider, "method": "POST", "url": CHAT, "body": body}


def embedding_line(
    custom_id: str, text: str | list[str], model: str = "openai/text-embedding-3-small", **params: Any
) -> dict[str, Any]:
    body = {"model": model, "input": text, **params}
    return {"custom_id": custom_id, "provider": "openai", "method": "POST", "url": EMBEDDINGS, "body": body}


def to_jsonl(lines: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n" for line in lines)


def parse_jsonl(data: bytes | str) -> list[dict[str, Any]]:
    if isinstance(data, bytes):
        data = data.decode()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def custom_id_counts(*files: Sequence[dict[str, Any]]) -> Counter[str]:
    return Counter(line["custom_id"] for lines in files for line in lines)


# --- raw HTTP client --------------------------------------------------------------------


class Api:
    """A thin httpx client for one engine and one key. Every call has a timeout."""

    def __init__(self, url: str, key: str, timeout: float = 30.0):
        self.url = url
        self.key = key
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def upload(self, data: bytes, filename: str = "batch.jsonl", purpose: str = "batch") -> dict[str, Any]:
        r = self.http.post(
            "/v1/files", files={"file": (filename, data, "application/jsonl")}, data={"purpose": purpose}
        )
        return self.ok(r)

    def create_batch(self, file_id: str, endpoint: str = CHAT, **extra: Any) -> dict[str, Any]:
        body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h", **extra}
        return self.ok(self.http.post("/v1/batches", json=body))

    def batch(self, batch_id: str) -> dict[str, Any]:
        return self.ok(self.http.get(f"/v1/batches/{batch_id}"))

    def cancel(self, batch_id: str) -> dict[str, Any]:
        return self.ok(self.http.post(f"/v1/batches/{batch_id}/cancel"))

    def content(self, file_id: str) -> bytes:
        r = self.http.get(f"/v1/files/{file_id}/content")
        assert r.status_code == 200, (r.status_code, r.text)
        return r.content

    def lines(self, file_id: str | None) -> list[dict[str, Any]]:
        return [] if file_id is None else parse_jsonl(self.content(file_id))

    def wait(
        self, batch_id: str, statuses: Iterable[str] = TERMINAL, timeout: float = 30.0, interval: float = 0.02
    ) -> dict[str, Any]:
        """Polls until the batch's status is one of `statuses`; fails after `timeout` s."""
        wanted = set(statuses)
        deadline = time.monotonic() + timeout
        while True:
            b = self.batch(batch_id)
            if b["status"] in wanted:
                return b
            if time.monotonic() > deadline:
                raise AssertionError(f"batch {batch_id} still {b['status']!r} after {timeout}s: {b}")
            time.sleep(interval)

    def run(self, data: bytes, endpoint: str = CHAT, timeout: float = 30.0) -> tuple[dict[str, Any], list, list]:
        """Uploads, runs to a terminal status; returns (batch, output lines, error lines)."""
        f = self.upload(data)
        b = self.create_batch(f["id"], endpoint)
        b = self.wait(b["id"], timeout=timeout)
        return b, self.lines(b["output_file_id"]), self.lines(b["error_file_id"])


def wait_until(predicate, timeout: float, interval: float = 0.02, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --- `python -m fastrouter_batch serve` as a subprocess -----------------------------------


class Serve:
    """`python -m fastrouter_batch serve ARGS` in a child process.

    `info` is the JSON line it printed on stdout (read with a deadline; None if the process
    ended without printing). stderr goes to a file (`stderr_path`) so the child never
    blocks on a full pipe. `env` replaces the environment (default: this one without
    FASTROUTER_LOCAL_API_KEY and FASTROUTER_API_KEY, the keys serve would take).
    """

    def __init__(
        self, args: Sequence[str], stderr_path: Path, startup_timeout: float = 20.0, env: dict[str, str] | None = None
    ):
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "ab")
        if env is None:
            env = dict(os.environ)
            env.pop("FASTROUTER_LOCAL_API_KEY", None)
            env.pop("FASTROUTER_API_KEY", None)
        child_env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "fastrouter_batch", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
            cwd=str(ROOT),
            env=child_env,
        )
        self.stdout_lines: list[bytes] = []
        self._got_line = threading.Event()
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        self.info: dict[str, Any] | None = None
        if not self._got_line.wait(startup_timeout):
            self.kill()
            raise AssertionError(f"serve printed nothing within {startup_timeout}s; stderr: {self.stderr()}")
        if self.stdout_lines:
            self.info = json.loads(self.stdout_lines[0])

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.stdout_lines.append(line)
            self._got_line.set()
        self._got_line.set()  # EOF: the process ended without (more) output

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        assert self.info is not None, self.stderr()
        return self.info["url"]

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def sigkill(self) -> None:
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self, sig: int | None = None, timeout: float = 10.0) -> None:
        """Cleanup: `sig` (SIGINT, Ctrl-C, by default) and up to `timeout` s to end, then `kill()`."""
        try:
            if self.alive():
                self.signal(signal.SIGINT if sig is None else sig)
                self.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        finally:
            self.kill()

    def kill(self) -> None:
        """Cleanup: SIGKILL if still running, reap, close pipes."""
        try:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()


#: The test-only hook that makes a native-mode engine announce and stop at a named point.
NATIVE_PAUSE_ENV = "FASTROUTER_BATCH_NATIVE_PAUSE_AT"


def serve_native(tmp_path: Path, fake: Any, key: str, n: int, pause: str | None = None, chunk_size: int = 4) -> Serve:
    """`serve --provider upstream --upstream-mode native` as a child process against `fake`
    (a running `FakeUpstream`), on `tmp_path/data`, polling every 50 ms; `pause` stops it at
    that point (for a SIGKILL there). `n` numbers its stderr file."""
    env = dict(os.environ)
    env.pop("FASTROUTER_LOCAL_API_KEY", None)
    env.pop(NATIVE_PAUSE_ENV, None)
    env.update(
        OPENAI_BASE_URL=fake.url,
        OPENAI_API_KEY="sk-fake-openai",
        ANTHROPIC_BASE_URL=fake.url,
        ANTHROPIC_API_KEY="sk-fake-anthropic",
    )
    if pause:
        env[NATIVE_PAUSE_ENV] = pause
    args = ["--provider", "upstream", "--upstream-mode", "native", "--poll-interval", "0.05"]
    args += ["--native-chunk-size", str(chunk_size), "--api-key", key, "--data-dir", str(tmp_path / "data")]
    return Serve(args, tmp_path / f"stderr-{n}.txt", env=env)


def cli_env(**extra: str) -> dict[str, str]:
    """This process's environment less every FASTROUTER_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTROUTER_")}
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | str | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess:
    """`python -m fastrouter_batch ARGS` as a child process (text output captured, no stdin);
    `env` is its whole environment (None: this process's)."""
    return subprocess.run(
        [sys.executable, "-m", "fastrouter_batch", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(cwd or ROOT),
        env=env,
        stdin=subprocess.DEVNULL,
    )
