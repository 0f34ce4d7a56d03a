"""Blocking work awaited from asyncio: each call in a dedicated daemon thread of its own."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

R = TypeVar("R")


def off_loop(fn: Callable[..., R], *args: Any, abandon: Callable[[R], None] | None = None) -> asyncio.Future[R]:
    """Runs ``fn(*args)`` in a dedicated daemon thread; awaitable for its result.

    Not the loop's default executor: a workflow never takes a thread other code of the
    application waits for, and a cancelled await leaves nothing that ``asyncio.run`` joins
    at shutdown. ``abandon(result)`` is called with a result nobody awaits any more (the
    await was cancelled, or the loop closed), to release what it holds."""
    # Imported here, where a loop runs (see _wait.await_all).
    import asyncio

    loop = asyncio.get_running_loop()
    future: asyncio.Future[R] = loop.create_future()

    def deliver(ok: bool, value: Any) -> None:
        if future.cancelled():
            if ok and abandon is not None:
                abandon(value)
        elif ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        value: Any
        try:
            ok, value = True, fn(*args)
        except BaseException as e:  # delivered to the awaiting task
            ok, value = False, e
        try:
            loop.call_soon_threadsafe(deliver, ok, value)
        except RuntimeError:  # the loop is closed: nobody will take the result
            if ok and abandon is not None:
                abandon(value)

    threading.Thread(target=work, name=f"fastrouter-batch-{getattr(fn, '__name__', 'work')}", daemon=True).start()
    return future
