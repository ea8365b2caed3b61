"""Replies a hostile or broken server sends: a bad one fails the one call it answers, at
once and with a clear BadReply, and the connection goes on resolving the next calls."""
from __future__ import annotations

import itertools
import logging

import msgpack
import pytest
import zmq.green as zmq

import fannode
from fannode.core import serial, wire
from fannode.exceptions import BadReply, RemoteError
from fannode.zmqrpc import connection
from fannode.zmqrpc.connection import Call, Connection, shared_context

_ids = itertools.count(1)


class FakeServer:
    """A ROUTER that answers each request with whatever the test says."""

    def __init__(self):
        self.socket = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        port = self.socket.bind_to_random_port('tcp://127.0.0.1')
        self.endpoint = 'tcp://127.0.0.1:%d' % port

    def take(self):
        """The next request: (peer identity, message)."""
        assert self.socket.poll(2000), 'no request came'
        peer, frame = self.socket.recv_multipart()
        return peer, wire.decode(frame)

    def send(self, peer, *frames):
        self.socket.send_multipart([peer, *frames])


@pytest.fixture
def fake():
    server = FakeServer()
    conn = Connection(shared_context(), server.endpoint)
    assert conn.wait_connected(2)
    yield server, conn
    conn.close()
    server.socket.close()


def send_call(conn, subject='x.get'):
    call = Call(subject, next(_ids), 2.0)
    assert conn.send(wire.Message(wire.REQ, call.id, subject, {}).encode(), call)
    return call


def reply(req, type, body, **fields):
    msg = req.reply(type, body)
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg.encode()


def answered(fake, make_reply):
    """A call answered by make_reply(request) -> frame; what it ended with, waiting at most
    0.5 s (a call a bad reply leaves hanging waits out its own 2 s)."""
    server, conn = fake
    call = send_call(conn)
    peer, req = server.take()
    server.send(peer, make_reply(req))
    try:
        return call.get(timeout=0.5)
    except Exception as e:
        return e


def head(req):
    """The array header and first 8 fields of a REP to `req`: a body must follow."""
    return b'\x99' + msgpack.packb([1, wire.REP, req.id, 'x.get', '', '', 0, {}])[1:]


def next_call_works(fake):
    assert answered(fake, lambda req: reply(req, wire.REP, 'fine')) == 'fine'


@pytest.mark.parametrize('body, message', [
    (['not', 'a', 'map'], 'expected a map, got an array'),
    ({'message': 'no type'}, "'type': expected a dotted Python name of up to 256 characters"),
    ({'type': 'Key Error'}, "'type': expected a dotted Python name of up to 256 characters"),
    ({'type': 'K' * 300}, "'type': expected a dotted Python name of up to 256 characters"),
    ({'type': 'KeyError', 'message': 12}, "'message': expected a string, got 12"),
    ({'type': 'KeyError', 'traceback': None}, "'traceback': expected a string, got nil"),
])
def test_an_error_body_of_the_wrong_shape_fails_its_call_with_bad_reply(fake, body, message):
    result = answered(fake, lambda req: reply(req, wire.ERROR, body))
    assert isinstance(result, BadReply) and isinstance(result, fannode.RpcError)
    assert str(result) == 'x.get: bad ERROR reply from %s: %s' % (fake[0].endpoint, message)
    next_call_works(fake)


@pytest.mark.parametrize('body, message', [
    ('nope', 'expected a map, got a string'),
    ({'code': 5, 'message': 'x'}, "expected the strings 'code' and 'message'"),
    ({'code': 'bad_request', 'message': ['x']}, "expected the strings 'code' and 'message'"),
])
def test_a_refusal_of_the_wrong_shape_fails_its_call_with_bad_reply(fake, body, message):
    result = answered(fake, lambda req: reply(req, wire.NACK, body))
    assert str(result) == 'x.get: bad NACK reply from %s: %s' % (fake[0].endpoint, message)
    next_call_works(fake)


def test_a_refusal_with_a_code_from_a_later_version_is_a_refusal(fake):
    result = answered(fake, lambda req: reply(req, wire.NACK, {'code': 'too_early', 'message': 'come back'}))
    assert type(result) is fannode.Nack and str(result) == 'come back'


@pytest.mark.parametrize('make, message', [
    (lambda req: reply(req, wire.REP, None, trace_id='t' * 100),
     'trace_id: 100 characters, over the limit of 64 ($FANNODE_MAX_TRACE_ID)'),
    (lambda req: head(req) + msgpack.packb(msgpack.ExtType(42, b'?')), 'cannot decode message: unknown ext type code 42'),
    (lambda req: head(req) + b'\x92\x01', 'cannot decode message: Unpack failed: incomplete input'),
    (lambda req: head(req) + b'\x91' * 1100 + b'\x01',
     'cannot decode message: arrays and maps nested more than 1024 deep'),
])
def test_a_reply_that_cannot_be_read_fails_its_call_at_once(fake, make, message):
    result = answered(fake, make)
    assert isinstance(result, BadReply), result
    assert str(result).endswith(message)
    next_call_works(fake)


def test_a_request_sent_back_with_a_calls_id_does_not_lose_the_call(fake):
    server, conn = fake
    call = send_call(conn)
    peer, req = server.take()
    server.send(peer, wire.Message(wire.REQ, req.id, 'x.get', {}).encode())
    server.send(peer, wire.Message(wire.ACK, req.id, 'x.get').encode())
    server.send(peer, reply(req, wire.REP, 'the real one'))
    assert call.get(timeout=0.5) == 'the real one'


def test_bad_frames_from_a_server_are_logged_once(fake, caplog):
    server, conn = fake
    with caplog.at_level(logging.WARNING, 'fannode.zmqrpc.connection'):
        for _ in range(3):
            call = send_call(conn)
            peer, req = server.take()
            server.send(peer, b'\xc1')
            server.send(peer, b'two', b'frames')
            server.send(peer, reply(req, wire.REP, 1))
            assert call.get(timeout=0.5) == 1
    assert len([r for r in caplog.records if r.name == 'fannode.zmqrpc.connection']) == 1


def test_a_server_cannot_make_us_keep_a_class_per_error_type(fake, monkeypatch):
    monkeypatch.setattr(connection, 'MAX_REMOTE_TYPES', len(RemoteError._subclasses) + 2)
    names = ['Flood%d' % i for i in range(4)]
    results = [answered(fake, lambda req: reply(req, wire.ERROR, {'type': name, 'message': 'm'})) for name in names]
    assert [type(r).__name__ for r in results] == ['Flood0', 'Flood1', 'RemoteError', 'RemoteError']
    assert [r.remote_type for r in results] == names
    assert str(results[3]) == 'x.get raised Flood3: m'


def test_a_reply_over_the_size_limit_drops_the_connection_and_fails_its_calls(monkeypatch):
    monkeypatch.setattr(serial, 'MAX_MESSAGE', 100_000)
    server = FakeServer()
    conn = Connection(shared_context(), server.endpoint)
    try:
        assert conn.wait_connected(2)
        call = send_call(conn)
        peer, req = server.take()
        server.send(peer, msgpack.packb([1, wire.REP, req.id, 'x.get', '', '', 0, {}, b'x' * 200_000]))
        with pytest.raises(fannode.ConnectionLost, match='went away before replying'):
            call.get(timeout=1.5)
    finally:
        conn.close()
        server.socket.close()
