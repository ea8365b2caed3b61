"""Events as brokers carry them, checked at both ends.

At emit, an event is encoded at once, so one the codec cannot carry is the caller's error
there, naming the event and the value at fault, and never reaches a sender that would
fail on it later. At delivery, what arrives came from the network: anything a fannode
emitter could not have sent (a body that is not a map, headers of the wrong types, a type
outside the rules) is refused with a one-line reason, and the consumer dead-letters it.
"""
from __future__ import annotations

import math
from typing import Any

from fannode.core import serial
from fannode.core.events import Event, check_type
from fannode.core.limits import MIB, setting
from fannode.core.text import short
# A handler runs under its event's trace id and span, and its calls carry them: the bound
# of the RPC frames they go into.
from fannode.core.wire import MAX_TRACE_ID
from fannode.exceptions import UsageError

# An event is one message in every broker, held in memory and kept in the hub's journal.
MAX_BYTES = setting('FANNODE_EVENT_MAX_BYTES', 1 * MIB, low=1024)
MAX_SOURCE = setting('FANNODE_EVENT_SOURCE_MAX', 1024, low=64)  # the emitter's interfaces, comma-separated


class Unsendable(UsageError, TypeError):
    """An event body the codec cannot carry. A UsageError, for the CLI's one-line errors;
    a TypeError, as json.dumps raises for the same mistake."""


class Unreadable(ValueError):
    """A delivery that is not an event fannode could have sent; str() is the reason."""


def encode(event: Event) -> tuple[bytes, dict[str, Any]]:
    """The event as brokers carry it, and as a consumer will decode it (a tuple becomes a
    list): a copy, so changes the caller makes to its body after emit are not sent."""
    data = event.to_dict()
    try:
        raw = serial.dumps(data)
        copy = serial.loads(raw)  # a tuple as a map key encodes, but cannot be decoded
    except (TypeError, ValueError, OverflowError) as e:
        raise Unsendable('event %s: %s cannot be sent: %s' % (event.type, _culprit(data['body']), e)) from None
    if len(raw) > MAX_BYTES:
        raise UsageError('event %s: %d bytes encoded, more than the %d an event may have '
                         '($FANNODE_EVENT_MAX_BYTES)' % (event.type, len(raw), MAX_BYTES))
    try:
        decode(copy)  # whatever a consumer would refuse is the emitter's error
    except Unreadable as e:
        raise UsageError(str(e)) from None
    assert isinstance(copy, dict)
    return raw, copy


def _culprit(value: Any, path: str = 'body', depth: int = 0) -> str:
    """Where in `value` the first thing the codec refuses is: "body['items'][2]". Only run
    once encoding failed; `depth` stops it in a structure that contains itself."""
    if depth > 32:
        return path
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return path
    for key, item in items:
        here = '%s[%s]' % (path, short(key, 40))
        for part in (key, item):
            try:
                serial.loads(serial.dumps(part))
            except (TypeError, ValueError, OverflowError):
                return _culprit(part, here, depth + 1) if part is item else here + ' (its key)'
        if isinstance(value, dict) and isinstance(key, (tuple, list)):
            return here + ' (a tuple as a key comes back as a list, which cannot be a key)'
    return path


def decode(data: Any, attempt: Any = 1) -> Event:
    """The event in a delivery (its decoded message), on its `attempt`-th delivery;
    Unreadable, with the reason, when it is not one fannode could have sent."""
    if not isinstance(data, dict):
        raise Unreadable('not an event: a %s, not a map' % type(data).__name__)
    event_type: Any = data.get('type')
    try:
        check_type(event_type)  # a str, then
    except UsageError as e:
        raise Unreadable(str(e)) from None
    body, headers = data.get('body'), data.get('headers')
    if body is not None and not isinstance(body, dict):
        raise Unreadable('event %s: the body is a %s, not a map' % (event_type, type(body).__name__))
    if headers is not None and not isinstance(headers, dict):
        raise Unreadable('event %s: the headers are a %s, not a map' % (event_type, type(headers).__name__))
    headers = dict(headers or {})
    for name, most in (('id', MAX_TRACE_ID), ('trace_id', MAX_TRACE_ID), ('span', MAX_TRACE_ID),
                       ('source', MAX_SOURCE)):
        value = headers.get(name, '')
        if not isinstance(value, str) or len(value) > most or not value.isprintable():
            raise Unreadable('event %s: header %s is %s, not a line of at most %d characters'
                             % (event_type, name, short(value, 40), most))
    for name in ('id', 'trace_id', 'span'):
        if not headers.get(name, '').isascii() or ' ' in headers.get(name, ''):
            raise Unreadable('event %s: header %s is %s, not an id (ASCII, no spaces)'
                             % (event_type, name, short(headers[name], 40)))
    stamp = headers.get('time', 0.0)
    if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
        raise Unreadable('event %s: header time is %s, not a number' % (event_type, short(stamp)))
    ttl = headers.get('ttl')  # events from before ttl existed have none
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl < math.inf):
        raise Unreadable('event %s: header ttl is %s, not a number of seconds above 0' % (event_type, short(ttl)))
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
        raise Unreadable('event %s: attempt is %s, not a whole number from 1' % (event_type, short(attempt)))
    headers['attempt'] = attempt
    return Event(event_type, body, headers)


def attempt_of(raw: Any) -> int:
    """An attempt number fit to count with, whatever a delivery said (decode() refuses a bad one)."""
    return raw if type(raw) is int and raw >= 1 else 1
