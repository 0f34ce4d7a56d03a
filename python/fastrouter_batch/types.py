"""The objects the Batch API returns, typed.

Every contract field is an attribute (``None`` when the server left it out), unknown
fields are kept in ``model_extra`` (a newer server never breaks an older client), and
``to_dict()`` gives back what the server sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar, Generic, Literal, TypeVar

BatchStatus = Literal[
    "validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled"
]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})


class APIObject:
    """A server object: declared fields as attributes, the rest in ``model_extra``."""

    _fields: ClassVar[tuple[str, ...]] = ()
    _nested: ClassVar[dict[str, type[APIObject]]] = {}

    def __init__(self, data: Mapping[str, Any]) -> None:
        if not isinstance(data, Mapping):
            raise TypeError(f"{type(self).__name__} expects a mapping, got {type(data).__name__}")
        self._data = dict(data)
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

    def to_dict(self) -> dict[str, Any]:
        """The object as the server sent it."""
        return dict(self._data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._data == self._data

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._fields if getattr(self, k) is not None)
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


class FileDeleted(APIObject):
    id: str
    object: str | None
    deleted: bool


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

    def __init__(self, data: Mapping[str, Any]) -> None:
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


T = TypeVar("T", bound=APIObject)


class CursorPage(Generic[T]):
    """One page of a list: ``data``, ``has_more``, ``first_id``, ``last_id``."""

    def __init__(self, data: list[T], body: Mapping[str, Any]) -> None:
        self.data = data
        self.has_more: bool = bool(body.get("has_more"))
        self.first_id: str | None = body.get("first_id")
        self.last_id: str | None = body.get("last_id") or (getattr(data[-1], "id", None) if data else None)

    def __iter__(self) -> Iterator[T]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"CursorPage(len={len(self.data)}, has_more={self.has_more})"
