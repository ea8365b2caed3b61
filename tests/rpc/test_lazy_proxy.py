"""`fannode.proxy(...)` finds its client at each call, so a proxy made at import time (at
module or class level) reaches the cluster of whoever calls it; and a registry that fails
during a call is an RpcError like any other."""
from __future__ import annotations

import gevent
import pytest

import fannode
from conftest import free_port
from fannode.calls import default
from fannode.calls.client import RpcClient
from fannode.core.config import Config
from fannode.discovery import get_registry
from fannode.exceptions import DiscoveryFailed, RegistryUnavailable
from fannode.testing import TestCluster
from rpc_helpers import client, hub_url, start  # noqa: F401 - fixtures


@pytest.fixture
def elsewhere(monkeypatch):
    """The environment names a registry where nothing runs, and no default client is made:
    a proxy that binds when it is made binds there and never reaches the test's cluster."""
    dead = 'hub://127.0.0.1:%d' % free_port()
    monkeypatch.setenv('FANNODE_REGISTRY', dead)
    default.set_client(None)
    yield dead
    made = default._client
    default.set_client(None)
    if made is not None:
        made.close()
        made.registry.close()


def relay_class(elsewhere):
    class Relay(fannode.Interface):
        greeting = fannode.proxy('Greeting')  # made at import time, before any instance runs

        @fannode.rpc()
        def relay(self, name):
            return self.greeting.greet(name=name)

        @fannode.rpc()
        def relay_later(self, name):
            return gevent.spawn(self.greeting.greet, name=name).get()  # outside the request's context
    return Relay


def test_a_class_level_proxy_reaches_the_cluster_of_the_instance_it_runs_in(elsewhere, start, client):
    start()
    relay = relay_class(elsewhere)
    container = start(Config({'interfaces': {'Relay': {'class': relay}}}, '<Relay>'))
    assert client.proxy('Relay').relay(name='Ann') == 'Hi, Ann!'
    default.set_client(container.client)  # what `fannode instance` does once the container is made
    try:
        assert client.proxy('Relay').relay_later(name='Bo') == 'Hi, Bo!'
    finally:
        default.set_client(None)  # the container closes its client


def test_a_class_level_proxy_in_a_test_cluster_is_recorded_and_mocked(elsewhere):
    from demo import Greeting
    relay = relay_class(elsewhere)
    with TestCluster(Greeting, relay) as cluster:
        assert cluster.proxy('Relay').relay(name='Cy') == 'Hi, Cy!'
        call = cluster.assert_rpc_called('Greeting.greet', name='Cy')
        assert not call.mocked
    with TestCluster(relay, mocks={'Greeting.greet': 'mocked'}) as cluster:
        assert cluster.proxy('Relay').relay(name='Di') == 'mocked'
        assert cluster.assert_rpc_called('Greeting.greet', name='Di').mocked


def test_a_proxy_keeps_its_timeout_and_takes_the_clients_otherwise():
    assert repr(fannode.proxy('Greeting')) == '<Proxy Greeting timeout=default>'
    assert repr(fannode.proxy('Greeting', timeout=5).slow.with_timeout(9)) == '<Method Greeting.slow>'
    assert fannode.proxy('Greeting', timeout=5).slow.with_timeout(9).timeout == 9


def test_a_registry_that_does_not_answer_fails_the_call_with_an_rpc_error(elsewhere):
    client = RpcClient(get_registry(elsewhere))
    try:
        with pytest.raises(fannode.RpcError) as info:
            client.proxy('Greeting').greet(name='x')
    finally:
        client.close()
        client.registry.close()
    assert isinstance(info.value, DiscoveryFailed) and isinstance(info.value, RegistryUnavailable)
    message = str(info.value)
    assert message.startswith('cannot reach the hub at %s: start one with `fannode hub`' % elsewhere)
    assert '\n' not in message


def test_a_registry_backend_that_fails_its_own_way_is_named(hub_url, monkeypatch):
    client = RpcClient(get_registry(hub_url))

    def lost(service):
        raise OSError('connection reset')  # what a backend might let out (kazoo's ConnectionLoss...)
    monkeypatch.setattr(client.registry, 'lookup', lost)
    try:
        with pytest.raises(DiscoveryFailed, match=r'^Greeting.greet: cannot look up Greeting in the registry at '
                                                  r'hub://127.0.0.1:\d+: connection reset$'):
            client.proxy('Greeting').greet(name='x')
    finally:
        client.close()
        client.registry.close()


def test_a_registry_that_cannot_be_set_up_fails_the_call_with_an_rpc_error(elsewhere, monkeypatch):
    import fannode.discovery

    def unreachable(url):
        raise RegistryUnavailable('cannot reach ZooKeeper at 10.0.0.1:2181 within 5s: is it running?')
    monkeypatch.setattr(fannode.discovery, 'get_registry', unreachable)
    with pytest.raises(DiscoveryFailed, match=r'^Greeting.greet: cannot reach ZooKeeper at 10.0.0.1:2181 within '
                                              r'5s: is it running\?$'):
        fannode.proxy('Greeting').greet(name='x')


def test_an_instance_registered_with_a_bad_endpoint_is_skipped(hub_url, start, client):
    from fannode.core.instance import InstanceInfo
    rogue = get_registry(hub_url)
    try:
        rogue.register(InstanceInfo('bad0', 'tcp://1.2.3.4', ['Greeting', 'Lonely']))
        with pytest.raises(DiscoveryFailed, match=r"^Lonely.hi: the registry at hub://127.0.0.1:\d+ gave no usable "
                                                  r"instance of Lonely: bad endpoint 'tcp://1.2.3.4': Invalid argument"):
            client.proxy('Lonely').hi()
        start()
        assert [client.proxy('Greeting').greet(name=str(i)) for i in range(3)] == ['Hi, 0!', 'Hi, 1!', 'Hi, 2!']
    finally:
        rogue.close()
