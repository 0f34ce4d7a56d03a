"""Sync and asyncio clients for FastRouter's Batch API, with openai-python's shape:
``client.files.create(...)``, ``client.batches.retrieve(...)``, the same names on both.

The transport (HTTP, retries, streaming, the GIL released) is Rust (``_core.Transport``);
this module adds the resources and typed objects. Errors are the ``APIError`` tree.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar, Union

from . import _core
from .types import APIObject, Batch, CursorPage, FileDeleted, FileObject

if TYPE_CHECKING:
    from .results import BatchResults, Inputs

log = logging.getLogger("fastrouter_batch")

HOSTED_BASE_URL = "https://api.fastrouter.ai"
CHAT_COMPLETIONS = "/v1/chat/completions"

FileInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], _core.BatchBuilder]
T = TypeVar("T", bound=APIObject)


def _settings(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    if api_key is not None and not isinstance(api_key, str):
        raise TypeError(f"api_key must be a str, got {type(api_key).__name__}")
    if base_url is not None and not isinstance(base_url, str):
        raise TypeError(f"base_url must be a str, got {type(base_url).__name__}")
    key = api_key if api_key is not None else os.environ.get("FASTROUTER_API_KEY")
    if not key:
        raise _core.FastRouterError("No API key: pass api_key=... or set the FASTROUTER_API_KEY environment variable.")
    url = base_url or os.environ.get("FASTROUTER_BASE_URL") or HOSTED_BASE_URL
    return key, url


def _check_timeout(timeout: Any) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds, got {type(timeout).__name__}")


def _check_max_retries(max_retries: Any) -> None:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise TypeError(f"max_retries must be an int, got {type(max_retries).__name__}")
    if max_retries < 0:
        raise ValueError("max_retries must be >= 0")


def _id(value: Any, name: str) -> str:
    """An id argument, checked before it goes into a URL: a non-empty str."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return value


def _segment(value: Any, name: str) -> str:
    """An id for a URL path: checked, then percent-encoded, so it stays one path segment
    (``../batches`` cannot reach another endpoint, ``x?y=1`` cannot add a query)."""
    value = _id(value, name)
    if value in (".", ".."):
        raise ValueError(f"{name} must not be {value!r}")
    return urllib.parse.quote(value, safe="-_.~")


def _batch_id(batch_or_id: Any) -> Any:
    """For ``batches.results``: a Batch stays as it is; an id (a str, or an object with a
    str ``.id`` such as openai's Batch) is checked."""
    if isinstance(batch_or_id, Batch):
        return batch_or_id
    if isinstance(batch_or_id, str):
        return _id(batch_or_id, "batch_or_id")
    found = getattr(batch_or_id, "id", None)
    if isinstance(found, str):
        return _id(found, "batch_or_id.id")
    raise TypeError(
        f"batches.results(): batch_or_id must be a Batch or a batch id (str), got {type(batch_or_id).__name__}"
    )


#: The service's page size bounds for ``batches.list`` (what it answers for limit=0).
MAX_LIST_LIMIT = 100


def _check_limit(limit: Any, maximum: int | None) -> None:
    """A page size the server can read: an int >= 1, checked here because a negative one
    does not even parse there. The upper bound stays the server's to enforce (it answers
    a BadRequestError naming ``limit``), as the hosted service may allow more."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, got {type(limit).__name__}")
    if limit < 1:
        raise ValueError(
            f"limit must be between 1 and {maximum}, got {limit}."
            if maximum is not None
            else f"limit must be at least 1, got {limit}."
        )


def _upload_source(file: FileInput) -> tuple[Any, str]:
    """What the transport uploads (a path, streamed, or bytes) and the filename to send."""
    if isinstance(file, _core.BatchBuilder):
        return file.to_bytes(), "batch.jsonl"
    if isinstance(file, (bytes, bytearray)):
        return bytes(file), "batch.jsonl"
    if isinstance(file, memoryview):
        return file.tobytes(), "batch.jsonl"
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        if path.is_dir():
            # Before any request: reading a directory fails in a way a retry cannot mend.
            raise IsADirectoryError(errno.EISDIR, "files.create needs a file, not a directory", str(path))
        return path, path.name
    if hasattr(file, "read"):
        name = getattr(file, "name", None)
        # A real file opened from disk at its start: stream it by path instead of reading it.
        if isinstance(name, str) and os.path.isfile(name) and getattr(file, "tell", lambda: 0)() == 0:
            return Path(name), Path(name).name
        data = file.read()
        if isinstance(data, str):
            raise TypeError("files.create needs a binary file object (open(path, 'rb')), not a text one")
        return bytes(data), Path(name).name if isinstance(name, str) else "batch.jsonl"
    raise TypeError(
        f"files.create: file must be a path, bytes, a binary file or a BatchBuilder, got {type(file).__name__}"
    )


def _create_request(
    input_file_id: str, endpoint: str, completion_window: str, metadata: Mapping[str, str] | None, key: str | None
) -> tuple[dict[str, Any], str]:
    """The body of ``POST /v1/batches`` and its idempotency key (made here unless given, so
    the transport's retries of this one call all carry the same key)."""
    body: dict[str, Any] = {
        "input_file_id": input_file_id,
        "endpoint": endpoint,
        "completion_window": completion_window,
    }
    if metadata is not None:
        body["metadata"] = dict(metadata)
    return body, key or f"fastrouter-batch-{uuid.uuid4()}"


def _list_query(limit: int | None, after: str | None, **extra: str | None) -> list[tuple[str, str]]:
    query = [(k, str(v)) for k, v in (("limit", limit), ("after", after), *extra.items()) if v is not None]
    return query


class SyncPager(Generic[T]):
    """Iterates every item over every page; ``.first_page()`` / pages for manual control."""

    def __init__(self, fetch: Any, cls: type[T], limit: int | None, after: str | None) -> None:
        self._fetch, self._cls, self._limit, self._after = fetch, cls, limit, after

    def _page(self, after: str | None) -> CursorPage[T]:
        body = self._fetch(_list_query(self._limit, after))
        return CursorPage([self._cls(d) for d in body.get("data", [])], body)

    def first_page(self) -> CursorPage[T]:
        return self._page(self._after)

    def iter_pages(self) -> Iterator[CursorPage[T]]:
        page = self._page(self._after)
        yield page
        while page.has_more and page.last_id:
            page = self._page(page.last_id)
            yield page

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.data


class AsyncPager(Generic[T]):
    """``async for`` over every item of every page; ``await pager`` gives the first page."""

    def __init__(self, fetch: Any, cls: type[T], limit: int | None, after: str | None) -> None:
        self._fetch, self._cls, self._limit, self._after = fetch, cls, limit, after

    async def _page(self, after: str | None) -> CursorPage[T]:
        body = await self._fetch(_list_query(self._limit, after))
        return CursorPage([self._cls(d) for d in body.get("data", [])], body)

    async def first_page(self) -> CursorPage[T]:
        return await self._page(self._after)

    def __await__(self) -> Any:
        return self.first_page().__await__()

    async def iter_pages(self) -> AsyncIterator[CursorPage[T]]:
        page = await self._page(self._after)
        yield page
        while page.has_more and page.last_id:
            page = await self._page(page.last_id)
            yield page

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item


class Files:
    def __init__(self, transport: _core.Transport) -> None:
        self._t = transport

    def create(self, file: FileInput, *, purpose: str = "batch") -> FileObject:
        """Uploads a batch file: a path (streamed from disk), bytes, a binary file or a builder."""
        source, filename = _upload_source(file)
        log.debug("uploading %s", filename)
        return FileObject(self._t.upload(source, filename=filename, purpose=purpose))

    def retrieve(self, file_id: str) -> FileObject:
        return FileObject(self._t.request("GET", f"/v1/files/{_segment(file_id, 'file_id')}"))

    def list(
        self, *, purpose: str | None = None, limit: int | None = None, after: str | None = None
    ) -> SyncPager[FileObject]:
        _check_limit(limit, None)
        fetch = lambda q: self._t.request("GET", "/v1/files", query=q + _list_query(None, None, purpose=purpose))  # noqa: E731
        return SyncPager(fetch, FileObject, limit, after)

    def delete(self, file_id: str) -> FileDeleted:
        return FileDeleted(self._t.request("DELETE", f"/v1/files/{_segment(file_id, 'file_id')}"))

    def content(self, file_id: str) -> bytes:
        """The whole content, in memory. For big files use ``download`` or ``iter_lines``."""
        return self._t.content(_id(file_id, "file_id"))

    def download(self, file_id: str, path: str | os.PathLike[str]) -> Path:
        """Streams the content to ``path`` (written aside, then moved into place)."""
        self._t.download(_id(file_id, "file_id"), Path(path))
        return Path(path)

    def iter_lines(self, file_id: str) -> Iterator[str]:
        """The content's lines, streamed (without newlines)."""
        return iter(self._t.iter_lines(_id(file_id, "file_id")))


class Batches:
    def __init__(self, transport: _core.Transport) -> None:
        self._t = transport

    def create(
        self,
        *,
        input_file_id: str,
        endpoint: str = CHAT_COMPLETIONS,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        """Starts a batch. Safe to retry: an idempotency key makes a retried create return
        the same batch instead of a second one."""
        body, key = _create_request(
            _id(input_file_id, "input_file_id"), endpoint, completion_window, metadata, idempotency_key
        )
        return Batch(self._t.request("POST", "/v1/batches", body=body, idempotency_key=key))

    def retrieve(self, batch_id: str) -> Batch:
        return Batch(self._t.request("GET", f"/v1/batches/{_segment(batch_id, 'batch_id')}"))

    def list(self, *, limit: int | None = None, after: str | None = None) -> SyncPager[Batch]:
        _check_limit(limit, MAX_LIST_LIMIT)
        return SyncPager(lambda q: self._t.request("GET", "/v1/batches", query=q), Batch, limit, after)

    def cancel(self, batch_id: str) -> Batch:
        return Batch(self._t.request("POST", f"/v1/batches/{_segment(batch_id, 'batch_id')}/cancel"))

    def wait(
        self, batch_id: str, *, poll_interval: float | None = None, timeout: float | None = None, progress: bool = True
    ) -> Batch:
        """Polls until the batch is completed, failed, expired or cancelled, and returns it.

        Polls quickly at first, then back off to every 30 s (``poll_interval`` fixes it).
        ``timeout`` raises ``WaitTimeout`` (the batch goes on). Ctrl-C stops waiting only.
        """
        from ._wait import wait_all

        return wait_all(
            self.retrieve, [_id(batch_id, "batch_id")], poll_interval=poll_interval, timeout=timeout, progress=progress
        )[0]

    def results(self, batch_or_id: Batch | str, *, inputs: Inputs | None = None) -> BatchResults:
        """Downloads a finished batch's output and error files and reads them: one
        ``Result`` per request (see ``read_results``; ``inputs`` gives the order).

        The files go to a temporary directory, removed when the results are garbage
        collected. Raises ``FastRouterError`` if the batch has not finished.
        """
        from .results import _finished, _read_owned, _result_files

        batch = _finished(_batch_id(batch_or_id), self.retrieve)
        directory = tempfile.mkdtemp(prefix="fastrouter-batch-results-")
        try:
            paths = []
            for path, file_id in _result_files(batch, directory):
                self._t.download(file_id, path)
                paths.append(path)
            return _read_owned(paths, inputs, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise


class AsyncFiles:
    def __init__(self, transport: _core.Transport) -> None:
        self._t = transport

    async def create(self, file: FileInput, *, purpose: str = "batch") -> FileObject:
        source, filename = _upload_source(file)
        return FileObject(await self._t.aupload(source, filename=filename, purpose=purpose))

    async def retrieve(self, file_id: str) -> FileObject:
        return FileObject(await self._t.arequest("GET", f"/v1/files/{_segment(file_id, 'file_id')}"))

    def list(
        self, *, purpose: str | None = None, limit: int | None = None, after: str | None = None
    ) -> AsyncPager[FileObject]:
        _check_limit(limit, None)
        fetch = lambda q: self._t.arequest("GET", "/v1/files", query=q + _list_query(None, None, purpose=purpose))  # noqa: E731
        return AsyncPager(fetch, FileObject, limit, after)

    async def delete(self, file_id: str) -> FileDeleted:
        return FileDeleted(await self._t.arequest("DELETE", f"/v1/files/{_segment(file_id, 'file_id')}"))

    async def content(self, file_id: str) -> bytes:
        return await self._t.acontent(_id(file_id, "file_id"))

    async def download(self, file_id: str, path: str | os.PathLike[str]) -> Path:
        await self._t.adownload(_id(file_id, "file_id"), Path(path))
        return Path(path)

    def iter_lines(self, file_id: str) -> AsyncIterator[str]:
        return self._t.iter_lines(_id(file_id, "file_id")).__aiter__()


class AsyncBatches:
    def __init__(self, transport: _core.Transport) -> None:
        self._t = transport

    async def create(
        self,
        *,
        input_file_id: str,
        endpoint: str = CHAT_COMPLETIONS,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        body, key = _create_request(
            _id(input_file_id, "input_file_id"), endpoint, completion_window, metadata, idempotency_key
        )
        return Batch(await self._t.arequest("POST", "/v1/batches", body=body, idempotency_key=key))

    async def retrieve(self, batch_id: str) -> Batch:
        return Batch(await self._t.arequest("GET", f"/v1/batches/{_segment(batch_id, 'batch_id')}"))

    def list(self, *, limit: int | None = None, after: str | None = None) -> AsyncPager[Batch]:
        _check_limit(limit, MAX_LIST_LIMIT)
        return AsyncPager(lambda q: self._t.arequest("GET", "/v1/batches", query=q), Batch, limit, after)

    async def cancel(self, batch_id: str) -> Batch:
        return Batch(await self._t.arequest("POST", f"/v1/batches/{_segment(batch_id, 'batch_id')}/cancel"))

    async def wait(
        self, batch_id: str, *, poll_interval: float | None = None, timeout: float | None = None, progress: bool = True
    ) -> Batch:
        """``Client.batches.wait`` for asyncio."""
        from ._wait import await_all

        batches = await await_all(
            self.retrieve, [_id(batch_id, "batch_id")], poll_interval=poll_interval, timeout=timeout, progress=progress
        )
        return batches[0]

    async def results(self, batch_or_id: Batch | str, *, inputs: Inputs | None = None) -> BatchResults:
        """``Client.batches.results`` for asyncio (the files are read off the event loop)."""
        from .results import _finished, _read_owned, _result_files

        batch_or_id = _batch_id(batch_or_id)
        if isinstance(batch_or_id, Batch) and (batch_or_id.output_file_id or batch_or_id.error_file_id):
            batch = batch_or_id
        else:
            batch = await self.retrieve(batch_or_id.id if isinstance(batch_or_id, Batch) else batch_or_id)
        batch = _finished(batch, None)
        directory = tempfile.mkdtemp(prefix="fastrouter-batch-results-")
        try:
            paths = []
            for path, file_id in _result_files(batch, directory):
                await self._t.adownload(file_id, path)
                paths.append(path)
            # In a thread of its own, not the loop's default executor (see _run.off_loop).
            from ._run import off_loop

            return await off_loop(_read_owned, paths, inputs, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise


class _BaseClient:
    _transport: _core.Transport

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 600.0,
        max_retries: int = 2,
        _transport: _core.Transport | None = None,
    ) -> None:
        if _transport is None:
            _check_timeout(timeout)
            _check_max_retries(max_retries)
            key, url = _settings(api_key, base_url)
            _transport = _core.Transport(base_url=url, api_key=key, timeout=timeout, max_retries=max_retries)
        self._transport = _transport

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    @property
    def timeout(self) -> float:
        return self._transport.timeout

    @property
    def max_retries(self) -> int:
        return self._transport.max_retries

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
        _transport: _core.Transport | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries, _transport=_transport
        )
        self.files = Files(self._transport)
        self.batches = Batches(self._transport)

    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> Client:
        """A copy with other settings (sharing connections)."""
        if timeout is not None:
            _check_timeout(timeout)
        if max_retries is not None:
            _check_max_retries(max_retries)
        return Client(_transport=self._transport.with_options(timeout=timeout, max_retries=max_retries))

    def run(
        self,
        requests: Any,
        *,
        endpoint: str | None = None,
        metadata: Mapping[str, str] | None = None,
        wait: bool = True,
        manifest: str | os.PathLike[str] | None = None,
        limits: _core.Limits | None = None,
        poll_interval: float | None = None,
        timeout: float | None = None,
        progress: bool = True,
    ) -> Any:
        """Runs requests (a path, a builder, or an iterable of requests/dicts) end to end.

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
        """
        from . import _run

        plan = _run.prepare(
            requests, endpoint=endpoint, metadata=metadata, manifest=manifest, limits=limits or _run.DEFAULT_LIMITS
        )
        return _run.execute(self, plan, wait=wait, poll_interval=poll_interval, timeout=timeout, progress=progress)

    def resume(
        self,
        manifest: str | os.PathLike[str],
        *,
        wait: bool = True,
        poll_interval: float | None = None,
        timeout: float | None = None,
        progress: bool = True,
    ) -> Any:
        """Continues a ``run`` from its manifest: submits only what was not submitted."""
        from . import _run
        from ._manifest import Manifest

        plan = Manifest.load(manifest)
        return _run.execute(self, plan, wait=wait, poll_interval=poll_interval, timeout=timeout, progress=progress)

    def retry_failed(self, results: Any, *, inputs: Any = None, progress: bool = True, **run_options: Any) -> Any:
        """Resubmits only the failed requests of ``results`` as a new batch and returns their
        new results. The requests come from ``inputs`` (request file, manifest, builder or a
        list of requests) or, by default, from the ``run``/``resume`` that returned
        ``results`` (results read from files with ``read_results`` need ``inputs``)."""
        from . import _run

        return _run.retry_failed(self, results, inputs=inputs, progress=progress, **run_options)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class AsyncClient(_BaseClient):
    """The Batch API for asyncio: the same names as ``Client``, awaitable."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float = 600.0,
        max_retries: int = 2,
        _transport: _core.Transport | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries, _transport=_transport
        )
        self.files = AsyncFiles(self._transport)
        self.batches = AsyncBatches(self._transport)

    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> AsyncClient:
        if timeout is not None:
            _check_timeout(timeout)
        if max_retries is not None:
            _check_max_retries(max_retries)
        return AsyncClient(_transport=self._transport.with_options(timeout=timeout, max_retries=max_retries))

    # The workflow twins are truly async: they use this client's own async resources and
    # the async wait, so cancelling the awaiting task (asyncio.wait_for, task.cancel(),
    # Ctrl-C under asyncio.run) stops at once. Like Ctrl-C in the sync client, that stops
    # only the waiting: the batches go on (the manifest still allows resume()). The local
    # work (validating and splitting, reading results) runs in a dedicated thread per call,
    # never in the loop's default executor.
    async def run(
        self,
        requests: Any,
        *,
        endpoint: str | None = None,
        metadata: Mapping[str, str] | None = None,
        wait: bool = True,
        manifest: str | os.PathLike[str] | None = None,
        limits: _core.Limits | None = None,
        poll_interval: float | None = None,
        timeout: float | None = None,
        progress: bool = True,
    ) -> Any:
        """``Client.run`` for asyncio. Cancelling the await stops waiting, not the batches
        (their ids are logged at WARNING to the ``fastrouter_batch`` logger)."""
        from . import _run

        return await _run.arun(
            self,
            requests,
            endpoint=endpoint,
            metadata=metadata,
            wait=wait,
            manifest=manifest,
            limits=limits,
            poll_interval=poll_interval,
            timeout=timeout,
            progress=progress,
        )

    async def resume(
        self,
        manifest: str | os.PathLike[str],
        *,
        wait: bool = True,
        poll_interval: float | None = None,
        timeout: float | None = None,
        progress: bool = True,
    ) -> Any:
        """``Client.resume`` for asyncio."""
        from . import _run
        from ._manifest import Manifest

        plan = Manifest.load(manifest)
        return await _run.aexecute(
            self, plan, wait=wait, poll_interval=poll_interval, timeout=timeout, progress=progress
        )

    async def retry_failed(self, results: Any, *, inputs: Any = None, progress: bool = True, **run_options: Any) -> Any:
        """``Client.retry_failed`` for asyncio."""
        from . import _run

        return await _run.aretry_failed(self, results, inputs=inputs, progress=progress, **run_options)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None
