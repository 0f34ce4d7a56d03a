"""Lists, openai-python's shape: ``client.batches.list()`` gives the first page (``.data``,
``.has_more``, ``.first_id``, ``.last_id``), and iterating it walks every item of every page
(``for b in client.batches.list()``); ``.iter_pages()``, ``.has_next_page()`` and
``.get_next_page()`` give the pages themselves. The asyncio twin, ``AsyncPager``, is what
openai's ``AsyncPaginator`` is: ``async for`` over every item, ``await`` for the first page."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping
from typing import Any, Generic, TypeVar

from .types import APIObject

T = TypeVar("T", bound=APIObject)

#: The service's page size bounds for ``batches.list`` (what it answers for limit=0).
MAX_LIST_LIMIT = 100


def check_limit(limit: Any, maximum: int | None) -> None:
    """A page size the server can read: an int >= 1, checked here (when the list is asked
    for, before any page is) because a negative one does not even parse there. The upper
    bound stays the server's to enforce (it answers a BadRequestError naming ``limit``), as
    the hosted service may allow more."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"limit must be an int, got {type(limit).__name__}")
    if limit < 1:
        raise ValueError(
            f"limit must be between 1 and {maximum}, got {limit}."
            if maximum is not None
            else f"limit must be at least 1, got {limit}."
        )


class CursorPage(Generic[T]):
    """One page of a list: ``data``, ``has_more``, ``first_id``, ``last_id``, ``object``."""

    def __init__(self, cls: type[T], body: Mapping[str, Any]) -> None:
        data = [cls(d) for d in body.get("data") or []]
        self.data: list[T] = data
        self.object: str = body.get("object") or "list"
        self.has_more: bool = bool(body.get("has_more"))
        self.first_id: str | None = body.get("first_id") or (getattr(data[0], "id", None) if data else None)
        self.last_id: str | None = body.get("last_id") or (getattr(data[-1], "id", None) if data else None)

    def has_next_page(self) -> bool:
        """Whether another page follows (the server said so, and this page names where)."""
        return self.has_more and bool(self.last_id)

    def __len__(self) -> int:
        """The items on this page."""
        return len(self.data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(len={len(self.data)}, has_more={self.has_more})"


class SyncCursorPage(CursorPage[T]):
    """A page of a blocking list. Iterating it gives every item from this page on, fetching
    the next pages as needed (openai-python's auto-paging); ``.data`` is this page's."""

    def __init__(self, fetch: Callable[[str | None], dict[str, Any]], cls: type[T], body: Mapping[str, Any]) -> None:
        super().__init__(cls, body)
        self._fetch, self._cls = fetch, cls

    def get_next_page(self) -> SyncCursorPage[T]:
        if not self.has_next_page():
            raise RuntimeError("No more pages: check has_next_page() first.")
        return SyncCursorPage(self._fetch, self._cls, self._fetch(self.last_id))

    def first_page(self) -> SyncCursorPage[T]:
        """This page (kept for callers of the earlier pager, whose list() fetched lazily)."""
        return self

    def iter_pages(self) -> Iterator[SyncCursorPage[T]]:
        page = self
        yield page
        while page.has_next_page():
            page = page.get_next_page()
            yield page

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.data


def first_sync_page(
    fetch: Callable[[str | None], dict[str, Any]], cls: type[T], after: str | None
) -> SyncCursorPage[T]:
    """The page after the item ``after`` (None: the first), fetched now as openai does."""
    return SyncCursorPage(fetch, cls, fetch(after))


class AsyncCursorPage(CursorPage[T]):
    """A page of an asyncio list: ``async for`` gives every item from this page on."""

    def __init__(
        self, fetch: Callable[[str | None], Awaitable[dict[str, Any]]], cls: type[T], body: Mapping[str, Any]
    ) -> None:
        super().__init__(cls, body)
        self._fetch, self._cls = fetch, cls

    async def get_next_page(self) -> AsyncCursorPage[T]:
        if not self.has_next_page():
            raise RuntimeError("No more pages: check has_next_page() first.")
        return AsyncCursorPage(self._fetch, self._cls, await self._fetch(self.last_id))

    async def iter_pages(self) -> AsyncIterator[AsyncCursorPage[T]]:
        page = self
        yield page
        while page.has_next_page():
            page = await page.get_next_page()
            yield page

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item


class AsyncPager(Generic[T]):
    """``async for`` over every item of every page; ``await pager`` gives the first page
    (openai-python's ``AsyncPaginator``). Nothing is fetched until then."""

    def __init__(
        self, fetch: Callable[[str | None], Awaitable[dict[str, Any]]], cls: type[T], after: str | None
    ) -> None:
        self._fetch, self._cls, self._after = fetch, cls, after

    async def first_page(self) -> AsyncCursorPage[T]:
        return AsyncCursorPage(self._fetch, self._cls, await self._fetch(self._after))

    def __await__(self) -> Generator[Any, None, AsyncCursorPage[T]]:
        return self.first_page().__await__()

    async def iter_pages(self) -> AsyncIterator[AsyncCursorPage[T]]:
        page = await self.first_page()
        async for p in page.iter_pages():
            yield p

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item
