"""Test doubles for code that runs batches: the local engine and a fake upstream provider.

``LocalServer`` serves FastRouter's Batch API on a loopback port with durable state in a
(temporary by default) data directory. With ``provider="simulated"`` (the default) every
request gets a deterministic, realistic answer without any network; ``latency``,
``fault_rate`` and a short ``completion_window`` exercise slow, flaky and expiring batches.

``FakeUpstream`` is a stand-in for the providers themselves (OpenAI's and Anthropic's wire
formats), for ``LocalServer(provider="upstream", openai_base_url=up.url, ...)`` or an SDK's
``base_url``: realtime calls, and the native batch APIs (OpenAI Files + Batches, Anthropic
Message Batches). ``configure(**knobs)`` injects faults, ``counters()`` and ``batches()`` show
what a client did, ``expire_all()`` expires running batches (docs/fake-upstream.md).

Installing the package also installs a pytest plugin with the fixtures
``fastrouter_server`` and ``fastrouter_env`` (see ``fastrouter_batch.pytest_plugin``).
"""

from __future__ import annotations

from ._core import FakeUpstream, LocalServer

__all__ = ["FakeUpstream", "LocalServer"]
