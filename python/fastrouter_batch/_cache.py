"""The result cache: each successful result kept in a local SQLite file, keyed by what the
request asks (its service scope, provider, url and body: never its custom_id), so running
the same requests again submits nothing and changing ten rows submits ten.

Python's ``sqlite3`` rather than Rust's rusqlite: the cache is a few hundred lines of SQL
around a run that is already in Python (keys are hashed from the lines the builder made,
hits become an extra result source), sqlite3 is in every Python, and WAL plus a busy
timeout is what makes two processes safe on one file: readers never block, writers take
turns (each write is one short transaction, retried by SQLite for up to ``timeout``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: The default bound on the file's answers: the least recently used go past it.
DEFAULT_MAX_BYTES = 1 << 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    response TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_used ON results (used);
"""


def default_path() -> Path:
    """``<user cache dir>/fastrouter-batch/results.sqlite3``: ``$XDG_CACHE_HOME`` or
    ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fastrouter-batch" / "results.sqlite3"


def scope(base_url: str | None) -> str:
    """Which service answered: a loopback engine (any port: the simulator, a local test
    engine) is ``local``, so its answers never stand in for the hosted service's."""
    if base_url is None:
        return "hosted"
    host = urlsplit(base_url).hostname or ""
    if host in ("localhost", "::1") or host.startswith("127."):
        return "local"
    return base_url.rstrip("/")


def request_key(d: Any, service: str) -> tuple[str, str]:
    """``(custom_id, key)`` of one request (a parsed line): the key a SHA-256 of the service
    scope, provider, url and the body with its keys sorted (so the same request written in
    another key order is the same request)."""
    body = json.dumps(d.get("body"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = "\x00".join((service, str(d.get("provider")), str(d.get("url")), body))
    return str(d.get("custom_id")), hashlib.sha256(text.encode()).hexdigest()


class ResultCache:
    """A SQLite file of results by request content. ``ResultCache()`` opens the default
    one (under the user cache dir), ``ResultCache(path)`` another; ``max_bytes`` bounds it
    (least recently used answers go first). Safe to share between processes."""

    def __init__(
        self, path: str | os.PathLike[str] | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES, timeout: float = 60.0
    ) -> None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        self.path = Path(path) if path is not None else default_path()
        if self.path.is_dir():
            raise IsADirectoryError(f"cache path {str(self.path)!r} is a directory; give a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._timeout = timeout
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> _Closing:
        db = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        return _Closing(db)

    def get_many(self, keys: list[str]) -> dict[str, str]:
        """``{key: response JSON}`` for the keys present; marks them used."""
        found: dict[str, str] = {}
        now = time.time()
        with self._connect() as db:
            for chunk in _chunks(keys, 500):
                marks = ",".join("?" * len(chunk))
                for key, response in db.execute(f"SELECT key, response FROM results WHERE key IN ({marks})", chunk):
                    found[key] = response
            if found:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("UPDATE results SET used = ? WHERE key = ?", [(now, k) for k in found])
                db.execute("COMMIT")
        return found

    def put_many(self, items: Iterable[tuple[str, str]]) -> int:
        """Stores ``(key, response JSON)`` pairs in one transaction, then trims the file to
        ``max_bytes``. Returns how many were stored."""
        now = time.time()
        rows = [(k, r, len(r), now, now) for k, r in items]
        if not rows:
            return 0
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "INSERT INTO results (key, response, size, created, used) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET "
                "response = excluded.response, size = excluded.size, used = excluded.used",
                rows,
            )
            self._trim(db)
            db.execute("COMMIT")
        return len(rows)

    def _trim(self, db: sqlite3.Connection) -> None:
        (total,) = db.execute("SELECT COALESCE(SUM(size), 0) FROM results").fetchone()
        if total <= self.max_bytes:
            return
        # Down to 90%, least recently used first: not one delete per new answer.
        excess = total - int(self.max_bytes * 0.9)
        doomed: list[str] = []
        for key, size in db.execute("SELECT key, size FROM results ORDER BY used, key"):
            doomed.append(key)
            excess -= size
            if excess <= 0:
                break
        db.executemany("DELETE FROM results WHERE key = ?", [(k,) for k in doomed])

    def clear(self) -> None:
        """Forgets every result."""
        with self._connect() as db:
            db.execute("DELETE FROM results")
        with self._connect() as db:
            db.execute("VACUUM")

    def __len__(self) -> int:
        with self._connect() as db:
            (n,) = db.execute("SELECT COUNT(*) FROM results").fetchone()
        return int(n)

    @property
    def size_bytes(self) -> int:
        """The answers' total size (what ``max_bytes`` bounds)."""
        with self._connect() as db:
            (n,) = db.execute("SELECT COALESCE(SUM(size), 0) FROM results").fetchone()
        return int(n)

    def __repr__(self) -> str:
        return f"ResultCache(path={str(self.path)!r}, max_bytes={self.max_bytes})"


class _Closing:
    """A connection as a context manager that closes it (sqlite3's own only commits)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        return self._db

    def __exit__(self, *exc: object) -> None:
        if self._db.in_transaction:
            self._db.rollback()
        self._db.close()


def _chunks(items: list[str], n: int) -> Iterator[list[str]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def open_cache(cache: Any) -> ResultCache | None:
    """``run``'s ``cache=``: False/None (off), True (the default file), a path, or a
    ``ResultCache``."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return ResultCache()
    if isinstance(cache, ResultCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return ResultCache(cache)
    raise TypeError(f"cache must be True, a path or a ResultCache, got {type(cache).__name__}")
