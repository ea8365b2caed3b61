"""ERROR replies: the traceback only when the cluster asks for it, the same name however
many services an error passes through, and a reply that cannot be sent is an ERROR that
says why, never silence."""
from __future__ import annotations

import re

import gevent
import pytest

import fannode
from fannode.core import serial
from fannode.core.config import loads_config
from fannode.zmqrpc.server import RpcServer, error_body
from rpc_helpers import call, client, hub_url, serve, start  # noqa: F401 - fixtures


def fail(peer, body):
    raise ValueError('boom')


def raised(conn, subject='x.fail', body=None):
    with pytest.raises(fannode.RemoteError) as info:
        call(conn, subject, body)
    return info.value


def test_no_traceback_leaves_a_server_listening_beyond_loopback(serve, monkeypatch):
    monkeypatch.delenv('FANNODE_TRACEBACKS', raising=False)
    _, conn = serve({'x.fail': fail}, ip='0.0.0.0')
    err = raised(conn)
    assert (type(err), err.message, err.remote_traceback) == (fannode.RemoteError.ValueError, 'boom', '')


def test_a_server_on_loopback_sends_tracebacks_to_its_developer(serve, monkeypatch):
    monkeypatch.delenv('FANNODE_TRACEBACKS', raising=False)
    _, conn = serve({'x.fail': fail})
    assert "raise ValueError('boom')" in raised(conn).remote_traceback


@pytest.mark.parametrize('env, ip, sent', [
    ('0', '127.0.0.1', False), ('1', '0.0.0.0', True), ('true', '0.0.0.0', True), ('', '0.0.0.0', False)])
def test_fannode_tracebacks_decides_over_the_address(serve, monkeypatch, env, ip, sent):
    monkeypatch.setenv('FANNODE_TRACEBACKS', env)
    _, conn = serve({'x.fail': fail}, ip=ip)
    assert bool(raised(conn).remote_traceback) is sent


def test_the_rpc_config_section_decides_when_the_environment_does_not(start, client, monkeypatch):
    monkeypatch.delenv('FANNODE_TRACEBACKS', raising=False)
    start(loads_config('interfaces: {Greeting: {class: "demo:Greeting"}}\nrpc: {tracebacks: false}\n'))
    with pytest.raises(fannode.RemoteError.ValueError) as info:
        client.proxy('Greeting').fail()
    assert info.value.remote_traceback == '' and info.value.message == 'boom'


def test_a_bad_fannode_tracebacks_is_one_line(monkeypatch):
    monkeypatch.setenv('FANNODE_TRACEBACKS', 'sometimes')
    with pytest.raises(fannode.ConfigError, match=r"^\$FANNODE_TRACEBACKS: expected 1 or 0, got 'sometimes'$"):
        RpcServer(lambda peer, msg: lambda: None)


def test_an_error_let_through_keeps_its_name_however_many_hops(serve):
    _, last = serve({'c.lookup': lambda peer, body: {}['missing']})
    _, middle = serve({'b.relay': lambda peer, body: call(last, 'c.lookup')})
    _, first = serve({'a.relay': lambda peer, body: call(middle, 'b.relay')})
    one, two, three = raised(last, 'c.lookup'), raised(middle, 'b.relay'), raised(first, 'a.relay')
    assert [type(e) for e in (one, two, three)] == [fannode.RemoteError.KeyError] * 3
    assert [e.remote_type for e in (one, two, three)] == ['KeyError', 'RemoteError.KeyError', 'RemoteError.KeyError']
    assert str(three) == "a.relay raised RemoteError.KeyError: 'missing'"
    assert [e.message for e in (one, two, three)] == ["'missing'"] * 3
    assert 'c.lookup raised it:' in two.remote_traceback  # both sides' tracebacks, on loopback


def test_error_body_names_a_remote_error_by_its_short_name():
    err = fannode.RemoteError.for_type('OutOfStock')('none left', 'myapp.errors.OutOfStock', '', 'Shop.buy')
    assert error_body(err) == {'type': 'RemoteError.OutOfStock', 'message': 'none left'}


def test_a_reply_too_big_to_send_is_an_error_naming_the_limit(serve, monkeypatch):
    monkeypatch.setattr(serial, 'MAX_MESSAGE', 100_000)
    _, conn = serve({'x.big': lambda peer, body: b'x' * 200_000, 'x.small': lambda peer, body: 'ok'})
    err = raised(conn, 'x.big')
    assert type(err) is fannode.RemoteError.ValueError
    assert re.fullmatch(r'cannot send the reply of x.big: cannot encode message: 2000\d\d bytes, '
                        r'over the limit of 100000 \(\$FANNODE_MAX_MESSAGE\)', err.message), err.message
    assert call(conn, 'x.small') == 'ok'


def test_a_reply_too_deep_to_send_is_an_error(serve):
    def deep(peer, body):
        value: object = frozenset()
        for _ in range(40):
            value = frozenset([value])
        return value
    _, conn = serve({'x.deep': deep})
    err = raised(conn, 'x.deep')
    assert err.message == 'cannot send the reply of x.deep: cannot encode message: sets nested more than 32 deep ' \
                          '($FANNODE_MAX_DEPTH)'


def test_an_error_too_big_to_send_is_still_an_error(serve, monkeypatch):
    monkeypatch.setattr(serial, 'MAX_MESSAGE', 100_000)

    def huge(peer, body):
        raise RuntimeError('x' * 200_000)
    _, conn = serve({'x.huge': huge})
    assert raised(conn, 'x.huge').message.startswith('cannot send the reply of x.huge: cannot encode message: ')


def test_a_method_that_lets_a_gevent_timeout_out_still_answers(serve):
    def waits(peer, body):
        with gevent.Timeout(0.01):
            gevent.sleep(1)
    _, conn = serve({'x.waits': waits})
    err = raised(conn, 'x.waits')
    assert err.remote_type == 'gevent.timeout.Timeout'

