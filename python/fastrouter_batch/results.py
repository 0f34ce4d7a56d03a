"""A batch's results: ``read_results(output, errors, inputs=...)`` gives ``BatchResults``,
one ``Result`` per request; ``read_texts(output, errors)`` gives just ``{custom_id: text}``.

The files are parsed in Rust (``_core.read_results``), the GIL released; this module
resolves ``inputs`` and builds DataFrames (pandas and polars are optional extras, imported
only when asked for).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

from . import _core
from ._core import BatchResults, Result
from .types import Batch

__all__ = ["BatchResults", "Result", "read_results", "read_texts"]

PathOrBytes = Union[str, "os.PathLike[str]", bytes, bytearray]
Inputs = Union[
    str,
    "os.PathLike[str]",
    bytes,
    _core.BatchBuilder,
    Iterable[Union[str, "os.PathLike[str]", _core.BatchRequest, Mapping[str, Any]]],
]

COLUMNS = (
    "custom_id",
    "ok",
    "status_code",
    "text",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "error_code",
    "error_message",
)


def _inputs(inputs: Inputs | None) -> list[Any] | None:
    """``inputs`` as what the reader takes: custom_ids (str) and request files (os.PathLike
    or bytes), in order. A lone str is a path; in a list, a str is a custom_id."""
    if inputs is None:
        return None
    if isinstance(inputs, (str, os.PathLike)):
        return [Path(inputs)]
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        return [bytes(inputs)]
    if isinstance(inputs, _core.BatchBuilder):
        return [inputs.to_bytes()]
    out: list[Any] = []
    for item in inputs:
        if isinstance(item, (str, os.PathLike)):
            out.append(item)
        elif isinstance(item, (bytes, bytearray)):
            out.append(bytes(item))
        elif isinstance(item, _core.BatchBuilder):
            out.append(item.to_bytes())
        elif isinstance(item, _core.BatchRequest):
            out.append(item.custom_id)
        elif isinstance(item, Mapping) and isinstance(item.get("custom_id"), str):
            out.append(item["custom_id"])
        else:
            raise TypeError(
                "inputs: expected custom_ids (str), request files (pathlib.Path or bytes), "
                f"BatchRequests or request dicts, got {type(item).__name__}"
            )
    return out


def read_results(*paths: PathOrBytes, inputs: Inputs | None = None) -> BatchResults:
    """Reads output and error files (paths, or their bytes) into one ``BatchResults``.

    Lines may come in any order, in any of the files. ``inputs`` (the request file, a
    ``BatchBuilder``, a list of request files as ``pathlib.Path``, or a list of custom_ids)
    makes iteration follow the requests' order; otherwise it follows the files' order.
    A line that is not a result line raises ``ValueError`` naming its file and line.
    """
    return _core.read_results(list(paths), inputs=_inputs(inputs))


def read_texts(*paths: PathOrBytes) -> dict[str, str | None]:
    """``{custom_id: assistant text}`` from output and error files (paths, or their bytes).

    The lightest way to the answers: nothing but the dict is kept (its peak memory is the
    dict itself), and it is faster than ``read_results(...).texts()``. A failed request, or
    one whose answer has no text (an embedding), maps to None. Keys follow the files'
    order; a custom_id that appears twice keeps its last line's text. Use
    ``read_results`` for errors, usage, models, bodies or the requests' order.
    """
    return _core.read_texts(list(paths))


def _read_owned(paths: list[Path], inputs: Inputs | None, directory: str | os.PathLike[str]) -> BatchResults:
    """``read_results`` for downloaded files: ``directory`` goes when the results do."""
    return _core.read_results(paths, inputs=_inputs(inputs), owned_dir=directory)


def _finished(batch_or_id: Batch | str, retrieve: Any) -> Batch:
    """For ``batches.results``: the batch, fetched (with ``retrieve``, when given) if given
    by id or without result files yet. It must have finished."""
    batch = batch_or_id
    if retrieve is not None and not (isinstance(batch, Batch) and (batch.output_file_id or batch.error_file_id)):
        batch = retrieve(batch.id if isinstance(batch, Batch) else batch)
    if not isinstance(batch, Batch):
        raise TypeError(f"batches.results() takes a Batch or a batch id, not {type(batch_or_id).__name__}")
    if batch.output_file_id or batch.error_file_id:
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


def _result_files(batch: Batch, directory: str) -> list[tuple[Path, str]]:
    """Where ``batches.results`` downloads the batch's output and error files."""
    return [
        (Path(directory) / f"{batch.id}.{kind}.jsonl", file_id)
        for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id))
        if file_id
    ]


def _to_pandas(results: BatchResults) -> Any:
    try:
        import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    except ImportError as e:
        raise ImportError("BatchResults.to_pandas() needs pandas: pip install 'fastrouter-batch[pandas]'") from e
    cols = results.to_columns()
    ints = ("status_code", "prompt_tokens", "completion_tokens")
    data = {name: pd.array(cols[name], dtype="Int64") if name in ints else cols[name] for name in COLUMNS}
    frame = pd.DataFrame(data, columns=list(COLUMNS))
    frame["ok"] = frame["ok"].astype(bool)
    return frame


def _to_polars(results: BatchResults) -> Any:
    try:
        import polars as pl
    except ImportError as e:
        raise ImportError("BatchResults.to_polars() needs polars: pip install 'fastrouter-batch[polars]'") from e
    cols = results.to_columns()
    schema = {
        "custom_id": pl.Utf8,
        "ok": pl.Boolean,
        "status_code": pl.Int64,
        "text": pl.Utf8,
        "model": pl.Utf8,
        "prompt_tokens": pl.Int64,
        "completion_tokens": pl.Int64,
        "error_code": pl.Utf8,
        "error_message": pl.Utf8,
    }
    return pl.DataFrame({name: cols[name] for name in COLUMNS}, schema=schema)
