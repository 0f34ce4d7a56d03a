"""A batch's results: ``read_results(output, errors, inputs=...)`` gives ``BatchResults``,
one ``Result`` per request; ``read_texts(output, errors)`` gives just ``{custom_id: text}``.

The files are parsed in Rust (``_core.read_results``), the GIL released, into a
``_core.ResultSet``; this module resolves ``inputs`` and wraps the set in ``BatchResults``,
which adds the DataFrames (pandas and polars are optional extras, imported only when asked
for).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Union

from . import _core
from ._core import Result

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


class BatchResults:
    """The results of one or more batches' output and error files: one ``Result`` per line,
    in the requests' order when ``inputs`` gave it.

    ``results["request-1"]`` by custom_id, ``results[0]`` by position; ``succeeded`` and
    ``failed`` are the same results filtered; ``texts()``, ``summary()`` and the DataFrames
    cover them all.
    """

    __slots__ = ("__weakref__", "_set")

    def __init__(self, results: _core.ResultSet) -> None:
        self._set = results

    def __len__(self) -> int:
        return len(self._set)

    def __iter__(self) -> Iterator[Result]:
        return iter(self._set)

    def __getitem__(self, key: str | int) -> Result:
        """``results["request-1"]`` by custom_id (KeyError if absent), ``results[0]`` by position."""
        return self._set[key]

    def __contains__(self, key: object) -> bool:
        return key in self._set

    def get(self, custom_id: str, default: Any = None) -> Any:
        """The result for ``custom_id``, or ``default``."""
        return self._set.get(custom_id, default)

    @property
    def custom_ids(self) -> list[str]:
        """The custom_ids, in iteration order."""
        return self._set.custom_ids

    @property
    def succeeded(self) -> BatchResults:
        """The results that succeeded, in the same order."""
        return BatchResults(self._set.succeeded)

    @property
    def failed(self) -> BatchResults:
        """The results that failed (an error status, or never ran), in the same order.
        (``len(results.failed)`` is ``summary()["failed"]``.)"""
        return BatchResults(self._set.failed)

    def __call__(self) -> BatchResults:
        """``results.failed()`` and ``results.succeeded()`` read as the properties do: the
        same results (``results.failed`` is a property, ``summary()["failed"]`` its count)."""
        return self

    @property
    def missing(self) -> list[str]:
        """Input custom_ids (when ``inputs`` was given) that have no result line."""
        return self._set.missing

    def texts(self) -> dict[str, str | None]:
        """``{custom_id: text}`` for every result (None where there is no text), in order."""
        return self._set.texts()

    def summary(
        self, *, prices: Mapping[str, tuple[float, ...]] | None = None, batch_discount: float = 0.5
    ) -> dict[str, Any]:
        """Counts: total, succeeded, failed, missing; token sums; results per status code and
        per error code; ``cached`` (results from the result cache); tokens per model
        (``by_model``) and per provider (``by_provider``).

        ``prices``: ``{"openai/gpt-4.1": (input_per_million, output_per_million), ...}``,
        the provider's realtime (list) prices, by the requests' model name. Adds ``cost``:
        ``{"batch", "realtime", "saved", "unpriced"}`` and a cost per model and provider;
        batch prices are the realtime ones times ``batch_discount`` (0.5: OpenAI's and
        Anthropic's batch discount), unless a price has four numbers
        ``(input, output, batch_input, batch_output)``. No prices are built in: they change.
        Cached results cost nothing (they were paid for by the run that made them)."""
        from ._costs import add_costs

        out = self._set.summary()
        add_costs(self, out, prices, batch_discount)
        return out

    @property
    def response_parser(self) -> Any:
        """What ``Result.parsed`` validates with (None: nothing)."""
        return self._set.parser

    def with_response_format(self, model: Any) -> BatchResults:
        """The same results, ``Result.parsed`` validating each answer with ``model`` (a
        pydantic model class, or None for none)."""
        from ._structured import Parser, is_model

        if model is not None and not is_model(model):
            raise TypeError(f"with_response_format() takes a pydantic model class, got {type(model).__name__}")
        return BatchResults(self._set.with_parser(None if model is None else Parser(model)))

    def join(self, df: Any, on: str | None = None, *, suffix: str = "_result") -> Any:
        """``df`` with the results next to its rows (pandas or polars, as given): ``text``,
        the parsed fields (with a ``response_format`` model) and ``parse_error``, ``ok``,
        ``error_code`` / ``error_message``, the token counts, ``model``, ``cached``.

        ``on``: the column the custom_ids came from (``from_dataframe(custom_id=...)``),
        keeping its dtype; None matches the rows by position (``row-0``, ``row-1``, ...).
        A row without a result gets missing values; a result column whose name the frame
        already has gets ``suffix``."""
        from ._frames import join

        return join(self, df, on, suffix)

    def to_columns(self) -> dict[str, list[Any]]:
        """The table behind ``to_pandas()`` / ``to_polars()``: column name → list, in order."""
        return self._set.to_columns()

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per result (needs ``fastrouter-batch[pandas]``); with
        a ``response_format`` model, its fields as columns too (see ``_frames``)."""
        try:
            import pandas as pd  # type: ignore[import-untyped, unused-ignore]
        except ImportError as e:
            raise ImportError("BatchResults.to_pandas() needs pandas: pip install 'fastrouter-batch[pandas]'") from e
        from ._frames import pandas_columns, parsed_pandas

        columns = pandas_columns(self, None, with_custom_id=True)
        columns.update(parsed_pandas(self, set(columns)))
        return pd.DataFrame(columns)

    def to_polars(self) -> Any:
        """A polars DataFrame, one row per result (needs ``fastrouter-batch[polars]``); with
        a ``response_format`` model, its fields as columns too."""
        try:
            import polars as pl
        except ImportError as e:
            raise ImportError("BatchResults.to_polars() needs polars: pip install 'fastrouter-batch[polars]'") from e
        from ._frames import parsed_polars, polars_columns

        columns = polars_columns(self, None, with_custom_id=True)
        return pl.DataFrame([*columns, *parsed_polars(self, {s.name for s in columns})])

    def _repr_html_(self) -> str:
        """Notebooks' display: the summary and the first rows as a table."""
        from ._display import results_html

        return results_html(self)

    def __repr__(self) -> str:
        s = self.summary()
        missing = f", missing={s['missing']}" if s["missing"] else ""
        return f"BatchResults(total={s['total']}, succeeded={s['succeeded']}, failed={s['failed']}{missing})"


#: Where the results readers stop: 8 GiB per file (50,000 answers of 160 KiB each), 64 MiB
#: per line. An endless or hostile source ends with ``file_too_large`` / ``line_too_large``.
RESULTS_MAX_BYTES = 8 << 30
RESULTS_MAX_LINE_BYTES = 64 << 20


def read_results(
    *paths: PathOrBytes,
    inputs: Inputs | None = None,
    response_format: Any = None,
    max_bytes: int = RESULTS_MAX_BYTES,
    max_line_bytes: int = RESULTS_MAX_LINE_BYTES,
) -> BatchResults:
    """Reads output and error files (paths, or their bytes) into one ``BatchResults``.

    Lines may come in any order, in any of the files. ``inputs`` (the request file, a
    ``BatchBuilder``, a list of request files as ``pathlib.Path``, or a list of custom_ids)
    makes iteration follow the requests' order; otherwise it follows the files' order.
    A line that is not a result line raises ``ValueError`` naming its file and line, as
    does a file over ``max_bytes`` (``file_too_large``) or a line over ``max_line_bytes``
    (``line_too_large``): reading stops there, whatever the source (a FIFO, a device).
    ``response_format``: a pydantic model class for ``Result.parsed``; by default, the
    models of ``inputs`` when it is a ``BatchBuilder`` made with one.
    """
    core = _core.read_results(list(paths), inputs=_inputs(inputs), max_bytes=max_bytes, max_line_bytes=max_line_bytes)
    results = BatchResults(core)
    if response_format is not None:
        return results.with_response_format(response_format)
    return _with_inputs_parser(results, inputs)


def _with_inputs_parser(results: BatchResults, inputs: Inputs | None) -> BatchResults:
    """The results, ``Result.parsed`` validating with the models of ``inputs`` when it is a
    ``BatchBuilder`` made with ``response_format``."""
    parser = getattr(inputs, "_fb_parser", None)
    return BatchResults(results._set.with_parser(parser)) if parser else results


def read_texts(
    *paths: PathOrBytes, max_bytes: int = RESULTS_MAX_BYTES, max_line_bytes: int = RESULTS_MAX_LINE_BYTES
) -> dict[str, str | None]:
    """``{custom_id: assistant text}`` from output and error files (paths, or their bytes).

    The lightest way to the answers: nothing but the dict is kept (its peak memory is the
    dict itself), and it is faster than ``read_results(...).texts()``. A failed request, or
    one whose answer has no text (an embedding), maps to None. Keys follow the files'
    order; a custom_id that appears twice keeps its last line's text. Use
    ``read_results`` for errors, usage, models, bodies or the requests' order. Stops
    past ``max_bytes`` / ``max_line_bytes`` as ``read_results`` does.
    """
    return _core.read_texts(list(paths), max_bytes=max_bytes, max_line_bytes=max_line_bytes)


def read_owned(paths: list[Path], inputs: Inputs | None, directory: str | os.PathLike[str]) -> BatchResults:
    """``read_results`` for downloaded files: ``directory`` goes when the results do."""
    results = BatchResults(_core.read_results(paths, inputs=_inputs(inputs), owned_dir=directory))
    return _with_inputs_parser(results, inputs)
