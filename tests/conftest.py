"""Shared fixtures: validating the same bytes as a file on disk and as bytes in memory; a
private folder for `tempfile`, to see what a run leaves behind."""

from __future__ import annotations

import gc
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

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


@pytest.fixture
def temp(tmp_path, monkeypatch) -> Path:
    """Where `tempfile` makes its folders for this test. Request it after any server
    fixture, so only what the code under test makes lands here."""
    d = tmp_path / "tmp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def leftovers(temp: Path) -> list[str]:
    """What is left in `temp`, once objects that own folders (results) are collected."""
    gc.collect()
    return sorted(p.name for p in temp.iterdir())


@pytest.fixture
def sigint_default():
    """SIGINT raises KeyboardInterrupt during the test (whatever handler the runner set)."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
