"""One call from requests to results: validate locally, split what exceeds the limits,
upload and trigger each part, wait with one progress bar, download and merge the results.
What has been submitted is recorded in a manifest as it happens, so ``resume`` continues
after a crash or a closed notebook without submitting anything twice.

The asyncio twins (``arun``, ``aexecute``, ``aretry_failed``) are truly async: requests go
through the ``AsyncClient``'s own resources and waiting is ``await_all``, so cancelling
the awaiting task stops at once (the batches go on, as with Ctrl-C). The local, blocking
steps (validating and splitting, reading the results) run in a dedicated daemon thread
each, never in the event loop's default executor.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, Union

from . import _core
from ._manifest import Manifest, Part
from ._split import split_file
from ._wait import WaitTimeout, await_all, wait_all
from .types import Batch

if TYPE_CHECKING:
    from .client import AsyncClient, Client

log = logging.getLogger("fastrouter_batch")
R = TypeVar("R")

Source = Union[str, "os.PathLike[str]", _core.BatchBuilder, Iterable[_core.BatchRequest | Mapping[str, Any]]]

#: Limits of one batch on the service (the contract): runs split above them.
DEFAULT_LIMITS = _core.Limits()
#: Limits for checking the whole input before splitting: only line-level rules apply.
_UNSPLIT = _core.Limits(max_requests=2**62, max_bytes=2**62)

_RUN_ACCEPTS = "run() takes a path, a BatchBuilder or an iterable of requests"
_RETRY_INPUTS = (
    "inputs= (the request file, the run's manifest, a BatchBuilder or a list of requests as dicts or BatchRequest)"
)

#: The requests behind each ``BatchResults`` that ``run``/``resume`` returned: the run's
#: request files, so ``retry_failed(results)`` retries that run's own failed requests.
#: Weak keys: an entry goes with its results (and so does a temporary work directory,
#: which the results own).
_RUN_INPUTS: weakref.WeakKeyDictionary[Any, tuple[Path, ...]] = weakref.WeakKeyDictionary()


def _kind(value: Any) -> str:
    """``a dict``, ``an int``...: what was given, for error messages."""
    name = "dict" if isinstance(value, Mapping) else type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _as_builder(source: Any) -> _core.BatchBuilder | None:
    """The requests of a builder or an iterable of requests, in memory (None for a path).
    Raises TypeError for what ``run`` does not take."""
    if isinstance(source, (str, os.PathLike)):
        return None
    if isinstance(source, _core.BatchBuilder):
        return source
    if isinstance(source, (Mapping, _core.BatchRequest)):
        raise TypeError(f"{_RUN_ACCEPTS}; got {_kind(source)} (did you mean [request]?)")
    if isinstance(source, (bytes, bytearray, memoryview)) or not isinstance(source, Iterable):
        raise TypeError(f"{_RUN_ACCEPTS}; got {_kind(source)}")
    builder = _core.BatchBuilder()
    builder.extend(source)
    return builder


def _batch_file(path: Path, what: str) -> Path:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{what} is a directory, not a batch file", str(path))
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "no such batch file", str(path))
    return path


def _work_dir(manifest: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """The run's work directory, and whether this call made it."""
    if manifest is None:
        return Path(tempfile.mkdtemp(prefix="fastrouter-batch-run-")), True
    d = Path(manifest).with_name(Path(manifest).name + ".parts")
    made = not d.exists()
    d.mkdir(parents=True, exist_ok=True)
    return d, made


def prepare(
    source: Source,
    *,
    endpoint: str | None,
    metadata: Mapping[str, str] | None,
    manifest: str | os.PathLike[str] | None,
    limits: _core.Limits = DEFAULT_LIMITS,
) -> Manifest:
    """Validates the whole input (raising BatchValidationError with the report if it is
    invalid: nothing is uploaded), splits it, and records the plan. On any error the work
    directory is removed again (if this call made it)."""
    builder = _as_builder(source)
    given = _batch_file(Path(source), "run()'s input") if builder is None else None  # type: ignore[arg-type]
    if builder is not None and len(builder) == 0:
        raise ValueError("run(): no requests to run (the input is empty)")
    work_dir, made = _work_dir(manifest)
    try:
        if given is not None:
            path = given
        else:
            assert builder is not None
            path = work_dir / "input.jsonl"
            builder.write(path, validate=False)
        report = _core.validate(
            path,
            limits=_core.Limits(
                max_requests=_UNSPLIT.max_requests, max_bytes=_UNSPLIT.max_bytes, max_line_bytes=limits.max_line_bytes
            ),
        )
        report.raise_for_errors()
        if report.num_requests == 0:
            raise ValueError(f"{given if given is not None else 'run()'}: no requests to run")
        url = report.url or "/v1/chat/completions"
        if endpoint is not None and endpoint != url:
            raise ValueError(f"endpoint {endpoint!r} does not match the requests' url {url!r}")
        parts = split_file(path, work_dir, max_requests=limits.max_requests, max_bytes=limits.max_bytes)
        plan = Manifest(
            path=Path(manifest) if manifest is not None else work_dir / "manifest.json",
            endpoint=url,
            metadata=dict(metadata) if metadata else None,
            work_dir=str(work_dir),
            parts=[Part(path=str(p), lines=n, bytes=b) for p, n, b in parts],
        )
        plan.owns_work_dir = manifest is None
        plan.save()
    except BaseException:
        if made:
            shutil.rmtree(work_dir, ignore_errors=True)
        raise
    return plan


def execute(
    client: Client, plan: Manifest, *, wait: bool, poll_interval: float | None, timeout: float | None, progress: bool
) -> Any:
    """Submits what is not yet submitted and (with ``wait``) collects the results.

    A temporary work directory (no manifest: nothing to resume) is removed on any error
    and when nothing will own it (``wait=False``: the ``Batch`` list needs no local file);
    otherwise the results own it. When waiting stops early, the batches submitted are
    named (see ``_stopped``): they keep running on the service."""
    try:
        batches = submit(client, plan)
        if not wait:
            _drop_work_dir(plan)
            return batches
        return collect(client, plan, poll_interval=poll_interval, timeout=timeout, progress=progress)
    except BaseException as e:
        _drop_work_dir(plan)
        _stopped(plan, e)
        raise


async def aexecute(
    client: AsyncClient,
    plan: Manifest,
    *,
    wait: bool,
    poll_interval: float | None,
    timeout: float | None,
    progress: bool,
) -> Any:
    """``execute`` for asyncio (cancelling stops waiting, never the batches)."""
    try:
        batches = await asubmit(client, plan)
        if not wait:
            _drop_work_dir(plan)
            return batches
        return await acollect(client, plan, poll_interval=poll_interval, timeout=timeout, progress=progress)
    except BaseException as e:
        _drop_work_dir(plan)
        _stopped(plan, e)
        raise


def _drop_work_dir(plan: Manifest) -> None:
    if plan.owns_work_dir:
        shutil.rmtree(plan.work_dir, ignore_errors=True)


def _stopped(plan: Manifest, error: BaseException) -> None:
    """Says which batches keep running when a run stops after submitting some: a
    ``WaitTimeout`` gets them as ``batch_ids`` (and in its message); any other error
    (Ctrl-C, a cancelled task, a failed request) logs them at WARNING."""
    ids = [p.batch_id for p in plan.parts if p.batch_id]
    if not ids:
        return
    if plan.owns_work_dir:
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
    what = {KeyboardInterrupt: "interrupted", asyncio.CancelledError: "cancelled"}.get(type(error))
    log.warning(
        "run %s (%s); its batches keep running on the service: %s; %s",
        "stopped" if what is None else what,
        type(error).__name__,
        ", ".join(ids),
        how,
    )


def submit(client: Client, plan: Manifest) -> list[Batch]:
    """Uploads and triggers every part not yet submitted, saving after each step."""
    batches = []
    for part in plan.parts:
        if part.file_id is None:
            part.file_id = client.files.create(part.path).id
            plan.save()
        if part.batch_id is None:
            # The key was chosen (and saved) before: a create retried after a crash gets
            # the batch the first attempt made.
            batch = client.batches.create(
                input_file_id=part.file_id,
                endpoint=plan.endpoint,
                metadata=plan.metadata,
                idempotency_key=part.idempotency_key,
            )
            part.batch_id = batch.id
            plan.save()
            batches.append(batch)
        else:
            batches.append(client.batches.retrieve(part.batch_id))
    return batches


async def asubmit(client: AsyncClient, plan: Manifest) -> list[Batch]:
    """``submit`` for asyncio."""
    batches = []
    for part in plan.parts:
        if part.file_id is None:
            part.file_id = (await client.files.create(part.path)).id
            plan.save()
        if part.batch_id is None:
            batch = await client.batches.create(
                input_file_id=part.file_id,
                endpoint=plan.endpoint,
                metadata=plan.metadata,
                idempotency_key=part.idempotency_key,
            )
            part.batch_id = batch.id
            plan.save()
            batches.append(batch)
        else:
            batches.append(await client.batches.retrieve(part.batch_id))
    return batches


def _result_files(plan: Manifest, batches: list[Batch]) -> list[tuple[Path, str]]:
    work = Path(plan.work_dir)
    return [
        (work / f"{b.id}.{kind}.jsonl", file_id)
        for b in batches
        for kind, file_id in (("output", b.output_file_id), ("errors", b.error_file_id))
        if file_id
    ]


def _read(plan: Manifest, files: list[Path]) -> Any:
    """The downloaded files as one result set, in input order."""
    from .results import _read_owned, read_results

    inputs = [Path(p.path) for p in plan.parts]
    if plan.owns_work_dir:
        # No manifest: nothing to resume, so the work files (the requests among them) go
        # when the results do.
        results = _read_owned(files, inputs, plan.work_dir)
    else:
        results = read_results(*files, inputs=inputs)
    # For retry_failed(results) without inputs: the requests travel with their results.
    _RUN_INPUTS[results] = tuple(inputs)
    return results


def collect(
    client: Client, plan: Manifest, *, poll_interval: float | None, timeout: float | None, progress: bool
) -> Any:
    """Waits for every part, downloads output and error files, reads them as one result set."""
    ids = [p.batch_id for p in plan.parts if p.batch_id]
    batches = wait_all(client.batches.retrieve, ids, poll_interval=poll_interval, timeout=timeout, progress=progress)
    files = [client.files.download(file_id, path) for path, file_id in _result_files(plan, batches)]
    return _read(plan, files)


async def acollect(
    client: AsyncClient, plan: Manifest, *, poll_interval: float | None, timeout: float | None, progress: bool
) -> Any:
    """``collect`` for asyncio: polls and downloads on the loop, reads in a thread."""
    ids = [p.batch_id for p in plan.parts if p.batch_id]
    batches = await await_all(
        client.batches.retrieve, ids, poll_interval=poll_interval, timeout=timeout, progress=progress
    )
    files = [await client.files.download(file_id, path) for path, file_id in _result_files(plan, batches)]
    return await off_loop(_read, plan, files)


def off_loop(fn: Callable[..., R], *args: Any, abandon: Callable[[R], None] | None = None) -> asyncio.Future[R]:
    """Runs ``fn(*args)`` in a dedicated daemon thread; awaitable for its result.

    Not the loop's default executor: a workflow never takes a thread other code of the
    application waits for, and a cancelled await leaves nothing that ``asyncio.run`` joins
    at shutdown. ``abandon(result)`` is called with a result nobody awaits any more (the
    await was cancelled, or the loop closed), to release what it holds."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if future.cancelled():
            if ok and abandon is not None:
                abandon(value)
        elif ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        value: Any
        try:
            ok, value = True, fn(*args)
        except BaseException as e:  # delivered to the awaiting task
            ok, value = False, e
        try:
            loop.call_soon_threadsafe(deliver, ok, value)
        except RuntimeError:  # the loop is closed: nobody will take the result
            if ok and abandon is not None:
                abandon(value)

    threading.Thread(target=work, name=f"fastrouter-batch-{getattr(fn, '__name__', 'work')}", daemon=True).start()
    return future


def _abandon_plan(plan: Manifest) -> None:
    """A plan made for a cancelled ``arun``: its temporary work directory goes."""
    _drop_work_dir(plan)


async def arun(
    client: AsyncClient,
    requests: Any,
    *,
    endpoint: str | None,
    metadata: Mapping[str, str] | None,
    wait: bool,
    manifest: str | os.PathLike[str] | None,
    limits: _core.Limits | None,
    poll_interval: float | None,
    timeout: float | None,
    progress: bool,
) -> Any:
    """``Client.run`` for asyncio."""
    plan = await off_loop(
        _prepare_call, requests, endpoint, metadata, manifest, limits or DEFAULT_LIMITS, abandon=_abandon_plan
    )
    return await aexecute(client, plan, wait=wait, poll_interval=poll_interval, timeout=timeout, progress=progress)


def _prepare_call(
    requests: Any,
    endpoint: str | None,
    metadata: Mapping[str, str] | None,
    manifest: str | os.PathLike[str] | None,
    limits: _core.Limits,
) -> Manifest:
    return prepare(requests, endpoint=endpoint, metadata=metadata, manifest=manifest, limits=limits)


def _failed_ids(results: Any) -> set[str]:
    if not isinstance(results, _core.BatchResults):
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
                        cid = json.loads(raw.lstrip(b"\xef\xbb\xbf")).get("custom_id")
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


def retry_failed(client: Client, results: Any, *, inputs: Any = None, **run_options: Any) -> Any:
    """Runs again only the requests that failed in ``results``, as a new batch.

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
        return client.run(retry_path, **run_options)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def aretry_failed(client: AsyncClient, results: Any, *, inputs: Any = None, **run_options: Any) -> Any:
    """``retry_failed`` for asyncio."""
    failed = _failed_ids(results)
    if not failed:
        return results.failed
    work = Path(tempfile.mkdtemp(prefix="fastrouter-batch-retry-"))
    try:
        retry_path = await off_loop(_write_retry, results, failed, inputs, work)
        return await client.run(retry_path, **run_options)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _retry_sources(results: Any, inputs: Any, work: Path) -> list[Path]:
    """The request files to take the failed requests from (written into ``work`` when the
    requests are given in memory)."""
    if inputs is None:
        known = _RUN_INPUTS.get(results)
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
        path = _batch_file(Path(inputs), "retry_failed()'s inputs")
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
            f"got {_kind(inputs)} (did you mean [request]?)"
        )
    elif isinstance(inputs, Iterable):
        items = list(inputs)
        for item in items:
            if not isinstance(item, (Mapping, _core.BatchRequest)):
                raise TypeError(
                    f"retry_failed(): inputs= takes a path, a BatchBuilder or a list of requests "
                    f"(dicts or BatchRequest); got a list holding {_kind(item)}"
                )
        builder = _core.BatchBuilder()
        builder.extend(items)
    else:
        raise TypeError(
            f"retry_failed(): inputs= takes a path, a BatchBuilder or a list of requests; got {_kind(inputs)}"
        )
    path = work / "inputs.jsonl"
    builder.write(path, validate=False)
    return [path]
