"""Waiting for batches: quick polls first, then gentler ones, with a progress display.

The bar (tqdm in a terminal; an ipywidgets bar in notebooks with ``fastrouter-batch[notebook]``)
shows completed / failed / total and the state, and never reaches 100 % before the batch has
actually finished (a batch that is ``finalizing`` shows at most total - 1). Where stderr is
neither a terminal nor a notebook (a pipe, a file, CI logs) a wait prints one line when it
ends instead of bar frames. Ctrl-C stops the waiting, not the batch.
"""

from __future__ import annotations

import sys
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


#: The rate (requests per second) is shown once the wait has lasted this long: before, a few
#: lines finished within milliseconds would read as hundreds of thousands per second.
MIN_RATE_SECONDS = 1.0


def _in_notebook() -> bool:
    """True inside a Jupyter kernel (as ``tqdm.autonotebook`` decides), not a terminal IPython."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:
        return False


def _display_mode(stream: Any) -> str:
    """How progress is shown on ``stream`` (stderr):

    - ``widget``: a Jupyter kernel with ipywidgets (``fastrouter-batch[notebook]``);
    - ``bar``: a terminal, or a Jupyter kernel without ipywidgets (its output renders a text
      bar's carriage returns, so the bar works there without tqdm's ``IProgress`` warning);
    - ``line``: anything else (a pipe, a file, CI logs): no frames, one line at the end.
    """
    if _in_notebook():
        try:
            from tqdm import notebook
        except ImportError:
            return "bar"
        # tqdm.notebook sets IProgress to None when ipywidgets is missing (not in its stubs).
        return "widget" if getattr(notebook, "IProgress", None) is not None else "bar"
    try:
        return "bar" if stream.isatty() else "line"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "line"


class _Tally:
    """What the batches add up to: requests done (a batch not yet finished counts at most
    total - 1: finalizing is not done), failed, in all, and the states."""

    def __init__(self, batches: Sequence[Batch]) -> None:
        self.total = self.done = self.failed = 0
        for b in batches:
            counts = b.request_counts
            total = (counts.total or 0) if counts else 0
            ok = (counts.completed or 0) if counts else 0
            bad = (counts.failed or 0) if counts else 0
            n = ok + bad
            if not b.is_terminal and total:
                n = min(n, total - 1)
            self.total += total
            self.done += n
            self.failed += bad
        self.states = ",".join(sorted({str(b.status) for b in batches}))


class Progress:
    """One display over one or several batches (``run`` splits big jobs): a tqdm bar in a
    terminal or a notebook, one final line elsewhere (see ``_display_mode``).

    The rate is measured over the wall time of this wait, counting only the requests that
    finished during it, and shown only after ``MIN_RATE_SECONDS``.
    """

    def __init__(self, enabled: bool, description: str, stream: Any = None) -> None:
        self._description = description
        self._stream = stream if stream is not None else sys.stderr
        self._mode = _display_mode(self._stream) if enabled and self._stream is not None else None
        self._bar: Any = None
        self._start = time.monotonic()
        self._first_done: int | None = None
        self._last: _Tally | None = None

    def _rate(self, tally: _Tally) -> float | None:
        elapsed = time.monotonic() - self._start
        finished_here = tally.done - (self._first_done or 0)
        if elapsed < MIN_RATE_SECONDS or finished_here <= 0:
            return None
        return finished_here / elapsed

    def _status(self, tally: _Tally) -> str:
        text = f"failed={tally.failed} status={tally.states}"
        rate = self._rate(tally)
        if rate is not None:
            text += f" {rate:.3g} req/s" if rate >= 0.1 else f" {rate * 60:.3g} req/min"
        return text

    def update(self, batches: Sequence[Batch]) -> None:
        if self._mode is None:
            return
        tally = _Tally(batches)
        if self._first_done is None:
            self._first_done = tally.done
        self._last = tally
        if self._mode == "line":
            return
        if self._bar is None:
            self._bar = self._make_bar(tally.total)
        self._bar.total = tally.total
        self._bar.n = tally.done
        self._bar.set_postfix_str(self._status(tally), refresh=False)
        self._bar.refresh()

    def _make_bar(self, total: int) -> Any:
        make: Any
        if self._mode == "widget":
            from tqdm.notebook import tqdm as widget_bar  # imports ipywidgets: only in notebooks

            make = widget_bar
        else:
            from tqdm import tqdm as text_bar

            make = text_bar
        # tqdm's own rate and time left are left out: it sees the counts jump between polls
        # (4 lines done within 14 us read as 284,359 req/s); _status gives the wall-time rate.
        bar_format = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"
        return make(
            total=total, desc=self._description, unit="req", leave=True, bar_format=bar_format, file=self._stream
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._mode == "line" and self._last is not None:
            tally, self._last = self._last, None
            elapsed = time.monotonic() - self._start
            line = f"{self._description}: {tally.done}/{tally.total} requests [{elapsed:.1f} s, {self._status(tally)}]"
            try:
                print(line, file=self._stream, flush=True)
            except (OSError, ValueError):  # a closed pipe must not turn a finished wait into an error
                pass


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
