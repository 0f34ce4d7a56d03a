"""Type stubs for the Rust extension `fastrouter_batch._core` (checked by mypy.stubtest)."""

import os
import pathlib
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeAlias, final

from typing_extensions import Self, disjoint_base

__all__ = [
    "DEFAULT_ANTHROPIC_MAX_TOKENS",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "ApiClient",
    "AuthenticationError",
    "BadRequestError",
    "BatchBuilder",
    "BatchRequest",
    "BatchValidationError",
    "ConflictError",
    "FakeUpstream",
    "FastRouterError",
    "InsufficientCreditsError",
    "InternalServerError",
    "Limits",
    "LineIter",
    "LineStream",
    "LocalServer",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "Result",
    "ResultIterator",
    "ResultSet",
    "UnprocessableEntityError",
    "ValidationIssue",
    "ValidationReport",
    "__version__",
    "read_results",
    "read_texts",
    "validate",
]

__version__: str
#: The max_tokens every chat request built for Anthropic gets unless given.
DEFAULT_ANTHROPIC_MAX_TOKENS: int

#: What an Anthropic model takes among temperature, top_p and top_k.
_SamplingSupport: TypeAlias = Literal["both", "either", "none"]

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

class InsufficientCreditsError(APIStatusError):
    """402: the account has not enough credits (FastRouter's insufficient-credits answer)."""

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
    def _repr_html_(self) -> str:
        """The report as HTML for notebooks: a clear valid state, or the problems as a table."""

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
    def extend(self, requests: BatchBuilder | Iterable[BatchRequest | dict[str, Any]]) -> None: ...
    def _add_chat_rows(
        self,
        ids: list[str],
        model: str | list[str],
        provider: str | list[str | None] | None,
        prompt: list[Any],
        system: list[Any] | None,
        params: dict[str, Any],
        columns: dict[str, list[Any]],
    ) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> LineIter: ...
    def to_bytes(self) -> bytes: ...
    def validate(
        self,
        *,
        limits: Limits | None = None,
        providers: Sequence[str] | None = None,
        anthropic_sampling: Mapping[str, _SamplingSupport] | None = None,
    ) -> ValidationReport: ...
    def write(
        self,
        path: str | os.PathLike[str],
        *,
        validate: bool = True,
        limits: Limits | None = None,
        providers: Sequence[str] | None = None,
        anthropic_sampling: Mapping[str, _SamplingSupport] | None = None,
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
    anthropic_sampling: Mapping[str, _SamplingSupport] | None = None,
) -> ValidationReport:
    """Checks a batch file against the contract and reports every problem.

    ``providers`` adds to the built-in providers (openai, anthropic). Reading stops past
    ``limits.max_bytes`` (a ``file_too_large`` issue). An input of up to 1 MiB is checked
    on the calling thread. ``anthropic_sampling`` extends the table of which Anthropic models take ``temperature``,
    ``top_p`` and ``top_k`` (``{"claude-opus-4-7*": "either"}``; tried before the built-in
    entries): lines refused for a model are reported here, before upload."""

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
        anthropic_sampling: Mapping[str, _SamplingSupport] | None = None,
        metrics_public: bool = False,
        upstream_mode: Literal["native", "realtime"] = "native",
        poll_interval: float = 60.0,
        native_chunk_size: int | None = None,
        delete_input_files: bool = True,
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
    def dashboard_url(self) -> str: ...
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
    """A fake provider on loopback speaking OpenAI's and Anthropic's wire formats: realtime
    (`/v1/chat/completions`, `/v1/embeddings`, `/v1/messages`) and the native batch APIs
    (OpenAI Files + Batches, Anthropic Message Batches), with fault knobs and counters.

    A request (realtime or a batch line) fails when its body contains `[fake:error]` (400)
    or `[fake:error:NNN]` (status NNN)."""

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
    def configure(
        self,
        *,
        steps_per_poll: int | None = None,
        step_interval: float | None = None,
        progress_steps: int | None = None,
        stall: bool | None = None,
        expire_after: float | None = None,
        crlf: bool | None = None,
        hold_creates: bool | None = None,
        drop_create_replies: int | None = None,
        drop_create_at: int | None = None,
        rate_limit_creates: int | None = None,
        rate_limit_polls: int | None = None,
        retry_after: float | None = None,
        hidden_file_reads: int | None = None,
        enqueued_token_limit: int | None = None,
        max_request_bytes: int | None = None,
        api_key: str | None = None,
        faults_for: Literal["openai", "anthropic", "both"] | None = None,
    ) -> None:
        """Sets the given knobs (None leaves one as it is), now and for the next start.

        - steps_per_poll: steps a batch moves each time it is retrieved or listed (default 1;
          0: polls do not move batches).
        - step_interval: seconds per step of wall time, polled or not (0: off, the default).
        - progress_steps: steps a batch spends answering its lines (default 2).
        - stall: batches stop once half their lines are answered, until turned off.
        - expire_after: seconds after its create an unfinished batch expires (when next
          looked at), as expire_all() expires it (0: never, the default).
        - crlf: result files end lines with CRLF.
        - hold_creates: creates make their batch, then wait to answer until turned off.
        - drop_create_replies: the next K creates make their batch, then close the
          connection without an answer; drop_create_at: the Nth create does (0: off).
        - rate_limit_creates / rate_limit_polls: the next K creates / polls (retrieve or
          list) answer 429 with `retry-after` (retry_after seconds, default 1).
        - hidden_file_reads: each later upload answers "not found" to its first K reads
          (GET, content, or a batch create naming it).
        - enqueued_token_limit: OpenAI's per-model enqueued-token limit (0: none); a batch
          over it ends `failed` with `token_limit_exceeded`.
        - max_request_bytes: an Anthropic batch create with a larger body answers 413.
        - api_key: the one key every call must carry ("" : any key for batch calls, none
          for realtime calls, the default).
        - faults_for: the fault knobs hit only this provider's calls (default "both").
        """
    def knobs(self) -> dict[str, Any]:
        """The knobs now (`api_key_required` instead of the key)."""
    def counters(self) -> dict[str, int]:
        """Calls counted since start: openai/anthropic_batch_creates (batches made),
        file_uploads, file_deletes, file_downloads, file_lists, openai/anthropic_polls, _lists, _cancels,
        anthropic_results, chat_calls, embedding_calls, messages_calls, realtime_calls,
        rate_limited, dropped_replies, held_creates (waiting now)."""
    def batches(self) -> list[dict[str, Any]]:
        """Every batch held, oldest first: provider, id, state, request_count, metadata,
        input_file_id (OpenAI) and created_at."""
    def expire_all(self) -> None:
        """Expires every unfinished batch now, keeping the results each has."""

@final
class ApiClient:
    """The Rust client behind `Client` and `AsyncClient`: one method per operation, each with
    an awaitable `a...` twin; answers are the JSON objects the server sent."""

    def __new__(
        cls, *, api_key: str, base_url: str | None = None, timeout: float = 600.0, max_retries: int = 2
    ) -> Self: ...
    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> ApiClient: ...
    @property
    def base_url(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    @property
    def max_retries(self) -> int: ...
    def create_file(
        self, file: str | os.PathLike[str] | bytes | bytearray, *, filename: str, purpose: str = "batch"
    ) -> dict[str, Any]:
        """`POST /v1/files`: `file` is a path (streamed from disk) or bytes."""
    def acreate_file(
        self, file: str | os.PathLike[str] | bytes | bytearray, *, filename: str, purpose: str = "batch"
    ) -> Awaitable[dict[str, Any]]: ...
    def retrieve_file(self, file_id: str) -> dict[str, Any]: ...
    def aretrieve_file(self, file_id: str) -> Awaitable[dict[str, Any]]: ...
    def list_files(
        self, *, purpose: str | None = None, limit: int | None = None, after: str | None = None
    ) -> dict[str, Any]: ...
    def alist_files(
        self, *, purpose: str | None = None, limit: int | None = None, after: str | None = None
    ) -> Awaitable[dict[str, Any]]: ...
    def delete_file(self, file_id: str) -> dict[str, Any]: ...
    def adelete_file(self, file_id: str) -> Awaitable[dict[str, Any]]: ...
    def file_content(self, file_id: str) -> bytes:
        """The file's whole content, in memory."""
    def afile_content(self, file_id: str) -> Awaitable[bytes]: ...
    def download_file(self, file_id: str, path: str | os.PathLike[str]) -> int:
        """The file's content streamed to `path`; the bytes written."""
    def adownload_file(self, file_id: str, path: str | os.PathLike[str]) -> Awaitable[int]: ...
    def file_lines(self, file_id: str) -> LineStream:
        """The file's lines (without newlines), streamed, for `for` and `async for`."""
    def create_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """`POST /v1/batches` (a key is made for this call unless `idempotency_key` is given)."""
    def acreate_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Awaitable[dict[str, Any]]: ...
    def retrieve_batch(self, batch_id: str) -> dict[str, Any]: ...
    def aretrieve_batch(self, batch_id: str) -> Awaitable[dict[str, Any]]: ...
    def list_batches(self, *, limit: int | None = None, after: str | None = None) -> dict[str, Any]: ...
    def alist_batches(self, *, limit: int | None = None, after: str | None = None) -> Awaitable[dict[str, Any]]: ...
    def cancel_batch(self, batch_id: str) -> dict[str, Any]: ...
    def acancel_batch(self, batch_id: str) -> Awaitable[dict[str, Any]]: ...
    def batch_providers(self, batch_id: str) -> dict[str, Any]:
        """``GET /v1/batches/{batch_id}/providers`` (the local engine's breakdown by provider)."""
    def abatch_providers(self, batch_id: str) -> Awaitable[dict[str, Any]]: ...

@final
class LineStream:
    """A file's lines as they arrive: `for` and `async for`."""

    def __iter__(self) -> Self: ...
    def __next__(self) -> str: ...
    def __aiter__(self) -> Self: ...
    def __anext__(self) -> Awaitable[str]: ...

@final
class Result:
    """One request's result: a line of a batch's output or error file."""

    @property
    def custom_id(self) -> str: ...
    @property
    def ok(self) -> bool:
        """True when the request got a 2xx response and no error."""
    @property
    def status_code(self) -> int | None:
        """The response's HTTP status; None when the request never ran."""
    @property
    def text(self) -> str | None:
        """The assistant's text (chat): ``choices[0].message.content``, parts joined."""
    @property
    def model(self) -> str | None:
        """The model named in the response body."""
    @property
    def usage(self) -> dict[str, int] | None:
        """``{"prompt_tokens", "completion_tokens", "total_tokens"}``, or None without usage."""
    @property
    def error(self) -> dict[str, str | None] | None:
        """``{"code", "message"}`` when the request failed, else None."""
    @property
    def error_code(self) -> str | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def body(self) -> Any:
        """The response body (a dict), read back from the file and parsed on first access;
        None when the request never ran."""
    @property
    def tool_calls(self) -> list[dict[str, Any]] | None:
        """The tool calls of a chat answer (``choices[0].message.tool_calls``: ``{"id", "type",
        "function": {"name", "arguments"}}``, arguments a JSON string), or None."""
    @property
    def embedding(self) -> list[float] | None:
        """The first vector of an embeddings body (``data[0].embedding``; base64 ones
        decoded), or None."""
    @property
    def line(self) -> int:
        """1-based line number in its file."""
    @property
    def parsed(self) -> Any:
        """The answer validated by the request's response_format model, or None."""
    @property
    def parse_error(self) -> str | None:
        """Why the answer does not fit the response_format model, or None."""
    @property
    def cached(self) -> bool:
        """True when the result came from the result cache."""
    @property
    def file(self) -> str | None:
        """The file the line was read from (None for bytes)."""
    def to_dict(self) -> dict[str, Any]:
        """The whole line as a dict (``id``, ``custom_id``, ``response``, ``error``), read back."""

@final
class ResultSet:
    """The results of one or more batches' output and error files: one ``Result`` per line
    (``fastrouter_batch.BatchResults`` wraps it, adding the DataFrames)."""

    def __len__(self) -> int: ...
    def __iter__(self) -> ResultIterator: ...
    def __getitem__(self, key: str | int, /) -> Result:
        """``results["request-1"]`` by custom_id (KeyError if absent), ``results[0]`` by position."""
    def __contains__(self, key: object, /) -> bool: ...
    def get(self, custom_id: str, default: Any = None) -> Any:
        """The result for ``custom_id``, or ``default``."""
    @property
    def custom_ids(self) -> list[str]:
        """The custom_ids, in iteration order."""
    def positions_of(self, keys: list[str]) -> bytes:
        """For each custom_id of ``keys``, its result's position in this view, or -1: a
        native-endian int64 array in bytes (what ``frame_columns`` takes as ``at``)."""
    def frame_columns(
        self, at: bytes | None = None, missing: Any = None, with_custom_id: bool = True
    ) -> dict[str, list[Any] | tuple[bytes, bytes] | None]:
        """The columns of ``to_pandas()`` in one pass: ``custom_id``, ``text``, ``model``,
        ``error_code``, ``error_message`` as lists (``missing`` where missing; None for a
        column without any value); ``ok``, ``cached`` (a byte each), ``status_code``,
        ``prompt_tokens``, ``completion_tokens`` (int64) as ``(values, missing)`` arrays in
        bytes. The rows in order, or those at ``at`` (``positions_of``'s array; -1: a row
        with every value missing)."""
    def with_parser(self, parser: Callable[[str, str], tuple[Any, str | None]] | None) -> ResultSet: ...
    @property
    def parser(self) -> Any: ...
    @property
    def succeeded(self) -> ResultSet:
        """The results that succeeded, in the same order."""
    @property
    def failed(self) -> ResultSet:
        """The results that failed (an error status, or never ran), in the same order."""
    @property
    def missing(self) -> list[str]:
        """Input custom_ids (when ``inputs`` was given) that have no result line."""
    def texts(self) -> dict[str, str | None]:
        """``{custom_id: text}`` for every result (None where there is no text), in order."""
    def summary(self) -> dict[str, Any]:
        """Counts: total, succeeded, failed, missing; token sums; results per status code and
        per error code."""
    def to_columns(self, only: list[str] | None = None) -> dict[str, list[Any]]:
        """The table behind ``to_pandas()`` / ``to_polars()``: column name → list, in order;
        only the columns ``only`` names when it is given."""

@final
class ResultIterator:
    def __iter__(self) -> Self: ...
    def __next__(self) -> Result: ...

def read_results(
    sources: Iterable[str | os.PathLike[str] | bytes | bytearray],
    *,
    inputs: Iterable[str | os.PathLike[str] | bytes | bytearray] | None = None,
    owned_dir: str | os.PathLike[str] | None = None,
    cached: Iterable[str | os.PathLike[str] | bytes | bytearray] | None = None,
    max_bytes: int = 8589934592,
    max_line_bytes: int = 67108864,
) -> ResultSet:
    """Reads output and error files (paths or bytes) into one ``ResultSet``.

    ``inputs`` gives the order: custom_ids (str) and request files (os.PathLike or bytes),
    in order. ``owned_dir`` is a directory removed once the results are garbage collected
    (where ``batches.results()`` downloads the files). Each file (inputs too) is read up to
    ``max_bytes`` bytes and lines of ``max_line_bytes``: past them, ValueError naming the
    file, the line and ``file_too_large`` / ``line_too_large``."""

def read_texts(
    sources: Iterable[str | os.PathLike[str] | bytes | bytearray],
    *,
    max_bytes: int = 8589934592,
    max_line_bytes: int = 67108864,
) -> dict[str, str | None]:
    """``{custom_id: text}`` straight from output and error files (paths or bytes), in file
    order, None where a line has no text; nothing else is kept. A custom_id seen twice
    keeps its last line's text. ``max_bytes`` and ``max_line_bytes`` as for
    ``read_results``."""
