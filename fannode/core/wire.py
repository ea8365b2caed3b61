"""The RPC wire format: one msgpack frame per message (see docs/protocol.md).

    [version, type, id, subject, trace_id, span_id, deadline_ms, headers, body]

The ROUTER side also sees the peer's identity frame in front of it; nothing else is framed.

Frames come from the network, so `decode` checks every header field's type and bounds
before anyone acts on it, and names the field at fault. When the frame is bad but its id
is readable, the ProtocolError carries the id, so the other side can be told why.
"""
from __future__ import annotations

from typing import Any

from msgpack import Unpacker

from fannode.core import serial
from fannode.core.limits import setting

VERSION = 1

REQ, REP, ACK, NACK, ERROR, NOTIFY = 1, 2, 3, 4, 5, 6
TYPE_NAMES = {REQ: 'REQ', REP: 'REP', ACK: 'ACK', NACK: 'NACK', ERROR: 'ERROR', NOTIFY: 'NOTIFY'}

# Checked before any work is done with them: a method name is looked up, logged, and
# compared with the service's methods ("did you mean") when unknown.
MAX_SUBJECT = setting('FANNODE_MAX_SUBJECT', 256, 16)
# trace_id and span_id, each: they are logged with every line the request writes.
MAX_TRACE_ID = setting('FANNODE_MAX_TRACE_ID', 64, 32)
# Entries in the headers map.
MAX_HEADERS = setting('FANNODE_MAX_HEADERS', 32, 2)

_INT_MIN, _INT_MAX = -2 ** 63, 2 ** 64 - 1  # msgpack's native integers


class ProtocolError(ValueError):
    """A frame that is not a fannode message. `id`, `type` and `subject` are kept when the
    frame had valid ones, so a server can refuse a request it cannot read instead of
    ignoring it, and a client can fail the one call a bad reply was meant for."""

    def __init__(self, message: str, id: int | None = None, subject: str = '',
                 type: int | None = None):
        super().__init__(message)
        self.id = id
        self.subject = subject
        self.type = type


class Message:
    __slots__ = ('type', 'id', 'subject', 'trace_id', 'span_id', 'deadline_ms', 'headers', 'body')

    def __init__(self, type: int, id: int, subject: str, body: Any = None, trace_id: str = '',
                 span_id: str = '', deadline_ms: int = 0, headers: dict | None = None):
        self.type = type
        self.id = id
        self.subject = subject
        self.body = body
        self.trace_id = trace_id
        self.span_id = span_id
        self.deadline_ms = deadline_ms
        self.headers = headers or {}

    def encode(self) -> bytes:
        return serial.dumps([VERSION, self.type, self.id, self.subject, self.trace_id,
                             self.span_id, self.deadline_ms, self.headers, self.body])

    def reply(self, type: int, body: Any = None) -> 'Message':
        return Message(type, self.id, self.subject, body, self.trace_id, self.span_id)

    def __repr__(self) -> str:
        return '<Message %s #%s %s trace=%s>' % (
            TYPE_NAMES.get(self.type, self.type), self.id, self.subject, self.trace_id)


def budget_ms(timeout: float) -> int:
    """A call's timeout (seconds) as its deadline_ms: at least 1, since 0 means none (a
    call clamped to what its request has left may have less than a millisecond)."""
    return max(1, int(timeout * 1000))


def decode(frame: bytes | memoryview) -> Message:
    """The message in `frame` (bytes, or any buffer: a received zmq.Frame's), or a
    ProtocolError naming what is wrong."""
    try:
        parts = serial.loads(frame)
    except ValueError as e:
        raise ProtocolError(str(e), *_peek(frame)) from None
    if type(parts) is not list or len(parts) < 9:
        raise ProtocolError('not a fannode message: expected an array of 9 fields, got %s'
                            % describe(parts))
    version, type_, id_, subject, trace_id, span_id, deadline_ms, headers, body = parts[:9]
    if _well_formed(version, type_, id_, subject, trace_id, span_id, deadline_ms, headers, body):
        return Message(type_, id_, subject, body, trace_id or '', span_id or '', deadline_ms or 0, headers)
    known_id = id_ if _is_int(id_) else None
    subject_problem = _subject_problem(subject)
    known_subject = subject if subject_problem is None else ''
    known_type = type_ if _is_type(type_) else None

    def refuse(message: str) -> ProtocolError:
        return ProtocolError(message, known_id, known_subject, known_type)

    if type(version) is not int:  # first: comparing a Decimal('sNaN') raises
        raise refuse('version: expected an integer, got %s' % describe(version))
    if version != VERSION:
        raise refuse('unsupported protocol version %s (this side speaks %d)' % (describe(version), VERSION))
    if known_id is None:
        raise refuse('id: expected an integer, got %s' % describe(id_))
    if known_type is None:
        raise refuse('type: expected 1 to 6 (REQ, REP, ACK, NACK, ERROR, NOTIFY), got %s' % describe(type_))
    if subject_problem:
        raise refuse('subject: %s' % subject_problem)
    for name, value in (('trace_id', trace_id), ('span_id', span_id)):
        problem = _trace_id_problem(value)
        if problem:
            raise refuse('%s: %s' % (name, problem))
    if deadline_ms is not None and not (_is_int(deadline_ms) and deadline_ms >= 0):
        raise refuse('deadline_ms: expected an integer >= 0, got %s' % describe(deadline_ms))
    if type(headers) is not dict:
        raise refuse('headers: expected a map, got %s' % describe(headers))
    if len(headers) > MAX_HEADERS:
        raise refuse('headers: %d entries, over the limit of %d ($FANNODE_MAX_HEADERS)'
                     % (len(headers), MAX_HEADERS))
    if any(type(key) is not str for key in headers):
        raise refuse('headers: keys must be strings')
    if type_ == REQ and type(body) is dict and any(type(key) is not str for key in body):
        raise refuse('body: argument names must be strings')
    return Message(type_, id_, subject, body, trace_id or '', span_id or '', deadline_ms or 0, headers)


def _well_formed(version: Any, type_: Any, id_: Any, subject: Any, trace_id: Any, span_id: Any,
                 deadline_ms: Any, headers: Any, body: Any) -> bool:
    """The checks below, inline, for a frame that passes them all (every frame a fannode
    peer sends): True, or False to let the slow path find and name what is wrong."""
    return (type(version) is int and version == VERSION and type(type_) is int and REQ <= type_ <= NOTIFY
            and type(id_) is int and _INT_MIN <= id_ <= _INT_MAX
            and type(subject) is str and len(subject) <= MAX_SUBJECT and subject.isprintable()
            and _plain_id(trace_id) and _plain_id(span_id)
            and (deadline_ms is None or (type(deadline_ms) is int and 0 <= deadline_ms <= _INT_MAX))
            and type(headers) is dict and (not headers or (len(headers) <= MAX_HEADERS
                                                            and all(type(key) is str for key in headers)))
            and (type_ != REQ or type(body) is not dict or all(type(key) is str for key in body)))


def _plain_id(value: Any) -> bool:
    return value is None or (type(value) is str and (not value or (
        len(value) <= MAX_TRACE_ID and value.isascii() and value.isprintable() and ' ' not in value)))


def _is_int(value: Any) -> bool:
    return type(value) is int and _INT_MIN <= value <= _INT_MAX


def _is_type(value: Any) -> bool:
    return type(value) is int and value in TYPE_NAMES  # int first: a list is not hashable


def _subject_problem(subject: Any) -> str | None:
    if type(subject) is not str:
        return 'expected a string, got %s' % describe(subject)
    if len(subject) > MAX_SUBJECT:
        return '%d characters, over the limit of %d ($FANNODE_MAX_SUBJECT)' % (len(subject), MAX_SUBJECT)
    if not subject.isprintable():  # it is logged: no line breaks or control characters
        return 'control characters are not allowed'
    return None


def _trace_id_problem(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        return 'expected a string, got %s' % describe(value)
    if len(value) > MAX_TRACE_ID:
        return '%d characters, over the limit of %d ($FANNODE_MAX_TRACE_ID)' % (len(value), MAX_TRACE_ID)
    if not (value.isascii() and value.isprintable()) or ' ' in value:  # it is logged
        return 'only printable ASCII characters without spaces are allowed'
    return None


_TYPES = {type(None): 'nil', bool: 'a boolean', int: 'an integer', float: 'a float', str: 'a string',
          bytes: 'binary', list: 'an array', tuple: 'an array', dict: 'a map'}


def describe(value: Any) -> str:
    """A value named by its type, or shown when it is a small integer: never echo what a
    peer sent at length."""
    if _is_int(value):
        return str(value)
    return _TYPES.get(type(value)) or 'a %s' % type(value).__name__


def _peek(frame: bytes | memoryview) -> tuple[int | None, str, int | None]:
    """(id, subject, type) of a frame that did not decode, as far as its first fields can
    be read; (None, '', None) when they cannot. Ext values are left undecoded."""
    size = len(frame)
    if not 0 < size <= serial.MAX_MESSAGE:
        return None, '', None
    unpacker = Unpacker(None, raw=False, max_buffer_size=size, max_str_len=size, max_bin_len=size,
                        max_array_len=size, max_map_len=size // 2, max_ext_len=size)
    unpacker.feed(frame)
    fields: list[Any] = []
    try:
        if unpacker.read_array_header() < 9:
            return None, '', None
        while len(fields) < 4:
            fields.append(unpacker.unpack())
    except Exception:  # what could be read is all there is
        pass
    if len(fields) < 3 or not _is_int(fields[2]):
        return None, '', None
    subject = fields[3] if len(fields) > 3 and _subject_problem(fields[3]) is None else ''
    type_ = fields[1] if _is_type(fields[1]) else None
    return fields[2], subject, type_
