"""``client.files``: upload, retrieve, list, delete and read batch files; the Rust client
(``_core.ApiClient``) does the work, this layer takes Python's kinds of input and types the
answers."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any, Union

from . import _core
from ._content import FileContent
from ._pages import AsyncPager, SyncCursorPage, check_limit, first_sync_page
from .types import FileDeleted, FileObject

log = logging.getLogger("fastrouter_batch")

FileInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], _core.BatchBuilder]


def _upload_source(file: FileInput) -> tuple[Path | bytes, str]:
    """What the Rust client uploads (a path, streamed, or bytes) and the filename to send."""
    if isinstance(file, _core.BatchBuilder):
        return file.to_bytes(), "batch.jsonl"
    if isinstance(file, (bytes, bytearray)):
        return bytes(file), "batch.jsonl"
    if isinstance(file, memoryview):
        return file.tobytes(), "batch.jsonl"
    if isinstance(file, (str, os.PathLike)):
        path = Path(file)
        if path.is_dir():
            # Before any request: reading a directory fails in a way a retry cannot mend.
            raise IsADirectoryError(errno.EISDIR, "files.create needs a file, not a directory", str(path))
        return path, path.name
    if hasattr(file, "read"):
        name = getattr(file, "name", None)
        # A real file opened from disk at its start: stream it by path instead of reading it.
        if isinstance(name, str) and os.path.isfile(name) and getattr(file, "tell", lambda: 0)() == 0:
            return Path(name), Path(name).name
        data = file.read()
        if isinstance(data, str):
            raise TypeError("files.create needs a binary file object (open(path, 'rb')), not a text one")
        return bytes(data), Path(name).name if isinstance(name, str) else "batch.jsonl"
    raise TypeError(
        f"files.create: file must be a path, bytes, a binary file or a BatchBuilder, got {type(file).__name__}"
    )


class Files:
    def __init__(self, api: _core.ApiClient) -> None:
        self._api = api

    def create(self, file: FileInput, *, purpose: str = "batch") -> FileObject:
        """Uploads a batch file: a path (streamed from disk), bytes, a binary file or a builder."""
        source, filename = _upload_source(file)
        log.debug("uploading %s", filename)
        return FileObject(self._api.create_file(source, filename=filename, purpose=purpose))

    def retrieve(self, file_id: str) -> FileObject:
        return FileObject(self._api.retrieve_file(file_id))

    def list(
        self, *, purpose: str | None = None, limit: int | None = None, after: str | None = None
    ) -> SyncCursorPage[FileObject]:
        """The first page (fetched now); iterating it walks every file of every page."""
        check_limit(limit, None)

        def fetch(page_after: str | None) -> dict[str, Any]:
            return self._api.list_files(purpose=purpose, limit=limit, after=page_after)

        return first_sync_page(fetch, FileObject, after)

    def delete(self, file_id: str) -> FileDeleted:
        return FileDeleted(self._api.delete_file(file_id))

    def content(self, file_id: str) -> FileContent:
        """The whole content, in memory, as openai-python gives it: ``.content`` (bytes),
        ``.text``, ``.iter_lines()``, ``.write_to_file(path)``... For big files use
        ``download`` or ``iter_lines`` (streamed)."""
        return FileContent(self._api.file_content(file_id))

    def download(self, file_id: str, path: str | os.PathLike[str]) -> Path:
        """Streams the content to ``path`` (written aside, then moved into place)."""
        self._api.download_file(file_id, Path(path))
        return Path(path)

    def iter_lines(self, file_id: str) -> Iterator[str]:
        """The content's lines, streamed (without newlines). A download cut off mid-way is
        opened again (within ``max_retries``) where it stopped. A line over 64 MiB ends the
        lines with an error naming it (``line_too_large``): an endless one is never held."""
        return iter(self._api.file_lines(file_id))


class AsyncFiles:
    def __init__(self, api: _core.ApiClient) -> None:
        self._api = api

    async def create(self, file: FileInput, *, purpose: str = "batch") -> FileObject:
        source, filename = _upload_source(file)
        return FileObject(await self._api.acreate_file(source, filename=filename, purpose=purpose))

    async def retrieve(self, file_id: str) -> FileObject:
        return FileObject(await self._api.aretrieve_file(file_id))

    def list(
        self, *, purpose: str | None = None, limit: int | None = None, after: str | None = None
    ) -> AsyncPager[FileObject]:
        check_limit(limit, None)

        async def fetch(page_after: str | None) -> dict[str, Any]:
            return await self._api.alist_files(purpose=purpose, limit=limit, after=page_after)

        return AsyncPager(fetch, FileObject, after)

    async def delete(self, file_id: str) -> FileDeleted:
        return FileDeleted(await self._api.adelete_file(file_id))

    async def content(self, file_id: str) -> FileContent:
        return FileContent(await self._api.afile_content(file_id))

    async def download(self, file_id: str, path: str | os.PathLike[str]) -> Path:
        await self._api.adownload_file(file_id, Path(path))
        return Path(path)

    def iter_lines(self, file_id: str) -> AsyncIterator[str]:
        return self._api.file_lines(file_id).__aiter__()
