"""One call from requests to results: plan the run (``_plan.prepare``: validate, split,
record), upload and trigger each part, wait with one progress bar, download and merge the
results. What has been submitted is recorded in the manifest as it happens, so ``resume``
continues after a crash or a closed notebook without submitting anything twice.

The workflow talks to the service through the ``files`` and ``batches`` resources it is
given, never through a client. The asyncio twins (``arun``, ``aresume``) are truly async:
requests go through the async resources and waiting is ``await_all``, so cancelling the
awaiting task stops at once (the batches go on, as with Ctrl-C). The local, blocking steps
(planning, reading the results) run in a dedicated daemon thread each (``off_loop``).
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from . import _core
from ._batches import AsyncBatches, Batches, result_files
from ._files import AsyncFiles, Files
from ._manifest import Manifest
from ._offloop import off_loop
from ._plan import DEFAULT_LIMITS, SamplingTable, Source, prepare, work_dir
from ._wait import WaitTimeout, await_all, wait_all
from .results import BatchResults, read_owned, read_results
from .types import Batch

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger("fastrouter_batch")

#: The requests behind each ``BatchResults`` that ``run``/``resume`` returned: the run's
#: request files, so ``retry_failed(results)`` retries that run's own failed requests.
#: Weak keys: an entry goes with its results (and so does a temporary work directory,
#: which the results own).
RUN_INPUTS: weakref.WeakKeyDictionary[BatchResults, tuple[Path, ...]] = weakref.WeakKeyDictionary()

#: How a stopped run tells its caller to go on, given the run's manifest (None without
#: one): None says it in the library's terms (``client.resume(PATH)``); the CLI sets its own
#: (``fastrouter-batch run --resume PATH``).
STOP_HINT: ContextVar[Callable[[Path | None], str] | None] = ContextVar("fastrouter_batch_stop_hint", default=None)


class WaitOptions(TypedDict, total=False):
    """How a run waits for its batches (see ``batches.wait``)."""

    poll_interval: float | None
    timeout: float | None
    progress: bool


class RunOptions(WaitOptions, total=False):
    """``run``'s options, besides ``wait`` (see ``Client.run``)."""

    endpoint: str | None
    metadata: Mapping[str, str] | None
    manifest: str | os.PathLike[str] | None
    limits: _core.Limits | None
    anthropic_sampling: SamplingTable | None


def _waiting(options: WaitOptions) -> WaitOptions:
    """The options about waiting, out of all of ``run``'s."""
    return WaitOptions(
        poll_interval=options.get("poll_interval"),
        timeout=options.get("timeout"),
        progress=options.get("progress", True),
    )


def _plan(requests: Source, options: RunOptions, work: tuple[Path, bool] | None = None) -> Manifest:
    return prepare(
        requests,
        endpoint=options.get("endpoint"),
        metadata=options.get("metadata"),
        manifest=options.get("manifest"),
        limits=options.get("limits") or DEFAULT_LIMITS,
        anthropic_sampling=options.get("anthropic_sampling"),
        work=work,
    )


def run(
    files: Files, batches: Batches, requests: Source, *, wait: bool = True, **options: Unpack[RunOptions]
) -> BatchResults | list[Batch]:
    """``Client.run``: plans the run, then executes it."""
    return execute(files, batches, _plan(requests, options), wait=wait, **_waiting(options))


def resume(
    files: Files,
    batches: Batches,
    manifest: str | os.PathLike[str],
    *,
    wait: bool = True,
    **waiting: Unpack[WaitOptions],
) -> BatchResults | list[Batch]:
    """``Client.resume``: executes a recorded plan (only what was not submitted is)."""
    return execute(files, batches, Manifest.load(manifest), wait=wait, **waiting)


async def arun(
    files: AsyncFiles, batches: AsyncBatches, requests: Source, *, wait: bool = True, **options: Unpack[RunOptions]
) -> BatchResults | list[Batch]:
    """``run`` for asyncio: the plan is made in a thread of its own, and its temporary work
    directory removed if the await is cancelled meanwhile. The directory is made here,
    before the thread starts: a run cancelled at once has its directory dropped, never
    one made after the cancel."""
    work = work_dir(options.get("manifest"))
    plan = await off_loop(_plan, requests, options, work, abandon=_drop_work_dir)
    return await aexecute(files, batches, plan, wait=wait, **_waiting(options))


async def aresume(
    files: AsyncFiles,
    batches: AsyncBatches,
    manifest: str | os.PathLike[str],
    *,
    wait: bool = True,
    **waiting: Unpack[WaitOptions],
) -> BatchResults | list[Batch]:
    """``resume`` for asyncio."""
    return await aexecute(files, batches, Manifest.load(manifest), wait=wait, **waiting)


def execute(
    files: Files, batches: Batches, plan: Manifest, *, wait: bool, **waiting: Unpack[WaitOptions]
) -> BatchResults | list[Batch]:
    """Submits what is not yet submitted and (with ``wait``) collects the results.

    A temporary work directory (no manifest: nothing to resume) is removed on any error
    and when nothing will own it (``wait=False``: the ``Batch`` list needs no local file);
    otherwise the results own it. When waiting stops early, the batches submitted are
    named (see ``_stopped``): they keep running on the service."""
    try:
        submitted = submit(files, batches, plan)
        if not wait:
            _drop_work_dir(plan)
            return submitted
        return collect(files, batches, plan, **waiting)
    except BaseException as e:
        _drop_work_dir(plan)
        _stopped(plan, e)
        raise


async def aexecute(
    files: AsyncFiles, batches: AsyncBatches, plan: Manifest, *, wait: bool, **waiting: Unpack[WaitOptions]
) -> BatchResults | list[Batch]:
    """``execute`` for asyncio (cancelling stops waiting, never the batches)."""
    try:
        submitted = await asubmit(files, batches, plan)
        if not wait:
            _drop_work_dir(plan)
            return submitted
        return await acollect(files, batches, plan, **waiting)
    except BaseException as e:
        _drop_work_dir(plan)
        _stopped(plan, e)
        raise


def _drop_work_dir(plan: Manifest) -> None:
    """A temporary work directory goes (a manifest's stays, for resume)."""
    if plan.owns_work_dir:
        shutil.rmtree(plan.work_dir, ignore_errors=True)


def _stopped(plan: Manifest, error: BaseException) -> None:
    """Says which batches keep running when a run stops after submitting some: a
    ``WaitTimeout`` gets them as ``batch_ids`` (and in its message); any other error
    (Ctrl-C, a cancelled task, a failed request) logs them at WARNING."""
    ids = [p.batch_id for p in plan.parts if p.batch_id]
    if not ids:
        return
    hint = STOP_HINT.get()
    if hint is not None:
        how = hint(None if plan.owns_work_dir else Path(plan.path))
    elif plan.owns_work_dir:
        how = (
            "get their results with client.batches.wait(id) and client.batches.results(id); "
            "pass manifest=PATH to run() to make a run resumable with client.resume(PATH)"
        )
    else:
        how = f"client.resume({str(plan.path)!r}) waits for them again (nothing is submitted twice)"
    if isinstance(error, WaitTimeout):
        error.batch_ids = ids
        error.args = (
            f"{error.args[0] if error.args else 'not finished'}; this run's batches "
            f"(e.batch_ids, in input order): {', '.join(ids)}; {how}",
        )
        return
    # asyncio is loaded wherever a task can be cancelled (see _wait.await_all).
    cancelled = getattr(sys.modules.get("asyncio"), "CancelledError", None)
    what = {KeyboardInterrupt: "interrupted", cancelled: "cancelled"}.get(type(error))
    log.warning(
        "run %s (%s); its batches keep running on the service: %s; %s",
        "stopped" if what is None else what,
        type(error).__name__,
        ", ".join(ids),
        how,
    )


def submit(files: Files, batches: Batches, plan: Manifest) -> list[Batch]:
    """Uploads and triggers every part not yet submitted, saving after each step."""
    submitted = []
    for part in plan.parts:
        if part.file_id is None:
            part.file_id = files.create(part.path).id
            plan.save()
        if part.batch_id is None:
            # The key was chosen (and saved) before: a create retried after a crash gets
            # the batch the first attempt made.
            batch = batches.create(
                input_file_id=part.file_id,
                endpoint=plan.endpoint,
                metadata=plan.metadata,
                idempotency_key=part.idempotency_key,
            )
            part.batch_id = batch.id
            plan.save()
            submitted.append(batch)
        else:
            submitted.append(batches.retrieve(part.batch_id))
    return submitted


async def asubmit(files: AsyncFiles, batches: AsyncBatches, plan: Manifest) -> list[Batch]:
    """``submit`` for asyncio."""
    submitted = []
    for part in plan.parts:
        if part.file_id is None:
            part.file_id = (await files.create(part.path)).id
            plan.save()
        if part.batch_id is None:
            batch = await batches.create(
                input_file_id=part.file_id,
                endpoint=plan.endpoint,
                metadata=plan.metadata,
                idempotency_key=part.idempotency_key,
            )
            part.batch_id = batch.id
            plan.save()
            submitted.append(batch)
        else:
            submitted.append(await batches.retrieve(part.batch_id))
    return submitted


def _read(plan: Manifest, downloaded: list[Path]) -> BatchResults:
    """The downloaded files as one result set, in input order."""
    inputs = [Path(p.path) for p in plan.parts]
    if plan.owns_work_dir:
        # No manifest: nothing to resume, so the work files (the requests among them) go
        # when the results do.
        results = read_owned(downloaded, inputs, plan.work_dir)
    else:
        results = read_results(*downloaded, inputs=inputs)
    # For retry_failed(results) without inputs: the requests travel with their results.
    RUN_INPUTS[results] = tuple(inputs)
    return results


def collect(files: Files, batches: Batches, plan: Manifest, **waiting: Unpack[WaitOptions]) -> BatchResults:
    """Waits for every part, downloads output and error files, reads them as one result set."""
    ids = [p.batch_id for p in plan.parts if p.batch_id]
    done = wait_all(batches.retrieve, ids, **waiting)
    downloaded = [files.download(file_id, path) for path, file_id in result_files(done, plan.work_dir)]
    return _read(plan, downloaded)


async def acollect(
    files: AsyncFiles, batches: AsyncBatches, plan: Manifest, **waiting: Unpack[WaitOptions]
) -> BatchResults:
    """``collect`` for asyncio: polls and downloads on the loop, reads in a thread."""
    ids = [p.batch_id for p in plan.parts if p.batch_id]
    done = await await_all(batches.retrieve, ids, **waiting)
    downloaded = [await files.download(file_id, path) for path, file_id in result_files(done, plan.work_dir)]
    return await off_loop(_read, plan, downloaded)
