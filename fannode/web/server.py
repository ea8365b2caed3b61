"""Serving a WebInterface: gevent's WSGI server on a port of its own or on a listening
socket the node hands over, a greenlet per connection.

What comes from the network is hostile, so each connection is bounded: the time to send a
request's head (`header_timeout`), the time it may sit idle or stall (`idle_timeout`), the
size of the head and of the body (`max_body`, chunked too: fannode.web.reading), and how
many connections a process serves at once (`max_connections`; beyond it a 503 at once,
and accepting goes on). docs/web.md lists them.
"""
from __future__ import annotations

import errno
import logging
import resource
import socket
import time
from time import monotonic
from typing import Any

import gevent
import gevent.pool
from gevent import Timeout
from gevent.pywsgi import MAX_REQUEST_LINE, WSGIHandler, WSGIServer

from fannode.core.config import Config
from fannode.core.limits import KIB, MIB, setting
from fannode.web.interface import CHUNKED_KEY, WebInterface
from fannode.web.reading import (BAD_REQUEST, BODY_TOO_LARGE, BUSY, STOPPED, TIMED_OUT, ChunkedInput,
                                 Refused, read_headers)
from fannode.web.sockets import listener

log = logging.getLogger(__name__)

# Defaults of a WebInterface's config keys of the same names (lower case).
HEADER_TIMEOUT = 10.0   # seconds to send a request's line and headers (from the connection, or
                        # from the first byte of a later request on it)
IDLE_TIMEOUT = 75.0     # seconds a kept-alive connection waits for its next request; also
                        # how long a read of a body, or a response write, may wait on the client
MAX_CONNECTIONS = 1000  # connections one process serves at once

# Process-wide.
FD_RESERVE = setting('FANNODE_HTTP_FD_RESERVE', 128, 0)  # fds left for all but connections
LINGER_SECONDS = setting('FANNODE_HTTP_LINGER_SECONDS', 2.0, 0.0)  # see Handler.linger
LINGER_BYTES = 64 * MIB
ACCEPT_PAUSE = 0.5      # seconds without accepting once the process is out of fds
REPORT_EVERY = 60.0     # seconds between two warnings of the same kind
OUT_OF_FDS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


# What a connection is doing, for the sweep (Server.sweep): waiting for a request, reading
# its head (each with a deadline), or anything else (the interface's time is its own).
IDLE, HEAD, ANSWERING = 'waiting for a request', 'reading a request head', ''


class Expired(BaseException):
    """Thrown into a connection past its deadline. Not an Exception: gevent's handler
    catches those on the way, and this one must reach Handler.serve."""


class Handler(WSGIHandler):
    """One connection. Cheap on the way of each request: waiting for a request and reading
    its head only note a deadline, which the server's sweep enforces; a response write
    notes when it began. A socket timeout would do it too, but it makes a timer each time
    a read waits, and every request on a kept-alive connection waits once (~3% of a hello
    request, with the two settimeout() calls). The socket timeout is set only for a
    request with a body, for its reads."""

    server: Server
    wsgi_input: Any
    code: Any
    served = False   # a request was begun: the next one may take idle_timeout to come
    phase = HEAD
    deadline = 0.0   # monotonic; for IDLE and HEAD
    writing = 0.0    # monotonic time a response write began, 0 when not writing
    timed = False    # the socket has a timeout (a body is being read)
    chunked: ChunkedInput | None = None

    def handle(self) -> None:
        server = self.server
        try:  # without it, a keep-alive client waits ~40 ms for a delayed ACK on each response
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a unix socket): nothing to tune
        if len(server.handlers) >= server.max_connections:
            server.report('busy', 'max_connections (%d) reached: new connections get 503'
                          % server.max_connections)
            self.refuse(BUSY)
            return
        self.greenlet = gevent.getcurrent()
        self.deadline = monotonic() + server.header_timeout
        server.handlers.add(self)
        try:
            self.serve()
        finally:
            server.handlers.discard(self)
            self.drop_connection()

    def serve(self) -> None:
        """gevent's loop of WSGIHandler.handle, with its refusals answered by linger()."""
        while True:
            try:
                result = self.handle_one_request()
            except Expired:
                result = self._handle_client_error(Refused(
                    'no whole request head within header_timeout (%gs)' % self.server.header_timeout,
                    TIMED_OUT))
            except Refused as e:  # from get_environ
                result = self._handle_client_error(e)
            if result is True:
                chunked = self.chunked
                if chunked is None:
                    continue
                self.chunked = None
                if chunked.left >= 0:
                    continue
                result = ('-', b'')  # the rest of a body refused cannot be skipped to the next request
            self.phase = ANSWERING
            if isinstance(result, tuple):  # refused: (status, response) of our own, or gevent's
                self.linger(result[1])
            return

    def drop_connection(self) -> None:
        # as WSGIHandler.handle does when done: drop what is unread without waiting, close
        sock = self.__dict__.pop('socket', None)
        if sock is not None:
            raw = getattr(sock, '_sock', None)
            try:
                if raw:
                    try:
                        raw.recv(16384)
                    finally:
                        raw.close()
                sock.close()
            except OSError:
                pass
        self.__dict__.pop('rfile', None)
        self.__dict__.pop('wsgi_input', None)

    def expire(self, now: float) -> None:
        """From the sweep, in the hub: end what waits past its deadline (a throw at the
        wait; decided here, at once, so it never lands anywhere else)."""
        if self.phase and now > self.deadline:
            self.greenlet.throw(Expired(self.phase))
        elif self.writing and now - self.writing > self.server.idle_timeout:
            self.greenlet.throw(TimeoutError(errno.ETIMEDOUT, 'the client read none of the response '
                                             'for idle_timeout (%gs)' % self.server.idle_timeout))

    def read_requestline(self) -> str:
        # Where each request begins: wait for it (a kept-alive connection), then its line.
        server = self.server
        if self.served:
            if server.stopping:
                return ''
            if self.timed:
                self.socket.settimeout(None)
                self.timed = False
            self.phase, self.deadline = IDLE, monotonic() + server.idle_timeout
            try:
                if not self.rfile.peek(1):
                    return ''  # the client closed the connection
            except (OSError, ValueError, Expired):
                return ''      # gone, or idle for idle_timeout
        else:
            self.served = True
        self.phase, self.deadline = HEAD, monotonic() + server.header_timeout
        line = self.rfile.readline(MAX_REQUEST_LINE)
        if len(line) < MAX_REQUEST_LINE and not line.endswith(b'\n'):
            return ''  # cut short by the client closing: not a request (nor HTTP/0.9 'GET /')
        return line.decode('latin-1')

    def MessageClass(self, rfile: Any, *_args: Any) -> Any:  # noqa: N802 (gevent's name)
        return read_headers(rfile)

    def get_environ(self) -> dict:
        # Called once the head is in, before the interface runs.
        self.phase = ANSWERING
        length = self.content_length
        if length is not None and length > self.server.max_body:
            raise Refused('a body of %d bytes, over max_body (%d)' % (length, self.server.max_body),
                          BODY_TOO_LARGE)
        env = WSGIHandler.get_environ(self)
        given = self.wsgi_input
        if length or given.chunked_input or env['wsgi.input'] is not given:  # a body, or an upgrade
            self.socket.settimeout(self.server.idle_timeout)  # no read of it stalls longer
            self.timed = True
            if given.chunked_input:
                self.chunked = ChunkedInput(self.rfile, given.socket, self.server.max_body)
                if env['wsgi.input'] is given:
                    env['wsgi.input'] = self.chunked
                    env[CHUNKED_KEY] = True  # see WebInterface.wsgi
                self.wsgi_input = self.chunked
        return env

    def _sendall(self, data: bytes) -> None:
        # WSGIHandler._sendall, noting when the write began (for the sweep)
        self.writing = monotonic()
        try:
            self.socket.sendall(data)
        except OSError as ex:
            self.status = 'socket error: %s' % ex
            if self.code > 0:
                self.code = -self.code
            raise
        finally:
            self.writing = 0.0
        self.response_length += len(data)

    def linger(self, response: bytes = b'') -> None:
        """Send `response` (if any) and close, reading and dropping what the client still
        sends for up to LINGER_SECONDS: closing with data unread resets the connection, and
        the client may see the reset instead of the response."""
        sock = self.socket
        try:
            if response:
                sock.sendall(response)
            sock.shutdown(socket.SHUT_WR)
            with Timeout(LINGER_SECONDS, False):
                left = LINGER_BYTES
                while left > 0:
                    data = sock.recv(64 * KIB)
                    if not data:
                        break
                    left -= len(data)
        except OSError:
            pass

    def refuse(self, response: bytes) -> None:
        """Over max_connections: `response`, and closed at once. Not linger(): a flood of
        refused connections would each hold an fd, uncounted, until none was left. What the
        client sent already is read first (no waiting), so closing does not reset it."""
        sock: Any = self.socket
        try:
            getattr(sock, '_sock', sock).recv(64 * KIB)  # gevent's non-blocking socket below
        except OSError:
            pass
        try:
            sock.sendall(response)  # a few bytes into a new connection's empty buffer
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _handle_client_error(self, ex: Exception) -> Any:
        # A client's mistake, or its malice: one line at DEBUG, never a traceback.
        log.debug('%s from %s: %s', self.server.name, _peer(self.client_address), ex)
        if isinstance(ex, Refused):
            return ('-', ex.response) if ex.response else None
        return ('400', BAD_REQUEST)

    def handle_error(self, t: Any, v: Any, tb: Any) -> None:
        if not issubclass(t, gevent.GreenletExit):
            return super().handle_error(t, v, tb)
        # Killed by stop(): the request ran past the stop timeout. Not a 500 of ours.
        self.close_connection = True
        if not self.headers_sent:
            try:
                self.socket.sendall(STOPPED)
            except OSError:
                pass

    def _log_error(self, t: Any, v: Any, tb: Any) -> None:
        if issubclass(t, OSError):  # e.g. a response write stalled past idle_timeout
            log.debug('%s: connection from %s: %s', self.server.name, _peer(self.client_address), v)
        elif not issubclass(t, gevent.GreenletExit):
            log.error('%s: serving %s failed', self.server.name, _peer(self.client_address),
                      exc_info=(t, v, tb))

    def log_request(self) -> None:
        pass  # the interface writes the access log, with the trace id


def _peer(address: Any) -> str:
    return '%s:%s' % address[:2] if isinstance(address, tuple) else str(address or 'a unix socket')


class Server(WSGIServer):
    """gevent's WSGIServer, knowing its connections and limits."""

    def __init__(self, listener: socket.socket, iface: WebInterface, limits: dict[str, Any]):
        # A pool (unbounded) rather than bare greenlets: stop() waits only for a pool.
        super().__init__(listener, iface.wsgi, handler_class=Handler, log=None, error_log=log,
                         spawn=gevent.pool.Pool())
        self.name = iface.name
        self.header_timeout: float = limits['header_timeout']
        self.idle_timeout: float = limits['idle_timeout']
        self.max_connections: int = limits['max_connections']
        self.max_body: int = iface.max_body
        self.handlers: set[Handler] = set()
        self.stopping = False
        self.reports: dict[str, tuple[int, float]] = {}

    def do_read(self) -> Any:
        try:
            return super().do_read()
        except OSError as e:
            if e.errno not in OUT_OF_FDS:
                raise
            # Not gevent's handling: a traceback on every attempt. Pause, and try again.
            self.report('fds', 'cannot accept connections: %s (holding %d); pausing %gs'
                        % (e.strerror, len(self.handlers), ACCEPT_PAUSE))
            self.stop_accepting()
            gevent.spawn_later(ACCEPT_PAUSE, self._resume)
            return None

    def _resume(self) -> None:
        if self.started and not self.stopping:
            self.start_accepting()

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
        super().start()
        # A deadline is met within a tick of it: fine-grained enough for the smallest timeout.
        tick = min(1.0, self.header_timeout / 4, self.idle_timeout / 4)
        self.sweeper = self.loop.timer(tick, tick)
        self.sweeper.start(self.sweep)

    def sweep(self) -> None:
        """Every tick, in the hub: the connections past a deadline are ended."""
        now = monotonic()
        for handler in list(self.handlers):
            try:
                handler.expire(now)
            except Exception:  # in the hub, an escaping error would be printed, not logged
                log.exception('%s: ending a connection past its deadline failed', self.name)

    def close(self) -> None:
        sweeper = self.__dict__.pop('sweeper', None)
        if sweeper is not None:
            sweeper.close()
        super().close()

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


def _positive(config: Config, key: str, default: Any, kind: Any = (int, float)) -> Any:
    value = config.require(key, kind, default)
    if value <= 0:
        raise config.error(key, 'must be positive, got %s' % value)
    return value


def limits_of(iface: WebInterface) -> dict[str, Any]:
    """The interface's connection limits, max_connections within the process's fd limit."""
    config = iface.web_config
    wanted = _positive(config, 'max_connections', MAX_CONNECTIONS, int)
    limits = {'header_timeout': _positive(config, 'header_timeout', HEADER_TIMEOUT),
              'idle_timeout': _positive(config, 'idle_timeout', IDLE_TIMEOUT), 'max_connections': wanted}
    files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    room = max(files - FD_RESERVE, files // 2)
    if files != resource.RLIM_INFINITY and wanted > room:
        # Past the fd limit accept() fails, and nobody gets even a 503.
        (log.warning if 'max_connections' in config else log.info)(
            '%s: serving at most %d connections at once, not %d: the process may open %d files '
            '(ulimit -n), %d of them kept for the rest ($FANNODE_HTTP_FD_RESERVE)',
            iface.name, room, wanted, files, files - room)
        limits['max_connections'] = room
    return limits


class WebServer:
    def __init__(self, iface: WebInterface, sockets: dict[str, int]):
        self.iface = iface
        iface.check_routes()  # a url_map naming a method that is not there: refused now
        limits = limits_of(iface)
        self.listener = listener(iface.web_config, iface.name, sockets)
        host, port = self.listener.getsockname()[:2]
        self.url = 'http://%s:%d' % ('127.0.0.1' if host in ('0.0.0.0', '::') else host, port)
        self.server = Server(self.listener, iface, limits)

    def start(self) -> None:
        self.server.start()
        self.iface.serving = True

    def stop(self, timeout: float) -> None:
        """Answer health checks with 503, stop accepting, close idle connections, let
        running requests finish (each connection closes after its answer)."""
        self.iface.serving = False
        self.iface.closing = True
        self.server.close_idle()
        self.server.stop(timeout=timeout)
