"""Reading batch files back into `BatchRequest` objects, streamed line by line."""

from __future__ import annotations

import os
from collections.abc import Iterator

from ._core import BatchRequest, Limits

#: The UTF-8 byte-order mark a batch file may start with (not part of its first line).
BOM = b"\xef\xbb\xbf"


def bounded_lines(path: str | os.PathLike[str], limits: Limits) -> Iterator[tuple[str, bytes]]:
    """The non-blank lines of the file at ``path`` as ``(where, line)``: ``where`` is
    ``"FILE, line N"``, the line has its ending (and the first line its byte-order mark).
    Past ``limits`` reading stops with ValueError (``file_too_large``, ``line_too_large``)
    holding at most one line's worth, whatever the source (a FIFO, ``/dev/zero``)."""
    max_line, max_bytes = limits.max_line_bytes, limits.max_bytes
    name = os.fspath(path)
    read = 0
    with open(path, "rb") as f:
        number = 0
        # At most the longest line allowed, its "\r\n", and one byte that says it is longer.
        while raw := f.readline(max_line + 3):
            number += 1
            read += len(raw)
            where = f"{name}, line {number}"
            if read > max_bytes:
                raise ValueError(
                    f"{where}: the file passes the {max_bytes}-byte limit here; reading stopped [file_too_large]"
                )
            line = raw[:-1] if raw.endswith(b"\n") else raw
            # (A byte-order mark counts in the first line's length, as the validator has it.)
            if len(line.removesuffix(b"\r")) > max_line:
                raise ValueError(f"{where}: the line is over the {max_line}-byte limit per line [line_too_large]")
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            # Blank as the validator has it: JSON's whitespace only.
            if raw.strip(b" \t\r\n"):
                yield where, raw


def read_requests(path: str | os.PathLike[str], *, limits: Limits | None = None) -> Iterator[BatchRequest]:
    """Yields the requests of a batch file in order, skipping blank lines.

    A line that is not a request raises ValueError naming its line number; run
    `validate()` first for a report of every problem at once. The file's limits are
    ``limits`` (a batch file's by default: 200 MB, 8 MiB per line, as ``validate()``):
    past them reading stops with ValueError (``file_too_large``, ``line_too_large``),
    holding at most one line's worth, whatever the source (a FIFO, ``/dev/zero``).
    """
    for where, raw in bounded_lines(path, limits if limits is not None else Limits()):
        try:
            yield BatchRequest.from_json(raw)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
