"""The wire format: one msgpack frame per message."""
from __future__ import annotations

from decimal import Decimal

import pytest

from fannode.core import serial
from fannode.core import wire


def test_a_message_round_trips_with_every_header_field():
    msg = wire.Message(wire.REQ, 42, 'Greeting.greet', {'name': 'Joe'}, trace_id='t' * 32,
                           span_id='s1', deadline_ms=3000, headers={'ack': True})
    back = wire.decode(msg.encode())
    assert [getattr(back, f) for f in wire.Message.__slots__] == \
        [getattr(msg, f) for f in wire.Message.__slots__]


def test_a_reply_keeps_the_request_id_subject_and_trace():
    req = wire.Message(wire.REQ, 7, 'A.b', {}, trace_id='abc', span_id='s')
    rep = req.reply(wire.REP, 'ok')
    assert (rep.type, rep.id, rep.subject, rep.trace_id, rep.span_id, rep.body) == \
        (wire.REP, 7, 'A.b', 'abc', 's', 'ok')


def test_the_frame_is_the_documented_list():
    frame = wire.Message(wire.NACK, 1, 'A.b', {'code': 'x'}).encode()
    assert serial.loads(frame) == [1, wire.NACK, 1, 'A.b', '', '', 0, {}, {'code': 'x'}]


@pytest.mark.parametrize('frame, message', [
    (b'\xc1', 'cannot decode message'),
    (serial.dumps({'not': 'a list'}), 'not a fannode message'),
    (serial.dumps([1, 2, 3]), 'not a fannode message'),
    (serial.dumps([1, 99, 1, 'A.b', '', '', 0, {}, None]), r'^type: expected 1 to 6 \(REQ, REP, ACK, NACK, ERROR, NOTIFY\), got 99$'),
    (serial.dumps([1, 1, 1, 'A.b', '', '', 0, [], None]), '^headers: expected a map, got an array$'),
])
def test_bad_frames_raise_protocol_error(frame, message):
    with pytest.raises(wire.ProtocolError, match=message):
        wire.decode(frame)


def test_another_protocol_version_is_refused_but_its_id_is_kept():
    with pytest.raises(wire.ProtocolError, match='unsupported protocol version 2') as info:
        wire.decode(serial.dumps([2, 1, 9, 'A.b', '', '', 0, {}, None]))
    assert (info.value.id, info.value.subject) == (9, 'A.b')


@pytest.mark.parametrize('fields, message', [
    ([Decimal('sNaN'), 1, 9], 'version: expected an integer, got a Decimal'),  # comparing it would raise
    ([1, [1], 9], 'type: expected 1 to 6 (REQ, REP, ACK, NACK, ERROR, NOTIFY), got an array'),  # unhashable
    ([1, 1, 2 ** 100], 'id: expected an integer, got an integer'),  # a bigint: not msgpack's own
])
def test_fields_of_any_type_are_refused_with_a_protocol_error(fields, message):
    frame = serial.dumps(fields + [1, 1, 9, 'A.b', '', '', 0, {}, None][len(fields):])
    with pytest.raises(wire.ProtocolError) as info:
        wire.decode(frame)
    assert str(info.value).startswith(message)


def test_the_id_and_subject_of_an_undecodable_frame_are_kept_when_readable():
    head = serial.dumps([1, wire.REQ, 9, 'A.b', '', '', 0, {}])[1:]
    with pytest.raises(wire.ProtocolError, match='unknown ext type code 42') as info:
        wire.decode(b'\x99' + head + b'\xd4\x2a\x00')
    assert (info.value.id, info.value.subject, info.value.type) == (9, 'A.b', wire.REQ)
    with pytest.raises(wire.ProtocolError) as info:
        wire.decode(b'\x99' + serial.dumps([1, wire.REQ, 'nine'])[1:] + b'\xc1')
    assert (info.value.id, info.value.subject, info.value.type) == (None, '', None)
