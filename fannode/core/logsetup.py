"""Log records carry the service and the trace id of the work that wrote them.

A fannode process writes its log lines to stderr: human lines on a terminal, or JSON
records (FANNODE_LOG_FORMAT=json, set by `fannode up`, which reads them, prints them and
forwards them to the log hub). An instance run by hand ships the same records to the hub
itself. `print()` in service code becomes a log record of logger 'print', so printed
lines carry their trace id too.
"""
from __future__ import annotations

import _thread
import json
import logging
import math
import os
import socket
import sys
import time
from typing import Any, Callable

from fannode.core import trace
from fannode.core.limits import KIB, setting

# The longest message a record carries (as the log hub keeps it): a longer one is cut.
MAX_MSG = setting('FANNODE_LOG_MAX_MSG', 256 * KIB, KIB)

FORMAT = '%(asctime)s %(levelname)-7s %(service)s %(name)s [%(trace_id)s] %(message)s'
# Written many times a second by a busy web server: flushed once per turn of the gevent
# loop rather than once per line (one write for many requests).
BATCHED = frozenset({'fannode.web.access'})
# Set (logging's `extra`) on a line whose span carries it to where records go, one record
# for both (fannode.web's access lines): written to stderr as text as any line, never
# shipped or written as a JSON record a second time.
CARRIED = 'fannode_carried'


class ContextFilter(logging.Filter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = trace.get_id() or '-'
        record.service = self.service
        return True


class Formatter(logging.Formatter):
    """FORMAT, with the date and time formatted once a second rather than once a record."""

    def __init__(self) -> None:
        super().__init__(FORMAT)
        self._second = -1
        self._stamp = ''

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        if second != self._second:
            self._stamp = time.strftime('%Y-%m-%d %H:%M:%S', self.converter(record.created))
            self._second = second
        return '%s,%03d' % (self._stamp, record.msecs)


class Handler(logging.StreamHandler):
    """Every record is written and flushed at once, except BATCHED ones: those are
    flushed at the end of the current turn of the gevent loop, or by the next record
    that is not batched, so lines always come out in order."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._flush_pending = False

    def createLock(self) -> None:
        # The C lock even when gevent has patched threading: emit never yields to another
        # greenlet, so a greenlet-aware lock (pure Python) buys nothing and costs per line.
        self.lock = _thread.RLock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name not in BATCHED:
            super().emit(record)
            return
        try:
            self.write_batched(self.format(record))
        except Exception:
            self.handleError(record)

    def write_batched(self, line: str) -> None:
        self.stream.write(line + self.terminator)
        if not self._flush_pending:
            import gevent
            self._flush_pending = True
            gevent.get_hub().loop.run_callback(self._flush_batch)

    def _flush_batch(self) -> None:
        self._flush_pending = False
        self.flush()


def buffered(stream):
    """A buffered writer on the stream's file: with PYTHONUNBUFFERED (common in containers)
    every write to sys.stderr is a system call, which would undo the batching."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture): as is
        return stream
    return open(fd, 'w', encoding=getattr(stream, 'encoding', None) or 'utf-8',
                errors='backslashreplace', closefd=False)


def identity(service: str, instance: str = '') -> dict[str, Any]:
    """Who wrote a record: every record carries these."""
    return {'service': service, 'instance': instance, 'pid': os.getpid(), 'host': socket.gethostname()}


def text(value: Any, limit: int = 0) -> str:
    """`value` as a str the codec can carry: a lone surrogate (a file name decoded with
    surrogateescape, say) would make msgpack refuse the whole batch it is in. Cut to
    `limit` characters when given."""
    if type(value) is not str:
        try:
            value = str(value)
        except Exception:
            value = '<%s whose str() failed>' % type(value).__name__
    if not value.isascii():
        value = value.encode('utf-8', 'backslashreplace').decode('utf-8')
    if limit and len(value) > limit:
        value = value[:limit] + '... [%d characters cut]' % (len(value) - limit)
    return value


def plain(value: Any) -> Any:
    """A value of a record's field as the codec and JSON carry it: numbers, text, None."""
    if value is None or type(value) in (bool, int):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else text(value)
    return text(value, MAX_MSG)


def to_record(record: logging.LogRecord, who: dict[str, Any]) -> dict[str, Any]:
    """The record shipped and written as JSON: plain types only, made here once, so no
    value a caller logged can stop a shipper or the hub from taking it."""
    # The line's own Formatter, first in line, has already merged the arguments in.
    message = record.message if hasattr(record, 'message') else record.getMessage()
    if record.exc_info:
        message += '\n' + logging.Formatter().formatException(record.exc_info)
    created = record.created if type(record.created) is float and math.isfinite(record.created) else time.time()
    return dict(who, kind='log', ts=created, level=text(record.levelname), logger=text(record.name),
                msg=text(message, MAX_MSG), trace=text(trace.get_id()), span=text(trace.get_span()))


def not_carried(record: logging.LogRecord) -> bool:
    """False for a line a span carries to where records go (`CARRIED`): it went with the span."""
    return not getattr(record, CARRIED, False)


def span_record(span: dict[str, Any], who: dict[str, Any]) -> dict[str, Any]:
    """A finished span (core.trace) as a record, its extra fields made plain. A span per
    request: what is plain already (ASCII text, finite numbers) is taken as it is."""
    record = dict(who)
    for key, value in span.items():
        kind = type(value)
        if kind is str:
            if not value.isascii() or len(value) > MAX_MSG:
                value = text(value, MAX_MSG)
        elif kind is float:
            if not math.isfinite(value):
                value = text(value)
        elif value is not None and kind is not int and kind is not bool:
            value = plain(value)
        record[key if type(key) is str else text(key)] = value
    return record


class JsonFormatter(logging.Formatter):
    def __init__(self, who: dict[str, Any]):
        super().__init__()
        self.who = who

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(to_record(record, self.who), default=str)


class Forwarder(logging.Handler):
    """Hands every record, as a dict, to `send` (a log shipper's `add`); not a line its span carried."""

    def __init__(self, send: Callable[[dict[str, Any]], None], who: dict[str, Any]):
        super().__init__()
        self.send = send
        self.who = who
        self.addFilter(not_carried)

    def createLock(self) -> None:
        self.lock = _thread.RLock()  # as Handler: emit never yields

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.send(to_record(record, self.who))
        except Exception:
            self.handleError(record)


class PrintStream:
    """sys.stdout of an instance: each printed line becomes an INFO record of logger
    'print', written where log records go, with the trace id of the greenlet printing."""

    encoding = 'utf-8'
    errors = 'backslashreplace'

    def __init__(self, original: Any):
        self.original = original
        self.log = logging.getLogger('print')
        self.partial = ''

    def write(self, text: str) -> int:
        *lines, self.partial = (self.partial + text).split('\n')
        for line in lines:
            self.log.info('%s', line)
        return len(text)

    def flush(self) -> None:
        pass  # a partial line waits for its newline: records are whole lines

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.original.fileno()

    def writable(self) -> bool:
        return True


def json_mode() -> bool:
    return os.environ.get('FANNODE_LOG_FORMAT', '').lower() == 'json'


def setup(level: str = 'INFO', service: str = 'fannode', instance: str = '',
          ship: Callable[[dict[str, Any]], None] | None = None, capture_print: bool = False) -> None:
    """Configure the root logger of a fannode process (never at import time): lines to
    stderr (JSON records when FANNODE_LOG_FORMAT=json), records and finished spans also to
    `ship` when given; with `capture_print`, print() output becomes records."""
    # FORMAT uses none of these; computing them costs a quarter of each record.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # no caller lookup (the logging HOWTO's "Optimization")
    who = identity(service, instance)
    handler = Handler(buffered(sys.stderr))
    handlers: list[logging.Handler] = [handler]
    if json_mode():
        handler.setFormatter(JsonFormatter(who))
        handler.addFilter(not_carried)
        trace.sink = lambda span: handler.write_batched(json.dumps(span_record(span, who)))
    else:
        handler.setFormatter(Formatter())
        handler.addFilter(ContextFilter(service))
        if ship is not None:
            handlers.append(Forwarder(ship, who))
            trace.sink = lambda span: ship(span_record(span, who))
    root = logging.getLogger()
    root.handlers[:] = handlers
    root.setLevel(level.upper())
    if capture_print and not isinstance(sys.stdout, PrintStream):
        sys.stdout = PrintStream(sys.stdout)
        logging.getLogger('print').setLevel(logging.INFO)  # printed lines show at any log level
