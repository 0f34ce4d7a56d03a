"""``files.content(id)``'s answer, with the shape of openai-python's
``HttpxBinaryResponseContent``: ``.content`` (bytes), ``.text``, ``.json()``, ``.read()``,
``.iter_bytes()`` / ``.iter_text()`` / ``.iter_lines()``, ``.write_to_file(path)``, and the
``a...`` twins for asyncio code. The content is already in memory (``files.content`` reads
it whole); for big files stream with ``files.download`` or ``files.iter_lines`` instead."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

#: openai-python (httpx) hands out chunks of this size when none is asked for.
_DEFAULT_CHUNK = 64 * 1024


class FileContent:
    """A file's whole content. Batch files are JSON Lines in UTF-8."""

    encoding: str | None = "utf-8"
    charset_encoding: str | None = None

    def __init__(self, content: bytes) -> None:
        self._content = content

    @property
    def content(self) -> bytes:
        return self._content

    @property
    def text(self) -> str:
        # httpx decodes with errors="replace": a stray byte never hides the rest.
        return self._content.decode("utf-8", errors="replace")

    def json(self, **kwargs: Any) -> Any:
        """The content parsed as one JSON document (a JSONL file with several lines is not
        one: read those with ``iter_lines()``)."""
        return json.loads(self._content, **kwargs)

    def read(self) -> bytes:
        return self._content

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        size = chunk_size or _DEFAULT_CHUNK
        for start in range(0, len(self._content), size):
            yield self._content[start : start + size]

    iter_raw = iter_bytes

    def iter_text(self, chunk_size: int | None = None) -> Iterator[str]:
        text = self.text
        size = chunk_size or _DEFAULT_CHUNK
        for start in range(0, len(text), size):
            yield text[start : start + size]

    def iter_lines(self) -> Iterator[str]:
        """The lines without their endings (``\\n``, ``\\r\\n`` or ``\\r``, as httpx splits)."""
        text = self.text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        yield from lines

    def write_to_file(self, file: str | os.PathLike[str]) -> None:
        """Writes the content to ``file`` (a path)."""
        with open(file, "wb") as f:
            f.write(self._content)

    def stream_to_file(self, file: str | os.PathLike[str], *, chunk_size: int | None = None) -> None:
        self.write_to_file(file)

    def close(self) -> None:
        return None

    async def aread(self) -> bytes:
        return self._content

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        for chunk in self.iter_bytes(chunk_size):
            yield chunk

    aiter_raw = aiter_bytes

    async def aiter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:
        for chunk in self.iter_text(chunk_size):
            yield chunk

    async def aiter_lines(self) -> AsyncIterator[str]:
        for line in self.iter_lines():
            yield line

    async def astream_to_file(self, file: str | os.PathLike[str], *, chunk_size: int | None = None) -> None:
        from ._offloop import off_loop

        await off_loop(self.write_to_file, file)

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"FileContent({len(self._content)} bytes)"
