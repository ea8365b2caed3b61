"""Local calls: a proxy calling an interface that runs in the same process goes to it
without a network hop, with what the wire gives (the codec, the deadline, the trace, the
metrics, the errors); `local=False` goes over ZeroMQ all the same."""
from __future__ import annotations

import uuid

import gevent
import pytest

import fannode
from fannode.core import current, trace
from fannode.core.config import Config
from fannode.core.shards import instances_by_rank
from fannode.exceptions import BadArguments, CircuitOpen, DeadlineExceeded, RemoteError, UnknownMethod
from fannode.runtime.container import ServiceContainer
from fannode.testing import TestCluster, wait_until


class Store(fannode.Interface):
    @fannode.rpc()
    def echo(self, value=None):
        return value

    @fannode.rpc()
    def whoami(self):
        return {'trace': trace.get_id(), 'span': trace.get_span(), 'headers': fannode.headers()}

    @fannode.rpc(raises=KeyError)
    def get(self, key):
        raise KeyError(key)

    @fannode.rpc()
    def mutate(self, items):
        items.append('changed here')
        return items

    @fannode.rpc()
    def unsendable(self):
        return object()

    @fannode.rpc()
    def slow(self, seconds):
        left = fannode.time_left()
        gevent.sleep(seconds)
        return left


class Sharded(fannode.Interface):
    @fannode.rpc(shard='key')
    def owner(self, key):
        return self.container.id


class Front(fannode.Interface):
    """Calls Store, which runs in the same instance."""

    @fannode.rpc()
    def ask(self, value):
        return self.proxy('Store').echo(value=value)

    @fannode.rpc()
    def ask_far(self, value):
        return self.proxy('Store', local=False).echo(value=value)

    @fannode.rpc()
    def trace_pair(self):
        return {'trace': trace.get_id(), 'span': trace.get_span(), 'there': self.proxy('Store').whoami()}


@pytest.fixture
def spans(monkeypatch):
    records = []
    monkeypatch.setattr(trace, 'sink', records.append)
    return records


@pytest.fixture
def instance():
    """One instance serving Store and Front, on a private in-process registry."""
    config = Config({'interfaces': {'Store': {'class': Store}, 'Front': {'class': Front}},
                     'rpc': {'pool_size': 2}}, '<local calls>')
    container = ServiceContainer(config, 'local://local-calls-%s' % uuid.uuid4().hex[:8])
    container.start()
    yield container
    container.stop(timeout=0)


def endpoint(container):
    assert container.info is not None
    return container.info.endpoint


def test_a_call_between_two_interfaces_of_one_instance_makes_no_connection(instance):
    assert instance.proxy('Front').ask(value='hi') == 'hi'
    assert endpoint(instance) not in instance.client.connections  # no socket to itself, either way


def test_local_false_goes_over_the_network(instance):
    assert instance.proxy('Front', local=False).ask_far(value='hi') == 'hi'
    assert endpoint(instance) in instance.client.connections


def test_arguments_and_replies_go_through_the_codec(instance):
    store = instance.proxy('Store')
    assert store.echo(value=(1, (2, 3))) == [1, [2, 3]]  # a tuple arrives as a list, as on the wire
    sent = ['mine']
    assert store.mutate(items=sent) == ['mine', 'changed here']
    assert sent == ['mine']  # the callee got a copy, not the caller's list
    with pytest.raises(TypeError, match=r'^Store\.echo: cannot send the arguments: '):
        store.echo(value=object())
    with pytest.raises(RemoteError.TypeError, match='cannot send the reply of Store.unsendable'):
        store.unsendable()


def test_errors_arrive_as_they_do_over_the_wire(instance):
    store = instance.proxy('Store')
    with pytest.raises(RemoteError.KeyError) as raised:
        store.get(key='nope')
    assert raised.value.remote_type == 'KeyError' and raised.value.message == "'nope'"
    with pytest.raises(UnknownMethod, match="Store has no method 'gett' \\(did you mean 'get'\\?\\)"):
        store.gett(key='x')
    with pytest.raises(BadArguments, match="missing argument 'key'"):
        store.get()
    far = instance.proxy('Store', local=False)  # the same, asked over ZeroMQ
    with pytest.raises(RemoteError.KeyError) as remote:
        far.get(key='nope')
    assert remote.value.message == raised.value.message


def test_the_handler_runs_under_the_callers_deadline(instance):
    store = instance.proxy('Store', timeout=0.3)
    assert 0 < store.slow(seconds=0) <= 0.3
    with pytest.raises(DeadlineExceeded, match=r'^Store\.slow: no reply within 0\.1s from tcp://'):
        store.slow.with_timeout(0.1)(seconds=5)


def test_the_trace_continues_in_a_span_of_its_own(instance, spans):
    got = instance.proxy('Front').trace_pair()
    assert got['there']['trace'] == got['trace']
    assert got['there']['span'] != got['span']
    store_span = next(s for s in spans if s['name'] == 'Store.whoami')
    assert store_span['parent'] == got['span'] and store_span['local'] is True


def test_user_headers_reach_the_handler(instance):
    token = current.outgoing.set({current.USER_HEADERS: {'user': 'ann'}})
    try:
        assert instance.proxy('Store').whoami()['headers'] == {'user': 'ann'}
    finally:
        current.outgoing.reset(token)


def test_the_instance_records_metrics_of_local_calls(instance):
    store = instance.proxy('Store')
    store.echo(value=1)
    with pytest.raises(RemoteError.KeyError):
        store.get(key='x')
    rpc = instance.builtin_get_metrics()['rpc']
    assert (rpc['Store.echo']['calls'], rpc['Store.echo']['errors']) == (1, 0)
    assert (rpc['Store.get']['calls'], rpc['Store.get']['errors']) == (1, 1)


def test_local_calls_are_bounded_by_the_pool_size(instance):
    store = instance.proxy('Store', timeout=2)
    busy = [store.slow.defer(seconds=0.5) for _ in range(2)]  # pool_size: 2
    with pytest.raises(DeadlineExceeded):  # waited for a worker past its deadline
        store.echo.with_timeout(0.1)(value=1)
    echo = wait_until(lambda: instance.builtin_get_metrics()['rpc'].get('Store.echo'))
    assert (echo['calls'], echo['deadline_exceeded']) == (0, 1)  # refused, never run
    assert all(0 < call.get() <= 2 for call in busy)  # they ran, each under its own deadline


def test_circuit_breakers_count_local_calls_too(instance):
    store = instance.proxy('Store', timeout=0.05, breaker={'failures': 2, 'cooldown': 30})
    for _ in range(2):
        with pytest.raises(DeadlineExceeded):
            store.slow(seconds=1)
    with pytest.raises(CircuitOpen, match=r'^Store\.echo: not sent, the circuit breaker of Store is open'):
        store.echo(value=1)
    assert instance.proxy('Store').echo(value=1) == 1  # a proxy without those breakers


def test_a_stopped_instance_is_no_longer_called_directly(instance):
    store = instance.proxy('Store')
    assert store.echo(value=1) == 1
    instance.stop(timeout=0)
    with pytest.raises(fannode.UnknownService):
        store.echo(value=1)


def test_a_shard_key_owned_by_another_instance_goes_to_it_over_the_network():
    url = 'local://local-shards-%s' % uuid.uuid4().hex[:8]
    here, there = (ServiceContainer(Config({'interfaces': {'Sharded': {'class': Sharded}}}, '<Sharded>'), url)
                   for _ in range(2))
    here.start()
    there.start()
    try:
        there.rpc.door.shut()  # as if it ran in another process: reachable over the network only
        keys = {}
        for key in range(40):
            owner = instances_by_rank(key, here.registry.lookup('Sharded'))[0].id
            keys.setdefault(owner, key)
        assert set(keys) == {here.id, there.id}
        proxy = here.proxy('Sharded')
        assert proxy.owner(key=keys[here.id]) == here.id
        assert endpoint(here) not in here.client.connections  # its own keys: a local call
        assert proxy.owner(key=keys[there.id]) == there.id  # not taken by the local instance
        assert endpoint(there) in here.client.connections
    finally:
        there.stop(timeout=0)
        here.stop(timeout=0)


def test_a_local_instance_that_is_not_ready_is_not_called():
    class Needy(Store):
        dependencies = {'hard': ['Missing']}
    url = 'local://local-ready-%s' % uuid.uuid4().hex[:8]
    container = ServiceContainer(Config({'interfaces': {'Needy': {'class': Needy}}}, '<Needy>'), url)
    container.start()
    try:
        with pytest.raises(fannode.Unavailable, match='no ready instance of Needy: 1 registered, not ready '
                                                      '\\(missing Missing\\)'):
            container.proxy('Needy', timeout=0.2).echo(value=1)
    finally:
        container.stop(timeout=0)


def test_a_test_cluster_calls_its_services_directly():
    with TestCluster(Store, Front) as cluster:
        assert cluster.proxy('Front').ask(value=(1, 2)) == [1, 2]
        assert not cluster.client.connections  # nor did Front connect to Store
        assert all(not c.client.connections for c in cluster.containers)
        cluster.assert_rpc_called('Store.echo', value=[1, 2])
        assert cluster.proxy('Store', local=False).echo(value=3) == 3
        assert len(cluster.client.connections) == 1
