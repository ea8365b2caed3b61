"""The trace id of the unit of work the current greenlet is doing.

Each greenlet has its own context, so ids set while handling one request never leak
into another handled beside it.
"""
from __future__ import annotations

import contextvars
import random

_trace_id: contextvars.ContextVar[str] = contextvars.ContextVar('fannode_trace_id', default='')


def new_id() -> str:
    """32 hex digits, like a uuid4's; random (reseeded in each forked child) rather than
    uuid4, which reads the OS's entropy and costs ten times more per request."""
    return '%032x' % random.getrandbits(128)


def get_id() -> str:
    return _trace_id.get()


def set_id(trace_id: str) -> None:
    _trace_id.set(trace_id)


def ensure_id() -> str:
    """The current trace id, starting a new trace when there is none (an edge)."""
    trace_id = _trace_id.get()
    if not trace_id:
        trace_id = new_id()
        _trace_id.set(trace_id)
    return trace_id
