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

    _nested: ClassVar[dict[str, type[APIObject]]] = {"errors": BatchErrors, "request_counts": RequestCounts}

    @property
    def is_terminal(self) -> bool:
        """completed, failed, expired or cancelled: nothing will change any more."""
        return self.status in TERMINAL_STATUSES


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
