"""``BatchBuilder`` with constructors from rows: records (dicts) or a DataFrame."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Union

from . import _core

Template = Union[str, Callable[[Mapping[str, Any]], str]]

#: Anthropic needs max_tokens on every chat request; rows get this unless told otherwise.
DEFAULT_ANTHROPIC_MAX_TOKENS = 1024


def _render(template: Template, row: Mapping[str, Any], what: str, index: int) -> str:
    if callable(template):
        return str(template(row))
    try:
        return template.format_map(row)
    except KeyError as e:
        raise KeyError(f"row {index}: the {what} template names {e.args[0]!r}, which the row does not have "
                       f"(columns: {', '.join(map(str, row))})") from None


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
        """
        builder = cls()
        if "max_tokens" not in params and (provider == "anthropic" or model.startswith("anthropic/")):
            params["max_tokens"] = DEFAULT_ANTHROPIC_MAX_TOKENS
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
                cid = str(row[custom_id])
            messages = []
            if system is not None:
                messages.append({"role": "system", "content": _render(system, row, "system", i)})
            messages.append({"role": "user", "content": _render(prompt, row, "prompt", i)})
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
        """``from_records`` over a pandas or polars DataFrame's rows (column names as fields)."""
        if hasattr(df, "iter_rows"):  # polars
            rows: Iterable[Mapping[str, Any]] = df.iter_rows(named=True)
        elif hasattr(df, "to_dict"):  # pandas
            rows = df.to_dict("records")
        else:
            raise TypeError(f"from_dataframe expects a pandas or polars DataFrame, got {type(df).__name__}")
        return cls.from_records(rows, prompt=prompt, model=model, system=system, custom_id=custom_id,
                                provider=provider, **params)
