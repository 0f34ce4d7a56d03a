"""Which key `fastrouter-batch serve` accepts when none is passed: FASTROUTER_LOCAL_API_KEY,
else FASTROUTER_API_KEY (so `serve`, then `list` from another process with the same
environment, works), else one it makes up and prints. Real processes throughout."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from engine_helpers import SAMPLE, Serve, run_cli


@pytest.fixture
def serves(tmp_path):
    started: list[Serve] = []

    def start(env: dict[str, str]) -> Serve:
        s = Serve(
            ["--port", "0", "--data-dir", str(tmp_path / f"state-{len(started)}")], tmp_path / "serve.stderr", env=env
        )
        started.append(s)
        return s

    try:
        yield start
    finally:
        for s in started:
            s.kill()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTROUTER_")}
    return {**env, **extra}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return run_cli(*args, env=env, timeout=60)


def test_serve_then_list_with_only_fastrouter_api_key_exported(serves):
    env = clean_env(FASTROUTER_API_KEY="sk-exported-once")
    s = serves(env)
    assert "api_key" not in s.info  # not made up: the exported one
    assert "FASTROUTER_API_KEY" in s.stderr() and "sk-exported-once" not in s.stderr()
    client_env = {**env, "FASTROUTER_BASE_URL": s.info["url"]}
    submitted = cli("submit", str(SAMPLE), "--json", env=client_env)
    assert submitted.returncode == 0, submitted.stderr
    listed = cli("list", "--json", env=client_env)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(submitted.stdout)["id"] in listed.stdout


def test_the_local_key_wins_over_the_client_key(serves):
    env = clean_env(FASTROUTER_API_KEY="sk-client", FASTROUTER_LOCAL_API_KEY="sk-local")
    s = serves(env)
    assert "api_key" not in s.info
    assert "FASTROUTER_LOCAL_API_KEY" in s.stderr()
    base = {"FASTROUTER_BASE_URL": s.info["url"]}
    assert cli("list", env=clean_env(FASTROUTER_API_KEY="sk-local", **base)).returncode == 0
    refused = cli("list", env=clean_env(FASTROUTER_API_KEY="sk-client", **base))
    assert refused.returncode != 0 and "sk-client" not in refused.stderr + refused.stdout


def test_without_any_key_serve_makes_one_and_prints_it(serves):
    s = serves(clean_env())
    key = s.info["api_key"]
    assert cli("list", env=clean_env(FASTROUTER_API_KEY=key, FASTROUTER_BASE_URL=s.info["url"])).returncode == 0
