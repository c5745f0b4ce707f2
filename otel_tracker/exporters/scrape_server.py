"""``ScrapeServer``: the ``/metrics`` endpoint, bounded whatever its clients do.

prometheus_client's own server starts a thread per connection and waits on a slow
client forever: 200 scrapers at once and 50 clients that never finish a request
took 46% of a pipeline's throughput (every thread competes with the pipeline for
the GIL) and made a third of the scrapes fail. This one is a single thread
over a selector:

- at most :data:`MAX_CONNECTIONS` open at once; beyond that, new ones wait in the
  kernel's backlog (costing the pipeline nothing) or are refused by it;
- at most :data:`ACCEPTS_PER_S` new connections a second (a token bucket);
- a request head must arrive within :data:`REQUEST_TIMEOUT_S` and fit in 8 KiB;
- the response is rendered at most once per :data:`RENDER_EVERY_S` (the data
  changes once per sample anyway), so a scrape costs a send, not a collection;
- a forked child (a Pool worker) closes its copies of the listening socket and of
  open connections at once: they would keep the port bound after the run and
  leave scrapers waiting on connections nobody serves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
import time
import weakref
from collections.abc import Callable

logger = logging.getLogger(__name__)

MAX_CONNECTIONS = 256
ACCEPTS_PER_S = 100.0
REQUEST_TIMEOUT_S = 2.0
RENDER_EVERY_S = 1.0
MAX_REQUEST_BYTES = 8192

_servers: weakref.WeakSet[ScrapeServer] = weakref.WeakSet()
_fork_hook = False


class _Connection:
    __slots__ = ("deadline", "inbox", "outbox", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.inbox = b""
        self.outbox = b""


class ScrapeServer:
    """Serves ``render()``'s bytes at ``/metrics`` (and ``/``) on ``host:port``."""

    def __init__(
        self,
        host: str,
        port: int,
        render: Callable[[], bytes],
        content_type: str,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._render = render
        self._content_type = content_type
        self._clock = clock
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(64)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self.port = self._listener.getsockname()[1]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._listening = True
        self._connections: dict[int, _Connection] = {}
        self._tokens = ACCEPTS_PER_S
        self._refilled = clock()
        self._body = b""
        self._rendered = -RENDER_EVERY_S
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._stopping = False
        self.served = 0
        self._pid = os.getpid()
        _close_in_forked_children(self)
        self._thread = threading.Thread(
            target=self._loop, name="otel-tracker-prometheus", daemon=True
        )
        self._thread.start()

    # -- lifecycle -------------------------------------------------------------------
    def close(self, timeout: float = 2.0) -> None:
        """Stop serving; the port is free when this returns (bar a wedged thread)."""
        if os.getpid() != self._pid:
            self._forget_in_child()
            return
        self._stopping = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout)
        self._close_all()

    def _close_all(self) -> None:
        for conn in list(self._connections.values()):
            self._drop(conn)
        for sock in (self._listener, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                sock.close()
        with contextlib.suppress(Exception):
            self._selector.close()

    def _forget_in_child(self) -> None:
        """In a forked child: close our copies, touch nothing else (no thread here)."""
        for sock in [self._listener, self._wake_r, self._wake_w] + [
            c.sock for c in self._connections.values()
        ]:
            with contextlib.suppress(OSError):
                sock.close()
        with contextlib.suppress(Exception):
            self._selector.close()
        self._connections.clear()
        self._pid = os.getpid()

    # -- the loop --------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            while not self._stopping:
                self._step()
        except Exception:
            logger.warning("otel-tracker /metrics server stopped", exc_info=True)

    def _step(self) -> None:
        now = self._clock()
        self._refill(now)
        self._listen_if_room()
        timeout = REQUEST_TIMEOUT_S
        if not self._listening and len(self._connections) < MAX_CONNECTIONS:
            timeout = min(timeout, 1.0 / ACCEPTS_PER_S)  # waiting for an accept token
        for key, events in self._selector.select(timeout):
            if key.fileobj is self._listener:
                self._accept()
            elif key.fileobj is self._wake_r:
                return
            else:
                conn = self._connections.get(key.fd)
                if conn is not None:
                    self._service(conn, events)
        now = self._clock()
        for conn in list(self._connections.values()):
            if now > conn.deadline:
                self._drop(conn)  # a client that never finished its request or its read

    def _refill(self, now: float) -> None:
        self._tokens = min(ACCEPTS_PER_S, self._tokens + (now - self._refilled) * ACCEPTS_PER_S)
        self._refilled = now

    def _listen_if_room(self) -> None:
        room = len(self._connections) < MAX_CONNECTIONS and self._tokens >= 1
        if room and not self._listening:
            self._selector.register(self._listener, selectors.EVENT_READ)
        elif not room and self._listening:
            self._selector.unregister(self._listener)
        self._listening = room

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            logger.debug("accept failed: %s", exc)
            return
        self._tokens -= 1
        sock.setblocking(False)
        conn = _Connection(sock, self._clock() + REQUEST_TIMEOUT_S)
        self._connections[sock.fileno()] = conn
        self._selector.register(sock, selectors.EVENT_READ)

    def _service(self, conn: _Connection, events: int) -> None:
        try:
            if events & selectors.EVENT_READ and not conn.outbox:
                data = conn.sock.recv(4096)
                if not data:
                    self._drop(conn)
                    return
                conn.inbox += data
                if b"\r\n\r\n" in conn.inbox or b"\n\n" in conn.inbox:
                    conn.outbox = self._respond(conn.inbox)
                    conn.deadline = self._clock() + REQUEST_TIMEOUT_S
                    self._selector.modify(conn.sock, selectors.EVENT_WRITE)
                elif len(conn.inbox) > MAX_REQUEST_BYTES:
                    self._drop(conn)
                return
            if events & selectors.EVENT_WRITE and conn.outbox:
                sent = conn.sock.send(conn.outbox)
                conn.outbox = conn.outbox[sent:]
                if not conn.outbox:
                    self.served += 1
                    self._drop(conn)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)

    def _drop(self, conn: _Connection) -> None:
        self._connections.pop(conn.sock.fileno(), None)
        with contextlib.suppress(Exception):
            self._selector.unregister(conn.sock)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def _respond(self, request: bytes) -> bytes:
        line = request.split(b"\n", 1)[0].decode("latin-1").strip().split()
        method, path = (line[0], line[1]) if len(line) >= 2 else ("", "")
        path = path.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _response(405, b"method not allowed\n", "text/plain; charset=utf-8")
        if path not in ("/metrics", "/"):
            return _response(404, b"not found: try /metrics\n", "text/plain; charset=utf-8")
        body = self._current_body()
        return _response(200, b"" if method == "HEAD" else body, self._content_type, len(body))

    def _current_body(self) -> bytes:
        now = self._clock()
        if now - self._rendered >= RENDER_EVERY_S:
            try:
                self._body = self._render()
            except Exception:
                logger.debug("rendering /metrics failed", exc_info=True)
            self._rendered = now
        return self._body


def _response(status: int, body: bytes, content_type: str, length: int | None = None) -> bytes:
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body) if length is None else length}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def _close_in_forked_children(server: ScrapeServer) -> None:
    global _fork_hook
    _servers.add(server)
    if not _fork_hook and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook = True


def _after_fork_in_child() -> None:
    for server in list(_servers):
        with contextlib.suppress(Exception):
            server._forget_in_child()
