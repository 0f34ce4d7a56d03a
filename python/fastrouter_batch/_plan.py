"""Planning a run: the input (a path, a builder or requests) validated as a whole (an invalid
input raises ``BatchValidationError`` and nothing is uploaded), split into parts the
service accepts, and recorded in a manifest before anything is submitted."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Union

from . import _core
from ._manifest import Manifest, Part
from ._split import split_file

#: Which Anthropic models take which sampling parameters, beyond the built-in table
#: (``validate(..., anthropic_sampling=...)``): a model name pattern → both, either or none.
SamplingTable = Mapping[str, Literal["both", "either", "none"]]

Source = Union[str, "os.PathLike[str]", _core.BatchBuilder, Iterable[_core.BatchRequest | Mapping[str, Any]]]

#: Limits of one batch on the service (the contract): runs split above them.
DEFAULT_LIMITS = _core.Limits()
#: Limits for checking the whole input before splitting: only line-level rules apply.
_UNSPLIT = _core.Limits(max_requests=2**62, max_bytes=2**62)

_RUN_ACCEPTS = "run() takes a path, a BatchBuilder or an iterable of requests"


def kind_of(value: Any) -> str:
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
        raise TypeError(f"{_RUN_ACCEPTS}; got {kind_of(source)} (did you mean [request]?)")
    if isinstance(source, (bytes, bytearray, memoryview)) or not isinstance(source, Iterable):
        raise TypeError(f"{_RUN_ACCEPTS}; got {kind_of(source)}")
    builder = _core.BatchBuilder()
    builder.extend(source)
    return builder


def batch_file(path: Path, what: str) -> Path:
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, f"{what} is a directory, not a batch file", str(path))
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    return path


def work_dir(manifest: str | os.PathLike[str] | None) -> tuple[Path, bool]:
    """The run's work directory, and whether this call made it."""
    if manifest is None:
        return Path(tempfile.mkdtemp(prefix="fastrouter-batch-run-")), True
    d = Path(manifest).with_name(Path(manifest).name + ".parts")
    made = not d.exists()
    d.mkdir(parents=True, exist_ok=True)
    return d, made


def _check_source(source: Source) -> tuple[_core.BatchBuilder | None, Path | None]:
    """The requests in memory (a builder), or the batch file given: TypeError for what
    ``run`` does not take, ValueError for no requests, OSError for a file not there."""
    builder = _as_builder(source)
    given = batch_file(Path(source), "run()'s input") if isinstance(source, (str, os.PathLike)) else None
    if builder is not None and len(builder) == 0:
        raise ValueError("run(): no requests to run (the input is empty)")
    return builder, given


def prepare(
    source: Source,
    *,
    endpoint: str | None,
    metadata: Mapping[str, str] | None,
    manifest: str | os.PathLike[str] | None,
    limits: _core.Limits = DEFAULT_LIMITS,
    anthropic_sampling: SamplingTable | None = None,
    work: tuple[Path, bool] | None = None,
) -> Manifest:
    """Validates the whole input (raising BatchValidationError with the report if it is
    invalid: nothing is uploaded), splits it, and records the plan. ``work`` is the work
    directory made already (see ``work_dir``), else it is made once the input is checked.
    On any error the work directory is removed again (if it was made for this run)."""
    checked = None
    if work is None:
        checked = _check_source(source)  # before anything is made on disk
        work = work_dir(manifest)
    directory, made = work
    try:
        builder, given = checked if checked is not None else _check_source(source)
        if given is not None:
            path = given
        else:
            assert builder is not None
            path = directory / "input.jsonl"
            builder.write(path, validate=False)
        report = _core.validate(
            path,
            limits=_core.Limits(
                max_requests=_UNSPLIT.max_requests, max_bytes=_UNSPLIT.max_bytes, max_line_bytes=limits.max_line_bytes
            ),
            anthropic_sampling=anthropic_sampling,
        )
        report.raise_for_errors()
        if report.num_requests == 0:
            raise ValueError(f"{given if given is not None else 'run()'}: no requests to run")
        url = report.url or "/v1/chat/completions"
        if endpoint is not None and endpoint != url:
            raise ValueError(f"endpoint {endpoint!r} does not match the requests' url {url!r}")
        parts = split_file(path, directory, max_requests=limits.max_requests, max_bytes=limits.max_bytes)
        plan = Manifest(
            path=Path(manifest) if manifest is not None else directory / "manifest.json",
            endpoint=url,
            metadata=dict(metadata) if metadata else None,
            work_dir=str(directory),
            parts=[Part(path=str(p), lines=n, bytes=b) for p, n, b in parts],
        )
        plan.owns_work_dir = manifest is None
        plan.save()
    except BaseException:
        if made:
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return plan
