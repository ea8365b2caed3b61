"""The trace id and span of the unit of work the current greenlet is doing.

A trace is one request's whole path through the cluster; a span is one piece of it done
in one process (an RPC handled, an event handled, an HTTP request served). Outgoing calls
and events carry the current span as their parent.

Each greenlet has its own context, so ids set while handling one request never leak into
another handled beside it; `inherit()` makes greenlets a handler spawns keep its ids.
"""
from __future__ import annotations

import contextvars
import random
import time
from typing import Any, Callable

_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar('fannode_trace_id', default='')
_span_id: contextvars.ContextVar[str] = contextvars.ContextVar('fannode_span_id', default='')

# Where finished spans go (a dict each); set by fannode.core.logsetup when something ships them.
sink: Callable[[dict[str, Any]], None] | None = None
# The fields of a log line a span may carry with it, one record for both (an HTTP request's
# access line, fannode.web): readers show the two (fannode.logs.records.unpack).
LINE_FIELDS = ('level', 'logger', 'msg')


def new_id() -> str:
    """32 hex digits, like a uuid4's; random (reseeded in each forked child) rather than
    uuid4, which reads the OS's entropy and costs ten times more per request."""
    return '%032x' % random.getrandbits(128)


def new_span_id() -> str:
    return '%016x' % random.getrandbits(64)


def get_id() -> str:
    return _trace_id.get()


def set_id(trace_id: str) -> None:
    _trace_id.set(trace_id)


def get_span() -> str:
    return _span_id.get()


def ensure_id() -> str:
    """The current trace id, starting a new trace when there is none (an edge)."""
    trace_id = _trace_id.get()
    if not trace_id:
        trace_id = new_id()
        _trace_id.set(trace_id)
    return trace_id


class Span:
    """One unit of work in this process, begun with `begin` and reported by `end`."""

    __slots__ = ('trace', 'id', 'parent', 'started', '_clock')

    def __init__(self, trace_id: str, parent: str):
        self.trace = trace_id
        self.id = new_span_id()
        self.parent = parent
        self.started = time.time()
        self._clock = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._clock

    def end(self, type: str, name: str, status: str = 'ok', report: bool = True, seconds: float | None = None,
            **extra: Any) -> float:
        """Report the span to the sink (unless not `report`); the seconds it took (`seconds`
        when given: what its caller already told of it)."""
        if seconds is None:
            seconds = self.elapsed()
        if report and sink is not None:
            record = {'kind': 'span', 'ts': self.started, 'trace': self.trace, 'span': self.id,
                      'parent': self.parent, 'type': type, 'name': name, 'status': status,
                      'duration_ms': round(seconds * 1000, 3)}
            if extra:
                record.update(extra)
            sink(record)
        return seconds


def begin(trace_id: str = '', parent: str = '') -> Span:
    """Start a span in the current context: in the trace given (a new one when empty),
    as a child of span `parent`."""
    span = Span(trace_id or new_id(), parent)
    _trace_id.set(span.trace)
    _span_id.set(span.id)
    return span


def _copy_context(greenlet: Any) -> None:
    greenlet.gr_context = contextvars.copy_context()


def background(func: Any, *args: Any) -> Any:
    """Spawn `func` outside any trace: a loop that outlives the request that started it (an
    event sender, a hub heartbeat) must not log under that request's trace id."""
    import gevent
    greenlet = gevent.spawn(func, *args)
    greenlet.gr_context = contextvars.Context()  # not yet started: it runs in this one
    return greenlet


def inherit() -> None:
    """Greenlets spawned from now on start with a copy of their spawner's context, so the
    work a handler hands to a greenlet stays in its trace."""
    import gevent
    gevent.Greenlet.add_spawn_callback(_copy_context)
