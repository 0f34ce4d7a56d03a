"""Lists, page by page: ``for item in client.batches.list()`` walks every page; ``.first_page()``
and ``.iter_pages()`` give the pages themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import Any, Generic, TypeVar

from .types import APIObject, CursorPage

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


def _page(cls: type[T], body: dict[str, Any]) -> CursorPage[T]:
    return CursorPage([cls(d) for d in body.get("data", [])], body)


class SyncPager(Generic[T]):
    """Iterates every item over every page; ``.first_page()`` / pages for manual control.
    ``fetch(after)`` gets the page after the item with that id (None: the first)."""

    def __init__(self, fetch: Callable[[str | None], dict[str, Any]], cls: type[T], after: str | None) -> None:
        self._fetch, self._cls, self._after = fetch, cls, after

    def first_page(self) -> CursorPage[T]:
        return _page(self._cls, self._fetch(self._after))

    def iter_pages(self) -> Iterator[CursorPage[T]]:
        page = self.first_page()
        yield page
        while page.has_more and page.last_id:
            page = _page(self._cls, self._fetch(page.last_id))
            yield page

    def __iter__(self) -> Iterator[T]:
        for page in self.iter_pages():
            yield from page.data


class AsyncPager(Generic[T]):
    """``async for`` over every item of every page; ``await pager`` gives the first page."""

    def __init__(
        self, fetch: Callable[[str | None], Awaitable[dict[str, Any]]], cls: type[T], after: str | None
    ) -> None:
        self._fetch, self._cls, self._after = fetch, cls, after

    async def first_page(self) -> CursorPage[T]:
        return _page(self._cls, await self._fetch(self._after))

    def __await__(self) -> Generator[Any, None, CursorPage[T]]:
        return self.first_page().__await__()

    async def iter_pages(self) -> AsyncIterator[CursorPage[T]]:
        page = await self.first_page()
        yield page
        while page.has_more and page.last_id:
            page = _page(self._cls, await self._fetch(page.last_id))
            yield page

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.iter_pages():
            for item in page.data:
                yield item
