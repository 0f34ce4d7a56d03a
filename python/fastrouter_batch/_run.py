"""One call from requests to results: validate locally, split what exceeds the limits,
upload and trigger each part, wait with one progress bar, download and merge the results.
What has been submitted is recorded in a manifest as it happens, so ``resume`` continues
after a crash or a closed notebook without submitting anything twice."""

from __future__ import annotations

import os
import shutil
import tempfile
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


def _work_dir(manifest: str | os.PathLike[str] | None) -> Path:
    if manifest is None:
        return Path(tempfile.mkdtemp(prefix="fastrouter-batch-run-"))
    d = Path(manifest).with_name(Path(manifest).name + ".parts")
    d.mkdir(parents=True, exist_ok=True)
    return d


def _input_file(source: Source, work_dir: Path) -> Path:
    """The requests as one JSONL file (a path is used as it is)."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such batch file: {path}")
        return path
    builder = source if isinstance(source, _core.BatchBuilder) else _core.BatchBuilder()
    if builder is not source:
        builder.extend(source)  # type: ignore[arg-type]
    path = work_dir / "input.jsonl"
    builder.write(path, validate=False)
    return path


def prepare(
    source: Source,
    *,
    endpoint: str | None,
    metadata: Mapping[str, str] | None,
    manifest: str | os.PathLike[str] | None,
    limits: _core.Limits = DEFAULT_LIMITS,
) -> Manifest:
    """Validates the whole input (raising BatchValidationError with the report if it is
    invalid: nothing is uploaded), splits it, and records the plan."""
    work_dir = _work_dir(manifest)
    path = _input_file(source, work_dir)
    report = _core.validate(path, limits=_core.Limits(max_requests=_UNSPLIT.max_requests, max_bytes=_UNSPLIT.max_bytes,
                                                      max_line_bytes=limits.max_line_bytes))
    report.raise_for_errors()
    if report.num_requests == 0:
        raise ValueError(f"{path}: no requests to run")
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
    return plan


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
    from .results import read_results

    ids = [p.batch_id for p in plan.parts if p.batch_id]
    batches = wait_all(client.batches.retrieve, ids, poll_interval=poll_interval, timeout=timeout, progress=progress)
    files: list[Path] = []
    work = Path(plan.work_dir)
    for b in batches:
        for kind, file_id in (("output", b.output_file_id), ("errors", b.error_file_id)):
            if file_id:
                files.append(client.files.download(file_id, work / f"{b.id}.{kind}.jsonl"))
    inputs = [Path(p.path) for p in plan.parts]
    # Remembered for retry_failed(results) without inputs (while the results live, their
    # work directory does too).
    client._last_inputs = inputs  # type: ignore[attr-defined]
    if plan.owns_work_dir:
        # No manifest: nothing to resume, so the work files go when the results do.
        from .results import _read_owned

        return _read_owned(files, inputs, work)
    return read_results(*files, inputs=inputs)


def retry_failed(client: Client, results: Any, *, inputs: Any = None, **run_options: Any) -> Any:
    """Runs again only the requests that failed in ``results``, as a new batch.

    The requests are taken from ``inputs`` (a request file, a builder, or a run's manifest
    path) or, by default, from the last ``run``/``resume`` this client made.
    """
    import json

    failed = set(results.failed.custom_ids)
    if not failed:
        return results.failed
    files = _retry_sources(client, inputs)
    work = Path(tempfile.mkdtemp(prefix="fastrouter-batch-retry-"))
    retry_path = work / "retry.jsonl"
    found = 0
    with open(retry_path, "wb") as out:
        for path in files:
            with open(path, "rb") as f:
                for raw in f:
                    if not raw.strip():
                        continue
                    try:
                        cid = json.loads(raw.lstrip(b"\xef\xbb\xbf")).get("custom_id")
                    except ValueError:
                        continue
                    if cid in failed:
                        out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                        found += 1
    if found < len(failed):
        missing = len(failed) - found
        raise ValueError(f"{missing} failed request(s) are not in the inputs given; pass inputs=the request file")
    try:
        return client.run(retry_path, **run_options)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _retry_sources(client: Client, inputs: Any) -> list[Path]:
    if inputs is None:
        last = getattr(client, "_last_inputs", None)
        if not last:
            raise ValueError("retry_failed needs the requests: pass inputs=(request file, builder or manifest)")
        return list(last)
    if isinstance(inputs, _core.BatchBuilder):
        path = Path(tempfile.mkdtemp(prefix="fastrouter-batch-retry-")) / "inputs.jsonl"
        inputs.write(path, validate=False)
        return [path]
    path = Path(inputs)
    if path.suffix == ".json":
        return [Path(p.path) for p in Manifest.load(path).parts]
    return [path]
