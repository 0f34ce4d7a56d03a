"""pytest fixtures for testing code that runs batches, registered by the package's
``pytest11`` entry point (nothing to import: install the package and use them).

- ``fastrouter_server``: a ``LocalServer`` (simulated provider, temporary data directory)
  running for one test.
- ``fastrouter_env``: the same server, with ``FASTROUTER_BASE_URL`` and
  ``FASTROUTER_API_KEY`` pointing at it for the test, so code that reads its settings from
  the environment talks to the local engine.

Options come from the ``fastrouter_server_options`` fixture; override it in a conftest.py
(e.g. ``return {"latency": 0.05, "fault_rate": 0.1}``) or mark a test with
``@pytest.mark.fastrouter_server(latency=0.05)``.

- The marker takes ``LocalServer``'s keyword options only (``latency=``, ``fault_rate=``,
  ``concurrency=``, ...); a positional argument is a usage error, not silently ignored.
- Its options override the fixture's, key by key (the fixture's other keys are kept).
- The closest marker wins: when a test, its class and its module all carry one, only
  the test's counts (then the class's, then the module's). Markers are not merged: repeat
  every option you need on the closest one.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest

from ._core import LocalServer


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fastrouter_server(**options): LocalServer options for the fastrouter_server fixture",
    )


def _options() -> list[str]:
    """``LocalServer``'s keyword options, for error messages."""
    try:
        return list(inspect.signature(LocalServer).parameters)
    except (TypeError, ValueError):
        return [
            "provider",
            "latency",
            "fault_rate",
            "data_dir",
            "api_key",
            "limits",
            "completion_window",
            "concurrency",
            "max_retries",
            "retry_delay",
            "port",
        ]


@pytest.fixture
def fastrouter_server_options() -> dict[str, Any]:
    """Keyword arguments for the ``fastrouter_server`` fixture's ``LocalServer``."""
    return {}


@pytest.fixture
def fastrouter_server(
    request: pytest.FixtureRequest, fastrouter_server_options: dict[str, Any]
) -> Iterator[LocalServer]:
    """A running local engine for one test; stopped (and its data removed) afterwards."""
    options = dict(fastrouter_server_options)
    marker = request.node.get_closest_marker("fastrouter_server")
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.fastrouter_server takes keyword options only, got positional "
                f"{', '.join(map(repr, marker.args))} (e.g. fastrouter_server(latency=0.05)); "
                f"the options: {', '.join(_options())}"
            )
        options.update(marker.kwargs)
    with LocalServer(**options) as server:
        yield server


@pytest.fixture
def fastrouter_env(fastrouter_server: LocalServer, monkeypatch: pytest.MonkeyPatch) -> LocalServer:
    """``fastrouter_server`` with ``FASTROUTER_BASE_URL``/``FASTROUTER_API_KEY`` set to it."""
    monkeypatch.setenv("FASTROUTER_BASE_URL", fastrouter_server.url)
    monkeypatch.setenv("FASTROUTER_API_KEY", fastrouter_server.api_key)
    return fastrouter_server
