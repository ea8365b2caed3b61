"""Reading requests for fannode.web.lean: httptools (the C parser llhttp, as uvicorn uses)
turns the bytes of a connection into requests, each bounded as it is read (the URL, the
header lines and their bytes, the body), and a request's body as its `wsgi.input`.

Bytes are fed to the parser only when the connection needs them (the next request's
head, or a body the application reads), so a client gets at most one read ahead. Also the
small pieces of the environ and the response: header names as environ keys, the Date."""
from __future__ import annotations

import collections
import io
import logging
import time
from email.utils import formatdate
from typing import Any, Callable, Iterable

import httptools
from werkzeug.exceptions import ClientDisconnected, RequestEntityTooLarge

from fannode.core.limits import KIB
from fannode.web.reading import BAD_REQUEST, HEAD_TOO_LARGE, MAX_HEADER_BYTES, MAX_HEADERS, Refused, canned

READ = 64 * KIB       # bytes per read from a connection
MAX_URL = 8192        # bytes of a request's target (gevent.pywsgi's MAX_REQUEST_LINE)
URI_TOO_LONG = canned('414 URI Too Long', 'the request line is too long')
NOT_IMPLEMENTED = canned('501 Not Implemented', 'only the chunked transfer coding is understood')
# What httptools may hold of a head it has not finished (a header line not yet whole).
MAX_HEAD = MAX_URL + MAX_HEADER_BYTES + READ
log = logging.getLogger('fannode.web.server')


class Parsed:
    """One request as the parser read it: its head once `ready`, its body as it comes."""

    __slots__ = ('url', 'headers', 'header_bytes', 'ready', 'complete', 'chunks', 'received', 'over',
                 'bad', 'method', 'version', 'keep_alive')

    def __init__(self) -> None:
        self.url = b''
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.ready = self.complete = self.over = False
        self.bad = False  # its body is badly framed: reading it is a 400, and the connection ends
        self.chunks: collections.deque[bytes] = collections.deque()
        self.received = 0  # bytes of body
        self.method = 'GET'
        self.version = '1.1'
        self.keep_alive = False


class Reader:
    """The parser of one connection and the requests it has begun, oldest first. Its
    methods `on_*` are httptools' callbacks."""

    def __init__(self, max_body: int):
        self.parser = httptools.HttpRequestParser(self)
        self.requests: collections.deque[Parsed] = collections.deque()
        self.current: Parsed | None = None
        self.max_body = max_body
        self.in_head = False  # the parser is within a head: its bytes count against MAX_HEAD
        self.head_fed = 0
        self.upgraded = False  # the client asked for another protocol: the connection ends after
        self.refused: Refused | None = None
        self.failed: Refused | None = None  # a request the connection cannot go on after

    def feed(self, data: bytes) -> None:
        """Parse `data`. A request refused on the way is kept in `failed`, to be answered
        once those before it are (pipelined, or a request that said close): one bad request
        does not cost the good ones before it their answers. Nothing after it is parsed."""
        if self.failed is not None:
            return
        try:
            self._parse(data)
        except Refused as e:
            self.failed = e
            current = self.current
            if current is not None and current.ready and not current.complete:
                current.bad = True  # its trailers broke a limit: as bad framing of its body
            elif current is not None and not current.ready and self.requests and self.requests[-1] is current:
                self.requests.pop()  # a head that broke is not a request

    def _parse(self, data: bytes) -> None:
        if self.in_head:
            self.head_fed += len(data)
            if self.head_fed > MAX_HEAD:
                raise Refused('a request head over %d bytes' % MAX_HEAD, HEAD_TOO_LARGE)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # What follows the head is another protocol, which fannode does not speak: the
            # request is answered, then the connection closes.
            self.upgraded = True
            if self.current is not None:
                self.current.complete = True
        except httptools.HttpParserCallbackError:
            if self.refused is None:
                raise
            raise self.refused from None
        except httptools.HttpParserError as e:
            current = self.current
            if current is not None and current.ready and not current.complete:
                current.bad = True  # in the body: the request is answered, reading it fails
                return
            raise Refused('a bad request: %s' % e, BAD_REQUEST) from None

    def _refuse(self, refused: Refused) -> None:
        self.refused = refused
        raise refused

    def on_message_begin(self) -> None:
        self.current = Parsed()
        self.requests.append(self.current)
        self.in_head, self.head_fed = True, 0

    def on_url(self, url: bytes) -> None:
        current = self.current
        assert current is not None
        current.url += url
        if len(current.url) > MAX_URL:
            self._refuse(Refused('a request target over %d bytes' % MAX_URL, URI_TOO_LONG))

    def on_header(self, name: bytes, value: bytes) -> None:
        current = self.current
        assert current is not None
        current.headers.append((name, value))
        current.header_bytes += len(name) + len(value) + 4
        if current.header_bytes > MAX_HEADER_BYTES:
            self._refuse(Refused('headers over %d bytes' % MAX_HEADER_BYTES, HEAD_TOO_LARGE))
        if len(current.headers) > MAX_HEADERS:
            self._refuse(Refused('more than %d header lines' % MAX_HEADERS, HEAD_TOO_LARGE))

    def on_headers_complete(self) -> None:
        current = self.current
        assert current is not None
        parser = self.parser
        current.method = parser.get_method().decode('latin-1')
        current.version = parser.get_http_version()
        current.keep_alive = parser.should_keep_alive()
        current.ready = True
        self.in_head = False

    def on_body(self, body: bytes) -> None:
        current = self.current
        assert current is not None
        current.received += len(body)
        if current.received > self.max_body:
            current.over = True  # what comes is dropped: the request is refused (413), then closed
            current.chunks.clear()
        else:
            current.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.current is not None:
            self.current.complete = True


class Body(io.RawIOBase):
    """A request's body as its wsgi.input. `fill` reads more of the connection into the
    parser (the request's chunks grow), or raises ClientDisconnected (a stall past
    idle_timeout, the client gone, bad framing) or RequestEntityTooLarge."""

    def __init__(self, parsed: Parsed, fill: Callable[[Parsed], None]):
        super().__init__()
        self.parsed = parsed
        self.fill = fill

    def readable(self) -> bool:
        return True

    def _more(self) -> bool:
        """Some body is at hand (False: it has all been read)."""
        parsed = self.parsed
        while not parsed.chunks:
            if parsed.bad:
                raise ClientDisconnected('the request body is badly framed')
            if parsed.over:
                raise RequestEntityTooLarge('the request body is larger than max_body')
            if parsed.complete:
                return False
            self.fill(parsed)
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        chunks = self.parsed.chunks
        if size == 0 or not self._more():
            return b''
        chunk = chunks.popleft()
        if len(chunk) > size:
            chunks.appendleft(chunk[size:])
            chunk = chunk[:size]
        return chunk

    def readall(self) -> bytes:
        out: list[bytes] = []
        while self._more():
            out.extend(self.parsed.chunks)
            self.parsed.chunks.clear()
        return b''.join(out)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        out = bytearray()
        chunks = self.parsed.chunks
        while (size is None or size < 0 or len(out) < size) and self._more():
            chunk = chunks.popleft()
            end = chunk.find(b'\n') + 1 or len(chunk)
            if size is not None and 0 <= size < len(out) + end:
                end = size - len(out)
            out += chunk[:end]
            if end < len(chunk):
                chunks.appendleft(chunk[end:])
            if out.endswith(b'\n'):
                break
        return bytes(out)


class Empty(io.RawIOBase):
    """The wsgi.input of a request without a body."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return 0

    def read(self, size: int | None = -1) -> bytes:
        return b''

    def readline(self, size: int | None = -1) -> bytes:
        return b''


KEYS: dict[bytes, str | None] = {}  # header name as sent → its environ key (None: dropped)
MAX_KEYS = 1000


def environ_key(name: bytes) -> str | None:
    key = KEYS.get(name, '')
    if key == '':
        text = name.decode('latin-1').upper()
        # A name with '_' could pose as another once '-' becomes '_' (gevent.pywsgi drops them too)
        key = None if '_' in text else text.replace('-', '_')
        if key not in ('CONTENT_TYPE', 'CONTENT_LENGTH', None):
            key = 'HTTP_' + key
        if len(KEYS) < MAX_KEYS:
            KEYS[name] = key
    return key


class ErrorStream:
    """wsgi.errors: what the application writes there is logged."""

    def write(self, text: str) -> None:
        if text.strip():
            log.error('%s', text.rstrip())

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pass


_date: list[Any] = [0, b'']


def http_date() -> bytes:
    now = int(time.time())
    if now != _date[0]:
        _date[:] = now, formatdate(now, usegmt=True).encode()  # not strftime: %a and %b follow the locale
    return _date[1]
