"""fastrouter_batch: build, validate and run LLM batch jobs through FastRouter's Batch API.

The heavy lifting (JSON building, validation) is done in Rust (`fastrouter_batch._core`);
this package adds the Pythonic layer on top.
"""

from __future__ import annotations

from ._cache import ResultCache
from ._content import FileContent
from ._core import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchRequest,
    BatchValidationError,
    ConflictError,
    FakeUpstream,
    FastRouterError,
    InsufficientCreditsError,
    InternalServerError,
    Limits,
    LocalServer,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    UnprocessableEntityError,
    ValidationIssue,
    ValidationReport,
    __version__,
    validate,
)
from ._io import read_requests
from ._pages import AsyncCursorPage, AsyncPager, CursorPage, SyncCursorPage
from ._wait import WaitTimeout
from .builder import DEFAULT_ANTHROPIC_MAX_TOKENS, BatchBuilder, Column, col
from .client import AsyncClient, Client
from .results import BatchResults, Result, read_results, read_texts
from .types import (
    Batch,
    BatchError,
    BatchErrors,
    BatchUsage,
    FileDeleted,
    FileObject,
    ProviderBreakdown,
    ProviderBreakdownList,
    RequestCounts,
)

__all__ = [
    "DEFAULT_ANTHROPIC_MAX_TOKENS",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AsyncCursorPage",
    "AsyncPager",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchBuilder",
    "BatchError",
    "BatchErrors",
    "BatchRequest",
    "BatchResults",
    "BatchUsage",
    "BatchValidationError",
    "Client",
    "Column",
    "ConflictError",
    "CursorPage",
    "FakeUpstream",
    "FastRouterError",
    "FileContent",
    "FileDeleted",
    "FileObject",
    "InsufficientCreditsError",
    "InternalServerError",
    "Limits",
    "LocalServer",
    "NotFoundError",
    "PermissionDeniedError",
    "ProviderBreakdown",
    "ProviderBreakdownList",
    "RateLimitError",
    "RequestCounts",
    "RequestTooLargeError",
    "Result",
    "ResultCache",
    "SyncCursorPage",
    "UnprocessableEntityError",
    "ValidationIssue",
    "ValidationReport",
    "WaitTimeout",
    "__version__",
    "col",
    "read_requests",
    "read_results",
    "read_texts",
    "validate",
]
