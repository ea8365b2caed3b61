"""The deadline of the work being done now: when its caller stops waiting.

The RPC server sets it from each request's budget (the wire's deadline_ms), so the calls a
handler makes get no more time than is left: a call's timeout is the smaller of its own and
what remains. A context variable, like the trace: each greenlet keeps its own.
"""
from __future__ import annotations

import contextvars
import time

from fannode.exceptions import DeadlineExceeded

_deadline: contextvars.ContextVar[float] = contextvars.ContextVar('fannode_deadline', default=0.0)


def get() -> float | None:
    """The current deadline (time.monotonic()), None when the work has none."""
    return _deadline.get() or None


def set(deadline: float | None) -> contextvars.Token[float]:
    """Make `deadline` (time.monotonic(), None for none) the current one; reset() with the token."""
    return _deadline.set(deadline or 0.0)


def reset(token: contextvars.Token[float]) -> None:
    _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (<= 0 once passed); None without one."""
    deadline = _deadline.get()
    return deadline - time.monotonic() if deadline else None


def clamp(timeout: float, subject: str = '') -> float:
    """`timeout`, or less when the current work has less time left; DeadlineExceeded when
    it has none, so a call that could not be answered in time is never sent."""
    left = remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise DeadlineExceeded('%s: not sent, the deadline of the request being handled passed %.0f ms ago'
                               % (subject or 'call', -left * 1000))
    return min(timeout, left)


def time_left() -> float | None:
    """Seconds the current request has left (never below 0), None when it has no deadline."""
    left = remaining()
    return None if left is None else max(0.0, left)


def wall_clock() -> float | None:
    """The current deadline as time.time() (for showing and logging), None without one."""
    left = remaining()
    return None if left is None else time.time() + left
