"""The gevent.pywsgi server of a WebInterface: gevent's WSGI server, a greenlet per
connection, bounded as fannode.web.server says. Chosen with `server: gevent` in the
interface's config (or $FANNODE_HTTP_SERVER=gevent); fannode.web.lean is the default.
"""
from __future__ import annotations

import socket
from time import monotonic
from typing import Any

import gevent
import gevent.pool
from gevent.pywsgi import MAX_REQUEST_LINE, WSGIHandler, WSGIServer

from fannode.web import conns
from fannode.web.conns import ANSWERING, HEAD, IDLE, Expired, Tracked, log, peer
from fannode.web.interface import CHUNKED_KEY, WebInterface
from fannode.web.reading import BAD_REQUEST, BODY_TOO_LARGE, BUSY, STOPPED, TIMED_OUT, ChunkedInput, Refused, read_headers


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
        conns.handle(self, BUSY, self.drop_connection)

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
        conns.expire(self, now)

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
        conns.linger(self.socket, response)

    def refuse(self, response: bytes) -> None:
        conns.refuse(self.socket, response)

    def _handle_client_error(self, ex: Exception) -> Any:
        # A client's mistake, or its malice: one line at DEBUG, never a traceback.
        log.debug('%s from %s: %s', self.server.name, peer(self.client_address), ex)
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
            log.debug('%s: connection from %s: %s', self.server.name, peer(self.client_address), v)
        elif not issubclass(t, gevent.GreenletExit):
            log.error('%s: serving %s failed', self.server.name, peer(self.client_address),
                      exc_info=(t, v, tb))

    def log_request(self) -> None:
        pass  # the interface writes the access log, with the trace id


class Server(Tracked, WSGIServer):
    """gevent's WSGIServer, knowing its connections and limits."""

    def __init__(self, listener: socket.socket, iface: WebInterface, limits: dict[str, Any]):
        # A pool (unbounded) rather than bare greenlets: stop() waits only for a pool.
        super().__init__(listener, iface.wsgi, handler_class=Handler, log=None, error_log=log,
                         spawn=gevent.pool.Pool())
        self.track(iface.name, limits, iface.max_body)
