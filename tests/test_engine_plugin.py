"""The pytest plugin installed with the package (entry point `pytest11`): its fixtures
`fastrouter_server` and `fastrouter_env`, the `fastrouter_server_options` fixture and the
`fastrouter_server` marker, exercised by running small test files in a child pytest.
"""

from __future__ import annotations

pytest_plugins = ["pytester"]

import pytest  # noqa: E402

USER_TESTS = r"""
import json
import os
import time

import httpx
import pytest

import fastrouter_batch as fb

SEEN = {}


def run_one(url, key):
    h = {"Authorization": f"Bearer {key}"}
    line = {"custom_id": "p1", "provider": "openai", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": "plugin hello"}]}}
    f = httpx.post(url + "/v1/files", headers=h, files={"file": ("p.jsonl", json.dumps(line) + "\n")},
                   data={"purpose": "batch"}, timeout=10).json()
    batch = {"input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    b = httpx.post(url + "/v1/batches", headers=h, timeout=10, json=batch).json()
    deadline = time.monotonic() + 20
    while b["status"] not in ("completed", "failed", "expired", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
        b = httpx.get(url + "/v1/batches/" + b["id"], headers=h, timeout=10).json()
    out = httpx.get(url + f"/v1/files/{b['output_file_id']}/content", headers=h, timeout=10).text
    return b, [json.loads(x) for x in out.splitlines()]


def test_server_runs_batches(fastrouter_server):
    assert isinstance(fastrouter_server, fb.LocalServer)
    assert fastrouter_server.running
    assert fastrouter_server.provider == "simulated"
    assert fastrouter_server.url.startswith("http://127.0.0.1:")
    assert fastrouter_server.data_dir.is_dir()
    b, out = run_one(fastrouter_server.url, fastrouter_server.api_key)
    assert b["status"] == "completed"
    assert out[0]["response"]["body"]["choices"][0]["message"]["content"] == (
        "Simulated answer from openai/gpt-4.1-nano: plugin hello")
    SEEN["url"] = fastrouter_server.url
    SEEN["data_dir"] = fastrouter_server.data_dir


def test_previous_server_is_gone_and_a_new_one_is_fresh(fastrouter_server):
    assert fastrouter_server.url != SEEN["url"]
    with pytest.raises(httpx.ConnectError):
        httpx.get(SEEN["url"] + "/openapi.json", timeout=5)
    assert not SEEN["data_dir"].exists()
    h = {"Authorization": f"Bearer {fastrouter_server.api_key}"}
    assert httpx.get(fastrouter_server.url + "/v1/batches", headers=h, timeout=10).json()["data"] == []


def test_env(fastrouter_env):
    assert os.environ["FASTROUTER_BASE_URL"] == fastrouter_env.url
    assert os.environ["FASTROUTER_API_KEY"] == fastrouter_env.api_key
    b, _ = run_one(os.environ["FASTROUTER_BASE_URL"], os.environ["FASTROUTER_API_KEY"])
    assert b["status"] == "completed"


def test_env_is_restored_afterwards():
    assert "FASTROUTER_BASE_URL" not in os.environ
    assert "FASTROUTER_API_KEY" not in os.environ


def test_env_and_server_are_the_same_engine(fastrouter_env, fastrouter_server):
    assert fastrouter_env is fastrouter_server


@pytest.mark.fastrouter_server(api_key=["marker-key", "second-key"], limits=fb.Limits(max_bytes=100))
def test_marker_options(fastrouter_server):
    assert fastrouter_server.api_key == "marker-key"
    for key in ("marker-key", "second-key"):
        r = httpx.post(fastrouter_server.url + "/v1/files", headers={"Authorization": f"Bearer {key}"},
                       files={"file": ("big.jsonl", b"x" * 101)}, data={"purpose": "batch"}, timeout=10)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "file_too_large"


@pytest.mark.fastrouter_server(latency=0.3)
def test_marker_latency_and_env(fastrouter_env):
    start = time.monotonic()
    b, _ = run_one(os.environ["FASTROUTER_BASE_URL"], os.environ["FASTROUTER_API_KEY"])
    assert b["status"] == "completed"
    assert time.monotonic() - start >= 0.3
"""

OPTIONS_CONFTEST = r"""
import pytest


@pytest.fixture
def fastrouter_server_options():
    return {"api_key": "from-conftest", "completion_window": 3600.0}
"""

OPTIONS_TESTS = r"""
import httpx
import pytest


def _create(server):
    h = {"Authorization": f"Bearer {server.api_key}"}
    f = httpx.post(server.url + "/v1/files", headers=h, files={"file": ("s.jsonl", b"{}\n")},
                   data={"purpose": "batch"}, timeout=10).json()
    return httpx.post(server.url + "/v1/batches", headers=h, timeout=10, json={
        "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}).json()


def test_options_fixture(fastrouter_server):
    assert fastrouter_server.api_key == "from-conftest"
    b = _create(fastrouter_server)
    assert b["expires_at"] - b["created_at"] == 3600


@pytest.mark.fastrouter_server(api_key="from-marker")
def test_marker_overrides_the_options_fixture(fastrouter_server):
    assert fastrouter_server.api_key == "from-marker"
    b = _create(fastrouter_server)
    assert b["expires_at"] - b["created_at"] == 3600  # the other options are kept


@pytest.mark.fastrouter_server(latency=-1.0)
def test_bad_options_error_at_setup(fastrouter_server):
    pass
"""


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("FASTROUTER_BASE_URL", "FASTROUTER_API_KEY", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(var, raising=False)


def test_fixtures_and_marker_in_a_user_test_suite(pytester, clean_env):
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--strict-markers", "-W", "error::pytest.PytestUnknownMarkWarning", "-v", timeout=120
    )
    result.assert_outcomes(passed=7)
    assert result.ret == 0


def test_options_fixture_override_and_marker_precedence(pytester, clean_env):
    pytester.makeconftest(OPTIONS_CONFTEST)
    pytester.makepyfile(test_opts=OPTIONS_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", timeout=120)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_bad_options_error_at_setup ERROR*", "*latency must be a non-negative*"])


def test_marker_is_registered(pytester, clean_env):
    result = pytester.runpytest_subprocess("--markers", timeout=60)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["@pytest.mark.fastrouter_server(**options): LocalServer options*"])


def test_fixtures_are_listed(pytester, clean_env):
    pytester.makepyfile(test_x="def test_x(): pass\n")
    result = pytester.runpytest_subprocess("--fixtures", timeout=60)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "*fixtures defined from fastrouter_batch.pytest_plugin*",
            "fastrouter_server_options -- *pytest_plugin.py:*",
            "fastrouter_server -- *pytest_plugin.py:*",
            "    A running local engine for one test; stopped (and its data removed) afterwards.",
            "fastrouter_env -- *pytest_plugin.py:*",
        ]
    )


MARKER_MISUSE_TESTS = r"""
import pytest


@pytest.mark.fastrouter_server(0.05)
def test_positional(fastrouter_server):
    pass


@pytest.mark.fastrouter_server(api_key="class-key", completion_window=3600.0)
class TestClosest:
    @pytest.mark.fastrouter_server(api_key="test-key")
    def test_closest_marker_wins_without_merging(self, fastrouter_server):
        import httpx
        assert fastrouter_server.api_key == "test-key"
        h = {"Authorization": f"Bearer {fastrouter_server.api_key}"}
        f = httpx.post(fastrouter_server.url + "/v1/files", headers=h, files={"file": ("s.jsonl", b"{}\n")},
                       data={"purpose": "batch"}, timeout=10).json()
        b = httpx.post(fastrouter_server.url + "/v1/batches", headers=h, timeout=10, json={
            "input_file_id": f["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}).json()
        assert b["expires_at"] - b["created_at"] == 86400  # the class's option is not merged in

    def test_class_marker(self, fastrouter_server):
        assert fastrouter_server.api_key == "class-key"
"""


def test_marker_positional_arguments_are_a_usage_error(pytester, clean_env):
    pytester.makepyfile(test_misuse=MARKER_MISUSE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", timeout=120)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_positional ERROR*",
            "*fastrouter_server takes keyword options only, got positional 0.05*",
        ]
    )
    result.stdout.fnmatch_lines(["*the options: provider, latency, fault_rate, *concurrency*"])
