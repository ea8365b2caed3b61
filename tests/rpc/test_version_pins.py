"""Version pins: `proxy(service, version='^1.2')` calls only the instances whose announced
version matches; none matching fails at once with UnknownVersion naming those there are."""
from __future__ import annotations

import uuid

import pytest

import fannode
from fannode.calls.client import RpcClient
from fannode.calls.options import pinned
from fannode.core.config import Config
from fannode.core.versions import split_versioned
from fannode.discovery import get_registry
from fannode.exceptions import UnknownService, UnknownVersion, UsageError
from fannode.runtime.container import ServiceContainer


class Store(fannode.Interface):
    @fannode.rpc()
    def version(self):
        return self.container.version

    @fannode.rpc()
    def ask(self, service, version):
        """Which version of `service` a pinned call from inside a handler reached."""
        return self.proxy(service, version=version).version()


@pytest.fixture
def cluster():
    """start(version, count=1): instances of Store announcing `version`, all on one private registry."""
    url = 'local://version-pins-%s' % uuid.uuid4().hex[:8]
    started = []

    def start(version, count=1):
        for _ in range(count):
            config = Config({'version': version, 'interfaces': {'Store': {'class': Store}}}, '<Store %s>' % version)
            container = ServiceContainer(config, url)
            container.start()
            started.append(container)
    start.url = url
    yield start
    for container in started:
        container.stop(timeout=0)


@pytest.fixture
def client(cluster):
    client = RpcClient(get_registry(cluster.url))
    yield client
    client.close()
    client.registry.close()


def test_pinned_callers_reach_only_their_version(cluster, client):
    cluster('1.0.0')
    cluster('2.0.0')
    for pin, version in (('1', '1.0.0'), ('^1.0', '1.0.0'), ('2.0.0', '2.0.0'), ('>=1.5', '2.0.0'), ('~2.0', '2.0.0')):
        store = client.proxy('Store', version=pin)
        assert {store.version() for _ in range(6)} == {version}, pin
    # unpinned: the current version, the newest with no route (test_version_routes.py)
    assert {client.proxy('Store').version() for _ in range(20)} == {'2.0.0'}


def test_a_service_pins_the_services_it_calls(cluster, client):
    cluster('1.0.0')
    cluster('2.0.0')
    # From inside a handler: self.proxy(..., version=) (the call is a local one here)
    assert {client.proxy('Store').ask(service='Store', version='^2') for _ in range(6)} == {'2.0.0'}


def test_no_matching_instance_fails_at_once_naming_the_versions_there_are(cluster, client):
    cluster('1.4.2', count=2)
    cluster('1.0.0')
    with pytest.raises(UnknownVersion) as raised:
        client.proxy('Store', version='^2', timeout=10).version()
    assert str(raised.value) == ('Store.version: no instance of Store matches version ^2: '
                                 'there are 1.4.2 ×2, 1.0.0 ×1')
    assert isinstance(raised.value, UnknownService)  # a caller handling UnknownService handles this too


def test_a_version_that_is_no_semantic_version_matches_only_itself(cluster, client):
    cluster('blue')
    assert client.proxy('Store', version='blue').version() == 'blue'
    with pytest.raises(UnknownVersion, match='there are blue ×1'):
        client.proxy('Store', version='>=0.0.0').version()


@pytest.mark.parametrize('pin', ['^x', '>=1..0', '', '1 2 3 4 ^'])
def test_a_bad_range_is_refused_when_the_proxy_is_made(client, pin):
    with pytest.raises(UsageError) as raised:
        client.proxy('Store', version=pin)
    assert '\n' not in str(raised.value) and str(raised.value).startswith('version')
    with pytest.raises(UsageError):
        fannode.proxy('Store', version=pin)


def test_split_versioned_reads_service_at_range():
    assert split_versioned('Greeting@^1.2') == ('Greeting', '^1.2')
    assert split_versioned('Greeting@1') == ('Greeting', '1')
    assert split_versioned('Greeting') == ('Greeting', None)
    with pytest.raises(UsageError, match="version '\\^x': not a valid range"):
        split_versioned('Greeting@^x')
    with pytest.raises(UsageError, match='expected Service@version'):
        split_versioned('@1')


def test_calls_made_through_the_client_itself_are_pinned_with_pinned(cluster, client):
    cluster('1.0.0')
    cluster('2.0.0')
    with pinned('2'):  # what `fannode request Store@2.version` does around call_retrying
        assert {client.call_retrying('Store', 'version', {}) for _ in range(6)} == {'2.0.0'}
    with pinned('1'):
        assert {client.call_retrying('Store', 'version', {}) for _ in range(6)} == {'1.0.0'}
    assert {client.call_retrying('Store', 'version', {}) for _ in range(20)} == {'2.0.0'}  # unpinned: the newest
    with pytest.raises(UsageError, match="version '>>1': not a valid range"):
        with pinned('>>1'):
            pass
