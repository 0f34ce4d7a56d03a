"""One call from requests to results: validate locally, split what exceeds the limits,
upload and trigger each part, wait with one progress bar, download and merge the results.
What has been submitted is recorded in a manifest as it happens, so ``resume`` continues
after a crash or a closed notebook without submitting anything twice."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from . import _core
from ._manifest import Manifest, Part
from ._split import split_file
from ._wait import wait_all
from .types import Batch

if TYPE_CHECKING:
    from .client import Client

Source = Union[str, "os.PathLike[str]", _core.BatchBuilder, Iterable[Union[_core.BatchRequest, Mapping[str, Any]]]]

#: Limits of one batch on the service (the contract): runs split above them.
DEFAULT_LIMITS = _core.Limits()
#: Limits for checking the whole input before splitting: only line-level rules apply.
_UNSPLIT = _core.Limits(max_requests=2**62, max_bytes=2**62)

_RUN_ACCEPTS = "run() takes a path, a BatchBuilder or an iterable of requests"
_RETRY_INPUTS = ("inputs= (the request file, the run's manifest, a BatchBuilder or a list of requests "
                 "as dicts or BatchRequest)")

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
    builder.extend(source)  # type: ignore[arg-type]
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
        report = _core.validate(path, limits=_core.Limits(max_requests=_UNSPLIT.max_requests, max_bytes=_UNSPLIT.max_bytes,
                                                          max_line_bytes=limits.max_line_bytes))
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


def execute(client: Client, plan: Manifest, *, wait: bool, poll_interval: float | None, timeout: float | None,
            progress: bool) -> Any:
    """Submits what is not yet submitted and (with ``wait``) collects the results.

    A temporary work directory (no manifest: nothing to resume) is removed on any error
    and when nothing will own it (``wait=False``); otherwise the results own it."""
    try:
        batches = submit(client, plan)
        if not wait:
            if plan.owns_work_dir:
                shutil.rmtree(plan.work_dir, ignore_errors=True)
            return batches
        return collect(client, plan, poll_interval=poll_interval, timeout=timeout, progress=progress)
    except BaseException:
        if plan.owns_work_dir:
            shutil.rmtree(plan.work_dir, ignore_errors=True)
        raise


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


def collect(client: Client, plan: Manifest, *, poll_interval: float | None, timeout: float | None, progress: bool) -> Any:
    """Waits for every part, downloads output and error files, reads them as one result set."""
    from .results import _read_owned, read_results

    ids = [p.batch_id for p in plan.parts if p.batch_id]
    batches = wait_all(client.batches.retrieve, ids, poll_interval=poll_interval, timeout=timeout, progress=progress)
    files: list[Path] = []
    work = Path(plan.work_dir)
    for b in batches:
        for kind, file_id in (("output", b.output_file_id), ("errors", b.error_file_id)):
            if file_id:
                files.append(client.files.download(file_id, work / f"{b.id}.{kind}.jsonl"))
    inputs = [Path(p.path) for p in plan.parts]
    if plan.owns_work_dir:
        # No manifest: nothing to resume, so the work files (the requests among them) go
        # when the results do.
        results = _read_owned(files, inputs, work)
    else:
        results = read_results(*files, inputs=inputs)
    # For retry_failed(results) without inputs: the requests travel with their results.
    _RUN_INPUTS[results] = tuple(inputs)
    return results


def retry_failed(client: Client, results: Any, *, inputs: Any = None, **run_options: Any) -> Any:
    """Runs again only the requests that failed in ``results``, as a new batch.

    The requests are taken from ``inputs`` (a request file, a run's manifest path, a
    builder, or a list of requests) or, by default, from the run that produced ``results``.
    """
    if not isinstance(results, _core.BatchResults):
        raise TypeError(f"retry_failed() takes the BatchResults of a run, got {type(results).__name__}")
    failed = set(results.failed.custom_ids)
    if not failed:
        return results.failed
    work = Path(tempfile.mkdtemp(prefix="fastrouter-batch-retry-"))
    try:
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
            raise ValueError(f"{missing} failed request(s) are not in the inputs given "
                             f"(e.g. {sorted(failed - found)[0]!r}); pass {_RETRY_INPUTS}")
        # The new run splits retry.jsonl into its own work directory: this one can go.
        return client.run(retry_path, **run_options)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _retry_sources(results: Any, inputs: Any, work: Path) -> list[Path]:
    """The request files to take the failed requests from (written into ``work`` when the
    requests are given in memory)."""
    if inputs is None:
        known = _RUN_INPUTS.get(results)
        if known is None:
            raise ValueError("retry_failed() does not know the requests behind these results (only results "
                             f"returned by run() or resume() carry them): pass {_RETRY_INPUTS}")
        for path in known:
            if not path.is_file():
                raise FileNotFoundError(errno.ENOENT, f"the run's request file is gone (pass {_RETRY_INPUTS})",
                                        str(path))
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
        raise TypeError(f"retry_failed(): inputs= takes a path, a BatchBuilder or a list of requests; "
                        f"got {_kind(inputs)} (did you mean [request]?)")
    elif isinstance(inputs, Iterable):
        items = list(inputs)
        for item in items:
            if not isinstance(item, (Mapping, _core.BatchRequest)):
                raise TypeError(f"retry_failed(): inputs= takes a path, a BatchBuilder or a list of requests "
                                f"(dicts or BatchRequest); got a list holding {_kind(item)}")
        builder = _core.BatchBuilder()
        builder.extend(items)
    else:
        raise TypeError(f"retry_failed(): inputs= takes a path, a BatchBuilder or a list of requests; "
                        f"got {_kind(inputs)}")
    path = work / "inputs.jsonl"
    builder.write(path, validate=False)
    return [path]
