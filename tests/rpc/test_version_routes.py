"""The current version: where unpinned calls go when instances run different versions —
the route set in shared config (`fannode route`), else the newest ready version; a
cluster of one version behaves as if versions did not exist."""
from __future__ import annotations

import uuid
from types import SimpleNamespace

import gevent
import gevent.event
import pytest

import fannode
from fannode.calls.client import RpcClient
from fannode.calls.routes import Routes, current
from fannode.core.config import Config
from fannode.core.versions import Pin, counts, newest, route_key
from fannode.discovery import get_registry
from fannode.runtime.container import ServiceContainer
from fannode.sharedconfig import get_shared_config
from conftest import wait_until


def instance(version, ready=True):
    return SimpleNamespace(version=version, ready=ready)


def versions(chosen):
    instances, ready = chosen
    return sorted(i.version for i in instances), sorted(i.version for i in ready)


def test_newest_orders_semver_above_labels_above_none():
    assert newest(['1.0.0', '2.0.0', '10.0.0', '2.1.0-rc1']) == '10.0.0'
    assert newest(['2.0.0-rc1', '1.9.9']) == '2.0.0-rc1'
    assert newest(['blue', '0.0.1', '']) == '0.0.1'
    assert newest(['blue', 'green', '']) == 'green'
    assert newest(['']) == '' and newest([]) == ''
    assert list(counts([instance('1.0.0'), instance('2.0.0'), instance('1.0.0'), instance('')])) == \
        ['2.0.0', '1.0.0', '']


def test_one_version_or_none_reaches_every_instance_as_before():
    for version in ('', '1.0.0', 'blue'):
        everyone = [instance(version), instance(version, ready=False)]
        assert current(everyone, everyone[:1], Pin('2')) == (everyone, everyone[:1])


def test_no_route_goes_to_the_newest_ready_version():
    one, two, two_starting = instance('1.0.0'), instance('2.0.0'), instance('2.0.0', ready=False)
    assert versions(current([one, two, two_starting], [one, two], None)) == (['2.0.0', '2.0.0'], ['2.0.0'])
    # 2.0 registered but not ready yet (a rollout's first new instance): the old ones still serve
    assert versions(current([one, two_starting], [one], None)) == (['1.0.0'], ['1.0.0'])
    # instances without a version are reached only when no ready instance has one
    bare = instance('')
    assert versions(current([bare, one], [bare, one], None)) == (['1.0.0'], ['1.0.0'])
    assert versions(current([bare, one], [bare], None)) == ([''], [''])


def test_a_route_is_followed_while_one_of_its_instances_is_ready():
    one, one_b, two = instance('1.0.0'), instance('1.4.0'), instance('2.0.0')
    assert versions(current([one, one_b, two], [one, one_b, two], Pin('1'))) == (['1.0.0', '1.4.0'],) * 2
    assert versions(current([one, one_b, two], [one, one_b, two], Pin('~1.0'))) == (['1.0.0'],) * 2
    # its instances all gone or not ready: the newest ready, rather than a failed call
    assert versions(current([one, two], [one, two], Pin('3'))) == (['2.0.0'],) * 2
    assert versions(current([one, two], [two], Pin('1'))) == (['2.0.0'],) * 2


def test_nothing_ready_leaves_the_choice_to_the_caller():
    starting = [instance('1.0.0', ready=False), instance('2.0.0', ready=False)]
    assert current(starting, [], None) == (starting, [])


def test_routes_reads_a_route_once_and_follows_it():
    url = 'local://routes-%s' % uuid.uuid4().hex[:8]
    setter = get_shared_config(url)
    setter.set(route_key('Cart'), '2')
    routes = Routes(url)
    try:
        assert routes.route('Cart').text == '2'  # the first call waits for the route (a one-shot CLI call too)
        assert routes.route('Store') is None
        setter.set(route_key('Store'), '1')
        wait_until(lambda: routes.route('Store') is not None and routes.route('Store').text == '1', timeout=5)
        setter.set(route_key('Store'), '^x')  # a bad route is ignored: the newest, never a failed call
        wait_until(lambda: routes.route('Store') is None, timeout=5)
        setter.delete(route_key('Store'))
        gevent.sleep(0)
        assert routes.route('Store') is None
    finally:
        routes.close()
        setter.close()


def test_a_route_that_cannot_be_read_means_the_newest():
    def refuse(url):
        raise OSError('no shared config here')
    routes = Routes('local://nowhere', connect=refuse)
    assert routes.route('Store') is None
    assert routes.route('Store') is None  # not asked again at each call
    routes.close()


def test_no_call_waits_for_shared_config_to_connect_past_first_wait():
    asked, release = [], gevent.event.Event()

    class Config:
        def subscribe(self, key, callback):
            pass

        def get(self, key):
            return '1' if key == route_key('Store') else None

        def close(self):
            pass

    def slow(url):  # a ZooKeeper that takes its time
        asked.append(url)
        release.wait(10)
        return Config()
    routes = Routes('zookeeper://away', connect=slow, first_wait=0.0)
    try:
        assert routes.route('Store') is None and routes.route('Cart') is None  # past first_wait: the newest meanwhile
        gevent.sleep(0.01)
        assert routes.route('Store') is None and asked == ['zookeeper://away']  # one connection for both
        release.set()
        wait_until(lambda: routes.route('Store') is not None, timeout=5)
        assert routes.route('Store').text == '1' and routes.route('Cart') is None
    finally:
        routes.close()


def test_one_cache_entry_per_service_pinned_or_not_and_a_bad_route_logged_short(caplog):
    from fannode.calls.routes import parse_route
    routes = Routes('local://nowhere', connect=lambda url: None)
    routes.pins['Store'] = None
    known = ([instance('1.0.0'), instance('2.0.0')], [instance('1.0.0'), instance('2.0.0')])
    for text in ('1', '2', '^1', '>=1', '1.0.0'):
        routes.eligible('Store', 'Store.x', known, Pin(text))
        routes.eligible('Store', 'Store.x', known, None)
    assert sorted(routes.cache) == [('Store', False), ('Store', True)]
    assert versions(routes.eligible('Store', 'Store.x', known, Pin('2'))) == (['2.0.0'], ['2.0.0'])
    assert parse_route('x' * 10_000) is None
    assert all(len(r.getMessage()) < 300 for r in caplog.records)


class Store(fannode.Interface):
    @fannode.rpc()
    def version(self):
        return self.container.version


@pytest.fixture
def cluster():
    url = 'local://version-routes-%s' % uuid.uuid4().hex[:8]
    started = []
    setter = get_shared_config(url)  # keeps the route keys alive for the test

    def start(version):
        config = Config({'version': version, 'interfaces': {'Store': {'class': Store}}}, '<Store %s>' % version)
        container = ServiceContainer(config, url)
        container.start()
        started.append(container)
        return container
    start.url, start.config = url, setter
    yield start
    for container in started:
        container.stop(timeout=0)
    setter.close()


@pytest.fixture
def client(cluster):
    client = RpcClient(get_registry(cluster.url))
    yield client
    client.close()
    client.registry.close()


def test_unpinned_calls_follow_the_route_and_pinned_ones_ignore_it(cluster, client):
    cluster('1.0.0')
    cluster('2.0.0')
    store = client.proxy('Store')
    assert {store.version() for _ in range(10)} == {'2.0.0'}
    cluster.config.set(route_key('Store'), '1')
    wait_until(lambda: store.version() == '1.0.0', timeout=5)
    assert {store.version() for _ in range(10)} == {'1.0.0'}
    assert {client.proxy('Store', version='2').version() for _ in range(5)} == {'2.0.0'}
    cluster.config.delete(route_key('Store'))
    wait_until(lambda: store.version() == '2.0.0', timeout=5)


def test_the_routed_version_gone_sends_unpinned_calls_to_the_newest(cluster, client):
    cluster('1.0.0')
    old = cluster('1.5.0')
    cluster('2.0.0')
    cluster.config.set(route_key('Store'), '~1.5')
    store = client.proxy('Store')
    wait_until(lambda: store.version() == '1.5.0', timeout=5)
    old.stop(timeout=0)
    wait_until(lambda: store.version() == '2.0.0', timeout=5)
