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


def with_parsed_polars(results: BatchResults, frame: Any) -> Any:
    import polars as pl

    columns = []
    for name, (values, kind) in parsed_columns(results, set(frame.columns)).items():
        if kind is None:
            values = [v.model_dump() if hasattr(v, "model_dump") else v for v in values]
            columns.append(pl.Series(name, values, strict=False))
        else:
            columns.append(pl.Series(name, values, dtype=getattr(pl, _SCALARS[kind][1])))
    return frame.with_columns(columns) if columns else frame


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
    # (positions_of gives an int64 array in bytes: memoryview reads it without numpy.)
    found = b"" if in_order else results._set.positions_of(keys)
    at = range(len(keys)) if in_order else memoryview(found).cast("q")
    if polars:
        import polars as pl

        res = results.to_polars().drop("custom_id")
        taken = pl.Series("i", [None if i < 0 else i for i in at], dtype=pl.UInt32)
        picked = res.select(pl.all().gather(taken)) if len(res) else res.clear(len(at))
        rename = {c: c + suffix for c in picked.columns if c in df.columns}
        return pl.concat([df, picked.rename(rename)], how="horizontal")
    import numpy as np

    # Each column straight in the frame's order (join has the ids already: no custom_id).
    columns = pandas_columns(results, None if in_order else found, with_custom_id=False)
    parsed = parsed_pandas(results, set(columns))
    if parsed and not in_order:
        where = np.frombuffer(found, dtype=np.int64)
        parsed = {name: values.take(where, allow_fill=True) for name, values in parsed.items()}
    columns.update(parsed)
    return df.assign(**{c + suffix if c in df.columns else c: v for c, v in columns.items()})
