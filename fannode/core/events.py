"""Events as a service author sees them: `@event` handlers and the `Event` they receive.

Patterns follow AMQP topic rules: event types are dot-separated words, `*` matches
exactly one word and `#` zero or more.
"""
from __future__ import annotations

import dataclasses
import math
import re
import time
import uuid
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, Callable, TypeVar

from fannode.core import trace
from fannode.core.limits import setting
from fannode.core.text import short
from fannode.exceptions import UsageError

F = TypeVar('F', bound=Callable[..., Any])

# An AMQP routing key (the event type) and binding key (a pattern) are at most 255 bytes.
MAX_TYPE = setting('FANNODE_EVENT_TYPE_MAX', 255, low=1)
# RabbitMQ's message TTL, which delays are made of, stops at 2**32 - 1 ms (49.7 days).
MAX_DELAY = setting('FANNODE_EVENT_DELAY_MAX', 4_294_967.0, low=0.0)

_WORD = re.compile(r'[A-Za-z0-9_\-]+')




def check_type(event_type: str) -> str:
    """An event type to emit: dot-separated words, no wildcards."""
    if isinstance(event_type, str) and len(event_type) > MAX_TYPE:
        raise UsageError('bad event type %s: %d characters, at most %d ($FANNODE_EVENT_TYPE_MAX)'
                         % (short(event_type), len(event_type), MAX_TYPE))
    if not isinstance(event_type, str) or not event_type or \
            not all(_WORD.fullmatch(w) for w in event_type.split('.')):
        raise UsageError("bad event type %s: expected dot-separated words of letters, digits, "
                         "'_' or '-', e.g. 'greeted' or 'order.paid'" % short(event_type))
    return event_type


def check_body(event_type: str, body: Any) -> dict:
    """An event body: a mapping of names to values, or nothing (an empty one)."""
    if body is None:
        return {}
    if not isinstance(body, Mapping):
        raise UsageError('event %s: the body must be a mapping of names to values, got %s'
                         % (event_type, type(body).__name__))
    return dict(body)


def check_pattern(pattern: str) -> str:
    """A pattern to subscribe with: words, '*' (one word) and '#' (zero or more words)."""
    if isinstance(pattern, str) and len(pattern) > MAX_TYPE:
        raise UsageError('bad event pattern %s: %d characters, at most %d ($FANNODE_EVENT_TYPE_MAX)'
                         % (short(pattern), len(pattern), MAX_TYPE))
    if not isinstance(pattern, str) or not pattern or \
            not all(w in ('*', '#') or _WORD.fullmatch(w) for w in pattern.split('.')):
        raise UsageError("bad event pattern %s: expected dot-separated words, '*' for one word "
                         "or '#' for any number, e.g. 'order.*' or 'order.#'" % short(pattern))
    return pattern


def check_delay(event_type: str, delay: Any) -> float:
    """Seconds to hold an event back: None or a number from 0 to MAX_DELAY."""
    if delay is None:
        return 0.0
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_DELAY:
        raise UsageError('event %s: delay must be a number of seconds from 0 to %.0f (%.1f days, '
                         '$FANNODE_EVENT_DELAY_MAX), got %s' % (event_type, MAX_DELAY, MAX_DELAY / 86400, short(delay)))
    return float(delay)


def check_ttl(event_type: str, ttl: Any) -> float | None:
    """Seconds an event may wait to be handled: None (for ever) or a number above 0."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not (0 < ttl and math.isfinite(ttl)):
        raise UsageError('event %s: ttl must be a number of seconds above 0, got %s' % (event_type, short(ttl)))
    return float(ttl)


def check_retry(retry: Any, what: str = 'retry') -> int:
    """How many times a failed handler runs again: a whole number (True is not one)."""
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        raise UsageError('%s must be a whole number >= 0, got %s' % (what, short(retry)))
    return retry


@lru_cache(maxsize=4096)
def _segments(pattern: str) -> tuple[tuple[str, ...], ...]:
    """The runs of words between the '#'s of a pattern: 'a.#.*.b.#.c' is (a), (*, b), (c)."""
    runs: list[tuple[str, ...]] = []
    run: list[str] = []
    for word in pattern.split('.'):
        if word == '#':
            runs.append(tuple(run))
            run = []
        else:
            run.append(word)
    runs.append(tuple(run))
    return tuple(runs)


def _fits(run: tuple[str, ...], words: list[str], at: int) -> bool:
    return all(p == '*' or p == w for p, w in zip(run, words[at:at + len(run)]))


def matches(pattern: str, event_type: str) -> bool:
    """Whether `event_type` matches `pattern`, in time linear in their words. (A regular
    expression backtracks through every split of the words between several '#'s: twelve
    of them against a 40-word type took a hub over a minute.) Each run between '#'s has
    a fixed number of words, so the first place it fits is as good as any later one."""
    runs = _segments(pattern)
    words = event_type.split('.')
    first, last = runs[0], runs[-1]
    if len(runs) == 1:
        return len(first) == len(words) and _fits(first, words, 0)
    end = len(words) - len(last)
    if len(first) > end or not _fits(first, words, 0) or not _fits(last, words, end):
        return False
    at = len(first)
    for run in runs[1:-1]:
        while at + len(run) <= end and not _fits(run, words, at):
            at += 1
        if at + len(run) > end:
            return False
        at += len(run)
    return True


@dataclasses.dataclass(frozen=True)
class EventSpec:
    patterns: tuple[str, ...]
    broadcast: bool = False
    sequential: bool = False
    retry: int = 0
    shard: str | None = None


def event(*patterns: str, broadcast: bool = False, sequential: bool = False, retry: int = 0,
          shard: str | None = None) -> Callable[[F], F]:
    """Handle events whose type matches any of `patterns`.

    By default each event is handled once per service (by one of its instances);
    `broadcast=True` runs the handler on every instance. `sequential=True` handles one
    event at a time, in order. A handler that raises is retried `retry` times with
    backoff, then dead-lettered. `shard='store'` hands every event with the same `store`
    in its body to the same instance, one at a time, in emit order (docs/sharding.md).
    """
    if not patterns:
        raise UsageError('@event needs at least one pattern, e.g. @fannode.event("greeted")')
    for p in patterns:
        check_pattern(p)
    check_retry(retry, '@event retry=')
    if shard is not None and (broadcast or not isinstance(shard, str) or not shard):
        raise UsageError('@event shard=: %s' % ('a broadcast handler runs on every instance: it cannot be '
                                                 'sharded' if broadcast else 'expected the name of a body field'))

    def mark(f: F) -> F:
        f._fannode_event = EventSpec(tuple(patterns), broadcast, sequential, retry, shard)  # type: ignore[attr-defined]
        return f

    return mark


def event_handlers(cls: type) -> dict[str, Callable[..., Any]]:
    """The `@event` functions of `cls` and its bases, by name."""
    return {name: attr for name in dir(cls)
            if callable(attr := getattr(cls, name, None)) and hasattr(attr, '_fannode_event')}


class Event(Mapping):
    """One event: read its body like a dict (`event['name']`), and its envelope as
    attributes: `.type`, `.id`, `.headers`, `.trace_id`, `.source`, `.time`, `.ttl`."""

    __slots__ = ('type', 'body', 'headers')

    def __init__(self, type: str, body: Mapping | None = None, headers: dict | None = None):
        self.type = type
        self.body = dict(body or {})
        self.headers = headers if headers is not None else {}

    @classmethod
    def new(cls, type: str, body: Mapping | None, trace_id: str, source: str,
            ttl: float | None = None) -> 'Event':
        """An event emitted now, by the span running here (its handlers' parent); with a
        `ttl` (checked), one that must be handled within that many seconds or not at all."""
        headers = {'id': uuid.uuid4().hex, 'trace_id': trace_id, 'source': source,
                   'time': time.time(), 'span': trace.get_span()}
        if ttl is not None:
            headers['ttl'] = check_ttl(type, ttl)
        return cls(type, body, headers)

    @property
    def id(self) -> str:
        return self.headers.get('id', '')

    @property
    def trace_id(self) -> str:
        return self.headers.get('trace_id', '')

    @property
    def span(self) -> str:
        """The span that emitted it: the parent of the spans that handle it."""
        return self.headers.get('span', '')

    @property
    def source(self) -> str:
        return self.headers.get('source', '')

    @property
    def time(self) -> float:
        return self.headers.get('time', 0.0)

    @property
    def ttl(self) -> float | None:
        """Seconds from `time` within which a handler must start on it; None: no limit."""
        return self.headers.get('ttl')

    @property
    def expires(self) -> float | None:
        """When (time.time()) its ttl runs out; None without one."""
        ttl = self.headers.get('ttl')
        return None if ttl is None else self.time + ttl

    @property
    def attempt(self) -> int:
        """1 for the first delivery, 2 for the first retry, ..."""
        return self.headers.get('attempt', 1)

    def __getitem__(self, key: str) -> Any:
        return self.body[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.body)

    def __len__(self) -> int:
        return len(self.body)

    def to_dict(self) -> dict[str, Any]:
        return {'type': self.type, 'body': self.body, 'headers': self.headers}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> 'Event':
        return cls(data['type'], data.get('body'), data.get('headers') or {})

    def __repr__(self) -> str:
        return '<Event %s %s %r>' % (self.type, self.id[:8], self.body)
