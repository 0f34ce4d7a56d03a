"""Sync and asyncio clients for FastRouter's Batch API, with openai-python's shape:
``client.files.create(...)``, ``client.batches.retrieve(...)``, the same names on both.

Every operation is a method of the Rust client (``_core.ApiClient``: HTTP, retries,
streaming, the GIL released); ``files`` and ``batches`` (``_files.py``, ``_batches.py``)
type its answers, and the workflow (``run``, ``resume``, ``retry_failed``: ``_run.py``,
``_retry.py``) works through them. Errors are the ``APIError`` tree.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal, overload

from . import _core, _frame_run, _retry, _run
from ._batches import AsyncBatches, Batches
from ._files import AsyncFiles, Files
from ._frame_run import DataRunOptions
from ._plan import Source
from ._run import RunOptions, WaitOptions
from .results import BatchResults, Inputs
from .types import Batch

if TYPE_CHECKING:
    from typing_extensions import Unpack


def _settings(api_key: str | None, base_url: str | None) -> tuple[str, str | None]:
    """The key and base URL: given, else from the environment (None: the hosted API)."""
    if api_key is not None and not isinstance(api_key, str):
        raise TypeError(f"api_key must be a str, got {type(api_key).__name__}")
    if base_url is not None and not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    key = api_key if api_key is not None else os.environ.get("FASTROUTER_API_KEY")
    if not key:
        raise _core.FastRouterError("No API key: pass api_key=... or set the FASTROUTER_API_KEY environment variable.")
    return key, base_url or os.environ.get("FASTROUTER_BASE_URL") or None


def _check_timeout(timeout: Any) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")


def _check_max_retries(max_retries: Any) -> None:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise TypeError(f"max_retries must be an int, got {type(max_retries).__name__}")
    if max_retries < 0:
        raise ValueError("max_retries must be >= 0")


def _make_api(api_key: str | None, base_url: str | None, timeout: float, max_retries: int) -> _core.ApiClient:
    _check_timeout(timeout)
    _check_max_retries(max_retries)
    key, url = _settings(api_key, base_url)
    return _core.ApiClient(api_key=key, base_url=url, timeout=timeout, max_retries=max_retries)


def _with_options(api: _core.ApiClient, timeout: float | None, max_retries: int | None) -> _core.ApiClient:
    if timeout is not None:
        _check_timeout(timeout)
    if max_retries is not None:
        _check_max_retries(max_retries)
    return api.with_options(timeout=timeout, max_retries=max_retries)


class _BaseClient:
    _api: _core.ApiClient

    @property
    def base_url(self) -> str:
        return self._api.base_url

    @property
    def timeout(self) -> float:
        return self._api.timeout

    @property
    def max_retries(self) -> int:
        return self._api.max_retries

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"


class Client(_BaseClient):
    """The Batch API, blocking. ``api_key`` falls back to ``FASTROUTER_API_KEY``,
    ``base_url`` to ``FASTROUTER_BASE_URL``, then the hosted service."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        _api: _core.ApiClient | None = None,
    ) -> None:
        self._api = _api if _api is not None else _make_api(api_key, base_url, timeout, max_retries)
        self.files = Files(self._api)
        self.batches = Batches(self._api)

    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> Client:
        """A copy with other settings (sharing connections)."""
        return Client(_api=_with_options(self._api, timeout, max_retries))

    @overload
    def run(
        self, requests: Source | Any, *, wait: Literal[True] = True, **options: Unpack[DataRunOptions]
    ) -> BatchResults: ...
    @overload
    def run(
        self, requests: Source | Any, *, wait: Literal[False], **options: Unpack[DataRunOptions]
    ) -> list[Batch]: ...
    def run(
        self, requests: Source | Any, *, wait: bool = True, **options: Unpack[DataRunOptions]
    ) -> BatchResults | list[Batch]:
        """Runs requests (a path, a builder, or an iterable of requests/dicts) end to end.

        Options: ``endpoint`` (default: the requests' url), ``metadata`` (for every batch),
        ``wait``, ``manifest``, ``limits``, ``anthropic_sampling`` (for the check before
        upload, as ``validate`` takes it), and how to wait: ``poll_interval``, ``timeout``,
        ``progress`` (see ``batches.wait``).

        Validates locally first (an invalid input raises ``BatchValidationError`` and
        nothing is uploaded), splits what exceeds ``limits`` (50,000 requests / 200 MB per
        batch) into several batches, uploads and triggers them, waits with one progress
        bar, and returns the merged ``BatchResults``. With ``manifest=path`` progress is
        recorded as it happens: ``resume(path)`` continues after a crash without
        submitting anything twice.

        ``wait=False`` returns the submitted batches: a list of ``Batch``, one per part in
        input order, running on the service (``[b.id for b in batches]`` are their ids).
        Nothing local is kept for them without a manifest: get each one's results with
        ``client.batches.wait(b.id)`` then ``client.batches.results(b.id, inputs=...)``
        (the requests as ``inputs`` give their order). With ``manifest=path``,
        ``client.resume(path)`` waits for them all and returns the merged results in
        input order.

        When waiting stops early the batches keep running on the service: ``timeout``
        raises ``WaitTimeout`` whose ``batch_ids`` are this run's batches (in input order,
        also named in its message); Ctrl-C (``KeyboardInterrupt``) logs them at WARNING to
        the ``fastrouter_batch`` logger. Pass ``manifest=`` to make a run resumable.

        A pandas or polars DataFrame runs one chat request per row: ``prompt=``,
        ``model=`` (``"{model}"`` for a column), ``system=``, ``custom_id=``,
        ``provider=``, ``response_format=`` (a pydantic model: ``Result.parsed``) and
        ``params=`` (body parameters) as ``BatchBuilder.from_dataframe`` takes them; then
        ``results.join(df, on=custom_id)``.

        ``cache=True`` (the file under the user cache dir), a path or a ``ResultCache``:
        results already in the cache (same provider, url and body, any custom_id) are not
        submitted again; only the rest run, and their successful results are stored.
        ``Result.cached`` tells hits from fresh results. Off by default.
        """
        return _frame_run.run(self.files, self.batches, requests, self.base_url, wait=wait, **options)

    @overload
    def resume(
        self, manifest: str | os.PathLike[str], *, wait: Literal[True] = True, **waiting: Unpack[WaitOptions]
    ) -> BatchResults: ...
    @overload
    def resume(
        self, manifest: str | os.PathLike[str], *, wait: Literal[False], **waiting: Unpack[WaitOptions]
    ) -> list[Batch]: ...
    def resume(
        self, manifest: str | os.PathLike[str], *, wait: bool = True, **waiting: Unpack[WaitOptions]
    ) -> BatchResults | list[Batch]:
        """Continues a ``run`` from its manifest: submits only what was not submitted."""
        return _run.resume(self.files, self.batches, manifest, wait=wait, **waiting)

    @overload
    def retry_failed(
        self,
        results: BatchResults,
        *,
        inputs: Inputs | None = None,
        wait: Literal[True] = True,
        **options: Unpack[RunOptions],
    ) -> BatchResults: ...
    @overload
    def retry_failed(
        self,
        results: BatchResults,
        *,
        inputs: Inputs | None = None,
        wait: Literal[False],
        **options: Unpack[RunOptions],
    ) -> list[Batch] | BatchResults: ...
    def retry_failed(
        self, results: BatchResults, *, inputs: Inputs | None = None, wait: bool = True, **options: Unpack[RunOptions]
    ) -> BatchResults | list[Batch]:
        """Resubmits only the failed requests of ``results`` as a new batch and returns their
        new results (``run``'s options apply; with nothing failed, ``results.failed``, empty).
        The requests come from ``inputs`` (request file, manifest, builder or a list of
        requests) or, by default, from the ``run``/``resume`` that returned ``results``
        (results read from files with ``read_results`` need ``inputs``)."""
        return _retry.retry_failed(self.files, self.batches, results, inputs=inputs, wait=wait, **options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class AsyncClient(_BaseClient):
    """The Batch API for asyncio: the same names as ``Client``, awaitable.

    The workflow twins are truly async: they use this client's own async resources and the
    async wait, so cancelling the awaiting task (asyncio.wait_for, task.cancel(), Ctrl-C
    under asyncio.run) stops at once. Like Ctrl-C in the sync client, that stops only the
    waiting: the batches go on (the manifest still allows resume()). The local work
    (validating and splitting, reading results) runs in a dedicated thread per call, never
    in the loop's default executor."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        _api: _core.ApiClient | None = None,
    ) -> None:
        self._api = _api if _api is not None else _make_api(api_key, base_url, timeout, max_retries)
        self.files = AsyncFiles(self._api)
        self.batches = AsyncBatches(self._api)

    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> AsyncClient:
        return AsyncClient(_api=_with_options(self._api, timeout, max_retries))

    @overload
    async def run(
        self, requests: Source | Any, *, wait: Literal[True] = True, **options: Unpack[DataRunOptions]
    ) -> BatchResults: ...
    @overload
    async def run(
        self, requests: Source | Any, *, wait: Literal[False], **options: Unpack[DataRunOptions]
    ) -> list[Batch]: ...
    async def run(
        self, requests: Source | Any, *, wait: bool = True, **options: Unpack[DataRunOptions]
    ) -> BatchResults | list[Batch]:
        """``Client.run`` for asyncio (DataFrames and ``cache=`` too). Cancelling the await
        stops waiting, not the batches (their ids are logged at WARNING to the
        ``fastrouter_batch`` logger)."""
        return await _frame_run.arun(self.files, self.batches, requests, self.base_url, wait=wait, **options)

    @overload
    async def resume(
        self, manifest: str | os.PathLike[str], *, wait: Literal[True] = True, **waiting: Unpack[WaitOptions]
    ) -> BatchResults: ...
    @overload
    async def resume(
        self, manifest: str | os.PathLike[str], *, wait: Literal[False], **waiting: Unpack[WaitOptions]
    ) -> list[Batch]: ...
    async def resume(
        self, manifest: str | os.PathLike[str], *, wait: bool = True, **waiting: Unpack[WaitOptions]
    ) -> BatchResults | list[Batch]:
        """``Client.resume`` for asyncio."""
        return await _run.aresume(self.files, self.batches, manifest, wait=wait, **waiting)

    @overload
    async def retry_failed(
        self,
        results: BatchResults,
        *,
        inputs: Inputs | None = None,
        wait: Literal[True] = True,
        **options: Unpack[RunOptions],
    ) -> BatchResults: ...
    @overload
    async def retry_failed(
        self,
        results: BatchResults,
        *,
        inputs: Inputs | None = None,
        wait: Literal[False],
        **options: Unpack[RunOptions],
    ) -> list[Batch] | BatchResults: ...
    async def retry_failed(
        self, results: BatchResults, *, inputs: Inputs | None = None, wait: bool = True, **options: Unpack[RunOptions]
    ) -> BatchResults | list[Batch]:
        """``Client.retry_failed`` for asyncio."""
        return await _retry.aretry_failed(self.files, self.batches, results, inputs=inputs, wait=wait, **options)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
