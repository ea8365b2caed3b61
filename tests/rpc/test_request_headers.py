"""User headers (the wire headers' `h` map): the handler reads them with
fannode.headers(); a malformed map from the network is refused by name."""
from __future__ import annotations

import pytest

import fannode
from fannode.cli.request import exit_code, parse_headers
from fannode.core import current, wire
from fannode.exceptions import (
    BadArguments, CircuitOpen, DeadlineExceeded, RemoteError, Timeout, UnknownMethod, UnknownService, UsageError,
)
from fannode.zmqrpc.direct import CannotConnect
import rpc_helpers
from rpc_helpers import Raw, frame

serve = rpc_helpers.serve  # the fixture, by the name the tests ask for

SHOW = {'x.show': lambda peer, body: fannode.headers()}


@pytest.fixture
def raw(serve):
    server, _ = serve(SHOW)
    sock = Raw(server.endpoint)
    yield sock
    sock.close()


def test_the_handler_reads_the_user_headers_and_no_others(raw):
    raw.send(frame(1, 1, 7, 'x.show', '', '', 0, {'ack': False, 'h': {'user': 'ann', 'tenant': 'a b'}}))
    reply = raw.recv()
    assert (reply.type, reply.body) == (wire.REP, {'user': 'ann', 'tenant': 'a b'})
    assert raw.request('x.show').body == {}  # nothing left over from the request before


@pytest.mark.parametrize('h, message', [
    (['user'], 'headers.h: expected a map of strings'),
    ({'user': 7}, 'headers.h: user: values must be strings of at most 1024 characters'),
    ({'user': 'x' * 1025}, 'headers.h: user: values must be strings of at most 1024 characters'),
    ({'k' * 65: 'v'}, 'headers.h: keys must be strings of 1 to 64 characters'),
    ({'user': 'ann\n[fake log line]'}, 'headers.h: user: control characters are not allowed in values'),
    ({'a b': 'v'}, "headers.h: key 'a b': only printable characters without spaces or \"=\" are allowed"),
    ({str(i): 'v' for i in range(33)}, 'headers.h: 33 entries, over the limit of 32 ($FANNODE_MAX_HEADERS)'),
])
def test_bad_user_headers_are_refused_by_name(raw, h, message):
    raw.send(frame(1, 1, 7, 'x.show', '', '', 0, {'h': h}))
    reply = raw.recv()
    assert (reply.type, reply.body['code'], reply.body['message']) == (wire.NACK, 'bad_request', message)
    assert raw.request('x.show').type == wire.REP  # still serving


def test_headers_outside_a_request_are_empty():
    assert fannode.headers() == {}
    assert current.outgoing.get() is None


@pytest.mark.parametrize('items, message', [
    (['user'], '--header user: expected KEY=VALUE'),
    (['=v'], '--header: keys must be strings of 1 to 64 characters'),
    (['user=a\tb'], '--header: user: control characters are not allowed in values'),
    (['k%d=v' % i for i in range(33)], '--header: 33 entries, over the limit of 32 ($FANNODE_MAX_HEADERS)'),
])
def test_bad_header_options_name_the_fault(items, message):
    with pytest.raises(UsageError) as e:
        parse_headers(items)
    assert str(e.value) == message


def test_header_options_keep_everything_after_the_first_equals_sign():
    assert parse_headers(['q=a=b', 'user=']) == {'q': 'a=b', 'user': ''}


@pytest.mark.parametrize('exc, code', [
    (RemoteError.ValueError('boom'), 1),
    (UsageError('x'), 2), (BadArguments('x'), 2), (UnknownMethod('x'), 2),
    (UnknownService('x'), 3), (CircuitOpen('x'), 3), (CannotConnect('x'), 3),
    (Timeout('x'), 4), (DeadlineExceeded('x'), 4),
])
def test_exit_codes_by_error_kind(exc, code):
    assert exit_code(exc) == code
