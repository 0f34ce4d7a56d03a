"""Type stubs for the Rust extension `fastrouter_batch._core` (checked by mypy.stubtest)."""

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, final

from typing_extensions import Self, disjoint_base

__all__ = [
    "BatchBuilder",
    "BatchRequest",
    "BatchValidationError",
    "FastRouterError",
    "LineIter",
    "Limits",
    "ValidationIssue",
    "ValidationReport",
    "__version__",
    "validate",
]

__version__: str

class FastRouterError(Exception):
    """Base of every error fastrouter_batch raises on purpose."""

class BatchValidationError(FastRouterError):
    """A batch file breaks the contract's rules; `.report` holds every problem."""

    report: ValidationReport

@final
class Limits:
    def __new__(
        cls,
        *,
        max_requests: int = 50000,
        max_bytes: int = 200000000,
        max_line_bytes: int = 8388608,
        max_issues: int = 100000,
    ) -> Self: ...
    @property
    def max_requests(self) -> int: ...
    @property
    def max_bytes(self) -> int: ...
    @property
    def max_line_bytes(self) -> int: ...
    @property
    def max_issues(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ValidationIssue:
    @property
    def line(self) -> int:
        """1-based line number."""
    @property
    def path(self) -> str | None:
        """JSON path of the field, e.g. ``body.messages[2].role``; None for the whole line."""
    @property
    def code(self) -> str: ...
    @property
    def message(self) -> str: ...
    def to_dict(self) -> dict[str, Any]: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class ValidationReport:
    @property
    def ok(self) -> bool: ...
    @property
    def issues(self) -> list[ValidationIssue]: ...
    @property
    def issue_counts(self) -> dict[str, int]: ...
    @property
    def total_issues(self) -> int: ...
    @property
    def truncated(self) -> bool: ...
    @property
    def num_lines(self) -> int: ...
    @property
    def num_requests(self) -> int: ...
    @property
    def total_bytes(self) -> int: ...
    @property
    def providers(self) -> dict[str, int]: ...
    @property
    def models(self) -> dict[str, int]: ...
    @property
    def urls(self) -> dict[str, int]: ...
    @property
    def url(self) -> str | None: ...
    def raise_for_errors(self) -> None: ...
    def summary(self, max_issues: int = 10) -> str:
        """The first `max_issues` problems (default 10) and how many more there are."""
    def to_dict(self) -> dict[str, Any]: ...

@final
class BatchRequest:
    def __new__(
        cls,
        custom_id: str,
        body: dict[str, Any],
        *,
        provider: str | None = None,
        method: str = "POST",
        url: str = "/v1/chat/completions",
    ) -> Self: ...
    @property
    def custom_id(self) -> str: ...
    @property
    def provider(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def body(self) -> dict[str, Any]: ...
    @property
    def model(self) -> str | None: ...
    @staticmethod
    def chat(
        custom_id: str,
        model: str,
        messages: Sequence[dict[str, Any]],
        *,
        provider: str | None = None,
        **params: Any,
    ) -> BatchRequest: ...
    @staticmethod
    def embedding(
        custom_id: str, model: str, input: str | Sequence[Any], *, provider: str | None = None, **params: Any
    ) -> BatchRequest: ...
    @staticmethod
    def from_json(line: str | bytes) -> BatchRequest: ...
    @staticmethod
    def from_dict(d: dict[str, Any]) -> BatchRequest: ...
    def to_dict(self) -> dict[str, Any]: ...
    def to_json(self) -> str: ...
    def __eq__(self, other: object, /) -> bool: ...

@disjoint_base
class BatchBuilder:
    def __init__(self) -> None: ...
    def add_chat(
        self,
        custom_id: str,
        model: str,
        messages: Sequence[dict[str, Any]],
        *,
        provider: str | None = None,
        **params: Any,
    ) -> None: ...
    def add_embedding(
        self, custom_id: str, model: str, input: str | Sequence[Any], *, provider: str | None = None, **params: Any
    ) -> None: ...
    def add(self, request: BatchRequest | dict[str, Any]) -> None: ...
    def extend(self, requests: Iterable[BatchRequest | dict[str, Any]]) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> LineIter: ...
    def to_bytes(self) -> bytes: ...
    def validate(self, *, limits: Limits | None = None, providers: Sequence[str] | None = None) -> ValidationReport: ...
    def write(
        self,
        path: str | os.PathLike[str],
        *,
        validate: bool = True,
        limits: Limits | None = None,
        providers: Sequence[str] | None = None,
    ) -> None: ...

@final
class LineIter:
    def __iter__(self) -> Iterator[str]: ...
    def __next__(self) -> str: ...

def validate(
    source: str | os.PathLike[str] | bytes | bytearray,
    *,
    limits: Limits | None = None,
    providers: Sequence[str] | None = None,
) -> ValidationReport: ...
