"""Cutting a batch file into parts the service accepts: at most ``max_requests`` lines and
``max_bytes`` bytes each. Lines are copied as bytes (never parsed), in order; blank lines
are dropped. Memory stays at one line."""

from __future__ import annotations

import os
from pathlib import Path

from ._io import BOM


def split_file(
    source: str | os.PathLike[str], out_dir: Path, *, max_requests: int, max_bytes: int, stem: str = "part"
) -> list[tuple[Path, int, int]]:
    """Writes ``out_dir/{stem}-0001.jsonl``... and returns (path, lines, bytes) per part."""
    parts: list[tuple[Path, int, int]] = []
    out = None
    lines = size = 0

    def close() -> None:
        nonlocal out
        if out is not None:
            out.close()
            parts.append((Path(out.name), lines, size))
            out = None

    try:
        with open(source, "rb") as f:
            for number, raw in enumerate(f, start=1):
                if number == 1 and raw.startswith(BOM):
                    raw = raw[len(BOM) :]
                if not raw.strip():
                    continue
                if not raw.endswith(b"\n"):
                    raw += b"\n"
                if out is not None and (lines >= max_requests or size + len(raw) > max_bytes):
                    close()
                if out is None:
                    out = open(out_dir / f"{stem}-{len(parts) + 1:04d}.jsonl", "wb")
                    lines = size = 0
                out.write(raw)
                lines += 1
                size += len(raw)
        close()
    finally:
        if out is not None:
            out.close()
    return parts
