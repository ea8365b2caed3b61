"""Fuzzing what comes from the network: the codec, the frame decoder, a running RpcServer
and a client's connection. Whatever arrives, the codec raises only its ValueError, the
server answers the next request, and the connection resolves the next call.

The suite runs a few hundred inputs per endpoint; a long run is one command:

    FANNODE_FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest tests/chaos -p no:randomly
"""
from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import msgpack
import pytest
import zmq.green as zmq
from hypothesis import HealthCheck, given, settings, strategies as st

from fannode.core import serial, wire
from fannode.zmqrpc.connection import Call, Connection, shared_context
from fannode.zmqrpc.server import RpcServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'rpc'))
from rpc_helpers import Raw  # noqa: E402

pytestmark = pytest.mark.chaos

EXAMPLES = int(os.environ.get('FANNODE_FUZZ_EXAMPLES') or 100)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
_ids = itertools.count(10 ** 9)  # apart from the ids rpc_helpers gives its probes

# -- inputs ------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 63, 2 ** 64 - 1), st.floats(),
                    st.text(max_size=40), st.binary(max_size=40))
exts = st.one_of(st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=40)),
                st.builds(msgpack.Timestamp, st.integers(0, 2 ** 34 - 1), st.integers(0, 999_999_999)))
values = st.recursive(st.one_of(scalars, exts),
                      lambda inner: st.one_of(st.lists(inner, max_size=5),
                                              st.dictionaries(scalars.filter(lambda v: v == v), inner, max_size=5)),
                      max_leaves=20)


# What fannode's codec carries, sent as fannode would: its extension types in any field.
rich = st.recursive(
    st.one_of(scalars, st.decimals(allow_nan=True), st.datetimes(timezones=st.none() | st.timezones()),
              st.dates(), st.times(), st.timedeltas(), st.uuids(), st.integers(),
              st.frozensets(st.integers() | st.text(max_size=5), max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


@st.composite
def nested(draw):
    """Values nested deep through arrays, maps, sets and other ext types at random."""
    data = msgpack.packb(draw(scalars))
    for _ in range(draw(st.integers(0, 120))):
        kind = draw(st.sampled_from(['array', 'map', 'set', 'frozenset', 'ext']))
        if kind == 'array':
            data = b'\x91' + data
        elif kind == 'map':
            data = b'\x81\x00' + data
        else:
            code = {'set': serial.SET, 'frozenset': serial.FROZENSET}.get(kind) or draw(st.integers(1, 9))
            data = msgpack.packb(msgpack.ExtType(code, data))
    return data


@st.composite
def frames(draw):
    """Bytes as they might arrive: any at all, msgpack of any shape, fannode frames with
    any value in any field, deep values, and any of these cut short or with bytes flipped."""
    kind = draw(st.sampled_from(['bytes', 'value', 'frame', 'rich frame', 'deep', 'deep frame']))
    if kind == 'bytes':
        data = draw(st.binary(max_size=200))
    elif kind == 'value':
        data = msgpack.packb(draw(values))
    elif kind == 'rich frame':
        data = serial.dumps([draw(st.one_of(st.just(good), rich)) for good in
                             (1, wire.REQ, next(_ids), 'x.echo', '', '', 0, {}, {'value': 1})])
    else:
        fields = [draw(st.one_of(st.just(good), values)) for good in
                  (1, wire.REQ, next(_ids), 'x.echo', '', '', 0, {}, {'value': 1})]
        head = msgpack.packb(fields[:8])
        body = draw(nested()) if kind.startswith('deep') else msgpack.packb(fields[8])
        data = (b'\x99' + head[1:] + body) if kind != 'deep' else body
    if data and draw(st.booleans()):
        cut = draw(st.integers(0, len(data)))
        flips = draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)), max_size=3))
        mutated = bytearray(data)
        for at, byte in flips:
            mutated[at] = byte
        data = bytes(mutated[:cut] if draw(st.booleans()) else mutated)
    return data


# -- the codec ---------------------------------------------------------------------------

@FUZZ
@given(frames())
def test_the_codec_raises_only_its_value_error(data):
    try:
        serial.loads(data)
    except ValueError as e:
        assert str(e).startswith('cannot decode message: ')
    try:
        msg = wire.decode(data)
    except wire.ProtocolError as e:
        assert '\n' not in str(e) and len(str(e)) < 1000  # one line, never what was sent at length
        assert e.id is None or type(e.id) is int
    else:
        assert msg.encode()  # what decodes can be sent again


# -- a running server --------------------------------------------------------------------

@pytest.fixture(scope='module')
def server():
    server = RpcServer(lambda peer, msg: lambda: msg.body)
    server.bind()
    server.start()
    sock = Raw(server.endpoint)
    yield sock
    sock.close()
    server.close(linger=0)


@FUZZ
@given(st.lists(frames(), min_size=1, max_size=3))
def test_a_server_answers_the_next_request_whatever_came_before(server, parts):
    server.send(*parts)
    reply = server.request('x.echo', {'probe': 1}, timeout=5)
    assert reply is not None, 'the server stopped answering'
    assert (reply.type, reply.body) == (wire.REP, {'probe': 1})


# -- a client's connection ---------------------------------------------------------------

@pytest.fixture(scope='module')
def peer():
    """A ROUTER playing a hostile server, and a connection to it."""
    router = zmq.Context.instance().socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    endpoint = 'tcp://127.0.0.1:%d' % router.bind_to_random_port('tcp://127.0.0.1')
    conn = Connection(shared_context(), endpoint)
    assert conn.wait_connected(2)
    yield router, conn
    conn.close()
    router.close()


def ask(router, conn):
    call = Call('x.get', next(_ids), 5.0)
    assert conn.send(wire.Message(wire.REQ, call.id, 'x.get', {}).encode(), call)
    assert router.poll(5000)
    identity, frame = router.recv_multipart()
    return call, identity, wire.decode(frame)


@FUZZ
@given(st.lists(frames(), min_size=1, max_size=3))
def test_a_connection_resolves_the_next_call_whatever_a_server_sent(peer, parts):
    router, conn = peer
    first, identity, req = ask(router, conn)
    router.send_multipart([identity, *parts])  # as one message or several, then the real reply
    router.send_multipart([identity, req.reply(wire.REP, 'late').encode()])
    try:
        first.get(timeout=5)  # 'late', or a BadReply if the garbage carried its id
    except Exception as e:
        assert type(e).__name__ in ('BadReply', 'Nack', 'RemoteError', 'BadRequest', 'UnknownService',
                                    'UnknownMethod', 'BadArguments', 'Unavailable') \
            or type(e).__module__ == 'fannode.exceptions.RemoteError', repr(e)
    call, identity, req = ask(router, conn)
    router.send_multipart([identity, req.reply(wire.REP, 'fine').encode()])
    assert call.get(timeout=5) == 'fine'
