"""The default HTTP server of a WebInterface: HTTP/1.1 with keep-alive on gevent's
StreamServer, requests parsed by httptools (fannode.web.leanio), the werkzeug application
run as WSGI. It keeps what fannode.web.server promises of gevent.pywsgi (limits, deadlines,
graceful stop, refusals) at half its cost per request: the head is parsed in C, and a
response whose body is at hand goes out in one send with its head (pywsgi: two).
`server: gevent` in the interface's config (or $FANNODE_HTTP_SERVER=gevent) runs
gevent.pywsgi instead (fannode.web.geventserver).
"""
from __future__ import annotations

import socket
import sys
from time import monotonic
from typing import Any, Callable
from urllib.parse import unquote_to_bytes

import gevent
import gevent.pool
from gevent.server import StreamServer
from werkzeug.exceptions import ClientDisconnected

from fannode.web import conns
from fannode.web.conns import ANSWERING, HEAD, IDLE, Expired, Tracked, log, peer
from fannode.web.interface import CHUNKED_KEY, WebInterface
from fannode.web.leanio import (NOT_IMPLEMENTED, READ, Body, Empty, ErrorStream, Parsed, Reader, environ_key,
                                http_date)
from fannode.web.reading import BAD_REQUEST, BODY_TOO_LARGE, BUSY, STOPPED, TIMED_OUT, Refused, canned

CONTINUE = b'HTTP/1.1 100 Continue\r\n\r\n'
FAILED = canned('500 Internal Server Error', 'Internal Server Error')
NO_BODY = (204, 304)
class Connection:
    """One connection: requests read, answered in turn, while it is kept alive."""

    phase = HEAD
    deadline = 0.0   # monotonic; for IDLE and HEAD
    writing = 0.0    # monotonic time a response write began, 0 when not writing
    timed = False    # the socket has a timeout (a body is being read)
    broken = False   # a body was not read whole: the connection cannot go on
    continued = False

    def __init__(self, server: LeanServer, sock: Any, address: Any):
        self.server = server
        self.socket = sock
        self.address = address
        self.reader = Reader(server.max_body)

    def handle(self) -> None:
        conns.handle(self, BUSY, self.let_go)

    def let_go(self) -> None:
        try:  # what the client sent unread is dropped, so closing does not reset the connection
            self.socket._sock.recv(READ)
        except (OSError, AttributeError):
            pass

    def expire(self, now: float) -> None:
        conns.expire(self, now)

    def serve(self) -> None:
        served = False
        while True:
            try:
                parsed = self.next_request(served)
                if parsed is None:
                    return
                served = True
                self.phase = ANSWERING
                environ = self.environ(parsed)
            except Expired as e:
                self.phase = ANSWERING
                if e.args[0] == HEAD:
                    self.refused(Refused('no whole request head within header_timeout (%gs)'
                                         % self.server.header_timeout, TIMED_OUT))
                return
            except Refused as e:
                self.phase = ANSWERING
                self.refused(e)
                return
            if not self.respond(parsed, environ):
                return

    def refused(self, e: Refused) -> None:
        # A client's mistake, or its malice: one line at DEBUG, never a traceback.
        log.debug('%s from %s: %s', self.server.name, peer(self.address), e)
        if e.response:
            conns.linger(self.socket, e.response)

    def recv(self) -> bytes:
        try:
            return self.socket.recv(READ)
        except OSError:
            return b''

    def next_request(self, served: bool) -> Parsed | None:
        """The next request once its head is in; None when the connection ends first."""
        server, reader = self.server, self.reader
        requests = reader.requests
        if served:
            if server.stopping:
                return None
            if self.timed:
                self.socket.settimeout(None)
                self.timed = False
            if not requests and reader.failed is None:
                # Nothing of the next request yet: it may take idle_timeout to come.
                self.phase, self.deadline = IDLE, monotonic() + server.idle_timeout
                data = self.recv()
                if not data:
                    return None  # the client closed the connection (or stop() did)
                self.phase, self.deadline = HEAD, monotonic() + server.header_timeout
                reader.feed(data)
            else:
                self.phase, self.deadline = HEAD, monotonic() + server.header_timeout
        while not (requests and requests[0].ready):
            if reader.failed is not None:  # the requests before it have been answered
                raise reader.failed
            data = self.recv()
            if not data:
                return None  # closed within a head: not a request
            reader.feed(data)
        return requests.popleft()

    def environ(self, parsed: Parsed) -> dict[str, Any]:
        server = self.server
        env = server.base_environ.copy()
        path, _, query = parsed.url.partition(b'?')
        env['REQUEST_METHOD'] = parsed.method
        env['PATH_INFO'] = (unquote_to_bytes(path) if b'%' in path else path).decode('latin-1')
        env['QUERY_STRING'] = query.decode('latin-1')
        env['SERVER_PROTOCOL'] = 'HTTP/' + parsed.version
        if type(self.address) is tuple:
            env['REMOTE_ADDR'], env['REMOTE_PORT'] = str(self.address[0]), str(self.address[1])
        for name, raw in parsed.headers:
            key = environ_key(name)
            if key is None:
                continue
            value = raw.decode('latin-1').strip()
            if key in env:
                if key == 'HTTP_HOST':  # RFC 9112 3.2: which one a router or a proxy takes differs
                    raise Refused('more than one Host header', BAD_REQUEST)
                env[key] += ('; ' if key == 'HTTP_COOKIE' else ',') + value
            else:
                env[key] = value
        length = env.get('CONTENT_LENGTH')
        coding = env.get('HTTP_TRANSFER_ENCODING')
        chunked = coding is not None  # llhttp refuses one whose last coding is not chunked (400)
        if coding is not None:  # RFC 9112 6.1
            if coding.replace(' ', '').lower() != 'chunked':  # gzip, chunked: 501, not an empty body
                raise Refused('a transfer coding %r' % coding[:40], NOT_IMPLEMENTED)
            if parsed.version == '1.0':
                parsed.keep_alive = False  # faulty framing in HTTP/1.0: answered, then closed
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                raise Refused('a bad Content-Length %r' % length[:40], BAD_REQUEST)
            if int(length) > server.max_body:
                raise Refused('a body of %s bytes, over max_body (%d)' % (length, server.max_body),
                              BODY_TOO_LARGE)
        if length not in (None, '0') or chunked:
            env['wsgi.input'] = Body(parsed, self.fill)
            if chunked:
                env[CHUNKED_KEY] = True  # see WebInterface.wsgi
            self.continued = env.get('HTTP_EXPECT', '').lower() != '100-continue'
        else:
            env['wsgi.input'] = Empty()
        return env

    def fill(self, parsed: Parsed) -> None:
        """More of a body the application reads; a stall past idle_timeout, the client gone
        or bad framing is a 400 (werkzeug's ClientDisconnected), and the connection closes."""
        if not self.continued:
            self.continued = True
            self.send(CONTINUE)
        if not self.timed:
            self.socket.settimeout(self.server.idle_timeout)  # no read of it stalls longer
            self.timed = True
        try:
            data = self.socket.recv(READ)
            if data:
                self.reader.feed(data)
        except (OSError, Refused) as e:
            self.broken = True
            raise ClientDisconnected('reading the body: %s' % e) from None
        if not data:
            self.broken = True
            raise ClientDisconnected('the client closed the connection within the body')
        if parsed.bad:
            self.broken = True
            raise ClientDisconnected('the request body is badly framed')
        if parsed.over:
            self.broken = True

    # -- the response --------------------------------------------------------------------

    def respond(self, parsed: Parsed, environ: dict[str, Any]) -> bool:
        """Run the application; True when the connection may serve another request."""
        self.head: bytes | None = None
        self.parsed = parsed
        self.sent = False
        self.chunked = False
        self.close = not parsed.keep_alive or self.reader.upgraded
        self.head_only = parsed.method == 'HEAD'
        self.http10 = parsed.version == '1.0'
        result: Any = None
        try:
            result = self.server.app(environ, self.start_response)
            if type(result) is list or type(result) is tuple:  # the whole body at hand: one send
                self.write(b''.join(result), whole=True)
            else:
                for data in result:
                    if data:
                        self.write(data)
                if not self.sent:
                    self.write(b'', whole=True)
                if self.chunked:
                    self.send(b'0\r\n\r\n')
        except gevent.GreenletExit:  # killed by stop(): the request ran past the stop timeout
            if not self.sent:
                self.quietly(STOPPED)
            raise
        except OSError as e:  # the client is gone, or read none of the response for idle_timeout
            log.debug('%s: connection from %s: %s', self.server.name, peer(self.address), e)
            return False
        except Exception:
            log.error('%s: serving %s failed', self.server.name, peer(self.address), exc_info=True)
            if not self.sent:
                self.quietly(FAILED)
            return False
        finally:
            close = getattr(result, 'close', None)
            if close is not None:
                try:
                    close()
                except Exception:
                    log.exception('%s: closing a response failed', self.server.name)
        if self.broken or parsed.bad or parsed.over or (not parsed.complete and not self.drain(parsed)):
            conns.linger(self.socket)  # the rest of a body cannot be skipped to the next request
            return False
        return not self.close

    def quietly(self, response: bytes) -> None:
        try:
            self.socket.sendall(response)
        except OSError:
            pass

    def drain(self, parsed: Parsed) -> bool:
        """Skip what is left of a body the application did not read (within max_body)."""
        if not self.continued:
            return False  # the client waits for a 100 Continue before sending the body: none comes
        try:
            while not parsed.complete:
                parsed.chunks.clear()
                if parsed.over:
                    return False
                self.fill(parsed)
        except ClientDisconnected:
            return False
        parsed.chunks.clear()
        return not parsed.over

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
        if exc_info:
            try:
                if self.sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        code = int(status.split(' ', 1)[0])
        lines = ['HTTP/1.1 ' + status]
        length = connection = None
        dated = False
        for name, value in headers:
            lower = name.lower()
            if lower == 'content-length':
                length = value
            elif lower == 'connection':
                connection = value.lower()
            elif lower == 'date':
                dated = True
            lines.append(name + ': ' + value)
        text = '\r\n'.join(lines)
        if text.count('\n') != len(headers) or text.count('\r') != len(headers):
            raise ValueError('a carriage return or newline in the status or a header: %r' % status)
        if code in NO_BODY and length not in (None, '0'):
            raise AssertionError('Invalid Content-Length for %s response: %r' % (code, length))
        self.code, self.length, self.connection, self.dated = code, length, connection, dated
        self.head = text.encode('latin-1')  # UnicodeEncodeError (a ValueError) for a non-latin-1 one
        if connection == 'close':
            self.close = True
        return self.write

    def write(self, data: bytes, whole: bool = False) -> None:
        """The WSGI write(), and each piece of an iterated body; `whole`: the body is all here."""
        if self.sent:
            if data and not self.head_only:
                self.send(b'%x\r\n%s\r\n' % (len(data), data) if self.chunked else data)
            return
        if self.head is None:
            raise AssertionError('the application did not call start_response()')
        if self.code in NO_BODY and data:
            raise AssertionError('The %s response must have no body' % self.code)
        extra = [] if self.dated else [b'Date: ' + http_date()]
        if self.code not in NO_BODY and self.length is None:
            if whole and (data or not self.head_only):  # HEAD: werkzeug sends no body, not GET's length
                extra.append(b'Content-Length: %d' % len(data))
            elif not self.http10 and not self.head_only:
                self.chunked = True
                extra.append(b'Transfer-Encoding: chunked')
            elif not self.head_only:
                self.close = True  # HTTP/1.0: the body ends with the connection
        parsed = self.parsed
        if self.server.stopping or parsed.over or not (parsed.complete or self.continued and not parsed.bad):
            self.close = True  # a body left unread is not skipped: RFC 9110 10.1.1, say so
        if self.connection is None and (self.close or self.http10):
            extra.append(b'Connection: close' if self.close else b'Connection: keep-alive')
        if self.head_only:
            data = b''
        elif self.chunked and data:
            data = b'%x\r\n%s\r\n' % (len(data), data)
        self.sent = True
        self.send(b'\r\n'.join([self.head, *extra, b'']) + b'\r\n' + data)

    def send(self, data: bytes) -> None:
        self.writing = monotonic()  # for the sweep: a write that stalls past idle_timeout ends
        try:
            self.socket.sendall(data)
        finally:
            self.writing = 0.0


class LeanServer(Tracked, StreamServer):
    """gevent's StreamServer, a Connection per connection, knowing them and its limits."""

    def __init__(self, listener: socket.socket, iface: WebInterface, limits: dict[str, Any]):
        # A pool (unbounded) rather than bare greenlets: stop() waits only for a pool.
        super().__init__(listener, spawn=gevent.pool.Pool())
        self.track(iface.name, limits, iface.max_body)
        self.app = iface.wsgi
        self.base_environ: dict[str, Any] = {
            'GATEWAY_INTERFACE': 'CGI/1.1', 'SERVER_SOFTWARE': 'fannode (gevent %s, httptools) Python/%d.%d'
            % ((gevent.__version__,) + sys.version_info[:2]), 'SCRIPT_NAME': '', 'wsgi.version': (1, 0),
            'wsgi.multithread': False, 'wsgi.multiprocess': False, 'wsgi.run_once': False,
            'wsgi.url_scheme': 'http', 'wsgi.errors': ErrorStream(), 'wsgi.input_terminated': True}

    def start(self) -> None:
        address = self.socket.getsockname()
        if isinstance(address, tuple):
            try:
                name = socket.getfqdn(address[0])
            except OSError:
                name = str(address[0])
            self.base_environ.update(SERVER_NAME=name, SERVER_PORT=str(address[1]))
        else:
            self.base_environ.update(SERVER_NAME=str(address), SERVER_PORT='')
        super().start()

    def handle(self, sock: Any, address: Any) -> None:
        Connection(self, sock, address).handle()
