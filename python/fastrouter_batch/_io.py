"""Reading batch files back into `BatchRequest` objects, streamed line by line."""

from __future__ import annotations

import os
from collections.abc import Iterator

from ._core import BatchRequest

#: The UTF-8 byte-order mark a batch file may start with (not part of its first line).
BOM = b"\xef\xbb\xbf"


def read_requests(path: str | os.PathLike[str]) -> Iterator[BatchRequest]:
    """Yields the requests of a batch file in order, skipping blank lines.

    A line that is not a request raises ValueError naming its line number; run
    `validate()` first for a report of every problem at once.
    """
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            if not raw.strip():
                continue
            try:
                yield BatchRequest.from_json(raw)
            except ValueError as e:
                raise ValueError(f"{os.fspath(path)}, line {number}: {e}") from None
