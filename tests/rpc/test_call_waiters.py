"""A call's waiters (fannode.zmqrpc.connection.Call): bare gevent Waiters, woken at once
when the reply is read in the loop, through the loop when a greenlet ends the call; and
the decoder's fast path, which must take exactly the frames the checked path takes."""
from __future__ import annotations

import gevent
import pytest

from fannode.calls.breaker import GuardedCall
from fannode.core import serial, wire
from fannode.exceptions import ConnectionLost, DeadlineExceeded, Timeout
from fannode.zmqrpc.connection import Call


def reply(call: Call, body: object = 'ok', type: int = wire.REP) -> wire.Message:
    return wire.Message(type, call.id, call.subject, body)


def sent(call: Call) -> Call:
    call.endpoint = 'tcp://127.0.0.1:1'  # as a connection marks a call it sent
    return call


def test_a_reply_read_in_the_loop_wakes_every_greenlet_waiting_for_it():
    call = sent(Call('x.get', 1, 5.0))
    waiting = [gevent.spawn(call.get) for _ in range(3)]
    gevent.sleep(0)  # all three wait now
    gevent.get_hub().loop.run_callback(call.resolve, reply(call, 42))  # as Connection._read does
    assert [g.get(timeout=2) for g in waiting] == [42, 42, 42]
    assert call.get() == 42 and call.ready()


def test_a_call_ended_by_a_greenlet_wakes_its_waiter_through_the_loop():
    call = sent(Call('x.get', 1, 5.0))
    gevent.spawn_later(0.01, call.fail, ConnectionLost('x.get: gone'))
    with pytest.raises(ConnectionLost, match='gone'):
        call.get()


def test_a_wait_shorter_than_the_deadline_raises_timeout_and_the_call_still_ends():
    call = Call('x.get', 1, 5.0)
    with pytest.raises(Timeout, match='no reply yet after 0.01s'):
        call.get(timeout=0.01)
    assert not call.ready() and not call._waiters
    call.resolve(reply(call, 'late'))
    assert call.get() == 'late'


def test_an_unsent_call_fails_at_its_deadline():
    call = Call('x.get', 1, 0.02)
    with pytest.raises(DeadlineExceeded, match='no reply within 0.02s'):
        call.get()
    call.resolve(reply(call))  # a reply after that changes nothing: the first outcome stands
    with pytest.raises(DeadlineExceeded):
        call.get()


def test_a_waiter_killed_while_waiting_leaves_nothing_behind():
    call = sent(Call('x.get', 1, 5.0))
    waiting = gevent.spawn(call.get)
    gevent.sleep(0)
    waiting.kill()
    assert not call._waiters
    call.resolve(reply(call, 'ok'))
    assert call.get() == 'ok'


def test_the_breaker_hears_the_outcome_before_the_caller_runs():
    heard = []

    class Breaker:
        def succeeded(self):
            heard.append('breaker')

    call = sent(GuardedCall('x.get', 1, 5.0))
    call.breaker = Breaker()  # type: ignore[assignment]

    def caller():
        call.get()
        heard.append('caller')

    waiting = gevent.spawn(caller)
    gevent.sleep(0)
    gevent.get_hub().loop.run_callback(call.resolve, reply(call))
    waiting.join(timeout=2)
    assert heard == ['breaker', 'caller']


FRAMES = [
    [1, wire.REQ, 7, 'Greeting.greet', 'a' * 32, 'b' * 16, 3000, {}, {'name': 'Joe'}],
    [1, wire.REP, 7, 'Greeting.greet', None, None, None, {'fannode-headers': {'k': 'v'}}, 'Hi'],
    [1, wire.NOTIFY, 0, 'hub.changed', '', '', 0, {}, [1, 2]],
    [1, wire.REQ, 2 ** 64 - 1, 'A.b', '', '', 2 ** 64 - 1, {}, None],
]


@pytest.mark.parametrize('fields', FRAMES)
def test_well_formed_frames_decode_the_same_on_the_fast_path(fields):
    msg = wire.decode(serial.dumps(fields))
    assert [msg.type, msg.id, msg.subject, msg.trace_id, msg.span_id, msg.deadline_ms, msg.headers, msg.body] == [
        fields[1], fields[2], fields[3], fields[4] or '', fields[5] or '', fields[6] or 0, fields[7], fields[8]]


@pytest.mark.parametrize('index, value, message', [
    (0, True, 'version: expected an integer'),
    (1, 0, 'type: expected 1 to 6'),
    (2, -2 ** 63 - 1, 'id: expected an integer'),
    (3, 'A\nb', 'subject: control characters'),
    (3, 'x' * 300, 'subject: 300 characters'),
    (4, 'a b', 'trace_id: only printable ASCII'),
    (5, 'é', 'span_id: only printable ASCII'),
    (5, 7, 'span_id: expected a string'),
    (6, -1, 'deadline_ms: expected an integer >= 0'),
    (7, {1: 2}, 'headers: keys must be strings'),
    (7, {str(n): n for n in range(40)}, 'headers: 40 entries'),
    (8, {1: 'x'}, 'body: argument names must be strings'),
])
def test_frames_the_fast_path_declines_are_refused_as_before(index, value, message):
    fields = list(FRAMES[0])
    fields[index] = value
    with pytest.raises(wire.ProtocolError, match=message):
        wire.decode(serial.dumps(fields))
