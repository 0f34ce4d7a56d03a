"""Wall-clock timing shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_of(repeat: int, fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """(best wall-clock seconds of ``repeat`` calls of ``fn(*args)``, the last result). The
    previous call's result is freed before the next call starts."""
    best, result = float("inf"), None
    for _ in range(repeat):
        result = None
        t = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - t)
    return best, result
