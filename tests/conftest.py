"""Shared fixtures: validating the same bytes as a file on disk and as bytes in memory."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import fastrouter_batch as fb


@pytest.fixture(params=["path", "bytes"])
def validate_as(request: pytest.FixtureRequest, tmp_path) -> Callable[..., fb.ValidationReport]:
    """`validate_as(data, **kw)`: fb.validate of `data`, passed as a file path (an
    os.PathLike to a real file in tmp_path) or as a bytes object, per the param."""

    def run(data: bytes, **kwargs) -> fb.ValidationReport:
        if request.param == "path":
            path = tmp_path / "batch.jsonl"
            path.write_bytes(data)
            try:
                return fb.validate(path, **kwargs)
            finally:
                path.unlink()
        return fb.validate(bytes(data), **kwargs)

    return run
