"""The RPC wire format: one msgpack frame per message (see docs/protocol.md).

    [version, type, id, subject, trace_id, span_id, deadline_ms, headers, body]

The ROUTER side also sees the peer's identity frame in front of it; nothing else is framed.
"""
from __future__ import annotations

from typing import Any

from fannode.core import serial

VERSION = 1

REQ, REP, ACK, NACK, ERROR, NOTIFY = 1, 2, 3, 4, 5, 6
TYPE_NAMES = {REQ: 'REQ', REP: 'REP', ACK: 'ACK', NACK: 'NACK', ERROR: 'ERROR', NOTIFY: 'NOTIFY'}


class ProtocolError(ValueError):
    """A frame that is not a fannode message. `id` and `subject` are kept when the frame
    had them, so a server can refuse a request it cannot read instead of ignoring it."""

    def __init__(self, message: str, id: Any = None, subject: str = ''):
        super().__init__(message)
        self.id = id
        self.subject = subject


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


def decode(frame: bytes) -> Message:
    try:
        parts = serial.loads(frame)
    except ValueError as e:
        raise ProtocolError(str(e)) from None
    if not isinstance(parts, list) or len(parts) < 9:
        raise ProtocolError('not a fannode message')
    version, type_, id_, subject, trace_id, span_id, deadline_ms, headers, body = parts[:9]
    if version != VERSION:
        raise ProtocolError('unsupported protocol version %r (this side speaks %d)' % (version, VERSION),
                            id_, subject if isinstance(subject, str) else '')
    if type_ not in TYPE_NAMES or not isinstance(subject, str) or not isinstance(headers, dict):
        raise ProtocolError('malformed message header')
    return Message(type_, id_, subject, body, trace_id or '', span_id or '', deadline_ms or 0, headers)
