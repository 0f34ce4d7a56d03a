"""``BatchBuilder`` with constructors from rows: records (dicts) or a DataFrame.

Per row: the prompt, the system message, the model and the provider are ``str.format``
templates over the row's fields (or functions of the row); any body parameter can come
from a column (``max_tokens=col("budget")``) or a function of the row; ``response_format``
is a pydantic model (its JSON schema, strict where it can be) and ``Result.parsed`` gives
the model instance back. A DataFrame whose templates are plain ``{column}`` fields goes
through a columnar fast path (lines written in Rust, no per-row Python); anything else
(functions, format specs, missing values to report) goes row by row.
"""

from __future__ import annotations

import json
import os
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import _core
from ._structured import Parser, as_response_format

Template = str | Callable[[Mapping[str, Any]], str]

#: Anthropic needs max_tokens on every chat request: every chat request the package builds
#: for it (``BatchRequest.chat``, ``add_chat``, ``from_records`` / ``from_dataframe``,
#: ``client.run(df)``) gets this unless ``max_tokens`` or ``max_completion_tokens`` is
#: given. Raw dicts (``builder.add(dict)``) are written as given.
DEFAULT_ANTHROPIC_MAX_TOKENS: int = _core.DEFAULT_ANTHROPIC_MAX_TOKENS


class Column:
    """A body parameter taken from a column of each row: ``max_tokens=col("budget")``. A
    missing value (None, NaN, NA) leaves the parameter out of that row's body."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"col() takes a column name (str), got {type(name).__name__}")
        self.name = name

    def __repr__(self) -> str:
        return f"col({self.name!r})"


def col(name: str) -> Column:
    """``param=col("name")``: the parameter's value comes from each row's ``name`` field."""
    return Column(name)


_BRACES_HINT = "for literal braces in a template, double them: {{ and }}"
_FORMATTER = string.Formatter()
_FIELD_NAME = re.compile(r"[.\[]")


class TemplateFieldError(KeyError):
    """A template names a field the row does not have. (A KeyError whose message reads as
    text: KeyError's own ``str()`` is a repr.)"""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _is_missing(value: Any) -> bool:
    """None, NaN (float or numpy), pandas' NA and NaT."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    if isinstance(value, (str, int, bytes)):
        return False
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)
    except Exception:  # arrays, NA-like objects without a truth value
        return False


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as Python numbers and lists (what JSON is made of)."""
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _template_fields(template: str, what: str) -> list[str]:
    """The row fields a ``str.format`` template reads (``{text}``, ``{a.b}`` → ``a``)."""
    if not isinstance(template, str):
        raise TypeError(f"{what} must be a str.format template or a function of the row, got {type(template).__name__}")
    names: list[str] = []
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError as e:
        raise ValueError(
            f"the {what} template {template!r} is not a valid format string ({e}); {_BRACES_HINT}"
        ) from None
    for _, field, spec, _ in parsed:
        if field is None:
            continue
        name = _FIELD_NAME.split(field, maxsplit=1)[0]
        if name == "" or name.isdigit():
            raise ValueError(
                f"the {what} template {template!r} has a positional field {{{field}}}: templates name "
                f"the row's fields, as in {{text}}; {_BRACES_HINT}"
            )
        if name not in names:
            names.append(name)
        if spec and "{" in spec:
            names.extend(n for n in _template_fields(spec, what) if n not in names)
    return names


def _render(template: Template, fields: list[str], row: Mapping[str, Any], what: str, index: int) -> str:
    if callable(template):
        return str(template(row))
    for name in fields:
        if name not in row:
            raise TemplateFieldError(
                f"row {index}: the {what} template {template!r} names the field {name!r}, which the row does not "
                f"have (columns: {', '.join(map(str, row))}); {_BRACES_HINT}"
            )
        if _is_missing(row[name]):
            raise ValueError(
                f"row {index}: column {name!r} has a missing value ({row[name]!r}), which the {what} "
                f"template uses; drop or fill the row first (e.g. df.dropna(subset=[{name!r}]))"
            )
    try:
        return template.format_map(row)
    except (KeyError, IndexError, AttributeError, TypeError, ValueError) as e:
        # e.g. "{score:.2f}" over a str, "{a[x]}" without that key: the same kind of error, with the row.
        kind = next(
            k
            for k in (TemplateFieldError, IndexError, AttributeError, TypeError, ValueError)
            if isinstance(e, k.__mro__[1] if k is TemplateFieldError else k)
        )
        raise kind(f"row {index}: the {what} template {template!r} cannot be filled: {e}") from None


def _id_text(value: Any) -> str:
    return str(value)


def _integral_id_text(value: Any) -> str:
    """Ids from a float column whose values are all whole numbers: ``10``, not ``10.0``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class BatchBuilder(_core.BatchBuilder):
    """Builds a batch file in memory (see ``_core.BatchBuilder``), plus ``from_records`` and
    ``from_dataframe`` for one chat request per row, and ``response_format=`` a pydantic
    model (kept with the builder, so the results of running it parse into the model)."""

    @property
    def response_parser(self) -> Parser:
        """The pydantic models this builder's requests asked for, by custom_id (what
        ``Result.parsed`` validates with)."""
        parser: Parser | None = getattr(self, "_fb_parser", None)
        if parser is None:
            parser = Parser()
            self._fb_parser = parser
        return parser

    def _remember(self, custom_id: str, model: type, *, first: bool | None = None) -> None:
        """Records the model of a request just added. It becomes the builder's default only
        for its first request (``first``: the request(s) just added are all there is), so
        requests added before without a model are never parsed with it."""
        parser = self.response_parser
        if first is None:
            first = len(self) == 1
        if parser.default is None and not parser.by_id and first:
            parser.default = model
        elif parser.default is not model:
            parser.by_id[custom_id] = model

    def add_chat(
        self,
        custom_id: str,
        model: str,
        messages: Any,
        *,
        provider: str | None = None,
        response_format: Any = None,
        **params: Any,
    ) -> None:
        """Adds a chat request (see ``_core.BatchBuilder.add_chat``). ``response_format``: a
        pydantic model class (its JSON schema is written, strict where it can be, and
        ``Result.parsed`` gives the instance back) or a ``response_format`` dict."""
        fmt, parse_with = as_response_format(response_format)
        if fmt is not None:
            params["response_format"] = fmt
        super().add_chat(custom_id, model, messages, provider=provider, **params)
        if parse_with is not None:
            self._remember(custom_id, parse_with)

    def extend(self, requests: Any) -> None:
        """Adds another builder's requests (and its response models), or every request of
        an iterable (BatchRequests or dicts)."""
        before = len(self)
        super().extend(requests)
        other: Parser | None = getattr(requests, "_fb_parser", None)
        if not other:
            return
        mine = self.response_parser
        if before == 0 and not mine:
            self._fb_parser = Parser(other.default, dict(other.by_id))
            return
        if other.default is not None and other.default is not mine.default:
            for line in requests:  # the other builder's requests that used its default
                cid = json.loads(line)["custom_id"]
                if cid not in other.by_id:
                    mine.by_id[cid] = other.default
        mine.by_id.update(other.by_id)

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        prompt: Template,
        model: Template,
        system: Template | None = None,
        custom_id: str | Callable[[Mapping[str, Any]], str] | None = None,
        provider: Template | None = None,
        response_format: Any = None,
        **params: Any,
    ) -> BatchBuilder:
        """One chat request per record.

        ``prompt`` / ``system`` / ``model`` / ``provider``: a ``str.format`` template over
        the record's fields (``"Summarise: {text}"``, ``model="{model}"``) or a function
        of the record. ``custom_id``: the name of a field holding it, a function, or None
        for ``row-0``, ``row-1``, ... ``response_format``: a pydantic model class (or a
        function of the record giving one), or a response_format dict. Extra keyword
        arguments (``max_tokens``, ``temperature``...) go in every body; a value
        ``col("field")`` or a function of the record makes it per row (a missing value
        leaves it out). Anthropic models get ``max_tokens=1024``
        (``DEFAULT_ANTHROPIC_MAX_TOKENS``) unless given.

        A missing value (None, NaN, pandas' NA) in a field a template uses, or in the
        custom_id field, raises ValueError naming the row and the field.
        """
        builder = cls()
        builder._add_rows(
            records,
            _RowSpec(prompt, model, system, custom_id, provider, response_format, params),
            id_text=_id_text,
        )
        return builder

    def _add_rows(self, records: Iterable[Mapping[str, Any]], spec: _RowSpec, id_text: Callable[[Any], str]) -> None:
        """The row-by-row path: every feature, every error named by row."""
        prompt_fields = [] if callable(spec.prompt) else _template_fields(spec.prompt, "prompt")
        system_fields = [] if spec.system is None or callable(spec.system) else _template_fields(spec.system, "system")
        model_fields = [] if callable(spec.model) else _template_fields(spec.model, "model")
        provider_fields = (
            [] if spec.provider is None or callable(spec.provider) else _template_fields(spec.provider, "provider")
        )
        fixed, per_row = spec.split_params()
        per_row_format = callable(spec.response_format) and not isinstance(spec.response_format, type)
        fmt_fixed, parse_fixed = (None, None) if per_row_format else spec.fixed_format()
        if fmt_fixed is not None:
            fixed["response_format"] = fmt_fixed
        for i, row in enumerate(records):
            if not isinstance(row, Mapping):
                raise TypeError(f"row {i}: expected a mapping (dict), got {type(row).__name__}")
            cid = _row_id(spec.custom_id, row, i, id_text)
            messages = []
            if spec.system is not None:
                messages.append({"role": "system", "content": _render(spec.system, system_fields, row, "system", i)})
            messages.append({"role": "user", "content": _render(spec.prompt, prompt_fields, row, "prompt", i)})
            model = _render(spec.model, model_fields, row, "model", i)
            provider = None if spec.provider is None else _render(spec.provider, provider_fields, row, "provider", i)
            body = dict(fixed)
            for key, source in per_row.items():
                if isinstance(source, Column):
                    if source.name not in row:
                        raise TemplateFieldError(
                            f"row {i}: parameter {key!r} is col({source.name!r}), a field the row does not have "
                            f"(columns: {', '.join(map(str, row))})"
                        )
                    value = row[source.name]
                else:
                    value = source(row)
                if not _is_missing(value):
                    body[key] = _column_value(value) if isinstance(source, Column) else _plain(value)
            parse_with = parse_fixed
            if per_row_format:
                fmt, parse_with = as_response_format(spec.response_format(row), f"row {i}: response_format(row)")
                if fmt is not None:
                    body["response_format"] = fmt
            _core.BatchBuilder.add_chat(self, cid, model, messages, provider=provider, **body)
            if parse_with is not None:
                self._remember(cid, parse_with)

    @classmethod
    def from_dataframe(
        cls,
        df: Any,
        *,
        prompt: Template,
        model: Template,
        system: Template | None = None,
        custom_id: str | Callable[[Mapping[str, Any]], str] | None = None,
        provider: Template | None = None,
        response_format: Any = None,
        **params: Any,
    ) -> BatchBuilder:
        """``from_records`` over a pandas or polars DataFrame's rows (column names as fields).

        A custom_id column of whole numbers gives ``"10"``, also when pandas has made it a
        float column (``10.0``); a missing id or a missing value a template uses raises
        ValueError naming the row and column. Plain ``{column}`` templates, ``col()``
        parameters and one response_format go through the columnar fast path."""
        if not hasattr(df, "columns"):
            kind = type(df).__name__
            hint = (
                " (for a Series, use series.to_frame() and name its column in the template)" if kind == "Series" else ""
            )
            raise TypeError(f"from_dataframe expects a pandas or polars DataFrame, got {kind}{hint}")
        if not (hasattr(df, "iter_rows") or hasattr(df, "to_dict")):
            raise TypeError(f"from_dataframe expects a pandas or polars DataFrame, got {type(df).__name__}")
        spec = _RowSpec(prompt, model, system, custom_id, provider, response_format, params)
        id_text = _integral_id_text if isinstance(custom_id, str) and _whole_floats(df, custom_id) else _id_text
        builder = cls()
        if not _columnar(builder, df, spec, id_text):
            rows: Iterable[Mapping[str, Any]] = (
                df.iter_rows(named=True) if hasattr(df, "iter_rows") else df.to_dict("records")
            )
            builder._add_rows(rows, spec, id_text)
        return builder

    @classmethod
    def from_openai_file(
        cls, path: str | os.PathLike[str], *, provider: str = "openai", limits: _core.Limits | None = None
    ) -> BatchBuilder:
        """A builder holding the requests of a batch file in OpenAI's own format (no
        ``provider``, bare model names such as ``gpt-4o-mini``), in FastRouter's: each line
        gets ``"provider": provider`` and its model ``provider/model``. Lines already in
        FastRouter's format are taken as they are. ``builder.write(path)`` saves the result
        (``fastrouter-batch convert FILE --provider openai -o OUT`` does the same). Reading
        stops past ``limits`` (8 MiB per line, 8 GiB in all by default; a ``Limits`` given
        sets both, its ``max_bytes`` 200 MB unless given) with ValueError naming the line
        (``line_too_large``, ``file_too_large``)."""
        from ._convert import iter_converted

        builder = cls()
        builder.extend(iter_converted(path, provider, limits))
        return builder


def _column_value(value: Any) -> Any:
    """A ``col()`` parameter's value: a whole float as an int (pandas makes an int column
    with a missing value a float one: ``max_tokens`` 5.0 must go out as 5)."""
    value = _plain(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _whole_floats(df: Any, name: str) -> bool:
    """A float column whose present values are all whole numbers (ids pandas made floats)."""
    if name not in list(df.columns):
        return False
    column = df[name]
    if hasattr(df, "iter_rows"):  # polars
        if not column.dtype.is_float():
            return False
    elif getattr(column.dtype, "kind", None) != "f":
        return False
    values = [v for v in column if not _is_missing(v)]
    return bool(values) and all(isinstance(v, float) and v.is_integer() for v in values)


class _RowSpec:
    """What ``from_records`` / ``from_dataframe`` make of each row."""

    def __init__(
        self,
        prompt: Template,
        model: Template,
        system: Template | None,
        custom_id: str | Callable[[Mapping[str, Any]], str] | None,
        provider: Template | None,
        response_format: Any,
        params: dict[str, Any],
    ) -> None:
        if not isinstance(model, str) and not callable(model):
            raise TypeError(
                f"model must be a str (a template such as '{{model}}' for a column) or a function of the row, "
                f"got {type(model).__name__}"
            )
        if provider is not None and not isinstance(provider, str) and not callable(provider):
            raise TypeError(f"provider must be a str or a function of the row, got {type(provider).__name__}")
        if "messages" in params:
            raise TypeError("from_records/from_dataframe make the messages from prompt= and system=; not messages=")
        self.prompt, self.model, self.system, self.custom_id = prompt, model, system, custom_id
        self.provider, self.response_format, self.params = provider, response_format, params

    def split_params(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(parameters the same in every body, parameters per row: ``col()`` or functions)."""
        fixed: dict[str, Any] = {}
        per_row: dict[str, Any] = {}
        for k, v in self.params.items():
            if isinstance(v, Column) or (callable(v) and not isinstance(v, type)):
                per_row[k] = v
            else:
                fixed[k] = _plain(v)
        return fixed, per_row

    def fixed_format(self) -> tuple[Any, type | None]:
        return as_response_format(self.response_format)


def _row_id(
    custom_id: str | Callable[[Mapping[str, Any]], str] | None, row: Mapping[str, Any], i: int, id_text: Any
) -> str:
    if custom_id is None:
        return f"row-{i}"
    if callable(custom_id):
        return str(custom_id(row))
    if custom_id not in row:
        raise KeyError(f"row {i}: no field {custom_id!r} for custom_id")
    value = row[custom_id]
    if _is_missing(value):
        raise ValueError(
            f"row {i}: column {custom_id!r} (the custom_id) has a missing value ({value!r}); every request needs an id"
        )
    return str(id_text(value))


def _plain_fields(template: str) -> list[str | tuple[str]] | None:
    """A template as pieces, literal text (str) and fields (``(name,)``), when every field
    is a plain ``{name}`` (no format spec, conversion, attribute or index); else None."""
    pieces: list[str | tuple[str]] = []
    try:
        parsed = list(_FORMATTER.parse(template))
    except ValueError:
        return None
    for literal, field, spec, conversion in parsed:
        if literal:
            pieces.append(literal)
        if field is None:
            continue
        if spec or conversion or not field.isidentifier():
            return None
        pieces.append((field,))
    return pieces


class _Frame:
    """Columns of a pandas or polars DataFrame as Python lists, and whether any is missing."""

    def __init__(self, df: Any) -> None:
        self.df = df
        self.polars = hasattr(df, "iter_rows")
        self.names = {str(c) for c in df.columns}
        self.height = df.height if self.polars else len(df)
        self._missing: dict[str, bool] = {}

    def has_missing(self, name: str) -> bool:
        if name not in self._missing:
            s = self.df[name]
            if self.polars:
                missing = s.null_count() > 0 or bool(s.dtype.is_float() and s.is_nan().any())
            else:
                missing = bool(s.isna().any())
            self._missing[name] = missing
        return self._missing[name]

    def values(self, name: str) -> list[Any]:
        s = self.df[name]
        return list(s.to_list()) if self.polars else list(s.tolist())

    def str_values(self, name: str) -> bool:
        """Whether ``values(name)`` holds only str, known from the dtype when it is a
        string one without missing values (no scan of a 100,000-row list)."""
        s = self.df[name]
        if self.polars:
            import polars as pl

            if s.dtype == pl.Utf8 and not self.has_missing(name):
                return True
        else:
            import pandas as pd  # type: ignore[import-untyped, unused-ignore]

            if isinstance(s.dtype, pd.StringDtype) and not self.has_missing(name):
                return True
        return all(type(v) is str for v in self.values(name))

    def param_values(self, name: str) -> list[Any]:
        """A parameter's column: missing values as None (the key left out), numpy as Python."""
        values = self.values(name)
        if self.has_missing(name):
            values = [None if _is_missing(v) else v for v in values]
        return [None if v is None else _column_value(v) for v in values]


def _columnar(builder: BatchBuilder, df: Any, spec: _RowSpec, id_text: Callable[[Any], str]) -> bool:
    """The fast path: False (nothing added) when the spec needs the row-by-row one."""
    frame = _Frame(df)
    templates: dict[str, list[str | tuple[str]]] = {}
    for what, t in (
        ("prompt", spec.prompt),
        ("system", spec.system),
        ("model", spec.model),
        ("provider", spec.provider),
    ):
        if t is None:
            continue
        if not isinstance(t, str):
            return False
        pieces = _plain_fields(t)
        if pieces is None:
            return False
        for p in pieces:
            if isinstance(p, tuple) and (p[0] not in frame.names or frame.has_missing(p[0])):
                return False  # the row-by-row path names the row and field
        templates[what] = pieces
    fixed, per_row = spec.split_params()
    if any(not isinstance(v, Column) or v.name not in frame.names for v in per_row.values()):
        return False
    if callable(spec.response_format) and not isinstance(spec.response_format, type):
        return False
    cid = spec.custom_id
    if cid is None:
        ids = [f"row-{i}" for i in range(frame.height)]
    elif isinstance(cid, str) and cid in frame.names and not frame.has_missing(cid):
        raw = frame.values(cid)
        ids = raw if frame.str_values(cid) else [id_text(v) for v in raw]
    else:
        return False
    fmt, parse_with = spec.fixed_format()
    if fmt is not None:
        fixed["response_format"] = fmt
    cache: dict[str, list[Any]] = {}

    def column(name: str) -> list[Any]:
        if name not in cache:
            cache[name] = frame.values(name)
        return cache[name]

    def pieces_of(what: str) -> list[Any]:
        return [p if isinstance(p, str) else column(p[0]) for p in templates[what]]

    def per_row_str(what: str) -> Any:
        t = templates.get(what)
        if t is None:
            return None
        if all(isinstance(p, str) for p in t):
            return "".join(p for p in t if isinstance(p, str))
        if len(t) == 1 and isinstance(t[0], tuple):
            values = column(t[0][0])
            return values if frame.str_values(t[0][0]) else [str(v) for v in values]
        parts = pieces_of(what)
        return ["".join(p if isinstance(p, str) else str(p[i]) for p in parts) for i in range(frame.height)]

    builder._add_chat_rows(
        ids,
        per_row_str("model"),
        per_row_str("provider"),
        pieces_of("prompt"),
        None if spec.system is None else pieces_of("system"),
        fixed,
        {k: frame.param_values(v.name) for k, v in per_row.items()},
    )
    if parse_with is not None and ids:
        builder._remember(ids[0], parse_with, first=True)
    return True
