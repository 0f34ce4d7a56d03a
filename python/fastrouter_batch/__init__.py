"""fastrouter_batch: build, validate and run LLM batch jobs through FastRouter's Batch API.

The heavy lifting (JSON building, validation) is done in Rust (`fastrouter_batch._core`);
this package adds the Pythonic layer on top.
"""

from __future__ import annotations

from ._core import (
    BatchRequest,
    BatchValidationError,
    FakeUpstream,
    FastRouterError,
    Limits,
    LocalServer,
    ValidationIssue,
    ValidationReport,
    __version__,
    validate,
)
from ._core import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    UnprocessableEntityError,
)
from ._io import read_requests
from ._wait import WaitTimeout
from .builder import BatchBuilder
from .client import AsyncClient, Client
from .results import BatchResults, Result, read_results, read_texts
from .types import Batch, BatchError, BatchErrors, CursorPage, FileDeleted, FileObject, RequestCounts

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchError",
    "BatchErrors",
    "Client",
    "ConflictError",
    "CursorPage",
    "FileDeleted",
    "FileObject",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestCounts",
    "RequestTooLargeError",
    "UnprocessableEntityError",
    "WaitTimeout",
    "BatchBuilder",
    "BatchRequest",
    "BatchValidationError",
    "FakeUpstream",
    "FastRouterError",
    "Limits",
    "LocalServer",
    "ValidationIssue",
    "ValidationReport",
    "__version__",
    "read_requests",
    "read_results",
    "read_texts",
    "BatchResults",
    "Result",
    "validate",
]
