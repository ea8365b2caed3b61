"""Log records carry the service and the trace id of the work that wrote them."""
from __future__ import annotations

import _thread
import logging
import sys
import time

from fannode.core import trace

FORMAT = '%(asctime)s %(levelname)-7s %(service)s %(name)s [%(trace_id)s] %(message)s'
# Written many times a second by a busy web server: flushed once per turn of the gevent
# loop rather than once per line (one write for many requests).
BATCHED = frozenset({'fannode.web.access'})


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
            self.stream.write(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)
            return
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


def setup(level: str = 'INFO', service: str = 'fannode') -> None:
    """Configure the root logger of a fannode process (never at import time)."""
    # FORMAT uses none of these; computing them costs a quarter of each record.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None  # no caller lookup (the logging HOWTO's "Optimization")
    handler = Handler(buffered(sys.stderr))
    handler.setFormatter(Formatter())
    handler.addFilter(ContextFilter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
