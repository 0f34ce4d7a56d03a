"""Type stubs for the Rust extension `fastrouter_batch._core` (checked by mypy.stubtest)."""

import os
import pathlib
from collections.abc import Awaitable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Literal, final

from typing_extensions import Self, disjoint_base

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "InternalServerError",
    "LineStream",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "Transport",
    "UnprocessableEntityError",
    "BatchBuilder",
    "BatchRequest",
    "BatchValidationError",
    "FakeUpstream",
    "FastRouterError",
    "LineIter",
    "Limits",
    "LocalServer",
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

class APIError(FastRouterError):
    """The Batch API could not be used."""

    message: str
    status_code: int | None
    request_id: str | None

class APIStatusError(APIError):
    """The server answered with an error status."""

    status_code: int
    code: str | None
    type: str | None
    param: str | None
    body: Any

class BadRequestError(APIStatusError):
    """400: the request is invalid."""

class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""

class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""

class NotFoundError(APIStatusError):
    """404: no such file or batch (for this key)."""

class ConflictError(APIStatusError):
    """409: the object is not in a state that allows this."""

class RequestTooLargeError(APIStatusError):
    """413: the upload is over the server's limit."""

class UnprocessableEntityError(APIStatusError):
    """422: the request could not be processed."""

class RateLimitError(APIStatusError):
    """429: too many requests."""

class InternalServerError(APIStatusError):
    """5xx: the server failed."""

class APIConnectionError(APIError):
    """No answer from the server."""

class APITimeoutError(APIConnectionError):
    """No answer from the server in time."""

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

@final
class LocalServer:
    """The local engine in this process, on a loopback port: `with LocalServer() as s:`."""

    def __new__(
        cls,
        *,
        provider: Literal["simulated", "upstream"] = "simulated",
        latency: float = 0.0,
        fault_rate: float = 0.0,
        data_dir: str | os.PathLike[str] | None = None,
        api_key: str | Sequence[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
        completion_window: float = 86400.0,
        concurrency: int = 64,
        max_retries: int = 5,
        retry_delay: float = 0.5,
        openai_base_url: str | None = None,
        openai_api_key: str | None = None,
        anthropic_base_url: str | None = None,
        anthropic_api_key: str | None = None,
        embedding_dims: int = 64,
        upstream_timeout: float = 600.0,
    ) -> Self: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def serve_forever(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        *_exc: type[BaseException] | BaseException | TracebackType | None,
    ) -> bool: ...
    @property
    def url(self) -> str: ...
    @property
    def api_key(self) -> str: ...
    @property
    def data_dir(self) -> pathlib.Path: ...
    @property
    def resumed(self) -> int: ...
    @property
    def running(self) -> bool: ...
    @property
    def provider(self) -> str: ...

@final
class FakeUpstream:
    """A fake provider on loopback speaking OpenAI's and Anthropic's wire formats."""

    def __new__(
        cls,
        *,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        port: int = 0,
        embedding_dims: int = 64,
    ) -> Self: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        *_exc: type[BaseException] | BaseException | TracebackType | None,
    ) -> bool: ...
    @property
    def url(self) -> str: ...

@final
class Transport:
    """The Rust HTTP client behind `Client` and `AsyncClient`."""

    def __new__(cls, *, base_url: str, api_key: str, timeout: float = 600.0, max_retries: int = 2) -> Self: ...
    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> Transport: ...
    @property
    def base_url(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    @property
    def max_retries(self) -> int: ...
    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> Any: ...
    def arequest(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> Awaitable[Any]: ...
    def upload(
        self, file: str | os.PathLike[str] | bytes | bytearray, *, filename: str, purpose: str = "batch"
    ) -> Any: ...
    def aupload(
        self, file: str | os.PathLike[str] | bytes | bytearray, *, filename: str, purpose: str = "batch"
    ) -> Awaitable[Any]: ...
    def content(self, file_id: str) -> bytes: ...
    def acontent(self, file_id: str) -> Awaitable[bytes]: ...
    def download(self, file_id: str, path: str | os.PathLike[str]) -> int: ...
    def adownload(self, file_id: str, path: str | os.PathLike[str]) -> Awaitable[int]: ...
    def iter_lines(self, file_id: str) -> LineStream: ...

@final
class LineStream:
    """A file's lines as they arrive: `for` and `async for`."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> str: ...
    def __aiter__(self) -> Self: ...
    def __anext__(self) -> Awaitable[str]: ...
