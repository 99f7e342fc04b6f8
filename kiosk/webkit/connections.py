"""Connections from the venue network, bounded so that one computer cannot shut the door out.

Waitress closes idle connections (`channel_timeout`) and stops accepting above
`connection_limit` in all, but bounds nothing per client and sets no deadline on a request's
head: one computer holding 110 idle or trickling connections blocked every request, door scans
included. The bounds, in plain Python for Windows and Linux:

* at most PER_CLIENT connections from one address; more are closed as soon as accepted;
* at most TOTAL in all (waitress's `connection_limit` sits just above, see WAITRESS_OPTIONS);
* a request's head (request line and headers) must arrive within HEAD_SECONDS of its first byte;
* a connection quiet for IDLE_SECONDS with no request in hand is closed (`channel_timeout`).

The bounds live in the listening socket (`GuardedListener`): its `accept` counts per client,
and, for plain HTTP, each connection it hands over watches its request heads in `recv`. Waitress
takes it through its public `sockets` option; the TLS relay (`kiosk.webkit.https`) serves its
asyncio server on it (admitting before the handshake) and watches heads in the decrypted stream.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import socket
import threading
import time
import weakref

log = logging.getLogger("kiosk.connections")

PER_CLIENT = 32  # a browser opens about 6 per server; the door's and tablets' pages fit many times over
TOTAL = 200
HEAD_SECONDS = 10.0
IDLE_SECONDS = 30
HANDSHAKE_SECONDS = 10.0
# Waitress counts its listening socket and its wake-up pipe among its connections.
WAITRESS_OPTIONS = {"connection_limit": TOTAL + 8, "channel_timeout": IDLE_SECONDS, "cleanup_interval": 5}
_END_OF_HEAD = b"\r\n\r\n"


class ConnectionGuard:
    """Counts open connections per client address and in all; admits one only within the bounds.

    `per_client=None` bounds the total only (the central server, whose kiosks may share one
    office's address)."""

    def __init__(self, per_client: int | None = PER_CLIENT, total: int = TOTAL):
        self.per_client, self.total = per_client, total
        self._open: collections.Counter = collections.Counter()
        self._refused: set[str] = set()
        self._lock = threading.Lock()

    def admit(self, client: str) -> bool:
        """True (and counted) if `client` may open one more connection now."""
        with self._lock:
            full = self.per_client is not None and self._open[client] >= self.per_client
            if full or sum(self._open.values()) >= self.total:
                self._note_refusal(client, "per_client_limit" if full else "connection_limit")
                return False
            self._open[client] += 1
            return True

    def release(self, client: str) -> None:
        """One connection of `client` has closed."""
        with self._lock:
            self._open[client] -= 1
            if self._open[client] <= 0:
                del self._open[client]
                self._refused.discard(client)

    def open_count(self, client: str | None = None) -> int:
        with self._lock:
            return self._open[client] if client is not None else sum(self._open.values())

    def _note_refusal(self, client: str, reason: str) -> None:
        if client not in self._refused:  # one line per episode, not one per refused connection
            self._refused.add(client)
            log.warning("connections refused", extra={"act": "connections", "reason": reason, "client": client})


class HeadClock:
    """Whether a connection is in the middle of a request head, and for how long it may be.

    Bytes received while a head is awaited start the clock; the blank line that ends a head
    stops it. A response sent (not a "100 Continue") means the next bytes begin a new head.
    Bytes after a head (a body) are never timed: a slow upload is not a slow head.
    """

    def __init__(self, seconds: float = HEAD_SECONDS, clock=time.monotonic):
        self.seconds, self.clock = seconds, clock
        self.awaiting, self.since, self.tail = True, None, b""

    def received(self, data: bytes) -> bool:
        """Notes bytes from the client; False once a head has taken longer than allowed."""
        if not self.awaiting or not data:
            return True
        now = self.clock()
        if self.since is None:
            self.since = now
        seen = self.tail + bytes(data)
        if _END_OF_HEAD in seen:
            self.awaiting, self.since, self.tail = False, None, b""
            return True
        self.tail = seen[-3:]
        return now - self.since <= self.seconds

    def sent(self, data: bytes) -> None:
        """Notes bytes to the client: after a response a new head may begin."""
        if not self.awaiting and data and bytes(data[:13]) != b"HTTP/1.1 100 ":
            self.awaiting = True


class GuardedListener(socket.socket):
    """A listening socket that admits at most the guard's connections per client (for waitress's
    `sockets` option, or the TLS relay's asyncio server); with `watch_heads`, the connections it
    hands over cut a request head that trickles."""

    guard: ConnectionGuard
    watch_heads: bool

    def accept(self):
        while True:  # no connection waiting: BlockingIOError, which both event loops expect
            conn, address = super().accept()
            if self.guard.admit(address[0]):
                return GuardedConnection.adopt(conn, self.guard, address[0], self.watch_heads), address
            conn.close()


class GuardedConnection(socket.socket):
    """An accepted connection that gives its place back to the guard when it closes, and, if it
    watches its heads, is cut (as a reset) when a request head is too slow."""

    @classmethod
    def adopt(cls, conn: socket.socket, guard: ConnectionGuard, client: str, watch_heads: bool) -> GuardedConnection:
        adopted = cls(conn.family, conn.type, conn.proto, fileno=conn.detach())
        adopted.head = HeadClock() if watch_heads else None
        adopted._release = weakref.finalize(adopted, guard.release, client)  # once, even if never closed
        return adopted

    def recv(self, size, *flags):
        data = super().recv(size, *flags)
        if self.head is not None and not self.head.received(data):
            raise ConnectionResetError(errno.ECONNRESET, "request head too slow")
        return data

    def send(self, data, *flags):
        sent = super().send(data, *flags)
        if self.head is not None:
            self.head.sent(data[:sent])
        return sent

    def close(self):
        self._release()
        super().close()


def listener(host: str, port: int, guard: ConnectionGuard, watch_heads: bool = True) -> GuardedListener:
    """A bound (not yet listening) guarded socket for host:port; the server listens on it."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         flags=socket.AI_PASSIVE)[0]
    sock = GuardedListener(family, kind, proto)
    sock.guard, sock.watch_heads = guard, watch_heads
    if os.name == "posix":  # a restarted kiosk takes its port back at once (on Windows this would share it)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    return sock


def serve(app, host: str, port: int, threads: int = 8, guard: ConnectionGuard | None = None, **options) -> None:
    """Serves `app` with waitress on host:port within the bounds above, until stopped."""
    from waitress import serve as waitress_serve

    waitress_serve(app, sockets=[listener(host, port, guard or ConnectionGuard())], threads=threads,
                   **{**WAITRESS_OPTIONS, **options})
