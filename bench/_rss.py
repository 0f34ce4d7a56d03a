"""Peak-memory readings shared by the benchmarks (each reader runs in a fresh process)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys


def proc_status_mb(key: str) -> float | None:
    """A `/proc/self/status` field (VmRSS, VmHWM...) in MB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def maxrss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def rss_growth(script: str, which: str, path: str) -> float:
    """Runs `script --rss-child WHICH PATH` in a fresh interpreter and returns the peak RSS
    growth it printed last, as JSON {"before_mb", "after_mb"}."""
    out = subprocess.run(
        [sys.executable, script, "--rss-child", which, path], check=True, capture_output=True, text=True
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return r["after_mb"] - r["before_mb"]
