"""Results as DataFrame columns: the parsed fields of a ``response_format`` model (typed by
the model's annotations: nullable ints, floats and booleans, so a row that failed is a
missing value, not a float NaN that turns the column's ints into floats), and
``results.join(df)``. pandas and polars are imported only here, only when asked for."""

from __future__ import annotations

import types
import typing
from typing import TYPE_CHECKING, Any

from ._structured import Parser

if TYPE_CHECKING:
    from .results import BatchResults

#: What a field's annotation becomes: (pandas dtype, polars dtype name).
_SCALARS: dict[type, tuple[str, str]] = {
    bool: ("boolean", "Boolean"),
    int: ("Int64", "Int64"),
    float: ("Float64", "Float64"),
    str: ("object", "Utf8"),
}


def _scalar(annotation: Any) -> type | None:
    """``int``, ``float``, ``bool`` or ``str`` for an annotation that is one of them (or
    ``Optional`` of one), else None (lists, models, literals: kept as Python objects)."""
    if annotation in _SCALARS:
        return typing.cast(type, annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and args[0] in _SCALARS:
            return typing.cast(type, args[0])
    return None


def parsed_columns(results: BatchResults, taken: set[str]) -> dict[str, tuple[list[Any], type | None]]:
    """``{column: (values, scalar type)}``: each model field (a name in ``taken`` gets a
    ``parsed_`` prefix), then ``parse_error``; empty without a parser."""
    parser = results._set.parser
    if not isinstance(parser, Parser) or not parser:
        return {}
    fields: dict[str, type | None] = {}
    for model in parser.models():
        for name, info in model.model_fields.items():  # type: ignore[attr-defined]
            if name not in fields:
                fields[name] = _scalar(info.annotation)
    names = {f: (f"parsed_{f}" if f in taken else f) for f in fields}
    values: dict[str, list[Any]] = {f: [] for f in fields}
    errors: list[Any] = []
    for r in results:
        obj = r.parsed
        errors.append(r.parse_error)
        for f in fields:
            values[f].append(getattr(obj, f, None) if obj is not None else None)
    out: dict[str, tuple[list[Any], type | None]] = {names[f]: (values[f], fields[f]) for f in fields}
    out["parse_error"] = (errors, str)
    return out


def _string_dtype(pd: Any) -> Any:
    """What pandas makes of a column of str by itself (asked, not guessed from its version
    and options): its ``str`` dtype in pandas 3, object in pandas 2 by default."""
    return pd.Series(["text"]).dtype


def _text_array(pd: Any, np: Any, values: list[Any] | None, dtype: Any, rows: int) -> Any:
    """A pandas array of ``dtype`` from str values (the dtype's missing value where missing),
    or, for a column without any value (None), object of None: as pandas makes both."""
    if values is None:
        return pd.array(np.full(rows, None, dtype=object), dtype=object)
    # (fromiter: each item as one object, without numpy looking into it.)
    data = np.fromiter(values, dtype=object, count=rows)
    if isinstance(dtype, pd.StringDtype) and dtype.storage == "python":
        try:
            return pd.arrays.StringArray(data, dtype=dtype)  # checks the values, copies nothing
        except (TypeError, ValueError):
            pass  # a pandas whose StringArray takes no dtype: convert as below
    return pd.array(data, dtype=dtype)


def pandas_columns(results: BatchResults, at: bytes | None, with_custom_id: bool) -> dict[str, Any]:
    """``{column: pandas array}`` of ``to_pandas()`` (parsed fields aside): in the results'
    order, or the rows ``at`` (``positions_of``'s int64 array in bytes; -1: a row with
    every value missing). Numbers and booleans come from Rust as arrays, not a Python
    object per value; a boolean column with a missing row is the nullable ``boolean``."""
    import numpy as np
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]

    from .results import COLUMNS

    text = _string_dtype(pd)
    # Missing text as the dtype's own missing value (NaN for pandas' str), made in Rust.
    missing = text.na_value if isinstance(text, pd.StringDtype) else None
    columns = results._set.frame_columns(at=at, missing=missing, with_custom_id=with_custom_id)
    rows = len(results) if at is None else len(at) // 8
    out: dict[str, Any] = {}
    for name in [n for n in [*COLUMNS, "cached"] if n in columns]:
        column = columns[name]
        if not isinstance(column, tuple):
            out[name] = _text_array(pd, np, column, text, rows)
            continue
        data, absent = column
        mask = np.frombuffer(absent, dtype=np.bool_)
        if name in ("ok", "cached"):
            flags = np.frombuffer(data, dtype=np.bool_)
            out[name] = pd.arrays.BooleanArray(flags.copy(), mask.copy()) if mask.any() else flags.copy()
        else:
            out[name] = pd.arrays.IntegerArray(np.frombuffer(data, dtype=np.int64).copy(), mask.copy())
    return out


def parsed_pandas(results: BatchResults, taken: set[str]) -> dict[str, Any]:
    """``{column: pandas array}`` of the parsed fields (see ``parsed_columns``), in the
    results' order."""
    import numpy as np
    import pandas as pd

    out: dict[str, Any] = {}
    for name, (values, kind) in parsed_columns(results, taken).items():
        if kind is None:
            out[name] = pd.array(np.fromiter(values, dtype=object, count=len(values)), dtype=object)
        else:
            out[name] = pd.array(values, dtype=_SCALARS[kind][0])
    return out


def polars_columns(results: BatchResults, at: bytes | None, with_custom_id: bool) -> list[Any]:
    """``pandas_columns`` for polars: the columns of ``to_polars()`` (parsed fields aside) as
    Series, the arrays taken through memoryviews (polars needs no numpy)."""
    import polars as pl

    from .results import COLUMNS

    columns = results._set.frame_columns(at=at, missing=None, with_custom_id=with_custom_id)
    rows = len(results) if at is None else len(at) // 8
    out = []
    for name in [n for n in [*COLUMNS, "cached"] if n in columns]:
        column = columns[name]
        if not isinstance(column, tuple):
            out.append(pl.Series(name, [None] * rows if column is None else column, dtype=pl.Utf8))
            continue
        data, absent = column
        flags = name in ("ok", "cached")
        values = pl.Series(name, memoryview(data).cast("?" if flags else "q"), dtype=pl.Boolean if flags else pl.Int64)
        if 1 in absent:
            values = values.set(pl.Series(memoryview(absent).cast("?"), dtype=pl.Boolean), None)
        out.append(values)
    return out


def parsed_polars(results: BatchResults, taken: set[str]) -> list[Any]:
    """The parsed fields (see ``parsed_columns``) as polars Series, in the results' order."""
    import polars as pl

    columns = []
    for name, (values, kind) in parsed_columns(results, taken).items():
        if kind is None:
            values = [v.model_dump() if hasattr(v, "model_dump") else v for v in values]
            columns.append(pl.Series(name, values, strict=False))
        else:
            columns.append(pl.Series(name, values, dtype=getattr(pl, _SCALARS[kind][1])))
    return columns


def _keys(df: Any, on: str | None, polars: bool) -> list[str]:
    """The custom_id each row of ``df`` had: its ``on`` value as ``from_dataframe`` wrote
    it (whole floats as ``10``), or ``row-<position>``."""
    height = df.height if polars else len(df)
    if on is None:
        return [f"row-{i}" for i in range(height)]
    if on not in list(df.columns):
        raise KeyError(f"join(): the frame has no column {on!r} (columns: {', '.join(map(str, df.columns))})")
    column = df[on]
    values = column.to_list() if polars else column.tolist()
    if _is_text(column, polars):
        return typing.cast(list[str], values)  # the custom_ids as they were (checked as str by the lookup)
    present = [v for v in values if v is not None and v == v]
    whole = bool(present) and all(isinstance(v, float) and v.is_integer() for v in present)
    return [str(int(v)) if whole and isinstance(v, float) and v == v else str(v) for v in values]


def _is_text(column: Any, polars: bool) -> bool:
    """A column of str only (no missing values): its values are the custom_ids as written."""
    if polars:
        import polars as pl

        return bool(column.dtype == pl.Utf8 and column.null_count() == 0)
    from pandas.api.types import is_string_dtype  # type: ignore[import-untyped, unused-ignore]

    # Given the column (not its dtype), pandas checks an object column's values are all str.
    return bool(not column.isna().any() and is_string_dtype(column))


def join(results: BatchResults, df: Any, on: str | None, suffix: str) -> Any:
    if not hasattr(df, "columns"):
        raise TypeError(f"join() takes a pandas or polars DataFrame, got {type(df).__name__}")
    polars = hasattr(df, "iter_rows")
    keys = _keys(df, on, polars)
    # Each row's result position: in order already (results of run(df), or read with
    # inputs=), else looked up in the results' own index (-1: none).
    in_order = (
        len(results) == len(keys) and (not keys or results[0].custom_id == keys[0]) and results.custom_ids == keys
    )
    # (positions_of gives an int64 array in bytes: numpy and polars take it as it is.)
    at = None if in_order else results._set.positions_of(keys)
    joined = _join_polars(results, at, len(keys)) if polars else _join_pandas(results, at)
    return _beside(df, joined, suffix, polars)


def _join_pandas(results: BatchResults, at: bytes | None) -> dict[str, Any]:
    """``{column: pandas array}`` of the results in the frame's order (``at``: the rows'
    positions; None: the results are in that order)."""
    import numpy as np

    columns = pandas_columns(results, at, with_custom_id=False)
    parsed = parsed_pandas(results, set(columns))
    if parsed and at is not None:
        where = np.frombuffer(at, dtype=np.int64)
        # A row without a result: None in an object column (as a failed row has), else NA.
        parsed = {
            name: values.take(
                where, allow_fill=True, fill_value=None if values.dtype == object else values.dtype.na_value
            )
            for name, values in parsed.items()
        }
    return {**columns, **parsed}


def _join_polars(results: BatchResults, at: bytes | None, rows: int) -> Any:
    """``_join_pandas`` for polars: a DataFrame of the results in the frame's order."""
    import polars as pl

    series = polars_columns(results, at, with_custom_id=False)
    parsed = parsed_polars(results, {s.name for s in series})
    if parsed and at is not None:
        where = pl.Series(memoryview(at).cast("q"), dtype=pl.Int64)
        where = where.set(where < 0, None).cast(pl.UInt32)  # -1: no result, a missing value
        parsed = [s.gather(where) if len(s) else pl.Series(s.name, [None] * rows, s.dtype) for s in parsed]
    return pl.DataFrame([*series, *parsed])


def _beside(df: Any, joined: Any, suffix: str, polars: bool) -> Any:
    """``df`` with the joined columns after its own (a name it has already gets ``suffix``)."""
    if polars:
        import polars as pl

        rename = {c: c + suffix for c in joined.columns if c in df.columns}
        return pl.concat([df, joined.rename(rename)], how="horizontal")
    return df.assign(**{c + suffix if c in df.columns else c: v for c, v in joined.items()})
