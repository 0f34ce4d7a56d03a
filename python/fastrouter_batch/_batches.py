"""``client.batches``: create, retrieve, list and cancel batches (the Rust client does the
work, this layer types the answers), wait for them, and read a finished batch's results."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from . import _core
from ._offloop import off_loop
from ._pages import MAX_LIST_LIMIT, AsyncPager, SyncCursorPage, check_limit, first_sync_page
from ._wait import await_all, wait_all
from .results import BatchResults, Inputs, read_owned
from .types import Batch, ProviderBreakdownList

CHAT_COMPLETIONS = "/v1/chat/completions"


def result_files(batches: Sequence[Batch], directory: str | Path) -> list[tuple[Path, str]]:
    """Where the batches' output and error files are downloaded in ``directory``
    (``{batch id}.output.jsonl``, ``{batch id}.errors.jsonl``), with their file ids."""
    return [
        (Path(directory) / f"{b.id}.{kind}.jsonl", file_id)
        for b in batches
        for kind, file_id in (("output", b.output_file_id), ("errors", b.error_file_id))
        if file_id
    ]


def _has_results(batch: Batch) -> bool:
    return bool(batch.output_file_id or batch.error_file_id)


def _batch_or_id(batch_or_id: Any) -> Batch | str:
    """For ``batches.results``: a Batch stays as it is; an id (a str, or an object with a
    str ``.id`` such as openai's Batch) is checked."""
    if isinstance(batch_or_id, Batch):
        return batch_or_id
    found = batch_or_id if isinstance(batch_or_id, str) else getattr(batch_or_id, "id", None)
    if not isinstance(found, str):
        raise TypeError(
            f"batches.results(): batch_or_id must be a Batch or a batch id (str), got {type(batch_or_id).__name__}"
        )
    if not found:
        raise ValueError("batch_or_id must not be empty")
    return found


def _finished(batch: Batch) -> Batch:
    """The batch, if its results can be read; FastRouterError if it has not finished (or
    failed before running any request)."""
    if _has_results(batch):
        return batch
    if not batch.is_terminal:
        raise _core.FastRouterError(
            f"batch {batch.id} is {batch.status}: no results yet (wait for it first: batches.wait({batch.id!r}))"
        )
    if batch.status == "failed":
        problems = "; ".join(
            f"line {e.line}: {e.message}" if e.line is not None else str(e.message)
            for e in list(batch.errors or [])[:3]
        )
        raise _core.FastRouterError(f"batch {batch.id} failed{': ' + problems if problems else ''} (no request ran)")
    return batch


def _results_dir() -> str:
    return tempfile.mkdtemp(prefix="fastrouter-batch-results-")


class Batches:
    def __init__(self, api: _core.ApiClient) -> None:
        self._api = api

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
        return Batch(
            self._api.create_batch(
                input_file_id=input_file_id,
                endpoint=endpoint,
                completion_window=completion_window,
                metadata=None if metadata is None else dict(metadata),
                idempotency_key=idempotency_key,
            )
        )

    def retrieve(self, batch_id: str) -> Batch:
        return Batch(self._api.retrieve_batch(batch_id))

    def list(self, *, limit: int | None = None, after: str | None = None) -> SyncCursorPage[Batch]:
        """The first page, newest first (fetched now): ``.data``, ``.has_more``; iterating it
        walks every batch of every page."""
        check_limit(limit, MAX_LIST_LIMIT)

        def fetch(page_after: str | None) -> dict[str, Any]:
            return self._api.list_batches(limit=limit, after=page_after)

        return first_sync_page(fetch, Batch, after)

    def cancel(self, batch_id: str) -> Batch:
        return Batch(self._api.cancel_batch(batch_id))

    def providers(self, batch_id: str) -> ProviderBreakdownList:
        """The batch's request counts and token usage by provider (``GET
        /v1/batches/{id}/providers``, as the dashboard shows them).

        An extension of the local engine (``LocalServer``, ``fastrouter-batch serve``): the
        hosted service has no such route and answers ``NotFoundError``.
        """
        return ProviderBreakdownList(self._api.batch_providers(batch_id))

    def wait(
        self, batch_id: str, *, poll_interval: float | None = None, timeout: float | None = None, progress: bool = True
    ) -> Batch:
        """Polls until the batch is completed, failed, expired or cancelled, and returns it.

        Polls quickly at first, then back off to every 30 s (``poll_interval`` fixes it).
        ``timeout`` raises ``WaitTimeout`` (the batch goes on). Ctrl-C stops waiting only.
        """
        done = wait_all(self.retrieve, [batch_id], poll_interval=poll_interval, timeout=timeout, progress=progress)
        return done[0]

    def results(self, batch_or_id: Batch | str, *, inputs: Inputs | None = None) -> BatchResults:
        """Downloads a finished batch's output and error files and reads them: one
        ``Result`` per request (see ``read_results``; ``inputs`` gives the order).

        The files go to a temporary directory, removed when the results are garbage
        collected. Raises ``FastRouterError`` if the batch has not finished.
        """
        batch = _batch_or_id(batch_or_id)
        if not isinstance(batch, Batch) or not _has_results(batch):
            batch = self.retrieve(batch if isinstance(batch, str) else batch.id)
        batch = _finished(batch)
        directory = _results_dir()
        try:
            paths = []
            for path, file_id in result_files([batch], directory):
                self._api.download_file(file_id, path)
                paths.append(path)
            return read_owned(paths, inputs, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise


class AsyncBatches:
    def __init__(self, api: _core.ApiClient) -> None:
        self._api = api

    async def create(
        self,
        *,
        input_file_id: str,
        endpoint: str = CHAT_COMPLETIONS,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Batch:
        return Batch(
            await self._api.acreate_batch(
                input_file_id=input_file_id,
                endpoint=endpoint,
                completion_window=completion_window,
                metadata=None if metadata is None else dict(metadata),
                idempotency_key=idempotency_key,
            )
        )

    async def retrieve(self, batch_id: str) -> Batch:
        return Batch(await self._api.aretrieve_batch(batch_id))

    def list(self, *, limit: int | None = None, after: str | None = None) -> AsyncPager[Batch]:
        check_limit(limit, MAX_LIST_LIMIT)

        async def fetch(page_after: str | None) -> dict[str, Any]:
            return await self._api.alist_batches(limit=limit, after=page_after)

        return AsyncPager(fetch, Batch, after)

    async def cancel(self, batch_id: str) -> Batch:
        return Batch(await self._api.acancel_batch(batch_id))

    async def providers(self, batch_id: str) -> ProviderBreakdownList:
        """``Client.batches.providers`` for asyncio."""
        return ProviderBreakdownList(await self._api.abatch_providers(batch_id))

    async def wait(
        self, batch_id: str, *, poll_interval: float | None = None, timeout: float | None = None, progress: bool = True
    ) -> Batch:
        """``Client.batches.wait`` for asyncio."""
        done = await await_all(
            self.retrieve, [batch_id], poll_interval=poll_interval, timeout=timeout, progress=progress
        )
        return done[0]

    async def results(self, batch_or_id: Batch | str, *, inputs: Inputs | None = None) -> BatchResults:
        """``Client.batches.results`` for asyncio (the files are read off the event loop)."""
        batch = _batch_or_id(batch_or_id)
        if not isinstance(batch, Batch) or not _has_results(batch):
            batch = await self.retrieve(batch if isinstance(batch, str) else batch.id)
        batch = _finished(batch)
        directory = _results_dir()
        try:
            paths = []
            for path, file_id in result_files([batch], directory):
                await self._api.adownload_file(file_id, path)
                paths.append(path)
            return await off_loop(read_owned, paths, inputs, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
