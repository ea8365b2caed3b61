"""The Python API a service author uses, in one process: a hub, real instances
(ServiceContainer) and proxies, all on loopback ZeroMQ under gevent."""
from __future__ import annotations

import contextvars
import datetime
import decimal
import time
import uuid

import gevent
import pytest
import zmq.green as zmq

import fannode
from conftest import wait_until
from fannode.runtime.container import ServiceContainer
from fannode.core import serial, trace
from fannode.core.config import loads_config
from fannode.core import wire
from fannode.calls import default
from rpc_helpers import call, client, hub_url, serve, start  # noqa: F401 - fixtures


@pytest.fixture
def greeting(start, client):
    start()
    return client.proxy('Greeting')


def test_public_api_is_exactly_this():
    assert sorted(fannode.__all__) == [
        'BadArguments', 'BadRequest', 'CircuitOpen', 'Config', 'ConfigError', 'ConnectionLost',
        'DeadlineExceeded', 'Event', 'FannodeError', 'Interface', 'Nack', 'Plugin', 'RegistryUnavailable',
        'RemoteError', 'RpcError', 'Timeout', 'Unavailable', 'UnknownMethod', 'UnknownService', 'UnknownVersion',
        'WebInterface',
        'deadline', 'emit', 'event', 'headers', 'proxy', 'rpc', 'time_left', 'unique_id']
    for name in fannode.__all__:
        assert getattr(fannode, name) is not None


def test_blocking_call(greeting):
    assert greeting.greet(name='Joe') == 'Hi, Joe!'


def test_deferred_calls_run_side_by_side(greeting):
    started = gevent.get_hub().loop.now()
    futures = [greeting.slow.defer(seconds=0.3) for _ in range(20)]
    assert [f.get() for f in futures] == [0.3] * 20
    # 20 calls of 0.3 s finished together, not one after another (6 s).
    assert gevent.get_hub().loop.now() - started < 3


def test_get_with_a_shorter_wait_leaves_the_call_running(greeting):
    future = greeting.slow.defer(seconds=0.3)
    with pytest.raises(fannode.Timeout, match='no reply yet after 0.01s'):
        future.get(timeout=0.01)
    assert future.get() == 0.3


def test_per_proxy_and_per_call_timeouts(start, client):
    start()
    with pytest.raises(fannode.Timeout, match=r'Greeting.slow: no reply within 0.2s from tcp://'):
        client.proxy('Greeting', timeout=0.2).slow(seconds=2)
    patient = client.proxy('Greeting', timeout=0.2).slow.with_timeout(5)
    assert patient(seconds=0.4) == 0.4
    with pytest.raises(fannode.Timeout):
        client.proxy('Greeting').slow.with_timeout(0.1).defer(seconds=2).get()


def test_the_default_timeout_is_three_seconds(client):
    assert client.proxy('Greeting')._timeout == 3.0


def test_a_declared_remote_exception_arrives_named_after_its_type(greeting):
    with pytest.raises(fannode.RemoteError.KeyError) as info:
        greeting.lookup(key='missing')
    err = info.value
    assert isinstance(err, fannode.RemoteError) and isinstance(err, fannode.RpcError)
    assert not isinstance(err, KeyError)  # the remote type is named, never rebuilt locally
    assert type(err).__name__ == 'KeyError' and type(err) is fannode.RemoteError.KeyError
    assert err.message == "'missing'"
    assert str(err) == "Greeting.lookup raised KeyError: 'missing'"


def test_an_unexpected_remote_exception_carries_its_traceback(greeting):
    with pytest.raises(fannode.RemoteError.ValueError, match='boom') as info:
        greeting.fail()
    assert 'raise ValueError' in info.value.remote_traceback


@pytest.mark.parametrize('call, error, message', [
    (lambda p: p.nope(), fannode.UnknownMethod, "Greeting has no method 'nope'"),
    (lambda p: p.greet(), fannode.BadArguments, "Greeting.greet(name): missing argument 'name'"),
    (lambda p: p.greet(name='a', nme='b'), fannode.BadArguments, "unexpected argument 'nme'"),
])
def test_refusals_are_immediate_nacks(greeting, call, error, message):
    started = gevent.get_hub().loop.now()
    with pytest.raises(error, match=message.replace('(', r'\(').replace(')', r'\)')):
        call(greeting)
    assert gevent.get_hub().loop.now() - started < 1  # the 3 s timeout never came into it


def test_an_unknown_service_is_refused_at_once(start, client):
    start()
    with pytest.raises(fannode.UnknownService, match="no instance of service 'Nobody' is registered"):
        client.proxy('Nobody').greet(name='x')


def test_positional_arguments_are_refused_before_sending(greeting):
    with pytest.raises(TypeError, match='keyword arguments only'):
        greeting.greet('Joe')


def test_rich_values_round_trip_through_a_call(greeting):
    value = {
        'when': datetime.datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc),
        'naive': datetime.datetime(2026, 1, 2, 3, 4, 5, 6),
        'day': datetime.date(2026, 11, 23), 'at': datetime.time(23, 59, 59, 999999),
        'price': decimal.Decimal('19.99'), 'id': uuid.UUID(int=7), 'tags': {'a', 'b'},
        'frozen': frozenset({1}), 'raw': b'\x00\xff', 'big': 2 ** 100,
    }
    assert greeting.echo(value=value) == value


def test_a_reply_msgpack_cannot_carry_is_an_error_not_a_hang(start, client):
    container = start()
    container.methods['Greeting']['echo'].func = lambda value=None: object()
    with pytest.raises(fannode.RemoteError.TypeError, match='cannot send the reply of Greeting.echo'):
        client.proxy('Greeting').echo()


def test_calls_are_balanced_over_instances(start, client):
    a, b = start(), start()
    wait_until(lambda: len(client.registry.lookup('Greeting')) == 2 or gevent.sleep(0.05))
    proxy = client.proxy('Greeting')
    seen = {}
    for _ in range(20):
        status = proxy.status()
        seen[status['id']] = seen.get(status['id'], 0) + 1
    assert seen == {a.id: 10, b.id: 10}


def test_a_stopping_instance_hands_calls_to_the_others(start, client):
    a, b = start(), start()
    proxy = client.proxy('Greeting')
    wait_until(lambda: len(client.registry.lookup('Greeting')) == 2 or gevent.sleep(0.05))
    running = [proxy.slow.defer(seconds=0.5) for _ in range(4)]
    stopper = gevent.spawn(a.stop, 5)
    replies = [proxy.greet(name=str(i)) for i in range(20)]
    assert replies == ['Hi, %d!' % i for i in range(20)]
    assert [c.get() for c in running] == [0.5] * 4  # the stopping one finished its share
    stopper.get()
    assert {i.id for i in client.registry.lookup('Greeting')} == {b.id}


def test_a_call_on_an_instance_that_dies_fails_with_connection_lost(start, client):
    container = start()
    proxy = client.proxy('Greeting', timeout=10)
    future = proxy.slow.defer(seconds=5)
    wait_until(lambda: container.rpc.server.in_flight() or gevent.sleep(0.01))
    container.rpc.server.close()  # like a crash: the socket goes away without replying
    with pytest.raises(fannode.ConnectionLost, match='went away before replying'):
        future.get()


def test_services_call_each_other_and_share_the_trace_id(greeting):
    reply = greeting.relay(service='Greeting', name='Ann')
    assert reply['reply'] == 'Hi, Ann!' and reply['here'] == reply['there']


def test_module_level_proxy_finds_the_registry_from_the_environment(greeting, hub_url, monkeypatch):
    monkeypatch.setenv('FANNODE_REGISTRY', hub_url)
    default.set_client(None)
    try:
        assert fannode.proxy('Greeting', timeout=2).greet(name='Env') == 'Hi, Env!'
    finally:
        default.get_client().close()
        default.set_client(None)


def test_config_reaches_the_interface_before_it_starts(start, client):
    start(GREETING='Hello')
    assert client.proxy('Greeting').greet(name='Ann') == 'Hello, Ann!'


def test_methods_stay_plain_functions_for_unit_tests():
    from demo import Greeting
    service = Greeting()
    service.apply_config(loads_config('greeting: Yo\n'))
    assert service.greeting == 'Yo' and service.echo(value=[1]) == [1]
    with pytest.raises(RuntimeError, match='Greeting is not running in a fannode instance'):
        service.proxy('Other')
    with pytest.raises(RuntimeError, match='Greeting is not running in a fannode instance'):
        service.greet(name='Bo')  # it emits


def test_inspect_describes_each_method(greeting):
    methods = {m['name']: m for m in greeting.inspect()['Greeting']}
    assert methods['greet']['signature'] == '(name)'
    assert methods['greet']['doc'] == 'Greet somebody by name.'
    assert methods['ping']['builtin'] and not methods['greet']['builtin']
    assert 'not_exposed' not in methods


def test_an_unreadable_request_is_refused_not_ignored(start):
    container = start()
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(container.info.endpoint)
    try:
        sock.send(b'\xc1garbage')  # not msgpack: dropped, the instance keeps serving
        frame = serial.dumps([99, wire.REQ, 5, 'Greeting.greet', '', '', 0, {}, {}])
        sock.send(frame)
        assert sock.poll(2000)
        reply = wire.decode(sock.recv())
        assert (reply.type, reply.id, reply.body['code']) == (wire.NACK, 5, 'bad_request')
        assert 'unsupported protocol version 99' in reply.body['message']
    finally:
        sock.close()


def test_pool_size_bounds_the_requests_running_at_once(hub_url, client):
    config = loads_config('interfaces: {Greeting: {class: "demo:Greeting"}}\nrpc: {pool_size: 2}\n')
    container = ServiceContainer(config, hub_url)
    container.start()
    try:
        started = time.monotonic()
        futures = [client.proxy('Greeting').slow.defer(seconds=0.3) for _ in range(3)]
        wait_until(lambda: container.rpc.server.in_flight() == 2)
        assert not any(f.ready() for f in futures)
        assert container.rpc.server.in_flight() == 2  # the third waits for a free worker
        assert [f.get() for f in futures] == [0.3] * 3
        assert 0.6 <= time.monotonic() - started < 1.5  # two rounds, not one
    finally:
        container.stop(timeout=0)


def test_no_context_leaks_from_one_request_into_the_next(serve):
    var = contextvars.ContextVar('var', default='unset')
    seen = []

    def remember(peer, body):
        seen.append((var.get(), gevent.getcurrent()))
        var.set(body)
        return trace.get_id()

    _, conn = serve({'x.remember': remember})
    first = call(conn, 'x.remember', 'one', trace_id='t1')
    second = call(conn, 'x.remember', 'two')
    assert first == 't1' and second not in ('', 't1')  # an untraced request starts a trace
    assert [value for value, _ in seen] == ['unset', 'unset']
    assert seen[0][1] is seen[1][1]  # though one worker greenlet ran both


def test_notifications_arrive_in_order_and_their_handler_may_call(serve):
    got = []

    def on_notify(msg):
        got.append((msg.subject, call(conn, 'x.echo', msg.body)))  # blocks for a reply

    server, conn = serve({'x.echo': lambda peer, body: body,
                          'x.who': lambda peer, body: peer}, on_notify)
    peer = call(conn, 'x.who')
    for i in range(5):
        server.push(peer, 'n', i)
    wait_until(lambda: len(got) == 5 or gevent.sleep(0.01))
    assert got == [('n', i) for i in range(5)]
