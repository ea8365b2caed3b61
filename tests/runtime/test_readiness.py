"""Readiness in one process (fannode.testing, local:// discovery): an instance whose hard
dependency has no ready instance registers as not ready, says so in `status` and on
/_health, and registers as ready again when the dependency comes; soft ones never block
and are logged once per change."""
from __future__ import annotations

import json
import logging

import pytest
from werkzeug.routing import Map, Rule

import fannode
from fannode.testing import ServiceUnderTest, TestCluster, wait_until

LOGGER = 'fannode.runtime.dependencies'


class Store(fannode.Interface):
    @fannode.rpc()
    def get(self, key):
        return key


class Mailer(fannode.Interface):
    pass


class Orders(fannode.Interface):
    dependencies = {'hard': ['Store'], 'soft': ['Mailer']}

    @fannode.rpc()
    def place(self):
        return self.proxy('Store').get(key='x')


class Shop(fannode.WebInterface):
    dependencies = {'hard': ['Store']}
    url_map = Map([Rule('/', endpoint='home')])

    def home(self, request):
        return 'home'


class Ping(fannode.Interface):
    dependencies = {'hard': ['Pong']}


class Pong(fannode.Interface):
    dependencies = {'hard': ['Ping']}


def registered(cluster: TestCluster, service: str):
    [instance] = cluster.registry.lookup(service)
    return instance


def container(cluster: TestCluster, service: str):
    return next(c for c in cluster.containers if service in c.interfaces)


@pytest.fixture
def cluster():
    with TestCluster() as c:
        yield c


def test_a_missing_hard_dependency_registers_not_ready_until_it_comes(cluster):
    cluster.add(Orders)
    orders = registered(cluster, 'Orders')
    assert orders.ready is False
    assert orders.meta['missing'] == ['Store', 'Mailer']
    assert orders.meta['dependencies'] == {'hard': ['Store'], 'soft': ['Mailer']}
    status = container(cluster, 'Orders').builtin_status()
    assert status['ready'] is False
    assert status['dependencies'] == {'hard': ['Store'], 'soft': ['Mailer'], 'missing': ['Store', 'Mailer']}

    cluster.add(Store)
    wait_until(lambda: registered(cluster, 'Orders').ready, 1.5, 'Orders to register as ready')
    assert registered(cluster, 'Orders').meta['missing'] == ['Mailer']  # soft: shown, never blocking
    assert container(cluster, 'Orders').builtin_status()['dependencies']['missing'] == ['Mailer']


def test_it_goes_not_ready_again_when_the_dependency_leaves(cluster):
    cluster.add(Store)
    cluster.add(Orders)
    assert registered(cluster, 'Orders').ready is True
    container(cluster, 'Store').stop(timeout=1.0)
    wait_until(lambda: not registered(cluster, 'Orders').ready, 1.5, 'Orders to register as not ready')
    assert registered(cluster, 'Orders').meta['missing'] == ['Store', 'Mailer']


def test_a_dependency_that_is_itself_not_ready_does_not_count(cluster):
    cluster.add(Orders, 'Store', config={'dependencies': {'hard': ['Disk']}})  # a "Store" waiting for Disk
    assert registered(cluster, 'Store').ready is False
    cluster.add(Orders)
    assert registered(cluster, 'Orders').ready is False
    assert registered(cluster, 'Orders').meta['missing'][0] == 'Store'


def test_services_that_declare_nothing_announce_nothing_new(cluster):
    cluster.add(Store)
    store = registered(cluster, 'Store')
    assert store.ready is True and 'missing' not in store.meta and 'dependencies' not in store.meta
    assert container(cluster, 'Store').builtin_status()['dependencies'] == {'hard': [], 'soft': [], 'missing': []}


def test_the_config_can_drop_what_the_class_declares(cluster):
    cluster.add(Orders, config={'dependencies': {}})
    assert registered(cluster, 'Orders').ready is True


def test_a_soft_dependency_is_logged_once_per_change_not_per_call(cluster, caplog):
    caplog.set_level(logging.INFO, LOGGER)
    cluster.add(Store)
    cluster.add(Orders)
    for _ in range(3):
        assert cluster.proxy('Orders').place() == 'x'
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines == ['soft dependency Mailer has no ready instance; calls to it will fail']
    cluster.add(Mailer)
    wait_until(lambda: registered(cluster, 'Orders').meta['missing'] == [], 1.5, 'Mailer to count')
    container(cluster, 'Mailer').stop(timeout=1.0)
    wait_until(lambda: registered(cluster, 'Orders').meta['missing'] == ['Mailer'], 1.5, 'Mailer to be missing')
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines[1:] == ['soft dependency Mailer has a ready instance again',
                         'soft dependency Mailer has no ready instance; calls to it will fail']


def test_health_says_503_with_what_is_missing_then_200(cluster):
    cluster.add(Shop)
    web = cluster.web()
    response = web.get('/_health')
    assert response.status_code == 503
    assert json.loads(response.get_data()) == {'status': 'not ready', 'missing': ['Store']}
    assert web.get('/').get_data() == b'home'  # a request that arrives anyway is served
    cluster.add(Store)
    wait_until(lambda: web.get('/_health').status_code == 200, 1.5, '/_health to answer 200')
    assert web.get('/_health').get_data() == b'ok'


def test_a_hard_cycle_is_said_and_does_not_deadlock(cluster, caplog):
    caplog.set_level(logging.WARNING, LOGGER)
    cluster.add(Ping)
    assert registered(cluster, 'Ping').ready is False
    cluster.add(Pong)
    wait_until(lambda: registered(cluster, 'Ping').ready and registered(cluster, 'Pong').ready, 1.5,
               'both to be ready')
    assert 'hard dependency cycle: Pong needs Ping and Ping needs Pong; each counts the other as present ' \
           'while that is all it misses' in caplog.text


def test_a_mocked_hard_dependency_counts_as_there_in_the_toolkit():
    with ServiceUnderTest(Orders, mocks={'Store.get': 'mocked'}) as orders:
        assert orders.rpc.place() == 'mocked'
        assert registered(orders, 'Orders').meta['missing'] == ['Mailer']


def test_an_instance_serving_its_own_dependency_needs_nothing(cluster):
    cluster.add(Orders, config={'dependencies': {'hard': ['Orders']}})
    assert registered(cluster, 'Orders').ready is True
