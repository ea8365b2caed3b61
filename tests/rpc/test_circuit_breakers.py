"""Circuit breakers, retries and readiness in the RPC client, with real instances in the
test's process: a breaker opens after N failures, calls then go to a healthy instance or
fail at once with CircuitOpen, one probe goes through after the cool-down and closes it
again; an idempotent call is retried elsewhere when its instance goes away, another is
not; not-ready instances get no calls."""
from __future__ import annotations

import time

import gevent
import pytest

import fannode
from fannode.calls.breaker import BreakerConfig, Settings
from fannode.calls.client import RpcClient
from fannode.core import deadline
from fannode.core.config import loads_config
from fannode.discovery import InstanceInfo
from fannode.discovery.local import LocalRegistry
from fannode.exceptions import (
    CircuitOpen, ConfigError, ConnectionLost, DeadlineExceeded, RemoteError, RpcError, Timeout, Unavailable,
)
from fannode.runtime.container import ServiceContainer
from fannode.testing import TestCluster, wait_until
from resilient import Store


@pytest.fixture
def cluster():
    with TestCluster() as c:
        yield c


@pytest.fixture
def connect(cluster):
    """connect(failures, cooldown) -> a client of the cluster with those breaker settings."""
    made = []

    def make(failures=2, cooldown=30.0, **options):
        client = RpcClient(LocalRegistry(cluster.url), breakers=BreakerConfig(default=Settings(failures, cooldown)),
                           **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def stores(cluster, count):
    cluster.add(Store, instances=count)
    return [c.interfaces['Store'] for c in cluster.containers]


def endpoint_of(cluster, store):
    return next(c.info.endpoint for c in cluster.containers if c.interfaces.get('Store') is store)


def outcomes(call, times):
    """What each of `times` calls ended with: the reply, or the exception's class (Timeout
    for DeadlineExceeded too: the call's own deadline passed)."""
    out = []
    for _ in range(times):
        try:
            out.append(call())
        except RpcError as e:
            out.append(Timeout if isinstance(e, Timeout) else type(e))
    return out


def test_an_instance_that_keeps_timing_out_gets_no_more_calls_once_its_breaker_opens(cluster, connect):
    slow, fast = stores(cluster, 2)
    slow.slow = 5.0
    store = connect(failures=2).proxy('Store', timeout=0.1)
    results = outcomes(store.get, 12)
    assert results.count(Timeout) == 2  # then every call goes to the healthy instance
    assert fast.calls == 10 and len([r for r in results if isinstance(r, int)]) == 10
    record = cluster.assert_logged('circuit breaker for Store at %s opened after 2 consecutive failure(s), '
                                   'the last: ' % endpoint_of(cluster, slow), level='WARNING')
    assert 'Store.get: no reply within 0.1s' in record.getMessage()
    assert record.getMessage().endswith('calls go elsewhere or fail at once for 30s')


def test_with_every_breaker_open_a_call_fails_at_once_without_being_sent(cluster, connect):
    (store_instance,) = stores(cluster, 1)
    store_instance.slow = 5.0
    client = connect(failures=3)
    store = client.proxy('Store', timeout=0.1)
    assert outcomes(store.get, 3) == [Timeout] * 3
    reached = store_instance.calls
    with pytest.raises(CircuitOpen) as failed:
        store.get()
    assert str(failed.value).startswith('Store.get: not sent, the circuit breaker of Store is open '
                                        '(1 instance(s), each failing; the last: ')
    assert 'Store.get: no reply within 0.1s' in str(failed.value)
    assert 'next probe in 30.0s' in str(failed.value) or 'next probe in 29.9s' in str(failed.value)
    with pytest.raises(CircuitOpen):
        store.get.defer()  # a future too: refused before anything is sent
    assert store_instance.calls == reached
    assert client.breakers.snapshot()['Store']['state'] == 'open'


def test_after_the_cooldown_one_probe_goes_through_and_its_success_closes_the_breaker(cluster, connect):
    (store_instance,) = stores(cluster, 1)
    store_instance.slow = 5.0
    client = connect(failures=2, cooldown=0.3)
    store = client.proxy('Store', timeout=0.1)
    assert outcomes(store.get, 2) == [Timeout, Timeout]
    store_instance.slow = 0.0
    reached = store_instance.calls
    wait_until(lambda: client.breakers.snapshot()['Store']['retry_in'] == 0.0, message='the cool-down to pass')
    patient = client.proxy('Store', timeout=2)  # the same breakers: they are the client's
    probes = [gevent.spawn(outcomes, lambda: patient.get(seconds=0.2), 1) for _ in range(5)]
    gevent.joinall(probes)
    results = sorted((p.value[0] for p in probes), key=str)
    assert results.count(CircuitOpen) == 4 and len([r for r in results if isinstance(r, int)]) == 1
    assert store_instance.calls == reached + 1  # the probe
    assert client.breakers.snapshot()['Store']['state'] == 'closed'
    cluster.assert_logged('circuit breaker for Store at %s closed: calls go through again'
                          % endpoint_of(cluster, store_instance), level='INFO')
    assert isinstance(store.get(), int)


def test_a_failed_probe_opens_the_breaker_again_and_each_change_is_logged_once(cluster, connect):
    (store_instance,) = stores(cluster, 1)
    store_instance.slow = 5.0
    client = connect(failures=2, cooldown=0.5)
    store = client.proxy('Store', timeout=0.05)
    results = []
    for _ in range(3):  # open, then two probes that fail; each batch well within a cool-down
        results += outcomes(store.get, 10)
        wait_until(lambda: client.breakers.snapshot()['Store']['retry_in'] == 0.0, message='the cool-down')
    # two to open it, then one probe per cool-down; the rest refused at once
    assert (results.count(Timeout), results.count(CircuitOpen)) == (4, 26)
    opened = [r for r in cluster.recorder.logs if 'circuit breaker for Store' in r.getMessage()
              and r.levelname in ('WARNING', 'INFO')]
    assert len(opened) == 1 and opened[0].levelname == 'WARNING'


def test_a_remote_error_is_an_answer_not_a_failure(cluster, connect):
    (store_instance,) = stores(cluster, 1)
    store = connect(failures=2).proxy('Store')
    assert outcomes(store.fail, 6) == [RemoteError.ValueError] * 6
    assert store_instance.calls == 6
    assert connect().breakers.snapshot() == {}


def test_a_proxy_can_bring_its_own_breaker_settings_or_none(cluster, connect):
    (store_instance,) = stores(cluster, 1)
    store_instance.slow = 5.0
    client = connect(failures=5)
    assert outcomes(client.proxy('Store', timeout=0.05, breaker={'failures': 1}).get, 3) \
        == [Timeout, CircuitOpen, CircuitOpen]
    assert outcomes(client.proxy('Store', timeout=0.05, breaker=False).get, 6) == [Timeout] * 6
    shown = client.breakers.snapshot()
    assert shown['Store (proxy: failures=1, cooldown=5s)']['state'] == 'open'
    assert 'Store' not in shown  # the config's breakers saw no call
    with pytest.raises(ConfigError) as bad:
        client.proxy('Store', breaker={'failures': 0})
    assert str(bad.value) == 'breaker.failures: expected a whole number of 1 or more, got 0'
    with pytest.raises(ConfigError) as bad:
        fannode.proxy('Store', breaker={'cooldwn': 1})
    assert str(bad.value) == 'breaker.cooldwn: unknown key (expected one of: failures, cooldown)'


class Caller(fannode.Interface):
    @fannode.rpc()
    def poke(self):
        try:
            return self.proxy('Store', timeout=0.05).get()
        except Timeout:
            return 'Timeout'
        except RpcError as e:
            return type(e).__name__


class Impatient(fannode.Interface):
    @fannode.rpc()
    def poke(self):
        try:
            return self.proxy('Store', timeout=0.05, breaker={'failures': 1, 'cooldown': 30}).get()
        except Timeout:
            return 'Timeout'
        except RpcError as e:
            return type(e).__name__


def test_a_service_s_proxy_with_its_own_breaker_in_a_test_cluster(cluster):
    (store_instance,) = stores(cluster, 1)
    store_instance.slow = 5.0
    cluster.add(Impatient)
    assert outcomes(cluster.proxy('Impatient').poke, 3) == ['Timeout', 'CircuitOpen', 'CircuitOpen']
    assert len(cluster.calls_to('Store.get')) == 3  # recorded, the refused ones too


def test_get_metrics_shows_the_breakers_of_the_services_an_instance_called(cluster):
    (store_instance,) = stores(cluster, 1)
    store_instance.slow = 5.0
    cluster.add(Caller)
    caller = cluster.proxy('Caller')
    assert outcomes(caller.poke, 6) == ['Timeout'] * 5 + ['CircuitOpen']  # the default: 5 failures
    shown = caller.get_metrics()['breakers']
    endpoint = endpoint_of(cluster, store_instance)
    assert shown['Store']['state'] == 'open' and 0 < shown['Store']['retry_in'] <= 5
    assert shown['Store']['endpoints'] == {endpoint: {'state': 'open', 'failures': 5}}
    assert 'breakers' not in cluster.proxy('Store').get_metrics()  # it called nobody


def test_a_not_ready_instance_gets_no_calls_and_none_ready_fails_at_once(cluster, connect):
    stores(cluster, 1)
    registry = LocalRegistry(cluster.url)
    waiting = InstanceInfo(id='waiting', endpoint='tcp://127.0.0.1:9', services=['Store', 'Ledger'],
                           ready=False, meta={'missing': ['Db'], 'dependencies': {'hard': ['Db'], 'soft': []}})
    registry.register(waiting)
    try:
        client = connect()
        assert all(isinstance(r, int) for r in outcomes(client.proxy('Store').get, 6))
        started = time.monotonic()
        with pytest.raises(Unavailable) as failed:
            client.proxy('Ledger').get()
        assert str(failed.value) == 'no ready instance of Ledger: 1 registered, not ready (missing Db)'
        assert time.monotonic() - started < 0.5  # at once, not at the deadline
    finally:
        registry.unregister(waiting)
        registry.close()


def test_an_idempotent_call_is_retried_on_another_instance_when_its_instance_goes_away(cluster, connect):
    first, second = stores(cluster, 2)
    client = connect()
    call = gevent.spawn(client.proxy('Store').get, seconds=0.3)
    handling = wait_until(lambda: [s for s in (first, second) if s.calls], message='a call to start')[0]
    other = second if handling is first else first
    next(c for c in cluster.containers if c.interfaces.get('Store') is handling).rpc.server.close(linger=0)
    assert isinstance(call.get(timeout=2), int)
    assert other.calls == 1


def test_a_call_that_is_not_idempotent_is_not_retried(cluster, connect):
    first, second = stores(cluster, 2)
    client = connect()
    call = gevent.spawn(client.proxy('Store').put, seconds=0.3)
    handling = wait_until(lambda: [s for s in (first, second) if s.calls], message='a call to start')[0]
    next(c for c in cluster.containers if c.interfaces.get('Store') is handling).rpc.server.close(linger=0)
    with pytest.raises(ConnectionLost):
        call.get(timeout=2)
    assert first.calls + second.calls == 1


def test_a_call_gets_no_more_time_than_the_request_it_is_made_under(cluster, connect):
    (store_instance,) = stores(cluster, 1)
    store = connect().proxy('Store', timeout=3)
    token = deadline.set(time.monotonic() + 0.2)
    try:
        started = time.monotonic()
        with pytest.raises(Timeout):
            store.get(seconds=1)
        assert time.monotonic() - started < 0.8
        deadline.set(time.monotonic() - 0.01)
        with pytest.raises(DeadlineExceeded) as failed:
            store.get()
        assert str(failed.value).startswith('Store.get: not sent, the deadline of the request being handled passed')
    finally:
        deadline.reset(token)
    assert store_instance.calls == 1


CONFIG = '''\
interfaces:
  Store:
    class: resilient:Store
breakers:
%s
'''


@pytest.mark.parametrize('section, error', [
    ('  default: {failures: 0}', 'svc.yml:5: breakers.default.failures: expected a whole number of 1 or more, got 0'),
    ('  Mailer: {cooldown: -1}', 'svc.yml:5: breakers.Mailer.cooldown: expected seconds, more than 0 and at '
                                 'most 3600, got -1'),
    ('  Mailer: {retries: 2}', 'svc.yml:5: breakers.Mailer.retries: unknown key (expected one of: failures, '
                               'cooldown)'),
    ('  enabled: no way', "svc.yml:5: breakers.enabled: expected bool, got str 'no way'"),
    ('  Mailer: 3', 'svc.yml:5: breakers.Mailer: expected a mapping like {failures: 5, cooldown: 5}, got int'),
    ('  Mail.er: {failures: 2}', 'svc.yml:5: breakers.Mail.er: expected a service name (or default, enabled)'),
])
def test_a_bad_breakers_section_is_one_line_naming_the_key(cluster, section, error):
    with pytest.raises(ConfigError) as failed:
        ServiceContainer(loads_config(CONFIG % section, 'svc.yml'), LocalRegistry(cluster.url))
    assert str(failed.value) == error


def test_the_config_sets_breakers_per_called_service_or_turns_them_off(cluster):
    def client_of(section):
        container = ServiceContainer(loads_config(CONFIG % section, 'svc.yml'), LocalRegistry(cluster.url))
        for transport in container.transports:  # never started: only its sockets to close
            transport.close()
        return container.client

    client = client_of('  default: {failures: 4}\n  Mailer: {cooldown: 1}')
    assert client.breakers.for_call('Mailer').settings == Settings(4, 1.0)
    assert client.breakers.for_call('Store').settings == Settings(4, 5.0)
    assert client_of('  enabled: false').breakers.for_call('Store') is None


def test_an_instance_killed_and_back_at_the_same_address_gets_calls_again_after_the_cooldown(cluster, connect):
    from conftest import free_port
    from fannode.core.config import Config
    port, started = free_port(), []

    def start():
        container = ServiceContainer(Config({'interfaces': {'Store': {'class': Store}}}), LocalRegistry(cluster.url),
                                     port=port)
        container.start()
        started.append(container)
        return container

    try:
        first = start()
        client = connect(failures=2, cooldown=0.3)
        store = client.proxy('Store', timeout=1)
        assert isinstance(store.get(), int)
        first.rpc.server.close(linger=0)  # as if killed: still registered, its connection down
        wait_until(lambda: outcomes(store.get, 1) == [CircuitOpen], message='the breaker to open')
        # Past the cool-down, the instance still down: refused at once, not waited for.
        wait_until(lambda: client.breakers.snapshot()['Store']['retry_in'] == 0.0, message='the cool-down')
        began = time.monotonic()
        with pytest.raises(CircuitOpen) as refused:
            store.get()
        assert time.monotonic() - began < 0.5 and str(refused.value).endswith('probing it again now')
        start()
        wait_until(lambda: isinstance(outcomes(store.get, 1)[0], int), timeout=3, message='calls to succeed again')
    finally:
        for container in started:
            container.stop(timeout=0)
