"""Reading a request's head and body from a client within bounds, and the responses a
request refused on the way gets (before it reaches the interface)."""
from __future__ import annotations

from email.parser import Parser
from typing import Any

from gevent.pywsgi import Input, OldMessage
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from fannode.core.limits import KIB, setting

MAX_HEADER_BYTES = setting('FANNODE_HTTP_MAX_HEADER_BYTES', 64 * KIB, 1024)  # all header lines
MAX_HEADERS = 100  # header lines (http.client, which parses them, stops there too)


def canned(status: str, text: str, *headers: str) -> bytes:
    """A whole response, for a request refused before it reaches the interface."""
    body = text.encode() + b'\n'
    head = ('HTTP/1.1 %s' % status, 'Content-Type: text/plain; charset=utf-8',
            'Content-Length: %d' % len(body), 'Connection: close') + headers
    return ('\r\n'.join(head) + '\r\n\r\n').encode() + body


BUSY = canned('503 Service Unavailable', 'too many connections; try again', 'Retry-After: 1')
TIMED_OUT = canned('408 Request Timeout', 'the request head did not arrive in time')
HEAD_TOO_LARGE = canned('431 Request Header Fields Too Large', 'request headers too large')
BODY_TOO_LARGE = canned('413 Content Too Large', 'request body too large')
BAD_REQUEST = canned('400 Bad Request', 'bad request')
STOPPED = canned('503 Service Unavailable', 'the service stopped before answering', 'Retry-After: 1')


class Refused(ValueError):
    """A request refused while its head is read: why, and the response (None: just close)."""

    def __init__(self, reason: str, response: bytes | None):
        super().__init__(reason)
        self.response = response


def read_headers(rfile: Any) -> Any:
    """A request's headers as gevent has them (http.client.parse_headers, into gevent's
    OldMessage): the same loop, bounded to MAX_HEADER_BYTES in MAX_HEADERS lines, and whole
    lines only (a head cut short by the client closing is not a request)."""
    lines = []
    left = MAX_HEADER_BYTES
    readline = rfile.readline
    while True:
        line = readline(left + 1)
        left -= len(line)
        lines.append(line)
        if left < 0:
            raise Refused('headers over %d bytes' % MAX_HEADER_BYTES, HEAD_TOO_LARGE)
        if line in (b'\r\n', b'\n'):
            break
        if not line.endswith(b'\n'):
            raise Refused('the connection closed within the headers', None)
        if len(lines) > MAX_HEADERS:
            raise Refused('more than %d header lines' % MAX_HEADERS, HEAD_TOO_LARGE)
    return Parser(_class=OldMessage).parsestr(b''.join(lines).decode('iso-8859-1'))


class ChunkedInput(Input):
    """A chunked body that may not grow past `left` bytes: the read that would go past it
    raises RequestEntityTooLarge (413), having read at most one byte more."""

    __slots__ = ('left',)

    def __init__(self, rfile: Any, sock: Any, limit: int):
        super().__init__(rfile, None, socket=sock, chunked_input=True)
        self.left = limit

    def _most(self, size: int | None) -> int:
        if self.left < 0:
            raise RequestEntityTooLarge('the request body is larger than max_body')
        return self.left + 1 if size is None or size < 0 or size > self.left else size

    def _count(self, data: bytes) -> bytes:
        self.left -= len(data)
        self._most(0)
        return data

    def read(self, length: int | None = None) -> bytes:
        most = self._most(length)
        try:
            return self._count(super().read(most))
        except OSError:
            raise self._broken() from None

    def readline(self, size: int | None = None) -> bytes:
        most = self._most(size)
        try:
            return self._count(super().readline(most))
        except OSError:
            raise self._broken() from None

    def _broken(self) -> ClientDisconnected:
        # Bad framing, a stall past idle_timeout, a reset: a 400 (werkzeug's word for it,
        # as for a body with a length), and the connection closes (left < 0).
        self.left = -1
        return ClientDisconnected()

    def _discard(self) -> None:
        try:
            super()._discard()
        except (RequestEntityTooLarge, ClientDisconnected):
            pass  # left < 0: the handler closes the connection rather than read the rest
