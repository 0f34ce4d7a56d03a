"""The engine under hostile uploads, measured from outside: a `serve` child process gets
huge multipart parts other than `file` (a 200 MB `purpose`, an endless part header, a body
that never reaches its boundary) and must refuse each with a short JSON error while its
resident memory grows by less than 16 MiB.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from engine_helpers import Serve, chat_line, to_jsonl

KEY = "sk-hostile-test"
BOUNDARY = "hostile-boundary-91c3"
MIB = 1 << 20
MAX_GROWTH = 16 * MIB


@pytest.fixture
def engine(tmp_path) -> Iterator[Serve]:
    s = Serve(["--api-key", KEY, "--data-dir", str(tmp_path / "data")], tmp_path / "serve.stderr")
    try:
        yield s
    finally:
        s.stop()


def status_bytes(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> bool:
    """Resets the process's peak RSS (VmHWM) to its current RSS, where the kernel allows."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def repeated(byte: bytes, size: int) -> Iterator[bytes]:
    chunk = byte * MIB
    for _ in range(size // MIB):
        yield chunk


def part_head(name: str, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()


def huge_purpose(size: int) -> Iterator[bytes]:
    yield part_head("purpose")
    yield from repeated(b"p", size)
    yield b"\r\n" + part_head("file", "a.jsonl") + to_jsonl([chat_line("r1")]) + f"\r\n--{BOUNDARY}--\r\n".encode()


def huge_unknown_part(size: int) -> Iterator[bytes]:
    yield part_head("notes")
    yield from repeated(b"n", size)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def endless_part_header(size: int) -> Iterator[bytes]:
    yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"; x="'.encode()
    yield from repeated(b"h", size)


def no_boundary(size: int) -> Iterator[bytes]:
    yield from repeated(b"z", size)


@pytest.mark.parametrize(
    ("body", "size", "code"),
    [
        (huge_purpose, 200 * MIB, "invalid_purpose"),
        (huge_unknown_part, 100 * MIB, "part_too_large"),
        (endless_part_header, 100 * MIB, "invalid_upload"),
        (no_boundary, 100 * MIB, "invalid_upload"),
    ],
    ids=["200MB-purpose", "100MB-unknown-part", "100MB-part-header", "100MB-without-boundary"],
)
def test_huge_parts_other_than_file_are_refused_in_bounded_memory(engine, body, size, code):
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=engine.url, headers=headers, timeout=120) as http:
        # Warm the upload path, so what is measured is the hostile request alone.
        ok = http.post("/v1/files", files={"file": ("w.jsonl", to_jsonl([chat_line("w")]))}, data={"purpose": "batch"})
        assert ok.status_code == 200, ok.text
        exact_peak = reset_peak(engine.pid)
        before = status_bytes(engine.pid, "VmRSS")
        r = http.post(
            "/v1/files",
            content=body(size),
            headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        # Peak since the reset (or, where it cannot be reset, since start: a stricter bound).
        growth = status_bytes(engine.pid, "VmHWM") - before
        print(f"{size // MIB} MiB {code}: engine RSS grew {growth / MIB:.2f} MiB (peak, exact={exact_peak})")
        assert r.status_code == 400, r.text[:300]
        assert r.headers["content-type"] == "application/json"
        assert r.json()["error"]["code"] == code, r.text
        assert len(r.content) < 1024, f"{len(r.content)} bytes answered: {r.text[:300]}"
        assert growth < MAX_GROWTH, (
            f"engine RSS grew by {growth / MIB:.1f} MiB for a {size // MIB} MiB part "
            f"(peak {'since reset' if exact_peak else 'since start'})"
        )
        # The engine still serves.
        assert http.get("/v1/files").status_code == 200
    assert engine.alive()
