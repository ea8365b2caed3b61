"""What both HTTP servers of a WebInterface share (fannode.web.lean, the default, and
fannode.web.geventserver): the connections a process serves, their deadlines enforced by
a sweep, accepting paused when out of fds, and the ways a refused connection is let go.
"""
from __future__ import annotations

import errno
import logging
import socket
import time
from typing import Any, Callable

import gevent
from gevent import Timeout

from fannode.core.limits import KIB, MIB, setting

log = logging.getLogger('fannode.web.server')

LINGER_SECONDS = setting('FANNODE_HTTP_LINGER_SECONDS', 2.0, 0.0)  # see linger()
LINGER_BYTES = 64 * MIB
ACCEPT_PAUSE = 0.5      # seconds without accepting once the process is out of fds
REPORT_EVERY = 60.0     # seconds between two warnings of the same kind
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)

# What a connection is doing, for the sweep (Tracked.sweep): waiting for a request, reading
# its head (each with a deadline), or anything else (the interface's time is its own).
IDLE, HEAD, ANSWERING = 'waiting for a request', 'reading a request head', ''


class Expired(BaseException):
    """Thrown into a connection past its deadline. Not an Exception: handlers catch those
    on the way, and this one must reach the connection's loop."""


def peer(address: Any) -> str:
    return '%s:%s' % address[:2] if isinstance(address, tuple) else str(address or 'a unix socket')


def linger(sock: Any, response: bytes = b'', seconds: float | None = None) -> None:
    """Send `response` (if any) and close, reading and dropping what the client still
    sends for up to LINGER_SECONDS: closing with data unread resets the connection, and
    the client may see the reset instead of the response."""
    try:
        if response:
            sock.sendall(response)
        sock.shutdown(socket.SHUT_WR)
        with Timeout(LINGER_SECONDS if seconds is None else seconds, False):
            left = LINGER_BYTES
            while left > 0:
                data = sock.recv(64 * KIB)
                if not data:
                    break
                left -= len(data)
    except OSError:
        pass


def refuse(sock: Any, response: bytes) -> None:
    """Over max_connections: `response`, and closed at once. Not linger(): a flood of
    refused connections would each hold an fd, uncounted, until none was left. What the
    client sent already is read first (no waiting), so closing does not reset it."""
    try:
        getattr(sock, '_sock', sock).recv(64 * KIB)  # gevent's non-blocking socket below
    except OSError:
        pass
    try:
        sock.sendall(response)  # a few bytes into a new connection's empty buffer
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def admit(handler: Any, busy: bytes) -> bool:
    """A new connection's handler counted in, with its first deadline; False (the connection
    answered `busy` and let go) when the server has max_connections already."""
    server = handler.server
    nodelay(handler.socket)
    if len(server.handlers) >= server.max_connections:
        server.report('busy', 'max_connections (%d) reached: new connections get 503' % server.max_connections)
        refuse(handler.socket, busy)
        return False
    handler.greenlet = gevent.getcurrent()
    handler.deadline = time.monotonic() + server.header_timeout
    server.handlers.add(handler)
    return True


def handle(handler: Any, busy: bytes, let_go: Callable[[], None]) -> None:
    """A connection's life under either server: counted in (`admit`), served
    (`handler.serve`), counted out, and let go as that server does."""
    if not admit(handler, busy):
        return
    try:
        handler.serve()
    finally:
        handler.server.handlers.discard(handler)
        let_go()


def nodelay(sock: Any) -> None:
    try:  # without it, a keep-alive client waits ~40 ms for a delayed ACK on each response
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # not TCP (a unix socket): nothing to tune


class Tracked:
    """A gevent server (mixed in before gevent's class) that knows its connections: each
    has `phase`, `deadline`, `writing` and `expire(now)`; a sweep every tick ends those
    past a deadline."""

    handlers: set[Any]
    loop: Any
    started: bool

    def track(self, name: str, limits: dict[str, Any], max_body: int) -> None:
        self.name = name
        self.header_timeout: float = limits['header_timeout']
        self.idle_timeout: float = limits['idle_timeout']
        self.max_connections: int = limits['max_connections']
        self.max_body = max_body
        self.handlers = set()
        self.stopping = False
        self.reports: dict[str, tuple[int, float]] = {}

    def do_read(self) -> Any:
        try:
            return super().do_read()  # type: ignore[misc]
        except OSError as e:
            if e.errno not in OUT_OF_FDS:
                raise
            # Not gevent's handling: a traceback on every attempt. Pause, and try again.
            self.report('fds', 'cannot accept connections: %s (holding %d); pausing %gs'
                        % (e.strerror, len(self.handlers), ACCEPT_PAUSE))
            self.stop_accepting()  # type: ignore[attr-defined]
            gevent.spawn_later(ACCEPT_PAUSE, self._resume)
            return None

    def _resume(self) -> None:
        if self.started and not self.stopping:
            self.start_accepting()  # type: ignore[attr-defined]

    def report(self, kind: str, message: str) -> None:
        """A warning at most every REPORT_EVERY seconds per kind, with how often it happened."""
        count, last = self.reports.get(kind, (0, -REPORT_EVERY))
        now = time.monotonic()
        if now - last >= REPORT_EVERY:
            log.warning('%s: %s%s', self.name, message, ' (%d times since the last warning)'
                        % (count + 1) if count else '')
            count, last = -1, now
        self.reports[kind] = (count + 1, last)

    def start(self) -> None:
        super().start()  # type: ignore[misc]
        # A deadline is met within a tick of it: fine-grained enough for the smallest timeout.
        tick = min(1.0, self.header_timeout / 4, self.idle_timeout / 4)
        self.sweeper = self.loop.timer(tick, tick)
        self.sweeper.start(self.sweep)

    def sweep(self) -> None:
        """Every tick, in the hub: the connections past a deadline are ended."""
        now = time.monotonic()
        for handler in list(self.handlers):
            try:
                handler.expire(now)
            except Exception:  # in the hub, an escaping error would be printed, not logged
                log.exception('%s: ending a connection past its deadline failed', self.name)

    def close(self) -> None:
        sweeper = self.__dict__.pop('sweeper', None)
        if sweeper is not None:
            sweeper.close()
        super().close()  # type: ignore[misc]

    def close_idle(self) -> None:
        """Stopping: close the kept-alive connections waiting for their next request. Their
        read side only. A connection accepted just now is left its header_timeout: its
        client has sent, or is sending, its first request (closing it was a failed request)."""
        self.stopping = True
        for handler in list(self.handlers):
            if handler.phase == IDLE:
                try:
                    handler.socket.shutdown(socket.SHUT_RD)
                except OSError:
                    pass


def expire(conn: Any, now: float) -> None:
    """From the sweep, in the hub: end what waits past its deadline (a throw at the wait;
    decided here, at once, so it never lands anywhere else)."""
    if conn.phase and now > conn.deadline:
        conn.greenlet.throw(Expired(conn.phase))
    elif conn.writing and now - conn.writing > conn.server.idle_timeout:
        conn.greenlet.throw(TimeoutError(errno.ETIMEDOUT, 'the client read none of the response '
                                         'for idle_timeout (%gs)' % conn.server.idle_timeout))
