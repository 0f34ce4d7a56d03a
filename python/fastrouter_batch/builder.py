"""``BatchBuilder`` with constructors from rows: records (dicts) or a DataFrame."""

from __future__ import annotations

import os
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from . import _core

Template = str | Callable[[Mapping[str, Any]], str]

#: Anthropic needs max_tokens on every chat request; rows get this unless told otherwise.
DEFAULT_ANTHROPIC_MAX_TOKENS = 1024

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
    ``from_dataframe`` for one chat request per row."""

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        prompt: Template,
        model: str,
        system: Template | None = None,
        custom_id: str | Callable[[Mapping[str, Any]], str] | None = None,
        provider: str | None = None,
        **params: Any,
    ) -> BatchBuilder:
        """One chat request per record.

        ``prompt`` / ``system``: a ``str.format`` template over the record's fields
        (``"Summarise: {text}"``) or a function of the record. ``custom_id``: the name of a
        field holding it, a function, or None for ``row-0``, ``row-1``, ... Extra keyword
        arguments (``max_tokens``, ``temperature``...) go in every body; Anthropic models get
        ``max_tokens=1024`` unless given.

        A missing value (None, NaN, pandas' NA) in a field a template uses, or in the
        custom_id field, raises ValueError naming the row and the field.
        """
        return cls._from_rows(
            records,
            prompt=prompt,
            model=model,
            system=system,
            custom_id=custom_id,
            provider=provider,
            id_text=_id_text,
            params=params,
        )

    @classmethod
    def _from_rows(
        cls,
        records: Iterable[Mapping[str, Any]],
        *,
        prompt: Template,
        model: str,
        system: Template | None,
        custom_id: str | Callable[[Mapping[str, Any]], str] | None,
        provider: str | None,
        id_text: Callable[[Any], str],
        params: dict[str, Any],
    ) -> BatchBuilder:
        builder = cls()
        params = {k: _plain(v) for k, v in params.items()}
        if "max_tokens" not in params and (
            provider == "anthropic" or (isinstance(model, str) and model.startswith("anthropic/"))
        ):
            params["max_tokens"] = DEFAULT_ANTHROPIC_MAX_TOKENS
        prompt_fields = [] if callable(prompt) else _template_fields(prompt, "prompt")
        system_fields = [] if system is None or callable(system) else _template_fields(system, "system")
        for i, row in enumerate(records):
            if not isinstance(row, Mapping):
                raise TypeError(f"row {i}: expected a mapping (dict), got {type(row).__name__}")
            if custom_id is None:
                cid = f"row-{i}"
            elif callable(custom_id):
                cid = str(custom_id(row))
            else:
                if custom_id not in row:
                    raise KeyError(f"row {i}: no field {custom_id!r} for custom_id")
                value = row[custom_id]
                if _is_missing(value):
                    raise ValueError(
                        f"row {i}: column {custom_id!r} (the custom_id) has a missing value ({value!r}); "
                        f"every request needs an id"
                    )
                cid = id_text(value)
            messages = []
            if system is not None:
                messages.append({"role": "system", "content": _render(system, system_fields, row, "system", i)})
            messages.append({"role": "user", "content": _render(prompt, prompt_fields, row, "prompt", i)})
            builder.add_chat(cid, model, messages, provider=provider, **params)
        return builder

    @classmethod
    def from_dataframe(
        cls,
        df: Any,
        *,
        prompt: Template,
        model: str,
        system: Template | None = None,
        custom_id: str | Callable[[Mapping[str, Any]], str] | None = None,
        provider: str | None = None,
        **params: Any,
    ) -> BatchBuilder:
        """``from_records`` over a pandas or polars DataFrame's rows (column names as fields).

        A custom_id column of whole numbers gives ``"10"``, also when pandas has made it a
        float column (``10.0``); a missing id or a missing value a template uses raises
        ValueError naming the row and column."""
        if not hasattr(df, "columns"):
            kind = type(df).__name__
            hint = (
                " (for a Series, use series.to_frame() and name its column in the template)" if kind == "Series" else ""
            )
            raise TypeError(f"from_dataframe expects a pandas or polars DataFrame, got {kind}{hint}")
        if hasattr(df, "iter_rows"):  # polars
            rows: Iterable[Mapping[str, Any]] = df.iter_rows(named=True)
        elif hasattr(df, "to_dict"):  # pandas
            rows = df.to_dict("records")
        else:
            raise TypeError(f"from_dataframe expects a pandas or polars DataFrame, got {type(df).__name__}")
        id_text = _id_text
        if isinstance(custom_id, str) and custom_id in list(df.columns):
            values = [v for v in df[custom_id] if not _is_missing(v)]
            if values and all(isinstance(v, float) and v.is_integer() for v in values):
                id_text = _integral_id_text
        return cls._from_rows(
            rows,
            prompt=prompt,
            model=model,
            system=system,
            custom_id=custom_id,
            provider=provider,
            id_text=id_text,
            params=params,
        )

    @classmethod
    def from_openai_file(cls, path: str | os.PathLike[str], *, provider: str = "openai") -> BatchBuilder:
        """A builder holding the requests of a batch file in OpenAI's own format (no
        ``provider``, bare model names such as ``gpt-4o-mini``), in FastRouter's: each line
        gets ``"provider": provider`` and its model ``provider/model``. Lines already in
        FastRouter's format are taken as they are. ``builder.write(path)`` saves the result
        (``fastrouter-batch convert FILE --provider openai -o OUT`` does the same)."""
        from ._convert import iter_converted

        builder = cls()
        builder.extend(iter_converted(path, provider))
        return builder
