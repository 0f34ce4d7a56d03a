"""``retry_failed``: the requests that failed in a run's results, run again as a new batch.
The requests come from the run itself (its request files travel with its results) or from
``inputs``."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core
from ._batches import AsyncBatches, Batches
from ._files import AsyncFiles, Files
from ._io import BOM
from ._manifest import Manifest
from ._offloop import off_loop
from ._plan import batch_file, kind_of
from ._run import RUN_INPUTS, RunOptions, arun, run
from .results import BatchResults
from .types import Batch

if TYPE_CHECKING:
    from typing_extensions import Unpack

_RETRY_INPUTS = (
    "inputs= (the request file, the run's manifest, a BatchBuilder or a list of requests as dicts or BatchRequest)"
)


def _failed_ids(results: Any) -> set[str]:
    if not isinstance(results, BatchResults):
        raise TypeError(f"retry_failed() takes the BatchResults of a run, got {type(results).__name__}")
    return set(results.failed.custom_ids)


def _write_retry(results: Any, failed: set[str], inputs: Any, work: Path) -> Path:
    """Writes the failed requests (taken from ``inputs`` or the run's own request files)
    to ``work/retry.jsonl``; raises ValueError if some are not there."""
    files = _retry_sources(results, inputs, work)
    retry_path = work / "retry.jsonl"
    found: set[str] = set()
    with open(retry_path, "wb") as out:
        for path in files:
            with open(path, "rb") as f:
                for raw in f:
                    if not raw.strip():
                        continue
                    try:
                        cid = json.loads(raw.removeprefix(BOM)).get("custom_id")
                    except (ValueError, AttributeError):
                        continue
                    if cid in failed:
                        out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                        found.add(cid)
    if len(found) < len(failed):
        missing = len(failed) - len(found)
        raise ValueError(
            f"{missing} failed request(s) are not in the inputs given "
            f"(e.g. {sorted(failed - found)[0]!r}); pass {_RETRY_INPUTS}"
        )
    return retry_path


def retry_failed(
    files: Files, batches: Batches, results: BatchResults, *, inputs: Any, wait: bool, **options: Unpack[RunOptions]
) -> BatchResults | list[Batch]:
    """Runs again only the requests that failed in ``results``, as a new batch (``run``'s
    options apply).

    The requests are taken from ``inputs`` (a request file, a run's manifest path, a
    builder, or a list of requests) or, by default, from the run that produced ``results``.
    """
    failed = _failed_ids(results)
    if not failed:
        return results.failed
    work = Path(tempfile.mkdtemp(prefix="fastrouter-batch-retry-"))
    try:
        retry_path = _write_retry(results, failed, inputs, work)
        # The new run splits retry.jsonl into its own work directory: this one can go.
        return run(files, batches, retry_path, wait=wait, **options)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def aretry_failed(
    files: AsyncFiles,
    batches: AsyncBatches,
    results: BatchResults,
    *,
    inputs: Any,
    wait: bool,
    **options: Unpack[RunOptions],
) -> BatchResults | list[Batch]:
    """``retry_failed`` for asyncio."""
    failed = _failed_ids(results)
    if not failed:
        return results.failed
    work = Path(tempfile.mkdtemp(prefix="fastrouter-batch-retry-"))
    try:
        retry_path = await off_loop(_write_retry, results, failed, inputs, work)
        return await arun(files, batches, retry_path, wait=wait, **options)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _retry_sources(results: Any, inputs: Any, work: Path) -> list[Path]:
    """The request files to take the failed requests from (written into ``work`` when the
    requests are given in memory)."""
    if inputs is None:
        known = RUN_INPUTS.get(results)
        if known is None:
            raise ValueError(
                "retry_failed() does not know the requests behind these results (only results "
                f"returned by run() or resume() carry them): pass {_RETRY_INPUTS}"
            )
        for path in known:
            if not path.is_file():
                raise FileNotFoundError(
                    errno.ENOENT, f"the run's request file is gone (pass {_RETRY_INPUTS})", str(path)
                )
        return list(known)
    if isinstance(inputs, (str, os.PathLike)):
        path = batch_file(Path(inputs), "retry_failed()'s inputs")
        if path.suffix == ".json":
            return [Path(p.path) for p in Manifest.load(path).parts]
        return [path]
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        path = work / "inputs.jsonl"
        path.write_bytes(bytes(inputs))
        return [path]
    if isinstance(inputs, _core.BatchBuilder):
        builder = inputs
    elif isinstance(inputs, (Mapping, _core.BatchRequest)):
        raise TypeError(
            f"retry_failed(): inputs= takes a path, a BatchBuilder or a list of requests; "
            f"got {kind_of(inputs)} (did you mean [request]?)"
        )
    elif isinstance(inputs, Iterable):
        items = list(inputs)
        for item in items:
            if not isinstance(item, (Mapping, _core.BatchRequest)):
                raise TypeError(
                    f"retry_failed(): inputs= takes a path, a BatchBuilder or a list of requests "
                    f"(dicts or BatchRequest); got a list holding {kind_of(item)}"
                )
        builder = _core.BatchBuilder()
        builder.extend(items)
    else:
        raise TypeError(
            f"retry_failed(): inputs= takes a path, a BatchBuilder or a list of requests; got {kind_of(inputs)}"
        )
    path = work / "inputs.jsonl"
    builder.write(path, validate=False)
    return [path]
