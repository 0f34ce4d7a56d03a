"""fastrouter_batch: build, validate and run LLM batch jobs through FastRouter's Batch API.

The heavy lifting (JSON building, validation) is done in Rust (`fastrouter_batch._core`);
this package adds the Pythonic layer on top.
"""

from __future__ import annotations

from ._core import (
    BatchBuilder,
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
from ._io import read_requests

__all__ = [
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
    "validate",
]
