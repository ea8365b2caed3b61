"""Requests a hostile or broken client sends: each gets a clear refusal when its id can be
read (NACK bad_request naming what is wrong), is dropped and logged once per peer when
not, and the server answers the next request all the same."""
from __future__ import annotations

import logging
import time

import msgpack
import pytest

import fannode
from fannode.core import serial, wire
from fannode.zmqrpc import badframes
from fannode.zmqrpc.direct import call_on
from fannode.zmqrpc.server import RpcServer
from rpc_helpers import Raw, client, frame, hub_url, serve, start  # noqa: F401 - fixtures

ECHO = {'x.echo': lambda peer, body: body}


@pytest.fixture
def raw(serve):
    server, _ = serve(ECHO)
    sock = Raw(server.endpoint)
    yield sock
    sock.close()


def refusal(reply):
    assert reply is not None, 'no reply: the caller would wait out its timeout'
    assert (reply.type, reply.body['code']) == (wire.NACK, 'bad_request'), reply.body
    return reply.body['message']


def still_serving(raw):
    reply = raw.request('x.echo', {'n': 1})
    assert reply is not None and (reply.type, reply.body) == (wire.REP, {'n': 1})


@pytest.mark.parametrize('fields, message', [
    ((1, 1, 7, 'x.echo', '', '', 'soon'), 'deadline_ms: expected an integer >= 0, got a string'),
    ((1, 1, 7, 'x.echo', '', '', -5), 'deadline_ms: expected an integer >= 0, got -5'),
    ((1, 1, 7, 'x.echo', '', '', 2 ** 100), 'deadline_ms: expected an integer >= 0, got an integer'),
    ((1, 1, 7, 'x.echo', 7), 'trace_id: expected a string, got 7'),
    ((1, 1, 7, 'x.echo', 'a' * 65), 'trace_id: 65 characters, over the limit of 64 ($FANNODE_MAX_TRACE_ID)'),
    ((1, 1, 7, 'x.echo', 'abc\n[fake log line]'),
     'trace_id: only printable ASCII characters without spaces are allowed'),
    ((1, 1, 7, 'x.echo', '', b'span'), 'span_id: expected a string, got binary'),
    ((1, 1, 7, 'x.echo', '', '', 0, None), 'headers: expected a map, got nil'),
    ((1, 1, 7, 'x.echo', '', '', 0, {str(i): 1 for i in range(33)}),
     'headers: 33 entries, over the limit of 32 ($FANNODE_MAX_HEADERS)'),
    ((1, 1, 7, 'x.echo', '', '', 0, {1: True}), 'headers: keys must be strings'),
    ((1, 1, 7, 'x.echo\nINFO all is well'), 'subject: control characters are not allowed'),
    ((1, 1, 7, ['x.echo']), 'subject: expected a string, got an array'),
    ((1, 99, 7), 'type: expected 1 to 6 (REQ, REP, ACK, NACK, ERROR, NOTIFY), got 99'),
    ((1, '1', 7), 'type: expected 1 to 6 (REQ, REP, ACK, NACK, ERROR, NOTIFY), got a string'),
    ((2, 1, 7), 'unsupported protocol version 2 (this side speaks 1)'),
])
def test_each_bad_header_field_is_refused_by_name(raw, fields, message):
    raw.send(frame(*fields))
    reply = raw.recv()
    assert refusal(reply) == message
    assert reply.id == 7
    still_serving(raw)


def test_argument_names_must_be_strings(raw):
    raw.send(frame(1, 1, 7, body={1: 'one'}))
    assert refusal(raw.recv()) == 'body: argument names must be strings'
    still_serving(raw)


def test_a_huge_method_name_is_refused_at_once_without_looking_for_it(start):
    container = start()
    sock = Raw(container.info.endpoint)
    try:
        started = time.monotonic()
        sock.send(frame(1, 1, 7, 'Greeting.' + 'g' * (8 * 1024 * 1024)))
        message = refusal(sock.recv(timeout=5))
        assert time.monotonic() - started < 0.6  # the "did you mean" over it took 1.2 s
        assert message == 'subject: 8388617 characters, over the limit of 256 ($FANNODE_MAX_SUBJECT)'
        assert sock.request('Greeting.greet', {'name': 'Al'}).body == 'Hi, Al!'
    finally:
        sock.close()


def test_a_body_that_cannot_be_decoded_is_refused_when_the_id_can_be_read(raw):
    deep = msgpack.packb([])
    for _ in range(40):  # deeper than FANNODE_MAX_DEPTH (32)
        deep = msgpack.packb([msgpack.ExtType(8, deep)])
    head = msgpack.packb([1, 1, 7, 'x.echo', '', '', 0, {}])[1:]  # the 8 fields, without the array header
    raw.send(b'\x99' + head + msgpack.packb(msgpack.ExtType(8, deep)))
    assert refusal(raw.recv()) == 'cannot decode message: sets nested more than 32 deep ($FANNODE_MAX_DEPTH)'
    raw.send(b'\x99' + head + b'\xc1')  # never-used byte in the body
    assert refusal(raw.recv()) == 'cannot decode message: FormatError'
    raw.send(b'\x99' + head + b'\x92\x01')  # body cut short
    assert refusal(raw.recv()) == 'cannot decode message: Unpack failed: incomplete input'
    still_serving(raw)


def test_a_frame_without_a_readable_id_is_dropped_and_logged_once_per_peer(serve, caplog, monkeypatch):
    monkeypatch.setattr(badframes, 'WARN_EVERY', 0.0)
    server, _ = serve(ECHO)
    first, second = Raw(server.endpoint), Raw(server.endpoint)
    try:
        with caplog.at_level(logging.WARNING, 'fannode.zmqrpc.server'):
            for garbage in (b'\xc1', b'', frame(1, 1, 'seven'), b'\x93\x01\x02\x03'):
                first.send(garbage)
            first.send(frame(1, 1, 7), b'a second frame')
            still_serving(first)
            second.send(b'\xc1')
            still_serving(second)
        assert first.recv(timeout=0.1) is None  # nothing to say to whoever sent those
        warnings = [r.getMessage() for r in caplog.records if r.name == 'fannode.zmqrpc.server']
        assert len(warnings) == 2, warnings  # one per peer, not one per frame
        assert warnings[0].startswith('bad request from peer ')
        assert warnings[0].endswith(': cannot decode message: FormatError; more from there are not logged')
        assert warnings[1].endswith('more from there are not logged (and 4 more not logged since the last warning)')
    finally:
        first.close()
        second.close()


def test_a_request_in_several_frames_is_dropped_whole_saying_how_many(serve, caplog):
    # The server reads a request's frame in place (copy=False); whatever follows it in the
    # same message is read too, and the whole message dropped.
    server, _ = serve(ECHO)
    sock = Raw(server.endpoint)
    try:
        with caplog.at_level(logging.WARNING, 'fannode.zmqrpc.server'):
            sock.send(frame(1, 1, 7, 'x.echo', '', '', 0, {}, {'n': 2}), b'second', b'third')
            still_serving(sock)
        assert sock.recv(timeout=0.1) is None  # the dropped one is not answered
        warnings = [r.getMessage() for r in caplog.records if r.name == 'fannode.zmqrpc.server']
        assert len(warnings) == 1 and warnings[0].endswith(': 3 frames in one message, expected 1'
                                                           '; more from there are not logged'), warnings
    finally:
        sock.close()


def test_a_flood_of_new_peers_is_logged_at_most_once_a_second(serve, caplog):
    server, _ = serve(ECHO)
    socks = [Raw(server.endpoint) for _ in range(5)]
    try:
        with caplog.at_level(logging.WARNING, 'fannode.zmqrpc.server'):
            for sock in socks:
                sock.send(b'\xc1')
                still_serving(sock)
        assert len([r for r in caplog.records if r.name == 'fannode.zmqrpc.server']) == 1
    finally:
        for sock in socks:
            sock.close()


def test_a_request_over_the_size_limit_is_dropped_by_zeromq_before_it_is_read(serve, monkeypatch):
    monkeypatch.setattr(serial, 'MAX_MESSAGE', 100_000)  # the sockets made from now on
    server, _ = serve(ECHO)
    big, small = Raw(server.endpoint), Raw(server.endpoint)
    try:
        big.send(msgpack.packb([1, 1, 7, 'x.echo', '', '', 0, {}, b'x' * 200_000]))
        assert big.recv(timeout=0.5) is None  # libzmq dropped that peer: never allocated, never run
        still_serving(small)
    finally:
        big.close()
        small.close()


def test_a_client_refuses_to_send_a_request_over_the_limit_and_says_why(serve, monkeypatch):
    monkeypatch.setattr(serial, 'MAX_MESSAGE', 100_000)
    _, conn = serve(ECHO)
    with pytest.raises(fannode.BadRequest, match=r'^x.echo: cannot send the request: cannot encode message: '
                                                 r'2000\d\d bytes, over the limit of 100000 \(\$FANNODE_MAX_MESSAGE\)$'):
        call_on(conn, 'x.echo', {'data': b'x' * 200_000}, 2.0)
    assert call_on(conn, 'x.echo', {'data': b'small'}, 2.0) == {'data': b'small'}


def test_messages_other_than_requests_are_dropped(raw):
    raw.send(frame(1, wire.REP, 7))
    raw.send(frame(1, wire.NOTIFY, 0))
    assert raw.recv(timeout=0.2) is None
    still_serving(raw)


def test_a_refused_one_way_request_gets_no_reply_to_pile_up_unread():
    # A log shipper sends one-way and never reads: a NACK to it would only fill its socket.
    def resolve(peer, msg):
        if msg.subject != 'x.echo':
            raise fannode.UnknownMethod('no method %s' % msg.subject)
        return lambda: msg.body
    server = RpcServer(resolve)
    server.bind('127.0.0.1')
    server.start()
    raw = Raw(server.endpoint)
    try:
        raw.send(wire.Message(wire.REQ, 4242, 'x.nosuch', {}, headers={'oneway': 1}).encode())
        raw.send(wire.Message(wire.REQ, 4243, 'x.echo', {'n': 1}).encode())
        first = raw.recv()  # replies come in order: a NACK to the one-way request would come first
        assert first is not None and (first.id, first.body) == (4243, {'n': 1})
    finally:
        raw.close()
        server.close(linger=0)
