"""A small scripted HTTP/1.1 proxy on 127.0.0.1, put between a client and the local engine
to make the network misbehave on purpose.

    with FaultProxy(server.url) as proxy:
        proxy.add(Respond(503), method="GET", path="/v1/files/", times=2)
        client = Client(server.api_key, proxy.url)
        ...
        assert proxy.count("GET", "/v1/files/") == 3

Every request is read in full (or in part, for `ResetUpload`) and then either forwarded to
the engine (the default) or handled by the first rule that matches it. Each connection
carries one request: every answer says `Connection: close`, so a client opens a fresh
connection per attempt and attempts are easy to count.

Actions:
- `Respond(status, body=None, headers=None)`: answer without forwarding (a JSON error body
  by default).
- `ForwardThenRespond(status, ...)`: forward to the engine (which acts on it), discard the
  engine's answer and answer `status` instead: "the server did it but the answer was lost".
- `ResetUpload(after)`: read `after` bytes of the request body, then reset the connection
  (SO_LINGER 0: the peer sees ECONNRESET).
- `ResetDownload(after)`: forward, relay the engine's status line and headers and `after`
  bytes of its body, then reset the connection.
- `Stall(seconds)`: read the request and answer nothing for `seconds` (or until the proxy
  closes), then close the connection.
- `StallDownload(after, seconds)`: forward, relay the head and `after` bytes of the body,
  then send nothing for `seconds` (or until the proxy closes) and close.

Everything is bounded: sockets have timeouts and `close()` ends every connection.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

IO_TIMEOUT = 30.0
CHUNK = 64 * 1024


@dataclass
class Respond:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ForwardThenRespond:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class ResetUpload:
    after: int


@dataclass
class ResetDownload:
    after: int


@dataclass
class Stall:
    seconds: float


@dataclass
class StallDownload:
    after: int
    seconds: float


@dataclass
class Seen:
    """One request the proxy received, and what it did with it."""

    method: str
    path: str  # without the query
    target: str  # with the query
    headers: dict[str, str]  # lowercase names
    body_len: int | None = None  # bytes of body read (None until read)
    action: str = "forward"
    status: int | None = None  # the status the client was sent, if any


@dataclass
class _Rule:
    action: Any
    method: str | None
    path: str | None
    prefix: bool
    times: int


REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _error_body(status: int) -> bytes:
    kind = "rate_limit_error" if status == 429 else "server_error"
    code = "rate_limited" if status == 429 else "proxy_fault"
    return json.dumps(
        {"error": {"message": f"injected {status} by the fault proxy", "type": kind, "code": code, "status": status}}
    ).encode()


def _rst(sock: socket.socket) -> None:
    """Closes with SO_LINGER 0: a TCP reset, not an orderly FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Reader:
    """Buffered reads off a socket: header block, then exact byte counts."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def head(self) -> bytes | None:
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(CHUNK)
            if not chunk:
                return None
            self.buf += chunk
            if len(self.buf) > 1 << 20:
                raise ValueError("header block too large")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head

    def chunks(self, n: int):
        """Yields the next `n` bytes, in pieces as they arrive."""
        while n > 0:
            if self.buf:
                piece, self.buf = self.buf[:n], self.buf[n:]
            else:
                piece = self.sock.recv(min(CHUNK, n))
                if not piece:
                    raise ConnectionError("peer closed mid-body")
            n -= len(piece)
            yield piece


def _parse_head(head: bytes) -> tuple[str, dict[str, str], list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    raw = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        raw.append((name.strip(), value.strip()))
    return lines[0], {k.lower(): v for k, v in raw}, raw


class FaultProxy:
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.requests: list[Seen] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._conns: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._accept_thread = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        self._accept_thread.start()

    # --- scripting ---------------------------------------------------------------------

    def add(
        self, action: Any, *, method: str | None = None, path: str | None = None, prefix: bool = True, times: int = 1
    ) -> None:
        """Applies `action` to the next `times` requests matching `method` and `path`
        (a prefix of the request path unless `prefix=False`)."""
        with self._lock:
            self._rules.append(_Rule(action, method, path, prefix, times))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.requests.clear()

    def pending_rules(self) -> int:
        with self._lock:
            return sum(r.times for r in self._rules)

    def count(self, method: str | None = None, path: str | None = None, prefix: bool = True) -> int:
        return len(self.matching(method, path, prefix))

    def matching(self, method: str | None = None, path: str | None = None, prefix: bool = True) -> list[Seen]:
        with self._lock:
            return [s for s in self.requests if self._matches(s, method, path, prefix)]

    @staticmethod
    def _matches(seen: Seen, method: str | None, path: str | None, prefix: bool) -> bool:
        if method is not None and seen.method != method:
            return False
        if path is not None:
            return seen.path.startswith(path) if prefix else seen.path == path
        return True

    def _take_rule(self, seen: Seen) -> Any:
        with self._lock:
            self.requests.append(seen)
            for rule in self._rules:
                if rule.times > 0 and self._matches(seen, rule.method, rule.path, rule.prefix):
                    rule.times -= 1
                    if rule.times == 0:
                        self._rules.remove(rule)
                    return rule.action
        return None

    # --- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._closed.set()
        try:
            self._listener.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        self._accept_thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(IO_TIMEOUT)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="faultproxy-conn", daemon=True).start()

    # --- one connection, one request -----------------------------------------------------

    def _serve(self, conn: socket.socket) -> None:
        reset = False
        try:
            reset = self._handle(conn)
        except (OSError, ValueError, ConnectionError):
            pass
        finally:
            with self._lock:
                self._conns.discard(conn)
            if not reset:
                try:
                    conn.close()
                except OSError:
                    pass

    def _handle(self, conn: socket.socket) -> bool:
        """Serves one request; returns True when the connection was reset (already closed)."""
        reader = _Reader(conn)
        head = reader.head()
        if head is None:
            return False
        request_line, headers, raw_headers = _parse_head(head)
        method, target, _version = request_line.split(" ", 2)
        seen = Seen(method=method, path=target.split("?", 1)[0], target=target, headers=headers)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise ValueError("chunked request bodies are not supported by the fault proxy")
        length = int(headers.get("content-length", "0") or 0)
        action = self._take_rule(seen)

        if isinstance(action, ResetUpload):
            seen.action = "reset_upload"
            got = 0
            for piece in reader.chunks(min(action.after, length)):
                got += len(piece)
            seen.body_len = got
            _rst(conn)
            return True

        if isinstance(action, (Respond, Stall)):
            got = sum(len(p) for p in reader.chunks(length))
            seen.body_len = got
            if isinstance(action, Stall):
                seen.action = "stall"
                self._closed.wait(action.seconds)
                return False
            seen.action = "respond"
            self._respond(conn, seen, action.status, action.body, action.headers)
            return False

        # Forward to the engine (then maybe replace or cut its answer).
        up = socket.create_connection(self.upstream, timeout=IO_TIMEOUT)
        try:
            out_headers = [(k, v) for k, v in raw_headers if k.lower() not in ("connection", "keep-alive")]
            out_headers.append(("Connection", "close"))
            up.sendall(
                (request_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out_headers) + "\r\n").encode("latin-1")
            )
            got = 0
            for piece in reader.chunks(length):
                got += len(piece)
                up.sendall(piece)
            seen.body_len = got
            if isinstance(action, ForwardThenRespond):
                seen.action = "forward_then_respond"
                while up.recv(CHUNK):  # let the engine finish, discard its answer
                    pass
                self._respond(conn, seen, action.status, action.body, action.headers)
                return False
            if isinstance(action, StallDownload):
                seen.action = "stall_download"
                return self._relay(up, conn, seen, action.after, stall=action.seconds)
            cut = action.after if isinstance(action, ResetDownload) else None
            seen.action = "reset_download" if cut is not None else "forward"
            return self._relay(up, conn, seen, cut)
        finally:
            up.close()

    def _respond(self, conn: socket.socket, seen: Seen, status: int, body: Any, headers: dict[str, str]) -> None:
        if body is None:
            data = _error_body(status)
        elif isinstance(body, (bytes, bytearray)):
            data = bytes(body)
        else:
            data = json.dumps(body).encode()
        seen.status = status
        lines = [
            f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
            "Content-Type: application/json",
            f"Content-Length: {len(data)}",
            "Connection: close",
            "x-request-id: req_faultproxy",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data)

    def _relay(
        self, up: socket.socket, conn: socket.socket, seen: Seen, cut: int | None, stall: float | None = None
    ) -> bool:
        """Relays the engine's answer (ends with the engine's close); with `cut`, only the
        head and `cut` body bytes, then a reset (or, with `stall`, silence for that long and
        a close). Returns True when it reset."""
        upr = _Reader(up)
        head = upr.head()
        if head is None:
            return False
        status_line, _h, raw = _parse_head(head)
        seen.status = int(status_line.split(" ", 2)[1])
        raw = [(k, v) for k, v in raw if k.lower() not in ("connection", "keep-alive")] + [("Connection", "close")]
        conn.sendall((status_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in raw) + "\r\n").encode("latin-1"))
        sent = 0
        pending = upr.buf
        upr.buf = b""
        while True:
            piece = pending or up.recv(CHUNK)
            pending = b""
            if not piece:
                return False
            if cut is not None and sent + len(piece) >= cut:
                conn.sendall(piece[: cut - sent])
                if stall is not None:
                    self._closed.wait(stall)
                    return False
                time.sleep(0.05)  # let the partial body reach the client before the reset
                _rst(conn)
                return True
            conn.sendall(piece)
            sent += len(piece)
