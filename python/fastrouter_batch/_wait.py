"""Waiting for batches: quick polls first, then gentler ones, with a progress bar.

The bar (tqdm; ``tqdm.auto`` widgets in notebooks) shows completed / failed / total and the
state, and never reaches 100 % before the batch has actually finished (a batch that is
``finalizing`` shows at most total - 1). Ctrl-C stops the waiting, not the batch.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._core import FastRouterError
from .types import Batch

#: First poll delay: a small batch on the local engine is done in milliseconds.
FIRST_POLL = 0.05
#: Delays grow by this factor up to MAX_POLL: a 24 h hosted batch is polled every 30 s.
BACKOFF = 1.5
MAX_POLL = 30.0


class WaitTimeout(FastRouterError, TimeoutError):
    """``wait(..., timeout=...)`` ran out before the batch finished (the batch goes on).

    ``batch_ids`` (a list of str) names the batches waited for, which keep running on the
    service: ``batches.wait``'s one batch, or every batch of a ``run`` (in input order).
    """

    batch_ids: list[str]

    def __init__(self, *args: object, batch_ids: Sequence[str] = ()) -> None:
        super().__init__(*args)
        self.batch_ids = list(batch_ids)


class Progress:
    """One bar over one or several batches (``run`` splits big jobs)."""

    def __init__(self, enabled: bool, description: str) -> None:
        self._bar: Any = None
        self._make: Any = None
        if enabled:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # tqdm is a dependency, but stay usable without it
                return
            # Made at the first update, when the total is known.
            self._make = lambda total: tqdm(total=total, desc=description, unit="req", leave=True)

    def update(self, batches: Sequence[Batch]) -> None:
        if self._make is None:
            return
        total = done = failed = 0
        for b in batches:
            counts = b.request_counts
            total += (counts.total or 0) if counts else 0
            ok = (counts.completed or 0) if counts else 0
            bad = (counts.failed or 0) if counts else 0
            # A batch not yet finished counts at most total - 1 (finalizing is not done).
            n = ok + bad
            if not b.is_terminal and counts and counts.total:
                n = min(n, counts.total - 1)
            done += n
            failed += bad
        states = sorted({b.status for b in batches})
        if self._bar is None:
            self._bar = self._make(total)
        self._bar.total = total
        self._bar.n = done
        self._bar.set_postfix_str(f"failed={failed} status={','.join(states)}", refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _next_delay(delay: float, poll_interval: float | None) -> float:
    return poll_interval if poll_interval is not None else min(delay * BACKOFF, MAX_POLL)


def _check_timeout(start: float, timeout: float | None, batches: Sequence[Batch]) -> None:
    if timeout is not None and time.monotonic() - start >= timeout:
        unfinished = [b.id for b in batches if not b.is_terminal]
        raise WaitTimeout(
            f"batch {', '.join(unfinished)} not finished after {timeout:g} s (it keeps running)",
            batch_ids=[b.id for b in batches],
        )


class _Poll:
    """The schedule both waits share: the delay before each poll, and the timeout."""

    def __init__(self, batch_ids: Sequence[str], poll_interval: float | None, timeout: float | None, progress: bool):
        self.start = time.monotonic()
        self.delay = poll_interval if poll_interval is not None else FIRST_POLL
        self.poll_interval, self.timeout = poll_interval, timeout
        self.bar = Progress(progress, "batch" if len(batch_ids) == 1 else f"{len(batch_ids)} batches")

    def finished(self, batches: Sequence[Batch]) -> bool:
        """Draws the bar; True when every batch is terminal; raises WaitTimeout when out of time."""
        self.bar.update(batches)
        if all(b.is_terminal for b in batches):
            return True
        _check_timeout(self.start, self.timeout, batches)
        return False

    def next_sleep(self) -> float:
        """How long to sleep now (never past the timeout); backs the next delay off."""
        sleep = self.delay
        if self.timeout is not None:
            sleep = max(0.0, min(sleep, self.timeout - (time.monotonic() - self.start)))
        self.delay = _next_delay(self.delay, self.poll_interval)
        return sleep


def wait_all(
    retrieve: Callable[[str], Batch],
    batch_ids: Sequence[str],
    *,
    poll_interval: float | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> list[Batch]:
    """Polls until every batch is terminal; returns them in the order given."""
    poll = _Poll(batch_ids, poll_interval, timeout, progress)
    try:
        batches = [retrieve(i) for i in batch_ids]
        while not poll.finished(batches):
            time.sleep(poll.next_sleep())
            batches = [b if b.is_terminal else retrieve(b.id) for b in batches]
        return batches
    finally:
        poll.bar.close()


async def await_all(
    retrieve: Callable[[str], Awaitable[Batch]],
    batch_ids: Sequence[str],
    *,
    poll_interval: float | None = None,
    timeout: float | None = None,
    progress: bool = True,
) -> list[Batch]:
    """``wait_all`` for asyncio."""
    # Imported here, where a loop runs (so it is loaded already): the sync paths, the CLI's
    # among them, never pay asyncio's import (about half of this package's).
    import asyncio

    poll = _Poll(batch_ids, poll_interval, timeout, progress)
    try:
        batches = [await retrieve(i) for i in batch_ids]
        while not poll.finished(batches):
            await asyncio.sleep(poll.next_sleep())
            batches = [b if b.is_terminal else await retrieve(b.id) for b in batches]
        return batches
    finally:
        poll.bar.close()
