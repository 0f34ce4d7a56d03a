"""The objects the Batch API returns, typed.

Every contract field is an attribute (``None`` when the server left it out), unknown
fields are kept in ``model_extra`` (a newer server never breaks an older client), and
``to_dict()`` gives back what the server sent. ``model_dump()`` / ``model_dump_json()`` are
openai-python's (pydantic's): every declared field, nested objects as dicts.

FastRouter's reference marks every field optional and documents ``file_id`` / ``batch_id``
beside (or instead of) ``id``: each is filled in from the other, so ``.id`` is always set
when either came.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar, Literal

BatchStatus = Literal[
    "validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled"
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})


class APIObject:
    """A server object: declared fields as attributes, the rest in ``model_extra``."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _nested: ClassVar[dict[str, type[APIObject]]] = {}
    #: The field FastRouter documents beside ``id`` ("same as"): each fills the other.
    _id_alias: ClassVar[str | None] = None

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise TypeError(f"{type(self).__name__} expects a mapping, got {type(data).__name__}")
        data = self._normalise(dict(data))
        self._data = data
        for name in self._fields:
            value = data.get(name)
            nested = self._nested.get(name)
            if nested is not None and isinstance(value, Mapping):
                value = nested(value)
            object.__setattr__(self, name, value)
        self.model_extra: dict[str, Any] = {k: v for k, v in data.items() if k not in self._fields}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fields: list[str] = []
        for klass in reversed(cls.__mro__):
            for name in getattr(klass, "__annotations__", {}):
                if not name.startswith("_") and name != "model_extra" and name not in fields:
                    fields.append(name)
        cls._fields = tuple(fields)

    @classmethod
    def _normalise(cls, data: dict[str, Any]) -> dict[str, Any]:
        alias = cls._id_alias
        if alias is not None:
            if not isinstance(data.get("id"), str) and isinstance(data.get(alias), str):
                data["id"] = data[alias]
            elif isinstance(data.get("id"), str) and not isinstance(data.get(alias), str):
                data[alias] = data["id"]
        return data

    def to_dict(self) -> dict[str, Any]:
        """The object as the server sent it (``id`` and its alias filled in from each other)."""
        return dict(self._data)

    def model_dump(
        self,
        *,
        mode: Literal["python", "json"] = "python",
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        exclude_unset: bool = False,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        """openai-python's (pydantic's) ``model_dump``: every declared field (``None`` when the
        server left it out, unless ``exclude_unset``), then the fields this client does not
        know, nested objects as dicts."""
        keep = None if include is None else set(include)
        drop = set(exclude or ())
        out: dict[str, Any] = {}
        for name in (*self._fields, *self.model_extra):
            if (keep is not None and name not in keep) or name in drop:
                continue
            if exclude_unset and name not in self._data:
                continue
            value = getattr(self, name, None) if name in self._fields else self.model_extra[name]
            if isinstance(value, APIObject):
                value = value.model_dump(mode=mode, exclude_unset=exclude_unset, exclude_none=exclude_none)
            elif isinstance(value, list):
                value = [
                    v.model_dump(mode=mode, exclude_unset=exclude_unset, exclude_none=exclude_none)
                    if isinstance(v, APIObject)
                    else v
                    for v in value
                ]
            if exclude_none and value is None:
                continue
            out[name] = value
        return out

    def model_dump_json(
        self,
        *,
        indent: int | None = None,
        include: Iterable[str] | None = None,
        exclude: Iterable[str] | None = None,
        exclude_unset: bool = False,
        exclude_none: bool = False,
    ) -> str:
        """``model_dump(mode="json")`` as a JSON string (pydantic's compact form by default)."""
        dumped = self.model_dump(
            mode="json", include=include, exclude=exclude, exclude_unset=exclude_unset, exclude_none=exclude_none
        )
        return json.dumps(dumped, indent=indent, separators=None if indent is not None else (",", ":"))

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._data == self._data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        # The id's alias (`file_id`, `batch_id`) says nothing more when it is the id.
        shown = ", ".join(
            f"{k}={getattr(self, k)!r}"
            for k in self._fields
            if getattr(self, k) is not None
            and not (k == self._id_alias and getattr(self, k) == getattr(self, "id", None))
        )
        return f"{type(self).__name__}({shown})"


class FileObject(APIObject):
    id: str
    object: str | None
    bytes: int | None
    created_at: int | None
    filename: str | None
    purpose: str | None
    num_rows: int | None
    status: str | None
    status_details: Any
    file_id: str | None

    _id_alias: ClassVar[str | None] = "file_id"


class FileDeleted(APIObject):
    id: str
    object: str | None
    deleted: bool

    _id_alias: ClassVar[str | None] = "file_id"


class RequestCounts(APIObject):
    total: int | None
    completed: int | None
    failed: int | None


class BatchError(APIObject):
    code: str | None
    line: int | None
    message: str | None
    param: str | None


class BatchErrors(APIObject):
    object: str | None
    data: list[BatchError]

    def __init__(self, data: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        # A bare list (as some OpenAI-compatible servers send) is the documented list's data.
        if not isinstance(data, Mapping) and isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
            data = {"object": "list", "data": list(data)}
        super().__init__(data)
        self.data = [BatchError(e) for e in (data.get("data") or []) if isinstance(e, Mapping)]

    def __iter__(self) -> Iterator[BatchError]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"BatchErrors({len(self.data)} errors)"


class InputTokensDetails(APIObject):
    cached_tokens: int | None


class OutputTokensDetails(APIObject):
    reasoning_tokens: int | None


class BatchUsage(APIObject):
    """Tokens a batch's answers reported (openai's ``BatchUsage``): the local engine sends it,
    summed as answers arrive; a server that does not leaves ``Batch.usage`` None."""

    input_tokens: int | None
    input_tokens_details: InputTokensDetails | None
    output_tokens: int | None
    output_tokens_details: OutputTokensDetails | None
    total_tokens: int | None

    _nested: ClassVar[dict[str, type[APIObject]]] = {
        "input_tokens_details": InputTokensDetails,
        "output_tokens_details": OutputTokensDetails,
    }


class Batch(APIObject):
    id: str
    object: str | None
    endpoint: str | None
    errors: BatchErrors | None
    input_file_id: str | None
    completion_window: str | None
    status: BatchStatus
    output_file_id: str | None
    error_file_id: str | None
    created_at: int | None
    in_progress_at: int | None
    expires_at: int | None
    finalizing_at: int | None
    completed_at: int | None
    failed_at: int | None
    expired_at: int | None
    cancelling_at: int | None
    cancelled_at: int | None
    request_counts: RequestCounts | None
    metadata: dict[str, str] | None
    batch_id: str | None

    usage: BatchUsage | None

    _nested: ClassVar[dict[str, type[APIObject]]] = {
        "errors": BatchErrors,
        "request_counts": RequestCounts,
        "usage": BatchUsage,
    }
    _id_alias: ClassVar[str | None] = "batch_id"

    @classmethod
    def _normalise(cls, data: dict[str, Any]) -> dict[str, Any]:
        data = super()._normalise(data)
        if isinstance(data.get("errors"), list):
            data["errors"] = {"object": "list", "data": data["errors"]}
        return data

    @property
    def is_terminal(self) -> bool:
        """completed, failed, expired or cancelled: nothing will change any more."""
        return self.status in TERMINAL_STATUSES

    def __repr__(self) -> str:
        # Short whatever the batch carries (thousands of errors, big metadata): the id, the
        # status and the counts; the rest is in the attributes and in the notebook display.
        counts = self.request_counts
        shown = [f"id={self.id!r}", f"status={self.status!r}"]
        if counts is not None:
            shown.append(f"completed={counts.completed}, failed={counts.failed}, total={counts.total}")
        if self.errors:
            shown.append(f"errors={len(self.errors)}")
        return f"Batch({', '.join(shown)})"

    def _repr_html_(self) -> str:
        """Notebooks' display: status, a progress bar with the counts, times and usage."""
        from ._display import batch_html

        return batch_html(self)


class ProviderBreakdown(APIObject):
    """One provider's share of a batch: its requests and the tokens its answers reported."""

    provider: str
    request_counts: RequestCounts | None
    usage: BatchUsage | None

    _nested: ClassVar[dict[str, type[APIObject]]] = {"request_counts": RequestCounts, "usage": BatchUsage}


class ProviderBreakdownList(APIObject):
    """``batches.providers(id)``: a batch's breakdown by provider (``data``, one
    ``ProviderBreakdown`` per provider); iterate it, or ``get("openai")``."""

    object: str | None
    batch_id: str | None
    data: list[ProviderBreakdown]

    def __init__(self, data: Mapping[str, Any]) -> None:
        super().__init__(data)
        self.data = [ProviderBreakdown(p) for p in (data.get("data") or []) if isinstance(p, Mapping)]

    def get(self, provider: str) -> ProviderBreakdown | None:
        """The breakdown of ``provider``, or None if the batch has no line of it."""
        return next((p for p in self.data if p.provider == provider), None)

    def __iter__(self) -> Iterator[ProviderBreakdown]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"ProviderBreakdownList(batch_id={self.batch_id!r}, providers={[p.provider for p in self.data]!r})"

    def _repr_html_(self) -> str:
        """Notebooks' display: one row per provider, with its progress, counts and usage."""
        from ._display import providers_html

        return providers_html(self)
